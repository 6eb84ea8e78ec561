//! Applying one unit with its strategy: the write sequences of DESIGN §5.

use super::{Engine, Lease, PlannedUnit, call, describe_error};
use crate::inject::ChangeContext;
use crate::lock::Fence;
use crate::model::AuditEntry;
use crate::model::AuditState;
use crate::plan::Decision;
use crate::report::UnitOutcome;
use crate::store::StoreError;

/// What applying a unit came to, and the error text when it failed.
pub(super) type Applied = (UnitOutcome, Option<String>);

/// Why a `TX_SEPARATE` try whose open marker is visible cannot simply be tried again.
const PARTLY_COMMITTED: &str = "the target committed part of the change on its own before the try ended (MySQL and MariaDB commit before every DDL statement, even inside a transaction), so part of it may be in place and rolling back could not undo it";

impl Engine {
    /// `TX_SHARED`: execute and insert `APPLIED` in one transaction on the audit store's database.
    /// On error the transaction is rolled back and `FAILED` is inserted on its own; the rollback
    /// method is not called, the database undid the change.
    pub(super) async fn apply_shared(
        &self,
        unit: &PlannedUnit,
        context: &ChangeContext,
        lease: Option<&Lease>,
    ) -> Applied {
        let started = std::time::Instant::now();
        let mut transaction = match self.store.begin_shared().await {
            Ok(transaction) => transaction,
            Err(error) => {
                let message = format!(
                    "could not open a transaction: {}",
                    describe_error(&error.into())
                );
                return self
                    .record_failure(unit, context, lease, None, message)
                    .await;
            }
        };
        crate::failpoint!("shared.before_execute");
        let result = call(
            &unit.unit.execution,
            self.scope(unit, context, Some(transaction.as_any_mut())),
        )
        .await;
        let execution_ms = Some(started.elapsed().as_millis() as i64);
        match result {
            Ok(()) => {
                crate::failpoint!("shared.after_execute");
                let applied = self.entry(unit, context, AuditState::Applied, execution_ms, None);
                match self.commit_shared(transaction, &applied, lease).await {
                    Ok(()) => {
                        crate::failpoint!("shared.after_commit");
                        tracing::info!(change_id = unit.unit.id, "applied");
                        (UnitOutcome::Applied, None)
                    }
                    Err(error) => {
                        let message = format!(
                            "the change ran but its transaction did not commit, so nothing of it remains: {}",
                            describe_error(&error.into())
                        );
                        self.record_failure(unit, context, lease, execution_ms, message)
                            .await
                    }
                }
            }
            Err(error) => {
                let mut message = describe_error(&error);
                if let Err(rollback) = transaction.rollback().await {
                    // Dropping the connection rolls back too; say so rather than fail twice.
                    message.push_str(&format!(
                        "\n(rolling back the transaction also failed: {rollback}; the connection was discarded)"
                    ));
                }
                crate::failpoint!("shared.after_rollback");
                self.record_failure(unit, context, lease, execution_ms, message)
                    .await
            }
        }
    }

