//! The console in a real headless Chromium (DevTools protocol, `kith_tests::browser`), over
//! real HTTP on loopback, on both databases, one Chromium per database. Each flow is a step
//! function, named in the failure: first-run setup; creating and editing a contact with real
//! clicks and typing; live search under the Content-Security-Policy and the `/` shortcut; the
//! contacts list on a phone's screen; a version conflict (reload, then overwrite); a form with a
//! tampered CSRF token; moving a deal on the board by keyboard and by dragging, and closing it
//! lost; changing a ticket's status from the inbox; recording a gift through the form the
//! `donors` plugin's mutation generates; importing a CSV with a bad row; reports and the
//! administration pages; signing out; signing in as a VIEWER, who is offered no edits and whose
//! forged posts change nothing. axe-core finds no serious or critical violation on any page
//! type. A failing step saves a screenshot under `target/console-screenshots/`. Without a
//! Chromium the test says loudly that it was skipped (`.ci/run` installs Debian's `chromium`).

use std::io::Write as _;
use std::path::PathBuf;

use kith_core::domain::actor::Role;
use kith_core::service::users;
use kith_tests::TestDb;
use kith_tests::browser::{BrowserError, Chromium};
use serde_json::{Value, json};

use crate::util::{Server, admin};

/// Where screenshots go: `CONSOLE_SCREENSHOTS` (to refresh `docs/console/`) or `target/`.
fn shots_dir() -> PathBuf {
    std::env::var_os("CONSOLE_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/console-screenshots"))
}

/// The name the API token that changes records "meanwhile" goes by in the audit log.
const SCRIPT: &str = "Nightly sync";

/// What the steps share: the browser, the server and its database, an API token to set up and
/// check records with, and where the contact the walk keeps lives.
struct Walk<'a> {
    browser: Chromium,
    base: String,
    db: &'a TestDb,
    server: &'a Server,
    /// An ADMIN API token named [`SCRIPT`].
    api: String,
    /// `/o/contacts/{id}` of Grace Hopper, once created.
    contact: String,
    /// Whether to refresh the screenshots in `docs/console/`.
    save: bool,
}

impl Walk<'_> {
    /// Opens `path` on the server and waits for it to load.
    async fn goto(&mut self, path: &str) -> Result<(), BrowserError> {
        self.browser.goto(&format!("{}{path}", self.base)).await
    }

    /// Saves a screenshot for the docs, when refreshing them.
    async fn shot(&mut self, name: &str) -> Result<(), BrowserError> {
        if self.save { self.browser.screenshot(&shots_dir().join(name)).await } else { Ok(()) }
    }

    /// Fails with the page's accessibility violations, if any.
    async fn accessible(&mut self, page: &str) -> Result<(), BrowserError> {
        let violations = self.browser.axe().await?;
        ensure(violations.is_empty(), format!("axe on the {page} page: {violations:#?}"))
    }

    /// Text of the first element matching `selector` (empty when there is none).
    async fn text_of(&mut self, selector: &str) -> Result<String, BrowserError> {
        let value =
            self.browser.eval(&format!("document.querySelector({})?.textContent ?? ''", json!(selector))).await?;
        Ok(value.as_str().unwrap_or_default().trim().to_owned())
    }

    /// The value beside the label `label` in the page's fields (`dl.fields`).
    async fn field(&mut self, label: &str) -> Result<String, BrowserError> {
        let value = self
            .browser
            .eval(&format!(
                "[...document.querySelectorAll('dl.fields dt')].find(dt => dt.textContent.trim() === {})\
                 ?.nextElementSibling?.textContent ?? ''",
                json!(label)
            ))
            .await?;
        Ok(value.as_str().unwrap_or_default().trim().to_owned())
    }

    /// Whether the page's text contains `text`.
    async fn shows(&mut self, text: &str) -> Result<bool, BrowserError> {
        Ok(self.browser.eval(&format!("document.body.textContent.includes({})", json!(text))).await? == true)
    }

    /// A GraphQL operation with the API token; fails on errors.
    async fn gql(&self, query: &str, variables: Value) -> Result<Value, BrowserError> {
        let answer = self.server.gql(&self.api, query, variables).await;
        ensure(answer["errors"].is_null(), format!("GraphQL: {answer}"))?;
        Ok(answer["data"].clone())
    }

    /// The contact the walk keeps, as stored.
    async fn stored_contact(&self) -> Result<Value, BrowserError> {
        let id = self.contact.rsplit('/').next().unwrap_or_default();
        let data =
            self.gql("query($id: ID!) { contact(id: $id) { firstName jobTitle version } }", json!({"id": id})).await?;
        Ok(data["contact"].clone())
    }
}

