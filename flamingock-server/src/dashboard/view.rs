//! What the pages show, computed from a scope's audit and its latest plan: each unit's line
//! (state, pending, blocked), a scope's counts, and the history filters of the query string.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use flamingock_client::Scope;
use flamingock_client::wire::PlanReply;
use flamingock_core::history::HistoryQuery;
use flamingock_core::plan::{Decision, decide, natural_cmp};
use flamingock_core::{AuditEntry, AuditState, StoreError};
use serde::Deserialize;

use super::PageError;
use crate::db::ServerDb;
use crate::plans;

/// Rows per history page.
pub const PAGE_SIZE: u32 = 50;

/// One unit as the scope page lists it.
#[derive(Debug, Clone)]
pub struct UnitLine {
    /// The unit's id.
    pub change_id: String,
    /// Its order.
    pub order: String,
    /// Its own author (not the person of a fix).
    pub author: String,
    /// Its system version.
    pub system_version: Option<String>,
    /// Its newest row, if it has one.
    pub latest: Option<AuditEntry>,
    /// Its newest row's state needs a person (`flamingock fix`) before runs go on.
    pub blocked: bool,
    /// The latest plan names it and a run would apply it.
    pub pending: bool,
    /// The latest plan names it.
    pub in_plan: bool,
}

impl UnitLine {
    /// The newest row's state.
    pub fn state(&self) -> Option<AuditState> {
        self.latest.as_ref().map(|row| row.state)
    }

    /// Whether the newest row records a failure.
    pub fn failed(&self) -> bool {
        matches!(
            self.state(),
            Some(AuditState::Failed | AuditState::RollbackFailed)
        )
    }
}

/// A scope: its audit's newest row per unit and its latest plan, as one list of units.
pub struct ScopeView {
    /// Its units: the plan's in run order, then those only the audit knows, by order.
    pub units: Vec<UnitLine>,
    /// The latest plan, if a runner reported one.
    pub plan: Option<PlanReply>,
    /// Whether the scope has an audit table.
    pub audited: bool,
}

impl ScopeView {
    /// Reads `scope`; `None` when the server knows nothing of it (no audit table, no plan).
    pub async fn load(db: &ServerDb, scope: &Scope) -> Result<Option<ScopeView>, PageError> {
        let latest = latest_rows(db, scope).await?;
        let plan = plans::latest(db, scope).await?;
        if latest.is_none() && plan.is_none() {
            return Ok(None);
        }
        let audited = latest.is_some();
        let units = unit_lines(plan.as_ref(), latest.unwrap_or_default());
        Ok(Some(ScopeView {
            units,
            plan,
            audited,
        }))
    }

    /// Units whose newest row is applied.
    pub fn applied(&self) -> usize {
        self.units
            .iter()
            .filter(|u| u.state().is_some_and(AuditState::is_applied))
            .count()
    }

    /// Units a run of the latest plan would apply; `None` without a plan.
    pub fn pending(&self) -> Option<usize> {
        self.plan
            .as_ref()
            .map(|_| self.units.iter().filter(|u| u.pending).count())
    }

    /// Units that need a person.
    pub fn blocked(&self) -> usize {
        self.units.iter().filter(|u| u.blocked).count()
    }

    /// Units whose newest row is a failure.
    pub fn failed(&self) -> usize {
        self.units.iter().filter(|u| u.failed()).count()
    }

    /// The newest row's time.
    pub fn last_change(&self) -> Option<DateTime<Utc>> {
        self.units
            .iter()
            .filter_map(|u| u.latest.as_ref().and_then(|row| row.created_at))
            .max()
    }
}

/// The newest row of every unit of `scope`; `None` when it has no audit table.
pub async fn latest_rows(
    db: &ServerDb,
    scope: &Scope,
) -> Result<Option<Vec<AuditEntry>>, PageError> {
    let store = db.store(scope, true)?;
    match store.history(&HistoryQuery::new().latest_per_unit()).await {
        Ok(rows) => Ok(Some(rows)),
        Err(error) => match store.initialize().await {
            Err(StoreError::NoAuditTable { .. }) => Ok(None),
            _ => Err(error.into()),
        },
    }
}

