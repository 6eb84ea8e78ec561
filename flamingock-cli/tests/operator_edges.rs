//! The standalone `flamingock` binary at the edges an operator meets, on a SQLite file per test:
//! a reader that stops early (`flamingock history | head -1`), a lease that is still running, a
//! lock row nobody can read, a file that may only be read, a command line that is refused.

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use flamingock::lock::Fence;
use flamingock::{AuditEntry, AuditState, RecoveryStrategy, TxStrategy};

/// A SQLite file in a directory of its own, removed with it.
struct SqliteFile {
    dir: tempfile::TempDir,
}

impl SqliteFile {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("a temporary directory"),
        }
    }

    fn path(&self) -> std::path::PathBuf {
        self.dir.path().join("audit.db")
    }

    fn url(&self) -> String {
        format!("sqlite://{}", self.path().display())
    }
}

fn command(url: &str, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_flamingock"));
    command
        .args(args)
        .env_remove("FLAMINGOCK_DATABASE_URL")
        .env_remove("FLAMINGOCK_AUDIT_TABLE")
        .env_remove("FLAMINGOCK_LOCK_TABLE")
        .env("FLAMINGOCK_DATABASE_URL", url);
    command
}

fn flamingock(url: &str, args: &[&str]) -> Output {
    command(url, args).output().expect("flamingock runs")
}

fn show(output: &Output) -> String {
    format!(
        "status: {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn row(change_id: &str, order: &str) -> AuditEntry {
    AuditEntry {
        id: 0,
        execution_id: "run-1".into(),
        change_id: change_id.into(),
        author: "ana".into(),
        change_order: order.into(),
        stage: "default".into(),
        state: AuditState::Applied,
        created_at: None,
        execution_ms: Some(3),
        hostname: "app-host".into(),
        runner_id: "runner".into(),
        target_system: "default".into(),
        tx_strategy: TxStrategy::Shared,
        recovery_strategy: RecoveryStrategy::ManualIntervention,
        app_name: Some("billing".into()),
        app_version: Some("2.1.0".into()),
        source: "billing::units src/units.rs:1".into(),
        checksum: None,
        error: None,
        metadata: None,
        system_version: None,
    }
}

async fn store(url: &str) -> std::sync::Arc<dyn flamingock::AuditStore> {
    let engine = flamingock::Flamingock::builder()
        .database_url(url)
        .build()
        .await
        .expect("the store opens");
    let store = std::sync::Arc::clone(engine.store());
    store.initialize().await.expect("initialize");
    store
}

/// Closes the store's connections, so that another may take the file's locks.
async fn close(store: std::sync::Arc<dyn flamingock::AuditStore>) {
    let pool = store
        .dependencies()
        .get::<flamingock::sqlx_store::sqlx::SqlitePool>()
        .cloned()
        .expect("a SQLite store's pool");
    pool.close().await;
}

#[tokio::test]
async fn a_reader_that_stops_early_ends_history_quietly_with_success() {
    let db = SqliteFile::new();
    let store = store(&db.url()).await;
    // Far more output than a pipe holds (64 KiB on Linux): the binary is still writing when the
    // reader goes away.
    for n in 0..1500 {
        let order = format!("{n:04}");
        store
            .append(
                &row(&format!("unit-{order}-with-a-long-name"), &order),
                None,
            )
            .await
            .expect("append");
    }
    for format in ["table", "json", "csv"] {
        let mut child = command(&db.url(), &["history", "--format", format])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("flamingock starts");
        let mut first = String::new();
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        stdout.read_line(&mut first).expect("a first line");
        assert!(!first.is_empty());
        drop(stdout);
        let output = child.wait_with_output().expect("flamingock ends");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
            "{format}: {stderr}"
        );
        assert_eq!(output.status.code(), Some(0), "{format}: {stderr}");
    }
}

