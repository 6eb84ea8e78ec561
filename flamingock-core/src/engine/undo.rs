//! Undo: rolling applied units back, newest first, each audited as `ROLLED_BACK` or
//! `ROLLBACK_FAILED`, under the distributed lock (DESIGN §7).
//!
//! Everything is checked before anything runs: a unit in range without `#[rollback_execution]`,
//! a blocked unit in range, or a rollback parameter nothing can fill refuses the whole undo. Each
//! strategy rolls back the way it applied: `TX_SHARED` in one transaction with its `ROLLED_BACK`
//! row, `TX_SEPARATE` in the target's transaction together with the removal of its marker,
//! `NON_TX` by calling the rollback method and then recording the outcome.

use std::time::Instant;

use tracing::Instrument;

use super::{Engine, Lease, PlannedUnit, call, describe_error};
use crate::error::MissingDependency;
use crate::inject::ChangeContext;
use crate::model::{AuditState, ChangeUnit, TxStrategy};
use crate::plan::Decision;

mod report;

pub use report::{UndoError, UndoLine, UndoOutcome, UndoRefusal, UndoReport};

/// Which applied units an undo rolls back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UndoScope {
    /// The last `n` applied units (in unit order).
    Last(usize),
    /// Every applied unit ordered after this one; this one stays applied.
    To(String),
}

