//! E-mail marketing, built only on Kith's public plugin SDK (1.3: mail, signed links, routes;
//! 1.4: writes in bulk).
//!
//! - Objects: templates, campaigns, sequences and their steps, enrolments, sends (one message
//!   to one contact, and what became of it), the suppression list.
//! - Consent first: a message goes only to a contact with e-mail opt-in, not do-not-contact,
//!   whose address is not suppressed, checked as each message is queued.
//! - Campaigns go out from the `send` job, a batch of recipients per transaction; each send's
//!   key (`CAMPAIGN:CONTACT`) is unique, and the campaign's cursor moves in the same
//!   transaction as the batch, so a contact gets a campaign once across crashes.
//! - Sequences: the `sequences` job enrols contacts entering a trigger segment (and received
//!   gifts of the donors plugin) and runs the due steps of enrolments; events enrol new
//!   contacts and deals entering a stage; `enrolInSequence` by hand.
//! - Tracking and unsubscribe through the plugin's routes and signed links; delivery outcomes
//!   (`mail.sent`, `mail.failed`) and provider webhooks (bounces, complaints) update the sends.
//! - Reports per campaign and sequence step, with the gifts raised (by campaign code); the
//!   engagement score of a contact, also stored on the contact (a custom field the manifest
//!   declares) by the `engagement` job, so segments can filter on it.
//!
//! # Layout
//!
//! - `template`: merge fields, escaping, text from HTML; `compose`: a message for one send
//!   (tracked links, open pixel, unsubscribe header and footer).
//! - `sends`: eligibility, suppression, queueing, outcomes; `campaigns`: scheduling and the
//!   send job; `sequences`: enrolment and steps; `tracking`: the routes.
//! - `checks`: the before-write checks; `reports`: reports, the score, the privacy export.
//! - `util`: arguments, settings, times, reading pages.

mod campaigns;
mod checks;
mod compose;
mod reports;
mod sends;
mod sequences;
mod template;
mod tracking;
mod util;

use kith_plugin_sdk::routes::{Request, Response};
use kith_plugin_sdk::{Call, Change, Error, Event, Plugin, Result, Verdict};

/// The plugin. It keeps no state: each call gets a fresh value.
#[derive(Default)]
pub struct Marketing;

impl Plugin for Marketing {
    /// Delivery outcomes in runs (a run of `mail.sent` / `mail.failed` events handled together,
    /// with bulk writes); the others one by one, in order.
    fn on_events(&self, events: &[Event]) -> std::result::Result<(), (usize, Error)> {
        let outcome = |e: &Event| matches!(e.kind.as_str(), "mail.sent" | "mail.failed");
        let mut index = 0;
        while index < events.len() {
            let run = events[index..].iter().take_while(|e| outcome(e)).count();
            if run > 0 {
                let batch: Vec<&Event> = events[index..index + run].iter().collect();
                sends::on_outcomes(&batch).map_err(|err| (index, err))?;
                index += run;
                continue;
            }
            let event = &events[index];
            let handled = match event.kind.as_str() {
                "contact.created" => sequences::on_contact_created(event),
                "deal.stage_changed" => sequences::on_stage_changed(event),
                _ => Ok(()),
            };
            handled.map_err(|err| (index, err))?;
            index += 1;
        }
        Ok(())
    }

    fn before_write(&self, change: &Change) -> Verdict {
        checks::check(change)
    }

    fn compute_field(&self, object: &str, field: &str, ids: &[String]) -> Result<Vec<serde_json::Value>> {
        match (object, field) {
            ("contact", "engagementScore") => reports::engagement_scores(ids),
            ("emailCampaign", "report") => ids.iter().map(|id| reports::campaign_report(id)).collect(),
            _ => Err(Error::msg(format!("no computed field `{object}.{field}`"))),
        }
    }

    fn call(&self, call: &Call) -> Result<serde_json::Value> {
        let arguments = &call.arguments;
        match call.name.as_str() {
            "campaignReport" => reports::campaign_report(util::required(arguments, "id")?),
            "sequenceReport" => reports::sequence_report(util::required(arguments, "id")?),
            "previewEmail" => campaigns::preview(arguments),
            "marketingPrivacyExport" => reports::privacy_export(arguments),
            "sendTestEmail" => campaigns::send_test(arguments),
            "scheduleCampaign" => campaigns::schedule(arguments),
            "cancelCampaign" => campaigns::cancel(arguments),
            "enrolInSequence" => sequences::enrol_call(arguments),
            "exitSequence" => sequences::exit_call(arguments),
            "suppressEmail" => sends::suppress_call(arguments),
            other => Err(Error::msg(format!("no operation `{other}`"))),
        }
    }

    fn run_job(&self, job: &str, _scheduled_for: &str) -> Result<()> {
        match job {
            "send" => campaigns::run_batch(),
            "sequences" => sequences::run_batch(),
            "engagement" => reports::store_scores(),
            other => Err(Error::msg(format!("no job `{other}`"))),
        }
    }

    fn handle_request(&self, request: &Request) -> Response {
        tracking::handle(request)
    }
}

kith_plugin_sdk::register_plugin!(Marketing);

#[cfg(test)]
mod tests;
