//! The crash matrix (docs/architecture.md#strategies): for every strategy × failure point × backend, a child
//! process aborts at that point (no destructor, no rollback, no lock release: what SIGKILL leaves),
//! then a normal run follows, then the invariants are checked:
//! - no unit has two APPLIED rows, and no audit row written before the crash is missing;
//! - transactional units' effects exist exactly once;
//! - non-transactional units in doubt are blocked (manual intervention) or retried (always retry),
//!   never silently skipped.
//!
//! `docs/reliability.md` is generated from the same matrix; `reliability_doc_matches_the_matrix`
//! fails when they differ (`FLAMINGOCK_BLESS=1` rewrites the document).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use flamingock::{AuditEntry, AuditState, Flamingock};
use flamingock_testkit::Backend;
use flamingock_tests::servers::ServerDb;

/// What the run after the crash must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    /// Nothing of the crashed try survived: the unit is applied, its effect exists once.
    Applies,
    /// The crashed try was recorded APPLIED: nothing is run again.
    Skips,
    /// TX_SEPARATE: the marker proves the try committed: APPLIED is recorded, nothing rerun.
    Recovers,
    /// A non-transactional unit in doubt: the stage is blocked for manual intervention.
    Blocks,
    /// A non-transactional unit in doubt with `recovery = "always_retry"`: applied again.
    Retries,
}

impl Next {
    fn describe(self) -> &'static str {
        match self {
            Next::Applies => "applies the unit (nothing of the crashed try remains)",
            Next::Skips => "skips it: already APPLIED",
            Next::Recovers => "records APPLIED from the marker without running it again",
            Next::Blocks => "blocks the stage: manual intervention (`flamingock fix`)",
            Next::Retries => "applies it again (always_retry)",
        }
    }
}

/// One row of the matrix.
struct Case {
    /// The stage of the crash child (`shared`, `separate-failing`, ...).
    stage: &'static str,
    /// A failure point of the engine, or `inside:execution` / `inside:rollback`.
    point: &'static str,
    /// Whether the unit fails in the crashed run (to reach the failure paths).
    failing: bool,
    /// Whether the crashed run is an undo of the applied unit (`undo --last 1`).
    undo: bool,
    /// Whether the crashed run is a person's `fix <id> --applied` of the unit, which a crash
    /// after its execution left STARTED.
    fix: bool,
    /// `None`: the run crashes at `point`. `Some`: the write at `point` happens but its reply is
    /// lost (`FLAMINGOCK_LOSE_REPLY`).
    lost: Option<Lost>,
    /// The newest audit state the crash leaves (None: no row).
    left: Option<AuditState>,
    next: Next,
}

const fn case(
    stage: &'static str,
    point: &'static str,
    failing: bool,
    left: Option<AuditState>,
    next: Next,
) -> Case {
    Case {
        stage,
        point,
        failing,
        undo: false,
        fix: false,
        lost: None,
        left,
        next,
    }
}

/// How a run whose write lost its reply goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Lost {
    /// The audit and the marker cannot be read either (`FLAMINGOCK_LOSE_REPLY_BLIND`).
    blind: bool,
    /// The run stops with the unit in doubt (otherwise it finds out and goes on).
    stops: bool,
}

/// A case whose run loses the reply of the write at `point`.
const fn lost(
    stage: &'static str,
    point: &'static str,
    undo: bool,
    lost: Lost,
    left: Option<AuditState>,
    next: Next,
) -> Case {
    Case {
        stage,
        point,
        failing: false,
        undo,
        fix: false,
        lost: Some(lost),
        left,
        next,
    }
}

/// The engine reads the evidence again and goes on.
const FOUND: Lost = Lost {
    blind: false,
    stops: false,
};
/// The evidence cannot be read: the run stops, the unit in doubt.
const BLIND: Lost = Lost {
    blind: true,
    stops: true,
};
/// Nothing can tell (a separate target's undo): the run stops, the unit in doubt.
const UNTOLD: Lost = Lost {
    blind: false,
    stops: true,
};

