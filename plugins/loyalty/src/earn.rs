//! Earning and giving back: purchases (`recordPurchase`, `refundPurchase`), deals won and
//! reopened, events matching a rule, the donors plugin's gifts, referral bonuses, and manual
//! awards. Every entry's source key makes it happen once.

use kith_plugin_sdk::{Error, ErrorCode, Event, Record, Result, kv, log, records};
use rust_decimal::Decimal;
use serde_json::{Value as Json, json};

use crate::ledger::{self, Debit, Draft};
use crate::members;
use crate::util;

/// The largest purchase amount `recordPurchase` takes.
const MAX_AMOUNT: i64 = 1_000_000_000_000;

/// The most points one entry earns.
const MAX_POINTS: i64 = 1_000_000_000_000;

/// The active rules of `programme_id` with `trigger`.
fn rules(programme_id: &str, trigger: &str) -> Result<Vec<Record>> {
    let rules = util::all("loyaltyEarnRule", json!({"programmeId": programme_id, "trigger": trigger}), 200)?;
    Ok(rules.into_iter().filter(|r| util::flag(r, "active", true)).collect())
}

/// Points an amount earns under the programme's first `trigger` rule for its currency, times
/// `multiplier` (the member's tier's); 0 when no rule covers the currency.
fn points_for(programme_id: &str, trigger: &str, amount: Decimal, currency: &str, multiplier: Decimal) -> Result<i64> {
    let rule = rules(programme_id, trigger)?
        .into_iter()
        .find(|r| r.str("currency").is_some_and(|c| c.eq_ignore_ascii_case(currency)));
    let Some(rule) = rule else { return Ok(0) };
    let per_unit = util::decimal(rule.fields.get("pointsPerUnit")).unwrap_or_default();
    let points = amount.checked_mul(per_unit).and_then(|p| p.checked_mul(multiplier));
    let points = points.ok_or_else(|| Error::invalid("amount", "earns more points than can be counted"))?;
    Ok(util::whole(points).clamp(0, MAX_POINTS))
}

/// An active member, or an error.
fn active(member: &Record) -> Result<()> {
    match member.str("status").unwrap_or("ACTIVE") {
        "ACTIVE" => Ok(()),
        status => Err(Error::invalid("memberId", format!("the member is {}", status.to_lowercase()))),
    }
}

/// `recordPurchase`: once per programme and reference.
pub(crate) fn record_purchase(arguments: &Json, caller: &str) -> Result<Json> {
    let contact_id = util::required(arguments, "contactId")?;
    let reference = util::required(arguments, "reference")?;
    let amount = util::decimal(arguments.get("amount"))
        .ok_or_else(|| Error::invalid("amount", "an amount such as \"25.00\" is required"))?;
    if amount <= Decimal::ZERO || amount > Decimal::from(MAX_AMOUNT) {
        return Err(Error::invalid("amount", format!("must be more than 0 and at most {MAX_AMOUNT}")));
    }
    let currency = util::required(arguments, "currency")?.to_ascii_uppercase();
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(Error::invalid("currency", format!("`{currency}` is not an ISO 4217 code such as EUR")));
    }
    if reference.chars().count() > 200 {
        return Err(Error::invalid("reference", "at most 200 characters"));
    }
    let programme = members::programme_arg(arguments)?;
    let key = format!("{}:{reference}", programme.id);
    if let Some(purchase) = util::first("loyaltyPurchase", json!({"key": key}))? {
        return duplicate_purchase(&purchase, contact_id);
    }
    let member = members::member_for_earning(&programme, contact_id)?.ok_or_else(|| {
        Error::invalid("contactId", format!("the contact is not a member of `{}`", members::name(&programme)))
    })?;
    active(&member)?;
    // Everything read before the first write: on SQLite the write lock is held from the first
    // write to the commit, so the writes come last and together.
    let tiers = members::tiers(&programme.id)?;
    let points = points_for(&programme.id, "PURCHASE", amount, &currency, members::tier_multiplier(&tiers, &member))?;
    let qualifying =
        if tiers.is_empty() || points == 0 { 0 } else { members::qualifying_points(&member, &programme, util::now())? };
    // No purchase has the key, so no entry has: they are written together.
    let mut draft = Draft::new("EARN", points, format!("purchase:{key}"), format!("purchase {reference}"), caller)
        .earning(&programme)
        .key_unused();
    draft.amount = Some((amount, currency.clone()));
    let posted = ledger::post_as(&member, &draft, Debit::Exact)?;
    if posted.duplicate {
        // Recorded meanwhile by a call with the same reference.
        let found = util::first("loyaltyPurchase", json!({"key": key}))?
            .ok_or_else(|| Error::new(ErrorCode::Conflict, "the purchase is being recorded; try again"))?;
        return duplicate_purchase(&found, contact_id);
    }
    let purchase = json!({
        "key": key,
        "programmeId": programme.id,
        "memberId": member.id,
        "contactId": contact_id,
        "reference": reference,
        "amount": util::money(amount),
        "amountCurrency": currency,
        "points": posted.points,
        "status": "RECORDED",
    });
    match records::create("loyaltyPurchase", &purchase) {
        Ok(_) => {}
        // The same reference at the same moment, with no points to claim its key first: the
        // other call records it; this one writes nothing.
        Err(err) if err.code == ErrorCode::Conflict => {
            return Err(Error::new(ErrorCode::Conflict, "the purchase is being recorded; try again"));
        }
        Err(err) => return Err(err),
    }
    let mut member = posted.member;
    if posted.points > 0 {
        member = members::upgrade_to(&member, &programme, &tiers, qualifying + posted.points)?;
    }
    if member.str("referredById").is_some() {
        referral_bonus(&programme, &member, caller)?;
        member = util::existing("loyaltyMember", &member.id, "memberId")?;
    }
    Ok(json!({
        "memberId": member.id,
        "entryId": posted.entry.map(|e| e.id),
        "points": posted.points,
        "balance": util::int(&member, "balance"),
        "duplicate": false,
    }))
}

