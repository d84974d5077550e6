//! The console: the web app for the people who run the CRM, served by `kith serve` at `/`.
//!
//! Server-rendered HTML (maud templates) with progressive enhancement: every form works
//! without JavaScript; htmx (vendored, `assets`) only makes search live. Pages are derived from
//! the registry (`ObjectDef`: labels, the naming field and title, list columns, relations,
//! menu) and from plugin contributions, so a plugin's objects appear without console code.
//!
//! Architecture Invariant: the console acts only through the GraphQL schema, executed
//! in-process as the signed-in user (`run`), so roles, validation, plugin hooks, audit and
//! events are those of the API. The exceptions are the session itself (`session`: the login
//! throttle and sign-in go through the `login` mutation; sign-out and first-run setup call
//! `service::users`).
//!
//! - `session`: cookies, CSRF tokens, sign-in, sign-out, first-run setup.
//! - `pages`: lists, record pages and search, for every object.
//! - `bulk`: a list's columns, CSV export, save as segment, bulk actions and quick add.
//! - `edit`: create, edit and delete through forms, with version conflicts explained.
//! - `timeline`: a record's timeline, its open tasks, and adding a note, call or task.
//! - `privacy`: a contact's consent history, legal hold, data export and erasure.
//! - `board`: the pipeline board (drag, or a form per card).
//! - `inbox`: the ticket inbox and a ticket's conversation.
//! - `reports`: reports as SVG charts with their tables and CSV downloads.
//! - `donor_reports`: a donor plugin's retention, LYBUNT/SYBUNT and campaign reports as charts.
//! - `operations`: a generated form for every plugin query and mutation.
//! - `import`: CSV upload, column mapping, progress and rejected rows (core and plugin imports).
//! - `admin`: administration for ADMINs: users and roles, API tokens, custom fields, plugins,
//!   and the audit log.
//! - `form`: form widgets per field kind, and form values → GraphQL input.
//! - `assets`: the stylesheet and scripts, and the security headers of every page.
//! - `text`: every string the console shows (English).

pub mod admin;
pub mod assets;
pub mod board;
pub mod bulk;
pub mod donor_reports;
pub mod edit;
pub mod form;
pub mod import;
pub mod inbox;
pub mod operations;
pub mod pages;
pub mod privacy;
pub mod reports;
pub mod session;
pub mod text;
pub mod timeline;

use axum::Router;
use axum::routing::{get, post};
use maud::{DOCTYPE, Markup, html};
use serde_json::Value as Json;

use crate::api::auth::ClientAddr;
use crate::domain::actor::{Actor, Role};
use crate::domain::code::Code;
use crate::domain::object::ObjectDef;
use crate::http::AppState;

