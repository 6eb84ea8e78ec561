//! Applying one unit with its strategy: the write sequences of docs/architecture.md#strategies,
//! with a named failure point at every step (`crate::failpoint`; the crash matrix arms them).

use std::time::Instant;

use crate::model::AuditState;
use crate::plan::Decision;
use crate::report::UnitOutcome;
use crate::store::StoreError;

use super::attempt::{Attempt, Written};
use super::failure::{Tried, UnitFailure};
use super::transaction::{Commit, Purpose, TxRoute, UnitTransaction, confirm_lease, failure};

/// The steps of a transactional try that carry a failure point.
#[derive(Clone, Copy)]
enum Step {
    BeforeExecute,
    AfterStarted,
    AfterExecute,
    AfterRollback,
    AfterCommit,
    AfterApplied,
}

/// Hits the failure point of `step` on `route`, where that strategy has one.
fn point(route: TxRoute<'_>, step: Step) {
    match (route, step) {
        (TxRoute::Shared, Step::BeforeExecute) => {
            crate::failpoint!("shared.before_execute");
        }
        (TxRoute::Shared, Step::AfterExecute) => {
            crate::failpoint!("shared.after_execute");
        }
        (TxRoute::Shared, Step::AfterCommit) => {
            crate::failpoint!("shared.after_commit");
        }
        (TxRoute::Shared, Step::AfterRollback) => {
            crate::failpoint!("shared.after_rollback");
        }
        (TxRoute::Separate(_), Step::AfterStarted) => {
            crate::failpoint!("separate.after_started");
        }
        (TxRoute::Separate(_), Step::AfterExecute) => {
            crate::failpoint!("separate.after_execute");
        }
        (TxRoute::Separate(_), Step::AfterCommit) => {
            crate::failpoint!("separate.after_commit");
        }
        (TxRoute::Separate(_), Step::AfterApplied) => {
            crate::failpoint!("separate.after_applied");
        }
        (TxRoute::Separate(_), Step::AfterRollback) => {
            crate::failpoint!("separate.after_rollback");
        }
        _ => {}
    }
}

/// Applies the unit of `attempt` with its strategy.
pub(super) async fn apply(attempt: &Attempt<'_>) -> Tried<UnitOutcome> {
    match attempt.unit.route.transactional() {
        Some(route) => apply_transactional(attempt, route).await,
        None => apply_non_tx(attempt).await,
    }
}

/// `TX_SHARED`: execute and insert `APPLIED` in one transaction on the audit store's database; on
/// error roll back and insert `FAILED` on its own (the rollback method is not called: the
/// database undid the change).
///
/// `TX_SEPARATE`: insert `STARTED`; in the target's transaction (opened with an open marker)
/// execute, commit with the committed marker; insert `APPLIED`; remove the marker. On error roll
/// back and insert `FAILED`. A unit whose last try is in doubt is first judged by its marker.
async fn apply_transactional(attempt: &Attempt<'_>, route: TxRoute<'_>) -> Tried<UnitOutcome> {
    if let TxRoute::Separate(target) = route {
        if attempt.unit.decision == Decision::ConsultMarker
            && let Some(judged) = super::separate::judge_by_marker(attempt, target).await
        {
            return judged;
        }
        if let Err(not_started) = record_started(attempt).await {
            return not_started;
        }
        point(route, Step::AfterStarted);
    }
    let started = Instant::now();
    let transaction = match UnitTransaction::open(attempt, route, Purpose::Apply).await {
        Ok(transaction) => transaction,
        Err(failure) => return failed(attempt, None, failure).await,
    };
    point(route, Step::BeforeExecute);
    let ran = transaction
        .run(attempt, &attempt.unit.unit.execution, Purpose::Apply)
        .await;
    let execution_ms = Some(started.elapsed().as_millis() as i64);
    let transaction = match ran {
        Ok(transaction) => transaction,
        Err(failure) => {
            point(route, Step::AfterRollback);
            return failed_on(attempt, route, execution_ms, failure).await;
        }
    };
    point(route, Step::AfterExecute);
    if let Some(failure) = confirm_lease(transaction.is_separate(), attempt, Purpose::Apply).await {
        let failure = transaction.roll_back(failure).await;
        return failed_on(attempt, route, execution_ms, failure).await;
    }
    match transaction
        .commit(attempt, Purpose::Apply, execution_ms)
        .await
    {
        Commit::NotCommitted(failure) => failed_on(attempt, route, execution_ms, failure).await,
        Commit::Unknown(failure) => in_doubt(attempt, failure),
        Commit::Done { recorded: true } => {
            point(route, Step::AfterCommit);
            tracing::info!(change_id = attempt.id(), "applied");
            Tried::ok(UnitOutcome::Applied)
        }
        Commit::Done { recorded: false } => {
            point(route, Step::AfterCommit);
            let applied = attempt.entry(AuditState::Applied, execution_ms, None);
            // The change is committed and its marker says so: if APPLIED is not recorded, the
            // next run records it without running the unit again. Writing FAILED would be a lie.
            const KEPT: &str = "the change committed on the target but APPLIED could not be recorded; the marker keeps the outcome and the next run records it";
            match attempt.append_known(&applied, "separate.applied").await {
                Written::Yes => {}
                Written::No(error) => {
                    return Tried::failed(UnitOutcome::Failed, failure(KEPT, error));
                }
                Written::Unknown(error) => return in_doubt(attempt, failure(KEPT, error)),
            }
            point(route, Step::AfterApplied);
            if let TxRoute::Separate(target) = route {
                super::separate::remove_marker(attempt, target).await;
            }
            tracing::info!(change_id = attempt.id(), "applied");
            Tried::ok(UnitOutcome::Applied)
        }
    }
}

