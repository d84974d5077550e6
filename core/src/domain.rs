//! Pure domain types and rules: what a contact, deal or ticket is and which changes are valid.
//!
//! Architecture Invariant: this module knows no database, GraphQL, HTTP or wasm. It imports no
//! `sea_orm`, `axum`, `async_graphql` or `wasmtime`; everything here is plain data and functions,
//! tested with tables of inputs and expected outcomes.

pub mod actor;
pub mod code;
pub mod cron;
pub mod currency;
pub mod custom_field;
pub mod error;
pub mod extension;
pub mod filter;
pub mod hook;
pub mod naming;
pub mod object;
pub mod rules;
pub mod ticket;
pub mod value;

pub use error::{DomainError, Result};

#[cfg(test)]
mod tests;