/// A failure outside the page (the database, a file), as the walk reports it.
fn failed(error: impl std::fmt::Display) -> BrowserError {
    BrowserError(error.to_string())
}

/// `Err(what)` unless `ok`.
fn ensure(ok: bool, what: impl std::fmt::Display) -> Result<(), BrowserError> {
    if ok { Ok(()) } else { Err(BrowserError(what.to_string())) }
}

/// First run: `/` leads to setup, which creates the admin and signs them in.
async fn first_run_setup(walk: &mut Walk<'_>) -> Result<(), BrowserError> {
    walk.goto("/").await?;
    walk.browser.wait_for("location.pathname === '/setup' && document.querySelector('#email')").await?;
    walk.accessible("setup").await?;
    let browser = &mut walk.browser;
    browser.type_into("#name", "Ada Admin").await?;
    browser.type_into("#email", "ada@example.org").await?;
    browser.type_into("#password", "correct horse battery").await?;
    browser.click("button[type=submit]").await?;
    browser.wait_for("location.pathname === '/o/contacts'").await?;
    walk.accessible("list").await
}

/// A contact through the generated form, then edited from the record page's Edit link.
async fn create_and_edit_a_contact(walk: &mut Walk<'_>) -> Result<(), BrowserError> {
    walk.browser.click("a.button[href='/o/contacts/new']").await?;
    walk.browser.wait_for("location.pathname === '/o/contacts/new' && document.querySelector('#f-firstName')").await?;
    walk.accessible("form").await?;
    walk.shot("contact-form.png").await?;
    let browser = &mut walk.browser;
    browser.type_into("#f-firstName", "Grace").await?;
    browser.type_into("#f-lastName", "Hopper").await?;
    browser.type_into("#f-email", "grace@example.org").await?;
    browser.select("#f-lifecycleStage", "Customer").await?;
    browser.click("form.record button[type=submit]").await?;
    browser.wait_for("document.querySelector('h1')?.textContent === 'Grace Hopper'").await?;
    walk.contact = walk.browser.eval("location.pathname").await?.as_str().unwrap_or_default().to_owned();
    walk.accessible("record").await?;
    ensure(walk.shows("Customer").await?, "the record page does not show the lifecycle stage")?;

    let browser = &mut walk.browser;
    browser.click("a.button[href$='/edit']").await?;
    browser.wait_for("document.querySelector('#f-jobTitle')").await?;
    browser.type_into("#f-jobTitle", "Rear Admiral").await?;
    browser.click("form.record button[type=submit]").await?;
    browser
        .wait_for("!location.pathname.endsWith('/edit') && document.body.textContent.includes('Rear Admiral')")
        .await?;
    walk.shot("contact-record.png").await
}

/// `/` focuses the search box (the console's own script runs under the CSP), and typing
/// searches as you type (htmx runs under the CSP too); the list shows the contact.
async fn search_and_list(walk: &mut Walk<'_>) -> Result<(), BrowserError> {
    let browser = &mut walk.browser;
    browser.click("h1").await?;
    browser.press("/").await?;
    browser.wait_for("document.activeElement && document.activeElement.id === 'search'").await?;
    browser.call("Input.insertText", json!({"text": "hopper"})).await?;
    browser.wait_for("document.querySelector('#search-results a')?.textContent === 'Grace Hopper'").await?;

    walk.goto("/o/contacts").await?;
    walk.browser.wait_for("document.querySelector('table')").await?;
    ensure(walk.text_of("tbody tr td a").await? == "Grace", "the list does not show the new contact")?;
    walk.shot("contacts-list.png").await
}

