//! The harness of the fleet tests: a fresh audit database per test, several `fleet_runner`
//! processes started at the same moment, signals to kill or pause one, and readers for what they
//! left behind (audit rows, rows of the target table, lines of the effects file).
//!
//! Every wait is bounded, and a [`Fleet`] kills the processes it started when it is dropped, so a
//! failing test leaves nothing running.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use flamingock::{AuditEntry, AuditState, Engine, Flamingock};
use sqlx::{AssertSqlSafe, Connection};

use crate::TestDb;
use crate::servers::ServerDb;

/// How long any single step of a fleet test may take before the test fails.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(90);

/// The audit store's database.
pub use flamingock_testkit::Backend;

/// A fresh database for one fleet test, holding the audit, the lock and the `fleet_effects` table
/// the transactional units write to.
pub struct FleetDb {
    pub backend: Backend,
    pub url: String,
    sqlite: Option<TestDb>,
    server: Option<ServerDb>,
}

impl FleetDb {
    /// A fresh database with an empty `fleet_effects` table, or `None` after a loud skip when
    /// the server is down (a failure under `FLAMINGOCK_REQUIRE_SERVERS=1`).
    pub async fn create(backend: Backend, hint: &str) -> Option<FleetDb> {
        let db = match backend {
            Backend::Sqlite => {
                let sqlite = TestDb::sqlite();
                FleetDb {
                    backend,
                    url: sqlite.url.clone(),
                    sqlite: Some(sqlite),
                    server: None,
                }
            }
            Backend::Postgres | Backend::MySql => {
                let server = ServerDb::create(backend, hint).await?;
                FleetDb {
                    backend,
                    url: server.url.clone(),
                    sqlite: None,
                    server: Some(server),
                }
            }
        };
        db.execute(
            "CREATE TABLE fleet_effects (change_id VARCHAR(100) NOT NULL, runner_id VARCHAR(100) NOT NULL)",
        )
        .await;
        Some(db)
    }

    /// Runs SQL text (no binds) on the fleet database.
    pub async fn execute(&self, statement: &str) {
        let statement = AssertSqlSafe(statement.to_owned());
        let result = match self.backend {
            Backend::Sqlite => match self.sqlite.as_ref() {
                Some(db) => sqlx::raw_sql(statement)
                    .execute(&db.pool().await)
                    .await
                    .map(drop),
                None => unreachable!("a SQLite fleet database has its file"),
            },
            Backend::Postgres => match sqlx::PgConnection::connect(&self.url).await {
                Ok(mut conn) => sqlx::raw_sql(statement).execute(&mut conn).await.map(drop),
                Err(error) => Err(error),
            },
            Backend::MySql => match sqlx::MySqlConnection::connect(&self.url).await {
                Ok(mut conn) => sqlx::raw_sql(statement).execute(&mut conn).await.map(drop),
                Err(error) => Err(error),
            },
        };
        result.expect("a statement on the fleet database");
    }

    /// The one integer `query` selects (NULL: `None`).
    pub async fn scalar(&self, query: &str) -> Option<i64> {
        let query = AssertSqlSafe(query.to_owned());
        match self.backend {
            Backend::Sqlite => {
                let pool = self.sqlite.as_ref().expect("the SQLite file").pool().await;
                sqlx::query_scalar(query).fetch_one(&pool).await
            }
            Backend::Postgres => {
                let mut conn = sqlx::PgConnection::connect(&self.url)
                    .await
                    .expect("connect");
                sqlx::query_scalar(query).fetch_one(&mut conn).await
            }
            Backend::MySql => {
                let mut conn = sqlx::MySqlConnection::connect(&self.url)
                    .await
                    .expect("connect");
                sqlx::query_scalar(query).fetch_one(&mut conn).await
            }
        }
        .expect("a scalar query on the fleet database")
    }

    /// How many rows of `fleet_effects` each change id has.
    pub async fn effect_rows(&self) -> BTreeMap<String, i64> {
        let query = "SELECT change_id, COUNT(*) AS n FROM fleet_effects GROUP BY change_id";
        let rows: Vec<(String, i64)> = match self.backend {
            Backend::Sqlite => {
                let pool = self.sqlite.as_ref().expect("the SQLite file").pool().await;
                sqlx::query_as(query).fetch_all(&pool).await
            }
            Backend::Postgres => {
                let mut conn = sqlx::PgConnection::connect(&self.url)
                    .await
                    .expect("connect");
                sqlx::query_as(query).fetch_all(&mut conn).await
            }
            Backend::MySql => {
                let mut conn = sqlx::MySqlConnection::connect(&self.url)
                    .await
                    .expect("connect");
                sqlx::query_as(query).fetch_all(&mut conn).await
            }
        }
        .expect("counting fleet_effects");
        rows.into_iter().collect()
    }

