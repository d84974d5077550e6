//! A background task of this process that holds leases on rows of the database (messages of the
//! mail queue, webhook deliveries). [`Worker::stop`] aborts the task and gives its leases up, so
//! another process (or the next start of this one) takes the work at once; dropping the worker
//! aborts the task, and its leases run out by themselves.

use std::future::Future;
use std::pin::Pin;

use crate::service::Kith;

/// Gives up the leases `owner` holds (`store::mail::release_all`, ...).
pub type Release = fn(Kith, String) -> Pin<Box<dyn Future<Output = crate::Result<()>> + Send>>;

/// A running task of this process and the leases it holds.
#[derive(Debug)]
pub struct Worker {
    task: Option<tokio::task::JoinHandle<()>>,
    kith: Kith,
    owner: String,
    what: &'static str,
    release: Release,
}

impl Worker {
    /// `task`, which takes leases as `owner`; `what` names its work in logs.
    pub(crate) fn new(
        task: tokio::task::JoinHandle<()>,
        kith: &Kith,
        owner: String,
        what: &'static str,
        release: Release,
    ) -> Worker {
        Worker { task: Some(task), kith: kith.clone(), owner, what, release }
    }

    /// Stops the task and gives this process's leases up.
    pub async fn stop(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
        if let Err(err) = (self.release)(self.kith.clone(), self.owner.clone()).await {
            tracing::warn!(error = %err, work = self.what, "releasing leases");
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
