//! A real Tryton server on loopback for the ERP connector's tests and benchmark: `trytond` 8.2
//! with `party`, `product`, `sale` and `account_invoice` (pinned, from PyPI, installed into
//! `target/tryton-venv` the first time), on its SQLite backend.
//!
//! The database is made once per machine (`trytond-admin --all`, then `tests/tryton/setup_db.py`:
//! a company, a chart of accounts, fiscal years, a payment term, a cash payment method and the
//! service product `KITH-SERVICE`) into `target/tryton-template`; each server gets a copy of it.
//! The admin's password is [`PASSWORD`].
//!
//! Without `python3` (with `venv`) or PyPI, [`TrytonServer::start`] says so: the caller reports
//! the test as SKIPPED, or fails it when `CI` is set (CI installs what the tests need).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value as Json, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// The pinned packages.
const PACKAGES: &[&str] = &[
    "trytond==8.2.1",
    "trytond_party==8.2.0",
    "trytond_product==8.2.0",
    "trytond_sale==8.2.0",
    "trytond_account_invoice==8.2.0",
    "proteus==8.2.0",
];

/// The Tryton admin's password.
pub const PASSWORD: &str = "kith-tryton-admin";
/// The database's name.
pub const DATABASE: &str = "kith";

fn workspace_target() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("target"))
}

fn scripts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tryton")
}

