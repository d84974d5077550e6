//! ERP → Kith, by the `sync` job: each run does one piece of work in its own transaction (due
//! retries, a page of a resync, or a page of one stream), so a run's ERP reads all happen
//! before its Kith writes and a crash loses at most a page, read again. A cycle (one scheduled
//! time) reads each stream to its end; the next cycle starts each stream a little back.
//!
//! A page is first planned ([`plan`]: what it would create and update in Kith, read only, which
//! is also what the dry run shows) and then written.

use std::collections::{BTreeMap, HashMap};

use kith_plugin_sdk::{Query, Record, Result, kv, records};
use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};

use crate::engine::{self, COMPANY_FIELDS, Conflict, Erp, ErpRecord, Fields, Stream};
use crate::links::{self, Kind};
use crate::push::{self, company_fields, company_update};
use crate::tryton::{self, amount};
use crate::{failures, util};

/// A cycle: its scheduled time and which streams it finished.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub(crate) struct Cycle {
    pub(crate) at: String,
    pub(crate) started: Vec<String>,
    pub(crate) done: Vec<String>,
}

/// A resync under way: the last company pushed.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Resync {
    pub(crate) after: Option<String>,
    pub(crate) pushed: u64,
}

pub(crate) fn position_key(stream: Stream) -> String {
    format!("pos:{}", stream.name())
}

/// A company made from a party carries the party's id and the values to link it with.
pub(crate) type NewLink = Option<(String, Fields)>;

/// What a page would change in Kith.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    /// Records to create: object, fields; and for companies, the link to make with each.
    pub(crate) creates: Vec<(String, Json, NewLink)>,
    /// Records to update: object, id, fields, version.
    pub(crate) updates: Vec<(String, String, Json, Option<u64>)>,
    /// Link updates that hold only if the company update before them went through: company
    /// id, link id, fields (a company changed meanwhile keeps its old base, merged next time).
    pub(crate) link_updates: Vec<(String, String, Json)>,
    /// Conflicts resolved: kith id, ERP id, conflicts.
    pub(crate) conflicts: Vec<(String, String, Vec<Conflict>)>,
    /// Timeline activities to add.
    pub(crate) activities: Vec<Json>,
    /// Records read and left alone.
    pub(crate) unchanged: usize,
}

impl Plan {
    /// The dry run's view of it.
    pub(crate) fn summary(&self, stream: Stream) -> Json {
        let count = |object: &str| self.creates.iter().filter(|c| c.0 == object).count();
        let changed = |object: &str| self.updates.iter().filter(|u| u.0 == object).count();
        json!({
            "stream": stream.name(),
            "create": self.creates.iter().map(|(object, fields, _)| json!({"object": object, "fields": fields})).collect::<Vec<_>>(),
            "update": self.updates.iter().map(|(object, id, fields, _)| json!({"object": object, "id": id, "fields": fields})).collect::<Vec<_>>(),
            "links": self.link_updates.len(),
            "conflicts": self.conflicts.iter().flat_map(|(kith, _, cs)| cs.iter().map(move |c| json!({
                "kithId": kith, "field": c.field, "crm": c.crm, "erp": c.erp, "winner": c.winner.label(),
            }))).collect::<Vec<_>>(),
            "activities": self.activities.len(),
            "unchanged": self.unchanged,
            "counts": {
                "companies": [count("company"), changed("company")],
                "products": [count("erpProduct"), changed("erpProduct")],
                "invoices": [count("erpInvoice"), changed("erpInvoice")],
                "deals": changed("deal"),
            },
        })
    }
}