#[tokio::test]
async fn a_running_lease_is_refused_by_plain_release_naming_the_force_option() {
    let db = SqliteFile::new();
    let store = store(&db.url()).await;
    let holder = Fence {
        key: "flamingock".into(),
        owner: "runner-elsewhere".into(),
    };
    let lock = store.lock().expect("SQLite keeps a lock");
    lock.try_acquire(&holder, "host-b", Duration::from_secs(600))
        .await
        .expect("taken");

    let refused = flamingock(&db.url(), &["lock", "release"]);
    assert_eq!(refused.status.code(), Some(1), "{}", show(&refused));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("`flamingock lock release --force`"),
        "{stderr}"
    );
    assert!(lock.read("flamingock").await.expect("read").is_some());

    let forced = flamingock(&db.url(), &["lock", "release", "--force"]);
    assert_eq!(forced.status.code(), Some(0), "{}", show(&forced));
    assert!(lock.read("flamingock").await.expect("read").is_none());
}

#[tokio::test]
async fn history_ages_are_measured_on_the_database_clock() {
    use flamingock_tests::servers::{Server, ServerDb};
    // Each database's clock reads back as an instant (the one rows are stamped with).
    let sqlite = SqliteFile::new();
    let mut servers = Vec::new();
    for server in [Server::Postgres, Server::MySql] {
        if let Some(db) = ServerDb::create(server, "clock").await {
            servers.push(db);
        }
    }
    let urls: Vec<String> = std::iter::once(sqlite.url())
        .chain(servers.iter().map(|db| db.url.clone()))
        .collect();
    for url in &urls {
        let store = store(url).await;
        let now = store.now().await.expect("the database clock");
        let skew = (now - chrono::Utc::now()).num_seconds().abs();
        assert!(skew < 60, "{url}: the database says {now}");
        store
            .append(&row("schema", "1"), None)
            .await
            .expect("append");
        let count = |args: &[&str]| {
            let mut args = args.to_vec();
            args.extend(["--format", "json"]);
            let output = flamingock(url, &args);
            assert_eq!(output.status.code(), Some(0), "{}", show(&output));
            let rows: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
            rows.as_array().map(Vec::len)
        };
        assert_eq!(count(&["history", "--since", "1h"]), Some(1), "{url}");
        assert_eq!(count(&["history", "--until", "1h"]), Some(0), "{url}");
    }
    for db in servers {
        db.drop_database().await;
    }
}

/// A lease row no program wrote: its times are not times and its owner is a blob.
async fn corrupt_lock_row(url: &str) {
    let _ = store(url).await;
    let pool = flamingock::sqlx_store::sqlx::SqlitePool::connect(url)
        .await
        .expect("the file opens");
    flamingock::sqlx_store::sqlx::query(
        "INSERT INTO flamingock_lock (lock_key, owner, hostname, acquired_at, expires_at) \
         VALUES ('flamingock', X'FF00', 'host-c', 'yesterday', 'never')",
    )
    .execute(&pool)
    .await
    .expect("the row is written");
    pool.close().await;
}

#[tokio::test]
async fn a_corrupt_lock_row_is_named_as_such_and_removed_by_force() {
    let db = SqliteFile::new();
    corrupt_lock_row(&db.url()).await;

    for args in [&["lock", "show"][..], &["lock", "release"]] {
        let refused = flamingock(&db.url(), args);
        assert_eq!(refused.status.code(), Some(1), "{}", show(&refused));
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(
            stderr.contains("lock table `flamingock_lock` holds a row Flamingock cannot read")
                && !stderr.contains("audit table"),
            "{stderr}"
        );
        assert!(stderr.contains("host-c"), "what could be read: {stderr}");
        assert!(stderr.contains("lock release --force"), "{stderr}");
    }

    let forced = flamingock(&db.url(), &["lock", "release", "--force"]);
    assert_eq!(forced.status.code(), Some(0), "{}", show(&forced));
    let stdout = String::from_utf8_lossy(&forced.stdout);
    assert!(
        stdout.contains("released lock \"flamingock\"") && stdout.contains("host-c"),
        "{stdout}"
    );
    let shown = flamingock(&db.url(), &["lock", "show"]);
    assert_eq!(shown.status.code(), Some(0), "{}", show(&shown));
    assert!(String::from_utf8_lossy(&shown.stdout).contains("is free"));
}

