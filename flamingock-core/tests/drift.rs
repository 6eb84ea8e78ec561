//! Drift detection and repair against the in-memory store, with units built by `UnitBuilder`: an
//! applied unit whose checksum changed stops the run before anything runs (or, told to warn, is
//! reported and passed); `repair` accepts the current checksum, once; `run_always` units never
//! drift; a row without a checksum (imported history) is not comparable until repaired.

use std::sync::Arc;
use std::time::Duration;

use flamingock_core::engine::{
    DriftPolicy, RepairError, RepairRequest, SeenState, UncomparableUnit,
};
use flamingock_core::lock::LockOptions;
use flamingock_core::model::metadata_keys;
use flamingock_core::testing::{MemoryAuditStore, UnitBuilder};
use flamingock_core::{AuditState, AuditStore, ChangeUnit, Engine, Error, UnitOutcome};

/// A unit doing nothing, with this checksum (the id alone names the unit in the audit).
#[track_caller]
fn unit(id: &'static str, order: &'static str, checksum: &'static str) -> &'static ChangeUnit {
    UnitBuilder::new(id, order, "ana")
        .checksum(checksum)
        .build()
}

fn engine(store: &MemoryAuditStore) -> Engine {
    // A lock left behind would make the next engine wait: fail fast instead.
    Engine::new(Arc::new(store.clone())).with_lock_options(LockOptions {
        wait: Duration::from_millis(200),
        ..LockOptions::default()
    })
}

fn repair(change_id: &str) -> RepairRequest {
    RepairRequest {
        change_id: change_id.to_owned(),
        operator: "oncall".to_owned(),
        reason: "the column was renamed by hand before".to_owned(),
    }
}

#[tokio::test]
async fn a_changed_checksum_stops_the_run_before_anything_runs_naming_both_and_the_repair() {
    let store = MemoryAuditStore::new();
    engine(&store)
        .run([unit("d1-a", "1", "sum-one")])
        .await
        .expect("first run");
    let edited = unit("d1-a", "1", "sum-two");
    let pending = unit("d1-b", "2", "sum-b");

    let error = engine(&store).run([edited, pending]).await.unwrap_err();
    let Error::Drift { drifted } = &error else {
        panic!("{error}")
    };
    assert_eq!(drifted.len(), 1);
    assert_eq!(drifted[0].change_id, "d1-a");
    assert_eq!(drifted[0].recorded_checksum, "sum-one");
    assert_eq!(drifted[0].current_checksum, "sum-two");
    assert_eq!(drifted[0].state, AuditState::Applied);
    let message = error.to_string();
    let location = format!("{}:{}", edited.source.file, edited.source.line);
    for needed in [
        "\"d1-a\"",
        location.as_str(),
        "sum-one",
        "sum-two",
        "flamingock repair d1-a --reason \"...\"",
        "nothing ran",
    ] {
        assert!(message.contains(needed), "{needed} in: {message}");
    }
    assert!(
        store.states_of("d1-b").is_empty(),
        "the pending unit did not run"
    );
    assert_eq!(store.rows().len(), 1, "nothing was written");

    // Nothing pending: the lock-free start judges drift too.
    let error = engine(&store).run([edited]).await.unwrap_err();
    assert!(matches!(error, Error::Drift { .. }), "{error}");
    // The lease of the first refused run was released: a run that goes on gets the lock.
    let report = engine(&store)
        .with_drift_policy(DriftPolicy::Warn)
        .run([edited, pending])
        .await
        .expect("warn goes on");
    assert_eq!(report.applied(), ["d1-b"]);
    assert_eq!(report.drift.len(), 1);
    assert_eq!(report.drift[0].change_id, "d1-a");
    assert!(
        report.to_string().contains("drift (going on, as told)"),
        "{report}"
    );
    assert!(
        report
            .to_json()
            .contains("\"recorded_checksum\": \"sum-one\"")
    );
}

#[tokio::test]
async fn the_same_checksum_is_no_drift_and_a_plan_check_refuses_drift() {
    let store = MemoryAuditStore::new();
    let a = unit("d2-a", "1", "sum-one");
    engine(&store).run([a]).await.expect("first run");
    let report = engine(&store).run([a]).await.expect("second run");
    assert_eq!(report.count(UnitOutcome::AlreadyApplied), 1);
    assert!(report.drift.is_empty());

    let edited = unit("d2-a", "1", "sum-two");
    let engine = engine(&store);
    let planned = engine.plan([edited]).await.expect("plan");
    assert_eq!(engine.drift(&planned).drifted.len(), 1);
    let refused = engine.check_plan(&planned).unwrap_err();
    assert!(matches!(refused, Error::Drift { .. }), "{refused}");
    let warned = engine.with_drift_policy(DriftPolicy::Warn);
    warned.check_plan(&planned).expect("warn passes the plan");
}

#[tokio::test]
async fn repair_accepts_the_checksum_now_once_and_the_next_run_goes_on() {
    let store = MemoryAuditStore::new();
    engine(&store)
        .run([unit("d3-a", "1", "sum-one")])
        .await
        .expect("first run");
    let edited = unit("d3-a", "1", "sum-two");
    let pending = unit("d3-b", "2", "sum-b");

    let outcome = engine(&store)
        .repair([edited, pending], &repair("d3-a"))
        .await
        .expect("repair");
    assert_eq!(outcome.previous_checksum.as_deref(), Some("sum-one"));
    let rows = store.rows();
    let row = rows.last().expect("the repair row");
    assert_eq!(row.state, AuditState::ManualMarkedAsApplied);
    assert_eq!(row.checksum.as_deref(), Some("sum-two"));
    assert_eq!(row.author, "oncall");
    assert_eq!(row.unit_author(), "ana");
    assert!(row.is_manual());
    assert!(row.metadata_flag(metadata_keys::REPAIR));
    assert_eq!(
        row.metadata_str(metadata_keys::PREVIOUS_CHECKSUM),
        Some("sum-one")
    );
    assert_eq!(row.reason(), Some("the column was renamed by hand before"));

    let report = engine(&store)
        .run([edited, pending])
        .await
        .expect("the run goes on");
    assert_eq!(report.applied(), ["d3-b"]);
    assert!(report.drift.is_empty());

    let rows_before = store.rows().len();
    let again = engine(&store)
        .repair([edited], &repair("d3-a"))
        .await
        .unwrap_err();
    assert!(
        matches!(&again, RepairError::NothingToRepair { checksum, .. } if checksum == "sum-two"),
        "{again}"
    );
    assert!(again.to_string().contains("nothing to repair"), "{again}");
    assert_eq!(store.rows().len(), rows_before, "nothing was written");
}

#[tokio::test]
async fn repair_refuses_an_unknown_a_pending_a_blocked_and_a_run_always_unit() {
    let store = MemoryAuditStore::new();
    let a = unit("d4-a", "1", "sum-a");
    let never = unit("d4-never", "2", "sum-never");
    let always = UnitBuilder::new("d4-always", "3", "ana")
        .run_always()
        .checksum("sum-always")
        .build();
    engine(&store).run([a, always]).await.expect("first run");
    let rows = store.rows().len();

    let unknown = engine(&store)
        .repair([a], &repair("d4-nobody"))
        .await
        .unwrap_err();
    assert!(matches!(unknown, RepairError::UnknownUnit(_)), "{unknown}");
    let pending = engine(&store)
        .repair([a, never], &repair("d4-never"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            pending,
            RepairError::NotApplied {
                state: SeenState::NeverRan,
                ..
            }
        ),
        "{pending}"
    );
    let refused = engine(&store)
        .repair([always], &repair("d4-always"))
        .await
        .unwrap_err();
    assert!(matches!(refused, RepairError::RunsAlways(_)), "{refused}");
    let empty = engine(&store)
        .repair(
            [a],
            &RepairRequest {
                reason: " ".into(),
                ..repair("d4-a")
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(empty, RepairError::Missing(_)), "{empty}");

    // A unit whose newest row is FAILED is blocked, not applied: `fix` resolves it, not repair.
    let mut failed = store.rows()[0].clone();
    failed.state = AuditState::Failed;
    store.append(&failed, None).await.expect("append");
    let blocked = engine(&store)
        .repair([a], &repair("d4-a"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            blocked,
            RepairError::NotApplied {
                state: SeenState::State(AuditState::Failed),
                ..
            }
        ),
        "{blocked}"
    );
    assert_eq!(store.rows().len(), rows + 1, "only the test's own row");
}

#[tokio::test]
async fn run_always_units_never_drift() {
    let store = MemoryAuditStore::new();
    let first = UnitBuilder::new("d5-always", "1", "ana")
        .run_always()
        .checksum("sum-one")
        .build();
    engine(&store).run([first]).await.expect("first run");
    let changed = UnitBuilder::new("d5-always", "1", "ana")
        .run_always()
        .checksum("sum-two")
        .build();
    let report = engine(&store).run([changed]).await.expect("not drift");
    assert_eq!(report.applied(), ["d5-always"]);
    assert!(report.drift.is_empty());
}

#[tokio::test]
async fn a_row_without_a_checksum_is_not_comparable_until_repaired() {
    let store = MemoryAuditStore::new();
    let a = unit("d6-a", "1", "sum-one");
    engine(&store).run([a]).await.expect("first run");
    // As history imported from a tool whose checksums cannot be compared is recorded.
    let mut imported = store.rows()[0].clone();
    imported.checksum = None;
    imported.metadata = Some(serde_json::json!({ "checksum_comparable": false }));
    store.append(&imported, None).await.expect("append");

    let edited = unit("d6-a", "1", "sum-two");
    let engine_now = engine(&store);
    let planned = engine_now.plan([edited]).await.expect("plan");
    let check = engine_now.drift(&planned);
    assert!(check.drifted.is_empty(), "{check:?}");
    assert_eq!(
        check.not_comparable,
        [UncomparableUnit {
            change_id: "d6-a".into(),
            file: edited.source.file.into(),
            line: edited.source.line,
            state: AuditState::Applied,
            current_checksum: "sum-two".into(),
        }]
    );
    let report = engine(&store).run([edited]).await.expect("not drift");
    assert_eq!(report.count(UnitOutcome::AlreadyApplied), 1);

    let outcome = engine(&store)
        .repair([edited], &repair("d6-a"))
        .await
        .expect("repair makes it comparable");
    assert_eq!(outcome.previous_checksum, None);
    let planned = engine_now.plan([edited]).await.expect("plan");
    assert_eq!(engine_now.drift(&planned), Default::default());
    // Comparable now: another change drifts.
    let again = unit("d6-a", "1", "sum-three");
    let error = engine(&store).run([again]).await.unwrap_err();
    assert!(matches!(error, Error::Drift { .. }), "{error}");
}

#[tokio::test]
async fn a_non_transactional_unit_is_judged_by_its_applied_row() {
    let store = MemoryAuditStore::new();
    let a = UnitBuilder::new("d7-a", "1", "ana")
        .transactional(false)
        .checksum("sum-now")
        .build();
    engine(&store).run([a]).await.expect("first run");
    assert_eq!(
        store.states_of("d7-a"),
        [AuditState::Started, AuditState::Applied]
    );
    // An interrupted try with another checksum, then the APPLIED row of a later one: the
    // current state is the newest row, and only its checksum counts.
    let rows = store.rows();
    let mut started = rows[0].clone();
    started.checksum = Some("sum-older".into());
    let applied = rows[1].clone();
    store.append(&started, None).await.expect("append");
    store.append(&applied, None).await.expect("append");
    let report = engine(&store).run([a]).await.expect("no drift");
    assert_eq!(report.count(UnitOutcome::AlreadyApplied), 1);
}

#[test]
fn the_drift_policy_parses_from_its_environment_form() {
    assert_eq!(DriftPolicy::parse("warn"), Some(DriftPolicy::Warn));
    assert_eq!(DriftPolicy::parse(" STOP "), Some(DriftPolicy::Stop));
    assert_eq!(DriftPolicy::parse("ignore"), None);
    assert_eq!(DriftPolicy::default(), DriftPolicy::Stop);
    assert_eq!(DriftPolicy::Warn.to_string(), "warn");
}
