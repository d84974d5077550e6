//! Rewards and redemption: the balance and the stock are taken at once (each written back
//! with the version it was read at), and a cancelled redemption gives both back.
//!
//! A mutation is one transaction: when anything fails (too few points, none left in stock) the
//! call returns an error and nothing of it stays. Rows are taken in one order — the reward,
//! then the member — by redemption and cancellation alike.

use kith_plugin_sdk::{Error, ErrorCode, Record, Result, records};
use serde_json::{Value as Json, json};

use crate::ledger::{self, Debit, Draft};
use crate::members;
use crate::util;

/// `redeemReward`.
pub(crate) fn redeem(arguments: &Json, caller: &str) -> Result<Json> {
    let member_id = util::required(arguments, "memberId")?;
    let reward_id = util::required(arguments, "rewardId")?;
    let request_key = util::optional(arguments, "key").map(|k| format!("{member_id}:{k}"));
    if let Some(key) = &request_key
        && let Some(found) = util::first("loyaltyRedemption", json!({"requestKey": key}))?
    {
        return result(&found, member_id);
    }
    let member = util::existing("loyaltyMember", member_id, "memberId")?;
    if member.str("status").unwrap_or("ACTIVE") != "ACTIVE" {
        return Err(Error::invalid("memberId", "only active members redeem"));
    }
    let reward = util::existing("loyaltyReward", reward_id, "rewardId")?;
    if reward.str("programmeId") != member.str("programmeId") {
        return Err(Error::invalid("rewardId", "the reward belongs to another programme"));
    }
    if !util::flag(&reward, "active", true) {
        return Err(Error::invalid("rewardId", "the reward is no longer offered"));
    }
    members::active_programme(member.str("programmeId").unwrap_or_default(), "memberId")?;
    let cost = util::int(&reward, "pointsCost");
    if cost <= 0 {
        return Err(Error::invalid("rewardId", "the reward has no points cost"));
    }
    let balance = util::int(&member, "balance");
    if balance < cost {
        return Err(Error::invalid(
            "memberId",
            format!("the member has {balance} points available, {cost} are needed"),
        ));
    }
    take_stock(reward_id, -1)?;
    let mut created = None;
    for _ in 0..3 {
        let fields = json!({
            "memberId": member_id,
            "rewardId": reward_id,
            "contactId": member.str("contactId"),
            "points": cost,
            "code": util::code(10),
            "requestKey": request_key,
            "status": "ISSUED",
        });
        match records::create("loyaltyRedemption", &fields) {
            Ok(redemption) => {
                created = Some(redemption);
                break;
            }
            Err(err) if err.code == ErrorCode::Conflict => {
                if request_key.is_some() {
                    return Err(Error::new(ErrorCode::Conflict, "a redemption with this key is being made; try again"));
                }
            }
            Err(err) => return Err(err),
        }
    }
    let redemption = created.ok_or_else(|| Error::new(ErrorCode::Conflict, "could not issue a code; try again"))?;
    let draft = Draft::new(
        "REDEEM",
        -cost,
        format!("redeem:{}", redemption.id),
        format!("reward {}", reward.str("name").unwrap_or_default()),
        caller,
    );
    let posted = ledger::post(member_id, &draft, Debit::Exact).map_err(|mut err| {
        if err.field.as_deref() == Some("points") {
            err.field = Some("memberId".into());
        }
        err
    })?;
    Ok(json!({
        "redemptionId": redemption.id,
        "code": redemption.str("code"),
        "points": cost,
        "balance": util::int(&posted.member, "balance"),
    }))
}

fn result(redemption: &Record, member_id: &str) -> Result<Json> {
    let member = util::existing("loyaltyMember", member_id, "memberId")?;
    Ok(json!({
        "redemptionId": redemption.id,
        "code": redemption.str("code"),
        "points": util::int(redemption, "points"),
        "balance": util::int(&member, "balance"),
    }))
}

/// Moves a reward's stock by `delta` (a reward without stock is unlimited): never below 0.
fn take_stock(reward_id: &str, delta: i64) -> Result<()> {
    for _ in 0..25 {
        let reward = util::existing("loyaltyReward", reward_id, "rewardId")?;
        let Some(stock) = reward.fields.get("stock").and_then(Json::as_i64) else { return Ok(()) };
        if stock + delta < 0 {
            return Err(Error::invalid(
                "rewardId",
                format!("`{}` is out of stock", reward.str("name").unwrap_or_default()),
            ));
        }
        match records::update("loyaltyReward", reward_id, &json!({"stock": stock + delta}), Some(reward.version)) {
            Ok(_) => return Ok(()),
            Err(err) if err.code == ErrorCode::Conflict => continue,
            Err(err) => return Err(err),
        }
    }
    Err(Error::new(ErrorCode::Conflict, "the reward's stock kept changing meanwhile; try again"))
}

/// Moves an ISSUED redemption to `status`, once: `None` when it had already left ISSUED.
fn settle(id: &str, status: &str) -> Result<Option<Record>> {
    for _ in 0..25 {
        let redemption = util::existing("loyaltyRedemption", id, "id")?;
        match redemption.str("status") {
            Some("ISSUED") => {}
            Some(s) if s == status => return Ok(None),
            Some(other) => return Err(Error::invalid("id", format!("the redemption is {}", other.to_lowercase()))),
            None => return Err(Error::invalid("id", "the redemption has no status")),
        }
        let mut changes = json!({"status": status});
        if status == "CANCELLED" {
            changes["cancelledAt"] = json!(util::stamp(util::now()));
        }
        match records::update("loyaltyRedemption", id, &changes, Some(redemption.version)) {
            Ok(updated) => return Ok(Some(updated)),
            Err(err) if err.code == ErrorCode::Conflict => continue,
            Err(err) => return Err(err),
        }
    }
    Err(Error::new(ErrorCode::Conflict, "the redemption kept changing meanwhile; try again"))
}

/// `cancelRedemption`: the points back to the member, the reward back in stock.
pub(crate) fn cancel(arguments: &Json, caller: &str) -> Result<Json> {
    let id = util::required(arguments, "id")?;
    let key = format!("cancel:{id}");
    let Some(redemption) = settle(id, "CANCELLED")? else {
        let redemption = util::existing("loyaltyRedemption", id, "id")?;
        let member = util::existing("loyaltyMember", redemption.str("memberId").unwrap_or_default(), "id")?;
        let entry = ledger::by_key(&key)?;
        return Ok(json!({
            "memberId": member.id,
            "entryId": entry.as_ref().map(|e| e.id.clone()),
            "points": entry.as_ref().map(|e| util::int(e, "points")).unwrap_or_default(),
            "balance": util::int(&member, "balance"),
            "duplicate": true,
        }));
    };
    take_stock(redemption.str("rewardId").unwrap_or_default(), 1)?;
    let redeemed = ledger::by_key(&format!("redeem:{id}"))?;
    let mut draft = Draft::new("REVERSE", util::int(&redemption, "points"), key, "redemption cancelled".into(), caller);
    draft.reverses = redeemed.map(|e| e.id);
    let posted = ledger::post(redemption.str("memberId").unwrap_or_default(), &draft, Debit::Exact)?;
    Ok(posted.to_json())
}

/// `fulfilRedemption`.
pub(crate) fn fulfil(arguments: &Json) -> Result<Json> {
    let id = util::required(arguments, "id")?;
    settle(id, "FULFILLED")?;
    Ok(json!(id))
}