/// The contacts list on a phone (390 × 844): nothing is wider than the screen.
async fn contacts_on_a_phone(walk: &mut Walk<'_>) -> Result<(), BrowserError> {
    walk.browser.emulate_phone(Some((390, 844))).await?;
    walk.goto("/o/contacts").await?;
    walk.browser.wait_for("document.querySelector('table') && innerWidth === 390").await?;
    let widths = walk.browser.eval("[document.documentElement.scrollWidth, innerWidth]").await?;
    // Always kept, for a look at the phone layout; into the docs only when refreshing them.
    let shot = if walk.save {
        shots_dir().join("contacts-phone.png")
    } else {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join(format!("../target/console-screenshots/{}-contacts-phone.png", walk.db.name))
    };
    walk.browser.screenshot(&shot).await?;
    walk.browser.emulate_phone(None).await?;
    ensure(widths[0].as_i64() <= widths[1].as_i64(), format!("the page is wider than a phone: {widths}"))
}

/// A task due at 09:30 UTC, read in Tokyo by a browser set to British English: the page shows
/// 18:30 in the reader's format; the server wrote UTC (what shows without script).
async fn dates_in_the_readers_locale_and_time_zone(walk: &mut Walk<'_>) -> Result<(), BrowserError> {
    let id = walk.contact.rsplit('/').next().unwrap_or_default().to_owned();
    walk.gql(
        "mutation($c: ID!) { createActivity(input: {kind: TASK, subject: \"Call back\", dueAt: \"2030-01-02T09:30:00Z\", contactId: $c}) { id } }",
        json!({"c": id}),
    )
    .await?;
    walk.browser.emulate_locale(Some(("en-GB", "Asia/Tokyo"))).await?;
    let contact = walk.contact.clone();
    walk.goto(&contact).await?;
    walk.browser.wait_for("document.querySelector('#open-tasks time')").await?;
    let due = walk.text_of("#open-tasks time").await?;
    walk.browser.emulate_locale(None).await?;
    ensure(due == "2 Jan 2030, 18:30", format!("the task's due time reads {due:?}"))
}

/// Someone changes the contact through the API while its form is open: saving explains who,
/// keeps what was typed, and offers to reload (their change shows, mine is dropped) or to save
/// again (mine overwrites theirs).
async fn version_conflict(walk: &mut Walk<'_>) -> Result<(), BrowserError> {
    let id = walk.contact.rsplit('/').next().unwrap_or_default().to_owned();
    let meanwhile = "mutation($id: ID!, $title: String) { updateContact(id: $id, input: {jobTitle: $title}) { id } }";
    let edit = format!("{}/edit", walk.contact);
    for (theirs, choice) in [("Commodore", "reload"), ("Captain", "overwrite")] {
        walk.goto(&edit).await?;
        walk.browser.wait_for("document.querySelector('#f-jobTitle')").await?;
        walk.gql(meanwhile, json!({"id": id, "title": theirs})).await?;
        walk.browser.type_into("#f-jobTitle", "Admiral").await?;
        walk.browser.click("form.record button[type=submit]").await?;
        walk.browser.wait_for("document.querySelector('.notice[role=alert]')").await?;
        let notice = walk.text_of(".notice[role=alert]").await?;
        ensure(
            notice.contains(&format!("changed since you opened it by {SCRIPT}")),
            format!("the conflict does not say who changed the record: {notice}"),
        )?;
        let kept = walk.browser.eval("document.querySelector('#f-jobTitle').value").await?;
        ensure(kept == "Admiral", format!("the form lost what was typed: {kept}"))?;
        if choice == "reload" {
            walk.accessible("conflict").await?;
            walk.browser.click(".notice[role=alert] a.button").await?;
            walk.browser
                .wait_for("location.pathname.endsWith('/edit') && document.querySelector('#f-jobTitle').value === 'Commodore'")
                .await?;
            let stored = walk.stored_contact().await?;
            ensure(stored["jobTitle"] == theirs, format!("reloading changed the record: {stored}"))?;
        } else {
            walk.browser.click("form.record button[type=submit]").await?;
            walk.browser
                .wait_for("!document.querySelector('form.record') && document.body.textContent.includes('Admiral')")
                .await?;
            let stored = walk.stored_contact().await?;
            ensure(stored["jobTitle"] == "Admiral", format!("saving again did not overwrite: {stored}"))?;
        }
    }
    Ok(())
}