impl Engine {
    /// The units `scope` would roll back, newest first, after every check an undo makes; writes
    /// nothing. [`undo`](Self::undo) runs exactly this, under the lock.
    pub async fn undo_plan(
        &self,
        units: impl IntoIterator<Item = &'static ChangeUnit>,
        scope: &UndoScope,
    ) -> Result<Vec<PlannedUnit>, UndoError> {
        let planned = self.plan(units).await?;
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
            lease.release().await;
        }
        report.duration_ms = started.elapsed().as_millis() as u64;
        match result {
            Ok(()) => Ok(report),
            Err(Halt::Failed { change_id, message }) => Err(UndoError::Failed {
                change_id,
                message,
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
            let Some(rollback) = &unit.unit.rollback else {
                refusals.push(UndoRefusal::NoRollback {
                    change_id: unit.unit.id.to_owned(),
                    location: unit.unit.source,
                });
                continue;
            };
            for param in (rollback.params)() {
                if let Some(reason) = self.unfilled_reason(unit, param.requirement) {
                    refusals.push(UndoRefusal::MissingDependency(MissingDependency {
                        change_id: unit.unit.id.to_owned(),
                        location: unit.unit.source,
                        method: rollback.name,
                        parameter: param.name,
                        written_type: param.written_type,
                        reason,
                    }));
                }
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
            if lease.is_some_and(Lease::is_lost) {
                halt = Some(Halt::LockLost {
                    change_id: unit.unit.id.to_owned(),
                });
                report.units.push(line(unit, UndoOutcome::NotReached));
                continue;
            }
            let context = ChangeContext {
                change_id: unit.unit.id.to_owned(),
                execution_id: execution_id.to_owned(),
                attempt: unit
                    .current
                    .as_ref()
                    .map_or(1, |s| u32::try_from(s.tries.max(1)).unwrap_or(u32::MAX)),
                stage: unit.unit.stage_name().to_owned(),
                target_system: unit.unit.target_name().to_owned(),
                runner_id: self.runner_id.clone(),
            };
            let span = tracing::info_span!(
                "flamingock.rollback",
                change_id = unit.unit.id,
                strategy = unit.strategy.as_str()
            );
            let started = Instant::now();
            let (outcome, error) = self.roll_back(unit, &context, lease).instrument(span).await;
            let mut done = line(unit, outcome);
            done.duration_ms = Some(started.elapsed().as_millis() as u64);
            done.error = error.clone();
            report.units.push(done);
            if lease.is_some_and(Lease::is_lost) {
                halt = Some(Halt::LockLost {
                    change_id: unit.unit.id.to_owned(),
                });
            } else if outcome != UndoOutcome::RolledBack || error.is_some() {
                halt = Some(Halt::Failed {
                    change_id: unit.unit.id.to_owned(),
                    message: error.unwrap_or_default(),
                });
            }
        }
        halt.map_or(Ok(()), Err)
    }

    /// Rolls one unit back with its strategy and records the outcome.
    async fn roll_back(
        &self,
        unit: &PlannedUnit,
        context: &ChangeContext,
        lease: Option<&Lease>,
    ) -> (UndoOutcome, Option<String>) {
        let rollback = unit
            .unit
            .rollback
            .as_ref()
            .expect("units without rollback are refused before the undo starts");
        let started = Instant::now();
        let elapsed = |started: Instant| Some(started.elapsed().as_millis() as i64);
        let failure = match unit.strategy {
            TxStrategy::Shared => {
                let mut transaction = match self.store.begin_shared().await {
                    Ok(transaction) => transaction,
                    Err(error) => {
                        return self
                            .record_rollback_failure(
                                unit,
                                context,
                                lease,
                                None,
                                open_failed(&error),
                            )
                            .await;
                    }
                };
                let result = call(
                    rollback,
                    self.scope(unit, context, Some(transaction.as_any_mut())),
                )
                .await;
                match result {
                    Ok(()) => {
                        let row = self.entry(
                            unit,
                            context,
                            AuditState::RolledBack,
                            elapsed(started),
                            None,
                        );
                        match self.commit_shared(transaction, &row, lease).await {
                            Ok(()) => return (UndoOutcome::RolledBack, None),
                            Err(error) => format!(
                                "the rollback ran but its transaction did not commit, so the unit is still applied: {}",
                                describe_error(&error.into())
                            ),
                        }
                    }
                    Err(error) => {
                        let mut message = format!(
                            "{}\n(the transaction was rolled back, so the unit is still applied)",
                            describe_error(&error)
                        );
                        if let Err(rollback) = transaction.rollback().await {
                            message.push_str(&format!(
                                "\n(rolling back the transaction also failed: {rollback}; the connection was discarded)"
                            ));
                        }
                        message
                    }
                }
            }
            TxStrategy::Separate => {
                let target = unit
                    .target
                    .as_ref()
                    .and_then(|t| t.transactional())
                    .expect("TX_SEPARATE is only planned for transactional targets");
                let mut transaction = match target.begin().await {
                    Ok(transaction) => transaction,
                    Err(error) => {
                        return self
                            .record_rollback_failure(
                                unit,
                                context,
                                lease,
                                None,
                                open_failed(&error),
                            )
                            .await;
                    }
                };
                let result = call(
                    rollback,
                    self.scope(unit, context, Some(transaction.as_any_mut())),
                )
                .await;
                match result {
                    Ok(()) => match transaction.commit_removing_marker(unit.unit.id).await {
                        Ok(()) => {
                            let row = self.entry(
                                unit,
                                context,
                                AuditState::RolledBack,
                                elapsed(started),
                                None,
                            );
                            return match self.append(&row, lease).await {
                                Ok(()) => (UndoOutcome::RolledBack, None),
                                Err(error) => (
                                    UndoOutcome::RolledBack,
                                    Some(format!(
                                        "the rollback committed on target \"{}\" but ROLLED_BACK could not be recorded ({}); record it with `flamingock fix {} --rolled-back --reason \"...\"`",
                                        unit.unit.target_name(),
                                        describe_error(&error.into()),
                                        unit.unit.id
                                    )),
                                ),
                            };
                        }
                        Err(error) => format!(
                            "the rollback ran but target \"{}\" did not commit it, so the unit is still applied: {}",
                            unit.unit.target_name(),
                            describe_error(&error.into())
                        ),
                    },
                    Err(error) => {
                        let mut message = format!(
                            "{}\n(the target's transaction was rolled back, so the unit is still applied)",
                            describe_error(&error)
                        );
                        if let Err(rollback) = transaction.rollback().await {
                            message.push_str(&format!(
                                "\n(rolling back the target's transaction also failed: {rollback}; the connection was discarded)"
                            ));
                        }
                        message
                    }
                }
            }
            TxStrategy::NonTransactional => {
                match call(rollback, self.scope(unit, context, None)).await {
                    Ok(()) => {
                        let row = self.entry(
                            unit,
                            context,
                            AuditState::RolledBack,
                            elapsed(started),
                            None,
                        );
                        return match self.append(&row, lease).await {
                            Ok(()) => (UndoOutcome::RolledBack, None),
                            Err(error) => (
                                UndoOutcome::RolledBack,
                                Some(format!(
                                    "the rollback ran but ROLLED_BACK could not be recorded ({}); record it with `flamingock fix {} --rolled-back --reason \"...\"`",
                                    describe_error(&error.into()),
                                    unit.unit.id
                                )),
                            ),
                        };
                    }
                    Err(error) => describe_error(&error),
                }
            }
        };
        self.record_rollback_failure(unit, context, lease, elapsed(started), failure)
            .await
    }

    /// Inserts `ROLLBACK_FAILED` with `message`; when even that fails, says so.
    async fn record_rollback_failure(
        &self,
        unit: &PlannedUnit,
        context: &ChangeContext,
        lease: Option<&Lease>,
        execution_ms: Option<i64>,
        message: String,
    ) -> (UndoOutcome, Option<String>) {
        tracing::error!(change_id = unit.unit.id, error = %message, "rollback failed");
        if lease.is_some_and(Lease::is_lost) {
            return (UndoOutcome::RollbackFailed, Some(message));
        }
        let row = self.entry(
            unit,
            context,
            AuditState::RollbackFailed,
            execution_ms,
            Some(message.clone()),
        );
        let message = self
            .append_noting(&row, lease, message, "")
            .await
            .unwrap_or_else(|message| message);
        (UndoOutcome::RollbackFailed, Some(message))
    }
}

/// Why an undo stopped early.
enum Halt {
    Failed { change_id: String, message: String },
    LockLost { change_id: String },
}

fn open_failed(error: &dyn std::fmt::Display) -> String {
    format!("could not open a transaction, so nothing was rolled back: {error}")
}

/// Whether a unit's effect is in place: what undo can roll back.
fn in_place(unit: &PlannedUnit) -> bool {
    unit.current.as_ref().is_some_and(|s| s.state.is_applied())
}

/// The applied units `scope` selects, newest first; refuses when a unit among them, or between
/// them, is blocked.
fn undo_range(planned: &[PlannedUnit], scope: &UndoScope) -> Result<Vec<PlannedUnit>, UndoError> {
    let start = match scope {
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
    let span = &planned[start..];
    let blocked: Vec<UndoRefusal> = super::blocked_units(span)
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
        tx_strategy: unit.strategy,
        outcome,
        duration_ms: None,
        error: None,
    }
}
