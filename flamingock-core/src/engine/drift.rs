//! Drift: an applied unit whose code or file changed since it was applied. Each run compares,
//! before anything runs, the checksum on every applied unit's current row (carried by
//! [`UnitState`], so the warm start makes no extra round trip) with the unit's checksum now; by
//! default a drifted unit stops the run, and `repair` (see `repair.rs`) records that a person
//! accepted the change (docs/drift.md).

use std::fmt;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Engine, PlannedUnit};
use crate::error::Error;
use crate::model::{AuditState, UnitState};

/// The environment variable that sets the [`DriftPolicy`] (`stop` or `warn`) when the builder
/// does not.
pub const ON_DRIFT_ENV: &str = "FLAMINGOCK_ON_DRIFT";

/// What a run does when an applied unit drifted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftPolicy {
    /// The run stops before anything is applied, with [`Error::Drift`] naming every drifted unit
    /// and the command that accepts it (the default).
    #[default]
    Stop,
    /// The run logs a warning for every drifted unit, lists them in its report, and goes on.
    Warn,
}

impl DriftPolicy {
    /// The name used in `FLAMINGOCK_ON_DRIFT`.
    pub fn as_str(self) -> &'static str {
        match self {
            DriftPolicy::Stop => "stop",
            DriftPolicy::Warn => "warn",
        }
    }

    /// Parses `stop` or `warn` (any case, spaces around ignored); `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "stop" => Some(DriftPolicy::Stop),
            "warn" => Some(DriftPolicy::Warn),
            _ => None,
        }
    }
}

impl fmt::Display for DriftPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An applied unit whose checksum differs from the one its current audit row recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DriftedUnit {
    /// The unit's id.
    pub change_id: String,
    /// The file that declares it (for an SQL-file unit, the migration file).
    pub file: String,
    /// The line of its declaration (1 for an SQL file).
    pub line: u32,
    /// The unit's current state (`APPLIED` or `MANUAL_MARKED_AS_APPLIED`).
    pub state: AuditState,
    /// When that state was recorded.
    pub applied_at: Option<DateTime<Utc>>,
    /// The checksum the audit recorded.
    pub recorded_checksum: String,
    /// The unit's checksum now.
    pub current_checksum: String,
}

impl DriftedUnit {
    /// The command that accepts the unit as it is now.
    pub fn repair_command(&self) -> String {
        format!("flamingock repair {} --reason \"...\"", self.change_id)
    }
}

impl fmt::Display for DriftedUnit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "\"{}\" ({}:{}) changed since it was applied: checksum recorded {}, now {}\n    \
             an applied unit never runs again: revert the edit, or put the new change in a new unit; \
             if the edit is meant to stay (the target already matches it), accept it: {}",
            self.change_id,
            self.file,
            self.line,
            self.recorded_checksum,
            self.current_checksum,
            self.repair_command()
        )
    }
}

/// An applied unit whose current audit row carries no checksum (history imported from a tool
/// whose checksums cannot be compared): not judged drifted, and `repair` makes it comparable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UncomparableUnit {
    /// The unit's id.
    pub change_id: String,
    /// The file that declares it.
    pub file: String,
    /// The line of its declaration.
    pub line: u32,
    /// The unit's current state.
    pub state: AuditState,
    /// The unit's checksum now, which `repair` would record.
    pub current_checksum: String,
}

impl fmt::Display for UncomparableUnit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "\"{}\" ({}:{}) is {} with no checksum recorded (imported history), so a change to it cannot be seen; \
             once it is checked, record its checksum: flamingock repair {} --reason \"...\"",
            self.change_id, self.file, self.line, self.state, self.change_id
        )
    }
}

/// What comparing a plan's applied units with their recorded checksums found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DriftCheck {
    /// Units whose checksum changed, in plan order.
    pub drifted: Vec<DriftedUnit>,
    /// Units whose current row has no checksum, in plan order.
    pub not_comparable: Vec<UncomparableUnit>,
}