/// A form whose `_csrf` was tampered with is refused, and the record stays as it was.
async fn tampered_csrf_is_refused(walk: &mut Walk<'_>) -> Result<(), BrowserError> {
    let before = walk.stored_contact().await?;
    walk.goto(&format!("{}/edit", walk.contact)).await?;
    walk.browser.wait_for("document.querySelector('#f-jobTitle')").await?;
    walk.browser.type_into("#f-jobTitle", "Pirate").await?;
    walk.browser.eval("document.querySelector('form.record input[name=_csrf]').value += 'x'").await?;
    walk.browser.click("form.record button[type=submit]").await?;
    walk.browser.wait_for("document.body.textContent.includes('did not come from Kith')").await?;
    let after = walk.stored_contact().await?;
    ensure(after == before, format!("a tampered form changed the record: {before} → {after}"))
}

/// The board: a deal moves to the next stage by keyboard with its card's form, back by
/// dragging the card with the mouse (`board.js`, under the CSP), and closes lost with a
/// reason; the API shows each change.
async fn move_a_deal_on_the_board(walk: &mut Walk<'_>) -> Result<(), BrowserError> {
    let db = walk.db;
    let (pipeline, stages) = crate::util::grants_pipeline(db).await;
    let deal = db
        .create("deal", json!({"title": "Roof", "amount": "100", "pipelineId": pipeline, "stageId": stages[0]}))
        .await
        .map_err(failed)?
        .id()
        .to_string();
    let card = format!("li.card[data-deal=\"{deal}\"]");
    let in_stage = |stage: &str| format!("document.querySelector('section.column[data-stage=\"{stage}\"] {card}')");
    walk.goto("/board").await?;
    walk.browser.wait_for(&in_stage(&stages[0])).await?;
    walk.accessible("board").await?;
    walk.shot("board.png").await?;

    // By keyboard: the card's stage list, the next stage, Tab to "Move", Enter.
    walk.browser.eval(&format!("document.querySelector('#move-{deal}').focus()")).await?;
    walk.browser.press("ArrowDown").await?;
    walk.browser.press("Tab").await?;
    walk.browser.press("Enter").await?;
    walk.browser.wait_for(&in_stage(&stages[1])).await?;
    let moved = deal_of(walk, &deal).await?;
    ensure(moved["stageId"] == stages[1], format!("the keyboard did not move the deal: {moved}"))?;

    // By dragging the card back to the first column.
    walk.browser.drag(&format!("{card} div.muted"), &format!("section.column[data-stage=\"{}\"]", stages[0])).await?;
    walk.browser.wait_for(&in_stage(&stages[0])).await?;
    let dragged = deal_of(walk, &deal).await?;
    ensure(dragged["stageId"] == stages[0], format!("dragging did not move the deal: {dragged}"))?;

    // Closed lost, with the reason.
    walk.browser.click(&format!("{card} details summary")).await?;
    walk.browser.select(&format!("#outcome-{deal}"), "Lost").await?;
    walk.browser.type_into(&format!("#reason-{deal}"), "No budget").await?;
    walk.browser.click(&format!("{card} form[action='/board/close'] button[type=submit]")).await?;
    walk.browser.wait_for(&in_stage(&stages[3])).await?;
    let closed = deal_of(walk, &deal).await?;
    ensure(
        closed["stageId"] == stages[3] && closed["lostReason"] == "No budget",
        format!("the deal was not closed lost with its reason: {closed}"),
    )
}

/// A deal's stage and lost reason, as stored.
async fn deal_of(walk: &Walk<'_>, deal: &str) -> Result<Value, BrowserError> {
    let data = walk.gql("query($id: ID!) { deal(id: $id) { stageId lostReason } }", json!({"id": deal})).await?;
    Ok(data["deal"].clone())
}

