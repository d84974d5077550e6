//! Companies, contacts, tags, pipelines, stages, deals and the deal stage history.

use sea_orm_migration::prelude::*;

use crate::columns::{Cols, address, drop_all, fk, index, record_bookkeeping};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let c = Cols::of(manager);
        let db = manager.get_connection();

        let mut company = Table::create()
            .table(Alias::new("company"))
            .col(c.id())
            .col(c.text_nn("name"))
            .col(c.text("domain"))
            .col(c.text("industry"))
            .col(c.int("employees"))
            .col(c.money("annual_revenue"))
            .col(c.uuid("owner_id"))
            .col(c.json_nn("custom_fields"))
            .to_owned();
        address(c, &mut company);
        record_bookkeeping(c, &mut company);
        company.foreign_key(&mut fk("company", "owner_id", "app_user", ForeignKeyAction::SetNull));
        manager.create_table(company).await?;
        // Unique among live records only: a soft-deleted company does not block its domain, and
        // restoring it re-checks the constraint.
        db.execute_unprepared(
            "CREATE UNIQUE INDEX ux_company_domain ON company (lower(domain)) \
             WHERE domain IS NOT NULL AND deleted_at IS NULL",
        )
        .await?;
        manager.create_index(index("company", &["name"])).await?;
        manager.create_index(index("company", &["owner_id"])).await?;

        let mut contact = Table::create()
            .table(Alias::new("contact"))
            .col(c.id())
            .col(c.text("first_name"))
            .col(c.text("last_name"))
            .col(c.text("email"))
            .col(c.text("phone"))
            .col(c.text("job_title"))
            .col(c.date("birthday"))
            .col(c.uuid("company_id"))
            .col(c.uuid("owner_id"))
            .col(c.text_nn("lifecycle_stage"))
            .col(c.bool_nn("email_opt_in", false))
            .col(c.ts("email_opt_in_at"))
            .col(c.text("email_opt_in_source"))
            .col(c.bool_nn("do_not_contact", false))
            .col(c.text("source"))
            .col(c.json_nn("custom_fields"))
            .to_owned();
        address(c, &mut contact);
        record_bookkeeping(c, &mut contact);
        contact
            .foreign_key(&mut fk("contact", "company_id", "company", ForeignKeyAction::SetNull))
            .foreign_key(&mut fk("contact", "owner_id", "app_user", ForeignKeyAction::SetNull));
        manager.create_table(contact).await?;
        db.execute_unprepared(
            "CREATE UNIQUE INDEX ux_contact_email ON contact (lower(email)) \
             WHERE email IS NOT NULL AND deleted_at IS NULL",
        )
        .await?;
        for cols in [
            &["last_name", "first_name"][..],
            &["company_id"],
            &["owner_id"],
            &["created_at"],
            &["address_city", "last_name"],
            &["lifecycle_stage"],
        ] {
            manager.create_index(index("contact", cols)).await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(Alias::new("tag"))
                    .col(c.id())
                    .col(c.text_nn("name"))
                    .col(c.ts_nn("created_at"))
                    .to_owned(),
            )
            .await?;
        db.execute_unprepared("CREATE UNIQUE INDEX ux_tag_name ON tag (lower(name))").await?;
        // Tags attach to any record; ids are UUIDv7 and unique across tables, `object` says
        // which table the record lives in.
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("record_tag"))
                    .col(c.text_nn("object"))
                    .col(c.uuid_nn("record_id"))
                    .col(c.uuid_nn("tag_id"))
                    .primary_key(Index::create().col(Alias::new("record_id")).col(Alias::new("tag_id")))
                    .foreign_key(&mut fk("record_tag", "tag_id", "tag", ForeignKeyAction::Cascade))
                    .to_owned(),
            )
            .await?;
        manager.create_index(index("record_tag", &["tag_id"])).await?;

        let mut pipeline = Table::create()
            .table(Alias::new("pipeline"))
            .col(c.id())
            .col(c.text_nn("name"))
            .col(c.text_nn("currency"))
            .to_owned();
        record_bookkeeping(c, &mut pipeline);
        manager.create_table(pipeline).await?;

        let mut stage = Table::create()
            .table(Alias::new("stage"))
            .col(c.id())
            .col(c.uuid_nn("pipeline_id"))
            .col(c.text_nn("name"))
            .col(c.int_nn("position"))
            .col(c.int_nn("probability"))
            .col(c.text_nn("kind"))
            .to_owned();
        record_bookkeeping(c, &mut stage);
        stage.foreign_key(&mut fk("stage", "pipeline_id", "pipeline", ForeignKeyAction::Cascade));
        manager.create_table(stage).await?;
        manager.create_index(index("stage", &["pipeline_id", "position"])).await?;

        let mut deal = Table::create()
            .table(Alias::new("deal"))
            .col(c.id())
            .col(c.text_nn("title"))
            .col(c.money("amount"))
            .col(c.text_nn("currency"))
            .col(c.uuid_nn("pipeline_id"))
            .col(c.uuid_nn("stage_id"))
            .col(c.uuid("contact_id"))
            .col(c.uuid("company_id"))
            .col(c.uuid("owner_id"))
            .col(c.date("expected_close_date"))
            .col(c.ts("closed_at"))
            .col(c.text("lost_reason"))
            .col(c.ts_nn("stage_changed_at"))
            .col(c.json_nn("custom_fields"))
            .to_owned();
        record_bookkeeping(c, &mut deal);
        deal.foreign_key(&mut fk("deal", "pipeline_id", "pipeline", ForeignKeyAction::Restrict))
            .foreign_key(&mut fk("deal", "stage_id", "stage", ForeignKeyAction::Restrict))
            .foreign_key(&mut fk("deal", "contact_id", "contact", ForeignKeyAction::SetNull))
            .foreign_key(&mut fk("deal", "company_id", "company", ForeignKeyAction::SetNull))
            .foreign_key(&mut fk("deal", "owner_id", "app_user", ForeignKeyAction::SetNull));
        manager.create_table(deal).await?;
        for cols in [&["pipeline_id", "stage_id"][..], &["contact_id"], &["company_id"], &["owner_id"]] {
            manager.create_index(index("deal", cols)).await?;
        }

        // One row per stage change, never updated: the raw material of forecasts.
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("deal_stage_history"))
                    .col(c.id())
                    .col(c.uuid_nn("deal_id"))
                    .col(c.uuid("from_stage_id"))
                    .col(c.uuid_nn("to_stage_id"))
                    .col(c.ts_nn("changed_at"))
                    .col(c.text_nn("changed_by"))
                    .foreign_key(&mut fk("deal_stage_history", "deal_id", "deal", ForeignKeyAction::Cascade))
                    .to_owned(),
            )
            .await?;
        manager.create_index(index("deal_stage_history", &["deal_id", "changed_at"])).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_all(
            manager,
            &["deal_stage_history", "deal", "stage", "pipeline", "record_tag", "tag", "contact", "company"],
        )
        .await
    }
}
