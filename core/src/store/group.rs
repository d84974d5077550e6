//! Group commit: concurrent writes share one transaction and one commit.
//!
//! A durable commit costs an fsync (SQLite) or a WAL flush (PostgreSQL), and on both databases
//! writers are serialised anyway (SQLite's write lock, the outbox lock on PostgreSQL). So
//! [`Store::write`] queues the work; a task per `Store` takes every queued write and runs them
//! in one transaction with one commit (one such task on SQLite, a few on PostgreSQL, where
//! transactions overlap until the outbox lock at the end). The group's audit entries, outbox
//! events and new search entries are held in the [`Tx`] and written just before the commit: in
//! one statement per table on SQLite, in one statement on PostgreSQL (`store::flush`), where a
//! group's transaction begins only at its first statement (`store::txn`), so a group of creates
//! that ran none sends that one statement as its own transaction.
//!
//! A group runs in up to two passes:
//! - **Optimistic:** the writes run one after another with no savepoints, and the rows of new
//!   records that nothing else in their write refers to are held back too
//!   ([`Tx::insert_record`]), so a group of creates costs one INSERT per table. A write that
//!   fails before running any statement (bad input, most refusals) is dropped from the group
//!   alone.
//! - **Careful:** if a write fails after running statements, or the held rows cannot be written
//!   (a unique value two writes share), the transaction is rolled back and every write of the
//!   group runs again, each in its own savepoint, with rows written at once. A write that fails
//!   then rolls back to its savepoint and answers its own error; the others commit.
//!
//! So a write's work may run twice: it must not act outside the transaction (plugin
//! `before-write` hooks may read, not write or call out). A write whose caller has gone away
//! (a timeout, a dropped connection) before its turn is never run; one that has started runs to
//! its end and commits with its group.
//!
//! A request can follow its writes with a [`WriteWatch`] (the `Idempotency-Key` path does):
//! once the request stops waiting, [`WriteWatch::close`] keeps every write of it that has not
//! started from ever running, and [`WriteWatch::settle`] says whether those that had started
//! may have committed.
//!
//! Architecture Invariant: a caller hears `Ok` only after the commit that holds its write.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use chrono::Utc;
use sea_orm::ConnectionTrait;
use tokio::sync::oneshot;

use super::{GroupEnd, Store, Tx};
use crate::domain::actor::Actor;
use crate::domain::value::truncate_micros;
use crate::error::{Error, Result};

/// Most writes sharing one transaction: bounds how long one commit holds the write lock.
pub const MAX_GROUP: usize = 128;

/// A write's work: given the shared transaction, do the change. It may be called a second time,
/// in a fresh transaction, when its group runs again (see the module docs).
pub type Work<T> =
    Box<dyn for<'t> FnMut(&'t Tx) -> Pin<Box<dyn Future<Output = Result<T>> + Send + 't>> + Send + 'static>;

/// Groups open at once on PostgreSQL.
pub const POSTGRES_GROUPS: usize = 2;

/// The writes waiting for their turn, and how many tasks are draining them.
#[derive(Default)]
pub(crate) struct Queue {
    state: Mutex<QueueState>,
    commits: AtomicU64,
    writes: AtomicU64,
    reruns: AtomicU64,
}

/// What group commit has done since the `Store` was opened, for monitoring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupStats {
    /// Transactions committed.
    pub commits: u64,
    /// Writes those transactions held (failed writes, rolled back to their savepoint, excluded).
    pub writes: u64,
    /// Writes queued now, waiting for a group to take them.
    pub waiting: usize,
    /// Groups rolled back and run again with a savepoint per write (see the module docs).
    pub reruns: u64,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue").finish_non_exhaustive()
    }
}

#[derive(Default)]
struct QueueState {
    jobs: Vec<Box<dyn Job>>,
    draining: usize,
}

