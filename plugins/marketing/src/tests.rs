//! Unit tests of the marketing plugin against the SDK's in-memory test host. End-to-end tests
//! against Kith and a real SMTP server are in `tests/it/marketing.rs`.

use kith_plugin_sdk::routes::{Request, Response};
use kith_plugin_sdk::testing::TestHost;
use kith_plugin_sdk::{Call, Change, Event, Verdict};
use serde_json::{Value as Json, json};

use crate::Marketing;
use crate::template::{self, Context};

const OWN: &[&str] =
    &["emailTemplate", "emailCampaign", "sequence", "sequenceStep", "sequenceEnrolment", "emailSend", "suppression"];

fn host() -> TestHost {
    let mut host = TestHost::new()
        .grant("contacts:read")
        .grant("contacts:write")
        .grant("segments:read")
        .grant("consents:write")
        .grant("activities:write")
        .grant("mail:send")
        .grant("donors/donations:read")
        .foreign("donors", "donation", "donations")
        .setting("from", json!("Park Friends <news@parkfriends.example>"))
        .setting("postal_address", json!("1 Park Lane, Springfield"))
        .setting("webhook_secret", json!("s3cret"))
        .at("2026-06-15T10:00:00.000Z");
    for object in OWN {
        host = host.own(object);
    }
    host
}

fn call(host: &TestHost, name: &str, arguments: Json) -> kith_plugin_sdk::Result<Json> {
    host.call::<Marketing>(&Call::new(name, arguments), true)
}

/// Writes a record as Kith does: the before-write hook first (as a user).
fn write(host: &TestHost, object: &str, fields: Json) -> Result<String, String> {
    let mut fields = fields;
    let mut change = Change::create(object, fields.clone());
    change.actor = "user:ada".into();
    match host.before_write::<Marketing>(&change) {
        Verdict::Allow => {}
        Verdict::Modify(changes) => fields.as_object_mut().unwrap().extend(changes),
        Verdict::Deny(reason) => return Err(reason),
        other => panic!("{other:?}"),
    }
    Ok(host.insert(object, fields))
}

fn contact(host: &TestHost, first: &str, email: &str, opt_in: bool) -> String {
    host.insert(
        "contact",
        json!({"firstName": first, "lastName": "Doe", "email": email, "emailOptIn": opt_in, "doNotContact": false, "addressCity": "Springfield"}),
    )
}

fn segment(host: &TestHost) -> String {
    host.insert(
        "segment",
        json!({"name": "Springfield", "object": "CONTACT", "filter": {"addressCity": {"eq": "Springfield"}}}),
    )
}

fn template(host: &TestHost) -> String {
    write(
        host,
        "emailTemplate",
        json!({
            "name": "Spring appeal",
            "subject": "Spring is here, {{contact.firstName|friend}}",
            "html": "<html><body><p>Dear {{contact.firstName|friend}},</p><p><a href=\"https://parkfriends.example/give?a=1&amp;b=2\">Give</a></p></body></html>",
        }),
    )
    .unwrap()
}

fn campaign(host: &TestHost, template: &str, segment: &str) -> String {
    write(host, "emailCampaign", json!({"name": "Spring appeal 2026", "templateId": template, "segmentId": segment}))
        .unwrap()
}

/// A request to a signed URL the plugin made.
fn request_to(method: &str, url: &str) -> Request {
    let local = url.strip_prefix("https://kith.test/p/plugin").unwrap_or(url);
    let (path, query) = local.split_once('?').unwrap_or((local, ""));
    Request::new(method, path).query(query)
}

fn link_in(html: &str, route: &str) -> String {
    let marker = format!("https://kith.test/p/plugin{route}?");
    let start = html.find(&marker).unwrap_or_else(|| panic!("no {route} link in {html}"));
    let end = start + html[start..].find('"').unwrap();
    html[start..end].replace("&amp;", "&")
}