    /// `NON_TX`: insert `STARTED`, execute, insert `APPLIED`. On error (or when `APPLIED` cannot be
    /// written) insert `FAILED`, call the rollback method if there is one, and insert
    /// `ROLLED_BACK` or `ROLLBACK_FAILED` (keeping the original error).
    pub(super) async fn apply_non_tx(
        &self,
        unit: &PlannedUnit,
        context: &ChangeContext,
        lease: Option<&Lease>,
    ) -> Applied {
        let started_row = self.entry(unit, context, AuditState::Started, None, None);
        if let Err(error) = self.append(&started_row, lease).await {
            // Nothing ran: the unit was not started without its STARTED row.
            let message = format!(
                "could not record STARTED, so the unit was not run: {}",
                describe_error(&error.into())
            );
            return (UnitOutcome::Failed, Some(message));
        }
        crate::failpoint!("non_tx.after_started");
        let started = std::time::Instant::now();
        let result = call(&unit.unit.execution, self.scope(unit, context, None)).await;
        let execution_ms = Some(started.elapsed().as_millis() as i64);
        let message = match result {
            Ok(()) => {
                crate::failpoint!("non_tx.after_execute");
                let applied = self.entry(unit, context, AuditState::Applied, execution_ms, None);
                match self.append(&applied, lease).await {
                    Ok(()) => {
                        crate::failpoint!("non_tx.after_applied");
                        tracing::info!(change_id = unit.unit.id, "applied");
                        return (UnitOutcome::Applied, None);
                    }
                    Err(error) => format!(
                        "the change ran but APPLIED could not be recorded: {}",
                        describe_error(&error.into())
                    ),
                }
            }
            Err(error) => describe_error(&error),
        };
        if lease.is_some_and(Lease::is_lost) {
            // The unit may already be in another instance's hands: rolling it back now could undo
            // that instance's work, and nothing could be recorded anyway.
            return (UnitOutcome::Failed, Some(message));
        }
        let failed = self
            .record_failure(unit, context, lease, execution_ms, message.clone())
            .await;
        crate::failpoint!("non_tx.after_failed");
        let Some(rollback) = &unit.unit.rollback else {
            return failed;
        };
        if lease.is_some_and(Lease::is_lost) {
            return failed;
        }
        let rollback_result = call(rollback, self.scope(unit, context, None)).await;
        crate::failpoint!("non_tx.after_rollback");
        let (state, outcome, message) = match rollback_result {
            Ok(()) => (AuditState::RolledBack, UnitOutcome::RolledBack, message),
            Err(error) => (
                AuditState::RollbackFailed,
                UnitOutcome::RollbackFailed,
                format!("{message}\nrollback failed: {}", describe_error(&error)),
            ),
        };
        tracing::warn!(change_id = unit.unit.id, state = %state, "rolled back after failure");
        let row = self.entry(unit, context, state, execution_ms, Some(message.clone()));
        let message = self
            .append_noting(&row, lease, message, "; the audit still says FAILED")
            .await
            .unwrap_or_else(|message| message);
        (outcome, Some(message))
    }

    /// `TX_SEPARATE`: insert `STARTED`; in the target's transaction execute and insert a marker,
    /// commit; insert `APPLIED`; remove the marker. On error roll back and insert `FAILED`.
    ///
    /// A unit whose last try is in doubt is first checked against its marker: a marker carrying
    /// that try's execution id proves the change committed, so `APPLIED` is recorded and the unit
    /// is not run again. An older marker proves nothing; the new commit replaces it.
    pub(super) async fn apply_separate(
        &self,
        unit: &PlannedUnit,
        context: &ChangeContext,
        lease: Option<&Lease>,
    ) -> Applied {
        let target = unit
            .target
            .as_ref()
            .and_then(|t| t.transactional())
            .expect("TX_SEPARATE is only planned for transactional targets");
        if unit.decision == Decision::ConsultMarker {
            let last_try = unit.current.as_ref().map(|s| s.execution_id.as_str());
            match target.marker(unit.unit.id).await {
                Err(error) => {
                    let message = format!(
                        "could not read the marker that tells whether the last try committed; nothing was run: {}",
                        describe_error(&error.into())
                    );
                    return (UnitOutcome::Failed, Some(message));
                }
                Ok(Some(marker)) if Some(marker.execution_id.as_str()) == last_try => {
                    return if marker.committed {
                        self.record_recovered(unit, context, lease, target, marker.execution_id)
                            .await
                    } else {
                        self.record_interrupted(unit, context, lease, target, marker.execution_id)
                            .await
                    };
                }
                Ok(_) => {}
            }
        }
        let started_row = self.entry(unit, context, AuditState::Started, None, None);
        if let Err(error) = self.append(&started_row, lease).await {
            let message = format!(
                "could not record STARTED, so the unit was not run: {}",
                describe_error(&error.into())
            );
            return (UnitOutcome::Failed, Some(message));
        }
        crate::failpoint!("separate.after_started");
        let started = std::time::Instant::now();
        let mut transaction = match target
            .begin_apply(unit.unit.id, &context.execution_id)
            .await
        {
            Ok(transaction) => transaction,
            Err(error) => {
                let message = format!(
                    "could not open a transaction: {}",
                    describe_error(&error.into())
                );
                return self
                    .record_failure(unit, context, lease, None, message)
                    .await;
            }
        };
        let result = call(
            &unit.unit.execution,
            self.scope(unit, context, Some(transaction.as_any_mut())),
        )
        .await;
        let execution_ms = Some(started.elapsed().as_millis() as i64);
        if let Err(error) = result {
            let mut message = describe_error(&error);
            if let Err(rollback) = transaction.rollback().await {
                message.push_str(&format!(
                    "\n(rolling back the target's transaction also failed: {rollback}; the connection was discarded)"
                ));
            }
            crate::failpoint!("separate.after_rollback");
            return self
                .record_separate_failure(unit, context, lease, target, execution_ms, message)
                .await;
        }
        crate::failpoint!("separate.after_execute");
        if let Some(held) = lease {
            // The target's commit is outside the audit store's fence: confirm the lease first, so
            // that an instance that lost it (paused, cut off) never commits a change another
            // instance may be applying too.
            let unconfirmed = match held.confirm().await {
                Ok(true) => None,
                Ok(false) => Some(
                    "this runner lost the lock before the target's transaction committed"
                        .to_owned(),
                ),
                Err(error) => Some(format!(
                    "could not confirm the lock's lease before the target's transaction committed: {}",
                    describe_error(&error.into())
                )),
            };
            if let Some(why) = unconfirmed {
                let mut message = format!("{why}; the change was rolled back");
                if let Err(rollback) = transaction.rollback().await {
                    message.push_str(&format!(
                        "\n(rolling back the target's transaction also failed: {rollback}; the connection was discarded)"
                    ));
                }
                return self
                    .record_separate_failure(unit, context, lease, target, execution_ms, message)
                    .await;
            }
        }
        if let Err(error) = transaction
            .commit_with_marker(unit.unit.id, &context.execution_id)
            .await
        {
            let message = format!(
                "the change ran but the target's transaction did not commit: {}",
                describe_error(&error.into())
            );
            return self
                .record_separate_failure(unit, context, lease, target, execution_ms, message)
                .await;
        }
        crate::failpoint!("separate.after_commit");
        let applied = self.entry(unit, context, AuditState::Applied, execution_ms, None);
        if let Err(error) = self.append(&applied, lease).await {
            // The change is committed and its marker says so: the next run records APPLIED
            // without running it again. Writing FAILED now would be a lie.
            let message = format!(
                "the change committed on the target but APPLIED could not be recorded ({}); the marker keeps the outcome and the next run records it",
                describe_error(&error.into())
            );
            return (UnitOutcome::Failed, Some(message));
        }
        crate::failpoint!("separate.after_applied");
        self.remove_marker(unit, target).await;
        tracing::info!(change_id = unit.unit.id, "applied");
        (UnitOutcome::Applied, None)
    }

