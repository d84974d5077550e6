//! The SMTP connections Kith keeps to a plain or STARTTLS relay, with Nagle's algorithm off.
//!
//! lettre's pooled transport (0.11.23) connects without `TCP_NODELAY` and writes a message's
//! body and its closing `.` as two writes: Nagle's algorithm holds the second until the relay
//! acknowledges the first, and the relay delays that ACK (40 ms on Linux) because it is
//! waiting for the rest. Every message then waits 40 ms on each connection, whatever the relay's
//! speed: 8 connections could not send 200 messages a second. Kith therefore opens the TCP
//! connection itself, with `TCP_NODELAY`, and hands it to lettre's SMTP client
//! (`AsyncSmtpConnection`) for the protocol: EHLO, STARTTLS, AUTH, and each message. Relays
//! reached over implicit TLS (`tls = "tls"`) keep lettre's own transport.
//!
//! Connections are reused while they last: one is taken per message and put back after a
//! message the relay accepted; one the relay or the network broke is dropped. An idle
//! connection older than [`IDLE`] is closed rather than reused, and a reused connection that
//! turns out dead (the relay closed it meanwhile) is replaced once, at once, so a stale
//! connection never costs a message a retry.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::ClientId;

use super::MailError;

/// How long a connection may sit idle and still be reused.
const IDLE: Duration = Duration::from_secs(30);

/// Where and how to connect.
pub(crate) struct Relay {
    pub(crate) host: String,
    pub(crate) port: u16,
    /// STARTTLS, required, with these parameters; `None` for a plain connection.
    pub(crate) starttls: Option<TlsParameters>,
    pub(crate) credentials: Option<Credentials>,
    pub(crate) timeout: Duration,
    /// Most connections kept open.
    pub(crate) max_idle: usize,
}

/// Why a send failed: the relay's answer or lettre's client, or the network.
enum Failure {
    Smtp(lettre::transport::smtp::Error),
    Network(String),
}

impl Failure {
    /// Whether the relay answered (its answer is the message's outcome).
    fn answered(&self) -> bool {
        matches!(self, Failure::Smtp(err) if err.is_response())
    }

    fn into_mail_error(self) -> MailError {
        match self {
            Failure::Smtp(err) => MailError::Send { permanent: err.is_permanent(), message: super::describe(&err) },
            Failure::Network(message) => MailError::Send { permanent: false, message },
        }
    }
}

impl From<lettre::transport::smtp::Error> for Failure {
    fn from(err: lettre::transport::smtp::Error) -> Failure {
        Failure::Smtp(err)
    }
}

/// The relay and its idle connections.
pub(crate) struct Connections {
    relay: Relay,
    hello: ClientId,
    idle: Mutex<Vec<(AsyncSmtpConnection, Instant)>>,
}

impl Connections {
    pub(crate) fn new(relay: Relay) -> Connections {
        Connections { relay, hello: ClientId::default(), idle: Mutex::new(Vec::new()) }
    }

    /// Sends `message` to `envelope`'s recipients over an idle connection or a new one.
    pub(crate) async fn send(&self, envelope: &Envelope, message: &[u8]) -> Result<(), MailError> {
        if let Some(mut connection) = self.take_idle() {
            match self.send_on(&mut connection, envelope, message).await {
                Ok(()) => {
                    self.put_back(connection);
                    return Ok(());
                }
                // The relay answered: that is the message's outcome.
                Err(failure) if failure.answered() => return Err(failure.into_mail_error()),
                // The connection had died while idle: once more on a new one.
                Err(_) => {}
            }
        }
        let mut connection = self.connect().await.map_err(Failure::into_mail_error)?;
        self.send_on(&mut connection, envelope, message).await.map_err(Failure::into_mail_error)?;
        self.put_back(connection);
        Ok(())
    }

    async fn send_on(
        &self,
        connection: &mut AsyncSmtpConnection,
        envelope: &Envelope,
        message: &[u8],
    ) -> Result<(), Failure> {
        match tokio::time::timeout(self.relay.timeout, connection.send(envelope, message)).await {
            Ok(result) => result.map(drop).map_err(Failure::from),
            Err(_) => {
                connection.abort().await;
                Err(timed_out())
            }
        }
    }

    /// A new connection: TCP with `TCP_NODELAY`, EHLO, STARTTLS when required, AUTH when the
    /// configuration has credentials; all within the timeout.
    async fn connect(&self) -> Result<AsyncSmtpConnection, Failure> {
        let relay = &self.relay;
        let network = |e: std::io::Error| Failure::Network(format!("connecting to {}:{}: {e}", relay.host, relay.port));
        let open = async {
            let stream = tokio::net::TcpStream::connect((relay.host.as_str(), relay.port)).await.map_err(network)?;
            stream.set_nodelay(true).map_err(network)?;
            let mut connection = AsyncSmtpConnection::connect_with_transport(Box::new(stream), &self.hello).await?;
            if let Some(tls) = &relay.starttls {
                connection.starttls(tls.clone(), &self.hello).await?;
            }
            if let Some(credentials) = &relay.credentials {
                connection.auth(&[Mechanism::Plain, Mechanism::Login], credentials).await?;
            }
            Ok::<_, Failure>(connection)
        };
        match tokio::time::timeout(relay.timeout, open).await {
            Ok(connection) => connection,
            Err(_) => Err(timed_out()),
        }
    }

    fn take_idle(&self) -> Option<AsyncSmtpConnection> {
        let mut idle = self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // Too old to trust: closed by dropping (the relay times idle sessions out).
        idle.retain(|(_, since)| since.elapsed() < IDLE);
        idle.pop().map(|(connection, _)| connection)
    }

    fn put_back(&self, connection: AsyncSmtpConnection) {
        if connection.has_broken() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if idle.len() < self.relay.max_idle {
            idle.push((connection, Instant::now()));
        }
    }
}

fn timed_out() -> Failure {
    Failure::Network("the relay did not answer in time".into())
}
