//! The domain vocabulary: change units as registered by the macros, audit states, strategies and
//! audit entries as stored.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::inject::Scope;
use crate::inject::{ParamSpec, UnitFuture};

/// Where a change unit was declared: shown in every error that names a unit and stored in the
/// audit's `source` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceLocation {
    /// `module_path!()` of the unit.
    pub module_path: &'static str,
    /// `file!()` of the `#[change_unit]` attribute.
    pub file: &'static str,
    /// `line!()` of the `#[change_unit]` attribute.
    pub line: u32,
}

impl fmt::Display for SourceLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}:{})", self.module_path, self.file, self.line)
    }
}

/// What the next run does with a unit whose outcome is in doubt (docs/architecture.md#strategies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecoveryStrategy {
    /// A non-transactional unit left `STARTED`, `FAILED` or `ROLLBACK_FAILED` blocks its stage
    /// until a person resolves it with `flamingock fix`.
    ManualIntervention,
    /// The unit is applied again, whatever its last state.
    AlwaysRetry,
}

impl RecoveryStrategy {
    /// The value stored in the audit's `recovery_strategy` column.
    pub fn as_str(self) -> &'static str {
        match self {
            RecoveryStrategy::ManualIntervention => "MANUAL_INTERVENTION",
            RecoveryStrategy::AlwaysRetry => "ALWAYS_RETRY",
        }
    }
}

/// How a unit's effect and its audit entry are tied together (docs/architecture.md#strategies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TxStrategy {
    /// The target is the audit store's own database: change and `APPLIED` commit together.
    #[serde(rename = "TX_SHARED")]
    Shared,
    /// Another transactional database: a marker row in the target makes the outcome recoverable.
    #[serde(rename = "TX_SEPARATE")]
    Separate,
    /// Anything else: `STARTED`, execute, `APPLIED`; rollback code undoes a failure.
    #[serde(rename = "NON_TX")]
    NonTransactional,
}

impl TxStrategy {
    /// The value stored in the audit's `tx_strategy` column.
    pub fn as_str(self) -> &'static str {
        match self {
            TxStrategy::Shared => "TX_SHARED",
            TxStrategy::Separate => "TX_SEPARATE",
            TxStrategy::NonTransactional => "NON_TX",
        }
    }

    /// Parses the stored form.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "TX_SHARED" => TxStrategy::Shared,
            "TX_SEPARATE" => TxStrategy::Separate,
            "NON_TX" => TxStrategy::NonTransactional,
            _ => return None,
        })
    }
}

impl fmt::Display for TxStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One state change of a unit, as recorded in the audit store (docs/architecture.md#audit-states).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AuditState {
    /// A non-transactional or separate-target unit began; newest, the try was interrupted.
    Started,
    /// The unit's change is in place.
    Applied,
    /// The unit failed; a transactional unit's change was rolled back by its database.
    Failed,
    /// The unit's `#[rollback_execution]` undid it (after a failure, or by `undo`).
    RolledBack,
    /// The rollback failed too: the unit blocks its stage until a person resolves it.
    RollbackFailed,
    /// A person recorded with `flamingock fix --applied` that the change is in place.
    ManualMarkedAsApplied,
    /// A person recorded with `flamingock fix --rolled-back` that it is not.
    ManualMarkedAsRolledBack,
    /// An undo is rolling the unit back (written before non-transactional rollback code, or a
    /// separate target's rollback transaction, runs). Newest, it means the undo was interrupted
    /// and its outcome is unknown: the unit blocks until a person resolves it with `fix`.
    RollbackStarted,
}

impl AuditState {
    /// Every state, in the order docs/architecture.md#audit-states lists them.
    pub const ALL: [AuditState; 8] = [
        AuditState::Started,
        AuditState::Applied,
        AuditState::Failed,
        AuditState::RolledBack,
        AuditState::RollbackFailed,
        AuditState::ManualMarkedAsApplied,
        AuditState::ManualMarkedAsRolledBack,
        AuditState::RollbackStarted,
    ];

