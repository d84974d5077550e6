//! A real headless Chromium driven over the DevTools protocol, for the console's end-to-end
//! tests: launch (Debian's `chromium`, or the one `CHROMIUM` names), navigate, evaluate, type,
//! press keys, click and drag with real input events, choose files for a file control, emulate
//! a phone's screen, wait for a condition, take a screenshot, run axe-core.
//! Without a Chromium, `launch` answers `None` and the caller reports the test as skipped.

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

/// The Chromium to use: `CHROMIUM` if set, else the first of the usual names on `PATH`.
pub fn chromium_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    let paths = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&paths) {
        for name in ["chromium", "chromium-browser", "google-chrome", "chrome"] {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    None
}

/// One headless browser with one page.
pub struct Chromium {
    child: tokio::process::Child,
    socket: Socket,
    next_id: u64,
    profile: PathBuf,
    /// The one event `call` keeps while waiting for its answer, and what it kept.
    watched: Option<&'static str>,
    caught: Vec<Value>,
}

/// An error while driving the page, with what was being done.
#[derive(Debug)]
pub struct BrowserError(pub String);

impl std::fmt::Display for BrowserError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BrowserError {}

fn fail(what: impl std::fmt::Display) -> BrowserError {
    BrowserError(what.to_string())
}

/// How long one step may take before the test says so (a backstop, not a timing check).
const STEP: Duration = Duration::from_secs(20);

impl Chromium {
    /// Starts a headless Chromium with a fresh profile; `None` when there is none to start.
    pub async fn launch() -> Result<Option<Chromium>, BrowserError> {
        let Some(binary) = chromium_path() else { return Ok(None) };
        let profile = crate::temp_dir();
        let mut child = tokio::process::Command::new(&binary)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--window-size=1280,900",
                "--remote-debugging-port=0",
                "--remote-debugging-address=127.0.0.1",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| fail(format!("starting {}: {e}", binary.display())))?;
        let stderr = child.stderr.take().ok_or_else(|| fail("no stderr"))?;
        let mut lines = BufReader::new(stderr).lines();
        let port = tokio::time::timeout(STEP, async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(rest) = line.split("ws://127.0.0.1:").nth(1) {
                    return rest.split('/').next().and_then(|p| p.parse::<u16>().ok());
                }
            }
            None
        })
        .await
        .map_err(|_| fail("Chromium did not say where DevTools listen"))?
        .ok_or_else(|| fail("Chromium exited before DevTools listened"))?;
        // Keep reading its stderr so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let targets = http_get(port, "/json/list").await?;
        let url = targets
            .as_array()
            .and_then(|list| list.iter().find(|t| t["type"] == "page"))
            .and_then(|t| t["webSocketDebuggerUrl"].as_str())
            .ok_or_else(|| fail(format!("no page among {targets}")))?
            .to_owned();
        let (socket, _) = tokio::time::timeout(STEP, tokio_tungstenite::connect_async(url))
            .await
            .map_err(|_| fail("DevTools: no WebSocket"))?
            .map_err(|e| fail(format!("DevTools: {e}")))?;
        let mut browser = Chromium { child, socket, next_id: 0, profile, watched: None, caught: Vec::new() };
        browser.call("Page.enable", json!({})).await?;
        browser.call("Runtime.enable", json!({})).await?;
        Ok(Some(browser))
    }

    /// Sends a DevTools command and waits for its answer (events in between are skipped, but
    /// for the watched one, which is kept for [`Chromium::event`]).
    pub async fn call(&mut self, method: &str, params: Value) -> Result<Value, BrowserError> {
        self.next_id += 1;
        let id = self.next_id;
        let message = json!({"id": id, "method": method, "params": params}).to_string();
        self.socket.send(Message::Text(message.into())).await.map_err(|e| fail(format!("{method}: {e}")))?;
        tokio::time::timeout(STEP, async {
            while let Some(message) = self.socket.next().await {
                let Ok(Message::Text(text)) = message else { continue };
                let Ok(value) = serde_json::from_str::<Value>(&text) else { continue };
                if self.watched.is_some_and(|watched| value["method"] == watched) {
                    self.caught.push(value["params"].clone());
                } else if value["id"] == id {
                    if let Some(error) = value.get("error") {
                        return Err(fail(format!("{method}: {error}")));
                    }
                    return Ok(value["result"].clone());
                }
            }
            Err(fail(format!("{method}: the DevTools connection closed")))
        })
        .await
        .map_err(|_| fail(format!("{method}: no answer")))?
    }

    /// Waits for the watched event (see `call`) and returns its parameters.
    async fn event(&mut self) -> Result<Value, BrowserError> {
        let Some(watched) = self.watched else { return Err(fail("no event is watched")) };
        if !self.caught.is_empty() {
            return Ok(self.caught.remove(0));
        }
        tokio::time::timeout(STEP, async {
            while let Some(message) = self.socket.next().await {
                let Ok(Message::Text(text)) = message else { continue };
                let Ok(value) = serde_json::from_str::<Value>(&text) else { continue };
                if value["method"] == watched {
                    return Ok(value["params"].clone());
                }
            }
            Err(fail(format!("{watched}: the DevTools connection closed")))
        })
        .await
        .map_err(|_| fail(format!("waited in vain for {watched}")))?
    }

    /// Evaluates `expression` in the page (awaiting a promise) and returns its value.
    pub async fn eval(&mut self, expression: &str) -> Result<Value, BrowserError> {
        let result = self
            .call("Runtime.evaluate", json!({"expression": expression, "returnByValue": true, "awaitPromise": true}))
            .await?;
        if let Some(exception) = result.get("exceptionDetails") {
            return Err(fail(format!("`{expression}` threw {exception}")));
        }
        Ok(result["result"]["value"].clone())
    }

    /// Waits until `condition` (a JavaScript expression) is true, through navigations.
    pub async fn wait_for(&mut self, condition: &str) -> Result<(), BrowserError> {
        let deadline = tokio::time::Instant::now() + STEP;
        loop {
            if let Ok(Value::Bool(true)) =
                self.eval(&format!("document.readyState === 'complete' && !!({condition})")).await
            {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                let url = self.eval("location.href").await.unwrap_or_default();
                return Err(fail(format!("waited in vain for `{condition}` at {url}")));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Opens `url` and waits for it to load.
    pub async fn goto(&mut self, url: &str) -> Result<(), BrowserError> {
        self.call("Page.navigate", json!({"url": url})).await?;
        self.wait_for(&format!("location.href.startsWith({})", json!(url))).await
    }

    /// The centre of the element `selector`, scrolled into view.
    async fn centre(&mut self, selector: &str) -> Result<(f64, f64), BrowserError> {
        self.position(selector, true).await
    }

    /// The centre of the element `selector` in the viewport, scrolled into view first or not.
    async fn position(&mut self, selector: &str, scroll: bool) -> Result<(f64, f64), BrowserError> {
        let js = format!(
            "(() => {{ const e = document.querySelector({s}); if (!e) return null; if ({scroll}) e.scrollIntoView({{block: 'center'}}); \
             const r = e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; }})()",
            s = json!(selector)
        );
        let at = self.eval(&js).await?;
        match (at[0].as_f64(), at[1].as_f64()) {
            (Some(x), Some(y)) => Ok((x, y)),
            _ => Err(fail(format!("no element `{selector}`"))),
        }
    }

    /// One mouse event with the left button, `held` down during it or not.
    async fn mouse(&mut self, kind: &str, (x, y): (f64, f64), held: bool) -> Result<(), BrowserError> {
        self.call(
            "Input.dispatchMouseEvent",
            json!({"type": kind, "x": x, "y": y, "button": "left", "buttons": u8::from(held), "clickCount": 1}),
        )
        .await
        .map(drop)
    }

    /// Clicks the element `selector` with real mouse events.
    pub async fn click(&mut self, selector: &str) -> Result<(), BrowserError> {
        let at = self.centre(selector).await?;
        self.mouse("mousePressed", at, true).await?;
        self.mouse("mouseReleased", at, false).await
    }

    /// Drags the element `from` onto the element `to` with the mouse, as a person does: press,
    /// move, release. Chromium hands the drag it starts to DevTools (`setInterceptDrags`), which
    /// then drops it with the data the page's `dragstart` gave it, so the page's own handlers
    /// run as for a real drag.
    pub async fn drag(&mut self, from: &str, to: &str) -> Result<(), BrowserError> {
        let start = self.centre(from).await?;
        let end = self.position(to, false).await?;
        self.call("Input.setInterceptDrags", json!({"enabled": true})).await?;
        self.watched = Some("Input.dragIntercepted");
        self.caught.clear();
        let dropped = async {
            self.mouse("mouseMoved", start, false).await?;
            self.mouse("mousePressed", start, true).await?;
            // A few steps, as a hand moves: Chromium starts a drag past a small distance.
            for step in 1..=5 {
                let f = f64::from(step) / 5.0;
                self.mouse("mouseMoved", (start.0 + (end.0 - start.0) * f, start.1 + (end.1 - start.1) * f), true)
                    .await?;
            }
            let data = self.event().await?["data"].clone();
            for kind in ["dragEnter", "dragOver", "drop"] {
                self.call("Input.dispatchDragEvent", json!({"type": kind, "x": end.0, "y": end.1, "data": data}))
                    .await?;
            }
            self.mouse("mouseReleased", end, false).await
        }
        .await;
        self.watched = None;
        self.caught.clear();
        self.call("Input.setInterceptDrags", json!({"enabled": false})).await?;
        dropped
    }

    /// Chooses the option labelled `label` in the list `selector`, as picking it does (the
    /// `input` and `change` events fire).
    pub async fn select(&mut self, selector: &str, label: &str) -> Result<(), BrowserError> {
        let js = format!(
            "(() => {{ const s = document.querySelector({s}); if (!s) return 'no list'; \
             const o = [...s.options].find(o => o.textContent.trim() === {l}); if (!o) return 'no option'; \
             s.focus(); s.value = o.value; s.dispatchEvent(new Event('input', {{bubbles: true}})); \
             s.dispatchEvent(new Event('change', {{bubbles: true}})); return 'ok'; }})()",
            s = json!(selector),
            l = json!(label)
        );
        match self.eval(&js).await?.as_str() {
            Some("ok") => Ok(()),
            other => Err(fail(format!("choosing `{label}` in `{selector}`: {}", other.unwrap_or("?")))),
        }
    }

    /// Sets the files of the file control `selector`, as choosing them in the file dialog does.
    pub async fn set_files(&mut self, selector: &str, files: &[&Path]) -> Result<(), BrowserError> {
        let found = self
            .call("Runtime.evaluate", json!({"expression": format!("document.querySelector({})", json!(selector))}))
            .await?;
        let object = found["result"]["objectId"].as_str().ok_or_else(|| fail(format!("no element `{selector}`")))?;
        let files: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
        self.call("DOM.setFileInputFiles", json!({"files": files, "objectId": object})).await.map(drop)
    }

    /// Makes the page a phone's screen of `width` × `height` CSS pixels (touch, mobile
    /// viewport), or the desktop window again with `None`.
    pub async fn emulate_phone(&mut self, size: Option<(u32, u32)>) -> Result<(), BrowserError> {
        match size {
            Some((width, height)) => {
                self.call(
                    "Emulation.setDeviceMetricsOverride",
                    json!({"width": width, "height": height, "deviceScaleFactor": 2, "mobile": true}),
                )
                .await?;
            }
            None => {
                self.call("Emulation.clearDeviceMetricsOverride", json!({})).await?;
            }
        }
        Ok(())
    }

    /// Reads pages as someone in `time_zone` whose browser speaks `locale` (`None`: as started).
    pub async fn emulate_locale(&mut self, locale: Option<(&str, &str)>) -> Result<(), BrowserError> {
        let (locale, time_zone) = locale.unwrap_or(("", ""));
        self.call("Emulation.setLocaleOverride", json!({"locale": locale})).await?;
        self.call("Emulation.setTimezoneOverride", json!({"timezoneId": time_zone})).await?;
        Ok(())
    }

    /// Focuses `selector` by clicking it, clears it, and types `text` as key input.
    pub async fn type_into(&mut self, selector: &str, text: &str) -> Result<(), BrowserError> {
        self.click(selector).await?;
        self.eval(&format!(
            "document.querySelector({}).select && document.querySelector({0}).select()",
            json!(selector)
        ))
        .await?;
        self.call("Input.insertText", json!({"text": text})).await?;
        Ok(())
    }

    /// Presses a key: a character (`/`), or `Enter`, `Tab`, `Escape`, `ArrowDown`, `ArrowUp`.
    pub async fn press(&mut self, key: &str) -> Result<(), BrowserError> {
        let (code, text) = match key {
            "Enter" => (13, "\r"),
            "Tab" => (9, ""),
            "Escape" => (27, ""),
            "ArrowUp" => (38, ""),
            "ArrowDown" => (40, ""),
            _ if key.chars().count() == 1 => (0, key),
            _ => return Err(fail(format!("no such key: {key}"))),
        };
        // A key without text is a "raw" key-down, as Chromium's own input sends it.
        let down = if text.is_empty() { "rawKeyDown" } else { "keyDown" };
        for (kind, text) in [(down, text), ("keyUp", "")] {
            self.call(
                "Input.dispatchKeyEvent",
                json!({"type": kind, "key": key, "windowsVirtualKeyCode": code, "text": text}),
            )
            .await?;
        }
        Ok(())
    }

    /// Saves a PNG of the page at `path`.
    pub async fn screenshot(&mut self, path: &Path) -> Result<(), BrowserError> {
        use base64::Engine as _;
        let shot = self.call("Page.captureScreenshot", json!({"format": "png", "captureBeyondViewport": true})).await?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap_or_default())
            .map_err(|e| fail(format!("screenshot: {e}")))?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| fail(format!("{}: {e}", dir.display())))?;
        }
        std::fs::write(path, bytes).map_err(|e| fail(format!("{}: {e}", path.display())))
    }

    /// The serious and critical accessibility violations axe-core finds on the page.
    pub async fn axe(&mut self) -> Result<Vec<String>, BrowserError> {
        if self.eval("typeof axe").await? != "object" {
            // Injected over DevTools, so the page's Content-Security-Policy does not apply.
            self.eval(include_str!("vendor/axe-4.10.3.min.js")).await?;
        }
        let result = self.eval("axe.run(document, {resultTypes: ['violations']}).then(r => r.violations)").await?;
        Ok(result
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
            .map(|v| {
                let nodes: Vec<String> = v["nodes"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .iter()
                    .map(|n| n["html"].to_string())
                    .take(3)
                    .collect();
                format!("{} ({}): {}", v["id"], v["impact"], nodes.join(", "))
            })
            .collect())
    }

    /// Closes the browser and removes its profile.
    pub async fn close(mut self) {
        let _ = self.call("Browser.close", json!({})).await;
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
        let _ = self.child.kill().await;
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// `GET path` on the DevTools HTTP endpoint, as JSON (it keeps the connection open, so the
/// body is read by its `Content-Length`).
async fn http_get(port: u16, path: &str) -> Result<Value, BrowserError> {
    tokio::time::timeout(STEP, async {
        let stream = TcpStream::connect(("127.0.0.1", port)).await.map_err(|e| fail(format!("DevTools HTTP: {e}")))?;
        let mut reader = BufReader::new(stream);
        let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
        reader.get_mut().write_all(request.as_bytes()).await.map_err(|e| fail(e.to_string()))?;
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).await.map_err(|e| fail(e.to_string()))? == 0 {
                break;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0u8; length];
        reader.read_exact(&mut body).await.map_err(|e| fail(e.to_string()))?;
        serde_json::from_slice(&body)
            .map_err(|e| fail(format!("DevTools HTTP {path}: {e}: {}", String::from_utf8_lossy(&body))))
    })
    .await
    .map_err(|_| fail(format!("DevTools HTTP {path}: no answer")))?
}
