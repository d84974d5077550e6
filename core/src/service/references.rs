//! References that follow the record they point at. A merge re-points every reference to the
//! merged record at the kept one; a delete applies each referencing field's `on_delete`
//! (`restrict`, `set_null`, `cascade`, `keep`), and a restore brings back what its delete
//! cascaded to. Both reach every object with such a field ([`Registry::referrers`]): core
//! objects, the enabled plugins' objects and the dormant objects of disabled plugins, whose
//! tables stay while their plugin is off.
//!
//! A record of a live object changes as any update or delete does (the rules, the plugins'
//! `before-write`, a new version, history, an audit entry, search, an event). A record of a
//! dormant object changes with a plain versioned `UPDATE` and an audit entry, and no event: no
//! API shows it and no plugin would receive one (enabling a plugin starts its delivery at the
//! present, so an event now would reach nobody, ever).
//!
//! A cascade is undone by its timestamp. A delete writes `deletedAt = tx.now` on its record and
//! on every record it cascades to, in one transaction; restoring the record restores the
//! records that reference it through a cascading field and were deleted at that same instant,
//! which are exactly those its delete cascaded to. A record deleted on its own, before or
//! after, has another `deletedAt` (`tx.now` is taken per write, to the microsecond) and stays
//! deleted. This needs no bookkeeping column on every table, core and plugin alike, and no
//! migration.

use futures_util::future::BoxFuture;
use serde_json::{Map, Value as Json, json};
use uuid::Uuid;

use crate::domain::DomainError;
use crate::domain::filter::{Condition, Filter, Op, Target};
use crate::domain::object::{FieldDef, ObjectDef, OnDelete, Referrer, Registry};
use crate::domain::value::{FieldKind, Fields, Value};
use crate::error::Result;
use crate::service::records::{Effects, apply_update, delete_record, restore_record, write_bookkeeping};
use crate::store::Tx;
use crate::store::records::{ListQuery, PageRequest, Record, count, get, list};

/// How many cascades a delete or restore may follow in a row (a record deleted because the
/// one it references was, because the one that references was, ...); deeper is refused.
const MAX_DEPTH: usize = 16;

/// Records of `field`'s object that reference `id`.
fn refers_to(field: &FieldDef, id: Uuid) -> Filter {
    Filter::Cond(Condition {
        target: Target::Field(field.name.clone()),
        kind: field.kind.clone(),
        op: Op::Eq(Value::Uuid(id)),
    })
}

/// Every record of `def` matching `filter` (deleted ones too with `include_deleted`), read
/// page by page before any of them changes.
async fn matching(tx: &Tx, def: &ObjectDef, filter: &Filter, include_deleted: bool) -> Result<Vec<Record>> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let query = ListQuery {
            filter: filter.clone(),
            order: Vec::new(),
            page: PageRequest::Forward { first: 200, after: after.take() },
            include_deleted,
        };
        let page = list(tx.conn(), def, &query).await?;
        for (cursor, record) in page.records {
            after = Some(cursor);
            out.push(record);
        }
        if !page.has_next {
            return Ok(out);
        }
    }
}

/// How a referrer's object is named in messages: `gift` (plugin `refs`, disabled).
fn describe(referrer: &Referrer) -> String {
    let object = &referrer.object;
    match (&object.plugin, referrer.dormant) {
        (Some(plugin), true) => format!("{} (plugin `{plugin}`, disabled)", object.name),
        (Some(plugin), false) => format!("{} (plugin `{plugin}`)", object.name),
        (None, _) => object.name.clone(),
    }
}

/// Writes `changes` onto `record` of the referrer's object: an update like any other for a
/// live object, a plain versioned one for a dormant object (see the module docs).
async fn change(tx: &Tx, registry: &Registry, referrer: &Referrer, record: Record, changes: Fields) -> Result<()> {
    if referrer.dormant {
        write_bookkeeping(tx, &referrer.object, record, changes, "update", None).await?;
    } else {
        apply_update(tx, registry, &referrer.object, record, changes, None, None, Effects::default()).await?;
    }
    Ok(())
}

