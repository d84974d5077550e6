//! The naming plan: every GraphQL name the registry brings (types, query and mutation fields,
//! the fields of object types, reverse relations), computed from the registry alone. The API
//! builds its schema with these names; enabling a plugin checks its additions against them
//! without building a schema. A test keeps the plan equal to what the built schema answers.

use std::collections::{BTreeMap, BTreeSet};

use crate::domain::extension::OperationKind;
use crate::domain::object::{FieldDef, ObjectDef, Registry};
use crate::domain::value::FieldKind;

/// Types the core schema has whatever the objects: scalars, filters of scalars, paging, reports,
/// admin and plugin administration types, and the roots.
pub const FIXED_TYPES: &[&str] = &[
    "ApiToken",
    "AuditEntry",
    "Boolean",
    "BooleanFilter",
    "ContactDuplicate",
    "CreatedWebhook",
    "CustomField",
    "CustomFieldKind",
    "Date",
    "DateFilter",
    "DateTime",
    "DateTimeFilter",
    "DealOutcome",
    "Decimal",
    "DecimalFilter",
    "ErasureLine",
    "ErasureReport",
    "Float",
    "GrowthInterval",
    "GrowthPoint",
    "ID",
    "IDFilter",
    "ImportColumn",
    "ImportMapping",
    "ImportOnDuplicate",
    "ImportPlan",
    "ImportRejectedRow",
    "ImportRun",
    "ImportState",
    "ImportTarget",
    "Importable",
    "Int",
    "IntFilter",
    "JSON",
    "Money",
    "Mutation",
    "NullsOrder",
    "PageInfo",
    "PipelineReport",
    "Plugin",
    "PluginDeadLetter",
    "PluginJob",
    "PluginJobRun",
    "PluginOperation",
    "PluginOperationKind",
    "PluginReplay",
    "PluginStats",
    "Query",
    "RecordChange",
    "SearchHit",
    "SearchType",
    "SegmentMember",
    "SegmentMemberConnection",
    "SegmentMemberEdge",
    "Session",
    "SortDirection",
    "StageReport",
    "String",
    "StringFilter",
    "Subscription",
    "TicketReport",
    "TimelineItem",
    "UpdateUserInput",
    "Webhook",
    "WebhookDelivery",
    "WebhookDeliveryState",
    "WebhookInput",
];

/// Query fields that are not an object's `x` / `xs`.
pub const FIXED_QUERIES: &[&str] = &[
    "apiTokens",
    "auditLog",
    "contactDuplicates",
    "contactGrowth",
    "customFields",
    "erasurePlan",
    "importPlan",
    "importRun",
    "importRuns",
    "importables",
    "pipelineReport",
    "pluginDeadLetters",
    "pluginJobRuns",
    "pluginJobs",
    "plugins",
    "search",
    "ticketReport",
    "webhook",
    "webhookDeliveries",
    "webhooks",
];

/// Mutation fields that are not an object's generic create / update / delete / restore.
pub const FIXED_MUTATIONS: &[&str] = &[
    "addTicketComment",
    "assignTicket",
    "changeTicketStatus",
    "closeDeal",
    "completeTask",
    "createApiToken",
    "createUser",
    "createWebhook",
    "defineCustomField",
    "deleteWebhook",
    "disablePlugin",
    "enablePlugin",
    "enableWebhook",
    "erasePersonalData",
    "exportPersonalData",
    "installPlugin",
    "login",
    "mergeContacts",
    "moveDeal",
    "pingWebhook",
    "rateTicket",
    "recordConsent",
    "replayPluginEvents",
    "replayWebhookDeliveries",
    "revokeApiToken",
    "rotateWebhookSecret",
    "runPluginJob",
    "setPluginSetting",
    "startImport",
    "uninstallPlugin",
    "updateUser",
    "updateWebhook",
    "upgradePlugin",
];

/// Fields a core object type has beyond what its flags give: a segment's `members`.
pub const FIXED_OBJECT_FIELDS: &[(&str, &str)] = &[("segment", "members")];

/// The generic mutation verbs, in the order the schema lists them.
pub const VERBS: &[&str] = &["create", "update", "delete", "restore"];

/// `firstName` becomes `FirstName`.
pub fn upper_first(s: &str) -> String {
    let mut out = s.to_owned();
    if let Some(first) = out.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    out
}

