//! The standalone `flamingock` binary against an audit store it did not write: status marks the
//! blocked unit with its fix command, history filters return exactly the rows asked for, fix
//! resolves the block, lock shows and releases; on a fresh SQLite file and a fresh PostgreSQL
//! database per test.

use std::process::{Command, Output};

use flamingock::{AuditEntry, AuditState, RecoveryStrategy, TxStrategy};
use flamingock_testkit::Backend;
use flamingock_tests::TestDb;
use flamingock_tests::servers::ServerDb;
use serde_json::Value;

enum Db {
    Sqlite(TestDb),
    Server(ServerDb),
}

impl Db {
    /// A fresh database of `backend`, or `None` after a loud skip when the server is down.
    async fn new(backend: Backend) -> Option<Db> {
        Some(match backend {
            Backend::Sqlite => Db::Sqlite(TestDb::sqlite()),
            server => Db::Server(ServerDb::create(server, "standalone").await?),
        })
    }

    fn url(&self) -> &str {
        match self {
            Db::Sqlite(db) => &db.url,
            Db::Server(db) => &db.url,
        }
    }

    async fn finish(self) {
        if let Db::Server(db) = self {
            db.drop_database().await;
        }
    }
}

fn flamingock(url: Option<&str>, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_flamingock"));
    command
        .args(args)
        .env_remove("FLAMINGOCK_DATABASE_URL")
        .env_remove("DATABASE_URL")
        .env_remove("FLAMINGOCK_AUDIT_TABLE")
        .env_remove("USER");
    if let Some(url) = url {
        command.env("FLAMINGOCK_DATABASE_URL", url);
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

fn expect(url: &str, args: &[&str], code: i32) -> String {
    let output = flamingock(Some(url), args);
    assert_eq!(
        output.status.code(),
        Some(code),
        "{args:?}\n{}",
        show(&output)
    );
    String::from_utf8(output.stdout).expect("UTF-8")
}

fn json(url: &str, args: &[&str]) -> Value {
    let mut args = args.to_vec();
    args.extend(["--format", "json"]);
    let stdout = expect(url, &args, 0);
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{args:?}: {e}\n{stdout}"))
}

fn row(change_id: &str, order: &str, author: &str, state: AuditState, run: &str) -> AuditEntry {
    AuditEntry {
        id: 0,
        execution_id: run.into(),
        change_id: change_id.into(),
        author: author.into(),
        change_order: order.into(),
        stage: "default".into(),
        state,
        created_at: None,
        execution_ms: Some(3),
        hostname: "app-host".into(),
        runner_id: "runner".into(),
        target_system: "default".into(),
        tx_strategy: if change_id == "export" {
            TxStrategy::NonTransactional
        } else {
            TxStrategy::Shared
        },
        recovery_strategy: RecoveryStrategy::ManualIntervention,
        app_name: Some("billing".into()),
        app_version: Some("2.1.0".into()),
        source: "billing::units src/units.rs:1".into(),
        checksum: None,
        error: (state == AuditState::Failed).then(|| "connection reset".into()),
        metadata: None,
        system_version: None,
    }
}

/// Writes a log as a program would have: two runs, the second leaving "export" FAILED.
async fn seed(url: &str) {
    let engine = flamingock::Flamingock::builder()
        .database_url(url)
        .build()
        .await
        .expect("the store opens");
    let store = engine.store();
    store.initialize().await.expect("initialize");
    let rows = [
        row("schema", "1", "ana", AuditState::Applied, "run-1"),
        row("seed", "2", "ana", AuditState::Applied, "run-1"),
        row("index", "3", "bo", AuditState::Applied, "run-2"),
        row("export", "4", "bo", AuditState::Started, "run-2"),
        row("export", "4", "bo", AuditState::Failed, "run-2"),
    ];
    for entry in rows {
        store.append(&entry, None).await.expect("append");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// Every scenario on one database (stamped by `flamingock_testkit::for_each_backend!` on SQLite
/// and PostgreSQL).
macro_rules! standalone_suite {
    ($name:ident, $db:ty, $backend:expr) => {
        mod $name {
            standalone_suite!(@scenarios $backend;
                status_history_fix_and_lock_on_the_store_alone,
                history_filters_by_author_and_date_range,
            );
        }
    };
    (@scenarios $backend:expr; $($scenario:ident,)*) => {$(
        #[tokio::test]
        async fn $scenario() {
            super::$scenario($backend).await;
        }
    )*};
}

flamingock_testkit::for_each_backend!(standalone_suite, [sqlite, postgres]);

async fn status_history_fix_and_lock_on_the_store_alone(backend: Backend) {
    let Some(db) = Db::new(backend).await else {
        return;
    };
    let url = db.url();
    seed(url).await;

    let status = expect(url, &["status"], 0);
    assert!(status.contains("BLOCKED"), "{status}");
    assert!(
        status.contains("flamingock fix export --applied"),
        "{status}"
    );
    assert!(status.contains("connection reset"), "{status}");
    let lines = json(url, &["status"]);
    let statuses: Vec<(&str, &str)> = lines
        .as_array()
        .expect("lines")
        .iter()
        .map(|l| {
            (
                l["change_id"].as_str().unwrap(),
                l["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        [
            ("schema", "applied"),
            ("seed", "applied"),
            ("index", "applied"),
            ("export", "BLOCKED")
        ]
    );

    // The check from the audit alone: the blocked unit, exit 4.
    let check = expect(url, &["status", "--check"], 4);
    assert!(check.contains("\"export\""), "{check}");
    let output = flamingock(Some(url), &["status", "--check", "--format", "json"]);
    assert_eq!(output.status.code(), Some(4), "{}", show(&output));
    let check: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(
        (check["status"].as_str(), check["units"].as_u64()),
        (Some("blocked"), Some(4))
    );

    let html = expect(url, &["history", "--format", "html"], 0);
    assert!(html.starts_with("<!DOCTYPE html>") && html.contains("run-2"));
    assert!(html.contains("connection reset") && html.contains("<tr class=\"bad\">"));

    let unknown = flamingock(
        Some(url),
        &["fix", "nope", "--applied", "--reason", "r", "--by", "x"],
    );
    assert_eq!(unknown.status.code(), Some(1), "{}", show(&unknown));
    let fixed = json(
        url,
        &[
            "fix",
            "export",
            "--applied",
            "--reason",
            "file complete",
            "--by",
            "ops-eva",
        ],
    );
    assert_eq!(fixed["previous"], "FAILED");
    assert_eq!(
        fixed["entry"]["tx_strategy"], "NON_TX",
        "copied from the unit's rows"
    );
    let after = json(url, &["status"]);
    assert_eq!(after[3]["status"], "applied (by hand)");
    let check = expect(url, &["status", "--check"], 0);
    assert!(
        check.starts_with("up to date: all 4 units applied"),
        "{check}"
    );
    assert_eq!(after[3]["by"], "ops-eva");
    let manual = json(url, &["history", "--state", "MANUAL_MARKED_AS_APPLIED"]);
    assert_eq!(manual.as_array().map(Vec::len), Some(1));
    assert_eq!(manual[0]["metadata"]["reason"], "file complete");

    assert!(expect(url, &["lock", "show"], 0).contains("is free"));
    assert!(expect(url, &["lock", "release"], 0).contains("nothing released"));
    db.finish().await;
}

async fn history_filters_by_author_and_date_range(backend: Backend) {
    let Some(db) = Db::new(backend).await else {
        return;
    };
    let url = db.url();
    seed(url).await;
    let all = json(url, &["history"]);
    let all = all.as_array().expect("rows");
    assert_eq!(all.len(), 5);
    let ids = |rows: &Value| -> Vec<i64> {
        rows.as_array()
            .expect("rows")
            .iter()
            .map(|r| r["id"].as_i64().expect("id"))
            .collect()
    };
    let all_ids = ids(&Value::Array(all.clone()));

    assert_eq!(
        ids(&json(url, &["history", "--author", "bo"])),
        all_ids[2..]
    );
    assert_eq!(
        ids(&json(url, &["history", "--author", "ana"])),
        all_ids[..2]
    );
    let t2 = all[2]["created_at"].as_str().expect("time");
    let t4 = all[4]["created_at"].as_str().expect("time");
    assert_eq!(
        ids(&json(url, &["history", "--since", t2, "--until", t4])),
        all_ids[2..4]
    );
    assert_eq!(
        ids(&json(url, &["history", "--author", "bo", "--until", t4])),
        all_ids[2..4]
    );
    assert_eq!(
        ids(&json(url, &["history", "--execution", "run-1"])),
        all_ids[..2]
    );
    assert_eq!(
        ids(&json(
            url,
            &["history", "--change", "export", "--newest-first"]
        )),
        [all_ids[4], all_ids[3]]
    );
    let csv = expect(url, &["history", "--format", "csv", "--author", "ana"], 0);
    assert_eq!(csv.lines().count(), 3, "{csv}");
    assert!(
        csv.starts_with("id,created_at,execution_id,change_id"),
        "{csv}"
    );
    db.finish().await;
}

#[tokio::test]
async fn database_url_is_the_store_when_flamingock_database_url_is_unset() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let url = format!("sqlite://{}", dir.path().join("app.db").display());
    seed(&url).await;
    let output = Command::new(env!("CARGO_BIN_EXE_flamingock"))
        .args(["history", "--format", "json"])
        .env_remove("FLAMINGOCK_DATABASE_URL")
        .env_remove("FLAMINGOCK_AUDIT_TABLE")
        .env("DATABASE_URL", &url)
        .output()
        .expect("flamingock runs");
    assert!(output.status.success(), "{}", show(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("note: audit store from DATABASE_URL (sqlite://")
            && stderr.contains("as FLAMINGOCK_DATABASE_URL is unset"),
        "{stderr}"
    );
    let rows: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(rows.as_array().map(Vec::len), Some(5), "{rows}");
}

#[test]
fn usage_errors_exit_with_two() {
    let no_store = flamingock(None, &["history"]);
    assert_eq!(no_store.status.code(), Some(2), "{}", show(&no_store));
    assert!(String::from_utf8_lossy(&no_store.stderr).contains("FLAMINGOCK_DATABASE_URL"));
    let apply = flamingock(Some("sqlite::memory:"), &["apply"]);
    assert_eq!(
        apply.status.code(),
        Some(2),
        "the standalone binary has no `apply`"
    );
    let help = flamingock(None, &["--help"]);
    assert_eq!(help.status.code(), Some(0));
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("Examples:") && help.contains("flamingock fix"),
        "{help}"
    );
}
