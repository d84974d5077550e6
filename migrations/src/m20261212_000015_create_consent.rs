//! Personal data: the history of consent, and legal holds.
//!
//! - `consent`: one row per change of a contact's consent, appended and never edited: the
//!   `channel` it is about (`EMAIL`, `PHONE`, `SMS`, `POST`, or `ALL` for do-not-contact), its
//!   `status` (`GRANTED` or `WITHDRAWN`), when it `occurred_at`, how (`source`: a form, an
//!   import, a call), the wording or version of the consent `statement`, and who recorded it
//!   (`recorded_by`, the actor's label). Erasing the person deletes their rows.
//! - `contact.legal_hold`: a contact on legal hold is never erased, by request or by a retention
//!   policy, until the hold is lifted.

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
                    .table(Alias::new("consent"))
                    .col(c.id())
                    .col(c.uuid_nn("contact_id"))
                    .col(c.text_nn("channel"))
                    .col(c.text_nn("status"))
                    .col(c.ts_nn("occurred_at"))
                    .col(c.text("source"))
                    .col(c.text("statement"))
                    .col(c.text_nn("recorded_by"))
                    .col(c.ts_nn("created_at"))
                    .foreign_key(&mut fk("consent", "contact_id", "contact", ForeignKeyAction::Cascade))
                    .to_owned(),
            )
            .await?;
        manager.create_index(index("consent", &["contact_id", "occurred_at", "id"])).await?;
        manager
            .alter_table(
                Table::alter().table(Alias::new("contact")).add_column(c.bool_nn("legal_hold", false)).to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(Table::alter().table(Alias::new("contact")).drop_column(Alias::new("legal_hold")).to_owned())
            .await?;
        drop_all(manager, &["consent"]).await
    }
}