/// Records a transactional try that did not commit: `FAILED`, and on a separate target whose
/// open marker outlived the rollback, `ROLLBACK_FAILED` too.
async fn failed_on(
    attempt: &Attempt<'_>,
    route: TxRoute<'_>,
    execution_ms: Option<i64>,
    failure: UnitFailure,
) -> Tried<UnitOutcome> {
    match route {
        TxRoute::Shared => failed(attempt, execution_ms, failure).await,
        TxRoute::Separate(target) => {
            super::separate::record_failure(attempt, target, execution_ms, failure).await
        }
    }
}

/// A try whose outcome is unknown: nothing more is written, the run stops.
fn in_doubt(attempt: &Attempt<'_>, failure: UnitFailure) -> Tried<UnitOutcome> {
    tracing::error!(change_id = attempt.id(), error = %failure, "change unit in doubt");
    Tried::failed(UnitOutcome::InDoubt, failure)
}

/// Inserts `FAILED` with `failure`.
async fn failed(
    attempt: &Attempt<'_>,
    execution_ms: Option<i64>,
    failure: UnitFailure,
) -> Tried<UnitOutcome> {
    let failure = attempt.record_failed(execution_ms, failure).await;
    Tried::failed(UnitOutcome::Failed, failure)
}

/// `NON_TX`: insert `STARTED`, execute, insert `APPLIED`. On error (or when `APPLIED` cannot be
/// written) insert `FAILED`, call the rollback method if there is one, and insert `ROLLED_BACK`
/// or `ROLLBACK_FAILED` (keeping the original error).
async fn apply_non_tx(attempt: &Attempt<'_>) -> Tried<UnitOutcome> {
    if let Err(not_started) = record_started(attempt).await {
        return not_started;
    }
    crate::failpoint!("non_tx.after_started");
    let started = Instant::now();
    let result = attempt.call(&attempt.unit.unit.execution, None).await;
    let execution_ms = Some(started.elapsed().as_millis() as i64);
    let failure = match result {
        Ok(()) => {
            crate::failpoint!("non_tx.after_execute");
            let applied = attempt.entry(AuditState::Applied, execution_ms, None);
            match attempt.append_known(&applied, "non_tx.applied").await {
                Written::Yes => {
                    crate::failpoint!("non_tx.after_applied");
                    tracing::info!(change_id = attempt.id(), "applied");
                    return Tried::ok(UnitOutcome::Applied);
                }
                Written::No(error) => {
                    failure("the change ran but APPLIED could not be recorded", error)
                }
                Written::Unknown(error) => {
                    // APPLIED may be recorded: rolling back now could undo a change the audit
                    // calls applied. STARTED stays, and the next run blocks the unit.
                    return in_doubt(
                        attempt,
                        failure(
                            "the change ran but whether APPLIED was recorded is unknown (the reply was lost and the audit could not be read again); it was not rolled back and nothing more was written: the audit says APPLIED, or STARTED and the next run blocks the unit for a person",
                            error,
                        ),
                    );
                }
            }
        }
        Err(error) => UnitFailure::unit(error),
    };
    if attempt.lease_lost() {
        // The unit may already be in another instance's hands: rolling it back now could undo
        // that instance's work, and nothing could be recorded anyway.
        return Tried::failed(UnitOutcome::Failed, failure);
    }
    tracing::error!(change_id = attempt.id(), error = %failure, "change unit failed");
    let failure = match attempt
        .record(AuditState::Failed, execution_ms, failure, "")
        .await
    {
        Ok(failure) => failure,
        Err(failure) if attempt.unit.unit.rollback.is_some() => {
            // Rollback code runs only after its intent is in the audit: STARTED stays the
            // newest row and the next run blocks the unit for a person, who finds the effect
            // as the execution left it.
            return Tried::failed(
                UnitOutcome::Failed,
                failure.note(format!(
                    "(the rollback was not run, since FAILED is not in the audit; the next run blocks the unit: `flamingock fix {}`)",
                    attempt.id()
                )),
            );
        }
        Err(failure) => failure,
    };
    crate::failpoint!("non_tx.after_failed");
    let Some(rollback) = &attempt.unit.unit.rollback else {
        return Tried::failed(UnitOutcome::Failed, failure);
    };
    if attempt.lease_lost() {
        return Tried::failed(UnitOutcome::Failed, failure);
    }
    let rollback_result = attempt.call(rollback, None).await;
    crate::failpoint!("non_tx.after_rollback");
    let (state, outcome, failure) = match rollback_result {
        Ok(()) => (AuditState::RolledBack, UnitOutcome::RolledBack, failure),
        Err(error) => (
            AuditState::RollbackFailed,
            UnitOutcome::RollbackFailed,
            failure.note(format!(
                "rollback failed: {}",
                crate::model::error_chain(error.as_ref())
            )),
        ),
    };
    tracing::warn!(change_id = attempt.id(), state = %state, "rolled back after failure");
    let failure = attempt
        .record(
            state,
            execution_ms,
            failure,
            "; the audit still says FAILED",
        )
        .await
        .unwrap_or_else(|failure| failure);
    Tried::failed(outcome, failure)
}

