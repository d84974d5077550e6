//! Deals, tickets, activities, merges and timelines on both databases, and the deal and ticket
//! workflow mutations through the GraphQL API.

use kith_core::domain::DomainError;
use kith_core::domain::actor::Role;
use kith_core::service::timeline::timeline;
use kith_core::service::workflow;
use kith_core::store::{history, outbox};
use kith_tests::{TestDb, domain_err};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::util::{Server, code, token};

async fn pipeline(db: &TestDb, name: &str) -> (Uuid, Vec<Uuid>) {
    let p = db.create("pipeline", json!({"name": name, "currency": "eur"})).await.unwrap();
    let mut stages = Vec::new();
    for (i, (stage, probability, kind)) in
        [("Lead", 10, "OPEN"), ("Proposal", 50, "OPEN"), ("Won", 100, "WON"), ("Lost", 0, "LOST")].iter().enumerate()
    {
        let s = db
            .create(
                "stage",
                json!({"pipelineId": p.id(), "name": stage, "position": i, "probability": probability, "kind": kind}),
            )
            .await
            .unwrap();
        stages.push(s.id());
    }
    (p.id(), stages)
}

#[tokio::test]
async fn deals_keep_stage_history_and_stay_in_their_pipeline() {
    for db in TestDb::all().await {
        let (sales, stages) = pipeline(&db, "Sales").await;
        let (_, other_stages) = pipeline(&db, "Partners").await;
        assert!(
            db.create("pipeline", json!({"name": "X", "currency": "EURO"}))
                .await
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
                .contains("ISO 4217")
        );
        let bad_prob = domain_err(
            db.create(
                "stage",
                json!({"pipelineId": sales, "name": "W", "position": 9, "probability": 50, "kind": "WON"}),
            )
            .await,
        );
        assert!(matches!(bad_prob, DomainError::Validation { ref field, .. } if field == "probability"), "{bad_prob}");

        let deal = db
            .create("deal", json!({"title": "Big", "amount": "1234.50", "pipelineId": sales, "stageId": stages[0]}))
            .await
            .unwrap();
        assert_eq!(deal.get("currency").as_text(), Some("EUR"), "{}: currency from the pipeline", db.name);
        assert_eq!(deal.to_json()["amount"], "1234.5", "{}: exact decimal", db.name);
        let cents = domain_err(
            db.create(
                "deal",
                json!({"title": "Yen", "amount": "10.5", "currency": "JPY", "pipelineId": sales, "stageId": stages[0]}),
            )
            .await,
        );
        assert!(cents.to_string().contains("0 decimal places"), "{cents}");
        let foreign =
            domain_err(db.create("deal", json!({"title": "X", "pipelineId": sales, "stageId": other_stages[0]})).await);
        assert!(foreign.to_string().contains("another pipeline"), "{foreign}");

        let tx = db.tx().await;
        let moved = workflow::move_deal(&tx, &db.kith.registry(), deal.id(), stages[1], Some(1)).await.unwrap();
        let err = domain_err(workflow::move_deal(&tx, &db.kith.registry(), deal.id(), other_stages[1], None).await);
        assert!(err.to_string().contains("another pipeline"));
        tx.commit().await.unwrap();
        assert!(moved.get("closedAt").is_null());
        let tx = db.tx().await;
        let lost = workflow::close_deal(&tx, &db.kith.registry(), deal.id(), false, Some("Budget cut".into()), Some(2))
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(lost.get("stageId").as_uuid(), Some(stages[3]));
        assert_eq!(lost.get("lostReason").as_text(), Some("Budget cut"));
        assert!(!lost.get("closedAt").is_null());

        let rows = history::deal_stages(db.kith.store.conn(), &[deal.id()]).await.unwrap();
        let path: Vec<Option<String>> = rows.iter().map(|r| r.to.clone()).collect();
        assert_eq!(path, [stages[0], stages[1], stages[3]].map(|s| Some(s.to_string())), "{}", db.name);
        assert_eq!(rows[1].from, Some(stages[0].to_string()));
        let kinds: Vec<String> = outbox::read(db.kith.store.conn(), 0, 1000)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.object == "deal")
            .map(|e| e.kind)
            .collect();
        assert_eq!(
            kinds,
            ["deal.created", "deal.updated", "deal.stage_changed", "deal.updated", "deal.stage_changed", "deal.lost"],
            "{}",
            db.name
        );
        // A deal recorded after the fact, created in a closing stage, was won (or lost) too.
        let seen = outbox::read(db.kith.store.conn(), 0, 1000).await.unwrap().len();
        let won = db
            .create("deal", json!({"title": "Signed last week", "pipelineId": sales, "stageId": stages[2]}))
            .await
            .unwrap();
        let kinds: Vec<(String, Value)> = outbox::read(db.kith.store.conn(), 0, 1000)
            .await
            .unwrap()
            .into_iter()
            .skip(seen)
            .filter(|e| e.record_id == Some(won.id()))
            .map(|e| (e.kind, e.payload))
            .collect();
        assert_eq!(kinds.iter().map(|k| k.0.as_str()).collect::<Vec<_>>(), ["deal.created", "deal.won"], "{}", db.name);
        assert_eq!(kinds[1].1["fromStageId"], Value::Null, "{}", db.name);

        // A stage with deals in it cannot be deleted.
        let tx = db.tx().await;
        let err = domain_err(kith_core::service::records::delete(&tx, &db.kith.registry(), "stage", stages[3]).await);
        assert!(matches!(err, DomainError::Conflict(_)));
        drop(tx);
        db.cleanup().await;
    }
}

