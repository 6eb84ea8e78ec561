//! The engine against the in-memory store, with units built by `UnitBuilder` (no macros in core).

use std::sync::Arc;

use flamingock_core::inject::BoxError;
use flamingock_core::testing::{
    MemoryAuditStore, MemoryTransaction, StepFuture, UnitBuilder, UnitScope,
};
use flamingock_core::{AuditState, ChangeUnit, Engine, Error, TxStrategy, UnitOutcome};

type Step = for<'s> fn(UnitScope<'s>) -> StepFuture<'s>;

fn unit(
    id: &'static str,
    order: &'static str,
    transactional: bool,
    execution: Step,
    rollback: Option<Step>,
) -> &'static ChangeUnit {
    let builder = UnitBuilder::new(id, order, "test")
        .transactional(transactional)
        .execute(execution);
    match rollback {
        Some(rollback) => builder.rollback(rollback),
        None => builder,
    }
    .build()
}

fn record_effect<'s>(mut scope: UnitScope<'s>) -> StepFuture<'s> {
    Box::pin(async move {
        let tx = scope.transaction::<MemoryTransaction>()?;
        tx.effects.push("created".into());
        Ok(())
    })
}

fn succeed<'s>(_: UnitScope<'s>) -> StepFuture<'s> {
    Box::pin(async { Ok(()) })
}

fn fail<'s>(_: UnitScope<'s>) -> StepFuture<'s> {
    Box::pin(async { Err::<(), BoxError>("target refused".into()) })
}

fn panic_inside<'s>(_: UnitScope<'s>) -> StepFuture<'s> {
    Box::pin(async { panic!("boom") })
}

fn engine(store: &MemoryAuditStore) -> Engine {
    Engine::new(Arc::new(store.clone()))
}

#[tokio::test]
async fn shared_units_apply_once_with_their_effect_in_the_applied_row() {
    let store = MemoryAuditStore::new();
    let units = [unit("a", "1", true, record_effect, None)];
    let report = engine(&store).run(units).await.unwrap();
    assert_eq!(report.applied(), ["a"]);
    let rows = store.rows();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].state, AuditState::Applied);
    assert_eq!(rows[0].tx_strategy, TxStrategy::Shared);
    assert_eq!(rows[0].metadata.as_ref().unwrap()["effects"][0], "created");

    let again = engine(&store).run(units).await.unwrap();
    assert_eq!(again.count(UnitOutcome::AlreadyApplied), 1);
    assert_eq!(store.rows().len(), 1);
}

#[tokio::test]
async fn a_failing_non_transactional_unit_is_rolled_back_and_the_run_stops() {
    let store = MemoryAuditStore::new();
    let units = [
        unit("first", "1", false, fail, Some(succeed)),
        unit("second", "2", true, succeed, None),
    ];
    let error = engine(&store).run(units).await.unwrap_err();
    let Error::UnitFailed {
        change_id, report, ..
    } = &error
    else {
        panic!("expected UnitFailed, got {error}");
    };
    assert_eq!(change_id, "first");
    assert_eq!(
        report.unit("first").unwrap().outcome,
        UnitOutcome::RolledBack
    );
    assert_eq!(
        report.unit("second").unwrap().outcome,
        UnitOutcome::NotReached
    );
    assert_eq!(
        store.states_of("first"),
        [
            AuditState::Started,
            AuditState::Failed,
            AuditState::RolledBack
        ]
    );
    assert!(store.states_of("second").is_empty());
}

static ROLLBACK_CALLED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn note_rollback<'s>(_: UnitScope<'s>) -> StepFuture<'s> {
    ROLLBACK_CALLED.store(true, std::sync::atomic::Ordering::SeqCst);
    Box::pin(async { Ok(()) })
}

