//! The plugin admin API (ADMIN only): list, install, enable with grants, disable, upgrade,
//! configure, uninstall, dead letters and replay. The same operations as `kith plugin`.

use std::sync::Arc;

use async_graphql::dynamic::{
    Enum, Field, FieldFuture, FieldValue, InputValue, Object, ResolverContext, SchemaBuilder, TypeRef,
};
use async_graphql::{Name, Value as GqlValue};
use base64::Engine as _;
use serde_json::Value as Json;

use crate::api::args::{arg_opt_bool, arg_opt_i64, arg_string, arg_strings, kith};
use crate::api::auth::{Access, authorize};
use crate::api::error::{coded, to_gql};
use crate::api::schema::{obj, value_object};
use crate::domain::code::Code;
use crate::domain::extension::OperationKind;
use crate::plugin::extension::{extension, low_role_writes};
use crate::plugin::manager::{Grants, visible_settings};
use crate::plugin::manifest::Manifest;
use crate::plugin::{PluginError, PluginManager};
use crate::store::plugins::{DeadLetter, PluginRow};

/// Maps a plugin error to a coded GraphQL error.
pub fn plugin_error(err: PluginError) -> async_graphql::Error {
    match err {
        PluginError::Store(err) => to_gql(err),
        e @ PluginError::NotFound(_) => coded(Code::NotFound, e.to_string()),
        e @ PluginError::Conflict(_) => coded(Code::Conflict, e.to_string()),
        e @ (PluginError::Manifest { .. } | PluginError::Component(_) | PluginError::Invalid(_)) => {
            coded(Code::BadUserInput, e.to_string())
        }
        e @ (PluginError::Io { .. } | PluginError::Runtime(_)) => {
            tracing::error!(error = %e, "plugin operation failed");
            coded(Code::Internal, "internal error")
        }
    }
}

fn manager(ctx: &ResolverContext<'_>) -> async_graphql::Result<Arc<PluginManager>> {
    PluginManager::of(kith(ctx)?).ok_or_else(|| coded(Code::Unavailable, "this Kith process runs no plugin runtime"))
}

fn gql(json: Json) -> GqlValue {
    GqlValue::from_json(json).unwrap_or(GqlValue::Null)
}

/// The plugin's queries and mutations with their least role, and for a mutation that lets
/// callers below AGENT write with the plugin's grants (those enabling would give, while
/// disabled) what it lets them write.
fn operations_value(manifest: &Manifest, row: &PluginRow) -> GqlValue {
    let grants = if row.enabled { &row.grants } else { &manifest.capabilities };
    let low = low_role_writes(manifest, grants);
    let operations = extension(manifest).operations.into_iter().map(|op| {
        let warning = low.iter().find(|l| l.mutation == op.name).map(|l| GqlValue::String(l.to_string()));
        obj(vec![
            (
                "kind",
                GqlValue::Enum(Name::new(match op.kind {
                    OperationKind::Query => "QUERY",
                    OperationKind::Mutation => "MUTATION",
                })),
            ),
            ("name", GqlValue::String(op.name)),
            ("role", GqlValue::Enum(Name::new(op.role.as_str()))),
            ("description", GqlValue::String(op.description)),
            ("lowRoleWrite", warning.unwrap_or(GqlValue::Null)),
        ])
    });
    GqlValue::List(operations.collect())
}

