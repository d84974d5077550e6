//! Plugin bookkeeping: installed plugins and their grants, component bytes, per-plugin
//! key–value stores, delivery cursors (with a lease so that one process at a time delivers to a
//! plugin) and dead letters.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbBackend, QueryResult, Statement, Value as DbValue};
use serde_json::Value as Json;
use uuid::Uuid;

use crate::domain::value::{FieldKind, Value};
use crate::error::{Error, Result};
use crate::store::codec::{decode, encode, encode_json};

/// Writes `?` placeholders as `$n` on PostgreSQL.
fn sql(backend: DbBackend, text: &str) -> String {
    if backend != DbBackend::Postgres {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len() + 8);
    let mut n = 0;
    for c in text.chars() {
        if c == '?' {
            n += 1;
            out.push_str(&format!("${n}"));
        } else {
            out.push(c);
        }
    }
    out
}

/// A statement written with `?` placeholders, for either backend.
pub(crate) fn stmt(backend: DbBackend, text: &str, values: Vec<DbValue>) -> Statement {
    Statement::from_sql_and_values(backend, sql(backend, text), values)
}

fn ts(backend: DbBackend, at: DateTime<Utc>) -> Result<DbValue> {
    encode(backend, &FieldKind::DateTime, &Value::DateTime(at))
}

fn json_col(backend: DbBackend, row: &QueryResult, idx: usize) -> Result<Json> {
    Ok(match decode(backend, &FieldKind::Json, row, idx)? {
        Value::Json(json) => json,
        _ => Json::Null,
    })
}

/// An installed plugin as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginRow {
    /// The manifest id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// The SDK version recorded in its component.
    pub sdk_version: String,
    /// The `plugin.toml` text.
    pub manifest: String,
    /// SHA-256 of the component.
    pub component_hash: String,
    /// Whether it runs.
    pub enabled: bool,
    /// The capabilities the admin granted.
    pub grants: Vec<String>,
    /// Stored setting values (secrets included: never shown).
    pub settings: Json,
    /// `active`, `disabled` or `suspended`.
    pub status: String,
    /// The last failure.
    pub last_error: Option<String>,
    /// Failures since the last success.
    pub consecutive_failures: i64,
    /// Events handled.
    pub delivered: i64,
    /// Failed calls (events and hooks).
    pub failures: i64,
    /// Events given up on.
    pub dead_letters: i64,
    /// Host calls refused for a missing grant.
    pub denied_calls: i64,
    /// Grows on every change.
    pub generation: i64,
    /// When it was installed.
    pub installed_at: Value,
    /// When it last changed.
    pub updated_at: Value,
}

const COLUMNS: &str = "id, name, version, sdk_version, manifest, component_hash, enabled, grants, settings, status, \
     last_error, consecutive_failures, delivered, failures, dead_letters, denied_calls, generation, installed_at, \
     updated_at";

fn row_to_plugin(backend: DbBackend, row: &QueryResult) -> Result<PluginRow> {
    let grants = json_col(backend, row, 7)?;
    Ok(PluginRow {
        id: row.try_get_by_index(0)?,
        name: row.try_get_by_index(1)?,
        version: row.try_get_by_index(2)?,
        sdk_version: row.try_get_by_index(3)?,
        manifest: row.try_get_by_index(4)?,
        component_hash: row.try_get_by_index(5)?,
        enabled: row.try_get_by_index(6)?,
        grants: serde_json::from_value(grants).map_err(|e| Error::internal(format!("plugin grants: {e}")))?,
        settings: json_col(backend, row, 8)?,
        status: row.try_get_by_index(9)?,
        last_error: row.try_get_by_index(10)?,
        consecutive_failures: row.try_get_by_index(11)?,
        delivered: row.try_get_by_index(12)?,
        failures: row.try_get_by_index(13)?,
        dead_letters: row.try_get_by_index(14)?,
        denied_calls: row.try_get_by_index(15)?,
        generation: row.try_get_by_index(16)?,
        installed_at: decode(backend, &FieldKind::DateTime, row, 17)?,
        updated_at: decode(backend, &FieldKind::DateTime, row, 18)?,
    })
}

