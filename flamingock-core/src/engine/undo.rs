//! Undo: rolling applied units back, newest first, each audited as `ROLLED_BACK` or
//! `ROLLBACK_FAILED`, under the distributed lock (docs/architecture.md#recovery).
//!
//! Everything is checked before anything runs: a unit in range without `#[rollback_execution]`,
//! a blocked unit in range, or a rollback parameter nothing can fill refuses the whole undo. Each
//! strategy rolls back the way it applied: `TX_SHARED` in one transaction with its `ROLLED_BACK`
//! row, `TX_SEPARATE` in the target's transaction together with the removal of its marker,
//! `NON_TX` by calling the rollback method and then recording the outcome.

use std::time::Instant;

use tracing::Instrument;

use super::Engine;
use super::attempt::{Attempt, Written};
use super::failure::{Tried, UnitFailure};
use super::lease::Lease;
use super::planned::{PlannedUnit, Route, blocked_units};
use super::transaction::{Commit, Purpose, UnitTransaction, confirm_lease};
use crate::model::{AuditEntry, AuditState, ChangeUnit};
use crate::plan::Decision;
use crate::store::StoreError;

mod report;

pub use report::{UndoError, UndoLine, UndoOutcome, UndoRefusal, UndoReport};

/// Which applied units an undo rolls back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UndoScope {
    /// The last `n` applied units (in unit order).
    Last(usize),
    /// Every applied unit ordered after this one; this one stays applied.
    To(String),
    /// Every applied unit whose system version is above this one (the units that came with
    /// later releases), newest first. Units without a system version are never touched.
    ToVersion(semver::Version),
}

impl Engine {
    /// The units `scope` would roll back, newest first, after every check an undo makes; writes
    /// nothing. [`undo`](Self::undo) runs exactly this, under the lock.
    pub async fn undo_plan(
        &self,
        units: impl IntoIterator<Item = &'static ChangeUnit>,
        scope: &UndoScope,
    ) -> Result<Vec<PlannedUnit>, UndoError> {
        let mut planned = self.plan(units).await?;
        // A run's version range (`system_versions`) says what runs apply, not what undo sees:
        // an out-of-range unit keeps its own decision here, so a blocked one still refuses.
        for unit in planned.iter_mut().filter(|unit| unit.out_of_range) {
            unit.out_of_range = false;
            unit.decision = crate::plan::decide(
                unit.strategy(),
                unit.unit.recovery,
                unit.unit.run_always,
                unit.current.as_ref().map(|s| s.state),
            );
        }
        let range = undo_range(&planned, scope)?;
        self.check_rollbacks(&range)?;
        Ok(range)
    }

    /// Rolls back the units `scope` selects, newest first, under the lock; each is audited as
    /// `ROLLED_BACK` or `ROLLBACK_FAILED`. Stops at the first failure.
    pub async fn undo(
        &self,
        units: impl IntoIterator<Item = &'static ChangeUnit>,
        scope: &UndoScope,
    ) -> Result<UndoReport, UndoError> {
        let started = Instant::now();
        let execution_id = uuid::Uuid::now_v7().to_string();
        let units: Vec<&'static ChangeUnit> = units.into_iter().collect();
        let mut range = self.undo_plan(units.iter().copied(), scope).await?;
        if !range.is_empty() {
            // The lock and marker tables (a plan creates none).
            self.initialize().await?;
        }
        let mut lease = None;
        if !range.is_empty() {
            lease = Lease::acquire_always(
                &self.store,
                &self.lock_options,
                &self.runner_id,
                &self.hostname,
            )
            .await?;
            if lease.is_some() {
                // Another instance may have changed the audit while this one waited.
                range = self.undo_plan(units.iter().copied(), scope).await?;
            }
        }
        let span = tracing::info_span!("flamingock.undo", %execution_id, units = range.len());
        let mut report = UndoReport {
            execution_id: execution_id.clone(),
            runner_id: self.runner_id.clone(),
            audit_store: self.store.describe(),
            duration_ms: 0,
            units: Vec::with_capacity(range.len()),
        };
        let result = self
            .roll_back_all(&range, &execution_id, lease.as_ref(), &mut report)
            .instrument(span)
            .await;
        if let Some(lease) = lease {
            match report
                .units
                .iter()
                .find(|u| u.outcome == UndoOutcome::InDoubt)
            {
                Some(in_doubt) => lease.leave_to_expire(&in_doubt.change_id).await,
                None => lease.release().await,
            }
        }
        report.duration_ms = started.elapsed().as_millis() as u64;
        match result {
            Ok(()) => Ok(report),
            Err(Halt::Failed { change_id, failure }) => Err(UndoError::Failed {
                change_id,
                failure: Box::new(failure),
                report: Box::new(report),
            }),
            Err(Halt::LockLost { change_id }) => Err(UndoError::LockLost {
                change_id,
                report: Box::new(report),
            }),
        }
    }

