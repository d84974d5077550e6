//! Tests of the configuration layers: defaults, file, environment and flags.

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

/// Other programs' variables share the `KITH_` prefix (`KITH_BIN` for a wrapper script): an
/// unknown variable is a warning naming the nearest setting when it looks like a typo of one,
/// and never an error. A bad value of a known setting still is one.
#[test]
fn unknown_environment_variables_are_warnings_naming_the_nearest_setting() {
    #[track_caller]
    fn check(name: &str, expect: &str) {
        let (config, warnings) = Config::load_with_warnings(None, env(&[(name, "x")])).unwrap();
        assert_eq!(config, Config::default(), "{name} is ignored");
        let warnings: Vec<String> = warnings.iter().map(ToString::to_string).collect();
        assert_eq!(warnings, [expect]);
    }
    check("KITH_BIN", "KITH_BIN is not a Kith setting and is ignored");
    check("KITH_HOME", "KITH_HOME is not a Kith setting and is ignored");
    check("KITH_DATABSE_URL", "KITH_DATABSE_URL is not a Kith setting and is ignored; did you mean KITH_DATABASE_URL?");
    check(
        "KITH_SERVER__BINDD",
        "KITH_SERVER__BINDD is not a Kith setting and is ignored; did you mean KITH_SERVER__BIND?",
    );
    check("KITH_LOG_LEVLE", "KITH_LOG_LEVLE is not a Kith setting and is ignored; did you mean KITH_LOG_LEVEL?");
    check("KITH_CONFG", "KITH_CONFG is not a Kith setting and is ignored; did you mean KITH_CONFIG?");
    // Known settings load beside unknown variables, without warnings of their own.
    let (config, warnings) =
        Config::load_with_warnings(None, env(&[("KITH_BIN", "/usr/bin/kith"), ("KITH_LOG__LEVEL", "debug")])).unwrap();
    assert_eq!(config.log.level, "debug");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let err = Config::load(None, env(&[("KITH_BIN", "x"), ("KITH_SERVER__BIND", "nowhere")])).unwrap_err();
    assert!(err.to_string().contains("socket address") || err.to_string().contains("invalid"), "{err}");
}

/// A file that cannot be read names the file in its message and the cause as its source, so
/// `{:#}` prints the cause once.
#[test]
fn an_unreadable_file_names_its_cause_once() {
    let missing = std::env::temp_dir().join(format!("kith-missing-{}.toml", uuid::Uuid::now_v7()));
    let err = anyhow::Error::new(Config::load(Some(&missing), env(&[])).unwrap_err());
    let text = format!("{err:#}");
    assert_eq!(text.matches("os error 2").count(), 1, "{text}");
    assert!(text.starts_with(&format!("cannot read {}: ", missing.display())), "{text}");
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