/// Every installed plugin, by id.
pub async fn list<C: ConnectionTrait>(db: &C) -> Result<Vec<PluginRow>> {
    let backend = db.get_database_backend();
    let rows = db.query_all_raw(stmt(backend, &format!("SELECT {COLUMNS} FROM plugin ORDER BY id"), vec![])).await?;
    rows.iter().map(|row| row_to_plugin(backend, row)).collect()
}

/// One plugin.
pub async fn get<C: ConnectionTrait>(db: &C, id: &str) -> Result<Option<PluginRow>> {
    let backend = db.get_database_backend();
    let row =
        db.query_one_raw(stmt(backend, &format!("SELECT {COLUMNS} FROM plugin WHERE id = ?"), vec![id.into()])).await?;
    row.map(|row| row_to_plugin(backend, &row)).transpose()
}

/// Stores component bytes under their hash (once).
pub async fn put_component<C: ConnectionTrait>(db: &C, hash: &str, bytes: &[u8], now: DateTime<Utc>) -> Result<()> {
    let backend = db.get_database_backend();
    let exists = db
        .query_one_raw(stmt(backend, "SELECT 1 FROM plugin_component WHERE hash = ?", vec![hash.into()]))
        .await?
        .is_some();
    if !exists {
        db.execute_raw(stmt(
            backend,
            "INSERT INTO plugin_component (hash, bytes, created_at) VALUES (?, ?, ?)",
            vec![hash.into(), DbValue::Bytes(Some(bytes.to_vec())), ts(backend, now)?],
        ))
        .await?;
    }
    Ok(())
}

/// The bytes of a stored component.
pub async fn component<C: ConnectionTrait>(db: &C, hash: &str) -> Result<Option<Vec<u8>>> {
    let backend = db.get_database_backend();
    let row =
        db.query_one_raw(stmt(backend, "SELECT bytes FROM plugin_component WHERE hash = ?", vec![hash.into()])).await?;
    Ok(match row {
        Some(row) => Some(row.try_get_by_index::<Vec<u8>>(0)?),
        None => None,
    })
}

/// Deletes components no plugin uses any more.
pub async fn prune_components<C: ConnectionTrait>(db: &C) -> Result<()> {
    let backend = db.get_database_backend();
    db.execute_raw(stmt(
        backend,
        "DELETE FROM plugin_component WHERE hash NOT IN (SELECT component_hash FROM plugin)",
        vec![],
    ))
    .await?;
    Ok(())
}

/// Inserts a newly installed (disabled) plugin.
pub async fn insert<C: ConnectionTrait>(db: &C, row: &PluginRow, now: DateTime<Utc>) -> Result<()> {
    let backend = db.get_database_backend();
    db.execute_raw(stmt(
        backend,
        &format!("INSERT INTO plugin ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, 0, 0, 0, 1, ?, ?)"),
        vec![
            row.id.clone().into(),
            row.name.clone().into(),
            row.version.clone().into(),
            row.sdk_version.clone().into(),
            row.manifest.clone().into(),
            row.component_hash.clone().into(),
            row.enabled.into(),
            encode_json(backend, serde_json::json!(row.grants)),
            encode_json(backend, row.settings.clone()),
            row.status.clone().into(),
            DbValue::String(None),
            ts(backend, now)?,
            ts(backend, now)?,
        ],
    ))
    .await?;
    Ok(())
}

/// Replaces the version of an installed plugin (an upgrade).
pub async fn replace_version<C: ConnectionTrait>(db: &C, row: &PluginRow, now: DateTime<Utc>) -> Result<()> {
    let backend = db.get_database_backend();
    db.execute_raw(stmt(
        backend,
        "UPDATE plugin SET name = ?, version = ?, sdk_version = ?, manifest = ?, component_hash = ?, grants = ?, \
         settings = ?, generation = generation + 1, updated_at = ? WHERE id = ?",
        vec![
            row.name.clone().into(),
            row.version.clone().into(),
            row.sdk_version.clone().into(),
            row.manifest.clone().into(),
            row.component_hash.clone().into(),
            encode_json(backend, serde_json::json!(row.grants)),
            encode_json(backend, row.settings.clone()),
            ts(backend, now)?,
            row.id.clone().into(),
        ],
    ))
    .await?;
    Ok(())
}

