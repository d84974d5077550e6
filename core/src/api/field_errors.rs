//! Field errors as the GraphQL spec says: each with its `path`, and `null` where it happened.
//!
//! async-graphql 7.2.1's dynamic schema reports a resolver's error without a path and leaves
//! the field's key out of `data` (`dynamic/resolve.rs` turns the error into a `ServerError` at
//! the field's position only, and the container drops the key), so a client cannot tell which
//! row of a page failed, and a nullable field is neither value nor null. [`FieldErrors`]
//! mends both in its `resolve` hook, around every field:
//!
//! - an error gets the field's path (unless it has a deeper one already);
//! - a failed nullable field is noted, and its parent (the object holding it, which has its own
//!   hook, or the whole answer) gets the key back as `null`;
//! - a failed non-null field makes its parent null instead, and so on upwards: the nearest
//!   nullable field or list item becomes `null` (spec §6.4.4, "Handling Field Errors"); at the
//!   root, `data` becomes `null`.
//!
//! Only a request with a failure does any of this: the others pay one atomic load per field.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextExecute, NextResolve, ResolveInfo};
use async_graphql::{Name, PathSegment, QueryPathNode, QueryPathSegment, Response, ServerResult, Value};

/// The extension factory, installed by `build_schema`.
#[derive(Debug, Clone, Copy)]
pub struct FieldErrors;

impl ExtensionFactory for FieldErrors {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(Request::default())
    }
}

/// What a failure asks of the answer, kept until the object it concerns is built.
#[derive(Debug, Clone, PartialEq)]
enum Mend {
    /// The object at `parent` gets `key` back, as `null`.
    Null { parent: Vec<PathSegment>, key: Name },
    /// The field or list item at `at` becomes `null` (a non-null field under it failed).
    Nullify { at: Vec<PathSegment> },
}

/// One request's failures.
#[derive(Debug, Default)]
struct Request {
    failed: AtomicBool,
    mends: Mutex<Vec<Mend>>,
}

/// The path of a field, root first.
fn path_of(node: &QueryPathNode<'_>) -> Vec<PathSegment> {
    let mut path: Vec<PathSegment> = std::iter::once(node)
        .chain(node.parents())
        .map(|node| match node.segment {
            QueryPathSegment::Name(name) => PathSegment::Field(name.to_owned()),
            QueryPathSegment::Index(index) => PathSegment::Index(index),
        })
        .collect();
    path.reverse();
    path
}

/// Whether a type as async-graphql writes it (`String!`, `[Contact!]`) allows null.
fn nullable(ty: &str) -> bool {
    !ty.trim_end().ends_with('!')
}

/// Whether the items of a list type allow null (`[Contact]`: yes; `[Contact!]!`: no).
fn items_nullable(ty: &str) -> bool {
    let inner = ty.trim_end().trim_end_matches('!');
    inner.strip_prefix('[').and_then(|t| t.strip_suffix(']')).is_some_and(nullable)
}

impl Request {
    fn take(&self, pick: impl Fn(&Mend) -> bool) -> Vec<Mend> {
        let mut mends = self.mends.lock().unwrap_or_else(PoisonError::into_inner);
        let (picked, kept): (Vec<Mend>, Vec<Mend>) = mends.drain(..).partition(|m| pick(m));
        *mends = kept;
        picked
    }

    fn note(&self, mend: Mend) {
        self.failed.store(true, Ordering::Release);
        self.mends.lock().unwrap_or_else(PoisonError::into_inner).push(mend);
    }

    /// Applies the mends that concern the field at `path` (answering `value`, of type `ty`)
    /// or the items of its list; whether the field itself must become null.
    fn mend(&self, path: &[PathSegment], ty: &str, value: &mut Value) -> bool {
        let here = |p: &[PathSegment]| {
            p.len() == path.len() && p == path
                || p.len() == path.len() + 1 && p.starts_with(path) && matches!(p[path.len()], PathSegment::Index(_))
        };
        let mends = self.take(|m| match m {
            Mend::Null { parent, .. } => here(parent),
            Mend::Nullify { at } => here(at),
        });
        let mut null_self = false;
        for mend in mends {
            match mend {
                Mend::Null { parent, key } => {
                    let target = match parent.get(path.len()) {
                        Some(PathSegment::Index(i)) => match value {
                            Value::List(items) => items.get_mut(*i),
                            _ => None,
                        },
                        _ => Some(&mut *value),
                    };
                    if let Some(Value::Object(map)) = target {
                        map.entry(key).or_insert(Value::Null);
                    }
                }
                Mend::Nullify { at } if at.len() == path.len() => null_self = true,
                Mend::Nullify { at } => match (at.get(path.len()), &mut *value) {
                    (Some(PathSegment::Index(i)), Value::List(items)) if items_nullable(ty) => {
                        if let Some(item) = items.get_mut(*i) {
                            *item = Value::Null;
                        }
                    }
                    _ => null_self = true,
                },
            }
        }
        null_self
    }

