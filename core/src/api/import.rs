//! CSV imports through the API, as the console's import page uses them: `importables` (what
//! the caller may import: contacts, companies, and what enabled plugins import through a
//! mutation `import<Things>(csv: String!)`), `importPlan` (where each column of a header would
//! go, with the same automatic mapping as `kith import`), `startImport` (checks the file and the
//! mapping, then imports in the background) and `importRun` / `importRuns` (progress, counts
//! and the rejected rows with their reasons and cells). `run` does the importing.

pub mod run;

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dynamic::{Enum, Field, FieldFuture, FieldValue, InputObject, InputValue, Object, TypeRef};
use async_graphql::{Name, Value as GqlValue};
use chrono::Utc;
use serde_json::Value as Json;
use uuid::Uuid;

use crate::api::args::{arg_id, arg_json, arg_opt_i64, arg_opt_string, arg_string, arg_strings, kith};
use crate::api::auth::{Access, authorize, guarded};
use crate::api::error::{coded, to_gql};
use crate::api::schema::{obj, value_object};
use crate::domain::actor::{Actor, Role};
use crate::domain::code::Code;
use crate::domain::extension::{Extension, OperationKind};
use crate::domain::object::{Registry, humanize};
use crate::service::import::{ImportOptions, OnDuplicate, rfc4180};
use crate::store::imports::{self, ImportRun};

/// Runs an import reads back at most (the others are counted, not listed).
const MAX_RUNS: i64 = 100;

/// Something CSV import takes.
#[derive(Debug, Clone)]
pub struct Importable {
    /// As `kith import` names it: `contacts`, `companies`, `donations`.
    pub object: String,
    /// For people.
    pub label: String,
    /// The plugin mutation that imports it, for plugin imports.
    pub plugin: Option<(Arc<Extension>, String)>,
    /// The least role that may import it.
    pub role: Role,
}

impl Importable {
    /// The core object (`contact`), for core imports.
    pub fn core_object(&self) -> Option<&'static str> {
        match (&self.plugin, self.object.as_str()) {
            (None, "contacts") => Some("contact"),
            (None, "companies") => Some("company"),
            _ => None,
        }
    }
}

/// Everything CSV import takes in `registry`, core objects first.
pub fn importables(registry: &Registry) -> Vec<Importable> {
    let mut out = Vec::new();
    for name in ["contact", "company"] {
        if let Some(def) = registry.get(name) {
            out.push(Importable {
                object: def.plural.clone(),
                label: def.plural_label.clone(),
                plugin: None,
                role: Access::Write.role(),
            });
        }
    }
    for extension in registry.extensions() {
        for operation in &extension.operations {
            let Some(rest) = operation.name.strip_prefix("import") else { continue };
            if operation.kind != OperationKind::Mutation || !operation.arguments.contains_key("csv") || rest.is_empty()
            {
                continue;
            }
            let mut chars = rest.chars();
            let object: String = chars.next().map(|c| c.to_ascii_lowercase()).into_iter().chain(chars).collect();
            let label = registry
                .objects()
                .find(|d| d.plural == object)
                .map_or_else(|| humanize(&object), |d| d.plural_label.clone());
            out.push(Importable {
                object,
                label,
                plugin: Some((extension.clone(), operation.name.clone())),
                role: operation.role,
            });
        }
    }
    out
}

/// The importable `object` for `actor`: NOT_FOUND when nothing imports it, FORBIDDEN when the
/// actor's role is below the import's.
fn importable_for(registry: &Registry, actor: &Actor, object: &str) -> async_graphql::Result<Importable> {
    let found = importables(registry).into_iter().find(|i| i.object == object).ok_or_else(|| {
        coded(
            Code::NotFound,
            format!(
                "nothing imports `{object}`: use contacts or companies, or enable a plugin that declares \
                 `import{}(csv: String!)`",
                humanize(object).replace(' ', "")
            ),
        )
    })?;
    if !actor.role.allows(found.role) {
        return Err(coded(
            Code::Forbidden,
            format!("importing {object} needs the {} role; you have {}", found.role, actor.role),
        ));
    }
    Ok(found)
}