fn plugin_value(row: PluginRow) -> GqlValue {
    let manifest = Manifest::parse(&row.manifest).ok();
    let operations = manifest.as_ref().map(|m| operations_value(m, &row)).unwrap_or(GqlValue::List(vec![]));
    let strings = |items: &[String]| GqlValue::List(items.iter().cloned().map(GqlValue::String).collect());
    let (description, requested, events, hooks, settings, objects) = match &manifest {
        Some(m) => (
            m.description.clone(),
            strings(&m.capabilities),
            strings(&m.events),
            strings(m.before_write.as_ref().map(|h| h.objects.as_slice()).unwrap_or_default()),
            gql(visible_settings(m, &row.settings)),
            strings(&m.objects.iter().map(|o| o.name.clone()).collect::<Vec<_>>()),
        ),
        None => (
            String::new(),
            GqlValue::List(vec![]),
            GqlValue::List(vec![]),
            GqlValue::List(vec![]),
            GqlValue::Null,
            GqlValue::List(vec![]),
        ),
    };
    obj(vec![
        ("id", GqlValue::String(row.id)),
        ("name", GqlValue::String(row.name)),
        ("version", GqlValue::String(row.version)),
        ("sdkVersion", GqlValue::String(row.sdk_version)),
        ("description", GqlValue::String(description)),
        ("enabled", GqlValue::Boolean(row.enabled)),
        ("status", GqlValue::String(row.status.to_ascii_uppercase())),
        ("grants", strings(&row.grants)),
        ("requestedCapabilities", requested),
        ("events", events),
        ("beforeWrite", hooks),
        ("objects", objects),
        ("operations", operations),
        ("settings", settings),
        ("lastError", row.last_error.map(GqlValue::String).unwrap_or(GqlValue::Null)),
        (
            "stats",
            obj(vec![
                ("delivered", GqlValue::Number(row.delivered.into())),
                ("failures", GqlValue::Number(row.failures.into())),
                ("consecutiveFailures", GqlValue::Number(row.consecutive_failures.into())),
                ("deadLetters", GqlValue::Number(row.dead_letters.into())),
                ("deniedCalls", GqlValue::Number(row.denied_calls.into())),
            ]),
        ),
        ("installedAt", GqlValue::String(row.installed_at.to_string())),
        ("updatedAt", GqlValue::String(row.updated_at.to_string())),
    ])
}

fn dead_letter_value(letter: DeadLetter) -> GqlValue {
    obj(vec![
        ("seq", GqlValue::Number(letter.seq.into())),
        ("eventId", GqlValue::String(letter.event_id.to_string())),
        ("kind", GqlValue::String(letter.kind)),
        ("attempts", GqlValue::Number(letter.attempts.into())),
        ("error", GqlValue::String(letter.error)),
        ("failedAt", GqlValue::String(letter.failed_at.to_string())),
        (
            "replayedAt",
            if letter.replayed_at.is_null() {
                GqlValue::Null
            } else {
                GqlValue::String(letter.replayed_at.to_string())
            },
        ),
    ])
}

fn component_arg(ctx: &ResolverContext<'_>) -> async_graphql::Result<Vec<u8>> {
    let text = ctx.args.try_get("component")?.string()?;
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|_| coded(Code::BadUserInput, "component: expected the .wasm file, base64-encoded"))
}

fn opt_time(at: Option<chrono::DateTime<chrono::Utc>>) -> GqlValue {
    at.map_or(GqlValue::Null, |at| GqlValue::String(crate::domain::value::format_datetime(at)))
}

fn job_value(job: crate::plugin::jobs::JobInfo) -> GqlValue {
    let missed = match job.spec.missed {
        crate::plugin::extension::MissedRuns::Skip => "skip",
        crate::plugin::extension::MissedRuns::CatchUp => "catch-up",
    };
    let running = job.state.as_ref().and_then(|s| s.lease_until).is_some_and(|until| until > chrono::Utc::now());
    obj(vec![
        ("name", GqlValue::String(job.spec.name)),
        ("description", GqlValue::String(job.spec.description)),
        ("schedule", GqlValue::String(job.spec.schedule)),
        ("missed", GqlValue::String(missed.into())),
        ("timeoutMs", GqlValue::Number(job.spec.timeout_ms.into())),
        ("nextRunAt", opt_time(job.state.as_ref().and_then(|s| s.next_run_at))),
        ("lastRunAt", opt_time(job.state.as_ref().and_then(|s| s.last_run_at))),
        ("running", GqlValue::Boolean(running)),
    ])
}

fn job_run_value(run: crate::store::jobs::JobRun) -> GqlValue {
    obj(vec![
        ("id", GqlValue::String(run.id.to_string())),
        ("job", GqlValue::String(run.job)),
        ("trigger", GqlValue::String(run.trigger)),
        ("scheduledFor", opt_time(Some(run.scheduled_for))),
        ("startedAt", opt_time(Some(run.started_at))),
        ("finishedAt", opt_time(run.finished_at)),
        ("durationMs", run.duration_ms.map_or(GqlValue::Null, |ms| GqlValue::Number(ms.into()))),
        ("status", GqlValue::String(run.status)),
        ("error", run.error.map_or(GqlValue::Null, GqlValue::String)),
    ])
}