/// Enables (with grants) or disables a plugin; enabling clears a suspension.
pub async fn set_enabled<C: ConnectionTrait>(
    db: &C,
    id: &str,
    enabled: bool,
    grants: &[String],
    now: DateTime<Utc>,
) -> Result<()> {
    let backend = db.get_database_backend();
    let status = if enabled { "active" } else { "disabled" };
    db.execute_raw(stmt(
        backend,
        "UPDATE plugin SET enabled = ?, grants = ?, status = ?, consecutive_failures = 0, \
         generation = generation + 1, updated_at = ? WHERE id = ?",
        vec![
            enabled.into(),
            encode_json(backend, serde_json::json!(grants)),
            status.into(),
            ts(backend, now)?,
            id.into(),
        ],
    ))
    .await?;
    Ok(())
}

/// Stores setting values.
pub async fn set_settings<C: ConnectionTrait>(db: &C, id: &str, settings: Json, now: DateTime<Utc>) -> Result<()> {
    let backend = db.get_database_backend();
    db.execute_raw(stmt(
        backend,
        "UPDATE plugin SET settings = ?, generation = generation + 1, updated_at = ? WHERE id = ?",
        vec![encode_json(backend, settings), ts(backend, now)?, id.into()],
    ))
    .await?;
    Ok(())
}

/// Records a failure; suspends the plugin when `suspend_after` failures in a row are reached.
/// Returns whether this failure suspended it.
pub async fn record_failure<C: ConnectionTrait>(
    db: &C,
    id: &str,
    error: &str,
    suspend_after: i64,
    now: DateTime<Utc>,
) -> Result<bool> {
    let backend = db.get_database_backend();
    let error: String = error.chars().take(2_000).collect();
    db.execute_raw(stmt(
        backend,
        "UPDATE plugin SET last_error = ?, failures = failures + 1, consecutive_failures = consecutive_failures + 1, \
         updated_at = ? WHERE id = ?",
        vec![error.into(), ts(backend, now)?, id.into()],
    ))
    .await?;
    let suspended = db
        .execute_raw(stmt(
            backend,
            "UPDATE plugin SET status = 'suspended', generation = generation + 1 \
             WHERE id = ? AND status = 'active' AND consecutive_failures >= ?",
            vec![id.into(), suspend_after.into()],
        ))
        .await?
        .rows_affected();
    Ok(suspended > 0)
}

/// Suspends an active plugin at once, with `reason` as its last error; whether it was active.
pub async fn suspend<C: ConnectionTrait>(db: &C, id: &str, reason: &str, now: DateTime<Utc>) -> Result<bool> {
    let backend = db.get_database_backend();
    let reason: String = reason.chars().take(2_000).collect();
    let n = db
        .execute_raw(stmt(
            backend,
            "UPDATE plugin SET status = 'suspended', generation = generation + 1, last_error = ?, \
             failures = failures + 1, updated_at = ? WHERE id = ? AND status = 'active'",
            vec![reason.into(), ts(backend, now)?, id.into()],
        ))
        .await?
        .rows_affected();
    Ok(n > 0)
}

/// Records successful deliveries (resets the failure streak).
pub async fn record_success<C: ConnectionTrait>(db: &C, id: &str, delivered: i64) -> Result<()> {
    let backend = db.get_database_backend();
    db.execute_raw(stmt(
        backend,
        "UPDATE plugin SET delivered = delivered + ?, consecutive_failures = 0 WHERE id = ?",
        vec![delivered.into(), id.into()],
    ))
    .await?;
    Ok(())
}

/// Counts refused host calls.
pub async fn add_denied<C: ConnectionTrait>(db: &C, id: &str, n: i64) -> Result<()> {
    let backend = db.get_database_backend();
    db.execute_raw(stmt(
        backend,
        "UPDATE plugin SET denied_calls = denied_calls + ? WHERE id = ?",
        vec![n.into(), id.into()],
    ))
    .await?;
    Ok(())
}