/// One run of the `sync` job. `Ok` whether or not it wrote; Kith runs it again while it does.
pub(crate) fn run(erp: &mut dyn Erp, scheduled_for: &str) -> Result<()> {
    let mut cycle: Cycle = kv::get_json("cycle")?.unwrap_or_default();
    let new_cycle = cycle.at != scheduled_for;
    if new_cycle {
        cycle = Cycle { at: scheduled_for.to_owned(), ..Cycle::default() };
    }
    // 1. Failures due for another attempt.
    let due = failures::due(25)?;
    if !due.is_empty() {
        for failure in due {
            let (Some(kind), Some(kith_id)) =
                (failure.str("kind").and_then(Kind::parse), failure.str("kithId").map(str::to_owned))
            else {
                continue;
            };
            push::guarded(kind, &kith_id, || push::one(erp, kind, &kith_id))?;
        }
        return save_cycle(&cycle, new_cycle);
    }
    // 2. A page of a resync.
    if let Some(mut resync) = kv::get_json::<Resync>("resync")? {
        let mut query = Query::new().first(50).order_by(json!([{"field": "id", "direction": "ASC"}]));
        if let Some(after) = &resync.after {
            query = query.filter(json!({"id": {"gt": after}}));
        }
        let page = records::query("company", &query)?;
        for company in &page.records {
            push::guarded(Kind::Company, &company.id, || push::company(erp, &company.id))?;
        }
        resync.pushed += page.records.len() as u64;
        match page.records.last() {
            Some(last) if page.next_cursor.is_some() => {
                resync.after = Some(last.id.clone());
                kv::set_json("resync", &resync)?;
            }
            _ => {
                kith_plugin_sdk::log::info(&format!("resync: {} companies pushed again", resync.pushed));
                kv::delete("resync")?;
            }
        }
        return save_cycle(&cycle, new_cycle);
    }
    // 3. A page of the first stream this cycle has not finished.
    // At most 1,000: a page of 1,000 invoices is about half of the 1 MiB a plugin may receive.
    let limit = u32::try_from(util::int_setting("batch_size", 500, 50, 1000)?).unwrap_or(500);
    for stream in Stream::ALL {
        let name = stream.name().to_owned();
        if cycle.done.contains(&name) {
            continue;
        }
        let position: Option<Json> = kv::get_json(&position_key(stream))?;
        let rewind = !cycle.started.contains(&name) && position.is_some();
        let changes = erp.changes(stream, position.as_ref(), rewind, limit).map_err(kith_plugin_sdk::Error::from)?;
        let plan = plan(stream, &changes.records)?;
        write(plan)?;
        if position.as_ref() != Some(&changes.position) {
            kv::set_json(&position_key(stream), &changes.position)?;
        }
        if !cycle.started.contains(&name) {
            cycle.started.push(name.clone());
        }
        if changes.done {
            cycle.done.push(name);
        }
        return kv::set_json("cycle", &cycle);
    }
    save_cycle(&cycle, new_cycle)
}

fn save_cycle(cycle: &Cycle, new_cycle: bool) -> Result<()> {
    if new_cycle { kv::set_json("cycle", cycle) } else { Ok(()) }
}

/// What a page of `stream` would change in Kith.
pub(crate) fn plan(stream: Stream, page: &[ErpRecord]) -> Result<Plan> {
    match stream {
        Stream::Products => plan_products(page),
        Stream::Parties => plan_parties(page),
        Stream::Sales => plan_sales(page),
        Stream::Invoices => plan_invoices(page),
    }
}

fn money(text: Option<&str>) -> Json {
    match text.and_then(|t| t.parse::<rust_decimal::Decimal>().ok()) {
        Some(d) => json!(d.normalize().to_string()),
        None => Json::Null,
    }
}

/// Whether `fields` would change `record` (amounts compared as numbers).
fn differs(record: &Record, fields: &Json) -> bool {
    let Some(map) = fields.as_object() else { return false };
    map.iter().any(|(key, want)| {
        let have = record.fields.get(key).unwrap_or(&Json::Null);
        match (have, want) {
            (Json::String(a), Json::String(b)) => {
                match (a.parse::<rust_decimal::Decimal>(), b.parse::<rust_decimal::Decimal>()) {
                    (Ok(a), Ok(b)) => a != b,
                    _ => a != b,
                }
            }
            (a, b) => a != b,
        }
    })
}

fn by_external(object: &str, page: &[ErpRecord]) -> Result<HashMap<String, Record>> {
    let ids: Vec<String> = page.iter().map(|r| r.id.clone()).collect();
    Ok(util::by_values(object, "externalId", &ids)?
        .into_iter()
        .filter_map(|r| util::text(&r, "externalId").map(|id| (id, r)))
        .collect())
}

