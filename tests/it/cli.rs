//! The `kith` CLI driven as users drive it: arguments, environment, stdin, stdout, stderr.

use kith_tests::{TestDb, temp_dir};

/// What a CLI run printed.
#[derive(Debug)]
pub struct Output {
    pub stdout: String,
    pub stderr: String,
}

/// Runs `kith --database URL ARGS...` with `stdin`.
pub async fn run_cli(url: &str, args: &[&str], stdin: &str) -> anyhow::Result<Output> {
    run_cli_env(url, args, stdin, Vec::new()).await
}

pub async fn run_cli_env(url: &str, args: &[&str], stdin: &str, env: Vec<(String, String)>) -> anyhow::Result<Output> {
    let mut argv = vec!["kith".to_owned(), "--database".to_owned(), url.to_owned()];
    argv.extend(args.iter().map(|a| (*a).to_owned()));
    let mut input = std::io::Cursor::new(stdin.as_bytes().to_vec());
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    let io = kith_core::cli::Io { stdin: &mut input, stdout: &mut stdout, stderr: &mut stderr };
    kith_core::cli::run(argv.into_iter().map(Into::into), env, io).await?;
    Ok(Output { stdout: String::from_utf8(stdout)?, stderr: String::from_utf8(stderr)? })
}

#[tokio::test]
async fn token_create_prints_only_the_token_and_it_authenticates() {
    for db in TestDb::all().await {
        let out = run_cli(
            &db.url,
            &[
                "user",
                "create",
                "--email",
                "Admin@Example.org",
                "--name",
                "Admin",
                "--role",
                "admin",
                "--password-stdin",
            ],
            "correct horse battery\n",
        )
        .await
        .unwrap();
        assert!(uuid::Uuid::parse_str(out.stdout.trim()).is_ok(), "{}", out.stdout);
        let out = run_cli(
            &db.url,
            &["token", "create", "--name", "ci", "--role", "MANAGER", "--user", "admin@example.org"],
            "",
        )
        .await
        .unwrap();
        let token = out.stdout.trim_end_matches('\n');
        assert!(
            token.starts_with("kith_") && !token.contains(char::is_whitespace) && out.stdout.lines().count() == 1,
            "{:?}",
            out.stdout
        );
        let actor = kith_core::service::users::authenticate(&db.kith.store, token).await.unwrap().expect("token works");
        assert_eq!(actor.role, kith_core::domain::actor::Role::Manager);
        let (session, _) =
            kith_core::service::users::login(&db.kith, None, "ADMIN@example.org", "correct horse battery")
                .await
                .unwrap();
        assert!(kith_core::service::users::authenticate(&db.kith.store, &session).await.unwrap().is_some());
        assert!(
            kith_core::service::users::login(&db.kith, None, "admin@example.org", "wrong password!").await.is_err()
        );
        assert!(
            kith_core::service::users::login(&db.kith, None, "nobody@example.org", "correct horse battery")
                .await
                .is_err()
        );

        let list = run_cli(&db.url, &["token", "list"], "").await.unwrap();
        assert!(list.stdout.contains("ci\tMANAGER") && !list.stdout.contains(token), "{}", list.stdout);
        // The token was used above; the session too. Each line says when, or that it never was.
        let ci = list.stdout.lines().find(|l| l.contains("\tci\t")).unwrap_or_default();
        assert!(ci.contains("\tactive\tlast used 20") && ci.ends_with('Z'), "{}", list.stdout);
        run_cli(&db.url, &["token", "create", "--name", "idle", "--role", "VIEWER"], "").await.unwrap();
        let list = run_cli(&db.url, &["token", "list"], "").await.unwrap();
        let idle = list.stdout.lines().find(|l| l.contains("\tidle\t")).unwrap_or_default();
        assert!(idle.ends_with("\tactive\tnever used"), "{}", list.stdout);
        run_cli(&db.url, &["token", "revoke", "ci"], "").await.unwrap();
        assert!(kith_core::service::users::authenticate(&db.kith.store, token).await.unwrap().is_none(), "revoked");
        assert!(run_cli(&db.url, &["token", "revoke", "ci"], "").await.is_err(), "already revoked");
        let weak = run_cli(
            &db.url,
            &["user", "create", "--email", "b@example.org", "--name", "B", "--password-stdin"],
            "short\n",
        )
        .await
        .unwrap_err();
        assert!(format!("{weak:#}").contains("at least 10"), "{weak:#}");
        let role = run_cli(&db.url, &["token", "create", "--name", "x", "--role", "GOD"], "").await.unwrap_err();
        assert!(format!("{role:#}").contains("unknown role"), "{role:#}");
        db.cleanup().await;
    }
}

#[tokio::test]
async fn unknown_configuration_keys_are_clear_errors() {
    let dir = temp_dir();
    let config = dir.join("kith.toml");
    std::fs::write(&config, "[database]\nurll = \"sqlite://x.db\"\n").unwrap();
    let url = format!("sqlite://{}", dir.join("k.db").display());
    let err = run_cli(&url, &["--config", config.to_str().unwrap(), "migrate"], "").await.unwrap_err();
    assert!(format!("{err:#}").contains("unknown field `urll`"), "{err:#}");
    let err = run_cli_env(&url, &["migrate"], "", vec![("KITH_SERVER__BINDD".into(), "x".into())]).await.unwrap_err();
    assert!(format!("{err:#}").contains("KITH_SERVER__BINDD"), "{err:#}");
    let out = run_cli(&url, &["migrate", "up"], "").await.unwrap();
    assert!(out.stdout.lines().all(|l| l.starts_with("applied")) && out.stdout.lines().count() >= 5, "{}", out.stdout);
    let out = run_cli(&url, &["print-config"], "").await.unwrap();
    assert!(out.stdout.contains("[database]"));
    let _ = std::fs::remove_dir_all(dir);
}
