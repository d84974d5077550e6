//! The Tryton mapping: the [`Erp`] the engine uses, over Tryton's JSON-RPC (`tryton::rpc`).
//!
//! - A company is a `party.party`: its name; its first address (street, city, postal code and
//!   country, when Tryton knows the country); its first identifier not made by Kith as the
//!   tax identifier; its e-mail, phone and website contact mechanisms (those without a name).
//!   A party Kith made carries the identifier `kith:company:ID` (type empty), which is how a
//!   create interrupted by a crash is found again.
//! - A contact is a named contact mechanism (its e-mail, else its phone) of its company's party.
//! - A deal won is a `sale.sale` whose reference is `kith:deal:ID`, with product lines (the
//!   products' sale unit and customer taxes), quoted and confirmed with the sale's own buttons.
//! - Pulls read each model in two passes per cycle: new records by id, then records written
//!   since the last write date (keyset on `write_date`, `id`; the first time, from five
//!   minutes before it started: the new pass read the rest as it is); a new cycle starts 50 ids
//!   and 10 seconds back, for transactions that committed late (reading a record twice changes
//!   nothing).

pub(crate) mod rpc;

use std::collections::{BTreeMap, HashMap};

use rust_decimal::Decimal;
use serde_json::{Value as Json, json};

use crate::engine::{Changes, Erp, ErpRecord, Fields, Order, Sale, SaleTarget, Stream, SyncError, SyncResult};

/// The prefix of the identifiers Kith gives the parties it makes.
pub(crate) const KEY_PREFIX: &str = "kith:";

/// The sub-records of a party read last (what a write must name).
#[derive(Debug, Clone, Default)]
struct Parts {
    address: Option<i64>,
    tax: Option<i64>,
    mechanisms: BTreeMap<&'static str, i64>,
}

/// A Tryton database.
pub(crate) struct Tryton {
    client: rpc::Client,
    parts: HashMap<String, Parts>,
    countries: HashMap<String, Option<i64>>,
    internal: Option<Vec<i64>>,
}

const MECHANISMS: [(&str, &str); 3] = [("email", "email"), ("phone", "phone"), ("website", "domain")];

fn id_of(value: &Json) -> Option<i64> {
    match value {
        Json::Number(n) => n.as_i64(),
        Json::Object(map) => map.get("id").and_then(Json::as_i64),
        _ => None,
    }
}

fn ids(text: &[String]) -> Vec<i64> {
    text.iter().filter_map(|t| t.parse().ok()).collect()
}

fn get<'a>(row: &'a Json, key: &str) -> &'a Json {
    row.get(key).unwrap_or(&Json::Null)
}

/// A domain's or a value's text, normalised as Kith keeps a company's domain.
fn website_domain(value: &str) -> String {
    let v = value.trim().to_ascii_lowercase();
    let v = v.split_once("://").map_or(v.as_str(), |(_, rest)| rest);
    let v = v.strip_prefix("www.").unwrap_or(v);
    v.split(['/', '?', '#']).next().unwrap_or(v).to_owned()
}

impl Tryton {
    pub(crate) fn new(url: &str, user: &str) -> Tryton {
        Tryton { client: rpc::Client::new(url, user), parts: HashMap::new(), countries: HashMap::new(), internal: None }
    }

    fn call(&mut self, method: &str, params: Vec<Json>) -> SyncResult<Json> {
        self.client.call(method, params)
    }

    fn search_read(
        &mut self,
        model: &str,
        domain: Json,
        limit: Option<u32>,
        order: Json,
        fields: &[&str],
    ) -> SyncResult<Vec<Json>> {
        let rows = self.call(
            &format!("model.{model}.search_read"),
            vec![domain, json!(0), limit.map_or(Json::Null, |l| json!(l)), order, json!(fields)],
        )?;
        match rows {
            Json::Array(rows) => Ok(rows),
            other => Err(SyncError::retry(format!("{model}.search_read answered {other}"))),
        }
    }

