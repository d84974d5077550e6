//! The manifest's GraphQL contributions and jobs (`[[types]]`, `[[enums]]`, `[[fields]]`,
//! `[[queries]]`, `[[mutations]]`, `[[jobs]]`, SDK 1.2), their validation, and the
//! `domain::extension::Extension` they become while the plugin is enabled.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::domain::actor::Role;
use crate::domain::cron::Schedule;
use crate::domain::extension::{ComputedField, EnumDef, Extension, Operation, OperationKind, TypeDef, TypeExpr};
use crate::domain::naming;
use crate::plugin::PluginError;
use crate::plugin::manifest::{Manifest, object_capability};

/// The first SDK whose components export `kith:plugin/extension`.
pub const EXTENSION_SDK: (u16, u16, u16) = (1, 2, 0);

/// Most contributions of each kind per plugin.
const MAX_ITEMS: usize = 64;

/// A `[[types]]` entry: an output type for fields and operations.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TypeSpec {
    /// Its GraphQL name (`DonorSummary`).
    pub name: String,
    /// What it is.
    #[serde(default)]
    pub description: String,
    /// Field name → type (`total = "Decimal!"`).
    pub fields: BTreeMap<String, String>,
}

/// An `[[enums]]` entry.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnumSpec {
    /// Its GraphQL name (`GivingGroup`).
    pub name: String,
    /// What it is.
    #[serde(default)]
    pub description: String,
    /// Its values, UPPER_CASE.
    pub values: Vec<String>,
}

/// A `[[fields]]` entry: a field the plugin computes on an object.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldSpec {
    /// The object (`contact`, or one of the plugin's own).
    pub object: String,
    /// The field name, camelCase.
    pub name: String,
    /// Its type (`String`, `DonorSummary!`, ...).
    #[serde(rename = "type")]
    pub ty: String,
    /// What it means.
    #[serde(default)]
    pub description: String,
}

/// A `[[queries]]` or `[[mutations]]` entry.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperationSpec {
    /// The field name on `Query` / `Mutation`, camelCase.
    pub name: String,
    /// What it does.
    #[serde(default)]
    pub description: String,
    /// Argument name → type (`year = "Int!"`).
    #[serde(default)]
    pub arguments: BTreeMap<String, String>,
    /// The result type.
    pub returns: String,
    /// The least role allowed: VIEWER, AGENT, MANAGER or ADMIN (default VIEWER for queries,
    /// AGENT for mutations).
    #[serde(default)]
    pub role: Option<String>,
}

impl OperationSpec {
    /// Whether it takes `contactId: ID!` and nothing else it requires.
    pub fn takes_contact_id(&self) -> bool {
        self.arguments.get("contactId").is_some_and(|t| t == "ID!")
            && self.arguments.iter().all(|(name, ty)| name == "contactId" || !ty.ends_with('!'))
    }
}

/// What to do about runs a job missed while no Kith process was up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum MissedRuns {
    /// Forget them: the next run is the next scheduled time from now.
    #[default]
    Skip,
    /// Run once as soon as possible, however many were missed.
    CatchUp,
}

/// A `[[jobs]]` entry.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    /// Its name: lowercase letters, digits and `-`.
    pub name: String,
    /// A five-field cron schedule in UTC (`0 3 * * *`) or `@daily`, `@hourly`, ...
    pub schedule: String,
    /// `skip` (default) or `catch-up` (one run for everything missed).
    #[serde(default)]
    pub missed: MissedRuns,
    /// Time budget of one run in milliseconds (1-60,000, default 10,000).
    #[serde(default = "default_job_ms")]
    pub timeout_ms: u64,
    /// What it does.
    #[serde(default)]
    pub description: String,
    /// Whether it works through a backlog in batches: after a run that wrote something, the
    /// next starts at once, each run its own transaction, until a run writes nothing, fails, or
    /// `timeout_ms` has passed since the first (the next scheduled time goes on from there).
    #[serde(default)]
    pub batches: bool,
}

fn default_job_ms() -> u64 {
    10_000
}

