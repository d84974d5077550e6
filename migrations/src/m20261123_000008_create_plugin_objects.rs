//! Plugin objects: what each plugin's objects look like as materialised now, so the migration
//! planner can tell additive from destructive changes on upgrade, and kept after an uninstall
//! without `--purge` so a reinstall finds its data.

use sea_orm_migration::prelude::*;

use crate::columns::{Cols, drop_all};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let c = Cols::of(manager);
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("plugin_object"))
                    .col(c.text_nn("plugin_id"))
                    .col(c.text_nn("name"))
                    .col(c.text_nn("table_name"))
                    // The object's manifest declaration, as JSON.
                    .col(c.text_nn("definition"))
                    .col(c.ts_nn("created_at"))
                    .col(c.ts_nn("updated_at"))
                    .primary_key(Index::create().col(Alias::new("plugin_id")).col(Alias::new("name")))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_all(manager, &["plugin_object"]).await
    }
}
