//! The donor management plugin end to end, through GraphQL on SQLite and PostgreSQL: gifts and
//! their checks, the donor summary, retention reports, refunds, receipts, imports, standing
//! orders, pledges, campaigns and households; gifts in other currencies and the rates table,
//! recognition (soft credits), companies' receipts, deleted donors, the privacy export, and the
//! upgrade from 1.1.0.

use chrono::Datelike;
use kith_core::domain::actor::{Actor, Role};
use kith_core::plugin::manager::Grants;
use kith_core::plugin::{bundled, start_runtime};
use kith_tests::TestDb;
use serde_json::{Value, json};

use crate::util::{Server, code, eventually, plugins_config, query_plan, run_cli_env, run_kith, token};

fn donors() -> (&'static str, &'static [u8]) {
    let b = bundled::BUNDLED.iter().find(|b| b.id == "donors").expect("the donors plugin is bundled");
    (b.manifest, b.component)
}

fn data<'a>(response: &'a Value, field: &str) -> &'a Value {
    assert!(response["errors"].is_null(), "{response}");
    &response["data"][field]
}

#[tokio::test]
async fn a_charity_runs_its_fundraising_through_graphql() {
    for db in TestDb::all().await {
        let name = db.name;
        let server = Server::start_with_body(&db, 1 << 20).await;
        let runtime = start_runtime(&db.kith, &plugins_config()).await.unwrap();
        let admin = Actor::system("test");
        runtime.install(&admin, donors().0, donors().1).await.unwrap();
        runtime.enable(&admin, "donors", Grants::All).await.unwrap();
        runtime.refresh().await.unwrap();
        let agent = token(&db, Role::Agent).await;
        let manager = token(&db, Role::Manager).await;
        let admin_token = token(&db, Role::Admin).await;
        let year = chrono::Utc::now().year();
        let (this, last, before) = (year, year - 1, year - 3);

        let contact = |first: &str| {
            let server = &server;
            let agent = agent.clone();
            let first = first.to_owned();
            async move {
                let r = server
                    .gql(&agent, "mutation($f: String, $e: String) { createContact(input: {firstName: $f, lastName: \"Giver\", email: $e}) { id } }",
                        json!({"f": first, "e": format!("{}@example.org", first.to_lowercase())}))
                    .await;
                data(&r, "createContact")["id"].as_str().unwrap().to_owned()
            }
        };
        let ada = contact("Ada").await;
        let bob = contact("Bob").await;
        let cy = contact("Cy").await;

        let record = "mutation($c: ID, $a: Decimal!, $d: Date, $cur: String, $camp: ID, $soft: JSON) {
            recordDonation(contactId: $c, amount: $a, receivedDate: $d, currency: $cur, campaignId: $camp, softCredits: $soft, paymentMethod: CARD) }";
        // Bad input: clear errors naming the argument, nothing written.
        for (vars, field) in [
            (json!({"c": ada, "a": "0"}), "amount"),
            (json!({"c": ada, "a": "-5"}), "amount"),
            (json!({"c": uuid::Uuid::now_v7().to_string(), "a": "5"}), "contactId"),
            (json!({"c": ada, "a": "5", "cur": "XYZ"}), "currency"),
            (json!({"c": ada, "a": "5", "d": "2026-02-30"}), "receivedDate"),
            (json!({"c": ada, "a": "lots"}), "amount"),
        ] {
            let r = server.gql(&agent, record, vars.clone()).await;
            assert_eq!(code(&r), "BAD_USER_INPUT", "{name} {vars}: {r}");
            assert_eq!(r["errors"][0]["extensions"]["field"], field, "{name} {vars}: {r}");
        }
        assert_eq!(db.count_rows("p_donors_donation").await, 0, "{name}");
        // The generic mutation is vetted by the plugin too.
        let bare = server
            .gql(
                &agent,
                "mutation { createDonation(input: {amount: \"5\", amountCurrency: \"USD\", status: RECEIVED}) { id } }",
                json!({}),
            )
            .await;
        assert_eq!(code(&bare), "REJECTED_BY_PLUGIN", "{name}: {bare}");

        let campaign = server
            .gql(&agent, "mutation { createCampaign(input: {name: \"Spring appeal\", goal: \"500\", goalCurrency: \"USD\"}) { id } }", json!({}))
            .await;
        let campaign = data(&campaign, "createCampaign")["id"].as_str().unwrap().to_owned();
        let gifts = [
            (&ada, "100", format!("{before}-03-01")),
            (&ada, "50", format!("{last}-05-01")),
            (&ada, "75.50", format!("{this}-01-15")),
            (&bob, "40", format!("{last}-11-30")),
            (&cy, "20", format!("{before}-06-06")),
        ];
        let mut ids = Vec::new();
        for (who, amount, date) in &gifts {
            let r = server.gql(&agent, record, json!({"c": who, "a": amount, "d": date, "camp": campaign})).await;
            ids.push(data(&r, "recordDonation").as_str().unwrap().to_owned());
        }
        // A soft credit for Bob on a gift of Cy's this year.
        let r = server.gql(&agent, record, json!({"c": cy, "a": "10", "d": format!("{this}-01-02"), "soft": [{"contactId": bob, "role": "SPOUSE"}]})).await;
        ids.push(data(&r, "recordDonation").as_str().unwrap().to_owned());

        let summary = "query($id: ID!) { contact(id: $id) { donorSummary { lifetimeGiving giftCount givingThisYear givingLastYear largestGift firstGiftDate lastGiftDate softCredits level status } } }";
        let s = server.gql(&agent, summary, json!({"id": ada})).await;
        let s = &data(&s, "contact")["donorSummary"];
        assert_eq!(s["lifetimeGiving"], "225.5", "{name}: {s}");
        assert_eq!((s["giftCount"].as_i64(), s["status"].as_str()), (Some(3), Some("RETAINED")), "{name}");
        assert_eq!((s["givingThisYear"].as_str(), s["givingLastYear"].as_str()), (Some("75.5"), Some("50")), "{name}");
        assert_eq!(s["level"], "Friend", "{name}");
        let s = server.gql(&agent, summary, json!({"id": bob})).await;
        assert_eq!(data(&s, "contact")["donorSummary"]["softCredits"], "10", "{name}");
        assert_eq!(data(&s, "contact")["donorSummary"]["status"], "LAPSED", "{name}");
        // A page of contacts with the summary: one plugin call.
        let plugin = runtime.loaded("donors").unwrap();
        let calls = plugin.compute_calls();
        let page = server
            .gql(&agent, "{ contacts(first: 50) { edges { node { firstName donorSummary { status } donations { totalCount } } } } }", json!({}))
            .await;
        assert_eq!(data(&page, "contacts")["edges"].as_array().unwrap().len(), 3, "{name}");
        assert_eq!(plugin.compute_calls() - calls, 1, "{name}: one call for the page");

        let retention = server
            .gql(&manager, "query($y: Int!) { donorRetention(year: $y) { donorsLastYear donorsThisYear newDonors retainedDonors recoveredDonors lapsedDonors retentionRate } }", json!({"y": this}))
            .await;
        assert_eq!(
            data(&retention, "donorRetention"),
            &json!({"donorsLastYear": 2, "donorsThisYear": 2, "newDonors": 0, "retainedDonors": 1, "recoveredDonors": 1, "lapsedDonors": 1, "retentionRate": 0.5}),
            "{name}"
        );
        assert_eq!(
            code(&server.gql(&agent, "{ donorRetention(year: 2026) { newDonors } }", json!({})).await),
            "FORBIDDEN"
        );
        let lybunt = server
            .gql(&manager, "query($y: Int!) { lybunt(year: $y) { contactId name email lastGiftDate lastGiftAmount lifetimeGiving } }", json!({"y": this}))
            .await;
        assert_eq!(
            data(&lybunt, "lybunt"),
            &json!([{"contactId": bob, "name": "Bob Giver", "email": "bob@example.org", "lastGiftDate": format!("{last}-11-30"), "lastGiftAmount": "40", "lifetimeGiving": "40"}]),
            "{name}"
        );
        let progress = server
            .gql(
                &agent,
                "query($id: ID!) { campaignProgress(id: $id) { raised goal donors gifts percentOfGoal } }",
                json!({"id": campaign}),
            )
            .await;
        assert_eq!(
            data(&progress, "campaignProgress"),
            &json!({"raised": "285.5", "goal": "500", "donors": 3, "gifts": 5, "percentOfGoal": 57.1}),
            "{name}"
        );
        let summary_rows = server
            .gql(&manager, "query($f: Date!, $t: Date!) { givingSummary(from: $f, to: $t, groupBy: CAMPAIGN) { label total gifts donors } }",
                json!({"f": format!("{before}-01-01"), "t": format!("{this}-12-31")}))
            .await;
        assert_eq!(
            data(&summary_rows, "givingSummary"),
            &json!([{"label": "(none)", "total": "10", "gifts": 1, "donors": 1}, {"label": "Spring appeal", "total": "285.5", "gifts": 5, "donors": 3}]),
            "{name}"
        );

        // Refunds leave every total; a second refund is a conflict.
        let refund = "mutation($id: ID!) { refundDonation(id: $id, reason: \"duplicate charge\") }";
        data(&server.gql(&manager, refund, json!({"id": ids[2]})).await, "refundDonation");
        assert_eq!(code(&server.gql(&manager, refund, json!({"id": ids[2]})).await), "CONFLICT", "{name}");
        assert_eq!(
            code(&server.gql(&manager, refund, json!({"id": uuid::Uuid::now_v7().to_string()})).await),
            "NOT_FOUND",
            "{name}"
        );
        let s = server.gql(&agent, summary, json!({"id": ada})).await;
        assert_eq!(data(&s, "contact")["donorSummary"]["lifetimeGiving"], "150", "{name}");

        // A received gift this month gets a thank-you task for the donor.
        let recent = server.gql(&agent, record, json!({"c": ada, "a": "12"})).await;
        data(&recent, "recordDonation");
        eventually(10, "a thank-you task", || async {
            let tasks = server
                .gql(&agent, "query($id: ID) { activities(filter: {contactId: {eq: $id}, kind: {eq: TASK}}) { edges { node { subject } } } }", json!({"id": ada}))
                .await;
            tasks.to_string().contains("Thank Ada Giver for their gift of 12 USD").then_some(())
        })
        .await;

        // Year-end receipts for last year: once per donor, however often it runs.
        let receipts =
            "mutation($y: Int!) { issueYearEndReceipts(year: $y) { issued alreadyIssued remaining receiptNumbers } }";
        let first = server.gql(&manager, receipts, json!({"y": last})).await;
        assert_eq!(data(&first, "issueYearEndReceipts")["issued"], 2, "{name}: {first}");
        let again = server.gql(&manager, receipts, json!({"y": last})).await;
        assert_eq!(
            data(&again, "issueYearEndReceipts"),
            &json!({"issued": 0, "alreadyIssued": 2, "remaining": 0, "receiptNumbers": []}),
            "{name}"
        );
        assert_eq!(db.count_rows("p_donors_receipt").await, 2, "{name}");

        // Import: good rows in, each bad row reported with its line.
        let csv = format!(
            "email,amount,date,fund\nada@example.org,30,{this}-02-02,General\nnobody@example.org,5,{this}-02-02,\nbob@example.org,abc,{this}-02-02,\n"
        );
        let imported = server
            .gql(
                &agent,
                "mutation($csv: String!) { importDonations(csv: $csv) { imported rejected { line reason } } }",
                json!({"csv": csv}),
            )
            .await;
        let imported = data(&imported, "importDonations");
        assert_eq!(imported["imported"], 1, "{name}: {imported}");
        assert_eq!(
            imported["rejected"].as_array().unwrap().iter().map(|r| r["line"].as_i64().unwrap()).collect::<Vec<_>>(),
            vec![3, 4],
            "{name}"
        );

        // A standing order: the daily job creates its expected gifts once.
        let start = (chrono::Utc::now().date_naive() - chrono::Days::new(40)).format("%Y-%m-%d").to_string();
        let plan = server
            .gql(&agent, "mutation($c: ID!, $s: Date!) { createRecurringDonation(input: {contactId: $c, amount: \"15\", amountCurrency: \"USD\", frequency: MONTHLY, startDate: $s}) { id status nextDueDate } }",
                json!({"c": cy, "s": start}))
            .await;
        let plan = data(&plan, "createRecurringDonation");
        assert_eq!(
            (plan["status"].as_str(), plan["nextDueDate"].as_str()),
            (Some("ACTIVE"), Some(start.as_str())),
            "{name}: the hook completes it"
        );
        let plan = plan["id"].as_str().unwrap().to_owned();
        let run = "mutation { runPluginJob(id: \"donors\", job: \"recurring\") { status error } }";
        assert_eq!(
            data(&server.gql(&admin_token, run, json!({})).await, "runPluginJob")["status"],
            "succeeded",
            "{name}"
        );
        assert_eq!(
            data(&server.gql(&admin_token, run, json!({})).await, "runPluginJob")["status"],
            "succeeded",
            "{name}"
        );
        let expected = server
            .gql(
                &agent,
                "query($p: ID!) { donations(filter: {recurringDonationId: {eq: $p}}) { totalCount } }",
                json!({"p": plan}),
            )
            .await;
        assert_eq!(data(&expected, "donations")["totalCount"], 2, "{name}: two due dates in 40 days");

        // A pledge in installments, with its progress.
        let pledge = server
            .gql(&agent, "mutation($c: ID!, $s: Date!) { createPledge(input: {contactId: $c, total: \"90\", totalCurrency: \"USD\", installments: 3, frequency: MONTHLY, startDate: $s}) { id } }",
                json!({"c": bob, "s": format!("{this}-01-01")}))
            .await;
        let pledge = data(&pledge, "createPledge")["id"].as_str().unwrap().to_owned();
        let pledge_query =
            "query($id: ID!) { pledge(id: $id) { total progress { paid balance } donations { totalCount } } }";
        let p = eventually(10, "the pledge's installments", || async {
            let p = server.gql(&agent, pledge_query, json!({"id": pledge})).await;
            (p["data"]["pledge"]["donations"]["totalCount"] == 3).then_some(p)
        })
        .await;
        assert_eq!(data(&p, "pledge")["progress"], json!({"paid": "0", "balance": "90"}), "{name}");
        let bad = server
            .gql(&agent, "mutation($c: ID!) { createPledge(input: {contactId: $c, total: \"90\", totalCurrency: \"USD\", installments: 0, frequency: MONTHLY, startDate: \"2026-01-01\"}) { id } }", json!({"c": bob}))
            .await;
        assert_eq!(code(&bad), "REJECTED_BY_PLUGIN", "{name}: {bad}");

        // A household's giving together.
        let household =
            server.gql(&agent, "mutation { createHousehold(input: {name: \"The Givers\"}) { id } }", json!({})).await;
        let household = data(&household, "createHousehold")["id"].as_str().unwrap().to_owned();
        for member in [&ada, &bob] {
            let r = server
                .gql(&agent, "mutation($h: ID!, $c: ID!) { createHouseholdMember(input: {householdId: $h, contactId: $c}) { id } }", json!({"h": household, "c": member}))
                .await;
            data(&r, "createHouseholdMember");
        }
        let h = server
            .gql(
                &agent,
                "query($id: ID!) { household(id: $id) { giving { members lifetimeGiving } } }",
                json!({"id": household}),
            )
            .await;
        assert_eq!(data(&h, "household")["giving"], json!({"members": 2, "lifetimeGiving": "232"}), "{name}");

        // A gift without a payment method: the optional enum reads as null, by id and on a page
        // (answered field by field and directly), not as an error.
        let r = server
            .gql(&agent, "mutation($c: ID) { recordDonation(contactId: $c, amount: \"5\") }", json!({"c": cy}))
            .await;
        let unpaid = data(&r, "recordDonation").as_str().unwrap().to_owned();
        let one = server
            .gql(&agent, "query($id: ID!) { donation(id: $id) { paymentMethod status } }", json!({"id": unpaid}))
            .await;
        assert_eq!(data(&one, "donation"), &json!({"paymentMethod": null, "status": "RECEIVED"}), "{name}");
        for query in [
            "query($id: ID!) { donations(filter: {id: {eq: $id}}) { edges { node { paymentMethod } } } }",
            "query($id: ID!) { donations(filter: {id: {eq: $id}}) { edges { node { ... on Donation { paymentMethod } } } } }",
        ] {
            let page = server.gql(&agent, query, json!({"id": unpaid})).await;
            assert_eq!(
                data(&page, "donations")["edges"],
                json!([{"node": {"paymentMethod": null}}]),
                "{name}: {query}"
            );
        }

        runtime.stop().await;
        server.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn the_cli_imports_gifts_and_runs_reports_through_the_plugin() {
    let db = TestDb::sqlite().await;
    {
        let runtime = start_runtime(&db.kith, &plugins_config()).await.unwrap();
        runtime.install(&Actor::system("test"), donors().0, donors().1).await.unwrap();
        runtime.enable(&Actor::system("test"), "donors", Grants::All).await.unwrap();
        runtime.stop().await;
    }
    let env = vec![("KITH_PLUGINS__CACHE_DIR".to_owned(), plugins_config().cache_dir)];
    let dir = kith_tests::temp_dir();
    let people = dir.join("donors.csv");
    std::fs::write(&people, "First Name,Last Name,Email\nAda,Lovelace,ada@example.org\nBob,Boole,bob@example.org\n")
        .unwrap();
    run_cli_env(&db.url, &["import", "contacts", people.to_str().unwrap()], "", env.clone()).await.unwrap();
    let last = chrono::Utc::now().year() - 1;
    let gifts = dir.join("gifts.csv");
    std::fs::write(
        &gifts,
        format!("email,amount,date,fund\nada@example.org,50,{last}-03-01,General\nbob@example.org,-1,{last}-03-01,\ncarol@example.org,5,{last}-03-01,\n"),
    )
    .unwrap();
    // Rejected rows fail the import (exit status 1), the other rows imported.
    let out = run_kith(&["--database", &db.url, "import", "donations", gifts.to_str().unwrap()], env.clone()).await;
    assert_eq!(out.status, 1, "{}", out.stderr);
    assert!(out.stderr.contains("line 3: the amount must be more than 0"), "{}", out.stderr);
    assert!(out.stderr.contains("line 4: no contact with the e-mail carol@example.org"), "{}", out.stderr);
    assert!(out.stderr.contains("imported 1 donations (2 rejected) through plugin `donors`"), "{}", out.stderr);
    assert!(out.stderr.contains("error: 2 of 3 rows rejected (listed above); the other rows were imported"));
    assert_eq!(db.count_rows("p_donors_donation").await, 1);
    // A broken quote is refused before the plugin parses the file (its parser would merge the
    // rows after it into one cell): nothing is imported, the broken row is named.
    let broken = dir.join("broken.csv");
    std::fs::write(
        &broken,
        format!("email,amount,date,fund\nada@example.org,7,{last}-04-01,\"General\nbob@example.org,8,{last}-04-01,\n"),
    )
    .unwrap();
    let out = run_kith(&["--database", &db.url, "import", "donations", broken.to_str().unwrap()], env.clone()).await;
    assert_eq!(out.status, 1, "{}", out.stderr);
    assert!(out.stderr.contains("line 2: a quoted field is never closed"), "{}", out.stderr);
    assert!(out.stderr.contains("is not well-formed CSV (1 broken row(s), listed above); nothing was imported"));
    assert_eq!(db.count_rows("p_donors_donation").await, 1, "nothing imported");
    let header_only = dir.join("header.csv");
    std::fs::write(&header_only, "email,amount,date,fund\n").unwrap();
    let out =
        run_cli_env(&db.url, &["import", "donations", header_only.to_str().unwrap()], "", env.clone()).await.unwrap();
    assert!(out.stderr.contains("no rows to import"), "{}", out.stderr);
    let out =
        run_cli_env(&db.url, &["import", "donations", gifts.to_str().unwrap(), "--allow-rejects"], "", env.clone())
            .await
            .unwrap();
    assert!(out.stderr.contains("2 of 3 rows rejected (accepted with --allow-rejects)"), "{}", out.stderr);
    let year = format!("year={}", last + 1);
    let report =
        run_cli_env(&db.url, &["plugin", "call", "donors", "lybunt", "--arg", &year], "", env.clone()).await.unwrap();
    let rows: Value = serde_json::from_str(&report.stdout).unwrap();
    assert_eq!(rows[0]["name"], "Ada Lovelace", "{}", report.stdout);
    let bad = run_cli_env(&db.url, &["plugin", "call", "donors", "lybunt", "--arg", "year=soon"], "", env.clone())
        .await
        .unwrap_err();
    assert!(format!("{bad:#}").contains("BAD_USER_INPUT: year"), "{bad:#}");
    let unknown = run_cli_env(&db.url, &["import", "spaceships", gifts.to_str().unwrap()], "", env).await.unwrap_err();
    assert!(format!("{unknown:#}").contains("importSpaceships"), "{unknown:#}");
    let _ = std::fs::remove_dir_all(dir);
    db.cleanup().await;
}

/// A plugin object's indexes end with `id` like the core ones: a page of gifts filtered by a
/// status or a contact, or sorted by date (newest first), is read in index order without a sort.
#[tokio::test]
async fn pages_of_a_plugin_object_are_read_in_index_order() {
    use kith_core::domain::filter::{Filter, OrderBy, Target};
    use kith_core::store::records::{ListQuery, PageRequest};
    use sea_orm::ConnectionTrait;
    for db in TestDb::all().await {
        let runtime = start_runtime(&db.kith, &plugins_config()).await.unwrap();
        let admin = Actor::system("test");
        runtime.install(&admin, donors().0, donors().1).await.unwrap();
        runtime.enable(&admin, "donors", Grants::All).await.unwrap();
        runtime.refresh().await.unwrap();
        let def = db.kith.object("donation").unwrap();
        let backend = db.kith.store.conn().get_database_backend();
        let contact = uuid::Uuid::now_v7().to_string();
        let newest = OrderBy { target: Target::Field("receivedDate".into()), desc: true, nulls_first: true };
        for (filter, order, index) in [
            (json!({"status": {"eq": "RECEIVED"}}), vec![], "ix_p_donors_donation__status"),
            (json!({"contactId": {"eq": contact}}), vec![], "ix_p_donors_donation__contact_id"),
            (json!({}), vec![newest], "ix_p_donors_donation__received_date"),
        ] {
            let query = ListQuery {
                filter: Filter::from_json(&def, &[], &filter).unwrap(),
                order,
                page: PageRequest::Forward { first: 50, after: None },
                include_deleted: false,
            };
            let statement = kith_core::store::records::list_statement(backend, &def, &query, None).unwrap();
            let text = format!("{}\n{}", statement.sql, query_plan(&db, &statement).await.join("\n"));
            assert!(text.contains(index), "{}: {filter} uses {index}:\n{text}", db.name);
            assert!(
                !text.contains("TEMP B-TREE") && !text.contains("Sort"),
                "{}: {filter} sorts nothing:\n{text}",
                db.name
            );
        }
        // A table made before indexes ended with `id` gets them rebuilt when a process loads the
        // plugin, once.
        let conn = db.kith.store.conn();
        let by_status = ListQuery {
            filter: Filter::from_json(&def, &[], &json!({"status": {"eq": "RECEIVED"}})).unwrap(),
            order: vec![],
            page: PageRequest::Forward { first: 50, after: None },
            include_deleted: false,
        };
        let statement = kith_core::store::records::list_statement(backend, &def, &by_status, None).unwrap();
        let sorts = |plan: &[String]| plan.iter().any(|line| line.contains("TEMP B-TREE") || line.contains("Sort"));
        // The old layout, as a table made before 2026-12-03 has it (one connection: one batch).
        conn.execute_unprepared(
            "DROP INDEX ix_p_donors_donation__status; \
             CREATE INDEX ix_p_donors_donation__status ON p_donors_donation (status); \
             DROP INDEX ix_p_donors_donation__contact_id; \
             CREATE INDEX ix_p_donors_donation__contact_id ON p_donors_donation (contact_id)",
        )
        .await
        .unwrap();
        let definition = |name: &'static str| async move {
            let sql = if backend == sea_orm::DbBackend::Sqlite {
                "SELECT sql AS d FROM sqlite_master WHERE type = 'index' AND name = ?"
            } else {
                "SELECT indexdef AS d FROM pg_indexes WHERE indexname = $1"
            };
            let row = conn
                .query_one_raw(sea_orm::Statement::from_sql_and_values(backend, sql, [name.into()]))
                .await
                .unwrap()
                .unwrap();
            row.try_get::<String>("", "d").unwrap().replace('"', "")
        };
        for name in ["ix_p_donors_donation__status", "ix_p_donors_donation__contact_id"] {
            assert!(!definition(name).await.ends_with(", id)"), "{}: {name} is in the old layout", db.name);
        }
        runtime.stop().await;
        let runtime = start_runtime(&db.kith, &plugins_config()).await.unwrap();
        runtime.refresh().await.unwrap();
        for name in ["ix_p_donors_donation__status", "ix_p_donors_donation__contact_id"] {
            assert!(definition(name).await.ends_with(", id)"), "{}: {name} is rebuilt on load", db.name);
        }
        let plan = query_plan(&db, &statement).await;
        assert!(!sorts(&plan), "{}: read in index order: {plan:?}", db.name);
        assert!(plan.join("\n").contains("ix_p_donors_donation__status"), "{}: {plan:?}", db.name);
        assert_eq!(
            kith_core::store::plugin_objects::upgrade_indexes(conn, &def).await.unwrap(),
            0,
            "{}: nothing left to rebuild",
            db.name
        );
        runtime.stop().await;
        db.cleanup().await;
    }
}