/// The lines of a scope's units (see [`ScopeView::units`]).
fn unit_lines(plan: Option<&PlanReply>, latest: Vec<AuditEntry>) -> Vec<UnitLine> {
    let mut rows: HashMap<String, AuditEntry> = latest
        .into_iter()
        .map(|row| (row.change_id.clone(), row))
        .collect();
    let mut lines = Vec::new();
    for unit in plan.iter().flat_map(|p| &p.plan.units) {
        let latest = rows.remove(&unit.change_id);
        let state = latest.as_ref().map(|row| row.state);
        let decision = decide(
            unit.tx_strategy,
            unit.recovery_strategy,
            unit.run_always,
            state,
        );
        let blocked = decision == Decision::Block;
        lines.push(UnitLine {
            change_id: unit.change_id.clone(),
            order: unit.order.clone(),
            author: latest
                .as_ref()
                .map_or_else(|| unit.author.clone(), |row| row.unit_author().to_owned()),
            system_version: unit.system_version.clone(),
            blocked,
            pending: !unit.out_of_range
                && !unit.run_always
                && matches!(decision, Decision::Apply | Decision::ConsultMarker),
            in_plan: true,
            latest,
        });
    }
    let mut rest: Vec<AuditEntry> = rows.into_values().collect();
    rest.sort_by(|a, b| natural_cmp(&a.change_order, &b.change_order));
    for row in rest {
        let blocked = decide(
            row.tx_strategy,
            row.recovery_strategy,
            false,
            Some(row.state),
        ) == Decision::Block;
        lines.push(UnitLine {
            change_id: row.change_id.clone(),
            order: row.change_order.clone(),
            author: row.unit_author().to_owned(),
            system_version: row.system_version.clone(),
            blocked,
            pending: false,
            in_plan: false,
            latest: Some(row),
        });
    }
    lines
}

/// The history filters of a query string, as typed (the CLI's: change, author, state, from, to)
/// and the page position.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct HistoryFilter {
    /// Only rows of this unit.
    pub change: Option<String>,
    /// Only rows with this author.
    pub author: Option<String>,
    /// Only rows in this state.
    pub state: Option<String>,
    /// Only rows at or after: `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM[:SS]` (UTC) or RFC 3339.
    pub from: Option<String>,
    /// Only rows up to: the same forms; a bare date takes the whole day.
    pub to: Option<String>,
    /// Older page: rows before this row id.
    pub after: Option<String>,
    /// Newer page: rows after this row id.
    pub before: Option<String>,
    /// `csv` or `json` (the export).
    pub format: Option<String>,
}

/// A value the person left empty is no filter.
fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// Where a page of the history starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PagePosition {
    /// The newest rows.
    Newest,
    /// Rows older than this id.
    OlderThan(i64),
    /// Rows newer than this id.
    NewerThan(i64),
}

impl HistoryFilter {
    /// The query the filters select (no order, position or limit), or what is wrong with them.
    pub fn query(&self) -> Result<HistoryQuery, PageError> {
        let mut query = HistoryQuery::new();
        if let Some(change) = given(&self.change) {
            query = query.change(change);
        }
        if let Some(author) = given(&self.author) {
            query = query.author(author);
        }
        if let Some(state) = given(&self.state) {
            let parsed = AuditState::parse(state).ok_or_else(|| {
                let all: Vec<String> = AuditState::ALL.iter().map(ToString::to_string).collect();
                PageError::bad_request(format!(
                    "{state:?} is not a state; one of {}",
                    all.join(", ")
                ))
            })?;
            query = query.state(parsed);
        }
        if let Some(from) = given(&self.from) {
            query = query.since(instant("from", from, false)?);
        }
        if let Some(to) = given(&self.to) {
            query = query.until(instant("to", to, true)?);
        }
        if let (Some(since), Some(until)) = (query.since, query.until)
            && since >= until
        {
            return Err(PageError::bad_request(
                "the date range is empty: \"from\" must come before \"to\"",
            ));
        }
        Ok(query)
    }