#[test]
fn merge_fields_fill_escape_and_fall_back() {
    let context = Context {
        contact: json!({"firstName": "<Ada>", "lastName": "", "customFields": {"tier": "gold"}}),
        campaign: Some(json!({"name": "Spring", "code": "SPRING"})),
        unsubscribe_url: "https://x/u?s=1&sig=2".into(),
        postal_address: "1 Park Lane".into(),
    };
    let html = "Hi {{contact.firstName}} {{contact.lastName|there}} ({{contact.customFields.tier}}) {{{contact.firstName}}} {{campaign.code}} <a href=\"{{unsubscribeUrl}}\">x</a>";
    assert_eq!(
        template::render(html, &context, true),
        "Hi &lt;Ada&gt; there (gold) <Ada> SPRING <a href=\"https://x/u?s=1&amp;sig=2\">x</a>"
    );
    assert_eq!(template::render("Hi {{ contact.firstName }}", &context, false), "Hi <Ada>");
    assert!(template::check("Hi {{contact.firstName|friend}} {{postalAddress}}").is_ok());
    assert!(template::check("Hi {{contact.first-name}}").is_err());
    assert!(template::check("Hi {{password}}").unwrap_err().contains("unknown merge field"));
    assert!(template::check("Hi {{contact.firstName").unwrap_err().contains("not closed"));
}

#[test]
fn plain_text_is_derived_from_html() {
    let text = template::html_to_text(
        "<html><head><style>p{}</style></head><body><h1>News</h1><p>Dear Ada,<br>thanks &amp; see <a href=\"https://x.example/a\">our site</a>.</p><ul><li>one</li><li>two</li></ul></body></html>",
    );
    assert_eq!(text, "News\n\nDear Ada,\nthanks & see our site (https://x.example/a).\n\n- one\n- two");
}

#[test]
fn templates_with_unknown_merge_fields_or_no_body_are_refused() {
    let host = host();
    let refused =
        write(&host, "emailTemplate", json!({"name": "x", "subject": "{{contact.first name}}", "text": "hi"}));
    assert!(refused.unwrap_err().contains("subject"));
    let refused = write(&host, "emailTemplate", json!({"name": "x", "subject": "Hi"}));
    assert!(refused.unwrap_err().contains("HTML or a text body"));
}

#[test]
fn a_campaign_goes_to_consenting_unsuppressed_members_once_in_batches() {
    let host = host().setting("batch_size", json!(50));
    let segment = segment(&host);
    let mut reachable = Vec::new();
    for i in 0..120 {
        reachable.push(contact(&host, &format!("P{i}"), &format!("p{i}@example.net"), true));
    }
    contact(&host, "NoOptIn", "no@example.net", false);
    host.insert("contact", json!({"firstName": "Dnc", "email": "dnc@example.net", "emailOptIn": true, "doNotContact": true, "addressCity": "Springfield"}));
    host.insert("contact", json!({"firstName": "NoMail", "emailOptIn": true, "addressCity": "Springfield"}));
    host.insert(
        "contact",
        json!({"firstName": "Elsewhere", "email": "far@example.net", "emailOptIn": true, "addressCity": "Shelbyville"}),
    );
    let bounced = contact(&host, "Bounced", "Gone@Example.net", true);
    host.insert("suppression", json!({"email": "gone@example.net", "reason": "HARD_BOUNCE"}));
    let template = template(&host);
    let campaign = campaign(&host, &template, &segment);
    assert_eq!(host.record("emailCampaign", &campaign).unwrap().str("code"), Some("SPRING-APPEAL-2026"));

    // A draft is not sent.
    host.run_job::<Marketing>("send").unwrap();
    assert!(host.sent_mail().is_empty());
    call(&host, "scheduleCampaign", json!({"id": campaign})).unwrap();
    // 121 candidates (120 + the suppressed one) in batches of 50: three runs.
    for expected in ["SENDING", "SENDING", "SENT"] {
        host.run_job::<Marketing>("send").unwrap();
        assert_eq!(host.record("emailCampaign", &campaign).unwrap().str("status"), Some(expected));
    }
    let sent = host.sent_mail();
    assert_eq!(sent.len(), 120);
    let mut to: Vec<&str> = sent.iter().map(|m| m.to.as_str()).collect();
    to.sort_unstable();
    to.dedup();
    assert_eq!(to.len(), 120, "each recipient once");
    assert!(!to.contains(&"no@example.net") && !to.contains(&"dnc@example.net") && !to.contains(&"Gone@Example.net"));
    let record = host.record("emailCampaign", &campaign).unwrap();
    assert_eq!((record.fields["recipients"].as_i64(), record.fields["skipped"].as_i64()), (Some(120), Some(1)));
    assert!(host.records("emailSend").iter().all(|s| s.str("contactId") != Some(bounced.as_str())));
    // Sent: the job finds nothing more to do.
    host.run_job::<Marketing>("send").unwrap();
    assert_eq!(host.sent_mail().len(), 120);

    let first = &sent[0];
    assert_eq!(first.subject, "Spring is here, P0");
    assert_eq!(first.from, "Park Friends <news@parkfriends.example>");
    let html = first.html.as_deref().unwrap();
    assert!(html.contains("Dear P0,"), "{html}");
    assert!(html.contains("1 Park Lane, Springfield"), "the postal address: {html}");
    assert!(!html.contains("href=\"https://parkfriends.example/give"), "links are tracked: {html}");
    let header = |name: &str| first.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    assert_eq!(header("List-Unsubscribe-Post").as_deref(), Some("List-Unsubscribe=One-Click"));
    let unsubscribe = header("List-Unsubscribe").unwrap();
    assert!(unsubscribe.starts_with("<https://kith.test/p/plugin/u?s="), "{unsubscribe}");
    assert!(first.reference.as_deref().unwrap().starts_with("send:"));
}