#[tokio::test]
async fn tickets_follow_the_workflow_with_sla_numbers_comments_and_ratings() {
    for db in TestDb::all().await {
        let t1 = db.create("ticket", json!({"subject": "Broken", "priority": "urgent"})).await.unwrap();
        let t2 = db.create("ticket", json!({"subject": "Question"})).await.unwrap();
        assert_eq!(t1.get("number").as_int(), Some(1001), "{}", db.name);
        assert_eq!(t2.get("number").as_int(), Some(1002));
        assert_eq!(t1.get("status").as_text(), Some("NEW"));
        let created = t1.get("createdAt").as_datetime().unwrap();
        assert_eq!(
            t1.get("firstResponseDueAt").as_datetime().unwrap() - created,
            chrono::Duration::minutes(60),
            "URGENT: 1 h"
        );
        assert_eq!(
            t2.get("resolutionDueAt").as_datetime().unwrap() - t2.get("createdAt").as_datetime().unwrap(),
            chrono::Duration::minutes(2880),
            "NORMAL: 48 h"
        );
        let status = domain_err(db.update("ticket", t1.id(), json!({"status": "SOLVED"}), None).await);
        assert!(
            matches!(status, DomainError::Validation { ref field, .. } if field == "status"),
            "status only through changeStatus"
        );

        let reg = &db.kith.registry();
        let tx = db.tx().await;
        let err = domain_err(workflow::rate(&tx, reg, t1.id(), 5, None).await);
        assert!(matches!(err, DomainError::Conflict(_)), "{err}");
        workflow::add_comment(&tx, reg, t1.id(), "internal note", false).await.unwrap();
        let after_internal = kith_core::store::records::get(tx.conn(), &db.kith.object("ticket").unwrap(), t1.id())
            .await
            .unwrap()
            .unwrap();
        assert!(after_internal.get("firstRespondedAt").is_null(), "internal notes are not responses");
        workflow::add_comment(&tx, reg, t1.id(), "We are on it", true).await.unwrap();
        workflow::change_status(&tx, reg, t1.id(), "open", None).await.unwrap();
        let solved = workflow::change_status(&tx, reg, t1.id(), "SOLVED", None).await.unwrap();
        assert!(!solved.get("solvedAt").is_null());
        assert!(!solved.get("firstRespondedAt").is_null());
        let rated = workflow::rate(&tx, reg, t1.id(), 4, Some("thanks".into())).await.unwrap();
        assert_eq!(rated.get("satisfactionRating").as_int(), Some(4));
        assert!(workflow::rate(&tx, reg, t1.id(), 6, None).await.is_err());
        workflow::change_status(&tx, reg, t1.id(), "CLOSED", None).await.unwrap();
        tx.commit().await.unwrap();

        for (from_path, to) in [(vec!["CLOSED"], "OPEN"), (vec!["OPEN"], "NEW"), (vec![], "BOGUS")] {
            let t = db.create("ticket", json!({"subject": "t"})).await.unwrap();
            let tx = db.tx().await;
            for s in &from_path {
                workflow::change_status(&tx, reg, t.id(), s, None).await.unwrap();
            }
            let err = domain_err(workflow::change_status(&tx, reg, t.id(), to, None).await);
            assert!(matches!(err, DomainError::Conflict(_) | DomainError::Validation { .. }), "{to}: {err}");
        }
        let events: Vec<String> = history::ticket_events(db.kith.store.conn(), &[t1.id()])
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(
            events,
            ["created", "commented", "commented", "status_changed", "status_changed", "rated", "status_changed"],
            "{}",
            db.name
        );
        let kinds: Vec<String> = outbox::read(db.kith.store.conn(), 0, 1000)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.record_id == Some(t1.id()))
            .map(|e| e.kind)
            .collect();
        assert!(
            kinds.contains(&"ticket.status_changed".to_string()) && kinds.contains(&"ticket.rated".to_string()),
            "{kinds:?}"
        );
        db.cleanup().await;
    }
}

