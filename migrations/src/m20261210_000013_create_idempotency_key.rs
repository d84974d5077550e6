//! `Idempotency-Key`: one row per key a caller sent with a mutation, holding the answer to
//! replay when the same request comes again.
//!
//! - `caller` is the token that sent the key (a key means nothing across callers) and
//!   `client_key` the header's value; together they are unique, which is what lets only one
//!   request, in any Kith process on the database, run under a key.
//! - `fingerprint` is the SHA-256 (hex) of the request body in canonical JSON: the same key
//!   with another body is refused.
//! - `state` is `running` (reserved by a request still executing), `done` (its answer is in
//!   `status` and `response`) or `unknown` (it stopped after a write began: the answer is lost
//!   and the writes may have committed, so the key is never run again).
//! - `expires_at` ends the row: soon after the request's time limit for a `running` row (so a
//!   process that died does not hold the key for ever), the retention (24 hours by default)
//!   for the others. Expired rows are ignored, taken over by a new request with the key and
//!   deleted in batches; the index serves that sweep.
//! - `id` is the reservation: a new one each time a row is (re)taken, so a request only ever
//!   finishes its own.

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
                    .table(Alias::new("idempotency_key"))
                    .col(c.id())
                    .col(c.text_nn("caller"))
                    .col(c.text_nn("client_key"))
                    .col(c.text_nn("fingerprint"))
                    .col(c.text_nn("state"))
                    .col(c.int("status"))
                    .col(c.text("response"))
                    .col(c.ts_nn("created_at"))
                    .col(c.ts_nn("expires_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                index("idempotency_key", &["caller", "client_key"])
                    .name("ux_idempotency_key_caller_client_key")
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager.create_index(index("idempotency_key", &["expires_at"])).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_all(manager, &["idempotency_key"]).await
    }
}
