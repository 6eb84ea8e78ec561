//! The scenario harness: a fresh database per scenario, `cli_app` run as a process on it, and
//! readers for its JSON output and the data its units touch.

use std::process::{Command, Output};

use flamingock_testkit::Backend;
use flamingock_tests::TestDb;
use flamingock_tests::servers::ServerDb;
use serde_json::Value;

/// The database a scenario runs on.
pub enum Db {
    Sqlite(TestDb),
    Postgres(ServerDb),
}

/// One scenario: the database, the directory its non-transactional units write to, and the
/// module of `cli_app` whose units it selects.
pub struct App {
    db: Db,
    pub dir: tempfile::TempDir,
    module: &'static str,
}

impl App {
    /// A scenario on a fresh database of `backend` (SQLite or PostgreSQL), or `None` after a loud
    /// skip when the server is down.
    pub async fn new(backend: Backend, module: &'static str) -> Option<App> {
        let db = match backend {
            Backend::Sqlite => Db::Sqlite(TestDb::sqlite()),
            Backend::Postgres => Db::Postgres(ServerDb::create(backend, "cli").await?),
            Backend::MySql => panic!("the CLI scenarios have no MariaDB schema"),
        };
        Some(App {
            db,
            dir: tempfile::tempdir().expect("a temporary directory"),
            module,
        })
    }

    /// The same database and directory, with the units of another module of `cli_app` (the
    /// program as a later build of it sees them).
    pub fn select(&mut self, module: &'static str) {
        self.module = module;
    }

    pub fn url(&self) -> &str {
        match &self.db {
            Db::Sqlite(db) => &db.url,
            Db::Postgres(db) => &db.url,
        }
    }

    /// Runs `cli_app` with `args`, failing the units named in `fail`.
    pub fn run_failing(&self, args: &[&str], fail: &str) -> Output {
        Command::new(env!("CARGO_BIN_EXE_cli_app"))
            .args(args)
            .env("FLAMINGOCK_DATABASE_URL", self.url())
            .env("CLI_APP_MODULE", self.module)
            .env("CLI_APP_DIR", self.dir.path())
            .env("CLI_APP_FAIL", fail)
            .env_remove("FLAMINGOCK_AUDIT_TABLE")
            .env_remove("USER")
            .output()
            .expect("cli_app runs")
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.run_failing(args, "")
    }

    /// Runs `args`, expecting exit code `code`; returns stdout.
    pub fn expect(&self, args: &[&str], code: i32) -> String {
        let output = self.run(args);
        assert_eq!(
            output.status.code(),
            Some(code),
            "{args:?}\n{}",
            show(&output)
        );
        String::from_utf8(output.stdout).expect("UTF-8 output")
    }

    /// Runs `args` with `--format json`, expecting success; returns the parsed output.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.extend(["--format", "json"]);
        let stdout = self.expect(&args, 0);
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{args:?}: {e}\n{stdout}"))
    }

    /// Every audit row, through `history --format json`.
    pub fn history(&self, filters: &[&str]) -> Vec<Value> {
        let mut args = vec!["history"];
        args.extend(filters);
        match self.json(&args) {
            Value::Array(rows) => rows,
            other => panic!("history is a JSON array, got {other}"),
        }
    }

    pub fn file(&self, name: &str) -> bool {
        self.dir.path().join(name).exists()
    }

    /// Runs one counting query on the database.
    pub async fn count(&self, sqlite: &str, postgres: &str) -> i64 {
        match &self.db {
            Db::Sqlite(db) => sqlx::query_scalar(sqlx::AssertSqlSafe(sqlite))
                .fetch_one(&db.pool().await)
                .await
                .expect("count"),
            Db::Postgres(db) => {
                let pool = sqlx::PgPool::connect(&db.url).await.expect("connect");
                let n = sqlx::query_scalar(sqlx::AssertSqlSafe(postgres))
                    .fetch_one(&pool)
                    .await
                    .expect("count");
                pool.close().await;
                n
            }
        }
    }

    pub async fn has_email_column(&self) -> bool {
        self.count(
            "SELECT COUNT(*) FROM pragma_table_info('clients') WHERE name = 'email'",
            "SELECT COUNT(*) FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = 'clients' AND column_name = 'email'",
        )
        .await
            == 1
    }

    pub async fn clients(&self) -> i64 {
        self.count(
            "SELECT COUNT(*) FROM clients",
            "SELECT COUNT(*) FROM clients",
        )
        .await
    }

    pub async fn finish(self) {
        if let Db::Postgres(db) = self.db {
            db.drop_database().await;
        }
    }
}

pub fn show(output: &Output) -> String {
    format!(
        "status: {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

pub fn states(rows: &[Value]) -> Vec<(String, String)> {
    rows.iter()
        .map(|r| {
            (
                r["change_id"].as_str().expect("change_id").to_owned(),
                r["state"].as_str().expect("state").to_owned(),
            )
        })
        .collect()
}

pub fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

pub fn ids(rows: &[Value]) -> Vec<i64> {
    rows.iter().map(|r| r["id"].as_i64().expect("id")).collect()
}
