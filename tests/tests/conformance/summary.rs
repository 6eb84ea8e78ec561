//! The warm start's summary (docs/architecture.md#the-warm-starts-summary), on SQLite, PostgreSQL
//! and MariaDB: a start with nothing to do reads the summary and not every unit's state (counted
//! by a store wrapper, not timed); units that run always run at every start without that read
//! either; an undo, a fix, a summary table an earlier release never made, a read-only store, and
//! an audit row committed out of id order while a summary is written all leave the next start
//! right.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use flamingock::{
    AuditState, ChangeUnit, FixRequest, Flamingock, FlamingockBuilder, Resolution, StoreOptions,
    UndoScope, UnitOutcome,
};
use flamingock_tests::conformance::{Backend, BackendDb};
use flamingock_tests::counting::{CountingStore, Reads};
use sqlx::{AssertSqlSafe, Connection};

/// The summary table beside the default audit table.
const SUMMARY: &str = "flamingock_audit_log_summary";

/// A builder whose store counts its reads, on `db`, selecting `module`'s units.
async fn counted(db: &BackendDb, module: &str, read_only: bool) -> (FlamingockBuilder, Arc<Reads>) {
    let options = StoreOptions::default().with_read_only(read_only);
    let (store, reads) = CountingStore::connect(&db.url, options).await;
    (
        Flamingock::builder().audit_store(store).module(module),
        reads,
    )
}

/// An audit row of `change_id` in `state`, inserted in a transaction left open for `open`, then
/// committed: returns once the row is inserted (not yet committed) with the commit's task.
async fn insert_uncommitted(
    db: &BackendDb,
    change_id: &str,
    state: AuditState,
    open: Duration,
) -> tokio::task::JoinHandle<()> {
    let now = match db.backend {
        Backend::Sqlite => "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
        Backend::Postgres => "now()",
        Backend::MySql => "UTC_TIMESTAMP(3)",
    };
    let insert = format!(
        "INSERT INTO flamingock_audit_log (execution_id, change_id, author, change_order, stage, \
         state, created_at, hostname, runner_id, target_system, tx_strategy, recovery_strategy, \
         source, checksum) VALUES ('by-hand', '{change_id}', 't', '1', 'default', '{}', {now}, \
         'h', 'r', 'default', 'TX_SHARED', 'MANUAL_INTERVENTION', 'test', 'x')",
        state.as_str()
    );
    let (inserted, done) = tokio::sync::oneshot::channel();
    let url = db.url.clone();
    let backend = db.backend;
    let task = tokio::spawn(async move {
        macro_rules! hold {
            ($conn:expr, $begin:expr) => {{
                let mut conn = $conn;
                sqlx::raw_sql($begin)
                    .execute(&mut conn)
                    .await
                    .expect("BEGIN");
                sqlx::raw_sql(AssertSqlSafe(insert))
                    .execute(&mut conn)
                    .await
                    .expect("the row is inserted");
                let _ = inserted.send(());
                tokio::time::sleep(open).await;
                sqlx::raw_sql("COMMIT")
                    .execute(&mut conn)
                    .await
                    .expect("COMMIT");
            }};
        }
        match backend {
            Backend::Sqlite => hold!(
                sqlx::SqliteConnection::connect(&url).await.expect("opens"),
                "BEGIN IMMEDIATE"
            ),
            Backend::Postgres => hold!(
                sqlx::PgConnection::connect(&url).await.expect("opens"),
                "BEGIN"
            ),
            Backend::MySql => hold!(
                sqlx::MySqlConnection::connect(&url).await.expect("opens"),
                "BEGIN"
            ),
        }
    });
    done.await.expect("the row was inserted");
    task
}

