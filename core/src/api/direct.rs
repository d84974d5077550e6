//! A connection's `edges`, answered directly: the value of the whole `edges { cursor node { .. } }`
//! subtree built from the page in one pass, instead of async-graphql resolving each field of each
//! node through its own future (for a page of 50 that is some 500 futures, the largest cost of a
//! page after SQLite's).
//!
//! Only plain selections qualify: under `edges`, `cursor`, `node` and `__typename`; under `node`,
//! stored fields, `__typename` and forward relations (`company { .. }`) selecting their stored
//! fields and `__typename`, each a field the caller's role may read (one it may not is answered
//! by the executor, with its FORBIDDEN error); those relations are read in the page's own statement (a `LEFT JOIN`
//! by id, live targets only), so such a page is one query. No fragments and no response key
//! twice (`@skip` and `@include` are applied to the document before execution, so what they
//! leave qualifies). Anything else (tags, computed fields, reverse connections…) leaves the
//! `edges` field to the executor, which answers it as before. A direct value is exactly what the
//! executor would have produced: the same response keys in the same order and the same values,
//! and it is only built when no field in it could have produced an error.
//!
//! The connection's resolver builds the value and leaves it in the request's [`DirectEdges`],
//! keyed by the `edges` field of the query document and the path it is resolved at;
//! [`DirectEdgesExtension`] hands it to the executor when that field comes up, before any of
//! its resolvers run.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use async_graphql::dynamic::ResolverContext;
use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextResolve, ResolveInfo};
use async_graphql::indexmap::IndexMap;
use async_graphql::parser::types::{Field as AstField, Selection, SelectionSet};
use async_graphql::{Name, ServerResult, Value as GqlValue};

use crate::api::object::non_null;
use crate::domain::actor::Role;
use crate::domain::filter::OrderBy;
use crate::domain::object::ObjectDef;
use crate::domain::value::FieldKind;
use crate::domain::value::Value;
use crate::service::Kith;
use crate::store::records::{Join, Page, Record, RowPage};

/// Where a direct value belongs: the `edges` field of the document (its address: one field of
/// the parsed document, alive for the whole request) and the path it is resolved at.
type Key = (usize, String);

/// The direct `edges` values of one request, waiting for their fields. Clones share them.
#[derive(Clone, Default)]
pub struct DirectEdges(Arc<Waiting>);

#[derive(Default)]
struct Waiting {
    values: Mutex<HashMap<Key, GqlValue>>,
    answered: AtomicUsize,
}

impl DirectEdges {
    fn put(&self, key: Key, value: GqlValue) {
        self.0.values.lock().unwrap_or_else(PoisonError::into_inner).insert(key, value);
    }

    fn take(&self, key: &Key) -> Option<GqlValue> {
        let mut values = self.0.values.lock().unwrap_or_else(PoisonError::into_inner);
        let value = if values.is_empty() { None } else { values.remove(key) };
        if value.is_some() {
            self.0.answered.fetch_add(1, Ordering::Relaxed);
        }
        value
    }

    /// How many `edges` fields were answered directly.
    pub fn answered(&self) -> usize {
        self.0.answered.load(Ordering::Relaxed)
    }

    /// How many direct values still wait for their field (none once a request is answered).
    pub fn waiting(&self) -> usize {
        self.0.values.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

/// The extension that answers an `edges` field from [`DirectEdges`] when its connection left a
/// value for it; every other field goes on to its resolver.
pub struct DirectEdgesExtension;

impl ExtensionFactory for DirectEdgesExtension {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(DirectEdgesExtension)
    }
}

#[async_trait::async_trait]
impl Extension for DirectEdgesExtension {
    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<GqlValue>> {
        if info.name == "edges"
            && let Some(direct) = ctx.data_opt::<DirectEdges>()
            && let Some(value) = direct.take(&(info.field as *const AstField as usize, info.path_node.to_string()))
        {
            return Ok(Some(value));
        }
        next.run(ctx, info).await
    }
}

/// How a connection's `edges` will be answered directly: one [`EdgePlan`] per `edges` field
/// of the connection, and the forward relations the page must read with it (joined in its
/// statement, so a page with `company { name }` is one query).
pub struct DirectPlan {
    edges: Vec<(usize, Name, EdgePlan)>,
    joins: Vec<JoinSpec>,
}

/// A relation the page reads with a join: the reference field, its target and the target's
/// fields the answer needs.
struct JoinSpec {
    reference: String,
    target: Arc<ObjectDef>,
    fields: Vec<String>,
}

/// The plan for the connection field being resolved, when every `edges` field under it
/// qualifies (see the module docs); `None` leaves the connection to the executor as a whole.
pub fn plan(ctx: &ResolverContext<'_>, kith: &Kith, def: &ObjectDef) -> Option<DirectPlan> {
    ctx.data::<DirectEdges>().ok()?;
    let role = crate::api::auth::caller_role(ctx);
    let selection = &ctx.item.node.selection_set.node;
    if !plain(selection) {
        return None;
    }
    let mut joins = Vec::new();
    let mut edges = Vec::new();
    for item in &selection.items {
        let Selection::Field(field) = &item.node else { return None };
        if field.node.name.node != "edges" {
            continue;
        }
        let plan = EdgePlan::new(kith, def, &field.node.selection_set.node, &mut joins, role)?;
        edges.push((&field.node as *const AstField as usize, field.node.response_key().node.clone(), plan));
    }
    if edges.is_empty() {
        return None;
    }
    Some(DirectPlan { edges, joins })
}

impl DirectPlan {
    /// The relations to read with the page, for `records::list_joined`.
    pub fn joins(&self) -> Vec<Join<'_>> {
        self.joins
            .iter()
            .map(|join| Join { reference: &join.reference, target: &join.target, fields: &join.fields })
            .collect()
    }