    /// The parties of the organisation itself and of its employees: never companies in Kith.
    fn internal_parties(&mut self) -> SyncResult<Vec<i64>> {
        if let Some(internal) = &self.internal {
            return Ok(internal.clone());
        }
        let mut internal = Vec::new();
        for model in ["company.company", "company.employee"] {
            for row in self.search_read(model, json!([]), None, Json::Null, &["party"])? {
                internal.extend(id_of(get(&row, "party")));
            }
        }
        self.internal = Some(internal.clone());
        Ok(internal)
    }

    fn country(&mut self, name: &str) -> SyncResult<Option<i64>> {
        let key = name.trim().to_ascii_lowercase();
        if let Some(found) = self.countries.get(&key) {
            return Ok(*found);
        }
        let rows = self.search_read(
            "country.country",
            json!(["OR", ["code", "=", key.to_ascii_uppercase()], ["name", "ilike", name.trim()]]),
            Some(1),
            Json::Null,
            &["id"],
        )?;
        let found = rows.first().and_then(|r| id_of(get(r, "id")));
        self.countries.insert(key, found);
        Ok(found)
    }

    /// Parties with their addresses, identifiers and contact mechanisms, as records.
    /// Which of them are the organisation's own is asked only for a pull (`with_internal`).
    fn parties(&mut self, rows: Vec<Json>, with_internal: bool) -> SyncResult<Vec<ErpRecord>> {
        let party_ids: Vec<i64> = rows.iter().filter_map(|r| id_of(get(r, "id"))).collect();
        if party_ids.is_empty() {
            return Ok(Vec::new());
        }
        let internal = if with_internal { self.internal_parties()? } else { Vec::new() };
        let order = json!([["party", "ASC"], ["sequence", "ASC"], ["id", "ASC"]]);
        let addresses = self.search_read(
            "party.address",
            json!([["party", "in", party_ids]]),
            None,
            order.clone(),
            &["party", "street", "city", "postal_code", "country.name"],
        )?;
        let identifiers = self.search_read(
            "party.identifier",
            json!([["party", "in", party_ids]]),
            None,
            order.clone(),
            &["party", "code"],
        )?;
        let mechanisms = self.search_read(
            "party.contact_mechanism",
            json!([["party", "in", party_ids], ["name", "=", null]]),
            None,
            order,
            &["party", "type", "value"],
        )?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let Some(id) = id_of(get(&row, "id")) else { continue };
            let mut fields = Fields::new();
            let mut parts = Parts::default();
            fields.insert("name".into(), rpc::text(get(&row, "name")));
            if let Some(address) = addresses.iter().find(|a| id_of(get(a, "party")) == Some(id)) {
                parts.address = id_of(get(address, "id"));
                fields.insert("addressStreet".into(), rpc::text(get(address, "street")));
                fields.insert("addressCity".into(), rpc::text(get(address, "city")));
                fields.insert("addressPostalCode".into(), rpc::text(get(address, "postal_code")));
                let country = address.get("country.").and_then(|c| c.get("name")).and_then(rpc::text);
                fields.insert("addressCountry".into(), country);
            } else {
                for field in ["addressStreet", "addressCity", "addressPostalCode", "addressCountry"] {
                    fields.insert(field.into(), None);
                }
            }
            let mut key = None;
            let mut tax = None;
            for identifier in identifiers.iter().filter(|i| id_of(get(i, "party")) == Some(id)) {
                let code = rpc::text(get(identifier, "code")).unwrap_or_default();
                if code.starts_with(KEY_PREFIX) {
                    key.get_or_insert(code);
                } else if tax.is_none() {
                    parts.tax = id_of(get(identifier, "id"));
                    tax = Some(code);
                }
            }
            fields.insert("taxIdentifier".into(), tax);
            fields.insert("key".into(), key);
            for (kind, field) in MECHANISMS {
                let found = mechanisms
                    .iter()
                    .find(|m| id_of(get(m, "party")) == Some(id) && get(m, "type").as_str() == Some(kind));
                let value = found.and_then(|m| rpc::text(get(m, "value")));
                if let Some(m) = found.and_then(|m| id_of(get(m, "id"))) {
                    parts.mechanisms.insert(kind, m);
                }
                let value = if kind == "website" { value.map(|v| website_domain(&v)) } else { value };
                fields.insert(field.into(), value);
            }
            fields.insert("internal".into(), internal.contains(&id).then(|| "true".into()));
            fields.insert("active".into(), Some(rpc::flag(get(&row, "active")).to_string()));
            self.parts.insert(id.to_string(), parts);
            out.push(ErpRecord { id: id.to_string(), fields });
        }
        Ok(out)
    }

    /// The `write` / `create` values of a party's fields; the fields Tryton cannot hold (a
    /// country it does not know) are left out and named.
    fn party_values(
        &mut self,
        parts: &Parts,
        changes: &Fields,
    ) -> SyncResult<(serde_json::Map<String, Json>, Vec<String>)> {
        let mut values = serde_json::Map::new();
        let mut unstored = Vec::new();
        let text = |v: &Option<String>| v.as_deref().map_or(Json::Null, |s| json!(s));
        if let Some(name) = changes.get("name") {
            values.insert("name".into(), text(name));
        }
        let mut address = serde_json::Map::new();
        for (field, tryton) in
            [("addressStreet", "street"), ("addressCity", "city"), ("addressPostalCode", "postal_code")]
        {
            if let Some(value) = changes.get(field) {
                address.insert(tryton.into(), text(value));
            }
        }
        if let Some(country) = changes.get("addressCountry") {
            match country {
                None => {
                    address.insert("country".into(), Json::Null);
                }
                Some(name) => match self.country(name)? {
                    Some(id) => {
                        address.insert("country".into(), json!(id));
                    }
                    None => unstored.push("addressCountry".to_owned()),
                },
            }
        }
        if !address.is_empty() {
            let action = match parts.address {
                Some(id) => json!([["write", [id], address]]),
                None => json!([["create", [address]]]),
            };
            values.insert("addresses".into(), action);
        }
        if let Some(tax) = changes.get("taxIdentifier") {
            let action = match (parts.tax, tax) {
                (Some(id), Some(code)) => Some(json!(["write", [id], {"code": code}])),
                (Some(id), None) => Some(json!(["delete", [id]])),
                (None, Some(code)) => Some(json!(["create", [{"code": code}]])),
                (None, None) => None,
            };
            if let Some(action) = action {
                values.insert("identifiers".into(), json!([action]));
            }
        }
        let mut mechanisms = Vec::new();
        for (kind, field) in MECHANISMS {
            let Some(value) = changes.get(field) else { continue };
            match (parts.mechanisms.get(kind), value) {
                (Some(id), Some(value)) => mechanisms.push(json!(["write", [id], {"value": value}])),
                (Some(id), None) => mechanisms.push(json!(["delete", [id]])),
                (None, Some(value)) => mechanisms.push(json!(["create", [{"type": kind, "value": value}]])),
                (None, None) => {}
            }
        }
        if !mechanisms.is_empty() {
            values.insert("contact_mechanisms".into(), Json::Array(mechanisms));
        }
        Ok((values, unstored))
    }

    fn sale(row: &Json) -> Option<Sale> {
        Some(Sale {
            id: id_of(get(row, "id"))?.to_string(),
            number: rpc::text(get(row, "number")),
            state: rpc::text(get(row, "state")).unwrap_or_else(|| "draft".into()),
        })
    }

    fn read_sale(&mut self, id: &str) -> SyncResult<Sale> {
        let rows = self.search_read(
            "sale.sale",
            json!([["id", "=", id.parse::<i64>().unwrap_or(-1)]]),
            Some(1),
            Json::Null,
            &["number", "state"],
        )?;
        rows.first().and_then(Tryton::sale).ok_or_else(|| SyncError::fatal(format!("sale {id} is gone from Tryton")))
    }

    /// One page of a model's changes from `position` (see the module's doc).
    fn page(
        &mut self,
        model: &str,
        base: Json,
        position: Option<&Json>,
        rewind: bool,
        limit: u32,
        fields: &[&str],
    ) -> SyncResult<(Vec<Json>, Json, bool)> {
        // A first read takes every record in the new pass, as it is now: the changed pass need
        // only look at what is written from then on (less five minutes, for clocks apart).
        let mut pos = position
            .cloned()
            .unwrap_or_else(|| json!({"phase": "new", "id": 0, "at": crate::util::later(-300), "atId": 0}));
        if rewind {
            let id = pos.get("id").and_then(Json::as_i64).unwrap_or(0);
            pos["id"] = json!((id - 50).max(0));
            if let Some(at) =
                pos.get("at").and_then(Json::as_str).and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            {
                let back = at - chrono::Duration::seconds(10);
                pos["at"] =
                    json!(back.with_timezone(&chrono::Utc).to_rfc3339_opts(chrono::SecondsFormat::Micros, true));
            }
            pos["atId"] = json!(0);
            pos["phase"] = json!("new");
        }
        let mut all_fields: Vec<&str> = fields.to_vec();
        all_fields.extend(["write_date", "create_date"]);
        let phase = pos.get("phase").and_then(Json::as_str).unwrap_or("new").to_owned();
        if phase == "new" {
            let after = pos.get("id").and_then(Json::as_i64).unwrap_or(0);
            let domain = json!([base.clone(), ["id", ">", after]]);
            let rows = self.search_read(model, domain, Some(limit), json!([["id", "ASC"]]), &all_fields)?;
            if let Some(last) = rows.last().and_then(|r| id_of(get(r, "id"))) {
                pos["id"] = json!(last);
            }
            if rows.len() as u32 >= limit {
                return Ok((rows, pos, false));
            }
            pos["phase"] = json!("modified");
            if !rows.is_empty() {
                return Ok((rows, pos, false));
            }
        }
        let at = pos.get("at").and_then(Json::as_str).and_then(rpc::datetime);
        let at_id = pos.get("atId").and_then(Json::as_i64).unwrap_or(0);
        let since = match &at {
            Some(at) => json!(["OR", ["write_date", ">", at], [["write_date", "=", at], ["id", ">", at_id]]]),
            None => json!(["write_date", "!=", null]),
        };
        let rows = self.search_read(
            model,
            json!([base, since]),
            Some(limit),
            json!([["write_date", "ASC"], ["id", "ASC"]]),
            &all_fields,
        )?;
        if let Some(last) = rows.last() {
            pos["at"] = rpc::text(get(last, "write_date")).map_or(Json::Null, Json::String);
            pos["atId"] = json!(id_of(get(last, "id")).unwrap_or(0));
        }
        let done = (rows.len() as u32) < limit;
        Ok((rows, pos, done))
    }
}

