//! Kith's bundled example plugin.
//!
//! - On `contact.created` it creates a TASK activity, "Welcome {name}", for the contact's owner,
//!   due in three days, and records a `greeting` (its own object) for the contact. The greeting
//!   makes redelivery harmless: a contact that has one is not greeted twice.
//! - Before a contact is stored it refuses e-mail addresses whose domain is in the
//!   `blocked_domains` setting.
//! - `Contact.welcomeStatus` (computed for a whole page with one aggregate), the
//!   `greetingStats(since)` query, the `greetAgain(contactId, subject)` mutation and a daily
//!   `digest` job that records yesterday's greetings as a `welcomeDigest` (SDK 1.2).

use kith_plugin_sdk::aggregate::{self, Aggregate, Bucket};
use kith_plugin_sdk::date::Date;
use kith_plugin_sdk::{Call, Change, Error, Event, Plugin, Query, Result, Verdict, log, records, settings};
use serde_json::json;

/// The plugin. It keeps no state: each call gets a fresh value.
#[derive(Default)]
pub struct Welcome;

impl Plugin for Welcome {
    fn on_event(&self, event: &Event) -> Result<()> {
        if event.kind != "contact.created" {
            return Ok(());
        }
        let Some(contact_id) = event.record_id.as_deref() else { return Ok(()) };
        // Delivery is at least once: a contact greeted already is done.
        let greeted =
            records::query("greeting", &Query::new().filter(json!({"contactId": {"eq": contact_id}})).first(1))?;
        if !greeted.records.is_empty() {
            return Ok(());
        }
        let (task_id, subject) = welcome_task(contact_id, event.record(), None)?;
        records::create("greeting", &json!({"contactId": contact_id, "taskId": task_id, "subject": subject}))?;
        log::info(&format!("welcome task {task_id} for contact {contact_id}"));
        Ok(())
    }

    fn compute_field(&self, _object: &str, field: &str, ids: &[String]) -> Result<Vec<serde_json::Value>> {
        if field != "welcomeStatus" {
            return Err(Error::msg(format!("no computed field `{field}`")));
        }
        // One aggregate for the whole page: which of these contacts have a greeting.
        let greeted = aggregate::run(
            "greeting",
            &Aggregate::new().filter(json!({"contactId": {"in": ids}})).group_by("contactId").count(),
        )?;
        Ok(ids
            .iter()
            .map(|id| {
                let done = greeted.iter().any(|row| row.key(0) == Some(id.as_str()));
                json!(if done { "GREETED" } else { "PENDING" })
            })
            .collect())
    }

    fn call(&self, call: &Call) -> Result<serde_json::Value> {
        match call.name.as_str() {
            "greetingStats" => {
                let filter = call.str("since").map(|since| json!({"createdAt": {"gte": format!("{since}T00:00:00Z")}}));
                let mut totals = Aggregate::new().count().min("createdAt").max("createdAt");
                let mut months = Aggregate::new().group_by_bucket("createdAt", Bucket::Month).count();
                if let Some(filter) = filter {
                    totals = totals.filter(filter.clone());
                    months = months.filter(filter);
                }
                let total = aggregate::run("greeting", &totals)?;
                let by_month = aggregate::run("greeting", &months)?;
                let first = total.first();
                Ok(json!({
                    "total": first.and_then(|r| r.int(0)).unwrap_or(0),
                    "firstAt": first.and_then(|r| r.value(1)),
                    "lastAt": first.and_then(|r| r.value(2)),
                    "byMonth": by_month
                        .iter()
                        .map(|r| json!({"month": r.key(0), "greetings": r.int(0).unwrap_or(0)}))
                        .collect::<Vec<_>>(),
                }))
            }
            "greetAgain" => {
                let contact_id = call.str("contactId").unwrap_or_default();
                let Some(contact) = records::get("contact", contact_id).map_err(|err| match err.code {
                    kith_plugin_sdk::ErrorCode::InvalidInput => Error::invalid("contactId", err.message),
                    _ => err,
                })?
                else {
                    return Err(Error::invalid("contactId", format!("no contact `{contact_id}`")));
                };
                let (task_id, subject) = welcome_task(contact_id, &contact.fields, call.str("subject"))?;
                Ok(json!({"taskId": task_id, "subject": subject}))
            }
            other => Err(Error::msg(format!("no operation `{other}`"))),
        }
    }

