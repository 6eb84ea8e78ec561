//! The execution engine: plans a run from the audit, checks it, takes the lock when work is due,
//! and applies each unit with its strategy (docs/architecture.md#strategies), recording every
//! step in the audit store.
//!
//! The rooms below: `planned` (a unit's decision and route), `checks` (route and dependency
//! checks), `attempt` (one try of one unit and its audit rows), `transaction` (the unit's
//! transaction, shared or separate), `apply` and `separate` (the write sequences), `undo`,
//! `manual` (fix), `drift` (applied units whose checksum changed) and `repair`, `lease` (the lock
//! during a run), `admin` and `inspect` (operators' views), `warm` (planning from the summary
//! the store keeps beside the audit, and keeping it).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tracing::Instrument;

use crate::error::{BlockedUnit, Error};
use crate::inject::Dependencies;
use crate::listener::{Listeners, RunEvent, RunListener};
use crate::lock::LockOptions;
use crate::model::{ChangeUnit, UnitState};
use crate::plan::{Decision, Selection, decide, order_units};
use crate::report::{RunReport, UnitOutcome, UnitReport};
use crate::store::{AuditStore, StoreError};
use crate::target::TargetSystem;

mod admin;
mod apply;
mod attempt;
mod baseline;
mod checks;
mod drift;
mod failure;
mod heartbeat;
mod import;
mod inspect;
mod lease;
mod manual;
mod pending;
mod planned;
mod repair;
mod separate;
mod transaction;
mod undo;
mod unwind;
mod warm;

pub use admin::LockRelease;
pub use baseline::{BaselineError, BaselineRequest};
pub use drift::{DriftCheck, DriftPolicy, DriftedUnit, ON_DRIFT_ENV, UncomparableUnit};
pub use failure::UnitFailure;
pub use import::{HistoryImport, ImportReport};
pub use manual::{FixError, FixOutcome, FixRequest, Resolution, SeenState};
pub use pending::{PendingCheck, PendingStatus};
pub use planned::{PlannedUnit, Route, SeparateTarget};
pub use repair::{RepairError, RepairOutcome, RepairRequest};
pub use undo::{UndoError, UndoLine, UndoOutcome, UndoRefusal, UndoReport, UndoScope};

use attempt::Attempt;
use lease::{Acquired, Lease};
use planned::blocked_units;
use warm::Source;

pub use crate::model::TxStrategy;

/// Who is running: recorded in every audit entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunOptions {
    /// Which registered units this run considers.
    pub selection: Selection,
    /// The application's crate name (`run!()` fills it in at compile time).
    pub app_name: Option<String>,
    /// The application's crate version.
    pub app_version: Option<String>,
    /// Apply nothing: a run that finds units pending (or blocked) fails with
    /// [`Error::PendingUnits`] before it takes the lock; one that finds everything applied
    /// succeeds (for services that must never migrate themselves).
    pub validate_only: bool,
}

/// Applies change units to their target systems and records every step in an audit store.
pub struct Engine {
    store: Arc<dyn AuditStore>,
    store_dependencies: Dependencies,
    /// The store's database as a `TX_SEPARATE` target, where `TX_SHARED` is not atomic (MySQL).
    separate_store_target: Option<SeparateTarget>,
    targets: HashMap<String, Arc<dyn TargetSystem>>,
    dependencies: Dependencies,
    options: RunOptions,
    lock_options: LockOptions,
    /// What a run does when an applied unit changed since it was applied.
    drift_policy: DriftPolicy,
    /// Set once the store's and targets' tables are known to exist.
    initialized: tokio::sync::OnceCell<()>,
    runner_id: String,
    hostname: String,
    /// Told of the runs' events (run started, units started and finished, run ended).
    listeners: Listeners,
    /// Another tool's history, imported by every run under the lock (see `engine::import`).
    import: Option<HistoryImport>,
}

