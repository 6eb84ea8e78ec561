//! The long history of the history row: a database whose N units are applied, given the audit
//! rows a long-lived service accumulates, through the audit store itself.
//!
//! A service that has undone and re-applied its units over years has, per unit, many pairs of
//! rows: `ROLLED_BACK` (the undo) and `APPLIED` (the run after it). This module appends such
//! pairs with the store's own `append_all` (one transaction per batch, no lock held: nothing
//! else runs on the database), each a copy of the unit's `APPLIED` row with a fresh execution id
//! and the database clock's time, until the table holds the rows asked for. The newest row of
//! every unit stays `APPLIED`, so a warm start on it still has nothing to do; what differs from
//! the short history is only how much audit there is to read past.

use flamingock::sqlx_store::{StoreOptions, connect};
use flamingock_core::model::{AuditEntry, AuditState};

use crate::error::BenchError;

/// Rows appended per transaction.
const BATCH_ROWS: usize = 2_000;

/// Appends undo and re-apply pairs to the audit at `url` until it holds at least `rows` rows
/// (one more at most: pairs, so every unit ends `APPLIED`); returns the counts it held before
/// and holds after.
pub async fn lengthen(url: &str, rows: usize) -> Result<(usize, usize), BenchError> {
    let store = connect(url, StoreOptions::default())
        .await
        .map_err(flamingock::Error::from)?;
    let entries = store.entries().await.map_err(flamingock::Error::from)?;
    let applied: Vec<&AuditEntry> = entries
        .iter()
        .filter(|entry| entry.state == AuditState::Applied)
        .collect();
    if applied.is_empty() {
        return Err(BenchError::Unexpected {
            tool: "history",
            detail: "the database to lengthen has no APPLIED row to copy".into(),
        });
    }
    let pairs = rows.saturating_sub(entries.len()).div_ceil(2);
    let mut batch = Vec::with_capacity(BATCH_ROWS);
    for pair in 0..pairs {
        let unit = applied[pair % applied.len()];
        // One execution id per undo, another per the run that re-applied the unit.
        batch.push(copy(unit, AuditState::RolledBack));
        batch.push(copy(unit, AuditState::Applied));
        if batch.len() >= BATCH_ROWS || pair + 1 == pairs {
            store
                .append_all(&batch, None)
                .await
                .map_err(flamingock::Error::from)?;
            batch.clear();
        }
    }
    Ok((entries.len(), entries.len() + 2 * pairs))
}

/// `unit`'s row as another execution would write it in `state`: the store assigns id and time.
fn copy(unit: &AuditEntry, state: AuditState) -> AuditEntry {
    AuditEntry {
        id: 0,
        execution_id: uuid::Uuid::now_v7().to_string(),
        state,
        created_at: None,
        ..unit.clone()
    }
}