    /// The value stored in the audit's `state` column.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditState::Started => "STARTED",
            AuditState::Applied => "APPLIED",
            AuditState::Failed => "FAILED",
            AuditState::RolledBack => "ROLLED_BACK",
            AuditState::RollbackFailed => "ROLLBACK_FAILED",
            AuditState::ManualMarkedAsApplied => "MANUAL_MARKED_AS_APPLIED",
            AuditState::ManualMarkedAsRolledBack => "MANUAL_MARKED_AS_ROLLED_BACK",
            AuditState::RollbackStarted => "ROLLBACK_STARTED",
        }
    }

    /// Parses the stored form; `None` for anything else (a foreign or corrupt row).
    pub fn parse(s: &str) -> Option<Self> {
        AuditState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
    }

    /// `APPLIED` or `MANUAL_MARKED_AS_APPLIED`: the unit's effect is in place.
    pub fn is_applied(self) -> bool {
        matches!(
            self,
            AuditState::Applied | AuditState::ManualMarkedAsApplied
        )
    }
}

impl fmt::Display for AuditState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A method of a change unit (`#[execution]` or `#[rollback_execution]`), as generated by the macro
/// or by [`crate::testing::UnitBuilder`].
///
/// Plumbing of `#[change_unit]`, not a public API: it changes without notice.
#[doc(hidden)]
#[derive(Clone, Copy)]
pub struct UnitMethod {
    /// The method's name in the user's code.
    pub name: &'static str,
    /// What each parameter asks to be injected with.
    pub params: &'static (dyn Fn() -> Vec<ParamSpec> + Send + Sync),
    /// Calls the method with its parameters resolved from the scope.
    pub call: &'static (dyn for<'s> Fn(Scope<'s>) -> UnitFuture<'s> + Send + Sync),
}

impl fmt::Debug for UnitMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnitMethod")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// A change unit as registered at compile time by `#[change_unit]` (through `inventory`).
///
/// Everything here is `'static` and const-constructible, so that a registration is a plain static.
#[derive(Debug, Clone, Copy)]
pub struct ChangeUnit {
    /// `id = "..."`: identifies the unit in the audit store forever.
    pub id: &'static str,
    /// `order = "..."`: its position among all units (digit runs compare as numbers).
    pub order: &'static str,
    /// `author = "..."`: who wrote it.
    pub author: &'static str,
    /// The named target system; `None` is the audit store's own database.
    pub target_system: Option<&'static str>,
    /// `transactional = ...` (default `true`): whether it runs in its target's transaction.
    pub transactional: bool,
    /// `recovery = "..."`: what the next run does after it failed or was interrupted.
    pub recovery: RecoveryStrategy,
    /// `run_always = true`: applied on every run.
    pub run_always: bool,
    /// `system_version = "..."`: the version of the system the change belongs to.
    pub system_version: Option<&'static str>,
    /// `stage = "..."`; `None` is the stage `"default"`.
    pub stage: Option<&'static str>,
    /// `description = "..."`.
    pub description: Option<&'static str>,
    /// Where the unit is declared.
    pub source: SourceLocation,
    /// A hash of the unit's source tokens, computed at compile time.
    pub checksum: &'static str,
    /// The `#[execution]` method.
    pub execution: UnitMethod,
    /// The `#[rollback_execution]` method, if the unit has one.
    pub rollback: Option<UnitMethod>,
}

inventory::collect!(ChangeUnit);

impl ChangeUnit {
    /// Every change unit linked into this binary, in no particular order.
    pub fn registered() -> impl Iterator<Item = &'static ChangeUnit> {
        inventory::iter::<ChangeUnit>.into_iter()
    }

    /// The stage the unit belongs to (`"default"` when none is given).
    pub fn stage_name(&self) -> &'static str {
        self.stage.unwrap_or(DEFAULT_STAGE)
    }

    /// The target system's name (`"default"`: the audit store's own database).
    pub fn target_name(&self) -> &'static str {
        self.target_system.unwrap_or(DEFAULT_TARGET)
    }
}

