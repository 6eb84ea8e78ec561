//! The reply-loss cases of the fault matrix against the server client (issue 16): a real server
//! process does the work and its reply is lost on the way back (an HTTP proxy closes the
//! client's connection instead), or, for a unit on a PostgreSQL target, the target's COMMIT
//! loses its reply (the SQL wire proxy). After each case a normal run (straight to the server)
//! leaves at most one APPLIED per unit, each effect exactly once, and every row of the first run
//! still there.
//!
//! | reply lost | what the client and the engine do |
//! |---|---|
//! | an append's (STARTED, APPLIED), once | retried under the row's name: recorded once, the run goes on |
//! | a person's fix append, once | retried: one resolution; the same fix again is refused |
//! | the lock's acquire, extend, release, once | retried (each is safe to repeat): the run goes on, the lock ends released |
//! | every try of the APPLIED append | `OutcomeUnknown`; the engine reads the audit and finds the row |
//! | every try, and the server unreachable after | the run stops in doubt naming the unit; the next run finds APPLIED |
//! | every try of the STARTED append | the engine finds STARTED in the audit and runs the unit, once |
//! | every try of the STARTED append, server unreachable | the unit is not run; the next run blocks it for a person |
//! | every try of an undo's ROLLBACK_STARTED | the engine finds it in the audit and rolls the unit back, once |
//! | every try of a fix, server unreachable | the fix says its outcome is unknown; repeating it is refused |
//! | a PostgreSQL target's COMMIT (TX_SEPARATE) | the marker tells it committed: APPLIED recorded, not run again |
//! | the same, the target unreachable after | in doubt; the next run records APPLIED from the marker |

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::reply_dropper::{Loss, ReplyDropper};
use common::{Server, fresh, token};
use flamingock::{
    AuditEntry, AuditState, AuditStore, ChangeContext, ChangeUnit, Error, Flamingock,
    FlamingockBuilder, UnitOutcome,
};
use flamingock_client::{HttpAuditStore, RetryPolicy};
use flamingock_testkit::{Backend, FreshDb};

/// How often a change unit's effect happened.
#[derive(Clone, Default)]
pub struct Effects(Arc<AtomicUsize>);

impl Effects {
    fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

pub mod quick {
    use super::*;

    #[flamingock::change_unit(id = "publish", order = "1", author = "ana", transactional = false)]
    pub mod publish {
        use super::*;
        #[execution]
        pub fn execute(context: &ChangeContext, effects: &Effects) {
            assert_eq!(context.change_id, "publish");
            effects.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// Runs long enough for the heartbeat to extend a 3 s lease once (at a third of it).
pub mod slow {
    use super::*;

    #[flamingock::change_unit(
        id = "publish-slowly",
        order = "1",
        author = "ana",
        transactional = false
    )]
    pub mod publish_slowly {
        use super::*;
        #[execution]
        pub async fn execute(effects: &Effects) {
            tokio::time::sleep(Duration::from_millis(1800)).await;
            effects.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// A unit with a rollback: `Effects` counts its executions, `Undone` its rollbacks.
pub mod undoable {
    use super::*;

    #[flamingock::change_unit(
        id = "publish-undoable",
        order = "1",
        author = "ana",
        transactional = false
    )]
    pub mod publish_undoable {
        use super::*;
        #[execution]
        pub fn execute(effects: &Effects) {
            effects.0.fetch_add(1, Ordering::SeqCst);
        }

