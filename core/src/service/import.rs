//! CSV import of contacts and companies: header mapping, dedupe on e-mail or domain, batched
//! transactions, and a report naming every rejected row with its line number and reason.
//!
//! Every row is validated before anything is written, so a bad row is reported and skipped
//! and never aborts or half-writes the others. Rows are written in batches (one transaction
//! each) with multi-row INSERTs for the records, their audit entries and their events. The
//! file is read by [`rfc4180::Reader`], which rejects a row with a quoting mistake instead of
//! merging the rows after it into one of its cells.

use std::collections::{HashMap, HashSet};
use std::io::Read;

use serde_json::{Map, Value as Json, json};
use uuid::Uuid;

use crate::domain::DomainError;
use crate::domain::actor::Actor;
use crate::domain::custom_field::{CustomFieldDef, validate_values};
use crate::domain::hook::WriteOp;
use crate::domain::object::{Access, ObjectDef};
use crate::domain::rules::{self, Mode};
use crate::domain::value::{FieldKind, Fields, Value};
use crate::error::{Error, Result};
use crate::service::Kith;
use crate::service::input::Input;
use crate::service::records::{self as record_service, event, stamp_new};
use crate::store::records::{self, Record};
use crate::store::{Tx, audit, custom_fields, outbox, tags};

pub mod rfc4180;

/// What to do with a row whose e-mail (contacts) or domain (companies) already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnDuplicate {
    /// Leave the existing record alone.
    Skip,
    /// Update the existing record with the row's non-empty values.
    Update,
}

/// Import settings.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Duplicate handling.
    pub on_duplicate: OnDuplicate,
    /// Rows per transaction.
    pub batch_size: usize,
    /// Explicit header → field mappings, overriding the automatic ones.
    pub mapping: HashMap<String, String>,
}

impl Default for ImportOptions {
    fn default() -> ImportOptions {
        ImportOptions { on_duplicate: OnDuplicate::Skip, batch_size: 5_000, mapping: HashMap::new() }
    }
}

/// A row that was not imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// 1-based line in the file (the header is line 1).
    pub line: u64,
    /// Why.
    pub reason: String,
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Data rows read.
    pub rows: u64,
    /// Records created.
    pub created: u64,
    /// Existing records updated.
    pub updated: u64,
    /// Duplicates left alone.
    pub skipped: u64,
    /// Rows refused, with reasons.
    pub rejected: Vec<Rejected>,
    /// Columns that map to no field.
    pub ignored_columns: Vec<String>,
}

/// Where a column goes.
#[derive(Debug, Clone)]
enum Column {
    Field(String, FieldKind),
    Custom(CustomFieldDef),
    Tags,
    CompanyDomain,
    Ignored,
}

fn simplify(name: &str) -> String {
    name.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_ascii_lowercase()
}

fn map_header(
    object: &ObjectDef,
    custom: &[CustomFieldDef],
    header: &str,
    explicit: Option<&String>,
) -> Result<Column> {
    if explicit.is_some_and(|target| target.is_empty()) {
        return Ok(Column::Ignored);
    }
    let target = explicit.cloned().unwrap_or_else(|| header.to_owned());
    let key = simplify(&target);
    if let Some(custom_key) = target.strip_prefix("customFields.") {
        return custom
            .iter()
            .find(|d| d.key == custom_key)
            .map(|d| Column::Custom(d.clone()))
            .ok_or_else(|| DomainError::invalid(header, format!("no custom field `{custom_key}`")).into());
    }
    let aliases: &[(&str, &str)] = &[
        ("emailaddress", "email"),
        ("mail", "email"),
        ("firstname", "firstName"),
        ("givenname", "firstName"),
        ("lastname", "lastName"),
        ("surname", "lastName"),
        ("familyname", "lastName"),
        ("title", "jobTitle"),
        ("phonenumber", "phone"),
        ("mobile", "phone"),
        ("street", "addressStreet"),
        ("city", "addressCity"),
        ("state", "addressRegion"),
        ("region", "addressRegion"),
        ("zip", "addressPostalCode"),
        ("postcode", "addressPostalCode"),
        ("postalcode", "addressPostalCode"),
        ("country", "addressCountry"),
        ("website", "domain"),
        ("companyname", "name"),
        ("revenue", "annualRevenue"),
        ("stage", "lifecycleStage"),
    ];
    if key == "tags" && object.taggable {
        return Ok(Column::Tags);
    }
    if object.name == "contact" && matches!(key.as_str(), "companydomain" | "company") {
        return Ok(Column::CompanyDomain);
    }
    let resolved =
        aliases.iter().find(|(alias, _)| *alias == key).map(|(_, field)| simplify(field)).unwrap_or(key.clone());
    if let Some(field) = object
        .fields
        .iter()
        .find(|f| simplify(&f.name) == resolved && f.access != Access::ReadOnly && f.name != "customFields")
    {
        return Ok(Column::Field(field.name.clone(), field.kind.clone()));
    }
    if let Some(def) = custom.iter().find(|d| simplify(&d.key) == key || simplify(&d.label) == key) {
        return Ok(Column::Custom(def.clone()));
    }
    if explicit.is_some() {
        return Err(DomainError::invalid(
            header,
            format!("--map names `{target}`, which is not a field of {}", object.type_name),
        )
        .into());
    }
    Ok(Column::Ignored)
}

