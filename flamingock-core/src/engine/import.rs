//! Importing another tool's history (sqlx, refinery, diesel, sea-orm): each migration that tool
//! applied becomes an `APPLIED` row of the unit that is that migration, written under the lock
//! before the run plans again, all in one transaction where the store allows (docs/migrating.md).
//!
//! Exactly once: an entry whose unit already has any audit row is not imported, and the audit is
//! read again under the lock, so a second run (or a second instance that waited for the lock)
//! imports nothing. The source table is only read.

use serde::Serialize;

use super::Engine;
use super::attempt::Attempt;
use super::lease::Lease;
use super::planned::PlannedUnit;
use crate::error::Error;
use crate::import::{ForeignEntry, ImportError, ImportOptions, SourceTool};
use crate::model::{AuditEntry, AuditState, ChangeUnit, metadata_keys};
use crate::plan::{Decision, decide, order_units};
use crate::sql_unit::{SqlLayout, SqlMigration};

/// What a run imports before it plans: the options and the SQL migrations to match entries to.
#[derive(Debug, Clone)]
pub struct HistoryImport {
    /// Which tool's table, and how.
    pub options: ImportOptions,
    /// The SQL migrations of this program (`SqlMigration::registered()` in the facade).
    pub migrations: Vec<&'static SqlMigration>,
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    /// The tool.
    #[serde(serialize_with = "tool_name")]
    pub tool: SourceTool,
    /// The table read.
    pub table: String,
    /// Whether the table exists (`false`: nothing to import).
    pub table_found: bool,
    /// The units recorded as applied (or, for sqlx's failed rows, as in doubt), in run order.
    pub imported: Vec<String>,
    /// The units of entries recorded as in doubt (sqlx's `success = false`): they block.
    pub in_doubt: Vec<String>,
    /// Units whose entries were not imported because the audit already has rows of them.
    pub already_in_audit: Vec<String>,
    /// Versions of entries that match no unit, skipped because `ignore_unknown` was set.
    pub ignored: Vec<String>,
    /// Entries whose unit this run does not select (another stage or module): left for the run
    /// that selects it.
    pub not_selected: Vec<String>,
}

fn tool_name<S: serde::Serializer>(tool: &SourceTool, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(tool.as_str())
}

impl Engine {
    /// Makes every [`run`](Engine::run) import `import`'s history first, under the lock, before it
    /// plans again (an entry whose unit has audit rows is never imported twice).
    pub fn with_history_import(mut self, import: HistoryImport) -> Self {
        self.import = Some(import);
        self
    }

    /// Imports another tool's history now, under the lock (the CLI's `import`). `units` are this
    /// program's units, `migrations` its SQL migrations.
    pub async fn import_history(
        &self,
        units: impl IntoIterator<Item = &'static ChangeUnit>,
        migrations: impl IntoIterator<Item = &'static SqlMigration>,
        options: &ImportOptions,
    ) -> Result<ImportReport, Error> {
        let units: Vec<&'static ChangeUnit> = units.into_iter().collect();
        let import = HistoryImport {
            options: options.clone(),
            migrations: migrations.into_iter().collect(),
        };
        self.with_lock(async |lease| self.import_with(&units, &import, lease).await)
            .await
    }

