//! The warm start's summary: what the last runs of one plan established, kept by the store beside
//! the audit, so that a start with nothing to do reads one row instead of grouping the whole audit
//! (docs/architecture.md#the-warm-starts-summary).
//!
//! A summary is kept per plan: the selected units in run order, each with its checksum and
//! whether it runs always, hashed into a [`PlanDigest`]. It says: *among the audit rows with id up
//! to `covers`, every unit of the plan that does not run always has an applied newest row carrying
//! the unit's checksum now, and the units that run always have these states*. It is current while
//! no audit row is newer than `covers`. This module holds the pure part: the digest, and the two
//! ways a summary is established: from every unit's state ([`PlanDigest::establish`]) or from an
//! earlier summary and the rows written since ([`PlanDigest::advance`]). Where the rows are read,
//! and why the position they cover is sound, is the store's part (`flamingock-sqlx`).

use std::collections::HashMap;

use sha2::{Digest as _, Sha256};

use crate::model::{AuditEntry, ChangeUnit, UnitState};
use crate::store::counts_as_try;

/// The version of what a digest covers; a change to it makes every earlier summary unused.
const FORMAT: &str = "flamingock-summary-1";

/// One unit of a plan as its summary knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SummaryUnit {
    /// The unit's id.
    pub change_id: String,
    /// Its checksum now.
    pub checksum: String,
    /// Whether it runs at every start.
    pub run_always: bool,
}

/// The units of one plan, in run order, and their digest: the key a summary is kept under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanDigest {
    digest: String,
    units: Vec<SummaryUnit>,
    index: HashMap<String, usize>,
}

impl PlanDigest {
    /// The digest of `units`, in the order a run applies them.
    ///
    /// ```
    /// use flamingock_core::summary::PlanDigest;
    /// let empty = PlanDigest::of(std::iter::empty());
    /// assert_eq!(empty.digest().len(), 64);
    /// assert_eq!(empty, PlanDigest::of(std::iter::empty()));
    /// ```
    pub fn of<'a>(units: impl IntoIterator<Item = &'a ChangeUnit>) -> Self {
        Self::from_units(
            units
                .into_iter()
                .map(|unit| SummaryUnit {
                    change_id: unit.id.to_owned(),
                    checksum: unit.checksum.to_owned(),
                    run_always: unit.run_always,
                })
                .collect(),
        )
    }

    /// The digest of units already described.
    pub fn from_units(units: Vec<SummaryUnit>) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(FORMAT.as_bytes());
        for unit in &units {
            // Lengths first, so that no two lists of fields hash alike.
            for field in [unit.change_id.as_bytes(), unit.checksum.as_bytes()] {
                hasher.update((field.len() as u64).to_le_bytes());
                hasher.update(field);
            }
            hasher.update([u8::from(unit.run_always)]);
        }
        let digest = hasher
            .finalize()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        let index = units
            .iter()
            .enumerate()
            .map(|(at, unit)| (unit.change_id.clone(), at))
            .collect();
        Self {
            digest,
            units,
            index,
        }
    }

    /// The digest: 64 lowercase hex digits (SHA-256).
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// The plan's units, in run order.
    pub fn units(&self) -> &[SummaryUnit] {
        &self.units
    }

    /// Whether a unit of the plan runs at every start (then no start finds nothing to do).
    pub fn has_run_always(&self) -> bool {
        self.units.iter().any(|unit| unit.run_always)
    }

    fn unit(&self, change_id: &str) -> Option<&SummaryUnit> {
        self.index.get(change_id).map(|&at| &self.units[at])
    }

    /// From every unit's current state: the states of the units that run always, when every other
    /// unit of the plan is applied with its checksum now; `None` when one is not (the plan has
    /// work to do, drifted, or lacks a checksum to compare): then no summary holds.
    pub fn establish(&self, states: &HashMap<String, UnitState>) -> Option<Vec<UnitState>> {
        let mut run_always = Vec::new();
        for unit in &self.units {
            let state = states.get(&unit.change_id);
            if unit.run_always {
                run_always.extend(state.cloned());
            } else if !holds(unit, state?.state.is_applied(), state?.checksum.as_deref()) {
                return None;
            }
        }
        Some(run_always)
    }

    /// From a summary that held for the rows up to some id (its units that run always in
    /// `run_always`), and every row written since, oldest first: the summary that holds after
    /// them, or `None` when one of them leaves a unit that does not run always unapplied, or
    /// applied with another checksum. Rows of units outside the plan change nothing.
    pub fn advance(
        &self,
        run_always: Vec<UnitState>,
        newer: &[AuditEntry],
    ) -> Option<Vec<UnitState>> {
        let mut states: HashMap<String, UnitState> = run_always
            .into_iter()
            .map(|state| (state.change_id.clone(), state))
            .collect();
        let mut touched: HashMap<&str, &AuditEntry> = HashMap::new();
        for entry in newer {
            let Some(unit) = self.unit(&entry.change_id) else {
                continue;
            };
            if !unit.run_always {
                touched.insert(&unit.change_id, entry);
                continue;
            }
            let tries = states.get(&entry.change_id).map_or(0, |s| s.tries)
                + i64::from(counts_as_try(entry));
            states.insert(
                entry.change_id.clone(),
                UnitState {
                    change_id: entry.change_id.clone(),
                    state: entry.state,
                    execution_id: entry.execution_id.clone(),
                    created_at: entry.created_at,
                    error: entry.error.clone(),
                    checksum: entry.checksum.clone(),
                    tries,
                },
            );
        }
        for (change_id, entry) in touched {
            let unit = self.unit(change_id)?;
            if !holds(unit, entry.state.is_applied(), entry.checksum.as_deref()) {
                return None;
            }
        }
        Some(
            self.units
                .iter()
                .filter(|unit| unit.run_always)
                .filter_map(|unit| states.remove(&unit.change_id))
                .collect(),
        )
    }
}