/// The key that signs the plugin's links (`kith:plugin/links`): made at first use (when the
/// plugin is loaded), at random, and kept in its row (the first of several processes to make
/// one wins). Reading an existing key writes nothing.
pub async fn link_key<C: ConnectionTrait>(db: &C, id: &str) -> Result<[u8; 32]> {
    use base64::Engine as _;
    let backend = db.get_database_backend();
    let engine = base64::engine::general_purpose::STANDARD;
    let read = || async {
        let row = db
            .query_one_raw(stmt(backend, "SELECT link_key FROM plugin WHERE id = ?", vec![id.into()]))
            .await?
            .ok_or_else(|| Error::internal(format!("no plugin `{id}`")))?;
        Ok::<Option<String>, Error>(row.try_get_by_index(0)?)
    };
    let mut text = read().await?;
    if text.is_none() {
        let fresh: [u8; 32] = rand::random();
        db.execute_raw(stmt(
            backend,
            "UPDATE plugin SET link_key = ? WHERE id = ? AND link_key IS NULL",
            vec![engine.encode(fresh).into(), id.into()],
        ))
        .await?;
        text = read().await?;
    }
    let bytes = text
        .and_then(|t| engine.decode(t).ok())
        .ok_or_else(|| Error::internal(format!("plugin `{id}` has no link key")))?;
    <[u8; 32]>::try_from(bytes.as_slice())
        .map_err(|_| Error::internal(format!("plugin `{id}`: a link key of the wrong size")))
}

/// Removes a plugin; with `purge`, also its key–value store and dead letters.
pub async fn delete<C: ConnectionTrait>(db: &C, id: &str, purge: bool) -> Result<()> {
    let backend = db.get_database_backend();
    db.execute_raw(stmt(backend, "DELETE FROM plugin WHERE id = ?", vec![id.into()])).await?;
    db.execute_raw(stmt(backend, "DELETE FROM plugin_delivery_part WHERE plugin_id = ?", vec![id.into()])).await?;
    if purge {
        db.execute_raw(stmt(backend, "DELETE FROM plugin_kv WHERE plugin_id = ?", vec![id.into()])).await?;
        db.execute_raw(stmt(backend, "DELETE FROM plugin_dead_letter WHERE plugin_id = ?", vec![id.into()])).await?;
    }
    Ok(())
}

// ---- key–value store -------------------------------------------------------------------------

/// A value.
pub async fn kv_get<C: ConnectionTrait>(db: &C, plugin: &str, key: &str) -> Result<Option<Vec<u8>>> {
    let backend = db.get_database_backend();
    let row = db
        .query_one_raw(stmt(
            backend,
            "SELECT value FROM plugin_kv WHERE plugin_id = ? AND key = ?",
            vec![plugin.into(), key.into()],
        ))
        .await?;
    Ok(match row {
        Some(row) => Some(row.try_get_by_index::<Vec<u8>>(0)?),
        None => None,
    })
}

/// How much a plugin's key–value store holds: keys, and bytes of keys and values together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KvUsage {
    /// Keys.
    pub keys: i64,
    /// Bytes of keys and values.
    pub bytes: i64,
}

/// Reads what a plugin's key–value store holds (one pass over its keys: `length` of a SQLite
/// blob and `octet_length` of a PostgreSQL bytea read the sizes, not the values).
pub async fn kv_usage<C: ConnectionTrait>(db: &C, plugin: &str) -> Result<KvUsage> {
    let backend = db.get_database_backend();
    let size = if backend == DbBackend::Postgres { "octet_length" } else { "length" };
    let row = db
        .query_one_raw(stmt(
            backend,
            &format!(
                "SELECT COUNT(*), CAST(COALESCE(SUM({size}(value) + {size}(key)), 0) AS BIGINT) FROM plugin_kv \
                 WHERE plugin_id = ?"
            ),
            vec![plugin.into()],
        ))
        .await?;
    Ok(match row {
        Some(row) => KvUsage { keys: row.try_get_by_index::<i64>(0)?, bytes: row.try_get_by_index::<i64>(1)? },
        None => KvUsage::default(),
    })
}

