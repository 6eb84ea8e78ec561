//! Undo and fix against the in-memory store, with units built by `UnitBuilder` (no macros in core):
//! rollbacks run newest first, each audited, under the lock; refusals change nothing; a manual
//! fix unblocks a unit.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use flamingock_core::engine::{
    FixError, FixRequest, Resolution, SeenState, UndoError, UndoOutcome, UndoScope,
};
use flamingock_core::inject::BoxError;
use flamingock_core::lock::{DistributedLock, Fence, LockOptions};
use flamingock_core::testing::{
    MemoryAuditStore, MemoryTransaction, StepFuture, UnitBuilder, UnitScope,
};
use flamingock_core::{AuditState, ChangeUnit, Engine, Error};

/// Which rollbacks ran, in order, by unit id (ids are unique across tests).
static ROLLED_BACK: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn rolled_back(prefix: &str) -> Vec<String> {
    ROLLED_BACK
        .lock()
        .unwrap()
        .iter()
        .filter(|id| id.starts_with(prefix))
        .cloned()
        .collect()
}

type Step = for<'s> fn(UnitScope<'s>) -> StepFuture<'s>;

fn succeed<'s>(_: UnitScope<'s>) -> StepFuture<'s> {
    Box::pin(async { Ok(()) })
}

fn fail<'s>(_: UnitScope<'s>) -> StepFuture<'s> {
    Box::pin(async { Err::<(), BoxError>("target refused".into()) })
}

fn record_rollback<'s>(scope: UnitScope<'s>) -> StepFuture<'s> {
    Box::pin(async move {
        let ctx = scope.context();
        ROLLED_BACK.lock().unwrap().push(ctx.change_id.clone());
        Ok(())
    })
}

fn rollback_in_transaction<'s>(mut scope: UnitScope<'s>) -> StepFuture<'s> {
    Box::pin(async move {
        let ctx = scope.context();
        let tx = scope.transaction::<MemoryTransaction>()?;
        tx.effects.push(format!("undid {}", ctx.change_id));
        ROLLED_BACK.lock().unwrap().push(ctx.change_id.clone());
        Ok(())
    })
}

fn unit(
    id: &'static str,
    order: &'static str,
    transactional: bool,
    execution: Step,
    rollback: Option<Step>,
) -> &'static ChangeUnit {
    let builder = UnitBuilder::new(id, order, "ana")
        .transactional(transactional)
        .execute(execution);
    match rollback {
        Some(rollback) => builder.rollback(rollback),
        None => builder,
    }
    .build()
}

fn engine(store: &MemoryAuditStore) -> Engine {
    Engine::new(Arc::new(store.clone()))
}

#[tokio::test]
async fn undo_rolls_back_newest_first_each_audited_then_a_run_reapplies() {
    let store = MemoryAuditStore::new();
    let units = [
        unit("u1-a", "1", false, succeed, Some(record_rollback)),
        unit("u1-b", "2", true, succeed, Some(rollback_in_transaction)),
        unit("u1-c", "3", false, succeed, Some(record_rollback)),
    ];
    engine(&store).run(units).await.expect("first run");
    let report = engine(&store)
        .undo(units, &UndoScope::Last(2))
        .await
        .expect("undo");
    assert_eq!(report.rolled_back(), ["u1-c", "u1-b"]);
    assert_eq!(rolled_back("u1-"), ["u1-c", "u1-b"]);
    assert_eq!(
        store.states_of("u1-b").last(),
        Some(&AuditState::RolledBack)
    );
    assert_eq!(store.states_of("u1-a").last(), Some(&AuditState::Applied));
    let undo_rows: Vec<_> = store
        .rows()
        .into_iter()
        .filter(|r| r.execution_id == report.execution_id)
        .collect();
    // u1-c is NON_TX: its undo records ROLLBACK_STARTED before the rollback code runs.
    assert_eq!(undo_rows.len(), 3);
    assert_eq!(
        undo_rows
            .iter()
            .filter(|r| r.change_id == "u1-c")
            .map(|r| r.state)
            .collect::<Vec<_>>(),
        [AuditState::RollbackStarted, AuditState::RolledBack]
    );
    // The TX_SHARED rollback's effects committed with its ROLLED_BACK row.
    let shared = undo_rows.iter().find(|r| r.change_id == "u1-b").unwrap();
    assert_eq!(
        shared.metadata.as_ref().unwrap()["effects"][0],
        "undid u1-b"
    );
    // The lock was taken and given back.
    assert_eq!(store.read("flamingock").await.unwrap(), None);

    let again = engine(&store).run(units).await.expect("second run");
    assert_eq!(again.applied(), ["u1-b", "u1-c"]);
}

