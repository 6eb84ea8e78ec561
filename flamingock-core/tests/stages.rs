//! Stage order (`Selection::ordered_stages`, the builder's `.stages([..])`): stages run one after
//! the other in the order named, whatever the units' orders; a failure stops the stages after
//! it; a blocked stage stops itself and the stages after it, not the ones before; the report
//! groups the units by stage.

use std::sync::Arc;

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
    stage: &'static str,
    step: Step,
) -> &'static ChangeUnit {
    UnitBuilder::new(id, order, "test")
        .transactional(false)
        .stage(stage)
        .execute(step)
        .build()
}

fn engine(store: &MemoryAuditStore, stages: &[&str]) -> Engine {
    Engine::new(Arc::new(store.clone())).with_options(RunOptions {
        selection: Selection {
            stages: stages.iter().map(|s| (*s).to_owned()).collect(),
            ordered_stages: true,
            ..Selection::default()
        },
        ..RunOptions::default()
    })
}

fn outcomes(report: &flamingock_core::RunReport) -> Vec<(&str, UnitOutcome)> {
    report
        .units
        .iter()
        .map(|u| (u.change_id.as_str(), u.outcome))
        .collect()
}

#[tokio::test]
async fn stages_run_in_the_order_named_whatever_the_units_orders() {
    let store = MemoryAuditStore::new();
    let units = [
        unit("load-rates", "1", "data", succeed),
        unit("create-rates", "2", "schema", succeed),
        unit("load-fx", "3", "data", succeed),
        unit("cleanup", "4", "other", succeed),
    ];
    let report = engine(&store, &["schema", "data"])
        .run(units)
        .await
        .unwrap();
    assert_eq!(report.applied(), ["create-rates", "load-rates", "load-fx"]);
    let rows: Vec<String> = store.rows().iter().map(|r| r.change_id.clone()).collect();
    assert_eq!(rows.first().map(String::as_str), Some("create-rates"));
    let stages: Vec<(&str, usize)> = report
        .by_stage()
        .into_iter()
        .map(|(stage, units)| (stage, units.len()))
        .collect();
    assert_eq!(stages, [("schema", 1), ("data", 2)]);
    let text = report.to_string();
    assert!(text.contains("stage \"schema\": 1 applied"), "{text}");
    assert!(text.contains("stage \"data\": 2 applied"), "{text}");
}

#[tokio::test]
async fn a_failure_stops_the_stages_after_it() {
    let store = MemoryAuditStore::new();
    let units = [
        unit("load-rates", "1", "data", succeed),
        unit("create-rates", "2", "schema", fail),
    ];
    let error = engine(&store, &["schema", "data"])
        .run(units)
        .await
        .unwrap_err();
    assert!(matches!(error, Error::UnitFailed { .. }), "{error}");
    let report = error.report().unwrap();
    assert_eq!(
        outcomes(report),
        [
            ("create-rates", UnitOutcome::Failed),
            ("load-rates", UnitOutcome::NotReached)
        ]
    );
}

#[tokio::test]
async fn a_blocked_stage_stops_itself_and_later_stages_not_earlier_ones() {
    let store = MemoryAuditStore::new();
    // A first run leaves `load-rates` (data) FAILED: non-transactional, so it blocks after.
    let first = [unit("load-rates", "1", "data", fail)];
    engine(&store, &["data"]).run(first).await.unwrap_err();

    let units = [
        unit("load-rates", "1", "data", succeed),
        unit("create-rates", "2", "schema", succeed),
        unit("load-fx", "3", "data", succeed),
        unit("report", "4", "reports", succeed),
    ];
    let error = engine(&store, &["schema", "data", "reports"])
        .run(units)
        .await
        .unwrap_err();
    let Error::Blocked { blocked, report } = &error else {
        panic!("expected Blocked, got {error}");
    };
    assert_eq!(blocked.len(), 1);
    assert_eq!(blocked[0].change_id, "load-rates");
    assert_eq!(
        outcomes(report),
        [
            ("create-rates", UnitOutcome::Applied),
            ("load-rates", UnitOutcome::Blocked),
            ("load-fx", UnitOutcome::NotReached),
            ("report", UnitOutcome::NotReached),
        ],
        "the schema stage before the blocked one is brought up to date"
    );
}
