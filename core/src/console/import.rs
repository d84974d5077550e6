//! Import in the browser: upload a CSV, map its columns (the API's `importPlan` suggests what
//! `kith import` would map), watch the run's progress (the page refreshes itself while it
//! runs, without script), and download the rejected rows with their reasons. Plugin imports
//! (the donors plugin's donations) take the file as it is: the plugin reads the columns it
//! documents. Everything is the API's: `importables`, `importPlan`, `startImport`,
//! `importRun`, `importRuns`.
//!
//! Between the upload and the mapping, the file waits in this process (`Staged`, for an hour,
//! for the user who sent it): several Kith processes behind one address need sticky sessions
//! for the mapping step.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, Form, Multipart, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use maud::{Markup, html};
use serde_json::{Value as Json, json};
use tower_http::limit::RequestBodyLimitLayer;
use uuid::Uuid;

use crate::console::form;
use crate::console::pages::{messages, problem, query, render};
use crate::console::reports::csv_download;
use crate::console::session::{Session, check_csrf};
use crate::console::text;
use crate::http::AppState;

/// How long an uploaded file waits for its mapping.
const STAGED_FOR: Duration = Duration::from_secs(3600);
/// Most bytes of files waiting for their mapping, all users together; the oldest go first.
const STAGED_BYTES: usize = 256 << 20;
/// Rejected rows the run page lists (the download has them all).
const SHOWN_REJECTED: i64 = 100;

/// The routes of the import pages, with an upload limit of `max_upload_bytes`.
pub fn router(max_upload_bytes: usize) -> Router<AppState> {
    Router::new()
        .route("/import", get(index).post(upload))
        .route("/import/map/{staged}", get(mapping).post(start))
        .route("/import/runs/{id}", get(run))
        .route("/import/runs/{id}/rejected.csv", get(rejected_csv))
        .layer(DefaultBodyLimit::max(max_upload_bytes))
        .layer(RequestBodyLimitLayer::new(max_upload_bytes))
}

/// An uploaded file waiting for its mapping.
#[derive(Debug, Clone)]
struct Upload {
    owner: String,
    object: String,
    file_name: String,
    on_duplicate: String,
    csv: String,
    at: Instant,
}

/// Files waiting for their mapping, by a random id.
#[derive(Debug, Default)]
pub struct Staged {
    uploads: Mutex<HashMap<Uuid, Upload>>,
}

impl Staged {
    fn put(&self, upload: Upload) -> Uuid {
        let id = Uuid::new_v4();
        let mut uploads = self.uploads.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        uploads.retain(|_, u| u.at.elapsed() < STAGED_FOR);
        let mut held: usize = uploads.values().map(|u| u.csv.len()).sum();
        while held + upload.csv.len() > STAGED_BYTES {
            let Some(oldest) = uploads.iter().min_by_key(|(_, u)| u.at).map(|(id, _)| *id) else { break };
            held -= uploads.remove(&oldest).map_or(0, |u| u.csv.len());
        }
        uploads.insert(id, upload);
        id
    }

    fn get(&self, id: Uuid, owner: &str) -> Option<Upload> {
        let uploads = self.uploads.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        uploads.get(&id).filter(|u| u.owner == owner && u.at.elapsed() < STAGED_FOR).cloned()
    }

    fn take(&self, id: Uuid) {
        self.uploads.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&id);
    }
}

fn owner(session: &Session) -> String {
    crate::api::import::owner_of(&session.actor)
}

/// What the caller may import, as the API lists it.
async fn importables(state: &AppState, session: &Session) -> Result<Vec<Json>, String> {
    let answer =
        query(state, session, "{ importables { object label plugin description mapsColumns } }", json!({})).await;
    if !answer.errors.is_empty() {
        return Err(messages(&answer));
    }
    Ok(answer.data["importables"].as_array().cloned().unwrap_or_default())
}

/// `GET /import`: what to import, the file, and the latest runs.
pub async fn index(State(state): State<AppState>, session: Session) -> Response {
    upload_page(&state, &session, StatusCode::OK, None).await
}

