//! `Idempotency-Key` on `POST /graphql`: a client that retries a mutation whose answer it never
//! got (a timeout, a dropped connection) sends the same key, and Kith answers it once.
//!
//! - The key (1 to 255 printable ASCII characters) belongs to the token that sent it: other
//!   tokens may use the same key for their own requests. An anonymous request (only `login`
//!   runs without a token) has nothing to scope it to, and its key is ignored.
//! - Only requests holding a mutation use the key (a batch: if any of its documents holds
//!   one; the key covers the whole HTTP request). A query is answered afresh every time: its
//!   key is ignored, as payment APIs ignore keys on reads.
//! - The key is reserved before anything runs: a row `running` in `idempotency_key`, unique per
//!   token and key, so one request at a time, in any Kith process on the database, runs under
//!   it. Another request with the key meanwhile hears `409 CONFLICT` (in progress, retry later).
//! - When the request is answered, its HTTP status and body are stored with the key for
//!   `api.idempotency_hours` (24 by default), errors included (`BAD_USER_INPUT`, `CONFLICT`,
//!   `FORBIDDEN`, ...): the same key and the same body (compared as the SHA-256 of the body in
//!   canonical JSON, so whitespace and key order do not matter) get that answer again, byte for
//!   byte, with `Idempotent-Replayed: true`; the same key with another body is `409 CONFLICT`.
//! - Answers that mean "nothing happened, try again" give the key back instead of being stored:
//!   `503 UNAVAILABLE`, and `504 TIMEOUT` when no write of the request had started (a write that
//!   had not started never runs, see `store::group`). When a write had started, Kith waits for
//!   it (up to a minute): if nothing was written the key is given back too; otherwise the
//!   answer is lost while its writes may have committed, so the key is kept as `unknown` for the
//!   retention time and answered `409 CONFLICT` (outcome unknown): the client checks what
//!   happened and goes on with a new key. A retry never runs the mutation a second time.
//! - Answers that carry a secret (`login`, `createApiToken`) would have to be kept in clear:
//!   such documents are refused with a key (`400 BAD_REQUEST`).
//!
//! Limits, said plainly: the mutation's writes and the stored answer commit in two
//! transactions (a write is grouped with others' and commits before its answer exists). If the
//! process dies, or the database goes away, between the two, the key stays `running`: retries
//! hear "in progress" until the row expires, `api.timeout_ms` plus a minute after it was
//! reserved, and a retry after that runs the mutation again. Expired rows are swept by each
//! process at most once a minute, in batches.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_graphql::BatchRequest;
use async_graphql::parser::types::{ExecutableDocument, OperationType, Selection, SelectionSet};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use chrono::Utc;
use sha2::{Digest, Sha256};
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::store::Store;
use crate::store::group::{WriteWatch, Written};
use crate::store::idempotency::{self as rows, KeyState, Reservation};

/// The request header.
pub const HEADER: HeaderName = HeaderName::from_static("idempotency-key");

/// The header of a replayed answer.
pub const REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// Longest key accepted.
pub const MAX_KEY_LEN: usize = 255;

/// How long a `running` row outlives the request's time limit; also how long a request that
/// gave up waits for a write of its that had started. A process that died mid-request holds its
/// key this much past the time limit at most.
pub const RUNNING_MARGIN: Duration = Duration::from_secs(60);

/// How often one process sweeps expired rows, and how many it deletes per statement and sweep.
const SWEEP_EVERY: Duration = Duration::from_secs(60);
const SWEEP_BATCH: u32 = 1_000;
const SWEEP_BATCHES: usize = 10;

/// The key of a request, when it sent a well-formed one; a message for the caller otherwise.
pub fn key(headers: &HeaderMap) -> Result<Option<String>, String> {
    let mut values = headers.get_all(&HEADER).iter();
    let Some(value) = values.next() else { return Ok(None) };
    if values.next().is_some() {
        return Err("send one `Idempotency-Key` header, not several".into());
    }
    let bytes = value.as_bytes();
    if bytes.is_empty() || bytes.len() > MAX_KEY_LEN || !bytes.iter().all(|b| (0x20..=0x7e).contains(b)) {
        return Err(format!(
            "`Idempotency-Key` must be 1 to {MAX_KEY_LEN} printable ASCII characters (a UUID is a good key)"
        ));
    }
    // Checked to be ASCII just above.
    Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
}

/// The SHA-256 (hex) of a JSON body in canonical form: object keys sorted, no whitespace. Two
/// bodies with the same fingerprint are the same request.
pub fn fingerprint(body: &[u8]) -> String {
    let mut digest = Sha256::new();
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(value) => {
            let mut text = String::with_capacity(body.len());
            canonical(&value, &mut text);
            digest.update(b"json:");
            digest.update(text.as_bytes());
        }
        // The handler refuses a body that is not JSON before asking; hash its bytes anyway.
        Err(_) => {
            digest.update(b"raw:");
            digest.update(body);
        }
    }
    hex::encode(digest.finalize())
}

