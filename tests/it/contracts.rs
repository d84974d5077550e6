//! Public contracts are committed files; a test fails when the live ones drift from them.
//! On drift the file is rewritten, so rerunning and committing is the fix.

use std::path::PathBuf;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[track_caller]
fn ensure_file_contents(path: &std::path::Path, contents: &str) {
    let current = std::fs::read_to_string(path).unwrap_or_default();
    if current != contents {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
        panic!(
            "{} was out of date and has been rewritten: review the change, rerun the tests and commit it",
            path.display()
        );
    }
}

#[test]
fn graphql_sdl_matches_the_committed_schema() {
    let sdl = kith_core::api::schema::core_sdl().unwrap();
    ensure_file_contents(&repo_root().join("schemas/graphql/schema.graphql"), &sdl);
}

#[tokio::test]
async fn kith_schema_print_writes_the_same_sdl() {
    let dir = kith_tests::temp_dir();
    let out = dir.join("schema.graphql");
    crate::util::run_cli("sqlite::memory:", &["schema", "print", "--output", out.to_str().unwrap()], "").await.unwrap();
    assert_eq!(std::fs::read_to_string(&out).unwrap(), kith_core::api::schema::core_sdl().unwrap());
    let _ = std::fs::remove_dir_all(dir);
}

/// Released versions of the `kith:plugin` WIT package are frozen: their files must keep the
/// hashes recorded in `schemas/wit/RELEASED`, and every version folder must be listed there.
#[test]
fn released_wit_versions_are_frozen() {
    let wit = repo_root().join("schemas/wit");
    let released = std::fs::read_to_string(wit.join("RELEASED")).unwrap();
    let mut listed = Vec::new();
    for line in released.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let (file, hash) = line.split_once(' ').unwrap();
        let bytes = std::fs::read(wit.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(
            kith_core::plugin::engine::content_hash(&bytes),
            hash.trim(),
            "{file} changed, but released WIT versions are frozen: add a new version folder instead"
        );
        listed.push(file.split('/').next().unwrap().to_owned());
    }
    for entry in std::fs::read_dir(&wit).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            let name = entry.file_name().to_string_lossy().into_owned();
            assert!(listed.contains(&name), "schemas/wit/{name} is not listed in schemas/wit/RELEASED");
        }
    }
    // The host runs every released major version, up to the newest released minor, and the
    // SDK is the newest release: a new WIT folder needs the host and the SDK to follow.
    let newest = listed
        .iter()
        .filter_map(|v| {
            let parts: Vec<u16> = v.trim_start_matches('v').split('.').filter_map(|n| n.parse().ok()).collect();
            (parts.len() == 3).then(|| (parts[0], parts[1], parts[2]))
        })
        .max()
        .unwrap();
    assert!(kith_core::plugin::SUPPORTED_SDK.iter().any(|(major, minor)| (*major, *minor) == (newest.0, newest.1)));
    assert_eq!(kith_plugin_sdk::SDK_VERSION, format!("{}.{}.{}", newest.0, newest.1, newest.2));
}

