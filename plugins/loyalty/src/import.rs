//! `importLoyaltyMembers(csv)`: members from a spreadsheet (a programme moving from another
//! system). Contacts are found by e-mail; a row may carry an opening balance (an ADJUST entry
//! whose key names the programme and contact, so importing the file again adds nothing) and the
//! referral code of who referred them. A bad row is reported with its line and reason and never
//! stops the others.

use kith_plugin_sdk::{Error, Result};
use serde_json::{Value as Json, json};

use crate::ledger::{self, Debit, Draft};
use crate::members;
use crate::util;

/// Most rows one call imports (split larger files).
pub(crate) const MAX_ROWS: usize = 5_000;

fn column(headers: &[String], names: &[&str]) -> Option<usize> {
    headers.iter().position(|h| names.iter().any(|n| h.eq_ignore_ascii_case(n)))
}

/// Imports `csv` into the programme `programmeId` names (or the only one).
pub(crate) fn import(arguments: &Json, caller: &str) -> Result<Json> {
    let programme = members::programme_arg(arguments)?;
    let text = arguments.get("csv").and_then(Json::as_str).unwrap_or_default().replace("\r\n", "\n");
    let mut reader = csv::ReaderBuilder::new().flexible(true).trim(csv::Trim::All).from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| Error::invalid("csv", format!("cannot read the header line: {e}")))?
        .iter()
        .map(str::to_owned)
        .collect();
    let Some(email_col) = column(&headers, &["email", "e-mail"]) else {
        return Err(Error::invalid("csv", "the header needs an `email` column"));
    };
    let points_col = column(&headers, &["points", "balance", "opening balance"]);
    let referral_col = column(&headers, &["referralCode", "referral code", "referred by"]);
    let rows: Vec<_> = reader.records().take(MAX_ROWS + 1).collect();
    if rows.len() > MAX_ROWS {
        return Err(Error::invalid("csv", format!("at most {MAX_ROWS} rows per import; split the file")));
    }
    let (mut imported, mut rejected) = (0, Vec::new());
    for (index, row) in rows.into_iter().enumerate() {
        let line = match &row {
            Ok(record) => record.position().map(|p| p.line()),
            Err(err) => err.position().map(|p| p.line()),
        }
        .unwrap_or(index as u64 + 2);
        let outcome = (|| -> std::result::Result<(), String> {
            let row = row.map_err(|e| format!("not a CSV row: {e}"))?;
            let cell = |col: Option<usize>| col.and_then(|c| row.get(c)).map(str::trim).filter(|v| !v.is_empty());
            let email = cell(Some(email_col)).ok_or("no e-mail")?.to_lowercase();
            let points = match cell(points_col) {
                None => 0,
                Some(text) => text
                    .replace([',', ' ', '_'], "")
                    .parse::<i64>()
                    .ok()
                    .filter(|p| (0..=100_000_000).contains(p))
                    .ok_or_else(|| format!("points `{text}` is not a whole number from 0"))?,
            };
            let contact = util::first("contact", json!({"email": email})).map_err(|e| e.message)?;
            let contact = contact.ok_or_else(|| format!("no contact has the e-mail {email}"))?;
            let member = members::enrol(&programme, &contact.id, cell(referral_col)).map_err(|e| e.message)?;
            if points > 0 {
                let key = format!("import:{}:{}", programme.id, contact.id);
                let draft =
                    Draft::new("ADJUST", points, key, "opening balance (import)".into(), caller).earning(&programme);
                ledger::post_as(&member, &draft, Debit::Exact).map_err(|e| e.message)?;
            }
            Ok(())
        })();
        match outcome {
            Ok(()) => imported += 1,
            Err(reason) => rejected.push(json!({"line": line, "reason": reason})),
        }
    }
    Ok(json!({"imported": imported, "rejected": rejected}))
}
