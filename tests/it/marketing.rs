//! The bundled marketing plugin end to end, on SQLite and PostgreSQL, with a real SMTP server on
//! loopback (aiosmtpd) and its links followed over real HTTP: a campaign to a segment reaches
//! the contacts who consented (not the others, not a suppressed address), once; opens and
//! clicks are recorded, a one-click unsubscribe (RFC 8058) withdraws the consent with its
//! history and sticks for the next campaign, a provider's bounce webhook suppresses the
//! address, and the report counts the gifts raised with the campaign's code (donors plugin). A
//! welcome series starts when a contact is created and shows on their record.

use std::sync::Arc;

use kith_core::config::{MailConfig, MailTls};
use kith_core::domain::actor::Role;
use kith_core::plugin::manager::{Grants, PluginManager};
use kith_core::plugin::{bundled, jobs, start_runtime};
use kith_core::service::mail::Mailer;
use kith_tests::TestDb;
use kith_tests::smtp::{Received, SmtpSink};
use serde_json::{Value, json};

use crate::util::{Server, admin, code, eventually, exchange_as, plugins_config, token};

fn mail_config(sink: &SmtpSink) -> MailConfig {
    MailConfig {
        relay: "127.0.0.1".into(),
        port: sink.port,
        tls: MailTls::None,
        senders: vec!["@parkfriends.example".into()],
        per_second: 500,
        retry_base_secs: 1,
        max_attempts: 3,
        timeout_ms: 5_000,
        poll_interval_ms: 50,
        ..MailConfig::default()
    }
}

/// The donors and marketing plugins, enabled with what they ask for, marketing configured.
async fn runtime(db: &TestDb) -> Arc<PluginManager> {
    let runtime = start_runtime(&db.kith, &plugins_config()).await.unwrap();
    for id in ["donors", "marketing"] {
        let plugin = bundled::BUNDLED.iter().find(|b| b.id == id).unwrap();
        runtime.install(&admin(), plugin.manifest, plugin.component).await.unwrap();
        runtime.enable(&admin(), id, Grants::All).await.unwrap();
    }
    for (key, value) in [
        ("from", "Park Friends <appeals@parkfriends.example>"),
        ("postal_address", "1 Park Lane, Springfield"),
        ("webhook_secret", "hook-secret"),
    ] {
        runtime.set_setting(&admin(), "marketing", key, Some(json!(value))).await.unwrap();
    }
    runtime.refresh().await.unwrap();
    runtime
}

/// Kith serving `db` on loopback (its address the public URL links start with), the donors and
/// marketing plugins, and the mail worker sending to `sink`.
struct Running {
    server: Server,
    origin: String,
    runtime: Arc<PluginManager>,
    worker: kith_core::service::mail::worker::Worker,
}

impl Running {
    async fn start(db: &TestDb, sink: &SmtpSink) -> Running {
        let mailer = Arc::new(Mailer::new(&mail_config(sink)).unwrap().unwrap());
        db.kith.configure_mail(Some(mailer.clone()));
        let server = Server::start(db).await;
        let origin = format!("http://{}", server.addr);
        db.kith.set_public_url(&origin);
        let runtime = runtime(db).await;
        let worker = kith_core::service::mail::worker::start(&db.kith, mailer);
        Running { server, origin, runtime, worker }
    }

    async fn stop(self) {
        self.worker.stop().await;
        self.runtime.stop().await;
        self.server.stop().await;
    }
}

/// The body of a message as sent, quoted-printable undone.
fn body(message: &Received) -> String {
    let joined = message.data.replace("=\r\n", "").replace("=\n", "");
    let mut out = Vec::with_capacity(joined.len());
    let bytes = joined.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'=', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The path and query of the first link to `route` in `text` (HTML-escaped or not).
fn link(text: &str, origin: &str, route: &str) -> String {
    let marker = format!("{origin}/p/marketing{route}?");
    let start = text.find(&marker).unwrap_or_else(|| panic!("no {route} link in {text}"));
    let end = start + text[start..].find(['"', '>', ')', '\r', '\n', ' ']).unwrap();
    text[start + origin.len()..end].replace("&amp;", "&")
}

fn to(sink: &SmtpSink, address: &str) -> Vec<Received> {
    sink.received().into_iter().filter(|m| m.to.iter().any(|t| t == address)).collect()
}

fn data<'a>(response: &'a Value, field: &str) -> &'a Value {
    assert!(response["errors"].is_null(), "{response}");
    &response["data"][field]
}