fn duplicate_purchase(purchase: &Record, contact_id: &str) -> Result<Json> {
    if purchase.str("contactId").is_some_and(|c| c != contact_id) {
        return Err(Error::invalid("reference", "this reference was recorded for another contact"));
    }
    let member_id = purchase.str("memberId").unwrap_or_default();
    let member = util::existing("loyaltyMember", member_id, "memberId")?;
    let entry = ledger::by_key(&format!("purchase:{}", purchase.str("key").unwrap_or_default()))?;
    Ok(json!({
        "memberId": member.id,
        "entryId": entry.map(|e| e.id),
        "points": util::int(purchase, "points"),
        "balance": util::int(&member, "balance"),
        "duplicate": true,
    }))
}

/// `refundPurchase`: gives back what the purchase earned, once.
pub(crate) fn refund_purchase(arguments: &Json, caller: &str) -> Result<Json> {
    let reference = util::required(arguments, "reference")?;
    let programme = members::programme_arg(arguments)?;
    let key = format!("{}:{reference}", programme.id);
    let found = util::first("loyaltyPurchase", json!({"key": key}))?.ok_or_else(|| {
        let mut err =
            Error::new(ErrorCode::NotFound, format!("no purchase `{reference}` in `{}`", members::name(&programme)));
        err.field = Some("reference".into());
        err
    })?;
    let member_id = found.str("memberId").unwrap_or_default().to_owned();
    let refund_key = format!("refund:{}", found.id);
    if found.str("status") == Some("REFUNDED") {
        return already(&member_id, &refund_key);
    }
    match records::update("loyaltyPurchase", &found.id, &json!({"status": "REFUNDED"}), Some(found.version)) {
        Ok(_) => {}
        Err(err) if err.code == ErrorCode::Conflict => return already(&member_id, &refund_key),
        Err(err) => return Err(err),
    }
    let earned = ledger::by_key(&format!("purchase:{key}"))?;
    let Some(earned) = earned else { return already(&member_id, &refund_key) };
    let posted = ledger::post(
        &member_id,
        &reversal(&earned, refund_key, format!("refund of {reference}"), caller),
        Debit::UpToBalance,
    )?;
    Ok(posted.to_json())
}