/// One parsed, validated row.
struct Row {
    line: u64,
    fields: Fields,
    custom: Option<Json>,
    tags: Option<Vec<String>>,
    company_domain: Option<String>,
}

/// Imports `reader` (CSV with a header row) into `object` (`contact` or `company`).
/// `progress` is called with the number of rows processed so far.
pub async fn import_csv<R: Read>(
    kith: &Kith,
    actor: &Actor,
    object: &str,
    reader: R,
    options: &ImportOptions,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<ImportReport> {
    let (def, custom) = importable(kith, object).await?;
    let unreadable = |e: std::io::Error| DomainError::invalid("file", format!("cannot be read: {e}"));
    let mut csv = rfc4180::Reader::new(reader);
    let mut headers = csv::StringRecord::new();
    match csv.read(&mut headers).map_err(unreadable)? {
        rfc4180::Next::Record(_) => {}
        rfc4180::Next::End => {
            return Err(DomainError::invalid(
                "file",
                "is empty: a CSV import needs a header row, then one row per record",
            )
            .into());
        }
        rfc4180::Next::Broken(broken) => {
            return Err(DomainError::invalid(
                "file",
                format!("cannot read the header row (line {}): {}", broken.line, broken.reason),
            )
            .into());
        }
    }
    let mut report = ImportReport::default();
    let header: Vec<String> = headers.iter().map(str::to_owned).collect();
    let columns = columns_of(&def, &custom, &header, options)?;
    report.ignored_columns =
        header.iter().zip(&columns).filter(|(_, c)| matches!(c, Column::Ignored)).map(|(h, _)| h.clone()).collect();
    let natural_key = def.natural_key.clone();
    if let Some(key) = &natural_key
        && !columns.iter().any(|c| matches!(c, Column::Field(name, _) if name == key))
        && options.on_duplicate == OnDuplicate::Update
    {
        tracing::warn!("the file has no `{key}` column: rows cannot be matched to existing records");
    }

    // The table is analysed each time the import doubles it, so the look-ups of existing
    // records by key keep using their index (see `store::stats`).
    let mut growth = crate::store::stats::Growth::new(kith.store.rows_estimate(&def.table).await?);
    let mut batch: Vec<Row> = Vec::with_capacity(options.batch_size);
    let mut record = csv::StringRecord::new();
    loop {
        match csv.read(&mut record).map_err(unreadable)? {
            rfc4180::Next::End => break,
            rfc4180::Next::Record(line) => {
                report.rows += 1;
                match parse_row(&def, &custom, &columns, &record, line) {
                    Ok(row) => batch.push(row),
                    Err(reason) => report.rejected.push(Rejected { line, reason }),
                }
            }
            rfc4180::Next::Broken(broken) => {
                report.rows += 1;
                report.rejected.push(Rejected { line: broken.line, reason: broken.reason });
            }
        }
        if batch.len() >= options.batch_size {
            let created = report.created;
            write_batch(kith, actor, &def, &custom, std::mem::take(&mut batch), options, &mut report).await?;
            if growth.add(report.created - created) {
                kith.store.analyze(&[def.table.as_str()]).await;
            }
            progress(report.rows);
        }
    }
    if !batch.is_empty() {
        write_batch(kith, actor, &def, &custom, batch, options, &mut report).await?;
    }
    progress(report.rows);
    report.rejected.sort_by_key(|r| r.line);
    if report.created > 0 {
        kith.store.after_bulk_load(&def.table).await;
    }
    Ok(report)
}

/// Where each column of `header` goes: `mapping`'s target when it names the column (an empty
/// target ignores it), else the automatic one; refuses a mapping of an unknown column or to an
/// unknown field, and a header that leaves every row without a name (`check_names`).
fn columns_of(
    def: &ObjectDef,
    custom: &[CustomFieldDef],
    header: &[String],
    options: &ImportOptions,
) -> Result<Vec<Column>> {
    let columns = header
        .iter()
        .map(|column| map_header(def, custom, column, options.mapping.get(column)))
        .collect::<Result<Vec<_>>>()?;
    for key in options.mapping.keys() {
        if !header.iter().any(|h| h == key) {
            return Err(DomainError::invalid(key, "--map names a column the file does not have").into());
        }
    }
    check_names(def, &columns, header)?;
    Ok(columns)
}

/// One column of a file and the field it goes to (`None`: ignored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnPlan {
    /// The column's header.
    pub column: String,
    /// `firstName`, `tags`, `company` (a contact's company, by domain), `customFields.KEY`.
    pub target: Option<String>,
}

