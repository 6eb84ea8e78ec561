//! Manual intervention (`flamingock fix`): a person who checked a target records what they found,
//! as a `MANUAL_MARKED_AS_APPLIED` or `MANUAL_MARKED_AS_ROLLED_BACK` row with who and why,
//! appended under the lock (docs/architecture.md#recovery).
//!
//! The row copies the unit's newest audit row (stage, target, strategy, source), so `fix` works
//! from the audit alone, in the standalone binary too; a unit with no rows yet is described from
//! its registration. Its `author` is the person who made the decision; the unit's own author,
//! the person and the reason are kept in `metadata`.

use serde::Serialize;

use super::Engine;
use super::attempt::Attempt;
use super::lease::Lease;
use super::planned::PlannedUnit;
use crate::error::Error;
use crate::history::HistoryQuery;
use crate::model::{AuditEntry, AuditState, ChangeUnit, metadata_keys};
use crate::store::StoreError;

/// What the person found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    /// The unit's effect is in place: runs skip it from now on.
    Applied,
    /// The unit's effect is not in place: the next run applies it again.
    RolledBack,
}

impl Resolution {
    /// The state recorded.
    pub fn state(self) -> AuditState {
        match self {
            Resolution::Applied => AuditState::ManualMarkedAsApplied,
            Resolution::RolledBack => AuditState::ManualMarkedAsRolledBack,
        }
    }
}

/// A manual resolution to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixRequest {
    /// The unit.
    pub change_id: String,
    /// What the person found: the change is in place, or it is not.
    pub resolution: Resolution,
    /// Who decided (recorded as the row's author).
    pub operator: String,
    /// Why: what was checked, what was found.
    pub reason: String,
    /// The unit's state the person saw when deciding. When set, the fix is refused (nothing
    /// recorded) if the unit's newest row says otherwise by the time the lock is held: another
    /// run or fix changed it meanwhile, and the decision was made on a state that is gone.
    pub expected: Option<SeenState>,
}

/// What a person saw of a unit before deciding a fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "state")]
pub enum SeenState {
    /// The audit had no row of the unit.
    NeverRan,
    /// The unit's newest row was in this state.
    State(AuditState),
}

impl SeenState {
    /// What the newest row's state (none: no row) shows.
    pub fn of(state: Option<AuditState>) -> Self {
        state.map_or(SeenState::NeverRan, SeenState::State)
    }
}

impl std::fmt::Display for SeenState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SeenState::NeverRan => f.write_str("never ran"),
            SeenState::State(state) => write!(f, "{state}"),
        }
    }
}

/// What `fix` recorded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FixOutcome {
    /// The unit's state before.
    pub previous: Option<AuditState>,
    /// The row appended (its `id` and `created_at` are the store's, not shown here).
    pub entry: AuditEntry,
}

/// Everything `fix` can fail with; nothing is recorded in any case.
#[derive(Debug, thiserror::Error)]
pub enum FixError {
    /// The id is in neither the audit nor this binary's units.
    #[error(
        "no change unit \"{0}\" is known: the audit has no row of it and this program declares none; check the id with `flamingock status` or `flamingock history`"
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
    #[error("{0} must not be empty: the audit keeps who resolved a unit and why")]
    Missing(&'static str),
    /// The unit's state changed between the person's look and the lock; nothing was recorded.
    #[error(
        "the state of \"{change_id}\" changed from {seen} to {now} since it was read (another run or fix wrote to it meanwhile); nothing was recorded: look at it again with `flamingock status` and repeat the fix if it still holds"
    )]
    StateChanged {
        /// The unit.
        change_id: String,
        /// The state the person saw.
        seen: SeenState,
        /// The state the audit has now.
        now: SeenState,
    },
    /// The resolution's row was sent but its reply was lost, and the audit could not be read
    /// again to learn whether it is there.
    #[error(
        "whether the resolution of \"{change_id}\" was recorded is unknown (the reply of its write was lost and the audit could not be read again): look with `flamingock status`; repeating the fix with the state shown before is refused if it was recorded"
    )]
    OutcomeUnknown {
        /// The unit whose resolution may or may not be recorded.
        change_id: String,
        /// The write's error (or the lost reply).
        #[source]
        source: StoreError,
    },
    /// The store, the lock or the unit's target failed.
    #[error(transparent)]
    Engine(#[from] Error),
}

impl Engine {
    /// After the resolution's write failed with `error` (or lost its reply): `Ok` when its row
    /// is the unit's newest (under the lock nobody else writes it), the error otherwise.
    pub(super) async fn find_out_fix(
        &self,
        entry: &AuditEntry,
        error: Option<StoreError>,
    ) -> Result<(), FixError> {
        let error = match error {
            Some(lost @ StoreError::LockLost { .. }) => return Err(FixError::Engine(lost.into())),
            other => other,
        };
        let settled = !matches!(&error, None | Some(StoreError::OutcomeUnknown { .. }));
        let query = HistoryQuery::new()
            .change(&entry.change_id)
            .newest_first()
            .limit(1);
        let newest =
            super::attempt::read_evidence(&entry.change_id, "audit", || self.store.history(&query))
                .await;
        if let Some(rows) = newest {
            let found = rows.first().is_some_and(|row| {
                row.execution_id == entry.execution_id && row.state == entry.state
            });
            tracing::warn!(change_id = %entry.change_id, found, "a fix's reply was lost; the audit tells");
            return match (found, error) {
                (true, _) => Ok(()),
                (false, Some(error)) if settled => Err(FixError::Engine(error.into())),
                (false, error) => Err(unknown_fix(entry, error)),
            };
        }
        match error {
            Some(error) if settled => Err(FixError::Engine(error.into())),
            error => Err(unknown_fix(entry, error)),
        }
    }

