//! System version ranges and undo against the in-memory store: an out-of-range unit is neither
//! applied nor blocked by runs, but undo sees its real state (a blocked one refuses the undo);
//! `ToVersion` refuses over a blocked unit after the first one it would undo, versioned or not;
//! pending checks and validate-only runs with a unit that runs always.

use std::sync::Arc;

use flamingock_core::engine::{PendingStatus, UndoError, UndoScope};
use flamingock_core::inject::BoxError;
use flamingock_core::plan::Selection;
use flamingock_core::testing::{MemoryAuditStore, StepFuture, UnitBuilder, UnitScope};
use flamingock_core::{ChangeUnit, Engine, Error, RunOptions, UnitOutcome};

fn succeed<'s>(_: UnitScope<'s>) -> StepFuture<'s> {
    Box::pin(async { Ok(()) })
}

fn fail<'s>(_: UnitScope<'s>) -> StepFuture<'s> {
    Box::pin(async { Err::<(), BoxError>("refused".into()) })
}

type Step = for<'s> fn(UnitScope<'s>) -> StepFuture<'s>;

fn unit(
    id: &'static str,
    order: &'static str,
    version: Option<&'static str>,
    step: Step,
) -> &'static ChangeUnit {
    // A failing unit has no rollback: non-transactional, it stays FAILED and blocks.
    let builder = UnitBuilder::new(id, order, "test")
        .transactional(false)
        .execute(step);
    let builder = if std::ptr::fn_addr_eq(step, fail as Step) {
        builder
    } else {
        builder.rollback(succeed)
    };
    match version {
        Some(version) => builder.system_version(version),
        None => builder,
    }
    .build()
}

fn engine(store: &MemoryAuditStore, range: Option<&str>, validate_only: bool) -> Engine {
    Engine::new(Arc::new(store.clone())).with_options(RunOptions {
        selection: Selection {
            system_versions: range.map(|r| semver::VersionReq::parse(r).unwrap()),
            ..Selection::default()
        },
        validate_only,
        ..RunOptions::default()
    })
}

#[tokio::test]
async fn an_out_of_range_blocked_unit_is_not_blocking_runs_but_still_refuses_undo() {
    let store = MemoryAuditStore::new();
    // 1.4's unit failed (non-transactional: blocked from now on).
    let failing = [
        unit("v12", "1", Some("1.2.0"), succeed),
        unit("v14", "2", Some("1.4.0"), fail),
    ];
    engine(&store, None, false).run(failing).await.unwrap_err();
    let units = [
        unit("v12", "1", Some("1.2.0"), succeed),
        unit("v14", "2", Some("1.4.0"), succeed),
    ];

    // A 1.2 run: the blocked 1.4 unit is out of range, not blocking.
    let report = engine(&store, Some("<1.3.0"), false)
        .run(units)
        .await
        .unwrap();
    let outcomes: Vec<UnitOutcome> = report.units.iter().map(|u| u.outcome).collect();
    assert_eq!(
        outcomes,
        [UnitOutcome::AlreadyApplied, UnitOutcome::OutOfRange]
    );

    // Undo with the same range still sees the block.
    let rows = store.rows().len();
    let refused = engine(&store, Some("<1.3.0"), false)
        .undo(units, &UndoScope::Last(1))
        .await
        .unwrap_err();
    assert!(matches!(refused, UndoError::Refused(_)), "{refused}");
    assert_eq!(
        store.rows().len(),
        rows,
        "nothing written by the refused undo"
    );
}

#[tokio::test]
async fn undo_to_a_version_refuses_over_a_blocked_unit_after_the_first_it_would_undo() {
    let store = MemoryAuditStore::new();
    let first = [
        unit("v12", "1", Some("1.2.0"), succeed),
        unit("v14", "2", Some("1.4.0"), succeed),
        unit("plain", "3", None, fail),
    ];
    engine(&store, None, false).run(first).await.unwrap_err();
    let units = [
        unit("v12", "1", Some("1.2.0"), succeed),
        unit("v14", "2", Some("1.4.0"), succeed),
        unit("plain", "3", None, succeed),
    ];
    let scope = UndoScope::ToVersion(semver::Version::new(1, 3, 0));
    let refused = engine(&store, None, false)
        .undo(units, &scope)
        .await
        .unwrap_err();
    let UndoError::Refused(refusals) = &refused else {
        panic!("expected a refusal, got {refused}");
    };
    assert!(refused.to_string().contains("plain"), "{refused}");
    assert_eq!(refusals.len(), 1);
    // Below every version: nothing to undo, nothing refused.
    let none = engine(&store, None, false)
        .undo_plan(units, &UndoScope::ToVersion(semver::Version::new(9, 0, 0)))
        .await
        .unwrap();
    assert!(none.is_empty());
}

#[tokio::test]
async fn a_unit_that_runs_always_is_pending_only_until_its_first_run() {
    let store = MemoryAuditStore::new();
    let always = || {
        UnitBuilder::new("refresh-view", "1", "test")
            .transactional(false)
            .run_always()
            .execute(succeed)
            .build()
    };
    let check = engine(&store, None, false)
        .pending([always()])
        .await
        .unwrap();
    assert_eq!(check.status, PendingStatus::Pending);
    engine(&store, None, false).run([always()]).await.unwrap();
    let check = engine(&store, None, false)
        .pending([always()])
        .await
        .unwrap();
    assert_eq!(check.status, PendingStatus::UpToDate, "{check}");

    // A validate-only run succeeds and runs nothing, not even a unit that runs always.
    let rows = store.rows().len();
    let report = engine(&store, None, true).run([always()]).await.unwrap();
    assert_eq!(report.units[0].outcome, UnitOutcome::AlreadyApplied);
    assert_eq!(store.rows().len(), rows, "a validate-only run wrote a row");
}

#[tokio::test]
async fn a_validate_only_run_with_pending_units_writes_nothing() {
    let store = MemoryAuditStore::new();
    let error = engine(&store, None, true)
        .run([unit("v12", "1", Some("1.2.0"), succeed)])
        .await
        .unwrap_err();
    assert!(matches!(error, Error::PendingUnits { .. }), "{error}");
    assert!(store.rows().is_empty());
}