    /// The mends that remain at the root, applied to the whole answer.
    fn mend_root(&self, response: &mut Response) {
        for mend in self.take(|_| true) {
            match mend {
                Mend::Null { parent, key } if parent.is_empty() => {
                    if let Value::Object(map) = &mut response.data {
                        map.entry(key).or_insert(Value::Null);
                    }
                }
                Mend::Nullify { at } if at.is_empty() => response.data = Value::Null,
                // Anything deeper belonged to a field whose hook has run: nothing is left.
                _ => {}
            }
        }
    }

    /// A field whose answer cannot stand: null where its type allows, else its parent's task.
    fn fail(&self, path: &[PathSegment], ty: &str) {
        let Some((PathSegment::Field(key), parent)) = path.split_last() else { return };
        if nullable(ty) {
            self.note(Mend::Null { parent: parent.to_vec(), key: Name::new(key) });
        } else {
            self.note(Mend::Nullify { at: parent.to_vec() });
        }
    }
}

#[async_trait::async_trait]
impl Extension for Request {
    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let mut response = next.run(ctx, operation_name).await;
        if self.failed.load(Ordering::Acquire) {
            self.mend_root(&mut response);
        }
        response
    }

    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        let (ty, node) = (info.return_type, info.path_node);
        match next.run(ctx, info).await {
            Ok(value) if !self.failed.load(Ordering::Acquire) => Ok(value),
            Ok(mut value) => {
                let path = path_of(node);
                let null_self = match &mut value {
                    Some(v) => self.mend(&path, ty, v),
                    None => self.mend(&path, ty, &mut Value::Null),
                };
                if null_self {
                    if !nullable(ty) {
                        // Its parent becomes null in turn; the error that caused it is reported.
                        if let Some((_, parent)) = path.split_last() {
                            self.note(Mend::Nullify { at: parent.to_vec() });
                        }
                    }
                    return Ok(Some(Value::Null));
                }
                Ok(value)
            }
            Err(mut error) => {
                let path = path_of(node);
                if error.path.is_empty() {
                    error.path = path.clone();
                }
                self.fail(&path, ty);
                Err(error)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nullability_is_read_from_the_type() {
        assert!(nullable("String"));
        assert!(!nullable("String!"));
        assert!(nullable("[Contact!]"));
        assert!(items_nullable("[Contact]!"));
        assert!(!items_nullable("[Contact!]!"));
        assert!(!items_nullable("Contact"));
    }

    fn field(name: &str) -> PathSegment {
        PathSegment::Field(name.to_owned())
    }

    #[test]
    fn a_failed_nullable_field_comes_back_as_null_in_its_object() {
        let request = Request::default();
        let path = vec![field("contacts"), field("edges"), PathSegment::Index(0), field("node")];
        request.fail(&[path.clone(), vec![field("status")]].concat(), "Status");
        let mut node = Value::from_json(serde_json::json!({"name": "Eve"})).unwrap();
        assert!(!request.mend(&path, "Contact!", &mut node));
        assert_eq!(node.into_json().unwrap(), serde_json::json!({"name": "Eve", "status": null}));
    }

    #[test]
    fn a_failed_non_null_field_nulls_the_nearest_nullable_place() {
        let request = Request::default();
        let edges = vec![field("contacts"), field("edges")];
        let node = [edges.clone(), vec![PathSegment::Index(1), field("node")]].concat();
        // `node.name: String!` failed: `node: Contact!` must become null, and so must the
        // edge holding it, which is an item of `[ContactEdge]` (nullable items).
        request.fail(&[node.clone(), vec![field("name")]].concat(), "String!");
        let mut value = Value::from_json(serde_json::json!({})).unwrap();
        assert!(request.mend(&node, "Contact!", &mut value), "node nulls itself");
        request.note(Mend::Nullify { at: node[..node.len() - 1].to_vec() });
        let mut list = Value::from_json(serde_json::json!([{"node": {"name": "A"}}, {"node": null}])).unwrap();
        assert!(!request.mend(&edges, "[ContactEdge]!", &mut list), "the list keeps itself");
        assert_eq!(list.into_json().unwrap(), serde_json::json!([{"node": {"name": "A"}}, null]));
        // With non-null items the whole list goes.
        request.note(Mend::Nullify { at: [edges.clone(), vec![PathSegment::Index(0)]].concat() });
        let mut list = Value::from_json(serde_json::json!([{}])).unwrap();
        assert!(request.mend(&edges, "[ContactEdge!]!", &mut list));
    }

    #[test]
    fn at_the_root_a_nullable_field_is_null_and_a_non_null_one_nulls_data() {
        let request = Request::default();
        request.fail(&[field("big")], "ContactConnection");
        let mut response = Response::new(Value::from_json(serde_json::json!({"small": 1})).unwrap());
        request.mend_root(&mut response);
        assert_eq!(response.data.clone().into_json().unwrap(), serde_json::json!({"small": 1, "big": null}));
        request.fail(&[field("updateContact")], "Contact!");
        request.mend_root(&mut response);
        assert_eq!(response.data, Value::Null);
    }
}
