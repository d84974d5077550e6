//! Planner statistics: kept current, and used to choose a page's plan where SQLite's planner
//! cannot.
//!
//! Both databases plan from statistics (`ANALYZE`): PostgreSQL's autovacuum refreshes them as
//! tables change; SQLite's are refreshed only when asked. Without them a bulk load leaves the
//! planner guessing, and a statement prepared once and run many times (an import's look-up of
//! existing e-mails) may keep a sequential scan whose cost grows with the table. So
//! [`Growth`] re-analyses a table each time a bulk load doubles it, and [`upkeep`], when the
//! server starts and every minute ([`UPKEEP_EVERY`]), analyses any record table whose statistics have
//! gone stale: on SQLite after `PRAGMA optimize`, on PostgreSQL where autovacuum has not kept
//! up (or is off).
//!
//! SQLite's planner, even with statistics, costs a plan that reads an index in the page's sort
//! order as if it read the whole index when a `WHERE` term filters it; so for an equality filter
//! on an indexed column and a sort on another it reads every match through the filter's index and
//! sorts them: all 16,667 contacts of one lifecycle stage sorted for a page of 50. When the
//! statistics say the filter matches many rows, reading the sort key's index in order and
//! stopping after the page's rows reads far fewer; [`unindexed`] picks the filter columns whose
//! index must then be set aside (the statement compares `+column`, which SQLite does not look up
//! in an index). The same holds for the indexes plugin objects declare: the statistics cover
//! every table.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use sea_orm::{ConnectionTrait, DbBackend, Statement, Value as DbValue};

use crate::domain::filter::{Filter, Op, OrderBy, Target};
use crate::domain::object::ObjectDef;
use crate::error::Result;

/// How often the running server checks its tables' statistics (and, on SQLite, merges the
/// search index's segments: `store::search::merge_step`).
pub const UPKEEP_EVERY: Duration = Duration::from_secs(60);
/// The longest the search index's segments are merged for in one upkeep round.
pub const MERGE_BUDGET: Duration = Duration::from_secs(2);

/// A table's statistics: its row count and, per index, how many rows share a value of each
/// leading run of its columns (SQLite's `sqlite_stat1`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TableStats {
    /// Rows in the table when it was analysed.
    pub rows: u64,
    /// Its indexes on plain columns (an expression column ends the list of columns).
    pub indexes: Vec<IndexStats>,
}

/// One index's statistics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IndexStats {
    /// Its leading plain columns, in order.
    pub columns: Vec<String>,
    /// `rows_per_key[i]`: the average number of rows sharing one value of `columns[..=i]`.
    pub rows_per_key: Vec<u64>,
}

impl TableStats {
    /// The average rows per value of `column`, from an index that leads with it.
    fn rows_per_value(&self, column: &str) -> Option<u64> {
        self.indexes
            .iter()
            .filter(|index| index.columns.first().is_some_and(|c| c == column))
            .filter_map(|index| index.rows_per_key.first().copied())
            .min()
    }

    /// Whether an index leads with `column`.
    fn leads(&self, column: &str) -> bool {
        self.indexes.iter().any(|index| index.columns.first().is_some_and(|c| c == column))
    }

    /// Whether an index serves equality on (some of) `equal` and then orders by `sort`: its
    /// columns are some of `equal`, then `sort`.
    fn serves(&self, equal: &[&str], sort: &str) -> bool {
        self.indexes.iter().any(|index| {
            let lead = index.columns.iter().take_while(|c| equal.contains(&c.as_str())).count();
            lead > 0 && index.columns.get(lead).is_some_and(|c| c == sort)
        })
    }
}

/// The statistics of one database, by table, as last loaded.
#[derive(Debug, Default)]
pub struct PlannerStats {
    tables: RwLock<Arc<HashMap<String, Arc<TableStats>>>>,
}

impl PlannerStats {
    /// `table`'s statistics, if it has been analysed.
    pub fn table(&self, table: &str) -> Option<Arc<TableStats>> {
        self.tables.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(table).cloned()
    }

