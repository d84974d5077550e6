//! The points ledger: every change of a balance is an entry, and the member's balance moves in
//! the same transaction, checked against the member's version.
//!
//! - **Once per source.** An entry's `sourceKey` is unique: a second delivery of an event, a
//!   replayed dead letter or a retried mutation finds its key taken and changes nothing.
//! - **Never overdrawn.** The balance is read, checked and written back with the version it
//!   was read at; a concurrent write makes that a conflict, and the balance is read again (in
//!   the call's transaction, where it is current). Two redemptions of a balance that covers one:
//!   the second sees the first's balance and is refused.
//! - **Expiry takes only what is left.** Lots (earned points, positive adjustments, and the
//!   reversals of either) carry their expiry; the points to expire at `t` are what the balance
//!   holds beyond the lots still valid at `t` (`balance − valid(t)`, never below 0): spending
//!   consumes the soonest-expiring points first, so points already spent never expire.

use kith_plugin_sdk::aggregate;
use kith_plugin_sdk::{Error, ErrorCode, Record, Result, records};
use rust_decimal::Decimal;
use serde_json::{Map, Value as Json, json};

use crate::util;

/// How often a write of the balance is tried again after a concurrent one.
const ATTEMPTS: usize = 25;

/// An entry to write.
#[derive(Debug, Clone)]
pub(crate) struct Draft {
    /// `EARN`, `REDEEM`, `EXPIRE`, `ADJUST` or `REVERSE`.
    pub(crate) kind: &'static str,
    /// Signed points: what is asked for (a debit may be cut to the balance, see [`Debit`]).
    pub(crate) points: i64,
    pub(crate) source_key: String,
    pub(crate) source: String,
    /// An earning lot (or the reversal of one): counted by expiry and lifetime points.
    pub(crate) lot: bool,
    /// Counted towards tiers.
    pub(crate) qualifying: bool,
    pub(crate) expires_at: Option<String>,
    pub(crate) reverses: Option<String>,
    pub(crate) amount: Option<(Decimal, String)>,
    pub(crate) created_by: String,
    /// The caller read in this call that no entry has `source_key` (one read less; a concurrent
    /// call that takes the key first still makes this one a duplicate).
    pub(crate) key_unused: bool,
}

impl Draft {
    /// A draft of `kind` for `points` from `source_key`, with nothing else set.
    pub(crate) fn new(kind: &'static str, points: i64, source_key: String, source: String, created_by: &str) -> Draft {
        Draft {
            kind,
            points,
            source_key,
            source,
            lot: false,
            qualifying: false,
            expires_at: None,
            reverses: None,
            amount: None,
            created_by: created_by.to_owned(),
            key_unused: false,
        }
    }

    /// Marks the source key as read and found unused in this call (see the field).
    pub(crate) fn key_unused(mut self) -> Draft {
        self.key_unused = true;
        self
    }

    /// An earning lot expiring per `programme` (earned now).
    pub(crate) fn earning(mut self, programme: &Record) -> Draft {
        self.lot = true;
        self.qualifying = self.kind == "EARN";
        let months = util::int(programme, "expiryMonths");
        self.expires_at = (months > 0).then(|| util::stamp(util::add_months(util::now(), months)));
        self
    }
}

/// What a debit larger than the balance does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Debit {
    /// Refused: nothing is written (a redemption, a manual deduction).
    Exact,
    /// Cut to the balance (a reversal of points partly spent, an expiry).
    UpToBalance,
}

/// What [`post`] did.
#[derive(Debug, Clone)]
pub(crate) struct Posted {
    /// The member as written (or as found, for a duplicate).
    pub(crate) member: Record,
    /// The entry written, or the one that already had the key; none for 0 points.
    pub(crate) entry: Option<Record>,
    /// The points the entry moved.
    pub(crate) points: i64,
    /// Whether the key was already taken: nothing was written.
    pub(crate) duplicate: bool,
}

impl Posted {
    /// As GraphQL's `LoyaltyPosting`.
    pub(crate) fn to_json(&self) -> Json {
        json!({
            "memberId": self.member.id,
            "entryId": self.entry.as_ref().map(|e| e.id.clone()),
            "points": self.points,
            "balance": util::int(&self.member, "balance"),
            "duplicate": self.duplicate,
        })
    }
}

/// The entry holding `key`, if any.
pub(crate) fn by_key(key: &str) -> Result<Option<Record>> {
    util::first("loyaltyEntry", json!({"sourceKey": key}))
}

/// Writes `draft` to the ledger of member `member_id` and moves its balance with it: once per
/// `source_key`, never below 0 (see [`Debit`]). A draft of 0 points (or a debit cut to 0)
/// writes nothing.
pub(crate) fn post(member_id: &str, draft: &Draft, debit: Debit) -> Result<Posted> {
    post_from(member_id, None, draft, debit)
}

/// [`post`], starting from `member` as just read (read again only after a concurrent write).
pub(crate) fn post_as(member: &Record, draft: &Draft, debit: Debit) -> Result<Posted> {
    post_from(&member.id, Some(member.clone()), draft, debit)
}