impl JobSpec {
    /// The parsed schedule (validated with the manifest).
    pub fn schedule(&self) -> Result<Schedule, PluginError> {
        Schedule::parse(&self.schedule).map_err(|reason| PluginError::manifest("jobs.schedule", reason))
    }
}

fn camel_ok(name: &str) -> bool {
    (1..=40).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_alphanumeric())
}

fn pascal_ok(name: &str) -> bool {
    (1..=60).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_uppercase())
        && name.chars().all(|c| c.is_ascii_alphanumeric())
}

/// A role named in the manifest at `key` (`default` when absent), or a manifest error naming
/// the key and the roles there are.
pub(crate) fn parse_role(key: &str, role: Option<&str>, default: Role) -> Result<Role, PluginError> {
    match role {
        None => Ok(default),
        Some(text) => Role::ALL
            .into_iter()
            .find(|r| r.as_str() == text)
            .ok_or_else(|| PluginError::manifest(key, format!("`{text}` is not VIEWER, AGENT, MANAGER or ADMIN"))),
    }
}

/// Validates the contributions of `manifest` (called from `Manifest::validate`).
pub fn validate(manifest: &Manifest) -> Result<(), PluginError> {
    if manifest.contributes() && manifest.sdk()? < EXTENSION_SDK {
        return Err(PluginError::manifest(
            "sdk_version",
            "fields, queries, mutations and jobs need a plugin built with SDK 1.2.0 or later",
        ));
    }
    for (what, len) in [
        ("types", manifest.types.len()),
        ("enums", manifest.enums.len()),
        ("fields", manifest.fields.len()),
        ("queries", manifest.queries.len()),
        ("mutations", manifest.mutations.len()),
        ("jobs", manifest.jobs.len()),
    ] {
        if len > MAX_ITEMS {
            return Err(PluginError::manifest(what, format!("at most {MAX_ITEMS}")));
        }
    }
    let mut type_names = std::collections::BTreeSet::new();
    for (i, spec) in manifest.enums.iter().enumerate() {
        let key = format!("enums[{i}]");
        if !pascal_ok(&spec.name) {
            return Err(PluginError::manifest(&format!("{key}.name"), format!("`{}` must be PascalCase", spec.name)));
        }
        let upper = |v: &String| {
            v.starts_with(|c: char| c.is_ascii_uppercase())
                && v.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        };
        if spec.values.is_empty() || !spec.values.iter().all(upper) {
            return Err(PluginError::manifest(&format!("{key}.values"), "list its values, UPPER_CASE"));
        }
        if !type_names.insert(spec.name.clone()) {
            return Err(PluginError::manifest(&format!("{key}.name"), format!("`{}` is declared twice", spec.name)));
        }
    }
    for (i, spec) in manifest.types.iter().enumerate() {
        let key = format!("types[{i}]");
        if !pascal_ok(&spec.name) {
            return Err(PluginError::manifest(&format!("{key}.name"), format!("`{}` must be PascalCase", spec.name)));
        }
        if !type_names.insert(spec.name.clone()) {
            return Err(PluginError::manifest(&format!("{key}.name"), format!("`{}` is declared twice", spec.name)));
        }
        if spec.fields.is_empty() {
            return Err(PluginError::manifest(&format!("{key}.fields"), "declare at least one field"));
        }
    }
    let own_enums = object_enums(manifest);
    let check_type = |key: &str, text: &str, input: bool| -> Result<TypeExpr, PluginError> {
        let ty = TypeExpr::parse(text).map_err(|reason| PluginError::manifest(key, reason))?;
        let declared_type = manifest.types.iter().any(|t| t.name == ty.name);
        let declared_enum =
            manifest.enums.iter().any(|e| e.name == ty.name) || own_enums.iter().any(|e| e.name == ty.name);
        // Output positions may also name the plugin's types; inputs only scalars and enums.
        let usable = ty.is_scalar() || declared_enum || (declared_type && !input);
        if !usable {
            let allowed = if input { "a scalar or one of its enums" } else { "a scalar, or one of its types or enums" };
            return Err(PluginError::manifest(key, format!("`{}` is not {allowed}", ty.name)));
        }
        Ok(ty)
    };
    for (i, spec) in manifest.types.iter().enumerate() {
        for (field, ty) in &spec.fields {
            let key = format!("types[{i}].fields.{field}");
            if !camel_ok(field) {
                return Err(PluginError::manifest(&key, "field names are camelCase"));
            }
            check_type(&key, ty, false)?;
        }
    }
    let mut seen_fields = std::collections::BTreeSet::new();
    for (i, spec) in manifest.fields.iter().enumerate() {
        let key = format!("fields[{i}]");
        if !camel_ok(&spec.name) {
            return Err(PluginError::manifest(&format!("{key}.name"), format!("`{}` must be camelCase", spec.name)));
        }
        if !manifest.owns(&spec.object) {
            let Some(read) = object_capability(&spec.object, false) else {
                return Err(PluginError::manifest(
                    &format!("{key}.object"),
                    format!("`{}` is not an object plugins can extend", spec.object),
                ));
            };
            // Computing a field for records is reading them.
            if !manifest.capabilities.contains(&read) {
                return Err(PluginError::manifest(
                    &format!("{key}.object"),
                    format!("a field on {} needs `{read}` in `capabilities`", spec.object),
                ));
            }
        }
        if !seen_fields.insert((spec.object.clone(), spec.name.clone())) {
            return Err(PluginError::manifest(&format!("{key}.name"), format!("`{}` is declared twice", spec.name)));
        }
        check_type(&format!("{key}.type"), &spec.ty, false)?;
    }
    let mut seen_ops = std::collections::BTreeSet::new();
    for (what, specs) in [("queries", &manifest.queries), ("mutations", &manifest.mutations)] {
        for (i, spec) in specs.iter().enumerate() {
            let key = format!("{what}[{i}]");
            if !camel_ok(&spec.name) {
                return Err(PluginError::manifest(
                    &format!("{key}.name"),
                    format!("`{}` must be camelCase", spec.name),
                ));
            }
            if !seen_ops.insert(spec.name.clone()) {
                return Err(PluginError::manifest(
                    &format!("{key}.name"),
                    format!("`{}` is declared twice", spec.name),
                ));
            }
            for (arg, ty) in &spec.arguments {
                let arg_key = format!("{key}.arguments.{arg}");
                if !camel_ok(arg) {
                    return Err(PluginError::manifest(&arg_key, "argument names are camelCase"));
                }
                check_type(&arg_key, ty, true)?;
            }
            check_type(&format!("{key}.returns"), &spec.returns, false)?;
            parse_role(&format!("{key}.role"), spec.role.as_deref(), Role::Viewer)?;
        }
    }
    let mut seen_jobs = std::collections::BTreeSet::new();
    for (i, job) in manifest.jobs.iter().enumerate() {
        let key = format!("jobs[{i}]");
        let name_ok = (1..=40).contains(&job.name.len())
            && job.name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !name_ok {
            return Err(PluginError::manifest(
                &format!("{key}.name"),
                format!("`{}` must be lowercase letters, digits and `-`", job.name),
            ));
        }
        if !seen_jobs.insert(job.name.clone()) {
            return Err(PluginError::manifest(&format!("{key}.name"), format!("`{}` is declared twice", job.name)));
        }
        Schedule::parse(&job.schedule).map_err(|reason| PluginError::manifest(&format!("{key}.schedule"), reason))?;
        if !(1..=60_000).contains(&job.timeout_ms) {
            return Err(PluginError::manifest(&format!("{key}.timeout_ms"), "must be between 1 and 60000"));
        }
    }
    Ok(())
}