/// The reversal of lot entry `earned` (its points back, with its expiry).
fn reversal(earned: &Record, key: String, source: String, caller: &str) -> Draft {
    let mut draft = Draft::new("REVERSE", -util::int(earned, "points"), key, source, caller);
    draft.lot = true;
    draft.qualifying = util::flag(earned, "qualifying", false);
    draft.expires_at = earned.str("expiresAt").map(str::to_owned);
    draft.reverses = Some(earned.id.clone());
    draft.source = earned.str("source").unwrap_or_default().to_owned();
    draft
}

/// What an already-made posting with `key` did, for a repeated call.
fn already(member_id: &str, key: &str) -> Result<Json> {
    let member = util::existing("loyaltyMember", member_id, "memberId")?;
    let entry = ledger::by_key(key)?;
    Ok(json!({
        "memberId": member.id,
        "entryId": entry.as_ref().map(|e| e.id.clone()),
        "points": entry.as_ref().map(|e| util::int(e, "points")).unwrap_or_default(),
        "balance": util::int(&member, "balance"),
        "duplicate": true,
    }))
}

/// `awardPoints`: a MANAGER's award (or deduction, never below 0), with its reason.
pub(crate) fn award(arguments: &Json, caller: &str) -> Result<Json> {
    let member_id = util::required(arguments, "memberId")?;
    let reason = util::required(arguments, "reason")?;
    let points = arguments
        .get("points")
        .and_then(Json::as_i64)
        .filter(|p| *p != 0)
        .ok_or_else(|| Error::invalid("points", "a whole number of points other than 0 is required"))?;
    if points.abs() > 100_000_000 {
        return Err(Error::invalid("points", "at most 100,000,000 at once"));
    }
    let member = util::existing("loyaltyMember", member_id, "memberId")?;
    active(&member)?;
    let programme = util::existing("loyaltyProgramme", member.str("programmeId").unwrap_or_default(), "memberId")?;
    let key = match util::optional(arguments, "key") {
        Some(key) => format!("award:{member_id}:{key}"),
        None => format!("award:{member_id}:{}", util::code(16)),
    };
    let mut draft = Draft::new("ADJUST", points, key, reason.to_owned(), caller);
    if points > 0 {
        draft = draft.earning(&programme);
        draft.qualifying = false;
    }
    Ok(ledger::post(member_id, &draft, Debit::Exact)?.to_json())
}

/// Pays the referral bonus of a member referred by another, at their first purchase or gift:
/// both sides, once.
fn referral_bonus(programme: &Record, member: &Record, caller: &str) -> Result<()> {
    let bonus = util::int(programme, "referralBonus");
    let Some(referrer) = member.str("referredById") else { return Ok(()) };
    if bonus <= 0 || util::flag(member, "referralRewarded", false) {
        return Ok(());
    }
    let referred = Draft::new("EARN", bonus, format!("referral:{}", member.id), "referral bonus".into(), caller)
        .earning(programme);
    let posted = ledger::post(&member.id, &referred, Debit::Exact)?;
    if posted.duplicate {
        return Ok(());
    }
    members::update_member(&member.id, &json!({"referralRewarded": true}))?;
    if let Some(referrer) = records::get("loyaltyMember", referrer)?
        && referrer.str("status").unwrap_or("ACTIVE") == "ACTIVE"
    {
        let draft = Draft::new(
            "EARN",
            bonus,
            format!("referrer:{}", member.id),
            format!("referred {}", member.str("number").unwrap_or_default()),
            caller,
        )
        .earning(programme);
        let posted = ledger::post(&referrer.id, &draft, Debit::Exact)?;
        members::upgrade_if_due(&posted.member, programme)?;
    }
    Ok(())
}

