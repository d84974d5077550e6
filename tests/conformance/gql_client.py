"""Python `gql` against kith, as its documentation starts: the requests transport, the schema
fetched from the server (`fetch_schema_from_transport=True`, gql's own introspection query),
then queries and a mutation checked against that schema before they are sent.

Usage: python gql_client.py BASE_URL TOKEN
"""

import sys

from gql import Client, gql
from gql.transport.requests import RequestsHTTPTransport


def main() -> None:
    base, token = sys.argv[1], sys.argv[2]
    transport = RequestsHTTPTransport(url=f"{base}/graphql", headers={"Authorization": f"Bearer {token}"})
    client = Client(transport=transport, fetch_schema_from_transport=True)
    with client as session:
        schema = client.schema
        assert schema is not None, "gql fetched no schema"
        for name in ("Query", "Mutation", "Contact", "Donation", "DonorSummary"):
            assert schema.get_type(name) is not None, f"the fetched schema has no type {name}"
        print(f"  fetched the schema: {len(schema.type_map)} types")

        created = session.execute(
            gql("mutation Add($input: ContactCreateInput!) { createContact(input: $input) { id firstName } }"),
            variable_values={"input": {"firstName": "Grace", "lastName": "Hopper"}},
        )
        contact_id = created["createContact"]["id"]
        read = session.execute(
            gql("query One($id: ID!) { contact(id: $id) { id firstName lastName donorSummary { giftCount } } }"),
            variable_values={"id": contact_id},
        )
        assert read["contact"]["lastName"] == "Hopper", read
        listed = session.execute(gql("{ contacts(first: 5) { edges { node { id firstName } } } }"))
        assert any(e["node"]["id"] == contact_id for e in listed["contacts"]["edges"]), listed
        print(f"  created contact {contact_id}, read it back and found it in the list")


if __name__ == "__main__":
    main()
