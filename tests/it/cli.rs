//! The `kith` CLI driven as users drive it: arguments, environment, stdin, stdout, stderr.

use kith_tests::{TestDb, temp_dir};

use crate::util::{run_cli, run_cli_env, run_kith};

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
    let out = run_cli(&url, &["migrate", "up"], "").await.unwrap();
    assert!(out.stdout.lines().all(|l| l.starts_with("applied")) && out.stdout.lines().count() >= 5, "{}", out.stdout);
    let out = run_cli(&url, &["print-config"], "").await.unwrap();
    assert!(out.stdout.contains("[database]"));
    let _ = std::fs::remove_dir_all(dir);
}

/// Another program's `KITH_*` variable (`KITH_BIN` of a wrapper script) used to stop every
/// command ("KITH_BIN is not a Kith setting"): now the command runs, and the user sees a warning,
/// with the setting meant when the name is a typo of one.
#[tokio::test]
async fn unknown_kith_variables_are_warnings_and_the_command_runs() {
    let dir = temp_dir();
    let url = format!("sqlite://{}", dir.join("k.db").display());
    let env = vec![
        ("KITH_BIN".to_owned(), "/usr/local/bin/kith".to_owned()),
        ("KITH_SERVER__BINDD".to_owned(), "0.0.0.0:1".to_owned()),
    ];
    let out = run_cli_env(&url, &["seed", "--demo"], "", env).await.unwrap();
    assert!(out.stderr.contains("seeded 8 companies"), "{}", out.stderr);
    assert!(out.stderr.contains("warning: KITH_BIN is not a Kith setting and is ignored\n"), "{}", out.stderr);
    assert!(
        out.stderr.contains(
            "warning: KITH_SERVER__BINDD is not a Kith setting and is ignored; did you mean KITH_SERVER__BIND?"
        ),
        "{}",
        out.stderr
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// Errors are printed once, as `error: ` then each cause once: a missing file's "(os error 2)"
/// was printed twice, and clap's own `error: ` doubled the prefix.
#[tokio::test]
async fn errors_name_their_cause_once() {
    let db = TestDb::sqlite().await;
    let dir = temp_dir();
    let missing = dir.join("missing.toml");
    let missing_csv = dir.join("missing.csv");
    let runs = [
        vec!["--config", missing.to_str().unwrap(), "migrate"],
        vec!["--database", &db.url, "import", "contacts", missing_csv.to_str().unwrap()],
        vec!["--no-such-flag"],
    ];
    for args in runs {
        let out = run_kith(&args, Vec::new()).await;
        assert_eq!(out.status, 1, "{args:?}: {}", out.stderr);
        assert!(out.stdout.is_empty(), "{args:?}: errors go to standard error: {}", out.stdout);
        assert!(out.stderr.starts_with("error: "), "{args:?}: {}", out.stderr);
        assert_eq!(out.stderr.matches("error:").count(), 1, "{args:?}: {}", out.stderr);
        assert!(out.stderr.matches("os error 2").count() <= 1, "{args:?}: {}", out.stderr);
    }
    let out = run_kith(&["--config", missing.to_str().unwrap(), "migrate"], Vec::new()).await;
    assert_eq!(
        out.stderr,
        format!(
            "error: invalid configuration: cannot read {}: No such file or directory (os error 2)\n",
            missing.display()
        )
    );
    let out = run_kith(&["--database", &db.url, "import", "contacts", missing_csv.to_str().unwrap()], Vec::new()).await;
    assert_eq!(
        out.stderr,
        format!("error: cannot open {}: No such file or directory (os error 2)\n", missing_csv.display())
    );
    let _ = std::fs::remove_dir_all(dir);
    db.cleanup().await;
}

/// `kith plugin install .` inside a plugin's folder used to create and fill a new `kith.db`
/// there. Commands other than serve, migrate and seed refuse a SQLite file that does not exist,
/// naming it; the default database (`kith.db` here) is named whenever it is used; serve, migrate
/// and seed say when they create one.
#[tokio::test]
async fn commands_refuse_to_create_a_database_and_name_the_default_one() {
    let dir = temp_dir();
    let absent = dir.join("absent.db");
    let absent_url = format!("sqlite://{}", absent.display());
    for args in [
        vec!["plugin", "install", "."],
        vec!["plugin", "list"],
        vec!["user", "create", "--email", "a@example.org", "--name", "A"],
        vec!["export", "contacts"],
    ] {
        let err = run_cli(&absent_url, &args, "").await.unwrap_err();
        let text = format!("{err:#}");
        assert!(
            text.contains(&format!("there is no database at {}", absent.display()))
                && text.contains("does not create one")
                && text.contains("--database"),
            "{args:?}: {text}"
        );
        assert!(!absent.exists(), "{args:?} created {}", absent.display());
    }
    let err = run_cli(&absent_url, &["plugin", "install", "."], "").await.unwrap_err();
    assert!(format!("{err:#}").contains("`kith plugin install` does not create one"), "{err:#}");

    let nowhere = dir.join("no-such-folder/kith.db");
    let err = run_cli(&format!("sqlite://{}", nowhere.display()), &["migrate", "up"], "").await.unwrap_err();
    assert_eq!(
        format!("{err:#}"),
        format!(
            "cannot create a database at {}: the folder {} does not exist",
            nowhere.display(),
            dir.join("no-such-folder").display()
        )
    );
    let out = run_cli(&absent_url, &["migrate", "up"], "").await.unwrap();
    assert!(out.stderr.contains(&format!("creating a new database at {}", absent.display())), "{}", out.stderr);
    assert!(absent.exists());
    let out = run_cli(&absent_url, &["plugin", "list"], "").await.unwrap();
    assert!(out.stderr.is_empty(), "a database chosen with --database is not announced: {}", out.stderr);

    // Without --database: the default, `kith.db` in the current directory (the test crate's
    // folder, which has none), named with how to choose another.
    let default_path = std::path::absolute("kith.db").unwrap();
    assert!(!default_path.exists(), "a stray {} would be used by every command", default_path.display());
    let out = run_kith(&["token", "list"], Vec::new()).await;
    assert_eq!(out.status, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "there is no database at {} (the default: kith.db in the current directory; choose another with \
             --database or KITH_DATABASE_URL)",
            default_path.display()
        )),
        "{}",
        out.stderr
    );
    assert!(!default_path.exists());
    let _ = std::fs::remove_dir_all(dir);
}