#[test]
fn scheduled_campaigns_wait_for_their_time_and_can_be_cancelled() {
    let host = host();
    let segment = segment(&host);
    contact(&host, "Ada", "ada@example.net", true);
    let template = template(&host);
    let campaign = campaign(&host, &template, &segment);
    call(&host, "scheduleCampaign", json!({"id": campaign, "at": "2026-06-16T09:00:00Z"})).unwrap();
    host.run_job::<Marketing>("send").unwrap();
    assert!(host.sent_mail().is_empty(), "not before its time");
    // By hand, the status does not move.
    let before = host.record("emailCampaign", &campaign).unwrap().fields;
    let mut after = before.clone();
    after["status"] = json!("SENT");
    let mut change = Change::update("emailCampaign", before, after);
    change.actor = "user:ada".into();
    assert!(matches!(host.before_write::<Marketing>(&change), Verdict::Deny(r) if r.contains("scheduleCampaign")));
    call(&host, "cancelCampaign", json!({"id": campaign})).unwrap();
    let host = host.at("2026-06-16T09:01:00.000Z");
    host.run_job::<Marketing>("send").unwrap();
    assert!(host.sent_mail().is_empty(), "cancelled");
    assert!(call(&host, "cancelCampaign", json!({"id": campaign})).is_err(), "cancelled already");
    assert!(call(&host, "scheduleCampaign", json!({"id": campaign})).is_err(), "not a draft");
}

#[test]
fn campaigns_need_a_sender_and_a_contact_segment() {
    let host = host().setting("from", json!(""));
    let segment = segment(&host);
    let deals = host.insert("segment", json!({"name": "Deals", "object": "DEAL", "filter": {}}));
    let template = template(&host);
    assert!(
        write(&host, "emailCampaign", json!({"name": "x", "templateId": template, "segmentId": deals}))
            .unwrap_err()
            .contains("contacts")
    );
    let campaign = campaign(&host, &template, &segment);
    let err = call(&host, "scheduleCampaign", json!({"id": campaign})).unwrap_err();
    assert_eq!(err.field.as_deref(), Some("from"));
}

#[test]
fn previews_and_test_sends_render_for_a_contact_and_track_nothing() {
    let host = host();
    let ada = contact(&host, "Ada", "ada@example.net", true);
    let template = template(&host);
    let preview = host
        .call::<Marketing>(&Call::new("previewEmail", json!({"templateId": template, "contactId": ada})), false)
        .unwrap();
    assert_eq!(preview["subject"], "Spring is here, Ada");
    assert!(preview["text"].as_str().unwrap().contains("Give (https://parkfriends.example/give?a=1&b=2)"), "{preview}");
    let id =
        call(&host, "sendTestEmail", json!({"templateId": template, "contactId": ada, "to": "me@parkfriends.example"}))
            .unwrap();
    assert!(id.as_str().is_some_and(|s| !s.is_empty()));
    let sent = host.sent_mail();
    assert_eq!(
        (sent.len(), sent[0].to.as_str(), sent[0].subject.as_str()),
        (1, "me@parkfriends.example", "[TEST] Spring is here, Ada")
    );
    assert!(sent[0].html.as_deref().unwrap().contains("href=\"https://parkfriends.example/give"), "not tracked");
    assert!(sent[0].reference.is_none());
    assert!(host.records("emailSend").is_empty());
    // Its unsubscribe link unsubscribes nobody.
    let unsubscribe = link_in(sent[0].html.as_deref().unwrap(), "/u");
    let page = host.handle_request::<Marketing>(&request_to("POST", &unsubscribe).body(b"List-Unsubscribe=One-Click"));
    assert!(page.body_text().contains("test message"));
    assert!(host.records("consent").is_empty());
}