/// The GraphQL enums of the plugin's own objects' enum fields (`donation.status` →
/// `DonationStatus`), which its operations may use as argument and result types.
pub fn object_enums(manifest: &Manifest) -> Vec<EnumDef> {
    let mut out = Vec::new();
    for object in &manifest.objects {
        for field in object.fields.iter().filter(|f| f.kind == crate::plugin::manifest::FieldType::Enum) {
            out.push(EnumDef {
                name: format!("{}{}", naming::upper_first(&object.name), naming::upper_first(&field.name)),
                description: field.description.clone(),
                values: field.values.clone(),
            });
        }
    }
    out
}

/// What the manifest adds to the API (types resolved; call only on a validated manifest).
pub fn extension(manifest: &Manifest) -> Extension {
    let ty =
        |text: &str| TypeExpr::parse(text).unwrap_or(TypeExpr { name: "JSON".into(), list: None, non_null: false });
    let operation = |kind: OperationKind, spec: &OperationSpec| Operation {
        kind,
        name: spec.name.clone(),
        description: spec.description.clone(),
        arguments: spec.arguments.iter().map(|(name, t)| (name.clone(), ty(t))).collect(),
        returns: ty(&spec.returns),
        role: parse_role(
            "role",
            spec.role.as_deref(),
            match kind {
                OperationKind::Query => Role::Viewer,
                OperationKind::Mutation => Role::Agent,
            },
        )
        .unwrap_or(Role::Admin),
    };
    Extension {
        plugin: manifest.id.clone(),
        types: manifest
            .types
            .iter()
            .map(|t| TypeDef {
                name: t.name.clone(),
                description: t.description.clone(),
                fields: t.fields.iter().map(|(name, text)| (name.clone(), ty(text))).collect(),
            })
            .collect(),
        enums: manifest
            .enums
            .iter()
            .map(|e| EnumDef { name: e.name.clone(), description: e.description.clone(), values: e.values.clone() })
            .collect(),
        object_enums: object_enums(manifest),
        fields: manifest
            .fields
            .iter()
            .map(|f| ComputedField {
                object: f.object.clone(),
                name: f.name.clone(),
                ty: ty(&f.ty),
                description: f.description.clone(),
            })
            .collect(),
        operations: manifest
            .queries
            .iter()
            .map(|q| operation(OperationKind::Query, q))
            .chain(manifest.mutations.iter().map(|m| operation(OperationKind::Mutation, m)))
            .collect(),
    }
}

