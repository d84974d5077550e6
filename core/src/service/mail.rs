//! E-mail: messages plugins queue (`kith:plugin/mail`, since WIT 1.3.0) and the worker that sends
//! them through the SMTP relay of `[mail]`.
//!
//! A message is built whole when it is queued ([`message::build`]): Kith sets the envelope,
//! `From`, `To`, `Date`, `Message-ID` and the MIME structure from the plugin's parts; the plugin
//! never sees the relay's credentials. It is stored in `mail_message` in the caller's
//! transaction ([`crate::store::mail`]), so a handler whose work rolls back sends nothing.
//! [`worker`] leases due messages (one process per message at a time), sends them over pooled
//! connections at most `per_second`, and records each outcome with a `mail.sent` or
//! `mail.failed` event addressed to the sending plugin alone. A temporary failure (a 4xx reply,
//! a lost connection) is retried with backoff up to `max_attempts`; a 5xx reply fails the
//! message at once.
//!
//! Delivery is at least once: a process killed after the relay accepted a message and before
//! its outcome was written sends it again once its lease runs out, byte for byte, with the same
//! `Message-ID` (receivers and relays that deduplicate on it show it once).

mod connections;
pub mod message;
pub mod worker;

use std::time::Duration;

use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::{AsyncSmtpTransport, PoolConfig};
use lettre::{AsyncTransport, Tokio1Executor};

use crate::config::{MailConfig, MailTls};

/// Why a message could not be queued or sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailError {
    /// The parts are not a message Kith sends.
    #[error("{0}")]
    Invalid(String),
    /// The sender is not one `[mail] senders` allows.
    #[error("`{0}` is not an allowed sender (`[mail] senders`)")]
    SenderNotAllowed(String),
    /// No relay is configured.
    #[error("e-mail is not configured (`[mail] relay`)")]
    Unconfigured,
    /// The relay's configuration is wrong.
    #[error("[mail]: {0}")]
    Config(String),
    /// Sending failed; `permanent` when the relay refused it for good (5xx).
    #[error("{message}")]
    Send {
        /// Refused for good.
        permanent: bool,
        /// What the relay or the connection said.
        message: String,
    },
}

/// The relay and the rules of `[mail]`.
#[derive(Clone)]
pub struct Mailer {
    config: MailConfig,
    transport: Transport,
}

/// How messages reach the relay: Kith's own connections (plain or STARTTLS, with
/// `TCP_NODELAY`: see `connections`), or lettre's transport for implicit TLS.
#[derive(Clone)]
enum Transport {
    Own(std::sync::Arc<connections::Connections>),
    Lettre(AsyncSmtpTransport<Tokio1Executor>),
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer").field("relay", &self.config.relay).field("port", &self.config.port).finish()
    }
}

impl Mailer {
    /// The mailer of `config`; `None` when no relay is configured.
    pub fn new(config: &MailConfig) -> Result<Option<Mailer>, MailError> {
        if config.relay.trim().is_empty() {
            return Ok(None);
        }
        let relay = config.relay.trim();
        let timeout = Duration::from_millis(config.timeout_ms.max(100));
        let password = config.password().map_err(MailError::Config)?;
        let credentials = (!config.user.is_empty()).then(|| Credentials::new(config.user.clone(), password));
        let parameters =
            || TlsParameters::new(relay.to_owned()).map_err(|e| MailError::Config(format!("TLS for `{relay}`: {e}")));
        let transport = match config.tls {
            MailTls::None | MailTls::Starttls => {
                let starttls = if config.tls == MailTls::Starttls { Some(parameters()?) } else { None };
                Transport::Own(std::sync::Arc::new(connections::Connections::new(connections::Relay {
                    host: relay.to_owned(),
                    port: config.port,
                    starttls,
                    credentials,
                    timeout,
                    max_idle: config.connections.max(1) as usize,
                })))
            }
            MailTls::Tls => {
                let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(relay)
                    .port(config.port)
                    .tls(Tls::Wrapper(parameters()?))
                    .timeout(Some(timeout))
                    .pool_config(
                        PoolConfig::new().max_size(config.connections.max(1)).idle_timeout(Duration::from_secs(60)),
                    );
                if let Some(credentials) = credentials {
                    builder = builder.credentials(credentials);
                }
                Transport::Lettre(builder.build())
            }
        };
        Ok(Some(Mailer { config: config.clone(), transport }))
    }

    /// The settings.
    pub fn config(&self) -> &MailConfig {
        &self.config
    }

    /// Builds the message of `parts` (see [`message::build`]).
    pub fn build(
        &self,
        parts: &message::Parts,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<message::Built, MailError> {
        message::build(parts, &self.config.senders, now)
    }

    /// Sends a stored message to its envelope's recipient.
    pub async fn send(&self, sender: &str, recipient: &str, message: &str) -> Result<(), MailError> {
        let invalid = |what: &str, e: lettre::address::AddressError| MailError::Send {
            permanent: true,
            message: format!("the stored {what} is not an address: {e}"),
        };
        let envelope = lettre::address::Envelope::new(
            Some(sender.parse().map_err(|e| invalid("sender", e))?),
            vec![recipient.parse().map_err(|e| invalid("recipient", e))?],
        )
        .map_err(|e| MailError::Send { permanent: true, message: e.to_string() })?;
        match &self.transport {
            Transport::Own(connections) => connections.send(&envelope, message.as_bytes()).await,
            Transport::Lettre(transport) => match transport.send_raw(&envelope, message.as_bytes()).await {
                Ok(_) => Ok(()),
                Err(err) => Err(MailError::Send { permanent: err.is_permanent(), message: describe(&err) }),
            },
        }
    }
}

/// The relay's answer or the connection's failure, in one line.
fn describe(err: &lettre::transport::smtp::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text.replace(['\r', '\n'], " ")
}