/// Stores a value within `quota`, given what the store holds (`usage`; read now when `None`).
/// Answers what it holds after the write, or why the write was refused (nothing written).
pub async fn kv_set<C: ConnectionTrait>(
    db: &C,
    plugin: &str,
    key: &str,
    value: &[u8],
    quota: KvQuota,
    usage: Option<KvUsage>,
    now: DateTime<Utc>,
) -> Result<Result<KvUsage, KvRefusal>> {
    let backend = db.get_database_backend();
    let usage = match usage {
        Some(usage) => usage,
        None => kv_usage(db, plugin).await?,
    };
    let size = if backend == DbBackend::Postgres { "octet_length" } else { "length" };
    let old = db
        .query_one_raw(stmt(
            backend,
            &format!(
                "SELECT CAST({size}(value) + {size}(key) AS BIGINT) FROM plugin_kv WHERE plugin_id = ? AND key = ?"
            ),
            vec![plugin.into(), key.into()],
        ))
        .await?
        .map(|row| row.try_get_by_index::<i64>(0))
        .transpose()?;
    if old.is_none() && usage.keys >= quota.max_keys {
        return Ok(Err(KvRefusal::Keys));
    }
    let bytes = usage.bytes - old.unwrap_or(0) + (value.len() + key.len()) as i64;
    // A write that shrinks the store is allowed even past its quota.
    if bytes > quota.max_bytes && bytes > usage.bytes {
        return Ok(Err(KvRefusal::Bytes));
    }
    db.execute_raw(stmt(
        backend,
        "INSERT INTO plugin_kv (plugin_id, key, value, updated_at) VALUES (?, ?, ?, ?) \
         ON CONFLICT (plugin_id, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        vec![plugin.into(), key.into(), DbValue::Bytes(Some(value.to_vec())), ts(backend, now)?],
    ))
    .await?;
    Ok(Ok(KvUsage { keys: usage.keys + i64::from(old.is_none()), bytes }))
}

/// What a plugin's key–value store may hold.
#[derive(Debug, Clone, Copy)]
pub struct KvQuota {
    /// Most keys.
    pub max_keys: i64,
    /// Most bytes, keys and values together.
    pub max_bytes: i64,
}

/// Why a key–value write was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvRefusal {
    /// The store holds its most keys already.
    Keys,
    /// The write would take the store past its bytes.
    Bytes,
}

/// Deletes a key; whether it existed.
pub async fn kv_delete<C: ConnectionTrait>(db: &C, plugin: &str, key: &str) -> Result<bool> {
    let backend = db.get_database_backend();
    let n = db
        .execute_raw(stmt(
            backend,
            "DELETE FROM plugin_kv WHERE plugin_id = ? AND key = ?",
            vec![plugin.into(), key.into()],
        ))
        .await?
        .rows_affected();
    Ok(n > 0)
}

/// Keys with a prefix, sorted.
pub async fn kv_keys<C: ConnectionTrait>(db: &C, plugin: &str, prefix: &str, limit: i64) -> Result<Vec<String>> {
    let backend = db.get_database_backend();
    let rows = db
        .query_all_raw(stmt(
            backend,
            "SELECT key FROM plugin_kv WHERE plugin_id = ? AND substr(key, 1, ?) = ? ORDER BY key LIMIT ?",
            vec![
                plugin.into(),
                i32::try_from(prefix.chars().count()).unwrap_or(i32::MAX).into(),
                prefix.into(),
                limit.into(),
            ],
        ))
        .await?;
    rows.iter().map(|row| row.try_get_by_index::<String>(0).map_err(Error::from)).collect()
}

// ---- delivery ----------------------------------------------------------------------------------

/// Where one partition of a plugin's delivery stands.
#[derive(Debug, Clone, PartialEq)]
pub struct Cursor {
    /// The partition, `0 ≤ part < parts`.
    pub part: i64,
    /// How many partitions the plugin's events are split into.
    pub parts: i64,
    /// The last outbox position handled.
    pub last_seq: i64,
    /// Failed attempts at the next event.
    pub attempts: i64,
    /// Not before this time (backoff).
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// The partition of an event about `record` when a plugin's events are split into `parts`:
/// by record, so that a record's events stay in one partition, in order; events about no
/// record go to partition 0.
pub fn partition_of(record: Option<Uuid>, parts: i64) -> i64 {
    match (record, u128::try_from(parts)) {
        (Some(id), Ok(parts)) if parts > 1 => i64::try_from(id.as_u128() % parts).unwrap_or(0),
        _ => 0,
    }
}

/// How far an enabled plugin's delivery is behind the outbox (for `/metrics`).
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryLag {
    /// The plugin.
    pub plugin: String,
    /// Events after its slowest partition's cursor (delivered or skipped ones not yet passed).
    pub pending: i64,
    /// When the oldest of them occurred (`None`: nothing pending).
    pub oldest: Option<DateTime<Utc>>,
}

/// Every enabled plugin's delivery lag, in one statement: its slowest partition's cursor, the
/// outbox's last `seq` and the first event after that cursor (found through the `seq` key).
pub async fn delivery_lag<C: ConnectionTrait>(db: &C) -> Result<Vec<DeliveryLag>> {
    let backend = db.get_database_backend();
    let rows = db
        .query_all_raw(stmt(
            backend,
            "SELECT d.plugin_id, \
             (SELECT COALESCE(MAX(seq), 0) FROM event_outbox) - d.last_seq, \
             (SELECT o.occurred_at FROM event_outbox o WHERE o.seq > d.last_seq ORDER BY o.seq LIMIT 1) \
             FROM (SELECT plugin_id, MIN(last_seq) AS last_seq FROM plugin_delivery_part GROUP BY plugin_id) d \
             JOIN plugin p ON p.id = d.plugin_id WHERE p.enabled ORDER BY d.plugin_id",
            vec![],
        ))
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        out.push(DeliveryLag {
            plugin: row.try_get_by_index(0)?,
            pending: row.try_get_by_index::<i64>(1)?.max(0),
            oldest: match decode(backend, &FieldKind::DateTime, &row, 2)? {
                Value::DateTime(at) => Some(at),
                _ => None,
            },
        });
    }
    Ok(out)
}