/// A ticket, opened from the inbox, moves on with the transition its page offers.
async fn change_a_ticket_status(walk: &mut Walk<'_>) -> Result<(), BrowserError> {
    let ticket = walk
        .db
        .create("ticket", json!({"subject": "Printer on fire", "priority": "URGENT"}))
        .await
        .map_err(failed)?
        .id()
        .to_string();
    walk.goto("/inbox").await?;
    walk.browser.wait_for("document.querySelector('tbody tr')").await?;
    walk.accessible("inbox").await?;
    walk.browser.click(&format!("a[href='/inbox/{ticket}']")).await?;
    walk.browser.wait_for("document.querySelector('#body')").await?;
    walk.accessible("ticket").await?;
    walk.shot("ticket.png").await?;
    let open = "form[action$='/status']:has(input[name=status][value=OPEN]) button";
    walk.browser.click(open).await?;
    walk.browser.wait_for(&format!("!document.querySelector(\"{open}\") && document.querySelector('#body')")).await?;
    let stored = walk.gql("query($id: ID!) { ticket(id: $id) { status } }", json!({"id": ticket})).await?;
    ensure(stored["ticket"]["status"] == "OPEN", format!("the ticket's status did not change: {stored}"))?;
    let shown = walk.field("Status").await?;
    ensure(shown == "Open", format!("the ticket page shows the status {shown:?}"))
}

/// A gift through the form generated from the `donors` plugin's `recordDonation` mutation;
/// the donor's page shows it.
async fn record_a_donation(walk: &mut Walk<'_>) -> Result<(), BrowserError> {
    walk.goto("/ops/donors/recordDonation").await?;
    walk.browser.wait_for("document.querySelector('#a-amount')").await?;
    walk.accessible("operation").await?;
    walk.browser.select("#a-contactId", "Grace Hopper").await?;
    walk.browser.type_into("#a-amount", "25.00").await?;
    walk.browser.select("#a-paymentMethod", "Card").await?;
    walk.browser.click("form.record button[type=submit]").await?;
    walk.browser.wait_for("document.querySelector('.ok[role=status]')").await?;
    walk.goto(&walk.contact.clone()).await?;
    walk.browser.wait_for("document.querySelector('h1')").await?;
    ensure(walk.shows("Donations (1)").await?, "the donor's page does not list the gift")?;
    for (label, expected) in [("Gift count", "1"), ("Lifetime giving", "25")] {
        let shown = walk.field(label).await?;
        ensure(shown == expected, format!("the donor's page shows {label}: {shown:?}, not {expected}"))?;
    }
    let gifts = walk.gql("{ donations { totalCount edges { node { amount paymentMethod } } } }", json!({})).await?;
    let gift = &gifts["donations"]["edges"][0]["node"];
    ensure(
        gifts["donations"]["totalCount"] == 1
            && gift["paymentMethod"] == "CARD"
            && gift["amount"].as_str().is_some_and(|a| a.starts_with("25")),
        format!("the gift as stored: {gifts}"),
    )
}