    fn run_job(&self, job: &str, scheduled_for: &str) -> Result<()> {
        if job != "digest" {
            return Err(Error::msg(format!("no job `{job}`")));
        }
        // The day before the run was due; one digest per day, so a second run changes nothing.
        let day = shift_days(&scheduled_for[..10.min(scheduled_for.len())], -1);
        let existing = records::query("welcomeDigest", &Query::new().filter(json!({"day": {"eq": day}})).first(1))?;
        if !existing.records.is_empty() {
            return Ok(());
        }
        let counted = aggregate::run(
            "greeting",
            &Aggregate::new()
                .filter(json!({"and": [
                    {"createdAt": {"gte": format!("{day}T00:00:00Z")}},
                    {"createdAt": {"lt": format!("{}T00:00:00Z", shift_days(&day, 1))}},
                ]}))
                .count(),
        )?;
        let greetings = counted.first().and_then(|r| r.int(0)).unwrap_or(0);
        records::create("welcomeDigest", &json!({"day": day, "greetings": greetings}))?;
        log::info(&format!("digest for {day}: {greetings} greetings"));
        Ok(())
    }

    fn before_write(&self, change: &Change) -> Verdict {
        let Some(email) = change.after_str("email") else { return Verdict::Allow };
        let blocked: Vec<String> = match settings::get("blocked_domains") {
            Ok(list) => list.unwrap_or_default(),
            Err(err) => return Verdict::Deny(format!("the welcome plugin's settings are unreadable: {err}")),
        };
        let domain = email.rsplit_once('@').map(|(_, d)| d.trim().to_ascii_lowercase()).unwrap_or_default();
        if blocked.iter().any(|b| b.trim().trim_start_matches('@').eq_ignore_ascii_case(&domain)) {
            return Verdict::Deny(format!("e-mail addresses at {domain} are not accepted"));
        }
        Verdict::Allow
    }
}

kith_plugin_sdk::register_plugin!(Welcome);

/// Creates the welcome TASK for a contact (fields in GraphQL names); returns its id and subject.
fn welcome_task(contact_id: &str, contact: &serde_json::Value, subject: Option<&str>) -> Result<(String, String)> {
    let name = display_name(contact);
    let template: String = match subject {
        Some(subject) => subject.to_owned(),
        None => settings::get("task_subject")?.unwrap_or_else(|| "Welcome {name}".to_owned()),
    };
    let subject = template.replace("{name}", &name);
    let mut task = json!({
        "kind": "TASK",
        "subject": subject,
        "body": format!("Say hello to {name}: a first contact in the first three days matters."),
        "contactId": contact_id,
        "dueAt": due_in_three_days(&kith_plugin_sdk::now()),
    });
    if let Some(owner) = contact.get("ownerId").and_then(|v| v.as_str()) {
        task["ownerId"] = json!(owner);
    }
    let created = records::create("activity", &task)?;
    Ok((created.id, subject))
}

/// `day` (YYYY-MM-DD) moved by `delta` days.
fn shift_days(day: &str, delta: i64) -> String {
    Date::parse(day).map_or_else(|| day.to_owned(), |d| d.add_days(delta).to_string())
}

fn display_name(payload: &serde_json::Value) -> String {
    let part = |field: &str| payload.get(field).and_then(|v| v.as_str()).unwrap_or("").trim().to_owned();
    let name = format!("{} {}", part("firstName"), part("lastName")).trim().to_owned();
    if !name.is_empty() {
        return name;
    }
    let email = part("email");
    if email.is_empty() { "the new contact".to_owned() } else { email }
}