#[tokio::test]
async fn undo_to_keeps_the_named_unit() {
    let store = MemoryAuditStore::new();
    let units = [
        unit("u2-a", "1", false, succeed, Some(record_rollback)),
        unit("u2-b", "2", false, succeed, Some(record_rollback)),
        unit("u2-c", "3", false, succeed, Some(record_rollback)),
    ];
    engine(&store).run(units).await.unwrap();
    let report = engine(&store)
        .undo(units, &UndoScope::To("u2-a".into()))
        .await
        .unwrap();
    assert_eq!(report.rolled_back(), ["u2-c", "u2-b"]);
    let nothing = engine(&store)
        .undo(units, &UndoScope::To("u2-a".into()))
        .await
        .unwrap();
    assert!(
        nothing.units.is_empty(),
        "rolled back units are not rolled back twice"
    );
    let unknown = engine(&store)
        .undo(units, &UndoScope::To("nope".into()))
        .await;
    assert!(matches!(unknown, Err(UndoError::UnknownUnit(_))));
    let too_many = engine(&store).undo(units, &UndoScope::Last(2)).await;
    assert!(matches!(
        too_many,
        Err(UndoError::NotEnoughApplied {
            requested: 2,
            applied: 1
        })
    ));
}

#[tokio::test]
async fn undo_refuses_units_without_rollback_or_blocked_and_changes_nothing() {
    let store = MemoryAuditStore::new();
    let units = [
        unit("u3-a", "1", false, succeed, None),
        unit("u3-b", "2", false, succeed, Some(record_rollback)),
    ];
    engine(&store).run(units).await.unwrap();
    let rows = store.rows().len();
    let error = engine(&store)
        .undo(units, &UndoScope::Last(2))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, UndoError::Refused(r) if r.len() == 1),
        "{error}"
    );
    assert!(error.to_string().contains("\"u3-a\""), "{error}");
    assert_eq!(store.rows().len(), rows);
    assert!(rolled_back("u3-").is_empty());

    // A blocked unit (NON_TX, failed, no rollback) inside the range refuses too.
    let store = MemoryAuditStore::new();
    let units = [
        unit("u4-a", "1", false, succeed, Some(record_rollback)),
        unit("u4-b", "2", false, fail, None),
    ];
    assert!(engine(&store).run(units).await.is_err());
    let error = engine(&store)
        .undo(units, &UndoScope::Last(1))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("flamingock fix u4-b"), "{error}");
    assert!(rolled_back("u4-").is_empty());
}

#[tokio::test]
async fn a_failed_rollback_is_recorded_and_stops_the_undo() {
    let store = MemoryAuditStore::new();
    let units = [
        unit("u5-a", "1", false, succeed, Some(record_rollback)),
        unit("u5-b", "2", false, succeed, Some(fail)),
        unit("u5-c", "3", false, succeed, Some(record_rollback)),
    ];
    engine(&store).run(units).await.unwrap();
    let error = engine(&store)
        .undo(units, &UndoScope::Last(3))
        .await
        .unwrap_err();
    let report = error.report().expect("a report").clone();
    let outcomes: Vec<_> = report.units.iter().map(|u| u.outcome).collect();
    assert_eq!(
        outcomes,
        [
            UndoOutcome::RolledBack,
            UndoOutcome::RollbackFailed,
            UndoOutcome::NotReached
        ]
    );
    assert_eq!(
        store.states_of("u5-b").last(),
        Some(&AuditState::RollbackFailed)
    );
    assert_eq!(store.states_of("u5-a").last(), Some(&AuditState::Applied));
    assert_eq!(rolled_back("u5-"), ["u5-c"]);
}

