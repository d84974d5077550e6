//! A plugin that misbehaves on purpose, as its `mode` and `hook` settings say, so the tests can
//! check that Kith survives it. With `mode = "record"` it behaves: it counts each event it
//! receives in its key–value store (`seen:<event id>`) and remembers the order (`order`).

use std::hint::black_box;

use kith_plugin_sdk::aggregate::{self, Aggregate, Bucket};
use kith_plugin_sdk::{
    Call, Change, Error, ErrorCode, Event, Plugin, Query, Result, Verdict, http, kv, links, log, mail, records, routes,
    settings,
};
use serde_json::{Value as Json, json};

#[derive(Default)]
pub struct Hostile;

fn spin_forever() -> u64 {
    let mut n: u64 = 0;
    loop {
        n = black_box(n.wrapping_add(1));
        if black_box(n) == u64::MAX {
            return n;
        }
    }
}

fn recurse(depth: u64) -> u64 {
    let pad = black_box([depth; 64]);
    if black_box(depth) == u64::MAX { pad[0] } else { recurse(depth + 1).wrapping_add(pad[1]) }
}

fn record(event: &Event) -> Result<()> {
    let key = format!("seen:{}", event.id);
    let seen = kv::get_json::<u64>(&key)?.unwrap_or(0);
    kv::set_json(&key, &(seen + 1))?;
    let mut order = kv::get_json::<Vec<i64>>("order")?.unwrap_or_default();
    order.push(event.seq);
    kv::set_json("order", &order)
}

/// What the benchmark's native baseline does too: read the record and check a field.
pub fn inspect(event: &Event) -> Result<()> {
    let fields = event.record().as_object().map_or(0, |r| r.len());
    match event.record_str("email") {
        Some(email) if !email.contains('@') => Err(Error::msg(format!("bad e-mail in a record of {fields} fields"))),
        _ => Ok(()),
    }
}

/// The `conform` query: one read through the SDK, answered as plain JSON, so that a test can run
/// the same request through the SDK's `TestHost` and through Kith and compare (see
/// tests/it/conformance.rs). `{"object", "query": {"filter", "orderBy", "first"}}` answers the
/// `name` of each record of every page, following the cursors; `{"object", "aggregate":
/// {"filter", "groupBy": [[field, bucket or null]], "metrics": [[metric, field or null]],
/// "limit", "order": [metric, descending]}}` answers the rows. A refused request answers
/// `{"error": "<ErrorCode>"}`.
pub fn conform(request: &Json) -> Result<Json> {
    let object = request["object"].as_str().unwrap_or_default();
    let answer = if let Some(spec) = request.get("query") {
        conform_query(object, spec)
    } else if let Some(spec) = request.get("aggregate") {
        conform_aggregate(object, spec)
    } else {
        return Err(Error::invalid("request", "needs `query` or `aggregate`"));
    };
    Ok(answer.unwrap_or_else(|err| json!({"error": format!("{:?}", err.code)})))
}

fn conform_query(object: &str, spec: &Json) -> Result<Json> {
    let mut query = Query::new().first(spec["first"].as_u64().unwrap_or(50) as u32);
    if !spec["filter"].is_null() {
        query = query.filter(spec["filter"].clone());
    }
    if !spec["orderBy"].is_null() {
        query = query.order_by(spec["orderBy"].clone());
    }
    let mut pages = Vec::new();
    loop {
        let page = records::query(object, &query)?;
        pages.push(page.records.iter().map(|r| json!(r.str("name"))).collect::<Vec<_>>());
        match page.next_cursor {
            Some(cursor) if pages.len() < 20 => query = query.after(&cursor),
            _ => break,
        }
    }
    Ok(json!({"pages": pages}))
}

