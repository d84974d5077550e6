//! Users and API tokens: who may call Kith.

use sea_orm_migration::prelude::*;

use crate::columns::{Cols, drop_all, fk, index};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let c = Cols::of(manager);
        // `user` is a reserved word in PostgreSQL, hence `app_user`.
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("app_user"))
                    .col(c.id())
                    .col(c.text_nn("email"))
                    .col(c.text_nn("name"))
                    .col(c.text_nn("role"))
                    .col(c.text("password_hash"))
                    .col(c.bool_nn("active", true))
                    .col(c.ts_nn("created_at"))
                    .col(c.ts_nn("updated_at"))
                    .col(c.version())
                    .to_owned(),
            )
            .await?;
        // E-mail addresses are unique whatever their case.
        manager
            .get_connection()
            .execute_unprepared("CREATE UNIQUE INDEX ux_app_user_email ON app_user (lower(email))")
            .await?;

        // Only a SHA-256 of a token is stored; `prefix` (the first characters) lets an admin
        // recognise a token in listings without it being usable. `kind` is `api` for tokens an
        // admin creates and `session` for those `login` hands out.
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("api_token"))
                    .col(c.id())
                    .col(c.text_nn("name"))
                    .col(c.text_nn("kind"))
                    .col(c.text_nn("token_hash"))
                    .col(c.text_nn("prefix"))
                    .col(c.text_nn("role"))
                    .col(c.uuid("user_id"))
                    .col(c.ts("expires_at"))
                    .col(c.ts("last_used_at"))
                    .col(c.ts("revoked_at"))
                    .col(c.ts_nn("created_at"))
                    .foreign_key(&mut fk("api_token", "user_id", "app_user", ForeignKeyAction::Cascade))
                    .to_owned(),
            )
            .await?;
        manager.create_index(index("api_token", &["token_hash"]).unique().to_owned()).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_all(manager, &["api_token", "app_user"]).await
    }
}