/// `ContactConnection`, `ContactEdge`, `ContactFilter`, …: a type named after an object.
pub fn object_type(def: &ObjectDef, suffix: Suffix) -> String {
    format!("{}{}", def.type_name, suffix.as_str())
}

/// The types every object brings besides its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suffix {
    /// A page of records.
    Connection,
    /// One record of a page, with its cursor.
    Edge,
    /// The filter input.
    Filter,
    /// The enum of sortable fields.
    SortField,
    /// The sort input.
    OrderBy,
    /// The input of `createX`.
    CreateInput,
    /// The input of `updateX`.
    UpdateInput,
}

impl Suffix {
    /// Every suffix.
    pub const ALL: [Suffix; 7] = [
        Suffix::Connection,
        Suffix::Edge,
        Suffix::Filter,
        Suffix::SortField,
        Suffix::OrderBy,
        Suffix::CreateInput,
        Suffix::UpdateInput,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Suffix::Connection => "Connection",
            Suffix::Edge => "Edge",
            Suffix::Filter => "Filter",
            Suffix::SortField => "SortField",
            Suffix::OrderBy => "OrderBy",
            Suffix::CreateInput => "CreateInput",
            Suffix::UpdateInput => "UpdateInput",
        }
    }

    /// Whether only objects with generic mutations have it.
    fn mutable_only(self) -> bool {
        matches!(self, Suffix::CreateInput | Suffix::UpdateInput)
    }
}

/// The value that names an object in enums of objects (`SearchType`, `SegmentObject`):
/// `CONTACT`, `TICKET_COMMENT`.
pub fn enum_value(def: &ObjectDef) -> String {
    crate::domain::object::snake_case(&def.name).to_ascii_uppercase()
}

/// The object an [`enum_value`] names.
pub fn object_of_value<'r>(registry: &'r Registry, value: &str) -> Option<&'r std::sync::Arc<ObjectDef>> {
    registry.objects().find(|def| enum_value(def) == value)
}

/// `contacts, companies and deals`.
pub fn words(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// The enum type of an enum field: `ContactLifecycleStage`.
pub fn enum_type(def: &ObjectDef, field: &FieldDef) -> String {
    format!("{}{}", def.type_name, upper_first(&field.name))
}

/// The filter input of an enum type: `ContactLifecycleStageFilter`.
pub fn enum_filter(enum_type: &str) -> String {
    format!("{enum_type}Filter")
}

/// A generic mutation: `createContact`, or `createContacts` for the batch create.
pub fn mutation(def: &ObjectDef, verb: &str) -> String {
    format!("{verb}{}", def.type_name)
}

/// The batch create: `createContacts`.
pub fn batch_create(def: &ObjectDef) -> String {
    format!("create{}", upper_first(&def.plural))
}

/// The forward relation a reference adds (`companyId` gives `company`), unless the object
/// has a field of that name or the target is unknown.
pub fn forward_relation(registry: &Registry, def: &ObjectDef, field: &FieldDef) -> Option<String> {
    let FieldKind::Ref(target) = &field.kind else { return None };
    registry.get(target)?;
    field.name.strip_suffix("Id").filter(|r| !r.is_empty() && def.field_def(r).is_none()).map(str::to_owned)
}

/// The relations other objects' references add to `target` (`Company.contacts`), as
/// (referring object, its field, the relation's name): the referring object's plural, or
/// `{plural}By{Field}` when it refers to `target` more than once, or what the field says.
pub fn reverse_relations<'r>(
    registry: &'r Registry,
    target: &ObjectDef,
) -> Vec<(&'r std::sync::Arc<ObjectDef>, &'r FieldDef, String)> {
    let mut out = Vec::new();
    for other in registry.objects() {
        let refs: Vec<&FieldDef> = other.references().filter(|(_, t)| *t == target.name).map(|(f, _)| f).collect();
        for field in &refs {
            let name = match &field.reverse {
                Some(name) => name.clone(),
                None if refs.len() == 1 => other.plural.clone(),
                None => format!("{}By{}", other.plural, upper_first(field.name.trim_end_matches("Id"))),
            };
            out.push((other, *field, name));
        }
    }
    out
}

