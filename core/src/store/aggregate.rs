//! Aggregates over one object's live records: count, sum, min and max, grouped by fields or by
//! date buckets, computed by the database (the plugin host's `aggregate`).

use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query, SimpleExpr};
use sea_orm::{ConnectionTrait, DbBackend};

use crate::domain::DomainError;
use crate::domain::filter::Filter;
use crate::domain::object::{FieldDef, ObjectDef};
use crate::domain::value::{FieldKind, Value};
use crate::error::Result;
use crate::store::codec::decode;

/// What to compute per group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// Records in the group.
    Count,
    /// Sum of a numeric field (exact).
    Sum,
    /// Smallest value.
    Min,
    /// Largest value.
    Max,
    /// Number of different values.
    CountDistinct,
}

/// A metric, on a field (none for `Count`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metric {
    /// What.
    pub kind: MetricKind,
    /// Of which field.
    pub field: Option<String>,
}

/// Date buckets (weeks start on Monday; UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    /// Calendar day.
    Day,
    /// ISO week, by its Monday.
    Week,
    /// Calendar month, by its first day.
    Month,
    /// Calendar year, by January 1st.
    Year,
}

/// A grouping key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupBy {
    /// The field.
    pub field: String,
    /// Bucket a date or datetime field.
    pub bucket: Option<Bucket>,
}

/// One group: its keys, then its metrics, in request order.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Group keys (a bucket's key is the text of its first day, `2026-03-01`).
    pub keys: Vec<Value>,
    /// Metric values.
    pub values: Vec<Value>,
}

/// Most groups one query may return.
pub const MAX_GROUPS: u32 = 100_000;

fn field<'a>(object: &'a ObjectDef, name: &str, what: &str) -> Result<&'a FieldDef> {
    object
        .field_def(name)
        .ok_or_else(|| DomainError::invalid(what, format!("`{name}` is not a field of {}", object.name)).into())
}

fn bucket_sql(backend: DbBackend, column: &str, kind: &FieldKind, bucket: Bucket) -> String {
    match backend {
        DbBackend::Postgres => {
            let unit = match bucket {
                Bucket::Day => "day",
                Bucket::Week => "week",
                Bucket::Month => "month",
                Bucket::Year => "year",
            };
            let instant = if *kind == FieldKind::DateTime {
                format!("({column} AT TIME ZONE 'UTC')")
            } else {
                format!("{column}::timestamp")
            };
            format!("to_char(date_trunc('{unit}', {instant}), 'YYYY-MM-DD')")
        }
        // Dates and timestamps are fixed-width ISO text on SQLite.
        _ => match bucket {
            Bucket::Day => format!("substr({column}, 1, 10)"),
            Bucket::Month => format!("(substr({column}, 1, 7) || '-01')"),
            Bucket::Year => format!("(substr({column}, 1, 4) || '-01-01')"),
            Bucket::Week => format!(
                "date(substr({column}, 1, 10), '-' || ((CAST(strftime('%w', substr({column}, 1, 10)) AS INTEGER) + 6) % 7) || ' days')"
            ),
        },
    }
}

