//! Generic reads and writes of any object described by an [`ObjectDef`].

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sea_orm::sea_query::{Alias, Cond, Expr, ExprTrait, Query, SelectStatement, UnionType};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::{Map, Value as Json};
use uuid::Uuid;

use crate::domain::DomainError;
use crate::domain::filter::{Filter, OrderBy, Target};
use crate::domain::object::{FieldDef, ObjectDef};
use crate::domain::value::{FieldKind, Fields, Value};
use crate::error::{Error, Result};
use crate::store::codec::{decode, encode, insert_rows};
use crate::store::query::{apply_order, condition_planned, keyset_condition};
use crate::store::stats::Planned;

/// One stored record: every field of its object, `id` included.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Field values by API name.
    pub fields: Fields,
}

impl Record {
    /// The record's id.
    pub fn id(&self) -> Uuid {
        self.fields.get("id").and_then(Value::as_uuid).unwrap_or_default()
    }

    /// A field's value (`Null` when absent).
    pub fn get(&self, name: &str) -> &Value {
        self.fields.get(name).unwrap_or(&Value::Null)
    }

    /// The record as a JSON object (API payloads, events, exports).
    pub fn to_json(&self) -> Json {
        let mut map = Map::new();
        for (name, value) in &self.fields {
            map.insert(name.clone(), value.to_json());
        }
        Json::Object(map)
    }
}

/// Which page of a list to read.
#[derive(Debug, Clone, PartialEq)]
pub enum PageRequest {
    /// The first `first` records after the cursor (or from the start).
    Forward {
        /// Page size.
        first: u64,
        /// Exclusive start.
        after: Option<String>,
    },
    /// The last `last` records before the cursor (or up to the end).
    Backward {
        /// Page size.
        last: u64,
        /// Exclusive end.
        before: Option<String>,
    },
}

/// A list query over one object.
#[derive(Debug, Clone, PartialEq)]
pub struct ListQuery {
    /// Which records.
    pub filter: Filter,
    /// In which order (`id` is always the final tie-breaker, in the last key's direction).
    pub order: Vec<OrderBy>,
    /// Which page.
    pub page: PageRequest,
    /// Include soft-deleted records.
    pub include_deleted: bool,
}

impl ListQuery {
    /// The first `first` live records matching `filter`, oldest first.
    pub fn first(filter: Filter, first: u64) -> ListQuery {
        ListQuery {
            filter,
            order: Vec::new(),
            page: PageRequest::Forward { first, after: None },
            include_deleted: false,
        }
    }
}

/// A page of records with their cursors.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// The records, in list order, each with its cursor.
    pub records: Vec<(String, Record)>,
    /// More records follow the last one.
    pub has_next: bool,
    /// More records precede the first one.
    pub has_previous: bool,
    /// Per record (same order), the target of each [`Join`] the page was read with: `None`
    /// when the reference is null or its target is gone. Empty when read without joins.
    pub joined: Vec<Vec<Option<Record>>>,
}

/// A forward relation read with a page, in the same statement: the target of `reference`
/// (a `Ref` field of the page's object), `LEFT JOIN`ed by id, live targets only, with `fields`
/// of it (and its `id`).
#[derive(Debug, Clone, Copy)]
pub struct Join<'a> {
    /// The reference field of the page's object (`companyId`).
    pub reference: &'a str,
    /// The object it refers to.
    pub target: &'a ObjectDef,
    /// The target's fields to read.
    pub fields: &'a [String],
}

fn table(object: &ObjectDef) -> Alias {
    Alias::new(object.table.as_str())
}

fn select_all(object: &ObjectDef) -> SelectStatement {
    select_fields(object, object.fields.iter())
}

/// A SELECT of `fields`' columns, in that order.
fn select_fields<'a>(object: &ObjectDef, fields: impl IntoIterator<Item = &'a FieldDef>) -> SelectStatement {
    let mut select = Query::select();
    select.from(table(object));
    for field in fields {
        select.column((table(object), Alias::new(field.column.as_str())));
    }
    select
}

