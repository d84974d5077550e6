//! `donorPrivacyExport(contactId)`: what the plugin holds about a person beyond its records,
//! for a subject access request (the records themselves, gifts, soft credits, household
//! memberships, are exported with every plugin's records): their year-end receipts as issued,
//! what its key-value store remembers about their gifts (the thank-you task made for each), and
//! the donor summary it computes about them (a level and a retention status are profiling).

use kith_plugin_sdk::{Error, ErrorCode, Record, Result, kv};
use serde_json::{Value as Json, json};

use crate::util::all;

/// Most gifts and receipts of one person read (far above any donor's).
const MOST: usize = 100_000;

/// `donorPrivacyExport(contactId)`.
pub(crate) fn export(arguments: &Json) -> Result<Json> {
    let id = arguments.get("contactId").and_then(Json::as_str).unwrap_or_default();
    // The person may be deleted (their records are still held): read by id, not via the contact.
    let read = |object: &str| {
        all(object, json!({"contactId": {"eq": id}}), MOST).map_err(|err| match err.code {
            ErrorCode::InvalidInput => Error::invalid("contactId", err.message),
            _ => err,
        })
    };
    let gifts = read("donation")?;
    let receipts: Vec<Json> = read("receipt")?
        .iter()
        .map(|receipt| {
            let number = receipt.str("number");
            let covered: Vec<&str> = gifts
                .iter()
                .filter(|g| g.str("receiptNumber").is_some() && g.str("receiptNumber") == number)
                .map(|g| g.id.as_str())
                .collect();
            json!({
                "id": receipt.id,
                "number": number,
                "year": receipt.fields.get("year"),
                "total": receipt.fields.get("total"),
                "currency": receipt.fields.get("totalCurrency"),
                "gifts": receipt.fields.get("gifts"),
                "donationIds": covered,
                "issuedAt": receipt.fields.get("createdAt"),
                "activityId": receipt.fields.get("activityId"),
                "text": receipt.fields.get("text"),
            })
        })
        .collect();
    let mut key_value = Vec::new();
    for gift in &gifts {
        let key = format!("thanked:{}", gift.id);
        if let Some(value) = kv::get(&key)? {
            key_value.push(json!({
                "key": key,
                "value": String::from_utf8_lossy(&value),
                "meaning": "the thank-you task (an activity id) created for this person's gift",
                "donationId": gift.id,
            }));
        }
    }
    let summary = crate::summary::donor_summaries(std::slice::from_ref(&id.to_owned()))?.pop().unwrap_or(Json::Null);
    Ok(json!({
        "plugin": "donors",
        "contactId": id,
        "receipts": receipts,
        "keyValue": key_value,
        "computed": {"donorSummary": summary},
        "records": records_note(&gifts),
    }))
}

/// Where the person's records are: counted here, exported with the plugin's objects.
fn records_note(gifts: &[Record]) -> Json {
    json!({"donations": gifts.len(), "note": "gifts, soft credits and household memberships are the plugin's records, exported with them"})
}
