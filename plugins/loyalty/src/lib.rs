//! Loyalty programmes, built only on Kith's public plugin SDK (1.4).
//!
//! - Objects: programmes, tiers, earn rules, rewards; members (a contact in a programme, with
//!   a balance kept with every ledger entry); the ledger; purchases, redemptions, tier history
//!   and expiry notices.
//! - Exact: every ledger entry has a unique source key (a redelivered event, a replayed dead
//!   letter or a retried mutation earns once), and balances are written back with the version
//!   they were read at (two redemptions of a balance covering one: one succeeds). A mutation,
//!   an event batch and a job run are each one transaction.
//! - Earning: purchases (`recordPurchase`, idempotent on the reference; `refundPurchase`),
//!   deals won (reopened deals give back), EVENT rules with conditions (once per record), the
//!   donors plugin's gifts (the `gifts` job), referral bonuses, manual awards (MANAGER).
//! - Tiers: up at once, down only at the end of the qualification window (the `tiers` job).
//! - Expiry: first-expiring first-out, never more than the balance holds (the `expiry` job),
//!   with notices before.
//!
//! # Layout
//!
//! - `ledger`: entries and balances; `members`: programmes, enrolment, tiers; `earn`: what
//!   earns and gives back; `rewards`: redemption; `expiry`: the expiry job and notices.
//! - `import`: members from CSV; `reports`: standings and reports; `checks`: the before-write
//!   checks; `util`: helpers.

mod checks;
mod earn;
mod expiry;
mod import;
mod ledger;
mod members;
mod reports;
mod rewards;
mod util;

use kith_plugin_sdk::{Call, Change, Error, Event, Plugin, Result, Verdict};
use serde_json::{Value as Json, json};

/// The plugin. It keeps no state: each call gets a fresh value.
#[derive(Default)]
pub struct Loyalty;

impl Plugin for Loyalty {
    /// Deals won and moved on, then the EVENT rules, event by event in order.
    fn on_events(&self, events: &[Event]) -> std::result::Result<(), (usize, Error)> {
        let mut rules = None;
        for (index, event) in events.iter().enumerate() {
            let handled = match event.kind.as_str() {
                "deal.won" => earn::on_deal_won(event),
                "deal.stage_changed" => earn::on_deal_stage_changed(event),
                _ => Ok(()),
            };
            handled.and_then(|()| earn::on_rule_event(event, &mut rules)).map_err(|err| (index, err))?;
        }
        Ok(())
    }

    fn before_write(&self, change: &Change) -> Verdict {
        checks::check(change)
    }

    fn compute_field(&self, object: &str, field: &str, ids: &[String]) -> Result<Vec<Json>> {
        match (object, field) {
            ("contact", "loyaltyPoints") => reports::contact_points(ids),
            ("contact", "loyaltyStandings") => reports::contact_standings(ids),
            ("loyaltyMember", "standing") => ids
                .iter()
                .map(|id| match kith_plugin_sdk::records::get("loyaltyMember", id)? {
                    Some(member) => reports::standing(&member),
                    None => Err(Error::msg(format!("no member {id}"))),
                })
                .collect(),
            _ => Err(Error::msg(format!("no computed field `{object}.{field}`"))),
        }
    }

    fn call(&self, call: &Call) -> Result<Json> {
        let args = &call.arguments;
        match call.name.as_str() {
            "loyaltyStanding" => reports::standing_of(args),
            "loyaltyLiability" => reports::liability(args),
            "loyaltyEarnAndBurn" => reports::earn_and_burn(args),
            "loyaltyTierDistribution" => reports::tier_distribution(args),
            "loyaltyTopMembers" => reports::top_members(args),
            "loyaltyExpiryForecast" => reports::expiry_forecast(args),
            "loyaltyPrivacyExport" => reports::privacy_export(args),
            "enrolMember" => {
                let programme = members::active_programme(util::required(args, "programmeId")?, "programmeId")?;
                let contact = util::required(args, "contactId")?;
                Ok(json!(members::enrol(&programme, contact, util::optional(args, "referralCode"))?.id))
            }
            "importLoyaltyMembers" => import::import(args, &call.caller),
            "recordPurchase" => earn::record_purchase(args, &call.caller),
            "refundPurchase" => earn::refund_purchase(args, &call.caller),
            "awardPoints" => earn::award(args, &call.caller),
            "redeemReward" => rewards::redeem(args, &call.caller),
            "cancelRedemption" => rewards::cancel(args, &call.caller),
            "fulfilRedemption" => rewards::fulfil(args),
            "expirePoints" => Ok(json!(expiry::expire_now(util::required(args, "programmeId")?)?)),
            "reviewTiers" => review_all(util::required(args, "programmeId")?).map(|moved| json!(moved)),
            other => Err(Error::msg(format!("no operation `{other}`"))),
        }
    }

    fn run_job(&self, job: &str, _scheduled_for: &str) -> Result<()> {
        let batch = util::int_setting("batch_size", 500, 50, 2000)? as u32;
        match job {
            "expiry" => expiry::run_job().map(|_| ()),
            "tiers" => {
                for programme in members::active_programmes()? {
                    members::review(&programme, util::now(), batch)?;
                }
                Ok(())
            }
            "gifts" => earn::run_gifts(batch).map(|_| ()),
            other => Err(Error::msg(format!("no job `{other}`"))),
        }
    }
}

/// `reviewTiers`: every member of the programme whose window ended. How many moved.
fn review_all(programme_id: &str) -> Result<usize> {
    let programme = members::active_programme(programme_id, "programmeId")?;
    let mut moved = 0;
    loop {
        let (reviewed, changed) = members::review(&programme, util::now(), 200)?;
        moved += changed;
        if reviewed == 0 {
            return Ok(moved);
        }
    }
}

kith_plugin_sdk::register_plugin!(Loyalty);

#[cfg(test)]
mod tests;