fn row_to_record(backend: DbBackend, object: &ObjectDef, row: &sea_orm::QueryResult) -> Result<Record> {
    row_to_fields(backend, object.fields.iter(), row)
}

/// A row of [`select_fields`] as a record holding just those fields.
fn row_to_fields<'a>(
    backend: DbBackend,
    fields: impl IntoIterator<Item = &'a FieldDef>,
    row: &sea_orm::QueryResult,
) -> Result<Record> {
    let mut out = Fields::new();
    for (idx, field) in fields.into_iter().enumerate() {
        out.insert(field.name.clone(), decode(backend, &field.kind, row, idx)?);
    }
    Ok(Record { fields: out })
}

/// Inserts records. Each must hold every field of the object (missing ones are stored as null).
pub async fn insert<C: ConnectionTrait>(db: &C, object: &ObjectDef, rows: &[Fields]) -> Result<()> {
    let backend = db.get_database_backend();
    let columns: Vec<&str> = object.fields.iter().map(|f| f.column.as_str()).collect();
    let values = rows.iter().map(|row| encode_row(backend, object, row)).collect::<Result<Vec<_>>>()?;
    insert_rows(db, &object.table, &columns, values).await
}

/// A record's values in the order of its object's columns, encoded for `backend`.
pub(crate) fn encode_row(backend: DbBackend, object: &ObjectDef, row: &Fields) -> Result<Vec<sea_orm::Value>> {
    object
        .fields
        .iter()
        .map(|field| encode(backend, &field.kind, row.get(&field.name).unwrap_or(&Value::Null)))
        .collect()
}

/// Writes `changes` to record `id` if its version is still `version` (when the object is
/// versioned). Returns whether a row was updated.
pub async fn update<C: ConnectionTrait>(
    db: &C,
    object: &ObjectDef,
    id: Uuid,
    version: Option<i64>,
    changes: &Fields,
) -> Result<bool> {
    if changes.is_empty() {
        return Ok(true);
    }
    let backend = db.get_database_backend();
    let mut update = Query::update();
    update.table(table(object));
    for (name, value) in changes {
        let field = object.field_def(name).ok_or_else(|| Error::internal(format!("update of unknown field {name}")))?;
        update.value(Alias::new(field.column.as_str()), Expr::val(encode(backend, &field.kind, value)?));
    }
    update.and_where(Expr::col(Alias::new("id")).eq(encode(backend, &FieldKind::Id, &Value::Uuid(id))?));
    if let Some(version) = version {
        update.and_where(Expr::col(Alias::new("version")).eq(version));
    }
    let res = db.execute(&update).await?;
    Ok(res.rows_affected() == 1)
}

/// Deletes a row for good (objects without soft delete).
pub async fn delete_hard<C: ConnectionTrait>(db: &C, object: &ObjectDef, id: Uuid) -> Result<bool> {
    let backend = db.get_database_backend();
    let mut delete = Query::delete();
    delete.from_table(table(object)).and_where(Expr::col(Alias::new("id")).eq(encode(
        backend,
        &FieldKind::Id,
        &Value::Uuid(id),
    )?));
    Ok(db.execute(&delete).await?.rows_affected() == 1)
}

/// The record with this id, deleted or not.
pub async fn get<C: ConnectionTrait>(db: &C, object: &ObjectDef, id: Uuid) -> Result<Option<Record>> {
    get_fields(db, object, id, None).await
}