/// One campaign sent to Ada; her message.
fn sent_to_ada(host: &TestHost) -> (String, String, kith_plugin_sdk::mail::Message) {
    let segment = segment(host);
    let ada = contact(host, "Ada", "ada@example.net", true);
    let template = template(host);
    let campaign = campaign(host, &template, &segment);
    call(host, "scheduleCampaign", json!({"id": campaign})).unwrap();
    host.run_job::<Marketing>("send").unwrap();
    let message = host.sent_mail().pop().unwrap();
    (ada, campaign, message)
}

#[test]
fn opens_clicks_and_one_click_unsubscribe_are_recorded() {
    let host = host();
    let (ada, campaign, message) = sent_to_ada(&host);
    let html = message.html.clone().unwrap();
    let send = host.records("emailSend").pop().unwrap();

    let pixel = host.handle_request::<Marketing>(&request_to("GET", &link_in(&html, "/o")));
    assert_eq!(pixel.status, 200);
    assert_eq!(pixel.body[..3], *b"GIF");
    let click = host.handle_request::<Marketing>(&request_to("GET", &link_in(&html, "/c")));
    assert_eq!(click.status, 302);
    let location = click.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case("location")).unwrap().1.clone();
    assert_eq!(location, "https://parkfriends.example/give?a=1&b=2");
    let tracked = host.record("emailSend", &send.id).unwrap();
    assert!(tracked.str("openedAt").is_some() && tracked.str("clickedAt").is_some());
    assert_eq!((tracked.fields["opens"].as_i64(), tracked.fields["clicks"].as_i64()), (Some(1), Some(1)));

    // A changed link is refused, and redirects nowhere.
    let forged = link_in(&html, "/c").replace("parkfriends.example", "evil.example");
    let refused: Response = host.handle_request::<Marketing>(&request_to("GET", &forged));
    assert_eq!(refused.status, 400);

    // The page asks; only the POST unsubscribes.
    let unsubscribe =
        message.headers.iter().find(|(n, _)| n == "List-Unsubscribe").unwrap().1.trim_matches(['<', '>']).to_owned();
    let page = host.handle_request::<Marketing>(&request_to("GET", &unsubscribe));
    assert!(page.body_text().contains("a***@example.net"), "{}", page.body_text());
    assert!(host.records("consent").is_empty());
    let done = host.handle_request::<Marketing>(&request_to("POST", &unsubscribe).body(b"List-Unsubscribe=One-Click"));
    assert_eq!(done.status, 200);
    let consents = host.records("consent");
    assert_eq!(consents.len(), 1);
    assert_eq!(
        (
            consents[0].str("contactId"),
            consents[0].str("channel"),
            consents[0].str("status"),
            consents[0].str("source")
        ),
        (Some(ada.as_str()), Some("EMAIL"), Some("WITHDRAWN"), Some("one-click unsubscribe (RFC 8058)"))
    );
    assert_eq!(consents[0].str("statement"), Some("campaign: Spring appeal 2026"));
    assert!(host.record("emailSend", &send.id).unwrap().str("unsubscribedAt").is_some());

    let report = call(&host, "campaignReport", json!({"id": campaign})).unwrap();
    assert_eq!((report["recipients"].as_i64(), report["uniqueOpens"].as_i64()), (Some(1), Some(1)));
    assert_eq!((report["uniqueClicks"].as_i64(), report["unsubscribes"].as_i64()), (Some(1), Some(1)));
}

