//! Kith core: the CRM's domain rules, storage, services, HTTP server and CLI.
//!
//! # Layout
//! - `domain`: pure types and rules (no database, no HTTP).
//! - `store`: every SQL statement, on SQLite and PostgreSQL.
//! - `service`: use cases (create a contact, move a deal, import a CSV) composed of domain
//!   rules and store calls inside one transaction.
//! - `plugin`: the WebAssembly plugin runtime (manifests, wasmtime, host functions, delivery).
//! - `api`: the GraphQL schema, derived from the object registry.
//! - `config`: layered configuration (defaults, `kith.toml`, `KITH_*`, flags).
//! - `error`: the error type of the store and service layers.
//! - `telemetry`: the log, OpenTelemetry traces and the metrics recorder, set up once per
//!   process.
//! - `http`: the axum server (`http::metrics`: the access log, request metrics, `/metrics`).
//! - `console`: the web app at `/`, server-rendered from the registry, acting through GraphQL.
//! - `cli`: the `kith` command line.

pub mod api;
pub mod cli;
pub mod config;
pub mod console;
pub mod domain;
pub mod error;
pub mod http;
pub mod plugin;
pub mod service;
pub mod store;
pub mod telemetry;

pub use error::{Error, Result};
