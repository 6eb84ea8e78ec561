//! A user's own workspace outside this repository (tests/fixtures/two-crate): the change units in
//! a library crate `my-units`, the program in `my-app`, each depending on this repository's
//! `flamingock` by path, with the `Cargo.toml` lines the README gives. Built with cargo and run:
//! the program that names the units crate applies its units; the one that forgot to is refused
//! with a message that says why, and writes nothing.
//!
//! The workspace is built in `<target>/tmp/two-crate-fixture` with its own target directory
//! there, kept between runs: the first build compiles flamingock's SQLite dependencies (a few
//! minutes on two cores), later ones only what changed.
#![cfg(unix)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sqlx::Connection;

/// The fixture's sources in this repository.
const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/two-crate");
/// Where it is copied, built and kept between runs.
const BUILD_DIR: &str = concat!(env!("CARGO_TARGET_TMPDIR"), "/two-crate-fixture");

/// Copies the fixture to `BUILD_DIR/workspace` (its `Cargo.toml.in` as `Cargo.toml`, pointing at
/// this repository's `flamingock`), seeded with this repository's `Cargo.lock` so that it builds
/// the same versions, offline. Files that did not change are not rewritten, so cargo rebuilds
/// nothing for them.
fn prepare_workspace() -> PathBuf {
    let workspace = Path::new(BUILD_DIR).join("workspace");
    let repository = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate is inside the repository");
    let flamingock = repository
        .join("flamingock")
        .canonicalize()
        .expect("the flamingock crate is there");
    copy_tree(Path::new(FIXTURE), &workspace, &|name, text| {
        if name == "Cargo.toml.in" {
            let text = text.replace(
                "@FLAMINGOCK_PATH@",
                flamingock.to_str().expect("a UTF-8 path"),
            );
            ("Cargo.toml".to_owned(), text)
        } else {
            (name.to_owned(), text)
        }
    });
    let lock = std::fs::read_to_string(repository.join("Cargo.lock")).expect("Cargo.lock");
    write_if_changed(&workspace.join("Cargo.lock"), &lock);
    workspace
}

fn copy_tree(from: &Path, to: &Path, render: &dyn Fn(&str, String) -> (String, String)) {
    std::fs::create_dir_all(to).expect("create the fixture's directory");
    for entry in std::fs::read_dir(from).expect("read the fixture") {
        let entry = entry.expect("a fixture entry");
        let name = entry.file_name().into_string().expect("a UTF-8 file name");
        if entry.file_type().expect("a file type").is_dir() {
            copy_tree(&entry.path(), &to.join(&name), render);
        } else {
            let text = std::fs::read_to_string(entry.path()).expect("read a fixture file");
            let (name, text) = render(&name, text);
            write_if_changed(&to.join(name), &text);
        }
    }
}

fn write_if_changed(path: &Path, text: &str) {
    if std::fs::read_to_string(path).ok().as_deref() != Some(text) {
        std::fs::write(path, text).expect("write a fixture file");
    }
}