/// Adds the plugin types, queries and mutations.
pub fn register(builder: SchemaBuilder, mut query: Object, mut mutation: Object) -> (SchemaBuilder, Object, Object) {
    let list = |t: &str| TypeRef::named_nn_list_nn(t);
    let builder = builder
        .register(value_object(
            "PluginStats",
            &[
                ("delivered", TypeRef::named_nn(TypeRef::INT)),
                ("failures", TypeRef::named_nn(TypeRef::INT)),
                ("consecutiveFailures", TypeRef::named_nn(TypeRef::INT)),
                ("deadLetters", TypeRef::named_nn(TypeRef::INT)),
                ("deniedCalls", TypeRef::named_nn(TypeRef::INT)),
            ],
        ))
        .register(
            value_object(
                "Plugin",
                &[
                    ("id", TypeRef::named_nn(TypeRef::ID)),
                    ("name", TypeRef::named_nn(TypeRef::STRING)),
                    ("version", TypeRef::named_nn(TypeRef::STRING)),
                    ("sdkVersion", TypeRef::named_nn(TypeRef::STRING)),
                    ("description", TypeRef::named_nn(TypeRef::STRING)),
                    ("enabled", TypeRef::named_nn(TypeRef::BOOLEAN)),
                    ("status", TypeRef::named_nn(TypeRef::STRING)),
                    ("grants", list(TypeRef::STRING)),
                    ("requestedCapabilities", list(TypeRef::STRING)),
                    ("events", list(TypeRef::STRING)),
                    ("beforeWrite", list(TypeRef::STRING)),
                    ("objects", list(TypeRef::STRING)),
                    ("operations", list("PluginOperation")),
                    ("settings", TypeRef::named_nn("JSON")),
                    ("lastError", TypeRef::named(TypeRef::STRING)),
                    ("stats", TypeRef::named_nn("PluginStats")),
                    ("installedAt", TypeRef::named_nn("DateTime")),
                    ("updatedAt", TypeRef::named_nn("DateTime")),
                ],
            )
            .description(
                "An installed plugin. `status` is ACTIVE, DISABLED or SUSPENDED (after repeated failures, \
                 until an admin enables it again); secret settings show as \"********\".",
            ),
        )
        .register(Enum::new("PluginOperationKind").items(["QUERY", "MUTATION"]))
        .register(
            value_object(
                "PluginOperation",
                &[
                    ("kind", TypeRef::named_nn("PluginOperationKind")),
                    ("name", TypeRef::named_nn(TypeRef::STRING)),
                    ("role", TypeRef::named_nn("UserRole")),
                    ("description", TypeRef::named_nn(TypeRef::STRING)),
                    ("lowRoleWrite", TypeRef::named(TypeRef::STRING)),
                ],
            )
            .description(
                "A query or mutation a plugin adds to the API and the least role that may call it. The plugin \
                 runs it with its own grants, whoever calls it: `lowRoleWrite` says what a mutation lets \
                 callers below AGENT write (null when nothing).",
            ),
        )
        .register(value_object(
            "PluginDeadLetter",
            &[
                ("seq", TypeRef::named_nn(TypeRef::INT)),
                ("eventId", TypeRef::named_nn(TypeRef::ID)),
                ("kind", TypeRef::named_nn(TypeRef::STRING)),
                ("attempts", TypeRef::named_nn(TypeRef::INT)),
                ("error", TypeRef::named_nn(TypeRef::STRING)),
                ("failedAt", TypeRef::named_nn("DateTime")),
                ("replayedAt", TypeRef::named("DateTime")),
            ],
        ))
        .register(value_object(
            "PluginJob",
            &[
                ("name", TypeRef::named_nn(TypeRef::STRING)),
                ("description", TypeRef::named_nn(TypeRef::STRING)),
                ("schedule", TypeRef::named_nn(TypeRef::STRING)),
                ("missed", TypeRef::named_nn(TypeRef::STRING)),
                ("timeoutMs", TypeRef::named_nn(TypeRef::INT)),
                ("nextRunAt", TypeRef::named("DateTime")),
                ("lastRunAt", TypeRef::named("DateTime")),
                ("running", TypeRef::named_nn(TypeRef::BOOLEAN)),
            ],
        ))
        .register(value_object(
            "PluginJobRun",
            &[
                ("id", TypeRef::named_nn(TypeRef::ID)),
                ("job", TypeRef::named_nn(TypeRef::STRING)),
                ("trigger", TypeRef::named_nn(TypeRef::STRING)),
                ("scheduledFor", TypeRef::named_nn("DateTime")),
                ("startedAt", TypeRef::named_nn("DateTime")),
                ("finishedAt", TypeRef::named("DateTime")),
                ("durationMs", TypeRef::named(TypeRef::INT)),
                ("status", TypeRef::named_nn(TypeRef::STRING)),
                ("error", TypeRef::named(TypeRef::STRING)),
            ],
        ))
        .register(value_object(
            "PluginReplay",
            &[("replayed", TypeRef::named_nn(TypeRef::INT)), ("failed", TypeRef::named_nn(TypeRef::INT))],
        ));

    query = query
        .field(
            Field::new("plugins", list("Plugin"), |ctx| {
                FieldFuture::new(async move {
                    authorize(&ctx, Access::Admin)?;
                    let rows = manager(&ctx)?.list().await.map_err(plugin_error)?;
                    Ok(Some(FieldValue::list(rows.into_iter().map(|r| FieldValue::value(plugin_value(r))))))
                })
            })
            .description("Installed plugins (ADMIN)."),
        )
        .field(
            Field::new("pluginDeadLetters", list("PluginDeadLetter"), |ctx| {
                FieldFuture::new(async move {
                    authorize(&ctx, Access::Admin)?;
                    let id = arg_string(&ctx, "id")?;
                    let pending = ctx
                        .args
                        .get("pendingOnly")
                        .filter(|v| !v.is_null())
                        .map(|v| v.boolean())
                        .transpose()?
                        .unwrap_or(false);
                    let letters = manager(&ctx)?.dead_letters(&id, pending).await.map_err(plugin_error)?;
                    Ok(Some(FieldValue::list(letters.into_iter().map(|l| FieldValue::value(dead_letter_value(l))))))
                })
            })
            .argument(InputValue::new("id", TypeRef::named_nn(TypeRef::ID)))
            .argument(InputValue::new("pendingOnly", TypeRef::named(TypeRef::BOOLEAN)))
            .description("Events a plugin failed on after every retry (ADMIN)."),
        )
        .field(
            Field::new("pluginJobs", list("PluginJob"), |ctx| {
                FieldFuture::new(async move {
                    authorize(&ctx, Access::Admin)?;
                    let id = arg_string(&ctx, "id")?;
                    let jobs = crate::plugin::jobs::list(&*manager(&ctx)?, &id).await.map_err(plugin_error)?;
                    Ok(Some(FieldValue::list(jobs.into_iter().map(|j| FieldValue::value(job_value(j))))))
                })
            })
            .argument(InputValue::new("id", TypeRef::named_nn(TypeRef::ID)))
            .description("The scheduled jobs a plugin declares, with their next run (ADMIN)."),
        )
        .field(
            Field::new("pluginJobRuns", list("PluginJobRun"), |ctx| {
                FieldFuture::new(async move {
                    authorize(&ctx, Access::Admin)?;
                    let id = arg_string(&ctx, "id")?;
                    let job = ctx
                        .args
                        .get("job")
                        .filter(|v| !v.is_null())
                        .map(|v| v.string())
                        .transpose()?
                        .map(str::to_owned);
                    let first = arg_opt_i64(&ctx, "first")?.unwrap_or(50);
                    if !(1..=200).contains(&first) {
                        return Err(coded(Code::BadUserInput, "first: must be between 1 and 200"));
                    }
                    let runs = crate::plugin::jobs::history(&*manager(&ctx)?, &id, job.as_deref(), first as u64)
                        .await
                        .map_err(plugin_error)?;
                    Ok(Some(FieldValue::list(runs.into_iter().map(|r| FieldValue::value(job_run_value(r))))))
                })
            })
            .argument(InputValue::new("id", TypeRef::named_nn(TypeRef::ID)))
            .argument(InputValue::new("job", TypeRef::named(TypeRef::STRING)))
            .argument(InputValue::new("first", TypeRef::named(TypeRef::INT)))
            .description("The latest runs of a plugin's jobs, newest first (ADMIN)."),
        );

    mutation = mutation
        .field(
            Field::new("installPlugin", TypeRef::named_nn("Plugin"), |ctx| {
                FieldFuture::new(async move {
                    let actor = authorize(&ctx, Access::Admin)?.clone();
                    let manifest = arg_string(&ctx, "manifest")?;
                    let component = component_arg(&ctx)?;
                    let allow = arg_opt_bool(&ctx, "allowDestructive")?.unwrap_or(false);
                    let row = manager(&ctx)?
                        .install_with(&actor, &manifest, &component, allow)
                        .await
                        .map_err(plugin_error)?;
                    Ok(Some(FieldValue::value(plugin_value(row))))
                })
            })
            .argument(InputValue::new("manifest", TypeRef::named_nn(TypeRef::STRING)))
            .argument(InputValue::new("component", TypeRef::named_nn(TypeRef::STRING)))
            .argument(InputValue::new("allowDestructive", TypeRef::named(TypeRef::BOOLEAN)))
            .description(
                "Installs a plugin, disabled: `manifest` is plugin.toml, `component` the .wasm in base64. Its \
                 objects' tables are created (or migrated from a kept earlier install; a change that loses \
                 data needs `allowDestructive: true`).",
            ),
        )
        .field(
            Field::new("upgradePlugin", TypeRef::named_nn("Plugin"), |ctx| {
                FieldFuture::new(async move {
                    let actor = authorize(&ctx, Access::Admin)?.clone();
                    let manifest = arg_string(&ctx, "manifest")?;
                    let component = component_arg(&ctx)?;
                    let grants = arg_strings(&ctx, "grants")?;
                    let allow = arg_opt_bool(&ctx, "allowDestructive")?.unwrap_or(false);
                    let allow_low = arg_opt_bool(&ctx, "allowLowRoleWrites")?.unwrap_or(false);
                    let row = manager(&ctx)?
                        .upgrade_with(&actor, &manifest, &component, &grants, allow, allow_low)
                        .await
                        .map_err(plugin_error)?;
                    Ok(Some(FieldValue::value(plugin_value(row))))
                })
            })
            .argument(InputValue::new("manifest", TypeRef::named_nn(TypeRef::STRING)))
            .argument(InputValue::new("component", TypeRef::named_nn(TypeRef::STRING)))
            .argument(InputValue::new("grants", TypeRef::named_list(TypeRef::STRING)))
            .argument(InputValue::new("allowDestructive", TypeRef::named(TypeRef::BOOLEAN)))
            .argument(InputValue::new("allowLowRoleWrites", TypeRef::named(TypeRef::BOOLEAN)))
            .description(
                "Replaces a plugin's version; capabilities the new version adds must be in `grants`. Additive \
                 changes to its objects apply; one that loses data (a dropped object or field, a changed \
                 type, ...) needs `allowDestructive: true`. An enabled plugin whose new version adds a \
                 mutation that lets callers below AGENT write needs `allowLowRoleWrites: true`.",
            ),
        )
        .field(
            Field::new("enablePlugin", TypeRef::named_nn("Plugin"), |ctx| {
                FieldFuture::new(async move {
                    let actor = authorize(&ctx, Access::Admin)?.clone();
                    let id = arg_string(&ctx, "id")?;
                    let all = ctx
                        .args
                        .get("grantAll")
                        .filter(|v| !v.is_null())
                        .map(|v| v.boolean())
                        .transpose()?
                        .unwrap_or(false);
                    let grants = if all { Grants::All } else { Grants::List(arg_strings(&ctx, "grants")?) };
                    let allow_low = arg_opt_bool(&ctx, "allowLowRoleWrites")?.unwrap_or(false);
                    let row = manager(&ctx)?.enable_with(&actor, &id, grants, allow_low).await.map_err(plugin_error)?;
                    Ok(Some(FieldValue::value(plugin_value(row))))
                })
            })
            .argument(InputValue::new("id", TypeRef::named_nn(TypeRef::ID)))
            .argument(InputValue::new("grants", TypeRef::named_list(TypeRef::STRING)))
            .argument(InputValue::new("grantAll", TypeRef::named(TypeRef::BOOLEAN)))
            .argument(InputValue::new("allowLowRoleWrites", TypeRef::named(TypeRef::BOOLEAN)))
            .description(
                "Enables (or resumes) a plugin. Every capability it requests must be granted, by listing it in \
                 `grants` or with `grantAll: true`. A plugin with a mutation that lets callers below AGENT \
                 write (see `Plugin.operations`) needs `allowLowRoleWrites: true`.",
            ),
        )
        .field(
            Field::new("disablePlugin", TypeRef::named_nn("Plugin"), |ctx| {
                FieldFuture::new(async move {
                    let actor = authorize(&ctx, Access::Admin)?.clone();
                    let id = arg_string(&ctx, "id")?;
                    let row = manager(&ctx)?.disable(&actor, &id).await.map_err(plugin_error)?;
                    Ok(Some(FieldValue::value(plugin_value(row))))
                })
            })
            .argument(InputValue::new("id", TypeRef::named_nn(TypeRef::ID))),
        )
        .field(
            Field::new("uninstallPlugin", TypeRef::named_nn(TypeRef::BOOLEAN), |ctx| {
                FieldFuture::new(async move {
                    let actor = authorize(&ctx, Access::Admin)?.clone();
                    let id = arg_string(&ctx, "id")?;
                    let purge = ctx
                        .args
                        .get("purge")
                        .filter(|v| !v.is_null())
                        .map(|v| v.boolean())
                        .transpose()?
                        .unwrap_or(false);
                    manager(&ctx)?.uninstall(&actor, &id, purge).await.map_err(plugin_error)?;
                    Ok(Some(FieldValue::value(GqlValue::Boolean(true))))
                })
            })
            .argument(InputValue::new("id", TypeRef::named_nn(TypeRef::ID)))
            .argument(InputValue::new("purge", TypeRef::named(TypeRef::BOOLEAN)))
            .description("Removes a plugin; `purge: true` also deletes its stored data."),
        )
        .field(
            Field::new("setPluginSetting", TypeRef::named_nn("Plugin"), |ctx| {
                FieldFuture::new(async move {
                    let actor = authorize(&ctx, Access::Admin)?.clone();
                    let id = arg_string(&ctx, "id")?;
                    let key = arg_string(&ctx, "key")?;
                    let value = match ctx.args.get("value").filter(|v| !v.is_null()) {
                        Some(v) => Some(v.as_value().clone().into_json()?),
                        None => None,
                    };
                    let row = manager(&ctx)?.set_setting(&actor, &id, &key, value).await.map_err(plugin_error)?;
                    Ok(Some(FieldValue::value(plugin_value(row))))
                })
            })
            .argument(InputValue::new("id", TypeRef::named_nn(TypeRef::ID)))
            .argument(InputValue::new("key", TypeRef::named_nn(TypeRef::STRING)))
            .argument(InputValue::new("value", TypeRef::named("JSON")))
            .description("Sets a setting (checked against its declared type); a null value restores the default."),
        )
        .field(
            Field::new("replayPluginEvents", TypeRef::named_nn("PluginReplay"), |ctx| {
                FieldFuture::new(async move {
                    let actor = authorize(&ctx, Access::Admin)?.clone();
                    let id = arg_string(&ctx, "id")?;
                    let outcome = manager(&ctx)?.replay(&actor, &id).await.map_err(plugin_error)?;
                    Ok(Some(FieldValue::value(obj(vec![
                        ("replayed", GqlValue::Number((outcome.replayed as u64).into())),
                        ("failed", GqlValue::Number((outcome.failed as u64).into())),
                    ]))))
                })
            })
            .argument(InputValue::new("id", TypeRef::named_nn(TypeRef::ID)))
            .description("Delivers a plugin's dead letters again, in order."),
        )
        .field(
            Field::new("runPluginJob", TypeRef::named_nn("PluginJobRun"), |ctx| {
                FieldFuture::new(async move {
                    let actor = authorize(&ctx, Access::Admin)?.clone();
                    let id = arg_string(&ctx, "id")?;
                    let job = arg_string(&ctx, "job")?;
                    let run = crate::plugin::jobs::trigger(&*manager(&ctx)?, &actor, &id, &job)
                        .await
                        .map_err(plugin_error)?;
                    Ok(Some(FieldValue::value(job_run_value(run))))
                })
            })
            .argument(InputValue::new("id", TypeRef::named_nn(TypeRef::ID)))
            .argument(InputValue::new("job", TypeRef::named_nn(TypeRef::STRING)))
            .description("Runs a plugin's job now and waits for it (at most one run of a job at a time; ADMIN)."),
        );
    (builder, query, mutation)
}
