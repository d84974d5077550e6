//! The depth walk: data against the limit, introspection against its own shape.

use async_graphql::parser::parse_query;

use super::*;

/// graphql-js 16's `getIntrospectionQuery` with every option on (descriptions,
/// `specifiedByURL`, `isRepeatable`, the schema's description, deprecated input values,
/// `isOneOf`) and `ofType` nested nine deep.
const STANDARD: &str = include_str!("introspection.graphql");

fn measured(query: &str, max: usize) -> Result<(), TooDeep> {
    measure(&parse_query(query).expect("parses"), max)
}

#[test]
fn the_standard_introspection_query_passes_a_data_limit_far_below_its_depth() {
    assert_eq!(measured(STANDARD, 12), Ok(()));
    assert_eq!(measured(STANDARD, 3), Ok(()));
    assert_eq!(measured("{ __type(name: \"Contact\") { fields { type { ofType { ofType { name } } } } } }", 1), Ok(()));
}

#[test]
fn data_is_counted_through_fragments_and_refused_past_the_limit_where_it_crosses_it() {
    let deep = "{ contacts { edges { node { company { name } } } } }";
    assert_eq!(measured(deep, 5), Ok(()));
    let Err(TooDeep::Data { depth, at }) = measured(deep, 4) else { panic!("refused") };
    assert_eq!(depth, 5);
    assert_eq!((at.line, at.column), (1, 39), "the first field past the limit: `name`");
    let fragments =
        "query { contacts { ...E } } fragment E on ContactConnection { edges { ... on ContactEdge { node { id } } } }";
    assert_eq!(measured(fragments, 4), Ok(()));
    assert!(matches!(measured(fragments, 3), Err(TooDeep::Data { depth: 4, .. })));
    // `__typename` is data: it counts like any field.
    assert!(matches!(measured("{ contacts { edges { __typename } } }", 2), Err(TooDeep::Data { depth: 3, .. })));
}

#[test]
fn introspection_inside_data_does_not_hide_data_nested_too_deep() {
    let mixed = "{ __schema { types { name } } contacts { edges { node { id } } } }";
    assert!(matches!(measured(mixed, 3), Err(TooDeep::Data { .. })));
    assert_eq!(measured(mixed, 4), Ok(()));
}

#[test]
fn circular_introspection_is_refused_by_its_nested_lists() {
    let circular = "{ __schema { types { fields { type { fields { type { fields { name } } } } } } } }";
    assert!(matches!(measured(circular, 12), Err(TooDeep::IntrospectionLists { .. })));
    let three = "{ __schema { types { fields { type { fields { name } } } } } }";
    assert_eq!(measured(three, 12), Ok(()));
    let via_fragment =
        "{ __schema { ...S } } fragment S on __Schema { types { fields { args { type { fields { name } } } } } }";
    assert!(matches!(measured(via_fragment, 12), Err(TooDeep::IntrospectionLists { .. })));
}

#[test]
fn an_endless_of_type_chain_is_refused() {
    let mut query = String::from("{ __type(name: \"Contact\") { ");
    for _ in 0..INTROSPECTION_MAX_DEPTH {
        query.push_str("ofType { ");
    }
    query.push_str("name");
    query.push_str(&" }".repeat(INTROSPECTION_MAX_DEPTH + 2));
    assert!(matches!(measured(&query, 12), Err(TooDeep::Introspection { .. })));
}

#[test]
fn a_document_too_long_to_walk_is_refused_as_too_complex() {
    // Each level spreads the next twice: 2^20 selections.
    let mut query = String::from("{ ...F0 }");
    for i in 0..20 {
        query.push_str(&format!(" fragment F{i} on Query {{ ...F{n} ...F{n} }}", n = i + 1));
    }
    query.push_str(" fragment F20 on Query { __typename }");
    assert_eq!(measured(&query, 12), Err(TooDeep::TooLong));
    let error = check(&parse_query(&query).expect("parses"), 12).expect_err("refused");
    assert!(error.message.contains("too complex"), "{}", error.message);
}