/// Tryton's invoice states as Kith's enum.
fn invoice_state(state: &str) -> &'static str {
    match state {
        "validated" => "VALIDATED",
        "posted" => "POSTED",
        "paid" => "PAID",
        "cancelled" => "CANCELLED",
        _ => "DRAFT",
    }
}

impl Erp for Tryton {
    fn find_party(&mut self, key: &str) -> SyncResult<Option<String>> {
        let rows =
            self.search_read("party.party", json!([["identifiers.code", "=", key]]), Some(1), Json::Null, &["id"])?;
        Ok(rows.first().and_then(|r| id_of(get(r, "id"))).map(|id| id.to_string()))
    }

    fn read_parties(&mut self, party_ids: &[String]) -> SyncResult<Vec<ErpRecord>> {
        let rows = self.search_read(
            "party.party",
            json!([["id", "in", ids(party_ids)]]),
            None,
            Json::Null,
            &["name", "active"],
        )?;
        self.parties(rows, false)
    }

    fn create_party(&mut self, key: &str, fields: &Fields) -> SyncResult<(String, Vec<String>)> {
        let (mut values, unstored) = self.party_values(&Parts::default(), fields)?;
        // Every party Kith makes has an address: a sale needs one to invoice.
        values.entry("addresses").or_insert_with(|| json!([["create", [{}]]]));
        let mut identifiers = vec![json!(["create", [{"code": key}]])];
        if let Some(Json::Array(tax)) = values.remove("identifiers") {
            identifiers.extend(tax);
        }
        values.insert("identifiers".into(), Json::Array(identifiers));
        let created = self.call("model.party.party.create", vec![json!([values])])?;
        let id = created
            .get(0)
            .and_then(Json::as_i64)
            .ok_or_else(|| SyncError::retry(format!("party.create answered {created}")))?;
        Ok((id.to_string(), unstored))
    }

