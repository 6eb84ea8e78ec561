//! The execution engine: plans a run from the audit, checks it, and applies each unit with its
//! strategy (DESIGN §5), recording every step in the audit store.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use tracing::Instrument;

use crate::error::{BlockedUnit, Error, MissingDependency};
use crate::inject::{ChangeContext, Dependencies, Requirement, Scope};
use crate::lock::LockOptions;
use crate::model::{
    AuditEntry, AuditState, ChangeUnit, DEFAULT_TARGET, UnitMethod, UnitState, error_chain,
};
use crate::plan::{Decision, Selection, decide, order_units};
use crate::report::{RunReport, UnitOutcome, UnitReport};
use crate::store::AuditStore;
use crate::target::TargetSystem;

mod admin;
mod apply;
mod inspect;
mod lease;
mod manual;
mod undo;
mod unwind;

pub use admin::LockRelease;
pub use manual::{FixError, FixOutcome, FixRequest, Resolution};
pub use undo::{UndoError, UndoLine, UndoOutcome, UndoRefusal, UndoReport, UndoScope};

use lease::{Acquired, Lease};

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
}

/// Applies change units to their target systems and records every step in an audit store.
pub struct Engine {
    store: Arc<dyn AuditStore>,
    store_dependencies: Dependencies,
    /// The store's database as a `TX_SEPARATE` target, where `TX_SHARED` is not atomic (MySQL).
    separate_store_target: Option<Arc<dyn TargetSystem>>,
    targets: HashMap<String, Arc<dyn TargetSystem>>,
    dependencies: Dependencies,
    options: RunOptions,
    lock_options: LockOptions,
    /// Set once the store's and targets' tables are known to exist.
    initialized: tokio::sync::OnceCell<()>,
    runner_id: String,
    hostname: String,
}

/// One selected unit with everything decided about it before anything runs.
#[derive(Clone)]
pub struct PlannedUnit {
    pub unit: &'static ChangeUnit,
    pub strategy: TxStrategy,
    pub decision: Decision,
    pub current: Option<UnitState>,
    target: Option<Arc<dyn TargetSystem>>,
}

impl PlannedUnit {
    /// Whether a run would do anything with this unit.
    pub fn is_pending(&self) -> bool {
        matches!(self.decision, Decision::Apply | Decision::ConsultMarker)
    }
}

