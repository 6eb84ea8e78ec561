//! Fleet start with real OS processes (docs/architecture.md#lock), on SQLite, PostgreSQL and MariaDB: eight
//! instances starting together apply every unit exactly once; a lock holder killed in the middle
//! of a unit is replaced after its lease and its leftovers are handled as docs/architecture.md#recovery says; a holder
//! paused past its lease records nothing once it resumes; a run with nothing to do takes no lock.
//!
//! Each test starts `fleet_runner` processes (tests/src/bin/fleet_runner.rs) on a fresh database
//! and checks what they left: audit rows, rows of the `fleet_effects` table, lines of the effects
//! file. Every wait is bounded; the processes are killed if a test fails.
#![cfg(unix)]

use std::collections::BTreeMap;
use std::time::Duration;

use flamingock::lock::{DistributedLock, Fence};
use flamingock::{AuditState, LockRelease};
use flamingock_tests::fleet::{Backend, Fleet, FleetDb, states_by_unit, unit_ids};

/// The test binary each instance runs.
const RUNNER: &str = env!("CARGO_BIN_EXE_fleet_runner");

/// A short lease, so that a dead or paused holder is replaced quickly.
const SHORT_LEASE_MS: &str = "2000";

// Every backend pauses a holder in a unit that holds no transaction. PostgreSQL also pauses one
// inside a TX_SHARED unit, whose commit the fence then refuses. A holder paused inside a
// transaction that holds locks others need would stall them instead: on SQLite the whole
// database, on MariaDB (where units on the audit store's database run as TX_SEPARATE) the row of
// the unit's open marker; see the issue note.
macro_rules! fleet_suite {
    ($name:ident, $db:ty, $backend:expr) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn eight_processes_apply_fifty_units_exactly_once() {
                super::eight_processes_apply_fifty_units_exactly_once($backend).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_killed_holder_is_replaced_and_its_transaction_applied_once() {
                super::a_killed_holder_is_replaced_and_its_transaction_applied_once($backend).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_killed_holder_in_a_non_tx_unit_blocks_its_successors() {
                super::a_killed_holder_in_a_non_tx_unit_blocks_its_successors($backend).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_paused_holder_records_nothing_after_losing_its_lease() {
                super::a_paused_holder_records_nothing_after_losing_its_lease($backend, "gate")
                    .await;
            }

            flamingock_testkit::if_backend!(postgres, $name, {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn a_holder_paused_in_a_transaction_commits_nothing_after_losing_its_lease() {
                    super::a_paused_holder_records_nothing_after_losing_its_lease($backend, "tx")
                        .await;
                }
            });

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn eight_processes_start_warm_from_the_summary() {
                super::eight_processes_start_warm($backend, false).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn eight_processes_start_together_on_a_stale_summary() {
                super::eight_processes_start_warm($backend, true).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_run_with_nothing_pending_takes_no_lock() {
                super::a_run_with_nothing_pending_takes_no_lock($backend).await;
            }
        }
    };
}

flamingock_testkit::for_each_backend!(fleet_suite);

/// Checks that every unit in `ids` has exactly one `APPLIED` row and no `FAILED` one, its effect
/// exactly once (a `fleet_effects` row for `tx-*`, a line for `file-*`), and that nothing else
/// has an effect.
async fn assert_applied_once(db: &FleetDb, fleet: &Fleet, ids: &[String]) {
    let states = states_by_unit(&db.entries().await);
    for id in ids {
        let rows = states.get(id).map(Vec::as_slice).unwrap_or_default();
        let applied = rows.iter().filter(|s| **s == AuditState::Applied).count();
        assert_eq!(applied, 1, "{id}: {rows:?}\n{}", fleet.outputs());
        assert!(!rows.contains(&AuditState::Failed), "{id}: {rows:?}");
    }
    let expected_rows: BTreeMap<String, i64> = ids
        .iter()
        .filter(|id| id.starts_with("tx-") || *id == "slow-tx")
        .map(|id| (id.clone(), 1))
        .collect();
    assert_eq!(db.effect_rows().await, expected_rows, "{}", fleet.outputs());
    let expected_lines: BTreeMap<String, usize> = ids
        .iter()
        .filter(|id| id.starts_with("file-") || *id == "slow-nontx")
        .map(|id| (id.clone(), 1))
        .collect();
    assert_eq!(fleet.effect_lines(), expected_lines, "{}", fleet.outputs());
}

/// Asserts that nobody holds the lock (every run released it).
async fn assert_lock_free(db: &FleetDb) {
    let state = db
        .engine()
        .await
        .lock_state()
        .await
        .expect("the lock reads");
    assert_eq!(state, None, "the lock was released");
}

async fn eight_processes_apply_fifty_units_exactly_once(backend: Backend) {
    let Some(db) = FleetDb::create(backend, "fleet").await else {
        return;
    };
    let mut fleet = Fleet::new(RUNNER, &db.url);
    let runners = fleet.spawn(8, &["--lease-ms", "5000", "--wait-ms", "60000"]);
    fleet.go();
    fleet.wait_exit(runners.clone());
    for i in runners.clone() {
        assert_eq!(fleet.runners[i].code(), Some(0), "{}", fleet.outputs());
    }
    let ids = unit_ids(None);
    assert_applied_once(&db, &fleet, &ids).await;
    // The reports agree: fifty applications across the fleet, the rest found them done.
    let applied: usize = runners
        .map(|i| fleet.runners[i].applied().expect("a summary"))
        .sum();
    assert_eq!(applied, ids.len(), "{}", fleet.outputs());
    assert_lock_free(&db).await;
    drop(fleet);
    db.drop_database().await;
}

async fn a_killed_holder_is_replaced_and_its_transaction_applied_once(backend: Backend) {
    let Some(db) = FleetDb::create(backend, "kill_tx").await else {
        return;
    };
    let mut fleet = Fleet::new(RUNNER, &db.url);
    let runners = fleet.spawn(3, &["--lease-ms", SHORT_LEASE_MS, "--slow", "tx"]);
    fleet.go();
    let holder = fleet.wait_for_slow();
    let holder_id = fleet.runner_id(holder);
    fleet.signal(holder, libc::SIGKILL);
    let others: Vec<usize> = runners.filter(|i| *i != holder).collect();
    fleet.wait_exit(others.iter().copied());
    for i in &others {
        assert_eq!(fleet.runners[*i].code(), Some(0), "{}", fleet.outputs());
    }
    // The dead holder's transaction never committed: the unit was applied again, once.
    let ids = unit_ids(Some("tx"));
    assert_applied_once(&db, &fleet, &ids).await;
    let entries = db.entries().await;
    let by_holder: Vec<_> = entries
        .iter()
        .filter(|e| e.runner_id == holder_id && e.state == AuditState::Applied)
        .map(|e| e.change_id.as_str())
        .collect();
    assert_eq!(
        by_holder,
        &unit_ids(None)[..25],
        "the dead holder applied the first half"
    );
    assert!(
        !entries.iter().any(|e| e.change_id == "slow-tx"
            && e.runner_id == holder_id
            && e.state != AuditState::Started),
        "the dead holder recorded no outcome for the unit it died in"
    );
    assert_lock_free(&db).await;
    drop(fleet);
    db.drop_database().await;
}

async fn a_killed_holder_in_a_non_tx_unit_blocks_its_successors(backend: Backend) {
    let Some(db) = FleetDb::create(backend, "kill_nontx").await else {
        return;
    };
    let mut fleet = Fleet::new(RUNNER, &db.url);
    let runners = fleet.spawn(3, &["--lease-ms", SHORT_LEASE_MS, "--slow", "nontx"]);
    fleet.go();
    let holder = fleet.wait_for_slow();
    fleet.signal(holder, libc::SIGKILL);
    let others: Vec<usize> = runners.filter(|i| *i != holder).collect();
    fleet.wait_exit(others.iter().copied());
    // STARTED without an outcome, non-transactional, manual intervention: every successor stops
    // and says how to resolve it; none runs the unit or anything after it.
    for i in &others {
        let runner = &fleet.runners[*i];
        assert_eq!(runner.code(), Some(2), "{}", fleet.outputs());
        let stderr = runner.stderr();
        assert!(
            stderr.contains("slow-nontx") && stderr.contains("flamingock fix slow-nontx"),
            "{stderr}"
        );
    }
    let ids = unit_ids(Some("nontx"));
    assert_applied_once(&db, &fleet, &ids[..25]).await;
    let states = states_by_unit(&db.entries().await);
    assert_eq!(states["slow-nontx"], [AuditState::Started]);
    for id in &ids[26..] {
        assert!(!states.contains_key(id), "{id} must not run: {states:?}");
    }
    assert_lock_free(&db).await;
    drop(fleet);
    db.drop_database().await;
}

async fn a_paused_holder_records_nothing_after_losing_its_lease(backend: Backend, slow: &str) {
    let Some(db) = FleetDb::create(backend, "pause").await else {
        return;
    };
    let mut fleet = Fleet::new(RUNNER, &db.url);
    let runners = fleet.spawn(2, &["--lease-ms", SHORT_LEASE_MS, "--slow", slow]);
    fleet.go();
    let holder = fleet.wait_for_slow();
    fleet.signal(holder, libc::SIGSTOP);
    let other = runners.clone().find(|i| *i != holder).expect("two runners");
    // The other instance takes over once the lease has run out, and finishes everything.
    fleet.wait_exit([other]);
    assert_eq!(fleet.runners[other].code(), Some(0), "{}", fleet.outputs());
    let before = db.entries().await;

    fleet.signal(holder, libc::SIGCONT);
    fleet.wake();
    fleet.wait_exit([holder]);
    let paused = &fleet.runners[holder];
    assert_eq!(paused.code(), Some(3), "{}", fleet.outputs());
    assert!(
        paused.stderr().contains("lost the lock"),
        "{}",
        paused.stderr()
    );
    assert_eq!(
        db.entries().await,
        before,
        "the paused holder wrote no audit row"
    );
    assert_applied_once(&db, &fleet, &unit_ids(Some(slow))).await;
    assert_lock_free(&db).await;
    drop(fleet);
    db.drop_database().await;
}

async fn a_run_with_nothing_pending_takes_no_lock(backend: Backend) {
    let Some(db) = FleetDb::create(backend, "idle").await else {
        return;
    };
    let mut fleet = Fleet::new(RUNNER, &db.url);
    let first = fleet.spawn(1, &[]);
    fleet.go();
    fleet.wait_exit(first.clone());
    assert_eq!(
        fleet.runners[first.start].code(),
        Some(0),
        "{}",
        fleet.outputs()
    );
    assert_lock_free(&db).await;

    // Someone else holds the lock for an hour. A run with nothing to do neither waits nor
    // touches it.
    let engine = db.engine().await;
    let lock: &dyn DistributedLock = engine.store().lock().expect("SQL stores keep a lock");
    let operator = Fence {
        key: flamingock::DEFAULT_LOCK_KEY.to_owned(),
        owner: "operator-test".to_owned(),
    };
    lock.try_acquire(&operator, "elsewhere", Duration::from_secs(3600))
        .await
        .expect("the lock is taken");
    let held = engine.lock_state().await.expect("read").expect("held");
    let idle = fleet.spawn(1, &["--wait-ms", "0"]);
    fleet.go();
    fleet.wait_exit(idle.clone());
    let runner = &fleet.runners[idle.start];
    assert_eq!(runner.code(), Some(0), "{}", fleet.outputs());
    assert_eq!(runner.applied(), Some(0));
    assert_eq!(engine.lock_state().await.expect("read"), Some(held.clone()));

    // With something pending it must wait, and gives up naming the holder.
    let pending = fleet.spawn(1, &["--wait-ms", "300", "--slow", "gate"]);
    fleet.wait_exit(pending.clone());
    let runner = &fleet.runners[pending.start];
    assert_eq!(runner.code(), Some(4), "{}", fleet.outputs());
    let stderr = runner.stderr();
    assert!(
        stderr.contains("operator-test") && stderr.contains("elsewhere"),
        "{stderr}"
    );
    assert!(!states_by_unit(&db.entries().await).contains_key("slow-gate"));

    // A running lease is not stale; forcing removes it.
    assert_eq!(
        engine.release_stale_lock().await.expect("release"),
        LockRelease::Live(held.clone())
    );
    let removed = engine.force_release_lock().await.expect("force");
    assert_eq!(removed.map(|info| info.owner), Some("operator-test".into()));
    assert_lock_free(&db).await;
    drop(fleet);
    db.drop_database().await;
}

/// One instance applies every unit (and writes the summary); then eight start together, with the
/// summary current or made stale by a row of another plan: none applies or records anything,
/// none holds the lock afterwards, and the summary is current again.
async fn eight_processes_start_warm(backend: Backend, stale: bool) {
    let Some(db) = FleetDb::create(backend, if stale { "warm_stale" } else { "warm" }).await else {
        return;
    };
    let mut fleet = Fleet::new(RUNNER, &db.url);
    let first = fleet.spawn(1, &[]);
    fleet.go();
    fleet.wait_exit(first.clone());
    assert_eq!(
        fleet.runners[first.start].code(),
        Some(0),
        "{}",
        fleet.outputs()
    );
    const SUMMARY: &str = "SELECT MAX(covers_id) FROM flamingock_audit_log_summary";
    const NEWEST: &str = "SELECT MAX(id) FROM flamingock_audit_log";
    assert_eq!(
        db.scalar(SUMMARY).await,
        db.scalar(NEWEST).await,
        "the cold run wrote it"
    );
    if stale {
        let now = match backend {
            Backend::Sqlite => "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
            Backend::Postgres => "now()",
            Backend::MySql => "UTC_TIMESTAMP(3)",
        };
        db.execute(&format!(
            "INSERT INTO flamingock_audit_log (execution_id, change_id, author, change_order, \
             stage, state, created_at, hostname, runner_id, target_system, tx_strategy, \
             recovery_strategy, source, checksum) VALUES ('other', 'another-plan', 't', '1', \
             'default', 'APPLIED', {now}, 'h', 'r', 'default', 'TX_SHARED', \
             'MANUAL_INTERVENTION', 'test', 'x')"
        ))
        .await;
        assert_ne!(db.scalar(SUMMARY).await, db.scalar(NEWEST).await);
    }
    let rows_before = db.entries().await.len();
    let runners = fleet.spawn(8, &["--lease-ms", "5000", "--wait-ms", "60000"]);
    fleet.go();
    fleet.wait_exit(runners.clone());
    for i in runners.clone() {
        assert_eq!(fleet.runners[i].code(), Some(0), "{}", fleet.outputs());
        assert_eq!(fleet.runners[i].applied(), Some(0), "{}", fleet.outputs());
    }
    assert_eq!(
        db.entries().await.len(),
        rows_before,
        "a warm start wrote an audit row"
    );
    assert_applied_once(&db, &fleet, &unit_ids(None)).await;
    assert_lock_free(&db).await;
    assert_eq!(
        db.scalar(SUMMARY).await,
        db.scalar(NEWEST).await,
        "the summary is current after the fleet started"
    );
    drop(fleet);
    db.drop_database().await;
}
