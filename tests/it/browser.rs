//! The console in a real headless Chromium (DevTools protocol, `kith_tests::browser`), over
//! real HTTP on loopback, on both databases: first-run setup, creating and editing a contact
//! with real clicks and typing, live search under the Content-Security-Policy, the `/`
//! shortcut, sign-out; axe-core finds no serious or critical violation on any page type. A
//! failing step saves a screenshot under `target/console-screenshots/`. Without a Chromium the
//! test says loudly that it was skipped (`.ci/run` installs Debian's `chromium`).

use std::io::Write as _;
use std::path::PathBuf;

use kith_tests::TestDb;
use kith_tests::browser::{BrowserError, Chromium};

use crate::util::Server;

/// Where screenshots go: `CONSOLE_SCREENSHOTS` (to refresh `docs/console/`) or `target/`.
fn shots_dir() -> PathBuf {
    std::env::var_os("CONSOLE_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/console-screenshots"))
}

/// Fails with the page's accessibility violations, if any.
async fn accessible(browser: &mut Chromium, page: &str) -> Result<(), BrowserError> {
    let violations = browser.axe().await?;
    if violations.is_empty() { Ok(()) } else { Err(BrowserError(format!("axe on the {page} page: {violations:#?}"))) }
}

/// Text of the first element matching `selector`.
async fn text_of(browser: &mut Chromium, selector: &str) -> Result<String, BrowserError> {
    let value =
        browser.eval(&format!("document.querySelector({})?.textContent ?? ''", serde_json::json!(selector))).await?;
    Ok(value.as_str().unwrap_or_default().trim().to_owned())
}

