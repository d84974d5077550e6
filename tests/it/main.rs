//! Kith's end-to-end tests: one binary, real SQLite files, real PostgreSQL when
//! `KITH_TEST_DATABASE_URL` is set, real HTTP over loopback.

// Test and benchmark code: a failed unwrap is a failed test, which is what it should be.
#![allow(clippy::unwrap_used)]

mod access;
mod admin;
mod autocommit;
mod browser;
mod bulk;
mod cli;
mod clients;
mod concurrency;
mod conformance;
mod console;
mod console_admin;
mod contracts;
mod crud;
mod donors;
mod extensions;
mod graphql_spec;
mod harness;
mod http;
mod idempotency;
mod import_export;
mod limits;
mod loyalty;
mod mail;
mod marketing;
mod observability;
mod outage;
mod pages;
mod personal;
mod planner;
mod plugin_objects;
mod plugins;
mod privacy;
mod public_api;
mod records;
mod references;
mod registry;
mod reports;
mod routes;
mod sdks;
mod search;
mod subscriptions;
mod tidy;
mod tryton;
mod util;
mod webhooks;
mod workflows;
