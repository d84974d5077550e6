//! Donor management for nonprofits, built only on Kith's public plugin SDK.
//!
//! - Objects: funds, campaigns, households (and their members), donations (gifts, or expected
//!   gifts while PLEDGED) with soft credits and tributes, recurring donations, pledges, receipts,
//!   and the organisation's exchange rates.
//! - Every total is in the organisation's currency: a gift keeps its amount and currency and
//!   gets a rate and base amount (`rates`); totals add up base amounts (`counted`).
//! - `Contact.donorSummary` (giving, soft credits, recognition), `Household.giving`,
//!   `Pledge.progress`: computed a page at a time.
//! - Reports: `donorRetention`, `lybunt`, `sybunt`, `campaignProgress`, `givingSummary`; for a
//!   subject access request, `donorPrivacyExport`.
//! - Mutations: `recordDonation`, `refundDonation`, `pauseRecurringDonation`,
//!   `resumeRecurringDonation`, `issueYearEndReceipts` (contact and company donors),
//!   `applyExchangeRates`, `importDonations`; standing orders, pledges and rates are created with
//!   the generic `createRecurringDonation` / `createPledge` / `createExchangeRate`, which its
//!   before-write hook vets and completes.
//! - A thank-you task for each received gift, a pledge's installments as expected gifts, daily
//!   jobs for standing orders and for gifts still without a base amount.
//!
//! # Layout
//!
//! - `gifts`: recording, refunds, standing orders, pledges, the before-write checks, thanks.
//! - `rates`: exchange rates, a gift's conversion, `applyExchangeRates`.
//! - `counted`: the gifts totals count and the aggregates over them.
//! - `summary`: the computed fields; `reports`: the fundraising reports.
//! - `receipts`: year-end receipts; `import`: CSV imports; `privacy`: the privacy export.
//! - `util`: amounts, dates, settings, reading every record of a filter.

mod counted;
mod gifts;
mod import;
mod privacy;
mod rates;
mod receipts;
mod reports;
mod summary;
mod util;

use kith_plugin_sdk::{Call, Change, Error, Event, Plugin, Result, Verdict};

/// The plugin. It keeps no state: each call gets a fresh value.
#[derive(Default)]
pub struct Donors;

impl Plugin for Donors {
    fn on_event(&self, event: &Event) -> Result<()> {
        match event.kind.as_str() {
            "donation.created" | "donation.updated" => gifts::on_event(event),
            "pledge.created" => gifts::on_pledge(event),
            _ => Ok(()),
        }
    }

    fn before_write(&self, change: &Change) -> Verdict {
        gifts::check(change)
    }

    fn compute_field(&self, object: &str, field: &str, ids: &[String]) -> Result<Vec<serde_json::Value>> {
        match (object, field) {
            ("contact", "donorSummary") => summary::donor_summaries(ids),
            ("household", "giving") => summary::household_giving(ids),
            ("pledge", "progress") => summary::pledge_progress(ids),
            _ => Err(Error::msg(format!("no computed field `{object}.{field}`"))),
        }
    }

    fn call(&self, call: &Call) -> Result<serde_json::Value> {
        let arguments = &call.arguments;
        match call.name.as_str() {
            "donorRetention" => reports::retention(arguments),
            "lybunt" => reports::lybunt(arguments),
            "sybunt" => reports::sybunt(arguments),
            "campaignProgress" => reports::campaign_progress(arguments),
            "givingSummary" => reports::giving_summary(arguments),
            "donorPrivacyExport" => privacy::export(arguments),
            "recordDonation" => gifts::record(arguments),
            "refundDonation" => gifts::refund(arguments),
            "pauseRecurringDonation" => gifts::set_recurring_active(arguments, false),
            "resumeRecurringDonation" => gifts::set_recurring_active(arguments, true),
            "issueYearEndReceipts" => receipts::issue(arguments),
            "applyExchangeRates" => rates::apply_call(arguments),
            "importDonations" => import::import(arguments),
            other => Err(Error::msg(format!("no operation `{other}`"))),
        }
    }

    fn run_job(&self, job: &str, scheduled_for: &str) -> Result<()> {
        match job {
            "recurring" => gifts::run_recurring(scheduled_for),
            "exchange-rates" => {
                let run = rates::apply(5_000)?;
                kith_plugin_sdk::log::info(&format!("exchange rates for {scheduled_for}: {run}"));
                Ok(())
            }
            other => Err(Error::msg(format!("no job `{other}`"))),
        }
    }
}

kith_plugin_sdk::register_plugin!(Donors);

#[cfg(test)]
mod tests;