    fn all(&self) -> Arc<HashMap<String, Arc<TableStats>>> {
        self.tables.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    fn replace(&self, tables: HashMap<String, TableStats>) {
        let tables = tables.into_iter().map(|(name, stats)| (name, Arc::new(stats))).collect();
        *self.tables.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(tables);
    }

    /// Reloads SQLite's statistics (PostgreSQL plans for itself: nothing to load).
    pub async fn reload<C: ConnectionTrait>(&self, db: &C) -> Result<()> {
        if db.get_database_backend() == DbBackend::Sqlite {
            self.replace(load_sqlite(db).await?);
        }
        Ok(())
    }
}

/// A connection that knows its database's planner statistics.
pub trait Planned: ConnectionTrait {
    /// The statistics, where Kith chooses plans from them (SQLite).
    fn planner_stats(&self) -> Option<&PlannerStats>;
}

async fn load_sqlite<C: ConnectionTrait>(db: &C) -> Result<HashMap<String, TableStats>> {
    let has_stats = db
        .query_one_raw(Statement::from_string(
            DbBackend::Sqlite,
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_stat1'",
        ))
        .await?
        .is_some();
    let mut tables: HashMap<String, TableStats> = HashMap::new();
    if !has_stats {
        return Ok(tables);
    }
    let rows = db
        .query_all_raw(Statement::from_string(
            DbBackend::Sqlite,
            "SELECT s.tbl, s.idx, s.stat, i.seqno, i.name FROM sqlite_stat1 s, pragma_index_info(s.idx) i \
             WHERE s.idx IS NOT NULL ORDER BY s.tbl, s.idx, i.seqno",
        ))
        .await?;
    let mut current: Option<(String, String, IndexStats)> = None;
    let finish = |tables: &mut HashMap<String, TableStats>, done: Option<(String, String, IndexStats)>| {
        if let Some((table, _, index)) = done
            && !index.columns.is_empty()
        {
            tables.entry(table).or_default().indexes.push(index);
        }
    };
    for row in &rows {
        let table: String = row.try_get_by_index(0)?;
        let index: String = row.try_get_by_index(1)?;
        let stat: String = row.try_get_by_index(2)?;
        let column: Option<String> = row.try_get_by_index(4)?;
        let numbers: Vec<u64> = stat.split(' ').map_while(|n| n.parse().ok()).collect();
        let same = current.as_ref().is_some_and(|(t, i, _)| *t == table && *i == index);
        if !same {
            finish(&mut tables, current.take());
            let total = numbers.first().copied().unwrap_or(0);
            let entry = tables.entry(table.clone()).or_default();
            entry.rows = entry.rows.max(total);
            current = Some((table, index, IndexStats::default()));
        }
        if let Some((_, _, stats)) = current.as_mut() {
            // An expression column (`lower(email)`) has no name: the index serves no plain
            // column past it.
            let at = stats.columns.len();
            match column {
                Some(column) if stats.columns.len() == stats.rows_per_key.len() => {
                    if let Some(per_key) = numbers.get(at + 1) {
                        stats.columns.push(column);
                        stats.rows_per_key.push(*per_key);
                    }
                }
                _ => stats.rows_per_key.push(u64::MAX),
            }
        }
    }
    finish(&mut tables, current.take());
    for stats in tables.values_mut() {
        for index in &mut stats.indexes {
            index.rows_per_key.truncate(index.columns.len());
        }
    }
    Ok(tables)
}

/// The columns of `filter`'s equality terms whose index a page in `order` of `limit` rows
/// should not use (see the module documentation), from `stats` of `object`'s table. Empty
/// unless the filter is a conjunction of equality terms (`eq`, `in`) on indexed columns, the
/// page is sorted by a column another index leads with, no index serves both, and reading that
/// index in order is expected to read under half the rows the filter's index would.
pub fn unindexed(
    stats: &TableStats,
    object: &ObjectDef,
    filter: &Filter,
    order: &[OrderBy],
    limit: u64,
) -> Vec<String> {
    let column = |name: &str| object.field_def(name).map(|f| f.column.clone());
    let Some(OrderBy { target: Target::Field(sort), .. }) = order.first() else { return Vec::new() };
    let Some(sort) = column(sort) else { return Vec::new() };
    if !stats.leads(&sort) || stats.rows == 0 {
        return Vec::new();
    }
    let mut terms: Vec<(String, u64)> = Vec::new();
    if !equality_terms(filter, &column, &mut terms) || terms.is_empty() {
        return Vec::new();
    }
    let equal: Vec<&str> = terms.iter().map(|(c, _)| c.as_str()).collect();
    if stats.serves(&equal, &sort) {
        return Vec::new();
    }
    let total = stats.rows as f64;
    let mut matches = total;
    let mut through_index = f64::INFINITY;
    for (column, values) in &terms {
        // A column without an index leaves its selectivity unknown: let SQLite plan.
        let Some(per_value) = stats.rows_per_value(column) else { return Vec::new() };
        let rows = (per_value as f64 * *values as f64).min(total);
        through_index = through_index.min(rows);
        matches *= rows / total;
    }
    let in_order = (limit + 1) as f64 * total / matches.max(1.0);
    if in_order * 2.0 < through_index { terms.into_iter().map(|(column, _)| column).collect() } else { Vec::new() }
}

/// Collects `filter`'s equality terms as (column, number of values); false when it has any
/// other kind of term.
fn equality_terms(filter: &Filter, column: &dyn Fn(&str) -> Option<String>, out: &mut Vec<(String, u64)>) -> bool {
    match filter {
        Filter::And(parts) => parts.iter().all(|part| equality_terms(part, column, out)),
        Filter::Cond(cond) => {
            let Target::Field(name) = &cond.target else { return false };
            let Some(col) = column(name) else { return false };
            let values = match &cond.op {
                Op::Eq(value) if !value.is_null() => 1,
                Op::In(values) if !values.is_empty() => values.len() as u64,
                _ => return false,
            };
            out.push((col, values));
            true
        }
        _ => false,
    }
}

/// Counts a bulk load's rows and says when its table should be analysed again: when it has
/// doubled since the last time (or since the load began).
#[derive(Debug, Clone)]
pub struct Growth {
    analysed_at: u64,
    rows: u64,
}

impl Growth {
    /// A load into a table of about `rows` rows.
    pub fn new(rows: u64) -> Growth {
        Growth { analysed_at: rows, rows }
    }