    /// Refuses units without rollback, and rollback parameters nothing can fill.
    fn check_rollbacks(&self, range: &[PlannedUnit]) -> Result<(), UndoError> {
        let mut refusals = Vec::new();
        for unit in range {
            match &unit.unit.rollback {
                None => refusals.push(UndoRefusal::NoRollback {
                    change_id: unit.unit.id.to_owned(),
                    location: unit.unit.source,
                }),
                Some(rollback) => refusals.extend(
                    self.missing_dependencies(unit, rollback)
                        .into_iter()
                        .map(UndoRefusal::MissingDependency),
                ),
            }
        }
        if refusals.is_empty() {
            Ok(())
        } else {
            Err(UndoError::Refused(refusals))
        }
    }

    async fn roll_back_all(
        &self,
        range: &[PlannedUnit],
        execution_id: &str,
        lease: Option<&Lease>,
        report: &mut UndoReport,
    ) -> Result<(), Halt> {
        let mut halt = None;
        for unit in range {
            if halt.is_some() {
                report.units.push(line(unit, UndoOutcome::NotReached));
                continue;
            }
            if !super::may_start_unit(lease).await {
                halt = Some(Halt::LockLost {
                    change_id: unit.unit.id.to_owned(),
                });
                report.units.push(line(unit, UndoOutcome::NotReached));
                continue;
            }
            let tries = unit.current.as_ref().map_or(1, |s| s.tries.max(1));
            let attempt = Attempt::new(
                self,
                unit,
                execution_id,
                u32::try_from(tries).unwrap_or(u32::MAX),
                lease,
            );
            let span = tracing::info_span!(
                "flamingock.rollback",
                change_id = unit.unit.id,
                strategy = unit.strategy().as_str()
            );
            let started = Instant::now();
            let tried = roll_back(&attempt).instrument(span).await;
            let mut done = line(unit, tried.outcome);
            done.duration_ms = Some(started.elapsed().as_millis() as u64);
            done.error = tried.failure.as_ref().map(ToString::to_string);
            report.units.push(done);
            if lease.is_some_and(Lease::is_lost) {
                halt = Some(Halt::LockLost {
                    change_id: unit.unit.id.to_owned(),
                });
            } else if tried.outcome != UndoOutcome::RolledBack || tried.failure.is_some() {
                halt = Some(Halt::Failed {
                    change_id: unit.unit.id.to_owned(),
                    failure: tried
                        .failure
                        .unwrap_or_else(|| UnitFailure::found("the rollback did not complete")),
                });
            }
        }
        halt.map_or(Ok(()), Err)
    }
}

/// Appends the undo's intent (`ROLLBACK_STARTED`). A write whose reply was lost (every retry's
/// too) is looked up in the audit: found there, it is as good as written, and the rollback runs
/// if the lease is still ours; otherwise it is not run.
async fn record_intent(attempt: &Attempt<'_>, intent: &AuditEntry) -> Result<(), StoreError> {
    match attempt.append(intent).await {
        Err(error @ StoreError::OutcomeUnknown { .. }) => {
            match attempt.find_out(intent.state, Some(error)).await {
                Written::Yes => super::apply::lease_still_ours(attempt).await,
                Written::No(error) | Written::Unknown(error) => {
                    Err(error.expect("find_out hands back the error it was given"))
                }
            }
        }
        result => result,
    }
}