    /// The run's import step (a no-op without [`with_history_import`](Self::with_history_import)):
    /// called with the lock held, before the replan. Whether anything was written.
    pub(super) async fn import_before_plan(
        &self,
        units: &[&'static ChangeUnit],
        lease: Option<&Lease>,
    ) -> Result<bool, Error> {
        let Some(import) = &self.import else {
            return Ok(false);
        };
        let report = self.import_with(units, import, lease).await?;
        Ok(!report.imported.is_empty())
    }

    async fn import_with(
        &self,
        units: &[&'static ChangeUnit],
        import: &HistoryImport,
        lease: Option<&Lease>,
    ) -> Result<ImportReport, Error> {
        let options = &import.options;
        let tool = options.tool;
        let table = options.table_name().to_owned();
        let foreign = self
            .store
            .foreign_history()
            .ok_or_else(|| ImportError::Unsupported {
                tool,
                store: self.store.describe(),
            })?;
        let mut report = ImportReport {
            tool,
            table: table.clone(),
            table_found: false,
            imported: Vec::new(),
            in_doubt: Vec::new(),
            already_in_audit: Vec::new(),
            ignored: Vec::new(),
            not_selected: Vec::new(),
        };
        let Some(entries) = foreign.read_foreign(tool, &table).await? else {
            let states = self.store.unit_states().await?;
            if states.is_empty() {
                tracing::warn!(%tool, %table, store = %self.store.describe(), "no history table to import, and the audit is empty: every unit will run; if this database was migrated by {tool}, check the table name (import's `table`) and the database URL");
            } else {
                tracing::info!(%tool, %table, "no history table to import (already imported and dropped?)");
            }
            return Ok(report);
        };
        report.table_found = true;
        // Read under the lock: another instance may have imported while this one waited.
        let states = self.store.unit_states().await?;
        let selected = order_units(units.iter().copied(), &self.options.selection)
            .map_err(Error::Validation)?;
        let mut rows: Vec<(usize, AuditEntry)> = Vec::new();
        let mut unknown = Vec::new();
        let mut claimed: std::collections::HashMap<&str, &str> = std::collections::HashMap::new();
        let execution_id = uuid::Uuid::now_v7().to_string();
        for entry in &entries {
            let found = matching_unit(tool, entry, &selected, &import.migrations)
                .map(|found| (true, found))
                .or_else(|| {
                    matching_unit(tool, entry, units, &import.migrations)
                        .map(|found| (false, found))
                });
            let Some((is_selected, (unit, migration))) = found else {
                unknown.push(entry.version.clone());
                continue;
            };
            if !is_selected {
                report.not_selected.push(unit.id.to_owned());
                continue;
            }
            if states.contains_key(unit.id) {
                report.already_in_audit.push(unit.id.to_owned());
                continue;
            }
            // Two entries for one unit (`01` and `1`, say) would import it twice.
            if let Some(first) = claimed.insert(unit.id, entry.version.as_str()) {
                return Err(ImportError::Unreadable {
                    tool,
                    table,
                    detail: format!(
                        "versions {first} and {} both match change unit \"{}\"",
                        entry.version, unit.id
                    ),
                }
                .into());
            }
            let position = selected
                .iter()
                .position(|u| std::ptr::eq(*u, unit))
                .unwrap_or(usize::MAX);
            let row = self.imported_row(unit, migration, entry, options, &execution_id)?;
            rows.push((position, row));
        }
        if !unknown.is_empty() {
            if !options.ignore_unknown {
                return Err(ImportError::UnknownEntries {
                    tool,
                    table,
                    versions: unknown,
                }
                .into());
            }
            tracing::warn!(%tool, %table, versions = ?unknown, "entries that match no unit were skipped (ignore_unknown)");
            report.ignored = unknown;
        }
        rows.sort_by_key(|(position, _)| *position);
        let rows: Vec<AuditEntry> = rows.into_iter().map(|(_, row)| row).collect();
        if !rows.is_empty() {
            self.store
                .append_all(&rows, lease.map(|lease| &lease.fence))
                .await?;
        }
        for row in &rows {
            report.imported.push(row.change_id.clone());
            if !row.state.is_applied() {
                report.in_doubt.push(row.change_id.clone());
            }
        }
        tracing::info!(%tool, %table, imported = report.imported.len(), already = report.already_in_audit.len(), "imported history");
        Ok(report)
    }

    /// The audit row of one imported entry.
    fn imported_row(
        &self,
        unit: &'static ChangeUnit,
        migration: Option<&'static SqlMigration>,
        entry: &ForeignEntry,
        options: &ImportOptions,
        execution_id: &str,
    ) -> Result<AuditEntry, Error> {
        let planned = PlannedUnit::new(unit, self.resolve_route(unit)?);
        let tool = options.tool;
        let (state, error) = if entry.success {
            (AuditState::Applied, None)
        } else {
            let state = blocking_state(&planned);
            let error = format!(
                "{tool} recorded migration {} as failed (success = false in `{}`): it may be partly applied. Check the database, then record what you found with `flamingock fix {} --applied` or `--rolled-back`",
                entry.version,
                options.table_name(),
                unit.id
            );
            (state, Some(error))
        };
        let mut row = Attempt::new(self, &planned, execution_id, 1, None).entry(state, None, error);
        let comparable = tool == SourceTool::Sqlx
            && entry.checksum.is_some()
            && migration.and_then(|m| m.source_checksum) == entry.checksum.as_deref();
        let mut metadata = match row.metadata.take() {
            Some(serde_json::Value::Object(map)) => map,
            _ => serde_json::Map::new(),
        };
        metadata.insert(metadata_keys::IMPORTED_FROM.into(), tool.as_str().into());
        if let Some(at) = &entry.applied_at {
            metadata.insert(metadata_keys::IMPORTED_AT_SOURCE.into(), at.clone().into());
        }
        metadata.insert(
            metadata_keys::SOURCE_VERSION.into(),
            entry.version.clone().into(),
        );
        if let Some(checksum) = &entry.checksum {
            metadata.insert(
                metadata_keys::SOURCE_CHECKSUM.into(),
                checksum.clone().into(),
            );
        }
        if !comparable {
            row.checksum = None;
            metadata.insert(metadata_keys::CHECKSUM_COMPARABLE.into(), false.into());
        }
        row.metadata = Some(serde_json::Value::Object(metadata));
        Ok(row)
    }
}

/// The state that makes the unit block on the next plan (a person must look): the first of
/// `FAILED`, `STARTED`, `ROLLBACK_FAILED` its strategy blocks on; `FAILED` for an `always_retry`
/// unit, which nothing blocks.
fn blocking_state(unit: &PlannedUnit) -> AuditState {
    [
        AuditState::Failed,
        AuditState::Started,
        AuditState::RollbackFailed,
    ]
    .into_iter()
    .find(|state| {
        decide(
            unit.strategy(),
            unit.unit.recovery,
            unit.unit.run_always,
            Some(*state),
        ) == Decision::Block
    })
    .unwrap_or(AuditState::Failed)
}

/// The unit of `units` an entry is, with its SQL migration: for sqlx, refinery and diesel, the
/// unit registered by the migration of that tool's layout with the entry's version (a migration
/// and its unit share id and file, so copies of a folder in other modules are told apart); for
/// sea-orm, the unit whose id is the entry's version.
fn matching_unit(
    tool: SourceTool,
    entry: &ForeignEntry,
    units: &[&'static ChangeUnit],
    migrations: &[&'static SqlMigration],
) -> Option<(&'static ChangeUnit, Option<&'static SqlMigration>)> {
    let layout = match tool {
        SourceTool::Sqlx => SqlLayout::Sqlx,
        SourceTool::Refinery => SqlLayout::Refinery,
        SourceTool::Diesel => SqlLayout::Diesel,
        SourceTool::SeaOrm => {
            return units
                .iter()
                .find(|unit| unit.id == entry.version)
                .map(|unit| (*unit, None));
        }
    };
    migrations
        .iter()
        .filter(|m| m.layout == layout && same_version(m.version, &entry.version))
        .find_map(|m| {
            units
                .iter()
                .find(|unit| unit.id == m.id && unit.source.file == m.up.path)
                .map(|unit| (*unit, Some(*m)))
        })
}

/// Versions compare as numbers when both are digits (`0001` is `1`), as text without dashes
/// otherwise (diesel's `2024-01-01-120000` is recorded as `20240101120000`).
fn same_version(ours: &str, theirs: &str) -> bool {
    let plain = |v: &str| v.trim().replace('-', "");
    let (ours, theirs) = (plain(ours), plain(theirs));
    match (ours.parse::<u128>(), theirs.parse::<u128>()) {
        (Ok(a), Ok(b)) => a == b,
        _ => ours == theirs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_source_row_is_recorded_in_a_state_the_units_strategy_blocks_on() {
        use super::super::planned::Route;
        use crate::model::RecoveryStrategy;
        use crate::testing::UnitBuilder;
        let unit = |transactional, recovery| {
            UnitBuilder::new("u", "1", "a")
                .transactional(transactional)
                .recovery(recovery)
                .execute_sync(|_| Ok(()))
                .build()
        };
        let manual = RecoveryStrategy::ManualIntervention;
        let shared = PlannedUnit::new(unit(true, manual), Route::Shared(None));
        assert_eq!(blocking_state(&shared), AuditState::RollbackFailed);
        let non_tx = PlannedUnit::new(unit(false, manual), Route::NonTransactional(None));
        assert_eq!(blocking_state(&non_tx), AuditState::Failed);
        for planned in [&shared, &non_tx] {
            assert_eq!(
                decide(
                    planned.strategy(),
                    planned.unit.recovery,
                    false,
                    Some(blocking_state(planned))
                ),
                Decision::Block
            );
        }
        let retry = PlannedUnit::new(
            unit(false, RecoveryStrategy::AlwaysRetry),
            Route::NonTransactional(None),
        );
        assert_eq!(
            blocking_state(&retry),
            AuditState::Failed,
            "nothing blocks it"
        );
    }

    #[test]
    fn versions_match_as_numbers_or_as_text_without_dashes() {
        assert!(same_version("0001", "1"));
        assert!(same_version("2024-01-01-120000", "20240101120000"));
        assert!(!same_version("2", "20"));
        assert!(same_version(
            "m20220101_000001_create",
            "m20220101_000001_create"
        ));
        assert!(!same_version("m1", "m2"));
    }
}