impl Engine {
    /// An engine recording in `store`, with no extra target systems or dependencies.
    pub fn new(store: Arc<dyn AuditStore>) -> Self {
        let store_dependencies = store.dependencies();
        let separate_store_target = store.separate_target();
        Self {
            store,
            store_dependencies,
            separate_store_target,
            targets: HashMap::new(),
            dependencies: Dependencies::new(),
            options: RunOptions::default(),
            lock_options: LockOptions::default(),
            initialized: tokio::sync::OnceCell::new(),
            runner_id: uuid::Uuid::new_v4().to_string(),
            hostname: gethostname::gethostname().to_string_lossy().into_owned(),
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

    /// This runner's id (one per engine), recorded in every audit entry it writes.
    pub fn runner_id(&self) -> &str {
        &self.runner_id
    }

    /// The audit store.
    pub fn store(&self) -> &Arc<dyn AuditStore> {
        &self.store
    }

    /// Plans a run without writing anything: selection, validation, targets and decisions.
    pub async fn plan(
        &self,
        units: impl IntoIterator<Item = &'static ChangeUnit>,
    ) -> Result<Vec<PlannedUnit>, Error> {
        let ordered = order_units(units, &self.options.selection).map_err(Error::Validation)?;
        let mut planned = Vec::with_capacity(ordered.len());
        for unit in ordered {
            let (target, strategy) = self.resolve_target(unit)?;
            planned.push(PlannedUnit {
                unit,
                strategy,
                decision: Decision::Apply,
                current: None,
                target,
            });
        }
        // The state read comes first: when every unit is applied it is the only round trip a
        // start-up makes. Tables are created (and checked) only when it fails or work is due.
        let mut states = match self.store.unit_states().await {
            Ok(states) => states,
            Err(_) => {
                self.initialize().await?;
                self.store.unit_states().await?
            }
        };
        for unit in &mut planned {
            unit.current = states.remove(unit.unit.id);
            unit.decision = decide(
                unit.strategy,
                unit.unit.recovery,
                unit.unit.run_always,
                unit.current.as_ref().map(|s| s.state),
            );
        }
        if planned.iter().any(|p| p.decision != Decision::Skip) {
            self.initialize().await?;
        }
        Ok(planned)
    }

    /// Creates and checks the audit, lock and marker tables, once per engine.
    async fn initialize(&self) -> Result<(), Error> {
        self.initialized
            .get_or_try_init(|| async {
                self.store.initialize().await?;
                for target in self.targets.values().chain(&self.separate_store_target) {
                    if let Some(transactional) = target.transactional() {
                        transactional.initialize().await?;
                    }
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
        async {
            let units: Vec<&'static ChangeUnit> = units.into_iter().collect();
            let mut planned = self.plan(units.iter().copied()).await?;
            self.check_dependencies(&planned)?;
            let mut lease = None;
            // A unit that looks blocked (STARTED, FAILED) may be one another instance is applying
            // right now: only a plan made under the lock can tell a crash's leftovers from work
            // in progress. Units all applied need no lock.
            if planned.iter().any(|p| p.decision != Decision::Skip) {
                let replan = || async { self.plan(units.iter().copied()).await.map(Some) };
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
                        lease = Some(held);
                        // Another instance may have done the work while this one waited.
                        planned = self.plan(units.iter().copied()).await?;
                        self.check_dependencies(&planned)?;
                    }
                    Acquired::NotNeeded(fresh) => planned = fresh,
                    Acquired::NoLock => {}
                }
            }
            let pending = planned.iter().filter(|p| p.is_pending()).count();
            tracing::info!(units = planned.len(), pending, store = %self.store.describe(), "planned");
            let mut report = RunReport {
                execution_id: execution_id.clone(),
                runner_id: self.runner_id.clone(),
                audit_store: self.store.describe(),
                duration_ms: 0,
                units: Vec::with_capacity(planned.len()),
            };
            let result = self
                .execute(&planned, &execution_id, lease.as_ref(), &mut report)
                .await;
            if let Some(lease) = lease {
                lease.release().await;
            }
            report.duration_ms = started.elapsed().as_millis() as u64;
            match result {
                Ok(()) => Ok(report),
                Err(Stop::Blocked(blocked)) => Err(Error::Blocked {
                    blocked,
                    report: Box::new(report),
                }),
                Err(Stop::Failed { change_id, message }) => Err(Error::UnitFailed {
                    change_id,
                    message,
                    report: Box::new(report),
                }),
                Err(Stop::LockLost { change_id }) => Err(Error::LockLost {
                    change_id,
                    report: Box::new(report),
                }),
            }
        }
        .instrument(span)
        .await
    }

    fn resolve_target(
        &self,
        unit: &'static ChangeUnit,
    ) -> Result<(Option<Arc<dyn TargetSystem>>, TxStrategy), Error> {
        let Some(name) = unit.target_system.filter(|name| *name != DEFAULT_TARGET) else {
            return Ok(match &self.separate_store_target {
                _ if !unit.transactional => (None, TxStrategy::NonTransactional),
                Some(own) => (Some(own.clone()), TxStrategy::Separate),
                None => (None, TxStrategy::Shared),
            });
        };
        match self.targets.get(name) {
            Some(target) => {
                let strategy = match target.transactional() {
                    None => TxStrategy::NonTransactional,
                    Some(_) if !unit.transactional => TxStrategy::NonTransactional,
                    Some(tx) if Some(tx.database_identity()) == self.store.database_identity() => {
                        // The audit store's own database: one transaction, unless its
                        // transactions are not atomic (then the marker protocol, as elsewhere).
                        if self.separate_store_target.is_some() {
                            TxStrategy::Separate
                        } else {
                            TxStrategy::Shared
                        }
                    }
                    Some(_) => TxStrategy::Separate,
                };
                Ok((Some(target.clone()), strategy))
            }
            None => {
                let mut known: Vec<String> = self.targets.keys().cloned().collect();
                known.sort();
                known.insert(0, format!("{DEFAULT_TARGET} (the audit store's database)"));
                Err(Error::UnknownTarget {
                    change_id: unit.id.to_owned(),
                    location: unit.source,
                    target: name.to_owned(),
                    known,
                })
            }
        }
    }

    /// Checks that every parameter of every pending unit can be filled, before anything runs.
    fn check_dependencies(&self, planned: &[PlannedUnit]) -> Result<(), Error> {
        let mut missing = Vec::new();
        for unit in planned.iter().filter(|p| p.is_pending()) {
            let methods = std::iter::once(&unit.unit.execution).chain(unit.unit.rollback.as_ref());
            for method in methods {
                for param in (method.params)() {
                    if let Some(reason) = self.unfilled_reason(unit, param.requirement) {
                        missing.push(MissingDependency {
                            change_id: unit.unit.id.to_owned(),
                            location: unit.unit.source,
                            method: method.name,
                            parameter: param.name,
                            written_type: param.written_type,
                            reason,
                        });
                    }
                }
            }
        }
        if missing.is_empty() {
            Ok(())
        } else {
            Err(Error::MissingDependencies(missing))
        }
    }

    fn unfilled_reason(&self, unit: &PlannedUnit, requirement: Requirement) -> Option<String> {
        let target_name = unit.unit.target_name();
        match requirement {
            Requirement::Context => None,
            Requirement::Dependency { type_id, type_name } => {
                let target_dependencies = self.target_dependencies(unit);
                if target_dependencies.contains(type_id) || self.dependencies.contains(type_id) {
                    return None;
                }
                let mut offered = target_dependencies.type_names();
                offered.extend(self.dependencies.type_names());
                let offered = if offered.is_empty() {
                    "none".to_owned()
                } else {
                    offered.join(", ")
                };
                Some(format!(
                    "no dependency of type `{type_name}` is registered for target \"{target_name}\" or on the builder; register one with `Flamingock::builder().dependency(value)` (registered: {offered})"
                ))
            }
            Requirement::Transaction { type_id, type_name } => match unit.strategy {
                TxStrategy::Shared => {
                    let (offered_id, offered_name) = self.store.shared_transaction_type();
                    (offered_id != type_id).then(|| {
                        format!(
                            "the target \"{target_name}\" opens a `{offered_name}`, not a `{type_name}`; declare the parameter as `&mut {offered_name}`"
                        )
                    })
                }
                TxStrategy::Separate => {
                    let transactional = unit.target.as_ref().and_then(|t| t.transactional());
                    let (offered_id, offered_name) = transactional
                        .map(|t| t.transaction_type())
                        .expect("TX_SEPARATE is only planned for transactional targets");
                    (offered_id != type_id).then(|| {
                        format!(
                            "the target \"{target_name}\" opens a `{offered_name}`, not a `{type_name}`; declare the parameter as `&mut {offered_name}`"
                        )
                    })
                }
                TxStrategy::NonTransactional => Some(format!(
                    "the unit runs without a transaction (NON_TX: {}), so there is no `{type_name}` to give it; take the target's client as `&T` instead",
                    if unit.target.is_some() {
                        "its target system is not transactional"
                    } else {
                        "it says `transactional = false`"
                    }
                )),
            },
        }
    }

    fn target_dependencies<'a>(&'a self, unit: &'a PlannedUnit) -> &'a Dependencies {
        unit.target
            .as_ref()
            .map_or(&self.store_dependencies, |target| target.dependencies())
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
                report
                    .units
                    .push(unit_report(unit, UnitOutcome::NotReached));
                continue;
            }
            if blocked_stages.contains(unit.unit.stage_name()) {
                // This is the blocked stage's first unit: nothing of it, nor after it, runs.
                for rest in &planned[index..] {
                    let mut line = unit_report(rest, UnitOutcome::NotReached);
                    if rest.decision == Decision::Block {
                        line.outcome = UnitOutcome::Blocked;
                        line.error = rest.current.as_ref().and_then(|s| s.error.clone());
                    }
                    report.units.push(line);
                }
                return Err(Stop::Blocked(blocked_units(&planned[index..])));
            }
            let line = match unit.decision {
                Decision::Skip => unit_report(unit, UnitOutcome::AlreadyApplied),
                Decision::Apply | Decision::ConsultMarker | Decision::Block => {
                    if lease.is_some_and(Lease::is_lost) {
                        stop = Some(Stop::LockLost {
                            change_id: unit.unit.id.to_owned(),
                        });
                        report
                            .units
                            .push(unit_report(unit, UnitOutcome::NotReached));
                        continue;
                    }
                    let line = self.apply(unit, execution_id, lease).await;
                    if lease.is_some_and(Lease::is_lost) {
                        stop = Some(Stop::LockLost {
                            change_id: unit.unit.id.to_owned(),
                        });
                    } else if !matches!(
                        line.outcome,
                        UnitOutcome::Applied | UnitOutcome::RecoveredApplied
                    ) {
                        stop = Some(Stop::Failed {
                            change_id: unit.unit.id.to_owned(),
                            message: line.error.clone().unwrap_or_default(),
                        });
                    }
                    line
                }
            };
            report.units.push(line);
        }
        stop.map_or(Ok(()), Err)
    }

    async fn apply(
        &self,
        unit: &PlannedUnit,
        execution_id: &str,
        lease: Option<&Lease>,
    ) -> UnitReport {
        let context = ChangeContext {
            change_id: unit.unit.id.to_owned(),
            execution_id: execution_id.to_owned(),
            attempt: unit
                .current
                .as_ref()
                .map_or(1, |s| u32::try_from(s.tries).unwrap_or(u32::MAX - 1) + 1),
            stage: unit.unit.stage_name().to_owned(),
            target_system: unit.unit.target_name().to_owned(),
            runner_id: self.runner_id.clone(),
        };
        let span = tracing::info_span!(
            "flamingock.unit",
            change_id = unit.unit.id,
            strategy = unit.strategy.as_str(),
            attempt = context.attempt
        );
        let started = Instant::now();
        let (outcome, error) = match unit.strategy {
            TxStrategy::Shared => {
                self.apply_shared(unit, &context, lease)
                    .instrument(span)
                    .await
            }
            TxStrategy::Separate => {
                self.apply_separate(unit, &context, lease)
                    .instrument(span)
                    .await
            }
            TxStrategy::NonTransactional => {
                self.apply_non_tx(unit, &context, lease)
                    .instrument(span)
                    .await
            }
        };
        let mut line = unit_report(unit, outcome);
        line.duration_ms = Some(started.elapsed().as_millis() as u64);
        line.error = error;
        line
    }

    /// An audit row for `unit` in `state`, as this runner writes it.
    fn entry(
        &self,
        unit: &PlannedUnit,
        context: &ChangeContext,
        state: AuditState,
        execution_ms: Option<i64>,
        error: Option<String>,
    ) -> AuditEntry {
        let u = unit.unit;
        let mut metadata = serde_json::Map::new();
        if let Some(description) = u.description {
            metadata.insert("description".into(), description.into());
        }
        if let Some(version) = u.system_version {
            metadata.insert("system_version".into(), version.into());
        }
        if u.run_always {
            metadata.insert("run_always".into(), true.into());
        }
        AuditEntry {
            id: 0,
            execution_id: context.execution_id.clone(),
            change_id: u.id.to_owned(),
            author: u.author.to_owned(),
            change_order: u.order.to_owned(),
            stage: u.stage_name().to_owned(),
            state,
            created_at: None,
            execution_ms,
            hostname: self.hostname.clone(),
            runner_id: self.runner_id.clone(),
            target_system: u.target_name().to_owned(),
            tx_strategy: unit.strategy,
            recovery_strategy: u.recovery,
            app_name: self.options.app_name.clone(),
            app_version: self.options.app_version.clone(),
            source: format!(
                "{} {}:{}",
                u.source.module_path, u.source.file, u.source.line
            ),
            checksum: Some(u.checksum.to_owned()),
            error,
            metadata: (!metadata.is_empty()).then_some(serde_json::Value::Object(metadata)),
        }
    }

    fn scope<'s>(
        &'s self,
        unit: &'s PlannedUnit,
        context: &'s ChangeContext,
        transaction: Option<&'s mut (dyn std::any::Any + Send)>,
    ) -> Scope<'s> {
        Scope::new(
            context,
            self.target_dependencies(unit),
            &self.dependencies,
            transaction,
        )
    }
}

