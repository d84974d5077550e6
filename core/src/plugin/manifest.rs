//! `plugin.toml`: what a plugin is, what it asks for and what it hooks. Versioned by
//! `manifest_version`; unknown keys and bad values are errors naming the key.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde_json::Value as Json;

use crate::domain::actor::Role;
use crate::domain::object::{OnDelete, Registry};
use crate::plugin::PluginError;

/// The manifest format this Kith reads.
pub const MANIFEST_VERSION: u32 = 1;

/// The core objects plugins may read and write, with their capability names (`contacts`), as
/// the registry says.
pub fn object_capabilities() -> impl Iterator<Item = (&'static str, &'static str)> {
    Registry::core_static().objects().filter_map(|d| Some((d.name.as_str(), d.capability.as_deref()?)))
}

/// The core objects a plugin object may reference, as the registry says.
pub fn reference_targets() -> impl Iterator<Item = &'static str> {
    Registry::core_static().objects().filter(|d| d.referenceable).map(|d| d.name.as_str())
}

/// A parsed, validated manifest.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Format version (1).
    pub manifest_version: u32,
    /// Unique id: lowercase letters, digits and `-`, starting with a letter (max 40).
    pub id: String,
    /// Display name.
    pub name: String,
    /// The plugin's version, `MAJOR.MINOR.PATCH`.
    pub version: String,
    /// The SDK version it was built with (`1.0.0`); must match what the component records.
    pub sdk_version: String,
    /// What it does.
    #[serde(default)]
    pub description: String,
    /// Who wrote it.
    #[serde(default)]
    pub authors: Vec<String>,
    /// SPDX license.
    #[serde(default)]
    pub license: Option<String>,
    /// Capabilities it requests (`contacts:read`, `kv`, ...).
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// Event kinds it subscribes to (`contact.created`, `deal.*`, `*`).
    #[serde(default)]
    pub events: Vec<String>,
    /// Its `before-write` hook, if it has one.
    #[serde(default)]
    pub before_write: Option<BeforeWrite>,
    /// Typed settings, by key.
    #[serde(default)]
    pub settings: BTreeMap<String, SettingDef>,
    /// Resource limits it asks for (capped by Kith).
    #[serde(default)]
    pub limits: Limits,
    /// How its events are delivered.
    #[serde(default)]
    pub delivery: DeliverySpec,
    /// Objects it declares: real tables, in GraphQL like core objects while it is enabled.
    #[serde(default)]
    pub objects: Vec<ObjectSpec>,
    /// Output types for its computed fields, queries and mutations (SDK 1.2).
    #[serde(default)]
    pub types: Vec<crate::plugin::extension::TypeSpec>,
    /// Enums for its arguments and results (SDK 1.2).
    #[serde(default)]
    pub enums: Vec<crate::plugin::extension::EnumSpec>,
    /// Fields it computes on objects (SDK 1.2).
    #[serde(default)]
    pub fields: Vec<crate::plugin::extension::FieldSpec>,
    /// Queries it answers (SDK 1.2).
    #[serde(default)]
    pub queries: Vec<crate::plugin::extension::OperationSpec>,
    /// Mutations it answers (SDK 1.2).
    #[serde(default)]
    pub mutations: Vec<crate::plugin::extension::OperationSpec>,
    /// Scheduled jobs (SDK 1.2).
    #[serde(default)]
    pub jobs: Vec<crate::plugin::extension::JobSpec>,
    /// Its part in personal-data requests.
    #[serde(default)]
    pub privacy: PrivacySpec,
    /// Inbound HTTP routes under `/p/ID/` (SDK 1.3).
    #[serde(default)]
    pub routes: Vec<crate::plugin::routes::RouteSpec>,
    /// Custom fields it keeps on core records (a stored value segments and lists can filter
    /// on), defined when it is enabled (SDK 1.4).
    #[serde(default)]
    pub custom_fields: Vec<CustomFieldSpec>,
}

/// A `[[custom_fields]]` entry: a custom field of a core object the plugin writes. Enabling the
/// plugin defines it unless it exists (with the same kind); it outlives the plugin, as its
/// values are the records' own.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomFieldSpec {
    /// The core object (`contact`).
    pub object: String,
    /// Its key in `customFields` (camelCase).
    pub key: String,
    /// Its label for people.
    pub label: String,
    /// One of the custom field kinds (`NUMBER`, `TEXT`, ...).
    pub kind: String,
    /// The allowed values of `SELECT` and `MULTI_SELECT` fields.
    #[serde(default)]
    pub options: Vec<String>,
}

impl CustomFieldSpec {
    /// The definition it asks for.
    pub fn definition(&self) -> crate::domain::custom_field::CustomFieldDef {
        crate::domain::custom_field::CustomFieldDef {
            object: self.object.clone(),
            key: self.key.clone(),
            label: self.label.clone(),
            kind: self.kind.clone(),
            required: false,
            options: self.options.clone(),
        }
    }
}

