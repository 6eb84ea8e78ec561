//! Run listeners against the in-memory store: every event in order, the same for each listener
//! whatever the ones before it do (fail, panic), and the run's outcome never changed by them.

use std::sync::{Arc, Mutex};

use flamingock_core::inject::BoxError;
use flamingock_core::listener::{ListenerError, RunEvent, RunListener};
use flamingock_core::testing::{MemoryAuditStore, StepFuture, UnitBuilder, UnitScope};
use flamingock_core::{ChangeUnit, Engine, Error, UnitOutcome};

fn succeed<'s>(_: UnitScope<'s>) -> StepFuture<'s> {
    Box::pin(async { Ok(()) })
}

fn fail<'s>(_: UnitScope<'s>) -> StepFuture<'s> {
    Box::pin(async { Err::<(), BoxError>("target refused".into()) })
}

fn unit(id: &'static str, order: &'static str) -> &'static ChangeUnit {
    UnitBuilder::new(id, order, "test")
        .transactional(false)
        .execute(succeed)
        .build()
}

/// Keeps one line per event: its name, and the unit and outcome where it has them.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<String>>>);

impl Recorder {
    fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

fn line(event: &RunEvent) -> String {
    match event {
        RunEvent::RunStarted { units, pending, .. } => {
            format!("run_started units={units} pending={pending}")
        }
        RunEvent::UnitStarted {
            change_id, attempt, ..
        } => format!("unit_started {change_id} attempt={attempt}"),
        RunEvent::UnitFinished { unit, .. } => {
            format!("unit_finished {} {:?}", unit.change_id, unit.outcome)
        }
        RunEvent::RunFinished { report } => format!("run_finished units={}", report.units.len()),
        RunEvent::RunFailed { error, report, .. } => format!(
            "run_failed report={} {}",
            report.is_some(),
            error.lines().next().unwrap_or_default()
        ),
    }
}

impl RunListener for Recorder {
    fn on_event(&self, event: &RunEvent) -> Result<(), ListenerError> {
        self.0.lock().unwrap().push(line(event));
        Ok(())
    }
}

/// Fails on every event.
struct Failing;

impl RunListener for Failing {
    fn on_event(&self, _: &RunEvent) -> Result<(), ListenerError> {
        Err("the monitoring system is down".into())
    }
}

/// Panics on every event, and in its flush.
struct Panicking;

#[async_trait::async_trait]
impl RunListener for Panicking {
    fn on_event(&self, event: &RunEvent) -> Result<(), ListenerError> {
        panic!("listener bug on {}", event.name())
    }

    async fn flush(&self) {
        panic!("listener bug in flush")
    }
}

/// An engine with a failing and a panicking listener before and between two recorders.
fn engine(store: &MemoryAuditStore) -> (Engine, Recorder, Recorder) {
    let (first, second) = (Recorder::default(), Recorder::default());
    let engine = Engine::new(Arc::new(store.clone()))
        .with_listener(Arc::new(Failing))
        .with_listener(Arc::new(first.clone()))
        .with_listener(Arc::new(Panicking))
        .with_listener(Arc::new(second.clone()));
    (engine, first, second)
}

#[tokio::test]
async fn listeners_hear_every_event_in_order_whatever_the_others_do() {
    let store = MemoryAuditStore::new();
    let (engine, first, second) = engine(&store);
    let report = engine
        .run([unit("a", "1"), unit("b", "2")])
        .await
        .expect("failing and panicking listeners change nothing");
    assert_eq!(report.applied(), ["a", "b"]);
    let expected = [
        "run_started units=2 pending=2",
        "unit_started a attempt=1",
        "unit_finished a Applied",
        "unit_started b attempt=1",
        "unit_finished b Applied",
        "run_finished units=2",
    ];
    assert_eq!(first.lines(), expected);
    assert_eq!(second.lines(), expected);

    // A second run: the units are skipped, and said to be.
    let (engine, first, _) = self::engine(&store);
    engine.run([unit("a", "1"), unit("b", "2")]).await.unwrap();
    assert_eq!(
        first.lines(),
        [
            "run_started units=2 pending=0",
            "unit_finished a AlreadyApplied",
            "unit_finished b AlreadyApplied",
            "run_finished units=2",
        ]
    );
}

#[tokio::test]
async fn a_failed_run_is_told_with_its_error_and_report() {
    let store = MemoryAuditStore::new();
    let (engine, first, _) = engine(&store);
    let failing = UnitBuilder::new("c", "1", "test")
        .transactional(false)
        .execute(fail)
        .build();
    let error = engine
        .run([failing, unit("d", "2")])
        .await
        .expect_err("the unit fails");
    assert!(matches!(error, Error::UnitFailed { .. }), "{error}");
    let lines = first.lines();
    assert_eq!(
        lines[..4],
        [
            "run_started units=2 pending=2",
            "unit_started c attempt=1",
            "unit_finished c Failed",
            "unit_finished d NotReached",
        ],
        "{lines:#?}"
    );
    assert_eq!(lines.len(), 5, "{lines:#?}");
    assert!(
        lines[4].starts_with("run_failed report=true ") && lines[4].contains('c'),
        "{lines:#?}"
    );
    assert_eq!(
        error.report().and_then(|r| r.unit("d")).map(|u| u.outcome),
        Some(UnitOutcome::NotReached)
    );
}

#[test]
fn events_serialise_with_their_name() {
    let event = RunEvent::RunStarted {
        execution_id: "e".into(),
        runner_id: "r".into(),
        units: 3,
        pending: 1,
    };
    let json = serde_json::to_value(&event).unwrap();
    assert_eq!(json["event"], "run_started");
    assert_eq!(json["event"], event.name());
    assert_eq!(json["pending"], 1);
}