/// Every name of the API a registry describes, and where it clashes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Names {
    /// Every type.
    pub types: BTreeSet<String>,
    /// The fields of `Query`, `Mutation` and the object types.
    pub fields: BTreeMap<String, BTreeSet<String>>,
}

impl Names {
    /// The names of the API over `registry` (objects and plugin contributions). Refused, naming
    /// the first clash, when two things would take one name.
    pub fn of(registry: &Registry) -> Result<Names, String> {
        let mut names = Names::default();
        for ty in FIXED_TYPES {
            names.types.insert((*ty).to_owned());
        }
        for q in FIXED_QUERIES {
            names.field("Query", q)?;
        }
        for m in FIXED_MUTATIONS {
            names.field("Mutation", m)?;
        }
        for def in registry.objects() {
            names.object(registry, def)?;
        }
        for extension in registry.extensions() {
            for ty in extension.types.iter().map(|t| &t.name).chain(extension.enums.iter().map(|e| &e.name)) {
                names.ty(ty, || format!("plugin `{}`", extension.plugin))?;
            }
            for operation in &extension.operations {
                let root = match operation.kind {
                    OperationKind::Query => "Query",
                    OperationKind::Mutation => "Mutation",
                };
                names.field(root, &operation.name)?;
            }
            for field in &extension.fields {
                let def = registry.get(&field.object).ok_or_else(|| {
                    format!("computed field `{}` is on unknown object `{}`", field.name, field.object)
                })?;
                names.field(&def.type_name, &field.name)?;
            }
        }
        Ok(names)
    }

    fn ty(&mut self, name: &str, owner: impl Fn() -> String) -> Result<(), String> {
        if self.types.insert(name.to_owned()) {
            Ok(())
        } else {
            Err(format!("{} needs the GraphQL type `{name}`, which exists already", owner()))
        }
    }

    fn field(&mut self, ty: &str, name: &str) -> Result<(), String> {
        if self.fields.entry(ty.to_owned()).or_default().insert(name.to_owned()) {
            Ok(())
        } else {
            Err(format!("`{ty}.{name}` exists already"))
        }
    }

    fn object(&mut self, registry: &Registry, def: &ObjectDef) -> Result<(), String> {
        let owner = || format!("object `{}`", def.name);
        self.ty(&def.type_name, owner)?;
        for suffix in Suffix::ALL.into_iter().filter(|s| def.mutable || !s.mutable_only()) {
            self.ty(&object_type(def, suffix), owner)?;
        }
        let t = def.type_name.as_str();
        let in_object = |result: Result<(), String>| result.map_err(|e| format!("object `{}`: {e}", def.name));
        for field in &def.fields {
            in_object(self.field(t, &field.name))?;
            if let FieldKind::Enum(_) = field.kind {
                let name = enum_type(def, field);
                self.ty(&enum_filter(&name), owner)?;
                self.ty(&name, owner)?;
            }
            if let Some(relation) = forward_relation(registry, def, field) {
                in_object(self.field(t, &relation))?;
            }
        }
        if def.taggable {
            in_object(self.field(t, "tags"))?;
        }
        if def.timeline {
            in_object(self.field(t, "timeline"))?;
        }
        for (object, field) in FIXED_OBJECT_FIELDS {
            if *object == def.name && def.plugin.is_none() {
                in_object(self.field(t, field))?;
            }
        }
        for (other, _, relation) in reverse_relations(registry, def) {
            self.field(t, &relation)
                .map_err(|_| format!("object `{}` would add `{t}.{relation}`, which exists already", other.name))?;
        }
        for query in [&def.name, &def.plural] {
            self.field("Query", query)
                .map_err(|_| format!("object `{}` needs the query `{query}`, which exists already", def.name))?;
        }
        if def.mutable {
            for name in VERBS.iter().map(|verb| mutation(def, verb)).chain([batch_create(def)]) {
                self.field("Mutation", &name)
                    .map_err(|_| format!("object `{}` needs the mutation `{name}`, which exists already", def.name))?;
            }
        }
        Ok(())
    }

    /// Whether the API has the type `name`.
    pub fn has_type(&self, name: &str) -> bool {
        self.types.contains(name)
    }

    /// Whether the type `ty` has the field `name`.
    pub fn has_field(&self, ty: &str, name: &str) -> bool {
        self.fields.get(ty).is_some_and(|fields| fields.contains(name))
    }
}