async fn walk(browser: &mut Chromium, base: &str, test_db: &TestDb) -> Result<(), BrowserError> {
    let db = test_db.name;
    let shots = shots_dir();
    let save = std::env::var_os("CONSOLE_SCREENSHOTS").is_some() && db == "sqlite";
    // First run: `/` leads to setup, which creates the admin and signs them in.
    browser.goto(&format!("{base}/")).await?;
    browser.wait_for("location.pathname === '/setup' && document.querySelector('#email')").await?;
    accessible(browser, "setup").await?;
    browser.type_into("#name", "Ada Admin").await?;
    browser.type_into("#email", "ada@example.org").await?;
    browser.type_into("#password", "correct horse battery").await?;
    browser.click("button[type=submit]").await?;
    browser.wait_for("location.pathname === '/o/contacts'").await?;
    accessible(browser, "list").await?;

    // A contact, through the generated form.
    browser.click("a.button[href='/o/contacts/new']").await?;
    browser.wait_for("location.pathname === '/o/contacts/new' && document.querySelector('#f-firstName')").await?;
    accessible(browser, "form").await?;
    if save {
        browser.screenshot(&shots.join("contact-form.png")).await?;
    }
    browser.type_into("#f-firstName", "Grace").await?;
    browser.type_into("#f-lastName", "Hopper").await?;
    browser.type_into("#f-email", "grace@example.org").await?;
    browser.eval("document.querySelector('#f-lifecycleStage').value = 'CUSTOMER'").await?;
    browser.click("form.record button[type=submit]").await?;
    browser.wait_for("document.querySelector('h1')?.textContent === 'Grace Hopper'").await?;
    accessible(browser, "record").await?;
    let stage = browser.eval("document.body.textContent.includes('Customer')").await?;
    if stage != true {
        return Err(BrowserError("the record page does not show the lifecycle stage".into()));
    }

    // Edit in place of the record page's Edit link.
    browser.click("a.button[href$='/edit']").await?;
    browser.wait_for("document.querySelector('#f-jobTitle')").await?;
    browser.type_into("#f-jobTitle", "Rear Admiral").await?;
    browser.click("form.record button[type=submit]").await?;
    browser
        .wait_for("!location.pathname.endsWith('/edit') && document.body.textContent.includes('Rear Admiral')")
        .await?;
    if save {
        browser.screenshot(&shots.join("contact-record.png")).await?;
    }

    // `/` focuses the search box (the console's own script runs under the CSP), and typing
    // searches as you type (htmx runs under the CSP too).
    browser.click("h1").await?;
    browser.press("/").await?;
    browser.wait_for("document.activeElement && document.activeElement.id === 'search'").await?;
    browser.call("Input.insertText", serde_json::json!({"text": "hopper"})).await?;
    browser.wait_for("document.querySelector('#search-results a')?.textContent === 'Grace Hopper'").await?;

    browser.goto(&format!("{base}/o/contacts")).await?;
    browser.wait_for("document.querySelector('table')").await?;
    if text_of(browser, "tbody tr td a").await? != "Grace" {
        return Err(BrowserError("the list does not show the new contact".into()));
    }
    if save {
        browser.screenshot(&shots.join("contacts-list.png")).await?;
    }

    // The board: drag a card to the next column (board.js runs under the CSP and submits the
    // card's own form); the deal moves.
    let pipeline = test_db.create("pipeline", serde_json::json!({"name": "Grants", "currency": "USD"})).await.unwrap();
    let mut stages = Vec::new();
    for (position, stage) in ["Ask", "Proposal"].into_iter().enumerate() {
        let s = test_db
            .create("stage", serde_json::json!({"pipelineId": pipeline.id(), "name": stage, "position": position, "probability": 50, "kind": "OPEN"}))
            .await
            .unwrap();
        stages.push(s.id().to_string());
    }
    let deal = test_db
        .create(
            "deal",
            serde_json::json!({"title": "Roof", "amount": "100", "pipelineId": pipeline.id(), "stageId": stages[0]}),
        )
        .await
        .unwrap();
    browser.goto(&format!("{base}/board")).await?;
    browser.wait_for("document.querySelector('li.card')").await?;
    accessible(browser, "board").await?;
    if save {
        browser.screenshot(&shots.join("board.png")).await?;
    }
    let drag = format!(
        "(() => {{ const card = document.querySelector('li.card[data-deal=\"{deal}\"]'); \
         const column = document.querySelector('section.column[data-stage=\"{stage}\"]'); const dt = new DataTransfer(); \
         card.dispatchEvent(new DragEvent('dragstart', {{dataTransfer: dt, bubbles: true}})); \
         column.dispatchEvent(new DragEvent('dragover', {{dataTransfer: dt, bubbles: true, cancelable: true}})); \
         column.dispatchEvent(new DragEvent('drop', {{dataTransfer: dt, bubbles: true, cancelable: true}})); return true; }})()",
        deal = deal.id(),
        stage = stages[1]
    );
    browser.eval(&drag).await?;
    browser
        .wait_for(&format!(
            "document.querySelector('section.column[data-stage=\"{}\"] li.card[data-deal=\"{}\"]')",
            stages[1],
            deal.id()
        ))
        .await?;

    // The inbox and a ticket's conversation.
    let ticket = test_db
        .create("ticket", serde_json::json!({"subject": "Printer on fire", "priority": "URGENT"}))
        .await
        .unwrap();
    browser.goto(&format!("{base}/inbox")).await?;
    browser.wait_for("document.querySelector('tbody tr')").await?;
    accessible(browser, "inbox").await?;
    browser.goto(&format!("{base}/inbox/{}", ticket.id())).await?;
    browser.wait_for("document.querySelector('#body')").await?;
    accessible(browser, "ticket").await?;
    if save {
        browser.screenshot(&shots.join("ticket.png")).await?;
    }

    // Reports: charts drawn on the server, accessible too.
    browser.goto(&format!("{base}/reports")).await?;
    browser.wait_for("document.querySelector('svg.chart')").await?;
    accessible(browser, "reports").await?;
    if save {
        browser.screenshot(&shots.join("reports.png")).await?;
    }

    // Administration, as the admin who set Kith up.
    for (page, ready) in
        [("users", "#u-name"), ("tokens", "#t-name"), ("fields", "#c-key"), ("plugins", "h1"), ("audit", "#a-object")]
    {
        browser.goto(&format!("{base}/admin/{page}")).await?;
        browser.wait_for(&format!("document.querySelector('{ready}')")).await?;
        accessible(browser, page).await?;
    }

    // Sign out: back to the sign-in page, which is accessible too.
    browser.click("header form button[type=submit]").await?;
    browser.wait_for("location.pathname === '/login' && document.querySelector('#password')").await?;
    accessible(browser, "sign-in").await?;
    if save {
        browser.screenshot(&shots.join("sign-in.png")).await?;
    }
    // The session is over: a page behind it sends the browser to sign in.
    browser.call("Page.navigate", serde_json::json!({"url": format!("{base}/o/contacts")})).await?;
    browser.wait_for("location.pathname === '/login' && location.search.includes('next=')").await?;
    Ok(())
}

#[tokio::test]
async fn a_person_sets_up_kith_and_keeps_a_contact_in_a_real_browser() {
    for db in TestDb::all().await {
        let Some(mut browser) = Chromium::launch().await.unwrap() else {
            // In CI a missing browser is a failure: `.ci/run` installs one.
            assert!(std::env::var_os("CI").is_none(), "CI must run the browser tests: no Chromium found");
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED (Chromium): the console in a real browser: no Chromium found (install Debian's `chromium`, or set CHROMIUM)"
            );
            return;
        };
        let server = Server::start(&db).await;
        let base = format!("http://{}", server.addr);
        if let Err(err) = walk(&mut browser, &base, &db).await {
            let shot = shots_dir().join(format!("{}-failure.png", db.name));
            let saved = browser.screenshot(&shot).await;
            panic!("{}: {err} (screenshot: {} {saved:?})", db.name, shot.display());
        }
        browser.close().await;
        server.stop().await;
    }
}
