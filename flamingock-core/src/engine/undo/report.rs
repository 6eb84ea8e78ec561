//! What an undo reports: per-unit outcomes, the report's table, refusals and errors.

use std::fmt;

use serde::Serialize;

use crate::error::{BlockedUnit, Error, MissingDependency};
use crate::model::{SourceLocation, TxStrategy};
use crate::report::pad;

/// What an undo did with one unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UndoOutcome {
    /// Its rollback ran and `ROLLED_BACK` is recorded.
    RolledBack,
    /// Its rollback failed; `ROLLBACK_FAILED` is recorded.
    RollbackFailed,
    /// The undo stopped before it; it is still applied.
    NotReached,
    /// A write's reply was lost and its outcome could not be found out; nothing more was written.
    InDoubt,
}

impl UndoOutcome {
    fn label(self) -> &'static str {
        match self {
            UndoOutcome::RolledBack => "rolled back",
            UndoOutcome::RollbackFailed => "ROLLBACK FAILED",
            UndoOutcome::NotReached => "not reached (still applied)",
            UndoOutcome::InDoubt => "IN DOUBT",
        }
    }
}

/// One unit's line in an [`UndoReport`], in the order the undo took them (newest first).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UndoLine {
    /// The unit's id.
    pub change_id: String,
    /// The unit's order.
    pub order: String,
    /// The unit's author.
    pub author: String,
    /// The unit's stage.
    pub stage: String,
    /// How its rollback ran: in a transaction of its target, or not.
    pub tx_strategy: TxStrategy,
    /// What the undo did with it.
    pub outcome: UndoOutcome,
    /// Time spent in the rollback method and its commit.
    pub duration_ms: Option<u64>,
    /// The rollback's error and its causes, when it failed.
    pub error: Option<String>,
}

/// What an undo did. `Display` prints a table, `Serialize` JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UndoReport {
    /// The id shared by every row this undo wrote.
    pub execution_id: String,
    /// The runner (one `Flamingock` instance) that did the undo.
    pub runner_id: String,
    /// The audit store, described for people (kind, database, table; no credentials).
    pub audit_store: String,
    /// How long the undo took, lock included.
    pub duration_ms: u64,
    /// One line per unit in range, newest first.
    pub units: Vec<UndoLine>,
}

impl UndoReport {
    /// The ids of the units rolled back, in the order they were.
    pub fn rolled_back(&self) -> Vec<&str> {
        self.units
            .iter()
            .filter(|u| u.outcome == UndoOutcome::RolledBack)
            .map(|u| u.change_id.as_str())
            .collect()
    }
}

impl fmt::Display for UndoReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Flamingock undo {} on {} ({} ms)",
            self.execution_id, self.audit_store, self.duration_ms
        )?;
        if self.units.is_empty() {
            return write!(f, "nothing to undo");
        }
        let widths = self.units.iter().fold((5, 6, 8), |(o, c, s), u| {
            (
                o.max(u.order.chars().count()),
                c.max(u.change_id.chars().count()),
                s.max(u.tx_strategy.as_str().len()),
            )
        });
        let (o, c, s) = widths;
        writeln!(
            f,
            "{}  {}  {}  outcome",
            pad("order", o),
            pad("change", c),
            pad("strategy", s)
        )?;
        writeln!(
            f,
            "{}  {}  {}  -------",
            "-".repeat(o),
            "-".repeat(c),
            "-".repeat(s)
        )?;
        for unit in &self.units {
            let time = unit
                .duration_ms
                .map_or_else(String::new, |ms| format!(" ({ms} ms)"));
            writeln!(
                f,
                "{}  {}  {}  {}{time}",
                pad(&unit.order, o),
                pad(&unit.change_id, c),
                pad(unit.tx_strategy.as_str(), s),
                unit.outcome.label()
            )?;
        }
        for unit in self.units.iter().filter(|u| u.error.is_some()) {
            let error = unit.error.as_deref().unwrap_or_default();
            writeln!(f, "error in \"{}\": {}", unit.change_id, error)?;
        }
        write!(f, "{} rolled back", self.rolled_back().len())
    }
}

/// Why a unit in range keeps an undo from starting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UndoRefusal {
    /// The unit has no `#[rollback_execution]`.
    NoRollback {
        /// The unit's id.
        change_id: String,
        /// Where it is declared.
        location: SourceLocation,
    },
    /// The unit needs manual intervention first.
    Blocked(BlockedUnit),
    /// A parameter of its rollback method cannot be filled.
    MissingDependency(MissingDependency),
}

impl fmt::Display for UndoRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UndoRefusal::NoRollback {
                change_id,
                location,
            } => write!(
                f,
                "\"{change_id}\" ({location}) has no #[rollback_execution]: add one, or undo it by hand and record that with `flamingock fix {change_id} --rolled-back --reason \"...\"`"
            ),
            UndoRefusal::Blocked(blocked) => write!(f, "{blocked}"),
            UndoRefusal::MissingDependency(missing) => write!(f, "{missing}"),
        }
    }
}

/// Everything an undo can fail with.
#[derive(Debug, thiserror::Error)]
pub enum UndoError {
    /// Units in range cannot be rolled back; nothing ran.
    #[error("{}", refusal_list(.0))]
    Refused(Vec<UndoRefusal>),
    /// `--to` names no selected unit; nothing ran.
    #[error(
        "undo --to \"{0}\": no selected change unit has this id; `flamingock status` lists them"
    )]
    UnknownUnit(String),
    /// Fewer units are applied than `--last` asks for; nothing ran.
    #[error(
        "undo --last {requested}: only {applied} selected unit(s) are applied; nothing was rolled back"
    )]
    NotEnoughApplied {
        /// How many `--last` asked for.
        requested: usize,
        /// How many are applied.
        applied: usize,
    },
    /// Planning, the lock or the audit store failed before anything ran.
    #[error(transparent)]
    Engine(#[from] Error),
    /// A rollback failed; the undo stopped there.
    #[error("undo stopped at \"{change_id}\": {failure}\n{report}")]
    Failed {
        /// The unit whose rollback failed.
        change_id: String,
        /// What went wrong, with its cause as `source()`.
        #[source]
        failure: Box<crate::engine::UnitFailure>,
        /// What the undo did, this unit included.
        report: Box<UndoReport>,
    },
    /// The lease was lost during the undo; nothing more was done.
    #[error(
        "this runner lost the lock during the undo and stopped before \"{change_id}\"; run the undo again once the lock is free\n{report}"
    )]
    LockLost {
        /// The unit the undo stopped before.
        change_id: String,
        /// What the undo did before it stopped.
        report: Box<UndoReport>,
    },
}

impl UndoError {
    /// The report, when some units were considered.
    pub fn report(&self) -> Option<&UndoReport> {
        match self {
            UndoError::Failed { report, .. } | UndoError::LockLost { report, .. } => Some(report),
            _ => None,
        }
    }
}

fn refusal_list(refusals: &[UndoRefusal]) -> String {
    let mut text = String::from("undo refused; nothing was rolled back:");
    for refusal in refusals {
        text.push_str("\n  - ");
        text.push_str(&refusal.to_string());
    }
    text
}
