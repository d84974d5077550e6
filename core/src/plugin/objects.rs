//! Plugin-declared objects: from a manifest's `[[objects]]` to [`ObjectDef`]s (the same
//! registry entries core objects have, so storage, validation, events and GraphQL treat them
//! alike), and the migration planner that turns the recorded shape into the declared one.

use std::collections::BTreeMap;

use serde_json::Value as Json;

use crate::domain::object::{FieldDef, ObjectDef, snake_case};
use crate::domain::value::FieldKind;
use crate::plugin::PluginError;
use crate::plugin::manifest::{FieldType, Manifest, ObjectSpec};
use crate::store::Tx;
use crate::store::plugin_objects::{self, StoredObject, plain_index};

/// The table of `plugin`'s object `object`: `p_<plugin>_<object>`, snake_case.
pub fn table_name(plugin: &str, object: &str) -> String {
    format!("p_{}_{}", plugin.replace('-', "_"), snake_case(object))
}

/// The registry entry of a declared object.
pub fn object_def(plugin: &str, spec: &ObjectSpec) -> ObjectDef {
    let mut def = ObjectDef::new(&spec.name, &spec.plural, &spec.description);
    def.table = table_name(plugin, &spec.name);
    def.plugin = Some(plugin.to_owned());
    for field in &spec.fields {
        let kind = match field.kind {
            FieldType::Text => FieldKind::Text,
            FieldType::Integer => FieldKind::Int,
            FieldType::Decimal | FieldType::Money => FieldKind::Decimal,
            FieldType::Currency => FieldKind::Currency,
            FieldType::Date => FieldKind::Date,
            FieldType::Datetime => FieldKind::DateTime,
            FieldType::Boolean => FieldKind::Bool,
            FieldType::Enum => FieldKind::Enum(field.values.clone()),
            FieldType::Json => FieldKind::Json,
            FieldType::Ref => FieldKind::Ref(field.target.clone().unwrap_or_default()),
            FieldType::Email => FieldKind::Email,
            FieldType::Url => FieldKind::Url,
        };
        let mut def_field = FieldDef::new(&field.name, kind).doc(&field.description);
        def_field.required = field.required;
        def_field.unique = field.unique;
        def_field.indexed = field.indexed;
        def_field.personal = field.personal;
        def_field.on_delete = field.on_delete.unwrap_or_default();
        def_field.read_role = field.least_reader();
        def = def.field(def_field);
        if field.kind == FieldType::Money {
            let mut currency = FieldDef::new(&format!("{}Currency", field.name), FieldKind::Currency)
                .doc(&format!("ISO 4217 currency of `{}`.", field.name));
            currency.required = field.required;
            currency.personal = field.personal;
            currency.read_role = field.least_reader();
            def = def.field(currency);
        }
    }
    def.natural_key = def.fields.iter().find(|f| f.unique).map(|f| f.name.clone());
    let mut def = def.finish();
    def.erasure = spec.erasure();
    if let Some(title) = &spec.title {
        def.title = vec![title.clone()];
    }
    def.indexes = spec
        .indexes
        .iter()
        .map(|index| {
            index.fields.iter().filter_map(|name| def.field_def(name).map(|f| f.column.clone())).collect::<Vec<_>>()
        })
        .filter(|columns| columns.len() >= 2)
        .collect();
    def
}

/// Every object a manifest declares, as registry entries.
pub fn object_defs(manifest: &Manifest) -> Vec<ObjectDef> {
    manifest.objects.iter().map(|spec| object_def(&manifest.id, spec)).collect()
}

/// One change to the database.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// A new object: its table and indexes.
    CreateTable(ObjectDef),
    /// A new field on an existing object.
    AddColumn {
        /// The table.
        table: String,
        /// The field.
        field: FieldDef,
    },
    /// A field that went away (destructive).
    DropColumn {
        /// The table.
        table: String,
        /// The field as it was.
        field: FieldDef,
    },
    /// A field whose type changed: its values are dropped (destructive).
    ReplaceColumn {
        /// The table.
        table: String,
        /// The field as it was.
        old: FieldDef,
        /// The field as declared.
        new: FieldDef,
    },
    /// Index changes of a field that stays.
    Reindex {
        /// The table.
        table: String,
        /// The field as it was.
        old: FieldDef,
        /// The field as declared.
        new: FieldDef,
    },
    /// A new index over several columns.
    CreateIndex {
        /// The table.
        table: String,
        /// Its columns, in order.
        columns: Vec<String>,
    },
    /// An index over several columns that went away (or must make way for a column change).
    DropIndex {
        /// The table.
        table: String,
        /// Its columns, in order.
        columns: Vec<String>,
    },
    /// An object that went away, with its records (destructive).
    DropTable(String),
}