#[tokio::test]
async fn merging_contacts_moves_everything_and_the_timeline_shows_it() {
    for db in TestDb::all().await {
        let keep = db.create("contact", json!({"firstName": "Ada", "tags": ["vip"]})).await.unwrap();
        let merge = db
            .create(
                "contact",
                json!({"firstName": "Ada L.", "email": "ada@x.org", "phone": "123", "tags": ["newsletter"]}),
            )
            .await
            .unwrap();
        let (sales, stages) = pipeline(&db, "Sales").await;
        let deal = db
            .create("deal", json!({"title": "D", "pipelineId": sales, "stageId": stages[0], "contactId": merge.id()}))
            .await
            .unwrap();
        let ticket = db.create("ticket", json!({"subject": "T", "contactId": merge.id()})).await.unwrap();
        let task = db
            .create("activity", json!({"kind": "TASK", "subject": "Call back", "contactId": merge.id()}))
            .await
            .unwrap();
        let note = db
            .create("activity", json!({"kind": "NOTE", "subject": "Met at fair", "contactId": keep.id()}))
            .await
            .unwrap();

        let tx = db.tx().await;
        let err = domain_err(workflow::complete_task(&tx, &db.kith.registry(), note.id()).await);
        assert!(matches!(err, DomainError::Validation { .. }));
        workflow::complete_task(&tx, &db.kith.registry(), task.id()).await.unwrap();
        let kept = workflow::merge_contacts(&tx, &db.kith.registry(), keep.id(), merge.id()).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(kept.get("email").as_text(), Some("ada@x.org"), "{}: blanks filled", db.name);
        assert_eq!(kept.get("firstName").as_text(), Some("Ada"), "kept values win");
        for (object, id) in [("deal", deal.id()), ("ticket", ticket.id()), ("activity", task.id())] {
            let r = kith_core::store::records::get(db.kith.store.conn(), &db.kith.object(object).unwrap(), id)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(r.get("contactId").as_uuid(), Some(keep.id()), "{}: {object} moved", db.name);
        }
        let tags = kith_core::store::tags::for_records(db.kith.store.conn(), &[keep.id()]).await.unwrap();
        assert_eq!(tags[&keep.id()], ["newsletter", "vip"]);
        let gone =
            kith_core::store::records::get(db.kith.store.conn(), &db.kith.object("contact").unwrap(), merge.id())
                .await
                .unwrap()
                .unwrap();
        assert!(!gone.get("deletedAt").is_null());

        let items = timeline(&db.kith, "contact", keep.id(), 50).await.unwrap();
        let kinds: Vec<&str> = items.iter().map(|i| i.kind.as_str()).collect();
        assert!(
            kinds.contains(&"activity") && kinds.contains(&"deal_stage") && kinds.contains(&"ticket_event"),
            "{}: {kinds:?}",
            db.name
        );
        assert!(items.windows(2).all(|w| w[0].at >= w[1].at), "newest first");
        db.cleanup().await;
    }
}