/// Who a run belongs to: the user behind a session or token, else the actor's own id.
pub(crate) fn owner_of(actor: &Actor) -> String {
    actor.user_id.map(|id| id.to_string()).or_else(|| actor.id.clone()).unwrap_or_else(|| actor.name.clone())
}

fn int(n: u64) -> GqlValue {
    GqlValue::Number(i64::try_from(n).unwrap_or(i64::MAX).into())
}

fn strings(items: &[String]) -> GqlValue {
    GqlValue::List(items.iter().cloned().map(GqlValue::String).collect())
}

fn run_value(run: &ImportRun, first_rejected: usize) -> GqlValue {
    let ts = |at: chrono::DateTime<Utc>| GqlValue::String(crate::domain::value::format_datetime(at));
    obj(vec![
        ("id", GqlValue::String(run.id.to_string())),
        ("object", GqlValue::String(run.object.clone())),
        ("fileName", GqlValue::String(run.file_name.clone())),
        ("state", GqlValue::Enum(Name::new(run.state.as_str().to_ascii_uppercase()))),
        ("total", int(run.counts.total)),
        ("rows", int(run.counts.rows)),
        ("created", int(run.counts.created)),
        ("updated", int(run.counts.updated)),
        ("skipped", int(run.counts.skipped)),
        ("rejectedCount", int(run.counts.rejected)),
        ("header", strings(&run.header)),
        (
            "rejected",
            GqlValue::List(
                run.rejected
                    .iter()
                    .take(first_rejected)
                    .map(|r| {
                        obj(vec![
                            ("line", int(r.line)),
                            ("reason", GqlValue::String(r.reason.clone())),
                            ("cells", strings(&r.cells)),
                        ])
                    })
                    .collect(),
            ),
        ),
        ("ignoredColumns", strings(&run.ignored_columns)),
        ("error", run.error.clone().map_or(GqlValue::Null, GqlValue::String)),
        ("createdAt", ts(run.created_at)),
        ("updatedAt", ts(run.updated_at)),
        ("finishedAt", run.finished_at.map_or(GqlValue::Null, ts)),
    ])
}

/// `mapping: [{column, target}]` as the import's explicit mapping (a missing or empty target
/// ignores the column).
fn mapping_of(json: Option<Json>) -> HashMap<String, String> {
    let mut mapping = HashMap::new();
    if let Some(Json::Array(items)) = json {
        for item in items {
            if let Some(column) = item.get("column").and_then(Json::as_str) {
                let target = item.get("target").and_then(Json::as_str).unwrap_or_default();
                mapping.insert(column.to_owned(), target.to_owned());
            }
        }
    }
    mapping
}

/// The header row of `csv`; BAD_USER_INPUT when there is none or it cannot be read.
fn header_of(csv: &str) -> async_graphql::Result<Vec<String>> {
    let mut reader = rfc4180::Reader::new(csv.as_bytes());
    let mut record = csv::StringRecord::new();
    match reader.read(&mut record) {
        Ok(rfc4180::Next::Record(_)) => Ok(record.iter().map(str::to_owned).collect()),
        Ok(rfc4180::Next::Broken(broken)) => {
            Err(bad(format!("the file's header row (line {}) cannot be read: {}", broken.line, broken.reason)))
        }
        Ok(rfc4180::Next::End) | Err(_) => {
            Err(bad("the file is empty: a CSV import needs a header row, then one row per record"))
        }
    }
}

fn bad(message: impl Into<String>) -> async_graphql::Error {
    coded(Code::BadUserInput, message)
}