/// One queued write, with its result type erased.
trait Job: Send {
    fn actor(&self) -> &Actor;
    /// The caller stopped waiting.
    fn abandoned(&self) -> bool;
    /// Whether it may run for the first time now (its caller still waits, and its request's
    /// [`WriteWatch`] is open); from then on it counts as started.
    fn start(&mut self) -> bool;
    /// Whether it ran in an earlier pass over its group.
    fn ran(&self) -> bool;
    /// Does the work (again, if it ran before); `true` when it succeeded.
    fn run<'t>(&'t mut self, tx: &'t Tx) -> Pin<Box<dyn Future<Output = bool> + Send + 't>>;
    /// Answers the caller once the fate of the transaction is known.
    fn finish(self: Box<Self>, committed: Result<(), &Error>);
}

struct Typed<T> {
    actor: Actor,
    work: Work<T>,
    outcome: Option<Result<T>>,
    reply: oneshot::Sender<Result<T>>,
    /// The request's watch, when it follows its writes; `started` once counted there.
    watch: Option<(Arc<WriteWatch>, bool)>,
    /// The caller's span: the work runs in it (in the group's task), so what it does (a
    /// plugin's `before-write` call) is traced as part of the caller's request.
    span: tracing::Span,
}

impl<T: Send + 'static> Job for Typed<T> {
    fn actor(&self) -> &Actor {
        &self.actor
    }

    fn abandoned(&self) -> bool {
        self.reply.is_closed()
    }

    fn start(&mut self) -> bool {
        if self.reply.is_closed() {
            return false;
        }
        match &mut self.watch {
            Some((watch, started)) => {
                *started = watch.start();
                *started
            }
            None => true,
        }
    }

    fn ran(&self) -> bool {
        self.outcome.is_some()
    }

    fn run<'t>(&'t mut self, tx: &'t Tx) -> Pin<Box<dyn Future<Output = bool> + Send + 't>> {
        Box::pin(async move {
            let outcome = tracing::Instrument::instrument((self.work)(tx), self.span.clone()).await;
            let ok = outcome.is_ok();
            self.outcome = Some(outcome);
            ok
        })
    }

    fn finish(self: Box<Self>, committed: Result<(), &Error>) {
        if let Some((watch, true)) = &self.watch {
            // A commit whose fate is unknown counts as one that happened.
            watch.finished(matches!(self.outcome, Some(Ok(_))));
        }
        let answer = match (self.outcome, committed) {
            (Some(Err(err)), _) => Err(err),
            (Some(Ok(value)), Ok(())) => Ok(value),
            (Some(Ok(_)), Err(err)) => Err(Error::Internal(format!("the transaction did not commit: {err}"))),
            (None, Ok(())) => Err(Error::Internal("a grouped write was not run".into())),
            // Nothing of this write ran: when the database could not be reached, a retry is safe.
            (None, Err(Error::Unavailable(err))) => Err(Error::Unavailable(err.clone())),
            (None, Err(err)) => Err(Error::Internal(format!("the transaction did not start or commit: {err}"))),
        };
        // The caller may have stopped waiting; then nobody needs the answer.
        let _ = self.reply.send(answer);
    }
}

impl Store {
    /// Runs `work` as `actor` in a transaction it may share with other concurrent writes, and
    /// answers after the commit (see the module docs). Use it for a write that is one use case;
    /// [`Store::begin`] remains for work that must own its transaction.
    pub async fn write<T: Send + 'static>(&self, actor: &Actor, work: Work<T>) -> Result<T> {
        let (reply, answer) = oneshot::channel();
        let watch = WriteWatch::current().map(|watch| (watch, false));
        let span = tracing::Span::current();
        let job = Box::new(Typed { actor: actor.clone(), work, outcome: None, reply, watch, span });
        let start = {
            let mut state = self.group.state.lock().unwrap_or_else(PoisonError::into_inner);
            state.jobs.push(job);
            let start = state.draining < self.group_drains();
            if start {
                state.draining += 1;
            }
            start
        };
        if start {
            tokio::spawn(drain(self.clone()));
        }
        answer.await.unwrap_or_else(|_| Err(Error::Internal("the write was dropped before it finished".into())))
    }

    /// How many groups may be open at once: one on SQLite (it has one writer), a few on
    /// PostgreSQL, whose transactions run side by side until the outbox lock at the end.
    fn group_drains(&self) -> usize {
        if self.backend == sea_orm::DbBackend::Postgres { POSTGRES_GROUPS } else { 1 }
    }

    /// Counts of grouped commits so far, and the writes waiting now.
    pub fn group_stats(&self) -> GroupStats {
        let waiting = self.group.state.lock().unwrap_or_else(PoisonError::into_inner).jobs.len();
        GroupStats {
            commits: self.group.commits.load(Ordering::Relaxed),
            writes: self.group.writes.load(Ordering::Relaxed),
            waiting,
            reruns: self.group.reruns.load(Ordering::Relaxed),
        }
    }
}