/// [`get`], reading only the named fields (`None`: all; `id` and `deletedAt` always).
async fn get_fields<C: ConnectionTrait>(
    db: &C,
    object: &ObjectDef,
    id: Uuid,
    fields: Option<&[String]>,
) -> Result<Option<Record>> {
    let backend = db.get_database_backend();
    let chosen: Vec<&FieldDef> = match fields {
        None => object.fields.iter().collect(),
        Some(names) => object
            .fields
            .iter()
            .filter(|f| f.name == "id" || f.name == "deletedAt" || names.contains(&f.name))
            .collect(),
    };
    let mut select = select_fields(object, chosen.iter().copied());
    select.and_where(Expr::col((table(object), Alias::new("id"))).eq(encode(
        backend,
        &FieldKind::Id,
        &Value::Uuid(id),
    )?));
    match db.query_one(&select).await? {
        Some(row) => Ok(Some(row_to_fields(backend, chosen.iter().copied(), &row)?)),
        None => Ok(None),
    }
}

/// Which of `targets` (an object and an id each) are live (not soft-deleted) records, in their
/// order: one statement for all of them (the references one write names).
pub async fn live<C: ConnectionTrait>(db: &C, targets: &[(&ObjectDef, Uuid)]) -> Result<Vec<bool>> {
    let backend = db.get_database_backend();
    let mut union: Option<SelectStatement> = None;
    for (index, (object, id)) in targets.iter().enumerate() {
        let mut select = Query::select();
        select.expr_as(Expr::val(index as i64), Alias::new("k")).from(table(object)).and_where(
            Expr::col((table(object), Alias::new("id"))).eq(encode(backend, &FieldKind::Id, &Value::Uuid(*id))?),
        );
        if object.soft_delete {
            select.and_where(Expr::col((table(object), Alias::new("deleted_at"))).is_null());
        }
        match union.as_mut() {
            None => union = Some(select),
            Some(first) => {
                first.union(UnionType::All, select);
            }
        }
    }
    let mut out = vec![false; targets.len()];
    let Some(union) = union else { return Ok(out) };
    for row in db.query_all(&union).await? {
        let index: i64 = row.try_get_by_index(0)?;
        if let Some(found) = usize::try_from(index).ok().and_then(|i| out.get_mut(i)) {
            *found = true;
        }
    }
    Ok(out)
}

/// The live (not soft-deleted) record with this id, or NOT_FOUND.
pub async fn get_live<C: ConnectionTrait>(db: &C, object: &ObjectDef, id: Uuid) -> Result<Record> {
    get_live_fields(db, object, id, None).await
}

/// [`get_live`], reading only the named fields (`None`: all; `id` and `deletedAt` always).
pub async fn get_live_fields<C: ConnectionTrait>(
    db: &C,
    object: &ObjectDef,
    id: Uuid,
    fields: Option<&[String]>,
) -> Result<Record> {
    match get_fields(db, object, id, fields).await? {
        Some(record) if !object.soft_delete || record.get("deletedAt").is_null() => Ok(record),
        _ => Err(Error::Domain(DomainError::not_found(&object.name, id))),
    }
}

/// The records with these ids (deleted ones included), in no particular order.
pub async fn get_many<C: ConnectionTrait>(db: &C, object: &ObjectDef, ids: &[Uuid]) -> Result<Vec<Record>> {
    get_many_of(db, object, &object.fields.iter().collect::<Vec<_>>(), ids).await
}

/// [`get_many`] reading only the fields named (and the id): to check that records exist.
pub async fn get_many_fields<C: ConnectionTrait>(
    db: &C,
    object: &ObjectDef,
    names: &[&str],
    ids: &[Uuid],
) -> Result<Vec<Record>> {
    let fields: Vec<&FieldDef> =
        object.fields.iter().filter(|f| f.name == "id" || names.contains(&f.name.as_str())).collect();
    get_many_of(db, object, &fields, ids).await
}

