//! Object definitions: the one registry that describes every kind of record (core objects now,
//! plugin objects later), from which storage, validation, filters and the API are derived.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::domain::DomainError;
use crate::domain::actor::Role;
use crate::domain::value::FieldKind;

/// Whether callers may write a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Set on create and update.
    Write,
    /// Set on create only (e.g. a stage's pipeline).
    CreateOnly,
    /// Maintained by Kith (ids, timestamps, ticket numbers, SLA due times).
    ReadOnly,
}

/// What erasing a person (the right to be forgotten) does to the records of an object that
/// refer to what is erased: the person's contact, and the records erased with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Erasure {
    /// Removed for good (the person's contact, tickets they raised, their consents, a ticket's
    /// comments, a plugin object declaring `delete`).
    Delete,
    /// Removed when every link it holds (references other than to users) points at erased
    /// records; otherwise kept with those references cleared (activities).
    DeleteIfOnly,
    /// Kept, with the references to erased records cleared (deals). A record whose reference
    /// to an erased record is required cannot be unlinked: it is deleted instead (so too below).
    Unlink,
    /// Kept, with its `personal` fields and the references to erased records cleared (a gift a
    /// charity must keep for tax law, the donor unlinked).
    Anonymise,
    /// Kept as it is, for the stated legal basis.
    Keep(String),
}

/// What a reference does when the record it points at is deleted (soft: it can be restored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnDelete {
    /// Nothing: the reference keeps pointing at the deleted record.
    #[default]
    Keep,
    /// The delete is refused while live records hold the reference.
    Restrict,
    /// The reference is cleared (not undone by a restore).
    SetNull,
    /// The referencing records are deleted with it, and restored with it.
    Cascade,
}

/// The record page's group of address fields.
pub const ADDRESS: &str = "Address";
/// The record page's group of the fields Kith keeps about a record (created, updated, version).
pub const RECORD: &str = "Record";

/// One field of an object.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldDef {
    /// The API name, camelCase (`firstName`).
    pub name: String,
    /// The column, snake_case (`first_name`).
    pub column: String,
    /// The type.
    pub kind: FieldKind,
    /// Whether a record must have a value.
    pub required: bool,
    /// Who may write it.
    pub access: Access,
    /// One sentence for the API documentation.
    pub description: String,
    /// Holds personal data (GDPR): exports for a data subject and erasure cover it, and plugin
    /// aggregates leave it out unless the plugin is granted `personal:aggregate`.
    pub personal: bool,
    /// The least role that may read it: every read path (GraphQL fields, filters and sorting,
    /// relations, search titles, exports, live events, the console) leaves it out for a weaker
    /// role. VIEWER (everyone) for core fields.
    pub read_role: Role,
    /// Unique among live records (enforced by an index).
    pub unique: bool,
    /// Indexed for filtering and sorting.
    pub indexed: bool,
    /// Its name for people (`First name`); derived from `name` unless set.
    pub label: String,
    /// For a reference: the name of the relation it adds to the target's type, when not the
    /// default (this object's plural), e.g. `Ticket.comments`.
    pub reverse: Option<String>,
    /// The group a record page shows it in (`Address`, `Record`); the first group when `None`.
    pub group: Option<String>,
    /// For a reference: what happens to this record when the referenced one is deleted.
    pub on_delete: OnDelete,
}

impl FieldDef {
    /// A writable, optional field whose column is the snake_case of `name`.
    pub fn new(name: &str, kind: FieldKind) -> FieldDef {
        // A reference is labelled as what it refers to: `companyId` is "Company".
        let label = match (&kind, name.strip_suffix("Id")) {
            (FieldKind::Ref(_), Some(stem)) if !stem.is_empty() => humanize(stem),
            _ => humanize(name),
        };
        FieldDef {
            name: name.to_owned(),
            column: snake_case(name),
            kind,
            required: false,
            access: Access::Write,
            description: String::new(),
            personal: false,
            read_role: Role::Viewer,
            unique: false,
            indexed: false,
            label,
            reverse: None,
            group: None,
            on_delete: OnDelete::Keep,
        }
    }

    /// Marks the field required.
    pub fn required(mut self) -> FieldDef {
        self.required = true;
        self
    }

    /// Marks the field maintained by Kith.
    pub fn read_only(mut self) -> FieldDef {
        self.access = Access::ReadOnly;
        self
    }

    /// Marks the field writable on create only.
    pub fn create_only(mut self) -> FieldDef {
        self.access = Access::CreateOnly;
        self
    }

    /// Sets the documentation sentence.
    pub fn doc(mut self, text: &str) -> FieldDef {
        self.description = text.to_owned();
        self
    }

    /// Puts the field in a group of the record page.
    pub fn grouped(mut self, group: &str) -> FieldDef {
        self.group = Some(group.to_owned());
        self
    }

    /// Sets the label people see.
    pub fn label(mut self, label: &str) -> FieldDef {
        self.label = label.to_owned();
        self
    }

    /// Marks the field unique among live records.
    pub fn unique(mut self) -> FieldDef {
        self.unique = true;
        self
    }

    /// Whether `role` may read the field's values.
    pub fn readable_by(&self, role: Role) -> bool {
        role.allows(self.read_role)
    }
}