#[test]
fn outcomes_update_sends_and_hard_bounces_suppress() {
    let host = host();
    let (ada, _, message) = sent_to_ada(&host);
    let send = host.records("emailSend").pop().unwrap();
    let mut sent = Event::new("mail.sent", "mail", None, json!({}));
    sent.payload =
        json!({"messageId": "<m1@kith>", "to": "ada@example.net", "reference": message.reference, "attempts": 1});
    sent.occurred_at = "2026-06-15T10:00:05.000Z".into();
    host.on_event::<Marketing>(&sent).unwrap();
    let record = host.record("emailSend", &send.id).unwrap();
    assert_eq!((record.str("status"), record.str("messageId")), (Some("SENT"), Some("<m1@kith>")));
    let activity = host.records("activity").pop().unwrap();
    assert_eq!((activity.str("kind"), activity.str("contactId")), (Some("EMAIL"), Some(ada.as_str())));
    assert_eq!(activity.str("subject"), Some("E-mail sent: Spring is here, Ada"));

    // A second send bounces for good at the relay.
    let bob = contact(&host, "Bob", "bob@example.net", true);
    let step_send =
        host.insert("emailSend", json!({"key": "k", "contactId": bob, "email": "bob@example.net", "status": "QUEUED"}));
    let mut failed = Event::new("mail.failed", "mail", None, json!({}));
    failed.payload = json!({"reference": format!("send:{step_send}"), "error": "550 no such user", "permanent": true});
    host.on_event::<Marketing>(&failed).unwrap();
    assert_eq!(host.record("emailSend", &step_send).unwrap().str("status"), Some("BOUNCED"));
    let suppression = host.records("suppression").pop().unwrap();
    assert_eq!((suppression.str("email"), suppression.str("reason")), (Some("bob@example.net"), Some("HARD_BOUNCE")));
}

#[test]
fn provider_webhooks_need_the_token_and_suppress_bounces_and_complaints() {
    let host = host();
    let (ada, _, _) = sent_to_ada(&host);
    let body = json!([
        {"event": "bounce", "email": "x@example.net", "type": "bounce", "reason": "550 unknown"},
        {"event": "spamreport", "email": "ada@example.net"},
        {"event": "delivered", "email": "y@example.net"},
    ]);
    let request = Request::new("POST", "/webhooks/bounces").body(body.to_string().as_bytes());
    assert_eq!(host.handle_request::<Marketing>(&request).status, 401);
    let wrong = request.clone().query("token=nope");
    assert_eq!(host.handle_request::<Marketing>(&wrong).status, 401);
    let answer = host.handle_request::<Marketing>(&request.clone().header("X-Webhook-Token", "s3cret"));
    assert_eq!(answer.status, 200, "{}", answer.body_text());
    assert_eq!(serde_json::from_slice::<Json>(&answer.body).unwrap(), json!({"suppressed": 2, "ignored": 1}));
    let mut suppressed: Vec<(String, String)> = host
        .records("suppression")
        .iter()
        .map(|s| (s.str("email").unwrap().to_owned(), s.str("reason").unwrap().to_owned()))
        .collect();
    suppressed.sort();
    assert_eq!(
        suppressed,
        vec![("ada@example.net".into(), "COMPLAINT".into()), ("x@example.net".into(), "HARD_BOUNCE".into())]
    );
    // A complaint also withdraws consent.
    let consent = host.records("consent").pop().unwrap();
    assert_eq!((consent.str("contactId"), consent.str("source")), (Some(ada.as_str()), Some("spam complaint")));
    let bad = Request::new("POST", "/webhooks/bounces").query("token=s3cret").body(b"not json");
    assert_eq!(host.handle_request::<Marketing>(&bad).status, 400);
}

#[test]
fn provider_payloads_are_understood() {
    let postmark = json!({"RecordType": "Bounce", "Type": "HardBounce", "Email": "a@x.example", "Description": "gone"});
    let soft = json!({"RecordType": "Bounce", "Type": "SoftBounce", "Email": "b@x.example"});
    let mailgun = json!({"event-data": {"event": "failed", "severity": "permanent", "recipient": "c@x.example"}});
    let ours = json!({"type": "complaint", "email": "d@x.example"});
    let reasons: Vec<Option<&str>> =
        [postmark, soft, mailgun, ours].iter().flat_map(crate::tracking::reports).map(|r| r.reason).collect();
    assert_eq!(reasons, vec![Some("HARD_BOUNCE"), None, Some("HARD_BOUNCE"), Some("COMPLAINT")]);
}