    fn update_party(&mut self, id: &str, changes: &Fields) -> SyncResult<Vec<String>> {
        if changes.is_empty() {
            return Ok(Vec::new());
        }
        if !self.parts.contains_key(id) {
            self.read_parties(&[id.to_owned()])?;
        }
        let parts = self.parts.get(id).cloned().unwrap_or_default();
        let (values, unstored) = self.party_values(&parts, changes)?;
        if values.is_empty() {
            return Ok(unstored);
        }
        let party: i64 = id.parse().map_err(|_| SyncError::fatal(format!("`{id}` is not a Tryton id")))?;
        self.call("model.party.party.write", vec![json!([party]), Json::Object(values)])?;
        // Sub-records may have been created: read them again before another write.
        self.parts.remove(id);
        Ok(unstored)
    }

    fn set_party_active(&mut self, id: &str, active: bool) -> SyncResult<()> {
        let party: i64 = id.parse().map_err(|_| SyncError::fatal(format!("`{id}` is not a Tryton id")))?;
        self.call("model.party.party.write", vec![json!([party]), json!({"active": active})]).map(|_| ())
    }

    fn upsert_person(&mut self, party: &str, existing: Option<&str>, key: &str, person: &Fields) -> SyncResult<String> {
        let party: i64 = party.parse().map_err(|_| SyncError::fatal(format!("`{party}` is not a Tryton id")))?;
        let (kind, value) = match (person.get("email").cloned().flatten(), person.get("phone").cloned().flatten()) {
            (Some(email), _) => ("email", email),
            (None, Some(phone)) => ("phone", phone),
            (None, None) => {
                return Err(SyncError::fatal("the contact has neither an e-mail address nor a phone number"));
            }
        };
        let name = person.get("name").cloned().flatten().unwrap_or_default();
        let values = json!({"type": kind, "value": value, "name": name, "comment": key});
        let current = match existing {
            Some(id) => {
                let rows = self.search_read(
                    "party.contact_mechanism",
                    json!([["id", "=", id.parse::<i64>().unwrap_or(-1)], ["party", "=", party]]),
                    Some(1),
                    Json::Null,
                    &["id"],
                )?;
                rows.first().and_then(|r| id_of(get(r, "id")))
            }
            None => None,
        };
        let current = match current {
            Some(id) => Some(id),
            None => {
                let rows = self.search_read(
                    "party.contact_mechanism",
                    json!([["party", "=", party], ["comment", "=", key]]),
                    Some(1),
                    Json::Null,
                    &["id"],
                )?;
                rows.first().and_then(|r| id_of(get(r, "id")))
            }
        };
        match current {
            Some(id) => {
                self.call("model.party.contact_mechanism.write", vec![json!([id]), values])?;
                Ok(id.to_string())
            }
            None => {
                let mut values = values;
                values["party"] = json!(party);
                let created = self.call("model.party.contact_mechanism.create", vec![json!([values])])?;
                created
                    .get(0)
                    .and_then(Json::as_i64)
                    .map(|id| id.to_string())
                    .ok_or_else(|| SyncError::retry(format!("contact_mechanism.create answered {created}")))
            }
        }
    }