/// One kind of record.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectDef {
    /// Singular API name, camelCase (`contact`, `ticketComment`).
    pub name: String,
    /// Plural API name (`contacts`).
    pub plural: String,
    /// GraphQL type name (`Contact`).
    pub type_name: String,
    /// Table name.
    pub table: String,
    /// One sentence for the API documentation.
    pub description: String,
    /// The fields, `id` first.
    pub fields: Vec<FieldDef>,
    /// Deleting sets `deletedAt`; restoring clears it.
    pub soft_delete: bool,
    /// Updates need the current `version` and bump it.
    pub versioned: bool,
    /// Records carry admin-defined custom fields in `customFields`.
    pub custom_fields: bool,
    /// Records can be tagged.
    pub taggable: bool,
    /// The field that identifies a record for dedupe and upsert (`email`, `domain`).
    pub natural_key: Option<String>,
    /// Fields searched by full-text search.
    pub search_fields: Vec<String>,
    /// The plugin that declared it; `None` for core objects.
    pub plugin: Option<String>,
    /// Indexes over several columns (column names, in order), for reports that filter and
    /// group on them together.
    pub indexes: Vec<Vec<String>>,
    /// Its name for people (`Ticket comment`).
    pub label: String,
    /// Its plural for people (`Ticket comments`).
    pub plural_label: String,
    /// The API has generic create / update / delete / restore mutations for it (others change
    /// only through workflows: comments, users).
    pub mutable: bool,
    /// Records have a timeline (`timeline` field): activities linked to them, and the stage
    /// changes and ticket events of the deals and tickets that reference them.
    pub timeline: bool,
    /// `kith export` and the export API cover it.
    pub exportable: bool,
    /// Segments may be defined over it.
    pub segmentable: bool,
    /// The capability name plugins are granted (`contacts` in `contacts:read`); `None` when
    /// plugins cannot read or write it.
    pub capability: Option<String>,
    /// Plugin objects may declare references to it.
    pub referenceable: bool,
    /// How a record is named for people (search hits, the console), as templates of
    /// `{field}` placeholders: the first that renders non-blank wins.
    pub title: Vec<String>,
    /// The field that names a record when one field is needed (pickers, default sort).
    pub name_field: String,
    /// The fields a list shows by default, in order.
    pub list_columns: Vec<String>,
    /// The console lists it in its menu (records reached only through another, such as a
    /// ticket's comments or a pipeline's stages, are not; nor are users, an admin page).
    pub menu: bool,
    /// What erasing a person does to its records that refer to them (see [`Erasure`]).
    pub erasure: Erasure,
}

impl ObjectDef {
    /// A new object with only its `id`; add fields, then [`ObjectDef::finish`].
    pub fn new(name: &str, plural: &str, description: &str) -> ObjectDef {
        let mut type_name = name.to_owned();
        if let Some(first) = type_name.get_mut(0..1) {
            first.make_ascii_uppercase();
        }
        ObjectDef {
            name: name.to_owned(),
            plural: plural.to_owned(),
            type_name,
            table: snake_case(name),
            description: description.to_owned(),
            fields: vec![FieldDef::new("id", FieldKind::Id).read_only().doc("Unique id (UUIDv7).")],
            soft_delete: true,
            versioned: true,
            custom_fields: false,
            taggable: false,
            natural_key: None,
            search_fields: Vec::new(),
            plugin: None,
            indexes: Vec::new(),
            label: humanize(name),
            plural_label: humanize(plural),
            mutable: true,
            timeline: false,
            exportable: false,
            segmentable: false,
            capability: None,
            referenceable: true,
            title: Vec::new(),
            name_field: "id".to_owned(),
            list_columns: Vec::new(),
            menu: true,
            erasure: Erasure::Unlink,
        }
    }

    /// Sets how records are named for people: the title templates, then the naming field.
    pub fn titled(mut self, templates: &[&str], name_field: &str) -> ObjectDef {
        self.title = templates.iter().map(|t| (*t).to_owned()).collect();
        self.name_field = name_field.to_owned();
        self
    }

    /// Sets the default list columns.
    pub fn columns(mut self, columns: &[&str]) -> ObjectDef {
        self.list_columns = columns.iter().map(|c| (*c).to_owned()).collect();
        self
    }

    /// A record's title as `role` may see it: the first of [`ObjectDef::title`] that names
    /// only fields `role` may read and renders non-blank with `get` giving a field's text, else
    /// the naming field's text (blank when `role` may not read it).
    pub fn title_of(&self, role: Role, get: impl Fn(&str) -> String) -> String {
        for template in self.titles(role) {
            let rendered = render(template, &get);
            if !rendered.trim().is_empty() {
                return rendered.trim().to_owned();
            }
        }
        if self.readable(&self.name_field, role) { get(&self.name_field) } else { String::new() }
    }

    /// The fields that name a record for `role`: those of the title templates it may see
    /// (see [`ObjectDef::title_of`]), then the naming field when it may read it.
    pub fn title_fields(&self, role: Role) -> Vec<String> {
        let mut out = Vec::new();
        for template in self.titles(role) {
            for field in placeholders(template) {
                if !out.iter().any(|f| f == field) {
                    out.push(field.to_owned());
                }
            }
        }
        if out.is_empty() && self.readable(&self.name_field, role) {
            out.push(self.name_field.clone());
        }
        out
    }