#[tokio::test]
async fn an_appeal_reaches_consenting_contacts_once_and_an_unsubscribe_sticks() {
    let Some(sink) = SmtpSink::start_or_skip("marketing::an_appeal_reaches_consenting_contacts_once").await else {
        return;
    };
    for db in TestDb::all().await {
        let name = db.name;
        let running = Running::start(&db, &sink).await;
        let (server, origin, runtime) = (&running.server, running.origin.clone(), &running.runtime);
        let (agent, manager) = (token(&db, Role::Agent).await, token(&db, Role::Manager).await);
        let address = |who: &str| format!("{who}-{name}@example.net");

        let contact = |first: &str, opt_in: bool, dnc: bool| {
            let (server, agent, email) = (&server, agent.clone(), address(&first.to_lowercase()));
            let first = first.to_owned();
            async move {
                let r = server
                    .gql(
                        &agent,
                        "mutation($f: String, $e: String, $o: Boolean, $d: Boolean) { createContact(input: {firstName: $f, lastName: \"Friend\", email: $e, emailOptIn: $o, doNotContact: $d, addressCity: \"Springfield\"}) { id } }",
                        json!({"f": first, "e": email, "o": opt_in, "d": dnc}),
                    )
                    .await;
                data(&r, "createContact")["id"].as_str().unwrap().to_owned()
            }
        };
        let ada = contact("Ada", true, false).await;
        let bob = contact("Bob", true, false).await;
        contact("Cy", false, false).await;
        contact("Dee", true, true).await;
        contact("Eve", true, false).await;
        let r = server
            .gql(&manager, "mutation($e: String!) { suppressEmail(email: $e) }", json!({"e": address("EVE")}))
            .await;
        data(&r, "suppressEmail");
        let r = server
            .gql(
                &manager,
                "mutation { createSegment(input: {name: \"Springfield\", object: CONTACT, filter: {addressCity: {eq: \"Springfield\"}}}) { id } }",
                json!({}),
            )
            .await;
        let segment = data(&r, "createSegment")["id"].as_str().unwrap().to_owned();

        // A template with a merge field that does not exist is refused, naming it.
        let create_template = "mutation($n: String!, $s: String!, $h: String) { createEmailTemplate(input: {name: $n, subject: $s, html: $h}) { id } }";
        let r = server
            .gql(&manager, create_template, json!({"n": "Bad", "s": "Hi {{contact.nickname!}}", "h": "<p>x</p>"}))
            .await;
        assert!(r["errors"][0]["message"].as_str().unwrap_or_default().contains("unknown merge field"), "{name}: {r}");
        let html = "<html><body><p>Dear {{contact.firstName|friend}},</p><p>Our park needs you. <a href=\"https://parkfriends.example/give?appeal=spring\">Give now</a></p></body></html>";
        let r = server
            .gql(
                &manager,
                create_template,
                json!({"n": "Spring appeal", "s": "Spring is here, {{contact.firstName}}", "h": html}),
            )
            .await;
        let template = data(&r, "createEmailTemplate")["id"].as_str().unwrap().to_owned();
        let preview = server
            .gql(
                &agent,
                "query($t: ID!, $c: ID!) { previewEmail(templateId: $t, contactId: $c) { subject text } }",
                json!({"t": template, "c": ada}),
            )
            .await;
        assert_eq!(data(&preview, "previewEmail")["subject"], "Spring is here, Ada", "{name}");

        let create_campaign = "mutation($n: String!, $t: ID!, $s: ID!) { createEmailCampaign(input: {name: $n, templateId: $t, segmentId: $s}) { id code status } }";
        let r = server
            .gql(&manager, create_campaign, json!({"n": "Spring appeal 2026", "t": template, "s": segment}))
            .await;
        let campaign = data(&r, "createEmailCampaign").clone();
        assert_eq!(
            (campaign["code"].as_str(), campaign["status"].as_str()),
            (Some("SPRING-APPEAL-2026"), Some("DRAFT"))
        );
        let campaign = campaign["id"].as_str().unwrap().to_owned();
        // Its status moves through the mutations only.
        let r = server
            .gql(
                &manager,
                "mutation($id: ID!) { updateEmailCampaign(id: $id, input: {status: SENT}) { id } }",
                json!({"id": campaign}),
            )
            .await;
        assert!(r["errors"][0]["message"].as_str().unwrap_or_default().contains("scheduleCampaign"), "{name}: {r}");
        let r = server.gql(&agent, "mutation($id: ID!) { scheduleCampaign(id: $id) }", json!({"id": campaign})).await;
        assert_eq!(code(&r), "FORBIDDEN", "{name}: agents do not send campaigns: {r}");
        let r = server.gql(&manager, "mutation($id: ID!) { scheduleCampaign(id: $id) }", json!({"id": campaign})).await;
        data(&r, "scheduleCampaign");

        let run = jobs::run_now(runtime, "marketing", "send").await.unwrap();
        assert_eq!(run.status, "succeeded", "{name}: {run:?}");
        let got = eventually(60, "Ada's appeal", || async { to(&sink, &address("ada")).into_iter().next() }).await;
        eventually(60, "Bob's appeal", || async { to(&sink, &address("bob")).into_iter().next() }).await;
        for nobody in ["cy", "dee", "eve"] {
            assert!(to(&sink, &address(nobody)).is_empty(), "{name}: {nobody} did not consent or is suppressed");
        }
        assert_eq!(got.header("Subject").as_deref(), Some("Spring is here, Ada"));
        assert!(got.header("From").unwrap_or_default().contains("appeals@parkfriends.example"));
        assert_eq!(got.header("List-Unsubscribe-Post").as_deref(), Some("List-Unsubscribe=One-Click"));
        let text = body(&got);
        assert!(text.contains("Dear Ada,") && text.contains("1 Park Lane, Springfield"), "{name}: {text}");
        assert!(!text.contains("href=\"https://parkfriends.example/give"), "{name}: links are tracked: {text}");

        // Opening and clicking, over HTTP.
        let get = |path: String| {
            let addr = server.addr;
            async move { exchange_as(addr, "GET", &path, "text/plain", None, b"", "").await }
        };
        let pixel = get(link(&text, &origin, "/o")).await;
        assert_eq!(pixel.status, 200, "{name}: {pixel:?}");
        assert!(pixel.head.contains("content-type: image/gif"), "{}", pixel.head);
        let click = get(link(&text, &origin, "/c")).await;
        assert_eq!(click.status, 302, "{name}: {click:?}");
        assert!(click.head.contains("location: https://parkfriends.example/give?appeal=spring"), "{}", click.head);
        let forged = get(link(&text, &origin, "/c").replace("parkfriends.example", "evil.example")).await;
        assert_ne!(forged.status, 302, "{name}: a changed link redirects nowhere");

        // Bob unsubscribes in one click (RFC 8058: what his mail client POSTs).
        let bobs = to(&sink, &address("bob")).remove(0);
        let unsubscribe = bobs.header("List-Unsubscribe").unwrap();
        let unsubscribe = unsubscribe.trim_matches(['<', '>']).trim_start_matches(origin.as_str()).to_owned();
        let page = get(unsubscribe.clone()).await;
        assert_eq!(page.status, 200, "{name}: {page:?}");
        assert!(page.body.contains("Unsubscribe"), "{}", page.body);
        let done = exchange_as(
            server.addr,
            "POST",
            &unsubscribe,
            "application/x-www-form-urlencoded",
            None,
            b"",
            "List-Unsubscribe=One-Click",
        )
        .await;
        assert_eq!(done.status, 200, "{name}: {done:?}");
        let r = server
            .gql(&manager, "query($id: ID!) { contact(id: $id) { emailOptIn consents { edges { node { channel status source statement recordedBy } } } } }", json!({"id": bob}))
            .await;
        let bob_now = data(&r, "contact");
        assert_eq!(bob_now["emailOptIn"], false, "{name}: {r}");
        let history: Vec<&Value> =
            bob_now["consents"]["edges"].as_array().unwrap().iter().map(|e| &e["node"]).collect();
        let withdrawn = history.iter().find(|c| c["status"] == "WITHDRAWN").unwrap_or_else(|| panic!("{name}: {r}"));
        assert_eq!(withdrawn["source"], "one-click unsubscribe (RFC 8058)", "{name}: {r}");
        assert_eq!(withdrawn["statement"], "campaign: Spring appeal 2026");
        assert_eq!(withdrawn["recordedBy"], "plugin:marketing");

        // The outcomes come back: sends SENT, an activity on Ada's timeline.
        let report = || async {
            let r = server
                .gql(&manager, "query($id: ID!) { campaignReport(id: $id) { recipients sent delivered uniqueOpens uniqueClicks unsubscribes gifts giftAmount } }", json!({"id": campaign}))
                .await;
            data(&r, "campaignReport").clone()
        };
        let sent = eventually(60, "the outcomes", || async {
            let r = report().await;
            (r["sent"] == 2).then_some(r)
        })
        .await;
        assert_eq!(sent["recipients"], 2, "{name}: {sent}");
        assert_eq!(
            (sent["uniqueOpens"].as_i64(), sent["uniqueClicks"].as_i64(), sent["unsubscribes"].as_i64()),
            (Some(1), Some(1), Some(1))
        );
        let r = server
            .gql(
                &agent,
                "query($id: ID!) { contact(id: $id) { timeline(first: 20) { kind summary } } }",
                json!({"id": ada}),
            )
            .await;
        let timeline = data(&r, "contact")["timeline"].to_string();
        assert!(timeline.contains("E-mail sent: Spring is here, Ada"), "{name}: {timeline}");

        // A gift with the campaign's code counts in the report.
        let r = server
            .gql(&agent, "mutation($c: ID!) { recordDonation(contactId: $c, amount: \"120.00\", sourceCode: \"SPRING-APPEAL-2026\") }", json!({"c": ada}))
            .await;
        data(&r, "recordDonation");
        let raised = report().await;
        assert_eq!(raised["gifts"], 1, "{name}: {raised}");
        assert_eq!(raised["giftAmount"].as_str().map(|a| a.parse::<f64>().unwrap()), Some(120.0), "{raised}");

        // The engagement job stores each score on the contact (a custom field the plugin
        // declares), so a segment can select the engaged: Ada opened, clicked and gave.
        let run = jobs::run_now(runtime, "marketing", "engagement").await.unwrap();
        assert_eq!(run.status, "succeeded", "{name}: {run:?}");
        let r = server
            .gql(
                &manager,
                "mutation { createSegment(input: {name: \"Engaged\", object: CONTACT, filter: {customFields: {engagementScore: {gte: 30}}}}) { members { totalCount edges { node { ... on Contact { firstName customFields } } } } } }",
                json!({}),
            )
            .await;
        let members = &data(&r, "createSegment")["members"];
        assert_eq!(members["totalCount"], 1, "{name}: {r}");
        let engaged = &members["edges"][0]["node"];
        assert_eq!(engaged["firstName"], "Ada", "{name}: {r}");
        assert!(engaged["customFields"]["engagementScore"].as_f64().is_some_and(|s| s >= 50.0), "{name}: {r}");

        // The provider reports Ada's address bouncing for good (SendGrid's form).
        let hook = "/p/marketing/webhooks/bounces?token=hook-secret";
        let bounce =
            json!([{"event": "bounce", "email": address("ada"), "type": "bounce", "reason": "550 5.1.1 unknown"}])
                .to_string();
        let refused = exchange_as(
            server.addr,
            "POST",
            "/p/marketing/webhooks/bounces?token=wrong",
            "application/json",
            None,
            b"",
            &bounce,
        )
        .await;
        assert_eq!(refused.status, 401, "{name}: {refused:?}");
        let taken = exchange_as(server.addr, "POST", hook, "application/json", None, b"", &bounce).await;
        assert_eq!((taken.status, taken.json()["suppressed"].as_i64()), (200, Some(1)), "{name}: {taken:?}");

        // Running the job again sends nobody the appeal twice; a second campaign reaches neither
        // Bob (unsubscribed) nor Ada (bounced).
        jobs::run_now(runtime, "marketing", "send").await.unwrap();
        let r = server.gql(&manager, create_campaign, json!({"n": "Summer news", "t": template, "s": segment})).await;
        let second = data(&r, "createEmailCampaign")["id"].as_str().unwrap().to_owned();
        let r = server.gql(&manager, "mutation($id: ID!) { scheduleCampaign(id: $id) }", json!({"id": second})).await;
        data(&r, "scheduleCampaign");
        jobs::run_now(runtime, "marketing", "send").await.unwrap();
        let r = server
            .gql(
                &manager,
                "query($id: ID!) { emailCampaign(id: $id) { status recipients skipped } }",
                json!({"id": second}),
            )
            .await;
        let second = data(&r, "emailCampaign");
        assert_eq!(
            (second["status"].as_str(), second["recipients"].as_i64(), second["skipped"].as_i64()),
            (Some("SENT"), Some(0), Some(2)),
            "{name}: {second}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        assert_eq!(to(&sink, &address("ada")).len(), 1, "{name}: Ada once");
        assert_eq!(to(&sink, &address("bob")).len(), 1, "{name}: Bob once");

        running.stop().await;
        db.cleanup().await;
    }
    sink.stop().await;
}

#[tokio::test]
async fn a_welcome_series_starts_when_a_contact_is_created() {
    let Some(sink) = SmtpSink::start_or_skip("marketing::a_welcome_series_starts_when_a_contact_is_created").await
    else {
        return;
    };
    for db in TestDb::all().await {
        let name = db.name;
        let running = Running::start(&db, &sink).await;
        let (server, runtime) = (&running.server, &running.runtime);
        let manager = token(&db, Role::Manager).await;
        let gql = |query: &'static str, variables: Value| {
            let (server, manager) = (&server, manager.clone());
            async move { server.gql(&manager, query, variables).await }
        };
        let r = gql(
            "mutation { createEmailTemplate(input: {name: \"Welcome\", subject: \"Welcome, {{contact.firstName|friend}}\", text: \"Glad you are here.\"}) { id } }",
            json!({}),
        )
        .await;
        let template = data(&r, "createEmailTemplate")["id"].as_str().unwrap().to_owned();
        let r = gql(
            "mutation { createSequence(input: {name: \"Welcome series\", trigger: CONTACT_CREATED}) { id status } }",
            json!({}),
        )
        .await;
        let sequence = data(&r, "createSequence").clone();
        assert_eq!(sequence["status"], "ACTIVE", "{name}");
        let sequence = sequence["id"].as_str().unwrap().to_owned();
        let step = "mutation($s: ID!, $p: Int!, $k: SequenceStepKind!, $t: ID, $d: Int, $subject: String) { createSequenceStep(input: {sequenceId: $s, position: $p, kind: $k, templateId: $t, waitDays: $d, taskSubject: $subject}) { id } }";
        let r = gql(step, json!({"s": sequence, "p": 1, "k": "SEND"})).await;
        assert!(r["errors"][0]["message"].as_str().unwrap_or_default().contains("templateId"), "{name}: {r}");
        data(&gql(step, json!({"s": sequence, "p": 1, "k": "SEND", "t": template})).await, "createSequenceStep");
        data(&gql(step, json!({"s": sequence, "p": 2, "k": "WAIT", "d": 3})).await, "createSequenceStep");
        data(
            &gql(step, json!({"s": sequence, "p": 3, "k": "TASK", "subject": "Call the new friend"})).await,
            "createSequenceStep",
        );
        // A tag for the newcomer, before the first message, keeping the tags she has.
        let tag = "mutation($s: ID!, $k: SequenceStepKind!, $v: String) { createSequenceStep(input: {sequenceId: $s, position: 0, kind: $k, value: $v}) { id } }";
        let r = gql(tag, json!({"s": sequence, "k": "ADD_TAG"})).await;
        assert!(r["errors"][0]["message"].as_str().unwrap_or_default().contains("value"), "{name}: {r}");
        data(&gql(tag, json!({"s": sequence, "k": "ADD_TAG", "v": "Newcomer"})).await, "createSequenceStep");

        let email = format!("newbie-{name}@example.net");
        let r = gql(
            "mutation($e: String) { createContact(input: {firstName: \"Nia\", email: $e, emailOptIn: true, tags: [\"donor\"]}) { id } }",
            json!({"e": email}),
        )
        .await;
        let nia = data(&r, "createContact")["id"].as_str().unwrap().to_owned();
        // The event enrols her; the job sends the first message and waits three days.
        let enrolment = "query($id: ID!) { contact(id: $id) { sequenceEnrolments { edges { node { status position nextAt sequence { name } } } } } }";
        eventually(30, "the enrolment", || async {
            let r = gql(enrolment, json!({"id": nia})).await;
            let edges = r["data"]["contact"]["sequenceEnrolments"]["edges"].as_array().cloned().unwrap_or_default();
            (!edges.is_empty()).then_some(())
        })
        .await;
        let run = jobs::run_now(runtime, "marketing", "sequences").await.unwrap();
        assert_eq!(run.status, "succeeded", "{name}: {run:?}");
        let got = eventually(60, "the welcome", || async { to(&sink, &email).into_iter().next() }).await;
        assert_eq!(got.header("Subject").as_deref(), Some("Welcome, Nia"), "{name}");
        let r = gql(enrolment, json!({"id": nia})).await;
        let node = &data(&r, "contact")["sequenceEnrolments"]["edges"][0]["node"];
        assert_eq!((node["status"].as_str(), node["position"].as_i64()), (Some("ACTIVE"), Some(3)), "{name}: {r}");
        assert_eq!(node["sequence"]["name"], "Welcome series");
        let r = gql("query($id: ID!) { contact(id: $id) { tags } }", json!({"id": nia})).await;
        let mut tags: Vec<String> =
            serde_json::from_value(data(&r, "contact")["tags"].clone()).unwrap_or_else(|e| panic!("{e}: {r}"));
        tags.sort();
        assert_eq!(tags, ["Newcomer", "donor"], "{name}: added, the other kept: {r}");
        let next = chrono::DateTime::parse_from_rfc3339(node["nextAt"].as_str().unwrap()).unwrap();
        let days = (next.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_hours();
        assert!((71..=72).contains(&days), "{name}: three days on, {days} h");
        let r = gql(
            "query($id: ID!) { sequenceReport(id: $id) { active steps { position report { recipients } } } }",
            json!({"id": sequence}),
        )
        .await;
        let report = data(&r, "sequenceReport");
        assert_eq!(
            (report["active"].as_i64(), report["steps"][0]["report"]["recipients"].as_i64()),
            (Some(1), Some(1)),
            "{name}: {report}"
        );

        // A sequence triggered by a segment enrols its members (in pages, from the last seen),
        // each once, and those who join it later; its wait follows the contact's time zone.
        for (first, zone) in [("Oslo", "Europe/Oslo"), ("Lima", "America/Lima")] {
            db.create("contact", json!({"firstName": first, "email": format!("{first}@example.net"), "addressCity": "Springfield", "timeZone": zone}))
                .await
                .unwrap();
        }
        let r = gql("mutation { createSegment(input: {name: \"Springfield\", object: CONTACT, filter: {addressCity: {eq: \"Springfield\"}}}) { id } }", json!({})).await;
        let segment = data(&r, "createSegment")["id"].as_str().unwrap().to_owned();
        let r = gql(
            "mutation($s: ID!) { createSequence(input: {name: \"Locals\", trigger: SEGMENT, segmentId: $s}) { id } }",
            json!({"s": segment}),
        )
        .await;
        let locals = data(&r, "createSequence")["id"].as_str().unwrap().to_owned();
        let until = "mutation($s: ID!) { createSequenceStep(input: {sequenceId: $s, position: 1, kind: WAIT_UNTIL, timeOfDay: \"09:00\"}) { id } }";
        data(&gql(until, json!({"s": locals})).await, "createSequenceStep");
        jobs::run_now(runtime, "marketing", "sequences").await.unwrap();
        jobs::run_now(runtime, "marketing", "sequences").await.unwrap();
        let r = gql("query($s: ID!) { sequenceEnrolments(filter: {sequenceId: {eq: $s}}) { edges { node { nextAt contact { firstName } } } } }", json!({"s": locals})).await;
        let edges = data(&r, "sequenceEnrolments")["edges"].as_array().unwrap().clone();
        assert_eq!(edges.len(), 2, "{name}: each member once: {r}");
        for edge in &edges {
            let (who, next) =
                (edge["node"]["contact"]["firstName"].as_str().unwrap(), edge["node"]["nextAt"].as_str().unwrap());
            let utc = chrono::DateTime::parse_from_rfc3339(next)
                .unwrap()
                .with_timezone(&chrono::Utc)
                .format("%H:%M")
                .to_string();
            // Nine in Oslo is 08:00 UTC in winter, 07:00 in summer; in Lima (no summer time) 14:00.
            let expected: &[&str] = if who == "Oslo" { &["07:00", "08:00"] } else { &["14:00"] };
            assert!(expected.contains(&utc.as_str()), "{name}: {who} at nine, their time: {next}");
        }

        running.stop().await;
        db.cleanup().await;
    }
    sink.stop().await;
}

/// A batch job (`batches = true`) runs again at once while its runs write, each run its own
/// transaction: one run of `send` queues a campaign of 130 at 50 a batch (three batches), then
/// stops; the next run finds nothing to do.
#[tokio::test]
async fn a_campaign_goes_out_in_batches_within_one_job_run() {
    for db in TestDb::all().await {
        let name = db.name;
        let mailer = Mailer::new(&MailConfig {
            relay: "127.0.0.1".into(),
            port: 9,
            tls: MailTls::None,
            senders: vec!["@parkfriends.example".into()],
            ..MailConfig::default()
        })
        .unwrap()
        .unwrap();
        db.kith.configure_mail(Some(Arc::new(mailer)));
        db.kith.set_public_url("https://crm.parkfriends.example");
        let runtime = runtime(&db).await;
        runtime.set_setting(&admin(), "marketing", "batch_size", Some(json!(50))).await.unwrap();
        runtime.refresh().await.unwrap();
        for i in 0..130 {
            let fields = json!({"firstName": format!("P{i}"), "email": format!("p{i}@example.net"), "emailOptIn": true, "addressCity": "Springfield"});
            db.create("contact", fields).await.unwrap();
        }
        let segment = db
            .create(
                "segment",
                json!({"name": "Springfield", "object": "CONTACT", "filter": {"addressCity": {"eq": "Springfield"}}}),
            )
            .await
            .unwrap()
            .id()
            .to_string();
        let template = db
            .create(
                "emailTemplate",
                json!({"name": "News", "subject": "News for {{contact.firstName}}", "text": "Hello."}),
            )
            .await
            .unwrap()
            .id()
            .to_string();
        let campaign = db
            .create("emailCampaign", json!({"name": "News", "templateId": template, "segmentId": segment}))
            .await
            .unwrap()
            .id();
        // Scheduled (as `scheduleCampaign` does: its fields are the plugin's own to write).
        let plugin = kith_core::domain::actor::Actor::plugin("marketing", Role::Admin, 0);
        let tx = db.kith.store.begin(&plugin).await.unwrap();
        let def = db.kith.object("emailCampaign").unwrap();
        let input = kith_core::service::input::Input::from_json(
            &def,
            &json!({"status": "SCHEDULED", "scheduledAt": "2026-01-01T00:00:00Z"}),
        )
        .unwrap();
        kith_core::service::records::update(&tx, &db.kith.registry(), "emailCampaign", campaign, input, None)
            .await
            .unwrap();
        tx.commit().await.unwrap();

        let run = jobs::run_now(&runtime, "marketing", "send").await.unwrap();
        assert_eq!(run.status, "succeeded", "{name}: {run:?}");
        let stored = kith_core::store::records::get(db.kith.store.conn(), &def, campaign).await.unwrap().unwrap();
        assert_eq!(stored.get("status").as_text(), Some("SENT"), "{name}: one run, every batch");
        assert_eq!(stored.get("recipients").as_int(), Some(130), "{name}");
        let queued = kith_core::store::mail::list(db.kith.store.conn(), None, None, 1_000).await.unwrap();
        assert_eq!(queued.len(), 130, "{name}");
        let mut to: Vec<String> = queued.into_iter().map(|m| m.recipient).collect();
        to.sort();
        to.dedup();
        assert_eq!(to.len(), 130, "{name}: each once");
        // Nothing more to do: the next run writes nothing and queues nothing.
        let run = jobs::run_now(&runtime, "marketing", "send").await.unwrap();
        assert_eq!(run.status, "succeeded", "{name}: {run:?}");
        assert_eq!(kith_core::store::mail::list(db.kith.store.conn(), None, None, 1_000).await.unwrap().len(), 130);
        runtime.stop().await;
        db.cleanup().await;
    }
}

/// The custom fields the plugin keeps are defined when it is enabled; a field of the same key
/// and another kind, defined before, refuses the enable with what to do, and leaves it disabled.
#[tokio::test]
async fn enabling_defines_the_kept_custom_fields_or_refuses_a_clash() {
    use kith_core::domain::custom_field::CustomFieldDef;
    for db in TestDb::all().await {
        let name = db.name;
        let clash = CustomFieldDef {
            object: "contact".into(),
            key: "engagementScore".into(),
            label: "Engagement".into(),
            kind: "TEXT".into(),
            required: false,
            options: Vec::new(),
        };
        let tx = db.kith.store.begin(&admin()).await.unwrap();
        kith_core::service::records::define_custom_field(&tx, &db.kith.registry(), &clash).await.unwrap();
        tx.commit().await.unwrap();
        let runtime = start_runtime(&db.kith, &plugins_config()).await.unwrap();
        let marketing = bundled::BUNDLED.iter().find(|b| b.id == "marketing").unwrap();
        runtime.install(&admin(), marketing.manifest, marketing.component).await.unwrap();
        let err = runtime.enable(&admin(), "marketing", Grants::All).await.unwrap_err().to_string();
        assert!(err.contains("engagementScore") && err.contains("TEXT") && err.contains("NUMBER"), "{name}: {err}");
        let row = kith_core::store::plugins::get(db.kith.store.conn(), "marketing").await.unwrap().unwrap();
        assert!(!row.enabled, "{name}: still disabled");
        // Without the clash, enabling defines both fields.
        use sea_orm::ConnectionTrait;
        db.kith
            .store
            .pool()
            .execute_unprepared("DELETE FROM custom_field_def WHERE \"key\" = 'engagementScore'")
            .await
            .unwrap();
        runtime.enable(&admin(), "marketing", Grants::All).await.unwrap();
        let defined = kith_core::store::custom_fields::for_object(db.kith.store.conn(), "contact").await.unwrap();
        let kinds: Vec<(&str, &str)> = defined.iter().map(|d| (d.key.as_str(), d.kind.as_str())).collect();
        assert!(
            kinds.contains(&("engagementScore", "NUMBER")) && kinds.contains(&("engagementScoredOn", "DATE")),
            "{name}: {kinds:?}"
        );
        runtime.stop().await;
        db.cleanup().await;
    }
}
