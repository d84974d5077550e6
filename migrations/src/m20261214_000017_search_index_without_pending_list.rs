//! PostgreSQL's full-text index stops collecting new entries in a pending list.
//!
//! A GIN index with `fastupdate` (the default) appends new entries to an unsorted pending list,
//! merged into the index by `VACUUM` (autovacuum) or once it outgrows `gin_pending_list_limit`
//! (4 MB). Every search reads the whole list: after ~100,000 `createContact` calls with
//! autovacuum off (or behind), the rare-word search fell from 2,546 to 870 requests/s, and one
//! query took 1.8-4.6 ms against 0.3 ms once the list was merged. Without the list each create
//! writes its entry into the index directly; measured side by side, creates lost about 5%.
//! SQLite's FTS5 index has no such list: nothing to do there.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        if db.get_database_backend() == DbBackend::Postgres {
            db.execute_unprepared("ALTER INDEX ix_search_entry_document SET (fastupdate = off)").await?;
            // What the list holds now goes into the index.
            db.execute_unprepared("SELECT gin_clean_pending_list('ix_search_entry_document'::regclass)").await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        if db.get_database_backend() == DbBackend::Postgres {
            db.execute_unprepared("ALTER INDEX ix_search_entry_document RESET (fastupdate)").await?;
        }
        Ok(())
    }
}
