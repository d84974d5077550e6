//! A connection's `edges`, answered directly: the value of the whole `edges { cursor node { .. } }`
//! subtree built from the page in one pass, instead of async-graphql resolving each field of each
//! node through its own future (for a page of 50 that is some 500 futures, the largest cost of a
//! page after SQLite's).
//!
//! Only plain selections qualify: under `edges`, `cursor`, `node` and `__typename`; under `node`,
//! stored fields, `__typename` and forward relations (`company { .. }`) selecting their stored
//! fields and `__typename`; those relations are read in the page's own statement (a `LEFT JOIN`
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

use crate::api::schema::non_null;
use crate::domain::object::ObjectDef;
use crate::domain::value::FieldKind;
use crate::service::Kith;
use crate::store::records::{Join, Page, Record};

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
        let plan = EdgePlan::new(kith, def, &field.node.selection_set.node, &mut joins)?;
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

    /// Builds each `edges` value from `page` (read with [`DirectPlan::joins`]) and leaves it in
    /// the request's [`DirectEdges`]. A value the plan cannot give exactly is left to the
    /// executor.
    pub fn answer(&self, ctx: &ResolverContext<'_>, page: &Page) {
        let Ok(direct) = ctx.data::<DirectEdges>() else { return };
        let Some(path) = ctx.path_node.as_ref().map(ToString::to_string) else { return };
        for (field, key, plan) in &self.edges {
            if let Some(value) = plan.value(page) {
                direct.put((*field, format!("{path}.{key}")), value);
            }
        }
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
        plan: NodePlan,
    },
}

/// A stored field: its name and what GraphQL makes of its values.
struct Stored {
    name: String,
    kind: FieldKind,
    non_null: bool,
}

impl EdgePlan {
    fn new(kith: &Kith, def: &ObjectDef, selection: &SelectionSet, joins: &mut Vec<JoinSpec>) -> Option<EdgePlan> {
        if !plain(selection) {
            return None;
        }
        let mut columns = Vec::with_capacity(selection.items.len());
        for item in &selection.items {
            let Selection::Field(field) = &item.node else { return None };
            let column = match field.node.name.node.as_str() {
                "__typename" => EdgeColumn::Typename(GqlValue::String(format!("{}Edge", def.type_name))),
                "cursor" => EdgeColumn::Cursor,
                "node" => EdgeColumn::Node(NodePlan::new(kith, def, &field.node.selection_set.node, Some(joins))?),
                _ => return None,
            };
            columns.push((field.node.response_key().node.clone(), column));
        }
        Some(EdgePlan { columns })
    }

    /// The `edges` list, or `None` when a value is not one the plan can give exactly.
    fn value(&self, page: &Page) -> Option<GqlValue> {
        let mut edges = Vec::with_capacity(page.records.len());
        for (i, (cursor, record)) in page.records.iter().enumerate() {
            let joined = page.joined.get(i).map(Vec::as_slice).unwrap_or_default();
            let mut edge = IndexMap::with_capacity(self.columns.len());
            for (key, column) in &self.columns {
                let value = match column {
                    EdgeColumn::Typename(name) => name.clone(),
                    EdgeColumn::Cursor => GqlValue::String(cursor.clone()),
                    EdgeColumn::Node(plan) => plan.value(record, joined)?,
                };
                edge.insert(key.clone(), value);
            }
            edges.push(GqlValue::Object(edge));
        }
        Some(GqlValue::List(edges))
    }
}

impl NodePlan {
    /// `joins`: where the page's forward relations are planned (only on the page's own
    /// records; a relation's target selects stored fields only).
    fn new(
        kith: &Kith,
        def: &ObjectDef,
        selection: &SelectionSet,
        mut joins: Option<&mut Vec<JoinSpec>>,
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
                NodeColumn::Stored(Stored {
                    name: name.to_owned(),
                    kind: stored.kind.clone(),
                    non_null: non_null(stored),
                })
            } else {
                let reference = format!("{name}Id");
                let Some(FieldKind::Ref(target)) = def.field_def(&reference).map(|f| &f.kind) else { return None };
                let joins = joins.as_deref_mut()?;
                let target = kith.object(target).ok()?;
                let plan = NodePlan::new(kith, &target, &field.node.selection_set.node, None)?;
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
                NodeColumn::Relation { join, plan }
            };
            columns.push((field.node.response_key().node.clone(), column));
        }
        Some(NodePlan { columns })
    }

    /// `joined`: the record's relation targets, by join.
    fn value(&self, record: &Record, joined: &[Option<Record>]) -> Option<GqlValue> {
        let mut node = IndexMap::with_capacity(self.columns.len());
        for (key, column) in &self.columns {
            let value = match column {
                NodeColumn::Typename(name) => name.clone(),
                NodeColumn::Stored(stored) => stored.value(record)?,
                NodeColumn::Relation { join, plan } => match joined.get(*join)? {
                    Some(target) => plan.value(target, &[])?,
                    None => GqlValue::Null,
                },
            };
            node.insert(key.clone(), value);
        }
        Some(GqlValue::Object(node))
    }
}

impl Stored {
    /// The field's value as its resolver gives it; `None` for one the executor would refuse (a
    /// null in a non-null field, an enum value the enum does not have).
    fn value(&self, record: &Record) -> Option<GqlValue> {
        let value = crate::api::schema::to_gql_value(&self.kind, record.get(&self.name));
        match (&value, &self.kind) {
            (GqlValue::Null, _) if self.non_null => None,
            (GqlValue::Null, _) => Some(value),
            (GqlValue::Enum(name), FieldKind::Enum(values)) if values.iter().any(|v| v == name.as_str()) => Some(value),
            (_, FieldKind::Enum(_)) => None,
            _ => Some(value),
        }
    }
}