        #[rollback_execution]
        pub fn rollback(undone: &Undone) {
            undone.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// How often the undoable unit's rollback ran.
#[derive(Clone, Default)]
pub struct Undone(Arc<AtomicUsize>);

pub mod failing {
    #[flamingock::change_unit(id = "export", order = "1", author = "ana", transactional = false)]
    pub mod export {
        #[execution]
        pub fn execute() -> Result<(), std::io::Error> {
            Err(std::io::Error::other("the export endpoint answered 500"))
        }
    }
}

/// A transactional unit on the PostgreSQL target `app`: `TX_SEPARATE` with the server as audit
/// store (the marker in the target's transaction).
pub mod separate {
    use flamingock::sqlx::{Postgres, Transaction};

    #[flamingock::change_unit(
        id = "insert-effect",
        order = "1",
        author = "ana",
        target_system = "app"
    )]
    pub mod insert_effect {
        use super::*;
        #[execution]
        pub async fn execute(
            tx: &mut Transaction<'static, Postgres>,
        ) -> Result<(), flamingock::sqlx::Error> {
            flamingock::sqlx::query("INSERT INTO rl_effects (unit) VALUES ('insert-effect')")
                .execute(&mut **tx)
                .await?;
            Ok(())
        }
    }
}

fn units(module: &str) -> Vec<&'static ChangeUnit> {
    ChangeUnit::registered()
        .filter(|unit| unit.source.module_path.ends_with(module))
        .collect()
}

/// Retries that give up within a second, so that the cases where every try is lost stay short.
fn quick_retries() -> RetryPolicy {
    RetryPolicy {
        attempts: 4,
        backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(200),
        timeout: Duration::from_secs(10),
    }
}

/// One server on a fresh database, with a runner's and an operator's token of `orders`/`prod`.
struct Setup {
    db: FreshDb,
    server: Server,
    runner: String,
    operator: String,
}

impl Setup {
    async fn new(backend: Backend, hint: &str) -> Option<Setup> {
        let db = fresh(backend, hint).await?;
        let server = Server::start(&db.url);
        let runner = token(&db.url, "runner", Some(("orders", "prod")));
        let operator = token(&db.url, "operator", Some(("orders", "prod")));
        Some(Setup {
            db,
            server,
            runner,
            operator,
        })
    }

    /// A proxy in front of the server, armed with `loss`.
    async fn proxy(&self, loss: Loss) -> ReplyDropper {
        let proxy = ReplyDropper::start(&self.server.listen).await;
        proxy.arm(loss);
        proxy
    }

    /// A builder on `url` (the proxy's or the server's) with `token`; a 3 s lease, so that a
    /// run that could not release the lock holds up the next one only briefly.
    fn builder(&self, url: &str, token: &str, effects: &Effects) -> FlamingockBuilder {
        let store = HttpAuditStore::with_retry(url, token, quick_retries()).expect("a store");
        Flamingock::builder()
            .audit_store(Arc::new(store))
            .dependency(effects.clone())
            .lock_lease(Duration::from_secs(3))
            .lock_wait(Duration::from_secs(30))
    }

    fn direct(&self) -> String {
        self.server.url("orders", "prod")
    }

    /// Every audit row, read straight from the server.
    async fn rows(&self) -> Vec<AuditEntry> {
        let store = HttpAuditStore::new(&self.direct(), self.runner.clone()).expect("a store");
        store.entries().await.expect("the audit reads")
    }

    /// The lock row, read straight from the server.
    async fn lock(&self) -> Option<flamingock::LockInfo> {
        let store = HttpAuditStore::new(&self.direct(), self.runner.clone()).expect("a store");
        flamingock::DistributedLock::read(&store, "flamingock")
            .await
            .expect("the lock reads")
    }

    /// The second, normal run: `unit` comes out `outcome`, the audit holds exactly `expected`,
    /// and every row of the first run is still there.
    async fn second_run(
        &self,
        module: &str,
        effects: &Effects,
        unit: &str,
        outcome: UnitOutcome,
        first: &[AuditEntry],
        expected: &[AuditState],
    ) {
        let report = self
            .builder(&self.direct(), &self.runner, effects)
            .build()
            .await
            .expect("the engine")
            .run(units(module))
            .await
            .unwrap_or_else(|e| panic!("the second, normal run failed: {e}"));
        assert_eq!(
            report.unit(unit).map(|u| u.outcome),
            Some(outcome),
            "{report}"
        );
        let rows = self.rows().await;
        assert_eq!(states(&rows), expected, "{rows:#?}");
        for row in first {
            assert!(
                rows.iter().any(|r| r.id == row.id && r.state == row.state),
                "the first run's {row:?} is gone"
            );
        }
    }