/// Re-points every reference to `from`, a record of `target`, at `to`: in every object that
/// references `target`, live or dormant, deleted records included (a restored one then refers
/// to the survivor). Returns how many records of each referencing object moved (each named, 0
/// included). Refused before anything moves when a unique reference would then be held twice
/// among live records (a contact belongs to at most one household).
pub(crate) async fn repoint(
    tx: &Tx,
    registry: &Registry,
    target: &ObjectDef,
    from: Uuid,
    to: Uuid,
) -> Result<Map<String, Json>> {
    let referrers = registry.referrers(target);
    let label = target.label.to_lowercase();
    for referrer in &referrers {
        for field in referrer.fields.iter().filter(|f| f.unique) {
            let object = &referrer.object;
            if count(tx.conn(), object, &refers_to(field, from), false).await? > 0
                && count(tx.conn(), object, &refers_to(field, to), false).await? > 0
            {
                return Err(DomainError::conflict(format!(
                    "both {label}s have a {} record, and `{}.{}` is unique: delete one of the two first",
                    describe(referrer),
                    object.name,
                    field.name
                ))
                .into());
            }
        }
    }
    let mut moved = Map::new();
    for referrer in &referrers {
        let object = &referrer.object;
        let filter = Filter::Or(referrer.fields.iter().map(|f| refers_to(f, from)).collect());
        let found = matching(tx, object, &filter, true).await?;
        let mut n: u64 = 0;
        for record in found {
            // Read again: an earlier write of this merge may have changed it.
            let Some(record) = get(tx.conn(), object, record.id()).await? else { continue };
            let changes: Fields = referrer
                .fields
                .iter()
                .filter(|f| record.get(&f.name).as_uuid() == Some(from))
                .map(|f| (f.name.clone(), Value::Uuid(to)))
                .collect();
            if changes.is_empty() {
                continue;
            }
            change(tx, registry, referrer, record, changes).await?;
            n += 1;
        }
        let before = moved.get(&object.name).and_then(Json::as_u64).unwrap_or(0);
        moved.insert(object.name.clone(), json!(before + n));
    }
    Ok(moved)
}

/// Refuses deleting record `id` of `def` while live records reference it through a field whose
/// `on_delete` is `restrict`, naming the object, the field and how many.
pub(crate) async fn check_restrict(tx: &Tx, registry: &Registry, def: &ObjectDef, id: Uuid) -> Result<()> {
    for referrer in registry.referrers(def) {
        for field in referrer.fields.iter().filter(|f| f.on_delete == OnDelete::Restrict) {
            let n = count(tx.conn(), &referrer.object, &refers_to(field, id), false).await?;
            if n > 0 {
                let label = def.label.to_lowercase();
                return Err(DomainError::conflict(format!(
                    "cannot delete this {label}: {n} {} record(s) still refer to it through `{}.{}`, which \
                     restricts deletes; delete them or point them at another {label} first",
                    describe(&referrer),
                    referrer.object.name,
                    field.name
                ))
                .into());
            }
        }
    }
    Ok(())
}

fn too_deep(def: &ObjectDef) -> crate::error::Error {
    DomainError::conflict(format!(
        "deleting or restoring this {} cascades more than {MAX_DEPTH} levels deep",
        def.label.to_lowercase()
    ))
    .into()
}