fn plan_products(page: &[ErpRecord]) -> Result<Plan> {
    let existing = by_external("erpProduct", page)?;
    let mut plan = Plan::default();
    for record in page {
        let Some(name) = record.get("name").or(record.get("code")) else { continue };
        let currency = record.get("currency").unwrap_or("USD");
        let fields = json!({
            "externalId": record.id,
            "code": record.get("code"),
            "name": name,
            "listPrice": money(record.get("listPrice")),
            "listPriceCurrency": currency,
            "unit": record.get("unit"),
            "productType": record.get("productType"),
            "salable": record.get("salable") == Some("true"),
            "active": record.get("active") == Some("true"),
        });
        match existing.get(&record.id) {
            Some(current) if differs(current, &fields) => {
                plan.updates.push(("erpProduct".into(), current.id.clone(), fields, None));
            }
            Some(_) => plan.unchanged += 1,
            None => plan.creates.push(("erpProduct".into(), fields, None)),
        }
    }
    Ok(plan)
}

fn plan_parties(page: &[ErpRecord]) -> Result<Plan> {
    let ids: Vec<String> = page.iter().map(|r| r.id.clone()).collect();
    let links: HashMap<String, links::Link> =
        links::of_externals(Kind::Company, &ids)?.into_iter().map(|l| (l.external_id.clone(), l)).collect();
    // Parties Kith made whose link is not there (a crash between the two): linked now.
    let keyed: Vec<String> = page
        .iter()
        .filter(|r| !links.contains_key(&r.id))
        .filter_map(|r| r.get("key").and_then(|k| k.strip_prefix("kith:company:")).map(str::to_owned))
        .collect();
    let mut company_ids: Vec<String> = links.values().map(links::Link::kith_id).collect();
    company_ids.extend(keyed);
    let companies: HashMap<String, Record> =
        util::by_values("company", "id", &company_ids)?.into_iter().map(|c| (c.id.clone(), c)).collect();
    let import = util::flag_setting("import_parties", true)?;
    let mut plan = Plan::default();
    for record in page {
        if tryton::is_internal(record) {
            continue;
        }
        let link = links.get(&record.id);
        let company_id = match link {
            Some(link) => Some(link.kith_id()),
            None => record.get("key").and_then(|k| k.strip_prefix("kith:company:")).map(str::to_owned),
        };
        match company_id.as_ref().and_then(|id| companies.get(id)) {
            Some(company) => {
                let base = link.map(|l| l.synced.clone()).unwrap_or_default();
                let merged = engine::merge(COMPANY_FIELDS, &base, &company_fields(company), &record.fields);
                // What Kith changed goes to the ERP with its own event: not from here.
                let mut agreed = merged.agreed.clone();
                for field in merged.to_erp.keys() {
                    agreed.insert(field.clone(), record.fields.get(field).cloned().flatten());
                }
                if !merged.to_kith.is_empty() {
                    plan.updates.push((
                        "company".into(),
                        company.id.clone(),
                        company_update(&merged.to_kith),
                        Some(company.version),
                    ));
                }
                if !merged.conflicts.is_empty() {
                    plan.conflicts.push((company.id.clone(), record.id.clone(), merged.conflicts.clone()));
                }
                match link {
                    Some(link) if link.synced == agreed => {
                        if merged.to_kith.is_empty() {
                            plan.unchanged += 1;
                        }
                    }
                    Some(link) => plan.link_updates.push((
                        company.id.clone(),
                        link.record.id.clone(),
                        links::synced_update(&agreed, None),
                    )),
                    None => plan.creates.push((
                        "erpLink".into(),
                        links::new_link(Kind::Company, &company.id, &record.id, &agreed, Some("ACTIVE")),
                        None,
                    )),
                }
            }
            None if link.is_some() => plan.unchanged += 1,
            None => {
                if !import || record.get("active") != Some("true") || record.get("name").is_none() {
                    plan.unchanged += 1;
                    continue;
                }
                let fields: Fields =
                    COMPANY_FIELDS.iter().map(|(f, _)| ((*f).to_owned(), engine::clean(record.get(f)))).collect();
                let mut create = company_update(&fields);
                if let Some(map) = create.as_object_mut() {
                    map.retain(|_, v| !v.is_null());
                    if let Some(Json::Object(custom)) = map.get_mut("customFields") {
                        custom.retain(|_, v| !v.is_null());
                    }
                }
                plan.creates.push(("company".into(), create, Some((record.id.clone(), fields))));
            }
        }
    }
    Ok(plan)
}

