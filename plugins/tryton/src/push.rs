//! Kith → ERP: a company or contact as it changes, a deal won as a sale. Every push reads
//! the ERP side first and merges (`engine::merge`), does its ERP writes before any Kith write,
//! and is safe to repeat: a record the ERP has already (made before a crash, or by another
//! process) is found by its key and linked, never created twice. A failure is listed in
//! `failures` and retried; a success resolves it.

use kith_plugin_sdk::{Record, Result, records};
use rust_decimal::Decimal;
use serde_json::{Map, Value as Json, json};

use crate::engine::{
    self, COMPANY_CUSTOM, COMPANY_FIELDS, Conflict, Erp, Fields, Line, Order, SaleTarget, SyncError, SyncResult,
};
use crate::links::{self, Kind};
use crate::{failures, util};

/// A company's synchronised fields.
pub(crate) fn company_fields(company: &Record) -> Fields {
    COMPANY_FIELDS
        .iter()
        .map(|(field, _)| {
            let value =
                if COMPANY_CUSTOM.contains(field) { util::custom(company, field) } else { util::text(company, field) };
            ((*field).to_owned(), value)
        })
        .collect()
}

/// The Kith write of company fields (custom ones under `customFields`).
pub(crate) fn company_update(changes: &Fields) -> Json {
    let mut top = Map::new();
    let mut custom = Map::new();
    for (field, value) in changes {
        let value = value.as_ref().map_or(Json::Null, |v| json!(v));
        if COMPANY_CUSTOM.contains(&field.as_str()) {
            custom.insert(field.clone(), value);
        } else {
            top.insert(field.clone(), value);
        }
    }
    if !custom.is_empty() {
        top.insert("customFields".into(), Json::Object(custom));
    }
    Json::Object(top)
}

/// Keeps the conflicts a merge resolved, for the admin.
pub(crate) fn record_conflicts(kind: Kind, kith_id: &str, external_id: &str, conflicts: &[Conflict]) -> Result<()> {
    if conflicts.is_empty() {
        return Ok(());
    }
    let items: Vec<Json> = conflicts
        .iter()
        .map(|c| {
            kith_plugin_sdk::log::info(&format!(
                "{} {kith_id}: `{}` changed on both sides ({:?} in Kith, {:?} in the ERP); the {} keeps its value",
                kind.label(),
                c.field,
                c.crm,
                c.erp,
                c.winner.label()
            ));
            json!({
                "kind": kind.label(),
                "kithId": kith_id,
                "externalId": external_id,
                "field": c.field,
                "crmValue": c.crm,
                "erpValue": c.erp,
                "winner": c.winner.label(),
            })
        })
        .collect();
    for created in records::create_many("erpConflict", &items)? {
        created?;
    }
    Ok(())
}

/// Runs a push of one record, listing its failure or resolving it. Only a Kith-side error
/// that is not the data's (the database) fails the call.
pub(crate) fn guarded(kind: Kind, kith_id: &str, push: impl FnOnce() -> SyncResult<()>) -> Result<()> {
    match push() {
        Ok(()) => failures::resolve(kind, kith_id),
        Err(err) => failures::record(kind, kith_id, &err),
    }
}

/// Pushes a company: linked, its changes merged both ways; not yet, found by its key or made.
pub(crate) fn company(erp: &mut dyn Erp, id: &str) -> SyncResult<()> {
    let Some(company) = records::get("company", id)? else {
        // Deleted since: its party is deactivated (the delete's own event does it too).
        return deactivate(erp, id);
    };
    let kith = company_fields(&company);
    let link = links::of_kith(Kind::Company, id)?;
    let key = Kind::Company.key(id);
    let (party, base, reactivate) = match &link {
        Some(link) => {
            (Some(link.external_id.clone()), link.synced.clone(), link.record.str("externalState") == Some("INACTIVE"))
        }
        None => (erp.find_party(&key)?, Fields::new(), false),
    };
    let current = match &party {
        Some(party) => erp.read_parties(std::slice::from_ref(party))?.into_iter().next(),
        None => None,
    };
    let Some(current) = current else {
        // Never made, or gone from the ERP: made now, with everything Kith knows.
        let (party, unstored) = erp.create_party(&key, &kith)?;
        let mut agreed = kith.clone();
        for field in unstored {
            agreed.insert(field, None);
        }
        links::save(Kind::Company, id, &party, &agreed, Some("ACTIVE"))?;
        return Ok(());
    };
    let merged = engine::merge(COMPANY_FIELDS, &base, &kith, &current.fields);
    let mut agreed = merged.agreed.clone();
    for field in erp.update_party(&current.id, &merged.to_erp)? {
        agreed.insert(field.clone(), current.fields.get(&field).cloned().flatten());
    }
    if reactivate {
        erp.set_party_active(&current.id, true)?;
    }
    if !merged.to_kith.is_empty() {
        records::update("company", id, &company_update(&merged.to_kith), Some(company.version))?;
    }
    record_conflicts(Kind::Company, id, &current.id, &merged.conflicts)?;
    if link.is_none() || agreed != base || reactivate {
        links::save(Kind::Company, id, &current.id, &agreed, Some("ACTIVE"))?;
    }
    Ok(())
}