    /// Adds `written` rows; true when the table should be analysed now.
    pub fn add(&mut self, written: u64) -> bool {
        self.rows += written;
        if self.rows >= (self.analysed_at * 2).max(1_000) {
            self.analysed_at = self.rows;
            true
        } else {
            false
        }
    }
}

/// About how many rows `table` holds: PostgreSQL's estimate, or SQLite's count.
pub async fn rows_estimate<C: ConnectionTrait>(db: &C, table: &str) -> Result<u64> {
    let backend = db.get_database_backend();
    let stmt = match backend {
        DbBackend::Postgres => Statement::from_sql_and_values(
            backend,
            "SELECT GREATEST(reltuples, 0)::bigint FROM pg_class WHERE oid = to_regclass($1)",
            [DbValue::from(format!("\"{table}\""))],
        ),
        _ => Statement::from_string(backend, format!("SELECT count(*) FROM \"{table}\"")),
    };
    Ok(match db.query_one_raw(stmt).await? {
        Some(row) => row.try_get_by_index::<Option<i64>>(0)?.unwrap_or(0).max(0) as u64,
        None => 0,
    })
}

/// How long the upkeep waits between two SQLite index analyses, so writers queued behind one
/// (in SQLite's busy handler, which sleeps up to 100 ms at a time) commit before the next.
pub const ANALYZE_PAUSE: Duration = Duration::from_millis(120);

/// Analyses `tables` now (their names from object definitions).
///
/// SQLite analyses each index in its own statement (`ANALYZE "index"`; a table without indexes
/// as a whole), with `pause` between them. An `ANALYZE` holds the database's write lock while it
/// reads its indexes whole: for a table of 400,000 contacts and 11 indexes, under load, longer
/// than a writer's busy timeout. Index by index, each holds it for a fraction of that, and the
/// statistics written are the same (`sqlite_stat1` and `sqlite_stat4` are kept per index). Then
/// every connection reloads them ([`reload_everywhere`]).
pub async fn analyze<C: ConnectionTrait>(db: &C, tables: &[&str], pause: Duration) -> Result<()> {
    if tables.is_empty() {
        return Ok(());
    }
    if db.get_database_backend() == DbBackend::Postgres {
        let list: Vec<String> = tables.iter().map(|t| format!("\"{t}\"")).collect();
        db.execute_unprepared(&format!("ANALYZE {}", list.join(", "))).await?;
        return Ok(());
    }
    for table in tables {
        let started = std::time::Instant::now();
        let indexes = db
            .query_all_raw(Statement::from_sql_and_values(
                DbBackend::Sqlite,
                "SELECT name FROM pragma_index_list(?) ORDER BY name",
                [DbValue::from(table.to_string())],
            ))
            .await?
            .iter()
            .map(|row| row.try_get_by_index::<String>(0))
            .collect::<std::result::Result<Vec<String>, _>>()?;
        if indexes.is_empty() {
            db.execute_unprepared(&format!("ANALYZE \"{table}\"")).await?;
            continue;
        }
        let mut longest = Duration::ZERO;
        for (at, index) in indexes.iter().enumerate() {
            if at > 0 && !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
            let one = std::time::Instant::now();
            db.execute_unprepared(&format!("ANALYZE \"{}\"", index.replace('"', "\"\""))).await?;
            longest = longest.max(one.elapsed());
        }
        tracing::info!(table, indexes = indexes.len(), elapsed = ?started.elapsed(), ?longest, "analysed");
    }
    reload_everywhere(db).await
}

/// A fingerprint of SQLite's `sqlite_stat1`: it differs once an analysis changed anything.
async fn stat1_digest<C: ConnectionTrait>(db: &C) -> Result<(i64, String)> {
    let exists = "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_stat1'";
    let found = db.query_one_raw(Statement::from_string(DbBackend::Sqlite, exists)).await?;
    if found.map(|row| row.try_get_by_index::<i64>(0)).transpose()?.unwrap_or(0) == 0 {
        return Ok((0, String::new()));
    }
    let sql = "SELECT count(*), coalesce(group_concat(tbl || idx || stat, ','), '') FROM sqlite_stat1";
    match db.query_one_raw(Statement::from_string(DbBackend::Sqlite, sql)).await? {
        Some(row) => Ok((row.try_get_by_index(0)?, row.try_get_by_index(1)?)),
        None => Ok((0, String::new())),
    }
}

/// Makes every connection to the SQLite database load the statistics anew before its next
/// statement. A connection loads them when it reads the schema, and `ANALYZE` only reloads them
/// on the connection that ran it: the pooled connections that ran one index's analysis would
/// keep a mix of new and old statistics (which misled SQLite into sorting a whole filter's
/// matches for a page), and the others the old ones until they close. A schema change (a table
/// made and dropped) makes each of them read the schema, and the statistics, again.
async fn reload_everywhere<C: ConnectionTrait>(db: &C) -> Result<()> {
    db.execute_unprepared("CREATE TABLE IF NOT EXISTS kith_statistics_epoch (x INTEGER)").await?;
    db.execute_unprepared("DROP TABLE IF EXISTS kith_statistics_epoch").await?;
    Ok(())
}

/// The periodic upkeep of `tables`' statistics; returns the tables analysed here.
///
/// SQLite: each table whose statistics are missing while it holds rows, or whose size has
/// halved or doubled since they were taken, index by index; then `PRAGMA optimize` (what SQLite
/// still thinks has gone stale: after ours, it finds no such table to analyse whole, holding
/// the write lock the while); then `stats` reloaded. PostgreSQL: each table changed by more than a tenth
/// of its rows since it was last analysed, by hand or by autovacuum (which may be off, as it is
/// on the development machine, or behind).
pub async fn upkeep<C: ConnectionTrait>(db: &C, stats: &PlannerStats, tables: &[String]) -> Result<Vec<String>> {
    let stale = match db.get_database_backend() {
        DbBackend::Sqlite => stale_sqlite(db, stats, tables).await?,
        DbBackend::Postgres => stale_postgres(db, tables).await?,
        _ => Vec::new(),
    };
    let names: Vec<&str> = stale.iter().map(String::as_str).collect();
    analyze(db, &names, ANALYZE_PAUSE).await?;
    let sqlite = db.get_database_backend() == DbBackend::Sqlite;
    if sqlite {
        // 0x10000: check every table, not just those this connection used; 0x10: with a
        // bounded analysis; 0x2: analyse. What it analyses, every connection must load too.
        let before = stat1_digest(db).await?;
        db.execute_unprepared("PRAGMA optimize = 0x10012").await?;
        if stat1_digest(db).await? != before {
            reload_everywhere(db).await?;
        }
    }
    if sqlite || !stale.is_empty() {
        stats.reload(db).await?;
    }
    Ok(stale)
}

async fn stale_sqlite<C: ConnectionTrait>(db: &C, stats: &PlannerStats, tables: &[String]) -> Result<Vec<String>> {
    stats.reload(db).await?;
    let known = stats.all();
    let mut stale = Vec::new();
    for table in tables {
        let rows = rows_estimate(db, table).await?;
        let stale_now = match known.get(table).map(|t| t.rows) {
            None | Some(0) => rows >= 100,
            Some(at) => rows >= at * 2 || rows * 2 <= at,
        };
        if stale_now {
            stale.push(table.clone());
        }
    }
    Ok(stale)
}

async fn stale_postgres<C: ConnectionTrait>(db: &C, tables: &[String]) -> Result<Vec<String>> {
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT relname::text FROM pg_stat_user_tables \
             WHERE schemaname = current_schema() AND relname = ANY($1) \
               AND n_mod_since_analyze > 50 + 0.1 * GREATEST(n_live_tup, 0) ORDER BY relname",
            [DbValue::Array(
                sea_orm::sea_query::ArrayType::String,
                Some(Box::new(tables.iter().map(|t| DbValue::from(t.clone())).collect())),
            )],
        ))
        .await?;
    rows.iter().map(|row| row.try_get_by_index::<String>(0).map_err(Into::into)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::filter::Condition;
    use crate::domain::value::{FieldKind, Value};

    fn stats() -> TableStats {
        let index = |columns: &[&str], per: &[u64]| IndexStats {
            columns: columns.iter().map(|c| (*c).to_owned()).collect(),
            rows_per_key: per.to_vec(),
        };
        TableStats {
            rows: 100_000,
            indexes: vec![
                index(&["lifecycle_stage", "id"], &[16_667, 1]),
                index(&["last_name", "first_name", "id"], &[20, 1, 1]),
                index(&["address_city", "last_name", "id"], &[500, 20, 1]),
                index(&["owner_id", "id"], &[5, 1]),
            ],
        }
    }

    fn eq(field: &str, value: &str) -> Filter {
        Filter::Cond(Condition {
            target: Target::Field(field.to_owned()),
            kind: FieldKind::Text,
            op: Op::Eq(Value::Text(value.to_owned())),
        })
    }

    fn by(field: &str) -> Vec<OrderBy> {
        vec![OrderBy { target: Target::Field(field.to_owned()), desc: false, nulls_first: false }]
    }

    fn contact() -> &'static ObjectDef {
        crate::domain::object::Registry::core_static().get("contact").expect("contact")
    }

    #[test]
    fn an_unselective_filter_gives_way_to_the_sort_index() {
        let got = unindexed(&stats(), contact(), &eq("lifecycleStage", "CUSTOMER"), &by("lastName"), 50);
        assert_eq!(got, vec!["lifecycle_stage".to_owned()]);
    }

    #[test]
    fn a_selective_filter_keeps_its_index() {
        // Five rows per owner: reading them and sorting beats scanning the names.
        assert!(unindexed(&stats(), contact(), &eq("ownerId", "x"), &by("lastName"), 50).is_empty());
    }

    #[test]
    fn an_index_serving_filter_and_sort_is_left_to_sqlite() {
        assert!(unindexed(&stats(), contact(), &eq("addressCity", "City7"), &by("lastName"), 50).is_empty());
        let both = Filter::And(vec![eq("addressCity", "City7"), eq("lifecycleStage", "CUSTOMER")]);
        assert!(unindexed(&stats(), contact(), &both, &by("lastName"), 50).is_empty());
    }

    #[test]
    fn other_terms_and_unsorted_pages_are_left_to_sqlite() {
        let contains = Filter::Cond(Condition {
            target: Target::Field("firstName".into()),
            kind: FieldKind::Text,
            op: Op::Ilike("%a%".into()),
        });
        let mixed = Filter::And(vec![eq("lifecycleStage", "CUSTOMER"), contains]);
        assert!(unindexed(&stats(), contact(), &mixed, &by("lastName"), 50).is_empty());
        assert!(unindexed(&stats(), contact(), &eq("lifecycleStage", "CUSTOMER"), &[], 50).is_empty());
        // A sort key no index leads with is sorted either way.
        assert!(unindexed(&stats(), contact(), &eq("lifecycleStage", "CUSTOMER"), &by("jobTitle"), 50).is_empty());
    }

    #[test]
    fn a_bulk_load_is_analysed_each_time_the_table_doubles() {
        let mut growth = Growth::new(0);
        let analysed: Vec<bool> = (0..20).map(|_| growth.add(5_000)).collect();
        // 5,000 (first), 10,000, 20,000, 40,000, 80,000.
        assert_eq!(analysed.iter().filter(|a| **a).count(), 5);
        assert!(analysed[0] && analysed[1] && analysed[3] && analysed[7] && analysed[15]);
        let mut big = Growth::new(1_000_000);
        assert!(!big.add(5_000));
    }
}