fn plan_sales(page: &[ErpRecord]) -> Result<Plan> {
    let mut plan = Plan::default();
    let deal_ids: Vec<String> = page
        .iter()
        .filter_map(|r| r.get("key").and_then(|k| k.strip_prefix("kith:deal:")).map(str::to_owned))
        .collect();
    let links: HashMap<String, links::Link> =
        links::of_kiths(Kind::Deal, &deal_ids)?.into_iter().map(|l| (l.kith_id(), l)).collect();
    let deals: HashMap<String, Record> =
        util::by_values("deal", "id", &deal_ids)?.into_iter().map(|d| (d.id.clone(), d)).collect();
    for record in page {
        let Some(deal_id) = record.get("key").and_then(|k| k.strip_prefix("kith:deal:")) else { continue };
        let Some(deal) = deals.get(deal_id) else {
            plan.unchanged += 1;
            continue;
        };
        let number = record.get("number").map(str::to_owned);
        let state = record.get("state").map(str::to_owned);
        if util::custom(deal, "erpSaleNumber") != number || util::custom(deal, "erpSaleState") != state {
            plan.updates.push((
                "deal".into(),
                deal.id.clone(),
                json!({"customFields": {"erpSaleNumber": number, "erpSaleState": state}}),
                None,
            ));
        } else {
            plan.unchanged += 1;
        }
        match links.get(deal_id) {
            Some(link) if link.record.str("externalState") == state.as_deref() => {}
            Some(link) => {
                plan.updates.push(("erpLink".into(), link.record.id.clone(), json!({"externalState": state}), None))
            }
            None => plan.creates.push((
                "erpLink".into(),
                links::new_link(Kind::Deal, deal_id, &record.id, &Fields::new(), state.as_deref()),
                None,
            )),
        }
    }
    Ok(plan)
}

fn plan_invoices(page: &[ErpRecord]) -> Result<Plan> {
    let existing = by_external("erpInvoice", page)?;
    let parties: Vec<String> = page.iter().filter_map(|r| r.get("party").map(str::to_owned)).collect();
    let companies: HashMap<String, String> = links::of_externals(Kind::Company, &parties)?
        .into_iter()
        .map(|l| (l.external_id.clone(), l.kith_id()))
        .collect();
    let mut plan = Plan::default();
    for record in page {
        let company = record.get("party").and_then(|p| companies.get(p)).cloned();
        let currency = record.get("currency").unwrap_or("USD");
        let state = record.get("state").unwrap_or("DRAFT");
        let fields = json!({
            "externalId": record.id,
            "companyId": company,
            "number": record.get("number"),
            "invoiceDate": record.get("invoiceDate"),
            "total": money(record.get("total")),
            "totalCurrency": currency,
            "amountDue": money(record.get("amountDue")),
            "amountDueCurrency": currency,
            "state": state,
            "reference": record.get("reference"),
        });
        let before = existing.get(&record.id);
        let was = before.and_then(|r| r.str("state")).unwrap_or("");
        if let Some(company) = &company
            && was != state
            && matches!(state, "POSTED" | "PAID")
        {
            let number = record.get("number").unwrap_or("(no number)");
            let subject = match state {
                "POSTED" => format!("Invoice {number} posted: {} {currency}", amount(record.get("total")).normalize()),
                _ => format!("Invoice {number} paid"),
            };
            plan.activities.push(json!({
                "kind": "NOTE",
                "subject": subject,
                "body": format!("In the ERP: invoice {number}, total {} {currency}, still due {} {currency}.",
                    amount(record.get("total")).normalize(), amount(record.get("amountDue")).normalize()),
                "companyId": company,
                "occurredAt": util::now(),
            }));
        }
        match before {
            Some(current) if differs(current, &fields) => {
                plan.updates.push(("erpInvoice".into(), current.id.clone(), fields, None))
            }
            Some(_) => plan.unchanged += 1,
            None => plan.creates.push(("erpInvoice".into(), fields, None)),
        }
    }
    Ok(plan)
}