fn conform_aggregate(object: &str, spec: &Json) -> Result<Json> {
    let text = |value: &Json| value.as_str().unwrap_or_default().to_owned();
    let mut query = Aggregate::new();
    if !spec["filter"].is_null() {
        query = query.filter(spec["filter"].clone());
    }
    for key in spec["groupBy"].as_array().into_iter().flatten() {
        let field = text(&key[0]);
        query = match key[1].as_str() {
            None => query.group_by(&field),
            Some("Day") => query.group_by_bucket(&field, Bucket::Day),
            Some("Week") => query.group_by_bucket(&field, Bucket::Week),
            Some("Month") => query.group_by_bucket(&field, Bucket::Month),
            Some("Year") => query.group_by_bucket(&field, Bucket::Year),
            Some(other) => return Err(Error::invalid("groupBy", format!("no bucket `{other}`"))),
        };
    }
    for metric in spec["metrics"].as_array().into_iter().flatten() {
        let field = text(&metric[1]);
        query = match metric[0].as_str().unwrap_or_default() {
            "Count" => query.count(),
            "Sum" => query.sum(&field),
            "Min" => query.min(&field),
            "Max" => query.max(&field),
            "CountDistinct" => query.count_distinct(&field),
            other => return Err(Error::invalid("metrics", format!("no metric `{other}`"))),
        };
    }
    if let Some(limit) = spec["limit"].as_u64() {
        query = query.limit(limit as u32);
    }
    if let Some(order) = spec["order"].as_array() {
        query = query.order_by_metric(order[0].as_u64().unwrap_or(0) as u32, order[1].as_bool().unwrap_or(false));
    }
    let rows = aggregate::run(object, &query)?;
    Ok(json!(rows.iter().map(|row| json!({"keys": row.keys, "values": row.values})).collect::<Vec<_>>()))
}

/// The `bulk` mutation (SDK 1.4): `{"create": {"object", "items"}}`, `{"update": {"object",
/// "updates": [{"id", "fields", "expectedVersion"}]}}` or `{"mail": [{"to", "subject"}]}`,
/// answered per item as `{"id", "version"}` (a message: `{"id"}`) or `{"error": "<ErrorCode>",
/// "message"}`; a refused call as `{"error", "message"}`. With `"thenFail": true` it fails after
/// the writes (which must then all be undone).
fn bulk(request: &Json) -> Result<Json> {
    let item = |r: Result<Json>| r.unwrap_or_else(|e| json!({"error": format!("{:?}", e.code), "message": e.message}));
    let answer = if let Some(spec) = request.get("create") {
        let items = spec["items"].as_array().cloned().unwrap_or_default();
        records::create_many(spec["object"].as_str().unwrap_or_default(), &items).map(|results| {
            results.into_iter().map(|r| item(r.map(|rec| json!({"id": rec.id, "version": rec.version})))).collect()
        })
    } else if let Some(spec) = request.get("update") {
        let updates: Vec<records::Update> = spec["updates"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|u| {
                let update = records::Update::new(u["id"].as_str().unwrap_or_default(), u["fields"].clone());
                match u["expectedVersion"].as_u64() {
                    Some(version) => update.expected_version(version),
                    None => update,
                }
            })
            .collect();
        records::update_many(spec["object"].as_str().unwrap_or_default(), &updates).map(|results| {
            results.into_iter().map(|r| item(r.map(|rec| json!({"id": rec.id, "version": rec.version})))).collect()
        })
    } else if let Some(spec) = request.get("mail").and_then(Json::as_array) {
        let messages: Vec<mail::Message> = spec
            .iter()
            .map(|m| {
                mail::Message::new(
                    &sender(),
                    m["to"].as_str().unwrap_or_default(),
                    m["subject"].as_str().unwrap_or("Hi"),
                )
                .text("Sent in bulk.")
            })
            .collect();
        mail::send_many(&messages).map(|ids| ids.into_iter().map(|r| item(r.map(|id| json!({"id": id})))).collect())
    } else {
        return Err(Error::invalid("request", "needs `create`, `update` or `mail`"));
    };
    let answer: Json = match answer {
        Ok(items) => Json::Array(items),
        Err(err) => json!({"error": format!("{:?}", err.code), "message": err.message}),
    };
    if request["thenFail"].as_bool() == Some(true) {
        return Err(Error::msg(format!("failing after the bulk call: {answer}")));
    }
    Ok(answer)
}

