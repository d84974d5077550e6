//! `kith privacy ...`: a person's personal-data export and erasure, and the retention policies,
//! as the GraphQL API does them (`service::privacy`), with the enabled plugins loaded so their
//! objects and export queries take part.

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use uuid::Uuid;

use crate::cli::Io;
use crate::config::Config;
use crate::domain::actor::Actor;
use crate::plugin::PluginManager;
use crate::service::{Kith, privacy};

/// Who a request is about: a contact by id, or by e-mail.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct Person {
    /// The contact's id.
    #[arg(long)]
    pub contact: Option<Uuid>,
    /// The contact's e-mail (a live or deleted contact; refused when several have it).
    #[arg(long)]
    pub email: Option<String>,
}

/// `kith privacy` actions.
#[derive(Debug, Subcommand)]
pub enum PrivacyAction {
    /// Write everything Kith holds about a person as one JSON document.
    Export {
        /// The person.
        #[command(flatten)]
        person: Person,
        /// Write to this file instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Erase a person for good; with --dry-run, list what would happen per plugin and object.
    Erase {
        /// The person.
        #[command(flatten)]
        person: Person,
        /// Why (kept in the audit log; write no personal data here).
        #[arg(long)]
        reason: Option<String>,
        /// Only list what would be erased, anonymised, unlinked or kept.
        #[arg(long)]
        dry_run: bool,
    },
    /// Run the retention policies of `[privacy]` now; with --dry-run, list whom they select.
    Retention {
        /// Only list the people the policies select.
        #[arg(long)]
        dry_run: bool,
    },
}

/// The contact a request is about.
async fn resolve(kith: &Kith, person: &Person) -> anyhow::Result<Uuid> {
    if let Some(id) = person.contact {
        return Ok(id);
    }
    let email = person.email.as_deref().unwrap_or_default();
    let found = privacy::contacts_with_email(kith, email).await?;
    match found.as_slice() {
        [] => bail!("no contact, live or deleted, has the e-mail {email}"),
        [one] => Ok(*one),
        many => bail!(
            "{} contacts have the e-mail {email} ({}): name one with --contact",
            many.len(),
            many.iter().map(Uuid::to_string).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// Runs `action` with the enabled plugins loaded.
pub async fn run(kith: &Kith, config: &Config, action: PrivacyAction, io: Io<'_>) -> anyhow::Result<()> {
    let manager = PluginManager::new(kith.clone(), &config.plugins)?;
    manager.start_for_command().await?;
    PluginManager::attach(&manager);
    let outcome = act(kith, config, action, io).await;
    manager.stop().await;
    outcome
}

async fn act(kith: &Kith, config: &Config, action: PrivacyAction, io: Io<'_>) -> anyhow::Result<()> {
    let actor = Actor::system("cli");
    match action {
        PrivacyAction::Export { person, output } => {
            let id = resolve(kith, &person).await?;
            let doc = crate::plugin::privacy::export(kith, &actor, id).await?;
            let text = serde_json::to_string_pretty(&doc)?;
            match output {
                Some(path) => {
                    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
                    writeln!(io.stderr, "exported the personal data of contact {id} to {}", path.display())?;
                }
                None => writeln!(io.stdout, "{text}")?,
            }
            if doc.get("complete") == Some(&serde_json::Value::Bool(false)) {
                bail!("the export is incomplete: a plugin's export failed (see `failedPlugins` in the document)");
            }
        }
        PrivacyAction::Erase { person, reason, dry_run } => {
            let id = resolve(kith, &person).await?;
            let report = if dry_run {
                privacy::erase_dry_run(kith, id).await?
            } else {
                let reason = reason.context("say why with --reason (kept in the audit log)")?;
                privacy::erase(kith, &actor, id, &reason).await?
            };
            let verb = if dry_run { "would" } else { "did" };
            for line in &report.lines {
                let owner = line.plugin.as_deref().map_or("core".to_owned(), |p| format!("plugin {p}"));
                let basis = line.legal_basis.as_deref().map(|b| format!(" ({b})")).unwrap_or_default();
                writeln!(io.stdout, "{owner}\t{}\t{}\t{}{basis}", line.object, line.policy, line.records)?;
            }
            writeln!(
                io.stderr,
                "{verb} erase contact {id}: {} line(s) above (owner, object, policy, records)",
                report.lines.len()
            )?;
        }
        PrivacyAction::Retention { dry_run } => {
            if config.privacy.retention.is_empty() {
                writeln!(io.stderr, "no retention policy is configured ([[privacy.retention]])")?;
                return Ok(());
            }
            let outcomes = privacy::run_retention(kith, &config.privacy.retention, dry_run).await?;
            for o in &outcomes {
                let state = match (&o.error, o.erased) {
                    (Some(err), _) => format!("failed: {err}"),
                    (None, true) => "erased".to_owned(),
                    (None, false) => "would be erased".to_owned(),
                };
                writeln!(io.stdout, "{}\t{}\t{state}", o.policy, o.contact_id)?;
            }
            writeln!(io.stderr, "{} person(s) selected", outcomes.len())?;
            if outcomes.iter().any(|o| o.error.is_some()) {
                bail!("some erasures failed (listed above)");
            }
        }
    }
    Ok(())
}