/// Starts (or restarts) delivery to a plugin from the current end of the outbox, in `parts`
/// partitions.
pub async fn reset_cursor<C: ConnectionTrait>(db: &C, plugin: &str, parts: u32) -> Result<()> {
    let backend = db.get_database_backend();
    db.execute_raw(stmt(backend, "DELETE FROM plugin_delivery_part WHERE plugin_id = ?", vec![plugin.into()])).await?;
    let end = crate::store::outbox::last_seq(db).await?;
    insert_parts(db, plugin, parts, end).await
}

/// Splits a plugin's delivery into `parts` partitions if it is split otherwise (a new version
/// asks for another number): every new partition starts at the slowest old one's cursor, so
/// nothing is skipped; what faster partitions had handled past it is delivered again (at
/// least once, as always). Returns whether it changed anything.
pub async fn repartition<C: ConnectionTrait>(db: &C, plugin: &str, parts: u32) -> Result<bool> {
    let backend = db.get_database_backend();
    let row = db
        .query_one_raw(stmt(
            backend,
            "SELECT MIN(parts), MAX(parts), MIN(last_seq), COUNT(*) FROM plugin_delivery_part WHERE plugin_id = ?",
            vec![plugin.into()],
        ))
        .await?;
    let Some(row) = row else { return Ok(false) };
    let count: i64 = row.try_get_by_index(3)?;
    if count == 0 {
        return Ok(false);
    }
    let (least, most): (i64, i64) = (row.try_get_by_index(0)?, row.try_get_by_index(1)?);
    if least == most && most == i64::from(parts) && count == most {
        return Ok(false);
    }
    let from: i64 = row.try_get_by_index(2)?;
    db.execute_raw(stmt(backend, "DELETE FROM plugin_delivery_part WHERE plugin_id = ?", vec![plugin.into()])).await?;
    insert_parts(db, plugin, parts, from).await?;
    Ok(true)
}

async fn insert_parts<C: ConnectionTrait>(db: &C, plugin: &str, parts: u32, last_seq: i64) -> Result<()> {
    let backend = db.get_database_backend();
    let parts = parts.max(1);
    let rows = vec!["(?, ?, ?, ?, 0)"; parts as usize].join(", ");
    let mut values: Vec<sea_orm::Value> = Vec::with_capacity(parts as usize * 4);
    for part in 0..parts {
        values.extend([plugin.into(), i64::from(part).into(), i64::from(parts).into(), last_seq.into()]);
    }
    db.execute_raw(stmt(
        backend,
        &format!("INSERT INTO plugin_delivery_part (plugin_id, part, parts, last_seq, attempts) VALUES {rows}"),
        values,
    ))
    .await?;
    Ok(())
}

/// How many partitions a plugin's events are split into (`None`: it has no cursor, it was
/// never enabled).
pub async fn delivery_parts<C: ConnectionTrait>(db: &C, plugin: &str) -> Result<Option<i64>> {
    let backend = db.get_database_backend();
    let row = db
        .query_one_raw(stmt(
            backend,
            "SELECT MAX(parts) FROM plugin_delivery_part WHERE plugin_id = ?",
            vec![plugin.into()],
        ))
        .await?;
    match row {
        Some(row) => Ok(row.try_get_by_index::<Option<i64>>(0)?),
        None => Ok(None),
    }
}