#[tokio::test]
async fn force_release_reports_an_unreadable_row_in_json_too() {
    let db = SqliteFile::new();
    corrupt_lock_row(&db.url()).await;
    let forced = flamingock(
        &db.url(),
        &["lock", "release", "--force", "--format", "json"],
    );
    assert_eq!(forced.status.code(), Some(0), "{}", show(&forced));
    let report: serde_json::Value = serde_json::from_slice(&forced.stdout).expect("JSON on stdout");
    assert_eq!(report["outcome"], "released");
    assert!(
        report["unreadable"]
            .as_str()
            .is_some_and(|detail| detail.contains("yesterday")),
        "{report}"
    );
}

/// The tables and indexes in a SQLite file, read without writing.
async fn schema(file: &std::path::Path) -> Vec<String> {
    use flamingock::sqlx_store::sqlx::{self, Row};
    let url = format!("sqlite://{}?mode=ro", file.display());
    let pool = sqlx::SqlitePool::connect(&url)
        .await
        .expect("the file opens");
    let rows = sqlx::query("SELECT name FROM sqlite_master ORDER BY name")
        .fetch_all(&pool)
        .await
        .expect("the schema reads");
    pool.close().await;
    rows.iter()
        .map(|row| row.get::<String, _>("name"))
        .collect()
}

#[tokio::test]
async fn commands_that_only_read_work_on_a_file_opened_read_only() {
    let db = SqliteFile::new();
    let store = store(&db.url()).await;
    store
        .append(&row("schema", "1"), None)
        .await
        .expect("append");
    close(store).await;
    // A file another tool made, in SQLite's default (rollback) journal: switching it to WAL
    // would be a write.
    let pool = flamingock::sqlx_store::sqlx::SqlitePool::connect(&db.url())
        .await
        .expect("the file opens");
    flamingock::sqlx_store::sqlx::query("PRAGMA journal_mode = DELETE")
        .execute(&pool)
        .await
        .expect("the journal mode changes");
    pool.close().await;
    // Root ignores file modes: `mode=ro` is how SQLite itself refuses every write.
    let read_only = format!("{}?mode=ro", db.url());

    for args in [
        &["status"][..],
        &["history"],
        &["history", "--since", "1h"],
        &["lock", "show"],
    ] {
        let output = flamingock(&read_only, args);
        assert_eq!(output.status.code(), Some(0), "{args:?}\n{}", show(&output));
    }
    let history = flamingock(&read_only, &["history", "--format", "json"]);
    let rows: serde_json::Value = serde_json::from_slice(&history.stdout).expect("JSON");
    assert_eq!(rows[0]["change_id"], "schema", "{rows}");

    let fix = flamingock(
        &read_only,
        &[
            "fix",
            "schema",
            "--rolled-back",
            "--reason",
            "r",
            "--by",
            "ops",
        ],
    );
    assert_eq!(
        fix.status.code(),
        Some(1),
        "a write is refused: {}",
        show(&fix)
    );
    assert!(!String::from_utf8_lossy(&fix.stderr).contains("panicked"));
}

#[tokio::test]
async fn commands_that_only_read_write_nothing() {
    let db = SqliteFile::new();
    let store = store(&db.url()).await;
    store
        .append(&row("schema", "1"), None)
        .await
        .expect("append");
    drop(store);
    let before = schema(&db.path()).await;

    for args in [&["status"][..], &["history"], &["lock", "show"]] {
        let output = flamingock(&db.url(), args);
        assert_eq!(output.status.code(), Some(0), "{args:?}\n{}", show(&output));
    }
    // `history` on a store opened to write adds its indexes; one that only reads adds none.
    assert_eq!(schema(&db.path()).await, before);
}

