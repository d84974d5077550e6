//! Helpers shared by the test modules: raw HTTP exchanges over loopback.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What a raw HTTP exchange answered.
#[derive(Debug)]
pub(crate) struct Reply {
    /// The status code.
    pub(crate) status: u16,
    /// The header lines, lower case.
    pub(crate) head: String,
    /// The body.
    pub(crate) body: String,
}

impl Reply {
    /// The body as JSON.
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    /// The first error's `extensions.code` (`none` without one).
    pub(crate) fn code(&self) -> String {
        self.json()["errors"][0]["extensions"]["code"].as_str().unwrap_or("none").to_owned()
    }

    /// Whether the answer is a stored one replayed for an `Idempotency-Key`.
    pub(crate) fn replayed(&self) -> bool {
        self.head.contains("\r\nidempotent-replayed: true")
    }
}

/// Sends one request (`Connection: close`) with the bearer `token`, the `extra` header bytes as
/// they are (each line ending in `\r\n`) and `body`, and reads the whole answer.
pub(crate) async fn exchange(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    extra: &[u8],
    body: &str,
) -> Reply {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    let mut request =
        format!("{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{auth}").into_bytes();
    request.extend_from_slice(extra);
    request.extend_from_slice(format!("Content-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).as_bytes());
    stream.write_all(&request).await.unwrap();
    let mut out = Vec::new();
    // The test's own backstop, far above every limit under test.
    tokio::time::timeout(Duration::from_secs(60), stream.read_to_end(&mut out))
        .await
        .expect("an answer within a minute")
        .unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").map(|(h, b)| (h.to_owned(), b.to_owned())).unwrap_or_default();
    Reply { status, head: head.to_ascii_lowercase(), body }
}
