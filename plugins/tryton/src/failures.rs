//! Records that failed to synchronise (`erpSyncError`), one per record: retried with backoff by
//! the `sync` job (1, 2, 4 ... minutes, at most an hour apart, given up after 20 attempts or
//! at once for an error a retry cannot fix), and by hand with `retrySync`.

use kith_plugin_sdk::{Record, Result, records};
use serde_json::json;

use crate::engine::SyncError;
use crate::links::Kind;
use crate::util;

/// Attempts before a retryable failure is given up (`FAILED`).
pub(crate) const MAX_ATTEMPTS: i64 = 20;

fn key(kind: Kind, kith_id: &str) -> String {
    format!("{}:{kith_id}", kind.label())
}

/// The delay before attempt `attempts + 1`.
pub(crate) fn backoff_seconds(attempts: i64) -> i64 {
    let exponent = u32::try_from(attempts.clamp(1, 7) - 1).unwrap_or(0);
    (60_i64 << exponent).min(3600)
}

/// Records a failure of a record's sync (another attempt of one already listed).
pub(crate) fn record(kind: Kind, kith_id: &str, err: &SyncError) -> Result<()> {
    let existing = util::find("erpSyncError", "errorKey", &key(kind, kith_id))?;
    let attempts =
        existing.as_ref().and_then(|e| e.fields.get("attempts")).and_then(serde_json::Value::as_i64).unwrap_or(0) + 1;
    let gave_up = !err.retryable || attempts >= MAX_ATTEMPTS;
    let fields = json!({
        "kind": kind.label(),
        "kithId": kith_id,
        "errorKey": key(kind, kith_id),
        "message": err.message.chars().take(2000).collect::<String>(),
        "attempts": attempts,
        "lastAttemptAt": util::now(),
        "nextAttemptAt": if gave_up { None } else { Some(util::later(backoff_seconds(attempts))) },
        "status": if gave_up { "FAILED" } else { "PENDING" },
    });
    kith_plugin_sdk::log::warn(&format!("{} {kith_id} did not synchronise: {}", kind.label(), err.message));
    match existing {
        Some(record) => records::update("erpSyncError", &record.id, &fields, None).map(|_| ()),
        None => records::create("erpSyncError", &fields).map(|_| ()),
    }
}

/// A record went through: its failure, if listed, is resolved.
pub(crate) fn resolve(kind: Kind, kith_id: &str) -> Result<()> {
    if let Some(record) = util::find("erpSyncError", "errorKey", &key(kind, kith_id))?
        && record.str("status") != Some("RESOLVED")
    {
        records::update("erpSyncError", &record.id, &json!({"status": "RESOLVED", "nextAttemptAt": null}), None)?;
    }
    Ok(())
}

/// Pending failures due now, oldest first.
pub(crate) fn due(limit: u32) -> Result<Vec<Record>> {
    let query = kith_plugin_sdk::Query::new()
        .filter(json!({"status": {"eq": "PENDING"}, "nextAttemptAt": {"lte": util::now()}}))
        .order_by(json!([{"field": "nextAttemptAt", "direction": "ASC"}]))
        .first(limit);
    Ok(records::query("erpSyncError", &query)?.records)
}