/// A case whose run is `fix <id> --applied` of a unit a crash left STARTED, the fix's write
/// losing its reply.
const fn fix_case(stage: &'static str, lost: Lost) -> Case {
    Case {
        stage,
        point: "fix.recorded",
        failing: false,
        undo: false,
        fix: true,
        lost: Some(lost),
        left: Some(ManualMarkedAsApplied),
        next: Next::Skips,
    }
}

/// A case whose crashed run is an undo of the unit, applied just before.
const fn undo_case(
    stage: &'static str,
    point: &'static str,
    left: Option<AuditState>,
    next: Next,
) -> Case {
    Case {
        stage,
        point,
        failing: false,
        undo: true,
        fix: false,
        lost: None,
        left,
        next,
    }
}

use AuditState::{Applied, Failed, ManualMarkedAsApplied, RollbackStarted, RolledBack, Started};
use Next::*;

const MATRIX: &[Case] = &[
    case("shared", "shared.before_execute", false, None, Applies),
    case("shared", "inside:execution", false, None, Applies),
    case("shared", "shared.after_execute", false, None, Applies),
    case("shared", "shared.after_commit", false, Some(Applied), Skips),
    case(
        "shared-failing",
        "shared.after_rollback",
        true,
        None,
        Applies,
    ),
    case(
        "separate",
        "separate.after_started",
        false,
        Some(Started),
        Applies,
    ),
    case(
        "separate",
        "inside:execution",
        false,
        Some(Started),
        Applies,
    ),
    case(
        "separate",
        "separate.after_execute",
        false,
        Some(Started),
        Applies,
    ),
    case(
        "separate",
        "separate.after_commit",
        false,
        Some(Started),
        Recovers,
    ),
    case(
        "separate",
        "separate.after_applied",
        false,
        Some(Applied),
        Skips,
    ),
    case(
        "separate-failing",
        "separate.after_rollback",
        true,
        Some(Started),
        Applies,
    ),
    case(
        "non_tx",
        "non_tx.after_started",
        false,
        Some(Started),
        Blocks,
    ),
    case("non_tx", "inside:execution", false, Some(Started), Blocks),
    case(
        "non_tx",
        "non_tx.after_execute",
        false,
        Some(Started),
        Blocks,
    ),
    case(
        "non_tx",
        "non_tx.after_applied",
        false,
        Some(Applied),
        Skips,
    ),
    case(
        "non_tx-failing",
        "non_tx.after_failed",
        true,
        Some(Failed),
        Blocks,
    ),
    case(
        "non_tx-failing",
        "inside:rollback",
        true,
        Some(Failed),
        Blocks,
    ),
    case(
        "non_tx-failing",
        "non_tx.after_rollback",
        true,
        Some(Failed),
        Blocks,
    ),
    case(
        "retry",
        "non_tx.after_started",
        false,
        Some(Started),
        Retries,
    ),
    case("retry", "inside:execution", false, Some(Started), Retries),
    case(
        "retry",
        "non_tx.after_execute",
        false,
        Some(Started),
        Retries,
    ),
    case("retry", "non_tx.after_applied", false, Some(Applied), Skips),
    case(
        "retry-failing",
        "non_tx.after_failed",
        true,
        Some(Failed),
        Retries,
    ),
    case(
        "retry-failing",
        "inside:rollback",
        true,
        Some(Failed),
        Retries,
    ),
    case(
        "retry-failing",
        "non_tx.after_rollback",
        true,
        Some(Failed),
        Retries,
    ),
    undo_case(
        "separate",
        "undo.after_rollback_started",
        Some(RollbackStarted),
        Blocks,
    ),
    undo_case("separate", "inside:rollback", Some(RollbackStarted), Blocks),
    undo_case(
        "separate",
        "undo.after_rollback",
        Some(RollbackStarted),
        Blocks,
    ),
    undo_case(
        "non_tx",
        "undo.after_rollback_started",
        Some(RollbackStarted),
        Blocks,
    ),
    undo_case("non_tx", "inside:rollback", Some(RollbackStarted), Blocks),
    undo_case(
        "non_tx",
        "undo.after_rollback",
        Some(RollbackStarted),
        Blocks,
    ),
    undo_case(
        "retry",
        "undo.after_rollback",
        Some(RollbackStarted),
        Retries,
    ),
    lost(
        "shared",
        "shared.commit",
        false,
        FOUND,
        Some(Applied),
        Skips,
    ),
    lost(
        "shared",
        "shared.commit",
        false,
        BLIND,
        Some(Applied),
        Skips,
    ),
    lost(
        "separate",
        "separate.commit",
        false,
        FOUND,
        Some(Applied),
        Skips,
    ),
    lost(
        "separate",
        "separate.commit",
        false,
        BLIND,
        Some(Started),
        Recovers,
    ),
    lost(
        "separate",
        "separate.applied",
        false,
        FOUND,
        Some(Applied),
        Skips,
    ),
    lost(
        "separate",
        "separate.applied",
        false,
        BLIND,
        Some(Applied),
        Skips,
    ),
    lost(
        "non_tx",
        "non_tx.applied",
        false,
        FOUND,
        Some(Applied),
        Skips,
    ),
    lost(
        "non_tx",
        "non_tx.applied",
        false,
        BLIND,
        Some(Applied),
        Skips,
    ),
    lost(
        "retry",
        "non_tx.applied",
        false,
        BLIND,
        Some(Applied),
        Skips,
    ),
    lost(
        "shared",
        "undo.shared.commit",
        true,
        FOUND,
        Some(RolledBack),
        Applies,
    ),
    lost(
        "shared",
        "undo.shared.commit",
        true,
        BLIND,
        Some(RolledBack),
        Applies,
    ),
    lost(
        "separate",
        "undo.separate.commit",
        true,
        UNTOLD,
        Some(RollbackStarted),
        Blocks,
    ),
    lost(
        "non_tx",
        "undo.rolled_back",
        true,
        FOUND,
        Some(RolledBack),
        Applies,
    ),
    lost(
        "non_tx",
        "undo.rolled_back",
        true,
        BLIND,
        Some(RolledBack),
        Applies,
    ),
    fix_case("non_tx", FOUND),
    fix_case("non_tx", BLIND),
    // The warm start's summary: a crash after the last APPLIED, before the summary is written,
    // and one inside the summary's transaction, before it commits. The next start finds no
    // current summary, reads every unit's state and skips the applied unit.
    case(
        "shared",
        "summary.before_write",
        false,
        Some(Applied),
        Skips,
    ),
    case(
        "separate",
        "summary.before_write",
        false,
        Some(Applied),
        Skips,
    ),
    case(
        "non_tx",
        "summary.before_write",
        false,
        Some(Applied),
        Skips,
    ),
    case(
        "shared",
        "summary.before_commit",
        false,
        Some(Applied),
        Skips,
    ),
    case(
        "separate",
        "summary.before_commit",
        false,
        Some(Applied),
        Skips,
    ),
];