/// A company was deleted: its party is deactivated (kept: the ERP's records refer to it).
pub(crate) fn deactivate(erp: &mut dyn Erp, id: &str) -> SyncResult<()> {
    let Some(link) = links::of_kith(Kind::Company, id)? else { return Ok(()) };
    if link.record.str("externalState") == Some("INACTIVE") {
        return Ok(());
    }
    erp.set_party_active(&link.external_id, false)?;
    records::update("erpLink", &link.record.id, &json!({"externalState": "INACTIVE"}), None)?;
    Ok(())
}

/// The ERP party of a company, pushing the company first if it has none yet.
fn party_of(erp: &mut dyn Erp, company_id: &str) -> SyncResult<String> {
    if let Some(link) = links::of_kith(Kind::Company, company_id)? {
        return Ok(link.external_id);
    }
    company(erp, company_id)?;
    links::of_kith(Kind::Company, company_id)?
        .map(|link| link.external_id)
        .ok_or_else(|| SyncError::fatal(format!("company {company_id} could not be linked")))
}

/// Pushes a contact as a person of its company's party (moved with the contact, removed when
/// it has no company any more or is deleted).
pub(crate) fn contact(erp: &mut dyn Erp, id: &str) -> SyncResult<()> {
    let record = records::get("contact", id)?;
    let link = links::of_kith(Kind::Contact, id)?;
    let linked = link.as_ref().filter(|l| l.record.str("externalState") != Some("REMOVED"));
    let company = record.as_ref().and_then(|c| util::text(c, "companyId"));
    let person: Fields = match &record {
        Some(contact) => {
            let name = [util::text(contact, "firstName"), util::text(contact, "lastName")]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            [("name", Some(name)), ("email", util::text(contact, "email")), ("phone", util::text(contact, "phone"))]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), engine::clean(v.as_deref())))
                .collect()
        }
        None => Fields::new(),
    };
    let reachable =
        person.get("email").is_some_and(Option::is_some) || person.get("phone").is_some_and(Option::is_some);
    let Some(company) = company.filter(|_| reachable) else {
        if let Some(link) = linked {
            erp.remove_person(&link.external_id)?;
            records::update("erpLink", &link.record.id, &json!({"externalState": "REMOVED", "synced": {}}), None)?;
        }
        return Ok(());
    };
    let party = party_of(erp, &company)?;
    let mut synced = person.clone();
    synced.insert("party".into(), Some(party.clone()));
    if let Some(link) = linked {
        if link.synced == synced {
            return Ok(());
        }
        if link.synced.get("party").cloned().flatten().as_deref() != Some(party.as_str()) {
            erp.remove_person(&link.external_id)?;
        }
    }
    let existing = linked.filter(|l| l.synced.get("party").cloned().flatten().as_deref() == Some(party.as_str()));
    let mechanism =
        erp.upsert_person(&party, existing.map(|l| l.external_id.as_str()), &Kind::Contact.key(id), &person)?;
    links::save(Kind::Contact, id, &mechanism, &synced, Some("LINKED"))?;
    Ok(())
}

/// How far a deal won goes in the ERP (the `sale_state` setting).
fn target() -> SyncResult<SaleTarget> {
    match util::text_setting("sale_state")?.as_deref().unwrap_or("confirmed") {
        "draft" => Ok(SaleTarget::Draft),
        "quotation" => Ok(SaleTarget::Quotation),
        "confirmed" => Ok(SaleTarget::Confirmed),
        other => Err(SyncError::fatal(format!(
            "the sale_state setting is `{other}`: it must be draft, quotation or confirmed"
        ))),
    }
}