/// The console's routes (under `/`, beside `/graphql`).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(pages::home))
        .route("/login", get(session::login_page).post(session::login))
        .route("/logout", post(session::logout))
        .route("/setup", get(session::setup_page).post(session::setup))
        .route("/search", get(pages::search))
        .route("/o/{plural}", get(pages::list).post(edit::create))
        .route("/o/{plural}/new", get(edit::new_record))
        .route("/o/{plural}/export.csv", get(bulk::export))
        .route("/o/{plural}/bulk", post(bulk::bulk))
        .route("/o/{plural}/segment", post(bulk::save_segment))
        .route("/o/{plural}/{id}", get(pages::record).post(edit::update))
        .route("/o/{plural}/{id}/edit", get(edit::edit))
        .route("/o/{plural}/{id}/delete", post(edit::delete))
        .route("/o/{plural}/{id}/activity", post(timeline::add))
        .route("/o/{plural}/{id}/tasks/{task}/complete", post(timeline::complete))
        .route("/privacy/{id}", get(privacy::page))
        .route("/privacy/{id}/consent", post(privacy::consent))
        .route("/privacy/{id}/hold", post(privacy::hold))
        .route("/privacy/{id}/export", post(privacy::export))
        .route("/privacy/{id}/erase", post(privacy::erase))
        .route("/board", get(board::board))
        .route("/board/move", post(board::move_deal))
        .route("/board/close", post(board::close_deal))
        .route("/inbox", get(inbox::inbox))
        .route("/inbox/{id}", get(inbox::ticket))
        .route("/inbox/{id}/status", post(inbox::change_status))
        .route("/inbox/{id}/assign", post(inbox::assign))
        .route("/inbox/{id}/comment", post(inbox::comment))
        .route("/inbox/{id}/rate", post(inbox::rate))
        .route("/reports", get(reports::reports))
        .route("/reports/{file}", get(reports::download))
        .route("/reports/donors", get(donor_reports::page))
        .route("/reports/donors/{file}", get(donor_reports::download))
        .route("/ops", get(operations::index))
        .route("/ops/{plugin}/{name}", get(operations::show).post(operations::run_operation))
        .route("/admin", get(admin::index))
        .route("/admin/users", get(admin::users::list).post(admin::users::create))
        .route("/admin/users/{id}", get(admin::users::edit).post(admin::users::update))
        .route("/admin/tokens", get(admin::tokens::list).post(admin::tokens::create))
        .route("/admin/tokens/{id}/revoke", post(admin::tokens::revoke))
        .route("/admin/fields", get(admin::custom_fields::list).post(admin::custom_fields::define))
        .route("/admin/plugins", get(admin::plugins::list))
        .route("/admin/plugins/{id}", get(admin::plugins::show))
        .route("/admin/plugins/{id}/{action}", post(admin::plugins::act))
        .route("/admin/audit", get(admin::audit::log))
        .route("/assets/{name}", get(assets::asset))
}

/// One error of a GraphQL answer: its code, message and the input field it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GqlError {
    /// `extensions.code`.
    pub code: Code,
    /// The message.
    pub message: String,
    /// `extensions.field`, when the error names one.
    pub field: Option<String>,
}

/// What a GraphQL operation answered.
#[derive(Debug, Clone)]
pub struct Answer {
    /// `data`, as JSON (null when nothing was answered).
    pub data: Json,
    /// `errors`.
    pub errors: Vec<GqlError>,
}

impl Answer {
    /// The first error's code, if any.
    pub fn code(&self) -> Option<Code> {
        self.errors.first().map(|e| e.code)
    }
}

/// Runs a GraphQL operation in-process as `actor` (or anonymously), exactly as `POST /graphql`
/// would: the same schema, the same per-request data, the same role checks.
pub async fn run(state: &AppState, actor: Option<&Actor>, client: ClientAddr, query: &str, variables: Json) -> Answer {
    let schema = state.current_schema();
    let request =
        async_graphql::Request::new(query).variables(async_graphql::Variables::from_json(variables)).data(client);
    let request = crate::api::schema::request_data(request, &state.kith, actor.cloned());
    let response = schema.execute(request).await;
    let errors = response
        .errors
        .iter()
        .map(|e| {
            let ext = e.extensions.as_ref();
            let get = |key: &str| {
                ext.and_then(|x| x.get(key)).and_then(|v| match v {
                    async_graphql::Value::String(s) => Some(s.clone()),
                    async_graphql::Value::Enum(n) => Some(n.to_string()),
                    _ => None,
                })
            };
            GqlError {
                code: get("code")
                    .and_then(|code| Code::ALL.iter().copied().find(|c| c.as_str() == code))
                    .unwrap_or(Code::BadUserInput),
                message: e.message.clone(),
                field: get("field"),
            }
        })
        .collect();
    let data = response.data.into_json().unwrap_or(Json::Null);
    Answer { data, errors }
}

/// Whether `actor` may create and edit records, and delete them.
pub(crate) fn may_write(actor: &Actor) -> bool {
    actor.role.allows(Role::Agent)
}

/// Whether `actor` may delete and restore records.
pub(crate) fn may_delete(actor: &Actor) -> bool {
    actor.role.allows(Role::Manager)
}

/// Whether `actor` may read records of `def` (as the API decides).
pub(crate) fn may_read(state: &AppState, actor: &Actor, def: &ObjectDef) -> bool {
    actor.role.allows(crate::service::events::read_role(&state.kith.registry(), &def.name))
}