fn strategy_of(stage: &str) -> &'static str {
    match stage.trim_end_matches("-failing") {
        "shared" => "TX_SHARED",
        "separate" => "TX_SEPARATE",
        "non_tx" => "NON_TX (manual_intervention)",
        _ => "NON_TX (always_retry)",
    }
}

fn unit_id(stage: &str) -> &str {
    stage
}

/// Where one case runs: an audit database and a target database of one backend.
struct Place {
    backend: Backend,
    audit_url: String,
    target_url: String,
    effects: PathBuf,
    _dir: tempfile::TempDir,
    servers: Vec<ServerDb>,
}

impl Place {
    async fn new(backend: Backend, hint: &str) -> Option<Place> {
        let dir = tempfile::tempdir().expect("temp dir");
        let effects = dir.path().join("effects.log");
        let (audit_url, target_url, servers) = match backend {
            Backend::Sqlite => (
                format!(
                    "sqlite://{}?mode=rwc",
                    dir.path().join("audit.db").display()
                ),
                format!(
                    "sqlite://{}?mode=rwc",
                    dir.path().join("target.db").display()
                ),
                Vec::new(),
            ),
            server => {
                let audit = ServerDb::create(server, hint).await?;
                let target = ServerDb::create(server, hint).await?;
                (audit.url.clone(), target.url.clone(), vec![audit, target])
            }
        };
        let place = Place {
            backend,
            audit_url,
            target_url,
            effects,
            _dir: dir,
            servers,
        };
        for url in [&place.audit_url, &place.target_url] {
            execute(
                url,
                "CREATE TABLE crash_effects (unit VARCHAR(64) NOT NULL)",
            )
            .await;
        }
        Some(place)
    }