/// The `[privacy]` table.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivacySpec {
    /// One of its `[[queries]]`, taking `contactId: ID!`, whose answer is added under the
    /// plugin's name to a person's personal-data export (what it holds about them beyond its
    /// objects' records: receipts it issued, what its key-value store keeps).
    #[serde(default)]
    pub export: Option<String>,
}

/// What erasing a person does to a plugin object's records that refer to them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ErasureSpec {
    /// Remove the records.
    Delete,
    /// Clear the `personal` fields and the reference to the person; keep the rest.
    Anonymise,
    /// Keep the records as they are, for the `legal_basis` stated.
    Keep,
}

/// An `[[objects]]` entry.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectSpec {
    /// Singular name, camelCase (`donation`); the GraphQL type is `Donation`.
    pub name: String,
    /// Plural name (`donations`): the list query and the relation on referenced objects.
    pub plural: String,
    /// What a record is.
    #[serde(default)]
    pub description: String,
    /// How people see a record (console lists, search hits, choice lists): a template of its
    /// fields, `{amount} {amountCurrency} on {receivedDate}`; its first text field when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Its fields (`id`, `createdAt`, `updatedAt`, `deletedAt` and `version` come with it).
    pub fields: Vec<FieldSpec>,
    /// Indexes over several fields, for queries and reports that filter on them together.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub indexes: Vec<IndexSpec>,
    /// What erasing a person does to its records that refer to them (`anonymise` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub erasure: Option<ErasureSpec>,
    /// Why records are kept when `erasure = "keep"` (the law or contract that requires it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legal_basis: Option<String>,
}

/// An `[[objects.indexes]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct IndexSpec {
    /// 2 to 6 field names, in index order: its own fields (`amountCurrency` for a money
    /// field `amount`), or `createdAt`, `updatedAt`, `deletedAt`.
    pub fields: Vec<String>,
}

/// An `[[objects.fields]]` entry.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct FieldSpec {
    /// Name, camelCase; references end in `Id` (`contactId` also gives `contact`).
    pub name: String,
    /// Its type.
    #[serde(rename = "type")]
    pub kind: FieldType,
    /// `enum`: the allowed values, UPPER_CASE.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
    /// `ref`: the referenced object, core (`contact`) or the plugin's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Every record must have a value.
    #[serde(default)]
    pub required: bool,
    /// No two live records share a value.
    #[serde(default)]
    pub unique: bool,
    /// Indexed for filters and sorting.
    #[serde(default)]
    pub indexed: bool,
    /// Personal data (GDPR).
    #[serde(default)]
    pub personal: bool,
    /// `ref`: what deleting the referenced record does to this one: `keep` (the default:
    /// nothing), `restrict` (refused while live records refer to it), `set_null` (the reference
    /// is cleared; not on a required field) or `cascade` (deleted with it, restored with it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_delete: Option<OnDelete>,
    /// The least role that may read it: VIEWER, AGENT, MANAGER or ADMIN; AGENT for a
    /// `personal` field, VIEWER for others, when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_role: Option<String>,
    /// What it means.
    #[serde(default)]
    pub description: String,
}

/// Field types of plugin objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    /// Text.
    Text,
    /// A 64-bit integer.
    Integer,
    /// An exact decimal.
    Decimal,
    /// An exact amount plus its ISO 4217 currency in a companion field `<name>Currency`.
    Money,
    /// An ISO 4217 currency code.
    Currency,
    /// A calendar date.
    Date,
    /// An instant (UTC).
    Datetime,
    /// True or false.
    Boolean,
    /// One of `values`.
    Enum,
    /// Any JSON.
    Json,
    /// A reference to a record of `target`.
    Ref,
    /// An e-mail address.
    Email,
    /// An http(s) URL.
    Url,
}

impl fmt::Display for FieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = serde_json::to_value(self).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
        f.write_str(&text)
    }
}

impl FieldSpec {
    /// The least role that may read it: the declared one, else AGENT for personal data and
    /// VIEWER for the rest.
    pub fn least_reader(&self) -> Role {
        let default = if self.personal { Role::Agent } else { Role::Viewer };
        Role::ALL.into_iter().find(|r| Some(r.as_str()) == self.read_role.as_deref()).unwrap_or(default)
    }
}

/// Field names every object has already.
const RESERVED_FIELDS: &[&str] = &["id", "createdAt", "updatedAt", "deletedAt", "version", "customFields", "tags"];

/// Most objects one plugin may declare, and fields per object.
const MAX_OBJECTS: usize = 32;
const MAX_FIELDS: usize = 100;

fn camel_ok(name: &str) -> bool {
    (1..=40).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_alphanumeric())
}