/// Applies `set_null` and `cascade` to the records referencing record `id` of `def`, which was
/// just soft-deleted (at `tx.now`); `depth` counts the cascades that led here. A cleared
/// reference stays cleared after a restore; a cascaded record is deleted as if asked for, its
/// own references following in turn.
pub(crate) fn deleted<'a>(
    tx: &'a Tx,
    registry: &'a Registry,
    def: &'a ObjectDef,
    id: Uuid,
    depth: usize,
) -> BoxFuture<'a, Result<()>> {
    Box::pin(async move {
        for referrer in registry.referrers(def) {
            let object = &referrer.object;
            for field in &referrer.fields {
                match field.on_delete {
                    OnDelete::Keep | OnDelete::Restrict => {}
                    OnDelete::SetNull => {
                        for record in matching(tx, object, &refers_to(field, id), true).await? {
                            let Some(record) = get(tx.conn(), object, record.id()).await? else { continue };
                            if record.get(&field.name).as_uuid() == Some(id) {
                                let changes = Fields::from([(field.name.clone(), Value::Null)]);
                                change(tx, registry, &referrer, record, changes).await?;
                            }
                        }
                    }
                    OnDelete::Cascade => {
                        let found = matching(tx, object, &refers_to(field, id), false).await?;
                        if !found.is_empty() && depth >= MAX_DEPTH {
                            return Err(too_deep(def));
                        }
                        for record in found {
                            // An earlier cascade of this delete may have reached it already.
                            let Some(record) = get(tx.conn(), object, record.id()).await? else { continue };
                            if !record.get("deletedAt").is_null() {
                                continue;
                            }
                            if referrer.dormant {
                                delete_dormant(tx, registry, object, record, depth + 1).await?;
                            } else {
                                delete_record(tx, registry, object, record.id(), depth + 1).await?;
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    })
}

/// Restores the records that record `id` of `def`, just restored, cascaded to when it was
/// deleted at `deleted_at` (see the module docs), and theirs in turn.
pub(crate) fn restored<'a>(
    tx: &'a Tx,
    registry: &'a Registry,
    def: &'a ObjectDef,
    id: Uuid,
    deleted_at: &'a Value,
    depth: usize,
) -> BoxFuture<'a, Result<()>> {
    Box::pin(async move {
        for referrer in registry.referrers(def) {
            let object = &referrer.object;
            for field in referrer.fields.iter().filter(|f| f.on_delete == OnDelete::Cascade) {
                let at = Filter::Cond(Condition {
                    target: Target::Field("deletedAt".into()),
                    kind: FieldKind::DateTime,
                    op: Op::Eq(deleted_at.clone()),
                });
                let filter = Filter::And(vec![refers_to(field, id), at]);
                let found = matching(tx, object, &filter, true).await?;
                if !found.is_empty() && depth >= MAX_DEPTH {
                    return Err(too_deep(def));
                }
                for record in found {
                    let Some(record) = get(tx.conn(), object, record.id()).await? else { continue };
                    if record.get("deletedAt").is_null() {
                        continue;
                    }
                    if referrer.dormant {
                        restore_dormant(tx, registry, object, record, depth + 1).await?;
                    } else {
                        restore_record(tx, registry, object, record.id(), depth + 1).await?;
                    }
                }
            }
        }
        Ok(())
    })
}

/// Soft-deletes a record of a dormant object because one it references was deleted: its own
/// restricting references are checked and its referrers follow, as for a live object.
async fn delete_dormant(tx: &Tx, registry: &Registry, def: &ObjectDef, record: Record, depth: usize) -> Result<()> {
    let id = record.id();
    check_restrict(tx, registry, def, id).await?;
    let changes = Fields::from([("deletedAt".to_owned(), Value::DateTime(tx.now))]);
    write_bookkeeping(tx, def, record, changes, "delete", None).await?;
    deleted(tx, registry, def, id, depth).await
}

/// Restores a record of a dormant object that a delete cascaded to, and what it cascaded to.
async fn restore_dormant(tx: &Tx, registry: &Registry, def: &ObjectDef, record: Record, depth: usize) -> Result<()> {
    let id = record.id();
    let deleted_at = record.get("deletedAt").clone();
    let changes = Fields::from([("deletedAt".to_owned(), Value::Null)]);
    write_bookkeeping(tx, def, record, changes, "restore", None).await?;
    restored(tx, registry, def, id, &deleted_at, depth).await
}