    /// The title templates that name only fields `role` may read: a template showing a field
    /// it may not read is skipped whole rather than rendered with a gap.
    fn titles(&self, role: Role) -> impl Iterator<Item = &String> {
        self.title.iter().filter(move |template| placeholders(template).all(|field| self.readable(field, role)))
    }

    /// Whether `role` may read the field called `name` (a name that is no field holds nothing
    /// to hide).
    pub fn readable(&self, name: &str, role: Role) -> bool {
        self.field_def(name).is_none_or(|field| field.readable_by(role))
    }

    /// Removes from `values` (field values or changes, by API name) those of the fields `role`
    /// may not read.
    pub fn redact(&self, role: Role, values: &mut serde_json::Map<String, serde_json::Value>) {
        values.retain(|name, _| self.readable(name, role));
    }

    /// FORBIDDEN, naming the field and the role it needs, when `role` may not read the field
    /// called `name`; `doing` says how it was to be used (`filtering on`, `sorting by`).
    pub fn check_readable(&self, name: &str, role: Role, doing: &str) -> Result<(), DomainError> {
        match self.field_def(name) {
            Some(field) if !field.readable_by(role) => Err(DomainError::Forbidden(format!(
                "{doing} `{}.{}` needs the {} role; you have {role}",
                self.type_name, field.name, field.read_role
            ))),
            _ => Ok(()),
        }
    }

    /// Changes flags in place, for definitions written as one expression.
    pub fn with(mut self, change: impl FnOnce(&mut ObjectDef)) -> ObjectDef {
        change(&mut self);
        self
    }

    /// Appends a field.
    pub fn field(mut self, field: FieldDef) -> ObjectDef {
        self.fields.push(field);
        self
    }

    /// Marks the fields called `names` as personal data.
    fn personal(mut self, names: &[&str]) -> ObjectDef {
        for field in self.fields.iter_mut().filter(|f| names.contains(&f.name.as_str())) {
            field.personal = true;
        }
        self
    }

    /// The fields holding personal data.
    pub fn personal_fields(&self) -> impl Iterator<Item = &FieldDef> {
        self.fields.iter().filter(|f| f.personal)
    }

    fn address(mut self) -> ObjectDef {
        for (part, doc) in [
            ("Street", "Street and number."),
            ("City", "City."),
            ("Region", "State, province or region."),
            ("PostalCode", "Postal code."),
            ("Country", "Country."),
        ] {
            self.fields.push(FieldDef::new(&format!("address{part}"), FieldKind::Text).doc(doc).grouped(ADDRESS));
        }
        self
    }

    /// Appends the bookkeeping fields this object's flags call for, and names records by their
    /// first text field and lists their first fields where nothing else was said.
    pub fn finish(mut self) -> ObjectDef {
        if self.title.is_empty() && self.name_field == "id" {
            let named = self.fields.iter().find(|f| matches!(f.kind, FieldKind::Text) && f.required);
            let named = named.or_else(|| self.fields.iter().find(|f| matches!(f.kind, FieldKind::Text)));
            if let Some(field) = named {
                self.name_field = field.name.clone();
            }
        }
        if self.list_columns.is_empty() {
            self.list_columns = self
                .fields
                .iter()
                .filter(|f| f.name != "id" && !matches!(f.kind, FieldKind::Json))
                .take(4)
                .map(|f| f.name.clone())
                .collect();
        }
        if self.custom_fields {
            self.fields.push(
                FieldDef::new("customFields", FieldKind::Json)
                    .doc("Values of the admin-defined custom fields, by key."),
            );
        }
        self.fields.push(
            FieldDef::new("createdAt", FieldKind::DateTime)
                .read_only()
                .doc("When the record was created.")
                .grouped(RECORD),
        );
        if self.versioned {
            self.fields.push(
                FieldDef::new("updatedAt", FieldKind::DateTime)
                    .read_only()
                    .doc("When the record last changed.")
                    .grouped(RECORD),
            );
        }
        if self.soft_delete {
            self.fields.push(
                FieldDef::new("deletedAt", FieldKind::DateTime)
                    .read_only()
                    .doc("When the record was deleted; null while live.")
                    .grouped(RECORD),
            );
        }
        if self.versioned {
            self.fields.push(
                FieldDef::new("version", FieldKind::Int)
                    .read_only()
                    .doc("Optimistic-concurrency version; pass it back as `expectedVersion` when updating.")
                    .grouped(RECORD),
            );
        }
        self
    }

    /// The fields a record page shows, in groups: the ungrouped first (`None`), then each group
    /// in the order its first field comes. Ids and the custom-field bag are not shown.
    pub fn field_groups(&self) -> Vec<(Option<&str>, Vec<&FieldDef>)> {
        let mut groups: Vec<(Option<&str>, Vec<&FieldDef>)> = vec![(None, Vec::new())];
        for field in self.fields.iter().filter(|f| f.name != "id" && f.name != "customFields") {
            let group = field.group.as_deref();
            match groups.iter_mut().find(|(g, _)| *g == group) {
                Some((_, fields)) => fields.push(field),
                None => groups.push((group, vec![field])),
            }
        }
        groups
    }