/// What every signed-in page shows around its content.
pub(crate) struct Chrome<'a> {
    /// The page title.
    pub title: String,
    /// Who is signed in.
    pub actor: &'a Actor,
    /// The CSRF token for the page's forms.
    pub csrf: &'a str,
}

/// The page around `content`: header with the menu, search and sign-out.
pub(crate) fn layout(state: &AppState, chrome: &Chrome<'_>, content: Markup) -> Markup {
    let registry = state.kith.registry();
    let menu: Vec<_> = registry.in_order().filter(|d| d.menu && may_read(state, chrome.actor, d)).cloned().collect();
    // Plugins' objects are grouped under their plugin, so the menu stays short.
    let mut plugins: Vec<(String, Vec<std::sync::Arc<ObjectDef>>)> = Vec::new();
    for def in menu.iter().filter(|d| d.plugin.is_some()) {
        let plugin = def.plugin.clone().unwrap_or_default();
        match plugins.iter_mut().find(|(p, _)| *p == plugin) {
            Some((_, defs)) => defs.push(def.clone()),
            None => plugins.push((plugin, vec![def.clone()])),
        }
    }
    page(
        &chrome.title,
        html! {
            header.top {
                a.brand href="/" { (text::BRAND) }
                nav aria-label=(text::MENU) {
                    ul {
                        @for def in menu.iter().filter(|d| d.plugin.is_none()) {
                            li { a href=(format!("/o/{}", def.plural)) { (def.plural_label) } }
                        }
                        @for (plugin, defs) in &plugins {
                            li.plugin-menu {
                                details {
                                    summary { (crate::domain::object::humanize(plugin)) }
                                    ul { @for def in defs { li { a href=(format!("/o/{}", def.plural)) { (def.plural_label) } } } }
                                }
                            }
                        }
                        @if registry.get("deal").is_some_and(|d| may_read(state, chrome.actor, d)) { li { a href="/board" { (text::BOARD) } } }
                        @if registry.get("ticket").is_some_and(|d| may_read(state, chrome.actor, d)) { li { a href="/inbox" { (text::INBOX) } } }
                        @if chrome.actor.role.allows(Role::Manager) { li { a href="/reports" { (text::REPORTS) } } }
                        @if !registry.extensions().is_empty() { li { a href="/ops" { (text::OPERATIONS) } } }
                        @if may_write(chrome.actor) { li { a href="/import" { (text::IMPORT) } } }
                        @if admin::may_administer(chrome.actor) { li { a href="/admin" { (text::ADMINISTRATION) } } }
                    }
                }
                form.search role="search" method="get" action="/search" {
                    label.skip for="search" { (text::SEARCH) }
                    input #search type="search" name="q" placeholder=(text::SEARCH_HINT) autocomplete="off"
                        hx-get="/search" hx-trigger="input changed delay:200ms, search" hx-target="#search-results" hx-swap="innerHTML";
                    div #search-results aria-live="polite" {}
                }
                span.muted { (chrome.actor.name) " · " (chrome.actor.role.as_str()) }
                form method="post" action="/logout" {
                    input type="hidden" name="_csrf" value=(chrome.csrf);
                    button.secondary type="submit" { (text::SIGN_OUT) }
                }
            }
            main #main { (content) }
        },
    )
}

/// A whole HTML document: the head (assets, htmx settings) and `body`.
pub(crate) fn page(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                // No inline styles or evaluated attributes: the CSP allows neither.
                meta name="htmx-config" content=r#"{"includeIndicatorStyles":false,"allowEval":false,"allowScriptTags":false}"#;
                title { (title) " · " (text::BRAND) }
                link rel="stylesheet" href=(assets::path("console.css"));
                script src=(assets::path("htmx.min.js")) defer {}
                script src=(assets::path("console.js")) defer {}
            }
            body {
                a.skip href="#main" { (text::SKIP) }
                (body)
            }
        }
    }
}

/// An HTML answer with `status`.
pub(crate) fn respond(status: axum::http::StatusCode, markup: Markup) -> axum::response::Response {
    use axum::response::IntoResponse;
    (status, axum::response::Html(markup.into_string())).into_response()
}