/// Counts a draining task out if it ends early (its runtime shut down).
struct Draining {
    queue: Arc<Queue>,
    armed: bool,
}

impl Drop for Draining {
    fn drop(&mut self) {
        if self.armed {
            let mut state = self.queue.state.lock().unwrap_or_else(PoisonError::into_inner);
            state.draining = state.draining.saturating_sub(1);
        }
    }
}

/// Runs batches until the queue is empty.
async fn drain(store: Store) {
    let mut guard = Draining { queue: store.group.clone(), armed: true };
    loop {
        let batch: Option<Vec<Box<dyn Job>>> = {
            let mut state = guard.queue.state.lock().unwrap_or_else(PoisonError::into_inner);
            if state.jobs.is_empty() {
                state.draining = state.draining.saturating_sub(1);
                None
            } else {
                let n = state.jobs.len().min(MAX_GROUP);
                Some(state.jobs.drain(..n).collect())
            }
        };
        let Some(batch) = batch else {
            guard.armed = false;
            return;
        };
        let worker = store.clone();
        // Its own task, so a panic in one write loses that batch (its callers hear an internal
        // error), not the queue.
        match tokio::spawn(async move { run_batch(&worker, batch).await }).await {
            Err(err) if err.is_panic() => {
                tracing::error!(error = %err, "a group of writes panicked; it was rolled back");
            }
            // The runtime is shutting down: so are the callers.
            Err(_) => return,
            Ok(()) => {}
        }
    }
}

async fn run_batch(store: &Store, jobs: Vec<Box<dyn Job>>) {
    let mut jobs: Vec<Box<dyn Job>> = jobs.into_iter().filter(|job| !job.abandoned()).collect();
    if jobs.is_empty() {
        return;
    }
    let started = std::time::Instant::now();
    // On PostgreSQL a lone write goes first pass too: it may need no transaction of its own.
    if jobs.len() > 1 || store.backend == sea_orm::DbBackend::Postgres {
        match run_optimistic(store, &mut jobs).await {
            Pass::Done(committed) => {
                finish(store, jobs, committed, started);
                return;
            }
            Pass::Rerun => store.group.reruns.fetch_add(1, Ordering::Relaxed),
        };
    }
    let committed = run_careful(store, &mut jobs).await;
    finish(store, jobs, committed, started);
}

/// What a pass over a group came to.
enum Pass {
    /// The transaction committed (`Ok(Some)`: how many writes it holds), held no write and was
    /// dropped (`Ok(None)`), or its fate is unknown.
    Done(Result<Option<usize>>),
    /// Rolled back: run the group again with savepoints.
    Rerun,
}