/// A deal won: its contact earns under each programme's DEAL_WON rule for its currency.
pub(crate) fn on_deal_won(event: &Event) -> Result<()> {
    let (Some(deal), Some(contact)) = (event.record_id.as_deref(), event.record_str("contactId")) else {
        return Ok(());
    };
    let Some(amount) = util::decimal(event.record().get("amount")) else { return Ok(()) };
    let currency = event.record_str("currency").unwrap_or_default().to_ascii_uppercase();
    if amount <= Decimal::ZERO {
        return Ok(());
    }
    for programme in members::active_programmes()? {
        if rules(&programme.id, "DEAL_WON")?.is_empty() {
            continue;
        }
        let Some(member) = members::member_for_earning(&programme, contact)? else { continue };
        if member.str("status").unwrap_or("ACTIVE") != "ACTIVE" {
            continue;
        }
        let points = points_for(&programme.id, "DEAL_WON", amount, &currency, members::multiplier(&member)?)?;
        let mut draft = Draft::new(
            "EARN",
            points,
            format!("event:{}:{}", event.id, programme.id),
            format!("deal:{deal}"),
            &event.actor,
        )
        .earning(&programme);
        draft.amount = Some((amount, currency.clone()));
        let posted = ledger::post(&member.id, &draft, Debit::Exact)?;
        if posted.points > 0 && !posted.duplicate {
            members::upgrade_if_due(&posted.member, &programme)?;
        }
    }
    Ok(())
}

/// A deal moved to a stage that is not won: what it earned is given back.
pub(crate) fn on_deal_stage_changed(event: &Event) -> Result<()> {
    let kind = event.payload.get("stageKind").and_then(Json::as_str).unwrap_or("OPEN");
    let (Some(deal), Some(contact)) = (event.record_id.as_deref(), event.record_str("contactId")) else {
        return Ok(());
    };
    if kind == "WON" {
        return Ok(());
    }
    let source = format!("deal:{deal}");
    for programme in members::active_programmes()? {
        let Some(member) = members::membership(&programme.id, contact)? else { continue };
        let net = ledger::net_from_source(&member.id, &source)?;
        if net <= 0 {
            continue;
        }
        let mut draft =
            Draft::new("REVERSE", -net, format!("event:{}:{}", event.id, programme.id), source.clone(), &event.actor);
        draft.lot = true;
        draft.qualifying = true;
        // The latest earn of the deal: its expiry goes with the reversal.
        let earned = util::page(
            "loyaltyEntry",
            json!({"memberId": member.id, "source": source, "kind": "EARN"}),
            1,
            Some(json!([{"field": "createdAt", "direction": "DESC"}])),
        )?
        .records
        .into_iter()
        .next();
        if let Some(earned) = earned {
            draft.expires_at = earned.str("expiresAt").map(str::to_owned);
            draft.reverses = Some(earned.id);
        }
        ledger::post(&member.id, &draft, Debit::UpToBalance)?;
    }
    Ok(())
}

/// An event matching an EVENT rule: its contact earns the rule's points, once per rule and
/// record. `rules_cache`: the active EVENT rules, read once per batch.
pub(crate) fn on_rule_event(event: &Event, rules_cache: &mut Option<Vec<Record>>) -> Result<()> {
    if rules_cache.is_none() {
        let mut all = Vec::new();
        for programme in members::active_programmes()? {
            all.extend(rules(&programme.id, "EVENT")?);
        }
        *rules_cache = Some(all);
    }
    let Some(record_id) = event.record_id.as_deref() else { return Ok(()) };
    let contact = if event.object == "contact" { Some(record_id) } else { event.record_str("contactId") };
    let Some(contact) = contact else { return Ok(()) };
    for rule in rules_cache.iter().flatten() {
        if rule.str("event") != Some(event.kind.as_str()) || !matches(rule.fields.get("conditions"), event.record()) {
            continue;
        }
        let points = util::int(rule, "points");
        let Some(programme) = records::get("loyaltyProgramme", rule.str("programmeId").unwrap_or_default())? else {
            continue;
        };
        let key = format!("rule:{}:{record_id}", rule.id);
        if points <= 0 || ledger::by_key(&key)?.is_some() {
            continue;
        }
        let Some(member) = members::member_for_earning(&programme, contact)? else { continue };
        if member.str("status").unwrap_or("ACTIVE") != "ACTIVE" {
            continue;
        }
        let points = util::whole(Decimal::from(points) * members::multiplier(&member)?);
        let source = format!("{} {record_id}", rule.str("name").unwrap_or("rule"));
        let draft = Draft::new("EARN", points, key, source, &event.actor).earning(&programme).key_unused();
        let posted = ledger::post(&member.id, &draft, Debit::Exact)?;
        if !posted.duplicate {
            members::upgrade_if_due(&posted.member, &programme)?;
        }
    }
    Ok(())
}