/// A field a column may go to, with its label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// As in [`ColumnPlan::target`].
    pub name: String,
    /// For people.
    pub label: String,
}

/// What an import of `object` would do with the columns of `header` (as `kith import` maps
/// them, after `options.mapping`), and every field a column may go to. Refuses what
/// [`import_csv`] would refuse before reading a row.
pub async fn plan(
    kith: &Kith,
    object: &str,
    header: &[String],
    options: &ImportOptions,
) -> Result<(Vec<ColumnPlan>, Vec<Target>)> {
    let (def, custom) = importable(kith, object).await?;
    let columns = columns_of(&def, &custom, header, options)?;
    let plans = header
        .iter()
        .zip(&columns)
        .map(|(column, target)| ColumnPlan {
            column: column.clone(),
            target: match target {
                Column::Field(name, _) => Some(name.clone()),
                Column::Custom(d) => Some(format!("customFields.{}", d.key)),
                Column::Tags => Some("tags".to_owned()),
                Column::CompanyDomain => Some("company".to_owned()),
                Column::Ignored => None,
            },
        })
        .collect();
    let mut targets: Vec<Target> = def
        .fields
        .iter()
        .filter(|f| f.access != Access::ReadOnly && f.name != "customFields")
        .map(|f| Target { name: f.name.clone(), label: f.label.clone() })
        .collect();
    if def.taggable {
        targets.push(Target { name: "tags".to_owned(), label: "Tags".to_owned() });
    }
    if def.name == "contact" {
        targets.push(Target { name: "company".to_owned(), label: "Company (by domain)".to_owned() });
    }
    targets.extend(custom.iter().map(|d| Target { name: format!("customFields.{}", d.key), label: d.label.clone() }));
    Ok((plans, targets))
}

/// The object and its custom fields, if CSV import takes it.
async fn importable(kith: &Kith, object: &str) -> Result<(std::sync::Arc<ObjectDef>, Vec<CustomFieldDef>)> {
    if !matches!(object, "contact" | "company") {
        return Err(DomainError::invalid("object", "only contacts and companies can be imported").into());
    }
    let def = kith.object(object)?;
    let custom = custom_fields::for_object(kith.store.conn(), object).await?;
    Ok((def, custom))
}

