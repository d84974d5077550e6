//! The console's speed goals, measured as a browser meets them: the time of list and record
//! pages as seen by a client over loopback (an upper bound of the server's time), and the bytes
//! a first visit downloads gzipped (a page and every asset it references).
//!
//! Run through `bench/console.sh`, which seeds a database and starts `kith serve`; by hand:
//! `bench_console BASE_URL EMAIL PASSWORD [ROUNDS] [COOKIE_FILE]` (ROUNDS defaults to 200).
//! Signs in through `/login`, then times ROUNDS rounds of sequential GETs on one keep-alive
//! connection, the pages alternating inside each round. With COOKIE_FILE, writes the session's
//! `Cookie` header there (for Lighthouse).

// Benchmark code: a failed unwrap is a failed run, which is what it should be.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{self, HeaderValue};
use hyper_util::rt::TokioIo;

/// Requests before timing starts (warms SQLite's page cache and the document cache).
const WARM_UP: usize = 10;

/// One answer: status, `Set-Cookie` values, `Location`, and the body as sent (gzipped when
/// asked for).
struct Reply {
    status: u16,
    cookies: Vec<String>,
    location: String,
    body: Bytes,
}

impl Reply {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A keep-alive HTTP/1.1 connection with a cookie header.
struct Client {
    address: String,
    sender: SendRequest<Full<Bytes>>,
    cookie: String,
}

impl Client {
    async fn connect(address: &str) -> anyhow::Result<Client> {
        let sender = open(address).await?;
        Ok(Client { address: address.to_owned(), sender, cookie: String::new() })
    }

    async fn send(&mut self, method: &str, path: &str, gzip: bool, form: Option<String>) -> anyhow::Result<Reply> {
        if self.sender.ready().await.is_err() {
            self.sender = open(&self.address).await?;
        }
        let mut request = hyper::Request::builder().method(method).uri(path).header(header::HOST, &self.address);
        if gzip {
            request = request.header(header::ACCEPT_ENCODING, "gzip");
        }
        if !self.cookie.is_empty() {
            request = request.header(header::COOKIE, &self.cookie);
        }
        if form.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        }
        let request = request.body(Full::new(Bytes::from(form.unwrap_or_default())))?;
        let response = self.sender.send_request(request).await?;
        let status = response.status().as_u16();
        let text = |v: &HeaderValue| v.to_str().unwrap_or_default().to_owned();
        let cookies = response.headers().get_all(header::SET_COOKIE).iter().map(text).collect();
        let location = response.headers().get(header::LOCATION).map(text).unwrap_or_default();
        let body = response.into_body().collect().await?.to_bytes();
        Ok(Reply { status, cookies, location, body })
    }

    async fn get(&mut self, path: &str, gzip: bool) -> anyhow::Result<Reply> {
        self.send("GET", path, gzip, None).await
    }
}

async fn open(address: &str) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let stream = tokio::net::TcpStream::connect(address).await.with_context(|| format!("cannot reach {address}"))?;
    stream.set_nodelay(true)?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

/// `name=value` of the first `Set-Cookie` that sets `name`.
fn cookie_of(reply: &Reply, name: &str) -> Option<String> {
    reply
        .cookies
        .iter()
        .find_map(|c| c.split(';').next().filter(|pair| pair.starts_with(&format!("{name}="))))
        .map(str::to_owned)
}

/// The values of every `attribute="…"` in `html` that start with `prefix`.
fn attribute_values(html: &str, attribute: &str, prefix: &str) -> Vec<String> {
    let needle = format!("{attribute}=\"{prefix}");
    html.match_indices(&needle)
        .filter_map(|(at, _)| {
            let rest = &html[at + attribute.len() + 2..];
            rest.find('"').map(|end| rest[..end].replace("&amp;", "&"))
        })
        .collect()
}

/// The bytes a first visit to `path` downloads gzipped: the page, then every asset it
/// references (stylesheets, scripts, images, fonts: anything under `/assets/`).
async fn first_visit(client: &mut Client, path: &str) -> anyhow::Result<()> {
    let page = client.get(path, true).await?;
    anyhow::ensure!(page.status == 200, "GET {path}: {}", page.status);
    let plain = client.get(path, false).await?.text();
    let mut assets = attribute_values(&plain, "href", "/assets/");
    assets.extend(attribute_values(&plain, "src", "/assets/"));
    let mut total = page.body.len();
    let mut parts = vec![format!("page {}", page.body.len())];
    for asset in &assets {
        let reply = client.get(asset, true).await?;
        anyhow::ensure!(reply.status == 200, "GET {asset}: {}", reply.status);
        total += reply.body.len();
        let name = asset.trim_start_matches("/assets/").split('?').next().unwrap_or_default();
        parts.push(format!("{name} {}", reply.body.len()));
    }
    println!("first visit {path}: {total} bytes gzipped ({:.1} KB; {})", total as f64 / 1024.0, parts.join(", "));
    Ok(())
}