/// The sender mode = mail uses (setting `sender`).
fn sender() -> String {
    settings::get::<String>("sender").ok().flatten().unwrap_or_else(|| "Kith Tests <kith@example.org>".to_owned())
}

fn mail(event: &Event) -> Result<()> {
    match event.kind.as_str() {
        "contact.created" => {
            let (Some(id), Some(email)) = (event.record_id.as_deref(), event.record()["email"].as_str()) else {
                return Ok(());
            };
            let name = event.record()["firstName"].as_str().unwrap_or("friend");
            let link = links::sign("/hello", &[("c", id)], Some(3_600))?;
            let message = mail::Message::new(&sender(), email, &format!("Welcome, {name}"))
                .html(&format!("<p>Dear {name},</p><p><a href=\"{link}\">Say hello</a></p>"))
                .header("List-Unsubscribe", &format!("<{link}>"))
                .header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")
                .header("X-Kith-Test", "mail")
                .reference(id);
            let message_id = mail::send(&message)?;
            kv::set(&format!("msgid:{id}"), message_id.as_bytes())
        }
        "mail.sent" | "mail.failed" => {
            let reference = event.payload["reference"].as_str().unwrap_or("none");
            kv::set_json(&format!("outcome:{reference}"), &json!({"kind": event.kind, "payload": event.payload}))
        }
        _ => Ok(()),
    }
}

impl Plugin for Hostile {
    /// Routes (SDK 1.3), as the tests declare them: `/hello` checks its signed link and
    /// records the visit; `/whoami` answers its caller; `/boom` writes, then answers 500;
    /// `/echo` answers its body; `/page` answers HTML with a script and a cookie it may not set.
    fn handle_request(&self, request: &routes::Request) -> routes::Response {
        match request.route.as_str() {
            "/hello" => match links::verify(&request.url()) {
                Ok(params) => {
                    let who = params.iter().find(|(n, _)| n == "c").map(|(_, v)| v.clone()).unwrap_or_default();
                    match kv::set(&format!("hello:{who}"), b"1") {
                        Ok(()) => routes::Response::html(200, &format!("<p>Hello, {who}</p>")),
                        Err(err) => routes::Response::text(500, &err.to_string()),
                    }
                }
                Err(err) => routes::Response::text(403, &err.to_string()),
            },
            "/link" => match links::sign("/hello", &[("c", request.param("c").as_deref().unwrap_or("x"))], None) {
                Ok(url) => routes::Response::text(200, &url),
                Err(err) => routes::Response::text(500, &err.to_string()),
            },
            "/whoami" => routes::Response::json(200, &json!({"caller": request.caller, "headers": request.headers})),
            "/boom" => {
                let _ = kv::set("boom", b"1");
                routes::Response::text(500, "boom")
            }
            "/echo" => routes::Response::new(200).header("content-type", "text/plain").with_body(&request.body),
            "/page" => routes::Response::html(200, "<script>alert(1)</script><p>page</p>")
                .header("set-cookie", "kith_session=stolen")
                .header("x-plugin", "yes"),
            _ => routes::Response::text(404, "no such route"),
        }
    }

