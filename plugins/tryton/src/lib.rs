//! The Tryton ERP connector, built only on Kith's public plugin SDK (1.4) and its outbound HTTP
//! grant, as a third party would.
//!
//! - Companies ⇄ Tryton parties, both ways, with declared field ownership (`engine`): Kith's
//!   events push at once (`push`); the `sync` job pulls what Tryton changed, by write date, with
//!   stored cursors (`pull`). Contacts become named contact mechanisms of their company's party.
//! - Tryton products are mirrored read-only (`erpProduct`) for deal lines (`dealLine`); a deal
//!   won becomes a Tryton sale with its lines (or the service product for its amount), quoted
//!   and confirmed; its number and state come back to the deal.
//! - Customer invoices of synchronised parties come back as `erpInvoice`s, with a timeline
//!   activity when one is posted or paid, and `Company.openBalance`.
//! - Exactly once: every ERP record Kith makes carries a key (`kith:company:ID`, `kith:deal:ID`)
//!   and is looked up by it before it is made; the external-id map (`erpLink`) is written in the
//!   same transaction as what it explains. Failures are listed (`erpSyncError`) and retried with
//!   backoff; `retrySync`, `resync` and `syncDryRun` are for the admin.
//! - The password is a secret setting Kith injects into the login request: the plugin never
//!   holds it.
//!
//! # Layout
//!
//! - `engine`: the ERP-neutral part (the `Erp` trait, field ownership, the three-way merge);
//!   `tryton`: the Tryton mapping, over `tryton::rpc` (JSON-RPC).
//! - `push`: Kith → ERP; `pull`: ERP → Kith (the `sync` job and the dry run); `links`: the
//!   external-id map; `failures`: the retry list; `util`: helpers.

mod engine;
mod failures;
mod links;
mod pull;
mod push;
mod tryton;
mod util;

use kith_plugin_sdk::aggregate::Aggregate;
use kith_plugin_sdk::{Call, Error, ErrorCode, Event, Plugin, Result, kv, records};
use serde_json::{Value as Json, json};

use crate::engine::Stream;
use crate::links::Kind;

/// The plugin. It keeps no state of its own between calls but the ERP session.
#[derive(Default)]
pub struct Connector;

/// The configured ERP, or `None` while the `url` setting is empty.
fn erp() -> Result<Option<tryton::Tryton>> {
    let Some(url) = util::text_setting("url")? else { return Ok(None) };
    let user = util::text_setting("username")?.unwrap_or_else(|| "admin".into());
    Ok(Some(tryton::Tryton::new(&url, &user)))
}

fn configured() -> Result<tryton::Tryton> {
    erp()?.ok_or_else(|| {
        Error::new(ErrorCode::Unavailable, "set the `url` setting (and grant `http-private:setting:url`) first")
    })
}

impl Plugin for Connector {
    /// Pushes companies and contacts as they change and deals as they are won; the plugin's
    /// own writes (what a pull brought) are not pushed back.
    fn on_events(&self, events: &[Event]) -> std::result::Result<(), (usize, Error)> {
        let mut connection: Option<tryton::Tryton> = None;
        for (index, event) in events.iter().enumerate() {
            if event.origin_plugin.as_deref() == Some(util::SELF) {
                continue;
            }
            let Some(id) = event.record_id.as_deref() else { continue };
            let action = event.kind.rsplit_once('.').map_or("", |(_, a)| a);
            let kind = match (event.object.as_str(), action) {
                ("company", _) => Kind::Company,
                ("contact", _) => Kind::Contact,
                ("deal", "won") => Kind::Deal,
                _ => continue,
            };
            if connection.is_none() {
                connection = erp().map_err(|err| (index, err))?;
            }
            let Some(erp) = connection.as_mut() else { return Ok(()) };
            let pushed = match (kind, action) {
                (Kind::Company, "deleted") => push::guarded(kind, id, || push::deactivate(erp, id)),
                _ => push::guarded(kind, id, || push::one(erp, kind, id)),
            };
            pushed.map_err(|err| (index, err))?;
        }
        Ok(())
    }

    fn compute_field(&self, object: &str, field: &str, ids: &[String]) -> Result<Vec<Json>> {
        match (object, field) {
            ("company", "openBalance") => open_balances(ids),
            _ => Err(Error::msg(format!("no computed field `{object}.{field}`"))),
        }
    }