/// Rolls one unit back the way it applied, and records the outcome.
async fn roll_back(attempt: &Attempt<'_>) -> Tried<UndoOutcome> {
    let Some(rollback) = &attempt.unit.unit.rollback else {
        // Refused before the undo started; never reached.
        let failure = UnitFailure::found("the unit has no #[rollback_execution]");
        return Tried::failed(UndoOutcome::RollbackFailed, failure);
    };
    let started = Instant::now();
    let elapsed = || Some(started.elapsed().as_millis() as i64);
    if !matches!(attempt.unit.route, Route::Shared(_)) {
        // Rollback code without a transaction, or a target's transaction whose commit the audit
        // cannot cover: the intent is recorded first, so that an undo cut short here leaves a
        // row that blocks the unit instead of an APPLIED that is no longer true.
        let intent = attempt.entry(
            AuditState::RollbackStarted,
            None,
            Some(format!(
                "an undo (run {}) began rolling this unit back; if this is the unit's newest row the undo was interrupted and its outcome is unknown: check the target, then run `flamingock fix {} --applied` or `--rolled-back`",
                attempt.context.execution_id,
                attempt.id()
            )),
        );
        if let Err(error) = record_intent(attempt, &intent).await {
            let failure = UnitFailure::at(
                "could not record ROLLBACK_STARTED, so nothing was rolled back (if the row was written after all, the unit now blocks until `flamingock fix`)",
                error,
            );
            return Tried::failed(UndoOutcome::RollbackFailed, failure);
        }
        crate::failpoint!("undo.after_rollback_started");
    }
    let failure = match attempt.unit.route.transactional() {
        Some(route) => {
            let transaction = match UnitTransaction::open(attempt, route, Purpose::Undo).await {
                Ok(transaction) => transaction,
                Err(failure) => return record_rollback_failure(attempt, None, failure).await,
            };
            match transaction.run(attempt, rollback, Purpose::Undo).await {
                Err(failure) => failure,
                Ok(transaction) => {
                    if let Some(failure) =
                        confirm_lease(transaction.is_separate(), attempt, Purpose::Undo).await
                    {
                        let failure = transaction.roll_back(failure).await;
                        return record_rollback_failure(attempt, elapsed(), failure).await;
                    }
                    match transaction.commit(attempt, Purpose::Undo, elapsed()).await {
                        Commit::Done { recorded: true } => {
                            return Tried::ok(UndoOutcome::RolledBack);
                        }
                        Commit::Done { recorded: false } => {
                            let what = format!(
                                "the rollback committed on target \"{}\"",
                                attempt.unit.unit.target_name()
                            );
                            return record_rolled_back(attempt, elapsed(), &what).await;
                        }
                        Commit::NotCommitted(failure) => failure,
                        Commit::Unknown(failure) => {
                            tracing::error!(change_id = attempt.id(), error = %failure, "rollback in doubt");
                            return Tried::failed(UndoOutcome::InDoubt, failure);
                        }
                    }
                }
            }
        }
        None => match attempt.call(rollback, None).await {
            Ok(()) => return record_rolled_back(attempt, elapsed(), "the rollback ran").await,
            Err(error) => UnitFailure::unit(error),
        },
    };
    record_rollback_failure(attempt, elapsed(), failure).await
}

/// Appends `ROLLED_BACK` after a rollback that is in place (`what` says where); when that cannot
/// be written, says how to record it by hand.
async fn record_rolled_back(
    attempt: &Attempt<'_>,
    execution_ms: Option<i64>,
    what: &str,
) -> Tried<UndoOutcome> {
    crate::failpoint!("undo.after_rollback");
    let row = attempt.entry(AuditState::RolledBack, execution_ms, None);
    let step = format!(
        "{what} but ROLLED_BACK could not be recorded; ROLLBACK_STARTED stays the unit's newest row and blocks it: record the rollback with `flamingock fix {} --rolled-back --reason \"...\"`",
        attempt.id()
    );
    match attempt.append_known(&row, "undo.rolled_back").await {
        Written::Yes => Tried::ok(UndoOutcome::RolledBack),
        Written::No(error) => Tried::failed(
            UndoOutcome::RolledBack,
            super::transaction::failure(step, error),
        ),
        Written::Unknown(error) => Tried::failed(
            UndoOutcome::InDoubt,
            super::transaction::failure(
                format!(
                    "{what} but whether ROLLED_BACK was recorded is unknown (the reply was lost and the audit could not be read again); nothing more was written: if ROLLBACK_STARTED is still the unit's newest row it blocks the unit, then record the rollback with `flamingock fix {} --rolled-back --reason \"...\"`",
                    attempt.id()
                ),
                error,
            ),
        ),
    }
}

