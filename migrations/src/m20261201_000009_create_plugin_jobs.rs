//! Scheduled plugin jobs: one row per declared job (when it runs next, and a lease so that one
//! Kith process at a time runs it) and the history of its runs.

use sea_orm_migration::prelude::*;

use crate::columns::{Cols, drop_all, index};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let c = Cols::of(manager);
        // `next_run_at` is the next scheduled time; a process runs the job only after taking the
        // lease with a conditional UPDATE, so two processes never run it at once.
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("plugin_job"))
                    .col(c.text_nn("plugin_id"))
                    .col(c.text_nn("job"))
                    .col(c.text_nn("schedule"))
                    .col(c.ts("next_run_at"))
                    .col(c.ts("last_run_at"))
                    .col(c.text("lease_owner"))
                    .col(c.ts("lease_until"))
                    .primary_key(Index::create().col(Alias::new("plugin_id")).col(Alias::new("job")))
                    .to_owned(),
            )
            .await?;
        // status: running, succeeded, failed; trigger: schedule, catch-up or manual.
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("plugin_job_run"))
                    .col(c.id())
                    .col(c.text_nn("plugin_id"))
                    .col(c.text_nn("job"))
                    .col(c.text_nn("trigger"))
                    .col(c.ts_nn("scheduled_for"))
                    .col(c.ts_nn("started_at"))
                    .col(c.ts("finished_at"))
                    .col(c.int("duration_ms"))
                    .col(c.text_nn("status"))
                    .col(c.text("error"))
                    .to_owned(),
            )
            .await?;
        manager.create_index(index("plugin_job_run", &["plugin_id", "job", "started_at"])).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_all(manager, &["plugin_job_run", "plugin_job"]).await
    }
}
