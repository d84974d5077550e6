//! The before-write checks. The ledger, purchases, redemptions, tier history and notices are
//! written by the plugin alone (through its mutations, events and jobs): people read them. A
//! member created by hand or by an import gets its key, number, codes and counters here; its
//! counters are never edited by hand. Programmes, tiers, rules and rewards are checked.

use kith_plugin_sdk::{Change, Operation, Verdict};
use rust_decimal::Decimal;
use serde_json::{Map, Value as Json, json};

use crate::members;
use crate::util;

/// Member fields only the plugin writes.
const MEMBER_INTERNAL: &[&str] = &[
    "memberKey",
    "number",
    "balance",
    "lifetimePoints",
    "redeemedPoints",
    "expiredPoints",
    "tierId",
    "tierSince",
    "tierReviewAt",
    "referralCode",
    "referredById",
    "referralRewarded",
    "enrolledAt",
    "programmeId",
    "contactId",
];

pub(crate) fn check(change: &Change) -> Verdict {
    if change.actor == util::SELF {
        return Verdict::Allow;
    }
    let result = match change.object.as_str() {
        "loyaltyEntry" => {
            Err("the points ledger is append-only and written by the loyalty plugin: use awardPoints for a correction"
                .into())
        }
        "loyaltyRedemption" => {
            Err("redemptions are made and changed with redeemReward, cancelRedemption and fulfilRedemption".into())
        }
        "loyaltyPurchase" => Err("purchases are recorded with recordPurchase and refunded with refundPurchase".into()),
        "loyaltyTierChange" | "loyaltyNotice" => Err("written by the loyalty plugin alone".into()),
        _ if change.operation == Operation::Delete => check_delete(change),
        "loyaltyMember" => check_member(change),
        "loyaltyProgramme" => check_programme(change),
        "loyaltyTier" => check_tier(change),
        "loyaltyEarnRule" => check_rule(change),
        "loyaltyReward" => check_reward(change),
        _ => Ok(None),
    };
    match result {
        Ok(None) => Verdict::Allow,
        Ok(Some(patch)) => Verdict::Modify(patch),
        Err(reason) => Verdict::Deny(reason),
    }
}

type Checked = Result<Option<Map<String, Json>>, String>;

fn value<'a>(change: &'a Change, field: &str) -> &'a Json {
    change.after.get(field).unwrap_or(&Json::Null)
}

fn changed(change: &Change, field: &str) -> bool {
    let before = change.before.as_ref().and_then(|b| b.get(field)).unwrap_or(&Json::Null);
    value(change, field) != before
}

fn int(change: &Change, field: &str) -> Option<i64> {
    value(change, field).as_i64()
}

fn check_delete(change: &Change) -> Checked {
    if change.object == "loyaltyMember" {
        let balance = change.before.as_ref().and_then(|b| b.get("balance")).and_then(Json::as_i64).unwrap_or(0);
        if balance != 0 {
            return Err(format!(
                "the member still has {balance} points: close the membership (status CLOSED) or deduct them with awardPoints first"
            ));
        }
    }
    Ok(None)
}

fn check_member(change: &Change) -> Checked {
    match change.operation {
        Operation::Create => {
            let programme_id = change.after_str("programmeId").ok_or("a member needs its programmeId")?;
            let contact_id = change.after_str("contactId").ok_or("a member needs its contactId")?;
            for field in MEMBER_INTERNAL.iter().filter(|f| !matches!(**f, "programmeId" | "contactId" | "referredById"))
            {
                let counter = field.ends_with("Points") || *field == "balance";
                match value(change, field) {
                    Json::Null => {}
                    v if counter && v.as_i64() == Some(0) => {}
                    _ if counter => {
                        return Err(format!("`{field}` starts at 0: points come from the ledger (awardPoints)"));
                    }
                    _ => return Err(format!("`{field}` is set by the loyalty plugin")),
                }
            }
            let programme = members::active_programme(programme_id, "programmeId").map_err(|e| e.message)?;
            if let Some(referrer) = change.after_str("referredById") {
                let referrer = kith_plugin_sdk::records::get("loyaltyMember", referrer).map_err(|e| e.message)?;
                if referrer.as_ref().and_then(|r| r.str("programmeId")) != Some(programme_id) {
                    return Err("referredById: the member who referred them must be in the same programme".into());
                }
            }
            if members::membership(programme_id, contact_id).map_err(|e| e.message)?.is_some() {
                return Err("the contact is already a member of this programme".into());
            }
            let mut patch = members::new_member_fields(&programme, contact_id, change.after_str("referredById"))
                .map_err(|e| e.message)?;
            if let Some(status) = change.after_str("status") {
                patch.insert("status".into(), json!(status));
            }
            Ok(Some(patch))
        }
        Operation::Update => {
            for field in MEMBER_INTERNAL {
                if changed(change, field) {
                    return Err(format!(
                        "`{field}` is kept by the loyalty plugin (balances move with ledger entries: awardPoints)"
                    ));
                }
            }
            Ok(None)
        }
        _ => Ok(None),
    }
}

