//! The transaction of one unit, whether on the audit store's database (`TX_SHARED`) or on
//! another database (`TX_SEPARATE`): opened, handed to the unit, then rolled back or committed
//! together with what makes its outcome known (the audit row, or the marker). Apply and undo
//! both go through here, so each of these steps is written once.

use std::any::Any;

use crate::model::{AuditState, UnitMethod};
use crate::store::{OutcomeUnknown, SharedTransaction};
use crate::target::{TargetTransaction, TransactionalTarget};

use super::attempt::{Attempt, Written};
use super::failure::UnitFailure;
use super::planned::Route;

/// What the transaction does for the unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Purpose {
    /// Applies the change: commits with `APPLIED` (shared) or with the committed marker (separate).
    Apply,
    /// Rolls the change back: commits with `ROLLED_BACK` (shared) or removing the marker (separate).
    Undo,
}

/// Where a transactional unit's transaction is opened.
#[derive(Clone, Copy)]
pub(super) enum TxRoute<'a> {
    /// The audit store's database (`TX_SHARED`).
    Shared,
    /// Another database (`TX_SEPARATE`), with its markers.
    Separate(&'a dyn TransactionalTarget),
}

impl Route {
    /// Where the unit's transaction is opened; `None` for a unit that runs without one.
    pub(super) fn transactional(&self) -> Option<TxRoute<'_>> {
        match self {
            Route::Shared(_) => Some(TxRoute::Shared),
            Route::Separate(target) => Some(TxRoute::Separate(target.transactional())),
            Route::NonTransactional(_) => None,
        }
    }
}

/// An open transaction of one unit.
pub(super) enum UnitTransaction<'t> {
    /// On the audit store's database: its audit row commits with it.
    Shared(Box<dyn SharedTransaction>),
    /// On the unit's target: its marker commits with it, the audit row comes after.
    Separate(Box<dyn TargetTransaction>, &'t dyn TransactionalTarget),
}

/// How a commit ended.
pub(super) enum Commit {
    /// Committed. `recorded`: the audit row is in place too (shared); otherwise the caller still
    /// appends it (separate).
    Done { recorded: bool },
    /// Not committed, with why: nothing of the transaction remains.
    NotCommitted(UnitFailure),
    /// Maybe committed, maybe not, and the evidence could not be read: nothing more may be
    /// written for this unit.
    Unknown(UnitFailure),
}

/// A failure at `step`, with the write's error as its cause when there was one.
pub(super) fn failure(
    step: impl Into<String>,
    error: Option<impl Into<crate::inject::BoxError>>,
) -> UnitFailure {
    match error {
        Some(error) => UnitFailure::at(step, error),
        None => UnitFailure::found(step),
    }
}

impl<'t> UnitTransaction<'t> {
    /// Opens the transaction `purpose` needs on `route`.
    pub(super) async fn open(
        attempt: &Attempt<'_>,
        route: TxRoute<'t>,
        purpose: Purpose,
    ) -> Result<Self, UnitFailure> {
        let opened = match route {
            TxRoute::Shared => attempt
                .engine
                .store
                .begin_shared()
                .await
                .map(Self::Shared)
                .map_err(Into::into),
            TxRoute::Separate(target) => match purpose {
                Purpose::Apply => {
                    target
                        .begin_apply(attempt.id(), &attempt.context.execution_id)
                        .await
                }
                Purpose::Undo => target.begin().await,
            }
            .map(|transaction| Self::Separate(transaction, target))
            .map_err(Into::into),
        };
        opened.map_err(|error: crate::inject::BoxError| {
            UnitFailure::at(
                match purpose {
                    Purpose::Apply => "could not open a transaction",
                    Purpose::Undo => "could not open a transaction, so nothing was rolled back",
                },
                error,
            )
        })
    }

    fn as_any_mut(&mut self) -> &mut (dyn Any + Send) {
        match self {
            Self::Shared(transaction) => transaction.as_any_mut(),
            Self::Separate(transaction, _) => transaction.as_any_mut(),
        }
    }

    /// Calls `method` with this transaction. When it fails, the transaction is rolled back and
    /// the failure says so (and whether even the rollback failed): nothing of it remains.
    pub(super) async fn run(
        mut self,
        attempt: &Attempt<'_>,
        method: &UnitMethod,
        purpose: Purpose,
    ) -> Result<Self, UnitFailure> {
        match attempt.call(method, Some(self.as_any_mut())).await {
            Ok(()) => Ok(self),
            Err(error) => {
                let failure = UnitFailure::unit(error);
                let failure = match purpose {
                    Purpose::Apply => failure,
                    Purpose::Undo => failure.note(format!(
                        "(the {} was rolled back, so the unit is still applied)",
                        self.noun()
                    )),
                };
                Err(self.roll_back(failure).await)
            }
        }
    }

    /// Rolls back, adding to `failure` when even that fails (dropping the connection rolls back
    /// too, so that is said rather than failed on twice).
    /// Whether the transaction is a separate target's (whose commit no audit fence covers).
    pub(super) fn is_separate(&self) -> bool {
        matches!(self, Self::Separate(..))
    }

    pub(super) async fn roll_back(self, failure: UnitFailure) -> UnitFailure {
        let noun = self.noun();
        let rolled_back = match self {
            Self::Shared(transaction) => transaction.rollback().await.map_err(|e| e.to_string()),
            Self::Separate(transaction, _) => {
                transaction.rollback().await.map_err(|e| e.to_string())
            }
        };
        match rolled_back {
            Ok(()) => failure,
            Err(error) => failure.note(format!(
                "(rolling back the {noun} also failed: {error}; the connection was discarded)"
            )),
        }
    }