/// A mutation through which callers below AGENT make the plugin write: its call runs with the
/// plugin's grants (and its own objects, which it may always write), not the caller's role, so
/// a VIEWER calling it writes what a VIEWER could not write through the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LowRoleWrite {
    /// The mutation.
    pub mutation: String,
    /// Its least role (below AGENT).
    pub role: Role,
    /// The plugin's write grants (`contacts:write`).
    pub grants: Vec<String>,
    /// The plugin's own objects.
    pub objects: Vec<String>,
}

impl std::fmt::Display for LowRoleWrite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut through = Vec::new();
        if !self.grants.is_empty() {
            through.push(format!("the plugin's grants: {}", self.grants.join(", ")));
        }
        if !self.objects.is_empty() {
            through.push(format!("its own objects: {}", self.objects.join(", ")));
        }
        write!(f, "mutation `{}` lets {} callers write (through {})", self.mutation, self.role, through.join("; "))
    }
}

/// The mutations of `manifest` that let callers below AGENT write, for a plugin holding
/// `grants` (queries cannot write: their calls refuse host writes).
pub fn low_role_writes(manifest: &Manifest, grants: &[String]) -> Vec<LowRoleWrite> {
    let write_grants: Vec<String> = grants.iter().filter(|g| g.ends_with(":write")).cloned().collect();
    let objects: Vec<String> = manifest.objects.iter().map(|o| o.name.clone()).collect();
    if write_grants.is_empty() && objects.is_empty() {
        return Vec::new();
    }
    extension(manifest)
        .operations
        .into_iter()
        .filter(|op| op.kind == OperationKind::Mutation && op.role < Role::Agent)
        .map(|op| LowRoleWrite {
            mutation: op.name,
            role: op.role,
            grants: write_grants.clone(),
            objects: objects.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
manifest_version = 1
id = "loyalty"
name = "Loyalty"
version = "1.0.0"
sdk_version = "1.2.0"
capabilities = ["contacts:read"]

[[enums]]
name = "Tier"
values = ["BRONZE", "GOLD"]

[[types]]
name = "TierCount"
[types.fields]
tier = "Tier!"
count = "Int!"

[[fields]]
object = "contact"
name = "loyaltyTier"
type = "Tier"

[[queries]]
name = "tierCounts"
returns = "[TierCount!]!"
role = "MANAGER"
[queries.arguments]
since = "Date"

[[mutations]]
name = "grantPoints"
returns = "Int!"
[mutations.arguments]
contactId = "ID!"
points = "Int!"

[[jobs]]
name = "expire-points"
schedule = "0 3 * * *"
missed = "catch-up"
"#;

    #[test]
    fn contributions_parse_into_an_extension() {
        let manifest = Manifest::parse(BASE).unwrap();
        let ext = extension(&manifest);
        assert_eq!(ext.fields[0].ty.to_string(), "Tier");
        assert_eq!(ext.operations.len(), 2);
        assert_eq!(ext.operations[0].role, Role::Manager);
        assert_eq!(ext.operations[1].role, Role::Agent, "mutations default to AGENT");
        assert_eq!(ext.operations[1].arguments["points"].to_string(), "Int!");
        assert_eq!(manifest.jobs[0].missed, MissedRuns::CatchUp);
        assert_eq!(manifest.jobs[0].timeout_ms, 10_000);
    }

    #[test]
    fn bad_contributions_name_the_key() {
        let cases = [
            (BASE.replace("sdk_version = \"1.2.0\"", "sdk_version = \"1.1.0\""), "sdk_version"),
            (BASE.replace("type = \"Tier\"", "type = \"Planet\""), "fields[0].type"),
            (BASE.replace("object = \"contact\"", "object = \"deal\""), "deals:read"),
            (BASE.replace("since = \"Date\"", "since = \"TierCount\""), "queries[0].arguments.since"),
            (BASE.replace("role = \"MANAGER\"", "role = \"BOSS\""), "queries[0].role"),
            (BASE.replace("schedule = \"0 3 * * *\"", "schedule = \"0 25 * * *\""), "jobs[0].schedule"),
            (BASE.replace("name = \"expire-points\"", "name = \"Expire\""), "jobs[0].name"),
            (BASE.replace("missed = \"catch-up\"", "missed = \"sometimes\""), "sometimes"),
            (BASE.replace("name = \"grantPoints\"", "name = \"tierCounts\""), "mutations[0].name"),
            (BASE.replace("values = [\"BRONZE\", \"GOLD\"]", "values = [\"bronze\"]"), "enums[0].values"),
            (BASE.replace("count = \"Int!\"", "count = \"[[Int]]\""), "types[0].fields.count"),
        ];
        for (text, key) in cases {
            let err = Manifest::parse(&text).unwrap_err().to_string();
            assert!(err.contains(key), "`{err}` should name `{key}`");
        }
    }

    #[test]
    fn mutations_below_agent_are_low_role_writes_only_when_the_plugin_can_write() {
        let viewer = BASE.replace(
            "points = \"Int!\"",
            "points = \"Int!\"\n[[mutations]]\nname = \"claim\"\nreturns = \"Int!\"\nrole = \"VIEWER\"",
        );
        let check = |text: &str, grants: &[&str], expect: &[&str]| {
            let manifest = Manifest::parse(text).unwrap();
            let grants: Vec<String> = grants.iter().map(|g| (*g).to_owned()).collect();
            let found: Vec<String> = low_role_writes(&manifest, &grants).iter().map(ToString::to_string).collect();
            assert_eq!(found, expect, "{grants:?}");
        };
        // `grantPoints` defaults to AGENT; only the VIEWER mutation counts, and only with a write.
        check(BASE, &["contacts:write"], &[]);
        check(&viewer, &["contacts:read", "kv"], &[]);
        check(
            &viewer,
            &["contacts:read", "contacts:write", "deals:write"],
            &["mutation `claim` lets VIEWER callers write (through the plugin's grants: contacts:write, deals:write)"],
        );
    }
}