fn canonical(value: &serde_json::Value, out: &mut String) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (name, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(name.clone()).to_string());
                out.push(':');
                canonical(item, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// What a batch is, for its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// It holds no mutation: the key is ignored.
    Read,
    /// It holds a mutation.
    Write,
    /// It selects this mutation, whose answer holds a secret.
    Secret(&'static str),
}

/// Mutations whose answers hold a secret Kith keeps only as a hash.
const SECRET_FIELDS: [&str; 2] = ["login", "createApiToken"];

/// What `batch` is (documents that do not parse hold nothing).
pub fn kind(batch: &mut BatchRequest) -> Kind {
    let mut kind = Kind::Read;
    for request in batch.iter_mut() {
        let Ok(document) = request.parsed_query() else { continue };
        for (_, operation) in document.operations.iter() {
            if operation.node.ty != OperationType::Mutation {
                continue;
            }
            if let Some(field) = secret_field(document, &operation.node.selection_set.node, 0) {
                return Kind::Secret(field);
            }
            kind = Kind::Write;
        }
    }
    kind
}

/// A secret-bearing field selected at the top of a mutation (through fragments too).
fn secret_field(document: &ExecutableDocument, set: &SelectionSet, depth: usize) -> Option<&'static str> {
    if depth > 8 {
        return None;
    }
    set.items.iter().find_map(|item| match &item.node {
        Selection::Field(field) => SECRET_FIELDS.into_iter().find(|name| field.node.name.node == *name),
        Selection::InlineFragment(fragment) => secret_field(document, &fragment.node.selection_set.node, depth + 1),
        Selection::FragmentSpread(spread) => document
            .fragments
            .get(&spread.node.fragment_name.node)
            .and_then(|fragment| secret_field(document, &fragment.node.selection_set.node, depth + 1)),
    })
}

/// The settings and the sweep schedule of one process.
#[derive(Debug)]
pub struct Keys {
    /// How long answers are kept.
    retention: chrono::Duration,
    /// How long a `running` row lives: the request's time limit plus [`RUNNING_MARGIN`].
    running: chrono::Duration,
    /// When this process sweeps next.
    next_sweep: Mutex<Instant>,
}

/// What to do with a keyed request.
#[derive(Debug)]
pub enum Begin {
    /// Run it, then [`Reserved::finish`].
    Run(Reserved),
    /// Answer with this stored answer.
    Replay {
        /// Its HTTP status.
        status: StatusCode,
        /// Its body, as sent the first time.
        body: String,
    },
    /// Refuse it with `409 CONFLICT` and this message; `retry` when retrying later may help.
    Conflict {
        /// What the caller is told.
        message: &'static str,
        /// The key is held by a request still running.
        retry: bool,
    },
}

impl Keys {
    /// Keys kept `hours` after their answer, `running` rows for `timeout` plus the margin.
    pub fn new(hours: u64, timeout: Duration) -> Keys {
        let hours = i64::try_from(hours).unwrap_or(24 * 365);
        let running = chrono::Duration::from_std(timeout + RUNNING_MARGIN).unwrap_or(chrono::Duration::hours(1));
        Keys { retention: chrono::Duration::hours(hours), running, next_sweep: Mutex::new(Instant::now()) }
    }

    /// Reserves `key` for `caller`'s request with body `fingerprint`, or says why not.
    pub async fn begin(&self, store: &Store, caller: &str, key: &str, fingerprint: &str) -> crate::Result<Begin> {
        let now = Utc::now();
        let task = {
            let (store, caller, key, fingerprint) =
                (store.clone(), caller.to_owned(), key.to_owned(), fingerprint.to_owned());
            let until = now + self.running;
            tokio::spawn(async move { rows::reserve(store.conn(), &caller, &key, &fingerprint, now, until).await })
        };
        // The reservation runs in a task of its own: should the request give up while it waits
        // (a write lock held elsewhere), a reservation made after that is given back.
        let mut pending = Pending { task: Some(task), store: store.clone() };
        let reserved = match pending.task.as_mut() {
            Some(task) => task.await,
            None => return Err(crate::Error::internal("the reservation task is gone")),
        };
        pending.task = None;
        let reserved =
            reserved.map_err(|err| crate::Error::internal(format!("reserving an idempotency key: {err}")))??;
        let held = match reserved {
            Reservation::Taken(id) => {
                self.sweep_if_due(store);
                return Ok(Begin::Run(Reserved {
                    store: store.clone(),
                    id,
                    watch: Arc::default(),
                    retention: self.retention,
                    armed: true,
                }));
            }
            Reservation::Held(held) => held,
        };
        Ok(if held.fingerprint != fingerprint {
            Begin::Conflict {
                message: "this Idempotency-Key was already used with another request; send a new key for a new request",
                retry: false,
            }
        } else {
            match (held.state, held.status, held.response) {
                (KeyState::Done, Some(status), Some(body)) => {
                    Begin::Replay { status: StatusCode::from_u16(status).unwrap_or(StatusCode::OK), body }
                }
                (KeyState::Running, _, _) => Begin::Conflict {
                    message: "a request with this Idempotency-Key is still in progress; retry later",
                    retry: true,
                },
                _ => Begin::Conflict {
                    message: "the request with this Idempotency-Key was stopped after its writes began, so whether \
                              they were applied is unknown; check, then send a new key",
                    retry: false,
                },
            }
        })
    }