fn post_from(member_id: &str, mut read: Option<Record>, draft: &Draft, debit: Debit) -> Result<Posted> {
    if !draft.key_unused
        && let Some(entry) = by_key(&draft.source_key)?
    {
        let member = util::existing("loyaltyMember", member_id, "memberId")?;
        let points = util::int(&entry, "points");
        return Ok(Posted { member, entry: Some(entry), points, duplicate: true });
    }
    for _ in 0..ATTEMPTS {
        let member = match read.take() {
            Some(member) => member,
            None => util::existing("loyaltyMember", member_id, "memberId")?,
        };
        let balance = util::int(&member, "balance");
        let mut points = draft.points;
        if points < 0 && balance + points < 0 {
            match debit {
                Debit::Exact => {
                    return Err(Error::invalid(
                        "points",
                        format!("the member has {balance} points available, {} are needed", -points),
                    ));
                }
                Debit::UpToBalance => points = -balance,
            }
        }
        if points == 0 {
            return Ok(Posted { member, entry: None, points: 0, duplicate: false });
        }
        let moved = moved_fields(&member, draft, points);
        let updated = match records::update("loyaltyMember", member_id, &moved, Some(member.version)) {
            Ok(updated) => updated,
            Err(err) if err.code == ErrorCode::Conflict => continue,
            Err(err) => return Err(err),
        };
        match records::create("loyaltyEntry", &entry_fields(&member, draft, points, balance + points)) {
            Ok(entry) => return Ok(Posted { member: updated, entry: Some(entry), points, duplicate: false }),
            Err(err) if err.code == ErrorCode::Conflict => {
                // A concurrent call wrote this key first (and has committed): undo the move.
                let back = moved_fields(&updated, draft, -points);
                let member = records::update("loyaltyMember", member_id, &back, Some(updated.version))?;
                let entry = by_key(&draft.source_key)?;
                let points = entry.as_ref().map(|e| util::int(e, "points")).unwrap_or_default();
                return Ok(Posted { member, entry, points, duplicate: true });
            }
            Err(err) => return Err(err),
        }
    }
    Err(Error::new(ErrorCode::Conflict, "the member's balance kept changing meanwhile; try again"))
}

/// The member's counters after an entry of `points` like `draft`.
fn moved_fields(member: &Record, draft: &Draft, points: i64) -> Json {
    let mut fields = Map::new();
    fields.insert("balance".into(), json!(util::int(member, "balance") + points));
    if draft.lot {
        fields.insert("lifetimePoints".into(), json!(util::int(member, "lifetimePoints") + points));
    }
    match draft.kind {
        "REDEEM" => {
            fields.insert("redeemedPoints".into(), json!(util::int(member, "redeemedPoints") - points));
        }
        // A redemption given back (a reversal that is no lot).
        "REVERSE" if !draft.lot => {
            fields.insert("redeemedPoints".into(), json!(util::int(member, "redeemedPoints") - points));
        }
        "EXPIRE" => {
            fields.insert("expiredPoints".into(), json!(util::int(member, "expiredPoints") - points));
        }
        _ => {}
    }
    Json::Object(fields)
}

fn entry_fields(member: &Record, draft: &Draft, points: i64, balance_after: i64) -> Json {
    let mut fields = json!({
        "memberId": member.id,
        "programmeId": member.str("programmeId"),
        "contactId": member.str("contactId"),
        "kind": draft.kind,
        "points": points,
        "balanceAfter": balance_after,
        "sourceKey": draft.source_key,
        "source": draft.source,
        "lot": draft.lot,
        "qualifying": draft.qualifying,
        "expiresAt": draft.expires_at,
        "reversesId": draft.reverses,
        "createdBy": draft.created_by,
    });
    if let Some((amount, currency)) = &draft.amount {
        fields["amount"] = util::money(*amount);
        fields["amountCurrency"] = json!(currency);
    }
    fields
}

/// Points of lots still valid at `at` (not expired by then, or never expiring), per member.
pub(crate) fn valid_lots(member_ids: &[String], at: &str) -> Result<std::collections::HashMap<String, i64>> {
    let mut out = std::collections::HashMap::new();
    for chunk in member_ids.chunks(500) {
        let rows = aggregate::run(
            "loyaltyEntry",
            &util::aggregate(json!({
                "memberId": {"in": chunk},
                "lot": true,
                "or": [{"expiresAt": {"gt": at}}, {"expiresAt": {"isNull": true}}],
            }))
            .group_by("memberId")
            .sum("points")
            .limit(100_000),
        )?;
        for row in rows {
            if let Some(member) = row.key(0) {
                out.insert(member.to_owned(), util::int_text(row.value(0)));
            }
        }
    }
    Ok(out)
}

/// The points of `member` that expire by `at` unless spent first.
pub(crate) fn expiring_by(member: &Record, valid_at: i64) -> i64 {
    (util::int(member, "balance") - valid_at).max(0)
}

/// The net points entries from `source` gave member `member_id` (earned less reversed).
pub(crate) fn net_from_source(member_id: &str, source: &str) -> Result<i64> {
    let rows = aggregate::run(
        "loyaltyEntry",
        &util::aggregate(json!({"memberId": member_id, "source": source, "lot": true})).sum("points"),
    )?;
    Ok(rows.first().map(|row| util::int_text(row.value(0))).unwrap_or_default())
}