/// Inserts `ROLLBACK_FAILED` with `failure`; when even that fails, says so.
async fn record_rollback_failure(
    attempt: &Attempt<'_>,
    execution_ms: Option<i64>,
    failure: UnitFailure,
) -> Tried<UndoOutcome> {
    tracing::error!(change_id = attempt.id(), error = %failure, "rollback failed");
    if attempt.lease_lost() {
        return Tried::failed(UndoOutcome::RollbackFailed, failure);
    }
    let failure = attempt
        .record(AuditState::RollbackFailed, execution_ms, failure, "")
        .await
        .unwrap_or_else(|failure| failure);
    Tried::failed(UndoOutcome::RollbackFailed, failure)
}

/// Why an undo stopped early.
enum Halt {
    Failed {
        change_id: String,
        failure: UnitFailure,
    },
    LockLost {
        change_id: String,
    },
}

/// Whether a unit's effect is in place: what undo can roll back.
fn in_place(unit: &PlannedUnit) -> bool {
    unit.current.as_ref().is_some_and(|s| s.state.is_applied())
}

/// The applied units `scope` selects, newest first; refuses when a unit among them, or between
/// them, is blocked.
fn undo_range(planned: &[PlannedUnit], scope: &UndoScope) -> Result<Vec<PlannedUnit>, UndoError> {
    let start = match scope {
        UndoScope::ToVersion(version) => {
            let above = |p: &PlannedUnit| version_of(p.unit).is_some_and(|v| v > *version);
            let Some(first) = planned.iter().position(above) else {
                return Ok(Vec::new());
            };
            // Refused as `--to` would be: a blocked unit from the first one undone onwards,
            // with a version or without; only the units above the version are rolled back.
            let span = &planned[first..];
            applied_newest_first(span)?;
            let selected: Vec<PlannedUnit> = span.iter().filter(|p| above(p)).cloned().collect();
            return applied_newest_first(&selected);
        }
        UndoScope::To(id) => {
            planned
                .iter()
                .position(|p| p.unit.id == id)
                .ok_or_else(|| UndoError::UnknownUnit(id.clone()))?
                + 1
        }
        UndoScope::Last(0) => planned.len(),
        UndoScope::Last(n) => {
            let applied: Vec<usize> = (0..planned.len())
                .filter(|&i| in_place(&planned[i]))
                .collect();
            if applied.len() < *n {
                return Err(UndoError::NotEnoughApplied {
                    requested: *n,
                    applied: applied.len(),
                });
            }
            applied[applied.len() - n]
        }
    };
    applied_newest_first(&planned[start..])
}

/// A unit's system version, if it has one that parses (the macro checks it does).
fn version_of(unit: &ChangeUnit) -> Option<semver::Version> {
    unit.system_version
        .and_then(|version| semver::Version::parse(version).ok())
}

/// The applied units of `span`, newest first; refuses when one of `span` is blocked.
fn applied_newest_first(span: &[PlannedUnit]) -> Result<Vec<PlannedUnit>, UndoError> {
    let blocked: Vec<UndoRefusal> = blocked_units(span)
        .into_iter()
        .map(UndoRefusal::Blocked)
        .collect();
    if !blocked.is_empty() {
        return Err(UndoError::Refused(blocked));
    }
    debug_assert!(span.iter().all(|p| p.decision != Decision::Block));
    Ok(span.iter().rev().filter(|p| in_place(p)).cloned().collect())
}

fn line(unit: &PlannedUnit, outcome: UndoOutcome) -> UndoLine {
    UndoLine {
        change_id: unit.unit.id.to_owned(),
        order: unit.unit.order.to_owned(),
        author: unit.unit.author.to_owned(),
        stage: unit.unit.stage_name().to_owned(),
        tx_strategy: unit.strategy(),
        outcome,
        duration_ms: None,
        error: None,
    }
}
