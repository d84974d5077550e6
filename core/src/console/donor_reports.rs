//! The fundraising reports of a donor plugin as pictures: donor retention over five years
//! (FEEP: new, retained, recovered, lapsed donors and the retention rate), LYBUNT and SYBUNT
//! (who gave before and not yet this year, what they gave and their recognition: giving plus
//! soft credits), and each campaign's progress against its goal. Each chart is drawn on the server beside its table, with a CSV download.
//!
//! One of the console's special pages: it appears when an enabled plugin offers the queries
//! `donorRetention`, `lybunt`, `sybunt` and `campaignProgress` (the bundled `donors` does), and
//! reads them through GraphQL as the signed-in user, so the plugin's roles apply.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{Datelike, Utc};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value as Json, json};

use crate::console::pages::{messages, query, render};
use crate::console::reports::{bar_chart, csv_download, trim};
use crate::console::session::Session;
use crate::console::text;
use crate::domain::object::Registry;
use crate::http::AppState;

/// Years the retention chart covers, this one included.
const YEARS: i32 = 5;
/// Donors each of LYBUNT and SYBUNT lists.
const LAPSED_SHOWN: i64 = 10;
/// Campaigns the progress chart covers (the latest by start date).
const CAMPAIGNS: i64 = 12;

/// The queries this page reads.
const QUERIES: [&str; 4] = ["donorRetention", "lybunt", "sybunt", "campaignProgress"];

/// Whether an enabled plugin offers the donor reports.
pub fn available(registry: &Registry) -> bool {
    QUERIES.iter().all(|name| registry.extensions().iter().any(|e| e.operations.iter().any(|o| o.name == *name)))
}

/// `?year=`: the year the reports look at (this one by default).
#[derive(Debug, Default, Deserialize)]
pub struct YearQuery {
    /// The year.
    pub year: Option<i32>,
}

/// One year of the retention chart.
struct Retention {
    year: i64,
    donors: i64,
    new: i64,
    retained: i64,
    recovered: i64,
    lapsed: i64,
    rate: Option<f64>,
}

/// A lapsed donor.
struct Lapsed {
    contact_id: String,
    name: String,
    last_gift_date: String,
    last_gift_amount: f64,
    lifetime: f64,
    recognition: f64,
}

/// A campaign's progress.
struct Campaign {
    name: String,
    goal: Option<f64>,
    raised: f64,
    percent: Option<f64>,
    donors: i64,
    gifts: i64,
}

struct Figures {
    year: i32,
    retention: Vec<Retention>,
    lybunt: Vec<Lapsed>,
    sybunt: Vec<Lapsed>,
    campaigns: Vec<Campaign>,
    errors: Vec<String>,
}

fn decimal(value: &Json) -> Option<f64> {
    value.as_str().and_then(|s| s.parse().ok()).or_else(|| value.as_f64())
}

fn lapsed(list: &Json) -> Vec<Lapsed> {
    list.as_array()
        .into_iter()
        .flatten()
        .map(|d| Lapsed {
            contact_id: d["contactId"].as_str().unwrap_or_default().to_owned(),
            name: d["name"].as_str().unwrap_or_default().to_owned(),
            last_gift_date: d["lastGiftDate"].as_str().unwrap_or_default().to_owned(),
            last_gift_amount: decimal(&d["lastGiftAmount"]).unwrap_or(0.0),
            lifetime: decimal(&d["lifetimeGiving"]).unwrap_or(0.0),
            recognition: decimal(&d["lifetimeRecognition"]).unwrap_or(0.0),
        })
        .collect()
}

