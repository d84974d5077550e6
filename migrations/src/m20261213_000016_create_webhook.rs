//! Outbound webhooks.
//!
//! - `webhook`: an endpoint: its `url`, the event types it receives (`events`, JSON text: a list of
//!   `contact.created`, `contact.*` or `*`), an optional `filter` (the filter language of lists,
//!   as JSON text, applied to the record after the change), its signing `secret` and, for a
//!   while after a rotation, the `previous_secret` (valid until `previous_secret_until`);
//!   whether it is `enabled` and why not (`disabled_reason`); its position in the outbox
//!   (`cursor_seq`), since when it has failed without a success (`failing_since`), and a lease
//!   (`lease_owner`, `lease_until`) so one process at a time delivers to it.
//! - `webhook_delivery`: one row per event sent (or to send) to an endpoint. Its `id` is the
//!   `webhook-id` header the receiver sees, the same on every retry. The payload is not stored:
//!   it is read from the outbox (so erasing a person scrubs it there); the row keeps the outcome:
//!   `state` (`pending`, `delivered`, `dead`), `attempts`, the last `status_code`, `latency_ms`,
//!   a `response` excerpt and `error`, `next_attempt_at`, and `retry_until` (when it goes dead).

use sea_orm_migration::prelude::*;

use crate::columns::{Cols, drop_all, fk, index};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let c = Cols::of(manager);
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("webhook"))
                    .col(c.id())
                    .col(c.text_nn("url"))
                    .col(c.text_nn("events"))
                    .col(c.text("filter"))
                    .col(c.text("description"))
                    .col(c.text_nn("secret"))
                    .col(c.text("previous_secret"))
                    .col(c.ts("previous_secret_until"))
                    .col(c.bool_nn("enabled", true))
                    .col(c.text("disabled_reason"))
                    .col(c.int_nn("cursor_seq"))
                    .col(c.ts("failing_since"))
                    .col(c.text("lease_owner"))
                    .col(c.ts("lease_until"))
                    .col(c.ts_nn("created_at"))
                    .col(c.ts_nn("updated_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("webhook_delivery"))
                    .col(c.id())
                    .col(c.uuid_nn("webhook_id"))
                    .col(c.int_nn("seq"))
                    .col(c.uuid_nn("event_id"))
                    .col(c.text_nn("kind"))
                    .col(c.text_nn("state"))
                    .col(c.int_nn("attempts"))
                    .col(c.int("status_code"))
                    .col(c.int("latency_ms"))
                    .col(c.text("response"))
                    .col(c.text("error"))
                    .col(c.ts("next_attempt_at"))
                    .col(c.ts_nn("retry_until"))
                    .col(c.ts("last_attempt_at"))
                    .col(c.ts_nn("created_at"))
                    .foreign_key(&mut fk("webhook_delivery", "webhook_id", "webhook", ForeignKeyAction::Cascade))
                    .to_owned(),
            )
            .await?;
        manager.create_index(index("webhook_delivery", &["webhook_id", "state", "seq"])).await?;
        manager.create_index(index("webhook_delivery", &["webhook_id", "created_at", "id"])).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_all(manager, &["webhook_delivery", "webhook"]).await
    }
}
