//! Repair (`flamingock repair`): a person accepts an applied unit as it is now, after its code or
//! file changed (drift) or when its history has no checksum to compare (imported). Recorded, under
//! the lock, as a `MANUAL_MARKED_AS_APPLIED` row that carries the unit's current checksum, who
//! and why, and the checksum it replaces (docs/drift.md).
//!
//! Like `fix`, the row copies the unit's newest audit row (stage, target, strategy); unlike `fix`
//! it needs the program that declares the unit, since only that program knows its checksum now.

use serde::Serialize;

use super::Engine;
use super::lease::Lease;
use super::manual::{FixError, SeenState, manual_metadata};
use crate::error::Error;
use crate::model::{AuditEntry, AuditState, ChangeUnit, metadata_keys};
use crate::store::StoreError;

/// A repair to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepairRequest {
    /// The unit.
    pub change_id: String,
    /// Who accepts the change (recorded as the row's author).
    pub operator: String,
    /// Why: what was checked, why the change may stay.
    pub reason: String,
}

/// What `repair` recorded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RepairOutcome {
    /// The checksum the unit's current row had (`None`: none was recorded, imported history).
    pub previous_checksum: Option<String>,
    /// The row appended (its `id` and `created_at` are the store's, not shown here).
    pub entry: AuditEntry,
}

/// Everything `repair` can fail with; nothing is recorded in any case.
#[derive(Debug, thiserror::Error)]
pub enum RepairError {
    /// This program declares no unit with that id.
    #[error(
        "this program declares no change unit \"{0}\", so its checksum now is unknown; run repair from the program that declares it (check the id with `status`)"
    )]
    UnknownUnit(String),
    /// The id cannot be a unit's (see [`text_problem`](crate::plan::text_problem)).
    #[error("no change unit id may {problem}; got \"{change_id}\"")]
    InvalidId {
        /// The id as given.
        change_id: String,
        /// What is wrong with it, as "no change unit id may ..." continues.
        problem: String,
    },
    /// The reason (or who) is missing.
    #[error("{0} must not be empty: the audit keeps who accepted a change and why")]
    Missing(&'static str),
    /// The unit is not applied: there is nothing to accept (a run applies it as it is now).
    #[error(
        "\"{change_id}\" is not applied ({state}), so it has no recorded checksum to repair; nothing was recorded (a run applies it as it is now; a blocked unit is resolved with `flamingock fix`)"
    )]
    NotApplied {
        /// The unit.
        change_id: String,
        /// Its current state.
        state: SeenState,
    },
    /// The unit runs at every start: its checksum is never compared.
    #[error(
        "\"{0}\" runs at every start (run_always), so its checksum is never compared: nothing to repair; nothing was recorded"
    )]
    RunsAlways(String),
    /// The recorded checksum is the unit's current one.
    #[error(
        "\"{change_id}\" has not drifted: the audit's checksum {checksum} is its checksum now; nothing to repair, nothing was recorded"
    )]
    NothingToRepair {
        /// The unit.
        change_id: String,
        /// The checksum, recorded and current.
        checksum: String,
    },
    /// The repair's row was sent but its reply was lost, and the audit could not be read again
    /// to learn whether it is there.
    #[error(
        "whether the repair of \"{change_id}\" was recorded is unknown (the reply of its write was lost and the audit could not be read again): look with `verify`; repeating the repair says \"nothing to repair\" if it was recorded"
    )]
    OutcomeUnknown {
        /// The unit.
        change_id: String,
        /// The write's error (or the lost reply).
        #[source]
        source: StoreError,
    },
    /// The store or the lock failed.
    #[error(transparent)]
    Engine(#[from] Error),
}