async fn figures(state: &AppState, session: &Session, year: i32) -> Figures {
    let mut errors = Vec::new();
    // One plugin call at a time: the plugin serves a few calls at once, and a page of reports
    // must not take all of them.
    let mut retention = Vec::new();
    for y in (year - YEARS + 1)..=year {
        let answer = query(
            state,
            session,
            "query($year: Int!) { donorRetention(year: $year) {
               year donorsThisYear newDonors retainedDonors recoveredDonors lapsedDonors retentionRate } }",
            json!({ "year": y }),
        )
        .await;
        if !answer.errors.is_empty() {
            errors.push(messages(&answer));
            break;
        }
        let r = &answer.data["donorRetention"];
        retention.push(Retention {
            year: r["year"].as_i64().unwrap_or(i64::from(y)),
            donors: r["donorsThisYear"].as_i64().unwrap_or(0),
            new: r["newDonors"].as_i64().unwrap_or(0),
            retained: r["retainedDonors"].as_i64().unwrap_or(0),
            recovered: r["recoveredDonors"].as_i64().unwrap_or(0),
            lapsed: r["lapsedDonors"].as_i64().unwrap_or(0),
            rate: r["retentionRate"].as_f64(),
        });
    }
    let mut lists = [Vec::new(), Vec::new()];
    for (list, name) in lists.iter_mut().zip(["lybunt", "sybunt"]) {
        if !errors.is_empty() {
            break;
        }
        let answer = query(
            state,
            session,
            &format!(
                "query($year: Int!, $first: Int) {{ {name}(year: $year, first: $first) {{
                   contactId name lastGiftDate lastGiftAmount lifetimeGiving lifetimeRecognition }} }}"
            ),
            json!({ "year": year, "first": LAPSED_SHOWN }),
        )
        .await;
        if !answer.errors.is_empty() {
            errors.push(messages(&answer));
        }
        *list = lapsed(&answer.data[name]);
    }
    let [lybunt, sybunt] = lists;
    let campaigns = campaigns(state, session, &mut errors).await;
    Figures { year, retention, lybunt, sybunt, campaigns, errors }
}

/// The latest campaigns' progress: the campaigns, then their progress through aliases.
async fn campaigns(state: &AppState, session: &Session, errors: &mut Vec<String>) -> Vec<Campaign> {
    let list = query(
        state,
        session,
        "query($first: Int) { campaigns(first: $first, orderBy: [{field: startDate, direction: DESC}]) { edges { node { id } } } }",
        json!({ "first": CAMPAIGNS }),
    )
    .await;
    if !list.errors.is_empty() {
        errors.push(messages(&list));
        return Vec::new();
    }
    let ids: Vec<String> = list.data["campaigns"]["edges"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["node"]["id"].as_str().map(str::to_owned))
        .collect();
    if ids.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for id in ids {
        let progress = query(
            state,
            session,
            "query($id: ID!) { campaignProgress(id: $id) { name goal raised percentOfGoal donors gifts } }",
            json!({ "id": id }),
        )
        .await;
        if !progress.errors.is_empty() {
            errors.push(messages(&progress));
            break;
        }
        let c = &progress.data["campaignProgress"];
        out.push(Campaign {
            name: c["name"].as_str().unwrap_or_default().to_owned(),
            goal: decimal(&c["goal"]),
            raised: decimal(&c["raised"]).unwrap_or(0.0),
            percent: c["percentOfGoal"].as_f64(),
            donors: c["donors"].as_i64().unwrap_or(0),
            gifts: c["gifts"].as_i64().unwrap_or(0),
        });
    }
    out
}

fn percent(rate: Option<f64>) -> String {
    rate.map_or_else(|| text::NONE.to_owned(), |r| format!("{}%", trim(r * 100.0)))
}

fn lapsed_table(caption: &str, donors: &[Lapsed]) -> Markup {
    html! {
        div.table-wrap { table {
            caption { (caption) }
            thead { tr {
                th scope="col" { (text::DONOR) } th scope="col" { (text::LAST_GIFT) }
                th scope="col" { (text::LAST_GIFT_AMOUNT) } th scope="col" { (text::LIFETIME_GIVING) }
                th scope="col" { (text::LIFETIME_RECOGNITION) }
            } }
            tbody { @for d in donors { tr {
                td { a href=(format!("/o/contacts/{}", d.contact_id)) { (d.name) } }
                td { (d.last_gift_date) } td { (trim(d.last_gift_amount)) } td { (trim(d.lifetime)) }
                td { (trim(d.recognition)) }
            } } }
        } }
    }
}