/// Rollback code runs only once its intent (FAILED) is in the audit: when FAILED cannot be
/// recorded, the effect stays as the execution left it, STARTED stays the newest row, and the
/// next run blocks the unit for a person.
#[tokio::test]
async fn no_rollback_runs_when_failed_cannot_be_recorded() {
    let store = MemoryAuditStore::new();
    store.refuse_appends_of(AuditState::Failed);
    let units = [unit("publish", "1", false, fail, Some(note_rollback))];
    let error = engine(&store).run(units).await.unwrap_err();
    let Error::UnitFailed { report, .. } = &error else {
        panic!("expected UnitFailed, got {error}");
    };
    assert_eq!(report.unit("publish").unwrap().outcome, UnitOutcome::Failed);
    let message = error.to_string();
    assert!(message.contains("the rollback was not run"), "{message}");
    assert!(message.contains("flamingock fix publish"), "{message}");
    assert!(!ROLLBACK_CALLED.load(std::sync::atomic::Ordering::SeqCst));
    assert_eq!(store.states_of("publish"), [AuditState::Started]);

    let blocked = engine(&store).run(units).await.unwrap_err();
    assert!(matches!(blocked, Error::Blocked { .. }), "{blocked}");
    assert!(!ROLLBACK_CALLED.load(std::sync::atomic::Ordering::SeqCst));
}

#[tokio::test]
async fn a_rollback_that_fails_keeps_both_errors() {
    let store = MemoryAuditStore::new();
    let units = [unit("flag", "1", false, fail, Some(fail))];
    engine(&store).run(units).await.unwrap_err();
    let rows = store.rows();
    let last = rows.last().unwrap();
    assert_eq!(last.state, AuditState::RollbackFailed);
    let error = last.error.as_deref().unwrap();
    assert!(
        error.starts_with("target refused\nrollback failed: target refused"),
        "{error}"
    );
}

#[tokio::test]
async fn a_panic_is_recorded_as_a_failure() {
    let store = MemoryAuditStore::new();
    let units = [unit("p", "1", true, panic_inside, None)];
    engine(&store).run(units).await.unwrap_err();
    let rows = store.rows();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].state, AuditState::Failed);
    assert!(rows[0].error.as_deref().unwrap().contains("panicked: boom"));
}

#[tokio::test]
async fn a_non_transactional_unit_left_failed_blocks_its_stage() {
    let store = MemoryAuditStore::new();
    engine(&store)
        .run([unit("x", "1", false, fail, None)])
        .await
        .unwrap_err();
    let units = [
        unit("x", "1", false, succeed, None),
        unit("y", "2", true, succeed, None),
    ];
    let error = engine(&store).run(units).await.unwrap_err();
    let Error::Blocked { blocked, report } = &error else {
        panic!("expected Blocked, got {error}");
    };
    assert_eq!(blocked.len(), 1);
    assert_eq!(blocked[0].change_id, "x");
    assert_eq!(report.unit("y").unwrap().outcome, UnitOutcome::NotReached);
    let message = error.to_string();
    assert!(message.contains("flamingock fix x --applied"), "{message}");
    assert!(store.states_of("y").is_empty());
}

#[tokio::test]
async fn a_blocked_run_reports_units_already_applied_as_applied_not_as_not_reached() {
    let store = MemoryAuditStore::new();
    engine(&store)
        .run([unit("b1", "1", false, fail, None)])
        .await
        .unwrap_err();
    engine(&store)
        .run([unit("b2", "2", true, succeed, None)])
        .await
        .expect("b2 applies on its own");
    let units = [
        unit("b1", "1", false, succeed, None),
        unit("b2", "2", true, succeed, None),
        unit("b3", "3", true, succeed, None),
    ];
    let error = engine(&store).run(units).await.unwrap_err();
    let report = error.report().expect("a report");
    assert_eq!(report.unit("b1").unwrap().outcome, UnitOutcome::Blocked);
    assert_eq!(
        report.unit("b2").unwrap().outcome,
        UnitOutcome::AlreadyApplied
    );
    assert_eq!(report.unit("b3").unwrap().outcome, UnitOutcome::NotReached);
}