/// What one planned unit's checksums say.
pub(super) enum Judgement {
    /// Not applied, run at every start, or the same checksum.
    Unchanged,
    /// The checksum differs.
    Drifted(DriftedUnit),
    /// Nothing to compare with.
    NotComparable(UncomparableUnit),
}

/// Compares `unit`'s checksum with its current row's. Only applied units that are not
/// `run_always` are judged: a unit that runs again anyway has nothing to drift from.
pub(super) fn judge(unit: &PlannedUnit) -> Judgement {
    let Some(current) = unit.current.as_ref().filter(|s| s.state.is_applied()) else {
        return Judgement::Unchanged;
    };
    // A unit that runs every time, or is out of the run's version range, is not judged: the
    // first's row is rewritten by every run, the second is never acted on.
    if unit.unit.run_always || unit.out_of_range {
        return Judgement::Unchanged;
    }
    let declared = unit.unit;
    match recorded(current) {
        None => Judgement::NotComparable(UncomparableUnit {
            change_id: declared.id.to_owned(),
            file: declared.source.file.to_owned(),
            line: declared.source.line,
            state: current.state,
            current_checksum: declared.checksum.to_owned(),
        }),
        Some(recorded) if recorded == declared.checksum => Judgement::Unchanged,
        Some(recorded) => Judgement::Drifted(DriftedUnit {
            change_id: declared.id.to_owned(),
            file: declared.source.file.to_owned(),
            line: declared.source.line,
            state: current.state,
            applied_at: current.created_at,
            recorded_checksum: recorded.to_owned(),
            current_checksum: declared.checksum.to_owned(),
        }),
    }
}

/// The checksum a row recorded; an empty one is none.
fn recorded(state: &UnitState) -> Option<&str> {
    state.checksum.as_deref().filter(|c| !c.trim().is_empty())
}

impl Engine {
    /// Sets what a run does when an applied unit drifted (default [`DriftPolicy::Stop`]).
    pub fn with_drift_policy(mut self, policy: DriftPolicy) -> Self {
        self.drift_policy = policy;
        self
    }

    /// What a run does when an applied unit drifted.
    pub fn drift_policy(&self) -> DriftPolicy {
        self.drift_policy
    }

    /// Compares every applied unit of `planned` (see [`Engine::plan`]) with the checksum its
    /// current row recorded. Reads nothing: the plan's states carry the checksums.
    pub fn drift(&self, planned: &[PlannedUnit]) -> DriftCheck {
        let mut check = DriftCheck::default();
        for unit in planned {
            match judge(unit) {
                Judgement::Unchanged => {}
                Judgement::Drifted(drifted) => check.drifted.push(drifted),
                Judgement::NotComparable(unit) => check.not_comparable.push(unit),
            }
        }
        check
    }

    /// The drifted units of `planned`, or, under [`DriftPolicy::Stop`], the error that stops the
    /// run when there are any.
    pub(super) fn refuse_drift(&self, planned: &[PlannedUnit]) -> Result<Vec<DriftedUnit>, Error> {
        let drifted = self.drift(planned).drifted;
        match self.drift_policy {
            DriftPolicy::Stop if !drifted.is_empty() => Err(Error::Drift { drifted }),
            _ => Ok(drifted),
        }
    }

    /// Before a run applies anything: stops it on drift, or (when told to warn) logs each drifted
    /// unit and returns them for the report.
    pub(super) fn judge_drift(&self, planned: &[PlannedUnit]) -> Result<Vec<DriftedUnit>, Error> {
        let drifted = self.refuse_drift(planned)?;
        for unit in &drifted {
            tracing::warn!(
                change_id = %unit.change_id,
                source = %format_args!("{}:{}", unit.file, unit.line),
                recorded = %unit.recorded_checksum,
                current = %unit.current_checksum,
                "an applied change unit changed since it was applied; going on ({ON_DRIFT_ENV}=warn)"
            );
        }
        Ok(drifted)
    }
}
