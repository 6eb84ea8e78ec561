//! History queries: which audit rows an operator asks for (by unit, author, state, stage, run,
//! time range), in which order, one page at a time.
//!
//! A [`HistoryQuery`] is plain data; [`AuditStore::history`](crate::store::AuditStore::history)
//! answers it. SQL stores turn each filter into a fixed condition with a bound parameter and page
//! by row id (keyset paging), so a query reads only the rows it returns, however long the log.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::model::{AuditEntry, AuditState};

/// Which rows come first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HistoryOrder {
    /// Oldest first (by row id): the log as it was written.
    #[default]
    OldestFirst,
    /// Newest first.
    NewestFirst,
}

/// A history query: every filter that is set must match; an empty query selects every row.
///
/// ```
/// use flamingock_core::history::{HistoryQuery, HistoryOrder};
/// use flamingock_core::AuditState;
///
/// let query = HistoryQuery::new()
///     .author("ana")
///     .state(AuditState::Failed)
///     .newest_first()
///     .limit(20);
/// assert_eq!(query.order, HistoryOrder::NewestFirst);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HistoryQuery {
    /// Only rows of this change unit.
    pub change_id: Option<String>,
    /// Only rows with this author (a unit's author, or the person behind a `MANUAL_MARKED_*` row).
    pub author: Option<String>,
    /// Only rows in one of these states (empty: any state).
    pub states: Vec<AuditState>,
    /// Only rows of this stage.
    pub stage: Option<String>,
    /// Only rows of this run (its execution id).
    pub execution_id: Option<String>,
    /// Only rows of units that ship with this system version (`1.4.0`).
    pub system_version: Option<String>,
    /// Only rows written at or after this instant (database clock).
    pub since: Option<DateTime<Utc>>,
    /// Only rows written strictly before this instant (database clock).
    pub until: Option<DateTime<Utc>>,
    /// Only each unit's newest row (its current state), after the other filters are applied to
    /// that newest row.
    pub latest_per_unit: bool,
    /// Oldest or newest first.
    pub order: HistoryOrder,
    /// Keyset paging: only rows after this row id in the chosen order (pass the last id of the
    /// previous page).
    pub after_id: Option<i64>,
    /// At most this many rows.
    pub limit: Option<u32>,
}

impl HistoryQuery {
    /// A query selecting every row, oldest first.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only rows of this change unit.
    pub fn change(mut self, change_id: impl Into<String>) -> Self {
        self.change_id = Some(change_id.into());
        self
    }

    /// Only rows with this author.
    pub fn author(mut self, author: impl Into<String>) -> Self {
        self.author = Some(author.into());
        self
    }

    /// Also accept rows in `state` (the first call restricts to it, later calls add).
    pub fn state(mut self, state: AuditState) -> Self {
        if !self.states.contains(&state) {
            self.states.push(state);
        }
        self
    }

    /// Only rows of this stage.
    pub fn stage(mut self, stage: impl Into<String>) -> Self {
        self.stage = Some(stage.into());
        self
    }

    /// Only rows of this run.
    pub fn execution(mut self, execution_id: impl Into<String>) -> Self {
        self.execution_id = Some(execution_id.into());
        self
    }

    /// Only rows of units that ship with this system version.
    pub fn system_version(mut self, version: impl Into<String>) -> Self {
        self.system_version = Some(version.into());
        self
    }

    /// Only rows written at or after `at`.
    pub fn since(mut self, at: DateTime<Utc>) -> Self {
        self.since = Some(at);
        self
    }

    /// Only rows written before `at`.
    pub fn until(mut self, at: DateTime<Utc>) -> Self {
        self.until = Some(at);
        self
    }

    /// Only each unit's newest row.
    pub fn latest_per_unit(mut self) -> Self {
        self.latest_per_unit = true;
        self
    }

    /// Newest first.
    pub fn newest_first(mut self) -> Self {
        self.order = HistoryOrder::NewestFirst;
        self
    }

    /// Only rows after row `id` in the chosen order: the next page.
    pub fn after(mut self, id: i64) -> Self {
        self.after_id = Some(id);
        self
    }

    /// At most `limit` rows.
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Whether `entry` passes every row filter (not `latest_per_unit`, ordering or paging): the
    /// reference semantics SQL stores implement with indexed conditions.
    pub fn matches(&self, entry: &AuditEntry) -> bool {
        let created = entry.created_at;
        self.change_id
            .as_ref()
            .is_none_or(|c| *c == entry.change_id)
            && self.author.as_ref().is_none_or(|a| *a == entry.author)
            && (self.states.is_empty() || self.states.contains(&entry.state))
            && self.stage.as_ref().is_none_or(|s| *s == entry.stage)
            && self
                .execution_id
                .as_ref()
                .is_none_or(|e| *e == entry.execution_id)
            && self
                .system_version
                .as_ref()
                .is_none_or(|v| entry.system_version.as_ref() == Some(v))
            && self
                .since
                .is_none_or(|since| created.is_some_and(|at| at >= since))
            && self
                .until
                .is_none_or(|until| created.is_some_and(|at| at < until))
    }

