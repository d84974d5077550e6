//! The pipeline board: one column per stage with its count, its sum and its weighted forecast
//! (sum × the stage's probability); a deal moves by dragging its card (`board.js`) or, without a
//! mouse or JavaScript, with the stage list and button on the card; closing won or lost takes a
//! reason. Moves and closes are the `moveDeal` and `closeDeal` mutations, with the version the
//! board was drawn from, so a deal changed meanwhile is a conflict, not an overwrite.

use std::collections::BTreeMap;

use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{Value as Json, json};

use crate::console::form;
use crate::console::pages::{messages, problem, query, render};
use crate::console::session::{Session, check_csrf};
use crate::console::{may_write, text};
use crate::http::AppState;

/// Most deals a board shows per pipeline (the API's largest page); it says so when there are
/// more.
const MOST_DEALS: i64 = 200;

/// Query of `/board`.
#[derive(Debug, Deserialize)]
pub struct BoardQuery {
    /// The pipeline to show; the first when absent.
    pub pipeline: Option<String>,
    /// A message from the last move.
    pub error: Option<String>,
}

fn decimal(value: &Json) -> Decimal {
    value.as_str().and_then(|s| s.parse().ok()).unwrap_or_default()
}

/// `GET /board`.
pub async fn board(State(state): State<AppState>, session: Session, Query(q): Query<BoardQuery>) -> Response {
    let pipelines =
        query(&state, &session, "{ pipelines(first: 100) { edges { node { id name currency } } } }", json!({})).await;
    if !pipelines.errors.is_empty() {
        return problem(&state, &session, StatusCode::FORBIDDEN, &messages(&pipelines));
    }
    let list: Vec<Json> = pipelines.data["pipelines"]["edges"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|e| e["node"].clone())
        .collect();
    let Some(pipeline) = list
        .iter()
        .find(|p| Some(p["id"].as_str().unwrap_or_default()) == q.pipeline.as_deref())
        .or(list.first())
        .cloned()
    else {
        return render(
            &state,
            &session,
            StatusCode::OK,
            text::BOARD.to_owned(),
            html! { h1 { (text::BOARD) } p.muted { (text::NO_PIPELINES) } },
        );
    };
    let id = pipeline["id"].as_str().unwrap_or_default().to_owned();
    let answer = query(
        &state,
        &session,
        "query($p: ID!, $most: Int) {
           stages(filter: {pipelineId: {eq: $p}}, orderBy: [{field: position}], first: 100) { edges { node { id name probability kind } } }
           deals(filter: {pipelineId: {eq: $p}}, orderBy: [{field: title}], first: $most) { totalCount edges { node { id title amount currency stageId version company { id name } } } }
         }",
        json!({"p": id, "most": MOST_DEALS}),
    )
    .await;
    let stages: Vec<Json> = answer.data["stages"]["edges"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|e| e["node"].clone())
        .collect();
    let mut by_stage: BTreeMap<String, Vec<Json>> = BTreeMap::new();
    for edge in answer.data["deals"]["edges"].as_array().cloned().unwrap_or_default() {
        let deal = edge["node"].clone();
        by_stage.entry(deal["stageId"].as_str().unwrap_or_default().to_owned()).or_default().push(deal);
    }
    let currency = pipeline["currency"].as_str().unwrap_or_default().to_owned();
    let writable = may_write(&session.actor);
    let content = html! {
        h1 { (text::BOARD) ": " (pipeline["name"].as_str().unwrap_or_default()) }
        @if list.len() > 1 {
            form.filter method="get" action="/board" {
                div {
                    label for="pipeline" { (text::PIPELINE) }
                    select #pipeline name="pipeline" {
                        @for p in &list { option value=(p["id"].as_str().unwrap_or_default()) selected[p["id"] == pipeline["id"]] { (p["name"].as_str().unwrap_or_default()) } }
                    }
                }
                button type="submit" { (text::SHOW) }
            }
        }
        @if let Some(error) = &q.error { p.notice role="alert" { (error) } }
        @let total = answer.data["deals"]["totalCount"].as_i64().unwrap_or(0);
        @if total > MOST_DEALS { p.muted { (text::BOARD_CAPPED) " " (MOST_DEALS) " / " (total) } }
        @if !answer.errors.is_empty() { p.notice role="alert" { (messages(&answer)) } }
        div.board {
            @for stage in &stages {
                @let stage_id = stage["id"].as_str().unwrap_or_default();
                @let deals = by_stage.get(stage_id).cloned().unwrap_or_default();
                @let sum: Decimal = deals.iter().filter(|d| d["currency"].as_str() == Some(currency.as_str())).map(|d| decimal(&d["amount"])).sum();
                @let probability = Decimal::from(stage["probability"].as_i64().unwrap_or(0));
                @let weighted = (sum * probability / Decimal::from(100)).round_dp(2);
                section.column data-stage=(stage_id) aria-labelledby=(format!("stage-{stage_id}")) {
                    h2 id=(format!("stage-{stage_id}")) { (stage["name"].as_str().unwrap_or_default()) }
                    p.muted.totals {
                        span.count { (deals.len()) } " " (text::DEALS) " · "
                        span.sum { (format!("{sum:.2}")) } " " (currency) " · "
                        (text::WEIGHTED) " " span.weighted { (format!("{weighted:.2}")) }
                    }
                    ul.cards {
                        @for deal in &deals {
                            @let deal_id = deal["id"].as_str().unwrap_or_default();
                            li.card draggable=[writable.then_some("true")] data-deal=(deal_id) {
                                a href=(format!("/o/deals/{deal_id}")) { (deal["title"].as_str().unwrap_or_default()) }
                                div.muted {
                                    (form::show(&crate::domain::value::FieldKind::Decimal, &deal["amount"])) " " (deal["currency"].as_str().unwrap_or_default())
                                    @if let Some(company) = deal["company"]["name"].as_str() { " · " (company) }
                                }
                                @if writable {
                                    form.move method="post" action="/board/move" {
                                        input type="hidden" name="_csrf" value=(session.csrf);
                                        input type="hidden" name="deal" value=(deal_id);
                                        input type="hidden" name="version" value=(deal["version"].as_i64().unwrap_or(0));
                                        input type="hidden" name="pipeline" value=(id);
                                        label for=(format!("move-{deal_id}")) { (text::MOVE_TO) }
                                        select id=(format!("move-{deal_id}")) name="stage" {
                                            @for s in &stages { option value=(s["id"].as_str().unwrap_or_default()) selected[s["id"] == stage["id"]] { (s["name"].as_str().unwrap_or_default()) } }
                                        }
                                        button.secondary type="submit" { (text::MOVE) }
                                    }
                                    details {
                                        summary { (text::CLOSE_DEAL) }
                                        form method="post" action="/board/close" {
                                            input type="hidden" name="_csrf" value=(session.csrf);
                                            input type="hidden" name="deal" value=(deal_id);
                                            input type="hidden" name="version" value=(deal["version"].as_i64().unwrap_or(0));
                                            input type="hidden" name="pipeline" value=(id);
                                            label for=(format!("outcome-{deal_id}")) { (text::OUTCOME) }
                                            select id=(format!("outcome-{deal_id}")) name="outcome" { option value="WON" { (text::WON) } option value="LOST" { (text::LOST) } }
                                            label for=(format!("reason-{deal_id}")) { (text::REASON) }
                                            input id=(format!("reason-{deal_id}")) type="text" name="reason";
                                            button type="submit" { (text::CLOSE_DEAL) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        script src=(crate::console::assets::path("board.js")) defer {}
    };
    render(&state, &session, StatusCode::OK, text::BOARD.to_owned(), content)
}

/// A move or close from the board.
#[derive(Debug, Deserialize)]
pub struct CardForm {
    /// The CSRF token.
    #[serde(rename = "_csrf")]
    pub csrf: String,
    /// The deal.
    pub deal: String,
    /// The version the board showed.
    pub version: Option<i64>,
    /// The board to go back to.
    pub pipeline: Option<String>,
    /// The stage to move to.
    pub stage: Option<String>,
    /// `WON` or `LOST`.
    pub outcome: Option<String>,
    /// Why it closed.
    pub reason: Option<String>,
}

/// Back to the board, with the error when there was one.
fn back(form: &CardForm, error: Option<String>) -> Response {
    let mut pairs = vec![("pipeline", form.pipeline.clone().unwrap_or_default())];
    if let Some(error) = error {
        pairs.push(("error", error));
    }
    let query: String = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish();
    Redirect::to(&format!("/board?{query}")).into_response()
}

/// `POST /board/move`.
pub async fn move_deal(State(state): State<AppState>, session: Session, Form(form): Form<CardForm>) -> Response {
    if let Err(refusal) = check_csrf(&session, &form.csrf) {
        return *refusal;
    }
    let answer = query(
        &state,
        &session,
        "mutation($d: ID!, $s: ID!, $v: Int) { moveDeal(id: $d, stageId: $s, expectedVersion: $v) { id } }",
        json!({"d": form.deal, "s": form.stage, "v": form.version}),
    )
    .await;
    back(&form, (!answer.errors.is_empty()).then(|| messages(&answer)))
}

/// `POST /board/close`.
pub async fn close_deal(State(state): State<AppState>, session: Session, Form(form): Form<CardForm>) -> Response {
    if let Err(refusal) = check_csrf(&session, &form.csrf) {
        return *refusal;
    }
    let reason = form.reason.clone().filter(|r| !r.trim().is_empty());
    let answer = query(
        &state,
        &session,
        "mutation($d: ID!, $o: DealOutcome!, $r: String, $v: Int) { closeDeal(id: $d, outcome: $o, reason: $r, expectedVersion: $v) { id } }",
        json!({"d": form.deal, "o": form.outcome.clone().unwrap_or_default(), "r": reason, "v": form.version}),
    )
    .await;
    back(&form, (!answer.errors.is_empty()).then(|| messages(&answer)))
}
