//! Applying one unit with its strategy: the write sequences of DESIGN §5.

use super::{Engine, PlannedUnit, call, describe_error};
use crate::inject::ChangeContext;
use crate::model::AuditState;
use crate::report::UnitOutcome;

/// What applying a unit came to, and the error text when it failed.
pub(super) type Applied = (UnitOutcome, Option<String>);

impl Engine {
    /// `TX_SHARED`: execute and insert `APPLIED` in one transaction on the audit store's database.
    /// On error the transaction is rolled back and `FAILED` is inserted on its own; the rollback
    /// method is not called, the database undid the change.
    pub(super) async fn apply_shared(&self, unit: &PlannedUnit, context: &ChangeContext) -> Applied {
        let started = std::time::Instant::now();
        let mut transaction = match self.store.begin_shared().await {
            Ok(transaction) => transaction,
            Err(error) => {
                let message = format!("could not open a transaction: {}", describe_error(&error.into()));
                return self.record_failure(unit, context, None, message).await;
            }
        };
        let result = call(
            &unit.unit.execution,
            self.scope(unit, context, Some(transaction.as_any_mut())),
        )
        .await;
        let execution_ms = Some(started.elapsed().as_millis() as i64);
        match result {
            Ok(()) => {
                let applied = self.entry(unit, context, AuditState::Applied, execution_ms, None);
                match transaction.commit_with(&applied).await {
                    Ok(()) => {
                        tracing::info!(change_id = unit.unit.id, "applied");
                        (UnitOutcome::Applied, None)
                    }
                    Err(error) => {
                        let message = format!(
                            "the change ran but its transaction did not commit, so nothing of it remains: {}",
                            describe_error(&error.into())
                        );
                        self.record_failure(unit, context, execution_ms, message).await
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
                self.record_failure(unit, context, execution_ms, message).await
            }
        }
    }

    /// `NON_TX`: insert `STARTED`, execute, insert `APPLIED`. On error (or when `APPLIED` cannot be
    /// written) insert `FAILED`, call the rollback method if there is one, and insert
    /// `ROLLED_BACK` or `ROLLBACK_FAILED` (keeping the original error).
    pub(super) async fn apply_non_tx(&self, unit: &PlannedUnit, context: &ChangeContext) -> Applied {
        let started_row = self.entry(unit, context, AuditState::Started, None, None);
        if let Err(error) = self.store.append(&started_row).await {
            // Nothing ran: the unit was not started without its STARTED row.
            let message = format!(
                "could not record STARTED, so the unit was not run: {}",
                describe_error(&error.into())
            );
            return (UnitOutcome::Failed, Some(message));
        }
        let started = std::time::Instant::now();
        let result = call(&unit.unit.execution, self.scope(unit, context, None)).await;
        let execution_ms = Some(started.elapsed().as_millis() as i64);
        let message = match result {
            Ok(()) => {
                let applied = self.entry(unit, context, AuditState::Applied, execution_ms, None);
                match self.store.append(&applied).await {
                    Ok(()) => {
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
        let failed = self.record_failure(unit, context, execution_ms, message.clone()).await;
        let Some(rollback) = &unit.unit.rollback else {
            return failed;
        };
        let rollback_result = call(rollback, self.scope(unit, context, None)).await;
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
        match self.store.append(&row).await {
            Ok(()) => (outcome, Some(message)),
            Err(error) => (
                outcome,
                Some(format!(
                    "{message}\n(recording {state} failed too: {}; the audit still says FAILED)",
                    describe_error(&error.into())
                )),
            ),
        }
    }

    /// Inserts `FAILED` with `message`; when even that fails, says so in the returned message.
    async fn record_failure(
        &self,
        unit: &PlannedUnit,
        context: &ChangeContext,
        execution_ms: Option<i64>,
        message: String,
    ) -> Applied {
        tracing::error!(change_id = unit.unit.id, error = %message, "change unit failed");
        let row = self.entry(unit, context, AuditState::Failed, execution_ms, Some(message.clone()));
        match self.store.append(&row).await {
            Ok(()) => (UnitOutcome::Failed, Some(message)),
            Err(error) => (
                UnitOutcome::Failed,
                Some(format!(
                    "{message}\n(recording FAILED failed too: {})",
                    describe_error(&error.into())
                )),
            ),
        }
    }
}
