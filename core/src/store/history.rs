//! Append-only histories: deal stage changes and ticket events.

use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Order, Query};
use uuid::Uuid;

use crate::domain::value::{FieldKind, Value};
use crate::error::{Error, Result};
use crate::store::Tx;
use crate::store::codec::{decode, encode};

fn id(tx: &Tx, id: Option<Uuid>) -> Result<sea_orm::Value> {
    encode(tx.backend(), &FieldKind::Id, &id.map(Value::Uuid).unwrap_or(Value::Null))
}

/// Records that a deal moved from one stage (none when created) to another.
pub async fn deal_stage(tx: &Tx, deal_id: Uuid, from: Option<Uuid>, to: Uuid) -> Result<()> {
    let mut insert = Query::insert();
    insert
        .into_table(Alias::new("deal_stage_history"))
        .columns(["id", "deal_id", "from_stage_id", "to_stage_id", "changed_at", "changed_by"].map(Alias::new))
        .values(
            [
                id(tx, Some(Uuid::now_v7()))?,
                id(tx, Some(deal_id))?,
                id(tx, from)?,
                id(tx, Some(to))?,
                encode(tx.backend(), &FieldKind::DateTime, &Value::DateTime(tx.now))?,
                tx.actor.label().into(),
            ]
            .into_iter()
            .map(Expr::val),
        )
        .map_err(|e| Error::internal(format!("history insert: {e}")))?;
    tx.conn().execute(&insert).await?;
    Ok(())
}

/// Records something that happened to a ticket.
pub async fn ticket_event(tx: &Tx, ticket_id: Uuid, kind: &str, from: Option<&str>, to: Option<&str>) -> Result<()> {
    let text = |s: Option<&str>| {
        encode(tx.backend(), &FieldKind::Text, &s.map(|s| Value::Text(s.to_owned())).unwrap_or(Value::Null))
    };
    let mut insert = Query::insert();
    insert
        .into_table(Alias::new("ticket_event"))
        .columns(["id", "ticket_id", "kind", "from_value", "to_value", "actor", "occurred_at"].map(Alias::new))
        .values(
            [
                id(tx, Some(Uuid::now_v7()))?,
                id(tx, Some(ticket_id))?,
                kind.into(),
                text(from)?,
                text(to)?,
                tx.actor.label().into(),
                encode(tx.backend(), &FieldKind::DateTime, &Value::DateTime(tx.now))?,
            ]
            .into_iter()
            .map(Expr::val),
        )
        .map_err(|e| Error::internal(format!("ticket event insert: {e}")))?;
    tx.conn().execute(&insert).await?;
    Ok(())
}

/// One history row.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryRow {
    /// The deal or ticket.
    pub record_id: Uuid,
    /// `stage_changed` for deals; the ticket event kind for tickets.
    pub kind: String,
    /// Previous value (stage id or status).
    pub from: Option<String>,
    /// New value.
    pub to: Option<String>,
    /// Who.
    pub actor: String,
    /// When.
    pub at: Value,
}

/// Stage history of the given deals, oldest first.
pub async fn deal_stages<C: ConnectionTrait>(db: &C, deal_ids: &[Uuid]) -> Result<Vec<HistoryRow>> {
    read(
        db,
        "deal_stage_history",
        "deal_id",
        &["from_stage_id", "to_stage_id", "changed_by", "changed_at"],
        deal_ids,
        true,
    )
    .await
}

/// Events of the given tickets, oldest first.
pub async fn ticket_events<C: ConnectionTrait>(db: &C, ticket_ids: &[Uuid]) -> Result<Vec<HistoryRow>> {
    read(db, "ticket_event", "ticket_id", &["from_value", "to_value", "actor", "occurred_at"], ticket_ids, false).await
}

async fn read<C: ConnectionTrait>(
    db: &C,
    table: &str,
    key: &str,
    cols: &[&str; 4],
    ids: &[Uuid],
    deal: bool,
) -> Result<Vec<HistoryRow>> {
    let backend = db.get_database_backend();
    let mut out = Vec::new();
    for chunk in ids.chunks(500) {
        let mut select = Query::select();
        select.from(Alias::new(table)).column(Alias::new(key));
        select.column(Alias::new(if deal { "id" } else { "kind" }));
        for col in cols {
            select.column(Alias::new(*col));
        }
        let values =
            chunk.iter().map(|id| encode(backend, &FieldKind::Id, &Value::Uuid(*id))).collect::<Result<Vec<_>>>()?;
        select
            .and_where(Expr::col(Alias::new(key)).is_in(values))
            .order_by(Alias::new(cols[3]), Order::Asc)
            .order_by(Alias::new("id"), Order::Asc);
        for row in db.query_all(&select).await? {
            let (from, to) = if deal {
                (
                    decode(backend, &FieldKind::Id, &row, 2)?.as_uuid().map(|u| u.to_string()),
                    decode(backend, &FieldKind::Id, &row, 3)?.as_uuid().map(|u| u.to_string()),
                )
            } else {
                (row.try_get_by_index(2)?, row.try_get_by_index(3)?)
            };
            out.push(HistoryRow {
                record_id: decode(backend, &FieldKind::Id, &row, 0)?.as_uuid().unwrap_or_default(),
                kind: if deal { "stage_changed".to_owned() } else { row.try_get_by_index(1)? },
                from,
                to,
                actor: row.try_get_by_index(4)?,
                at: decode(backend, &FieldKind::DateTime, &row, 5)?,
            });
        }
    }
    Ok(out)
}
