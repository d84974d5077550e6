//! `kith seed --demo`: a small, realistic data set so a newcomer sees something at once.

use chrono::Duration;
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::domain::DomainError;
use crate::domain::actor::Actor;
use crate::domain::filter::{Condition, Filter, Op, Target};
use crate::domain::value::{FieldKind, Value};
use crate::error::Result;
use crate::service::input::Input;
use crate::service::{Kith, records, workflow};
use crate::store::records::count;

/// What the demo seed created.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeedReport {
    /// Companies.
    pub companies: u64,
    /// Contacts.
    pub contacts: u64,
    /// Deals.
    pub deals: u64,
    /// Tickets.
    pub tickets: u64,
    /// Activities.
    pub activities: u64,
}

const COMPANIES: &[(&str, &str, &str, i64)] = &[
    ("Acme Robotics", "acme-robotics.example", "Manufacturing", 420),
    ("Blue Harbor Foods", "blueharbor.example", "Food & Beverage", 85),
    ("Cedar Health", "cedarhealth.example", "Healthcare", 1200),
    ("Driftwood Studio", "driftwood.example", "Design", 12),
    ("Evergreen Trust", "evergreen-trust.example", "Nonprofit", 40),
    ("Foxglove Software", "foxglove.example", "Software", 230),
    ("Granite Logistics", "granite-logistics.example", "Logistics", 640),
    ("Hillside Schools", "hillside.example", "Education", 310),
];
const FIRST: &[&str] = &[
    "Ada",
    "Grace",
    "Alan",
    "Katherine",
    "Edsger",
    "Barbara",
    "Linus",
    "Margaret",
    "Dennis",
    "Radia",
    "Ken",
    "Frances",
];
const LAST: &[&str] = &[
    "Lovelace", "Hopper", "Turing", "Johnson", "Dijkstra", "Liskov", "Torvalds", "Hamilton", "Ritchie", "Perlman",
    "Thompson", "Allen",
];
const CITIES: &[&str] = &["London", "Lisbon", "Berlin", "Toronto", "Nairobi", "Melbourne"];
const STAGES: &[(&str, i64, &str)] = &[
    ("Lead", 10, "OPEN"),
    ("Qualified", 25, "OPEN"),
    ("Proposal", 50, "OPEN"),
    ("Negotiation", 75, "OPEN"),
    ("Won", 100, "WON"),
    ("Lost", 0, "LOST"),
];

fn text(s: impl Into<String>) -> Value {
    Value::Text(s.into())
}