    /// Records a failed `TX_SEPARATE` try: `FAILED`, and when the target committed part of it on
    /// its own (the try's open marker outlived the rollback) `ROLLBACK_FAILED` too, so that the
    /// next run stops for a person instead of applying a half-applied change again.
    async fn record_separate_failure(
        &self,
        unit: &PlannedUnit,
        context: &ChangeContext,
        lease: Option<&Lease>,
        target: &dyn crate::target::TransactionalTarget,
        execution_ms: Option<i64>,
        message: String,
    ) -> Applied {
        let partly_committed = matches!(
            target.marker(unit.unit.id).await,
            Ok(Some(marker)) if !marker.committed && marker.execution_id == context.execution_id
        );
        let failed = self
            .record_failure(unit, context, lease, execution_ms, message.clone())
            .await;
        if !partly_committed || lease.is_some_and(Lease::is_lost) {
            return failed;
        }
        let message = format!("{message}\n{PARTLY_COMMITTED}");
        self.record_not_undone(unit, context, lease, target, execution_ms, message)
            .await
    }

    /// Records `ROLLBACK_FAILED` for a unit whose open marker shows that its last try, cut short
    /// by a crash, had part of its change committed by the target on its own. It is not run again.
    async fn record_interrupted(
        &self,
        unit: &PlannedUnit,
        context: &ChangeContext,
        lease: Option<&Lease>,
        target: &dyn crate::target::TransactionalTarget,
        marker: String,
    ) -> Applied {
        let message = format!(
            "the try of run {marker} was interrupted, and it was not run again: {PARTLY_COMMITTED}"
        );
        self.record_not_undone(unit, context, lease, target, None, message)
            .await
    }

    /// Appends `ROLLBACK_FAILED`: the change is partly in place and nothing can undo it. Once that
    /// is recorded the open marker has told its story and is removed.
    async fn record_not_undone(
        &self,
        unit: &PlannedUnit,
        context: &ChangeContext,
        lease: Option<&Lease>,
        target: &dyn crate::target::TransactionalTarget,
        execution_ms: Option<i64>,
        message: String,
    ) -> Applied {
        tracing::error!(change_id = unit.unit.id, error = %message, "change unit partly committed");
        let row = self.entry(
            unit,
            context,
            AuditState::RollbackFailed,
            execution_ms,
            Some(message.clone()),
        );
        let recorded = self
            .append_noting(
                &row,
                lease,
                message,
                "; the open marker stays, so the next run records it",
            )
            .await;
        if recorded.is_ok() {
            self.remove_marker(unit, target).await;
        }
        (
            UnitOutcome::RollbackFailed,
            Some(recorded.unwrap_or_else(|message| message)),
        )
    }