/// The marketing plugin's generated forms: a template and a campaign written in the console,
/// the campaign scheduled through its operation's page, the preview shown for the contact.
async fn plan_an_appeal(walk: &mut Walk<'_>) -> Result<(), BrowserError> {
    let segment = walk
        .gql("mutation { createSegment(input: {name: \"Everyone\", object: CONTACT, filter: {}}) { id } }", json!({}))
        .await?;
    ensure(segment["createSegment"]["id"].is_string(), format!("the segment: {segment}"))?;
    walk.goto("/o/emailTemplates/new").await?;
    walk.browser.wait_for("document.querySelector('#f-subject')").await?;
    walk.accessible("template form").await?;
    walk.browser.type_into("#f-name", "Spring appeal").await?;
    walk.browser.type_into("#f-subject", "Spring is here, {{contact.firstName|friend}}").await?;
    walk.browser.type_into("#f-html", "<p>Dear {{contact.firstName|friend}}, please plant a tree.</p>").await?;
    walk.browser.click("form.record button[type=submit]").await?;
    walk.browser.wait_for("document.querySelector('h1')?.textContent === 'Spring appeal'").await?;
    let template = walk.browser.eval("location.pathname").await?.as_str().unwrap_or_default().to_owned();
    let template = template.rsplit('/').next().unwrap_or_default().to_owned();

    walk.goto("/o/emailCampaigns/new").await?;
    walk.browser.wait_for("document.querySelector('#f-templateId')").await?;
    walk.accessible("campaign form").await?;
    walk.browser.type_into("#f-name", "Spring appeal 2027").await?;
    walk.browser.select("#f-templateId", "Spring appeal").await?;
    walk.browser.select("#f-segmentId", "Everyone").await?;
    walk.browser.click("form.record button[type=submit]").await?;
    walk.browser.wait_for("document.querySelector('h1')?.textContent === 'Spring appeal 2027 (Draft)'").await?;
    ensure(walk.field("Code").await? == "SPRING-APPEAL-2027", "the campaign's code was not made from its name")?;

    // The campaign's id, from its page's address (`id` names no object, so the form asks for
    // the id itself).
    let campaign = walk.browser.eval("location.pathname").await?.as_str().unwrap_or_default().to_owned();
    let campaign = campaign.rsplit('/').next().unwrap_or_default().to_owned();
    walk.goto("/ops/marketing/scheduleCampaign").await?;
    walk.browser.wait_for("document.querySelector('#a-id')").await?;
    walk.accessible("operation").await?;
    walk.browser.type_into("#a-id", &campaign).await?;
    walk.browser.click("form.record button[type=submit]").await?;
    walk.browser.wait_for("document.querySelector('.ok[role=status]')").await?;
    let campaigns = walk.gql("{ emailCampaigns { edges { node { name status scheduledAt } } } }", json!({})).await?;
    let campaign = &campaigns["emailCampaigns"]["edges"][0]["node"];
    ensure(
        campaign["status"] == "SCHEDULED" && campaign["scheduledAt"].is_string(),
        format!("the campaign as stored: {campaigns}"),
    )?;

    walk.goto("/ops/marketing/previewEmail").await?;
    walk.browser.wait_for("document.querySelector('#a-templateId')").await?;
    walk.browser.type_into("#a-templateId", &template).await?;
    walk.browser.select("#a-contactId", "Grace Hopper").await?;
    walk.browser.click("form.record button[type=submit]").await?;
    walk.browser.wait_for("document.body.textContent.includes('Spring is here, Grace')").await?;
    walk.shot("marketing-preview.png").await
}

/// A CSV of contacts with a bad row: uploaded through the file control, the suggested mapping
/// kept, the run followed until done (htmx polls it), the bad row shown with its reason.
async fn import_a_csv_with_a_bad_row(walk: &mut Walk<'_>) -> Result<(), BrowserError> {
    let dir = kith_tests::temp_dir();
    let file = dir.join("people.csv");
    std::fs::write(
        &file,
        "First Name,Surname,E-mail Address\r\nAlan,Turing,alan@example.org\r\nBad,Row,not-an-email\r\n\
         Katherine,Johnson,katherine@example.org\r\n",
    )
    .map_err(failed)?;
    walk.goto("/import").await?;
    walk.browser.wait_for("document.querySelector('#i-file')").await?;
    walk.accessible("import").await?;
    walk.browser.select("#i-object", "Contacts").await?;
    walk.browser.set_files("#i-file", &[&file]).await?;
    walk.browser.click("form[action='/import'] button[type=submit]").await?;
    let uploaded =
        walk.browser.wait_for("location.pathname.startsWith('/import/map/') && document.querySelector('#m-0')").await;
    let _ = std::fs::remove_dir_all(dir);
    uploaded?;
    walk.accessible("import mapping").await?;
    let suggested = walk.browser.eval("[...document.querySelectorAll('select[id^=m-]')].map(s => s.value)").await?;
    ensure(suggested == json!(["firstName", "lastName", "email"]), format!("the suggested mapping: {suggested}"))?;
    walk.browser.click("form[action^='/import/map/'] button[type=submit]").await?;
    walk.browser
        .wait_for("location.pathname.startsWith('/import/runs/') && document.querySelector('#import-counts')")
        .await?;
    walk.accessible("import run").await?;
    walk.shot("import.png").await?;
    let counts = walk.text_of("#import-counts").await?;
    ensure(counts.contains("2 created") && counts.contains("1 rejected"), format!("the run says {counts}"))?;
    let rejected = walk.text_of("#rejected tbody tr").await?;
    ensure(rejected.starts_with('3') && rejected.contains("not-an-email"), format!("the rejected row: {rejected}"))?;
    let data = walk.gql("{ contacts(filter: {email: {eq: \"alan@example.org\"}}) { totalCount } }", json!({})).await?;
    ensure(data["contacts"]["totalCount"] == 1, format!("the good rows were not imported: {data}"))
}