/// Refuses a header none of whose columns can give a row what every row needs (a contact's
/// first name, last name or e-mail; a company's name): every row would be rejected for it,
/// which is a mistake in the header (or a missing `--map`), not in the rows.
fn check_names(def: &ObjectDef, columns: &[Column], headers: &[String]) -> Result<()> {
    let mapped = |name: &str| columns.iter().any(|c| matches!(c, Column::Field(field, _) if field == name));
    let needed: Vec<Vec<&str>> = if def.name == "contact" {
        vec![vec!["firstName", "lastName", "email"]]
    } else {
        def.fields
            .iter()
            .filter(|f| f.required && f.access != Access::ReadOnly)
            .map(|f| vec![f.name.as_str()])
            .collect()
    };
    for fields in needed {
        if fields.iter().any(|f| mapped(f)) {
            continue;
        }
        let columns: Vec<&str> = headers.iter().map(String::as_str).collect();
        let wanted = match fields.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
            _ => fields.join(""),
        };
        return Err(DomainError::invalid(
            "file",
            format!(
                "no column maps to a {}'s {wanted}, so every row would be rejected (the columns are: {}); \
                 map one with --map \"HEADER={}\"",
                def.name,
                columns.join(", "),
                fields[0]
            ),
        )
        .into());
    }
    Ok(())
}

fn parse_row(
    def: &ObjectDef,
    custom: &[CustomFieldDef],
    columns: &[Column],
    record: &csv::StringRecord,
    line: u64,
) -> Result<Row, String> {
    let mut fields = Fields::new();
    let mut custom_values = Map::new();
    let mut row_tags: Option<Vec<String>> = None;
    let mut company_domain = None;
    for (column, cell) in columns.iter().zip(record.iter()) {
        match column {
            Column::Field(name, kind) => {
                let value = Value::parse(name, kind, cell).map_err(|e| e.to_string())?;
                if !value.is_null() {
                    fields.insert(name.clone(), value);
                }
            }
            Column::Custom(d) if !cell.is_empty() => {
                let json = match d.kind.as_str() {
                    "MULTI_SELECT" => Json::Array(
                        cell.split([';', ',']).map(|s| Json::String(s.trim().to_owned())).filter(|s| s != "").collect(),
                    ),
                    "BOOLEAN" => match Value::parse(&d.key, &FieldKind::Bool, cell).map_err(|e| e.to_string())? {
                        Value::Bool(b) => Json::Bool(b),
                        _ => Json::Null,
                    },
                    _ => Json::String(cell.to_owned()),
                };
                custom_values.insert(d.key.clone(), json);
            }
            Column::Tags if !cell.is_empty() => {
                row_tags = Some(cell.split([';', ',']).map(|s| s.trim().to_owned()).collect())
            }
            Column::CompanyDomain if !cell.is_empty() => {
                company_domain =
                    Some(crate::domain::value::normalize_domain("company", cell).map_err(|e| e.to_string())?);
            }
            _ => {}
        }
    }
    if record.len() > columns.len() {
        return Err(format!("has {} cells but the header has {}", record.len(), columns.len()));
    }
    rules::check_input(def, &fields, Mode::Create).map_err(|e| e.to_string())?;
    let custom_json = if custom_values.is_empty() { None } else { Some(Json::Object(custom_values)) };
    // Validate as a new record would be; the real write validates again.
    let mut probe = fields.clone();
    if def.custom_fields {
        let merged = validate_values(custom, None, custom_json.as_ref());
        match merged {
            Ok(j) => {
                probe.insert("customFields".into(), Value::Json(j));
            }
            // A required custom field may be satisfied by an existing record on update.
            Err(e) if custom_json.is_some() => return Err(e.to_string()),
            Err(_) => {}
        }
    }
    rules::prepare(def, None, &mut probe, chrono::Utc::now()).map_err(|e| e.to_string())?;
    let row_tags = row_tags.map(|names| tags::clean_names(&names)).transpose().map_err(|e| e.to_string())?;
    Ok(Row { line, fields: probe, custom: custom_json, tags: row_tags, company_domain })
}