/// Computes `metrics` over the live records of `object` matching `filter`, grouped by
/// `group_by`, ordered by the keys (missing keys first) or by metric `order.0` (descending
/// when `order.1`), at most `limit` groups.
pub async fn aggregate<C: ConnectionTrait>(
    db: &C,
    object: &ObjectDef,
    filter: &Filter,
    group_by: &[GroupBy],
    metrics: &[Metric],
    limit: u32,
    order: Option<(usize, bool)>,
) -> Result<Vec<Row>> {
    if group_by.len() > 3 {
        return Err(DomainError::invalid("group-by", "at most 3 keys").into());
    }
    if metrics.is_empty() || metrics.len() > 10 {
        return Err(DomainError::invalid("metrics", "ask for 1 to 10 metrics").into());
    }
    if !(1..=MAX_GROUPS).contains(&limit) {
        return Err(DomainError::invalid("limit", format!("must be between 1 and {MAX_GROUPS}")).into());
    }
    let backend = db.get_database_backend();
    let mut select = Query::select();
    select.from(Alias::new(object.table.as_str()));
    let mut key_kinds = Vec::new();
    for (i, group) in group_by.iter().enumerate() {
        let def = field(object, &group.field, "group-by")?;
        let (expr, kind) = match group.bucket {
            Some(bucket) => {
                if !matches!(def.kind, FieldKind::Date | FieldKind::DateTime) {
                    return Err(
                        DomainError::invalid("group-by", format!("`{}` is not a date to bucket", def.name)).into()
                    );
                }
                (bucket_sql(backend, &def.column, &def.kind, bucket), FieldKind::Text)
            }
            None => {
                if def.kind == FieldKind::Json {
                    return Err(DomainError::invalid(
                        "group-by",
                        format!("cannot group by the JSON field `{}`", def.name),
                    )
                    .into());
                }
                (def.column.clone(), def.kind.clone())
            }
        };
        select.expr_as(Expr::cust(expr.clone()), Alias::new(format!("k{i}")));
        select.add_group_by([SimpleExpr::from(Expr::cust(expr))]);
        key_kinds.push(kind);
    }
    let mut value_kinds = Vec::new();
    for metric in metrics {
        let (sql, kind) = match (metric.kind, &metric.field) {
            (MetricKind::Count, None) => ("COUNT(*)".to_owned(), FieldKind::Int),
            (MetricKind::Count, Some(name)) => {
                let def = field(object, name, "metrics")?;
                (format!("COUNT({})", def.column), FieldKind::Int)
            }
            (MetricKind::CountDistinct, Some(name)) => {
                let def = field(object, name, "metrics")?;
                (format!("COUNT(DISTINCT {})", def.column), FieldKind::Int)
            }
            (_, None) => {
                return Err(DomainError::invalid("metrics", "count-distinct, sum, min and max name a field").into());
            }
            (kind, Some(name)) => {
                let def = field(object, name, "metrics")?;
                let function = match kind {
                    MetricKind::Sum => {
                        if !matches!(def.kind, FieldKind::Int | FieldKind::Decimal) {
                            return Err(
                                DomainError::invalid("metrics", format!("`{name}` is not a number to sum")).into()
                            );
                        }
                        "SUM"
                    }
                    MetricKind::Min => "MIN",
                    _ => "MAX",
                };
                if matches!(def.kind, FieldKind::Json | FieldKind::Bool) {
                    return Err(DomainError::invalid("metrics", format!("`{name}` has no order")).into());
                }
                (format!("{function}({})", def.column), def.kind.clone())
            }
        };
        select.expr_as(Expr::cust(sql), Alias::new(format!("v{}", value_kinds.len())));
        value_kinds.push(kind);
    }
    let live = if object.soft_delete { Some(Expr::col(Alias::new("deleted_at")).is_null()) } else { None };
    let mut cond = sea_orm::sea_query::Cond::all().add(crate::store::query::condition(backend, object, filter)?);
    if let Some(live) = live {
        cond = cond.add(live);
    }
    select.cond_where(cond);
    if let Some((metric, descending)) = order {
        if metric >= metrics.len() {
            return Err(DomainError::invalid("order", format!("there is no metric {metric}")).into());
        }
        select.order_by_with_nulls(
            Alias::new(format!("v{metric}")),
            if descending { sea_orm::sea_query::Order::Desc } else { sea_orm::sea_query::Order::Asc },
            sea_orm::sea_query::NullOrdering::Last,
        );
    }
    // The same order on both databases: missing keys first.
    for i in 0..group_by.len() {
        select.order_by_with_nulls(
            Alias::new(format!("k{i}")),
            sea_orm::sea_query::Order::Asc,
            sea_orm::sea_query::NullOrdering::First,
        );
    }
    let rows = db.query_all_raw(crate::store::query::with_limit(backend, &select, u64::from(limit))).await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let mut keys = Vec::with_capacity(key_kinds.len());
        for (i, kind) in key_kinds.iter().enumerate() {
            keys.push(decode(backend, kind, row, i)?);
        }
        let mut values = Vec::with_capacity(value_kinds.len());
        for (j, kind) in value_kinds.iter().enumerate() {
            values.push(decode_metric(backend, kind, row, key_kinds.len() + j)?);
        }
        out.push(Row { keys, values });
    }
    Ok(out)
}

/// Sums come back wider than the column on PostgreSQL (`numeric` for bigint sums).
fn decode_metric(backend: DbBackend, kind: &FieldKind, row: &sea_orm::QueryResult, idx: usize) -> Result<Value> {
    if backend == DbBackend::Postgres && *kind == FieldKind::Int {
        if let Ok(n) = row.try_get_by_index::<Option<i64>>(idx) {
            return Ok(n.map(Value::Int).unwrap_or(Value::Null));
        }
        let d = row.try_get_by_index::<Option<rust_decimal::Decimal>>(idx)?;
        return Ok(match d.map(i64::try_from) {
            Some(Ok(n)) => Value::Int(n),
            Some(Err(_)) => Value::Decimal(d.unwrap_or_default()),
            None => Value::Null,
        });
    }
    decode(backend, kind, row, idx)
}