/// More plugin calls at once than the plugin has instances: the calls beyond its four
/// instances wait for one to come back to the pool (not for a new place, which idle instances
/// keep), so every one answers instead of failing "busy" after the wait.
#[tokio::test]
async fn more_report_calls_at_once_than_instances_all_answer() {
    let db = TestDb::sqlite().await;
    let server = Server::start(&db).await;
    let runtime = start_runtime(&db.kith, &plugins_config()).await.unwrap();
    let admin = Actor::system("test");
    runtime.install(&admin, donors().0, donors().1).await.unwrap();
    runtime.enable(&admin, "donors", Grants::All).await.unwrap();
    runtime.refresh().await.unwrap();
    let manager = token(&db, Role::Manager).await;
    let fields: String = (2015..2027).map(|y| format!("y{y}: donorRetention(year: {y}) {{ year }} ")).collect();
    let started = std::time::Instant::now();
    let answer = server.gql(&manager, &format!("{{ {fields} }}"), json!({})).await;
    assert!(answer["errors"].is_null(), "{answer}");
    for y in 2015..2027 {
        assert_eq!(answer["data"][format!("y{y}")]["year"], y, "{answer}");
    }
    // Far below the ten seconds a call waits for an instance before it gives up.
    println!("twelve calls on four instances: {:?}", started.elapsed());
    runtime.stop().await;
    server.stop().await;
    db.cleanup().await;
}