    /// The field called `name`.
    pub fn field_def(&self, name: &str) -> Option<&FieldDef> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// Fields that reference other objects.
    pub fn references(&self) -> impl Iterator<Item = (&FieldDef, &str)> {
        self.fields.iter().filter_map(|f| match &f.kind {
            FieldKind::Ref(target) => Some((f, target.as_str())),
            _ => None,
        })
    }
}

/// Every object Kith knows, by name. Cheap to clone; rebuilt when plugins add objects.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    objects: BTreeMap<String, Arc<ObjectDef>>,
    /// Names in the order they were defined (core objects as `core_objects` lists them, then
    /// plugin objects as enabled): the order people see them in.
    order: Vec<String>,
    extensions: Vec<Arc<crate::domain::extension::Extension>>,
    /// The objects of installed but disabled plugins: not in the API, but their tables stay and
    /// their records still reference core records (merges and deletes reach them).
    dormant: Vec<Arc<ObjectDef>>,
}

/// An object whose records reference another's, with the fields that do (see
/// [`Registry::referrers`]).
#[derive(Debug, Clone)]
pub struct Referrer {
    /// The referencing object.
    pub object: Arc<ObjectDef>,
    /// Its fields that reference the target, with their `on_delete`.
    pub fields: Vec<FieldDef>,
    /// Whether the object is dormant (its plugin is disabled): no API, no plugin listening.
    pub dormant: bool,
}

impl Registry {
    /// The registry of core objects.
    pub fn core() -> Registry {
        let mut registry = Registry::default();
        for def in core_objects() {
            registry.order.push(def.name.clone());
            registry.objects.insert(def.name.clone(), Arc::new(def));
        }
        registry
    }

