//! The HTTP server over real loopback sockets: health, readiness, request ids, body cap.

use std::time::Duration;

use kith_core::config::{ApiConfig, ServerConfig};
use kith_core::http::{AppState, app, serve};
use kith_tests::TestDb;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn request(addr: std::net::SocketAddr, raw: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(raw.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    stream.read_to_end(&mut out).await.unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn health_readiness_request_ids_and_graceful_shutdown() {
    let db = TestDb::sqlite().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let router = app(
        AppState::new(db.kith.clone(), &ApiConfig::default()).unwrap(),
        &ServerConfig { max_body_bytes: 1024, ..ServerConfig::default() },
    );
    let server = tokio::spawn(serve(
        listener,
        router,
        async move {
            let _ = stop_rx.await;
        },
        Duration::from_secs(5),
    ));

    let health = request(addr, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(health.to_ascii_lowercase().contains("x-request-id:"), "a request id is assigned: {health}");
    let ready =
        request(addr, "GET /readyz HTTP/1.1\r\nHost: x\r\nx-request-id: abc-123\r\nConnection: close\r\n\r\n").await;
    assert!(ready.starts_with("HTTP/1.1 200") && ready.contains("ready"), "{ready}");
    assert!(ready.contains("abc-123"), "a given request id is echoed: {ready}");
    let missing = request(addr, "GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");

    stop_tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server).await.expect("stops promptly").unwrap().unwrap();
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "no longer listening");

    // Readiness reports a database that went away.
    let router = app(AppState::new(db.kith.clone(), &ApiConfig::default()).unwrap(), &ServerConfig::default());
    db.kith.store.clone().close().await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(
        listener,
        router,
        async move {
            let _ = stop_rx.await;
        },
        Duration::from_secs(5),
    ));
    let ready = request(addr, "GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
    assert!(ready.starts_with("HTTP/1.1 503"), "{ready}");
    stop_tx.send(()).unwrap();
    server.await.unwrap().unwrap();
    db.cleanup().await;
}