/// The `q`-quantile of sorted `times`, in milliseconds (nearest rank).
fn quantile(times: &[Duration], q: f64) -> f64 {
    let rank = ((q * times.len() as f64).ceil() as usize).clamp(1, times.len());
    times[rank - 1].as_secs_f64() * 1e3
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: bench_console BASE_URL EMAIL PASSWORD [ROUNDS] [COOKIE_FILE]";
    let base = args.next().context(usage)?;
    let email = args.next().context(usage)?;
    let password = args.next().context(usage)?;
    let rounds: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(200);
    let cookie_file = args.next();
    let address = base.trim_start_matches("http://").trim_end_matches('/').to_owned();
    let mut client = Client::connect(&address).await?;

    // Sign in as a browser does: the form's token in its cookie and in the form.
    first_visit(&mut client, "/login").await?;
    let login = client.get("/login", false).await?;
    client.cookie = cookie_of(&login, "kith_form").context("no form cookie")?;
    let csrf =
        attribute_values(&login.text(), "name=\"_csrf\" value", "").into_iter().next().context("no CSRF field")?;
    let form = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([("_csrf", csrf.as_str()), ("email", &email), ("password", &password), ("next", "/o/contacts")])
        .finish();
    let signed_in = client.send("POST", "/login", false, Some(form)).await?;
    anyhow::ensure!(signed_in.status == 303, "sign-in refused: {} {}", signed_in.status, signed_in.text());
    client.cookie = cookie_of(&signed_in, "kith_session").context("no session cookie")?;
    if let Some(path) = &cookie_file {
        std::fs::write(path, &client.cookie)?;
    }
    first_visit(&mut client, &signed_in.location).await?;

    // The record page of the first demo contact: it has deals, tickets, activities, a timeline.
    let demo = client.get("/o/contacts?f=source&op=eq&v=demo", false).await?.text();
    let record = attribute_values(&demo, "href", "/o/contacts/")
        .into_iter()
        .find(|href| href.len() == "/o/contacts/".len() + 36)
        .context("no demo contact: seed with `kith seed --demo`")?;

    // The second page's URL is the first's "Next" link.
    let sorted = client.get("/o/contacts?sort=lastName&dir=desc", false).await?.text();
    let next = attribute_values(&sorted, "href", "/o/contacts?")
        .into_iter()
        .rfind(|href| href.contains("after="))
        .context("no next page")?;
    let pages: Vec<(&str, String)> = vec![
        ("list", "/o/contacts".into()),
        (
            "list, addressCity is City7, sorted by lastName",
            "/o/contacts?f=addressCity&op=eq&v=City7&sort=lastName".into(),
        ),
        (
            "list, email starts with person4242, sorted by lastName",
            "/o/contacts?f=email&op=startsWith&v=person4242&sort=lastName".into(),
        ),
        (
            "list, email contains person4242, sorted by lastName",
            "/o/contacts?f=email&op=ilike&v=person4242&sort=lastName".into(),
        ),
        ("list, sorted by lastName descending", "/o/contacts?sort=lastName&dir=desc".into()),
        ("list, sorted by lastName descending, 2nd page", next),
        ("record (a demo contact: deals, tickets, timeline)", record),
    ];

    for (_, path) in &pages {
        let reply = client.get(path, true).await?;
        anyhow::ensure!(reply.status == 200, "GET {path}: {}", reply.status);
        for _ in 1..WARM_UP {
            client.get(path, true).await?;
        }
    }
    let mut times: Vec<Vec<Duration>> = vec![Vec::with_capacity(rounds); pages.len()];
    for _ in 0..rounds {
        for ((_, path), times) in pages.iter().zip(&mut times) {
            let started = Instant::now();
            let reply = client.get(path, true).await?;
            times.push(started.elapsed());
            anyhow::ensure!(reply.status == 200, "GET {path}: {}", reply.status);
        }
    }
    println!("{rounds} sequential GETs per page (gzip, one keep-alive connection), ms:");
    println!("| page | p50 | p90 | p99 | max |");
    println!("|---|---|---|---|---|");
    for ((name, _), times) in pages.iter().zip(&mut times) {
        times.sort();
        println!(
            "| {name} | {:.1} | {:.1} | {:.1} | {:.1} |",
            quantile(times, 0.5),
            quantile(times, 0.9),
            quantile(times, 0.99),
            quantile(times, 1.0)
        );
    }
    Ok(())
}