    fn child(&self, stage: &str, env: &[(&str, &str)]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_crash_child"));
        command
            .args([&self.audit_url, child_backend(self.backend), stage])
            .arg(&self.effects)
            .arg(&self.target_url)
            .env_remove("FLAMINGOCK_FAILPOINT")
            .env_remove("CRASH_INSIDE")
            .env_remove("CRASH_UNIT_FAILS")
            .env_remove("CRASH_MODE")
            .env_remove("FLAMINGOCK_LOSE_REPLY")
            .env_remove("FLAMINGOCK_LOSE_REPLY_BLIND")
            // A crashed child leaves its lease behind: keep it short so the next run waits little.
            .env("FLAMINGOCK_LOCK_LEASE_SECS", "1")
            .env("FLAMINGOCK_LOCK_WAIT_SECS", "20");
        for (key, value) in env {
            command.env(key, value);
        }
        command.output().expect("the crash child starts")
    }

    async fn entries(&self) -> Vec<AuditEntry> {
        let engine = Flamingock::builder()
            .database_url(&self.audit_url)
            .build()
            .await
            .expect("the audit store opens");
        engine.store().initialize().await.expect("initialize");
        engine.store().entries().await.expect("entries")
    }

    /// Who holds the lock row now, if anyone (expired or not).
    async fn lock_holder(&self) -> Option<String> {
        let engine = Flamingock::builder()
            .database_url(&self.audit_url)
            .build()
            .await
            .expect("the audit store opens");
        let lock = engine.store().lock().expect("SQL stores have a lock");
        lock.read(flamingock::DEFAULT_LOCK_KEY)
            .await
            .expect("the lock row reads")
            .map(|info| info.owner)
    }

    async fn effect_rows(&self, stage: &str) -> i64 {
        let url = if stage.starts_with("separate") {
            &self.target_url
        } else {
            &self.audit_url
        };
        count(
            url,
            &format!("SELECT COUNT(*) FROM crash_effects WHERE unit = '{stage}'"),
        )
        .await
    }

    fn effect_lines(&self, line: &str) -> usize {
        std::fs::read_to_string(&self.effects)
            .unwrap_or_default()
            .lines()
            .filter(|l| *l == line)
            .count()
    }

    async fn cleanup(self) {
        for server in self.servers {
            server.drop_database().await;
        }
    }
}

async fn execute(url: &str, sql: &str) {
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    let result = if url.starts_with("sqlite") {
        let pool = sqlx::SqlitePool::connect(url).await.expect("connect");
        sqlx::raw_sql(sql).execute(&pool).await.map(drop)
    } else if url.starts_with("postgres") {
        let pool = sqlx::PgPool::connect(url).await.expect("connect");
        sqlx::raw_sql(sql).execute(&pool).await.map(drop)
    } else {
        let pool = sqlx::MySqlPool::connect(url).await.expect("connect");
        sqlx::raw_sql(sql).execute(&pool).await.map(drop)
    };
    result.expect("test statement");
}

async fn count(url: &str, sql: &str) -> i64 {
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    if url.starts_with("sqlite") {
        let pool = sqlx::SqlitePool::connect(url).await.expect("connect");
        sqlx::query_scalar(sql)
            .fetch_one(&pool)
            .await
            .expect("count")
    } else if url.starts_with("postgres") {
        let pool = sqlx::PgPool::connect(url).await.expect("connect");
        sqlx::query_scalar(sql)
            .fetch_one(&pool)
            .await
            .expect("count")
    } else {
        let pool = sqlx::MySqlPool::connect(url).await.expect("connect");
        sqlx::query_scalar(sql)
            .fetch_one(&pool)
            .await
            .expect("count")
    }
}