    fn remove_person(&mut self, id: &str) -> SyncResult<()> {
        let Ok(id) = id.parse::<i64>() else { return Ok(()) };
        let rows =
            self.search_read("party.contact_mechanism", json!([["id", "=", id]]), Some(1), Json::Null, &["id"])?;
        if rows.is_empty() {
            return Ok(());
        }
        self.call("model.party.contact_mechanism.delete", vec![json!([id])]).map(|_| ())
    }

    fn find_product(&mut self, code: &str) -> SyncResult<Option<ErpRecord>> {
        let rows = self.search_read(
            "product.product",
            json!([["code", "=", code]]),
            Some(1),
            Json::Null,
            &["code", "name", "list_price_used"],
        )?;
        Ok(rows.first().and_then(|row| {
            let id = id_of(get(row, "id"))?;
            let mut fields = Fields::new();
            fields.insert("code".into(), rpc::text(get(row, "code")));
            fields.insert("name".into(), rpc::text(get(row, "name")));
            fields.insert("listPrice".into(), rpc::text(get(row, "list_price_used")));
            Some(ErpRecord { id: id.to_string(), fields })
        }))
    }

    fn find_sale(&mut self, key: &str) -> SyncResult<Option<Sale>> {
        let rows = self.search_read(
            "sale.sale",
            json!([["reference", "=", key]]),
            Some(1),
            json!([["id", "ASC"]]),
            &["number", "state"],
        )?;
        Ok(rows.first().and_then(Tryton::sale))
    }

