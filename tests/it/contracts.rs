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
    crate::cli::run_cli("sqlite::memory:", &["schema", "print", "--output", out.to_str().unwrap()], "").await.unwrap();
    assert_eq!(std::fs::read_to_string(&out).unwrap(), kith_core::api::schema::core_sdl().unwrap());
    let _ = std::fs::remove_dir_all(dir);
}