/// The stage of units that name none.
pub const DEFAULT_STAGE: &str = "default";
/// The name of the audit store's own database as a target system.
pub const DEFAULT_TARGET: &str = "default";

/// The keys of [`AuditEntry::metadata`] that Flamingock itself writes and reads.
pub mod metadata_keys {
    /// The unit's description (string).
    pub const DESCRIPTION: &str = "description";
    /// The system version of the unit, on rows written before the audit table had a
    /// `system_version` column of its own (string; see [`AuditEntry::system_version`](super::AuditEntry::system_version)).
    pub const SYSTEM_VERSION: &str = "system_version";
    /// `true` when the unit runs at every start.
    pub const RUN_ALWAYS: &str = "run_always";
    /// On a row recorded from a marker found in the target: the execution id of the try that
    /// committed (string).
    pub const RECOVERED_EXECUTION_ID: &str = "recovered_execution_id";
    /// `true` on a row a person wrote with `fix`.
    pub const MANUAL: &str = "manual";
    /// On a manual row: the author of the unit (the row's `author` column names the operator).
    pub const UNIT_AUTHOR: &str = "unit_author";
    /// On a manual row: who resolved the unit (string).
    pub const RESOLVED_BY: &str = "resolved_by";
    /// On a manual row: the reason the person gave (string).
    pub const REASON: &str = "reason";
    /// On an imported row: the tool whose history it came from (`sqlx`, `refinery`, `diesel`,
    /// `sea-orm`).
    pub const IMPORTED_FROM: &str = "imported_from";
    /// On an imported row: when the source tool applied the migration, as its table recorded it.
    pub const IMPORTED_AT_SOURCE: &str = "imported_at_source";
    /// On an imported row: the version the source tool recorded.
    pub const SOURCE_VERSION: &str = "source_version";
    /// On an imported row: the source tool's checksum (hex for sqlx), if it kept one.
    pub const SOURCE_CHECKSUM: &str = "source_checksum";
    /// `false` on a row whose `checksum` column is NULL because the unit's checksum could not be
    /// compared with what was applied (an import from a tool whose checksum Flamingock does not
    /// reproduce, or a file changed since): drift is not judged until the unit is repaired.
    pub const CHECKSUM_COMPARABLE: &str = "checksum_comparable";
    /// `true` on a row written by `baseline` (a `MANUAL_MARKED_AS_APPLIED` for a database whose
    /// schema existed before its history).
    pub const BASELINE: &str = "baseline";
    /// `true` on a row a person wrote with `repair` (accepting an applied unit's checksum now).
    pub const REPAIR: &str = "repair";
    /// On a repair row: the checksum the unit's row had before (string; `null`: none recorded).
    pub const PREVIOUS_CHECKSUM: &str = "previous_checksum";
}

/// One row of the audit log, to be inserted (`id` and `created_at` are set by the store) or as read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Row id, assigned by the store; `0` before insertion.
    pub id: i64,
    /// The run (or undo, or fix) that wrote the row.
    pub execution_id: String,
    /// The unit's id.
    pub change_id: String,
    /// The unit's author; on a `MANUAL_MARKED_*` row, the person who decided.
    pub author: String,
    /// The unit's order.
    pub change_order: String,
    /// The unit's stage.
    pub stage: String,
    /// The state the row records.
    pub state: AuditState,
    /// The database clock at insertion; `None` before insertion.
    pub created_at: Option<DateTime<Utc>>,
    /// Time spent in the unit's method, on the rows that end a try.
    pub execution_ms: Option<i64>,
    /// The host of the runner that wrote the row.
    pub hostname: String,
    /// The runner (one `Flamingock` instance) that wrote the row.
    pub runner_id: String,
    /// The unit's target system.
    pub target_system: String,
    /// How the unit runs.
    pub tx_strategy: TxStrategy,
    /// The unit's recovery strategy.
    pub recovery_strategy: RecoveryStrategy,
    /// The application's name (`run!()` records the calling crate's).
    pub app_name: Option<String>,
    /// The application's version.
    pub app_version: Option<String>,
    /// Where the unit is declared: module path, file and line.
    pub source: String,
    /// The unit's checksum when the row was written.
    pub checksum: Option<String>,
    /// The error message and its cause chain, one cause per line.
    pub error: Option<String>,
    /// Everything else, as a JSON object (see [`metadata_keys`]).
    pub metadata: Option<serde_json::Value>,
    /// The release the unit ships with (`system_version = "1.4.0"`), a semver version; `None`
    /// for a unit that names none and on rows that are not a unit's (an import's history).
    #[serde(default)]
    pub system_version: Option<String>,
}