impl Engine {
    /// An engine recording in `store`, with no extra target systems or dependencies.
    pub fn new(store: Arc<dyn AuditStore>) -> Self {
        let store_dependencies = store.dependencies();
        let separate_store_target = store.separate_target().and_then(SeparateTarget::new);
        Self {
            store,
            store_dependencies,
            separate_store_target,
            targets: HashMap::new(),
            dependencies: Dependencies::new(),
            options: RunOptions::default(),
            lock_options: LockOptions::default(),
            drift_policy: DriftPolicy::default(),
            initialized: tokio::sync::OnceCell::new(),
            runner_id: uuid::Uuid::new_v4().to_string(),
            hostname: gethostname::gethostname().to_string_lossy().into_owned(),
            listeners: Listeners::default(),
            import: None,
        }
    }

    /// Adds a named target system.
    pub fn with_target(mut self, target: Arc<dyn TargetSystem>) -> Self {
        self.targets.insert(target.name().to_owned(), target);
        self
    }

    /// Sets the dependencies every unit may take as `&T`.
    pub fn with_dependencies(mut self, dependencies: Dependencies) -> Self {
        self.dependencies = dependencies;
        self
    }

    /// Sets the selection and the application's name and version.
    pub fn with_options(mut self, options: RunOptions) -> Self {
        self.options = options;
        self
    }

    /// Sets how the distributed lock is used (key, lease, wait).
    pub fn with_lock_options(mut self, options: LockOptions) -> Self {
        self.lock_options = options;
        self
    }

    /// Adds a listener told of every run's events, after the ones added before it (see
    /// [`crate::listener`]).
    pub fn with_listener(mut self, listener: Arc<dyn RunListener>) -> Self {
        self.listeners.push(listener);
        self
    }

    /// The options runs use (selection, application, validate-only).
    pub fn options(&self) -> &RunOptions {
        &self.options
    }

    /// This runner's id (one per engine), recorded in every audit entry it writes.
    pub fn runner_id(&self) -> &str {
        &self.runner_id
    }

    /// The audit store.
    pub fn store(&self) -> &Arc<dyn AuditStore> {
        &self.store
    }

    /// The dependencies every unit may take as `&T` (those of the builder).
    pub fn dependencies(&self) -> &Dependencies {
        &self.dependencies
    }

    /// What the unit's target offers as `&T` (for its own database, the audit store's).
    pub fn dependencies_of<'a>(&'a self, unit: &'a PlannedUnit) -> &'a Dependencies {
        self.target_dependencies(unit)
    }

    /// Plans a run without writing anything: selection, validation, targets and decisions.
    pub async fn plan(
        &self,
        units: impl IntoIterator<Item = &'static ChangeUnit>,
    ) -> Result<Vec<PlannedUnit>, Error> {
        let mut planned = self.routed(units)?;
        let states = self.read_states().await?;
        self.decide_from(&mut planned, states);
        Ok(planned)
    }

    /// The selected units in run order, checked and routed, not yet decided.
    fn routed(
        &self,
        units: impl IntoIterator<Item = &'static ChangeUnit>,
    ) -> Result<Vec<PlannedUnit>, Error> {
        let ordered = order_units(units, &self.options.selection).map_err(Error::Validation)?;
        crate::plan::check_limits(&ordered, &self.store.limits()).map_err(Error::Validation)?;
        let mut planned = Vec::with_capacity(ordered.len());
        for unit in ordered {
            planned.push(PlannedUnit::new(unit, self.resolve_route(unit)?));
        }
        Ok(planned)
    }

    /// Every unit's state, in one round trip.
    async fn read_states(&self) -> Result<HashMap<String, UnitState>, Error> {
        // The state read comes first: when every unit is applied it is the only round trip a
        // start-up makes. Tables are created (and checked) only when it fails or work is due.
        Ok(match self.store.unit_states().await {
            Ok(states) => states,
            // A store opened read-only only checks its tables (and reports them missing before
            // any target's marker table is made).
            Err(_) => match self.initialize().await {
                // A store opened only to read, that nothing ran against yet: every unit is new.
                Err(Error::Store(StoreError::NoAuditTable { .. })) => HashMap::new(),
                Err(error) => return Err(error),
                Ok(()) => self.store.unit_states().await?,
            },
        })
    }