    /// Records `APPLIED` for a unit whose marker proves its last try committed.
    async fn record_recovered(
        &self,
        unit: &PlannedUnit,
        context: &ChangeContext,
        lease: Option<&Lease>,
        target: &dyn crate::target::TransactionalTarget,
        marker: String,
    ) -> Applied {
        let mut row = self.entry(unit, context, AuditState::Applied, None, None);
        let metadata = row
            .metadata
            .get_or_insert_with(|| serde_json::Value::Object(Default::default()));
        if let Some(object) = metadata.as_object_mut() {
            object.insert("recovered_execution_id".into(), marker.into());
        }
        if let Err(error) = self.append(&row, lease).await {
            let message = format!(
                "the last try committed (its marker is in the target) but APPLIED could not be recorded: {}",
                describe_error(&error.into())
            );
            return (UnitOutcome::Failed, Some(message));
        }
        tracing::info!(
            change_id = unit.unit.id,
            "recovered from its marker: applied, not run again"
        );
        self.remove_marker(unit, target).await;
        (UnitOutcome::RecoveredApplied, None)
    }

    /// Removes a marker once `APPLIED` is recorded. Failing here loses nothing: a leftover marker
    /// of an applied unit is never consulted, and a later commit replaces it.
    async fn remove_marker(
        &self,
        unit: &PlannedUnit,
        target: &dyn crate::target::TransactionalTarget,
    ) {
        if let Err(error) = target.remove_marker(unit.unit.id).await {
            tracing::warn!(change_id = unit.unit.id, %error, "could not remove the marker; it is harmless and will be replaced");
        }
    }

    /// Inserts `FAILED` with `message`; when even that fails, says so in the returned message.
    async fn record_failure(
        &self,
        unit: &PlannedUnit,
        context: &ChangeContext,
        lease: Option<&Lease>,
        execution_ms: Option<i64>,
        message: String,
    ) -> Applied {
        tracing::error!(change_id = unit.unit.id, error = %message, "change unit failed");
        let row = self.entry(
            unit,
            context,
            AuditState::Failed,
            execution_ms,
            Some(message.clone()),
        );
        let message = self
            .append_noting(&row, lease, message, "")
            .await
            .unwrap_or_else(|message| message);
        (UnitOutcome::Failed, Some(message))
    }

    /// Appends a failure's row (its `error` is `message`). `Ok(message)` once recorded;
    /// `Err(message)` with a note that recording failed too, then `consequence`, when it was not.
    pub(super) async fn append_noting(
        &self,
        row: &AuditEntry,
        lease: Option<&Lease>,
        message: String,
        consequence: &str,
    ) -> Result<String, String> {
        match self.append(row, lease).await {
            Ok(()) => Ok(message),
            Err(error) => Err(format!(
                "{message}\n(recording {} failed too: {}{consequence})",
                row.state,
                describe_error(&error.into())
            )),
        }
    }

    /// Appends a row, fenced by the lease when there is one; a refused write marks it lost.
    pub(super) async fn append(
        &self,
        row: &AuditEntry,
        lease: Option<&Lease>,
    ) -> Result<(), StoreError> {
        let result = self.store.append(row, fence(lease)).await;
        observe(lease, &result);
        result
    }

    /// Inserts the `APPLIED` row in the unit's transaction and commits, fenced by the lease.
    pub(super) async fn commit_shared(
        &self,
        transaction: Box<dyn crate::store::SharedTransaction>,
        row: &AuditEntry,
        lease: Option<&Lease>,
    ) -> Result<(), StoreError> {
        let result = transaction.commit_with(row, fence(lease)).await;
        observe(lease, &result);
        result
    }
}

fn fence(lease: Option<&Lease>) -> Option<&Fence> {
    lease.map(|lease| &lease.fence)
}

fn observe(lease: Option<&Lease>, result: &Result<(), StoreError>) {
    if let (Some(lease), Err(error)) = (lease, result) {
        lease.observe(error);
    }
}