    fn create_sale(&mut self, order: &Order) -> SyncResult<Sale> {
        let party: i64 =
            order.party.parse().map_err(|_| SyncError::fatal(format!("`{}` is not a Tryton id", order.party)))?;
        let addresses = self.search_read(
            "party.address",
            json!([["party", "=", party]]),
            Some(1),
            json!([["sequence", "ASC"], ["id", "ASC"]]),
            &["id"],
        )?;
        let address = match addresses.first().and_then(|a| id_of(get(a, "id"))) {
            Some(id) => id,
            None => {
                self.call("model.party.party.write", vec![json!([party]), json!({"addresses": [["create", [{}]]]})])?;
                let again =
                    self.search_read("party.address", json!([["party", "=", party]]), Some(1), Json::Null, &["id"])?;
                again
                    .first()
                    .and_then(|a| id_of(get(a, "id")))
                    .ok_or_else(|| SyncError::retry("the party's new address cannot be read"))?
            }
        };
        let product_ids: Vec<i64> = order.lines.iter().filter_map(|l| l.product.parse().ok()).collect();
        let products = self.search_read(
            "product.product",
            json!([["id", "in", product_ids]]),
            None,
            Json::Null,
            &["sale_uom", "account_category", "salable"],
        )?;
        // A line's taxes are its product's accounting category's customer taxes, as Tryton's
        // own sale form sets them.
        let category_ids: Vec<i64> = products.iter().filter_map(|p| id_of(get(p, "account_category"))).collect();
        let categories = if category_ids.is_empty() {
            Vec::new()
        } else {
            self.search_read(
                "product.category",
                json!([["id", "in", category_ids]]),
                None,
                Json::Null,
                &["customer_taxes_used"],
            )?
        };
        let mut lines = Vec::new();
        for line in &order.lines {
            let product = products
                .iter()
                .find(|p| id_of(get(p, "id")).map(|id| id.to_string()).as_deref() == Some(line.product.as_str()))
                .ok_or_else(|| SyncError::fatal(format!("product {} is not in Tryton", line.product)))?;
            let category = id_of(get(product, "account_category"));
            let taxes: Vec<i64> = categories
                .iter()
                .find(|c| category.is_some() && id_of(get(c, "id")) == category)
                .and_then(|c| get(c, "customer_taxes_used").as_array())
                .map(|a| a.iter().filter_map(id_of).collect())
                .unwrap_or_default();
            let quantity: f64 = line.quantity.to_string().parse().unwrap_or(0.0);
            lines.push(json!({
                "type": "line",
                "product": line.product.parse::<i64>().unwrap_or(-1),
                "quantity": quantity,
                "unit": id_of(get(product, "sale_uom")),
                "unit_price": rpc::decimal(line.unit_price),
                "description": line.description,
                "taxes": [["add", taxes]],
            }));
        }
        let mut values = json!({
            "party": party,
            "invoice_address": address,
            "shipment_address": address,
            "reference": order.key,
            "description": order.description,
            "lines": [["create", lines]],
        });
        if let Some(code) = &order.currency {
            let found =
                self.search_read("currency.currency", json!([["code", "=", code]]), Some(1), Json::Null, &["id"])?;
            let id = found
                .first()
                .and_then(|c| id_of(get(c, "id")))
                .ok_or_else(|| SyncError::fatal(format!("Tryton has no currency {code}")))?;
            values["currency"] = json!(id);
        }
        let created = self.call("model.sale.sale.create", vec![json!([values])])?;
        let id = created
            .get(0)
            .and_then(Json::as_i64)
            .ok_or_else(|| SyncError::retry(format!("sale.create answered {created}")))?;
        self.read_sale(&id.to_string())
    }