/// What turning the recorded objects into the declared ones takes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plan {
    /// The changes, in order.
    pub steps: Vec<Step>,
    /// Why the plan needs the admin's confirmation (empty: additive only).
    pub destructive: Vec<String>,
    /// The declarations to record afterwards.
    pub record: Vec<StoredObject>,
    /// Recorded objects to forget afterwards.
    pub forget: Vec<String>,
}

impl Plan {
    /// Whether the plan changes nothing in the database.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}

fn kind_label(kind: &FieldKind) -> String {
    match kind {
        FieldKind::Enum(_) => "enum".to_owned(),
        FieldKind::Ref(target) => format!("ref to {target}"),
        other => format!("{other:?}").to_ascii_lowercase(),
    }
}

/// Plans the change from what is recorded for `plugin` to what `manifest` declares. Pure:
/// nothing is touched.
pub fn plan(plugin: &str, recorded: &[StoredObject], declared: &[ObjectSpec]) -> Result<Plan, PluginError> {
    let mut out = Plan::default();
    let mut old: BTreeMap<&str, ObjectDef> = BTreeMap::new();
    for stored in recorded {
        let spec: ObjectSpec = serde_json::from_str(&stored.definition).map_err(|e| {
            PluginError::Runtime(format!("the recorded declaration of `{}` is unreadable: {e}", stored.name))
        })?;
        let mut def = object_def(plugin, &spec);
        def.table.clone_from(&stored.table);
        old.insert(stored.name.as_str(), def);
    }
    for spec in declared {
        let new = object_def(plugin, spec);
        let definition = serde_json::to_string(spec).map_err(|e| PluginError::Runtime(e.to_string()))?;
        out.record.push(StoredObject { name: spec.name.clone(), table: new.table.clone(), definition });
        let Some(before) = old.remove(spec.name.as_str()) else {
            out.steps.push(Step::CreateTable(new));
            continue;
        };
        let table = before.table.clone();
        let object = &spec.name;
        let first_step = out.steps.len();
        for field in &new.fields {
            let Some(was) = before.field_def(&field.name) else {
                if field.required {
                    out.destructive
                        .push(format!("`{object}.{}` is new and required: existing records have no value", field.name));
                }
                out.steps.push(Step::AddColumn { table: table.clone(), field: field.clone() });
                continue;
            };
            let same_kind = match (&was.kind, &field.kind) {
                (FieldKind::Enum(a), FieldKind::Enum(b)) => {
                    let removed: Vec<&String> = a.iter().filter(|v| !b.contains(v)).collect();
                    if !removed.is_empty() {
                        out.destructive.push(format!(
                            "`{object}.{}` loses the values {}",
                            field.name,
                            removed.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
                        ));
                    }
                    true
                }
                (a, b) => a == b,
            };
            if !same_kind {
                out.destructive.push(format!(
                    "`{object}.{}` changes type from {} to {}: its values are dropped",
                    field.name,
                    kind_label(&was.kind),
                    kind_label(&field.kind)
                ));
                out.steps.push(Step::ReplaceColumn { table: table.clone(), old: was.clone(), new: field.clone() });
                continue;
            }
            if field.required && !was.required {
                out.destructive.push(format!("`{object}.{}` becomes required", field.name));
            }
            if field.unique && !was.unique {
                out.destructive.push(format!("`{object}.{}` becomes unique", field.name));
            }
            if field.unique != was.unique || field.indexed != was.indexed {
                out.steps.push(Step::Reindex { table: table.clone(), old: was.clone(), new: field.clone() });
            }
        }
        for was in &before.fields {
            if new.field_def(&was.name).is_none() {
                out.destructive.push(format!("`{object}.{}` is dropped with its values", was.name));
                out.steps.push(Step::DropColumn { table: table.clone(), field: was.clone() });
            }
        }
        // Indexes over several columns: those that go, or cover a column that is dropped or
        // replaced, are dropped before the column steps and (re)created after them.
        let changed: Vec<&str> = out.steps[first_step..]
            .iter()
            .filter_map(|step| match step {
                Step::DropColumn { field, .. } | Step::ReplaceColumn { old: field, .. } => Some(field.column.as_str()),
                _ => None,
            })
            .collect();
        let touched = |columns: &Vec<String>| columns.iter().any(|c| changed.contains(&c.as_str()));
        let drops: Vec<Step> = before
            .indexes
            .iter()
            .filter(|columns| !new.indexes.contains(columns) || touched(columns))
            .map(|columns| Step::DropIndex { table: table.clone(), columns: columns.clone() })
            .collect();
        let creates: Vec<Step> = new
            .indexes
            .iter()
            .filter(|columns| !before.indexes.contains(columns) || touched(columns))
            .map(|columns| Step::CreateIndex { table: table.clone(), columns: columns.clone() })
            .collect();
        let column_steps: Vec<Step> = out.steps.drain(first_step..).collect();
        out.steps.extend(drops);
        out.steps.extend(column_steps);
        out.steps.extend(creates);
    }
    for (name, def) in old {
        out.destructive.push(format!("object `{name}` is dropped with all its records (table {})", def.table));
        out.steps.push(Step::DropTable(def.table.clone()));
        out.forget.push(name.to_owned());
    }
    Ok(out)
}

/// Applies `plan` inside `tx` (DDL is transactional on SQLite and PostgreSQL: a failure leaves
/// nothing half-done) and records the declarations.
pub async fn apply(tx: &Tx, plugin: &str, plan: &Plan) -> Result<(), PluginError> {
    let db = tx.conn();
    for step in &plan.steps {
        match step {
            Step::CreateTable(def) => plugin_objects::create_table(db, def).await?,
            Step::AddColumn { table, field } => plugin_objects::add_column(db, table, field).await?,
            Step::DropColumn { table, field } => plugin_objects::drop_column(db, table, field).await?,
            Step::ReplaceColumn { table, old, new } => {
                plugin_objects::drop_column(db, table, old).await?;
                plugin_objects::add_column(db, table, new).await?;
            }
            Step::Reindex { table, old, new } => {
                let column = &new.column;
                if old.unique != new.unique {
                    if new.unique {
                        plugin_objects::create_index(db, table, column, true).await?;
                    } else {
                        plugin_objects::drop_index(db, table, column, true).await?;
                    }
                }
                match (plain_index(old), plain_index(new)) {
                    (false, true) => plugin_objects::create_index(db, table, column, false).await?,
                    (true, false) => plugin_objects::drop_index(db, table, column, false).await?,
                    _ => {}
                }
            }
            Step::CreateIndex { table, columns } => plugin_objects::create_composite_index(db, table, columns).await?,
            Step::DropIndex { table, columns } => plugin_objects::drop_composite_index(db, table, columns).await?,
            Step::DropTable(table) => plugin_objects::drop_table(db, table).await?,
        }
    }
    for stored in &plan.record {
        plugin_objects::save(db, plugin, stored, tx.now).await?;
    }
    for name in &plan.forget {
        plugin_objects::forget(db, plugin, name).await?;
    }
    Ok(())
}

/// Drops every table of `plugin` and forgets them (`uninstall --purge`).
pub async fn purge(tx: &Tx, plugin: &str) -> Result<(), PluginError> {
    for stored in plugin_objects::stored(tx.conn(), plugin).await? {
        plugin_objects::drop_table(tx.conn(), &stored.table).await?;
        plugin_objects::forget(tx.conn(), plugin, &stored.name).await?;
    }
    Ok(())
}

/// A plan summary for audit entries.
pub fn describe(plan: &Plan) -> Json {
    let steps: Vec<String> = plan
        .steps
        .iter()
        .map(|step| match step {
            Step::CreateTable(def) => format!("create table {}", def.table),
            Step::AddColumn { table, field } => format!("add {table}.{}", field.column),
            Step::DropColumn { table, field } => format!("drop {table}.{}", field.column),
            Step::ReplaceColumn { table, new, .. } => format!("replace {table}.{}", new.column),
            Step::Reindex { table, new, .. } => format!("reindex {table}.{}", new.column),
            Step::CreateIndex { table, columns } => format!("index {table}({})", columns.join(", ")),
            Step::DropIndex { table, columns } => format!("drop index {table}({})", columns.join(", ")),
            Step::DropTable(table) => format!("drop table {table}"),
        })
        .collect();
    serde_json::json!({ "steps": steps, "destructive": plan.destructive })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::manifest::FieldSpec;

    fn field(name: &str, kind: FieldType) -> FieldSpec {
        FieldSpec {
            name: name.into(),
            kind,
            values: Vec::new(),
            target: None,
            required: false,
            unique: false,
            indexed: false,
            personal: false,
            on_delete: None,
            read_role: None,
            description: String::new(),
        }
    }

    fn spec(fields: Vec<FieldSpec>) -> ObjectSpec {
        ObjectSpec {
            name: "gift".into(),
            plural: "gifts".into(),
            description: String::new(),
            title: None,
            fields,
            indexes: Vec::new(),
            erasure: None,
            legal_basis: None,
        }
    }

    fn recorded(spec: &ObjectSpec) -> Vec<StoredObject> {
        vec![StoredObject {
            name: spec.name.clone(),
            table: table_name("donors", &spec.name),
            definition: serde_json::to_string(spec).unwrap(),
        }]
    }

    #[test]
    fn declared_objects_become_registry_entries() {
        let def = object_def("my-donors", &spec(vec![field("amount", FieldType::Money)]));
        assert_eq!(def.table, "p_my_donors_gift");
        assert_eq!(def.type_name, "Gift");
        let names: Vec<&str> = def.fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["id", "amount", "amountCurrency", "createdAt", "updatedAt", "deletedAt", "version"]);
        assert_eq!(def.plugin.as_deref(), Some("my-donors"));
    }