/// Writes a plan: creates and updates in bulk, object by object; a record Kith refuses is
/// logged and left out (the rest of the page goes through).
pub(crate) fn write(plan: Plan) -> Result<()> {
    let mut creates: BTreeMap<String, Vec<(Json, NewLink)>> = BTreeMap::new();
    for (object, fields, link) in plan.creates {
        creates.entry(object).or_default().push((fields, link));
    }
    // Companies first: the links made with them name them.
    let mut new_links = Vec::new();
    if let Some(companies) = creates.remove("company") {
        let items: Vec<Json> = companies.iter().map(|(f, _)| f.clone()).collect();
        for (created, (fields, link)) in records::create_many("company", &items)?.into_iter().zip(companies) {
            let created = match created {
                Ok(created) => Ok(created),
                // A value Kith refuses (an e-mail address it does not take): the company without
                // the ERP's extra fields.
                Err(err) => {
                    let mut plain = fields.clone();
                    if let Some(map) = plain.as_object_mut() {
                        map.remove("customFields");
                    }
                    records::create("company", &plain).map_err(|_| err)
                }
            };
            match (created, link) {
                (Ok(company), Some((party, synced))) => {
                    new_links.push(links::new_link(Kind::Company, &company.id, &party, &synced, Some("ACTIVE")));
                }
                (Ok(_), None) => {}
                (Err(err), _) => kith_plugin_sdk::log::warn(&format!("a party could not become a company: {err}")),
            }
        }
    }
    if !new_links.is_empty() {
        creates.entry("erpLink".into()).or_default().extend(new_links.into_iter().map(|l| (l, None)));
    }
    for (object, items) in creates {
        let fields: Vec<Json> = items.into_iter().map(|(f, _)| f).collect();
        for chunk in fields.chunks(records::BULK_CHUNK) {
            for created in records::create_many(&object, chunk)? {
                if let Err(err) = created {
                    kith_plugin_sdk::log::warn(&format!("{object}: {err}"));
                }
            }
        }
    }
    let mut updates: BTreeMap<String, Vec<records::Update>> = BTreeMap::new();
    for (object, id, fields, version) in plan.updates {
        let mut update = records::Update::new(&id, fields);
        if let Some(version) = version {
            update = update.expected_version(version);
        }
        updates.entry(object).or_default().push(update);
    }
    let mut refused = std::collections::HashSet::new();
    for (object, items) in updates {
        for chunk in items.chunks(records::BULK_CHUNK) {
            for (updated, item) in records::update_many(&object, chunk)?.into_iter().zip(chunk) {
                if let Err(err) = updated {
                    kith_plugin_sdk::log::warn(&format!("{object} {}: {err}", item.id));
                    refused.insert(item.id.clone());
                }
            }
        }
    }
    let link_updates: Vec<records::Update> = plan
        .link_updates
        .into_iter()
        .filter(|(company, _, _)| !refused.contains(company))
        .map(|(_, link, fields)| records::Update::new(&link, fields))
        .collect();
    for chunk in link_updates.chunks(records::BULK_CHUNK) {
        for updated in records::update_many("erpLink", chunk)? {
            if let Err(err) = updated {
                kith_plugin_sdk::log::warn(&format!("erpLink: {err}"));
            }
        }
    }
    for (kith_id, external_id, conflicts) in plan.conflicts {
        push::record_conflicts(Kind::Company, &kith_id, &external_id, &conflicts)?;
    }
    for chunk in plan.activities.chunks(records::BULK_CHUNK) {
        for created in records::create_many("activity", chunk)? {
            if let Err(err) = created {
                kith_plugin_sdk::log::warn(&format!("activity: {err}"));
            }
        }
    }
    Ok(())
}

/// The dry run: a page of each stream from where the cursors are, planned and not written.
pub(crate) fn dry_run(erp: &mut dyn Erp, limit: u32) -> Result<Json> {
    let mut streams = Vec::new();
    for stream in Stream::ALL {
        let position: Option<Json> = kv::get_json(&position_key(stream))?;
        let changes = erp.changes(stream, position.as_ref(), false, limit).map_err(kith_plugin_sdk::Error::from)?;
        let mut summary = plan(stream, &changes.records)?.summary(stream);
        summary["read"] = json!(changes.records.len());
        summary["more"] = json!(!changes.done);
        streams.push(summary);
    }
    Ok(json!({"streams": streams, "requests": erp.requests()}))
}