fn decimal(value: Option<&Json>) -> Option<Decimal> {
    match value? {
        Json::String(s) => s.trim().parse().ok(),
        Json::Number(n) => n.to_string().parse().ok(),
        _ => None,
    }
}

/// The lines of a deal's sale: its `dealLine`s, or the service product for its amount.
fn lines(erp: &mut dyn Erp, deal: &Record) -> SyncResult<Vec<Line>> {
    let mut out = Vec::new();
    for line in util::by_values("dealLine", "dealId", std::slice::from_ref(&deal.id))? {
        let product_id = util::text(&line, "productId").unwrap_or_default();
        let product = records::get("erpProduct", &product_id)?
            .ok_or_else(|| SyncError::fatal(format!("deal line {}: product {product_id} is gone", line.id)))?;
        let quantity = decimal(line.fields.get("quantity")).unwrap_or(Decimal::ONE);
        let unit_price = decimal(line.fields.get("unitPrice"))
            .or_else(|| decimal(product.fields.get("listPrice")))
            .unwrap_or_default();
        out.push(Line {
            product: util::text(&product, "externalId").unwrap_or_default(),
            quantity,
            unit_price,
            description: util::text(&line, "description").or_else(|| util::text(&product, "name")).unwrap_or_default(),
        });
    }
    if !out.is_empty() {
        return Ok(out);
    }
    let amount = decimal(deal.fields.get("amount")).filter(|a| *a > Decimal::ZERO).ok_or_else(|| {
        SyncError::fatal("the deal has no lines and no amount: add deal lines or an amount, then retry it")
    })?;
    let code = util::text_setting("service_product")?.unwrap_or_else(|| "KITH-SERVICE".into());
    let product = erp.find_product(&code)?.ok_or_else(|| {
        SyncError::fatal(format!(
            "the ERP has no product `{code}` (the service_product setting) to sell a deal without lines"
        ))
    })?;
    Ok(vec![Line {
        product: product.id,
        quantity: Decimal::ONE,
        unit_price: amount,
        description: util::text(deal, "title").unwrap_or_default(),
    }])
}

/// A deal won becomes a sale (found again by its key if it was made before), moved on to the
/// configured state; its number and state come back to the deal.
pub(crate) fn deal(erp: &mut dyn Erp, id: &str) -> SyncResult<()> {
    let Some(deal) = records::get("deal", id)? else { return Ok(()) };
    let target = target()?;
    let company = match util::text(&deal, "companyId") {
        Some(company) => Some(company),
        None => match util::text(&deal, "contactId") {
            Some(contact) => records::get("contact", &contact)?.and_then(|c| util::text(&c, "companyId")),
            None => None,
        },
    };
    let company = company.ok_or_else(|| {
        SyncError::fatal(
            "the deal has no company (nor a contact with one): the ERP sells to a party; set one, then retry it",
        )
    })?;
    let key = Kind::Deal.key(id);
    let sale = match erp.find_sale(&key)? {
        Some(sale) => sale,
        None => {
            let party = party_of(erp, &company)?;
            let order = Order {
                key: key.clone(),
                party,
                currency: util::text(&deal, "currency").map(|c| c.to_ascii_uppercase()),
                description: util::text(&deal, "title").unwrap_or_default(),
                lines: lines(erp, &deal)?,
            };
            erp.create_sale(&order)?
        }
    };
    let sale = erp.advance_sale(&sale, target)?;
    let custom = json!({"customFields": {"erpSaleNumber": sale.number, "erpSaleState": sale.state}});
    if util::custom(&deal, "erpSaleNumber") != sale.number
        || util::custom(&deal, "erpSaleState").as_deref() != Some(sale.state.as_str())
    {
        records::update("deal", id, &custom, None)?;
    }
    links::save(Kind::Deal, id, &sale.id, &Fields::new(), Some(&sale.state))?;
    Ok(())
}

/// Pushes one record of `kind` (a retry, a resync).
pub(crate) fn one(erp: &mut dyn Erp, kind: Kind, id: &str) -> SyncResult<()> {
    match kind {
        Kind::Company => company(erp, id),
        Kind::Contact => contact(erp, id),
        Kind::Deal => deal(erp, id),
    }
}