#[test]
fn campaign_reports_count_the_gifts_with_its_code() {
    let host = host();
    let (ada, campaign, _) = sent_to_ada(&host);
    for (amount, status, code) in [
        ("50.00", "RECEIVED", "SPRING-APPEAL-2026"),
        ("25.00", "RECEIVED", "SPRING-APPEAL-2026"),
        ("99.00", "REFUNDED", "SPRING-APPEAL-2026"),
        ("10.00", "RECEIVED", "OTHER"),
    ] {
        host.insert(
            "donation",
            json!({"contactId": ada, "amount": amount, "baseAmount": amount, "baseAmountCurrency": "USD", "status": status, "sourceCode": code, "receivedDate": "2026-06-15"}),
        );
    }
    let report = call(&host, "campaignReport", json!({"id": campaign})).unwrap();
    assert_eq!((report["gifts"].as_i64(), report["giftCurrency"].as_str()), (Some(2), Some("USD")));
    assert_eq!(report["giftAmount"].as_str().map(|a| a.parse::<f64>().unwrap()), Some(75.0));

    // Without the grant (the donors plugin not enabled): no gift figures, the rest as before.
    let without = TestHost::new().grant("contacts:read").grant("segments:read").grant("mail:send");
    let without = OWN.iter().fold(without, |h, o| h.own(o)).setting("from", json!("news@parkfriends.example"));
    let (_, campaign, _) = sent_to_ada(&without);
    let report = call(&without, "campaignReport", json!({"id": campaign})).unwrap();
    assert!(report["gifts"].is_null() && report["giftAmount"].is_null());
    assert_eq!(report["recipients"].as_i64(), Some(1));
}

#[test]
fn engagement_scores_count_recent_opens_clicks_and_gifts() {
    let host = host();
    let ada = contact(&host, "Ada", "ada@example.net", true);
    let bob = contact(&host, "Bob", "bob@example.net", true);
    for (opened, clicked) in [
        (Some("2026-06-01T00:00:00.000Z"), Some("2026-06-01T00:00:00.000Z")),
        (Some("2026-05-01T00:00:00.000Z"), None),
        (Some("2025-01-01T00:00:00.000Z"), None),
    ] {
        host.insert("emailSend", json!({"contactId": ada, "email": "ada@example.net", "status": "SENT", "openedAt": opened, "clickedAt": clicked}));
    }
    host.insert(
        "donation",
        json!({"contactId": ada, "status": "RECEIVED", "receivedDate": "2026-06-10", "amount": "5"}),
    );
    let scores = host.compute_field::<Marketing>("contact", "engagementScore", &[ada.clone(), bob.clone()]).unwrap();
    // Two recent opens (10), one click (15), one gift (30); the old open does not count.
    assert_eq!(scores, vec![json!(55), json!(0)]);
    assert_eq!(crate::reports::score(30, 30, 30), 100);

    // The `engagement` job stores them on the contacts (for segments), once a day each.
    host.run_job::<Marketing>("engagement").unwrap();
    let stored = |id: &str| host.record("contact", id).unwrap().fields["customFields"].clone();
    assert_eq!(stored(&ada), json!({"engagementScore": 55, "engagementScoredOn": "2026-06-15"}));
    assert_eq!(stored(&bob), json!({"engagementScore": 0, "engagementScoredOn": "2026-06-15"}));
    let version = host.record("contact", &bob).unwrap().version;
    host.run_job::<Marketing>("engagement").unwrap();
    assert_eq!(host.record("contact", &bob).unwrap().version, version, "scored today: left alone");
    // Bob clicks: his score is stored on the next run, the same day.
    host.insert("emailSend", json!({"contactId": bob, "email": "bob@example.net", "status": "SENT", "clickedAt": "2026-06-15T09:55:00.000Z"}));
    host.run_job::<Marketing>("engagement").unwrap();
    assert_eq!(stored(&bob)["engagementScore"], json!(15));
    let segment = json!({"customFields": {"engagementScore": {"gte": 15}}});
    let engaged = host
        .run(|| kith_plugin_sdk::records::query("contact", &kith_plugin_sdk::Query::new().filter(segment.clone())))
        .unwrap();
    assert_eq!(engaged.records.len(), 2);
}

/// A sequence with the given steps (position, fields), as a user writes them.
fn sequence(host: &TestHost, trigger: &str, steps: &[Json]) -> String {
    let id = write(host, "sequence", json!({"name": format!("Welcome {trigger}"), "trigger": trigger})).unwrap();
    for (i, step) in steps.iter().enumerate() {
        let mut fields = step.clone();
        fields["sequenceId"] = json!(id);
        fields["position"] = json!((i as i64 + 1) * 10);
        write(host, "sequenceStep", fields).unwrap();
    }
    id
}

fn enrolment(host: &TestHost, contact: &str) -> kith_plugin_sdk::Record {
    host.records("sequenceEnrolment").into_iter().find(|e| e.str("contactId") == Some(contact)).unwrap()
}