/// The donors plugin as version 1.1.0 declared it (before exchange rates).
const DONORS_1_1_0: &str = include_str!("../fixtures/donors-1.1.0.toml");

/// Issue 24: gifts in other currencies count at their rate (a received one with no rate is
/// refused), recognition adds soft credits, companies get receipts, deleted donors leave the
/// lapsed lists and get no receipt, and the privacy export shows what the plugin holds.
#[tokio::test]
async fn gifts_count_in_the_organisations_currency_for_every_donor() {
    for db in TestDb::all().await {
        let name = db.name;
        let server = Server::start(&db).await;
        let runtime = crate::util::donors_runtime(&db).await;
        let agent = token(&db, Role::Agent).await;
        let manager = token(&db, Role::Manager).await;
        let (this, last) = (chrono::Utc::now().year(), chrono::Utc::now().year() - 1);
        let mut people = Vec::new();
        for first in ["Ada", "Bob", "Cy", "Dee"] {
            let email = format!("{}@example.org", first.to_lowercase());
            let c =
                db.create("contact", json!({"firstName": first, "lastName": "Giver", "email": email})).await.unwrap();
            people.push(c.id().to_string());
        }
        let [ada, bob, cy, dee] = [0, 1, 2, 3].map(|i| people[i].clone());
        let acme = db.create("company", json!({"name": "Acme Ltd"})).await.unwrap().id().to_string();

        // The rates table: exact rates, one a day per currency, never for the organisation's.
        let rate = "mutation($c: String!, $r: String!, $f: Date!) {
            createExchangeRate(input: {currency: $c, rate: $r, validFrom: $f}) { key rate baseCurrency } }";
        let r = server.gql(&agent, rate, json!({"c": "eur", "r": "1.10", "f": format!("{last}-01-01")})).await;
        assert_eq!(
            data(&r, "createExchangeRate"),
            &json!({"key": format!("EUR:USD:{last}-01-01"), "rate": "1.1", "baseCurrency": "USD"}),
            "{name}"
        );
        let r = server.gql(&agent, rate, json!({"c": "JPY", "r": "0.006712", "f": format!("{last}-01-01")})).await;
        assert_eq!(data(&r, "createExchangeRate")["rate"], "0.006712", "{name}: more places than a decimal keeps");
        let r = server.gql(&agent, rate, json!({"c": "EUR", "r": "1.2", "f": format!("{last}-01-01")})).await;
        assert_eq!(code(&r), "CONFLICT", "{name}: {r}");
        let r = server.gql(&agent, rate, json!({"c": "USD", "r": "1", "f": format!("{last}-01-01")})).await;
        assert_eq!(code(&r), "REJECTED_BY_PLUGIN", "{name}: {r}");

        let record = "mutation($c: ID, $co: ID, $a: Decimal!, $cur: String, $d: Date, $rate: Decimal, $soft: JSON) {
            recordDonation(contactId: $c, companyId: $co, amount: $a, currency: $cur, receivedDate: $d, exchangeRate: $rate, softCredits: $soft) }";
        let gift = |vars: Value| {
            let (server, agent) = (&server, agent.clone());
            async move {
                let r = server.gql(&agent, record, vars).await;
                data(&r, "recordDonation").as_str().unwrap().to_owned()
            }
        };
        let euros = gift(json!({"c": ada, "a": "100", "cur": "EUR", "d": format!("{last}-03-01")})).await;
        gift(
            json!({"c": ada, "a": "50", "d": format!("{this}-01-15"), "soft": [{"contactId": bob, "role": "SPOUSE"}]}),
        )
        .await;
        gift(json!({"c": ada, "a": "10000", "cur": "JPY", "d": format!("{this}-02-01")})).await;
        gift(json!({"c": ada, "a": "10", "cur": "GBP", "rate": "1.25", "d": format!("{this}-02-02")})).await;
        gift(json!({"c": cy, "a": "20", "d": format!("{last}-05-05")})).await;
        gift(json!({"c": dee, "a": "30", "d": format!("{last}-06-06")})).await;
        gift(json!({"co": acme, "a": "500", "d": format!("{last}-07-07")})).await;
        gift(json!({"co": acme, "a": "100", "cur": "EUR", "d": format!("{last}-08-08")})).await;
        let stored = server
            .gql(&agent, "query($id: ID!) { donation(id: $id) { amount amountCurrency exchangeRate baseAmount baseAmountCurrency exchangeRateSource } }", json!({"id": euros}))
            .await;
        assert_eq!(
            data(&stored, "donation"),
            &json!({"amount": "100", "amountCurrency": "EUR", "exchangeRate": "1.1", "baseAmount": "110",
                    "baseAmountCurrency": "USD", "exchangeRateSource": "TABLE"}),
            "{name}: the gift as given, and its value"
        );
        // No rate for a received gift: refused, naming the currency and the date.
        let gifts_before = db.count_rows("p_donors_donation").await;
        let r =
            server.gql(&agent, record, json!({"c": ada, "a": "100", "cur": "SEK", "d": format!("{this}-01-03")})).await;
        assert_eq!(
            (code(&r), r["errors"][0]["extensions"]["field"].as_str()),
            ("BAD_USER_INPUT", Some("exchangeRate")),
            "{name}: {r}"
        );
        let message = r["errors"][0]["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("no exchange rate from SEK to USD valid on {this}-01-03")),
            "{name}: {message}"
        );
        let create = "mutation($c: ID!, $d: Date!, $rate: String) { createDonation(input: {contactId: $c, amount: \"8\",
            amountCurrency: \"GBP\", status: RECEIVED, receivedDate: $d, exchangeRate: $rate}) { baseAmount exchangeRateSource } }";
        let r = server.gql(&agent, create, json!({"c": ada, "d": format!("{this}-02-03")})).await;
        assert_eq!(code(&r), "REJECTED_BY_PLUGIN", "{name}: {r}");
        assert!(r.to_string().contains("no exchange rate from GBP to USD"), "{name}: {r}");
        assert_eq!(db.count_rows("p_donors_donation").await, gifts_before, "{name}: nothing written");
        let r = server.gql(&agent, create, json!({"c": ada, "d": format!("{this}-02-03"), "rate": "1.25"})).await;
        assert_eq!(data(&r, "createDonation"), &json!({"baseAmount": "10", "exchangeRateSource": "ENTERED"}), "{name}");

        // Ada: 110 + 50 + 67.12 + 12.5 + 10. Bob is credited with 50 (recognition), gave nothing.
        let summary =
            "query($id: ID!) { contact(id: $id) { donorSummary { currency lifetimeGiving givingThisYear givingLastYear
            giftCount softCredits recognitionTotal recognitionThisYear recognitionLastYear } } }";
        let s = server.gql(&agent, summary, json!({"id": ada})).await;
        assert_eq!(
            data(&s, "contact")["donorSummary"],
            json!({"currency": "USD", "lifetimeGiving": "249.62", "givingThisYear": "139.62", "givingLastYear": "110",
                   "giftCount": 5, "softCredits": "0", "recognitionTotal": "249.62", "recognitionThisYear": "139.62",
                   "recognitionLastYear": "110"}),
            "{name}"
        );
        let s = server.gql(&agent, summary, json!({"id": bob})).await;
        assert_eq!(
            data(&s, "contact")["donorSummary"],
            json!({"currency": "USD", "lifetimeGiving": "0", "givingThisYear": "0", "givingLastYear": "0", "giftCount": 0,
                   "softCredits": "50", "recognitionTotal": "50", "recognitionThisYear": "50", "recognitionLastYear": "0"}),
            "{name}"
        );
        // Never gave nor was credited: no summary at all (null, not an object of nulls).
        let none =
            server.gql(&agent, "mutation { createContact(input: { firstName: \"Nobody\" }) { id } }", json!({})).await;
        let none = data(&none, "createContact")["id"].clone();
        let s = server
            .gql(
                &agent,
                "query($id: ID!) { contact(id: $id) { firstName donorSummary { giftCount status } } }",
                json!({"id": none}),
            )
            .await;
        assert!(s["errors"].is_null(), "{name}: {s}");
        assert_eq!(data(&s, "contact"), &json!({"firstName": "Nobody", "donorSummary": null}), "{name}: {s}");
        // Credited only: no retention status of their own (it counts what they gave), and no error.
        let s = server
            .gql(&agent, "query($id: ID!) { contact(id: $id) { donorSummary { level status } } }", json!({"id": bob}))
            .await;
        assert!(s["errors"].is_null(), "{name}: {s}");
        assert_eq!(data(&s, "contact")["donorSummary"]["status"], Value::Null, "{name}: {s}");
        // Last year's gifts by month, companies' and euros included.
        let rows = server
            .gql(&manager, "query($f: Date!, $t: Date!) { givingSummary(from: $f, to: $t, groupBy: MONTH) { label total gifts donors } }",
                json!({"f": format!("{last}-01-01"), "t": format!("{last}-12-31")}))
            .await;
        let month =
            |m: &str, total: &str| json!({"label": format!("{last}-{m}"), "total": total, "gifts": 1, "donors": 1});
        assert_eq!(
            data(&rows, "givingSummary"),
            &json!([month("03", "110"), month("05", "20"), month("06", "30"), month("07", "500"), month("08", "110")]),
            "{name}"
        );

        // Dee is deleted: her gift still counts in retention, but she is nobody to ask.
        let r = server.gql(&manager, "mutation($id: ID!) { deleteContact(id: $id) { id } }", json!({"id": dee})).await;
        data(&r, "deleteContact");
        let lybunt = server
            .gql(&manager, "query($y: Int!) { lybunt(year: $y) { contactId name lastGiftAmount lifetimeGiving lifetimeRecognition } }", json!({"y": this}))
            .await;
        assert_eq!(
            data(&lybunt, "lybunt"),
            &json!([{"contactId": cy, "name": "Cy Giver", "lastGiftAmount": "20", "lifetimeGiving": "20", "lifetimeRecognition": "20"}]),
            "{name}: Ada gave this year, Dee is deleted"
        );
        assert!(!lybunt.to_string().contains("(unnamed)"), "{name}");
        let retention = server
            .gql(
                &manager,
                "query($y: Int!) { donorRetention(year: $y) { donorsLastYear lapsedDonors } }",
                json!({"y": this}),
            )
            .await;
        assert_eq!(data(&retention, "donorRetention"), &json!({"donorsLastYear": 3, "lapsedDonors": 2}), "{name}");

        // Last year's receipts: Ada, Cy and Acme (its euro gift at its rate); none for Dee.
        let receipts = "mutation($y: Int!) { issueYearEndReceipts(year: $y) { issued alreadyIssued remaining skipped receiptNumbers } }";
        let run = server.gql(&manager, receipts, json!({"y": last})).await;
        let numbers: Vec<String> = (1..=3).map(|n| format!("R-{last}-{n:06}")).collect();
        assert_eq!(
            data(&run, "issueYearEndReceipts"),
            &json!({"issued": 3, "alreadyIssued": 0, "remaining": 0, "skipped": 1, "receiptNumbers": numbers}),
            "{name}"
        );
        let company = server
            .gql(&manager, "query($co: ID) { receipts(filter: {companyId: {eq: $co}}) { edges { node { key total totalCurrency gifts contactId text } } } }", json!({"co": acme}))
            .await;
        let company = &data(&company, "receipts")["edges"][0]["node"];
        assert_eq!(
            (
                company["key"].as_str(),
                company["total"].as_str(),
                company["totalCurrency"].as_str(),
                company["gifts"].as_i64()
            ),
            (Some(format!("{last}:company:{acme}").as_str()), Some("610"), Some("USD"), Some(2)),
            "{name}: {company}"
        );
        assert!(company["contactId"].is_null(), "{name}");
        let text = company["text"].as_str().unwrap();
        assert!(text.contains("Donor: Acme Ltd") && text.contains("110 USD (100 EUR at 1.1)"), "{name}: {text}");
        let notes = server
            .gql(
                &manager,
                "query($co: ID) { activities(filter: {companyId: {eq: $co}, kind: {eq: NOTE}}) { totalCount } }",
                json!({"co": acme}),
            )
            .await;
        assert_eq!(data(&notes, "activities")["totalCount"], 1, "{name}");

        // The privacy export: Ada's receipt and the thank-you task the plugin remembers.
        let today = gift(json!({"c": ada, "a": "12"})).await;
        eventually(10, "a thank-you task", || async {
            let tasks = server
                .gql(&agent, "query($id: ID) { activities(filter: {contactId: {eq: $id}, kind: {eq: TASK}}) { edges { node { subject } } } }", json!({"id": ada}))
                .await;
            tasks.to_string().contains("Thank Ada Giver for their gift of 12 USD").then_some(())
        })
        .await;
        let export = "query($id: ID!) { donorPrivacyExport(contactId: $id) }";
        let e = server.gql(&manager, export, json!({"id": ada})).await;
        let e = data(&e, "donorPrivacyExport");
        let receipt = &e["receipts"][0];
        assert_eq!(
            (
                receipt["number"].as_str(),
                receipt["year"].as_i64(),
                receipt["total"].as_str(),
                receipt["gifts"].as_i64()
            ),
            (Some(numbers[0].as_str()), Some(i64::from(last)), Some("110"), Some(1)),
            "{name}: {e}"
        );
        assert_eq!(receipt["donationIds"], json!([euros]), "{name}");
        assert_eq!(e["receipts"].as_array().unwrap().len(), 1, "{name}");
        // (This year's earlier gifts may be recent enough for thanks of their own.)
        let remembered = e["keyValue"].as_array().unwrap().iter().find(|kv| kv["donationId"] == json!(today));
        assert_eq!(
            remembered.and_then(|kv| kv["key"].as_str()),
            Some(format!("thanked:{today}").as_str()),
            "{name}: {e}"
        );
        assert_eq!(e["computed"]["donorSummary"]["lifetimeGiving"], "261.62", "{name}");
        assert_eq!(code(&server.gql(&agent, export, json!({"id": ada})).await), "FORBIDDEN", "{name}");
        let bad = server.gql(&manager, export, json!({"id": "not-an-id"})).await;
        assert_eq!(
            (code(&bad), bad["errors"][0]["extensions"]["field"].as_str()),
            ("BAD_USER_INPUT", Some("contactId")),
            "{name}: {bad}"
        );
        // Every gift has its base amount: nothing to apply.
        let apply = server
            .gql(&manager, "mutation { applyExchangeRates { updated remaining missing { currency } } }", json!({}))
            .await;
        assert_eq!(data(&apply, "applyExchangeRates"), &json!({"updated": 0, "remaining": 0, "missing": []}), "{name}");

        runtime.stop().await;
        server.stop().await;
        db.cleanup().await;
    }
}