impl ObjectSpec {
    /// Its field names, those that come with every object and money fields' currencies included.
    fn known_fields(&self) -> Vec<String> {
        let mut known: Vec<String> = vec!["createdAt".into(), "updatedAt".into(), "deletedAt".into()];
        for field in &self.fields {
            known.push(field.name.clone());
            if field.kind == FieldType::Money {
                known.push(format!("{}Currency", field.name));
            }
        }
        known
    }

    fn validate_title(&self, key: &str) -> Result<(), PluginError> {
        let Some(title) = &self.title else { return Ok(()) };
        let at = format!("{key}.title");
        let fields: Vec<&str> =
            title.split('{').skip(1).filter_map(|part| part.split_once('}').map(|(field, _)| field)).collect();
        if fields.is_empty() || title.len() > 200 {
            return Err(PluginError::manifest(
                &at,
                "a title names at least one `{field}` and is at most 200 characters",
            ));
        }
        let known = self.known_fields();
        for name in fields {
            if !known.iter().any(|k| k == name)
                || self.fields.iter().any(|f| f.name == name && f.kind == FieldType::Json)
            {
                return Err(PluginError::manifest(
                    &at,
                    format!("`{{{name}}}` is not a field of `{}` a title can show", self.name),
                ));
            }
        }
        Ok(())
    }

    fn validate_indexes(&self, key: &str) -> Result<(), PluginError> {
        if self.indexes.len() > 8 {
            return Err(PluginError::manifest(&format!("{key}.indexes"), "at most 8 indexes"));
        }
        let known = self.known_fields();
        let mut seen = std::collections::BTreeSet::new();
        for (i, index) in self.indexes.iter().enumerate() {
            let at = format!("{key}.indexes[{i}].fields");
            if !(2..=6).contains(&index.fields.len()) {
                return Err(PluginError::manifest(&at, "an index names 2 to 6 fields (one field: `indexed = true`)"));
            }
            for name in &index.fields {
                if !known.contains(name) {
                    return Err(PluginError::manifest(&at, format!("`{name}` is not a field of `{}`", self.name)));
                }
                if self.fields.iter().any(|f| &f.name == name && f.kind == FieldType::Json) {
                    return Err(PluginError::manifest(&at, format!("the json field `{name}` cannot be indexed")));
                }
            }
            if index.fields.iter().collect::<std::collections::BTreeSet<_>>().len() != index.fields.len() {
                return Err(PluginError::manifest(&at, "a field appears twice"));
            }
            if !seen.insert(index.fields.clone()) {
                return Err(PluginError::manifest(&at, "the same index is declared twice"));
            }
        }
        Ok(())
    }

    /// The erasure policy as the registry holds it.
    pub fn erasure(&self) -> crate::domain::object::Erasure {
        use crate::domain::object::Erasure;
        match self.erasure {
            Some(ErasureSpec::Delete) => Erasure::Delete,
            Some(ErasureSpec::Keep) => Erasure::Keep(self.legal_basis.clone().unwrap_or_default()),
            Some(ErasureSpec::Anonymise) | None => Erasure::Anonymise,
        }
    }

    fn validate_erasure(&self, key: &str) -> Result<(), PluginError> {
        let basis = self.legal_basis.as_deref().map(str::trim).unwrap_or_default();
        match self.erasure {
            Some(ErasureSpec::Keep) if basis.is_empty() || basis.len() > 500 => Err(PluginError::manifest(
                &format!("{key}.legal_basis"),
                "`erasure = \"keep\"` states its legal basis (at most 500 characters)",
            )),
            Some(ErasureSpec::Keep) => Ok(()),
            _ if self.legal_basis.is_some() => {
                Err(PluginError::manifest(&format!("{key}.legal_basis"), "only `erasure = \"keep\"` has a legal basis"))
            }
            _ => Ok(()),
        }
    }

