//! What MySQL's implicit commit of DDL does to a `TX_SEPARATE` unit on a MariaDB target (audit
//! store on PostgreSQL), and that it stays safe: no unit reported applied that was not, nothing
//! applied twice.
//!
//! MySQL and MariaDB commit the open transaction before every DDL statement (even one that then
//! fails), and the statements after it run in autocommit. A unit's transaction therefore holds
//! only what follows its last DDL statement, and rolling back cannot undo the rest. The target
//! writes an open marker first thing in the unit's transaction: an implicit commit makes it
//! visible, which tells a failed or interrupted try that left part of its change in place
//! (recorded `ROLLBACK_FAILED`, the unit then waits for a person) from one that left nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use flamingock::{AuditState, Error, SqlTarget, UnitOutcome};
use flamingock_tests::conformance::{Backend, BackendDb};

/// Makes a unit fail (after its DDL) while set.
pub struct FailSwitch(pub AtomicBool);

/// Counts how many times the unit's execution ran, across runs.
#[derive(Clone, Default)]
pub struct Calls(pub Arc<AtomicU32>);

mod ledger {
    use flamingock::prelude::*;
    use sqlx::{MySql, Transaction};

    use crate::mysql_ddl::{Calls, FailSwitch};

    #[change_unit(id = "open-ledger", order = "1", author = "t", target_system = "books")]
    mod open_ledger {
        use super::*;

        #[execution]
        async fn execute(
            tx: &mut Transaction<'_, MySql>,
            switch: &FailSwitch,
            calls: &Calls,
        ) -> anyhow::Result<()> {
            calls.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            sqlx::query("INSERT INTO entries (id) VALUES (1)")
                .execute(&mut **tx)
                .await?;
            sqlx::query("CREATE TABLE ledger (id INTEGER PRIMARY KEY)")
                .execute(&mut **tx)
                .await?;
            sqlx::query("INSERT INTO ledger (id) VALUES (1)")
                .execute(&mut **tx)
                .await?;
            if switch.0.load(std::sync::atomic::Ordering::SeqCst) {
                anyhow::bail!("ledger opening failed after its DDL");
            }
            Ok(())
        }
    }
}

const MODULE: &str = "conformance::mysql_ddl::ledger";

/// A PostgreSQL audit database and a MariaDB target database with an `entries` table.
async fn fresh(hint: &str) -> Option<(BackendDb, BackendDb)> {
    let audit = BackendDb::create(Backend::Postgres, hint).await?;
    let Some(target) = BackendDb::create(Backend::MySql, hint).await else {
        audit.drop().await;
        return None;
    };
    target
        .execute("CREATE TABLE entries (id INTEGER PRIMARY KEY)")
        .await;
    Some((audit, target))
}

async fn run(
    audit: &BackendDb,
    target: &BackendDb,
    fail: bool,
    calls: &Calls,
) -> Result<flamingock::RunReport, Error> {
    let books = SqlTarget::<sqlx::MySql>::connect("books", &target.url)
        .await
        .unwrap();
    let builder = audit
        .builder(MODULE)
        .target(books)
        .dependency(FailSwitch(AtomicBool::new(fail)))
        .dependency(calls.clone());
    flamingock::run!(builder).await
}

fn markers(committed: bool) -> String {
    format!(
        "SELECT COUNT(*) FROM flamingock_marker WHERE change_id = 'open-ledger' AND committed = {}",
        if committed { "TRUE" } else { "FALSE" }
    )
}

#[tokio::test]
async fn a_unit_with_ddl_that_succeeds_is_applied_once() {
    let Some((audit, target)) = fresh("ddl_ok").await else {
        return;
    };
    let calls = Calls::default();
    let report = run(&audit, &target, false, &calls).await.unwrap();
    assert_eq!(report.applied(), ["open-ledger"]);
    let again = run(&audit, &target, false, &calls).await.unwrap();
    assert_eq!(again.count(UnitOutcome::AlreadyApplied), 1);
    assert_eq!(calls.0.load(Ordering::SeqCst), 1);
    assert_eq!(
        audit.states_of("open-ledger").await,
        [AuditState::Started, AuditState::Applied]
    );
    assert_eq!(target.count("SELECT COUNT(*) FROM ledger").await, 1);
    assert_eq!(
        target.count("SELECT COUNT(*) FROM flamingock_marker").await,
        0
    );
    audit.drop().await;
    target.drop().await;
}