/// Records the try's intent, its `STARTED` row. A write whose reply was lost (every retry's
/// too) is looked up in the audit: a row found there is as good as one whose reply arrived, and
/// the unit runs; a row not found, or an audit that cannot be read, means the unit is not run.
async fn record_started(attempt: &Attempt<'_>) -> Result<(), Tried<UnitOutcome>> {
    let started_row = attempt.entry(AuditState::Started, None, None);
    match attempt.append(&started_row).await {
        Ok(()) => Ok(()),
        Err(error @ StoreError::OutcomeUnknown { .. }) => {
            match attempt.find_out(AuditState::Started, Some(error)).await {
                Written::Yes => lease_still_ours(attempt)
                    .await
                    .map_err(|error| not_started(attempt, error)),
                Written::No(error) | Written::Unknown(error) => Err(not_started(
                    attempt,
                    error.expect("find_out hands back the error it was given"),
                )),
            }
        }
        Err(error) => Err(not_started(attempt, error)),
    }
}

/// After a write found in the audit only by looking (its replies were lost, the retries took
/// their time): the lease must still be ours before the code it announced runs, since finding
/// the row proves only that the lease was held when one try landed. Not ours: the row stays,
/// nothing runs, and the next run judges the unit as after a crash before its execution.
pub(super) async fn lease_still_ours(attempt: &Attempt<'_>) -> Result<(), StoreError> {
    match attempt.lease {
        Some(lease) if !lease.may_start_unit().await => Err(StoreError::LockLost {
            key: lease.fence.key.clone(),
            owner: lease.fence.owner.clone(),
        }),
        _ => Ok(()),
    }
}

/// The STARTED row could not be recorded: nothing ran (the unit is never started without it). If
/// the write's reply was lost it may be there all the same; the next run then judges the unit as
/// after a crash before its execution (a non-transactional one blocks for a person).
fn not_started(attempt: &Attempt<'_>, error: StoreError) -> Tried<UnitOutcome> {
    let failure = if matches!(error, StoreError::OutcomeUnknown { .. }) {
        UnitFailure::at(
            format!(
                "could not confirm that STARTED was recorded (its reply was lost), so the unit was not run; if the row was written after all, the next run judges the unit as interrupted: a non-transactional one blocks, and `flamingock fix {} --rolled-back` records that it never ran",
                attempt.id()
            ),
            error,
        )
    } else {
        UnitFailure::at("could not record STARTED, so the unit was not run", error)
    };
    Tried::failed(UnitOutcome::Failed, failure)
}
