//! Reports as pictures: contact growth, the pipeline (amount and count per stage, forecast,
//! win rate) and tickets (volume, response and resolution times, SLA, satisfaction), each chart
//! drawn on the server as SVG (no script, nothing inline the CSP would refuse) beside its table,
//! with a CSV download of the same figures. The figures are the API's report queries, run as
//! the signed-in user (a MANAGER's, as the API says).

use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{Datelike, Duration, NaiveDate, Utc};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value as Json, json};

use crate::console::pages::{messages, query, render};
use crate::console::session::Session;
use crate::console::text;
use crate::http::AppState;

/// Chart size, in SVG units.
const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 220.0;
const MARGIN: f64 = 28.0;

/// A bar chart of `values` labelled `labels`, with `title` as its accessible name.
pub fn bar_chart(title: &str, labels: &[String], values: &[f64]) -> Markup {
    let most = values.iter().copied().fold(0.0_f64, f64::max);
    let n = values.len().max(1) as f64;
    let slot = (WIDTH - 2.0 * MARGIN) / n;
    let bar = (slot * 0.7).max(1.0);
    let plot = HEIGHT - 2.0 * MARGIN;
    html! {
        figure.chart {
        figcaption { (title) }
        svg.chart viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) role="img" aria-label=(title) xmlns="http://www.w3.org/2000/svg" {
            title { (title) }
            line.axis x1=(MARGIN) y1=(HEIGHT - MARGIN) x2=(WIDTH - MARGIN) y2=(HEIGHT - MARGIN) {}
            @for (i, (label, value)) in labels.iter().zip(values).enumerate() {
                @let h = if most > 0.0 { value / most * plot } else { 0.0 };
                @let x = MARGIN + i as f64 * slot + (slot - bar) / 2.0;
                rect.bar x=(format!("{x:.1}")) y=(format!("{:.1}", HEIGHT - MARGIN - h)) width=(format!("{bar:.1}")) height=(format!("{h:.1}")) {
                    title { (label) ": " (value) }
                }
                text.value x=(format!("{:.1}", x + bar / 2.0)) y=(format!("{:.1}", HEIGHT - MARGIN - h - 4.0)) text-anchor="middle" { (trim(*value)) }
                text.label x=(format!("{:.1}", x + bar / 2.0)) y=(format!("{:.1}", HEIGHT - MARGIN + 16.0)) text-anchor="middle" { (label) }
            }
        }
        }
    }
}

/// `2026-01` as `Jan 26`, short enough for a bar's label.
fn month_label(month: &str) -> String {
    NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d")
        .map_or_else(|_| month.to_owned(), |d| d.format("%b %y").to_string())
}