    async fn finish(self) {
        drop(self.server);
        self.db.drop_database().await;
    }
}

fn states(rows: &[AuditEntry]) -> Vec<AuditState> {
    rows.iter().map(|row| row.state).collect()
}

const ENTRIES: &str = "POST /v1/services/orders/environments/prod/entries ";

fn lock_call(action: &str) -> String {
    format!("POST /v1/services/orders/environments/prod/locks/flamingock/{action} ")
}

fn state_body(state: &str) -> String {
    format!("\"state\":\"{state}\"")
}

/// A run of `module` through a proxy that loses one reply (`loss`) succeeds, the work done and
/// recorded once; the next run applies nothing.
async fn one_lost_reply_is_retried(
    backend: Backend,
    hint: &str,
    module: &str,
    unit: &str,
    loss: Loss,
) {
    let Some(setup) = Setup::new(backend, hint).await else {
        return;
    };
    let proxy = setup.proxy(loss).await;
    let effects = Effects::default();
    let report = setup
        .builder(&proxy.url("orders", "prod"), &setup.runner, &effects)
        .build()
        .await
        .expect("the engine")
        .run(units(module))
        .await
        .unwrap_or_else(|e| panic!("the run succeeds despite the lost reply: {e}"));
    assert_eq!(report.applied(), [unit], "{report}");
    assert_eq!(
        proxy.dropped(),
        1,
        "one reply was lost: {:#?}",
        proxy.forwarded()
    );
    assert_eq!(effects.count(), 1);
    let first = setup.rows().await;
    let expected = [AuditState::Started, AuditState::Applied];
    assert_eq!(states(&first), expected, "recorded once: {first:#?}");
    assert!(setup.lock().await.is_none(), "the lock ends released");
    setup
        .second_run(
            module,
            &effects,
            unit,
            UnitOutcome::AlreadyApplied,
            &first,
            &expected,
        )
        .await;
    assert_eq!(effects.count(), 1, "the effect happened once");
    setup.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_started_append_whose_reply_is_lost_is_retried_and_recorded_once() {
    let loss = Loss::first(ENTRIES).with_body(state_body("STARTED"));
    one_lost_reply_is_retried(
        Backend::Sqlite,
        "rl_started",
        "::quick::publish",
        "publish",
        loss,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_applied_append_whose_reply_is_lost_is_retried_and_recorded_once() {
    let loss = Loss::first(ENTRIES).with_body(state_body("APPLIED"));
    one_lost_reply_is_retried(
        Backend::Sqlite,
        "rl_applied",
        "::quick::publish",
        "publish",
        loss,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_acquire_whose_reply_is_lost_is_retried_and_the_run_goes_on() {
    let loss = Loss::first(lock_call("acquire"));
    one_lost_reply_is_retried(
        Backend::Sqlite,
        "rl_acquire",
        "::quick::publish",
        "publish",
        loss,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_extension_whose_reply_is_lost_is_retried_and_the_lease_kept() {
    let loss = Loss::first(lock_call("extend"));
    let module = "::slow::publish_slowly";
    one_lost_reply_is_retried(Backend::Sqlite, "rl_extend", module, "publish-slowly", loss).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_release_whose_reply_is_lost_is_retried_and_the_lock_ends_released() {
    let loss = Loss::first(lock_call("release"));
    one_lost_reply_is_retried(
        Backend::Sqlite,
        "rl_release",
        "::quick::publish",
        "publish",
        loss,
    )
    .await;
}

/// Every try of the APPLIED append loses its reply: the client reports `OutcomeUnknown`, the
/// engine reads the audit and finds the row: applied, once.
async fn every_lost_applied_reply_is_settled_from_the_audit(backend: Backend) {
    let Some(setup) = Setup::new(backend, "rl_every").await else {
        return;
    };
    let proxy = setup
        .proxy(
            Loss::first(ENTRIES)
                .with_body(state_body("APPLIED"))
                .every_time(),
        )
        .await;
    let effects = Effects::default();
    let report = setup
        .builder(&proxy.url("orders", "prod"), &setup.runner, &effects)
        .build()
        .await
        .expect("the engine")
        .run(units("::quick::publish"))
        .await
        .unwrap_or_else(|e| panic!("the engine finds the row in the audit: {e}"));
    assert_eq!(report.applied(), ["publish"], "{report}");
    assert_eq!(
        proxy.dropped(),
        quick_retries().attempts as usize,
        "every try lost its reply: {:#?}",
        proxy.forwarded()
    );
    let first = setup.rows().await;
    let expected = [AuditState::Started, AuditState::Applied];
    assert_eq!(states(&first), expected, "written once: {first:#?}");
    setup
        .second_run(
            "::quick::publish",
            &effects,
            "publish",
            UnitOutcome::AlreadyApplied,
            &first,
            &expected,
        )
        .await;
    assert_eq!(effects.count(), 1);
    setup.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_lost_applied_reply_is_settled_from_the_audit_on_sqlite() {
    every_lost_applied_reply_is_settled_from_the_audit(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_lost_applied_reply_is_settled_from_the_audit_on_postgres() {
    every_lost_applied_reply_is_settled_from_the_audit(Backend::Postgres).await;
}

/// The run stopped in doubt on `unit`, and its report says so.
fn assert_in_doubt(result: Result<flamingock::RunReport, Error>, unit: &str) {
    let error = match result {
        Ok(report) => panic!("the run succeeded although the outcome was unknowable:\n{report}"),
        Err(error) => error,
    };
    let message = error.to_string();
    match &error {
        Error::InDoubt { change_id, .. } => assert_eq!(change_id, unit, "{message}"),
        other => panic!("expected InDoubt, got: {other}"),
    }
    let report = error.report().expect("a report");
    assert_eq!(
        report.unit(unit).map(|u| u.outcome),
        Some(UnitOutcome::InDoubt),
        "{message}"
    );
}

/// Every try of the APPLIED append loses its reply and then the server cannot be reached: the
/// run stops in doubt, writes nothing more (no FAILED, no rollback); the row did land, so the
/// next run applies nothing.
async fn every_lost_applied_reply_unreachable_server_stops_in_doubt(backend: Backend) {
    let Some(setup) = Setup::new(backend, "rl_doubt").await else {
        return;
    };
    let proxy = setup
        .proxy(
            Loss::first(ENTRIES)
                .with_body(state_body("APPLIED"))
                .every_time()
                .then_refuse_everything(),
        )
        .await;
    let effects = Effects::default();
    let first = setup
        .builder(&proxy.url("orders", "prod"), &setup.runner, &effects)
        .build()
        .await
        .expect("the engine")
        .run(units("::quick::publish"))
        .await;
    proxy.release();
    assert_eq!(proxy.dropped(), 1, "{:#?}", proxy.forwarded());
    assert_in_doubt(first, "publish");
    assert_eq!(effects.count(), 1, "the effect is kept");
    let first = setup.rows().await;
    let expected = [AuditState::Started, AuditState::Applied];
    assert_eq!(
        states(&first),
        expected,
        "nothing written after the lost reply"
    );
    setup
        .second_run(
            "::quick::publish",
            &effects,
            "publish",
            UnitOutcome::AlreadyApplied,
            &first,
            &expected,
        )
        .await;
    assert_eq!(effects.count(), 1, "the effect happened once");
    setup.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_lost_applied_reply_unreachable_server_stops_in_doubt_on_sqlite() {
    every_lost_applied_reply_unreachable_server_stops_in_doubt(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_lost_applied_reply_unreachable_server_stops_in_doubt_on_postgres() {
    every_lost_applied_reply_unreachable_server_stops_in_doubt(Backend::Postgres).await;
}

/// Every try of the STARTED append loses its reply, and the audit can be read: the engine finds
/// the row there, so the unit's intent is recorded and it runs, once (it is not left blocked
/// for a person over a write that did land).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_lost_started_reply_is_settled_from_the_audit_and_the_unit_runs_once() {
    let Some(setup) = Setup::new(Backend::Sqlite, "rl_started_every").await else {
        return;
    };
    let proxy = setup
        .proxy(
            Loss::first(ENTRIES)
                .with_body(state_body("STARTED"))
                .every_time(),
        )
        .await;
    let effects = Effects::default();
    let report = setup
        .builder(&proxy.url("orders", "prod"), &setup.runner, &effects)
        .build()
        .await
        .expect("the engine")
        .run(units("::quick::publish"))
        .await
        .unwrap_or_else(|e| panic!("the engine finds STARTED in the audit: {e}"));
    assert_eq!(report.applied(), ["publish"], "{report}");
    assert_eq!(proxy.dropped(), quick_retries().attempts as usize);
    assert_eq!(effects.count(), 1);
    let first = setup.rows().await;
    let expected = [AuditState::Started, AuditState::Applied];
    assert_eq!(states(&first), expected, "{first:#?}");
    setup
        .second_run(
            "::quick::publish",
            &effects,
            "publish",
            UnitOutcome::AlreadyApplied,
            &first,
            &expected,
        )
        .await;
    assert_eq!(effects.count(), 1, "the effect happened once");
    setup.finish().await;
}

/// An undo whose every try of its intent (`ROLLBACK_STARTED`) loses its reply, the audit
/// readable: the engine finds the row there and rolls the unit back, once; a normal run then
/// applies it again, and no row is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_lost_rollback_started_reply_is_settled_from_the_audit_and_the_undo_runs_once() {
    let Some(setup) = Setup::new(Backend::Sqlite, "rl_undo_every").await else {
        return;
    };
    let module = "::undoable::publish_undoable";
    let effects = Effects::default();
    let undone = Undone::default();
    setup
        .builder(&setup.direct(), &setup.runner, &effects)
        .dependency(undone.clone())
        .build()
        .await
        .expect("the engine")
        .run(units(module))
        .await
        .expect("the first run applies the unit");
    let proxy = setup
        .proxy(
            Loss::first(ENTRIES)
                .with_body(state_body("ROLLBACK_STARTED"))
                .every_time(),
        )
        .await;
    let report = setup
        .builder(&proxy.url("orders", "prod"), &setup.runner, &effects)
        .dependency(undone.clone())
        .build()
        .await
        .expect("the engine")
        .undo(units(module), &flamingock::UndoScope::Last(1))
        .await
        .unwrap_or_else(|e| panic!("the engine finds ROLLBACK_STARTED in the audit: {e}"));
    assert_eq!(
        report
            .units
            .iter()
            .map(|line| line.outcome)
            .collect::<Vec<_>>(),
        [flamingock::UndoOutcome::RolledBack],
        "{report:?}"
    );
    assert_eq!(proxy.dropped(), quick_retries().attempts as usize);
    assert_eq!(undone.0.load(Ordering::SeqCst), 1, "rolled back once");
    let first = setup.rows().await;
    let undo_rows = [
        AuditState::Started,
        AuditState::Applied,
        AuditState::RollbackStarted,
        AuditState::RolledBack,
    ];
    assert_eq!(states(&first), undo_rows, "{first:#?}");
    let mut expected = undo_rows.to_vec();
    expected.extend([AuditState::Started, AuditState::Applied]);
    let report = setup
        .builder(&setup.direct(), &setup.runner, &effects)
        .dependency(undone.clone())
        .build()
        .await
        .expect("the engine")
        .run(units(module))
        .await
        .expect("the run applies the rolled-back unit again");
    assert_eq!(report.applied(), ["publish-undoable"], "{report}");
    let rows = setup.rows().await;
    assert_eq!(states(&rows), expected, "{rows:#?}");
    assert!(first.iter().all(|r| rows.iter().any(|s| s.id == r.id)));
    assert_eq!((effects.count(), undone.0.load(Ordering::SeqCst)), (2, 1));
    setup.finish().await;
}

/// Every try of the STARTED append loses its reply and the server cannot be reached: the unit
/// is not run (its intent is not known to be recorded); the row did land, so the next run finds
/// the unit interrupted and blocks it for a person, naming it. Never run twice, never at all
/// without its STARTED row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_lost_started_reply_unreachable_server_leaves_the_unit_unrun_and_blocked() {
    let Some(setup) = Setup::new(Backend::Sqlite, "rl_started_doubt").await else {
        return;
    };
    let proxy = setup
        .proxy(
            Loss::first(ENTRIES)
                .with_body(state_body("STARTED"))
                .every_time()
                .then_refuse_everything(),
        )
        .await;
    let effects = Effects::default();
    let first = setup
        .builder(&proxy.url("orders", "prod"), &setup.runner, &effects)
        .build()
        .await
        .expect("the engine")
        .run(units("::quick::publish"))
        .await;
    proxy.release();
    let error = first.expect_err("the run cannot confirm STARTED");
    assert!(error.to_string().contains("publish"), "{error}");
    assert_eq!(effects.count(), 0, "the unit did not run");
    let rows = setup.rows().await;
    assert_eq!(states(&rows), [AuditState::Started], "{rows:#?}");
    let blocked = setup
        .builder(&setup.direct(), &setup.runner, &effects)
        .build()
        .await
        .expect("the engine")
        .run(units("::quick::publish"))
        .await
        .expect_err("an interrupted non-transactional unit blocks");
    match &blocked {
        Error::Blocked { blocked, .. } => {
            assert_eq!(blocked.len(), 1, "{blocked:?}");
            assert_eq!(blocked[0].change_id, "publish");
        }
        other => panic!("expected Blocked, got: {other}"),
    }
    assert!(
        blocked.to_string().contains("flamingock fix publish"),
        "{blocked}"
    );
    assert_eq!(effects.count(), 0, "still not run");
    assert_eq!(states(&setup.rows().await), [AuditState::Started]);
    setup.finish().await;
}

/// The unit `export` fails, then blocks; an operator records `fix --applied` of it.
fn fix_request() -> flamingock::FixRequest {
    flamingock::FixRequest {
        change_id: "export".to_owned(),
        resolution: flamingock::Resolution::Applied,
        operator: "eva".to_owned(),
        reason: "checked the export by hand".to_owned(),
        expected: Some(flamingock::SeenState::State(AuditState::Failed)),
    }
}

async fn fail_export(setup: &Setup) {
    let failed = setup
        .builder(&setup.direct(), &setup.runner, &Effects::default())
        .build()
        .await
        .expect("the engine")
        .run(units("::failing::export"))
        .await;
    assert!(
        matches!(failed, Err(Error::UnitFailed { .. })),
        "{failed:?}"
    );
}

/// After a fix: the same fix again is refused (the state it was decided on is gone), writing
/// nothing; runs skip the unit; exactly one resolution is in the audit.
async fn the_fix_is_recorded_once(setup: &Setup, effects: &Effects) {
    let expected = [
        AuditState::Started,
        AuditState::Failed,
        AuditState::ManualMarkedAsApplied,
    ];
    let rows = setup.rows().await;
    assert_eq!(states(&rows), expected, "the resolution landed once");
    let again = setup
        .builder(&setup.direct(), &setup.operator, effects)
        .build()
        .await
        .expect("the engine")
        .fix(units("::failing::export"), &fix_request())
        .await;
    assert!(
        matches!(again, Err(flamingock::FixError::StateChanged { .. })),
        "{again:?}"
    );
    setup
        .second_run(
            "::failing::export",
            effects,
            "export",
            UnitOutcome::AlreadyApplied,
            &rows,
            &expected,
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fix_whose_reply_is_lost_is_retried_and_recorded_once() {
    let Some(setup) = Setup::new(Backend::Sqlite, "rl_fix").await else {
        return;
    };
    fail_export(&setup).await;
    let proxy = setup
        .proxy(Loss::first(ENTRIES).with_body(state_body("MANUAL_MARKED_AS_APPLIED")))
        .await;
    let effects = Effects::default();
    let fixed = setup
        .builder(&proxy.url("orders", "prod"), &setup.operator, &effects)
        .build()
        .await
        .expect("the engine")
        .fix(units("::failing::export"), &fix_request())
        .await
        .unwrap_or_else(|e| panic!("the retried fix is recorded: {e}"));
    assert_eq!(fixed.entry.author, "eva");
    assert_eq!(proxy.dropped(), 1, "{:#?}", proxy.forwarded());
    the_fix_is_recorded_once(&setup, &effects).await;
    setup.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fix_whose_every_reply_is_lost_is_of_unknown_outcome_and_not_repeated() {
    let Some(setup) = Setup::new(Backend::Sqlite, "rl_fix_doubt").await else {
        return;
    };
    fail_export(&setup).await;
    let proxy = setup
        .proxy(
            Loss::first(ENTRIES)
                .with_body(state_body("MANUAL_MARKED_AS_APPLIED"))
                .every_time()
                .then_refuse_everything(),
        )
        .await;
    let effects = Effects::default();
    let fixed = setup
        .builder(&proxy.url("orders", "prod"), &setup.operator, &effects)
        .build()
        .await
        .expect("the engine")
        .fix(units("::failing::export"), &fix_request())
        .await;
    proxy.release();
    match fixed {
        Err(flamingock::FixError::OutcomeUnknown { change_id, .. }) => {
            assert_eq!(change_id, "export")
        }
        other => panic!("expected the fix's outcome to be unknown, got {other:?}"),
    }
    the_fix_is_recorded_once(&setup, &effects).await;
    setup.finish().await;
}

/// The COMMIT of a TX_SEPARATE unit's target transaction: on its connection the open marker's
/// insert comes first, then the unit's insert, then the marker marked committed, then COMMIT
/// (the second COMMIT after the marker's first insert, as in `reply_loss_engine`).
fn separate_commit() -> flamingock_tests::reply_loss::Trigger {
    use flamingock_tests::reply_loss::Trigger;
    Trigger::statement_contains("COMMIT")
        .after(Trigger::statement_contains("flamingock_marker").and_contains("INSERT"))
        .nth(2)
}

/// A PostgreSQL target database with `rl_effects`, and the SQL wire proxy in front of it.
async fn pg_target(hint: &str) -> Option<(FreshDb, flamingock_tests::reply_loss::ReplyLossProxy)> {
    let db = FreshDb::create(Backend::Postgres, hint).await?;
    let pool = flamingock::sqlx::PgPool::connect(&db.url)
        .await
        .expect("the target");
    flamingock::sqlx::query("CREATE TABLE rl_effects (unit TEXT NOT NULL)")
        .execute(&pool)
        .await
        .expect("the effects table");
    pool.close().await;
    let proxy = flamingock_tests::reply_loss::ReplyLossProxy::in_front_of(&db.url).await;
    Some((db, proxy))
}

async fn pg_effects(db: &FreshDb) -> i64 {
    let pool = flamingock::sqlx::PgPool::connect(&db.url)
        .await
        .expect("the target");
    let n = flamingock::sqlx::query_scalar("SELECT COUNT(*) FROM rl_effects")
        .fetch_one(&pool)
        .await
        .expect("the effects");
    pool.close().await;
    n
}

/// The target `app` on `url`, a pool that gives up on a connection within two seconds.
async fn app_target(url: &str) -> flamingock::SqlTarget<flamingock::sqlx::Postgres> {
    let pool = flamingock::sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(Duration::from_secs(2))
        .connect(url)
        .await
        .expect("the target");
    flamingock::SqlTarget::new("app", pool)
}

/// A unit on a PostgreSQL target, the server as audit store: the target's COMMIT loses its
/// reply. `unreadable`: the target cannot be reached until after the run either.
async fn lost_target_commit(server_backend: Backend, unreadable: bool) {
    let hint = if unreadable { "rl_tx_doubt" } else { "rl_tx" };
    let Some(setup) = Setup::new(server_backend, hint).await else {
        return;
    };
    let Some((target_db, target_proxy)) = pg_target(hint).await else {
        return;
    };
    let arming = target_proxy.arm(separate_commit());
    if unreadable {
        arming
            .refuse_reconnects_until_released()
            .cut_other_connections();
    }
    let effects = Effects::default();
    let first = setup
        .builder(&setup.direct(), &setup.runner, &effects)
        .target(app_target(&target_proxy.url_for(&target_db.url)).await)
        .build()
        .await
        .expect("the engine")
        .run(units("::separate::insert_effect"))
        .await;
    target_proxy.accept_reconnects();
    let fired = target_proxy
        .fired_on()
        .expect("the COMMIT's reply was lost");
    assert!(
        fired.statement.trim().eq_ignore_ascii_case("COMMIT"),
        "the wrong reply was lost: {fired}"
    );
    assert_eq!(pg_effects(&target_db).await, 1, "the commit happened");
    let first_rows = setup.rows().await;
    let (outcome, expected_first) = if unreadable {
        assert_in_doubt(first, "insert-effect");
        (UnitOutcome::RecoveredApplied, vec![AuditState::Started])
    } else {
        let report = first.unwrap_or_else(|e| panic!("the marker tells the outcome: {e}"));
        let line = report.unit("insert-effect").expect("in the report");
        assert_eq!(line.tx_strategy, flamingock::TxStrategy::Separate);
        assert_eq!(line.outcome, UnitOutcome::Applied, "{report}");
        (
            UnitOutcome::AlreadyApplied,
            vec![AuditState::Started, AuditState::Applied],
        )
    };
    assert_eq!(states(&first_rows), expected_first, "{first_rows:#?}");
    let report = setup
        .builder(&setup.direct(), &setup.runner, &effects)
        .target(app_target(&target_db.url).await)
        .build()
        .await
        .expect("the engine")
        .run(units("::separate::insert_effect"))
        .await
        .unwrap_or_else(|e| panic!("the second, normal run failed: {e}"));
    assert_eq!(
        report.unit("insert-effect").map(|u| u.outcome),
        Some(outcome),
        "{report}"
    );
    let rows = setup.rows().await;
    assert_eq!(
        states(&rows),
        [AuditState::Started, AuditState::Applied],
        "{rows:#?}"
    );
    assert!(first_rows.iter().all(|r| rows.iter().any(|s| s.id == r.id)));
    assert_eq!(pg_effects(&target_db).await, 1, "the effect is there once");
    drop(target_proxy);
    target_db.drop_database().await;
    setup.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_target_commit_whose_reply_is_lost_is_settled_by_the_marker() {
    lost_target_commit(Backend::Sqlite, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_target_commit_lost_and_unreadable_stops_in_doubt_and_the_marker_decides_next() {
    lost_target_commit(Backend::Sqlite, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_target_commit_lost_with_the_server_on_postgres_is_settled_by_the_marker() {
    lost_target_commit(Backend::Postgres, false).await;
}