#[tokio::test]
async fn undo_waits_for_the_lock_and_gives_up_without_rolling_back() {
    let store = MemoryAuditStore::new();
    let units = [unit("u6-a", "1", false, succeed, Some(record_rollback))];
    engine(&store).run(units).await.unwrap();
    let other = Fence {
        key: "flamingock".into(),
        owner: "another-runner".into(),
    };
    store
        .try_acquire(&other, "elsewhere", Duration::from_secs(60))
        .await
        .unwrap();
    let impatient = engine(&store).with_lock_options(LockOptions {
        wait: Duration::from_millis(50),
        ..LockOptions::default()
    });
    let error = impatient
        .undo(units, &UndoScope::Last(1))
        .await
        .unwrap_err();
    assert!(
        matches!(error, UndoError::Engine(Error::LockTimeout { .. })),
        "{error}"
    );
    assert!(rolled_back("u6-").is_empty());
    assert_eq!(
        store.states_of("u6-a"),
        [AuditState::Started, AuditState::Applied]
    );
}

#[tokio::test]
async fn fix_unblocks_a_unit_with_who_and_why() {
    let store = MemoryAuditStore::new();
    let units = [
        unit("u7-a", "1", false, fail, None),
        unit("u7-b", "2", false, succeed, None),
    ];
    assert!(engine(&store).run(units).await.is_err());
    assert!(matches!(
        engine(&store).run(units).await,
        Err(Error::Blocked { .. })
    ));
    let request = |reason: &str| FixRequest {
        change_id: "u7-a".into(),
        resolution: Resolution::Applied,
        operator: "ops-eva".into(),
        reason: reason.into(),
        expected: None,
    };
    // A fix decided on a state that is no longer the unit's is refused, and records nothing.
    let rows_before = store.rows().len();
    let stale = FixRequest {
        expected: Some(SeenState::State(AuditState::Started)),
        ..request("checked by hand")
    };
    let Err(FixError::StateChanged { seen, now, .. }) = engine(&store).fix(units, &stale).await
    else {
        panic!("a fix on a changed state must be refused");
    };
    assert_eq!(seen, SeenState::State(AuditState::Started));
    assert_eq!(now, SeenState::State(AuditState::Failed));
    assert_eq!(store.rows().len(), rows_before);
    assert!(matches!(
        engine(&store).fix(units, &request("  ")).await,
        Err(FixError::Missing(_))
    ));
    // An id no unit can have (MariaDB would find "u7-a" for it, padding the space) is refused.
    let padded = FixRequest {
        change_id: "u7-a ".into(),
        ..request("checked by hand")
    };
    let refused = engine(&store).fix(units, &padded).await;
    assert!(
        matches!(&refused, Err(FixError::InvalidId { .. })),
        "{refused:?}"
    );
    assert_eq!(store.rows().len(), rows_before);
    let outcome = engine(&store)
        .fix(units, &request("checked by hand"))
        .await
        .unwrap();
    assert_eq!(outcome.previous, Some(AuditState::Failed));
    let row = store.rows().pop().unwrap();
    assert_eq!(row.state, AuditState::ManualMarkedAsApplied);
    assert_eq!(row.author, "ops-eva");
    let metadata = row.metadata.unwrap();
    assert_eq!(metadata["reason"], "checked by hand");
    assert_eq!(metadata["unit_author"], "ana");

    // A second decision on top of the first keeps the unit's own author, not the first operator.
    let second = FixRequest {
        resolution: Resolution::RolledBack,
        operator: "ops-li".into(),
        ..request("it was not in place after all")
    };
    engine(&store).fix(units, &second).await.unwrap();
    let row = store.rows().pop().unwrap();
    assert_eq!(row.author, "ops-li");
    assert_eq!(row.unit_author(), "ana");
    engine(&store)
        .fix(units, &request("checked again"))
        .await
        .unwrap();

    let report = engine(&store).run(units).await.expect("unblocked");
    assert_eq!(report.applied(), ["u7-b"]);

    // A unit that never ran is described from its registration; an unknown one is refused.
    let fresh = [unit("u8-a", "1", true, succeed, None)];
    let rolled = FixRequest {
        change_id: "u8-a".into(),
        resolution: Resolution::RolledBack,
        operator: "ops-eva".into(),
        reason: "never deployed".into(),
        expected: Some(SeenState::NeverRan),
    };
    let outcome = engine(&store).fix(fresh, &rolled).await.unwrap();
    assert_eq!(outcome.previous, None);
    assert_eq!(outcome.entry.state, AuditState::ManualMarkedAsRolledBack);
    let unknown = FixRequest {
        change_id: "nope".into(),
        ..rolled
    };
    assert!(matches!(
        engine(&store).fix(fresh, &unknown).await,
        Err(FixError::UnknownUnit(_))
    ));
}