/// `12.0` as `12`, `0.4567` as `0.46`.
pub(crate) fn trim(value: f64) -> String {
    let text = format!("{value:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// Query of the reports page and its downloads.
#[derive(Debug, Default, Deserialize)]
pub struct ReportQuery {
    /// The pipeline of the pipeline report; the first when absent.
    pub pipeline: Option<String>,
}

/// The figures of every report, as rows for tables and CSV.
struct Figures {
    growth: Vec<(String, i64, i64)>,
    pipeline_name: String,
    stages: Vec<(String, i64, f64)>,
    pipeline_facts: Vec<(String, String)>,
    ticket_facts: Vec<(String, String)>,
    errors: Vec<String>,
}

async fn figures(state: &AppState, session: &Session, q: &ReportQuery) -> Figures {
    let today = Utc::now().date_naive();
    let from = NaiveDate::from_ymd_opt(today.year() - 1, today.month(), 1).unwrap_or(today);
    let pipelines =
        query(state, session, "{ pipelines(first: 100) { edges { node { id name currency } } } }", json!({})).await;
    let list: Vec<Json> = pipelines.data["pipelines"]["edges"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|e| e["node"].clone())
        .collect();
    let pipeline =
        list.iter().find(|p| p["id"].as_str() == q.pipeline.as_deref()).or(list.first()).cloned().unwrap_or(Json::Null);
    let answer = query(
        state,
        session,
        "query($from: Date!, $to: Date!, $since: DateTime!, $now: DateTime!, $p: ID!, $withPipeline: Boolean!) {
           contactGrowth(from: $from, to: $to, interval: MONTH) { periodStart newContacts totalContacts }
           ticketReport(from: $since, to: $now) { volume firstResponseMinutesP50 firstResponseMinutesP90 resolutionMinutesP50 resolutionMinutesP90 slaBreachRate csatAverage rated }
           pipelineReport(pipelineId: $p) @include(if: $withPipeline) { stages { name count amounts { currency amount } } forecast { currency amount } winRate averageDaysToClose }
         }",
        json!({
            // `to` is exclusive: tomorrow, so today's contacts count.
            "from": from.to_string(), "to": (today + Duration::days(1)).to_string(),
            "since": format!("{}Z", (Utc::now() - Duration::days(30)).naive_utc().format("%Y-%m-%dT%H:%M:%S")),
            // To the next whole minute, so what was created this second is in.
            "now": format!("{}Z", (Utc::now() + Duration::minutes(1)).naive_utc().format("%Y-%m-%dT%H:%M:00")),
            "p": pipeline["id"].as_str().unwrap_or("00000000-0000-0000-0000-000000000000"),
            "withPipeline": !pipeline.is_null(),
        }),
    )
    .await;
    let data = &answer.data;
    let growth = data["contactGrowth"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|p| {
            (
                p["periodStart"].as_str().unwrap_or_default().get(..7).unwrap_or_default().to_owned(),
                p["newContacts"].as_i64().unwrap_or(0),
                p["totalContacts"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    let currency = pipeline["currency"].as_str().unwrap_or_default().to_owned();
    let in_currency = |amounts: &Json| -> f64 {
        amounts
            .as_array()
            .and_then(|list| list.iter().find(|m| m["currency"].as_str() == Some(currency.as_str())))
            .and_then(|m| m["amount"].as_str())
            .and_then(|a| a.parse().ok())
            .unwrap_or(0.0)
    };
    let report = &data["pipelineReport"];
    let stages = report["stages"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap_or_default().to_owned(),
                s["count"].as_i64().unwrap_or(0),
                in_currency(&s["amounts"]),
            )
        })
        .collect();
    let percent = |v: &Json| v.as_f64().map_or_else(|| text::NONE.to_owned(), |v| format!("{}%", trim(v * 100.0)));
    let number = |v: &Json| v.as_f64().map_or_else(|| text::NONE.to_owned(), trim);
    let pipeline_facts = if report.is_null() {
        Vec::new()
    } else {
        vec![
            (text::FORECAST.to_owned(), format!("{} {currency}", trim(in_currency(&report["forecast"])))),
            (text::WIN_RATE.to_owned(), percent(&report["winRate"])),
            (text::DAYS_TO_CLOSE.to_owned(), number(&report["averageDaysToClose"])),
        ]
    };
    let t = &data["ticketReport"];
    let ticket_facts = if t.is_null() {
        Vec::new()
    } else {
        vec![
            (text::VOLUME.to_owned(), number(&t["volume"])),
            (text::FIRST_RESPONSE_P50.to_owned(), number(&t["firstResponseMinutesP50"])),
            (text::FIRST_RESPONSE_P90.to_owned(), number(&t["firstResponseMinutesP90"])),
            (text::RESOLUTION_P50.to_owned(), number(&t["resolutionMinutesP50"])),
            (text::RESOLUTION_P90.to_owned(), number(&t["resolutionMinutesP90"])),
            (text::SLA_BREACH_RATE.to_owned(), percent(&t["slaBreachRate"])),
            (text::CSAT.to_owned(), number(&t["csatAverage"])),
            (text::RATED.to_owned(), number(&t["rated"])),
        ]
    };
    let mut errors = Vec::new();
    if !answer.errors.is_empty() {
        errors.push(messages(&answer));
    }
    Figures {
        growth,
        pipeline_name: pipeline["name"].as_str().unwrap_or_default().to_owned(),
        stages,
        pipeline_facts,
        ticket_facts,
        errors,
    }
}

fn facts(rows: &[(String, String)]) -> Markup {
    html! { dl.fields { @for (k, v) in rows { dt { (k) } dd { (v) } } } }
}

/// `GET /reports`.
pub async fn reports(State(state): State<AppState>, session: Session, Query(q): Query<ReportQuery>) -> Response {
    let f = figures(&state, &session, &q).await;
    let download = |report: &str| match &q.pipeline {
        Some(p) => format!("/reports/{report}.csv?pipeline={p}"),
        None => format!("/reports/{report}.csv"),
    };
    let content = html! {
        h1 { (text::REPORTS) }
        @for e in &f.errors { p.notice role="alert" { (e) } }
        @if crate::console::donor_reports::available(&state.kith.registry()) {
            p { a href="/reports/donors" { (text::DONOR_REPORTS) } }
        }
        section aria-labelledby="growth" {
            h2 #growth { (text::CONTACT_GROWTH) }
            (bar_chart(text::NEW_CONTACTS_BY_MONTH, &f.growth.iter().map(|g| month_label(&g.0)).collect::<Vec<_>>(), &f.growth.iter().map(|g| g.1 as f64).collect::<Vec<_>>()))
            div.table-wrap { table {
                thead { tr { th scope="col" { (text::MONTH) } th scope="col" { (text::NEW_CONTACTS) } th scope="col" { (text::TOTAL_CONTACTS) } } }
                tbody { @for (month, new, total) in &f.growth { tr { td { (month) } td { (new) } td { (total) } } } }
            } }
            p { a href=(download("growth")) download { (text::DOWNLOAD_CSV) } }
        }
        @if !f.pipeline_name.is_empty() {
            section aria-labelledby="pipeline" {
                h2 #pipeline { (text::PIPELINE) ": " (f.pipeline_name) }
                (bar_chart(text::AMOUNT_BY_STAGE, &f.stages.iter().map(|s| s.0.clone()).collect::<Vec<_>>(), &f.stages.iter().map(|s| s.2).collect::<Vec<_>>()))
                (facts(&f.pipeline_facts))
                div.table-wrap { table {
                    thead { tr { th scope="col" { (text::STAGE) } th scope="col" { (text::DEALS_COLUMN) } th scope="col" { (text::AMOUNT) } } }
                    tbody { @for (stage, count, amount) in &f.stages { tr { td { (stage) } td { (count) } td { (trim(*amount)) } } } }
                } }
                p { a href=(download("pipeline")) download { (text::DOWNLOAD_CSV) } }
            }
        }
        section aria-labelledby="tickets" {
            h2 #tickets { (text::TICKETS_30_DAYS) }
            (facts(&f.ticket_facts))
            p { a href=(download("tickets")) download { (text::DOWNLOAD_CSV) } }
        }
    };
    render(&state, &session, StatusCode::OK, text::REPORTS.to_owned(), content)
}

/// One CSV field, quoted when it must be.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) { format!("\"{}\"", text.replace('"', "\"\"")) } else { text.to_owned() }
}

/// `GET /reports/{name}.csv`: the figures of one report.
pub async fn download(
    State(state): State<AppState>,
    session: Session,
    axum::extract::Path(file): axum::extract::Path<String>,
    Query(q): Query<ReportQuery>,
) -> Response {
    let f = figures(&state, &session, &q).await;
    let rows: Vec<Vec<String>> = match file.as_str() {
        "growth.csv" => std::iter::once(vec!["month".into(), "new_contacts".into(), "total_contacts".into()])
            .chain(f.growth.iter().map(|(m, n, t)| vec![m.clone(), n.to_string(), t.to_string()]))
            .collect(),
        "pipeline.csv" => std::iter::once(vec!["stage".into(), "deals".into(), "amount".into()])
            .chain(f.stages.iter().map(|(s, c, a)| vec![s.clone(), c.to_string(), trim(*a)]))
            .collect(),
        "tickets.csv" => std::iter::once(vec!["measure".into(), "value".into()])
            .chain(f.ticket_facts.iter().map(|(k, v)| vec![k.clone(), v.clone()]))
            .collect(),
        _ => return (StatusCode::NOT_FOUND, "no such report").into_response(),
    };
    if !f.errors.is_empty() {
        return (StatusCode::FORBIDDEN, f.errors.join("; ")).into_response();
    }
    csv_download(&file, &rows)
}

/// `rows` as a CSV attachment named `file`.
pub(crate) fn csv_download(file: &str, rows: &[Vec<String>]) -> Response {
    let body: String =
        rows.iter().map(|r| r.iter().map(|c| csv_field(c)).collect::<Vec<_>>().join(",") + "\r\n").collect();
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{file}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    crate::console::assets::secure(response)
}