#[tokio::test]
async fn a_store_with_no_audit_table_is_said_to_have_none_and_is_left_as_it_was() {
    // Nothing ran against it yet: the answers are empty, a note says why, nothing is created.
    let expect_empty = |url: &str, args: &[&str], empty: &str| {
        let output = flamingock(url, args);
        assert_eq!(output.status.code(), Some(0), "{args:?}\n{}", show(&output));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("there is no audit table"), "{stderr}");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(stdout.contains(empty), "{args:?}: {stdout}");
    };
    let db = SqliteFile::new();
    let no_file = [
        (&["status"][..], "no change units"),
        (&["history"], "no audit rows match"),
        (&["history", "--format", "json"], "[]"),
        (&["lock", "show"], "is free"),
    ];
    for (args, empty) in no_file {
        expect_empty(&db.url(), args, empty);
        assert!(
            !db.path().exists(),
            "{args:?} created {}",
            db.path().display()
        );
    }

    // A database that exists but holds no audit table.
    let created = format!("{}?mode=rwc", db.url());
    let pool = flamingock::sqlx_store::sqlx::SqlitePool::connect(&created)
        .await
        .expect("the file is created");
    flamingock::sqlx_store::sqlx::query("CREATE TABLE other (id INTEGER)")
        .execute(&pool)
        .await
        .expect("a table of the application");
    pool.close().await;
    for (args, empty) in no_file {
        expect_empty(&db.url(), args, empty);
    }
    assert_eq!(schema(&db.path()).await, ["other"]);
}

type CommandLine = &'static [&'static str];
type Environment = &'static [(&'static str, &'static str)];

#[test]
fn a_refused_command_line_leaves_no_sqlite_file_behind() {
    let db = SqliteFile::new();
    // Each command line, with the environment it runs in.
    let refused: [(CommandLine, Environment); 5] = [
        (&["history", "--since", "nonsense"], &[]),
        (&["history", "--state", "DONE"], &[]),
        (&["status", "--format", "html"], &[]),
        (&["fix", "a", "--applied", "--reason", "r"], &[]),
        (
            &["fix", "a", "--applied", "--reason", "r", "--by", "ops"],
            &[("FLAMINGOCK_LOCK_TABLE", "FLAMINGOCK_AUDIT_LOG")],
        ),
    ];
    for (args, env) in refused {
        let mut command = command(&db.url(), args);
        command.env_remove("USER").env_remove("USERNAME");
        command.envs(env.iter().copied());
        let output = command.output().expect("flamingock runs");
        assert!(
            matches!(output.status.code(), Some(1 | 2)),
            "{args:?}\n{}",
            show(&output)
        );
        assert!(!db.path().exists(), "{args:?} left {}", db.path().display());
    }
}

/// An error text carries ids verbatim: what would act on the terminal (an escape sequence, a
/// direction override) is shown escaped on stderr, not sent raw.
#[test]
fn error_texts_reach_the_terminal_escaped() {
    let db = SqliteFile::new();
    let refused = flamingock(
        &db.url(),
        &[
            "fix",
            "unit\u{1b}[2Jwiped\u{202E}",
            "--applied",
            "--by",
            "ops",
            "--reason",
            "checked",
        ],
    );
    assert_eq!(refused.status.code(), Some(1), "{}", show(&refused));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !stderr.contains('\u{1b}'),
        "a raw escape reached stderr: {stderr:?}"
    );
    assert!(
        !stderr.contains('\u{202E}'),
        "a raw override reached stderr: {stderr:?}"
    );
    assert!(
        stderr.contains("unit\\u{001B}[2Jwiped\\u{202E}"),
        "{stderr}"
    );
}