impl Engine {
    /// Records, under the lock, that a person accepts the applied unit `request.change_id` as it
    /// is now: a `MANUAL_MARKED_AS_APPLIED` row with the unit's current checksum, so runs no
    /// longer see it drifted (or, for imported history without a checksum, can compare it from
    /// now on). `units` are the units this program declares; the unit must be one of those this
    /// engine selects.
    ///
    /// Refused, with nothing written, when the unit is unknown, not applied, run at every start,
    /// or its recorded checksum is already its current one.
    pub async fn repair(
        &self,
        units: impl IntoIterator<Item = &'static ChangeUnit>,
        request: &RepairRequest,
    ) -> Result<RepairOutcome, RepairError> {
        if request.reason.trim().is_empty() {
            return Err(RepairError::Missing("the reason"));
        }
        if request.operator.trim().is_empty() {
            return Err(RepairError::Missing("who accepts it"));
        }
        if let Some(problem) = crate::plan::text_problem("id", &request.change_id) {
            return Err(RepairError::InvalidId {
                change_id: request.change_id.clone(),
                problem,
            });
        }
        // The units this engine selects (stage, module), checked as a run checks them: two
        // units with this id would leave its checksum ambiguous.
        let selected =
            crate::plan::order_units(units, &self.options.selection).map_err(Error::Validation)?;
        let unit = selected
            .into_iter()
            .find(|unit| unit.id == request.change_id)
            .ok_or_else(|| RepairError::UnknownUnit(request.change_id.clone()))?;
        if unit.run_always {
            return Err(RepairError::RunsAlways(request.change_id.clone()));
        }
        self.with_lock(async |lease| self.record_repair(unit, request, lease).await)
            .await
    }

    async fn record_repair(
        &self,
        unit: &'static ChangeUnit,
        request: &RepairRequest,
        lease: Option<&Lease>,
    ) -> Result<RepairOutcome, RepairError> {
        let newest = self.newest_row(&request.change_id).await?;
        let row = match newest {
            Some(row) if row.state.is_applied() => row,
            other => {
                return Err(RepairError::NotApplied {
                    change_id: request.change_id.clone(),
                    state: SeenState::of(other.map(|row| row.state)),
                });
            }
        };
        let previous_checksum = row.checksum.clone().filter(|c| !c.trim().is_empty());
        if previous_checksum.as_deref() == Some(unit.checksum) {
            return Err(RepairError::NothingToRepair {
                change_id: request.change_id.clone(),
                checksum: unit.checksum.to_owned(),
            });
        }
        let metadata = manual_metadata(
            None,
            row.unit_author().to_owned(),
            &request.operator,
            &request.reason,
            [
                (metadata_keys::REPAIR, true.into()),
                (
                    metadata_keys::PREVIOUS_CHECKSUM,
                    previous_checksum.clone().into(),
                ),
            ],
        );
        let entry = AuditEntry {
            id: 0,
            created_at: None,
            execution_id: uuid::Uuid::now_v7().to_string(),
            author: request.operator.clone(),
            state: AuditState::ManualMarkedAsApplied,
            hostname: self.hostname.clone(),
            runner_id: self.runner_id.clone(),
            app_name: self.options.app_name.clone(),
            app_version: self.options.app_version.clone(),
            execution_ms: None,
            // The unit as it is now: where it is declared and what it hashes to.
            source: format!(
                "{} {}:{}",
                unit.source.module_path, unit.source.file, unit.source.line
            ),
            checksum: Some(unit.checksum.to_owned()),
            error: None,
            metadata: Some(metadata),
            system_version: unit.system_version.map(str::to_owned),
            ..row
        };
        let written = self
            .store
            .append(&entry, lease.map(|lease| &lease.fence))
            .await;
        if let Err(error) = written {
            self.find_out_fix(&entry, Some(error))
                .await
                .map_err(|error| match error {
                    FixError::OutcomeUnknown { change_id, source } => {
                        RepairError::OutcomeUnknown { change_id, source }
                    }
                    FixError::Engine(error) => RepairError::Engine(error),
                    other => RepairError::Engine(Error::Config(other.to_string())),
                })?;
        }
        tracing::info!(
            change_id = %entry.change_id,
            operator = %request.operator,
            previous = previous_checksum.as_deref().unwrap_or("none"),
            current = unit.checksum,
            "repair recorded: the unit's current checksum is accepted"
        );
        Ok(RepairOutcome {
            previous_checksum,
            entry,
        })
    }
}