async fn run(program: &Path, args: &[&str], envs: &[(&str, &str)]) -> Result<String, String> {
    let out = tokio::process::Command::new(program)
        .args(args)
        .envs(envs.iter().copied())
        .output()
        .await
        .map_err(|e| format!("{}: {e}", program.display()))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{} {}: {}{}",
            program.display(),
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

static VENV: tokio::sync::OnceCell<Result<PathBuf, String>> = tokio::sync::OnceCell::const_new();
static TEMPLATE: tokio::sync::OnceCell<Result<PathBuf, String>> = tokio::sync::OnceCell::const_new();

/// The virtualenv's `bin` directory, made the first time.
pub async fn venv_bin() -> Result<PathBuf, String> {
    VENV.get_or_init(|| async {
        let venv = workspace_target().join("tryton-venv");
        let bin = venv.join("bin");
        let marker = venv.join(".kith-installed");
        let want = PACKAGES.join(" ");
        if std::fs::read_to_string(&marker).is_ok_and(|m| m == want) {
            return Ok(bin);
        }
        let _ = std::fs::remove_dir_all(&venv);
        run(Path::new("python3"), &["-m", "venv", &venv.display().to_string()], &[]).await?;
        let mut args = vec!["install", "--quiet", "--disable-pip-version-check"];
        args.extend(PACKAGES);
        run(&bin.join("pip"), &args, &[]).await?;
        std::fs::write(&marker, want).map_err(|e| e.to_string())?;
        Ok(bin)
    })
    .await
    .clone()
}

fn config(dir: &Path, port: u16) -> String {
    format!(
        "[database]\nuri = sqlite://\npath = {}\n\n[web]\nlisten = 127.0.0.1:{port}\n\n[session]\ntimeout = 3600\n",
        dir.display()
    )
}

/// The ready database, made the first time on this machine.
async fn template() -> Result<PathBuf, String> {
    TEMPLATE
        .get_or_init(|| async {
            let bin = venv_bin().await?;
            let dir = workspace_target().join("tryton-template");
            let file = dir.join(format!("{DATABASE}.sqlite"));
            let marker = dir.join(".kith-ready");
            let setup = std::fs::read(scripts().join("setup_db.py")).map_err(|e| e.to_string())?;
            let want = format!("{} {:x}", PACKAGES.join(" "), fnv(&setup));
            if std::fs::read_to_string(&marker).is_ok_and(|m| m == want) && file.exists() {
                return Ok(file);
            }
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
            std::fs::write(&file, b"").map_err(|e| e.to_string())?;
            let conf = dir.join("trytond.conf");
            std::fs::write(&conf, config(&dir, 0)).map_err(|e| e.to_string())?;
            let pass = dir.join("password");
            std::fs::write(&pass, PASSWORD).map_err(|e| e.to_string())?;
            let conf_s = conf.display().to_string();
            let pass_s = pass.display().to_string();
            run(
                &bin.join("trytond-admin"),
                &[
                    "-c",
                    &conf_s,
                    "-d",
                    DATABASE,
                    "--all",
                    "-u",
                    "party",
                    "product",
                    "sale",
                    "account_invoice",
                    "--activate-dependencies",
                    "--email",
                    "admin@example.org",
                ],
                &[("TRYTONPASSFILE", &pass_s)],
            )
            .await?;
            run(&bin.join("python"), &[&scripts().join("setup_db.py").display().to_string(), &conf_s, DATABASE], &[])
                .await?;
            std::fs::write(&marker, want).map_err(|e| e.to_string())?;
            Ok(file)
        })
        .await
        .clone()
}

/// A chunked body's content.
fn dechunk(mut body: &str) -> Result<String, String> {
    let mut out = String::new();
    loop {
        let (size, rest) = body.split_once("\r\n").ok_or("a chunk without its size")?;
        let size = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16).map_err(|e| e.to_string())?;
        if size == 0 {
            return Ok(out);
        }
        out.push_str(rest.get(..size).ok_or("a short chunk")?);
        body = rest.get(size + 2..).ok_or("a chunk without its end")?;
    }
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

/// A running `trytond` over a copy of the template database; stopped when dropped.
pub struct TrytonServer {
    child: Option<tokio::process::Child>,
    bin: PathBuf,
    dir: PathBuf,
    /// Its port on 127.0.0.1.
    pub port: u16,
    session: tokio::sync::Mutex<Option<String>>,
}

impl TrytonServer {
    /// Starts a server on a fresh copy of the database; `Err` (why) when Tryton cannot be had.
    pub async fn start() -> Result<TrytonServer, String> {
        TrytonServer::start_from(&template().await?).await
    }

    /// Starts a server on a copy of the database filled with `parties` customers and
    /// `invoices` draft invoices (`tests/tryton/bulk.py`; made once per machine and size, in
    /// `target/tryton-bench`).
    pub async fn start_filled(parties: usize, invoices: usize) -> Result<TrytonServer, String> {
        let template = template().await?;
        let bin = venv_bin().await?;
        let dir = workspace_target().join("tryton-bench").join(format!("{parties}-{invoices}"));
        let file = dir.join(format!("{DATABASE}.sqlite"));
        let bulk = std::fs::read(scripts().join("bulk.py")).map_err(|e| e.to_string())?;
        let want = format!("{:x}", fnv(&bulk) ^ fnv(&std::fs::read(&template).map_err(|e| e.to_string())?));
        let marker = dir.join(".kith-ready");
        if !(std::fs::read_to_string(&marker).is_ok_and(|m| m == want) && file.exists()) {
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
            std::fs::copy(&template, &file).map_err(|e| e.to_string())?;
            let conf = dir.join("trytond.conf");
            std::fs::write(&conf, config(&dir, 0)).map_err(|e| e.to_string())?;
            let (p, i) = (parties.to_string(), invoices.to_string());
            run(
                &bin.join("python"),
                &[&scripts().join("bulk.py").display().to_string(), &conf.display().to_string(), DATABASE, &p, &i],
                &[],
            )
            .await?;
            std::fs::write(&marker, want).map_err(|e| e.to_string())?;
        }
        TrytonServer::start_from(&file).await
    }

    async fn start_from(template: &Path) -> Result<TrytonServer, String> {
        let bin = venv_bin().await?;
        let dir = crate::temp_dir();
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        std::fs::copy(template, dir.join(format!("{DATABASE}.sqlite"))).map_err(|e| e.to_string())?;
        let port =
            std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_err(|e| e.to_string())?.port();
        std::fs::write(dir.join("trytond.conf"), config(&dir, port)).map_err(|e| e.to_string())?;
        let mut server = TrytonServer { child: None, bin, dir, port, session: tokio::sync::Mutex::new(None) };
        server.resume().await?;
        Ok(server)
    }

    /// Starts a server, or reports the caller SKIPPED (`None`); under `CI` a missing Tryton fails.
    pub async fn start_or_skip(test: &str) -> Option<TrytonServer> {
        match TrytonServer::start().await {
            Ok(server) => Some(server),
            Err(why) if std::env::var_os("CI").is_some() => panic!("{test}: no Tryton under CI: {why}"),
            Err(why) => {
                use std::io::Write as _;
                let _ = writeln!(std::io::stderr(), "SKIPPED (Tryton): {test}: {why}");
                None
            }
        }
    }

    /// The database's URL, as the plugin's `url` setting takes it.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/{DATABASE}/", self.port)
    }

    /// Stops the server (it is down until [`TrytonServer::resume`]).
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// Starts the server again on the same database and port; waits until it answers a login.
    pub async fn resume(&mut self) -> Result<(), String> {
        let conf = self.dir.join("trytond.conf");
        let log = std::fs::File::create(self.dir.join("server.log")).map_err(|e| e.to_string())?;
        let child = tokio::process::Command::new(self.bin.join("trytond"))
            .arg("-c")
            .arg(&conf)
            .arg("-d")
            .arg(DATABASE)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("starting trytond: {e}"))?;
        self.child = Some(child);
        *self.session.lock().await = None;
        for _ in 0..120 {
            if self.login().await.is_ok() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
        Err(format!("trytond did not answer within 30 s: {}", log.chars().rev().take(2000).collect::<String>()))
    }

    async fn post(&self, body: &Json, session: Option<&str>) -> Result<Json, String> {
        let mut stream =
            tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.map_err(|e| format!("connect: {e}"))?;
        let body = body.to_string();
        let auth = session.map(|s| format!("Authorization: {s}\r\n")).unwrap_or_default();
        let request = format!(
            "POST /{DATABASE}/rpc/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await.map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        tokio::time::timeout(Duration::from_secs(60), stream.read_to_end(&mut out))
            .await
            .map_err(|_| "no answer within a minute".to_owned())?
            .map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&out);
        let (head, body) = text.split_once("\r\n\r\n").ok_or("no HTTP answer")?;
        if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
            return Err(head.lines().next().unwrap_or_default().to_owned());
        }
        let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
            dechunk(body)?
        } else {
            body.to_owned()
        };
        let answer: Json = serde_json::from_str(&body).map_err(|e| format!("{e}: {body}"))?;
        match answer.get("error") {
            Some(error) if !error.is_null() => Err(error.to_string()),
            _ => Ok(answer.get("result").cloned().unwrap_or(Json::Null)),
        }
    }

    async fn login(&self) -> Result<String, String> {
        let result = self
            .post(
                &json!({"id": 0, "method": "common.db.login", "params": ["admin", {"password": PASSWORD}, "en"]}),
                None,
            )
            .await?;
        let token = format!("admin:{}:{}", result[0], result[1].as_str().unwrap_or_default());
        use base64::Engine as _;
        let header = format!("Session {}", base64::engine::general_purpose::STANDARD.encode(token));
        *self.session.lock().await = Some(header.clone());
        Ok(header)
    }

    /// Calls a JSON-RPC method as the admin (the company's context is added).
    pub async fn rpc(&self, method: &str, mut params: Vec<Json>) -> Json {
        let session = match self.session.lock().await.clone() {
            Some(session) => session,
            None => self.login().await.unwrap(),
        };
        params.push(json!({"company": 1, "companies": [1], "company_filter": "one", "language": "en"}));
        self.post(&json!({"id": 1, "method": method, "params": params}), Some(&session)).await.unwrap()
    }

    /// `model.MODEL.search_read(domain, fields)`.
    pub async fn search_read(&self, model: &str, domain: Json, fields: &[&str]) -> Vec<Json> {
        let rows = self
            .rpc(&format!("model.{model}.search_read"), vec![domain, json!(0), Json::Null, Json::Null, json!(fields)])
            .await;
        rows.as_array().cloned().unwrap_or_default()
    }

    /// Runs `tests/tryton/ctl.py COMMAND ARGS` against the server (Tryton's own client acting
    /// as its users would); its JSON answer.
    pub async fn ctl(&self, args: &[&str]) -> Json {
        let url = format!("http://admin:{PASSWORD}@127.0.0.1:{}/{DATABASE}/", self.port);
        let script = scripts().join("ctl.py").display().to_string();
        let mut all = vec![script.as_str(), url.as_str()];
        all.extend(args);
        let out = run(&self.bin.join("python"), &all, &[]).await.unwrap();
        serde_json::from_str(out.trim().lines().last().unwrap_or("null")).unwrap()
    }
}

impl Drop for TrytonServer {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