/// Builds the fixture's binaries and returns the directory they are in.
fn build(workspace: &Path) -> PathBuf {
    let target = Path::new(BUILD_DIR).join("target");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let started = std::time::Instant::now();
    let output = Command::new(cargo)
        .args(["build", "--offline", "--bins", "--quiet"])
        .current_dir(workspace)
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("CARGO_BUILD_TARGET_DIR")
        .env("CARGO_TERM_COLOR", "never")
        .output()
        .expect("run cargo");
    assert!(
        output.status.success(),
        "building the two-crate workspace failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    eprintln!("built the two-crate workspace in {:?}", started.elapsed());
    target.join("debug")
}

/// Runs a fixture binary in `dir` with the given environment (nothing else of Flamingock's).
fn run(binary: &Path, dir: &Path, env: &[(&str, String)]) -> Output {
    let mut command = Command::new(binary);
    command
        .current_dir(dir)
        .env_remove("FLAMINGOCK_DATABASE_URL")
        .env_remove("DATABASE_URL")
        .env_remove("FLAMINGOCK_AUDIT_TABLE");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("run a fixture binary")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The audit rows of a SQLite file, as (change id, state), oldest first.
async fn audit_rows(file: &Path) -> Vec<(String, String)> {
    let url = format!("sqlite://{}", file.display());
    let mut connection = sqlx::SqliteConnection::connect(&url)
        .await
        .expect("open the audit file");
    sqlx::query_as("SELECT change_id, state FROM flamingock_audit_log ORDER BY id")
        .fetch_all(&mut connection)
        .await
        .expect("read the audit")
}

async fn client_count(file: &Path) -> i64 {
    let url = format!("sqlite://{}", file.display());
    let mut connection = sqlx::SqliteConnection::connect(&url)
        .await
        .expect("open the database");
    sqlx::query_scalar("SELECT COUNT(*) FROM clients")
        .fetch_one(&mut connection)
        .await
        .expect("count the clients")
}

fn applied(ids: &[&str]) -> Vec<(String, String)> {
    ids.iter()
        .map(|id| ((*id).to_owned(), "APPLIED".to_owned()))
        .collect()
}

/// One test, so that the workspace is built once: each step's failure names the step.
#[tokio::test]
async fn units_in_a_library_crate_run_when_named_and_a_forgotten_link_is_an_error() {
    let bin = build(&prepare_workspace());
    let dir = tempfile::tempdir().expect("a temp dir");

    // The program that names the crate applies both of its units, in one transaction each.
    let db = dir.path().join("app.db");
    let url = (
        "FLAMINGOCK_DATABASE_URL",
        format!("sqlite://{}", db.display()),
    );
    let first = run(&bin.join("my-app"), dir.path(), std::slice::from_ref(&url));
    assert!(
        first.status.success(),
        "my-app failed:\n{}",
        text(&first.stderr)
    );
    assert!(
        text(&first.stdout).contains("2 applied, 0 already applied"),
        "{}",
        text(&first.stdout)
    );
    assert_eq!(
        audit_rows(&db).await,
        applied(&["create-clients", "seed-clients"])
    );
    assert_eq!(client_count(&db).await, 2);

    // Run again: nothing to do, nothing written.
    let second = run(&bin.join("my-app"), dir.path(), std::slice::from_ref(&url));
    assert!(second.status.success(), "{}", text(&second.stderr));
    assert!(
        text(&second.stdout).contains("all 2 units already applied"),
        "{}",
        text(&second.stdout)
    );
    assert_eq!(audit_rows(&db).await.len(), 2);

    // Forgetting the `.units(..)` line is an error that names the cause and the fix, printed by
    // `main() -> Result<(), flamingock::Error>` as text a person reads; nothing is written, not
    // even the database file.
    let forgot_db = dir.path().join("forgot.db");
    let forgot = run(
        &bin.join("forgot-link"),
        dir.path(),
        &[(
            "FLAMINGOCK_DATABASE_URL",
            format!("sqlite://{}", forgot_db.display()),
        )],
    );
    let stderr = text(&forgot.stderr);
    assert_eq!(
        forgot.status.code(),
        Some(1),
        "forgot-link must fail:\n{stderr}\n{}",
        text(&forgot.stdout)
    );
    assert!(
        stderr.starts_with("Error: no change units are registered in this program"),
        "{stderr}"
    );
    assert!(
        stderr.contains("\n  - units declared in a library crate are registered only if the program names that crate"),
        "the Debug form is the readable text, one cause a line:\n{stderr}"
    );
    assert!(stderr.contains("flamingock::export_units!();"), "{stderr}");
    assert!(
        stderr.contains(".units(my_units::change_units())"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("NoUnitsSelected {"),
        "not the derived Debug form:\n{stderr}"
    );
    assert!(!forgot_db.exists(), "a refused run opens no database");

    // With only sqlx's own DATABASE_URL set, the audit store is that database.
    let shared_db = dir.path().join("from-database-url.db");
    let shared = run(
        &bin.join("my-app"),
        dir.path(),
        &[("DATABASE_URL", format!("sqlite://{}", shared_db.display()))],
    );
    assert!(shared.status.success(), "{}", text(&shared.stderr));
    assert_eq!(
        audit_rows(&shared_db).await,
        applied(&["create-clients", "seed-clients"])
    );
    assert!(
        !dir.path().join("flamingock.db").exists(),
        "the default file is not used"
    );
}
