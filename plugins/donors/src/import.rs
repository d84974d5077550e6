//! `importDonations(csv)`: gifts from a spreadsheet. Donors are found by e-mail, funds and
//! campaigns by name (created when missing); a gift in another currency takes its `rate` column
//! or the rates table's rate. A bad row (a foreign gift with no rate among them) is reported
//! with its line and reason and never stops the others.

use std::collections::BTreeMap;

use kith_plugin_sdk::{Error, Result, records};
use rust_decimal::Decimal;
use serde_json::{Value as Json, json};

use crate::util::{Date, base_currency, first, money};

/// Most rows one call imports (split larger files).
pub(crate) const MAX_ROWS: usize = 5_000;

const METHODS: &[&str] = &["CASH", "CHECK", "CARD", "BANK_TRANSFER", "DIRECT_DEBIT", "ONLINE", "OTHER"];
const STATUSES: &[&str] = &["PLEDGED", "RECEIVED", "REFUNDED", "FAILED"];

fn column(headers: &[String], names: &[&str]) -> Option<usize> {
    headers.iter().position(|h| names.iter().any(|n| h.eq_ignore_ascii_case(n)))
}

/// Finds (or creates) a fund or campaign by name, remembering it for the rest of the file.
fn named(object: &str, name: &str, cache: &mut BTreeMap<(String, String), String>) -> Result<String> {
    let key = (object.to_owned(), name.to_owned());
    if let Some(id) = cache.get(&key) {
        return Ok(id.clone());
    }
    let id = match first(object, json!({"name": {"eq": name}}))? {
        Some(record) => record.id,
        None => records::create(object, &json!({"name": name}))?.id,
    };
    cache.insert(key, id.clone());
    Ok(id)
}

/// Imports `csv`.
pub(crate) fn import(arguments: &Json) -> Result<Json> {
    // Files saved on Windows end lines with CRLF, after which the csv crate's positions trail
    // by a line: read them with LF only, so every reported line is the file's.
    let text = arguments.get("csv").and_then(Json::as_str).unwrap_or_default().replace("\r\n", "\n");
    let mut reader = csv::ReaderBuilder::new().flexible(true).trim(csv::Trim::All).from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| Error::invalid("csv", format!("cannot read the header line: {e}")))?
        .iter()
        .map(str::to_owned)
        .collect();
    let col = |names: &[&str]| column(&headers, names);
    let (Some(email_col), Some(amount_col)) = (col(&["email", "e-mail", "donor email"]), col(&["amount"])) else {
        return Err(Error::invalid("csv", "the header needs at least `email` and `amount` columns"));
    };
    let currency_col = col(&["currency"]);
    let rate_col = col(&["rate", "exchange rate", "exchangeRate", "exchange_rate"]);
    let date_col = col(&["date", "received", "receivedDate", "received date"]);
    let fund_col = col(&["fund"]);
    let campaign_col = col(&["campaign"]);
    let method_col = col(&["method", "payment method", "paymentMethod"]);
    let status_col = col(&["status"]);
    let note_col = col(&["note", "notes"]);
    let base = base_currency()?;
    let today = Date::today();
    let mut donors: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut names: BTreeMap<(String, String), String> = BTreeMap::new();
    let mut imported = 0;
    let mut rejected = Vec::new();
    // Read every row first: a file over the limit is refused before anything is written.
    let rows: Vec<_> = reader.records().take(MAX_ROWS + 1).collect();
    if rows.len() > MAX_ROWS {
        return Err(Error::invalid("csv", format!("at most {MAX_ROWS} rows per import; split the file")));
    }
    for (index, row) in rows.into_iter().enumerate() {
        // The row's first line in the file (quoted cells may span lines).
        let line = match &row {
            Ok(record) => record.position().map(|p| p.line()),
            Err(err) => err.position().map(|p| p.line()),
        }
        .unwrap_or(index as u64 + 2);
        let outcome = (|| -> std::result::Result<(), String> {
            let row = row.map_err(|e| format!("unreadable row: {e}"))?;
            let cell = |col: Option<usize>| col.and_then(|c| row.get(c)).map(str::trim).filter(|s| !s.is_empty());
            let email = cell(Some(email_col)).ok_or("no e-mail")?.to_lowercase();
            let donor = match donors.get(&email) {
                Some(found) => found.clone(),
                None => {
                    let found = first("contact", json!({"email": {"eq": email}})).map_err(|e| e.message)?.map(|c| c.id);
                    donors.insert(email.clone(), found.clone());
                    found
                }
            };
            let donor = donor.ok_or_else(|| format!("no contact with the e-mail {email}"))?;
            let amount_text = cell(Some(amount_col)).ok_or("no amount")?;
            let amount: Decimal = amount_text.parse().map_err(|_| format!("`{amount_text}` is not an amount"))?;
            if amount <= Decimal::ZERO {
                return Err("the amount must be more than 0".into());
            }
            let currency = cell(currency_col).map(str::to_ascii_uppercase).unwrap_or_else(|| base.clone());
            let date = match cell(date_col) {
                Some(text) => Date::parse(text).ok_or_else(|| format!("`{text}` is not a date (YYYY-MM-DD)"))?,
                None => today,
            };
            let status = cell(status_col).map(str::to_ascii_uppercase).unwrap_or_else(|| "RECEIVED".into());
            if !STATUSES.contains(&status.as_str()) {
                return Err(format!("`{status}` is not a status ({})", STATUSES.join(", ")));
            }
            let mut gift = json!({
                "contactId": donor, "amount": money(amount), "amountCurrency": currency,
                "receivedDate": date.to_string(), "status": status,
            });
            if let Some(rate) = cell(rate_col) {
                gift["exchangeRate"] = json!(rate);
            }
            // A gift in another currency needs its rate (the column, or the rates table),
            // checked before a fund or campaign is made for the row.
            crate::rates::complete(&mut gift, &base).map_err(|(_, reason)| reason)?;
            if let Some(method) = cell(method_col) {
                let method = method.to_ascii_uppercase().replace([' ', '-'], "_");
                if !METHODS.contains(&method.as_str()) {
                    return Err(format!("`{method}` is not a payment method ({})", METHODS.join(", ")));
                }
                gift["paymentMethod"] = json!(method);
            }
            if let Some(fund) = cell(fund_col) {
                gift["fundId"] = json!(named("fund", fund, &mut names).map_err(|e| e.message)?);
            }
            if let Some(campaign) = cell(campaign_col) {
                gift["campaignId"] = json!(named("campaign", campaign, &mut names).map_err(|e| e.message)?);
            }
            if let Some(note) = cell(note_col) {
                gift["note"] = json!(note);
            }
            records::create("donation", &gift).map_err(|e| e.message)?;
            Ok(())
        })();
        match outcome {
            Ok(()) => imported += 1,
            Err(reason) => rejected.push(json!({"line": line, "reason": reason})),
        }
    }
    Ok(json!({"imported": imported, "rejected": rejected}))
}
