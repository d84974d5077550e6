//! A connection's `edges`, answered directly: the value of the whole `edges { cursor node { .. } }`
//! subtree built from the page in one pass, instead of async-graphql resolving each field of each
//! node through its own future (for a page of 50 that is some 500 futures, the largest cost of a
//! page after SQLite's).
//!
//! Only plain selections qualify: under `edges`, `cursor`, `node` and `__typename`; under `node`,
//! stored fields, `__typename` and forward relations (`company { .. }`) whose targets the page
//! read ahead, selecting their stored fields and `__typename`. No fragments and no response key
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

use crate::api::loader::Prefetched;
use crate::domain::object::{FieldDef, ObjectDef};
use crate::domain::value::FieldKind;
use crate::service::Kith;
use crate::store::records::{Page, Record};

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

/// Builds, for each plain `edges` selection of the connection field being resolved, its value
/// from `page`, and leaves it in the request's [`DirectEdges`]. Selections that do not qualify
/// are left to the executor.
pub fn prepare(ctx: &ResolverContext<'_>, kith: &Kith, def: &ObjectDef, page: &Page) {
    let Ok(direct) = ctx.data::<DirectEdges>() else { return };
    let Some(path) = ctx.path_node.as_ref().map(ToString::to_string) else { return };
    let prefetched = ctx.data::<Prefetched>().ok();
    let selection = &ctx.item.node.selection_set.node;
    if !plain(selection) {
        return;
    }
    for item in &selection.items {
        let Selection::Field(field) = &item.node else { continue };
        if field.node.name.node != "edges" {
            continue;
        }
        let Some(plan) = EdgePlan::new(kith, def, &field.node.selection_set.node) else { continue };
        let Some(value) = plan.value(page, prefetched) else { continue };
        let key = (&field.node as *const AstField as usize, format!("{path}.{}", field.node.response_key().node));
        direct.put(key, value);
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
    /// A forward relation: the reference field, the target object and what to read of it.
    Relation {
        reference: String,
        target: String,
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
    fn new(kith: &Kith, def: &ObjectDef, selection: &SelectionSet) -> Option<EdgePlan> {
        if !plain(selection) {
            return None;
        }
        let mut columns = Vec::with_capacity(selection.items.len());
        for item in &selection.items {
            let Selection::Field(field) = &item.node else { return None };
            let column = match field.node.name.node.as_str() {
                "__typename" => EdgeColumn::Typename(GqlValue::String(format!("{}Edge", def.type_name))),
                "cursor" => EdgeColumn::Cursor,
                "node" => EdgeColumn::Node(NodePlan::new(kith, def, &field.node.selection_set.node, true)?),
                _ => return None,
            };
            columns.push((field.node.response_key().node.clone(), column));
        }
        Some(EdgePlan { columns })
    }

    /// The `edges` list, or `None` when a value is not one the plan can give exactly.
    fn value(&self, page: &Page, prefetched: Option<&Prefetched>) -> Option<GqlValue> {
        let mut edges = Vec::with_capacity(page.records.len());
        for (cursor, record) in &page.records {
            let mut edge = IndexMap::with_capacity(self.columns.len());
            for (key, column) in &self.columns {
                let value = match column {
                    EdgeColumn::Typename(name) => name.clone(),
                    EdgeColumn::Cursor => GqlValue::String(cursor.clone()),
                    EdgeColumn::Node(plan) => plan.value(record, prefetched)?,
                };
                edge.insert(key.clone(), value);
            }
            edges.push(GqlValue::Object(edge));
        }
        Some(GqlValue::List(edges))
    }
}

impl NodePlan {
    /// `relations`: whether forward relations may be selected (only on the page's own records,
    /// whose relation targets the page reads ahead).
    fn new(kith: &Kith, def: &ObjectDef, selection: &SelectionSet, relations: bool) -> Option<NodePlan> {
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
                if !relations {
                    return None;
                }
                let target_def = kith.object(target).ok()?;
                let plan = NodePlan::new(kith, &target_def, &field.node.selection_set.node, false)?;
                NodeColumn::Relation { reference, target: target.clone(), plan }
            };
            columns.push((field.node.response_key().node.clone(), column));
        }
        Some(NodePlan { columns })
    }

    fn value(&self, record: &Record, prefetched: Option<&Prefetched>) -> Option<GqlValue> {
        let mut node = IndexMap::with_capacity(self.columns.len());
        for (key, column) in &self.columns {
            let value = match column {
                NodeColumn::Typename(name) => name.clone(),
                NodeColumn::Stored(stored) => stored.value(record)?,
                NodeColumn::Relation { reference, target, plan } => match record.get(reference).as_uuid() {
                    None => GqlValue::Null,
                    // Read ahead (`None`: not read, left to the executor and its loader).
                    Some(id) => match prefetched?.get(target, id)? {
                        Some(found) => plan.value(&found, None)?,
                        None => GqlValue::Null,
                    },
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

/// Whether the schema declares a stored field non-null (the rule of `schema::object_type`).
pub(crate) fn non_null(field: &FieldDef) -> bool {
    field.name == "id"
        || field.name == "createdAt"
        || field.name == "version"
        || (field.required && field.access != crate::domain::object::Access::ReadOnly)
}