    fn validate(&self, index: usize, own: &[&str]) -> Result<(), PluginError> {
        let key = format!("objects[{index}]");
        self.validate_indexes(&key)?;
        self.validate_erasure(&key)?;
        self.validate_title(&key)?;
        if !camel_ok(&self.name) {
            return Err(PluginError::manifest(
                &format!("{key}.name"),
                format!("`{}` must be camelCase letters and digits, starting lowercase (max 40)", self.name),
            ));
        }
        if !camel_ok(&self.plural) || self.plural == self.name {
            return Err(PluginError::manifest(
                &format!("{key}.plural"),
                format!("`{}` must be camelCase and differ from the singular name", self.plural),
            ));
        }
        if self.fields.is_empty() || self.fields.len() > MAX_FIELDS {
            return Err(PluginError::manifest(&format!("{key}.fields"), format!("declare 1 to {MAX_FIELDS} fields")));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, field) in self.fields.iter().enumerate() {
            let key = format!("{key}.fields[{i}]");
            let bad = |what: &str, reason: String| PluginError::manifest(&format!("{key}.{what}"), reason);
            if !camel_ok(&field.name) {
                return Err(bad("name", format!("`{}` must be camelCase letters and digits (max 40)", field.name)));
            }
            if RESERVED_FIELDS.contains(&field.name.as_str()) {
                return Err(bad("name", format!("`{}` is a field every object has already", field.name)));
            }
            let mut names = vec![field.name.clone()];
            if field.kind == FieldType::Money {
                names.push(format!("{}Currency", field.name));
            }
            for name in names {
                if !seen.insert(name.clone()) {
                    return Err(bad("name", format!("`{name}` is declared twice")));
                }
            }
            match (field.kind, &field.target) {
                (FieldType::Ref, None) => return Err(bad("target", "a `ref` field names its `target`".into())),
                (FieldType::Ref, Some(target)) => {
                    if !reference_targets().any(|t| t == target) && !own.contains(&target.as_str()) {
                        return Err(bad(
                            "target",
                            format!(
                                "`{target}` is neither a core object ({}) nor one of this plugin's",
                                reference_targets().collect::<Vec<_>>().join(", ")
                            ),
                        ));
                    }
                    if !field.name.ends_with("Id") || field.name.len() < 3 {
                        return Err(bad("name", format!("a reference's name ends in `Id` (`{target}Id`)")));
                    }
                }
                (_, Some(_)) => return Err(bad("target", "only `ref` fields have a target".into())),
                _ => {}
            }
            match field.on_delete {
                Some(_) if field.kind != FieldType::Ref => {
                    return Err(bad("on_delete", "only `ref` fields have an `on_delete`".into()));
                }
                Some(OnDelete::SetNull) if field.required => {
                    return Err(bad(
                        "on_delete",
                        "a required reference cannot be cleared: use `restrict`, `cascade` or `keep`".into(),
                    ));
                }
                _ => {}
            }
            if field.kind == FieldType::Enum {
                let upper = |v: &String| {
                    v.starts_with(|c: char| c.is_ascii_uppercase())
                        && v.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
                };
                if field.values.is_empty() || !field.values.iter().all(upper) {
                    return Err(bad("values", "an `enum` lists its values, UPPER_CASE".into()));
                }
            } else if !field.values.is_empty() {
                return Err(bad("values", "only `enum` fields have values".into()));
            }
            if field.unique && matches!(field.kind, FieldType::Json | FieldType::Boolean | FieldType::Money) {
                return Err(bad("unique", format!("a {} field cannot be unique", field.kind)));
            }
            if field.indexed && field.kind == FieldType::Json {
                return Err(bad("indexed", "a json field cannot be indexed".into()));
            }
            crate::plugin::extension::parse_role(
                &format!("{key}.read_role"),
                field.read_role.as_deref(),
                Role::Viewer,
            )?;
        }
        Ok(())
    }
}

/// The `[before_write]` table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BeforeWrite {
    /// Objects whose writes it vets.
    pub objects: Vec<String>,
    /// What happens when the hook traps or times out: `allow` (fail open) or `deny` (fail
    /// closed). Required: the choice must be explicit.
    pub on_failure: FailurePolicy,
    /// Time budget per call in milliseconds (default 20, at most 1000).
    #[serde(default = "default_hook_ms")]
    pub timeout_ms: u64,
    /// Whether the hook also vets the plugin's own writes (default true). A plugin that
    /// checks its own writes in its code says `false`, and each of its writes to these objects
    /// is spared a call into it.
    #[serde(default = "default_own_writes")]
    pub own_writes: bool,
}

fn default_hook_ms() -> u64 {
    20
}

fn default_own_writes() -> bool {
    true
}

/// Fail open or closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailurePolicy {
    /// The write goes through.
    Allow,
    /// The write is refused.
    Deny,
}

/// The `[delivery]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliverySpec {
    /// Partitions its events are split into, by record (default 1, at most 64). Each partition
    /// is delivered in order by one process at a time, and partitions are delivered at once: on
    /// several instances of a process and by every process sharing the database. With more than
    /// one, a record's events keep their order but events of different records may be handled
    /// in any order, and at the same time.
    #[serde(default = "default_partitions")]
    pub partitions: u32,
}

fn default_partitions() -> u32 {
    1
}

impl Default for DeliverySpec {
    fn default() -> Self {
        DeliverySpec { partitions: default_partitions() }
    }
}