/// Runs the writes without savepoints, holding back new rows (see the module docs).
async fn run_optimistic(store: &Store, jobs: &mut [Box<dyn Job>]) -> Pass {
    let Some(first) = jobs.first() else { return Pass::Done(Ok(None)) };
    let mut tx = if store.backend == sea_orm::DbBackend::Postgres {
        // Begun by the first statement, if any (see `store::txn`).
        store.begin_lazy(first.actor())
    } else {
        match store.begin(first.actor()).await {
            Ok(tx) => tx,
            Err(err) => {
                tracing::error!(error = %err, "starting a write transaction");
                return Pass::Done(Err(err));
            }
        }
    };
    tx.defer_appends();
    tx.hold_records();
    let mut succeeded = 0;
    let jobs_len = jobs.len();
    for job in jobs.iter_mut() {
        // Waiting for the write lock, or for the writes before it, may outlast a caller's
        // patience.
        if !job.start() {
            continue;
        }
        tx.actor = job.actor().clone();
        tx.now = truncate_micros(Utc::now());
        let mark = tx.appends_mark();
        tx.take_touched();
        if job.run(&tx).await {
            succeeded += 1;
        } else if tx.take_touched() {
            if jobs_len == 1 {
                // Alone, it has its own error already; a second pass would only repeat it.
                return match tx.rollback().await {
                    Ok(()) => Pass::Done(Ok(None)),
                    Err(err) => Pass::Done(Err(err)),
                };
            }
            // Its statements cannot be undone alone.
            return rolled_back(tx).await;
        } else {
            tx.forget_appends_after(mark);
        }
    }
    if succeeded == 0 && jobs.len() == 1 {
        // A lone write refused before any statement: there is nothing to commit.
        return match tx.rollback().await {
            Ok(()) => Pass::Done(Ok(None)),
            Err(err) => Pass::Done(Err(err)),
        };
    }
    match tx.finish_group().await {
        GroupEnd::Committed => Pass::Done(Ok(Some(succeeded))),
        GroupEnd::Refused(err) => {
            tracing::debug!(error = %err, "writing a group's held rows; running it again with savepoints");
            Pass::Rerun
        }
        GroupEnd::Unknown(err) => Pass::Done(Err(err)),
    }
}

async fn rolled_back(tx: Tx) -> Pass {
    match tx.rollback().await {
        Ok(()) => Pass::Rerun,
        Err(err) => {
            tracing::error!(error = %err, "rolling back a group of writes");
            Pass::Done(Err(err))
        }
    }
}

/// Runs each write in its own savepoint (one write alone needs none), rows written at once.
/// `Ok(None)`: a write alone failed and was rolled back.
async fn run_careful(store: &Store, jobs: &mut [Box<dyn Job>]) -> Result<Option<usize>> {
    let Some(first) = jobs.first() else { return Ok(None) };
    let mut tx = match store.begin(first.actor()).await {
        Ok(tx) => tx,
        Err(err) => {
            tracing::error!(error = %err, "starting a write transaction");
            return Err(err);
        }
    };
    // Audit entries and events go in one statement each, just before the commit (on
    // PostgreSQL the outbox lock is then held only for that statement and the commit).
    tx.defer_appends();
    let single = jobs.len() == 1;
    let mut succeeded = 0;
    let mut open_savepoint = false;
    for job in jobs.iter_mut() {
        // A write that ran in the first pass runs again: it started, so it runs to its end.
        if !job.ran() && !job.start() {
            continue;
        }
        tx.actor = job.actor().clone();
        tx.now = truncate_micros(Utc::now());
        if !single {
            // The previous write's savepoint is released in the same round trip.
            let begin = if open_savepoint {
                "RELEASE SAVEPOINT kith_write; SAVEPOINT kith_write"
            } else {
                "SAVEPOINT kith_write"
            };
            tx.conn().execute_unprepared(begin).await?;
            open_savepoint = true;
        }
        let mark = tx.appends_mark();
        if job.run(&tx).await {
            succeeded += 1;
        } else if single {
            tx.rollback().await?;
            return Ok(None);
        } else {
            tx.forget_appends_after(mark);
            if let Err(err) = tx.conn().execute_unprepared("ROLLBACK TO SAVEPOINT kith_write").await {
                // The transaction is in an unknown state: nothing of it may commit.
                tracing::error!(error = %err, "rolling back to a savepoint");
                return Err(err.into());
            }
        }
    }
    if let Err(err) = tx.flush_appends().await {
        tracing::error!(error = %err, "writing the audit entries and events of a group of writes");
        return Err(err);
    }
    tx.commit().await.map(|()| Some(succeeded))
}