/// Whether a unit that does not run always is in place as the summary says: applied, with the
/// checksum it has now (so that no drift can hide behind a summary).
fn holds(unit: &SummaryUnit, applied: bool, recorded: Option<&str>) -> bool {
    applied && !unit.checksum.trim().is_empty() && recorded == Some(unit.checksum.as_str())
}

/// A summary that is current: no audit row is newer than the ones it covers.
#[derive(Debug, Clone, PartialEq)]
pub struct CurrentSummary {
    /// The id of the newest audit row it covers.
    pub covers: i64,
    /// The current states of the plan's units that run always (those that ever ran).
    pub run_always: Vec<UnitState>,
}

/// What recording a plan's summary came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SummaryWrite {
    /// Written: it covers the audit rows up to this id.
    Written {
        /// The id of the newest audit row it covers.
        covers: i64,
    },
    /// The audit does not show the plan applied (a unit pending, failed, drifted or without a
    /// checksum): nothing was written, and starts read every unit's state.
    NotEstablished,
    /// The audit table was busy (a write held it for longer than the store waits): nothing was
    /// written; a later run writes it.
    Busy,
    /// The store keeps no summaries (the default), or was opened only to read.
    Unsupported,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AuditState, RecoveryStrategy, TxStrategy};

    fn unit(id: &str, checksum: &str, run_always: bool) -> SummaryUnit {
        SummaryUnit {
            change_id: id.into(),
            checksum: checksum.into(),
            run_always,
        }
    }

    fn state(id: &str, state: AuditState, checksum: &str, tries: i64) -> UnitState {
        UnitState {
            change_id: id.into(),
            state,
            execution_id: "e".into(),
            created_at: None,
            error: None,
            checksum: Some(checksum.into()),
            tries,
        }
    }

    fn row(id: i64, change_id: &str, state: AuditState, checksum: &str) -> AuditEntry {
        AuditEntry {
            id,
            execution_id: format!("x{id}"),
            change_id: change_id.into(),
            author: "t".into(),
            change_order: "1".into(),
            stage: "default".into(),
            state,
            created_at: None,
            execution_ms: None,
            hostname: "h".into(),
            runner_id: "r".into(),
            target_system: "default".into(),
            tx_strategy: TxStrategy::Shared,
            recovery_strategy: RecoveryStrategy::ManualIntervention,
            app_name: None,
            app_version: None,
            source: "s".into(),
            checksum: Some(checksum.into()),
            error: None,
            metadata: None,
            system_version: None,
        }
    }

    fn plan() -> PlanDigest {
        PlanDigest::from_units(vec![unit("a", "ca", false), unit("every", "ce", true)])
    }

    #[test]
    fn the_digest_names_ids_checksums_order_and_run_always() {
        let base = plan().digest().to_owned();
        let variants = [
            vec![unit("a", "cx", false), unit("every", "ce", true)],
            vec![unit("a", "ca", true), unit("every", "ce", true)],
            vec![unit("every", "ce", true), unit("a", "ca", false)],
            vec![unit("a", "ca", false)],
            vec![unit("ac", "a", false), unit("every", "ce", true)],
        ];
        for units in variants {
            assert_ne!(
                PlanDigest::from_units(units.clone()).digest(),
                base,
                "{units:?}"
            );
        }
        assert_eq!(plan().digest(), base);
    }

    #[test]
    fn a_summary_is_established_only_when_every_other_unit_is_applied_unchanged() {
        let plan = plan();
        let mut states =
            HashMap::from([("a".to_owned(), state("a", AuditState::Applied, "ca", 1))]);
        assert_eq!(plan.establish(&states), Some(vec![]));
        let every = state("every", AuditState::Applied, "ce", 4);
        states.insert("every".into(), every.clone());
        assert_eq!(plan.establish(&states), Some(vec![every]));
        for refused in [
            state("a", AuditState::Failed, "ca", 1),
            state("a", AuditState::RolledBack, "ca", 1),
            state("a", AuditState::Applied, "drifted", 1),
            UnitState {
                checksum: None,
                ..state("a", AuditState::Applied, "ca", 1)
            },
        ] {
            states.insert("a".into(), refused.clone());
            assert_eq!(plan.establish(&states), None, "{refused:?}");
        }
        states.insert(
            "a".into(),
            state("a", AuditState::ManualMarkedAsApplied, "ca", 1),
        );
        assert!(plan.establish(&states).is_some());
        states.remove("a");
        assert_eq!(plan.establish(&states), None, "a unit that never ran");
    }

    #[test]
    fn a_summary_advances_over_the_rows_written_since() {
        let plan = plan();
        let every = state("every", AuditState::Applied, "ce", 4);
        let newer = [
            row(10, "every", AuditState::Applied, "ce"),
            row(11, "other-plan", AuditState::Failed, "zz"),
        ];
        let advanced = plan.advance(vec![every], &newer).expect("still holds");
        assert_eq!(advanced.len(), 1);
        assert_eq!(advanced[0].tries, 5);
        assert_eq!(advanced[0].execution_id, "x10");
        let first = plan
            .advance(vec![], &[row(3, "every", AuditState::Applied, "ce")])
            .expect("holds");
        assert_eq!(first[0].tries, 1);
    }

    #[test]
    fn an_undo_or_fix_among_the_newer_rows_ends_the_summary_unless_reapplied() {
        let plan = plan();
        let undone = [
            row(10, "a", AuditState::RollbackStarted, "ca"),
            row(11, "a", AuditState::RolledBack, "ca"),
        ];
        assert_eq!(plan.advance(vec![], &undone), None);
        let reapplied = [
            row(10, "a", AuditState::RolledBack, "ca"),
            row(12, "a", AuditState::Applied, "ca"),
        ];
        assert_eq!(plan.advance(vec![], &reapplied), Some(vec![]));
        let fixed_back = [row(10, "a", AuditState::ManualMarkedAsRolledBack, "ca")];
        assert_eq!(plan.advance(vec![], &fixed_back), None);
        let repaired_elsewhere = [row(10, "a", AuditState::Applied, "other")];
        assert_eq!(plan.advance(vec![], &repaired_elsewhere), None);
    }
}
