//! `import_run`: one row per CSV import started through the API (`startImport`), so whoever
//! started it, from any Kith process on the database, can follow its progress and read what
//! it rejected once it is over.
//!
//! - `object` is what was imported, as the CLI names it (`contacts`, `companies`, or a plugin's
//!   `donations`); `file_name` the uploaded file's name, for people.
//! - `owner` is the id of the actor that started it (a user or token): runs are theirs to read
//!   (an ADMIN reads every run).
//! - `state` is `running`, `done` or `failed` (`error` says why). A `running` row whose
//!   `updated_at` is old belongs to a process that stopped: readers report it as failed.
//! - `total` is the file's number of data rows; `rows`, `created`, `updated`, `skipped` count data rows as the import goes (updated after
//!   each batch); `rejected` is a JSON list of `{line, reason, cells}` and `header` the file's
//!   header row, so the rejected rows can be handed back as a CSV with their reasons.

use sea_orm_migration::prelude::*;

use crate::columns::{Cols, drop_all, index};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let c = Cols::of(manager);
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("import_run"))
                    .col(c.id())
                    .col(c.text_nn("object"))
                    .col(c.text_nn("file_name"))
                    .col(c.text_nn("owner"))
                    .col(c.text_nn("state"))
                    .col(c.int_nn("total"))
                    .col(c.int_nn("rows"))
                    .col(c.int_nn("created"))
                    .col(c.int_nn("updated"))
                    .col(c.int_nn("skipped"))
                    .col(c.int_nn("rejected_count"))
                    .col(c.text_nn("header"))
                    .col(c.text_nn("rejected"))
                    .col(c.text_nn("ignored_columns"))
                    .col(c.text("error"))
                    .col(c.ts_nn("created_at"))
                    .col(c.ts_nn("updated_at"))
                    .col(c.ts("finished_at"))
                    .to_owned(),
            )
            .await?;
        manager.create_index(index("import_run", &["owner", "created_at"])).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_all(manager, &["import_run"]).await
    }
}