    /// Builds each `edges` value from `rows` (read with [`DirectPlan::joins`]) and leaves it in
    /// the request's [`DirectEdges`]; gives back the page the connection keeps for its other
    /// fields (`pageInfo`). A value the plan cannot give exactly is left to the executor, which
    /// then reads the page's records.
    ///
    /// When every `edges` value is given, values used once move into the answer instead of
    /// being copied, and the page keeps only cursors and ids.
    pub fn answer(mut self, ctx: &ResolverContext<'_>, mut rows: RowPage, order: &[OrderBy], cursors: bool) -> Page {
        let mut uses = vec![0u32; rows.join_offset(rows.joined_columns.len())];
        let mut bound = true;
        for (_, _, plan) in &mut self.edges {
            bound &= plan.bind(&rows, &mut uses);
        }
        let direct = ctx.data::<DirectEdges>().ok();
        let path = ctx.path_node.as_ref().map(ToString::to_string);
        let (Some(direct), Some(path), true) = (direct, path, bound) else {
            return rows.into_page(order, cursors);
        };
        let cursors = cursors || self.edges.iter().any(|(_, _, plan)| plan.has_cursor());
        // Cursors and ids before any value moves out of its row.
        let (cursor_texts, ids): (Vec<String>, Vec<_>) = if cursors {
            (0..rows.rows.len()).map(|row| (rows.cursor(order, row), rows.id(row))).unzip()
        } else {
            (Vec::new(), Vec::new())
        };
        let valid: Vec<bool> = self.edges.iter().map(|(_, _, plan)| plan.valid(&rows.rows)).collect();
        let all = valid.iter().all(|v| *v);
        for ((field, key, plan), valid) in self.edges.iter().zip(&valid) {
            if *valid {
                let value = plan.value(&mut rows.rows, &cursor_texts, all.then_some(uses.as_slice()));
                direct.put((*field, format!("{path}.{key}")), value);
            }
        }
        if !all {
            return rows.into_page(order, cursors);
        }
        // Every `edges` field is answered: the executor reads no record of this page again.
        let records = cursor_texts
            .into_iter()
            .zip(ids)
            .map(|(cursor, id)| {
                let mut fields = crate::domain::value::Fields::new();
                fields.insert("id".to_owned(), Value::Uuid(id));
                (cursor, Record { fields })
            })
            .collect();
        Page { records, has_next: rows.has_next, has_previous: rows.has_previous, joined: Vec::new() }
    }
}

/// Only fields, without directives, each response key once.
fn plain(selection: &SelectionSet) -> bool {
    let mut keys: Vec<&str> = Vec::with_capacity(selection.items.len());
    for item in &selection.items {
        let Selection::Field(field) = &item.node else { return false };
        if !field.node.directives.is_empty() {
            return false;
        }
        let key = field.node.response_key().node.as_str();
        if keys.contains(&key) {
            return false;
        }
        keys.push(key);
    }
    true
}

/// What one edge of the answer holds, in response order.
struct EdgePlan {
    columns: Vec<(Name, EdgeColumn)>,
}

enum EdgeColumn {
    Typename(GqlValue),
    Cursor,
    Node(NodePlan),
}

/// What one record of the answer holds, in response order.
struct NodePlan {
    columns: Vec<(Name, NodeColumn)>,
}