/// `GET /reports/donors`.
pub async fn page(State(state): State<AppState>, session: Session, Query(q): Query<YearQuery>) -> Response {
    if !available(&state.kith.registry()) {
        return crate::console::pages::problem(&state, &session, StatusCode::NOT_FOUND, text::NO_DONOR_REPORTS);
    }
    let year = q.year.unwrap_or_else(|| Utc::now().year());
    let f = figures(&state, &session, year).await;
    let download = |file: &str| format!("/reports/donors/{file}.csv?year={year}");
    let this_year = f.retention.iter().find(|r| r.year == i64::from(f.year));
    let content = html! {
        h1 { (text::DONOR_REPORTS) " " (f.year) }
        form.inline method="get" action="/reports/donors" {
            label for="year" { (text::YEAR) }
            input #year type="number" name="year" value=(f.year) min="1900" max="9999";
            button type="submit" { (text::SHOW) }
        }
        @for e in &f.errors { p.notice role="alert" { (e) } }
        section aria-labelledby="retention" {
            h2 #retention { (text::DONOR_RETENTION) }
            (bar_chart(text::RETENTION_RATE_BY_YEAR, &f.retention.iter().map(|r| r.year.to_string()).collect::<Vec<_>>(), &f.retention.iter().map(|r| r.rate.unwrap_or(0.0) * 100.0).collect::<Vec<_>>()))
            @if let Some(r) = this_year {
                (bar_chart(&format!("{} {}", text::DONORS_BY_STATUS, f.year), &[text::NEW_DONORS, text::RETAINED, text::RECOVERED, text::LAPSED].map(str::to_owned), &[r.new as f64, r.retained as f64, r.recovered as f64, r.lapsed as f64]))
            }
            div.table-wrap { table #retention-table {
                thead { tr {
                    th scope="col" { (text::YEAR) } th scope="col" { (text::DONORS) } th scope="col" { (text::NEW_DONORS) }
                    th scope="col" { (text::RETAINED) } th scope="col" { (text::RECOVERED) } th scope="col" { (text::LAPSED) }
                    th scope="col" { (text::RETENTION_RATE) }
                } }
                tbody { @for r in &f.retention { tr {
                    td { (r.year) } td { (r.donors) } td { (r.new) } td { (r.retained) } td { (r.recovered) } td { (r.lapsed) } td { (percent(r.rate)) }
                } } }
            } }
            p { a href=(download("retention")) download { (text::DOWNLOAD_CSV) } }
        }
        section aria-labelledby="lapsed" {
            h2 #lapsed { (text::LYBUNT_SYBUNT) }
            (bar_chart(text::LAST_GIFTS_AT_RISK, &[format!("LYBUNT ({})", f.lybunt.len()), format!("SYBUNT ({})", f.sybunt.len())], &[f.lybunt.iter().fold(0.0, |sum, d| sum + d.last_gift_amount), f.sybunt.iter().fold(0.0, |sum, d| sum + d.last_gift_amount)]))
            p.muted { (text::LAPSED_AMOUNTS) }
            (lapsed_table(text::LYBUNT, &f.lybunt))
            p { a href=(download("lybunt")) download { (text::DOWNLOAD_CSV) } }
            (lapsed_table(text::SYBUNT, &f.sybunt))
            p { a href=(download("sybunt")) download { (text::DOWNLOAD_CSV) } }
        }
        section aria-labelledby="campaigns" {
            h2 #campaigns { (text::CAMPAIGN_PROGRESS) }
            @if f.campaigns.is_empty() { p.muted { (text::NO_CAMPAIGNS) } } @else {
                (bar_chart(text::PERCENT_OF_GOAL, &f.campaigns.iter().map(|c| c.name.clone()).collect::<Vec<_>>(), &f.campaigns.iter().map(|c| c.percent.unwrap_or(0.0)).collect::<Vec<_>>()))
                div.table-wrap { table {
                    thead { tr {
                        th scope="col" { (text::CAMPAIGN) } th scope="col" { (text::GOAL) } th scope="col" { (text::RAISED) }
                        th scope="col" { (text::PERCENT_OF_GOAL) } th scope="col" { (text::DONORS) } th scope="col" { (text::GIFTS) }
                    } }
                    tbody { @for c in &f.campaigns { tr {
                        td { (c.name) } td { (c.goal.map_or_else(|| text::NONE.to_owned(), trim)) } td { (trim(c.raised)) }
                        td { (c.percent.map_or_else(|| text::NONE.to_owned(), |p| format!("{}%", trim(p)))) } td { (c.donors) } td { (c.gifts) }
                    } } }
                } }
                p { a href=(download("campaigns")) download { (text::DOWNLOAD_CSV) } }
            }
        }
    };
    render(&state, &session, StatusCode::OK, text::DONOR_REPORTS.to_owned(), content)
}

