//! A plugin's stdout and stderr: kept in memory up to a cap per call and logged after it.
//! Writes past the cap are dropped and counted, never refused: a plugin that prints a lot
//! must not fail because of it (Rust's `println!` panics when a write fails).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// The captured output of one instance.
#[derive(Debug, Clone)]
pub struct CappedOutput {
    capacity: usize,
    buffer: Arc<Mutex<Vec<u8>>>,
    dropped: Arc<AtomicU64>,
}

impl CappedOutput {
    /// Output that keeps at most `capacity` bytes until taken.
    pub fn new(capacity: usize) -> CappedOutput {
        CappedOutput { capacity, buffer: Arc::default(), dropped: Arc::default() }
    }

    fn keep(&self, bytes: &[u8]) {
        let mut buffer = self.buffer.lock().unwrap_or_else(PoisonError::into_inner);
        let room = self.capacity.saturating_sub(buffer.len());
        let kept = bytes.len().min(room);
        buffer.extend_from_slice(&bytes[..kept]);
        if kept < bytes.len() {
            self.dropped.fetch_add((bytes.len() - kept) as u64, Ordering::Relaxed);
        }
    }

    /// What was written since the last take, and how many bytes were dropped.
    pub fn take(&self) -> (Vec<u8>, u64) {
        let bytes = std::mem::take(&mut *self.buffer.lock().unwrap_or_else(PoisonError::into_inner));
        (bytes, self.dropped.swap(0, Ordering::Relaxed))
    }
}

/// Longest message of a plugin's that reaches a caller (an error, a refusal reason); the rest
/// is cut, with `…`.
pub const MAX_CALLER_MESSAGE: usize = 1_000;

/// `text` with control characters (newlines, carriage returns, terminal escapes) written as
/// escapes, so a plugin's text stays on its one log line and cannot forge another.
pub fn escape_controls(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// A plugin's message as a caller may see it: at most [`MAX_CALLER_MESSAGE`] bytes (cut at a
/// character boundary, marked with `…`).
pub fn for_caller(message: &str) -> String {
    if message.len() <= MAX_CALLER_MESSAGE {
        return message.to_owned();
    }
    let mut cut = MAX_CALLER_MESSAGE;
    while !message.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &message[..cut])
}

impl IsTerminal for CappedOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CappedOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[async_trait::async_trait]
impl Pollable for CappedOutput {
    async fn ready(&mut self) {}
}

impl OutputStream for CappedOutput {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        self.keep(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        // Always ready for more: what does not fit is dropped.
        Ok(64 << 10)
    }
}

impl tokio::io::AsyncWrite for CappedOutput {
    fn poll_write(self: std::pin::Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        self.keep(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: std::pin::Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: std::pin::Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_past_the_cap_are_dropped_and_counted() {
        let mut out = CappedOutput::new(8);
        out.write(bytes::Bytes::from_static(b"hello ")).unwrap();
        out.write(bytes::Bytes::from_static(b"world")).unwrap();
        assert_eq!(out.take(), (b"hello wo".to_vec(), 3));
        out.write(bytes::Bytes::from_static(b"again")).unwrap();
        assert_eq!(out.take(), (b"again".to_vec(), 0), "the cap is per take");
    }

    #[test]
    fn a_plugins_text_cannot_start_a_log_line_of_its_own() {
        let forged = "done\n2026-12-05T00:00:00Z  INFO kith: admin logged in\r\x1b[2Kcleared";
        let escaped = escape_controls(forged);
        assert!(!escaped.chars().any(char::is_control), "{escaped}");
        assert_eq!(escaped, "done\\n2026-12-05T00:00:00Z  INFO kith: admin logged in\\r\\u{1b}[2Kcleared");
        assert_eq!(escape_controls("plain, ünïcode"), "plain, ünïcode");
    }

    #[test]
    fn messages_for_callers_are_cut_at_a_character_boundary() {
        assert_eq!(for_caller("short"), "short");
        let long = "é".repeat(MAX_CALLER_MESSAGE);
        let cut = for_caller(&long);
        assert!(cut.len() <= MAX_CALLER_MESSAGE + '…'.len_utf8() && cut.ends_with('…'), "{}", cut.len());
    }
}
