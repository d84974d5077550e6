//! `contact.time_zone`: a contact's IANA time zone (`Europe/Paris`), for what waits for a local
//! time of day (a sequence step sending at 09:00 where the person is).

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::ConnectionTrait;

use crate::columns::Cols;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let c = Cols::of(manager);
        manager
            .alter_table(Table::alter().table(Alias::new("contact")).add_column(c.text("time_zone")).to_owned())
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.get_connection().execute_unprepared("ALTER TABLE contact DROP COLUMN time_zone").await?;
        Ok(())
    }
}
