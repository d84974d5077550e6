//! A real SMTP server on loopback for the mail tests and benchmarks: `aiosmtpd` (pinned, from
//! PyPI, installed into `target/smtp-venv` the first time) running `tests/smtp_sink.py`, which
//! keeps every message it accepts as a file.
//!
//! Without `python3` (with `venv`) or PyPI, [`SmtpSink::start`] says so: the caller reports the
//! test as SKIPPED, or fails it when `CI` is set (CI installs what the tests need).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncBufReadExt as _;

/// The pinned package.
const AIOSMTPD: &str = "aiosmtpd==1.4.6";

/// One message the sink accepted.
#[derive(Debug, Clone)]
pub struct Received {
    /// The envelope's sender.
    pub from: String,
    /// The envelope's recipients.
    pub to: Vec<String>,
    /// The message as received.
    pub data: String,
}

impl Received {
    /// The value of the first header `name` (unfolded), if any.
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next().unwrap_or(&self.data);
        let mut value: Option<String> = None;
        for line in head.split("\r\n").flat_map(|l| l.split('\n')) {
            if let Some(current) = value.as_mut() {
                if line.starts_with([' ', '\t']) {
                    current.push(' ');
                    current.push_str(line.trim());
                    continue;
                }
                break;
            }
            if let Some((n, v)) = line.split_once(':')
                && n.eq_ignore_ascii_case(name)
            {
                value = Some(v.trim().to_owned());
            }
        }
        value
    }
}

/// The running server; stopped when dropped.
pub struct SmtpSink {
    child: tokio::process::Child,
    dir: PathBuf,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

fn workspace_target() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("target"))
}

static VENV: tokio::sync::OnceCell<Result<PathBuf, String>> = tokio::sync::OnceCell::const_new();

/// The virtualenv's python with aiosmtpd, made the first time.
async fn python() -> Result<PathBuf, String> {
    VENV.get_or_init(|| async {
        let venv = workspace_target().join("smtp-venv");
        let python = venv.join("bin").join("python");
        let marker = venv.join(".kith-installed");
        if std::fs::read_to_string(&marker).is_ok_and(|m| m == AIOSMTPD) {
            return Ok(python);
        }
        let run = |program: PathBuf, args: Vec<String>| async move {
            let out = tokio::process::Command::new(&program)
                .args(&args)
                .output()
                .await
                .map_err(|e| format!("{}: {e}", program.display()))?;
            if out.status.success() {
                Ok(())
            } else {
                Err(format!("{} {}: {}", program.display(), args.join(" "), String::from_utf8_lossy(&out.stderr)))
            }
        };
        let _ = std::fs::remove_dir_all(&venv);
        run(PathBuf::from("python3"), vec!["-m".into(), "venv".into(), venv.display().to_string()]).await?;
        run(
            venv.join("bin").join("pip"),
            vec!["install".into(), "--quiet".into(), "--disable-pip-version-check".into(), AIOSMTPD.into()],
        )
        .await?;
        std::fs::write(&marker, AIOSMTPD).map_err(|e| e.to_string())?;
        Ok(python)
    })
    .await
    .clone()
}

impl SmtpSink {
    /// Starts a sink; `Err` (why) when Python or aiosmtpd cannot be had.
    pub async fn start() -> Result<SmtpSink, String> {
        let python = python().await?;
        let dir = crate::temp_dir().join(format!("smtp-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let port =
            std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_err(|e| e.to_string())?.port();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("smtp_sink.py");
        let mut child = tokio::process::Command::new(python)
            .arg(script)
            .arg(&dir)
            .arg(port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("starting the SMTP sink: {e}"))?;
        let stdout = child.stdout.take().ok_or("the sink's stdout")?;
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await;
        match ready {
            Ok(Ok(Some(line))) if line.starts_with("listening") => {}
            other => return Err(format!("the SMTP sink did not start: {other:?}")),
        }
        Ok(SmtpSink { child, dir, port })
    }

    /// Starts a sink, or reports the caller SKIPPED (`None`); under `CI` a missing sink fails.
    pub async fn start_or_skip(test: &str) -> Option<SmtpSink> {
        match SmtpSink::start().await {
            Ok(sink) => Some(sink),
            Err(why) if std::env::var_os("CI").is_some() => panic!("{test}: no SMTP sink under CI: {why}"),
            Err(why) => {
                use std::io::Write as _;
                let _ = writeln!(std::io::stderr(), "SKIPPED (SMTP): {test}: {why}");
                None
            }
        }
    }

    /// While on, recipients whose local part starts with `temp` are refused for now (451).
    pub fn fail_temp(&self, on: bool) {
        let marker = self.dir.join("fail-temp");
        if on {
            let _ = std::fs::write(marker, b"1");
        } else {
            let _ = std::fs::remove_file(marker);
        }
    }

    /// Every message accepted so far, in the order received.
    pub fn received(&self) -> Vec<Received> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        names.retain(|p| p.extension().is_some_and(|e| e == "eml"));
        names.sort();
        names
            .into_iter()
            .filter_map(|eml| {
                let envelope: serde_json::Value =
                    serde_json::from_str(&std::fs::read_to_string(eml.with_extension("json")).ok()?).ok()?;
                Some(Received {
                    from: envelope["from"].as_str().unwrap_or_default().to_owned(),
                    to: envelope["to"]
                        .as_array()
                        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
                        .unwrap_or_default(),
                    data: std::fs::read_to_string(&eml).ok()?,
                })
            })
            .collect()
    }

    /// How many messages were accepted so far (without reading them).
    pub fn count(&self) -> usize {
        std::fs::read_dir(&self.dir)
            .map(|d| d.filter_map(Result::ok).filter(|e| e.path().extension().is_some_and(|x| x == "eml")).count())
            .unwrap_or(0)
    }

    /// Stops the server.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}