    /// Decides each unit of `planned` from its state among `states`.
    fn decide_from(&self, planned: &mut [PlannedUnit], mut states: HashMap<String, UnitState>) {
        for unit in planned {
            unit.current = states.remove(unit.unit.id);
            unit.decision = decide(
                unit.strategy(),
                unit.unit.recovery,
                unit.unit.run_always,
                unit.current.as_ref().map(|s| s.state),
            );
            if !self.options.selection.in_version_range(unit.unit) {
                unit.out_of_range = true;
                unit.decision = Decision::Skip;
            }
        }
    }

    /// Tells the store the plan of run `execution_id` ([`AuditStore::record_plan`]); a unit
    /// set that does not validate is not sent (the run's plan reports it), and a failure to
    /// record is logged, never the run's.
    async fn record_plan(&self, units: &[&'static ChangeUnit], execution_id: &str) {
        if self.options.validate_only || !self.store.keeps_plans() {
            // A validation run writes nothing, and runs nothing the plan could announce; a store
            // that keeps no plans would only drop it.
            return;
        }
        let Ok(ordered) = order_units(units.iter().copied(), &self.options.selection) else {
            return;
        };
        let mut lines = Vec::with_capacity(ordered.len());
        for unit in ordered {
            let Ok(route) = self.resolve_route(unit) else {
                return;
            };
            let out_of_range = !self.options.selection.in_version_range(unit);
            lines.push(crate::run_plan::PlanUnit::of(
                unit,
                route.strategy(),
                out_of_range,
            ));
        }
        let plan = crate::run_plan::RunPlan {
            execution_id: execution_id.to_owned(),
            runner_id: self.runner_id.clone(),
            hostname: self.hostname.clone(),
            app_name: self.options.app_name.clone(),
            app_version: self.options.app_version.clone(),
            units: lines,
        };
        match tokio::time::timeout(PLAN_UPLOAD_PATIENCE, self.store.record_plan(&plan)).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(
                error = %crate::model::error_chain(&error),
                "the run's plan could not be recorded in the audit store; the run goes on (the plan only informs)"
            ),
            Err(_) => tracing::warn!(
                patience = ?PLAN_UPLOAD_PATIENCE,
                "the run's plan was not recorded in time; the run goes on without waiting (the plan only informs)"
            ),
        }
    }

