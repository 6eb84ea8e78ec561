//! Leaf: audit rows from SQL values: decoding rows into entries and unit states (binding is
//! [`columns`](crate::columns)' job). Rows that hold values Flamingock never writes are reported as corrupt,
//! never guessed at.

use chrono::{DateTime, Utc};
use flamingock_core::model::{UnitState, metadata_keys};
use flamingock_core::{AuditEntry, AuditState, RecoveryStrategy, StoreError, TxStrategy};
use sqlx::{ColumnIndex, Database, Decode, Row, Type};

use crate::identifier::TableName;
use crate::sql::query_error;

/// Reads one row of `select_entries`.
pub(crate) fn decode_entry<DB>(row: &DB::Row, table: &TableName) -> Result<AuditEntry, StoreError>
where
    DB: Database,
    &'static str: ColumnIndex<DB::Row>,
    String: Type<DB> + for<'r> Decode<'r, DB>,
    i64: Type<DB> + for<'r> Decode<'r, DB>,
{
    let id: i64 = get(row, "id")?;
    let corrupt = |detail: String| StoreError::CorruptRow {
        table: table.to_string(),
        detail: format!("row {id}: {detail}"),
    };
    let state: String = get(row, "state")?;
    let tx_strategy: String = get(row, "tx_strategy")?;
    let recovery_strategy: String = get(row, "recovery_strategy")?;
    let metadata: Option<String> = get(row, "metadata")?;
    let metadata: Option<serde_json::Value> = metadata
        .map(|text| serde_json::from_str(&text))
        .transpose()
        .map_err(|e| corrupt(format!("metadata is not JSON: {e}")))?;
    // A row an earlier release wrote (beside this one, during a rolling upgrade) has the
    // version in its metadata only.
    let system_version: Option<String> =
        get::<_, Option<String>>(row, "system_version")?.or_else(|| {
            metadata
                .as_ref()?
                .get(metadata_keys::SYSTEM_VERSION)?
                .as_str()
                .map(str::to_owned)
        });
    Ok(AuditEntry {
        id,
        execution_id: get(row, "execution_id")?,
        change_id: get(row, "change_id")?,
        author: get(row, "author")?,
        change_order: get(row, "change_order")?,
        stage: get(row, "stage")?,
        state: AuditState::parse(&state)
            .ok_or_else(|| corrupt(format!("unknown state `{state}`")))?,
        created_at: created_at(row).map_err(corrupt)?,
        execution_ms: get(row, "execution_ms")?,
        hostname: get(row, "hostname")?,
        runner_id: get(row, "runner_id")?,
        target_system: get(row, "target_system")?,
        tx_strategy: TxStrategy::parse(&tx_strategy)
            .ok_or_else(|| corrupt(format!("unknown tx_strategy `{tx_strategy}`")))?,
        recovery_strategy: parse_recovery_strategy(&recovery_strategy)
            .ok_or_else(|| corrupt(format!("unknown recovery_strategy `{recovery_strategy}`")))?,
        app_name: get(row, "app_name")?,
        app_version: get(row, "app_version")?,
        source: get(row, "source")?,
        checksum: get(row, "checksum")?,
        error: get(row, "error")?,
        metadata,
        system_version,
    })
}

/// Reads one row of `select_unit_states`.
pub(crate) fn decode_unit_state<DB>(
    row: &DB::Row,
    table: &TableName,
) -> Result<UnitState, StoreError>
where
    DB: Database,
    &'static str: ColumnIndex<DB::Row>,
    String: Type<DB> + for<'r> Decode<'r, DB>,
    i64: Type<DB> + for<'r> Decode<'r, DB>,
{
    let change_id: String = get(row, "change_id")?;
    let corrupt = |detail: String| StoreError::CorruptRow {
        table: table.to_string(),
        detail: format!("newest row of `{change_id}`: {detail}"),
    };
    let state: String = get(row, "state")?;
    Ok(UnitState {
        state: AuditState::parse(&state)
            .ok_or_else(|| corrupt(format!("unknown state `{state}`")))?,
        execution_id: get(row, "execution_id")?,
        created_at: created_at(row).map_err(corrupt)?,
        error: get(row, "error")?,
        checksum: get(row, "checksum")?,
        tries: get(row, "tries")?,
        change_id,
    })
}

/// One column of `row`, typed.
fn get<R, T>(row: &R, column: &'static str) -> Result<T, StoreError>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    T: Type<R::Database> + for<'r> Decode<'r, R::Database>,
{
    row.try_get(column)
        .map_err(query_error("reading the audit log"))
}

/// `created_at`, which every dialect reads back as RFC 3339 text in UTC.
fn created_at<R>(row: &R) -> Result<Option<DateTime<Utc>>, String>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    String: Type<R::Database> + for<'r> Decode<'r, R::Database>,
{
    let text: Option<String> = get(row, "created_at").map_err(|e| e.to_string())?;
    text.map(|text| {
        DateTime::parse_from_rfc3339(&text)
            .map(|at| at.with_timezone(&Utc))
            .map_err(|e| format!("created_at `{text}` is not a timestamp: {e}"))
    })
    .transpose()
}

/// Parses the stored form of a recovery strategy (the inverse of `RecoveryStrategy::as_str`).
fn parse_recovery_strategy(text: &str) -> Option<RecoveryStrategy> {
    [
        RecoveryStrategy::ManualIntervention,
        RecoveryStrategy::AlwaysRetry,
    ]
    .into_iter()
    .find(|strategy| strategy.as_str() == text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_strategies_round_trip() {
        for strategy in [
            RecoveryStrategy::ManualIntervention,
            RecoveryStrategy::AlwaysRetry,
        ] {
            assert_eq!(parse_recovery_strategy(strategy.as_str()), Some(strategy));
        }
        assert_eq!(parse_recovery_strategy("manual_intervention"), None);
    }
}
