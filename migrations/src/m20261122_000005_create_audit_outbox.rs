//! The audit log and the event outbox, both written in the same transaction as the change
//! they describe.

use sea_orm_migration::prelude::*;

use crate::columns::{Cols, drop_all, index};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let c = Cols::of(manager);
        // `actor_kind` is `user`, `token`, `plugin` or `system`; `changes` maps each changed
        // field to `{"before": .., "after": ..}`.
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("audit_log"))
                    .col(c.id())
                    .col(c.ts_nn("occurred_at"))
                    .col(c.text_nn("actor_kind"))
                    .col(c.text("actor_id"))
                    .col(c.text_nn("actor_name"))
                    .col(c.text_nn("action"))
                    .col(c.text_nn("object"))
                    .col(c.uuid("record_id"))
                    .col(c.json_nn("changes"))
                    .to_owned(),
            )
            .await?;
        manager.create_index(index("audit_log", &["object", "record_id", "occurred_at"])).await?;

        // `seq` gives the global order consumers read in; `origin_plugin` names the plugin
        // whose write caused the event, so a plugin is never fed its own events in a loop.
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("event_outbox"))
                    .col(ColumnDef::new(Alias::new("seq")).big_integer().not_null().auto_increment().primary_key())
                    .col(c.uuid_nn("event_id"))
                    .col(c.text_nn("kind"))
                    .col(c.text_nn("object"))
                    .col(c.uuid("record_id"))
                    .col(c.json_nn("payload"))
                    .col(c.text_nn("actor"))
                    .col(c.text("origin_plugin"))
                    .col(c.ts_nn("occurred_at"))
                    .to_owned(),
            )
            .await?;
        manager.create_index(index("event_outbox", &["record_id", "seq"])).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_all(manager, &["event_outbox", "audit_log"]).await
    }
}
