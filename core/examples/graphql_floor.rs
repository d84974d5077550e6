//! The async-graphql floor for the page-of-50 goal of issue "Kith GraphQL API": a static
//! (derived) async-graphql schema on axum that answers the benchmark's page query
//! (`contacts(first, filter, orderBy) { edges { node { id firstName lastName email company { name } } } }`)
//! from 50 objects held in memory — no database, no auth, no limits. Kith's page is measured
//! against what this serves on the same machine and the same day (`bench/graphql.sh` with
//! `FLOOR=1`), since the machine's speed varies from day to day.
//!
//! Run: `cargo run --release -p kith-core --example graphql_floor [BIND]` (default
//! 127.0.0.1:18091).

// Test and benchmark code: a failed unwrap is a failed test, which is what it should be.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use async_graphql::{EmptyMutation, EmptySubscription, InputObject, Object, Schema, SimpleObject};
use axum::Router;
use axum::extract::State;
use axum::routing::post;

/// The allocator of the `kith` binary, so the two are compared on equal terms.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(SimpleObject, Clone)]
struct Company {
    name: String,
}

#[derive(SimpleObject, Clone)]
#[graphql(name = "Contact")]
struct Contact {
    id: String,
    first_name: String,
    last_name: String,
    email: String,
    company: Option<Company>,
}

#[derive(SimpleObject)]
struct ContactEdge {
    cursor: String,
    node: Contact,
}

#[derive(SimpleObject)]
struct ContactConnection {
    edges: Vec<ContactEdge>,
}

#[derive(InputObject)]
struct StringFilter {
    eq: Option<String>,
}

#[derive(InputObject)]
struct ContactFilter {
    address_city: Option<StringFilter>,
}

#[derive(async_graphql::Enum, Copy, Clone, PartialEq, Eq)]
#[graphql(rename_items = "camelCase")]
enum ContactField {
    LastName,
}

#[derive(InputObject)]
struct ContactOrderBy {
    field: ContactField,
}

struct Query {
    rows: Arc<Vec<Contact>>,
}

#[Object]
impl Query {
    async fn contacts(
        &self,
        first: Option<i32>,
        filter: Option<ContactFilter>,
        order_by: Option<Vec<ContactOrderBy>>,
    ) -> ContactConnection {
        let _ = (filter, order_by);
        let n = first.unwrap_or(50).clamp(0, 200) as usize;
        let edges = self.rows.iter().take(n).map(|c| ContactEdge { cursor: c.id.clone(), node: c.clone() }).collect();
        ContactConnection { edges }
    }
}

type FloorSchema = Schema<Query, EmptyMutation, EmptySubscription>;

async fn graphql(State(schema): State<FloorSchema>, body: axum::body::Bytes) -> axum::response::Response {
    use axum::response::IntoResponse;
    let request: async_graphql::Request = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(err) => return (axum::http::StatusCode::BAD_REQUEST, err.to_string()).into_response(),
    };
    let response = schema.execute(request).await;
    let body = serde_json::to_string(&response).unwrap_or_default();
    ([(axum::http::header::CONTENT_TYPE, "application/json")], body).into_response()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let bind = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:18091".to_owned());
    let rows = (0..200)
        .map(|i| Contact {
            id: uuid::Uuid::now_v7().to_string(),
            first_name: format!("First{i}"),
            last_name: format!("Last{}", i % 50),
            email: format!("person{i}@example.org"),
            company: Some(Company { name: format!("Company{}", i % 500) }),
        })
        .collect();
    let schema = Schema::build(Query { rows: Arc::new(rows) }, EmptyMutation, EmptySubscription).finish();
    let app = Router::new().route("/graphql", post(graphql)).with_state(schema);
    let listener = tokio::net::TcpListener::bind(&bind).await?;
    println!("graphql floor on http://{bind}/graphql");
    axum::serve(listener, app).await?;
    Ok(())
}
