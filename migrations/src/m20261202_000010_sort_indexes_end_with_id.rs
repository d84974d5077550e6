//! Every list pages in keyset order: the sort keys, then `id` as the tie-break (and `id` alone
//! when no order is asked for). An index on the sort keys alone leaves the database sorting each
//! run of equal keys by `id` in a temporary B-tree (SQLite: `USE TEMP B-TREE FOR RIGHT PART OF
//! ORDER BY`), and a filter on a reference (`companyId`) sorting every match. So each index a
//! list can filter or sort by ends with `id`: the page is read in order from the index and
//! stops after `first + 1` rows. The indexes still serve lookups on their leading columns
//! (foreign-key checks included).

use sea_orm_migration::prelude::*;

use crate::columns::{index, index_name};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

/// The indexes of the record tables that lists filter or sort by, without the trailing `id`.
const INDEXES: &[(&str, &[&str])] = &[
    ("company", &["name"]),
    ("company", &["owner_id"]),
    ("contact", &["last_name", "first_name"]),
    ("contact", &["company_id"]),
    ("contact", &["owner_id"]),
    ("contact", &["created_at"]),
    ("contact", &["address_city", "last_name"]),
    ("contact", &["lifecycle_stage"]),
    ("deal", &["pipeline_id", "stage_id"]),
    ("deal", &["contact_id"]),
    ("deal", &["company_id"]),
    ("deal", &["owner_id"]),
    ("ticket", &["status", "priority"]),
    ("ticket", &["contact_id"]),
    ("ticket", &["company_id"]),
    ("ticket", &["assignee_id"]),
    ("ticket", &["created_at"]),
    ("activity", &["contact_id", "occurred_at"]),
    ("activity", &["company_id", "occurred_at"]),
    ("activity", &["deal_id", "occurred_at"]),
    ("activity", &["ticket_id", "occurred_at"]),
    ("activity", &["owner_id", "due_at"]),
];

fn with_id(columns: &[&'static str]) -> Vec<&'static str> {
    columns.iter().copied().chain(["id"]).collect()
}

fn drop(table: &str, columns: &[&str]) -> IndexDropStatement {
    Index::drop().name(index_name(table, columns)).table(Alias::new(table)).to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (table, columns) in INDEXES {
            manager.create_index(index(table, &with_id(columns))).await?;
            manager.drop_index(drop(table, columns)).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (table, columns) in INDEXES {
            manager.create_index(index(table, columns)).await?;
            manager.drop_index(drop(table, &with_id(columns))).await?;
        }
        Ok(())
    }
}