/// Reports (charts drawn on the server) and the administration pages, as the admin.
async fn reports_and_administration(walk: &mut Walk<'_>) -> Result<(), BrowserError> {
    walk.goto("/reports").await?;
    walk.browser.wait_for("document.querySelector('svg.chart')").await?;
    walk.accessible("reports").await?;
    walk.shot("reports.png").await?;
    // The donors plugin's fundraising reports, with the gift recorded earlier in the walk.
    walk.goto("/reports/donors").await?;
    walk.browser.wait_for("document.querySelector('#retention-table')").await?;
    walk.accessible("fundraising reports").await?;
    ensure(!walk.shows("failed answering").await?, "a fundraising report failed")?;
    walk.shot("fundraising.png").await?;
    for (page, ready) in
        [("users", "#u-name"), ("tokens", "#t-name"), ("fields", "#c-key"), ("plugins", "h1"), ("audit", "#a-object")]
    {
        walk.goto(&format!("/admin/{page}")).await?;
        walk.browser.wait_for(&format!("document.querySelector('{ready}')")).await?;
        walk.accessible(page).await?;
        if page == "plugins" {
            walk.shot("admin-plugins.png").await?;
        }
    }
    Ok(())
}

/// Sign out: back to the sign-in page; the session is over.
async fn sign_out(walk: &mut Walk<'_>) -> Result<(), BrowserError> {
    walk.browser.click("header form button[type=submit]").await?;
    walk.browser.wait_for("location.pathname === '/login' && document.querySelector('#password')").await?;
    walk.accessible("sign-in").await?;
    walk.shot("sign-in.png").await?;
    // A page behind the session sends the browser to sign in.
    walk.browser.call("Page.navigate", json!({"url": format!("{}/o/contacts", walk.base)})).await?;
    walk.browser.wait_for("location.pathname === '/login' && location.search.includes('next=')").await
}

/// A VIEWER signs in, is offered no create or edit, and the posts a forger sends from the page
/// (without the CSRF token, with a wrong one, or with the right one) are refused with 403 and
/// change nothing.
async fn a_viewer_cannot_edit(walk: &mut Walk<'_>) -> Result<(), BrowserError> {
    let tx = walk.db.kith.store.begin(&admin()).await.map_err(failed)?;
    users::create_user(
        &tx,
        &walk.db.kith.registry(),
        "vic@example.org",
        "Vic Viewer",
        Role::Viewer,
        Some("a long enough password"),
    )
    .await
    .map_err(failed)?;
    tx.commit().await.map_err(failed)?;
    walk.browser.type_into("#email", "vic@example.org").await?;
    walk.browser.type_into("#password", "a long enough password").await?;
    walk.browser.click("form:has(#password) button[type=submit]").await?;
    walk.browser.wait_for("location.pathname === '/o/contacts' && document.querySelector('table')").await?;
    let create = walk.browser.eval("!!document.querySelector(\"a[href='/o/contacts/new']\")").await?;
    ensure(create == false, "a VIEWER is offered to create a contact")?;
    walk.goto(&walk.contact.clone()).await?;
    walk.browser.wait_for("document.querySelector('h1')?.textContent === 'Grace Hopper'").await?;
    let offered = walk.browser.eval("!!document.querySelector(\"a[href$='/edit'], form[action$='/delete']\")").await?;
    ensure(offered == false, "a VIEWER is offered to edit or delete the contact")?;

    let before = walk.stored_contact().await?;
    let token = walk.browser.eval("document.querySelector('input[name=_csrf]').value").await?;
    let token = token.as_str().unwrap_or_default().to_owned();
    for csrf in [None, Some("forged".to_owned()), Some(token)] {
        let mut form = json!({"_version": before["version"], "firstName": "Eve", "jobTitle": "Forger"});
        if let Some(csrf) = csrf {
            form["_csrf"] = json!(csrf);
        }
        let status = walk
            .browser
            .eval(&format!(
                "fetch({path}, {{method: 'POST', body: new URLSearchParams({form})}}).then(r => r.status)",
                path = json!(walk.contact),
            ))
            .await?;
        ensure(status == 403, format!("a VIEWER's post with {form} answered {status}"))?;
    }
    let after = walk.stored_contact().await?;
    ensure(after == before, format!("a VIEWER's forged post changed the record: {before} → {after}"))
}