    /// The registry of core objects, built once.
    pub fn core_static() -> &'static Registry {
        static CORE: std::sync::LazyLock<Registry> = std::sync::LazyLock::new(Registry::core);
        &CORE
    }

    /// The object called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<ObjectDef>> {
        self.objects.get(name)
    }

    /// Every object, by name.
    pub fn objects(&self) -> impl Iterator<Item = &Arc<ObjectDef>> {
        self.objects.values()
    }

    /// Every object, in the order they were defined: core objects first, as people see them.
    pub fn in_order(&self) -> impl Iterator<Item = &Arc<ObjectDef>> {
        self.order.iter().filter_map(|name| self.objects.get(name))
    }

    /// Adds plugin-declared objects. Refused, naming the clash, when a name, plural, type or
    /// table is taken, or when a reference targets an object that does not exist.
    pub fn extend(&mut self, defs: Vec<ObjectDef>) -> std::result::Result<(), String> {
        let mut next = self.objects.clone();
        let mut order = self.order.clone();
        for def in defs {
            for other in next.values() {
                let names = [&other.name, &other.plural, &other.type_name];
                let owner = other.plugin.as_deref().map_or("Kith".to_owned(), |p| format!("plugin `{p}`"));
                for candidate in [&def.name, &def.plural, &def.type_name] {
                    if names.iter().any(|n| n.eq_ignore_ascii_case(candidate)) {
                        return Err(format!("`{candidate}` is already used by {owner} (object `{}`)", other.name));
                    }
                }
                if other.table == def.table {
                    return Err(format!("table `{}` is already used by object `{}`", def.table, other.name));
                }
            }
            order.push(def.name.clone());
            next.insert(def.name.clone(), Arc::new(def));
        }
        // References must land, and a reverse relation must not shadow a field of its target.
        for def in next.values().filter(|d| d.plugin.is_some()) {
            for (field, target) in def.references() {
                let Some(target_def) = next.get(target) else {
                    return Err(format!("`{}.{}` refers to unknown object `{target}`", def.name, field.name));
                };
                if target_def.field_def(&def.plural).is_some() {
                    return Err(format!(
                        "`{}` would add the relation `{}.{}`, which is a field already",
                        def.name, target_def.type_name, def.plural
                    ));
                }
            }
        }
        self.objects = next;
        self.order = order;
        Ok(())
    }

    /// What plugins add to the API besides objects, one entry per plugin.
    pub fn extensions(&self) -> &[Arc<crate::domain::extension::Extension>] {
        &self.extensions
    }

    /// Adds a plugin's API contributions. Refused, naming the clash, when a computed field's
    /// object is unknown or has that field already, or when a type, enum or operation name is
    /// taken by another plugin (clashes with core GraphQL names are checked by the API layer).
    pub fn add_extension(&mut self, extension: crate::domain::extension::Extension) -> std::result::Result<(), String> {
        for field in &extension.fields {
            let Some(def) = self.objects.get(&field.object) else {
                return Err(format!("computed field `{}` is on unknown object `{}`", field.name, field.object));
            };
            if def.field_def(&field.name).is_some() || def.plural == field.name {
                return Err(format!("`{}.{}` exists already", def.type_name, field.name));
            }
        }
        for other in &self.extensions {
            for ty in extension.types.iter().map(|t| &t.name).chain(extension.enums.iter().map(|e| &e.name)) {
                if other.declares_type(ty) {
                    return Err(format!("the type `{ty}` is already declared by plugin `{}`", other.plugin));
                }
            }
            for op in &extension.operations {
                if other.operations.iter().any(|o| o.name == op.name && o.kind == op.kind) {
                    return Err(format!(
                        "the operation `{}` is already declared by plugin `{}`",
                        op.name, other.plugin
                    ));
                }
            }
            for field in &extension.fields {
                if other.fields.iter().any(|f| f.object == field.object && f.name == field.name) {
                    return Err(format!(
                        "the field `{}.{}` is already computed by plugin `{}`",
                        field.object, field.name, other.plugin
                    ));
                }
            }
        }
        self.extensions.push(Arc::new(extension));
        Ok(())
    }

    /// Whether two registries describe the same objects (live and dormant) and contributions.
    pub fn same_as(&self, other: &Registry) -> bool {
        self.objects.len() == other.objects.len()
            && self.objects.iter().all(|(name, def)| other.objects.get(name).is_some_and(|o| **o == **def))
            && self.extensions.len() == other.extensions.len()
            && self.extensions.iter().zip(&other.extensions).all(|(a, b)| **a == **b)
            && self.dormant.len() == other.dormant.len()
            && self.dormant.iter().zip(&other.dormant).all(|(a, b)| **a == **b)
    }

    /// Sets the dormant objects: those of installed but disabled plugins. They are not part of
    /// [`Registry::objects`] (nor the API), and may share names with live objects.
    pub fn set_dormant(&mut self, defs: Vec<ObjectDef>) {
        let mut defs: Vec<Arc<ObjectDef>> = defs.into_iter().map(Arc::new).collect();
        defs.sort_by(|a, b| (&a.plugin, &a.name).cmp(&(&b.plugin, &b.name)));
        self.dormant = defs;
    }

    /// The dormant objects, by plugin and name.
    pub fn dormant(&self) -> impl Iterator<Item = &Arc<ObjectDef>> {
        self.dormant.iter()
    }

    /// Every object, live or dormant, with fields that reference records of `target` (live
    /// itself, or one of [`Registry::dormant`]). A dormant object's reference to a name its own
    /// plugin declares is to its own object, never to a live one of that name: so a live core
    /// object is referenced by live objects and by dormant ones, a live plugin object only by
    /// live ones, and a dormant object only by the dormant objects of its plugin.
    pub fn referrers(&self, target: &ObjectDef) -> Vec<Referrer> {
        let is_dormant = self.dormant.iter().any(|d| d.plugin == target.plugin && d.name == target.name);
        let fields_to = |def: &ObjectDef| -> Vec<FieldDef> {
            def.references().filter(|(_, to)| *to == target.name).map(|(field, _)| field.clone()).collect()
        };
        let mut out = Vec::new();
        if !is_dormant {
            for def in self.in_order() {
                let fields = fields_to(def);
                if !fields.is_empty() {
                    out.push(Referrer { object: def.clone(), fields, dormant: false });
                }
            }
        }
        for def in &self.dormant {
            let own = |name: &str| self.dormant.iter().any(|d| d.plugin == def.plugin && d.name == name);
            let reaches =
                if is_dormant { def.plugin == target.plugin } else { target.plugin.is_none() && !own(&target.name) };
            if !reaches {
                continue;
            }
            let fields = fields_to(def);
            if !fields.is_empty() {
                out.push(Referrer { object: def.clone(), fields, dormant: true });
            }
        }
        out
    }
}

/// Lifecycle stages of a contact.
pub const LIFECYCLE_STAGES: &[&str] = &["SUBSCRIBER", "LEAD", "PROSPECT", "CUSTOMER", "CHURNED", "OTHER"];
/// Kinds of pipeline stage.
pub const STAGE_KINDS: &[&str] = &["OPEN", "WON", "LOST"];
/// What a consent is about.
pub const CONSENT_CHANNELS: &[&str] = &["EMAIL", "PHONE", "SMS", "POST", "ALL"];
/// Whether a consent was given or withdrawn.
pub const CONSENT_STATUSES: &[&str] = &["GRANTED", "WITHDRAWN"];
/// Kinds of activity.
pub const ACTIVITY_KINDS: &[&str] = &["NOTE", "CALL", "EMAIL", "MEETING", "TASK"];

fn reference(name: &str, target: &str, doc: &str) -> FieldDef {
    FieldDef::new(name, FieldKind::Ref(target.to_owned())).doc(doc)
}