    fn advance_sale(&mut self, sale: &Sale, target: SaleTarget) -> SyncResult<Sale> {
        let id: i64 = sale.id.parse().map_err(|_| SyncError::fatal(format!("`{}` is not a Tryton id", sale.id)))?;
        let mut state = sale.state.clone();
        if state == "draft" && target != SaleTarget::Draft {
            self.call("model.sale.sale.quote", vec![json!([id])])?;
            state = "quotation".into();
        }
        if state == "quotation" && target == SaleTarget::Confirmed {
            self.call("model.sale.sale.confirm", vec![json!([id])])?;
        }
        self.read_sale(&sale.id)
    }

    fn changes(&mut self, stream: Stream, position: Option<&Json>, rewind: bool, limit: u32) -> SyncResult<Changes> {
        match stream {
            Stream::Products => {
                let (rows, position, done) = self.page(
                    "product.product",
                    json!(["active", "in", [true, false]]),
                    position,
                    rewind,
                    limit,
                    &["code", "name", "list_price_used", "default_uom.name", "type", "salable", "active"],
                )?;
                let currency = self.company_currency()?;
                let records = rows
                    .iter()
                    .filter_map(|row| {
                        let id = id_of(get(row, "id"))?;
                        let mut fields = Fields::new();
                        fields.insert("code".into(), rpc::text(get(row, "code")));
                        fields.insert("name".into(), rpc::text(get(row, "name")));
                        fields.insert("listPrice".into(), rpc::text(get(row, "list_price_used")));
                        fields.insert("currency".into(), currency.clone());
                        let unit = row.get("default_uom.").and_then(|u| u.get("name")).and_then(rpc::text);
                        fields.insert("unit".into(), unit);
                        fields.insert("productType".into(), rpc::text(get(row, "type")));
                        fields.insert("salable".into(), Some(rpc::flag(get(row, "salable")).to_string()));
                        fields.insert("active".into(), Some(rpc::flag(get(row, "active")).to_string()));
                        Some(ErpRecord { id: id.to_string(), fields })
                    })
                    .collect();
                Ok(Changes { records, position, done })
            }
            Stream::Parties => {
                let (rows, position, done) =
                    self.page("party.party", json!([]), position, rewind, limit, &["name", "active"])?;
                Ok(Changes { records: self.parties(rows, true)?, position, done })
            }
            Stream::Sales => {
                let (rows, position, done) = self.page(
                    "sale.sale",
                    json!(["reference", "like", "kith:deal:%"]),
                    position,
                    rewind,
                    limit,
                    &["number", "state", "reference"],
                )?;
                let records = rows
                    .iter()
                    .filter_map(|row| {
                        let sale = Tryton::sale(row)?;
                        let mut fields = Fields::new();
                        fields.insert("key".into(), rpc::text(get(row, "reference")));
                        fields.insert("number".into(), sale.number);
                        fields.insert("state".into(), Some(sale.state));
                        Some(ErpRecord { id: sale.id, fields })
                    })
                    .collect();
                Ok(Changes { records, position, done })
            }
            Stream::Invoices => {
                let (rows, position, done) = self.page(
                    "account.invoice",
                    json!(["type", "=", "out"]),
                    position,
                    rewind,
                    limit,
                    &[
                        "number",
                        "party",
                        "invoice_date",
                        "total_amount",
                        "amount_to_pay",
                        "state",
                        "reference",
                        "currency.code",
                    ],
                )?;
                let records = rows
                    .iter()
                    .filter_map(|row| {
                        let id = id_of(get(row, "id"))?;
                        let state = invoice_state(get(row, "state").as_str().unwrap_or("draft"));
                        let mut fields = Fields::new();
                        fields.insert("party".into(), id_of(get(row, "party")).map(|p| p.to_string()));
                        fields.insert("number".into(), rpc::text(get(row, "number")));
                        fields.insert("invoiceDate".into(), rpc::text(get(row, "invoice_date")));
                        fields.insert("total".into(), rpc::text(get(row, "total_amount")));
                        let due = match state {
                            "POSTED" => rpc::text(get(row, "amount_to_pay")),
                            _ => Some("0".into()),
                        };
                        fields.insert("amountDue".into(), due);
                        let currency = row.get("currency.").and_then(|c| c.get("code")).and_then(rpc::text);
                        fields.insert("currency".into(), currency);
                        fields.insert("state".into(), Some(state.into()));
                        fields.insert("reference".into(), rpc::text(get(row, "reference")));
                        Some(ErpRecord { id: id.to_string(), fields })
                    })
                    .collect();
                Ok(Changes { records, position, done })
            }
        }
    }