    /// Before work under the lock: the audit, lock and marker tables (a plan creates none).
    async fn prepare_for_work(&self, planned: &[PlannedUnit]) -> Result<(), Error> {
        if planned.iter().any(|p| p.decision != Decision::Skip) {
            match self.initialize().await {
                Err(Error::Store(StoreError::NoAuditTable { .. })) | Ok(()) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }

    /// Creates and checks the audit, lock and marker tables, once per engine.
    async fn initialize(&self) -> Result<(), Error> {
        self.initialized
            .get_or_try_init(|| async {
                self.store.initialize().await?;
                let targets = self.targets.values().filter_map(|t| t.transactional());
                let own = self.separate_store_target.iter().map(|t| t.transactional());
                for transactional in targets.chain(own) {
                    transactional.initialize().await?;
                }
                Ok::<(), Error>(())
            })
            .await
            .map(|_| ())
    }

    /// Brings every selected unit up to date. Returns the report, or an error that carries it.
    pub async fn run(
        &self,
        units: impl IntoIterator<Item = &'static ChangeUnit>,
    ) -> Result<RunReport, Error> {
        let started = Instant::now();
        let execution_id = uuid::Uuid::now_v7().to_string();
        let span =
            tracing::info_span!("flamingock.run", %execution_id, runner_id = %self.runner_id);
        let result = async {
            let units: Vec<&'static ChangeUnit> = units.into_iter().collect();
            // Sent beside the first state read, so a warm start still waits for one round trip.
            let (_, planned) = tokio::join!(
                self.record_plan(&units, &execution_id),
                self.plan_summary_first(&units)
            );
            let (mut planned, source) = planned?;
            // Whether the plan the run ends with came from the summary (a waiter's replan may).
            let summarized = AtomicBool::new(source == Source::Summary);
            self.check_dependencies(&planned)?;
            if self.options.validate_only {
                // Nothing is run, taken or written: a unit pending or blocked fails the run, a
                // drifted one too (under the default policy), and an up-to-date plan is the
                // report (units that run always are not run either).
                let check = PendingCheck::of(&planned);
                if !check.is_up_to_date() {
                    return Err(Error::PendingUnits {
                        check: Box::new(check),
                    });
                }
                let mut report = RunReport {
                    execution_id: execution_id.clone(),
                    runner_id: self.runner_id.clone(),
                    audit_store: self.store.describe(),
                    duration_ms: 0,
                    units: Vec::with_capacity(planned.len()),
                    drift: self.judge_drift(&planned)?,
                };
                for unit in &planned {
                    let outcome = if unit.out_of_range {
                        UnitOutcome::OutOfRange
                    } else {
                        UnitOutcome::AlreadyApplied
                    };
                    self.finish(&mut report, &execution_id, unit.report_line(outcome));
                }
                report.duration_ms = started.elapsed().as_millis() as u64;
                return Ok(report);
            }
            self.prepare_for_work(&planned).await?;
            let mut lease = None;
            // A unit that looks blocked (STARTED, FAILED) may be one another instance is applying
            // right now: only a plan made under the lock can tell a crash's leftovers from work
            // in progress. Units all applied need no lock.
            if planned.iter().any(|p| p.decision != Decision::Skip) {
                let replan = || async {
                    let (planned, source) = self.plan_summary_first(&units).await?;
                    summarized.store(source == Source::Summary, Ordering::Relaxed);
                    Ok(Some(planned))
                };
                match Lease::acquire(
                    &self.store,
                    &self.lock_options,
                    &self.runner_id,
                    &self.hostname,
                    replan,
                )
                .await?
                {
                    Acquired::Lease(held) => {
                        // Another tool's history first, then the plan that sees it. A failed
                        // import gives the lock back, unless its write's outcome is unknown:
                        // then the lease runs out, as after a unit in doubt (DESIGN 9).
                        if let Err(error) = self.import_before_plan(&units, Some(&held)).await {
                            match &error {
                                Error::Store(StoreError::OutcomeUnknown { .. }) => {
                                    held.leave_to_expire("(history import)").await
                                }
                                _ => held.release().await,
                            }
                            return Err(error);
                        }
                        lease = Some(held);
                        // Another instance may have done the work while this one waited.
                        planned = self.plan_summary_first(&units).await?.0;
                        self.check_dependencies(&planned)?;
                    }
                    Acquired::NotNeeded(fresh) => planned = fresh,
                    Acquired::NoLock => {
                        if self.import_before_plan(&units, None).await? {
                            planned = self.plan(units.iter().copied()).await?;
                            self.check_dependencies(&planned)?;
                        }
                    }
                }
            }
            // Drift is judged on the plan the run acts on (made under the lock when one is held).
            let drifted = match self.judge_drift(&planned) {
                Ok(drifted) => drifted,
                Err(error) => {
                    if let Some(lease) = lease {
                        lease.release().await;
                    }
                    return Err(error);
                }
            };
            let pending = planned.iter().filter(|p| p.is_pending()).count();
            tracing::info!(units = planned.len(), pending, store = %self.store.describe(), "planned");
            self.listeners.emit(|| RunEvent::RunStarted {
                execution_id: execution_id.clone(),
                runner_id: self.runner_id.clone(),
                units: planned.len(),
                pending,
            });
            let mut report = RunReport {
                execution_id: execution_id.clone(),
                runner_id: self.runner_id.clone(),
                audit_store: self.store.describe(),
                duration_ms: 0,
                units: Vec::with_capacity(planned.len()),
                drift: drifted,
            };
            let result = self
                .execute(&planned, &execution_id, lease.as_ref(), &mut report)
                .await;
            match (lease, &result) {
                (Some(lease), Err(Stop::InDoubt { change_id, .. })) => {
                    lease.leave_to_expire(change_id).await
                }
                (Some(lease), Ok(())) => {
                    if !lease.is_lost() {
                        self.keep_summary(&planned, &lease.fence).await;
                    }
                    lease.release().await
                }
                (Some(lease), Err(_)) => lease.release().await,
                (None, Ok(())) if !summarized.load(Ordering::Relaxed) => {
                    self.refresh_summary(&planned).await
                }
                (None, _) => {}
            }
            report.duration_ms = started.elapsed().as_millis() as u64;
            match result {
                Ok(()) => Ok(report),
                Err(Stop::Blocked(blocked)) => Err(Error::Blocked {
                    blocked,
                    report: Box::new(report),
                }),
                Err(Stop::Failed { change_id, failure }) => Err(Error::UnitFailed {
                    change_id,
                    failure: Box::new(failure),
                    report: Box::new(report),
                }),
                Err(Stop::InDoubt { change_id, failure }) => Err(Error::InDoubt {
                    change_id,
                    failure: Box::new(failure),
                    report: Box::new(report),
                }),
                Err(Stop::LockLost { change_id }) => Err(Error::LockLost {
                    change_id,
                    report: Box::new(report),
                }),
            }
        }
        .instrument(span)
        .await;
        self.listeners.emit(|| match &result {
            Ok(report) => RunEvent::RunFinished {
                report: report.clone(),
            },
            Err(error) => RunEvent::RunFailed {
                execution_id: execution_id.clone(),
                error: crate::model::error_chain(error),
                report: error.report().cloned(),
            },
        });
        self.listeners.flush().await;
        result
    }

    /// Adds `line` to the report and tells the listeners the unit is done with.
    fn finish(&self, report: &mut RunReport, execution_id: &str, line: UnitReport) {
        self.listeners.emit(|| RunEvent::UnitFinished {
            execution_id: execution_id.to_owned(),
            unit: line.clone(),
        });
        report.units.push(line);
    }

    async fn execute(
        &self,
        planned: &[PlannedUnit],
        execution_id: &str,
        lease: Option<&Lease>,
        report: &mut RunReport,
    ) -> Result<(), Stop> {
        let blocked_stages: HashSet<&str> = planned
            .iter()
            .filter(|p| p.decision == Decision::Block)
            .map(|p| p.unit.stage_name())
            .collect();
        let mut stop: Option<Stop> = None;
        for (index, unit) in planned.iter().enumerate() {
            if stop.is_some() {
                self.finish(report, execution_id, unit.report_line(not_reached(unit)));
                continue;
            }
            if blocked_stages.contains(unit.unit.stage_name()) {
                // This is the blocked stage's first unit: nothing of it, nor after it, runs.
                for rest in &planned[index..] {
                    let mut line = rest.report_line(not_reached(rest));
                    if rest.decision == Decision::Block {
                        line.outcome = UnitOutcome::Blocked;
                        line.error = rest.current.as_ref().and_then(|s| s.error.clone());
                    }
                    self.finish(report, execution_id, line);
                }
                return Err(Stop::Blocked(blocked_units(&planned[index..])));
            }
            let line = match unit.decision {
                Decision::Skip if unit.out_of_range => unit.report_line(UnitOutcome::OutOfRange),
                Decision::Skip => unit.report_line(UnitOutcome::AlreadyApplied),
                Decision::Apply | Decision::ConsultMarker | Decision::Block => {
                    if !may_start_unit(lease).await {
                        stop = Some(Stop::LockLost {
                            change_id: unit.unit.id.to_owned(),
                        });
                        self.finish(
                            report,
                            execution_id,
                            unit.report_line(UnitOutcome::NotReached),
                        );
                        continue;
                    }
                    let (line, failure) = self.apply(unit, execution_id, lease).await;
                    // A unit in doubt is named as such even when the lease was lost too: the
                    // person reading the error must learn that its outcome is unknown.
                    if line.outcome == UnitOutcome::InDoubt {
                        stop = Some(Stop::InDoubt {
                            change_id: unit.unit.id.to_owned(),
                            failure: failure.unwrap_or_else(|| {
                                UnitFailure::found("the outcome of a write is unknown")
                            }),
                        });
                    } else if lease.is_some_and(Lease::is_lost) {
                        stop = Some(Stop::LockLost {
                            change_id: unit.unit.id.to_owned(),
                        });
                    } else if !matches!(
                        line.outcome,
                        UnitOutcome::Applied | UnitOutcome::RecoveredApplied
                    ) {
                        stop = Some(Stop::Failed {
                            change_id: unit.unit.id.to_owned(),
                            failure: failure.unwrap_or_else(|| {
                                UnitFailure::found(format!("ended {:?}", line.outcome))
                            }),
                        });
                    }
                    line
                }
            };
            self.finish(report, execution_id, line);
        }
        stop.map_or(Ok(()), Err)
    }

    /// Applies one unit: its report line, and the failure when it did not end applied.
    async fn apply(
        &self,
        unit: &PlannedUnit,
        execution_id: &str,
        lease: Option<&Lease>,
    ) -> (UnitReport, Option<UnitFailure>) {
        let tries = unit.current.as_ref().map_or(0, |s| s.tries);
        let number = u32::try_from(tries).unwrap_or(u32::MAX - 1) + 1;
        let attempt = Attempt::new(self, unit, execution_id, number, lease);
        let span = tracing::info_span!(
            "flamingock.unit",
            change_id = unit.unit.id,
            strategy = unit.strategy().as_str(),
            attempt = number
        );
        self.listeners.emit(|| RunEvent::UnitStarted {
            execution_id: execution_id.to_owned(),
            change_id: unit.unit.id.to_owned(),
            order: unit.unit.order.to_owned(),
            target_system: unit.unit.target_name().to_owned(),
            tx_strategy: unit.strategy(),
            attempt: number,
        });
        let started = Instant::now();
        let tried = apply::apply(&attempt).instrument(span).await;
        let mut line = unit.report_line(tried.outcome);
        line.duration_ms = Some(started.elapsed().as_millis() as u64);
        line.error = tried.failure.as_ref().map(ToString::to_string);
        (line, tried.failure)
    }
}

/// What the report says of a unit the run stopped before: an applied one stays applied.
fn not_reached(unit: &PlannedUnit) -> UnitOutcome {
    if unit.out_of_range {
        UnitOutcome::OutOfRange
    } else if unit.decision == Decision::Skip {
        UnitOutcome::AlreadyApplied
    } else {
        UnitOutcome::NotReached
    }
}

/// Why execution stopped early.
enum Stop {
    Blocked(Vec<BlockedUnit>),
    Failed {
        change_id: String,
        failure: UnitFailure,
    },
    InDoubt {
        change_id: String,
        failure: UnitFailure,
    },
    LockLost {
        change_id: String,
    },
}

/// How long a run waits for its plan to be recorded before it goes on without: the plan only
/// informs, and a store slow to take it must not hold every start up for its retries.
const PLAN_UPLOAD_PATIENCE: Duration = Duration::from_secs(5);

/// Whether the next unit may start: always without a lock; under one, only while the lease is
/// known to be ours (see [`Lease::may_start_unit`]).
async fn may_start_unit(lease: Option<&Lease>) -> bool {
    match lease {
        Some(lease) => lease.may_start_unit().await,
        None => true,
    }
}
