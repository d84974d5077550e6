//! Plugin delivery by partition: a plugin's events are split by record into partitions
//! (`[delivery] partitions` in its manifest), each with its own cursor, retry state and lease,
//! so several instances and several Kith processes deliver to one plugin at once while each
//! record's events keep their order. `plugin_delivery` (one cursor a plugin) becomes
//! `plugin_delivery_part`; what was there becomes partition 0 of 1, so delivery goes on where
//! it stood.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::ConnectionTrait;

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
                    .table(Alias::new("plugin_delivery_part"))
                    .col(c.text_nn("plugin_id"))
                    // This partition, 0 ≤ part < parts.
                    .col(c.int_nn("part"))
                    // How many partitions the plugin's events are split into.
                    .col(c.int_nn("parts"))
                    .col(c.int_nn("last_seq"))
                    .col(c.int_nn("attempts"))
                    .col(c.ts("next_attempt_at"))
                    .col(c.text("last_error"))
                    .col(c.text("lease_owner"))
                    .col(c.ts("lease_until"))
                    .primary_key(Index::create().col(Alias::new("plugin_id")).col(Alias::new("part")))
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared(
                "INSERT INTO plugin_delivery_part \
                 (plugin_id, part, parts, last_seq, attempts, next_attempt_at, last_error, lease_owner, lease_until) \
                 SELECT plugin_id, 0, 1, last_seq, attempts, next_attempt_at, last_error, lease_owner, lease_until \
                 FROM plugin_delivery",
            )
            .await?;
        drop_all(manager, &["plugin_delivery"]).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let c = Cols::of(manager);
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("plugin_delivery"))
                    .col(ColumnDef::new(Alias::new("plugin_id")).text().not_null().primary_key())
                    .col(c.int_nn("last_seq"))
                    .col(c.int_nn("attempts"))
                    .col(c.ts("next_attempt_at"))
                    .col(c.text("last_error"))
                    .col(c.text("lease_owner"))
                    .col(c.ts("lease_until"))
                    .to_owned(),
            )
            .await?;
        // One cursor a plugin: the slowest partition's (what the others handled past it is
        // delivered again, at least once as always).
        manager
            .get_connection()
            .execute_unprepared(
                "INSERT INTO plugin_delivery (plugin_id, last_seq, attempts) \
                 SELECT plugin_id, MIN(last_seq), 0 FROM plugin_delivery_part GROUP BY plugin_id",
            )
            .await?;
        drop_all(manager, &["plugin_delivery_part"]).await
    }
}