    /// Records a person's resolution of a unit, under the lock. `units` are the units this program
    /// declares (none, from the standalone binary): they describe a unit the audit has no row of.
    pub async fn fix(
        &self,
        units: impl IntoIterator<Item = &'static ChangeUnit>,
        request: &FixRequest,
    ) -> Result<FixOutcome, FixError> {
        if request.reason.trim().is_empty() {
            return Err(FixError::Missing("the reason"));
        }
        if request.operator.trim().is_empty() {
            return Err(FixError::Missing("who resolved it"));
        }
        if let Some(problem) = crate::plan::text_problem("id", &request.change_id) {
            return Err(FixError::InvalidId {
                change_id: request.change_id.clone(),
                problem,
            });
        }
        self.with_lock(async |lease| self.record_fix(units, request, lease).await)
            .await
    }

    async fn record_fix(
        &self,
        units: impl IntoIterator<Item = &'static ChangeUnit>,
        request: &FixRequest,
        lease: Option<&Lease>,
    ) -> Result<FixOutcome, FixError> {
        let newest = self.newest_row(&request.change_id).await?;
        let execution_id = uuid::Uuid::now_v7().to_string();
        let previous = newest.as_ref().map(|row| row.state);
        if let Some(seen) = request.expected
            && seen != SeenState::of(previous)
        {
            return Err(FixError::StateChanged {
                change_id: request.change_id.clone(),
                seen,
                now: SeenState::of(previous),
            });
        }
        // Copied from the newest row, which may itself be a fix (its author is then that
        // operator, the unit's author in its metadata).
        let unit_author = newest.as_ref().map(|row| row.unit_author().to_owned());
        let mut entry = match newest {
            Some(row) => AuditEntry {
                id: 0,
                created_at: None,
                execution_id,
                hostname: self.hostname.clone(),
                runner_id: self.runner_id.clone(),
                app_name: self.options.app_name.clone(),
                app_version: self.options.app_version.clone(),
                execution_ms: None,
                error: None,
                metadata: None,
                ..row
            },
            None => {
                let unit = units
                    .into_iter()
                    .find(|unit| unit.id == request.change_id)
                    .ok_or_else(|| FixError::UnknownUnit(request.change_id.clone()))?;
                let planned = PlannedUnit::new(unit, self.resolve_route(unit)?);
                Attempt::new(self, &planned, &execution_id, 1, None).entry(
                    AuditState::Applied,
                    None,
                    None,
                )
            }
        };
        let unit_author = unit_author.unwrap_or_else(|| entry.author.clone());
        entry.metadata = Some(manual_metadata(
            entry.metadata.take(),
            unit_author,
            &request.operator,
            &request.reason,
            [],
        ));
        entry.author = request.operator.clone();
        entry.state = request.resolution.state();
        let written = self
            .store
            .append(&entry, lease.map(|lease| &lease.fence))
            .await;
        match written {
            Ok(()) if !crate::failpoint::reply_lost("fix.recorded") => {}
            Ok(()) => self.find_out_fix(&entry, None).await?,
            Err(error) => self.find_out_fix(&entry, Some(error)).await?,
        }
        tracing::info!(
            change_id = %entry.change_id,
            state = %entry.state,
            operator = %request.operator,
            "manual resolution recorded"
        );
        Ok(FixOutcome { previous, entry })
    }
}

impl Engine {
    /// The newest audit row of unit `change_id`, if it has any.
    pub(super) async fn newest_row(&self, change_id: &str) -> Result<Option<AuditEntry>, Error> {
        Ok(self
            .store
            .history(
                &HistoryQuery::new()
                    .change(change_id)
                    .newest_first()
                    .limit(1),
            )
            .await?
            .pop()
            // MariaDB compares with trailing spaces padded: only the very id is this unit's.
            .filter(|row| row.change_id == change_id))
    }
}

/// The metadata of a row a person writes (fix, repair, baseline): `existing` (when it is an
/// object), marked `manual`, with the unit's own author, who decided and why, then `extra`.
pub(super) fn manual_metadata(
    existing: Option<serde_json::Value>,
    unit_author: String,
    operator: &str,
    reason: &str,
    extra: impl IntoIterator<Item = (&'static str, serde_json::Value)>,
) -> serde_json::Value {
    let mut metadata = match existing {
        Some(serde_json::Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    metadata.insert(metadata_keys::MANUAL.into(), true.into());
    metadata.insert(metadata_keys::UNIT_AUTHOR.into(), unit_author.into());
    metadata.insert(metadata_keys::RESOLVED_BY.into(), operator.into());
    metadata.insert(metadata_keys::REASON.into(), reason.into());
    for (key, value) in extra {
        metadata.insert(key.into(), value);
    }
    serde_json::Value::Object(metadata)
}

fn unknown_fix(entry: &AuditEntry, error: Option<StoreError>) -> FixError {
    FixError::OutcomeUnknown {
        change_id: entry.change_id.clone(),
        source: error.unwrap_or_else(|| StoreError::OutcomeUnknown {
            action: "recording a manual resolution",
            source: "the reply of the write was lost (failure point)".into(),
        }),
    }
}