async fn get_many_of<C: ConnectionTrait>(
    db: &C,
    object: &ObjectDef,
    fields: &[&FieldDef],
    ids: &[Uuid],
) -> Result<Vec<Record>> {
    let backend = db.get_database_backend();
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let mut select = select_fields(object, fields.iter().copied());
        let values =
            chunk.iter().map(|id| encode(backend, &FieldKind::Id, &Value::Uuid(*id))).collect::<Result<Vec<_>>>()?;
        select.and_where(Expr::col((table(object), Alias::new("id"))).is_in(values));
        for row in db.query_all(&select).await? {
            out.push(row_to_fields(backend, fields.iter().copied(), &row)?);
        }
    }
    Ok(out)
}

fn base_condition(
    backend: DbBackend,
    object: &ObjectDef,
    filter: &Filter,
    include_deleted: bool,
    unindexed: &[String],
) -> Result<Cond> {
    let mut cond = Cond::all().add(condition_planned(backend, object, filter, unindexed)?);
    if object.soft_delete && !include_deleted {
        cond = cond.add(Expr::col((table(object), Alias::new("deleted_at"))).is_null());
    }
    Ok(cond)
}

/// How many records match.
pub async fn count<C: ConnectionTrait>(
    db: &C,
    object: &ObjectDef,
    filter: &Filter,
    include_deleted: bool,
) -> Result<i64> {
    let backend = db.get_database_backend();
    let mut select = Query::select();
    select.from(table(object)).expr(Expr::cust("COUNT(*)")).cond_where(base_condition(
        backend,
        object,
        filter,
        include_deleted,
        &[],
    )?);
    let row = db.query_one(&select).await?.ok_or_else(|| Error::internal("count returned no row"))?;
    Ok(row.try_get_by_index::<i64>(0)?)
}

/// Every live record matching `filter`, in no particular order. For lookups by indexed keys
/// (imports): without ORDER BY the planner uses the key's index instead of walking the primary
/// key in order.
pub async fn select_where<C: ConnectionTrait>(db: &C, object: &ObjectDef, filter: &Filter) -> Result<Vec<Record>> {
    let backend = db.get_database_backend();
    let mut select = select_all(object);
    select.cond_where(base_condition(backend, object, filter, false, &[])?);
    let rows = db.query_all(&select).await?;
    rows.iter().map(|row| row_to_record(backend, object, row)).collect()
}

/// The first record matching `filter` (live only), if any.
pub async fn find_one<C: Planned>(db: &C, object: &ObjectDef, filter: &Filter) -> Result<Option<Record>> {
    let page = list(db, object, &ListQuery::first(filter.clone(), 1)).await?;
    Ok(page.records.into_iter().next().map(|(_, r)| r))
}

/// One page of records.
pub async fn list<C: Planned>(db: &C, object: &ObjectDef, query: &ListQuery) -> Result<Page> {
    list_fields(db, object, query, None, true).await
}

/// [`list`], reading only the named fields (`None`: all). The page's records hold just those
/// fields, so `fields` must cover the sort keys and every field the caller will read; `id` is
/// always read. A GraphQL page of 50 that selects 5 of a contact's 29 fields decodes a fifth of
/// the values. Without `cursors` the page's cursors are left empty (a query that selects
/// neither `cursor` nor `pageInfo` does not pay for encoding them).
pub async fn list_fields<C: Planned>(
    db: &C,
    object: &ObjectDef,
    query: &ListQuery,
    fields: Option<&[String]>,
    cursors: bool,
) -> Result<Page> {
    list_joined(db, object, query, fields, &[], cursors).await
}

