//! Tickets, their comments and events, SLA policies and the counter behind ticket numbers.

use sea_orm_migration::prelude::*;

use crate::columns::{Cols, drop_all, fk, index, record_bookkeeping};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let c = Cols::of(manager);
        let db = manager.get_connection();

        // Named counters, incremented with `UPDATE .. SET value = value + 1` inside the
        // transaction that uses the value: the row lock makes numbers sequential and unique
        // across every Kith process sharing the database.
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("counter"))
                    .col(ColumnDef::new(Alias::new("name")).text().not_null().primary_key())
                    .col(c.int_nn("value"))
                    .to_owned(),
            )
            .await?;
        db.execute_unprepared("INSERT INTO counter (name, value) VALUES ('ticket_number', 1000)").await?;

        // Minutes to first response and to resolution, per priority.
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("sla_policy"))
                    .col(ColumnDef::new(Alias::new("priority")).text().not_null().primary_key())
                    .col(c.int_nn("first_response_minutes"))
                    .col(c.int_nn("resolution_minutes"))
                    .to_owned(),
            )
            .await?;
        db.execute_unprepared(
            "INSERT INTO sla_policy (priority, first_response_minutes, resolution_minutes) VALUES \
             ('URGENT', 60, 240), ('HIGH', 240, 1440), ('NORMAL', 480, 2880), ('LOW', 1440, 7200)",
        )
        .await?;

        let mut ticket = Table::create()
            .table(Alias::new("ticket"))
            .col(c.id())
            .col(c.int_nn("number"))
            .col(c.text_nn("subject"))
            .col(c.text("description"))
            .col(c.text_nn("status"))
            .col(c.text_nn("priority"))
            .col(c.text_nn("channel"))
            .col(c.uuid("contact_id"))
            .col(c.uuid("company_id"))
            .col(c.uuid("assignee_id"))
            .col(c.text("queue"))
            .col(c.ts("first_response_due_at"))
            .col(c.ts("resolution_due_at"))
            .col(c.ts("first_responded_at"))
            .col(c.ts("solved_at"))
            .col(c.int("satisfaction_rating"))
            .col(c.text("satisfaction_comment"))
            .col(c.json_nn("custom_fields"))
            .to_owned();
        record_bookkeeping(c, &mut ticket);
        ticket
            .foreign_key(&mut fk("ticket", "contact_id", "contact", ForeignKeyAction::SetNull))
            .foreign_key(&mut fk("ticket", "company_id", "company", ForeignKeyAction::SetNull))
            .foreign_key(&mut fk("ticket", "assignee_id", "app_user", ForeignKeyAction::SetNull));
        manager.create_table(ticket).await?;
        manager.create_index(index("ticket", &["number"]).unique().to_owned()).await?;
        for cols in [&["status", "priority"][..], &["contact_id"], &["company_id"], &["assignee_id"], &["created_at"]] {
            manager.create_index(index("ticket", cols)).await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(Alias::new("ticket_comment"))
                    .col(c.id())
                    .col(c.uuid_nn("ticket_id"))
                    .col(c.text_nn("body"))
                    .col(c.bool_nn("public", true))
                    .col(c.uuid("author_id"))
                    .col(c.text_nn("author"))
                    .col(c.ts_nn("created_at"))
                    .foreign_key(&mut fk("ticket_comment", "ticket_id", "ticket", ForeignKeyAction::Cascade))
                    .to_owned(),
            )
            .await?;
        manager.create_index(index("ticket_comment", &["ticket_id", "created_at"])).await?;

        // What happened to a ticket (created, status changed, assigned, commented, rated), for
        // its timeline and for reports.
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("ticket_event"))
                    .col(c.id())
                    .col(c.uuid_nn("ticket_id"))
                    .col(c.text_nn("kind"))
                    .col(c.text("from_value"))
                    .col(c.text("to_value"))
                    .col(c.text_nn("actor"))
                    .col(c.ts_nn("occurred_at"))
                    .foreign_key(&mut fk("ticket_event", "ticket_id", "ticket", ForeignKeyAction::Cascade))
                    .to_owned(),
            )
            .await?;
        manager.create_index(index("ticket_event", &["ticket_id", "occurred_at"])).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_all(manager, &["ticket_event", "ticket_comment", "ticket", "sla_policy", "counter"]).await
    }
}