    fn on_event(&self, event: &Event) -> Result<()> {
        let mode: String = settings::get("mode")?.unwrap_or_default();
        match mode.as_str() {
            "loop" => {
                spin_forever();
            }
            "alloc" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![7u8; 1 << 20]);
                    black_box(&hoard);
                }
            }
            "recurse" => {
                black_box(recurse(0));
            }
            "panic" => panic!("hostile plugin panics on {}", event.kind),
            "ungranted" => {
                let denied = records::get("deal", "00000000-0000-0000-0000-000000000000");
                match denied {
                    Err(err) if err.code == ErrorCode::Denied => log::warn(&format!("refused as expected: {err}")),
                    other => return Err(Error::msg(format!("an ungranted read was not refused: {other:?}"))),
                }
            }
            // Prints far more than Kith keeps of a call's output.
            "print-flood" => {
                for i in 0..100_000 {
                    println!("print flood line {i} with some padding to make it longer");
                }
            }
            "flood" => {
                for i in 0..200_000 {
                    log::info(&format!("flood line {i}"));
                }
            }
            "self-write" => {
                if let Some(id) = event.record_id.as_deref() {
                    records::update(
                        "contact",
                        id,
                        &json!({"jobTitle": format!("touched at depth {}", event.depth)}),
                        None,
                    )?;
                }
            }
            "fail" => return Err(Error::msg(format!("failing on purpose on event {}", event.seq))),
            // `fan-out-N`: creates N contacts per contact event, which cause more events, which
            // it handles too: without a budget, without end.
            fan_out if fan_out.starts_with("fan-out-") => {
                let n: u32 = fan_out["fan-out-".len()..].parse().unwrap_or(1);
                for i in 0..n {
                    records::create("contact", &json!({"firstName": format!("Echo{i}.{}", event.seq)}))?;
                }
                return Ok(());
            }
            // Records the event, then fails: a failed handler must leave nothing behind.
            "record-then-fail" => {
                record(event)?;
                return Err(Error::msg(format!("failing after recording event {}", event.seq)));
            }
            // Records every event but fails on a contact named `Bad`.
            "fail-on-bad" if event.record_str("firstName") == Some("Bad") => {
                return Err(Error::msg("a bad contact"));
            }
            // Writes 60 KiB values until Kith refuses, then fails with what it said.
            "kv-flood" => {
                let chunk = vec![7u8; 60 << 10];
                for i in 0..400 {
                    if let Err(err) = kv::set(&format!("flood:{i}"), &chunk) {
                        return Err(Error::msg(format!("kv flood stopped at key {i}: {}", err.message)));
                    }
                }
            }
            // Fails with a message of a megabyte, with lines that look like Kith's own log.
            "shout" => {
                let line = "\n2026-12-05T00:00:00Z  INFO kith: forged line";
                return Err(Error::msg(line.repeat((1 << 20) / line.len())));
            }
            // Outbound HTTP to the `url` setting, with the `token` secret injected by the host;
            // the outcome goes to kv `http` so the tests can read it.
            "http" => {
                let url: String = settings::get("url")?.unwrap_or_default();
                let request = http::Request::get(&url).header("Authorization", "Bearer {{secret:token}}");
                let outcome = match http::send(&request) {
                    Ok(response) => format!("{} {} {}", response.status, response.url, response.text()),
                    Err(err) => format!("error {:?}: {}", err.code, err.message),
                };
                kv::set("http", outcome.as_bytes())?;
                return Ok(());
            }
            // Tries to reach outside the sandbox: files, environment, clock-free network; what
            // happened goes to kv `escape` for the tests to read.
            "escape" => {
                let file = std::fs::read_to_string("/etc/passwd").map(|t| t.len()).map_err(|e| e.to_string());
                let dir = std::fs::read_dir(".").map(|d| d.count()).map_err(|e| e.to_string());
                let env = std::env::vars().count();
                let home = std::env::var("HOME").ok();
                let net = std::net::TcpStream::connect("127.0.0.1:5432").map(|_| ()).map_err(|e| e.to_string());
                let outcome = json!({
                    "file": file.is_ok(), "dir": dir.is_ok(), "env": env, "home": home, "net": net.is_ok(),
                    "errors": [file.err(), dir.err(), net.err()],
                });
                kv::set("escape", outcome.to_string().as_bytes())?;
                return Ok(());
            }
            // Light work for the benchmarks: look at the record, touch no storage.
            "inspect" => return inspect(event),
            // `record`, with the order kept per record (`order:<id>`) instead of in one list: for
            // partitioned delivery, where records' events are handled at once.
            "per-record" => {
                let key = format!("seen:{}", event.id);
                let seen = kv::get_json::<u64>(&key)?.unwrap_or(0);
                kv::set_json(&key, &(seen + 1))?;
                if let Some(id) = event.record_id.as_deref() {
                    let key = format!("order:{id}");
                    let mut order = kv::get_json::<Vec<i64>>(&key)?.unwrap_or_default();
                    order.push(event.seq);
                    kv::set_json(&key, &order)?;
                }
                return Ok(());
            }
            // E-mail (SDK 1.3): a new contact with an address is sent a message carrying a signed
            // link; the outcomes that come back are kept (`outcome:<contact id>`).
            "mail" => return mail(event),
            // One write per new contact (the events benchmark): its job title is set.
            "touch" => {
                if let (Some(id), "contact.created") = (event.record_id.as_deref(), event.kind.as_str()) {
                    records::update("contact", id, &json!({"jobTitle": format!("Touched at {}", event.seq)}), None)?;
                }
                return Ok(());
            }
            _ => {}
        }
        record(event)
    }

    /// `conform(request)`: see [`conform`]. Any other name is `writeThenFail(count, how)`:
    /// creates `count` contacts, then ends as `how` says: `panic`, `error`, `loop` (past its
    /// budget), or anything else to succeed with the count.
    fn call(&self, call: &Call) -> Result<serde_json::Value> {
        if call.name == "conform" {
            return conform(&call.arguments["request"]);
        }
        if call.name == "bulk" {
            return bulk(&call.arguments["request"]);
        }
        // `mailThenFail(to, how)`: queues a message to `to`, then fails as `how` says (`error`)
        // or answers its Message-ID.
        if call.name == "mailThenFail" {
            let to = call.str("to").unwrap_or_default();
            let id = mail::send(&mail::Message::new(&sender(), to, "From a mutation").text("Hello."))?;
            if call.str("how") == Some("error") {
                return Err(Error::msg(format!("failing after queueing {id}")));
            }
            return Ok(json!(id));
        }
        let count = call.int("count").unwrap_or(0);
        for i in 0..count {
            records::create("contact", &json!({"firstName": format!("Partial{i}")}))?;
        }
        match call.str("how").unwrap_or_default() {
            "panic" => panic!("hostile mutation panics after {count} writes"),
            "error" => Err(Error::msg(format!("failing after {count} writes"))),
            "loop" => {
                spin_forever();
                Ok(json!(count))
            }
            _ => Ok(json!(count)),
        }
    }

    /// Any job: creates contacts until its budget runs out.
    fn run_job(&self, _job: &str, _scheduled_for: &str) -> Result<()> {
        for i in 0.. {
            records::create("contact", &json!({"firstName": format!("Swept{i}")}))?;
        }
        Ok(())
    }

    /// Any computed field: as the `compute` setting says, `loop` past its budget, `fail`, or
    /// answer `"ok"` for each record.
    fn compute_field(&self, _object: &str, _field: &str, ids: &[String]) -> Result<Vec<serde_json::Value>> {
        let compute: String = settings::get("compute")?.unwrap_or_default();
        match compute.as_str() {
            "loop" => {
                spin_forever();
                Ok(Vec::new())
            }
            "fail" => Err(Error::msg("the computed field fails on purpose")),
            // Busy for a while (tens of milliseconds), then answers.
            "busy" => {
                let mut n: u64 = 0;
                for i in 0..5_000_000u64 {
                    n = black_box(n.wrapping_add(i));
                }
                Ok(ids.iter().map(|_| json!(format!("ok {}", n % 2))).collect())
            }
            _ => Ok(ids.iter().map(|_| json!("ok")).collect()),
        }
    }

    fn before_write(&self, change: &Change) -> Verdict {
        let hook: String = settings::get("hook").ok().flatten().unwrap_or_default();
        match hook.as_str() {
            "slow" => {
                spin_forever();
                Verdict::Allow
            }
            "deny" => Verdict::Deny(format!("{} refused by the hostile plugin", change.object)),
            "panic" => panic!("hostile before-write panic"),
            "modify" => {
                let mut fields = serde_json::Map::new();
                if let Some(title) = change.after_str("jobTitle") {
                    fields.insert("jobTitle".into(), json!(title.to_uppercase()));
                }
                Verdict::Modify(fields)
            }
            _ => Verdict::Allow,
        }
    }
}

kith_plugin_sdk::register_plugin!(Hostile);