    #[test]
    fn composite_indexes_make_way_for_column_changes() {
        use crate::plugin::manifest::IndexSpec;
        let mut base = spec(vec![field("note", FieldType::Text), field("status", FieldType::Text)]);
        base.indexes.push(IndexSpec { fields: vec!["status".into(), "note".into(), "deletedAt".into()] });
        let def = object_def("donors", &base);
        assert_eq!(def.indexes, vec![vec!["status".to_owned(), "note".to_owned(), "deleted_at".to_owned()]]);
        let old = recorded(&base);
        // `note` changes type: the index is dropped first and made again afterwards.
        let mut next = base.clone();
        next.fields[0].kind = FieldType::Integer;
        let steps = plan("donors", &old, &[next]).unwrap().steps;
        assert!(matches!(steps.first(), Some(Step::DropIndex { .. })), "{steps:?}");
        assert!(matches!(steps.get(1), Some(Step::ReplaceColumn { .. })), "{steps:?}");
        assert!(matches!(steps.last(), Some(Step::CreateIndex { .. })), "{steps:?}");
        // The index goes: dropped, nothing else.
        let mut fewer = base.clone();
        fewer.indexes.clear();
        let p = plan("donors", &old, &[fewer]).unwrap();
        assert!(matches!(p.steps.as_slice(), [Step::DropIndex { .. }]) && p.destructive.is_empty(), "{p:?}");
    }