#[test]
fn a_welcome_series_waits_sends_branches_and_reaches_its_goal() {
    let host = host();
    let template = template(&host);
    let series = sequence(
        &host,
        "CONTACT_CREATED",
        &[
            json!({"kind": "SEND", "templateId": template}),
            json!({"kind": "WAIT", "waitDays": 2}),
            json!({"kind": "BRANCH", "branchOn": "OPENED", "elsePosition": 60}),
            json!({"kind": "SET_FIELD", "field": "lifecycleStage", "value": "PROSPECT"}),
            json!({"kind": "EXIT_IF", "condition": {"lifecycleStage": {"eq": "PROSPECT"}}}),
            json!({"kind": "TASK", "taskSubject": "Call about the welcome e-mail", "waitDays": 1}),
        ],
    );
    let ada = contact(&host, "Ada", "ada@example.net", true);
    let bob = contact(&host, "Bob", "bob@example.net", true);
    for id in [&ada, &bob] {
        host.on_event::<Marketing>(&Event::new("contact.created", "contact", Some(id), json!({"id": id}))).unwrap();
    }
    assert_eq!(host.records("sequenceEnrolment").len(), 2);
    host.run_job::<Marketing>("sequences").unwrap();
    assert_eq!(host.sent_mail().len(), 2, "the first step sends at once");
    assert_eq!(enrolment(&host, &ada).fields["position"].as_i64(), Some(30));
    assert_eq!(enrolment(&host, &ada).str("nextAt"), Some("2026-06-17T10:00:00.000Z"));
    // Ada opens hers; two days on, she goes on, Bob to the task.
    let ada_send = host.records("emailSend").into_iter().find(|s| s.str("contactId") == Some(ada.as_str())).unwrap();
    host.run(|| {
        kith_plugin_sdk::records::update(
            "emailSend",
            &ada_send.id,
            &json!({"openedAt": "2026-06-15T11:00:00.000Z"}),
            None,
        )
    })
    .unwrap();
    host.run_job::<Marketing>("sequences").unwrap();
    assert_eq!(enrolment(&host, &ada).str("status"), Some("ACTIVE"), "not due yet");
    let host = host.at("2026-06-17T10:00:01.000Z");
    host.run_job::<Marketing>("sequences").unwrap();
    let done = enrolment(&host, &ada);
    assert_eq!((done.str("status"), done.str("exitReason")), (Some("EXITED"), Some("goal reached (step 50)")));
    assert_eq!(host.record("contact", &ada).unwrap().str("lifecycleStage"), Some("PROSPECT"));
    assert_eq!(enrolment(&host, &bob).str("status"), Some("COMPLETED"));
    let tasks: Vec<_> = host.records("activity").into_iter().filter(|a| a.str("kind") == Some("TASK")).collect();
    assert_eq!((tasks.len(), tasks[0].str("contactId")), (1, Some(bob.as_str())));
    assert_eq!(tasks[0].str("dueAt"), Some("2026-06-18T10:00:01.000Z"));
    // Once through, not again (it does not re-enrol), and by hand neither.
    assert!(call(&host, "enrolInSequence", json!({"sequenceId": series, "contactId": bob})).is_err());
}

#[test]
fn segment_sequences_enrol_members_and_waits_follow_the_local_clock() {
    let host = host().setting("time_zone", json!("America/New_York"));
    let segment = segment(&host);
    let series =
        write(&host, "sequence", json!({"name": "Locals", "trigger": "SEGMENT", "segmentId": segment})).unwrap();
    write(
        &host,
        "sequenceStep",
        json!({"sequenceId": series, "position": 1, "kind": "WAIT_UNTIL", "weekday": "MONDAY", "timeOfDay": "09:00"}),
    )
    .unwrap();
    let ada = contact(&host, "Ada", "ada@example.net", true);
    let paris = host.insert("contact", json!({"firstName": "Zoé", "email": "zoe@example.net", "emailOptIn": true, "addressCity": "Springfield", "timeZone": "Europe/Paris"}));
    host.run_job::<Marketing>("sequences").unwrap();
    // 2026-06-15 is a Monday, 10:00 UTC: 06:00 in New York (09:00 is 13:00 UTC), 12:00 in Paris
    // (past 09:00: next Monday, 07:00 UTC).
    assert_eq!(enrolment(&host, &ada).str("nextAt"), Some("2026-06-15T13:00:00.000Z"));
    assert_eq!(enrolment(&host, &paris).str("nextAt"), Some("2026-06-22T07:00:00.000Z"));
    // Scanned in full: the next run looks again only a minute on, and enrols nobody twice.
    host.run_job::<Marketing>("sequences").unwrap();
    assert_eq!(host.records("sequenceEnrolment").len(), 2);
    let later = host.clone().at("2026-06-15T10:05:00.000Z");
    contact(&later, "Cy", "cy@example.net", true);
    later.run_job::<Marketing>("sequences").unwrap();
    assert_eq!(later.records("sequenceEnrolment").len(), 3);
    // Steps are checked as they are written.
    let bad = write(
        &host,
        "sequenceStep",
        json!({"sequenceId": series, "position": 2, "kind": "WAIT_UNTIL", "timeOfDay": "25:00"}),
    );
    assert!(bad.unwrap_err().contains("25:00"));
    let bad = write(&host, "sequenceStep", json!({"sequenceId": series, "position": 2, "kind": "SEND"}));
    assert!(bad.unwrap_err().contains("templateId"));
}