fn core_objects() -> Vec<ObjectDef> {
    use crate::domain::ticket::{CHANNELS, PRIORITIES, STATUSES};
    use FieldKind as K;

    let mut contact = ObjectDef::new("contact", "contacts", "A person Kith keeps track of.")
        .field(FieldDef::new("firstName", K::Text).doc("Given name."))
        .field(FieldDef::new("lastName", K::Text).doc("Family name."))
        .field(
            FieldDef::new("email", K::Email)
                .label("E-mail")
                .unique()
                .doc("E-mail address; unique (ignoring case) among live contacts."),
        )
        .field(FieldDef::new("phone", K::Text).doc("Phone number, as entered."))
        .field(FieldDef::new("jobTitle", K::Text).doc("Job title."))
        .field(FieldDef::new("birthday", K::Date).doc("Date of birth."))
        .field(
            FieldDef::new("timeZone", K::Text)
                .doc("IANA time zone (Europe/Paris, America/New_York): where a local time of day is theirs."),
        )
        .address()
        .field(reference("companyId", "company", "The company the contact works for."))
        .field(reference("ownerId", "user", "The user responsible for the contact."))
        .field(
            FieldDef::new("lifecycleStage", K::enumeration(LIFECYCLE_STAGES))
                .doc("Where the contact is in the customer lifecycle; LEAD when not given."),
        )
        .field(FieldDef::new("emailOptIn", K::Bool).doc("Whether the contact agreed to receive e-mail."))
        .field(
            FieldDef::new("emailOptInAt", K::DateTime)
                .doc("When the consent was given; set automatically when opting in."),
        )
        .field(FieldDef::new("emailOptInSource", K::Text).doc("Where the consent was given (form, import, ...)."))
        .field(FieldDef::new("doNotContact", K::Bool).doc("Never contact this person, whatever else says."))
        .field(FieldDef::new("source", K::Text).doc("Where the contact came from."))
        .field(
            FieldDef::new("legalHold", K::Bool)
                .doc("On legal hold: never erased, by request or by a retention policy, until the hold is lifted."),
        )
        .personal(&[
            "firstName",
            "lastName",
            "email",
            "phone",
            "jobTitle",
            "birthday",
            "addressStreet",
            "addressCity",
            "addressRegion",
            "addressPostalCode",
            "addressCountry",
            "emailOptInSource",
        ]);
    contact.custom_fields = true;
    contact.taggable = true;
    contact.natural_key = Some("email".to_owned());
    contact.search_fields = ["firstName", "lastName", "email", "phone", "jobTitle"].map(String::from).to_vec();
    let contact = contact
        .titled(&["{firstName} {lastName}", "{email}"], "lastName")
        .columns(&["firstName", "lastName", "email", "companyId", "lifecycleStage"])
        .with(|d| {
            d.timeline = true;
            d.exportable = true;
            d.segmentable = true;
            d.capability = Some("contacts".into());
            d.erasure = Erasure::Delete;
        });

    let mut company = ObjectDef::new("company", "companies", "An organisation: a customer, a prospect, a partner.")
        .field(FieldDef::new("name", K::Text).required().doc("Name."))
        .field(
            FieldDef::new("domain", K::Text)
                .unique()
                .doc("Web domain, normalised (`example.org`); unique among live companies."),
        )
        .field(FieldDef::new("industry", K::Text).doc("Industry."))
        .field(FieldDef::new("employees", K::Int).doc("Number of employees."))
        .field(FieldDef::new("annualRevenue", K::Decimal).doc("Annual revenue."))
        .address()
        .field(reference("ownerId", "user", "The user responsible for the company."));
    company.custom_fields = true;
    company.taggable = true;
    company.natural_key = Some("domain".to_owned());
    company.search_fields = ["name", "domain", "industry"].map(String::from).to_vec();
    let company =
        company.titled(&["{name}"], "name").columns(&["name", "domain", "industry", "addressCity"]).with(|d| {
            d.timeline = true;
            d.exportable = true;
            d.segmentable = true;
            d.capability = Some("companies".into());
        });

    let pipeline =
        ObjectDef::new("pipeline", "pipelines", "A sales process: an ordered list of stages deals move through.")
            .field(FieldDef::new("name", K::Text).required().doc("Name."))
            .field(FieldDef::new("currency", K::Currency).required().doc("Default currency of its deals (ISO 4217)."))
            .titled(&["{name}"], "name")
            .columns(&["name", "currency"]);

    let stage = ObjectDef::new("stage", "stages", "A step of a pipeline.")
        .field(reference("pipelineId", "pipeline", "The pipeline the stage belongs to.").required().create_only())
        .field(FieldDef::new("name", K::Text).required().doc("Name."))
        .field(FieldDef::new("position", K::Int).required().doc("Order within the pipeline, ascending."))
        .field(FieldDef::new("probability", K::Int).required().doc("Chance of winning a deal in this stage, 0 to 100."))
        .field(
            FieldDef::new("kind", K::enumeration(STAGE_KINDS))
                .required()
                .doc("OPEN, or WON / LOST for closing stages."),
        )
        .titled(&["{name}"], "name")
        .columns(&["pipelineId", "position", "name", "probability", "kind"])
        .with(|d| d.menu = false);

    let mut deal = ObjectDef::new("deal", "deals", "A potential sale moving through a pipeline.")
        .field(FieldDef::new("title", K::Text).required().doc("Title."))
        .field(FieldDef::new("amount", K::Decimal).doc("Value of the deal, exact."))
        .field(
            FieldDef::new("currency", K::Currency)
                .doc("ISO 4217 currency of the amount; the pipeline's when not given."),
        )
        .field(reference("pipelineId", "pipeline", "The pipeline.").required())
        .field(reference("stageId", "stage", "The current stage; must belong to the pipeline.").required())
        .field(reference("contactId", "contact", "The main contact."))
        .field(reference("companyId", "company", "The company."))
        .field(reference("ownerId", "user", "The user responsible."))
        .field(FieldDef::new("expectedCloseDate", K::Date).doc("When the deal is expected to close."))
        .field(FieldDef::new("closedAt", K::DateTime).read_only().doc("When it reached a WON or LOST stage."))
        .field(FieldDef::new("lostReason", K::Text).doc("Why it was lost."))
        .field(FieldDef::new("stageChangedAt", K::DateTime).read_only().doc("When it entered its current stage."));
    deal.custom_fields = true;
    deal.taggable = true;
    deal.search_fields = vec!["title".to_owned()];
    let deal = deal
        .titled(&["{title}"], "title")
        .columns(&["title", "amount", "currency", "stageId", "companyId"])
        .with(|d| {
            d.timeline = true;
            d.exportable = true;
            d.segmentable = true;
            d.capability = Some("deals".into());
        });

    let mut ticket = ObjectDef::new("ticket", "tickets", "A support request.")
        .field(FieldDef::new("number", K::Int).read_only().unique().doc("Human number (#1001), sequential."))
        .field(FieldDef::new("subject", K::Text).required().doc("Subject."))
        .field(FieldDef::new("description", K::Text).doc("Description."))
        .field(
            FieldDef::new("status", K::enumeration(STATUSES))
                .read_only()
                .doc("Status; changed through `changeStatus`, which enforces the workflow."),
        )
        .field(
            FieldDef::new("priority", K::enumeration(PRIORITIES))
                .doc("Priority; NORMAL when not given. Drives the SLA."),
        )
        .field(
            FieldDef::new("channel", K::enumeration(CHANNELS)).doc("Where the request came in; OTHER when not given."),
        )
        .field(reference("contactId", "contact", "The requester."))
        .field(reference("companyId", "company", "The requester's company."))
        .field(reference("assigneeId", "user", "The agent working on it."))
        .field(FieldDef::new("queue", K::Text).doc("The queue (team) it sits in."))
        .field(FieldDef::new("firstResponseDueAt", K::DateTime).read_only().doc("SLA: first public reply due by."))
        .field(FieldDef::new("resolutionDueAt", K::DateTime).read_only().doc("SLA: solution due by."))
        .field(
            FieldDef::new("firstRespondedAt", K::DateTime)
                .read_only()
                .doc("When the first public agent reply was made."),
        )
        .field(FieldDef::new("solvedAt", K::DateTime).read_only().doc("When it was last solved."))
        .field(FieldDef::new("satisfactionRating", K::Int).read_only().doc("Customer satisfaction, 1 to 5."))
        .field(FieldDef::new("satisfactionComment", K::Text).read_only().doc("Customer's comment with the rating."));
    ticket.custom_fields = true;
    ticket.taggable = true;
    // The number last, so that `1042` finds ticket #1042.
    ticket.search_fields = vec!["subject".to_owned(), "description".to_owned(), "number".to_owned()];
    let ticket = ticket
        .titled(&["#{number} {subject}"], "subject")
        .columns(&["number", "subject", "status", "priority", "assigneeId"])
        .with(|d| {
            d.timeline = true;
            d.exportable = true;
            d.segmentable = true;
            d.capability = Some("tickets".into());
            // A ticket is the person's request, in their words.
            d.erasure = Erasure::Delete;
        });

    let mut comment = ObjectDef::new("ticketComment", "ticketComments", "A reply or internal note on a ticket.")
        .field(reference("ticketId", "ticket", "The ticket.").required().create_only())
        .field(FieldDef::new("body", K::Text).required().create_only().doc("Text."))
        .field(
            FieldDef::new("public", K::Bool).create_only().doc("Visible to the customer (true) or internal (false)."),
        )
        .field(reference("authorId", "user", "The user who wrote it.").read_only())
        .field(FieldDef {
            column: "author".into(),
            ..FieldDef::new("authorName", K::Text)
                .read_only()
                .doc("Who wrote it, as recorded (a user, token or plugin).")
        });
    comment.soft_delete = false;
    comment.versioned = false;
    comment.mutable = false;
    comment.referenceable = false;
    comment.menu = false;
    comment.erasure = Erasure::Delete;
    if let Some(ticket) = comment.fields.iter_mut().find(|f| f.name == "ticketId") {
        ticket.reverse = Some("comments".into());
    }
    let comment = comment.titled(&["{body}"], "body").columns(&["createdAt", "authorName", "public", "body"]);

    let mut activity =
        ObjectDef::new("activity", "activities", "A note, call, e-mail, meeting or task, linked to records.")
            .field(FieldDef::new("kind", K::enumeration(ACTIVITY_KINDS)).required().doc("What kind of activity."))
            .field(FieldDef::new("subject", K::Text).required().doc("Subject."))
            .field(FieldDef::new("body", K::Text).doc("Details."))
            .field(FieldDef::new("occurredAt", K::DateTime).doc("When it happened; now when not given."))
            .field(FieldDef::new("dueAt", K::DateTime).doc("For tasks: when it is due."))
            .field(FieldDef::new("completedAt", K::DateTime).doc("For tasks: when it was done."))
            .field(reference("ownerId", "user", "The user responsible."))
            .field(reference("contactId", "contact", "Linked contact."))
            .field(reference("companyId", "company", "Linked company."))
            .field(reference("dealId", "deal", "Linked deal."))
            .field(reference("ticketId", "ticket", "Linked ticket."));
    activity.custom_fields = true;
    let activity = activity
        .titled(&["{subject}"], "subject")
        .columns(&["kind", "subject", "occurredAt", "contactId", "ownerId"])
        .with(|d| {
            d.segmentable = true;
            d.capability = Some("activities".into());
            d.erasure = Erasure::DeleteIfOnly;
        });

    let mut consent = ObjectDef::new(
        "consent",
        "consents",
        "A change of a contact's consent, kept as history: given or withdrawn, when, how and by whom.",
    )
    .field(reference("contactId", "contact", "The person.").required().create_only())
    .field(
        FieldDef::new("channel", K::enumeration(CONSENT_CHANNELS))
            .required()
            .create_only()
            .doc("What the consent is about: EMAIL, PHONE, SMS, POST, or ALL (do not contact at all)."),
    )
    .field(
        FieldDef::new("status", K::enumeration(CONSENT_STATUSES))
            .required()
            .create_only()
            .doc("GRANTED or WITHDRAWN; for ALL, WITHDRAWN means do not contact."),
    )
    .field(FieldDef::new("occurredAt", K::DateTime).required().create_only().doc("When it was given or withdrawn."))
    .field(FieldDef::new("source", K::Text).create_only().doc("How: a form, an import, a call, an unsubscribe link."))
    .field(
        FieldDef::new("statement", K::Text)
            .create_only()
            .doc("The wording, or the version, of the consent statement the person agreed to."),
    )
    .field(FieldDef::new("recordedBy", K::Text).read_only().doc("Who recorded it (a user, token or plugin)."));
    consent.soft_delete = false;
    consent.versioned = false;
    consent.mutable = false;
    consent.referenceable = false;
    consent.menu = false;
    let consent = consent
        .titled(&["{channel} {status}"], "channel")
        .columns(&["occurredAt", "channel", "status", "source", "statement"])
        .with(|d| {
            d.exportable = true;
            d.capability = Some("consents".into());
            d.erasure = Erasure::Delete;
        });

    let segment = ObjectDef::new("segment", "segments", "A named, saved filter over one kind of record.")
        .field(FieldDef::new("name", K::Text).required().doc("Name."))
        .field(
            FieldDef::new("object", K::Enum(Vec::new())).required().create_only().doc("The kind of record it selects."),
        )
        .field(FieldDef::new("filter", K::Json).required().doc("The filter, in the same language as list queries."))
        .field(reference("ownerId", "user", "Who made it."))
        .titled(&["{name}"], "name")
        .columns(&["name", "object", "ownerId"])
        .with(|d| {
            // A plugin that mails a segment reads its filter (`segments:read`) and refers to it.
            d.capability = Some("segments".into());
        });

    let mut user = ObjectDef::new("user", "users", "A person who logs in to Kith.")
        .field(FieldDef::new("email", K::Email).required().label("E-mail").unique().doc("Login e-mail, unique."))
        .field(FieldDef::new("name", K::Text).required().doc("Display name."))
        .field(
            FieldDef::new("role", K::enumeration(&["ADMIN", "MANAGER", "AGENT", "VIEWER"]))
                .required()
                .doc("What the user may do."),
        )
        .field(FieldDef::new("active", K::Bool).doc("Inactive users cannot log in."));
    user.table = "app_user".to_owned();
    user.soft_delete = false;
    user.mutable = false;
    user.menu = false;
    let user = user.titled(&["{name}", "{email}"], "name").columns(&["name", "email", "role", "active"]);

    let mut objects = vec![contact, company, pipeline, stage, deal, ticket, comment, activity, consent, segment, user];
    // A segment selects one of the segmentable objects.
    let segmentable: Vec<String> =
        objects.iter().filter(|d| d.segmentable).map(crate::domain::naming::enum_value).collect();
    for def in objects.iter_mut().filter(|d| d.name == "segment") {
        if let Some(field) = def.fields.iter_mut().find(|f| f.name == "object") {
            field.kind = K::Enum(segmentable.clone());
        }
    }
    objects.into_iter().map(ObjectDef::finish).collect()
}

/// The fields a title template names: `firstName`, `lastName` in `{firstName} {lastName}`.
fn placeholders(template: &str) -> impl Iterator<Item = &str> {
    template.split('{').skip(1).filter_map(|part| part.split_once('}').map(|(field, _)| field))
}

/// `{firstName} {lastName}` with `get` giving each field's text.
fn render(template: &str, get: &impl Fn(&str) -> String) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        match rest[open + 1..].find('}') {
            Some(close) => {
                out.push_str(&get(&rest[open + 1..open + 1 + close]));
                rest = &rest[open + close + 2..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// `ticketComment` becomes `Ticket comment`, `firstName` `First name`.
pub fn humanize(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if i == 0 {
            out.push(c.to_ascii_uppercase());
        } else if c.is_ascii_uppercase() {
            out.push(' ');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// `firstName` becomes `first_name`.
pub fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}