    #[test]
    fn the_planner_tells_additive_from_destructive() {
        let base = spec(vec![
            field("note", FieldType::Text),
            FieldSpec { values: vec!["A".into(), "B".into()], ..field("status", FieldType::Enum) },
        ]);
        let old = recorded(&base);
        // Nothing recorded: create.
        let fresh = plan("donors", &[], std::slice::from_ref(&base)).unwrap();
        assert!(matches!(fresh.steps.as_slice(), [Step::CreateTable(_)]) && fresh.destructive.is_empty());
        // Same declaration: nothing to do.
        assert!(plan("donors", &old, std::slice::from_ref(&base)).unwrap().is_empty());

        type Case = (&'static str, Box<dyn Fn(&mut ObjectSpec)>, bool);
        let cases: Vec<Case> = vec![
            ("new optional field", Box::new(|s| s.fields.push(field("extra", FieldType::Integer))), false),
            ("new enum value", Box::new(|s| s.fields[1].values.push("C".into())), false),
            ("index added", Box::new(|s| s.fields[0].indexed = true), false),
            (
                "composite index added",
                Box::new(|s| {
                    s.indexes.push(crate::plugin::manifest::IndexSpec { fields: vec!["status".into(), "note".into()] })
                }),
                false,
            ),
            (
                "new required field",
                Box::new(|s| s.fields.push(FieldSpec { required: true, ..field("x", FieldType::Text) })),
                true,
            ),
            (
                "field dropped",
                Box::new(|s| {
                    s.fields.remove(0);
                }),
                true,
            ),
            ("type changed", Box::new(|s| s.fields[0].kind = FieldType::Integer), true),
            (
                "enum value removed",
                Box::new(|s| {
                    s.fields[1].values.pop();
                }),
                true,
            ),
            ("becomes required", Box::new(|s| s.fields[0].required = true), true),
            ("becomes unique", Box::new(|s| s.fields[0].unique = true), true),
        ];
        for (what, change, destructive) in cases {
            let mut next = base.clone();
            change(&mut next);
            let p = plan("donors", &old, &[next]).unwrap();
            assert_eq!(!p.destructive.is_empty(), destructive, "{what}: {:?}", p.destructive);
        }
        let dropped = plan("donors", &old, &[]).unwrap();
        assert_eq!(dropped.steps, vec![Step::DropTable("p_donors_gift".into())]);
        assert!(dropped.destructive[0].contains("gift"));
    }
}