    /// Deletes expired rows in a task of its own, at most once per [`SWEEP_EVERY`] in this
    /// process.
    fn sweep_if_due(&self, store: &Store) {
        {
            let mut next = self.next_sweep.lock().unwrap_or_else(PoisonError::into_inner);
            let now = Instant::now();
            if *next > now {
                return;
            }
            *next = now + SWEEP_EVERY;
        }
        let store = store.clone();
        tokio::spawn(async move {
            for _ in 0..SWEEP_BATCHES {
                match rows::sweep(store.conn(), Utc::now(), SWEEP_BATCH).await {
                    Ok(deleted) if deleted < u64::from(SWEEP_BATCH) => return,
                    Ok(_) => {}
                    Err(err) => {
                        tracing::warn!(error = %err, "deleting expired idempotency keys");
                        return;
                    }
                }
            }
        });
    }
}

/// A reservation on its way: given back if its request stops waiting for it.
struct Pending {
    task: Option<JoinHandle<crate::Result<Reservation>>>,
    store: Store,
}

impl Drop for Pending {
    fn drop(&mut self) {
        let Some(task) = self.task.take() else { return };
        let store = self.store.clone();
        spawn_detached(async move {
            if let Ok(Ok(Reservation::Taken(id))) = task.await {
                // Nothing of the request ran.
                if let Err(err) = rows::release(store.conn(), id).await {
                    tracing::warn!(error = %err, "giving back an idempotency key");
                }
            }
        });
    }
}

/// A key this request holds (`running`). Finish it with the answer; dropped unfinished (the
/// request timed out, or its connection went away), it is settled from what its writes did.
#[derive(Debug)]
pub struct Reserved {
    store: Store,
    id: Uuid,
    watch: Arc<WriteWatch>,
    retention: chrono::Duration,
    armed: bool,
}

impl Reserved {
    /// Follows the request's writes: run the request inside [`WriteWatch::scope`].
    pub fn watch(&self) -> &Arc<WriteWatch> {
        &self.watch
    }

    /// Stores the answer, or gives the key back for an answer that says to try again
    /// (`503 UNAVAILABLE`) when nothing was written.
    pub async fn finish(mut self, status: StatusCode, body: &str) {
        self.armed = false;
        let conn = self.store.conn();
        let until = Utc::now() + self.retention;
        let res = if status == StatusCode::SERVICE_UNAVAILABLE {
            match self.watch.settle(RUNNING_MARGIN).await {
                Written::Nothing => rows::release(conn, self.id).await,
                Written::Maybe => rows::mark_unknown(conn, self.id, until).await,
            }
        } else {
            rows::complete(conn, self.id, status.as_u16(), body, until).await
        };
        match res {
            Ok(true) => {}
            Ok(false) => tracing::warn!("an idempotency key expired before its request was answered"),
            // The key stays `running` until it expires (see the module docs).
            Err(err) => tracing::error!(error = %err, "storing the answer of an idempotency key"),
        }
    }
}

impl Drop for Reserved {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let (store, id, watch) = (self.store.clone(), self.id, self.watch.clone());
        let until = Utc::now() + self.retention;
        spawn_detached(async move {
            let res = match watch.settle(RUNNING_MARGIN).await {
                Written::Nothing => rows::release(store.conn(), id).await,
                Written::Maybe => rows::mark_unknown(store.conn(), id, until).await,
            };
            if let Err(err) = res {
                tracing::error!(error = %err, "settling the idempotency key of a request that stopped");
            }
        });
    }
}

/// Spawns `work` when there is a runtime to run it (a drop outside one has nothing to settle
/// with; the row then expires on its own).
fn spawn_detached(work: impl std::future::Future<Output = ()> + Send + 'static) {
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(work);
    }
}

/// A header value that is always valid.
pub fn replayed() -> HeaderValue {
    HeaderValue::from_static("true")
}

#[cfg(test)]
mod tests;