    fn requests(&self) -> u64 {
        self.client.requests
    }
}

impl Tryton {
    /// The organisation's currency code (product prices are in it).
    fn company_currency(&mut self) -> SyncResult<Option<String>> {
        let rows = self.search_read("company.company", json!([]), Some(1), Json::Null, &["currency.code"])?;
        Ok(rows.first().and_then(|r| r.get("currency.")).and_then(|c| c.get("code")).and_then(rpc::text))
    }
}

/// Whether a party record from a pull is one Kith must never import.
pub(crate) fn is_internal(record: &ErpRecord) -> bool {
    record.get("internal") == Some("true")
}

/// A decimal from Tryton's text (0 when empty).
pub(crate) fn amount(text: Option<&str>) -> Decimal {
    text.and_then(|t| t.parse().ok()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tryton_values_round_trip_as_text() {
        assert_eq!(rpc::text(&rpc::decimal(Decimal::new(12500, 2))).as_deref(), Some("125"));
        let day = json!({"__class__": "date", "year": 2026, "month": 12, "day": 7});
        assert_eq!(rpc::text(&day).as_deref(), Some("2026-12-07"));
        let at = rpc::datetime("2026-12-07T15:34:23.196762Z").unwrap();
        assert_eq!(rpc::text(&at).as_deref(), Some("2026-12-07T15:34:23.196762Z"));
        assert_eq!(rpc::text(&json!(false)), None);
        assert_eq!(rpc::text(&json!("  ")), None);
        assert!(rpc::flag(&json!(1)) && rpc::flag(&json!(true)) && !rpc::flag(&json!(0)));
        assert_eq!(rpc::base64(b"admin:1:abc"), "YWRtaW46MTphYmM=");
        assert_eq!(rpc::base64(b"ab"), "YWI=");
    }

    #[test]
    fn websites_are_compared_as_kith_keeps_domains() {
        assert_eq!(website_domain("https://www.Example.org/about"), "example.org");
        assert_eq!(website_domain("example.org"), "example.org");
    }

    #[test]
    fn invoice_states_map_to_kith() {
        assert_eq!(invoice_state("posted"), "POSTED");
        assert_eq!(invoice_state("paid"), "PAID");
        assert_eq!(invoice_state("draft"), "DRAFT");
    }
}