async fn upload_page(state: &AppState, session: &Session, status: StatusCode, error: Option<&str>) -> Response {
    let kinds = match importables(state, session).await {
        Ok(kinds) => kinds,
        Err(message) => return problem(state, session, StatusCode::FORBIDDEN, &message),
    };
    let runs = query(
        state,
        session,
        "{ importRuns(first: 20) { id object fileName state total rows created updated skipped rejectedCount createdAt } }",
        json!({}),
    )
    .await;
    let runs = runs.data["importRuns"].as_array().cloned().unwrap_or_default();
    let content = html! {
        h1 { (text::IMPORT) }
        @if let Some(error) = error { p.notice role="alert" { (error) } }
        form.stack method="post" action="/import" enctype="multipart/form-data" {
            input type="hidden" name="_csrf" value=(session.csrf);
            label for="i-object" { (text::IMPORT_WHAT) }
            select #i-object name="object" {
                @for kind in &kinds {
                    option value=(kind["object"].as_str().unwrap_or_default()) {
                        (kind["label"].as_str().unwrap_or_default())
                        @if let Some(plugin) = kind["plugin"].as_str() { " (" (crate::domain::object::humanize(plugin)) ")" }
                    }
                }
            }
            @for kind in kinds.iter().filter(|k| k["description"].is_string()) {
                p.muted { (kind["label"].as_str().unwrap_or_default()) ": " (kind["description"].as_str().unwrap_or_default()) }
            }
            label for="i-file" { (text::IMPORT_FILE) }
            input #i-file type="file" name="file" accept=".csv,text/csv" required;
            fieldset {
                legend { (text::IMPORT_DUPLICATES) }
                label { input type="radio" name="on_duplicate" value="SKIP" checked; " " (text::IMPORT_SKIP) }
                label { input type="radio" name="on_duplicate" value="UPDATE"; " " (text::IMPORT_UPDATE) }
            }
            button type="submit" { (text::IMPORT_NEXT) }
        }
        @if !runs.is_empty() {
            h2 { (text::IMPORT_RUNS) }
            (runs_table(&runs))
        }
    };
    render(state, session, status, text::IMPORT.to_owned(), content)
}

fn runs_table(runs: &[Json]) -> Markup {
    html! {
        table {
            thead { tr { th { (text::IMPORT_FILE) } th { (text::IMPORT_WHAT) } th { (text::IMPORT_STATE) } th { (text::IMPORT_COUNTS) } th { (text::IMPORT_STARTED) } } }
            tbody {
                @for r in runs {
                    tr {
                        td { a href=(format!("/import/runs/{}", r["id"].as_str().unwrap_or_default())) { (r["fileName"].as_str().unwrap_or_default()) } }
                        td { (r["object"].as_str().unwrap_or_default()) }
                        td { (state_badge(r)) }
                        td { (counts(r)) }
                        td { (form::show(&crate::domain::value::FieldKind::DateTime, &r["createdAt"])) }
                    }
                }
            }
        }
    }
}

fn state_badge(run: &Json) -> Markup {
    let state = run["state"].as_str().unwrap_or_default();
    let (class, label) = match state {
        "RUNNING" => ("badge", text::IMPORT_RUNNING),
        "DONE" => ("badge ok", text::IMPORT_DONE),
        _ => ("badge breached", text::IMPORT_FAILED),
    };
    html! { span class=(class) { (label) } }
}

fn counts(run: &Json) -> String {
    let n = |key: &str| run[key].as_i64().unwrap_or(0);
    format!(
        "{} {}, {} {}, {} {}, {} {}",
        n("created"),
        text::IMPORT_CREATED,
        n("updated"),
        text::IMPORT_UPDATED,
        n("skipped"),
        text::IMPORT_SKIPPED,
        n("rejectedCount"),
        text::IMPORT_REJECTED
    )
}

/// The fields of the upload form.
#[derive(Debug, Default)]
struct Uploaded {
    csrf: String,
    object: String,
    on_duplicate: String,
    file_name: String,
    bytes: Vec<u8>,
}

async fn read_upload(mut multipart: Multipart) -> Result<Uploaded, String> {
    let mut uploaded = Uploaded::default();
    while let Some(field) = multipart.next_field().await.map_err(|e| format!("{}: {e}", text::IMPORT_UNREADABLE))? {
        let name = field.name().unwrap_or_default().to_owned();
        if name == "file" {
            uploaded.file_name = field.file_name().unwrap_or("upload.csv").to_owned();
            uploaded.bytes = field.bytes().await.map_err(|e| format!("{}: {e}", text::IMPORT_UNREADABLE))?.to_vec();
        } else {
            let value = field.text().await.map_err(|e| format!("{}: {e}", text::IMPORT_UNREADABLE))?;
            match name.as_str() {
                "_csrf" => uploaded.csrf = value,
                "object" => uploaded.object = value,
                "on_duplicate" => uploaded.on_duplicate = value,
                _ => {}
            }
        }
    }
    Ok(uploaded)
}