/// Why execution stopped early.
enum Stop {
    Blocked(Vec<BlockedUnit>),
    Failed { change_id: String, message: String },
    LockLost { change_id: String },
}

fn blocked_units(planned: &[PlannedUnit]) -> Vec<BlockedUnit> {
    planned
        .iter()
        .filter(|p| p.decision == Decision::Block)
        .map(|p| BlockedUnit {
            change_id: p.unit.id.to_owned(),
            stage: p.unit.stage_name().to_owned(),
            state: p
                .current
                .as_ref()
                .map_or_else(String::new, |s| s.state.to_string()),
            last_error: p.current.as_ref().and_then(|s| s.error.clone()),
        })
        .collect()
}

fn unit_report(unit: &PlannedUnit, outcome: UnitOutcome) -> UnitReport {
    UnitReport {
        change_id: unit.unit.id.to_owned(),
        order: unit.unit.order.to_owned(),
        author: unit.unit.author.to_owned(),
        stage: unit.unit.stage_name().to_owned(),
        target_system: unit.unit.target_name().to_owned(),
        tx_strategy: unit.strategy,
        outcome,
        duration_ms: None,
        error: None,
    }
}

/// Calls one method of a unit; a panic becomes an error.
async fn call(method: &UnitMethod, scope: Scope<'_>) -> Result<(), crate::inject::BoxError> {
    unwind::CatchUnwind::new((method.call)(scope)).await
}

fn describe_error(error: &crate::inject::BoxError) -> String {
    error_chain(error.as_ref())
}