enum NodeColumn {
    Typename(GqlValue),
    Stored(Stored),
    /// A forward relation: which of the page's joins reads it, and what to answer of it.
    Relation {
        join: usize,
        /// The column of the target's `id` in the page's rows, once bound.
        id_at: Option<usize>,
        plan: NodePlan,
    },
}

/// A stored field: its name and what GraphQL makes of its values.
struct Stored {
    name: String,
    kind: FieldKind,
    non_null: bool,
    /// Its column in the page's rows, once bound.
    at: Option<usize>,
}

impl EdgePlan {
    fn new(
        kith: &Kith,
        def: &ObjectDef,
        selection: &SelectionSet,
        joins: &mut Vec<JoinSpec>,
        role: Role,
    ) -> Option<EdgePlan> {
        if !plain(selection) {
            return None;
        }
        let mut columns = Vec::with_capacity(selection.items.len());
        for item in &selection.items {
            let Selection::Field(field) = &item.node else { return None };
            let column = match field.node.name.node.as_str() {
                "__typename" => EdgeColumn::Typename(GqlValue::String(format!("{}Edge", def.type_name))),
                "cursor" => EdgeColumn::Cursor,
                "node" => {
                    EdgeColumn::Node(NodePlan::new(kith, def, &field.node.selection_set.node, Some(joins), role)?)
                }
                _ => return None,
            };
            columns.push((field.node.response_key().node.clone(), column));
        }
        Some(EdgePlan { columns })
    }

    /// Finds each stored field's column in `rows` and counts the uses of each column in
    /// `uses`; false when a column is missing.
    fn bind(&mut self, rows: &RowPage, uses: &mut [u32]) -> bool {
        self.columns.iter_mut().all(|(_, column)| match column {
            EdgeColumn::Node(plan) => plan.bind(rows, None, uses),
            _ => true,
        })
    }

    fn has_cursor(&self) -> bool {
        self.columns.iter().any(|(_, column)| matches!(column, EdgeColumn::Cursor))
    }

    /// Whether every row gives a value the plan can answer exactly.
    fn valid(&self, rows: &[Vec<Value>]) -> bool {
        rows.iter().all(|row| {
            self.columns.iter().all(|(_, column)| match column {
                EdgeColumn::Node(plan) => plan.valid(row),
                _ => true,
            })
        })
    }

    /// The `edges` list (check [`EdgePlan::valid`] first). With `moves` (the uses of each
    /// column), a value used once is moved out of its row.
    fn value(&self, rows: &mut [Vec<Value>], cursors: &[String], moves: Option<&[u32]>) -> GqlValue {
        let mut edges = Vec::with_capacity(rows.len());
        for (i, row) in rows.iter_mut().enumerate() {
            let mut edge = IndexMap::with_capacity(self.columns.len());
            for (key, column) in &self.columns {
                let value = match column {
                    EdgeColumn::Typename(name) => name.clone(),
                    EdgeColumn::Cursor => cursors.get(i).map(|c| GqlValue::String(c.clone())).unwrap_or(GqlValue::Null),
                    EdgeColumn::Node(plan) => plan.value(row, moves),
                };
                edge.insert(key.clone(), value);
            }
            edges.push(GqlValue::Object(edge));
        }
        GqlValue::List(edges)
    }
}

impl NodePlan {
    /// `joins`: where the page's forward relations are planned (only on the page's own
    /// records; a relation's target selects stored fields only). `None` when the selection
    /// reads a field (or a relation through a reference) `role` may not read: its error is the
    /// executor's to give.
    fn new(
        kith: &Kith,
        def: &ObjectDef,
        selection: &SelectionSet,
        mut joins: Option<&mut Vec<JoinSpec>>,
        role: Role,
    ) -> Option<NodePlan> {
        if !plain(selection) {
            return None;
        }
        let mut columns = Vec::with_capacity(selection.items.len());
        for item in &selection.items {
            let Selection::Field(field) = &item.node else { return None };
            let name = field.node.name.node.as_str();
            let column = if name == "__typename" {
                NodeColumn::Typename(GqlValue::String(def.type_name.clone()))
            } else if let Some(stored) = def.field_def(name) {
                if !stored.readable_by(role) {
                    return None;
                }
                NodeColumn::Stored(Stored {
                    name: name.to_owned(),
                    kind: stored.kind.clone(),
                    non_null: non_null(stored),
                    at: None,
                })
            } else {
                let reference = format!("{name}Id");
                let reference_def = def.field_def(&reference).filter(|f| f.readable_by(role))?;
                let FieldKind::Ref(target) = &reference_def.kind else { return None };
                let joins = joins.as_deref_mut()?;
                let target = kith.object(target).ok()?;
                let plan = NodePlan::new(kith, &target, &field.node.selection_set.node, None, role)?;
                let join = match joins.iter().position(|j| j.reference == reference) {
                    Some(j) => j,
                    None => {
                        joins.push(JoinSpec { reference, target, fields: Vec::new() });
                        joins.len() - 1
                    }
                };
                for (_, column) in &plan.columns {
                    if let NodeColumn::Stored(stored) = column
                        && !joins[join].fields.contains(&stored.name)
                    {
                        joins[join].fields.push(stored.name.clone());
                    }
                }
                NodeColumn::Relation { join, id_at: None, plan }
            };
            columns.push((field.node.response_key().node.clone(), column));
        }
        Some(NodePlan { columns })
    }