#[tokio::test]
async fn duplicate_finder_ranks_likely_duplicates() {
    for db in TestDb::all().await {
        let acme = db.create("company", json!({"name": "Acme"})).await.unwrap();
        let ada = db
            .create(
                "contact",
                json!({"firstName": "Ada", "lastName": "Lovelace", "phone": "+44 1", "companyId": acme.id()}),
            )
            .await
            .unwrap();
        let twin = db
            .create(
                "contact",
                json!({"firstName": "ADA", "lastName": "lovelace", "phone": "+44 1", "companyId": acme.id()}),
            )
            .await
            .unwrap();
        let namesake = db.create("contact", json!({"firstName": "Ada", "lastName": "Lovelace"})).await.unwrap();
        let colleague = db
            .create("contact", json!({"firstName": "Byron", "lastName": "Lovelace", "companyId": acme.id()}))
            .await
            .unwrap();
        let odd = db.create("contact", json!({"firstName": "Ad_", "lastName": "Lovelac%"})).await.unwrap();
        db.create("contact", json!({"firstName": "Grace", "lastName": "Hopper", "companyId": acme.id()}))
            .await
            .unwrap();
        let found = workflow::contact_duplicates(&db.kith, ada.id(), 10).await.unwrap();
        let ids: Vec<Uuid> = found.iter().map(|d| d.contact.id()).collect();
        assert_eq!(ids, [twin.id(), namesake.id(), colleague.id()], "{}: {found:?}", db.name);
        assert_eq!(found[0].score, 140);
        assert_eq!(found[0].reasons, ["same phone", "same name", "same last name and company"]);
        let literal = workflow::contact_duplicates(&db.kith, odd.id(), 10).await.unwrap();
        assert!(literal.is_empty(), "{}: `_` and `%` in names match literally: {literal:?}", db.name);
        db.cleanup().await;
    }
}

#[tokio::test]
async fn workflows_over_graphql() {
    let db = TestDb::sqlite().await;
    let server = Server::start(&db).await;
    let agent = token(&db, Role::Agent).await;
    let p = server
        .gql(&agent, "mutation { createPipeline(input: {name: \"Sales\", currency: \"EUR\"}) { id } }", json!({}))
        .await;
    let pid = p["data"]["createPipeline"]["id"].as_str().unwrap().to_owned();
    let mut stages = Vec::new();
    for (i, (name, prob, kind)) in [("Lead", 10, "OPEN"), ("Won", 100, "WON"), ("Lost", 0, "LOST")].iter().enumerate() {
        let s = server
            .gql(
                &agent,
                "mutation($i: StageCreateInput!) { createStage(input: $i) { id } }",
                json!({"i": {"pipelineId": pid, "name": name, "position": i, "probability": prob, "kind": kind}}),
            )
            .await;
        stages.push(s["data"]["createStage"]["id"].as_str().unwrap().to_owned());
    }
    let d = server
        .gql(&agent, "mutation($i: DealCreateInput!) { createDeal(input: $i) { id amount currency stage { name } pipeline { stages { totalCount } } } }", json!({"i": {"title": "Big", "amount": "99.90", "pipelineId": pid, "stageId": stages[0]}}))
        .await;
    assert_eq!(d["data"]["createDeal"]["amount"], "99.9", "{d}");
    assert_eq!(d["data"]["createDeal"]["pipeline"]["stages"]["totalCount"], 3);
    let deal_id = d["data"]["createDeal"]["id"].as_str().unwrap().to_owned();
    let lost = server.gql(&agent, "mutation($id: ID!) { closeDeal(id: $id, outcome: LOST, reason: \"price\") { lostReason closedAt stage { kind } } }", json!({"id": deal_id})).await;
    assert_eq!(lost["data"]["closeDeal"]["stage"]["kind"], "LOST", "{lost}");
    let t = server
        .gql(
            &agent,
            "mutation { createTicket(input: {subject: \"Help\", priority: HIGH}) { id number status } }",
            json!({}),
        )
        .await;
    assert_eq!(t["data"]["createTicket"]["number"], 1001, "{t}");
    let tid = t["data"]["createTicket"]["id"].as_str().unwrap().to_owned();
    let c = server
        .gql(
            &agent,
            "mutation($id: ID!) { addTicketComment(ticketId: $id, body: \"On it\") { public authorName } }",
            json!({"id": tid}),
        )
        .await;
    assert_eq!(c["data"]["addTicketComment"]["public"], true, "{c}");
    let bad = server
        .gql(&agent, "mutation($id: ID!) { changeTicketStatus(id: $id, status: NEW) { status } }", json!({"id": tid}))
        .await;
    assert_eq!(code(&bad), "CONFLICT", "{bad}");
    let solved = server
        .gql(&agent, "mutation($id: ID!) { changeTicketStatus(id: $id, status: SOLVED) { status firstRespondedAt comments { totalCount } timeline { kind summary } } }", json!({"id": tid}))
        .await;
    assert_eq!(solved["data"]["changeTicketStatus"]["status"], "SOLVED", "{solved}");
    assert_eq!(solved["data"]["changeTicketStatus"]["comments"]["totalCount"], 1);
    assert!(solved["data"]["changeTicketStatus"]["timeline"].as_array().unwrap().len() >= 3);
    server.stop().await;
    db.cleanup().await;
}
