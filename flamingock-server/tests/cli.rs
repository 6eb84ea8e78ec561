//! The standalone `flamingock` binary through a real server process: units run through the
//! server, then `status`, `history` and `lock show` with a reader's token, a reader's `fix`
//! refused with a message that says which role records fixes (nothing written), and an
//! operator's `fix` recorded with the person's name; on a server on SQLite and on PostgreSQL.
//!
//! The `flamingock` binary is the one beside the server's in the target directory (a workspace
//! build, as CI's, makes both); when it is missing it is built first (`cargo build -p
//! flamingock-cli`).

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};

use common::{BIN, Server, fresh, token};
use flamingock::{ChangeUnit, Flamingock};
use flamingock_testkit::Backend;
use serde_json::Value;

pub mod service {
    #[flamingock::change_unit(id = "announce", order = "1", author = "ana", transactional = false)]
    pub mod announce {
        #[execution]
        pub fn execute() {}
    }

    #[flamingock::change_unit(id = "export", order = "2", author = "bo", transactional = false)]
    pub mod export {
        #[execution]
        pub fn execute() -> Result<(), std::io::Error> {
            Err(std::io::Error::other("the export endpoint answered 500"))
        }
    }
}

/// The `flamingock` binary of this build.
fn cli() -> PathBuf {
    let dir = std::path::Path::new(BIN)
        .parent()
        .expect("the server binary's directory");
    let cli = dir.join(format!("flamingock{}", std::env::consts::EXE_SUFFIX));
    if !cli.exists() {
        let target = dir.parent().expect("the target directory");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-p", "flamingock-cli", "--bin", "flamingock"])
            .arg("--target-dir")
            .arg(target)
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building the flamingock binary failed");
    }
    cli
}

/// `flamingock <args>` on `url` with `token` (none: no token at all).
fn flamingock(url: &str, token: Option<&str>, args: &[&str]) -> Output {
    let mut command = Command::new(cli());
    command
        .args(args)
        .env("FLAMINGOCK_DATABASE_URL", url)
        .env_remove("FLAMINGOCK_TOKEN")
        .env_remove("DATABASE_URL")
        .env_remove("USER");
    if let Some(token) = token {
        command.env("FLAMINGOCK_TOKEN", token);
    }
    command.output().expect("flamingock runs")
}

fn show(output: &Output) -> String {
    format!(
        "status: {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Runs `args`, expects exit `code`, returns standard output.
fn expect(url: &str, token: &str, args: &[&str], code: i32) -> String {
    let output = flamingock(url, Some(token), args);
    assert_eq!(
        output.status.code(),
        Some(code),
        "{args:?}\n{}",
        show(&output)
    );
    String::from_utf8(output.stdout).expect("UTF-8")
}

fn json(url: &str, token: &str, args: &[&str]) -> Value {
    let mut args = args.to_vec();
    args.extend(["--format", "json"]);
    let stdout = expect(url, token, &args, 0);
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{args:?}: {e}\n{stdout}"))
}

fn states(history: &Value) -> Vec<(String, String)> {
    history
        .as_array()
        .expect("rows")
        .iter()
        .map(|row| {
            (
                row["change_id"].as_str().expect("an id").to_owned(),
                row["state"].as_str().expect("a state").to_owned(),
            )
        })
        .collect()
}

async fn the_cli_reads_and_fixes_through_the_server(backend: Backend) {
    let Some(db) = fresh(backend, "server_cli").await else {
        return;
    };
    let server = Server::start(&db.url);
    let url = server.url("orders", "prod");
    let runner = token(&db.url, "runner", Some(("orders", "prod")));
    let reader = token(&db.url, "reader", Some(("orders", "prod")));
    let operator = token(&db.url, "operator", Some(("orders", "prod")));
    let units: Vec<&'static ChangeUnit> = ChangeUnit::registered()
        .filter(|unit| unit.source.module_path.contains("::service::"))
        .collect();
    let engine = Flamingock::builder()
        .database_url(&url)
        .token(runner.clone())
        .build()
        .await
        .expect("the engine");
    engine
        .run(units.iter().copied())
        .await
        .expect_err("export fails");

    let status = expect(&url, &reader, &["status"], 0);
    assert!(status.contains("BLOCKED"), "{status}");
    assert!(status.contains("flamingock fix export"), "{status}");
    assert!(
        status.contains("the export endpoint answered 500"),
        "{status}"
    );
    let check = flamingock(&url, Some(&reader), &["status", "--check"]);
    assert_eq!(check.status.code(), Some(4), "{}", show(&check));

    let history = json(&url, &reader, &["history"]);
    let before = [
        ("announce", "STARTED"),
        ("announce", "APPLIED"),
        ("export", "STARTED"),
        ("export", "FAILED"),
    ]
    .map(|(id, state)| (id.to_owned(), state.to_owned()));
    assert_eq!(states(&history), before);
    let filtered = json(&url, &reader, &["history", "--change", "export"]);
    assert_eq!(states(&filtered), before[2..]);
    let lock = expect(&url, &reader, &["lock", "show"], 0);
    assert!(lock.contains("is free"), "{lock}");

    // A reader records no fix: refused, saying which role does, and nothing written.
    let fix = [
        "fix",
        "export",
        "--applied",
        "--reason",
        "sent the export by hand",
        "--by",
        "eva",
    ];
    let refused = flamingock(&url, Some(&reader), &fix);
    assert_eq!(refused.status.code(), Some(1), "{}", show(&refused));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("403")
            && stderr.contains("role reader")
            && stderr.contains("a fix takes an operator"),
        "{}",
        show(&refused)
    );
    assert!(!stderr.contains(&reader), "the token is never shown");
    assert_eq!(states(&json(&url, &reader, &["history"])), before);
    // No token at all: refused before anything is sent, naming the variable.
    let anonymous = flamingock(&url, None, &["status"]);
    assert_eq!(anonymous.status.code(), Some(1), "{}", show(&anonymous));
    assert!(
        String::from_utf8_lossy(&anonymous.stderr).contains("FLAMINGOCK_TOKEN"),
        "{}",
        show(&anonymous)
    );

    let fixed = json(&url, &operator, &fix);
    assert_eq!(fixed["previous"], "FAILED");
    assert_eq!(fixed["entry"]["author"], "eva");
    let history = json(&url, &reader, &["history"]);
    let mut after = before.to_vec();
    after.push(("export".into(), "MANUAL_MARKED_AS_APPLIED".into()));
    assert_eq!(states(&history), after);
    let manual = json(&url, &reader, &["history", "--author", "eva"]);
    assert_eq!(manual[0]["metadata"]["reason"], "sent the export by hand");
    let check = expect(&url, &reader, &["status", "--check"], 0);
    assert!(check.starts_with("up to date"), "{check}");
    // The run skips the fixed unit.
    let report = engine.run(units.iter().copied()).await.expect("the run");
    assert!(report.applied().is_empty(), "{report}");
    drop(server);
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_reads_and_fixes_through_a_server_on_sqlite() {
    the_cli_reads_and_fixes_through_the_server(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_reads_and_fixes_through_a_server_on_postgres() {
    the_cli_reads_and_fixes_through_the_server(Backend::Postgres).await;
}