async fn write_batch(
    kith: &Kith,
    actor: &Actor,
    def: &ObjectDef,
    custom: &[CustomFieldDef],
    rows: Vec<Row>,
    options: &ImportOptions,
    report: &mut ImportReport,
) -> Result<()> {
    let tx = kith.store.begin(actor).await?;
    match write_rows(kith, &tx, def, custom, &rows, options).await {
        Ok(outcome) => {
            tx.commit().await?;
            apply_outcome(report, outcome);
            Ok(())
        }
        // A conflict the checks could not foresee (a concurrent writer took an e-mail): redo
        // the batch row by row so only the offending rows are refused.
        Err(Error::Domain(_)) => {
            tx.rollback().await?;
            for row in rows {
                let tx = kith.store.begin(actor).await?;
                let line = row.line;
                match write_rows(kith, &tx, def, custom, std::slice::from_ref(&row), options).await {
                    Ok(outcome) => {
                        tx.commit().await?;
                        apply_outcome(report, outcome);
                    }
                    Err(Error::Domain(e)) => {
                        tx.rollback().await?;
                        report.rejected.push(Rejected { line, reason: e.to_string() });
                    }
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        }
        Err(e) => Err(e),
    }
}

#[derive(Default)]
struct Outcome {
    created: u64,
    updated: u64,
    skipped: u64,
    rejected: Vec<Rejected>,
}

fn apply_outcome(report: &mut ImportReport, outcome: Outcome) {
    report.created += outcome.created;
    report.updated += outcome.updated;
    report.skipped += outcome.skipped;
    report.rejected.extend(outcome.rejected);
}

async fn write_rows(
    kith: &Kith,
    tx: &Tx,
    def: &ObjectDef,
    custom: &[CustomFieldDef],
    rows: &[Row],
    options: &ImportOptions,
) -> Result<Outcome> {
    let mut outcome = Outcome::default();
    let key_field = def.natural_key.clone();
    // Existing records by natural key (lower-cased).
    let keys: Vec<String> = rows
        .iter()
        .filter_map(|r| {
            key_field.as_ref().and_then(|k| r.fields.get(k)).and_then(Value::as_text).map(str::to_lowercase)
        })
        .collect();
    let existing = find_by_keys(tx, def, key_field.as_deref(), &keys).await?;
    // Companies named by domain (contacts).
    let domains: Vec<String> = rows.iter().filter_map(|r| r.company_domain.clone()).collect();
    let company_def = kith.object("company")?;
    let companies = find_by_keys(tx, &company_def, Some("domain"), &domains).await?;
    // Referenced records must exist.
    let mut missing_refs: HashSet<Uuid> = HashSet::new();
    for (field, target) in def.references() {
        let ids: Vec<Uuid> = rows.iter().filter_map(|r| r.fields.get(&field.name).and_then(Value::as_uuid)).collect();
        if ids.is_empty() {
            continue;
        }
        let target_def = kith.object(target)?;
        let found: HashSet<Uuid> = records::get_many(tx.conn(), &target_def, &ids)
            .await?
            .into_iter()
            .filter(|r| !target_def.soft_delete || r.get("deletedAt").is_null())
            .map(|r| r.id())
            .collect();
        missing_refs.extend(ids.into_iter().filter(|id| !found.contains(id)));
    }

    let mut seen: HashSet<String> = HashSet::new();
    let mut new_rows: Vec<Fields> = Vec::with_capacity(rows.len());
    let mut new_tags: Vec<(Uuid, Vec<String>)> = Vec::new();
    for row in rows {
        let mut fields = row.fields.clone();
        if let Some(domain) = &row.company_domain {
            match companies.get(domain) {
                Some(company) => {
                    fields.insert("companyId".into(), Value::Uuid(company.id()));
                }
                None => {
                    outcome.rejected.push(Rejected {
                        line: row.line,
                        reason: format!("company: no company with domain `{domain}`"),
                    });
                    continue;
                }
            }
        }
        if let Some(id) = def
            .references()
            .find_map(|(f, _)| fields.get(&f.name).and_then(Value::as_uuid).filter(|id| missing_refs.contains(id)))
        {
            outcome.rejected.push(Rejected { line: row.line, reason: format!("refers to {id}, which does not exist") });
            continue;
        }
        let key = key_field.as_ref().and_then(|k| fields.get(k)).and_then(Value::as_text).map(str::to_lowercase);
        if let Some(key) = &key {
            if let Some(current) = existing.get(key) {
                match options.on_duplicate {
                    OnDuplicate::Skip => outcome.skipped += 1,
                    OnDuplicate::Update => {
                        let mut changes = fields.clone();
                        changes.retain(|name, value| !value.is_null() && row_has(row, name));
                        let input = Input {
                            fields: changes,
                            custom_fields: row.custom.clone(),
                            tags: row.tags.clone(),
                            tag_edit: None,
                        };
                        // A refused update propagates: on PostgreSQL a failed statement spoils the
                        // transaction, so the caller redoes the batch row by row, each row in its
                        // own transaction, and reports only the offending rows.
                        record_service::update(tx, &kith.registry(), &def.name, current.id(), input, None).await?;
                        outcome.updated += 1;
                    }
                }
                continue;
            }
            if !seen.insert(key.clone()) {
                outcome.skipped += 1;
                continue;
            }
        }
        if def.custom_fields {
            match validate_values(custom, None, row.custom.as_ref()) {
                Ok(j) => {
                    fields.insert("customFields".into(), Value::Json(j));
                }
                Err(e) => {
                    outcome.rejected.push(Rejected { line: row.line, reason: e.to_string() });
                    continue;
                }
            }
        }
        stamp_new(def, &mut fields, tx);
        // Plugins vet imported rows like any other write; a refusal rejects only that row.
        if tx.hook_for(&def.name).is_some() {
            match record_service::run_write_hook(tx, &kith.registry(), def, WriteOp::Create, None, &mut fields).await {
                Ok(()) => {}
                Err(Error::Domain(e)) => {
                    outcome.rejected.push(Rejected { line: row.line, reason: e.to_string() });
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
        if let Some(names) = &row.tags {
            new_tags.push((fields.get("id").and_then(Value::as_uuid).unwrap_or_default(), names.clone()));
        }
        new_rows.push(fields);
    }
    records::insert(tx.conn(), def, &new_rows).await?;
    tags::attach_many(tx, &def.name, &new_tags).await?;
    let new_records: Vec<Record> = new_rows.into_iter().map(|fields| Record { fields }).collect();
    crate::store::search::index_new(tx, def, &new_records).await?;
    if def.name == "contact" {
        // Consent given in the file is history like any other.
        let registry = kith.registry();
        for record in &new_records {
            crate::service::privacy::record_consent_changes(tx, &registry, None, record, None).await?;
        }
    }
    // Each record is serialised straight to text, once for its event and once (without the
    // nulls) for its audit entry.
    let backend = tx.backend();
    let tags_of: HashMap<Uuid, &[String]> = new_tags.iter().map(|(id, names)| (*id, names.as_slice())).collect();
    let mut entries = Vec::with_capacity(new_records.len());
    let mut events = Vec::with_capacity(new_records.len());
    let kind = format!("{}.created", def.name);
    for record in &new_records {
        let id = record.id();
        entries.push((Some(id), audit::created_doc(backend, &record.fields, tags_of.get(&id).copied())));
        let payload = crate::store::codec::event_payload(backend, &record.fields, "import", || {
            event(def, "created", record, json!({"source": "import"})).payload
        });
        events.push(outbox::EncodedEvent {
            kind: kind.clone(),
            object: def.name.clone(),
            record_id: Some(id),
            payload,
        });
    }
    outcome.created += entries.len() as u64;
    audit::record_encoded(tx, "create", &def.name, entries).await?;
    outbox::emit_encoded(tx, events).await?;
    Ok(outcome)
}

fn row_has(row: &Row, name: &str) -> bool {
    row.fields.contains_key(name) || name == "companyId" && row.company_domain.is_some()
}

/// Live records whose natural key (lower-cased) is among `keys`, by key.
async fn find_by_keys(
    tx: &Tx,
    def: &ObjectDef,
    key_field: Option<&str>,
    keys: &[String],
) -> Result<HashMap<String, Record>> {
    use crate::domain::filter::{Condition, Filter, Op, Target};
    let mut out = HashMap::new();
    let Some(key_field) = key_field else { return Ok(out) };
    let kind = def.field_def(key_field).map(|f| f.kind.clone()).unwrap_or(FieldKind::Text);
    let mut unique: Vec<String> = keys.to_vec();
    unique.sort();
    unique.dedup();
    for chunk in unique.chunks(500) {
        let filter = Filter::Cond(Condition {
            target: Target::Field(key_field.to_owned()),
            kind: kind.clone(),
            op: Op::In(chunk.iter().map(|k| Value::Text(k.clone())).collect()),
        });
        // Domains are stored normalised (lower case); e-mails compare through lower().
        for record in records::select_where(tx.conn(), def, &filter).await? {
            if let Some(key) = record.get(key_field).as_text() {
                out.insert(key.to_lowercase(), record);
            }
        }
    }
    Ok(out)
}