/// Whether `record` has every field → value of `conditions` (numbers compared as numbers).
pub(crate) fn matches(conditions: Option<&Json>, record: &Json) -> bool {
    let Some(Json::Object(conditions)) = conditions else { return true };
    conditions.iter().all(|(field, wanted)| {
        let have = record.get(field).unwrap_or(&Json::Null);
        match (have, wanted) {
            (Json::Number(a), Json::Number(b)) => a.as_f64() == b.as_f64(),
            (Json::String(a), Json::Number(b)) => a.parse::<f64>().ok() == b.as_f64(),
            _ => have == wanted,
        }
    })
}

const GIFT_CURSOR: &str = "gifts:cursor";

/// One run of the `gifts` job: received gifts of the donors plugin since the last run earn
/// under GIFT rules (and pay referral bonuses); refunded ones give back. Writes nothing when
/// nothing changed; without the donors plugin, nothing to do.
pub(crate) fn run_gifts(batch: u32) -> Result<bool> {
    let programmes = members::active_programmes()?;
    let mut with_rules = Vec::new();
    for programme in programmes {
        let gift_rules = rules(&programme.id, "GIFT")?;
        if !gift_rules.is_empty() || util::int(&programme, "referralBonus") > 0 {
            with_rules.push(programme);
        }
    }
    if with_rules.is_empty() {
        return Ok(false);
    }
    let cursor: Option<(String, String)> = kv::get_json(GIFT_CURSOR)?;
    let filter = match &cursor {
        Some((at, id)) => json!({"or": [{"updatedAt": {"gt": at}}, {"updatedAt": at, "id": {"gt": id}}]}),
        None => json!({}),
    };
    let page = match util::page(
        "donation",
        filter,
        batch.clamp(1, 200),
        Some(json!([{"field": "updatedAt"}, {"field": "id"}])),
    ) {
        Ok(page) => page,
        Err(err) if matches!(err.code, ErrorCode::NotFound | ErrorCode::InvalidInput | ErrorCode::Denied) => {
            log::info(&format!("no gifts to read ({}): is the donors plugin enabled?", err.message));
            return Ok(false);
        }
        Err(err) => return Err(err),
    };
    let Some(last) = page.records.last() else { return Ok(false) };
    let last = (last.str("updatedAt").unwrap_or_default().to_owned(), last.id.clone());
    for gift in &page.records {
        for programme in &with_rules {
            gift_earns(gift, programme)?;
        }
    }
    kv::set_json(GIFT_CURSOR, &last)?;
    Ok(true)
}

fn gift_earns(gift: &Record, programme: &Record) -> Result<()> {
    let Some(contact) = gift.str("contactId") else { return Ok(()) };
    let key = format!("gift:{}:{}", gift.id, programme.id);
    match gift.str("status") {
        Some("RECEIVED") => {
            let amount = util::decimal(gift.fields.get("amount")).unwrap_or_default();
            let currency = gift.str("amountCurrency").unwrap_or_default().to_ascii_uppercase();
            if ledger::by_key(&key)?.is_some() || amount <= Decimal::ZERO {
                return Ok(());
            }
            let Some(member) = members::member_for_earning(programme, contact)? else { return Ok(()) };
            if member.str("status").unwrap_or("ACTIVE") != "ACTIVE" {
                return Ok(());
            }
            let points = points_for(&programme.id, "GIFT", amount, &currency, members::multiplier(&member)?)?;
            let mut draft = Draft::new("EARN", points, key, format!("gift:{}", gift.id), util::SELF)
                .earning(programme)
                .key_unused();
            draft.amount = Some((amount, currency));
            let posted = ledger::post(&member.id, &draft, Debit::Exact)?;
            if posted.points > 0 {
                members::upgrade_if_due(&posted.member, programme)?;
            }
            referral_bonus(programme, &posted.member, util::SELF)
        }
        Some("REFUNDED") => {
            let Some(earned) = ledger::by_key(&key)? else { return Ok(()) };
            let member = earned.str("memberId").unwrap_or_default().to_owned();
            let draft =
                reversal(&earned, format!("gift-refund:{}:{}", gift.id, programme.id), String::new(), util::SELF);
            ledger::post(&member, &draft, Debit::UpToBalance).map(|_| ())
        }
        _ => Ok(()),
    }
}