/// `GET /reports/donors/{file}.csv`.
pub async fn download(
    State(state): State<AppState>,
    session: Session,
    Path(file): Path<String>,
    Query(q): Query<YearQuery>,
) -> Response {
    if !available(&state.kith.registry()) {
        return (StatusCode::NOT_FOUND, text::NO_DONOR_REPORTS).into_response();
    }
    let year = q.year.unwrap_or_else(|| Utc::now().year());
    let f = figures(&state, &session, year).await;
    if !f.errors.is_empty() {
        return (StatusCode::FORBIDDEN, f.errors.join("; ")).into_response();
    }
    let lapsed_rows = |donors: &[Lapsed]| -> Vec<Vec<String>> {
        std::iter::once(
            ["contact_id", "name", "last_gift_date", "last_gift_amount", "lifetime_giving", "lifetime_recognition"]
                .map(str::to_owned)
                .to_vec(),
        )
        .chain(donors.iter().map(|d| {
            vec![
                d.contact_id.clone(),
                d.name.clone(),
                d.last_gift_date.clone(),
                trim(d.last_gift_amount),
                trim(d.lifetime),
                trim(d.recognition),
            ]
        }))
        .collect()
    };
    let rows: Vec<Vec<String>> = match file.as_str() {
        "retention.csv" => std::iter::once(
            ["year", "donors", "new", "retained", "recovered", "lapsed", "retention_rate"].map(str::to_owned).to_vec(),
        )
        .chain(f.retention.iter().map(|r| {
            vec![
                r.year.to_string(),
                r.donors.to_string(),
                r.new.to_string(),
                r.retained.to_string(),
                r.recovered.to_string(),
                r.lapsed.to_string(),
                r.rate.map(trim).unwrap_or_default(),
            ]
        }))
        .collect(),
        "lybunt.csv" => lapsed_rows(&f.lybunt),
        "sybunt.csv" => lapsed_rows(&f.sybunt),
        "campaigns.csv" => std::iter::once(
            ["campaign", "goal", "raised", "percent_of_goal", "donors", "gifts"].map(str::to_owned).to_vec(),
        )
        .chain(f.campaigns.iter().map(|c| {
            vec![
                c.name.clone(),
                c.goal.map(trim).unwrap_or_default(),
                trim(c.raised),
                c.percent.map(trim).unwrap_or_default(),
                c.donors.to_string(),
                c.gifts.to_string(),
            ]
        }))
        .collect(),
        _ => return (StatusCode::NOT_FOUND, "no such report").into_response(),
    };
    csv_download(&format!("donors-{year}-{file}"), &rows)
}
