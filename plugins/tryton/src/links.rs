//! The external-id map (`erpLink`): which ERP record a Kith record is synchronised with, and
//! the values both sides agreed on at the last sync (the merge's base). A link is written in
//! the same transaction as the Kith writes it explains.

use kith_plugin_sdk::{Record, Result, records};
use serde_json::{Value as Json, json};

use crate::engine::Fields;
use crate::util;

/// What a link links.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Company,
    Contact,
    Deal,
}

impl Kind {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Kind::Company => "COMPANY",
            Kind::Contact => "CONTACT",
            Kind::Deal => "DEAL",
        }
    }

    pub(crate) fn parse(label: &str) -> Option<Kind> {
        match label {
            "COMPANY" => Some(Kind::Company),
            "CONTACT" => Some(Kind::Contact),
            "DEAL" => Some(Kind::Deal),
            _ => None,
        }
    }

    /// The Kith object it links.
    pub(crate) fn object(self) -> &'static str {
        match self {
            Kind::Company => "company",
            Kind::Contact => "contact",
            Kind::Deal => "deal",
        }
    }

    /// The key an ERP record made for a Kith record carries (`kith:company:ID`).
    pub(crate) fn key(self, kith_id: &str) -> String {
        format!("kith:{}:{kith_id}", self.object())
    }
}

/// A link as stored.
#[derive(Debug, Clone)]
pub(crate) struct Link {
    pub(crate) record: Record,
    pub(crate) external_id: String,
    pub(crate) synced: Fields,
}

impl Link {
    fn from(record: Record) -> Link {
        let external_id = util::text(&record, "externalId").unwrap_or_default();
        let synced = record
            .fields
            .get("synced")
            .and_then(Json::as_object)
            .map(|map| map.iter().map(|(k, v)| (k.clone(), v.as_str().map(str::to_owned))).collect())
            .unwrap_or_default();
        Link { record, external_id, synced }
    }

    pub(crate) fn kith_id(&self) -> String {
        util::text(&self.record, "kithId").unwrap_or_default()
    }
}

fn synced_json(synced: &Fields) -> Json {
    Json::Object(synced.iter().map(|(k, v)| (k.clone(), v.as_ref().map_or(Json::Null, |s| json!(s)))).collect())
}

/// The link of a Kith record.
pub(crate) fn of_kith(kind: Kind, kith_id: &str) -> Result<Option<Link>> {
    Ok(util::find("erpLink", "linkKey", &format!("{}:{kith_id}", kind.label()))?.map(Link::from))
}

/// The links of many ERP records, by external id.
pub(crate) fn of_externals(kind: Kind, external_ids: &[String]) -> Result<Vec<Link>> {
    let keys: Vec<String> = external_ids.iter().map(|id| format!("{}:{id}", kind.label())).collect();
    Ok(util::by_values("erpLink", "externalKey", &keys)?.into_iter().map(Link::from).collect())
}

/// The links of many Kith records, by Kith id.
pub(crate) fn of_kiths(kind: Kind, kith_ids: &[String]) -> Result<Vec<Link>> {
    let keys: Vec<String> = kith_ids.iter().map(|id| format!("{}:{id}", kind.label())).collect();
    Ok(util::by_values("erpLink", "linkKey", &keys)?.into_iter().map(Link::from).collect())
}

/// The fields of a new link.
pub(crate) fn new_link(kind: Kind, kith_id: &str, external_id: &str, synced: &Fields, state: Option<&str>) -> Json {
    let mut fields = json!({
        "kind": kind.label(),
        "kithId": kith_id,
        "externalId": external_id,
        "linkKey": format!("{}:{kith_id}", kind.label()),
        "externalKey": format!("{}:{external_id}", kind.label()),
        "synced": synced_json(synced),
        "syncedAt": util::now(),
        "externalState": state,
    });
    if kind == Kind::Contact {
        fields["contactId"] = json!(kith_id);
    }
    fields
}

/// Links a Kith record to an ERP record, or moves its link to another one.
pub(crate) fn save(kind: Kind, kith_id: &str, external_id: &str, synced: &Fields, state: Option<&str>) -> Result<()> {
    match of_kith(kind, kith_id)? {
        Some(link) => {
            let fields = json!({
                "externalId": external_id,
                "externalKey": format!("{}:{external_id}", kind.label()),
                "synced": synced_json(synced),
                "syncedAt": util::now(),
                "externalState": state,
            });
            records::update("erpLink", &link.record.id, &fields, Some(link.record.version))?;
        }
        None => {
            records::create("erpLink", &new_link(kind, kith_id, external_id, synced, state))?;
        }
    }
    Ok(())
}

/// The fields that update an existing link after a sync.
pub(crate) fn synced_update(synced: &Fields, state: Option<&str>) -> Json {
    let mut fields = json!({"synced": synced_json(synced), "syncedAt": util::now()});
    if let Some(state) = state {
        fields["externalState"] = json!(state);
    }
    fields
}