/// The `[limits]` table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Time budget of one event batch, in milliseconds (default 100, at most 10,000).
    #[serde(default = "default_event_ms")]
    pub event_timeout_ms: u64,
    /// Linear memory cap per instance in MiB (default 64, at most 256).
    #[serde(default = "default_memory")]
    pub memory_mib: u64,
    /// Outbound HTTP requests a minute (default 120, at most 6000).
    #[serde(default = "default_http_rate")]
    pub http_per_minute: u32,
    /// What the plugin may keep in its key–value store, in MiB (default 64, at most 1,024).
    #[serde(default = "default_kv_mib")]
    pub kv_mib: u64,
    /// Instances of the plugin that may exist at once in one process (default 4, at most 16):
    /// concurrent calls beyond wait for one.
    #[serde(default = "default_instances")]
    pub instances: u32,
    /// Records one event may cause the plugin to write (default 100, at most 10,000).
    #[serde(default = "default_writes_per_event")]
    pub writes_per_event: u32,
    /// Records the plugin may write in a minute while handling events that plugin writes
    /// caused (chains, which can grow without end), per process (default 1,000, at most
    /// 100,000).
    #[serde(default = "default_chained_writes")]
    pub chained_writes_per_minute: u32,
    /// E-mail messages the plugin may queue a minute, per process (default 60, at most
    /// 1,000,000: a campaign to a large segment queues its messages at once).
    #[serde(default = "default_mail_rate")]
    pub mail_per_minute: u32,
}

fn default_mail_rate() -> u32 {
    60
}

fn default_instances() -> u32 {
    4
}

fn default_writes_per_event() -> u32 {
    100
}

fn default_chained_writes() -> u32 {
    1_000
}

fn default_kv_mib() -> u64 {
    64
}

fn default_http_rate() -> u32 {
    120
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            event_timeout_ms: default_event_ms(),
            memory_mib: default_memory(),
            http_per_minute: default_http_rate(),
            mail_per_minute: default_mail_rate(),
            kv_mib: default_kv_mib(),
            instances: default_instances(),
            writes_per_event: default_writes_per_event(),
            chained_writes_per_minute: default_chained_writes(),
        }
    }
}

fn default_event_ms() -> u64 {
    100
}

fn default_memory() -> u64 {
    64
}

/// A setting's declaration.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingDef {
    /// Its type.
    #[serde(rename = "type")]
    pub kind: SettingKind,
    /// The value when the admin set none.
    #[serde(default)]
    pub default: Option<toml::Value>,
    /// What it means.
    #[serde(default)]
    pub description: String,
    /// Write-only: never shown, never given to the plugin's code (only host-side use).
    #[serde(default)]
    pub secret: bool,
}

/// Setting types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SettingKind {
    /// Text.
    String,
    /// A whole number.
    Integer,
    /// A number.
    Number,
    /// True or false.
    Boolean,
    /// A list of texts.
    StringList,
}

impl fmt::Display for SettingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SettingKind::String => "string",
            SettingKind::Integer => "integer",
            SettingKind::Number => "number",
            SettingKind::Boolean => "boolean",
            SettingKind::StringList => "string_list",
        })
    }
}

impl SettingKind {
    /// Checks a JSON value against the type.
    pub fn check(self, key: &str, value: &Json) -> Result<(), PluginError> {
        let ok = match self {
            SettingKind::String => value.is_string(),
            SettingKind::Integer => value.is_i64() || value.is_u64(),
            SettingKind::Number => value.is_number(),
            SettingKind::Boolean => value.is_boolean(),
            SettingKind::StringList => value.as_array().is_some_and(|items| items.iter().all(Json::is_string)),
        };
        if ok { Ok(()) } else { Err(PluginError::invalid(format!("setting `{key}` must be a {self}, got {value}"))) }
    }

    /// Reads a value typed on a command line (`true`, `42`, `a,b,c`, or JSON).
    pub fn parse_text(self, key: &str, text: &str) -> Result<Json, PluginError> {
        let value = match self {
            SettingKind::String => Json::String(text.to_owned()),
            SettingKind::StringList if !text.trim_start().starts_with('[') => Json::Array(
                text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(|s| Json::String(s.to_owned())).collect(),
            ),
            _ => serde_json::from_str(text)
                .map_err(|_| PluginError::invalid(format!("setting `{key}` must be a {self}, got `{text}`")))?,
        };
        self.check(key, &value)?;
        Ok(value)
    }
}

/// The grant that lets a plugin group by, or compute metrics over, `personal` fields in its
/// aggregates (reading records is covered by the object grants; aggregates feed reports that
/// reach people, so personal data stays out of them unless the admin says otherwise).
pub const PERSONAL_AGGREGATE: &str = "personal:aggregate";

/// The grant that lets a plugin queue e-mail (`kith:plugin/mail`, SDK 1.3).
pub const MAIL_SEND: &str = "mail:send";