    /// See [`EdgePlan::bind`]; `join`: the join whose columns this plan reads (`None`: the
    /// page's own).
    fn bind(&mut self, rows: &RowPage, join: Option<usize>, uses: &mut [u32]) -> bool {
        let (offset, names) = match join {
            None => (0, &rows.columns),
            Some(j) => match rows.joined_columns.get(j) {
                Some(names) => (rows.join_offset(j), names),
                None => return false,
            },
        };
        let at = |name: &str| names.iter().position(|n| n == name).map(|i| offset + i);
        for (_, column) in &mut self.columns {
            let found = match column {
                NodeColumn::Typename(_) => continue,
                NodeColumn::Stored(stored) => {
                    stored.at = at(&stored.name);
                    stored.at
                }
                NodeColumn::Relation { join, id_at, plan } => {
                    if !plan.bind(rows, Some(*join), uses) {
                        return false;
                    }
                    *id_at = rows
                        .joined_columns
                        .get(*join)
                        .and_then(|names| names.iter().position(|n| n == "id").map(|i| rows.join_offset(*join) + i));
                    *id_at
                }
            };
            match found.and_then(|i| uses.get_mut(i)) {
                Some(count) => *count += 1,
                None => return false,
            }
        }
        true
    }

    fn valid(&self, row: &[Value]) -> bool {
        self.columns.iter().all(|(_, column)| match column {
            NodeColumn::Typename(_) => true,
            NodeColumn::Stored(stored) => stored.valid(row),
            NodeColumn::Relation { id_at, plan, .. } => match id_at.and_then(|i| row.get(i)) {
                Some(Value::Null) => true,
                Some(_) => plan.valid(row),
                None => false,
            },
        })
    }

    /// The node's value from its row (check [`NodePlan::valid`] first).
    fn value(&self, row: &mut [Value], moves: Option<&[u32]>) -> GqlValue {
        let mut node = IndexMap::with_capacity(self.columns.len());
        for (key, column) in &self.columns {
            let value = match column {
                NodeColumn::Typename(name) => name.clone(),
                NodeColumn::Stored(stored) => stored.value(row, moves),
                NodeColumn::Relation { id_at, plan, .. } => match id_at.and_then(|i| row.get(i)) {
                    Some(Value::Null) | None => GqlValue::Null,
                    Some(_) => plan.value(row, moves),
                },
            };
            node.insert(key.clone(), value);
        }
        GqlValue::Object(node)
    }
}

impl Stored {
    fn valid(&self, row: &[Value]) -> bool {
        match (self.at.and_then(|i| row.get(i)), &self.kind) {
            (None, _) => false,
            (Some(Value::Null), _) => !self.non_null,
            (Some(Value::Text(name)), FieldKind::Enum(values)) => values.iter().any(|v| v == name),
            (Some(_), FieldKind::Enum(_)) => false,
            (Some(_), _) => true,
        }
    }

    /// The field's value as its resolver gives it (check [`Stored::valid`] first): moved out
    /// of the row when `moves` says this is the column's only use.
    fn value(&self, row: &mut [Value], moves: Option<&[u32]>) -> GqlValue {
        let Some(at) = self.at else { return GqlValue::Null };
        let only_use = moves.and_then(|uses| uses.get(at)).is_some_and(|n| *n == 1);
        match row.get_mut(at) {
            Some(value) if only_use => {
                crate::api::object::into_gql_value(&self.kind, std::mem::replace(value, Value::Null))
            }
            Some(value) => crate::api::object::to_gql_value(&self.kind, value),
            None => GqlValue::Null,
        }
    }
}
