use std::io::Write;

use crate::config::Config;

fn env(vars: &[(&str, &str)]) -> Vec<(String, String)> {
    vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

#[test]
fn layers_apply_in_order() {
    let mut file = tempfile();
    writeln!(
        file.1,
        "[server]\nbind = \"127.0.0.1:9000\"\nrequest_timeout_secs = 5\n[database]\nurl = \"sqlite://from-file.db\""
    )
    .unwrap();
    let config =
        Config::load(Some(&file.0), env(&[("KITH_DATABASE_URL", "postgres://x@localhost/db"), ("PATH", "/bin")]))
            .unwrap();
    assert_eq!(config.server.bind.port(), 9000, "file beats defaults");
    assert_eq!(config.server.request_timeout_secs, 5);
    assert_eq!(config.database.url, "postgres://x@localhost/db", "environment beats file");
    assert_eq!(config.database.max_connections, 16, "defaults fill the rest");
    let config =
        Config::load(None, env(&[("KITH_SERVER__REQUEST_TIMEOUT_SECS", "7"), ("KITH_LOG__FORMAT", "json")])).unwrap();
    assert_eq!(config.server.request_timeout_secs, 7, "numbers are typed");
    assert_eq!(config.log.format, "json");
    file.remove();
}

#[test]
fn unknown_keys_are_errors_naming_the_key() {
    let mut file = tempfile();
    writeln!(file.1, "[server]\nbnd = \"127.0.0.1:9000\"").unwrap();
    let err = Config::load(Some(&file.0), env(&[])).unwrap_err().to_string();
    assert!(err.contains("bnd"), "{err}");
    file.remove();
    let err = Config::load(None, env(&[("KITH_DATABSE_URL", "x")])).unwrap_err().to_string();
    assert!(err.contains("KITH_DATABSE_URL"), "{err}");
    let err = Config::load(None, env(&[("KITH_SERVER__PORT", "1")])).unwrap_err().to_string();
    assert!(err.contains("server.port"), "{err}");
    let err = Config::load(None, env(&[("KITH_SERVER__BIND", "not an address")])).unwrap_err().to_string();
    assert!(err.contains("socket address") || err.contains("invalid"), "{err}");
    let err = Config::load(None, env(&[("KITH_LOG__FORMAT", "xml")])).unwrap_err().to_string();
    assert!(err.contains("log.format"), "{err}");
    let err = Config::load(None, env(&[("KITH_API__TIMEOUT_MS", "0")])).unwrap_err().to_string();
    assert!(err.contains("api.timeout_ms"), "{err}");
    let config = Config::load(None, env(&[("KITH_API__TIMEOUT_MS", "2500")])).unwrap();
    assert_eq!(config.api.timeout_ms, 2500);
    // Variables that are not settings but belong to Kith are allowed.
    Config::load(None, env(&[("KITH_TEST_DATABASE_URL", "postgres://x")])).unwrap();
}

#[test]
fn the_example_file_is_valid_and_matches_the_defaults() {
    let example: Config = toml::from_str(crate::config::EXAMPLE).unwrap();
    assert_eq!(example, Config::default());
}

fn tempfile() -> (std::path::PathBuf, std::fs::File) {
    let path = std::env::temp_dir().join(format!("kith-config-{}.toml", uuid::Uuid::now_v7()));
    let file = std::fs::File::create(&path).unwrap();
    (path, file)
}

trait Remove {
    fn remove(self);
}

impl Remove for (std::path::PathBuf, std::fs::File) {
    fn remove(self) {
        let _ = std::fs::remove_file(self.0);
    }
}
