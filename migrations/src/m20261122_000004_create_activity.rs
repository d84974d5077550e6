//! Activities, custom field definitions and segments.

use sea_orm_migration::prelude::*;

use crate::columns::{Cols, drop_all, fk, index, record_bookkeeping};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let c = Cols::of(manager);

        let mut activity = Table::create()
            .table(Alias::new("activity"))
            .col(c.id())
            .col(c.text_nn("kind"))
            .col(c.text_nn("subject"))
            .col(c.text("body"))
            .col(c.ts_nn("occurred_at"))
            .col(c.ts("due_at"))
            .col(c.ts("completed_at"))
            .col(c.uuid("owner_id"))
            .col(c.uuid("contact_id"))
            .col(c.uuid("company_id"))
            .col(c.uuid("deal_id"))
            .col(c.uuid("ticket_id"))
            .col(c.json_nn("custom_fields"))
            .to_owned();
        record_bookkeeping(c, &mut activity);
        activity
            .foreign_key(&mut fk("activity", "owner_id", "app_user", ForeignKeyAction::SetNull))
            .foreign_key(&mut fk("activity", "contact_id", "contact", ForeignKeyAction::SetNull))
            .foreign_key(&mut fk("activity", "company_id", "company", ForeignKeyAction::SetNull))
            .foreign_key(&mut fk("activity", "deal_id", "deal", ForeignKeyAction::SetNull))
            .foreign_key(&mut fk("activity", "ticket_id", "ticket", ForeignKeyAction::SetNull));
        manager.create_table(activity).await?;
        for cols in [
            &["contact_id", "occurred_at"][..],
            &["company_id", "occurred_at"],
            &["deal_id", "occurred_at"],
            &["ticket_id", "occurred_at"],
            &["owner_id", "due_at"],
        ] {
            manager.create_index(index("activity", cols)).await?;
        }

        // `key` is the API name of the field (camelCase), unique per object.
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("custom_field_def"))
                    .col(c.id())
                    .col(c.text_nn("object"))
                    .col(c.text_nn("key"))
                    .col(c.text_nn("label"))
                    .col(c.text_nn("kind"))
                    .col(c.bool_nn("required", false))
                    .col(c.json_nn("options"))
                    .col(c.int_nn("position"))
                    .col(c.ts_nn("created_at"))
                    .to_owned(),
            )
            .await?;
        manager.create_index(index("custom_field_def", &["object", "key"]).unique().to_owned()).await?;

        let mut segment = Table::create()
            .table(Alias::new("segment"))
            .col(c.id())
            .col(c.text_nn("name"))
            .col(c.text_nn("object"))
            .col(c.json_nn("filter"))
            .col(c.uuid("owner_id"))
            .to_owned();
        record_bookkeeping(c, &mut segment);
        segment.foreign_key(&mut fk("segment", "owner_id", "app_user", ForeignKeyAction::SetNull));
        manager.create_table(segment).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_all(manager, &["segment", "custom_field_def", "activity"]).await
    }
}