impl AuditEntry {
    /// The string stored under `key` in [`metadata`](Self::metadata), if any.
    pub fn metadata_str(&self, key: &str) -> Option<&str> {
        self.metadata.as_ref()?.get(key)?.as_str()
    }

    /// Whether `key` holds `true` in [`metadata`](Self::metadata).
    pub fn metadata_flag(&self, key: &str) -> bool {
        self.metadata
            .as_ref()
            .and_then(|m| m.get(key))
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false)
    }

    /// The reason a person gave for a `MANUAL_MARKED_*` row.
    pub fn reason(&self) -> Option<&str> {
        self.metadata_str(metadata_keys::REASON)
    }

    /// Who resolved the unit by hand, on a `MANUAL_MARKED_*` row.
    pub fn resolved_by(&self) -> Option<&str> {
        self.metadata_str(metadata_keys::RESOLVED_BY)
    }

    /// The unit's own author: the row's `author`, except on a `MANUAL_MARKED_*` row, whose author
    /// is the person who decided and which keeps the unit's author in its metadata.
    pub fn unit_author(&self) -> &str {
        self.metadata_str(metadata_keys::UNIT_AUTHOR)
            .unwrap_or(&self.author)
    }

    /// Whether the row was written by a person (`fix`) rather than by a run.
    pub fn is_manual(&self) -> bool {
        self.metadata_flag(metadata_keys::MANUAL)
    }

    /// Whether the unit was declared to run at every start when this row was written.
    pub fn is_run_always(&self) -> bool {
        self.metadata_flag(metadata_keys::RUN_ALWAYS)
    }
}

/// The newest row of one unit, with how often it has been tried: what planning needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnitState {
    /// The unit's id.
    pub change_id: String,
    /// The state its newest row records.
    pub state: AuditState,
    /// The run that wrote that row.
    pub execution_id: String,
    /// When it was written, by the database clock.
    pub created_at: Option<DateTime<Utc>>,
    /// That row's error, if any.
    pub error: Option<String>,
    /// The unit's checksum as that row recorded it; `None` on a row that has none (history
    /// imported from another tool whose checksums cannot be compared): drift detection compares
    /// it with the unit's current checksum (see [`crate::engine::DriftCheck`]).
    #[serde(default)]
    pub checksum: Option<String>,
    /// How many times the unit has been tried so far (see [`ChangeContext::attempt`]).
    ///
    /// [`ChangeContext::attempt`]: crate::inject::ChangeContext::attempt
    pub tries: i64,
}

/// Formats an error with its `source()` chain: the message, then one `caused by:` line per cause.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // anyhow and others often repeat the cause in the message; don't print it twice.
        if !text.ends_with(&cause_text) {
            text.push_str("\ncaused by: ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_through_their_stored_form() {
        for state in AuditState::ALL {
            assert_eq!(AuditState::parse(state.as_str()), Some(state));
        }
        assert_eq!(AuditState::parse("applied"), None);
    }

    #[test]
    fn error_chain_lists_causes() {
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl fmt::Display for Outer {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("writing the flag")
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let err = Outer(std::io::Error::other("disk full"));
        assert_eq!(error_chain(&err), "writing the flag\ncaused by: disk full");
    }
}