/// Counts a committed group and answers every caller (`Ok(None)`: rolled back, each caller
/// hears its own error).
fn finish(store: &Store, jobs: Vec<Box<dyn Job>>, committed: Result<Option<usize>>, started: std::time::Instant) {
    match &committed {
        Ok(Some(writes)) => {
            store.group.count(*writes as u64);
            metrics::histogram!("kith_group_commit_size").record(*writes as f64);
            tracing::debug!(writes, took = ?started.elapsed(), "committed a group of writes");
        }
        Ok(None) => {}
        Err(err) => tracing::error!(error = %err, writes = jobs.len(), "committing a group of writes"),
    }
    finish_all(jobs, committed.map(|_| ()));
}

fn finish_all(jobs: Vec<Box<dyn Job>>, committed: Result<()>) {
    let committed = committed.as_ref().map(|_| ());
    for job in jobs {
        job.finish(committed);
    }
}

impl Queue {
    fn count(&self, writes: u64) {
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.writes.fetch_add(writes, Ordering::Relaxed);
    }
}

tokio::task_local! {
    /// The watch of the request whose task this is, if it follows its writes.
    static WATCH: Arc<WriteWatch>;
}

/// The writes of one request, followed so that it can tell, once it stops waiting for them,
/// whether any may have been written. [`Store::write`] and [`Store::begin`] find it through a
/// task-local set by [`WriteWatch::scope`]: a request's resolvers run in its task (DataLoaders,
/// which run in tasks of their own, only read).
#[derive(Debug)]
pub struct WriteWatch {
    state: tokio::sync::watch::Sender<WatchState>,
}

#[derive(Debug, Clone, Copy, Default)]
struct WatchState {
    /// No write may start any more.
    closed: bool,
    /// Grouped writes that started, and those of them that have been answered.
    started: usize,
    finished: usize,
    /// Whether a finished write committed, or may have.
    committed: bool,
    /// A transaction was begun outside group commit (a plugin operation's): its fate is not
    /// followed.
    untracked: bool,
}

/// What a request's writes came to, as far as [`WriteWatch::settle`] can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// Nothing: no write started, or every one that did was rolled back.
    Nothing,
    /// Something may have been written.
    Maybe,
}

impl Default for WriteWatch {
    fn default() -> WriteWatch {
        WriteWatch { state: tokio::sync::watch::Sender::new(WatchState::default()) }
    }
}

impl WriteWatch {
    /// Runs `work` with this watch following the writes it makes in its task.
    pub async fn scope<F: Future>(self: &Arc<Self>, work: F) -> F::Output {
        WATCH.scope(self.clone(), work).await
    }

    /// The watch of the current task, if any.
    pub(crate) fn current() -> Option<Arc<WriteWatch>> {
        WATCH.try_with(Arc::clone).ok()
    }

    /// A grouped write asks to start: `false` once the watch is closed.
    fn start(&self) -> bool {
        let mut started = false;
        self.state.send_if_modified(|state| {
            started = !state.closed;
            if started {
                state.started += 1;
            }
            started
        });
        started
    }

    /// A started grouped write was answered.
    fn finished(&self, committed: bool) {
        self.state.send_modify(|state| {
            state.finished += 1;
            state.committed |= committed;
        });
    }

    /// A transaction was begun in the watched task, outside group commit.
    pub(crate) fn untracked(&self) {
        self.state.send_modify(|state| state.untracked = true);
    }

    /// From now on no write of the request starts. Whether none had.
    pub fn close(&self) -> bool {
        let mut untouched = false;
        self.state.send_modify(|state| {
            state.closed = true;
            untouched = state.started == 0 && !state.untracked;
        });
        untouched
    }

    /// Closes the watch and waits, at most `limit`, for the writes that had started to be
    /// answered; then says whether anything may have been written.
    pub async fn settle(&self, limit: std::time::Duration) -> Written {
        self.close();
        let mut changes = self.state.subscribe();
        let settled = tokio::time::timeout(limit, changes.wait_for(|state| state.finished >= state.started)).await;
        let state = *self.state.borrow();
        match settled {
            Ok(Ok(_)) if !state.committed && !state.untracked => Written::Nothing,
            _ => Written::Maybe,
        }
    }
}
