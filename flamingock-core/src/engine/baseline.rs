//! Baseline: a database whose schema was built before its history (by hand, by a dump, by a tool
//! whose table is gone) gets every unit up to a given one recorded as applied by a person,
//! `MANUAL_MARKED_AS_APPLIED` with who and why and `baseline: true`, under the lock, all in one
//! write where the store allows (docs/migrating.md#baseline). Refused, with nothing written, when
//! any of those units already has history.

use super::Engine;
use super::attempt::Attempt;
use super::lease::Lease;
use super::manual::manual_metadata;
use super::planned::PlannedUnit;
use crate::error::Error;
use crate::model::{AuditEntry, AuditState, ChangeUnit, metadata_keys};
use crate::plan::order_units;

/// A baseline to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaselineRequest {
    /// The last unit (in run order) whose change is already in place; it and every selected unit
    /// before it are recorded.
    pub up_to: String,
    /// Who decided (recorded as each row's author).
    pub operator: String,
    /// Why: how the schema came to be there.
    pub reason: String,
    /// A baseline configured on the builder, seen again at every start: when any unit in range
    /// already has history (the baseline was recorded before, or the database was migrated
    /// since), record nothing and succeed, without taking the lock; units in range without
    /// history are then left to the run (a warning names them). Without `once`, any history in
    /// range refuses the baseline.
    pub once: bool,
}

/// Everything `baseline` can be refused for; nothing is recorded in any case.
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    /// The id is not one of the selected units.
    #[error(
        "no change unit \"{0}\" is selected by this program: baseline records the units up to one of them; check the id with `status`"
    )]
    UnknownUnit(String),
    /// The reason (or who) is missing.
    #[error("{0} must not be empty: the audit keeps who recorded a baseline and why")]
    Missing(&'static str),
    /// Units up to the given one already have audit rows.
    #[error(
        "baseline refused, nothing was recorded: {} already ha{} history ({}); a baseline is for a database with none. Look with `status`, and use `fix` for single units",
        .0.len(),
        if .0.len() == 1 { "s" } else { "ve" },
        .0.iter().map(|id| format!("\"{id}\"")).collect::<Vec<_>>().join(", ")
    )]
    HasHistory(Vec<String>),
    /// The store, the lock or a unit's target failed.
    #[error(transparent)]
    Engine(#[from] Error),
}

impl Engine {
    /// Records every selected unit up to and including `request.up_to` (in run order) as applied
    /// by a person, under the lock. Returns the rows written, in run order.
    pub async fn baseline(
        &self,
        units: impl IntoIterator<Item = &'static ChangeUnit>,
        request: &BaselineRequest,
    ) -> Result<Vec<AuditEntry>, BaselineError> {
        if request.reason.trim().is_empty() {
            return Err(BaselineError::Missing("the reason"));
        }
        if request.operator.trim().is_empty() {
            return Err(BaselineError::Missing("who records it"));
        }
        let ordered = order_units(units, &self.options.selection).map_err(Error::Validation)?;
        let Some(last) = ordered.iter().position(|unit| unit.id == request.up_to) else {
            return Err(BaselineError::UnknownUnit(request.up_to.clone()));
        };
        let covered = &ordered[..=last];
        // A start-up baseline seen again: one read, no lock, when it is done already.
        if request.once
            && let Ok(states) = self.store.unit_states().await
            && self.baseline_done(covered, &states)
        {
            return Ok(Vec::new());
        }
        self.with_lock(async |lease| self.record_baseline(covered, request, lease).await)
            .await
    }

    /// For a `once` baseline: whether some unit in range has history, so that the baseline is
    /// not to be recorded (again). Units in range without history are named in a warning.
    fn baseline_done(
        &self,
        covered: &[&'static ChangeUnit],
        states: &std::collections::HashMap<String, crate::model::UnitState>,
    ) -> bool {
        let without: Vec<&str> = covered
            .iter()
            .filter(|unit| !states.contains_key(unit.id))
            .map(|unit| unit.id)
            .collect();
        if without.len() == covered.len() {
            return false;
        }
        if !without.is_empty() {
            tracing::warn!(
                units = %without.join(", "),
                "baseline not recorded: units up to it already have history; these, added \
                 since, have none and are left to the run"
            );
        }
        true
    }

    async fn record_baseline(
        &self,
        covered: &[&'static ChangeUnit],
        request: &BaselineRequest,
        lease: Option<&Lease>,
    ) -> Result<Vec<AuditEntry>, BaselineError> {
        // Read under the lock: nobody else writes while it is held.
        let states = self.store.unit_states().await.map_err(Error::from)?;
        let with_history: Vec<String> = covered
            .iter()
            .filter(|unit| states.contains_key(unit.id))
            .map(|unit| unit.id.to_owned())
            .collect();
        if request.once && self.baseline_done(covered, &states) {
            return Ok(Vec::new());
        }
        if !with_history.is_empty() {
            return Err(BaselineError::HasHistory(with_history));
        }
        let execution_id = uuid::Uuid::now_v7().to_string();
        let mut rows = Vec::with_capacity(covered.len());
        for unit in covered {
            let planned = PlannedUnit::new(unit, self.resolve_route(unit)?);
            let mut row = Attempt::new(self, &planned, &execution_id, 1, None).entry(
                AuditState::ManualMarkedAsApplied,
                None,
                None,
            );
            row.metadata = Some(manual_metadata(
                row.metadata.take(),
                unit.author.to_owned(),
                &request.operator,
                &request.reason,
                [(metadata_keys::BASELINE, true.into())],
            ));
            row.author = request.operator.clone();
            rows.push(row);
        }
        self.store
            .append_all(&rows, lease.map(|lease| &lease.fence))
            .await
            .map_err(Error::from)?;
        tracing::info!(up_to = %request.up_to, units = rows.len(), operator = %request.operator, "baseline recorded");
        Ok(rows)
    }
}