/// Takes (or renews) the delivery lease of one partition of a plugin for `owner` until
/// `until`; returns its cursor if this process holds the lease now.
pub async fn lease<C: ConnectionTrait>(
    db: &C,
    plugin: &str,
    part: i64,
    owner: &str,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Option<Cursor>> {
    let backend = db.get_database_backend();
    let row = db
        .query_one_raw(stmt(
            backend,
            "UPDATE plugin_delivery_part SET lease_owner = ?, lease_until = ? \
             WHERE plugin_id = ? AND part = ? AND (lease_owner IS NULL OR lease_owner = ? OR lease_until < ?) \
             RETURNING part, parts, last_seq, attempts, next_attempt_at",
            vec![owner.into(), ts(backend, until)?, plugin.into(), part.into(), owner.into(), ts(backend, now)?],
        ))
        .await?;
    let Some(row) = row else { return Ok(None) };
    Ok(Some(Cursor {
        part: row.try_get_by_index(0)?,
        parts: row.try_get_by_index(1)?,
        last_seq: row.try_get_by_index(2)?,
        attempts: row.try_get_by_index(3)?,
        next_attempt_at: match decode(backend, &FieldKind::DateTime, &row, 4)? {
            Value::DateTime(at) => Some(at),
            _ => None,
        },
    }))
}

/// Gives up the leases `owner` holds on a plugin's partitions (on shutdown); with `part`, on
/// that one only (at the end of a round, so that other processes take their turn).
pub async fn release<C: ConnectionTrait>(db: &C, plugin: &str, part: Option<i64>, owner: &str) -> Result<()> {
    let backend = db.get_database_backend();
    let (filter, values) = match part {
        Some(part) => (" AND part = ?", vec![plugin.into(), owner.into(), part.into()]),
        None => ("", vec![plugin.into(), owner.into()]),
    };
    db.execute_raw(stmt(
        backend,
        &format!(
            "UPDATE plugin_delivery_part SET lease_owner = NULL, lease_until = NULL \
             WHERE plugin_id = ? AND lease_owner = ?{filter}"
        ),
        values,
    ))
    .await?;
    Ok(())
}

/// Drops whoever holds a plugin's leases (it was disabled: whichever process delivers to it
/// next starts at once instead of waiting for the leases to expire).
pub async fn release_any<C: ConnectionTrait>(db: &C, plugin: &str) -> Result<()> {
    let backend = db.get_database_backend();
    db.execute_raw(stmt(
        backend,
        "UPDATE plugin_delivery_part SET lease_owner = NULL, lease_until = NULL WHERE plugin_id = ?",
        vec![plugin.into()],
    ))
    .await?;
    Ok(())
}

/// Moves a partition's cursor past `seq` (handled or dead-lettered), if `owner` still holds
/// its lease.
pub async fn advance<C: ConnectionTrait>(db: &C, plugin: &str, part: i64, owner: &str, seq: i64) -> Result<bool> {
    let backend = db.get_database_backend();
    let n = db
        .execute_raw(stmt(
            backend,
            "UPDATE plugin_delivery_part SET last_seq = ?, attempts = 0, next_attempt_at = NULL, last_error = NULL \
             WHERE plugin_id = ? AND part = ? AND lease_owner = ? AND last_seq < ?",
            vec![seq.into(), plugin.into(), part.into(), owner.into(), seq.into()],
        ))
        .await?
        .rows_affected();
    Ok(n > 0)
}

/// Extends a partition's delivery lease this `owner` still holds; false when it holds it no
/// more.
pub async fn renew_lease<C: ConnectionTrait>(
    db: &C,
    plugin: &str,
    part: i64,
    owner: &str,
    until: DateTime<Utc>,
) -> Result<bool> {
    let backend = db.get_database_backend();
    let n = db
        .execute_raw(stmt(
            backend,
            "UPDATE plugin_delivery_part SET lease_until = ? WHERE plugin_id = ? AND part = ? AND lease_owner = ?",
            vec![ts(backend, until)?, plugin.into(), part.into(), owner.into()],
        ))
        .await?
        .rows_affected();
    Ok(n > 0)
}

/// Records a failed attempt at a partition's next event and when to try again.
pub async fn retry_later<C: ConnectionTrait>(
    db: &C,
    plugin: &str,
    part: i64,
    owner: &str,
    attempts: i64,
    at: DateTime<Utc>,
    error: &str,
) -> Result<()> {
    let backend = db.get_database_backend();
    db.execute_raw(stmt(
        backend,
        "UPDATE plugin_delivery_part SET attempts = ?, next_attempt_at = ?, last_error = ? \
         WHERE plugin_id = ? AND part = ? AND lease_owner = ?",
        vec![attempts.into(), ts(backend, at)?, error.into(), plugin.into(), part.into(), owner.into()],
    ))
    .await?;
    Ok(())
}

/// A dead letter.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    /// Its id.
    pub id: Uuid,
    /// The outbox position of the event.
    pub seq: i64,
    /// The event id.
    pub event_id: Uuid,
    /// The event kind.
    pub kind: String,
    /// How many times delivery was tried.
    pub attempts: i64,
    /// The last error.
    pub error: String,
    /// When it was given up on.
    pub failed_at: Value,
    /// When it was replayed successfully, if it was.
    pub replayed_at: Value,
}