    /// The page position (`after` or `before`, not both).
    pub fn position(&self) -> Result<PagePosition, PageError> {
        let id = |name: &str, value: &str| {
            value
                .parse::<i64>()
                .ok()
                .filter(|id| *id > 0)
                .ok_or_else(|| {
                    PageError::bad_request(format!(
                        "{name}={value:?} is not a page position (a row id, as the older and newer links give)"
                    ))
                })
        };
        match (given(&self.after), given(&self.before)) {
            (Some(_), Some(_)) => Err(PageError::bad_request(
                "give \"after\" or \"before\", not both",
            )),
            (Some(after), None) => Ok(PagePosition::OlderThan(id("after", after)?)),
            (None, Some(before)) => Ok(PagePosition::NewerThan(id("before", before)?)),
            (None, None) => Ok(PagePosition::Newest),
        }
    }

    /// The filters as a query string (`&`-joined, values encoded), without position or format.
    pub fn query_string(&self) -> String {
        let fields = [
            ("change", &self.change),
            ("author", &self.author),
            ("state", &self.state),
            ("from", &self.from),
            ("to", &self.to),
        ];
        fields
            .iter()
            .filter_map(|(name, value)| {
                given(value).map(|v| format!("{name}={}", super::html::url_part(v)))
            })
            .collect::<Vec<_>>()
            .join("&")
    }
}

/// An instant a person typed in a filter; with `end_of_day`, a bare date means the day after
/// it begins (so that "to 2026-12-03" takes all of that day).
fn instant(name: &str, text: &str, end_of_day: bool) -> Result<DateTime<Utc>, PageError> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(at) = NaiveDateTime::parse_from_str(text, format) {
            return Ok(at.and_utc());
        }
    }
    if let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        let day = if end_of_day {
            day.succ_opt()
        } else {
            Some(day)
        };
        if let Some(at) = day.and_then(|d| d.and_hms_opt(0, 0, 0)) {
            return Ok(at.and_utc());
        }
    }
    Err(PageError::bad_request(format!(
        "{name}={text:?} is not a date: use YYYY-MM-DD or YYYY-MM-DDTHH:MM (UTC)"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(from: &str, to: &str) -> HistoryFilter {
        HistoryFilter {
            from: Some(from.to_owned()),
            to: Some(to.to_owned()),
            ..HistoryFilter::default()
        }
    }

    #[test]
    fn dates_are_read_in_the_forms_a_form_sends_and_a_bare_to_date_takes_its_day() {
        let query = filter("2026-12-01", "2026-12-02").query().expect("valid");
        assert_eq!(
            query.since.unwrap().to_rfc3339(),
            "2026-12-01T00:00:00+00:00"
        );
        assert_eq!(
            query.until.unwrap().to_rfc3339(),
            "2026-12-03T00:00:00+00:00"
        );
        let query = filter("2026-12-01T10:30", "2026-12-01T11:00:05Z")
            .query()
            .expect("valid");
        assert_eq!(
            query.since.unwrap().to_rfc3339(),
            "2026-12-01T10:30:00+00:00"
        );
        assert_eq!(
            query.until.unwrap().to_rfc3339(),
            "2026-12-01T11:00:05+00:00"
        );
    }

    #[test]
    fn bad_dates_states_and_positions_are_refused_with_what_is_wrong() {
        for bad in [
            filter("yesterday", "2026-12-02"),
            filter("2026-12-03", "2026-12-01"),
            filter("2026-02-30", "2026-03-01"),
        ] {
            assert!(bad.query().is_err(), "{bad:?}");
        }
        let state = HistoryFilter {
            state: Some("DONE".into()),
            ..HistoryFilter::default()
        };
        assert!(state.query().is_err());
        for (after, before) in [
            (Some("x"), None),
            (Some("-1"), None),
            (Some("1"), Some("2")),
        ] {
            let page = HistoryFilter {
                after: after.map(Into::into),
                before: before.map(Into::into),
                ..HistoryFilter::default()
            };
            assert!(page.position().is_err(), "{page:?}");
        }
    }
}