    /// Commits with what records the outcome (see [`Purpose`]). Every commit of a unit's
    /// transaction goes through here: the one place that learns whether it happened. A commit
    /// that reports an error may still have happened (its reply was lost): the evidence (the
    /// audit row, or the marker) is read again before anything else is written, and when it
    /// cannot be read the outcome stays [`Commit::Unknown`].
    pub(super) async fn commit(
        self,
        attempt: &Attempt<'_>,
        purpose: Purpose,
        execution_ms: Option<i64>,
    ) -> Commit {
        let id = attempt.id();
        match (self, purpose) {
            (Self::Shared(transaction), purpose) => {
                let (state, point) = match purpose {
                    Purpose::Apply => (AuditState::Applied, "shared.commit"),
                    Purpose::Undo => (AuditState::RolledBack, "undo.shared.commit"),
                };
                let row = attempt.entry(state, execution_ms, None);
                let result = transaction.commit_with(&row, attempt.fence()).await;
                attempt.observe(&result);
                let written = match result {
                    Ok(()) if !crate::failpoint::reply_lost(point) => Written::Yes,
                    Ok(()) => attempt.find_out(state, None).await,
                    Err(error) => attempt.find_out(state, Some(error)).await,
                };
                let (not_committed, unknown) = match purpose {
                    Purpose::Apply => (
                        "the change ran but its transaction did not commit, so nothing of it remains",
                        "the change ran and its transaction was sent to commit, but whether it committed is unknown (the reply was lost and the audit could not be read again); nothing more was written: the next run finds APPLIED if it committed and applies the unit if it did not",
                    ),
                    Purpose::Undo => (
                        "the rollback ran but its transaction did not commit, so the unit is still applied",
                        "the rollback ran and its transaction was sent to commit, but whether it committed is unknown (the reply was lost and the audit could not be read again); nothing more was written: the audit says ROLLED_BACK if it committed, APPLIED if not",
                    ),
                };
                match written {
                    Written::Yes => Commit::Done { recorded: true },
                    Written::No(error) => Commit::NotCommitted(failure(not_committed, error)),
                    Written::Unknown(error) => Commit::Unknown(failure(unknown, error)),
                }
            }
            (Self::Separate(transaction, target), Purpose::Apply) => {
                let result = transaction
                    .commit_with_marker(id, &attempt.context.execution_id)
                    .await;
                let error = match result {
                    Ok(()) if !crate::failpoint::reply_lost("separate.commit") => {
                        return Commit::Done { recorded: false };
                    }
                    Ok(()) => None,
                    Err(error) => Some(error),
                };
                // A commit the target could not settle may still land: a marker that is not there
                // yet tells nothing then.
                let settled = !error
                    .as_ref()
                    .is_some_and(|e| e.source.is::<OutcomeUnknown>());
                match super::separate::committed_by_marker(attempt, target).await {
                    Some(true) => Commit::Done { recorded: false },
                    Some(false) if !settled => Commit::Unknown(failure(
                        "the change ran and the target's transaction was sent to commit, but whether it committed is unknown (the reply was lost and the target could not tell); nothing more was written: the next run asks the marker",
                        error,
                    )),
                    Some(false) => Commit::NotCommitted(failure(
                        "the change ran but the target's transaction did not commit",
                        error,
                    )),
                    None => Commit::Unknown(failure(
                        "the change ran and the target's transaction was sent to commit, but whether it committed is unknown (the reply was lost and the marker could not be read); nothing more was written: the next run asks the marker",
                        error,
                    )),
                }
            }
            (Self::Separate(transaction, _), Purpose::Undo) => {
                let result = transaction.commit_removing_marker(id).await;
                let error = match result {
                    Ok(()) if !crate::failpoint::reply_lost("undo.separate.commit") => {
                        return Commit::Done { recorded: false };
                    }
                    Ok(()) => None,
                    Err(error) => Some(error),
                };
                // Nothing in the target tells a committed rollback from one that did not commit
                // (the marker is usually gone since the unit applied): the ROLLBACK_STARTED row
                // written before stays the unit's newest, and blocks it for a person.
                Commit::Unknown(failure(
                    format!(
                        "the rollback ran but its commit on target \"{}\" did not confirm, so whether the rollback is in place is unknown; ROLLBACK_STARTED stays the unit's newest row and blocks it: check the target, then run `flamingock fix {id} --applied` or `--rolled-back`",
                        attempt.unit.unit.target_name()
                    ),
                    error,
                ))
            }
        }
    }

    fn noun(&self) -> &'static str {
        match self {
            Self::Shared(_) => "transaction",
            Self::Separate(..) => "target's transaction",
        }
    }
}

/// Before a `TX_SEPARATE` commit (`separate`), which no audit fence covers: confirms the lease,
/// so that an instance that lost it (paused, cut off) never commits a change, or the rollback of
/// one, that another instance may be working on too. The failure to roll back with, if not.
/// (It takes no borrow of the transaction: that is `Send`, not `Sync`, and this awaits.)
pub(super) async fn confirm_lease(
    separate: bool,
    attempt: &Attempt<'_>,
    purpose: Purpose,
) -> Option<UnitFailure> {
    let (true, Some(lease)) = (separate, attempt.lease) else {
        return None;
    };
    let what = match purpose {
        Purpose::Apply => "the change was rolled back",
        Purpose::Undo => "the rollback was not committed and the unit is still applied",
    };
    match lease.confirm().await {
        Ok(true) => None,
        Ok(false) => Some(UnitFailure::found(format!(
            "this runner lost the lock before the target's transaction committed; {what}"
        ))),
        Err(error) => Some(UnitFailure::at(
            format!(
                "could not confirm the lock's lease before the target's transaction committed, so {what}"
            ),
            error,
        )),
    }
}
