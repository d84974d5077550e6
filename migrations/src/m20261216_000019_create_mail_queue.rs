//! E-mail (`kith:plugin/mail`, `[mail]`).
//!
//! - `mail_message`: one row per message to one recipient, queued in the sender's transaction.
//!   `message` is the whole RFC 5322 message as built at queueing time (headers with the
//!   `Message-ID` and `Date` included), so a retry after a crash sends the same bytes; `sender`
//!   and `recipient` are the SMTP envelope. `plugin_id` is the plugin that queued it (its
//!   outcome events go to that plugin), `reference` the plugin's own. `state`: `queued`, `sent`
//!   or `failed`; `attempts`, `next_attempt_at` and `last_error` for retries; a lease
//!   (`lease_owner`, `lease_until`) so one process sends a message at a time.
//! - `plugin.link_key`: the key that signs a plugin's links (`kith:plugin/links`), made at its
//!   first use; the plugin never sees it.
//! - `event_outbox.audience`: an event meant for one plugin only (a message's `mail.sent` goes
//!   to the plugin that sent it); webhooks and subscriptions never see such events.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::ConnectionTrait;

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
                    .table(Alias::new("mail_message"))
                    .col(c.id())
                    .col(c.text_nn("plugin_id"))
                    .col(c.text_nn("message_id"))
                    .col(c.text_nn("sender"))
                    .col(c.text_nn("recipient"))
                    .col(c.text_nn("subject"))
                    .col(c.text_nn("message"))
                    .col(c.text("reference"))
                    .col(c.text_nn("state"))
                    .col(c.int_nn("attempts"))
                    .col(c.ts_nn("next_attempt_at"))
                    .col(c.text("last_error"))
                    .col(c.text("lease_owner"))
                    .col(c.ts("lease_until"))
                    .col(c.ts_nn("created_at"))
                    .col(c.ts("sent_at"))
                    .to_owned(),
            )
            .await?;
        manager.create_index(index("mail_message", &["state", "next_attempt_at"])).await?;
        manager.create_index(index("mail_message", &["plugin_id", "created_at", "id"])).await?;
        manager.create_index(index("mail_message", &["message_id"]).unique().to_owned()).await?;
        manager
            .alter_table(Table::alter().table(Alias::new("event_outbox")).add_column(c.text("audience")).to_owned())
            .await?;
        manager
            .alter_table(Table::alter().table(Alias::new("plugin")).add_column(c.text("link_key")).to_owned())
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_all(manager, &["mail_message"]).await?;
        let db = manager.get_connection();
        // Events meant for one plugin would reach everyone without the column: they go too.
        db.execute_unprepared("DELETE FROM event_outbox WHERE audience IS NOT NULL").await?;
        db.execute_unprepared("ALTER TABLE event_outbox DROP COLUMN audience").await?;
        db.execute_unprepared("ALTER TABLE plugin DROP COLUMN link_key").await?;
        Ok(())
    }
}
