//! Year-end receipts: one sequentially numbered receipt per donor and year, listing the year's
//! received gifts, kept as a `receipt` record and as an activity on the donor. A donor is a
//! contact, or a company for gifts without a contact. Totals are in the organisation's
//! currency; a gift in another currency is listed with its amount, rate and value. Idempotent:
//! the receipt's key (YEAR:CONTACT, YEAR:company:COMPANY) is unique, so a donor is never
//! receipted twice for a year, and a run cut short is completed by the next one.

use std::collections::BTreeMap;

use kith_plugin_sdk::aggregate::Aggregate;
use kith_plugin_sdk::{Error, ErrorCode, Record, Result, kv, records, settings};
use rust_decimal::Decimal;
use serde_json::{Value as Json, json};

use crate::counted::Counted;
use crate::util::{Date, all, decimal, decimal_text, money};

/// Who a receipt is for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Donor {
    Contact(String),
    Company(String),
}

impl Donor {
    /// The donor of a gift or receipt: its contact, else its company.
    pub(crate) fn of(record: &Record) -> Option<Donor> {
        match (record.str("contactId"), record.str("companyId")) {
            (Some(contact), _) => Some(Donor::Contact(contact.to_owned())),
            (None, Some(company)) => Some(Donor::Company(company.to_owned())),
            (None, None) => None,
        }
    }

    fn object(&self) -> &'static str {
        match self {
            Donor::Contact(_) => "contact",
            Donor::Company(_) => "company",
        }
    }

    fn id(&self) -> &str {
        match self {
            Donor::Contact(id) | Donor::Company(id) => id,
        }
    }

    /// The receipt's key: a contact's stays as receipts before 1.2.0 had it.
    fn key(&self, year: i32) -> String {
        match self {
            Donor::Contact(id) => format!("{year}:{id}"),
            Donor::Company(id) => format!("{year}:company:{id}"),
        }
    }

    /// The donor's gifts among counted gifts: a company's are those without a contact.
    fn gifts(&self) -> Json {
        match self {
            Donor::Contact(id) => json!({"contactId": {"eq": id}}),
            Donor::Company(id) => json!({"companyId": {"eq": id}, "contactId": {"isNull": true}}),
        }
    }

    /// The name on the receipt.
    fn name(&self, record: &Record) -> String {
        let name = match self {
            Donor::Contact(_) => {
                format!("{} {}", record.str("firstName").unwrap_or(""), record.str("lastName").unwrap_or(""))
            }
            Donor::Company(_) => record.str("name").unwrap_or("").to_owned(),
        };
        let name = name.trim();
        if name.is_empty() { "Donor".into() } else { name.to_owned() }
    }
}

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
    let counted = Counted::new()?;
    let prefix: String = settings::get("receipt_prefix")?.unwrap_or_else(|| "R".into());
    let in_year =
        json!({"receivedDate": {"gte": Date::new_year(year).to_string(), "lt": Date::new_year(year + 1).to_string()}});
    let rows = counted.aggregate(in_year.clone(), |amount| {
        Aggregate::new().group_by("contactId").group_by("companyId").count().sum(amount).limit(100_000)
    })?;
    let mut donors: BTreeMap<Donor, (i64, Decimal)> = BTreeMap::new();
    for row in &rows {
        let donor = match (row.key(0), row.key(1)) {
            (Some(contact), _) => Donor::Contact(contact.to_owned()),
            (None, Some(company)) => Donor::Company(company.to_owned()),
            (None, None) => continue,
        };
        let entry = donors.entry(donor).or_default();
        entry.0 += row.int(0).unwrap_or(0);
        entry.1 += decimal_text(row.value(1));
    }
    let existing: BTreeMap<Donor, Record> = all("receipt", json!({"year": {"eq": year}}), 1_000_000)?
        .into_iter()
        .filter_map(|r| Some((Donor::of(&r)?, r)))
        .collect();
    // Numbers are never reused: the next follows the highest ever issued for the year (kept in
    // the key-value store, since deleted receipts are not listed) and the live ones.
    let counter = format!("receipt-seq:{year}");
    let highest_live =
        existing.values().filter_map(|r| r.str("number")?.rsplit('-').next()?.parse::<usize>().ok()).max().unwrap_or(0);
    let mut next_number = kv::get_json::<usize>(&counter)?.unwrap_or(0).max(highest_live) + 1;
    let mut issued = Vec::new();
    let (mut already, mut remaining, mut skipped) = (0, 0, 0);
    for (donor, (gifts, total)) in &donors {
        if existing.get(donor).is_some_and(|receipt| receipt.str("activityId").is_some()) {
            already += 1;
            continue;
        }
        if issued.len() >= first {
            remaining += 1;
            continue;
        }
        // A deleted donor gets no receipt: there is no one to send it to (a merged duplicate's
        // gifts are receipted to the contact it was merged into).
        let Some(record) = records::get(donor.object(), donor.id())? else {
            skipped += 1;
            continue;
        };
        let receipt = match existing.get(donor) {
            // Cut short last time: finish it.
            Some(receipt) => receipt.clone(),
            None => {
                let number = format!("{prefix}-{year}-{next_number:06}");
                kv::set_json(&counter, &next_number)?;
                next_number += 1;
                let mut fields = json!({
                    "key": donor.key(year), "number": number, "year": year,
                    "total": money(*total), "totalCurrency": counted.org, "gifts": gifts,
                });
                fields[format!("{}Id", donor.object())] = json!(donor.id());
                match records::create("receipt", &fields) {
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
        finish(&counted, &receipt, donor, &record, year, &in_year)?;
        issued.push(receipt.str("number").unwrap_or("").to_owned());
    }
    Ok(json!({
        "year": year, "issued": issued.len(), "alreadyIssued": already, "remaining": remaining, "skipped": skipped,
        "receiptNumbers": issued,
    }))
}

/// Writes the receipt's text and activity and marks its gifts.
fn finish(
    counted: &Counted,
    receipt: &Record,
    donor: &Donor,
    record: &Record,
    year: i32,
    in_year: &Json,
) -> Result<()> {
    let number = receipt.str("number").unwrap_or("");
    let filter = counted.filter(json!({"and": [in_year, donor.gifts()]}));
    let mut gifts = all("donation", filter, 10_000)?;
    gifts.sort_by(|a, b| a.str("receivedDate").cmp(&b.str("receivedDate")).then_with(|| a.id.cmp(&b.id)));
    let currency = counted.org.as_str();
    let mut total = Decimal::ZERO;
    let mut text = format!("Receipt {number}\nDonor: {}\nGifts received in {year}:\n", donor.name(record));
    for gift in &gifts {
        let Some(value) = counted.value(&gift.fields) else { continue };
        total += value;
        let date = gift.str("receivedDate").unwrap_or("?");
        let original = gift.str("amountCurrency").unwrap_or(currency);
        if original == currency {
            text.push_str(&format!("  {date}  {} {currency}\n", value.normalize()));
        } else {
            // The gift as given, and what it is worth in the organisation's currency.
            let amount = decimal(gift.fields.get("amount")).unwrap_or_default().normalize();
            let rate = gift.str("exchangeRate").unwrap_or("?");
            text.push_str(&format!("  {date}  {} {currency} ({amount} {original} at {rate})\n", value.normalize()));
        }
    }
    text.push_str(&format!("Total: {} {currency}\nThank you for your support.\n", total.normalize()));
    let mut activity = json!({"kind": "NOTE", "subject": format!("Year-end receipt {number} ({year})"), "body": text});
    activity[format!("{}Id", donor.object())] = json!(donor.id());
    let activity = records::create("activity", &activity)?;
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