#[tokio::test]
async fn what_a_built_unit_declares_is_checked_before_anything_runs() {
    struct Client;
    let store = MemoryAuditStore::new();
    let units = [
        UnitBuilder::new("needs-tx", "1", "test")
            .transactional(false)
            .takes_transaction::<MemoryTransaction>()
            .execute(record_effect)
            .build(),
        UnitBuilder::new("needs-client", "2", "test")
            .takes_dependency::<Client>()
            .execute_sync(|mut scope| {
                scope.dependency::<Client>()?;
                Ok(())
            })
            .build(),
    ];
    let error = engine(&store).run(units).await.unwrap_err();
    let Error::MissingDependencies(missing) = &error else {
        panic!("expected MissingDependencies, got {error}");
    };
    let ids: Vec<_> = missing.iter().map(|m| m.change_id.as_str()).collect();
    assert_eq!(ids, ["needs-tx", "needs-client"]);
    assert!(store.rows().is_empty());

    let mut dependencies = flamingock_core::Dependencies::new();
    dependencies.insert(Client);
    let report = engine(&store)
        .with_dependencies(dependencies)
        .run([units[1]])
        .await
        .unwrap();
    assert_eq!(report.applied(), ["needs-client"]);
}

/// The reason the check before the run gives for the one parameter of a unit that takes `T`.
async fn refusal(unit: &'static ChangeUnit, dependencies: flamingock_core::Dependencies) -> String {
    let store = MemoryAuditStore::new();
    let error = engine(&store)
        .with_dependencies(dependencies)
        .run([unit])
        .await
        .unwrap_err();
    let Error::MissingDependencies(missing) = &error else {
        panic!("expected MissingDependencies, got {error}");
    };
    assert!(store.rows().is_empty(), "nothing runs before the check");
    missing[0].reason.clone()
}

#[tokio::test]
async fn a_missing_dependency_is_named_as_written_and_the_likely_one_suggested() {
    struct PgPool;
    struct SqlitePool;
    let mut dependencies = flamingock_core::Dependencies::new();
    dependencies.insert_labeled(
        PgPool,
        flamingock_core::TypeLabel::of::<PgPool>().shown_as("PgPool"),
    );
    dependencies.insert(String::from("config"));
    let unit = UnitBuilder::new("wants-sqlite", "1", "test")
        .transactional(false)
        .takes_dependency::<SqlitePool>()
        .execute(succeed)
        .build();
    let reason = refusal(unit, dependencies).await;
    assert_eq!(
        reason,
        "no `SqlitePool` is registered for this unit: target \"default\" offers nothing, the \
         builder offers `&PgPool`, `&String`; did you mean `&PgPool`? take one of those, or \
         register one with `Flamingock::builder().dependency(value)`"
    );
}

#[tokio::test]
async fn one_type_from_two_crate_versions_is_named_as_such() {
    // One crate cannot hold two types of one `type_name`; a label that gives the offered type the
    // asked one's name is what two versions of one crate look like (`tests/tests/other_sqlx.rs`
    // has the real thing).
    struct Offered;
    struct Asked;
    let mut dependencies = flamingock_core::Dependencies::new();
    dependencies.insert_labeled(
        Offered,
        flamingock_core::TypeLabel {
            type_name: std::any::type_name::<Asked>(),
            ..flamingock_core::TypeLabel::of::<Offered>()
        }
        .shown_as("Callback")
        .from_crate("callbacks 2.1"),
    );
    let unit = UnitBuilder::new("wants-callback", "1", "test")
        .transactional(false)
        .takes_dependency::<Asked>()
        .execute(succeed)
        .build();
    let reason = refusal(unit, dependencies).await;
    for expected in [
        "a dependency of that name is registered, but it is another type",
        "two versions of the crate that defines `Callback` are in your dependency tree",
        "the offered `Callback` is from callbacks 2.1, the parameter's from another version",
    ] {
        assert!(reason.contains(expected), "no {expected:?} in: {reason}");
    }
}

#[tokio::test]
async fn a_transaction_of_another_type_is_refused_naming_the_one_to_declare() {
    let unit = UnitBuilder::new("wants-string", "1", "test")
        .takes_transaction::<String>()
        .execute(succeed)
        .build();
    let reason = refusal(unit, flamingock_core::Dependencies::new()).await;
    assert_eq!(
        reason,
        "target \"default\" opens a `MemoryTransaction`, not a `String`; declare the parameter \
         as `&mut MemoryTransaction`"
    );
}