/// Whether `id` is a plugin id: 1-40 lowercase letters, digits or `-`, starting with a letter.
pub fn id_ok(id: &str) -> bool {
    (1..=40).contains(&id.len())
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// The grant that reads `plural` records of plugin `plugin` (`donors/donations:read`): another
/// plugin's records may be read, never written (their owner keeps their rules).
pub fn plugin_object_capability(plugin: &str, plural: &str) -> String {
    format!("{plugin}/{plural}:read")
}

/// A capability: `OBJECTS:read`, `OBJECTS:write`, `PLUGIN/OBJECTS:read`, `kv`,
/// `personal:aggregate`, `mail:send` or an HTTP origin.
pub fn check_capability(capability: &str) -> Result<(), PluginError> {
    if capability == "kv" || capability == PERSONAL_AGGREGATE || capability == MAIL_SEND {
        return Ok(());
    }
    if let Some((plugin, rest)) = capability.split_once('/')
        && !capability.starts_with("http")
    {
        let plural_ok = |p: &str| {
            (1..=60).contains(&p.len())
                && p.starts_with(|c: char| c.is_ascii_lowercase())
                && p.chars().all(|c| c.is_ascii_alphanumeric())
        };
        return match rest.split_once(':') {
            Some((plural, "read")) if id_ok(plugin) && plural_ok(plural) => Ok(()),
            Some((_, "write")) => Err(PluginError::manifest(
                "capabilities",
                format!("`{capability}`: another plugin's records may be read, not written (`PLUGIN/OBJECTS:read`)"),
            )),
            _ => Err(PluginError::manifest(
                "capabilities",
                format!("`{capability}` must be `PLUGIN/OBJECTS:read` (e.g. `donors/donations:read`)"),
            )),
        };
    }
    if capability.starts_with("http:") || capability.starts_with("http-private:") {
        if crate::plugin::http::capability_setting(capability).is_some() {
            // Which setting, and that it is a string one, is checked against the manifest's settings.
            return Ok(());
        }
        return match crate::plugin::http::capability_origin(capability) {
            Some(_) => Ok(()),
            None => Err(PluginError::manifest(
                "capabilities",
                format!(
                    "`{capability}` must name an origin: `http:https://host[:port]` (or `http-private:...`), or a setting holding one: `http:setting:KEY`"
                ),
            )),
        };
    }
    if let Some((objects, access)) = capability.split_once(':')
        && object_capabilities().any(|(_, plural)| plural == objects)
        && (access == "read" || access == "write")
    {
        return Ok(());
    }
    let known: Vec<_> = object_capabilities().map(|(_, p)| format!("{p}:read|write")).collect();
    Err(PluginError::manifest(
        "capabilities",
        format!(
            "unknown capability `{capability}` (known: {}, PLUGIN/OBJECTS:read, kv, {PERSONAL_AGGREGATE}, {MAIL_SEND}, http:ORIGIN, http-private:ORIGIN, http:setting:KEY, http-private:setting:KEY)",
            known.join(", ")
        ),
    ))
}

/// The capability a read or write of `object` needs, or `None` for an object plugins cannot use.
pub fn object_capability(object: &str, write: bool) -> Option<String> {
    let plural = object_capabilities().find(|(name, _)| *name == object)?.1;
    Some(format!("{plural}:{}", if write { "write" } else { "read" }))
}

/// Whether an event kind matches a subscription pattern (`contact.created`, `contact.*`, `*`).
pub fn event_matches(pattern: &str, kind: &str) -> bool {
    match pattern.strip_suffix(".*") {
        _ if pattern == "*" => true,
        Some(object) => kind.split_once('.').is_some_and(|(o, _)| o == object),
        None => pattern == kind,
    }
}

fn parse_semver(key: &str, text: &str) -> Result<(u16, u16, u16), PluginError> {
    let parts: Vec<_> = text.split('.').collect();
    let bad = || PluginError::manifest(key, format!("`{text}` is not a MAJOR.MINOR.PATCH version"));
    if parts.len() != 3 {
        return Err(bad());
    }
    let num = |s: &str| s.parse::<u16>().map_err(|_| bad());
    Ok((num(parts[0])?, num(parts[1])?, num(parts[2])?))
}

impl Manifest {
    /// Parses and validates `plugin.toml` text.
    pub fn parse(text: &str) -> Result<Manifest, PluginError> {
        let manifest: Manifest = toml::from_str(text).map_err(|err| {
            let message = err.message().to_owned();
            let key = err.span().and_then(|span| key_at(text, span.start)).unwrap_or_else(|| key_of(&message));
            PluginError::Manifest { key, reason: message }
        })?;
        manifest.validate()?;
        Ok(manifest)
    }

    /// The SDK version as `(major, minor, patch)`.
    pub fn sdk(&self) -> Result<(u16, u16, u16), PluginError> {
        parse_semver("sdk_version", &self.sdk_version)
    }

    fn validate(&self) -> Result<(), PluginError> {
        if self.manifest_version != MANIFEST_VERSION {
            return Err(PluginError::manifest(
                "manifest_version",
                format!("this Kith reads manifest version {MANIFEST_VERSION}, not {}", self.manifest_version),
            ));
        }
        if !id_ok(&self.id) {
            return Err(PluginError::manifest(
                "id",
                format!("`{}` must be 1-40 lowercase letters, digits or `-`, starting with a letter", self.id),
            ));
        }
        if self.name.trim().is_empty() {
            return Err(PluginError::manifest("name", "must not be empty"));
        }
        parse_semver("version", &self.version)?;
        self.sdk()?;
        for capability in &self.capabilities {
            check_capability(capability)?;
            if let Some((key, _)) = crate::plugin::http::capability_setting(capability) {
                match self.settings.get(key) {
                    Some(def) if def.kind == SettingKind::String && !def.secret => {}
                    _ => {
                        return Err(PluginError::manifest(
                            "capabilities",
                            format!(
                                "`{capability}` names the setting `{key}`: declare it as a string setting, not secret, holding the URL an admin gives"
                            ),
                        ));
                    }
                }
            }
        }
        if self.objects.len() > MAX_OBJECTS {
            return Err(PluginError::manifest("objects", format!("at most {MAX_OBJECTS} objects")));
        }
        for (i, field) in self.custom_fields.iter().enumerate() {
            let here = format!("custom_fields[{i}]");
            if !crate::domain::custom_field::KINDS.contains(&field.kind.as_str()) {
                return Err(PluginError::manifest(
                    &format!("{here}.kind"),
                    format!("`{}` is not one of {}", field.kind, crate::domain::custom_field::KINDS.join(", ")),
                ));
            }
            let Some(write) = object_capability(&field.object, true) else {
                return Err(PluginError::manifest(
                    &format!("{here}.object"),
                    format!("`{}` is not a core object", field.object),
                ));
            };
            if !self.capabilities.contains(&write) {
                return Err(PluginError::manifest(
                    &format!("{here}.object"),
                    format!("keeping a custom field of `{}` needs the capability `{write}`", field.object),
                ));
            }
        }
        let own: Vec<&str> = self.objects.iter().map(|o| o.name.as_str()).collect();
        let mut taken = std::collections::BTreeSet::new();
        for (i, object) in self.objects.iter().enumerate() {
            object.validate(i, &own)?;
            for name in [&object.name, &object.plural] {
                if !taken.insert(name.as_str()) {
                    return Err(PluginError::manifest(
                        &format!("objects[{i}].name"),
                        format!("`{name}` is declared twice"),
                    ));
                }
            }
        }
        for pattern in &self.events {
            let object = pattern.split('.').next().unwrap_or_default();
            // `mail.sent` and `mail.failed`: the outcomes of the plugin's own messages (SDK 1.3).
            let known = pattern == "*"
                || object_capabilities().any(|(name, _)| name == object)
                || own.contains(&object)
                || object == "mail";
            if !known || pattern.split('.').count() > 2 || pattern.ends_with('.') {
                return Err(PluginError::manifest(
                    "events",
                    format!("`{pattern}` is not an event pattern (`contact.created`, `deal.*` or `*`)"),
                ));
            }
            // An event carries the record: receiving it is reading it (its own objects it may).
            if !own.contains(&object)
                && let Some(read) = object_capability(object, false)
                && !self.capabilities.contains(&read)
            {
                return Err(PluginError::manifest(
                    "events",
                    format!("`{pattern}` delivers {object} records: request `{read}` in `capabilities`"),
                ));
            }
        }
        if let Some(hook) = &self.before_write {
            if hook.objects.is_empty() {
                return Err(PluginError::manifest("before_write.objects", "list at least one object"));
            }
            for object in &hook.objects {
                if own.contains(&object.as_str()) {
                    continue;
                }
                let Some(read) = object_capability(object, false) else {
                    return Err(PluginError::manifest(
                        "before_write.objects",
                        format!("`{object}` is not an object plugins can hook"),
                    ));
                };
                // The hook sees the record: vetting writes to an object is reading it.
                if !self.capabilities.contains(&read) {
                    return Err(PluginError::manifest(
                        "before_write.objects",
                        format!("hooking {object} writes shows the records: request `{read}` in `capabilities`"),
                    ));
                }
            }
            if !(1..=1_000).contains(&hook.timeout_ms) {
                return Err(PluginError::manifest("before_write.timeout_ms", "must be between 1 and 1000"));
            }
        }
        if !(1..=10_000).contains(&self.limits.event_timeout_ms) {
            return Err(PluginError::manifest("limits.event_timeout_ms", "must be between 1 and 10000"));
        }
        if !(1..=256).contains(&self.limits.memory_mib) {
            return Err(PluginError::manifest("limits.memory_mib", "must be between 1 and 256"));
        }
        if !(1..=16).contains(&self.limits.instances) {
            return Err(PluginError::manifest("limits.instances", "must be between 1 and 16"));
        }
        crate::plugin::routes::validate(&self.routes)?;
        if !(1..=64).contains(&self.delivery.partitions) {
            return Err(PluginError::manifest("delivery.partitions", "must be between 1 and 64"));
        }
        if !(1..=10_000).contains(&self.limits.writes_per_event) {
            return Err(PluginError::manifest("limits.writes_per_event", "must be between 1 and 10000"));
        }
        if !(1..=100_000).contains(&self.limits.chained_writes_per_minute) {
            return Err(PluginError::manifest("limits.chained_writes_per_minute", "must be between 1 and 100000"));
        }
        if !(1..=1_024).contains(&self.limits.kv_mib) {
            return Err(PluginError::manifest("limits.kv_mib", "must be between 1 and 1024"));
        }
        if !(1..=6_000).contains(&self.limits.http_per_minute) {
            return Err(PluginError::manifest("limits.http_per_minute", "must be between 1 and 6000"));
        }
        if !(1..=1_000_000).contains(&self.limits.mail_per_minute) {
            return Err(PluginError::manifest("limits.mail_per_minute", "must be between 1 and 1000000"));
        }
        crate::plugin::extension::validate(self)?;
        if let Some(export) = &self.privacy.export {
            let query = self.queries.iter().find(|q| &q.name == export).ok_or_else(|| {
                PluginError::manifest("privacy.export", format!("`{export}` is not one of the plugin's `[[queries]]`"))
            })?;
            if !query.takes_contact_id() {
                return Err(PluginError::manifest(
                    "privacy.export",
                    format!("the query `{export}` must take the argument `contactId: ID!`"),
                ));
            }
        }
        for (key, def) in &self.settings {
            if def.secret && def.kind != SettingKind::String {
                return Err(PluginError::manifest(
                    &format!("settings.{key}.secret"),
                    "only string settings can be secret",
                ));
            }
            if let Some(default) = &def.default {
                let json = serde_json::to_value(default)
                    .map_err(|err| PluginError::manifest(&format!("settings.{key}.default"), err.to_string()))?;
                def.kind
                    .check(key, &json)
                    .map_err(|err| PluginError::manifest(&format!("settings.{key}.default"), err.to_string()))?;
            }
        }
        Ok(())
    }

    /// The value of each non-secret setting: the stored one, else the default.
    pub fn effective_settings(&self, stored: &Json) -> BTreeMap<String, Json> {
        let mut out = BTreeMap::new();
        for (key, def) in &self.settings {
            if def.secret {
                continue;
            }
            let value = stored
                .get(key)
                .cloned()
                .or_else(|| def.default.as_ref().and_then(|d| serde_json::to_value(d).ok()))
                .unwrap_or(Json::Null);
            out.insert(key.clone(), value);
        }
        out
    }

    /// Whether the plugin subscribes to `kind`.
    pub fn subscribes(&self, kind: &str) -> bool {
        self.events.iter().any(|pattern| event_matches(pattern, kind))
    }

    /// Whether an event about `object` of `kind` goes to the plugin: it subscribes to it and was
    /// granted reading that object (an event carries the record).
    pub fn receives(&self, kind: &str, object: &str, grants: &std::collections::BTreeSet<String>) -> bool {
        self.subscribes(kind)
            && (self.owns(object) || object_capability(object, false).is_some_and(|read| grants.contains(&read)))
    }

    /// Whether it declares computed fields, queries, mutations or jobs (which need the
    /// `kith:plugin/extension` export of SDK 1.2).
    pub fn contributes(&self) -> bool {
        !self.fields.is_empty() || !self.queries.is_empty() || !self.mutations.is_empty() || !self.jobs.is_empty()
    }

    /// Whether `object` is one of the plugin's own objects.
    pub fn owns(&self, object: &str) -> bool {
        self.objects.iter().any(|o| o.name == object)
    }
}

/// The dotted key (`limits.memory_mib`) of the `key = value` line holding byte `offset` of
/// `text`, under the nearest table header above it.
fn key_at(text: &str, offset: usize) -> Option<String> {
    let offset = offset.min(text.len());
    let line_start = text.get(..offset)?.rfind('\n').map_or(0, |i| i + 1);
    let line = text.get(line_start..)?.lines().next()?;
    let (key, _) = line.split_once('=')?;
    let key = key.trim().trim_matches('"');
    if key.is_empty() || key.starts_with('[') {
        return None;
    }
    let header = text[..line_start].lines().rev().map(str::trim).find(|l| l.starts_with('['));
    Some(match header {
        Some(header) => format!("{}.{key}", header.trim_matches(|c| c == '[' || c == ']').trim()),
        None => key.to_owned(),
    })
}

/// Pulls the key out of a toml error message such as "unknown field `foo`, expected ...".
fn key_of(message: &str) -> String {
    message.split('`').nth(1).unwrap_or("manifest").to_owned()
}

#[cfg(test)]
mod tests;