fn text(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Runs one case and checks every invariant; returns a description of a violation.
async fn run_case(backend: Backend, case: &Case) -> Result<(), String> {
    let Some(place) = Place::new(backend, "crash").await else {
        return Ok(()); // skipped loudly by ServerDb
    };
    let id = unit_id(case.stage);
    let mut env: Vec<(&str, &str)> = Vec::new();
    match (case.lost, case.point.strip_prefix("inside:")) {
        (Some(lost), _) => {
            env.push(("FLAMINGOCK_LOSE_REPLY", case.point));
            if lost.blind {
                env.push(("FLAMINGOCK_LOSE_REPLY_BLIND", "1"));
            }
        }
        (None, Some(place)) => env.push(("CRASH_INSIDE", place)),
        (None, None) => env.push(("FLAMINGOCK_FAILPOINT", case.point)),
    }
    if case.failing {
        env.push(("CRASH_UNIT_FAILS", "1"));
    }
    let label = format!(
        "{} {}{} at {}",
        child_backend(backend),
        case.stage,
        if case.undo { " (undo)" } else { "" },
        case.point
    );
    if case.fix {
        // A crash after the execution leaves the unit STARTED with its effect in place: the
        // person looks, finds it there, and records `fix --applied`.
        let crashed = place.child(
            case.stage,
            &[("FLAMINGOCK_FAILPOINT", "non_tx.after_execute")],
        );
        if crashed.status.success() {
            return Err(format!(
                "{label}: the run before the fix did not crash:\n{}",
                text(&crashed)
            ));
        }
        env.push(("CRASH_MODE", "fix"));
    }
    if case.undo {
        let applied = place.child(case.stage, &[]);
        if !applied.status.success() {
            place.cleanup().await;
            return Err(format!(
                "{label}: the unit did not apply:\n{}",
                text(&applied)
            ));
        }
        env.push(("CRASH_MODE", "undo"));
    }
    let crashed = place.child(case.stage, &env);
    let result = check(&place, case, id, &crashed)
        .await
        .map_err(|e| format!("{label}: {e}"));
    place.cleanup().await;
    result
}

async fn check(place: &Place, case: &Case, id: &str, crashed: &Output) -> Result<(), String> {
    match case.lost {
        None if crashed.status.success() || crashed.status.code() == Some(1) => {
            return Err(format!("the child did not crash:\n{}", text(crashed)));
        }
        Some(Lost { stops: false, .. }) if !crashed.status.success() => {
            return Err(format!(
                "the run failed although the lost reply's outcome could be read:\n{}",
                text(crashed)
            ));
        }
        Some(Lost { stops: true, .. })
            if crashed.status.code() != Some(1)
                || !String::from_utf8_lossy(&crashed.stderr).contains("unknown") =>
        {
            return Err(format!(
                "expected the run to stop with the unit in doubt:\n{}",
                text(crashed)
            ));
        }
        _ => {}
    }
    if case.lost.is_some() && !case.undo && place.effect_lines(&format!("undo {id}")) > 0 {
        return Err("a unit whose APPLIED may be recorded was rolled back".into());
    }
    if case.fix {
        check_fix_repeated(place, id).await?;
    } else if case.lost.is_some_and(|l| l.stops) && place.lock_holder().await.is_none() {
        // A commit whose reply was lost may still land: releasing the lock at once would let
        // another instance read the audit before it does and apply the unit again.
        return Err("a run that stopped in doubt released the lock instead of leaving it to end with its lease".into());
    }
    let before = place.entries().await;
    let left = before.iter().rfind(|e| e.change_id == id).map(|e| e.state);
    if left != case.left {
        return Err(format!("the crash left {left:?}, expected {:?}", case.left));
    }
    let lines_before = place.effect_lines(id);
    let recovery = place.child(case.stage, &[]);
    let after = place.entries().await;
    if after.len() < before.len() || after[..before.len()] != before[..] {
        return Err("an audit row written before the crash is missing or changed".into());
    }
    // After an undo the unit was applied once before it: count what the next run wrote.
    let since = if case.undo { before.len() } else { 0 };
    let applied = after[since..]
        .iter()
        .filter(|e| {
            e.change_id == id
                && (e.state == AuditState::Applied
                    || (case.fix && e.state == AuditState::ManualMarkedAsApplied))
        })
        .count();
    if applied > 1 {
        return Err(format!("{applied} APPLIED rows"));
    }
    let report = String::from_utf8_lossy(&recovery.stdout).to_string();
    match case.next {
        Next::Blocks => {
            let stderr = String::from_utf8_lossy(&recovery.stderr);
            if recovery.status.code() != Some(1) || !stderr.contains("manual intervention") {
                return Err(format!("expected a blocked run:\n{}", text(&recovery)));
            }
            if !stderr.contains(&format!("flamingock fix {id}")) {
                return Err(format!(
                    "the block does not name the fix command:\n{stderr}"
                ));
            }
            if after.len() != before.len() || place.effect_lines(id) != lines_before {
                return Err("a blocked run wrote or ran something".into());
            }
        }
        next => {
            if !recovery.status.success() {
                return Err(format!(
                    "the run after the crash failed:\n{}",
                    text(&recovery)
                ));
            }
            if applied != 1 {
                return Err(format!("{applied} APPLIED rows after recovery, expected 1"));
            }
            let outcome = match next {
                Next::Skips => "already_applied",
                Next::Recovers => "recovered_applied",
                _ => "\"applied\"",
            };
            if !report.contains(outcome) {
                return Err(format!("expected outcome {outcome}:\n{}", text(&recovery)));
            }
            if case.stage.starts_with("shared") || case.stage.starts_with("separate") {
                let rows = place.effect_rows(id).await;
                if rows != 1 {
                    return Err(format!("the transactional effect exists {rows} times"));
                }
            } else {
                let lines = place.effect_lines(id);
                let expected = if next == Next::Retries || (case.undo && next == Next::Applies) {
                    lines_before + 1
                } else {
                    lines_before
                };
                if lines != expected {
                    return Err(format!("{lines} effect lines, expected {expected}"));
                }
            }
        }
    }
    Ok(())
}

/// After a fix whose reply was lost (known recorded, or not): the same fix, as the person would
/// repeat it with the state they saw, is refused since the unit's state changed, and writes
/// nothing; exactly one resolution is in the audit.
async fn check_fix_repeated(place: &Place, id: &str) -> Result<(), String> {
    let before = place.entries().await;
    let again = place.child(id, &[("CRASH_MODE", "fix")]);
    let stderr = String::from_utf8_lossy(&again.stderr);
    if again.status.code() != Some(1) || !stderr.contains("changed from STARTED") {
        return Err(format!(
            "a repeated fix on a state that changed was not refused:\n{}",
            text(&again)
        ));
    }
    let after = place.entries().await;
    let resolutions = after
        .iter()
        .filter(|e| e.change_id == id && e.state == AuditState::ManualMarkedAsApplied)
        .count();
    if after.len() != before.len() || resolutions != 1 {
        return Err(format!(
            "{resolutions} resolutions, {} rows before the repeat and {} after",
            before.len(),
            after.len()
        ));
    }
    Ok(())
}

async fn run_matrix(backend: Backend) {
    let mut failures = Vec::new();
    let cases: Vec<&'static Case> = MATRIX
        .iter()
        // MariaDB/MySQL commit before every DDL statement, so units on the audit store's own
        // database run TX_SEPARATE there: its TX_SHARED rows cannot occur, the TX_SEPARATE rows
        // cover it.
        .filter(|case| backend != Backend::MySql || !case.stage.starts_with("shared"))
        .collect();
    // A few cases at a time: each spends most of its time waiting on child processes.
    for chunk in cases.chunks(3) {
        let handles: Vec<_> = chunk
            .iter()
            .map(|case| tokio::spawn(run_case(backend, case)))
            .collect();
        for handle in handles {
            if let Err(failure) = handle.await.expect("a case task") {
                failures.push(failure);
            }
        }
    }
    assert!(
        failures.is_empty(),
        "crash matrix violations:\n{}",
        failures.join("\n\n")
    );
}

/// How `crash_child` names a backend (it selects the units typed for it).
fn child_backend(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
        Backend::MySql => "mysql",
    }
}

