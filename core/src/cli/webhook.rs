//! `kith webhook ...`: outbound webhooks from the command line, as the GraphQL API manages them
//! (`service::webhooks`): add (printing the signing secret once), list, remove, the delivery
//! log, and replay.

use anyhow::{Context as _, bail};
use clap::Subcommand;
use uuid::Uuid;

use crate::cli::Io;
use crate::config::Config;
use crate::domain::actor::Actor;
use crate::domain::value::{FieldKind, Value, format_datetime};
use crate::service::Kith;
use crate::service::webhooks::{self, WebhookInput};
use crate::store::webhooks::{self as store, Replay};

/// `kith webhook` actions.
#[derive(Debug, Subcommand)]
pub enum WebhookAction {
    /// Add an endpoint; prints its id, then its signing secret (shown only this once).
    Add {
        /// Where deliveries are POSTed (http or https).
        url: String,
        /// An event type it receives (`contact.created`, `deal.*`, `*`); repeat for several.
        #[arg(long = "event", required = true)]
        events: Vec<String>,
        /// A filter on the record after the change, in the filter language of lists (JSON).
        #[arg(long)]
        filter: Option<String>,
        /// What it is for.
        #[arg(long)]
        description: Option<String>,
    },
    /// List the endpoints: id, state, url, event types.
    List,
    /// Remove an endpoint and its delivery log.
    Remove {
        /// The endpoint's id.
        id: Uuid,
    },
    /// An endpoint's delivery log, newest first.
    Deliveries {
        /// The endpoint's id.
        id: Uuid,
        /// Only deliveries in this state: `pending`, `delivered` or `dead`.
        #[arg(long)]
        state: Option<String>,
        /// How many.
        #[arg(long, default_value_t = 50)]
        limit: u64,
    },
    /// Send delivered or dead deliveries again: one (--delivery) or those queued in a time range.
    Replay {
        /// The endpoint's id.
        id: Uuid,
        /// One delivery's id.
        #[arg(long, conflicts_with_all = ["since", "until"])]
        delivery: Option<Uuid>,
        /// Deliveries queued from this instant (RFC 3339).
        #[arg(long, required_unless_present = "delivery")]
        since: Option<String>,
        /// ... up to this instant (default now).
        #[arg(long)]
        until: Option<String>,
    },
}

fn instant(name: &str, text: &str) -> anyhow::Result<chrono::DateTime<chrono::Utc>> {
    match Value::parse(name, &FieldKind::DateTime, text)? {
        Value::DateTime(at) => Ok(at),
        _ => bail!("--{name} needs an instant (RFC 3339, e.g. 2026-12-01T00:00:00Z)"),
    }
}

/// Runs a `kith webhook` action.
pub async fn run(kith: &Kith, config: &Config, action: WebhookAction, io: Io<'_>) -> anyhow::Result<()> {
    let actor = Actor::system("cli");
    let db = kith.store.conn();
    match action {
        WebhookAction::Add { url, events, filter, description } => {
            let filter = match filter {
                Some(text) => Some(serde_json::from_str(&text).context("--filter is not JSON")?),
                None => None,
            };
            let input = WebhookInput { url: Some(url), events: Some(events), filter, description };
            webhooks::check_input(db, &kith.registry(), &config.webhooks, None, &input).await?;
            let tx = kith.store.begin(&actor).await?;
            let (row, secret) = webhooks::create(&tx, &input).await?;
            tx.commit().await?;
            writeln!(io.stdout, "{}", row.id)?;
            writeln!(io.stdout, "{secret}")?;
            writeln!(io.stderr, "added webhook {}; its signing secret is shown only this once", row.id)?;
        }
        WebhookAction::List => {
            for row in store::list(db).await? {
                let state = if row.enabled { "enabled".to_owned() } else { "disabled".to_owned() };
                writeln!(io.stdout, "{}\t{state}\t{}\t{}", row.id, row.url, row.events.join(","))?;
                if let Some(reason) = &row.disabled_reason {
                    writeln!(io.stderr, "{}: disabled: {reason}", row.id)?;
                }
            }
        }
        WebhookAction::Remove { id } => {
            let tx = kith.store.begin(&actor).await?;
            webhooks::delete(&tx, id).await?;
            tx.commit().await?;
            writeln!(io.stderr, "removed webhook {id}")?;
        }
        WebhookAction::Deliveries { id, state, limit } => {
            if let Some(state) = &state
                && !matches!(state.as_str(), "pending" | "delivered" | "dead")
            {
                bail!("--state is one of pending, delivered, dead");
            }
            if store::get(db, id).await?.is_none() {
                bail!("no webhook {id}");
            }
            for d in store::deliveries(db, id, state.as_deref(), limit.clamp(1, 10_000), None).await? {
                let status = d.status_code.map(|s| s.to_string()).unwrap_or_else(|| "-".into());
                let at = d.last_attempt_at.map(format_datetime).unwrap_or_else(|| "-".into());
                writeln!(
                    io.stdout,
                    "{}\t{}\t{}\tattempts={}\tstatus={status}\tlast={at}\t{}",
                    d.id,
                    d.state,
                    d.kind,
                    d.attempts,
                    d.error.unwrap_or_default()
                )?;
            }
        }
        WebhookAction::Replay { id, delivery, since, until } => {
            let which = match (delivery, since) {
                (Some(delivery), _) => Replay::One(delivery),
                (None, Some(since)) => Replay::Between(
                    instant("since", &since)?,
                    match until {
                        Some(until) => instant("until", &until)?,
                        None => chrono::Utc::now(),
                    },
                ),
                (None, None) => bail!("give --delivery ID or --since T [--until T]"),
            };
            let retry_for = std::time::Duration::from_secs(config.webhooks.retry_for_secs);
            let tx = kith.store.begin(&actor).await?;
            let n = webhooks::replay(&tx, id, which, retry_for).await?;
            tx.commit().await?;
            writeln!(io.stdout, "{n}")?;
            writeln!(io.stderr, "{n} deliveries will be sent again by `kith serve`")?;
        }
    }
    Ok(())
}