/// The scaffold's Cargo.toml named the SDK by the absolute path of the checkout `kith` was
/// built from, which holds on no other machine. It names it relative to the project, with the
/// SDK's version, wherever the project and the SDK are (`--sdk-path`, relative or not).
#[tokio::test]
async fn the_scaffold_names_the_sdk_relative_to_the_project() {
    let sdk = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugin-sdk").canonicalize().unwrap();
    let version = toml::from_str::<toml::Table>(&std::fs::read_to_string(sdk.join("Cargo.toml")).unwrap()).unwrap()
        ["package"]["version"]
        .as_str()
        .unwrap()
        .to_owned();
    let root = temp_dir();
    // The test's current directory is the test crate's folder, beside plugin-sdk.
    for (dir, sdk_arg) in [
        (root.join("hello"), None),
        (root.join("deep/er/hello"), Some("../plugin-sdk".to_owned())),
        (root.join("abs"), Some(sdk.display().to_string())),
    ] {
        let mut args = vec!["plugin", "new", "hello", "--dir", dir.to_str().unwrap()];
        if let Some(sdk_arg) = &sdk_arg {
            args.extend(["--sdk-path", sdk_arg]);
        }
        let out = run_kith(&args, Vec::new()).await;
        assert_eq!(out.status, 0, "{}", out.stderr);
        let cargo = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        let table: toml::Table = toml::from_str(&cargo).unwrap();
        let dependency = &table["dependencies"]["kith-plugin-sdk"];
        let path = dependency["path"].as_str().unwrap();
        assert!(path.starts_with("../") && !cargo.contains("\"/"), "{sdk_arg:?}: no absolute path: {cargo}");
        assert_eq!(dir.join(path).canonicalize().unwrap(), sdk, "{sdk_arg:?}: {path}");
        assert_eq!(dependency["version"].as_str(), Some(version.as_str()), "{cargo}");
    }
    let out = run_kith(
        &["plugin", "new", "hello", "--dir", root.join("x").to_str().unwrap(), "--sdk-path", root.to_str().unwrap()],
        Vec::new(),
    )
    .await;
    assert_eq!(out.status, 1);
    assert!(out.stderr.contains("has no readable Cargo.toml: is it the kith-plugin-sdk?"), "{}", out.stderr);

    // TypeScript and Python: the SDK named relative to the project too, the toolchain pinned at
    // the SDK's own versions, and a wrong SDK refused before anything is written.
    let sdks = sdk.parent().unwrap().join("plugin-sdk");
    for (lang, file, other) in [("typescript", "package.json", "python"), ("python", "requirements.txt", "typescript")]
    {
        let dir = root.join(format!("deep/{lang}/hello"));
        let out =
            run_kith(&["plugin", "new", "hello", "--lang", lang, "--dir", dir.to_str().unwrap()], Vec::new()).await;
        assert_eq!(out.status, 0, "{lang}: {}", out.stderr);
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        let path = if lang == "typescript" {
            let package: serde_json::Value = serde_json::from_str(&text).unwrap();
            let tools = std::fs::read_to_string(sdks.join("typescript/package.json")).unwrap();
            let tools: serde_json::Value = serde_json::from_str(&tools).unwrap();
            for (tool, version) in tools["peerDependencies"].as_object().unwrap() {
                assert_eq!(&package["devDependencies"][tool], version, "{lang}: {tool}");
            }
            package["devDependencies"]["@kith/plugin-sdk"].as_str().unwrap().strip_prefix("file:").unwrap().to_owned()
        } else {
            assert!(text.contains("\ncomponentize-py==0.25.1\n"), "{text}");
            text.lines().find_map(|l| l.strip_prefix("-e ")).unwrap().to_owned()
        };
        assert!(path.starts_with("../") && !text.contains("\"/"), "{lang}: no absolute path: {text}");
        assert_eq!(dir.join(&path).canonicalize().unwrap(), sdks.join(lang), "{lang}: {path}");
        assert!(dir.join("plugin.toml").exists());
        let wrong = root.join(format!("wrong-{lang}"));
        let other_sdk = sdks.join(other);
        let out = run_kith(
            &[
                "plugin",
                "new",
                "hello",
                "--lang",
                lang,
                "--dir",
                wrong.to_str().unwrap(),
                "--sdk-path",
                other_sdk.to_str().unwrap(),
            ],
            Vec::new(),
        )
        .await;
        assert_eq!(out.status, 1, "{lang}");
        assert!(out.stderr.contains("has no readable"), "{lang}: {}", out.stderr);
        assert!(!wrong.exists(), "{lang}: nothing written");
    }
    let _ = std::fs::remove_dir_all(root);
}