macro_rules! summary_suite {
    ($name:ident, $db:ty, $backend:expr) => {
        mod $name {
            use super::*;

            const BACKEND: Backend = $backend;

            /// The attempt each run of `s-every` was told.
            static ATTEMPTS: Mutex<Vec<u32>> = Mutex::new(Vec::new());

            mod plain {
                use flamingock::prelude::*;

                #[change_unit(id = "s-one", order = "1", author = "t")]
                mod one {
                    #[execution]
                    fn execute() {}
                    #[rollback_execution]
                    fn rollback() {}
                }

                #[change_unit(id = "s-two", order = "2", author = "t")]
                mod two {
                    #[execution]
                    fn execute() {}
                    #[rollback_execution]
                    fn rollback() {}
                }

                #[change_unit(id = "s-three", order = "3", author = "t")]
                mod three {
                    #[execution]
                    fn execute() {}
                    #[rollback_execution]
                    fn rollback() {}
                }
            }

            mod every {
                use flamingock::prelude::*;

                #[change_unit(id = "s-a", order = "1", author = "t")]
                mod a {
                    #[execution]
                    fn execute() {}
                }

                #[change_unit(id = "s-every", order = "2", author = "t", run_always = true)]
                mod every {
                    #[execution]
                    fn execute(context: &flamingock::ChangeContext) {
                        super::super::ATTEMPTS
                            .lock()
                            .expect("not poisoned")
                            .push(context.attempt);
                    }
                }
            }

            fn plain() -> &'static str {
                concat!(module_path!(), "::plain")
            }

            fn every() -> &'static str {
                concat!(module_path!(), "::every")
            }

            /// Applies `module`'s units; the run that applied them wrote the summary.
            async fn cold(db: &BackendDb, module: &str) {
                let (builder, reads) = counted(db, module, false).await;
                let report = flamingock::run!(builder)
                    .await
                    .expect("the cold run applies");
                assert!(!report.applied().is_empty());
                assert_eq!(
                    reads.summary_writes(),
                    1,
                    "the run that applied wrote the summary"
                );
            }

            /// A start that must find `module`'s units all applied from the summary alone.
            async fn warm(db: &BackendDb, module: &str, units: usize) {
                let (builder, reads) = counted(db, module, false).await;
                let report = flamingock::run!(builder)
                    .await
                    .expect("the warm start succeeds");
                assert_eq!(report.count(UnitOutcome::AlreadyApplied), units, "{report}");
                assert_eq!(
                    reads.unit_states(),
                    0,
                    "the warm start read every unit's state"
                );
                assert_eq!(reads.summaries(), 1, "one summary read");
            }

            #[tokio::test]
            async fn a_warm_start_reads_the_summary_and_no_units_state() {
                let Some(db) = BackendDb::create(BACKEND, "summary_warm").await else {
                    return;
                };
                cold(&db, plain()).await;
                warm(&db, plain(), 3).await;
                warm(&db, plain(), 3).await;
                let rows = db.count(&format!("SELECT COUNT(*) FROM {SUMMARY}")).await;
                assert_eq!(rows, 1, "one summary for the one plan");
                db.drop().await;
            }

            #[tokio::test]
            async fn each_plan_has_its_own_summary_and_another_plans_rows_make_it_stale() {
                let Some(db) = BackendDb::create(BACKEND, "summary_plans").await else {
                    return;
                };
                cold(&db, plain()).await;
                let (builder, reads) = counted(&db, every(), false).await;
                flamingock::run!(builder)
                    .await
                    .expect("the other plan applies");
                assert!(reads.unit_states() >= 1, "no summary of this plan yet");
                // The other plan's rows are newer than this plan's summary: one full read, and
                // the summary is written again.
                let (builder, reads) = counted(&db, plain(), false).await;
                let report = flamingock::run!(builder).await.expect("the start succeeds");
                assert_eq!(report.count(UnitOutcome::AlreadyApplied), 3);
                assert!(reads.unit_states() >= 1, "a stale summary was believed");
                assert_eq!(reads.summary_writes(), 1);
                warm(&db, plain(), 3).await;
                let rows = db.count(&format!("SELECT COUNT(*) FROM {SUMMARY}")).await;
                assert_eq!(rows, 2);
                db.drop().await;
            }

            #[tokio::test]
            async fn an_undo_makes_the_summary_stale_and_the_next_start_reapplies() {
                let Some(db) = BackendDb::create(BACKEND, "summary_undo").await else {
                    return;
                };
                cold(&db, plain()).await;
                let engine = db.builder(plain()).build().await.expect("the store opens");
                let undone = engine
                    .undo(ChangeUnit::registered(), &UndoScope::Last(1))
                    .await
                    .expect("the last unit is undone");
                assert_eq!(undone.rolled_back(), ["s-three"]);
                let (builder, reads) = counted(&db, plain(), false).await;
                let report = flamingock::run!(builder).await.expect("the run re-applies");
                assert_eq!(report.applied(), ["s-three"], "{report}");
                assert!(reads.unit_states() >= 1, "a stale summary was believed");
                warm(&db, plain(), 3).await;
                db.drop().await;
            }

            #[tokio::test]
            async fn a_fix_makes_the_summary_stale_and_the_next_start_reapplies() {
                let Some(db) = BackendDb::create(BACKEND, "summary_fix").await else {
                    return;
                };
                cold(&db, plain()).await;
                let engine = db.builder(plain()).build().await.expect("the store opens");
                let request = FixRequest {
                    change_id: "s-two".into(),
                    resolution: Resolution::RolledBack,
                    operator: "ana".into(),
                    reason: "the table was dropped by hand".into(),
                    expected: None,
                };
                engine
                    .fix(ChangeUnit::registered(), &request)
                    .await
                    .expect("the fix is recorded");
                let (builder, reads) = counted(&db, plain(), false).await;
                let report = flamingock::run!(builder).await.expect("the run re-applies");
                assert_eq!(report.applied(), ["s-two"], "{report}");
                assert!(reads.unit_states() >= 1, "a stale summary was believed");
                warm(&db, plain(), 3).await;
                db.drop().await;
            }

            #[tokio::test]
            async fn units_that_run_always_run_at_every_start_without_reading_every_state() {
                let Some(db) = BackendDb::create(BACKEND, "summary_always").await else {
                    return;
                };
                cold(&db, every()).await;
                for _ in 0..3 {
                    let (builder, reads) = counted(&db, every(), false).await;
                    let report = flamingock::run!(builder).await.expect("the start runs it");
                    assert_eq!(report.applied(), ["s-every"], "{report}");
                    assert_eq!(report.count(UnitOutcome::AlreadyApplied), 1);
                    assert_eq!(reads.unit_states(), 0, "a start read every unit's state");
                    assert_eq!(
                        reads.summary_writes(),
                        1,
                        "the summary covers this run's rows"
                    );
                }
                assert_eq!(
                    *ATTEMPTS.lock().expect("not poisoned"),
                    [1, 2, 3, 4],
                    "each run told the attempt a full read would have counted"
                );
                let applied = db
                    .states_of("s-every")
                    .await
                    .into_iter()
                    .filter(|s| *s == AuditState::Applied)
                    .count();
                assert_eq!(applied, 4);
                db.drop().await;
            }

            #[tokio::test]
            async fn a_summary_table_an_earlier_release_never_made_is_created_in_place() {
                let Some(db) = BackendDb::create(BACKEND, "summary_missing").await else {
                    return;
                };
                cold(&db, plain()).await;
                db.execute(&format!("DROP TABLE {SUMMARY}")).await;
                let (builder, reads) = counted(&db, plain(), false).await;
                let report = flamingock::run!(builder).await.expect("the start succeeds");
                assert_eq!(report.count(UnitOutcome::AlreadyApplied), 3);
                assert!(reads.unit_states() >= 1);
                assert_eq!(reads.summary_writes(), 1, "the start wrote the summary");
                assert!(db.table_exists(SUMMARY).await);
                warm(&db, plain(), 3).await;
                db.drop().await;
            }

            #[tokio::test]
            async fn a_read_only_store_reads_the_summary_and_writes_none() {
                let Some(db) = BackendDb::create(BACKEND, "summary_ro").await else {
                    return;
                };
                cold(&db, plain()).await;
                let (builder, reads) = counted(&db, plain(), true).await;
                let report = flamingock::run!(builder).await.expect("the start succeeds");
                assert_eq!(report.count(UnitOutcome::AlreadyApplied), 3);
                assert_eq!(reads.unit_states(), 0);
                db.execute(&format!("DROP TABLE {SUMMARY}")).await;
                let (builder, reads) = counted(&db, plain(), true).await;
                let report = flamingock::run!(builder)
                    .await
                    .expect("the start falls back");
                assert_eq!(report.count(UnitOutcome::AlreadyApplied), 3);
                assert!(reads.unit_states() >= 1);
                assert_eq!(
                    reads.summary_writes(),
                    0,
                    "a read-only store writes nothing"
                );
                assert!(!db.table_exists(SUMMARY).await, "nor creates the table");
                db.drop().await;
            }

            /// The case the summary's transaction exists for: a row whose id was handed out
            /// before a run's rows, committed after them, while that run writes the summary.
            #[tokio::test]
            async fn a_row_committed_out_of_id_order_is_not_hidden_by_the_summary() {
                let Some(db) = BackendDb::create(BACKEND, "summary_order").await else {
                    return;
                };
                cold(&db, every()).await;
                let open = Duration::from_millis(1500);
                let writer = insert_uncommitted(&db, "s-a", AuditState::RolledBack, open).await;
                // This start plans from the summary (the row is not committed), runs `s-every`
                // (its row's id is above the open one's) and writes the summary while the open
                // row may still be uncommitted. (On SQLite the open transaction holds the
                // database's write lock: the start waits for it, then sees the row.)
                let (builder, _) = counted(&db, every(), false).await;
                let first = flamingock::run!(builder).await.expect("the start runs");
                writer.await.expect("the open transaction commits");
                let (builder, _) = counted(&db, every(), false).await;
                let second = flamingock::run!(builder)
                    .await
                    .expect("the next start runs");
                let reapplied = [first.applied(), second.applied()]
                    .concat()
                    .into_iter()
                    .filter(|id| *id == "s-a")
                    .count();
                assert_eq!(
                    reapplied, 1,
                    "the rolled-back unit is applied again once: {first}\n{second}"
                );
                assert_eq!(db.states_of("s-a").await.last(), Some(&AuditState::Applied));
                let (builder, reads_after) = counted(&db, every(), false).await;
                flamingock::run!(builder).await.expect("a later start runs");
                assert_eq!(reads_after.unit_states(), 0, "the summary is current again");
                db.drop().await;
            }
        }
    };
}

flamingock_testkit::for_each_backend!(summary_suite);