    /// Answers the query over rows held in memory (oldest first, as written): what the in-memory
    /// store does, and the default for stores that have no better way.
    pub fn apply_to(&self, rows: &[AuditEntry]) -> Vec<AuditEntry> {
        let newest: std::collections::HashMap<&str, i64> = if self.latest_per_unit {
            rows.iter()
                .map(|row| (row.change_id.as_str(), row.id))
                .collect()
        } else {
            Default::default()
        };
        let selected = rows.iter().filter(|row| {
            (!self.latest_per_unit || newest.get(row.change_id.as_str()) == Some(&row.id))
                && self.matches(row)
        });
        let mut selected: Vec<&AuditEntry> = match self.order {
            HistoryOrder::OldestFirst => selected
                .filter(|row| self.after_id.is_none_or(|after| row.id > after))
                .collect(),
            HistoryOrder::NewestFirst => selected
                .filter(|row| self.after_id.is_none_or(|after| row.id < after))
                .collect(),
        };
        selected.sort_by_key(|row| row.id);
        if self.order == HistoryOrder::NewestFirst {
            selected.reverse();
        }
        let limit = self.limit.map_or(usize::MAX, |l| l as usize);
        selected.into_iter().take(limit).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{RecoveryStrategy, TxStrategy};

    fn row(id: i64, change_id: &str, author: &str, state: AuditState, second: u32) -> AuditEntry {
        AuditEntry {
            id,
            execution_id: format!("run-{}", id % 2),
            change_id: change_id.into(),
            author: author.into(),
            change_order: "1".into(),
            stage: "default".into(),
            state,
            created_at: Some(
                DateTime::parse_from_rfc3339(&format!("2026-01-01T00:00:{second:02}Z"))
                    .expect("a timestamp")
                    .with_timezone(&Utc),
            ),
            execution_ms: None,
            hostname: "h".into(),
            runner_id: "r".into(),
            target_system: "default".into(),
            tx_strategy: TxStrategy::NonTransactional,
            recovery_strategy: RecoveryStrategy::ManualIntervention,
            app_name: None,
            app_version: None,
            source: "s".into(),
            checksum: None,
            error: None,
            metadata: None,
            system_version: None,
        }
    }

    fn rows() -> Vec<AuditEntry> {
        vec![
            row(1, "a", "ana", AuditState::Started, 1),
            row(2, "a", "ana", AuditState::Applied, 2),
            row(3, "b", "bo", AuditState::Started, 3),
            row(4, "b", "bo", AuditState::Failed, 4),
            row(5, "b", "cy", AuditState::ManualMarkedAsApplied, 5),
        ]
    }

    fn ids(rows: Vec<AuditEntry>) -> Vec<i64> {
        rows.into_iter().map(|r| r.id).collect()
    }

    #[test]
    fn filters_combine() {
        assert_eq!(ids(HistoryQuery::new().apply_to(&rows())), [1, 2, 3, 4, 5]);
        assert_eq!(
            ids(HistoryQuery::new().author("bo").apply_to(&rows())),
            [3, 4]
        );
        let states = HistoryQuery::new()
            .state(AuditState::Started)
            .state(AuditState::Applied);
        assert_eq!(ids(states.apply_to(&rows())), [1, 2, 3]);
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let range = HistoryQuery::new()
            .since(at("2026-01-01T00:00:02Z"))
            .until(at("2026-01-01T00:00:04Z"));
        assert_eq!(ids(range.apply_to(&rows())), [2, 3]);
        assert_eq!(
            ids(HistoryQuery::new().execution("run-0").apply_to(&rows())),
            [2, 4]
        );
    }

    #[test]
    fn latest_per_unit_keeps_each_units_newest_row() {
        let query = HistoryQuery::new().latest_per_unit();
        assert_eq!(ids(query.clone().apply_to(&rows())), [2, 5]);
        // Filters apply to the newest row: "b" is no longer FAILED.
        assert!(query.state(AuditState::Failed).apply_to(&rows()).is_empty());
    }

    #[test]
    fn pages_by_id_in_either_order() {
        let page = HistoryQuery::new().limit(2);
        assert_eq!(ids(page.clone().apply_to(&rows())), [1, 2]);
        assert_eq!(ids(page.clone().after(2).apply_to(&rows())), [3, 4]);
        let newest = HistoryQuery::new().newest_first().limit(2);
        assert_eq!(ids(newest.clone().apply_to(&rows())), [5, 4]);
        assert_eq!(ids(newest.after(4).apply_to(&rows())), [3, 2]);
    }
}
