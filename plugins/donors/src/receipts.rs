//! Year-end receipts: one sequentially numbered receipt per donor and year, listing the year's
//! received gifts, kept as a `receipt` record and as an activity on the donor. Idempotent: the
//! receipt's key (YEAR:CONTACT) is unique, so a donor is never receipted twice for a year, and a
//! run cut short is completed by the next one.

use std::collections::BTreeMap;

use kith_plugin_sdk::{Error, ErrorCode, Record, Result, kv, records, settings};
use rust_decimal::Decimal;
use serde_json::{Value as Json, json};

use crate::util::{Date, all, base_currency, decimal, decimal_text, money};

/// `issueYearEndReceipts(year, first)`.
pub(crate) fn issue(arguments: &Json) -> Result<Json> {
    let year = match arguments.get("year").and_then(Json::as_i64) {
        Some(year) if (1900..=2999).contains(&year) => year as i32,
        _ => return Err(Error::invalid("year", "a year between 1900 and 2999")),
    };
    if year >= Date::today().year {
        return Err(Error::invalid("year", "receipts are issued once a year is over"));
    }
    let first = match arguments.get("first").and_then(Json::as_i64) {
        None => 200,
        Some(n) if (1..=1_000).contains(&n) => n as usize,
        Some(_) => return Err(Error::invalid("first", "between 1 and 1000")),
    };
    let currency = base_currency()?;
    let prefix: String = settings::get("receipt_prefix")?.unwrap_or_else(|| "R".into());
    let range = json!({"gte": Date::new_year(year).to_string(), "lt": Date::new_year(year + 1).to_string()});
    let eligible = json!({
        "status": {"eq": "RECEIVED"}, "amountCurrency": {"eq": currency}, "contactId": {"isNull": false}, "receivedDate": range,
    });
    let donors = kith_plugin_sdk::aggregate::run(
        "donation",
        &kith_plugin_sdk::aggregate::Aggregate::new()
            .filter(eligible.clone())
            .group_by("contactId")
            .count()
            .sum("amount")
            .limit(100_000),
    )?;
    let existing: BTreeMap<String, Record> = all("receipt", json!({"year": {"eq": year}}), 1_000_000)?
        .into_iter()
        .filter_map(|r| Some((r.str("contactId")?.to_owned(), r)))
        .collect();
    // Numbers are never reused: the next follows the highest ever issued for the year (kept in
    // the key-value store, since deleted receipts are not listed) and the live ones.
    let counter = format!("receipt-seq:{year}");
    let highest_live =
        existing.values().filter_map(|r| r.str("number")?.rsplit('-').next()?.parse::<usize>().ok()).max().unwrap_or(0);
    let mut next_number = kv::get_json::<usize>(&counter)?.unwrap_or(0).max(highest_live) + 1;
    let mut issued = Vec::new();
    let mut already = 0;
    let mut remaining = 0;
    for row in &donors {
        let Some(contact) = row.key(0) else { continue };
        if existing.get(contact).is_some_and(|receipt| receipt.str("activityId").is_some()) {
            already += 1;
            continue;
        }
        if issued.len() >= first {
            remaining += 1;
            continue;
        }
        let receipt = match existing.get(contact) {
            // Cut short last time: finish it.
            Some(receipt) => receipt.clone(),
            None => {
                let number = format!("{prefix}-{year}-{next_number:06}");
                kv::set_json(&counter, &next_number)?;
                next_number += 1;
                let created = records::create(
                    "receipt",
                    &json!({
                        "key": format!("{year}:{contact}"), "number": number, "contactId": contact, "year": year,
                        "total": money(decimal_text(row.value(1))), "totalCurrency": currency, "gifts": row.int(0).unwrap_or(0),
                    }),
                );
                match created {
                    Ok(receipt) => receipt,
                    Err(err) if err.code == ErrorCode::Conflict => {
                        return Err(Error::new(
                            ErrorCode::Conflict,
                            "another receipt run is under way; try again when it is done",
                        ));
                    }
                    Err(err) => return Err(err),
                }
            }
        };
        finish(&receipt, contact, year, &eligible)?;
        issued.push(receipt.str("number").unwrap_or("").to_owned());
    }
    Ok(
        json!({"year": year, "issued": issued.len(), "alreadyIssued": already, "remaining": remaining, "receiptNumbers": issued}),
    )
}

/// Writes the receipt's text and activity and marks its gifts.
fn finish(receipt: &Record, contact: &str, year: i32, eligible: &Json) -> Result<()> {
    let number = receipt.str("number").unwrap_or("");
    let mut filter = eligible.clone();
    filter["contactId"] = json!({"eq": contact});
    let mut gifts = all("donation", filter, 10_000)?;
    gifts.sort_by(|a, b| a.str("receivedDate").cmp(&b.str("receivedDate")).then_with(|| a.id.cmp(&b.id)));
    let donor = records::get("contact", contact)?;
    let name = donor
        .as_ref()
        .map(|c| format!("{} {}", c.str("firstName").unwrap_or(""), c.str("lastName").unwrap_or("")).trim().to_owned())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "Donor".into());
    let currency = receipt.str("totalCurrency").unwrap_or("");
    let mut total = Decimal::ZERO;
    let mut text = format!("Receipt {number}\nDonor: {name}\nGifts received in {year}:\n");
    for gift in &gifts {
        let amount = decimal(gift.fields.get("amount")).unwrap_or_default();
        total += amount;
        text.push_str(&format!("  {}  {} {currency}\n", gift.str("receivedDate").unwrap_or("?"), amount.normalize()));
    }
    text.push_str(&format!("Total: {} {currency}\nThank you for your support.\n", total.normalize()));
    let activity = records::create(
        "activity",
        &json!({"kind": "NOTE", "subject": format!("Year-end receipt {number} ({year})"), "body": text, "contactId": contact}),
    )?;
    let issued_at = kith_plugin_sdk::now();
    for gift in &gifts {
        if gift.str("receiptNumber").is_none() {
            records::update(
                "donation",
                &gift.id,
                &json!({"receiptNumber": number, "receiptIssuedAt": issued_at}),
                Some(gift.version),
            )?;
        }
    }
    records::update(
        "receipt",
        &receipt.id,
        &json!({"activityId": activity.id, "text": text, "total": money(total), "gifts": gifts.len()}),
        Some(receipt.version),
    )?;
    Ok(())
}