/// [`list_fields`], with the targets of `joins` read in the same statement (see [`Join`]).
pub async fn list_joined<C: Planned>(
    db: &C,
    object: &ObjectDef,
    query: &ListQuery,
    fields: Option<&[String]>,
    joins: &[Join<'_>],
    cursors: bool,
) -> Result<Page> {
    Ok(list_rows(db, object, query, fields, joins).await?.into_page(&query.order, cursors))
}

/// A page as it was read: each row's values in column order, before they become
/// [`Record`]s. A caller that turns rows into something else (the GraphQL layer's direct
/// answers) moves the values out instead of copying them, and the page pays for no field
/// names per value.
#[derive(Debug, Clone, PartialEq)]
pub struct RowPage {
    /// The page's own fields, in column order (`id` among them).
    pub columns: Vec<String>,
    /// Each join's fields, in column order (its `id` among them); they follow the page's own
    /// columns in each row, join after join.
    pub joined_columns: Vec<Vec<String>>,
    /// The rows, in list order.
    pub rows: Vec<Vec<Value>>,
    /// More records follow the last row.
    pub has_next: bool,
    /// More records precede the first row.
    pub has_previous: bool,
}

impl RowPage {
    /// Where join `join`'s columns start in a row.
    pub fn join_offset(&self, join: usize) -> usize {
        self.columns.len() + self.joined_columns.iter().take(join).map(Vec::len).sum::<usize>()
    }

    /// The id of row `row` (nil when out of range).
    pub fn id(&self, row: usize) -> Uuid {
        let at = self.columns.iter().position(|c| c == "id");
        self.rows.get(row).and_then(|r| at.and_then(|at| r.get(at))).and_then(Value::as_uuid).unwrap_or_default()
    }

    /// The cursor of row `row` in `order` (read the page with its sort keys).
    pub fn cursor(&self, order: &[OrderBy], row: usize) -> String {
        let mut record = Fields::new();
        if let Some(values) = self.rows.get(row) {
            for (name, value) in self.columns.iter().zip(values) {
                let key = name == "id"
                    || order.iter().any(|key| match &key.target {
                        Target::Field(field) => field == name,
                        Target::Custom { .. } => name == "customFields",
                        Target::Tag => false,
                    });
                if key {
                    record.insert(name.clone(), value.clone());
                }
            }
        }
        encode_cursor(order, &Record { fields: record })
    }

    /// The rows as records: cursors computed from `order` when `cursors` (left empty
    /// otherwise), each join's target `None` where its id is null (no live target).
    pub fn into_page(self, order: &[OrderBy], cursors: bool) -> Page {
        let own = self.columns.len();
        let mut records = Vec::with_capacity(self.rows.len());
        let mut joined = Vec::new();
        for values in self.rows {
            let mut values = values.into_iter();
            let record = Record { fields: self.columns.iter().cloned().zip(values.by_ref().take(own)).collect() };
            let cursor = if cursors { encode_cursor(order, &record) } else { String::new() };
            records.push((cursor, record));
            if !self.joined_columns.is_empty() {
                let mut targets = Vec::with_capacity(self.joined_columns.len());
                for columns in &self.joined_columns {
                    let target =
                        Record { fields: columns.iter().cloned().zip(values.by_ref().take(columns.len())).collect() };
                    // No live target: every column of the join is null, its id too.
                    targets.push(if target.get("id").is_null() { None } else { Some(target) });
                }
                joined.push(targets);
            }
        }
        Page { records, has_next: self.has_next, has_previous: self.has_previous, joined }
    }
}

/// [`list_joined`], as rows (see [`RowPage`]).
pub async fn list_rows<C: Planned>(
    db: &C,
    object: &ObjectDef,
    query: &ListQuery,
    fields: Option<&[String]>,
    joins: &[Join<'_>],
) -> Result<RowPage> {
    let backend = db.get_database_backend();
    let chosen = chosen_fields(object, fields);
    let joined_fields: Vec<Vec<&FieldDef>> =
        joins.iter().map(|join| chosen_fields(join.target, Some(join.fields))).collect();
    let (limit, cursor, reverse) = page_bounds(query);
    let unindexed = unindexed_columns(db, object, query);
    let kinds: Vec<&FieldKind> = chosen.iter().chain(joined_fields.iter().flatten()).map(|field| &field.kind).collect();
    let width = kinds.len();
    let mut rows: Vec<Vec<Value>> = Vec::new();
    let mut rows_read = 0usize;
    // Each row's values, in column order; the extra row (there are more) is only counted.
    let mut take = |values: &mut dyn Iterator<Item = Result<Value>>| -> Result<()> {
        rows_read += 1;
        if rows_read as u64 > limit {
            return Ok(());
        }
        let mut row = Vec::with_capacity(width);
        for value in values {
            row.push(value?);
        }
        if row.len() != width {
            return Err(Error::internal(format!("a page row has {} values, not {width}", row.len())));
        }
        rows.push(row);
        Ok(())
    };
    if backend == DbBackend::Sqlite && width <= MAX_PACKED_COLUMNS {
        // One row of JSON for the whole page: sqlx's SQLite driver hands each row from its
        // worker thread to the caller's task on its own (a thread wake-up per row) and copies
        // every value twice (a page of 50 with its companies served about a fifth fewer
        // requests a second that way).
        let stmt = page_statement(backend, object, query, fields, joins, true, &unindexed)?;
        let packed: Option<String> = match db.query_one_raw(stmt).await? {
            Some(row) => row.try_get_by_index(0)?,
            None => None,
        };
        // The rows, separated by spaces: a stream of JSON arrays, parsed in place.
        for row in serde_json::Deserializer::from_str(packed.as_deref().unwrap_or_default())
            .into_iter::<Vec<crate::store::codec::Cell<'_>>>()
        {
            let row = row.map_err(|err| Error::internal(format!("a packed page row is not JSON: {err}")))?;
            if row.len() != width {
                return Err(Error::internal(format!("a packed page row has {} values, not {width}", row.len())));
            }
            let mut values =
                row.into_iter().zip(&kinds).map(|(cell, kind)| crate::store::codec::decode_cell(kind, cell));
            take(&mut values)?;
        }
    } else {
        let result =
            db.query_all_raw(page_statement(backend, object, query, fields, joins, false, &unindexed)?).await?;
        for row in &result {
            let mut values = kinds.iter().enumerate().map(|(idx, kind)| decode(backend, kind, row, idx));
            take(&mut values)?;
        }
    }
    let more = rows_read as u64 > limit;
    if reverse {
        rows.reverse();
    }
    let names = |fields: &[&FieldDef]| fields.iter().map(|field| field.name.clone()).collect::<Vec<_>>();
    Ok(RowPage {
        columns: names(&chosen),
        joined_columns: joined_fields.iter().map(|fields| names(fields)).collect(),
        rows,
        has_next: if reverse { cursor.is_some() } else { more },
        has_previous: if reverse { more } else { cursor.is_some() },
    })
}

/// The fields of `object` a page reads: `fields` (and `id`), or all of them.
fn chosen_fields<'a>(object: &'a ObjectDef, fields: Option<&[String]>) -> Vec<&'a FieldDef> {
    match fields {
        None => object.fields.iter().collect(),
        Some(names) => object.fields.iter().filter(|f| f.name == "id" || names.contains(&f.name)).collect(),
    }
}