/// Stores a dead letter.
#[allow(clippy::too_many_arguments)]
pub async fn dead_letter<C: ConnectionTrait>(
    db: &C,
    plugin: &str,
    seq: i64,
    event_id: Uuid,
    kind: &str,
    attempts: i64,
    error: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    let backend = db.get_database_backend();
    db.execute_raw(stmt(
        backend,
        "INSERT INTO plugin_dead_letter (id, plugin_id, seq, event_id, kind, attempts, error, failed_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        vec![
            encode(backend, &FieldKind::Id, &Value::Uuid(Uuid::now_v7()))?,
            plugin.into(),
            seq.into(),
            encode(backend, &FieldKind::Id, &Value::Uuid(event_id))?,
            kind.into(),
            attempts.into(),
            error.into(),
            ts(backend, now)?,
        ],
    ))
    .await?;
    db.execute_raw(stmt(
        backend,
        "UPDATE plugin SET dead_letters = dead_letters + 1 WHERE id = ?",
        vec![plugin.into()],
    ))
    .await?;
    Ok(())
}

/// Dead letters of a plugin, oldest first; with `pending_only`, those not replayed yet.
pub async fn dead_letters<C: ConnectionTrait>(db: &C, plugin: &str, pending_only: bool) -> Result<Vec<DeadLetter>> {
    let backend = db.get_database_backend();
    let filter = if pending_only { " AND replayed_at IS NULL" } else { "" };
    let rows = db
        .query_all_raw(stmt(
            backend,
            &format!(
                "SELECT id, seq, event_id, kind, attempts, error, failed_at, replayed_at FROM plugin_dead_letter \
                 WHERE plugin_id = ?{filter} ORDER BY seq"
            ),
            vec![plugin.into()],
        ))
        .await?;
    rows.iter()
        .map(|row| {
            Ok(DeadLetter {
                id: decode(backend, &FieldKind::Id, row, 0)?.as_uuid().unwrap_or_default(),
                seq: row.try_get_by_index(1)?,
                event_id: decode(backend, &FieldKind::Id, row, 2)?.as_uuid().unwrap_or_default(),
                kind: row.try_get_by_index(3)?,
                attempts: row.try_get_by_index(4)?,
                error: row.try_get_by_index(5)?,
                failed_at: decode(backend, &FieldKind::DateTime, row, 6)?,
                replayed_at: decode(backend, &FieldKind::DateTime, row, 7)?,
            })
        })
        .collect()
}

/// Marks a dead letter replayed.
pub async fn mark_replayed<C: ConnectionTrait>(db: &C, id: Uuid, now: DateTime<Utc>) -> Result<()> {
    let backend = db.get_database_backend();
    db.execute_raw(stmt(
        backend,
        "UPDATE plugin_dead_letter SET replayed_at = ? WHERE id = ?",
        vec![ts(backend, now)?, encode(backend, &FieldKind::Id, &Value::Uuid(id))?],
    ))
    .await?;
    Ok(())
}