    /// An engine on this database, for reading the audit and the lock.
    pub async fn engine(&self) -> Engine {
        Flamingock::builder()
            .database_url(&self.url)
            .build()
            .await
            .expect("the fleet database opens")
    }

    /// Every audit row, oldest first.
    pub async fn entries(&self) -> Vec<AuditEntry> {
        let engine = self.engine().await;
        engine.store().initialize().await.expect("the audit table");
        engine.store().entries().await.expect("the audit reads")
    }

    /// Drops the server database (SQLite files go with their directory).
    pub async fn drop_database(self) {
        if let Some(server) = self.server {
            server.drop_database().await;
        }
    }
}

/// The states of each unit's rows, oldest first.
pub fn states_by_unit(entries: &[AuditEntry]) -> BTreeMap<String, Vec<AuditState>> {
    let mut states: BTreeMap<String, Vec<AuditState>> = BTreeMap::new();
    for entry in entries {
        states
            .entry(entry.change_id.clone())
            .or_default()
            .push(entry.state);
    }
    states
}

/// The ids of the fifty units, in order, and of the slow unit `--slow` adds (`None` for none).
pub fn unit_ids(slow: Option<&str>) -> Vec<String> {
    let mut ids: Vec<String> = (1..=50)
        .map(|n| {
            if n % 2 == 1 {
                format!("tx-{n:03}")
            } else {
                format!("file-{n:03}")
            }
        })
        .collect();
    if let Some(slow) = slow {
        ids.insert(25, format!("slow-{slow}"));
    }
    ids
}

/// One started `fleet_runner`.
pub struct Runner {
    pub pid: u32,
    child: Child,
    status: Option<ExitStatus>,
    out: PathBuf,
    err: PathBuf,
}

impl Runner {
    /// What it printed on stdout and stderr.
    pub fn output(&self) -> String {
        let read = |path: &Path| std::fs::read_to_string(path).unwrap_or_default();
        format!(
            "--- runner {} stdout ---\n{}--- stderr ---\n{}",
            self.pid,
            read(&self.out),
            read(&self.err)
        )
    }

    /// What it printed on stderr.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default()
    }

    /// The units it reported as applied (`FLEET applied=<n>`), if it succeeded.
    pub fn applied(&self) -> Option<usize> {
        let out = std::fs::read_to_string(&self.out).ok()?;
        let line = out.lines().find(|l| l.starts_with("FLEET applied="))?;
        line["FLEET applied=".len()..]
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }

    /// Its exit code, once it has exited (`None` before, or when a signal ended it).
    pub fn code(&self) -> Option<i32> {
        self.status.and_then(|s| s.code())
    }
}

/// Processes of one test, in their shared directory.
pub struct Fleet {
    dir: tempfile::TempDir,
    program: PathBuf,
    url: String,
    pub runners: Vec<Runner>,
}

impl Fleet {
    /// A fleet of `program` (the `fleet_runner` binary: `env!("CARGO_BIN_EXE_fleet_runner")` in
    /// an integration test) for the database at `url`, with no process yet.
    pub fn new(program: &str, url: &str) -> Fleet {
        Fleet {
            dir: tempfile::tempdir().expect("a directory for the fleet"),
            program: PathBuf::from(program),
            url: url.to_owned(),
            runners: Vec::new(),
        }
    }