/// How many rows, after or before which cursor, and whether the page is read backwards.
fn page_bounds(query: &ListQuery) -> (u64, Option<&str>, bool) {
    match &query.page {
        PageRequest::Forward { first, after } => (*first, after.as_deref(), false),
        PageRequest::Backward { last, before } => (*last, before.as_deref(), true),
    }
}

/// The one statement that reads a page of `query` (one row more than asked, to know whether
/// there are more): public so that tests and operators can see its query plan. On SQLite the
/// page runs as this same statement with its columns packed into one JSON column, under an
/// aggregate (see [`list_joined`]); the plan of its rows is this one.
pub fn list_statement(
    backend: DbBackend,
    object: &ObjectDef,
    query: &ListQuery,
    fields: Option<&[String]>,
) -> Result<sea_orm::Statement> {
    list_statement_joined(backend, object, query, fields, &[])
}

/// [`list_statement`] with `joins`: each target `LEFT JOIN`ed by its id as `j0`, `j1`…, its
/// columns after the page's own. A join neither filters nor reorders the page.
pub fn list_statement_joined(
    backend: DbBackend,
    object: &ObjectDef,
    query: &ListQuery,
    fields: Option<&[String]>,
    joins: &[Join<'_>],
) -> Result<sea_orm::Statement> {
    page_statement(backend, object, query, fields, joins, false, &[])
}

/// The statement [`list_rows`] runs on `db` for a page (rows, not packed), with the plan
/// choices Kith makes from the database's statistics (see `store::stats`).
pub fn list_statement_planned<C: Planned>(
    db: &C,
    object: &ObjectDef,
    query: &ListQuery,
    fields: Option<&[String]>,
    joins: &[Join<'_>],
) -> Result<sea_orm::Statement> {
    let unindexed = unindexed_columns(db, object, query);
    page_statement(db.get_database_backend(), object, query, fields, joins, false, &unindexed)
}

/// The filter columns whose index the page must not read (see `store::stats::unindexed`).
fn unindexed_columns<C: Planned>(db: &C, object: &ObjectDef, query: &ListQuery) -> Vec<String> {
    match db.planner_stats().and_then(|stats| stats.table(&object.table)) {
        Some(stats) => {
            crate::store::stats::unindexed(&stats, object, &query.filter, &query.order, page_bounds(query).0)
        }
        None => Vec::new(),
    }
}

/// The columns a page reads, as (table or join alias, column): the page's own, then each
/// join's.
fn page_columns(object: &ObjectDef, fields: Option<&[String]>, joins: &[Join<'_>]) -> Vec<(String, String)> {
    let mut columns: Vec<(String, String)> =
        chosen_fields(object, fields).iter().map(|f| (object.table.clone(), f.column.clone())).collect();
    for (j, join) in joins.iter().enumerate() {
        columns
            .extend(chosen_fields(join.target, Some(join.fields)).iter().map(|f| (format!("j{j}"), f.column.clone())));
    }
    columns
}

/// Most columns a packed page row holds: SQLite's default cap on a function's arguments is
/// 127 (`SQLITE_MAX_FUNCTION_ARG`); a page with more columns is read row by row.
const MAX_PACKED_COLUMNS: usize = 100;

/// [`list_statement_joined`]; when `packed` (SQLite), each row is one column, `r`, holding the
/// row's columns as a JSON array, and the statement answers one row: the page's rows separated
/// by spaces, in page order (or NULL when the page is empty).
fn page_statement(
    backend: DbBackend,
    object: &ObjectDef,
    query: &ListQuery,
    fields: Option<&[String]>,
    joins: &[Join<'_>],
    packed: bool,
    unindexed: &[String],
) -> Result<sea_orm::Statement> {
    let (limit, cursor, reverse) = page_bounds(query);
    let mut select = Query::select();
    select.from(table(object));
    let columns = page_columns(object, fields, joins);
    if packed {
        let quote = |name: &str| format!("\"{}\"", name.replace('"', "\"\""));
        let list: Vec<String> = columns.iter().map(|(t, c)| format!("{}.{}", quote(t), quote(c))).collect();
        select.expr_as(Expr::cust(format!("json_array({})", list.join(", "))), Alias::new("r"));
    } else {
        for (t, c) in &columns {
            select.column((Alias::new(t.as_str()), Alias::new(c.as_str())));
        }
    }
    for (j, join) in joins.iter().enumerate() {
        let reference = object
            .field_def(join.reference)
            .filter(|f| matches!(&f.kind, FieldKind::Ref(target) if *target == join.target.name))
            .ok_or_else(|| Error::internal(format!("{} is not a reference to {}", join.reference, join.target.name)))?;
        let alias = Alias::new(format!("j{j}"));
        let mut on = Cond::all().add(
            Expr::col((alias.clone(), Alias::new("id"))).equals((table(object), Alias::new(reference.column.as_str()))),
        );
        if join.target.soft_delete {
            on = on.add(Expr::col((alias.clone(), Alias::new("deleted_at"))).is_null());
        }
        select.join_as(sea_orm::sea_query::JoinType::LeftJoin, table(join.target), alias, on);
    }
    let mut cond = base_condition(backend, object, &query.filter, query.include_deleted, unindexed)?;
    if let Some(cursor) = cursor {
        let (values, id) = decode_cursor(object, &query.order, cursor)?;
        cond = cond.add(keyset_condition(backend, object, &query.order, &values, &id, reverse)?);
    }
    select.cond_where(cond);
    apply_order(backend, object, &mut select, &query.order, reverse)?;
    let mut stmt = crate::store::query::with_limit(backend, &select, limit + 1);
    if packed {
        // The page is a co-routine feeding the aggregate, so its rows reach `group_concat` in
        // the page's order.
        stmt.sql = format!("SELECT group_concat(r, ' ') FROM ({})", stmt.sql);
    }
    Ok(stmt)
}

fn sort_value(record: &Record, target: &Target) -> Value {
    match target {
        Target::Field(name) => record.get(name).clone(),
        Target::Custom { key, .. } => match record.get("customFields") {
            Value::Json(Json::Object(map)) => map.get(key).map(|j| Value::Json(j.clone())).unwrap_or(Value::Null),
            _ => Value::Null,
        },
        Target::Tag => Value::Null,
    }
}

/// An opaque cursor: the sort values and the id of a record.
pub fn encode_cursor(order: &[OrderBy], record: &Record) -> String {
    let mut values: Vec<Json> = order.iter().map(|key| sort_value(record, &key.target).to_json()).collect();
    values.push(Json::String(record.id().to_string()));
    URL_SAFE_NO_PAD.encode(Json::Array(values).to_string())
}

fn decode_cursor(object: &ObjectDef, order: &[OrderBy], cursor: &str) -> Result<(Vec<Value>, Value)> {
    let bad =
        || Error::Domain(DomainError::invalid("cursor", "is not a cursor of this list (was the sort order changed?)"));
    let bytes = URL_SAFE_NO_PAD.decode(cursor.as_bytes()).map_err(|_| bad())?;
    let json: Json = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    let items = json.as_array().ok_or_else(bad)?;
    if items.len() != order.len() + 1 {
        return Err(bad());
    }
    let mut values = Vec::with_capacity(order.len());
    for (key, item) in order.iter().zip(items) {
        let kind = match &key.target {
            Target::Field(name) => object.field_def(name).map(|f| f.kind.clone()).ok_or_else(bad)?,
            Target::Custom { kind, .. } => crate::domain::filter::custom_value_kind(kind),
            Target::Tag => return Err(bad()),
        };
        // Custom numbers come back as JSON numbers; read them through their text.
        let item = match (&kind, item) {
            (FieldKind::Decimal, Json::Number(n)) => Json::String(n.to_string()),
            _ => item.clone(),
        };
        values.push(Value::from_json("cursor", &kind, &item).map_err(|_| bad())?);
    }
    let id = Value::from_json("cursor", &FieldKind::Id, &items[order.len()]).map_err(|_| bad())?;
    Ok((values, id))
}

/// The SLA policy of a ticket priority: minutes to first response and to resolution.
pub async fn sla_policy<C: ConnectionTrait>(db: &C, priority: &str) -> Result<Option<(i64, i64)>> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => "SELECT first_response_minutes, resolution_minutes FROM sla_policy WHERE priority = $1",
        _ => "SELECT first_response_minutes, resolution_minutes FROM sla_policy WHERE priority = ?",
    };
    let row = db.query_one_raw(Statement::from_sql_and_values(backend, sql, [priority.into()])).await?;
    row.map(|row| Ok((row.try_get_by_index(0)?, row.try_get_by_index(1)?))).transpose()
}
