//! Kith's database schema: one sea-orm migration chain that runs unchanged on SQLite and
//! PostgreSQL.
//!
//! # Layout
//! - `columns`: the portable column vocabulary (ids, timestamps, money, JSON) every migration uses.
//! - one file per migration, named `mYYYYMMDD_HHMMSS_<verb>_<noun>.rs`.
//! - `search_words`: the words the search index holds for a text, used by migration 11 and by
//!   the store.
//!
//! Conventions, written once here and followed by every migration:
//! - Tables are singular nouns; the primary key is `id`, a UUIDv7 (time-ordered, so the primary
//!   key index also orders rows by creation).
//! - Timestamps are UTC. On PostgreSQL they are `timestamptz`; on SQLite they are fixed-width
//!   RFC 3339 text (`2026-11-22T10:00:00.000000Z`), so string order is time order.
//! - Money is exact: `numeric(24,4)` on PostgreSQL, an integer count of 1/10,000 units on SQLite
//!   (SQLite has no decimal type and its REAL affinity would round).
//! - SQLite cannot alter foreign keys or several columns at once, so foreign keys are declared in
//!   `create_table` and every `alter_table` changes exactly one thing.
//! - Migrations are never edited once merged: add a new one.

pub use sea_orm_migration::prelude::*;

mod columns;
mod m20261122_000001_create_identity;
mod m20261122_000002_create_crm;
mod m20261122_000003_create_service;
mod m20261122_000004_create_activity;
mod m20261122_000005_create_audit_outbox;
mod m20261122_000006_create_search;
mod m20261122_000007_create_plugins;
mod m20261123_000008_create_plugin_objects;
mod m20261201_000009_create_plugin_jobs;
mod m20261202_000010_sort_indexes_end_with_id;
mod m20261204_000011_search_words;
mod m20261205_000012_prefix_indexes;
mod m20261210_000013_create_idempotency_key;
mod m20261211_000014_create_import_run;
mod m20261212_000015_create_consent;
mod m20261213_000016_create_webhook;
mod m20261214_000017_search_index_without_pending_list;
mod m20261215_000018_partition_plugin_delivery;
mod m20261216_000019_create_mail_queue;
mod m20261217_000020_contact_time_zone;
mod search_words;

pub use search_words::search_words;

/// The whole migration chain, oldest first.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_create_identity::Migration),
            Box::new(m20261122_000002_create_crm::Migration),
            Box::new(m20261122_000003_create_service::Migration),
            Box::new(m20261122_000004_create_activity::Migration),
            Box::new(m20261122_000005_create_audit_outbox::Migration),
            Box::new(m20261122_000006_create_search::Migration),
            Box::new(m20261122_000007_create_plugins::Migration),
            Box::new(m20261123_000008_create_plugin_objects::Migration),
            Box::new(m20261201_000009_create_plugin_jobs::Migration),
            Box::new(m20261202_000010_sort_indexes_end_with_id::Migration),
            Box::new(m20261204_000011_search_words::Migration),
            Box::new(m20261205_000012_prefix_indexes::Migration),
            Box::new(m20261210_000013_create_idempotency_key::Migration),
            Box::new(m20261211_000014_create_import_run::Migration),
            Box::new(m20261212_000015_create_consent::Migration),
            Box::new(m20261213_000016_create_webhook::Migration),
            Box::new(m20261214_000017_search_index_without_pending_list::Migration),
            Box::new(m20261215_000018_partition_plugin_delivery::Migration),
            Box::new(m20261216_000019_create_mail_queue::Migration),
            Box::new(m20261217_000020_contact_time_zone::Migration),
        ]
    }
}
