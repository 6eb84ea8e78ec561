//! Generic (above the backends, below the store): the in-place upgrade of an audit table of an
//! earlier shape (docs/architecture.md#the-projects-own-tables). A table that has every column of
//! the first released shape but lacks some of [`ADDED_COLUMNS`] gets them, as nullable text,
//! each filled from the metadata key earlier releases kept the value under; no row is rewritten
//! otherwise, none is lost.
//!
//! The upgrade runs under a lease of the store's lock table (its own key, beside the audit
//! table's name), so concurrent instances upgrade one after the other; each reads the columns
//! again once it holds the lease and adds only what is still missing. Where DDL is
//! transactional (SQLite, PostgreSQL) the columns and their values commit together; on MySQL
//! and MariaDB each statement commits alone, and an `ADD COLUMN` that another instance made
//! first (one that ignored the lease: an earlier release cannot know it) is taken as done.
//! Rows that a release without the column writes later carry the value in their metadata only;
//! reads fall back to it ([`row::decode_entry`](crate::row)).

use std::time::{Duration, Instant};

use flamingock_core::StoreError;
use flamingock_core::lock::{Acquisition, Fence};
use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Pool, Type};

use crate::columns::{ADDED_COLUMNS, AddedColumn};
use crate::dialect::Dialect;
use crate::identifier::TableName;
use crate::lock::{Leases, LockTable};
use crate::sql::{begin, query_error, table_columns};
use crate::store::AUDIT_TABLE;

/// How long an upgrading instance holds the lease (it is released as soon as the upgrade ends).
const LEASE: Duration = Duration::from_secs(120);
/// How long an instance waits for another one's upgrade before giving up.
const WAIT: Duration = Duration::from_secs(300);
/// How often a waiting instance reads the lease again.
const POLL: Duration = Duration::from_millis(200);

/// The added columns `found` (a table's column names) lacks, oldest first.
pub(crate) fn missing_columns(found: &[String]) -> Vec<&'static AddedColumn> {
    ADDED_COLUMNS
        .iter()
        .filter(|added| !found.iter().any(|c| c.eq_ignore_ascii_case(added.name)))
        .collect()
}

/// Upgrades `table` in place under the lease of `lock`, if it still lacks an added column once
/// the lease is held; returns the names of the columns this call added.
pub(crate) async fn upgrade_audit_table<DB>(
    pool: &Pool<DB>,
    table: &TableName,
    lock: &LockTable,
) -> Result<Vec<&'static str>, StoreError>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    &'static str: ColumnIndex<DB::Row>,
    String: Type<DB> + for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB>,
    i64: Type<DB> + for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB>,
{
    let leases = Leases { pool, lock };
    let fence = Fence {
        key: format!("{}:upgrade", table.as_str()),
        owner: uuid::Uuid::now_v7().to_string(),
    };
    let hostname = std::env::var("HOSTNAME").unwrap_or_else(|_| "unknown".to_owned());
    let started = Instant::now();
    loop {
        match leases.try_acquire(&fence, &hostname, LEASE).await? {
            Acquisition::Acquired => break,
            Acquisition::Held(holder) if started.elapsed() < WAIT => {
                tracing::debug!(holder = %holder.owner, table = %table, "waiting for another instance's upgrade of the audit table");
                tokio::time::sleep(POLL).await;
            }
            Acquisition::Held(holder) => {
                return Err(StoreError::Unsupported(format!(
                    "the audit table `{table}` is being upgraded by another instance (host {}, lease until {}), still after {} s; once it is done (or its lease expired) start again",
                    holder.hostname,
                    holder.expires_at,
                    WAIT.as_secs()
                )));
            }
        }
    }
    let upgraded = add_missing_columns(pool, table).await;
    if let Err(error) = leases.release(&fence).await {
        // The lease expires on its own; the upgrade itself is done (or failed) either way.
        tracing::warn!(%error, table = %table, "releasing the audit table's upgrade lease failed");
    }
    upgraded
}

/// Adds, in one transaction where the database allows, every added column `table` lacks, each
/// filled from its metadata key.
async fn add_missing_columns<DB>(
    pool: &Pool<DB>,
    table: &TableName,
) -> Result<Vec<&'static str>, StoreError>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    &'static str: ColumnIndex<DB::Row>,
    String: Type<DB> + for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB>,
{
    const ADDING: &str = "adding a column to the audit table of an earlier shape";
    const FILLING: &str = "filling a new audit column from the rows' metadata";
    let mut tx = begin(pool).await.map_err(query_error(
        "opening the transaction that upgrades the audit table",
    ))?;
    let found = table_columns::<DB>(&mut tx, table, &AUDIT_TABLE).await?;
    let mut added = Vec::new();
    for column in missing_columns(&found) {
        let statement = DB::add_text_column(table.as_str(), column.name);
        match sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
            .execute(&mut *tx)
            .await
        {
            Ok(_) => added.push(column.name),
            // Added meanwhile by someone who did not take the lease (a person, or a tool):
            // the column is there, which is what was wanted; it is filled all the same.
            Err(error) if DB::is_duplicate_column(&error) => {}
            Err(error) => return Err(query_error(ADDING)(error)),
        }
        let fill = DB::fill_from_metadata(table.as_str(), column.name, column.metadata_key);
        sqlx::raw_sql(sqlx::AssertSqlSafe(fill))
            .execute(&mut *tx)
            .await
            .map_err(query_error(FILLING))?;
    }
    tx.commit()
        .await
        .map_err(query_error("committing the upgrade of the audit table"))?;
    if !added.is_empty() {
        tracing::info!(table = %table, columns = ?added, "upgraded the audit table in place");
    }
    Ok(added)
}
