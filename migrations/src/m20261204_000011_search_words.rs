//! PostgreSQL's search documents are rebuilt from the index's words ([`search_words`]).
//!
//! They were `to_tsvector('simple', body)`. PostgreSQL's parser keeps an e-mail address, a host
//! name or a path as one token, so the words of a query (letters and digits only) never matched
//! `ada@engines.example`, `engines.example` or `engines`, which SQLite's FTS5 finds. Diacritics
//! stayed too (`josé` did not match `jose`). Each document is now `to_tsvector('simple', words)`,
//! the words computed by Kith. SQLite's index is unchanged: FTS5 already reads a body this way.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend, Statement, Value};

use crate::search_words::search_words;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

/// Entries rebuilt per statement.
const BATCH: usize = 500;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        if db.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        // Keyset over record ids, text in and out, so this crate needs no uuid support of its own.
        let mut after = String::from("00000000-0000-0000-0000-000000000000");
        loop {
            let rows = db
                .query_all_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    format!(
                        "SELECT record_id::text AS id, body FROM search_entry WHERE record_id > $1::uuid \
                         ORDER BY record_id LIMIT {BATCH}"
                    ),
                    [Value::from(after.clone())],
                ))
                .await?;
            let Some(last) = rows.last() else { break };
            after = last.try_get::<String>("", "id")?;
            let mut values = Vec::with_capacity(rows.len() * 2);
            let mut tuples = Vec::with_capacity(rows.len());
            for row in &rows {
                let id: String = row.try_get("", "id")?;
                let body: String = row.try_get("", "body")?;
                tuples.push(format!("(${}::uuid, ${})", values.len() + 1, values.len() + 2));
                values.push(Value::from(id));
                values.push(Value::from(search_words(&body)));
            }
            db.execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                format!(
                    "UPDATE search_entry AS s SET document = to_tsvector('simple', v.words) \
                     FROM (VALUES {}) AS v(id, words) WHERE s.record_id = v.id",
                    tuples.join(", ")
                ),
                values,
            ))
            .await?;
            if rows.len() < BATCH {
                break;
            }
        }
        // Every document changed, so the GIN index's pending list holds them all; each search
        // would scan it until autovacuum merged it (as after a bulk import, see `kith import`).
        db.execute_unprepared("SELECT gin_clean_pending_list('ix_search_entry_document')").await?;
        db.execute_unprepared("ANALYZE search_entry").await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        if db.get_database_backend() == DbBackend::Postgres {
            db.execute_unprepared("UPDATE search_entry SET document = to_tsvector('simple', body)").await?;
        }
        Ok(())
    }
}