fn check_programme(change: &Change) -> Checked {
    if change.operation == Operation::Update {
        for field in ["expiredThrough", "expiryCursor"] {
            if changed(change, field) {
                return Err(format!("`{field}` is kept by the expiry job"));
            }
        }
    }
    let value_ok = util::decimal(change.after.get("pointValue")).is_some_and(|v| v > Decimal::ZERO);
    if !value_ok {
        return Err("pointValue must be more than 0 (what one point is worth, say 0.01)".into());
    }
    if int(change, "expiryMonths").is_some_and(|m| !(0..=600).contains(&m)) {
        return Err("expiryMonths must be from 0 (never) to 600".into());
    }
    if int(change, "qualificationMonths").is_some_and(|m| !(1..=120).contains(&m)) {
        return Err("qualificationMonths must be from 1 to 120".into());
    }
    if int(change, "referralBonus").is_some_and(|b| b < 0) {
        return Err("referralBonus cannot be negative".into());
    }
    let mut patch = Map::new();
    if change.operation == Operation::Create {
        if change.after_str("code").is_none() {
            let code: String = change
                .after_str("name")
                .unwrap_or("M")
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .take(4)
                .collect::<String>()
                .to_ascii_uppercase();
            patch.insert("code".into(), json!(if code.is_empty() { "M".to_owned() } else { code }));
        }
        if value(change, "status").is_null() {
            patch.insert("status".into(), json!("ACTIVE"));
        }
        if value(change, "autoEnrol").is_null() {
            patch.insert("autoEnrol".into(), json!(true));
        }
        if change.after_str("pointName").is_none() {
            patch.insert("pointName".into(), json!("points"));
        }
    }
    if let Some(code) = change.after_str("code") {
        if !code.chars().all(|c| c.is_ascii_alphanumeric()) || code.len() > 10 {
            return Err("code: up to 10 letters and digits".into());
        }
        if code != code.to_ascii_uppercase() {
            patch.insert("code".into(), json!(code.to_ascii_uppercase()));
        }
    }
    Ok((!patch.is_empty()).then_some(patch))
}

fn check_tier(change: &Change) -> Checked {
    if int(change, "threshold").is_none_or(|t| t < 0) {
        return Err("threshold: the qualifying points to reach the tier, 0 or more".into());
    }
    if let Some(m) = util::decimal(change.after.get("multiplier"))
        && (m <= Decimal::ZERO || m > Decimal::from(100))
    {
        return Err("multiplier must be more than 0 and at most 100".into());
    }
    if change.operation == Operation::Update && changed(change, "programmeId") {
        return Err("a tier stays in its programme".into());
    }
    Ok(None)
}

fn check_rule(change: &Change) -> Checked {
    let trigger = change.after_str("trigger").unwrap_or_default();
    match trigger {
        "PURCHASE" | "DEAL_WON" | "GIFT" => {
            if change.after_str("currency").is_none() {
                return Err(format!("a {trigger} rule needs the currency it applies to"));
            }
            if util::decimal(change.after.get("pointsPerUnit")).is_none_or(|p| p <= Decimal::ZERO) {
                return Err(format!("a {trigger} rule needs pointsPerUnit, more than 0"));
            }
        }
        "EVENT" => {
            let event = change.after_str("event").unwrap_or_default();
            let shaped = event.split_once('.').is_some_and(|(o, k)| !o.is_empty() && !k.is_empty() && !k.contains('*'));
            if !shaped {
                return Err("an EVENT rule needs the event kind it answers, such as `ticket.updated`".into());
            }
            let object = event.split('.').next().unwrap_or_default();
            if !matches!(object, "deal" | "ticket" | "contact" | "activity") {
                return Err(format!(
                    "the loyalty plugin receives deal, ticket, contact and activity events, not `{object}`"
                ));
            }
            if int(change, "points").is_none_or(|p| p <= 0) {
                return Err("an EVENT rule needs points, more than 0".into());
            }
            if !matches!(value(change, "conditions"), Json::Null | Json::Object(_)) {
                return Err("conditions: an object of field → value, such as {\"satisfaction\": 5}".into());
            }
        }
        _ => return Err("trigger: PURCHASE, DEAL_WON, EVENT or GIFT".into()),
    }
    if change.operation == Operation::Create && value(change, "active").is_null() {
        return Ok(Some(Map::from_iter([("active".to_owned(), json!(true))])));
    }
    Ok(None)
}

fn check_reward(change: &Change) -> Checked {
    if int(change, "pointsCost").is_none_or(|c| c <= 0) {
        return Err("pointsCost must be more than 0".into());
    }
    if int(change, "stock").is_some_and(|s| s < 0) {
        return Err("stock cannot be negative (empty: unlimited)".into());
    }
    if change.operation == Operation::Update && changed(change, "programmeId") {
        return Err("a reward stays in its programme".into());
    }
    if change.operation == Operation::Create && value(change, "active").is_null() {
        return Ok(Some(Map::from_iter([("active".to_owned(), json!(true))])));
    }
    Ok(None)
}