/// `POST /import`: the file. Contacts and companies go on to the mapping; plugin imports start.
pub async fn upload(State(state): State<AppState>, session: Session, multipart: Multipart) -> Response {
    let uploaded = match read_upload(multipart).await {
        Ok(uploaded) => uploaded,
        Err(message) => return upload_page(&state, &session, StatusCode::BAD_REQUEST, Some(&message)).await,
    };
    if let Err(refusal) = check_csrf(&session, &uploaded.csrf) {
        return *refusal;
    }
    let csv = match String::from_utf8(uploaded.bytes) {
        Ok(csv) if !csv.trim().is_empty() => csv,
        Ok(_) => {
            return upload_page(&state, &session, StatusCode::UNPROCESSABLE_ENTITY, Some(text::IMPORT_EMPTY)).await;
        }
        Err(_) => {
            return upload_page(&state, &session, StatusCode::UNPROCESSABLE_ENTITY, Some(text::IMPORT_NOT_UTF8)).await;
        }
    };
    let kinds = importables(&state, &session).await.unwrap_or_default();
    let Some(kind) = kinds.iter().find(|k| k["object"].as_str() == Some(uploaded.object.as_str())) else {
        return upload_page(&state, &session, StatusCode::UNPROCESSABLE_ENTITY, Some(text::IMPORT_NOTHING)).await;
    };
    if kind["mapsColumns"].as_bool() == Some(true) {
        let staged = state.staged_imports.put(Upload {
            owner: owner(&session),
            object: uploaded.object,
            file_name: uploaded.file_name,
            on_duplicate: uploaded.on_duplicate,
            csv,
            at: Instant::now(),
        });
        return Redirect::to(&format!("/import/map/{staged}")).into_response();
    }
    match start_run(&state, &session, &uploaded.object, &uploaded.file_name, &csv, None, "SKIP").await {
        Ok(id) => Redirect::to(&format!("/import/runs/{id}")).into_response(),
        Err(message) => upload_page(&state, &session, StatusCode::UNPROCESSABLE_ENTITY, Some(&message)).await,
    }
}

/// Starts the run through the API; its id, or the API's reasons.
async fn start_run(
    state: &AppState,
    session: &Session,
    object: &str,
    file_name: &str,
    csv: &str,
    mapping: Option<Json>,
    on_duplicate: &str,
) -> Result<String, String> {
    let answer = query(
        state,
        session,
        "mutation($object: String!, $csv: String!, $fileName: String, $mapping: [ImportMapping!], $onDuplicate: ImportOnDuplicate) {
           startImport(object: $object, csv: $csv, fileName: $fileName, mapping: $mapping, onDuplicate: $onDuplicate) { id }
         }",
        json!({
            "object": object, "csv": csv, "fileName": file_name, "mapping": mapping,
            "onDuplicate": if on_duplicate == "UPDATE" { "UPDATE" } else { "SKIP" },
        }),
    )
    .await;
    if answer.errors.is_empty() {
        Ok(answer.data["startImport"]["id"].as_str().unwrap_or_default().to_owned())
    } else {
        Err(messages(&answer))
    }
}

/// The header and the first rows of a file, for the mapping page.
fn preview(csv: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let records = crate::service::import::rfc4180::records_at(csv, |line| line <= 4);
    let mut rows = records.into_iter().map(|(_, cells)| cells);
    let header = rows.next().unwrap_or_default();
    (header, rows.take(3).collect())
}

/// `GET /import/map/{staged}`: each column with its first values and where it goes.
pub async fn mapping(State(state): State<AppState>, session: Session, Path(staged): Path<Uuid>) -> Response {
    mapping_page(&state, &session, staged, None, StatusCode::OK, None).await
}