    /// The shared directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Starts `count` runners with `args` (beyond `--url` and `--dir`), waits until each is
    /// connected and waiting, and returns their indexes. They start their runs at [`go`](Self::go).
    pub fn spawn(&mut self, count: usize, args: &[&str]) -> std::ops::Range<usize> {
        let first = self.runners.len();
        for i in first..first + count {
            let out = self.dir().join(format!("out-{i}.log"));
            let err = self.dir().join(format!("err-{i}.log"));
            let child = Command::new(&self.program)
                .args(["--url", &self.url, "--dir"])
                .arg(self.dir())
                .args(args)
                .stdin(Stdio::null())
                .stdout(std::fs::File::create(&out).expect("stdout file"))
                .stderr(std::fs::File::create(&err).expect("stderr file"))
                .spawn()
                .expect("fleet_runner starts");
            self.runners.push(Runner {
                pid: child.id(),
                child,
                status: None,
                out,
                err,
            });
        }
        let started = first..first + count;
        for i in started.clone() {
            let ready = self.dir().join(format!("ready-{}", self.runners[i].pid));
            let child = &mut self.runners[i].child;
            let mut exited = None;
            let settled = wait_until(|| {
                exited = child.try_wait().expect("try_wait");
                ready.exists() || exited.is_some()
            });
            assert!(
                settled && ready.exists(),
                "runner {i} was not ready within {STEP_TIMEOUT:?} (exit: {exited:?})\n{}",
                self.outputs()
            );
        }
        started
    }

    /// Lets every waiting runner start its run, all at the same moment.
    pub fn go(&self) {
        std::fs::write(self.dir().join("go"), b"").expect("the go file");
    }

    /// The runner id a runner wrote when it got ready.
    pub fn runner_id(&self, index: usize) -> String {
        let ready = self
            .dir()
            .join(format!("ready-{}", self.runners[index].pid));
        std::fs::read_to_string(ready).expect("the ready file")
    }

    /// Waits until some runner is inside the slow unit and returns its index.
    pub fn wait_for_slow(&self) -> usize {
        let mut found = None;
        let reached = wait_until(|| {
            found = self
                .runners
                .iter()
                .position(|r| self.dir.path().join(format!("slow-{}", r.pid)).exists());
            found.is_some()
        });
        assert!(
            reached,
            "no runner reached the slow unit within {STEP_TIMEOUT:?}\n{}",
            self.outputs()
        );
        found.expect("found")
    }

    /// Lets the runner waiting in the slow unit go on.
    pub fn wake(&self) {
        std::fs::write(self.dir().join("wake"), b"").expect("the wake file");
    }

    /// Sends `signal` (`libc::SIGKILL`, `SIGSTOP`, `SIGCONT`) to a runner.
    pub fn signal(&self, index: usize, signal: libc::c_int) {
        let pid = libc::pid_t::try_from(self.runners[index].pid).expect("a pid");
        // SAFETY: kill(2) takes plain integers; the pid is our own child, not yet reaped.
        let result = unsafe { libc::kill(pid, signal) };
        assert_eq!(result, 0, "kill({pid}, {signal}) failed");
    }

    /// Waits until the runners `indexes` have exited; panics (showing every runner's output) if
    /// they take longer than [`STEP_TIMEOUT`].
    pub fn wait_exit(&mut self, indexes: impl IntoIterator<Item = usize> + Clone) {
        let deadline = Instant::now() + STEP_TIMEOUT;
        loop {
            let mut running = false;
            for i in indexes.clone() {
                let runner = &mut self.runners[i];
                if runner.status.is_none() {
                    runner.status = runner.child.try_wait().expect("try_wait");
                    running |= runner.status.is_none();
                }
            }
            if !running {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "runners did not exit within {STEP_TIMEOUT:?}\n{}",
                    self.outputs()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Every runner's output, for failure messages.
    pub fn outputs(&self) -> String {
        self.runners
            .iter()
            .map(Runner::output)
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// How many lines of the effects file each change id has.
    pub fn effect_lines(&self) -> BTreeMap<String, usize> {
        let text = std::fs::read_to_string(self.dir().join("effects.log")).unwrap_or_default();
        let mut lines: BTreeMap<String, usize> = BTreeMap::new();
        for line in text.lines() {
            let id = line.split_whitespace().next().unwrap_or_default();
            *lines.entry(id.to_owned()).or_default() += 1;
        }
        lines
    }
}

/// Polls `done` until it holds (`true`) or [`STEP_TIMEOUT`] has passed (`false`).
fn wait_until(mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + STEP_TIMEOUT;
    while !done() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

impl Drop for Fleet {
    /// Kills whatever is still running (a stopped process dies of SIGKILL too) and reaps it.
    fn drop(&mut self) {
        for runner in &mut self.runners {
            if runner.status.is_none() && matches!(runner.child.try_wait(), Ok(None)) {
                let _ = runner.child.kill();
                let _ = runner.child.wait();
            }
        }
        if std::thread::panicking() {
            let _ = writeln!(std::io::stderr(), "{}", self.outputs());
        }
    }
}
