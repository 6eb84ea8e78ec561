//! The report of one run: what happened to each unit. `Display` prints a table, `Serialize` JSON.

use std::fmt;

use serde::Serialize;

use crate::model::TxStrategy;

/// What a run did with one unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UnitOutcome {
    /// Applied by this run.
    Applied,
    /// Applied before; nothing done.
    AlreadyApplied,
    /// Found committed by an earlier, interrupted run (`TX_SEPARATE` marker); recorded, not rerun.
    RecoveredApplied,
    /// Failed; a transaction undid it, or it had no rollback.
    Failed,
    /// Failed, and its rollback undid it.
    RolledBack,
    /// Failed, and its rollback failed too.
    RollbackFailed,
    /// Needs manual intervention.
    Blocked,
    /// A write's reply was lost and its outcome could not be found out: nothing more was
    /// written, the run stopped. The next run decides from the audit (and the marker), or
    /// blocks the unit for a person.
    InDoubt,
    /// The run stopped before it.
    NotReached,
    /// Its system version is outside the run's range (`system_versions`): not applied, not
    /// blocked, whatever its state.
    OutOfRange,
}

impl UnitOutcome {
    fn label(self) -> &'static str {
        match self {
            UnitOutcome::Applied => "applied",
            UnitOutcome::AlreadyApplied => "already applied",
            UnitOutcome::RecoveredApplied => "recovered (applied)",
            UnitOutcome::Failed => "FAILED",
            UnitOutcome::RolledBack => "FAILED, rolled back",
            UnitOutcome::RollbackFailed => "FAILED, rollback failed",
            UnitOutcome::Blocked => "BLOCKED",
            UnitOutcome::InDoubt => "IN DOUBT",
            UnitOutcome::NotReached => "not reached",
            UnitOutcome::OutOfRange => "out of range",
        }
    }
}

/// One unit's line in the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UnitReport {
    /// The unit's id.
    pub change_id: String,
    /// The unit's order.
    pub order: String,
    /// The unit's author.
    pub author: String,
    /// The unit's stage.
    pub stage: String,
    /// The target system's name (`"default"`: the audit store's own database).
    pub target_system: String,
    /// How it runs: in the audit store's transaction, in its target's, or without one.
    pub tx_strategy: TxStrategy,
    /// What the run did with it.
    pub outcome: UnitOutcome,
    /// Time spent executing (and rolling back), for units this run touched.
    pub duration_ms: Option<u64>,
    /// The unit's error and its causes, when it failed.
    pub error: Option<String>,
}

/// The report of one run: what it did with each selected unit. `Display` prints it as a table
/// (what `flamingock apply` shows), `Serialize` as JSON.
///
/// ```standalone_crate
/// use flamingock::prelude::*;
/// use flamingock::UnitOutcome;
///
/// #[change_unit(id = "seed", order = "1", author = "ana", transactional = false)]
/// mod seed {
///     #[execution]
///     pub fn execute() {}
/// }
///
/// # #[tokio::main] async fn main() -> Result<(), flamingock::Error> {
/// let report = flamingock::run!(Flamingock::builder().database_url("sqlite::memory:")).await?;
/// assert_eq!(report.applied(), ["seed"]);
/// assert_eq!(report.count(UnitOutcome::Applied), 1);
/// assert_eq!(report.units[0].outcome, UnitOutcome::Applied);
/// println!("{report}");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunReport {
    /// The id (UUID v7) shared by every audit row this run wrote.
    pub execution_id: String,
    /// The runner (one `Flamingock` instance) that ran.
    pub runner_id: String,
    /// The audit store, described for people (kind, database, table; no credentials).
    pub audit_store: String,
    /// How long the run took, lock and start-up read included.
    pub duration_ms: u64,
    /// One line per selected unit, in order.
    pub units: Vec<UnitReport>,
    /// Applied units that changed since they were applied, which the run went on past
    /// (`DriftPolicy::Warn`; under the default policy drift stops the run instead).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub drift: Vec<crate::engine::DriftedUnit>,
}

impl RunReport {
    /// How many units ended with `outcome`.
    pub fn count(&self, outcome: UnitOutcome) -> usize {
        self.units.iter().filter(|u| u.outcome == outcome).count()
    }

    /// The ids of the units this run applied, in order.
    pub fn applied(&self) -> Vec<&str> {
        self.units
            .iter()
            .filter(|u| u.outcome == UnitOutcome::Applied)
            .map(|u| u.change_id.as_str())
            .collect()
    }

    /// The unit with this id.
    pub fn unit(&self, change_id: &str) -> Option<&UnitReport> {
        self.units.iter().find(|u| u.change_id == change_id)
    }

    /// The units grouped by stage, the stages in the order the run reached them (the order
    /// `.stages([..])` names them, when it does).
    pub fn by_stage(&self) -> Vec<(&str, Vec<&UnitReport>)> {
        let mut stages: Vec<(&str, Vec<&UnitReport>)> = Vec::new();
        for unit in &self.units {
            match stages.iter_mut().find(|(stage, _)| *stage == unit.stage) {
                Some((_, units)) => units.push(unit),
                None => stages.push((unit.stage.as_str(), vec![unit])),
            }
        }
        stages
    }

