//! The GraphQL API, built with `async_graphql::dynamic` from the object registry so plugins can
//! add types at run time (the schema is rebuilt and swapped).
//!
//! Architecture Invariant: the API never touches SQL; it calls `service` and `store` functions
//! and maps their errors to GraphQL error codes in one place (`error`).

pub mod admin;
pub mod args;
pub mod auth;
pub mod connection;
pub mod cost;
pub mod crud;
pub mod depth;
pub mod direct;
pub mod documents;
pub mod error;
pub mod extension;
pub mod field_errors;
pub mod import;
pub mod loader;
pub mod object;
pub mod plugins;
pub mod privacy;
pub mod reports;
pub mod schema;
pub mod subscription;
pub mod webhooks;
pub mod workflow;

pub use schema::build_schema;