/// The import types, queries and mutation.
pub(crate) fn register(
    builder: async_graphql::dynamic::SchemaBuilder,
    mut query: Object,
    mut mutation: Object,
) -> (async_graphql::dynamic::SchemaBuilder, Object, Object) {
    let builder = builder
        .register(Enum::new("ImportState").items(["RUNNING", "DONE", "FAILED"]))
        .register(Enum::new("ImportOnDuplicate").items(["SKIP", "UPDATE"]))
        .register(
            InputObject::new("ImportMapping")
                .description("Where a column goes: a field (`email`, `customFields.KEY`, `tags`, `company`), or nowhere when `target` is null or empty.")
                .field(InputValue::new("column", TypeRef::named_nn(TypeRef::STRING)))
                .field(InputValue::new("target", TypeRef::named(TypeRef::STRING))),
        )
        .register(value_object(
            "Importable",
            &[
                ("object", TypeRef::named_nn(TypeRef::STRING)),
                ("label", TypeRef::named_nn(TypeRef::STRING)),
                ("plugin", TypeRef::named(TypeRef::STRING)),
                ("description", TypeRef::named(TypeRef::STRING)),
                ("mapsColumns", TypeRef::named_nn(TypeRef::BOOLEAN)),
            ],
        ))
        .register(value_object(
            "ImportColumn",
            &[("column", TypeRef::named_nn(TypeRef::STRING)), ("target", TypeRef::named(TypeRef::STRING))],
        ))
        .register(value_object(
            "ImportTarget",
            &[("name", TypeRef::named_nn(TypeRef::STRING)), ("label", TypeRef::named_nn(TypeRef::STRING))],
        ))
        .register(value_object(
            "ImportPlan",
            &[
                ("columns", TypeRef::named_nn_list_nn("ImportColumn")),
                ("targets", TypeRef::named_nn_list_nn("ImportTarget")),
            ],
        ))
        .register(value_object(
            "ImportRejectedRow",
            &[
                ("line", TypeRef::named_nn(TypeRef::INT)),
                ("reason", TypeRef::named_nn(TypeRef::STRING)),
                ("cells", TypeRef::named_nn_list_nn(TypeRef::STRING)),
            ],
        ))
        .register(
            value_object(
                "ImportRun",
                &[
                    ("id", TypeRef::named_nn(TypeRef::ID)),
                    ("object", TypeRef::named_nn(TypeRef::STRING)),
                    ("fileName", TypeRef::named_nn(TypeRef::STRING)),
                    ("state", TypeRef::named_nn("ImportState")),
                    ("total", TypeRef::named_nn(TypeRef::INT)),
                    ("rows", TypeRef::named_nn(TypeRef::INT)),
                    ("created", TypeRef::named_nn(TypeRef::INT)),
                    ("updated", TypeRef::named_nn(TypeRef::INT)),
                    ("skipped", TypeRef::named_nn(TypeRef::INT)),
                    ("rejectedCount", TypeRef::named_nn(TypeRef::INT)),
                    ("header", TypeRef::named_nn_list_nn(TypeRef::STRING)),
                    ("rejected", TypeRef::named_nn_list_nn("ImportRejectedRow")),
                    ("ignoredColumns", TypeRef::named_nn_list_nn(TypeRef::STRING)),
                    ("error", TypeRef::named(TypeRef::STRING)),
                    ("createdAt", TypeRef::named_nn("DateTime")),
                    ("updatedAt", TypeRef::named_nn("DateTime")),
                    ("finishedAt", TypeRef::named("DateTime")),
                ],
            )
            .description(
                "A CSV import: RUNNING while its rows are read (`rows` of `total`), then DONE or FAILED. \
                 `rejected` lists refused rows (line, reason, cells as read; at most the first 10,000 are kept, \
                 `rejectedCount` counts them all).",
            ),
        );
    query = query.field(
        Field::new("importables", TypeRef::named_nn_list_nn("Importable"), |ctx| {
            FieldFuture::new(async move {
                let actor = authorize(&ctx, Access::Write)?;
                let registry = kith(&ctx)?.registry();
                let list: Vec<FieldValue> = importables(&registry)
                    .into_iter()
                    .filter(|i| actor.role.allows(i.role))
                    .map(|i| {
                        let (plugin, description) = match &i.plugin {
                            Some((extension, name)) => (
                                GqlValue::String(extension.plugin.clone()),
                                extension
                                    .operations
                                    .iter()
                                    .find(|o| &o.name == name)
                                    .map_or(GqlValue::Null, |o| GqlValue::String(o.description.clone())),
                            ),
                            None => (GqlValue::Null, GqlValue::Null),
                        };
                        FieldValue::value(obj(vec![
                            ("object", GqlValue::String(i.object.clone())),
                            ("label", GqlValue::String(i.label.clone())),
                            ("plugin", plugin),
                            ("description", description),
                            ("mapsColumns", GqlValue::Boolean(i.plugin.is_none())),
                        ]))
                    })
                    .collect();
                Ok(Some(FieldValue::list(list)))
            })
        })
        .description("What the caller may import from CSV: contacts, companies and what enabled plugins import."),
    );
    query = query.field(
        Field::new("importPlan", TypeRef::named_nn("ImportPlan"), |ctx| {
            FieldFuture::new(async move {
                let actor = authorize(&ctx, Access::Write)?.clone();
                let kith = kith(&ctx)?;
                let object = arg_string(&ctx, "object")?;
                let header = arg_strings(&ctx, "header")?;
                let found = importable_for(&kith.registry(), &actor, &object)?;
                let Some(core) = found.core_object() else {
                    return Err(bad(format!(
                        "{object} are imported by a plugin, which reads the columns it documents"
                    )));
                };
                let options =
                    ImportOptions { mapping: mapping_of(arg_json(&ctx, "mapping")), ..ImportOptions::default() };
                let (columns, targets) =
                    crate::service::import::plan(kith, core, &header, &options).await.map_err(to_gql)?;
                Ok(Some(FieldValue::value(obj(vec![
                    (
                        "columns",
                        GqlValue::List(
                            columns
                                .into_iter()
                                .map(|c| {
                                    obj(vec![
                                        ("column", GqlValue::String(c.column)),
                                        ("target", c.target.map_or(GqlValue::Null, GqlValue::String)),
                                    ])
                                })
                                .collect(),
                        ),
                    ),
                    (
                        "targets",
                        GqlValue::List(
                            targets
                                .into_iter()
                                .map(|t| {
                                    obj(vec![("name", GqlValue::String(t.name)), ("label", GqlValue::String(t.label))])
                                })
                                .collect(),
                        ),
                    ),
                ]))))
            })
        })
        .description(
            "Where each column of a CSV header would go when importing `object` (contacts or companies): \
             `mapping` first, then the same automatic mapping as `kith import`; every field a column may go to. \
             Refuses a header the import would refuse.",
        )
        .argument(InputValue::new("object", TypeRef::named_nn(TypeRef::STRING)))
        .argument(InputValue::new("header", TypeRef::named_nn_list_nn(TypeRef::STRING)))
        .argument(InputValue::new("mapping", TypeRef::named_nn_list("ImportMapping"))),
    );
    query = query.field(
        Field::new("importRun", TypeRef::named("ImportRun"), |ctx| {
            FieldFuture::new(async move {
                let actor = authorize(&ctx, Access::Write)?;
                let id = arg_id(&ctx, "id")?;
                let first =
                    usize::try_from(arg_opt_i64(&ctx, "firstRejected")?.unwrap_or(100).clamp(0, 10_000)).unwrap_or(100);
                let run = imports::get(kith(&ctx)?.store.conn(), id, Utc::now()).await.map_err(to_gql)?;
                // Another caller's run is as absent as one that never was.
                let run = run.filter(|r| r.owner == owner_of(actor) || actor.role.allows(Role::Admin));
                Ok(run.map(|r| FieldValue::value(run_value(&r, first))))
            })
        })
        .description(
            "A CSV import of the caller's (an ADMIN's: anyone's), with its first `firstRejected` (100) rejected rows.",
        )
        .argument(InputValue::new("id", TypeRef::named_nn(TypeRef::ID)))
        .argument(InputValue::new("firstRejected", TypeRef::named(TypeRef::INT))),
    );
    query = query.field(
        Field::new("importRuns", TypeRef::named_nn_list_nn("ImportRun"), |ctx| {
            FieldFuture::new(async move {
                let actor = authorize(&ctx, Access::Write)?;
                let first = arg_opt_i64(&ctx, "first")?.unwrap_or(20).clamp(1, MAX_RUNS);
                let owner = (!actor.role.allows(Role::Admin)).then(|| owner_of(actor));
                let runs =
                    imports::latest(kith(&ctx)?.store.conn(), owner.as_deref(), first.unsigned_abs(), Utc::now())
                        .await
                        .map_err(to_gql)?;
                Ok(Some(FieldValue::list(runs.iter().map(|r| FieldValue::value(run_value(r, 0))).collect::<Vec<_>>())))
            })
        })
        .description(
            "The latest CSV imports of the caller (an ADMIN's: everyone's), newest first, without their rejected rows.",
        )
        .argument(InputValue::new("first", TypeRef::named(TypeRef::INT))),
    );
    mutation = mutation.field(
        Field::new(
            "startImport",
            TypeRef::named_nn("ImportRun"),
            guarded(Access::Write, |ctx| {
                FieldFuture::new(async move {
                    let actor = authorize(&ctx, Access::Write)?.clone();
                    let kith = kith(&ctx)?.clone();
                    let object = arg_string(&ctx, "object")?;
                    let csv = arg_string(&ctx, "csv")?;
                    let file_name = arg_opt_string(&ctx, "fileName")?
                        .filter(|n| !n.trim().is_empty())
                        .unwrap_or_else(|| format!("{object}.csv"));
                    let update = match ctx.args.get("onDuplicate") {
                        Some(value) if !value.is_null() => value.enum_name()? == "UPDATE",
                        _ => false,
                    };
                    let on_duplicate = if update { OnDuplicate::Update } else { OnDuplicate::Skip };
                    let found = importable_for(&kith.registry(), &actor, &object)?;
                    let header = header_of(&csv)?;
                    let summary = rfc4180::check(&csv);
                    let total = summary.records.saturating_sub(1) + summary.broken.len() as u64;
                    let options = ImportOptions {
                        on_duplicate,
                        batch_size: 1_000,
                        mapping: mapping_of(arg_json(&ctx, "mapping")),
                    };
                    let job = match found.core_object() {
                        Some(core) => {
                            crate::service::import::plan(&kith, core, &header, &options).await.map_err(to_gql)?;
                            run::Job::Core { object: core, options }
                        }
                        None => {
                            // The plugin parses the file itself, and a lenient parser merges the
                            // rows after a broken quote into one cell: refuse such a file whole.
                            if let Some(first) = summary.broken.first() {
                                return Err(bad(format!(
                                    "the file is not well-formed CSV: {} broken row(s), the first at line {}: {}; \
                                     nothing was imported",
                                    summary.broken.len(),
                                    first.line,
                                    first.reason
                                )));
                            }
                            let (extension, mutation) = found.plugin.clone().ok_or_else(|| bad("no importer"))?;
                            run::Job::Plugin { extension, mutation }
                        }
                    };
                    let id = Uuid::now_v7();
                    let now = Utc::now();
                    let owner = owner_of(&actor);
                    let run = imports::NewRun {
                        id,
                        object: &object,
                        file_name: &file_name,
                        owner: &owner,
                        header: &header,
                        total,
                    };
                    imports::insert(kith.store.conn(), run, now).await.map_err(to_gql)?;
                    tokio::spawn(run::run(kith.clone(), actor, id, csv, job));
                    let started = imports::get(kith.store.conn(), id, Utc::now())
                        .await
                        .map_err(to_gql)?
                        .ok_or_else(|| coded(Code::Internal, "the import run vanished as it started"))?;
                    Ok(Some(FieldValue::value(run_value(&started, 0))))
                })
            }),
        )
        .description(
            "Starts importing `csv` (header row first) into `object` (see `importables`) and returns the run at \
             once; follow it with `importRun`. Contacts and companies take a `mapping` and `onDuplicate` (matched \
             on e-mail or domain; SKIP by default); a file or mapping they would refuse whole is refused here, \
             before anything is written. A bad row is rejected with its reason and never stops the others.",
        )
        .argument(InputValue::new("object", TypeRef::named_nn(TypeRef::STRING)))
        .argument(InputValue::new("csv", TypeRef::named_nn(TypeRef::STRING)))
        .argument(InputValue::new("fileName", TypeRef::named(TypeRef::STRING)))
        .argument(InputValue::new("mapping", TypeRef::named_nn_list("ImportMapping")))
        .argument(InputValue::new("onDuplicate", TypeRef::named("ImportOnDuplicate"))),
    );
    (builder, query, mutation)
}