/// The whole matrix on one backend (stamped by `flamingock_testkit::for_each_backend!`).
macro_rules! crash_suite {
    ($name:ident, $db:ty, $backend:expr) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn crash_matrix() {
                super::run_matrix($backend).await;
            }
        }
    };
}

flamingock_testkit::for_each_backend!(crash_suite);

fn reliability_doc() -> String {
    let mut doc = String::from(
        "# Reliability: what a crash leaves, and what the next run does\n\n\
         Generated from the crash matrix in `tests/tests/crash_matrix.rs` and checked by \
         `reliability_doc_matches_the_matrix`, so it cannot drift from the tests \
         (`FLAMINGOCK_BLESS=1 cargo test -p flamingock-tests --test crash_matrix` rewrites it).\n\n\
         Each row is run on SQLite, PostgreSQL and MariaDB by `sqlite::crash_matrix`, \
         `postgres::crash_matrix` and `mariadb::crash_matrix`: a child process aborts at the failure \
         point (`FLAMINGOCK_FAILPOINT`, compiled in only with the `failpoints` feature of \
         `flamingock-core`; `inside:` points abort in the unit's own code after its effect), a normal \
         run follows, and the test checks that no unit has two APPLIED rows, that transactional \
         effects exist exactly once, that non-transactional units in doubt are blocked or retried \
         and never skipped, and that no audit row written before the crash is missing. On \
         MariaDB/MySQL, units on the audit store's own database run `TX_SEPARATE` (the server \
         commits before every DDL statement), so the `TX_SHARED` rows run on SQLite and \
         PostgreSQL only.\n\n\
         Rows marked *(undo)* crash an `undo --last 1` of the applied unit instead of a run; rows \
         marked *(fix --applied)* record a person's `fix <id> --applied` of a unit a crash after its \
         execution left `STARTED`, and then check that repeating that fix is refused (the state it \
         was decided on changed) and writes nothing. Rows \
         \"reply of `...` lost\" do not crash: the write happens and then reports an error, as when \
         the database's answer is lost (`FLAMINGOCK_LOSE_REPLY`); the engine reads the audit (or the \
         marker) again before it writes anything else, and when that cannot be read either \
         (\"audit unreadable\", `FLAMINGOCK_LOSE_REPLY_BLIND`) it stops with the unit in doubt \
         and writes nothing more. The same cases are run through a TCP proxy that drops real \
         replies in `reply_loss_proxy`.\n\n\
         | failure point | strategy | unit fails? | newest audit row left | what the next run does | test |\n\
         |---|---|---|---|---|---|\n",
    );
    for case in MATRIX {
        doc.push_str(&format!(
            "| {} | {}{} | {} | {} | {} | `*::crash_matrix` ({}) |\n",
            match case.lost {
                None => format!("`{}`", case.point),
                Some(lost) => format!(
                    "reply of `{}` lost{}",
                    case.point,
                    if lost.blind { ", audit unreadable" } else { "" }
                ),
            },
            strategy_of(case.stage),
            if case.undo {
                " *(undo)*"
            } else if case.fix {
                " *(fix --applied)*"
            } else {
                ""
            },
            if case.failing { "yes" } else { "no" },
            case.left.map_or("none".to_owned(), |s| format!("`{s}`")),
            case.next.describe(),
            case.stage,
        ));
    }
    doc
}

#[test]
fn reliability_doc_matches_the_matrix() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/reliability.md");
    let expected = reliability_doc();
    if std::env::var("FLAMINGOCK_BLESS").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().expect("docs dir")).expect("create docs/");
        std::fs::write(&path, &expected).expect("write docs/reliability.md");
    }
    let actual = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        actual == expected,
        "docs/reliability.md is out of date with the crash matrix; run \
         FLAMINGOCK_BLESS=1 cargo test -p flamingock-tests --test crash_matrix"
    );
}

#[test]
fn the_matrix_covers_every_failure_point_of_the_engine() {
    for point in flamingock_core_points() {
        assert!(
            MATRIX.iter().any(|case| case.point == *point),
            "failure point {point} is not in the crash matrix"
        );
    }
}

fn flamingock_core_points() -> impl Iterator<Item = &'static &'static str> {
    flamingock_core::failpoint::POINTS
        .iter()
        .chain(flamingock_core::failpoint::STORE_POINTS)
}