/// `now` plus three days, keeping the RFC 3339 shape (`YYYY-MM-DDTHH:MM:SS.ffffffZ`).
fn due_in_three_days(now: &str) -> String {
    match (Date::parse(now), now.get(10..)) {
        (Some(day), Some(time)) => format!("{}{time}", day.add_days(3)),
        _ => now.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kith_plugin_sdk::ErrorCode;
    use kith_plugin_sdk::testing::TestHost;

    fn created(host: &TestHost, fields: serde_json::Value) -> Event {
        let id = host.insert("contact", fields.clone());
        Event::new("contact.created", "contact", Some(&id), fields)
    }

    #[test]
    fn a_new_contact_gets_a_welcome_task_for_its_owner() {
        let host = TestHost::new().grant("activities:write").own("greeting").at("2026-02-27T09:30:00.000000Z");
        let event = created(&host, json!({"firstName": "Ada", "lastName": "Lovelace", "ownerId": "u-1"}));
        host.on_event::<Welcome>(&event).unwrap();
        // A redelivered event greets nobody twice.
        host.on_event::<Welcome>(&event).unwrap();
        let tasks = host.records("activity");
        assert_eq!(tasks.len(), 1);
        let greetings = host.records("greeting");
        assert_eq!(greetings.len(), 1);
        assert_eq!(greetings[0].str("taskId"), Some(tasks[0].id.as_str()));
        assert_eq!(tasks[0].str("kind"), Some("TASK"));
        assert_eq!(tasks[0].str("subject"), Some("Welcome Ada Lovelace"));
        assert_eq!(tasks[0].str("ownerId"), Some("u-1"));
        assert_eq!(tasks[0].str("contactId"), event.record_id.as_deref());
        assert_eq!(tasks[0].str("dueAt"), Some("2026-03-02T09:30:00.000000Z"));
        assert_eq!(host.logs().len(), 1);
    }

    #[test]
    fn the_subject_comes_from_the_settings() {
        let host =
            TestHost::new().grant("activities:write").own("greeting").setting("task_subject", json!("Call {name}"));
        let event = created(&host, json!({"email": "grace@example.org"}));
        host.on_event::<Welcome>(&event).unwrap();
        assert_eq!(host.records("activity")[0].str("subject"), Some("Call grace@example.org"));
    }

    #[test]
    fn without_the_grant_the_task_is_refused_and_the_event_fails() {
        let host = TestHost::new().own("greeting");
        let event = created(&host, json!({"firstName": "Ada"}));
        let err = host.on_event::<Welcome>(&event).unwrap_err();
        assert_eq!(err.code, ErrorCode::Denied);
        assert!(host.records("activity").is_empty());
        assert_eq!(host.denied(), vec!["activities:write".to_owned()]);
    }

    #[test]
    fn other_events_are_ignored() {
        let host = TestHost::new();
        host.on_event::<Welcome>(&Event::new("contact.updated", "contact", Some("x"), json!({}))).unwrap();
        assert!(host.records("activity").is_empty());
    }

    #[test]
    fn blocklisted_domains_are_refused_ignoring_case() {
        let host = TestHost::new().setting("blocked_domains", json!(["Mailinator.com", "@spam.test"]));
        let verdict = host.before_write::<Welcome>(&Change::create("contact", json!({"email": "x@MAILINATOR.com"})));
        assert_eq!(verdict, Verdict::Deny("e-mail addresses at mailinator.com are not accepted".into()));
        let verdict = host.before_write::<Welcome>(&Change::create("contact", json!({"email": "y@spam.test"})));
        assert!(matches!(verdict, Verdict::Deny(_)));
        let verdict = host.before_write::<Welcome>(&Change::create("contact", json!({"email": "ada@example.org"})));
        assert_eq!(verdict, Verdict::Allow);
        let verdict = host.before_write::<Welcome>(&Change::create("contact", json!({"firstName": "No mail"})));
        assert_eq!(verdict, Verdict::Allow);
    }

    #[test]
    fn welcome_status_is_computed_for_a_page_at_once() {
        let host = TestHost::new().grant("activities:write").own("greeting");
        let greeted = created(&host, json!({"firstName": "Ada"}));
        host.on_event::<Welcome>(&greeted).unwrap();
        let other = host.insert("contact", json!({"firstName": "Grace"}));
        let ids = vec![greeted.record_id.clone().unwrap(), other];
        let values = host.compute_field::<Welcome>("contact", "welcomeStatus", &ids).unwrap();
        assert_eq!(values, vec![json!("GREETED"), json!("PENDING")]);
    }

    #[test]
    fn greeting_stats_count_per_month() {
        let host = TestHost::new().own("greeting");
        host.insert("greeting", json!({"contactId": "a", "createdAt": "2026-01-05T10:00:00.000000Z"}));
        host.insert("greeting", json!({"contactId": "b", "createdAt": "2026-01-20T10:00:00.000000Z"}));
        host.insert("greeting", json!({"contactId": "c", "createdAt": "2026-03-01T10:00:00.000000Z"}));
        let stats = host.call::<Welcome>(&Call::new("greetingStats", json!({"since": null})), false).unwrap();
        assert_eq!(stats["total"], json!(3));
        assert_eq!(
            stats["byMonth"],
            json!([{"month": "2026-01-01", "greetings": 2}, {"month": "2026-03-01", "greetings": 1}])
        );
        assert_eq!(stats["lastAt"], json!("2026-03-01T10:00:00.000000Z"));
        let since = host.call::<Welcome>(&Call::new("greetingStats", json!({"since": "2026-02-01"})), false).unwrap();
        assert_eq!(since["total"], json!(1));
    }

    #[test]
    fn greet_again_names_a_missing_contact() {
        let host = TestHost::new().grant("contacts:read").grant("activities:write");
        let err = host.call::<Welcome>(&Call::new("greetAgain", json!({"contactId": "nope"})), true).unwrap_err();
        assert_eq!((err.code, err.field.as_deref()), (ErrorCode::InvalidInput, Some("contactId")));
        let id = host.insert("contact", json!({"firstName": "Ada"}));
        let done = host
            .call::<Welcome>(&Call::new("greetAgain", json!({"contactId": id, "subject": "Hi {name}"})), true)
            .unwrap();
        assert_eq!(done["subject"], json!("Hi Ada"));
        assert_eq!(host.records("activity").len(), 1);
    }

    #[test]
    fn the_digest_counts_yesterday_once() {
        let host = TestHost::new().own("greeting").own("welcomeDigest").at("2026-03-02T00:05:00.000000Z");
        host.insert("greeting", json!({"contactId": "a", "createdAt": "2026-03-01T10:00:00.000000Z"}));
        host.insert("greeting", json!({"contactId": "b", "createdAt": "2026-02-28T23:59:00.000000Z"}));
        host.run_job::<Welcome>("digest").unwrap();
        host.run_job::<Welcome>("digest").unwrap();
        let digests = host.records("welcomeDigest");
        assert_eq!(digests.len(), 1);
        assert_eq!(digests[0].str("day"), Some("2026-03-01"));
        assert_eq!(digests[0].fields["greetings"], json!(1));
    }

    #[test]
    fn due_dates_roll_over_months_and_leap_years() {
        assert_eq!(due_in_three_days("2024-02-27T00:00:00.000000Z"), "2024-03-01T00:00:00.000000Z");
        assert_eq!(due_in_three_days("2026-12-30T23:59:59.999999Z"), "2027-01-02T23:59:59.999999Z");
    }
}