#[test]
fn suppressing_by_hand_normalises_and_is_idempotent() {
    let host = host();
    let first = call(&host, "suppressEmail", json!({"email": " Ada@Example.NET "})).unwrap();
    let again = call(&host, "suppressEmail", json!({"email": "ada@example.net"})).unwrap();
    assert_eq!(first, again);
    assert_eq!(host.records("suppression").len(), 1);
    assert_eq!(host.records("suppression")[0].str("email"), Some("ada@example.net"));
    assert!(call(&host, "suppressEmail", json!({"email": "nope"})).is_err());
}

#[test]
fn a_sequence_that_re_enrols_sends_again_each_time_through() {
    let host = host();
    let template = template(&host);
    let series = write(&host, "sequence", json!({"name": "Monthly", "trigger": "MANUAL", "reenrol": true})).unwrap();
    write(&host, "sequenceStep", json!({"sequenceId": series, "position": 1, "kind": "SEND", "templateId": template}))
        .unwrap();
    let ada = contact(&host, "Ada", "ada@example.net", true);
    let enrol = || call(&host, "enrolInSequence", json!({"sequenceId": series, "contactId": ada}));
    enrol().unwrap();
    assert!(enrol().is_err(), "not twice at once");
    host.run_job::<Marketing>("sequences").unwrap();
    assert_eq!(enrolment(&host, &ada).str("status"), Some("COMPLETED"));
    enrol().unwrap();
    assert_eq!(enrolment(&host, &ada).fields["round"].as_i64(), Some(2));
    host.run_job::<Marketing>("sequences").unwrap();
    assert_eq!(host.sent_mail().len(), 2, "once each time through");
    let keys: Vec<String> = host.records("emailSend").iter().map(|s| s.str("key").unwrap().to_owned()).collect();
    assert!(keys[0].ends_with(":1") && keys[1].ends_with(":2"), "{keys:?}");
    // Without the contact's consent, the step sends nothing (and the series goes on).
    call(&host, "exitSequence", json!({"sequenceId": series, "contactId": ada})).unwrap_err();
    host.run(|| kith_plugin_sdk::records::update("contact", &ada, &json!({"emailOptIn": false}), None)).unwrap();
    enrol().unwrap();
    host.run_job::<Marketing>("sequences").unwrap();
    assert_eq!(host.sent_mail().len(), 2);
    assert_eq!(enrolment(&host, &ada).str("status"), Some("COMPLETED"));
}

#[test]
fn tag_steps_add_and_remove_one_tag_and_keep_the_others() {
    let host = host();
    let series = sequence(
        &host,
        "MANUAL",
        &[json!({"kind": "ADD_TAG", "value": "Newcomer"}), json!({"kind": "REMOVE_TAG", "value": "LAPSED"})],
    );
    let ada = contact(&host, "Ada", "ada@example.net", true);
    host.run(|| kith_plugin_sdk::records::update("contact", &ada, &json!({"tags": ["lapsed", "donor"]}), None))
        .unwrap();
    call(&host, "enrolInSequence", json!({"sequenceId": series, "contactId": ada})).unwrap();
    host.run_job::<Marketing>("sequences").unwrap();
    let stored = host.record("contact", &ada).unwrap();
    assert_eq!(stored.fields["tags"], json!(["donor", "Newcomer"]));
    assert_eq!(enrolment(&host, &ada).str("status"), Some("COMPLETED"));
    // A tag step without a name is refused when saved.
    let refused = write(&host, "sequenceStep", json!({"sequenceId": series, "position": 5, "kind": "ADD_TAG"}));
    assert!(refused.is_err_and(|reason| reason.contains("value")));
}