/// The committed manifest reference (`schemas/plugin/manifest-v1.toml`) shows every key the
/// parser knows: this struct literal stops compiling when a key is added, and the comparison
/// fails when the file and the parser disagree.
#[test]
fn the_manifest_reference_matches_the_parser() {
    use kith_core::domain::object::OnDelete;
    use kith_core::plugin::extension::{
        EnumSpec, FieldSpec as ComputedFieldSpec, JobSpec, MissedRuns, OperationSpec, TypeSpec,
    };
    use kith_core::plugin::manifest::{
        BeforeWrite, DeliverySpec, ErasureSpec, FailurePolicy, FieldSpec, FieldType, IndexSpec, Limits, Manifest,
        ObjectSpec, PrivacySpec, SettingDef, SettingKind,
    };
    let field = |name: &str, kind: FieldType| FieldSpec {
        name: name.into(),
        kind,
        values: Vec::new(),
        target: None,
        required: false,
        unique: false,
        indexed: false,
        personal: false,
        on_delete: None,
        read_role: None,
        description: String::new(),
    };
    let text = std::fs::read_to_string(repo_root().join("schemas/plugin/manifest-v1.toml")).unwrap();
    let parsed = Manifest::parse(&text).unwrap();
    let expected = Manifest {
        manifest_version: 1,
        id: "donors".into(),
        name: "Donor management".into(),
        version: "1.4.2".into(),
        sdk_version: "1.4.0".into(),
        description: "Gifts, pledges and donor retention.".into(),
        authors: vec!["Ada <ada@example.org>".into()],
        license: Some("Apache-2.0".into()),
        capabilities: vec![
            "contacts:read".into(),
            "contacts:write".into(),
            "deals:read".into(),
            "activities:write".into(),
            "kv".into(),
            "mail:send".into(),
        ],
        events: vec!["contact.created".into(), "deal.*".into()],
        before_write: Some(BeforeWrite {
            objects: vec!["contact".into()],
            on_failure: FailurePolicy::Deny,
            timeout_ms: 20,
            own_writes: false,
        }),
        settings: [
            (
                "levels".to_owned(),
                SettingDef {
                    kind: SettingKind::StringList,
                    default: Some(toml::Value::Array(
                        ["bronze", "silver", "gold"].map(|s| toml::Value::String(s.into())).to_vec(),
                    )),
                    description: "Donor levels, lowest first.".into(),
                    secret: false,
                },
            ),
            (
                "api_key".to_owned(),
                SettingDef {
                    kind: SettingKind::String,
                    default: None,
                    description: "Payment provider key.".into(),
                    secret: true,
                },
            ),
        ]
        .into_iter()
        .collect(),
        limits: Limits {
            event_timeout_ms: 100,
            memory_mib: 64,
            http_per_minute: 120,
            kv_mib: 64,
            instances: 4,
            writes_per_event: 100,
            chained_writes_per_minute: 1_000,
            mail_per_minute: 60,
        },
        delivery: DeliverySpec { partitions: 4 },
        objects: vec![ObjectSpec {
            name: "donation".into(),
            plural: "donations".into(),
            description: "A gift from a donor.".into(),
            title: Some("{amount} {amountCurrency} ({status})".into()),
            fields: vec![
                FieldSpec {
                    target: Some("contact".into()),
                    required: true,
                    indexed: true,
                    description: "The donor.".into(),
                    on_delete: Some(OnDelete::Restrict),
                    ..field("contactId", FieldType::Ref)
                },
                FieldSpec {
                    required: true,
                    description: "The amount given.".into(),
                    ..field("amount", FieldType::Money)
                },
                FieldSpec {
                    values: vec!["PLEDGED".into(), "RECEIVED".into(), "REFUNDED".into()],
                    required: true,
                    ..field("status", FieldType::Enum)
                },
                FieldSpec { unique: true, ..field("receiptNumber", FieldType::Text) },
                FieldSpec {
                    personal: true,
                    read_role: Some("MANAGER".into()),
                    ..field("tributeName", FieldType::Text)
                },
            ],
            indexes: vec![IndexSpec { fields: vec!["status".into(), "amountCurrency".into(), "contactId".into()] }],
            erasure: Some(ErasureSpec::Keep),
            legal_basis: Some("Tax law: gift records are kept for seven years.".into()),
        }],
        enums: vec![EnumSpec {
            name: "DonorLevel".into(),
            description: "How much a donor gives.".into(),
            values: vec!["BRONZE".into(), "SILVER".into(), "GOLD".into()],
        }],
        types: vec![TypeSpec {
            name: "DonorSummary".into(),
            description: "A donor's giving.".into(),
            fields: [("lifetime", "Decimal!"), ("gifts", "Int!"), ("level", "DonorLevel")]
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .into_iter()
                .collect(),
        }],
        fields: vec![ComputedFieldSpec {
            object: "contact".into(),
            name: "donorSummary".into(),
            ty: "DonorSummary".into(),
            description: "Lifetime giving.".into(),
        }],
        queries: vec![
            OperationSpec {
                name: "topDonors".into(),
                description: "The donors who gave most.".into(),
                arguments: [("first", "Int!"), ("since", "Date")]
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .into_iter()
                    .collect(),
                returns: "[DonorSummary!]!".into(),
                role: Some("MANAGER".into()),
            },
            OperationSpec {
                name: "donorHistory".into(),
                description: "What the plugin holds about a donor beyond its objects' records.".into(),
                arguments: [("contactId".to_owned(), "ID!".to_owned())].into_iter().collect(),
                returns: "JSON!".into(),
                role: Some("MANAGER".into()),
            },
        ],
        mutations: vec![OperationSpec {
            name: "recordGift".into(),
            description: String::new(),
            arguments: [("contactId", "ID!"), ("amount", "Decimal!")]
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .into_iter()
                .collect(),
            returns: "ID!".into(),
            role: None,
        }],
        jobs: vec![JobSpec {
            name: "nightly-totals".into(),
            schedule: "30 2 * * *".into(),
            missed: MissedRuns::CatchUp,
            timeout_ms: 20_000,
            description: "Recomputes donor totals.".into(),
            batches: false,
        }],
        privacy: PrivacySpec { export: Some("donorHistory".into()) },
        routes: vec![kith_core::plugin::routes::RouteSpec {
            method: "POST".into(),
            path: "/webhooks/*".into(),
            access: kith_core::plugin::routes::RouteAccess::Public,
            max_body_bytes: 65_536,
            per_minute: 600,
        }],
        custom_fields: vec![kith_core::plugin::manifest::CustomFieldSpec {
            object: "contact".into(),
            key: "lifetimeTier".into(),
            label: "Lifetime tier".into(),
            kind: "SELECT".into(),
            options: vec!["Bronze".into(), "Silver".into(), "Gold".into()],
        }],
    };
    assert_eq!(parsed, expected);
    // The bundled and test plugins' manifests are valid too.
    for path in ["plugins/welcome/plugin.toml", "tests/plugins/hostile/plugin.toml"] {
        Manifest::parse(&std::fs::read_to_string(repo_root().join(path)).unwrap())
            .unwrap_or_else(|e| panic!("{path}: {e}"));
    }
}