    fn call(&self, call: &Call) -> Result<Json> {
        match call.name.as_str() {
            "syncStatus" => status(),
            "syncDryRun" => {
                let limit = call.int("limit").unwrap_or(100).clamp(1, 500);
                let mut erp = configured()?;
                pull::dry_run(&mut erp, u32::try_from(limit).unwrap_or(100))
            }
            "retrySync" => {
                let id = call.str("id").ok_or_else(|| Error::invalid("id", "`id` is required"))?;
                let failure = records::get("erpSyncError", id)?.ok_or_else(|| {
                    let mut err = Error::new(ErrorCode::NotFound, format!("no sync error {id}"));
                    err.field = Some("id".into());
                    err
                })?;
                let (Some(kind), Some(kith_id)) =
                    (failure.str("kind").and_then(Kind::parse), failure.str("kithId").map(str::to_owned))
                else {
                    return Err(Error::msg(format!("sync error {id} names no record")));
                };
                let mut erp = configured()?;
                push::guarded(kind, &kith_id, || push::one(&mut erp, kind, &kith_id))?;
                let after = records::get("erpSyncError", id)?;
                Ok(json!(after.and_then(|r| r.str("status").map(str::to_owned)).unwrap_or_else(|| "RESOLVED".into())))
            }
            "resync" => {
                configured()?;
                start_resync()?;
                let rows = kith_plugin_sdk::aggregate::run("company", &Aggregate::new().count())?;
                Ok(json!(rows.first().and_then(|r| r.int(0)).unwrap_or(0)))
            }
            other => Err(Error::msg(format!("no operation `{other}`"))),
        }
    }

    fn run_job(&self, job: &str, scheduled_for: &str) -> Result<()> {
        match job {
            "sync" => {
                let Some(mut erp) = erp()? else {
                    kith_plugin_sdk::log::debug("the `url` setting is empty: nothing to synchronise");
                    return Ok(());
                };
                // The first sync also pushes the companies Kith had before the connector.
                if kv::get("initialised")?.is_none() {
                    start_resync()?;
                    kv::set("initialised", b"1")?;
                }
                pull::run(&mut erp, scheduled_for)
            }
            other => Err(Error::msg(format!("no job `{other}`"))),
        }
    }
}

/// Queues every company to be pushed again and every stream to be read from the start.
fn start_resync() -> Result<()> {
    kv::set_json("resync", &pull::Resync::default())?;
    for stream in Stream::ALL {
        kv::delete(&pull::position_key(stream))?;
    }
    kv::delete("cycle")?;
    Ok(())
}

/// What each company still owes on its posted invoices.
fn open_balances(ids: &[String]) -> Result<Vec<Json>> {
    let query = Aggregate::new()
        .filter(json!({"companyId": {"in": ids}, "state": {"eq": "POSTED"}}))
        .group_by("companyId")
        .sum("amountDue");
    let rows = kith_plugin_sdk::aggregate::run("erpInvoice", &query)?;
    Ok(ids
        .iter()
        .map(|id| {
            let due = rows.iter().find(|r| r.key(0) == Some(id.as_str())).and_then(|r| r.value(0)).unwrap_or("0");
            let due: rust_decimal::Decimal = due.parse().unwrap_or_default();
            json!(due.normalize().to_string())
        })
        .collect())
}

/// `syncStatus`.
fn status() -> Result<Json> {
    let mut positions = serde_json::Map::new();
    for stream in Stream::ALL {
        positions
            .insert(stream.name().into(), kv::get_json::<Json>(&pull::position_key(stream))?.unwrap_or(Json::Null));
    }
    let count = |object: &str, field: &str| -> Result<Json> {
        let rows = kith_plugin_sdk::aggregate::run(object, &Aggregate::new().group_by(field).count())?;
        Ok(Json::Object(
            rows.iter().map(|r| (r.key(0).unwrap_or("").to_owned(), json!(r.int(0).unwrap_or(0)))).collect(),
        ))
    };
    Ok(json!({
        "url": util::text_setting("url")?,
        "username": util::text_setting("username")?,
        "cycle": kv::get_json::<Json>("cycle")?,
        "positions": positions,
        "resync": kv::get_json::<Json>("resync")?,
        "links": count("erpLink", "kind")?,
        "failures": count("erpSyncError", "status")?,
        "invoices": count("erpInvoice", "state")?,
        "products": kith_plugin_sdk::aggregate::run("erpProduct", &Aggregate::new().count())?.first().and_then(|r| r.int(0)),
    }))
}

kith_plugin_sdk::register_plugin!(Connector);

#[cfg(test)]
mod tests;