async fn mapping_page(
    state: &AppState,
    session: &Session,
    staged: Uuid,
    chosen: Option<&[(String, String)]>,
    status: StatusCode,
    error: Option<&str>,
) -> Response {
    let Some(upload) = state.staged_imports.get(staged, &owner(session)) else {
        return problem(state, session, StatusCode::NOT_FOUND, text::IMPORT_GONE);
    };
    let (header, samples) = preview(&upload.csv);
    let plan = query(
        state,
        session,
        "query($object: String!, $header: [String!]!) { importPlan(object: $object, header: $header) { columns { column target } targets { name label } } }",
        json!({ "object": upload.object, "header": header }),
    )
    .await;
    // A header the import refuses as it is (no name column) still gets the page: the plan then
    // comes from a mapping that ignores everything, and the error says what is missing.
    let (suggested, targets) = if plan.errors.is_empty() {
        (plan.data["importPlan"]["columns"].as_array().cloned().unwrap_or_default(), plan_targets(&plan.data))
    } else {
        let fallback = query(
            state,
            session,
            "query($object: String!) { importPlan(object: $object, header: []) { targets { name label } } }",
            json!({ "object": upload.object }),
        )
        .await;
        (Vec::new(), plan_targets(&fallback.data))
    };
    let error = error.map(str::to_owned).or_else(|| (!plan.errors.is_empty()).then(|| messages(&plan)));
    let content = html! {
        h1 { (text::IMPORT_MAP) " · " (upload.file_name) }
        p.muted { (text::IMPORT_MAP_HINT) }
        @if let Some(error) = &error { p.notice role="alert" { (error) } }
        form method="post" action=(format!("/import/map/{staged}")) {
            input type="hidden" name="_csrf" value=(session.csrf);
            input type="hidden" name="on_duplicate" value=(upload.on_duplicate);
            table.mapping {
                thead { tr { th { (text::IMPORT_COLUMN) } th { (text::IMPORT_SAMPLE) } th { (text::IMPORT_TARGET) } } }
                tbody {
                    @for (i, column) in header.iter().enumerate() {
                        @let current = match chosen {
                            Some(chosen) => chosen.get(i).map(|(_, t)| t.clone()).unwrap_or_default(),
                            None => suggested.get(i).and_then(|c| c["target"].as_str()).unwrap_or_default().to_owned(),
                        };
                        tr {
                            th scope="row" { label for=(format!("m-{i}")) { (column) } }
                            td.muted { (samples.iter().filter_map(|r| r.get(i)).filter(|v| !v.is_empty()).take(3).cloned().collect::<Vec<_>>().join(" · ")) }
                            td {
                                select id=(format!("m-{i}")) name=(format!("map.{i}")) {
                                    option value="" selected[current.is_empty()] { (text::IMPORT_IGNORE) }
                                    @for (name, label) in &targets {
                                        option value=(name) selected[*name == current] { (label) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            button type="submit" { (text::IMPORT_START) }
            " "
            a href="/import" { (text::CANCEL) }
        }
    };
    render(state, session, status, text::IMPORT_MAP.to_owned(), content)
}

fn plan_targets(data: &Json) -> Vec<(String, String)> {
    data["importPlan"]["targets"]
        .as_array()
        .map(|targets| {
            targets
                .iter()
                .map(|t| {
                    (
                        t["name"].as_str().unwrap_or_default().to_owned(),
                        t["label"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `POST /import/map/{staged}`: starts the import with the chosen mapping.
pub async fn start(
    State(state): State<AppState>,
    session: Session,
    Path(staged): Path<Uuid>,
    Form(submitted): Form<Vec<(String, String)>>,
) -> Response {
    if let Err(refusal) = check_csrf(&session, form::submitted(&submitted, "_csrf").unwrap_or_default()) {
        return *refusal;
    }
    let Some(upload) = state.staged_imports.get(staged, &owner(&session)) else {
        return problem(&state, &session, StatusCode::NOT_FOUND, text::IMPORT_GONE);
    };
    let (header, _) = preview(&upload.csv);
    let chosen: Vec<(String, String)> = header
        .iter()
        .enumerate()
        .map(|(i, column)| {
            (column.clone(), form::submitted(&submitted, &format!("map.{i}")).unwrap_or_default().to_owned())
        })
        .collect();
    let mapping: Vec<Json> =
        chosen.iter().map(|(column, target)| json!({ "column": column, "target": target })).collect();
    let on_duplicate = form::submitted(&submitted, "on_duplicate").unwrap_or("SKIP");
    match start_run(
        &state,
        &session,
        &upload.object,
        &upload.file_name,
        &upload.csv,
        Some(Json::Array(mapping)),
        on_duplicate,
    )
    .await
    {
        Ok(id) => {
            state.staged_imports.take(staged);
            Redirect::to(&format!("/import/runs/{id}")).into_response()
        }
        Err(message) => {
            mapping_page(&state, &session, staged, Some(&chosen), StatusCode::UNPROCESSABLE_ENTITY, Some(&message))
                .await
        }
    }
}

async fn read_run(state: &AppState, session: &Session, id: &str, first_rejected: i64) -> Result<Json, Box<Response>> {
    let answer = query(
        state,
        session,
        "query($id: ID!, $first: Int) { importRun(id: $id, firstRejected: $first) {
           id object fileName state total rows created updated skipped rejectedCount header
           rejected { line reason cells } ignoredColumns error createdAt finishedAt } }",
        json!({ "id": id, "first": first_rejected }),
    )
    .await;
    if !answer.errors.is_empty() {
        return Err(Box::new(problem(state, session, StatusCode::UNPROCESSABLE_ENTITY, &messages(&answer))));
    }
    match &answer.data["importRun"] {
        Json::Null => Err(Box::new(problem(state, session, StatusCode::NOT_FOUND, text::IMPORT_NO_RUN))),
        run => Ok(run.clone()),
    }
}

/// `GET /import/runs/{id}`: progress while it runs (the page reloads itself every second),
/// then what it did and the rejected rows.
pub async fn run(State(state): State<AppState>, session: Session, Path(id): Path<String>) -> Response {
    let run = match read_run(&state, &session, &id, SHOWN_REJECTED).await {
        Ok(run) => run,
        Err(response) => return *response,
    };
    let running = run["state"] == "RUNNING";
    let total = run["total"].as_i64().unwrap_or(0);
    let rows = run["rows"].as_i64().unwrap_or(0);
    let rejected = run["rejected"].as_array().cloned().unwrap_or_default();
    let header: Vec<String> = run["header"]
        .as_array()
        .map(|h| h.iter().filter_map(|c| c.as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    let body = html! {
        p { (state_badge(&run)) " " (run["object"].as_str().unwrap_or_default()) }
        @if running {
            label for="progress" { (rows) " / " (total) " " (text::IMPORT_ROWS) }
            progress #progress max=(total.max(1)) value=(rows) { (rows) }
            // Without script, the person reloads; with it, htmx asks every second.
            p { a href=(format!("/import/runs/{id}")) { (text::IMPORT_REFRESH) } }
        } @else {
            p role="status" #import-counts { (counts(&run)) }
        }
        @if let Some(error) = run["error"].as_str() { p.notice role="alert" { (error) } }
        @if let Some(ignored) = run["ignoredColumns"].as_array().filter(|i| !i.is_empty()) {
            p.muted { (text::IMPORT_IGNORED) ": " (ignored.iter().filter_map(Json::as_str).collect::<Vec<_>>().join(", ")) }
        }
        @if !rejected.is_empty() {
            h2 { (text::IMPORT_REJECTED_ROWS) }
            p { a.button href=(format!("/import/runs/{id}/rejected.csv")) download { (text::IMPORT_DOWNLOAD_REJECTED) } }
            table #rejected {
                thead { tr { th { (text::IMPORT_LINE) } th { (text::REASON) } @for h in &header { th { (h) } } } }
                tbody {
                    @for r in &rejected {
                        tr {
                            td { (r["line"].as_i64().unwrap_or(0)) }
                            td { (r["reason"].as_str().unwrap_or_default()) }
                            @for cell in r["cells"].as_array().cloned().unwrap_or_default() { td { (cell.as_str().unwrap_or_default()) } }
                        }
                    }
                }
            }
        }
        p { a href="/import" { (text::IMPORT_ANOTHER) } }
    };
    let content = html! {
        h1 { (text::IMPORT) " · " (run["fileName"].as_str().unwrap_or_default()) }
        @if running {
            div #run aria-live="polite" hx-get=(format!("/import/runs/{id}")) hx-trigger="every 1s" hx-select="#run" hx-swap="outerHTML" { (body) }
        } @else {
            div #run aria-live="polite" { (body) }
        }
    };
    render(&state, &session, StatusCode::OK, text::IMPORT.to_owned(), content)
}

/// `GET /import/runs/{id}/rejected.csv`: the rejected rows as written, with `line` and `reason`
/// columns first, to fix and import again.
pub async fn rejected_csv(State(state): State<AppState>, session: Session, Path(id): Path<String>) -> Response {
    let run = match read_run(&state, &session, &id, 10_000).await {
        Ok(run) => run,
        Err(response) => return *response,
    };
    let mut rows = vec![
        ["line", "reason"]
            .into_iter()
            .map(str::to_owned)
            .chain(run["header"].as_array().into_iter().flatten().filter_map(|h| h.as_str().map(str::to_owned)))
            .collect::<Vec<_>>(),
    ];
    for r in run["rejected"].as_array().into_iter().flatten() {
        rows.push(
            [r["line"].as_i64().unwrap_or(0).to_string(), r["reason"].as_str().unwrap_or_default().to_owned()]
                .into_iter()
                .chain(r["cells"].as_array().into_iter().flatten().filter_map(|c| c.as_str().map(str::to_owned)))
                .collect(),
        );
    }
    let stem = run["fileName"].as_str().unwrap_or("import").trim_end_matches(".csv").replace(['"', '\\', '/'], "_");
    csv_download(&format!("{stem}-rejected.csv"), &rows)
}
