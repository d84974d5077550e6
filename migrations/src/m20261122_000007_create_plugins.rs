//! Plugins: what is installed and granted, their components, key–value stores, delivery
//! cursors and dead letters; and the causation depth of every event.

use sea_orm_migration::prelude::*;

use crate::columns::{Cols, drop_all, index};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

fn blob(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name)).blob().not_null().to_owned()
}

fn text_pk(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name)).text().not_null().primary_key().to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let c = Cols::of(manager);
        // How many plugin writes led to the event (0 = a person or Kith itself): a chain of
        // plugins reacting to each other's writes is cut off at a fixed depth.
        manager
            .alter_table(
                Table::alter()
                    .table(Alias::new("event_outbox"))
                    .add_column(ColumnDef::new(Alias::new("depth")).integer().not_null().default(0))
                    .to_owned(),
            )
            .await?;

        // Components are stored in the database so that every Kith process on it can load them.
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("plugin_component"))
                    .col(text_pk("hash"))
                    .col(blob("bytes"))
                    .col(c.ts_nn("created_at"))
                    .to_owned(),
            )
            .await?;

        // `generation` grows on every change so that each process knows when to reload.
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("plugin"))
                    .col(text_pk("id"))
                    .col(c.text_nn("name"))
                    .col(c.text_nn("version"))
                    .col(c.text_nn("sdk_version"))
                    .col(c.text_nn("manifest"))
                    .col(c.text_nn("component_hash"))
                    .col(c.bool_nn("enabled", false))
                    .col(c.json_nn("grants"))
                    .col(c.json_nn("settings"))
                    .col(c.text_nn("status"))
                    .col(c.text("last_error"))
                    .col(c.int_nn("consecutive_failures"))
                    .col(c.int_nn("delivered"))
                    .col(c.int_nn("failures"))
                    .col(c.int_nn("dead_letters"))
                    .col(c.int_nn("denied_calls"))
                    .col(c.int_nn("generation"))
                    .col(c.ts_nn("installed_at"))
                    .col(c.ts_nn("updated_at"))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Alias::new("plugin_kv"))
                    .col(c.text_nn("plugin_id"))
                    .col(c.text_nn("key"))
                    .col(blob("value"))
                    .col(c.ts_nn("updated_at"))
                    .primary_key(Index::create().col(Alias::new("plugin_id")).col(Alias::new("key")))
                    .to_owned(),
            )
            .await?;

        // One row per enabled plugin: the last outbox position it handled, the retry state of
        // the next event, and a lease so that one process at a time delivers to a plugin.
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("plugin_delivery"))
                    .col(text_pk("plugin_id"))
                    .col(c.int_nn("last_seq"))
                    .col(c.int_nn("attempts"))
                    .col(c.ts("next_attempt_at"))
                    .col(c.text("last_error"))
                    .col(c.text("lease_owner"))
                    .col(c.ts("lease_until"))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Alias::new("plugin_dead_letter"))
                    .col(c.id())
                    .col(c.text_nn("plugin_id"))
                    .col(c.int_nn("seq"))
                    .col(c.uuid_nn("event_id"))
                    .col(c.text_nn("kind"))
                    .col(c.int_nn("attempts"))
                    .col(c.text_nn("error"))
                    .col(c.ts_nn("failed_at"))
                    .col(c.ts("replayed_at"))
                    .to_owned(),
            )
            .await?;
        manager.create_index(index("plugin_dead_letter", &["plugin_id", "seq"])).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_all(manager, &["plugin_dead_letter", "plugin_delivery", "plugin_kv", "plugin", "plugin_component"])
            .await?;
        manager
            .alter_table(Table::alter().table(Alias::new("event_outbox")).drop_column(Alias::new("depth")).to_owned())
            .await
    }
}