#[tokio::test]
async fn a_unit_failing_after_its_ddl_is_recorded_not_undone_and_blocks() {
    let Some((audit, target)) = fresh("ddl_fail").await else {
        return;
    };
    let calls = Calls::default();
    let error = run(&audit, &target, true, &calls).await.unwrap_err();
    let line = &error.report().unwrap().units[0];
    assert_eq!(line.outcome, UnitOutcome::RollbackFailed, "{error}");
    let message = line.error.as_deref().unwrap();
    assert!(
        message.contains("ledger opening failed after its DDL"),
        "{message}"
    );
    assert!(
        message.contains("MySQL and MariaDB commit before every DDL statement"),
        "{message}"
    );
    // MySQL's doing: the insert before the DDL, the DDL and the insert after it all stayed.
    assert_eq!(target.count("SELECT COUNT(*) FROM entries").await, 1);
    assert_eq!(target.count("SELECT COUNT(*) FROM ledger").await, 1);
    use AuditState::*;
    let states = [Started, Failed, RollbackFailed];
    assert_eq!(audit.states_of("open-ledger").await, states);

    let blocked = run(&audit, &target, false, &calls).await.unwrap_err();
    let Error::Blocked { blocked: units, .. } = &blocked else {
        panic!("expected Blocked, got {blocked}");
    };
    assert_eq!(units[0].state, "ROLLBACK_FAILED");
    assert!(
        blocked.to_string().contains("flamingock fix open-ledger"),
        "{blocked}"
    );
    assert_eq!(calls.0.load(Ordering::SeqCst), 1, "never run twice");
    assert_eq!(target.count("SELECT COUNT(*) FROM entries").await, 1);
    assert_eq!(audit.states_of("open-ledger").await, states);
    audit.drop().await;
    target.drop().await;
}

#[tokio::test]
async fn a_try_interrupted_after_its_ddl_is_found_by_its_open_marker_and_blocks() {
    let Some((audit, target)) = fresh("ddl_crash").await else {
        return;
    };
    let calls = Calls::default();
    // Nothing after STARTED reaches the audit, as if the process died after the DDL.
    audit
        .refuse_audit_states(&[
            AuditState::Failed,
            AuditState::RollbackFailed,
            AuditState::Applied,
        ])
        .await;
    let error = run(&audit, &target, true, &calls).await.unwrap_err();
    let interrupted_run = error.report().unwrap().execution_id.clone();
    assert_eq!(audit.states_of("open-ledger").await, [AuditState::Started]);
    assert_eq!(
        target.count(&markers(false)).await,
        1,
        "the DDL committed the open marker"
    );

    audit.accept_audit_states().await;
    let error = run(&audit, &target, false, &calls).await.unwrap_err();
    let line = &error.report().unwrap().units[0];
    assert_eq!(line.outcome, UnitOutcome::RollbackFailed, "{error}");
    let message = line.error.as_deref().unwrap();
    assert!(message.contains(&interrupted_run), "{message}");
    assert!(message.contains("was interrupted"), "{message}");
    assert_eq!(calls.0.load(Ordering::SeqCst), 1, "not run again");
    assert_eq!(
        audit.states_of("open-ledger").await,
        [AuditState::Started, AuditState::RollbackFailed]
    );
    assert_eq!(
        target.count(&markers(false)).await,
        0,
        "recorded, then removed"
    );

    let blocked = run(&audit, &target, false, &calls).await.unwrap_err();
    assert!(matches!(blocked, Error::Blocked { .. }), "{blocked}");
    assert_eq!(calls.0.load(Ordering::SeqCst), 1);
    audit.drop().await;
    target.drop().await;
}

#[tokio::test]
async fn a_try_with_ddl_interrupted_after_its_commit_is_recovered_from_its_marker() {
    let Some((audit, target)) = fresh("ddl_commit").await else {
        return;
    };
    let calls = Calls::default();
    audit.refuse_audit_states(&[AuditState::Applied]).await;
    run(&audit, &target, false, &calls).await.unwrap_err();
    assert_eq!(target.count(&markers(true)).await, 1);

    audit.accept_audit_states().await;
    let report = run(&audit, &target, false, &calls).await.unwrap();
    assert_eq!(report.units[0].outcome, UnitOutcome::RecoveredApplied);
    assert_eq!(calls.0.load(Ordering::SeqCst), 1, "not run again");
    assert_eq!(target.count("SELECT COUNT(*) FROM ledger").await, 1);
    assert_eq!(
        audit.states_of("open-ledger").await,
        [AuditState::Started, AuditState::Applied]
    );
    audit.drop().await;
    target.drop().await;
}