/// What `plugin-sdk/public-api.txt` starts with.
const SDK_API_HEADER: &str = "\
# The public API of kith-plugin-sdk: every item a plugin can name, one a line, types as written
# in the source. Rendered from plugin-sdk/src by tests/it/public_api.rs and compared by
# tests/it/contracts.rs: a change here is a change to the SDK's contract. Accept one on purpose
# (and say so in the SDK's README) with
#     KITH_BLESS=1 cargo test -p kith-tests --test it sdk_public_api
";

/// `kith-plugin-sdk`'s public API is the committed listing: adding, removing or changing a
/// public item, a field, a variant, a signature, a trait implementation or an attribute such as
/// `#[non_exhaustive]` fails here, with the difference, until it is accepted on purpose
/// (`KITH_BLESS=1`, which rewrites the listing for review).
#[test]
fn the_sdk_public_api_is_the_committed_listing() {
    let path = repo_root().join("plugin-sdk/public-api.txt");
    let listing = crate::public_api::listing("kith_plugin_sdk", &repo_root().join("plugin-sdk/src/lib.rs"));
    let current = format!("{SDK_API_HEADER}{listing}");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed == current {
        return;
    }
    if std::env::var("KITH_BLESS").is_ok_and(|v| v == "1") {
        std::fs::write(&path, &current).unwrap();
        return;
    }
    let (old, new): (std::collections::BTreeSet<&str>, std::collections::BTreeSet<&str>) =
        (committed.lines().collect(), current.lines().collect());
    let mut diff: Vec<(&str, char)> = old.difference(&new).map(|line| (*line, '-')).collect();
    diff.extend(new.difference(&old).map(|line| (*line, '+')));
    diff.sort();
    let diff: Vec<String> = diff.into_iter().map(|(line, sign)| format!("{sign} {line}")).collect();
    panic!(
        "the public API of kith-plugin-sdk differs from {} (- committed, + source):\n{}\n\n\
         If the change is deliberate, accept it with\n    \
         KITH_BLESS=1 cargo test -p kith-tests --test it sdk_public_api\n\
         and commit the listing with it; if not, undo it.",
        path.display(),
        diff.join("\n")
    );
}

/// `cargo run` hands the build scripts' `rustc-env` variables to the `kith` binary too, and
/// Kith refuses unknown `KITH_*` variables: a build script must set none, or the README's run
/// command stops working.
#[test]
fn build_scripts_set_no_kith_variables() {
    for path in ["build-support/wasm.rs", "core/build.rs", "tests/build.rs"] {
        let text = std::fs::read_to_string(repo_root().join(path)).unwrap();
        assert!(!text.contains("rustc-env=KITH_"), "{path} sets a KITH_* variable for `cargo run`");
    }
    // The variable each script names for `build_wasm`.
    for path in ["core/build.rs", "tests/build.rs"] {
        let text = std::fs::read_to_string(repo_root().join(path)).unwrap();
        assert!(!text.contains("\"KITH_"), "{path} names a KITH_* variable for `cargo run`");
    }
}

/// Every error code the API can answer is one `Code`, and the README's table of codes lists
/// exactly those, each with what it means.
#[test]
fn every_error_code_is_documented_in_the_readme() {
    let readme = include_str!("../../README.md");
    let start = readme.find("<!-- error codes: start -->").expect("the README's table of error codes");
    let end = readme.find("<!-- error codes: end -->").expect("the end of the table");
    let documented: Vec<(&str, &str)> = readme[start..end]
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|row| {
            let (code, rest) = row.split_once("` |")?;
            Some((code, rest.trim().trim_end_matches('|').trim()))
        })
        .collect();
    let codes: Vec<&str> = kith_core::domain::code::Code::ALL.iter().map(|code| code.as_str()).collect();
    let listed: Vec<&str> = documented.iter().map(|(code, _)| *code).collect();
    let missing: Vec<&&str> = codes.iter().filter(|code| !listed.contains(code)).collect();
    let unknown: Vec<&&str> = listed.iter().filter(|code| !codes.contains(code)).collect();
    assert!(missing.is_empty(), "error codes the README's table lacks: {missing:?}");
    assert!(unknown.is_empty(), "codes in the README's table that Kith never answers: {unknown:?}");
    assert_eq!(listed.len(), codes.len(), "each code once: {listed:?}");
    for (code, meaning) in documented {
        assert!(meaning.len() > 10, "`{code}` needs an explanation in the README");
    }
}
