//! What a `TX_SEPARATE` unit's marker decides: a last try in doubt recorded from its marker
//! instead of being run again, a try that the target committed in part (MySQL's implicit commits)
//! recorded as not undone, and markers removed once their story is told.

use crate::model::{AuditState, metadata_keys};
use crate::report::UnitOutcome;
use crate::target::TransactionalTarget;

use super::attempt::Attempt;
use super::failure::{Tried, UnitFailure};

/// Why a `TX_SEPARATE` try whose open marker is visible cannot simply be tried again.
const PARTLY_COMMITTED: &str = "the target committed part of the change on its own before the try ended (MySQL and MariaDB commit before every DDL statement, even inside a transaction), so part of it may be in place and rolling back could not undo it";

/// Judges a unit whose last try is in doubt by its marker: one carrying that try's execution id
/// proves the change committed (`APPLIED` is recorded, nothing runs) or, when still open, that
/// part of it did. `None`: the marker proves nothing (absent, or an older try's), so the unit is
/// tried again.
pub(super) async fn judge_by_marker(
    attempt: &Attempt<'_>,
    target: &dyn TransactionalTarget,
) -> Option<Tried<UnitOutcome>> {
    let last_try = attempt
        .unit
        .current
        .as_ref()
        .map(|s| s.execution_id.as_str());
    match target.marker(attempt.id()).await {
        Err(error) => Some(Tried::failed(
            UnitOutcome::Failed,
            UnitFailure::at(
                "could not read the marker that tells whether the last try committed; nothing was run",
                error,
            ),
        )),
        Ok(Some(marker)) if Some(marker.execution_id.as_str()) == last_try => {
            Some(if marker.committed {
                record_recovered(attempt, target, marker.execution_id).await
            } else {
                let failure = UnitFailure::found(format!(
                    "the try of run {} was interrupted, and it was not run again: {PARTLY_COMMITTED}",
                    marker.execution_id
                ));
                record_not_undone(attempt, target, None, failure).await
            })
        }
        Ok(_) => None,
    }
}

/// Records a failed try: `FAILED`, and when the target committed part of it on its own (the try's
/// open marker outlived the rollback) `ROLLBACK_FAILED` too, so that the next run stops for a
/// person instead of applying a half-applied change again.
pub(super) async fn record_failure(
    attempt: &Attempt<'_>,
    target: &dyn TransactionalTarget,
    execution_ms: Option<i64>,
    failure: UnitFailure,
) -> Tried<UnitOutcome> {
    let partly_committed = matches!(
        target.marker(attempt.id()).await,
        Ok(Some(marker)) if !marker.committed && marker.execution_id == attempt.context.execution_id
    );
    let failure = attempt.record_failed(execution_ms, failure).await;
    if !partly_committed || attempt.lease_lost() {
        return Tried::failed(UnitOutcome::Failed, failure);
    }
    record_not_undone(
        attempt,
        target,
        execution_ms,
        failure.note(PARTLY_COMMITTED),
    )
    .await
}

/// Appends `ROLLBACK_FAILED`: the change is partly in place and nothing can undo it. Once that is
/// recorded the open marker has told its story and is removed.
async fn record_not_undone(
    attempt: &Attempt<'_>,
    target: &dyn TransactionalTarget,
    execution_ms: Option<i64>,
    failure: UnitFailure,
) -> Tried<UnitOutcome> {
    tracing::error!(change_id = attempt.id(), error = %failure, "change unit partly committed");
    let recorded = attempt
        .record(
            AuditState::RollbackFailed,
            execution_ms,
            failure,
            "; the open marker stays, so the next run records it",
        )
        .await;
    let failure = match recorded {
        Ok(failure) => {
            remove_marker(attempt, target).await;
            failure
        }
        Err(failure) => failure,
    };
    Tried::failed(UnitOutcome::RollbackFailed, failure)
}

/// Records `APPLIED` for a unit whose marker proves its last try committed.
async fn record_recovered(
    attempt: &Attempt<'_>,
    target: &dyn TransactionalTarget,
    marker: String,
) -> Tried<UnitOutcome> {
    let mut row = attempt.entry(AuditState::Applied, None, None);
    // The try that committed ran the code its STARTED row recorded: keep that checksum, so an
    // edit made since is still seen as drift.
    if let Some(recorded) = attempt.recorded_checksum() {
        row.checksum = Some(recorded);
    }
    let metadata = row
        .metadata
        .get_or_insert_with(|| serde_json::Value::Object(Default::default()));
    if let Some(object) = metadata.as_object_mut() {
        object.insert(metadata_keys::RECOVERED_EXECUTION_ID.into(), marker.into());
    }
    if let Err(error) = attempt.append(&row).await {
        return Tried::failed(
            UnitOutcome::Failed,
            UnitFailure::at(
                "the last try committed (its marker is in the target) but APPLIED could not be recorded",
                error,
            ),
        );
    }
    tracing::info!(
        change_id = attempt.id(),
        "recovered from its marker: applied, not run again"
    );
    remove_marker(attempt, target).await;
    Tried::ok(UnitOutcome::RecoveredApplied)
}

/// After the target's commit reported an error (or lost its reply), finds out from the marker
/// whether it happened: `Some(true)` when the marker of this try is there and committed,
/// `Some(false)` when it is not, `None` when the marker cannot be read.
pub(super) async fn committed_by_marker(
    attempt: &Attempt<'_>,
    target: &dyn TransactionalTarget,
) -> Option<bool> {
    let marker =
        super::attempt::read_evidence(attempt.id(), "marker", || target.marker(attempt.id()))
            .await?;
    let committed =
        marker.is_some_and(|m| m.committed && m.execution_id == attempt.context.execution_id);
    tracing::warn!(
        change_id = attempt.id(),
        committed,
        "a commit's reply was lost; the marker tells"
    );
    Some(committed)
}

/// Removes a marker once its outcome is recorded. Failing here loses nothing: a leftover marker of
/// an applied unit is never consulted, and a later commit replaces it.
pub(super) async fn remove_marker(attempt: &Attempt<'_>, target: &dyn TransactionalTarget) {
    if let Err(error) = target.remove_marker(attempt.id()).await {
        tracing::warn!(change_id = attempt.id(), %error, "could not remove the marker; it is harmless and will be replaced");
    }
}