/// The upgrade from 1.1.0 is additive, and gifts stored before it (without a base amount)
/// count at their amount in the organisation's currency until `applyExchangeRates` gives them
/// one; a gift in another currency counts once its rate is in the table.
#[tokio::test]
async fn gifts_stored_before_exchange_rates_count_after_the_upgrade() {
    use sea_orm::ConnectionTrait;
    for db in TestDb::all().await {
        let name = db.name;
        let server = Server::start(&db).await;
        let runtime = start_runtime(&db.kith, &plugins_config()).await.unwrap();
        let admin = Actor::system("test");
        runtime.install(&admin, DONORS_1_1_0, donors().1).await.unwrap();
        runtime.enable(&admin, "donors", Grants::All).await.unwrap();
        let upgraded = runtime.upgrade(&admin, donors().0, donors().1, &[]).await.unwrap();
        assert_eq!(upgraded.version, "1.3.0", "{name}: upgraded without --allow-destructive");
        runtime.refresh().await.unwrap();
        let agent = token(&db, Role::Agent).await;
        let manager = token(&db, Role::Manager).await;
        let (this, last) = (chrono::Utc::now().year(), chrono::Utc::now().year() - 1);
        let ada = db.create("contact", json!({"firstName": "Ada", "lastName": "Old"})).await.unwrap().id().to_string();
        let bob = db.create("contact", json!({"firstName": "Bob", "lastName": "Old"})).await.unwrap().id().to_string();
        let record = "mutation($c: ID, $a: Decimal!, $cur: String, $d: Date, $rate: Decimal) {
            recordDonation(contactId: $c, amount: $a, currency: $cur, receivedDate: $d, exchangeRate: $rate) }";
        for vars in [
            json!({"c": ada, "a": "40", "d": format!("{last}-03-01")}),
            json!({"c": ada, "a": "60", "d": format!("{this}-01-10")}),
            json!({"c": bob, "a": "25", "d": format!("{last}-04-04")}),
            json!({"c": ada, "a": "100", "cur": "EUR", "rate": "1.1", "d": format!("{last}-05-05")}),
        ] {
            data(&server.gql(&agent, record, vars).await, "recordDonation");
        }
        // As the upgrade leaves rows of 1.1.0: the new columns empty.
        db.kith
            .store
            .conn()
            .execute_unprepared(
                "UPDATE p_donors_donation SET exchange_rate = NULL, base_amount = NULL, base_amount_currency = NULL, \
                 exchange_rate_source = NULL",
            )
            .await
            .unwrap();
        let summary =
            "query($id: ID!) { contact(id: $id) { donorSummary { lifetimeGiving giftCount givingLastYear } } }";
        let s = server.gql(&agent, summary, json!({"id": ada})).await;
        assert_eq!(
            data(&s, "contact")["donorSummary"],
            json!({"lifetimeGiving": "100", "giftCount": 2, "givingLastYear": "40"}),
            "{name}: the dollars count as before, the euros (no rate yet) as before: not at all"
        );
        let lybunt = server
            .gql(
                &manager,
                "query($y: Int!) { lybunt(year: $y) { name lastGiftAmount lifetimeGiving } }",
                json!({"y": this}),
            )
            .await;
        assert_eq!(
            data(&lybunt, "lybunt"),
            &json!([{"name": "Bob Old", "lastGiftAmount": "25", "lifetimeGiving": "25"}]),
            "{name}"
        );
        let apply = "mutation { applyExchangeRates { updated remaining missing { currency from to gifts } } }";
        let run = server.gql(&manager, apply, json!({})).await;
        assert_eq!(
            data(&run, "applyExchangeRates"),
            &json!({"updated": 3, "remaining": 0, "missing": [{"currency": "EUR", "from": format!("{last}-05-05"), "to": format!("{last}-05-05"), "gifts": 1}]}),
            "{name}"
        );
        let r = server
            .gql(&agent, "mutation($f: Date!) { createExchangeRate(input: {currency: \"EUR\", rate: \"1.2\", validFrom: $f}) { id } }", json!({"f": format!("{last}-01-01")}))
            .await;
        data(&r, "createExchangeRate");
        let run = server.gql(&manager, apply, json!({})).await;
        assert_eq!(data(&run, "applyExchangeRates"), &json!({"updated": 1, "remaining": 0, "missing": []}), "{name}");
        let s = server.gql(&agent, summary, json!({"id": ada})).await;
        assert_eq!(
            data(&s, "contact")["donorSummary"],
            json!({"lifetimeGiving": "220", "giftCount": 3, "givingLastYear": "160"}),
            "{name}: the euros at the table's rate"
        );
        let sources = server
            .gql(&agent, "query($c: ID) { donations(filter: {contactId: {eq: $c}}, orderBy: [{field: receivedDate, direction: ASC}]) { edges { node { baseAmount exchangeRateSource } } } }", json!({"c": ada}))
            .await;
        assert_eq!(
            data(&sources, "donations")["edges"],
            json!([{"node": {"baseAmount": "40", "exchangeRateSource": "SAME_CURRENCY"}},
                   {"node": {"baseAmount": "120", "exchangeRateSource": "TABLE"}},
                   {"node": {"baseAmount": "60", "exchangeRateSource": "SAME_CURRENCY"}}]),
            "{name}"
        );
        runtime.stop().await;
        server.stop().await;
        db.cleanup().await;
    }
}
