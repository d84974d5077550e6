//! Full-text search: one document per searchable record (contacts, companies, deals, tickets),
//! kept in sync by the services in the transaction of each change.
//!
//! SQLite uses an FTS5 table (bm25 ranking); PostgreSQL a `tsvector` column with a GIN index
//! (`ts_rank`). Both use simple, language-neutral tokenisation: CRM data is names and e-mails.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        match manager.get_database_backend() {
            DbBackend::Postgres => {
                db.execute_unprepared(
                    "CREATE TABLE search_entry (\
                       record_id uuid PRIMARY KEY, \
                       object text NOT NULL, \
                       title text NOT NULL, \
                       body text NOT NULL, \
                       document tsvector NOT NULL)",
                )
                .await?;
                db.execute_unprepared("CREATE INDEX ix_search_entry_document ON search_entry USING GIN (document)")
                    .await?;
            }
            _ => {
                // The entries live in a plain table (updated by record id through its unique
                // index); an external-content FTS5 index over `body` follows it via triggers.
                db.execute_unprepared(
                    "CREATE TABLE search_entry (\
                       rowid INTEGER PRIMARY KEY AUTOINCREMENT, \
                       record_id TEXT NOT NULL UNIQUE, \
                       object TEXT NOT NULL, \
                       title TEXT NOT NULL, \
                       body TEXT NOT NULL)",
                )
                .await?;
                db.execute_unprepared(
                    "CREATE VIRTUAL TABLE search_fts USING fts5(body, content = 'search_entry', content_rowid = 'rowid', \
                     tokenize = 'unicode61 remove_diacritics 2')",
                )
                .await?;
                db.execute_unprepared(
                    "CREATE TRIGGER search_entry_ai AFTER INSERT ON search_entry BEGIN \
                       INSERT INTO search_fts (rowid, body) VALUES (new.rowid, new.body); END",
                )
                .await?;
                db.execute_unprepared(
                    "CREATE TRIGGER search_entry_ad AFTER DELETE ON search_entry BEGIN \
                       INSERT INTO search_fts (search_fts, rowid, body) VALUES ('delete', old.rowid, old.body); END",
                )
                .await?;
                db.execute_unprepared(
                    "CREATE TRIGGER search_entry_au AFTER UPDATE ON search_entry BEGIN \
                       INSERT INTO search_fts (search_fts, rowid, body) VALUES ('delete', old.rowid, old.body); \
                       INSERT INTO search_fts (rowid, body) VALUES (new.rowid, new.body); END",
                )
                .await?;
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared("DROP TABLE IF EXISTS search_fts").await?;
        db.execute_unprepared("DROP TABLE IF EXISTS search_entry").await?;
        Ok(())
    }
}