/// The whole walk; a failure names its flow.
async fn walk(walk: &mut Walk<'_>) -> Result<(), BrowserError> {
    macro_rules! flows {
        ($($flow:ident),* $(,)?) => {$(
            $flow(walk).await.map_err(|e| BrowserError(format!("{}: {e}", stringify!($flow))))?;
        )*};
    }
    flows!(
        first_run_setup,
        create_and_edit_a_contact,
        search_and_list,
        contacts_on_a_phone,
        dates_in_the_readers_locale_and_time_zone,
        version_conflict,
        tampered_csrf_is_refused,
        move_a_deal_on_the_board,
        change_a_ticket_status,
        record_a_donation,
        plan_an_appeal,
        import_a_csv_with_a_bad_row,
        reports_and_administration,
        sign_out,
        a_viewer_cannot_edit,
    );
    Ok(())
}

/// An ADMIN API token named [`SCRIPT`]: its secret.
async fn script_token(db: &TestDb) -> String {
    let tx = db.kith.store.begin(&admin()).await.unwrap();
    let (_, secret) = users::create_token(&tx, SCRIPT, Role::Admin, None, None).await.unwrap();
    tx.commit().await.unwrap();
    secret
}

#[tokio::test]
async fn a_person_sets_up_kith_and_keeps_a_contact_in_a_real_browser() {
    for db in TestDb::all().await {
        let Some(browser) = Chromium::launch().await.unwrap() else {
            // In CI a missing browser is a failure: `.ci/run` installs one.
            assert!(std::env::var_os("CI").is_none(), "CI must run the browser tests: no Chromium found");
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED (Chromium): the console in a real browser: no Chromium found (install Debian's `chromium`, or set CHROMIUM)"
            );
            return;
        };
        let server = Server::start(&db).await;
        let runtime = crate::util::donors_runtime(&db).await;
        let marketing = kith_core::plugin::bundled::BUNDLED.iter().find(|b| b.id == "marketing").unwrap();
        runtime.install(&admin(), marketing.manifest, marketing.component).await.unwrap();
        runtime.enable(&admin(), "marketing", kith_core::plugin::manager::Grants::All).await.unwrap();
        let from = Some(json!("Park Friends <appeals@parkfriends.example>"));
        runtime.set_setting(&admin(), "marketing", "from", from).await.unwrap();
        runtime.refresh().await.unwrap();
        let mut state = Walk {
            browser,
            base: format!("http://{}", server.addr),
            db: &db,
            server: &server,
            api: script_token(&db).await,
            contact: String::new(),
            save: std::env::var_os("CONSOLE_SCREENSHOTS").is_some() && db.name == "sqlite",
        };
        let started = std::time::Instant::now();
        if let Err(err) = walk(&mut state).await {
            let shot = shots_dir().join(format!("{}-failure.png", db.name));
            let saved = state.browser.screenshot(&shot).await;
            panic!("{}: {err} (screenshot: {} {saved:?})", db.name, shot.display());
        }
        let _ = writeln!(std::io::stderr(), "{}: the browser walk took {:.1?}", db.name, started.elapsed());
        state.browser.close().await;
        runtime.stop().await;
        server.stop().await;
    }
}