/// Seeds the demo data set. Refuses to run twice.
pub async fn demo(kith: &Kith) -> Result<SeedReport> {
    let registry = &kith.registry();
    let contact_def = kith.object("contact")?;
    let demo_filter = Filter::Cond(Condition {
        target: Target::Field("source".into()),
        kind: FieldKind::Text,
        op: Op::Eq(text("demo")),
    });
    if count(kith.store.conn(), &contact_def, &demo_filter, true).await? > 0 {
        return Err(DomainError::conflict("the demo data is already there").into());
    }
    let tx = kith.store.begin(&Actor::system("seed")).await?;
    let mut report = SeedReport::default();

    let mut companies = Vec::new();
    for (i, (name, domain, industry, employees)) in COMPANIES.iter().enumerate() {
        let input = Input::fields([
            ("name", text(*name)),
            ("domain", text(*domain)),
            ("industry", text(*industry)),
            ("employees", Value::Int(*employees)),
            ("annualRevenue", Value::Decimal(Decimal::from(*employees) * Decimal::from(95_000))),
            ("addressCity", text(CITIES[i % CITIES.len()])),
        ]);
        companies.push(records::create(&tx, registry, "company", input).await?.id());
        report.companies += 1;
    }

    let stages_lifecycle = ["LEAD", "PROSPECT", "CUSTOMER", "SUBSCRIBER", "CUSTOMER", "CHURNED"];
    let mut contacts = Vec::new();
    for i in 0..48usize {
        let first = FIRST[i % FIRST.len()];
        let last = LAST[(i * 7 + i / FIRST.len()) % LAST.len()];
        let company = companies[i % companies.len()];
        let domain = COMPANIES[i % COMPANIES.len()].1;
        let mut input = Input::fields([
            ("firstName", text(first)),
            ("lastName", text(last)),
            ("email", text(format!("{}.{}{}@{domain}", first.to_lowercase(), last.to_lowercase(), i))),
            ("jobTitle", text(["Founder", "Head of Operations", "Engineer", "Buyer", "Director"][i % 5])),
            ("addressCity", text(CITIES[i % CITIES.len()])),
            ("companyId", Value::Uuid(company)),
            ("lifecycleStage", text(stages_lifecycle[i % stages_lifecycle.len()])),
            ("emailOptIn", Value::Bool(i % 3 != 0)),
            ("source", text("demo")),
        ]);
        input.tags = Some(if i % 4 == 0 { vec!["vip".into(), "newsletter".into()] } else { vec!["newsletter".into()] });
        contacts.push((records::create(&tx, registry, "contact", input).await?.id(), company));
        report.contacts += 1;
    }

    let pipeline =
        records::create(&tx, registry, "pipeline", Input::fields([("name", text("Sales")), ("currency", text("EUR"))]))
            .await?
            .id();
    let mut stages: Vec<Uuid> = Vec::new();
    for (position, (name, probability, kind)) in STAGES.iter().enumerate() {
        let input = Input::fields([
            ("pipelineId", Value::Uuid(pipeline)),
            ("name", text(*name)),
            ("position", Value::Int(position as i64)),
            ("probability", Value::Int(*probability)),
            ("kind", text(*kind)),
        ]);
        stages.push(records::create(&tx, registry, "stage", input).await?.id());
    }
    for i in 0..24usize {
        let (contact, company) = contacts[i * 2];
        let input = Input::fields([
            ("title", text(format!("{} renewal {}", COMPANIES[i % COMPANIES.len()].0, 2026 + (i % 2) as i64))),
            ("amount", Value::Decimal(Decimal::new(((i as i64) + 3) * 125_000, 2))),
            ("pipelineId", Value::Uuid(pipeline)),
            ("stageId", Value::Uuid(stages[0])),
            ("contactId", Value::Uuid(contact)),
            ("companyId", Value::Uuid(company)),
            ("expectedCloseDate", Value::Date((tx.now + Duration::days(14 + i as i64 * 3)).date_naive())),
        ]);
        let deal = records::create(&tx, registry, "deal", input).await?;
        // Walk it forward so every stage has deals and every deal has a history.
        let target = i % STAGES.len();
        if target > 0 {
            let last_open = target.min(3);
            for stage in stages.iter().take(last_open + 1).skip(1) {
                workflow::move_deal(&tx, registry, deal.id(), *stage, None).await?;
            }
            match STAGES[target].2 {
                "WON" => {
                    workflow::close_deal(&tx, registry, deal.id(), true, None, None).await?;
                }
                "LOST" => {
                    workflow::close_deal(&tx, registry, deal.id(), false, Some("Chose a competitor".into()), None)
                        .await?;
                }
                _ => {}
            }
        }
        report.deals += 1;
    }

    let paths: &[&[&str]] = &[
        &[],
        &["OPEN"],
        &["OPEN", "PENDING"],
        &["OPEN", "ON_HOLD"],
        &["OPEN", "SOLVED"],
        &["OPEN", "SOLVED", "CLOSED"],
    ];
    for i in 0..18usize {
        let (contact, company) = contacts[i * 2 + 1];
        let input = Input::fields([
            (
                "subject",
                text(
                    [
                        "Cannot log in",
                        "Invoice question",
                        "Feature request: exports",
                        "Data looks wrong",
                        "Password reset",
                    ][i % 5],
                ),
            ),
            ("description", text("Reported through the demo seed.")),
            ("priority", text(["LOW", "NORMAL", "HIGH", "URGENT"][i % 4])),
            ("channel", text(["EMAIL", "PHONE", "CHAT", "WEB"][i % 4])),
            ("contactId", Value::Uuid(contact)),
            ("companyId", Value::Uuid(company)),
            ("queue", text(if i % 2 == 0 { "support" } else { "billing" })),
        ]);
        let ticket = records::create(&tx, registry, "ticket", input).await?.id();
        let path = paths[i % paths.len()];
        if !path.is_empty() {
            workflow::add_comment(&tx, registry, ticket, "Thanks for reaching out, we are on it.", true).await?;
        }
        for status in path {
            workflow::change_status(&tx, registry, ticket, status, None).await?;
        }
        if path.last().is_some_and(|s| *s == "SOLVED" || *s == "CLOSED") {
            workflow::rate(&tx, registry, ticket, 3 + (i % 3) as i64, Some("Quick and friendly".into())).await?;
        }
        report.tickets += 1;
    }

    for (i, (contact, _)) in contacts.iter().enumerate().take(30) {
        let kind = ["NOTE", "CALL", "EMAIL", "MEETING", "TASK"][i % 5];
        let mut input = Input::fields([
            ("kind", text(kind)),
            ("subject", text(format!("{} with the customer", kind.to_lowercase()))),
            ("body", text("Seeded demo activity.")),
            ("contactId", Value::Uuid(*contact)),
            ("occurredAt", Value::DateTime(tx.now - Duration::days(i as i64))),
        ]);
        if kind == "TASK" {
            input.fields.insert("dueAt".into(), Value::DateTime(tx.now + Duration::days(3)));
        }
        let activity = records::create(&tx, registry, "activity", input).await?;
        if kind == "TASK" && i % 2 == 0 {
            workflow::complete_task(&tx, registry, activity.id()).await?;
        }
        report.activities += 1;
    }
    tx.commit().await?;
    Ok(report)
}
