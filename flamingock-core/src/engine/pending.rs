//! Pending checks: is anything left to apply, or blocked? What `plan --check`, a readiness
//! endpoint (`flamingock::pending`) and a validate-only run ask, from one plan.

use serde::Serialize;

use super::Engine;
use super::planned::{PlannedUnit, blocked_units};
use crate::error::{BlockedUnit, Error};
use crate::model::ChangeUnit;

/// Whether the selected units are all in place, some are pending, or some are blocked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PendingStatus {
    /// Every selected unit is applied: nothing for a run to do.
    UpToDate,
    /// Some units would be applied by a run (none is blocked).
    Pending,
    /// Some unit needs a person (`fix`) before a run gets through.
    Blocked,
}

impl PendingStatus {
    /// The exit code `plan --check` and `status --check` end with: 0 up to date, 3 pending,
    /// 4 blocked (1 and 2 stay what they are for every command: failure, usage).
    pub fn exit_code(self) -> u8 {
        match self {
            PendingStatus::UpToDate => 0,
            PendingStatus::Pending => 3,
            PendingStatus::Blocked => 4,
        }
    }
}

/// What a run of the selected units would find: the units it would apply, and the blocked ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PendingCheck {
    /// Up to date, pending or blocked.
    pub status: PendingStatus,
    /// How many units are selected.
    pub units: usize,
    /// The ids of the units a run would apply (or look at: a marker to consult), in run order.
    pub pending: Vec<String>,
    /// The units that need manual intervention, with their state and last error.
    pub blocked: Vec<BlockedUnit>,
}

impl PendingCheck {
    /// The check of a plan. A unit that runs always counts as pending only until its first
    /// run: once applied, every run applies it again, and waiting for that would never end.
    pub fn of(planned: &[PlannedUnit]) -> Self {
        let pending: Vec<String> = planned
            .iter()
            .filter(|p| p.is_pending())
            .filter(|p| {
                !(p.unit.run_always && p.current.as_ref().is_some_and(|s| s.state.is_applied()))
            })
            .map(|p| p.unit.id.to_owned())
            .collect();
        Self::new(planned.len(), pending, blocked_units(planned))
    }

    /// The check of `units` units of which `pending` would be applied and `blocked` block.
    pub fn new(units: usize, pending: Vec<String>, blocked: Vec<BlockedUnit>) -> Self {
        let status = if !blocked.is_empty() {
            PendingStatus::Blocked
        } else if !pending.is_empty() {
            PendingStatus::Pending
        } else {
            PendingStatus::UpToDate
        };
        Self {
            status,
            units,
            pending,
            blocked,
        }
    }

    /// Whether a run would have nothing to do.
    pub fn is_up_to_date(&self) -> bool {
        self.status == PendingStatus::UpToDate
    }
}

impl std::fmt::Display for PendingCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.status {
            PendingStatus::UpToDate => write!(f, "up to date: all {} units applied", self.units),
            PendingStatus::Pending | PendingStatus::Blocked => {
                if !self.pending.is_empty() {
                    write!(
                        f,
                        "{} of {} units pending: {}",
                        self.pending.len(),
                        self.units,
                        self.pending.join(", ")
                    )?;
                }
                if !self.blocked.is_empty() {
                    if !self.pending.is_empty() {
                        f.write_str("\n")?;
                    }
                    write!(f, "{} blocked (needs `fix`):", self.blocked.len())?;
                    for unit in &self.blocked {
                        write!(f, "\n  - {unit}")?;
                    }
                }
                Ok(())
            }
        }
    }
}

impl Engine {
    /// Plans `units` (reading the audit, writing nothing on a store that exists) and says what a
    /// run would find: up to date, pending or blocked.
    pub async fn pending(
        &self,
        units: impl IntoIterator<Item = &'static ChangeUnit>,
    ) -> Result<PendingCheck, Error> {
        let planned = self.plan(units).await?;
        Ok(self.pending_check(&planned))
    }

    /// The check of `planned` as this engine's runs would meet it: [`PendingCheck::of`], and,
    /// when drift stops runs ([`DriftPolicy::Stop`](super::DriftPolicy::Stop), the default),
    /// each drifted unit counted as blocked (a run would stop on it until `repair`).
    pub fn pending_check(&self, planned: &[PlannedUnit]) -> PendingCheck {
        let check = PendingCheck::of(planned);
        if self.drift_policy() != super::DriftPolicy::Stop {
            return check;
        }
        let drifted = self.drift(planned).drifted;
        if drifted.is_empty() {
            return check;
        }
        let mut blocked = check.blocked;
        blocked.extend(drifted.into_iter().map(|unit| BlockedUnit {
            change_id: unit.change_id.clone(),
            stage: planned
                .iter()
                .find(|p| p.unit.id == unit.change_id)
                .map_or_else(String::new, |p| p.unit.stage_name().to_owned()),
            state: "DRIFTED".to_owned(),
            last_error: Some(format!(
                "changed since it was applied (checksum recorded {}, now {}); `repair` accepts it",
                unit.recorded_checksum, unit.current_checksum
            )),
        }));
        PendingCheck::new(check.units, check.pending, blocked)
    }
}