    /// Whether every unit is in place (applied now or before).
    pub fn is_success(&self) -> bool {
        self.units.iter().all(|u| {
            matches!(
                u.outcome,
                UnitOutcome::Applied
                    | UnitOutcome::AlreadyApplied
                    | UnitOutcome::RecoveredApplied
                    | UnitOutcome::OutOfRange
            )
        })
    }

    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report always serializes")
    }
}

/// `cell` left-aligned in `width` characters. (`format!`'s `{:<width$}` panics past 65,535, and
/// an id or an error may be longer than that.)
pub(crate) fn pad(cell: &str, width: usize) -> String {
    let mut text = String::with_capacity(cell.len() + width);
    text.push_str(cell);
    text.extend(std::iter::repeat_n(
        ' ',
        width.saturating_sub(cell.chars().count()),
    ));
    text
}

impl fmt::Display for RunReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers = ["order", "change", "stage", "strategy", "outcome", "time"];
        let rows: Vec<[String; 6]> = self
            .units
            .iter()
            .map(|u| {
                [
                    u.order.clone(),
                    u.change_id.clone(),
                    u.stage.clone(),
                    u.tx_strategy.as_str().to_owned(),
                    u.outcome.label().to_owned(),
                    u.duration_ms
                        .map_or_else(String::new, |ms| format!("{ms} ms")),
                ]
            })
            .collect();
        let mut widths = headers.map(str::len);
        for row in &rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let line = |f: &mut fmt::Formatter<'_>, cells: &[&str]| -> fmt::Result {
            let mut text = String::new();
            for (cell, width) in cells.iter().zip(widths) {
                text.push_str(&pad(cell, width));
                text.push_str("  ");
            }
            writeln!(f, "{}", text.trim_end())
        };
        writeln!(
            f,
            "Flamingock run {} on {} ({} ms)",
            self.execution_id, self.audit_store, self.duration_ms
        )?;
        if self.units.is_empty() {
            return writeln!(f, "no change units selected");
        }
        line(f, &headers)?;
        let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
        line(f, &rule.iter().map(String::as_str).collect::<Vec<_>>())?;
        for row in &rows {
            line(f, &row.iter().map(String::as_str).collect::<Vec<_>>())?;
        }
        for unit in self.units.iter().filter(|u| u.error.is_some()) {
            let error = unit.error.as_deref().unwrap_or_default();
            writeln!(f, "error in \"{}\": {}", unit.change_id, error)?;
        }
        for unit in &self.drift {
            writeln!(f, "drift (going on, as told): {unit}")?;
        }
        let stages = self.by_stage();
        if stages.len() > 1 {
            for (stage, units) in &stages {
                writeln!(f, "stage \"{stage}\": {}", stage_summary(units))?;
            }
        }
        let applied = self.count(UnitOutcome::Applied);
        let already = self.count(UnitOutcome::AlreadyApplied);
        let out_of_range = self.count(UnitOutcome::OutOfRange);
        if applied == 0 && self.is_success() && out_of_range == 0 {
            write!(f, "nothing to apply: all {already} units already applied")
        } else if applied == 0 && self.is_success() {
            write!(
                f,
                "nothing to apply: {already} units already applied, {out_of_range} out of range"
            )
        } else {
            write!(f, "{applied} applied, {already} already applied")?;
            for outcome in [
                UnitOutcome::RecoveredApplied,
                UnitOutcome::Failed,
                UnitOutcome::RolledBack,
                UnitOutcome::RollbackFailed,
                UnitOutcome::Blocked,
                UnitOutcome::NotReached,
                UnitOutcome::OutOfRange,
            ] {
                let n = self.count(outcome);
                if n > 0 {
                    write!(f, ", {n} {}", outcome.label().to_lowercase())?;
                }
            }
            Ok(())
        }
    }
}

/// One stage's outcomes in a line: `2 applied, 1 already applied`, then the others that occur.
fn stage_summary(units: &[&UnitReport]) -> String {
    let mut parts = Vec::new();
    for outcome in [
        UnitOutcome::Applied,
        UnitOutcome::AlreadyApplied,
        UnitOutcome::RecoveredApplied,
        UnitOutcome::Failed,
        UnitOutcome::RolledBack,
        UnitOutcome::RollbackFailed,
        UnitOutcome::Blocked,
        UnitOutcome::InDoubt,
        UnitOutcome::NotReached,
        UnitOutcome::OutOfRange,
    ] {
        let n = units.iter().filter(|u| u.outcome == outcome).count();
        if n > 0 {
            parts.push(format!("{n} {}", outcome.label().to_lowercase()));
        }
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TxStrategy;

    #[test]
    fn a_cell_longer_than_the_formatter_can_pad_prints() {
        let long = "x".repeat(70_000);
        let report = RunReport {
            execution_id: "e".into(),
            runner_id: "r".into(),
            audit_store: "memory".into(),
            duration_ms: 1,
            units: vec![UnitReport {
                change_id: long.clone(),
                order: "1".into(),
                author: "ana".into(),
                stage: "default".into(),
                target_system: "default".into(),
                tx_strategy: TxStrategy::Shared,
                outcome: UnitOutcome::Applied,
                duration_ms: None,
                error: Some(long.clone()),
            }],
            drift: Vec::new(),
        };
        let text = report.to_string();
        assert!(text.contains(&long));
        assert_eq!(pad("ab", 4), "ab  ");
        assert_eq!(pad("abcdef", 2), "abcdef");
    }
}
