//! Backend: PostgreSQL's audit table SQL and opening its pool. Its lock, marker and history SQL
//! are in the submodules.
//!
//! Two sessions running `CREATE TABLE IF NOT EXISTS` at the same moment can both pass the
//! existence check and one then fails on the `pg_type` unique index; so `initialize()` first
//! takes a transaction-scoped advisory lock keyed on the table name, and creates table and index
//! in that one transaction.

mod history;
mod lock;
mod marker;
mod summary;

use std::str::FromStr;

use flamingock_core::StoreError;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Pool, Postgres};

use crate::columns::{counts_as_try_condition, insert_columns, insert_values, plain_columns};
use crate::dialect::{Dialect, HistorySql};
use crate::options::StoreOptions;
use crate::pool::{connect_error, max_connections, open_pool};
use crate::url::redact_url;

/// `created_at` as RFC 3339 text in UTC with milliseconds.
const CREATED_AT_TEXT: &str =
    r#"to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')"#;

/// A bound JSON text parameter as the `metadata` column (`JSONB`) takes it.
pub(crate) fn json_param(placeholder: String) -> String {
    format!("{placeholder}::jsonb")
}

impl Dialect for Postgres {
    const LABEL: &'static str = "PostgreSQL";
    const TRANSACTION_TYPE: &'static str = "Transaction<'_, Postgres>";
    const POOL_TYPE: &'static str = "PgPool";
    const BEGIN: Option<&'static str> = None;
    const SCHEMA_LOCK: Option<&'static str> = Some("SELECT pg_advisory_xact_lock($1)");
    const TABLE_COLUMNS: &'static str = "SELECT column_name::text AS name \
         FROM information_schema.columns \
         WHERE table_schema = current_schema() AND table_name = $1";
    const DDL_COMMITS: bool = false;
    const TRANSACTION_ID: Option<&'static str> = Some("SELECT txid_current()::text AS txid");
    const RETURNING_TRANSACTION_ID: Option<&'static str> =
        Some(" RETURNING txid_current()::text AS txid");
    const TRANSACTION_STATUS: Option<&'static str> =
        Some("SELECT txid_status(CAST($1 AS bigint)) AS status");
    const NAME_RESOLUTION: Option<&'static str> =
        Some("SELECT current_setting('search_path') AS setting");

    fn resolving_names_as(options: PgConnectOptions, search_path: &str) -> PgConnectOptions {
        options.options([("search_path", search_path)])
    }

    fn create_schema(table: &str, index: &str) -> Vec<String> {
        vec![
            format!(
                r#"CREATE TABLE IF NOT EXISTS "{table}" (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    execution_id TEXT NOT NULL,
    change_id TEXT NOT NULL,
    author TEXT NOT NULL,
    change_order TEXT NOT NULL,
    stage TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at TIMESTAMPTZ(3) NOT NULL,
    execution_ms BIGINT,
    hostname TEXT NOT NULL,
    runner_id TEXT NOT NULL,
    target_system TEXT NOT NULL,
    tx_strategy TEXT NOT NULL,
    recovery_strategy TEXT NOT NULL,
    app_name TEXT,
    app_version TEXT,
    source TEXT NOT NULL,
    checksum TEXT,
    error TEXT,
    metadata JSONB,
    system_version TEXT
)"#
            ),
            format!(r#"CREATE INDEX IF NOT EXISTS "{index}" ON "{table}" (change_id, id)"#),
        ]
    }

    fn database_identity(options: &PgConnectOptions) -> String {
        let host = match options.get_socket() {
            Some(socket) => socket.display().to_string(),
            None => options.get_host().to_ascii_lowercase(),
        };
        format!(
            "postgres://{host}:{}/{}",
            options.get_port(),
            options.get_database().unwrap_or_default()
        )
    }

    fn add_text_column(table: &str, column: &str) -> String {
        format!(r#"ALTER TABLE "{table}" ADD COLUMN IF NOT EXISTS {column} TEXT"#)
    }

    fn fill_from_metadata(table: &str, column: &str, key: &str) -> String {
        format!(
            r#"UPDATE "{table}" SET {column} = metadata ->> '{key}'
WHERE {column} IS NULL AND jsonb_typeof(metadata -> '{key}') = 'string'"#
        )
    }

    fn is_duplicate_column(error: &sqlx::Error) -> bool {
        // duplicate_column
        error
            .as_database_error()
            .and_then(|e| e.code())
            .is_some_and(|code| code == "42701")
    }

    fn insert_entry(table: &str) -> String {
        // clock_timestamp(), not now(): a TX_SHARED row is stamped when written, not when its
        // transaction began.
        format!(
            r#"INSERT INTO "{table}" ({columns})
VALUES ({values})"#,
            columns = insert_columns(),
            values = insert_values(Self::placeholder, json_param, "clock_timestamp()"),
        )
    }

    fn select_entries(table: &str) -> String {
        format!(
            r#"SELECT {plain}, {CREATED_AT_TEXT} AS created_at, metadata::text AS metadata
FROM "{table}" ORDER BY id"#,
            plain = plain_columns()
        )
    }

    fn select_unit_states(table: &str) -> String {
        format!(
            r#"SELECT newest.change_id, newest.state, newest.execution_id,
       to_char(newest.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS created_at,
       newest.error, newest.checksum, history.tries
FROM (SELECT change_id, MAX(id) AS newest_id,
             COUNT(CASE WHEN {counts_as_try} THEN 1 END) AS tries
      FROM "{table}" GROUP BY change_id) AS history
JOIN "{table}" AS newest ON newest.id = history.newest_id"#,
            counts_as_try = counts_as_try_condition(),
        )
    }
}

/// Opens the pool of a PostgreSQL store (and its redacted URL), retrying while the server is unreachable.
pub(crate) async fn open(
    url: &str,
    options: &StoreOptions,
) -> Result<(Pool<Postgres>, String), StoreError> {
    let mut connect_options =
        PgConnectOptions::from_str(url).map_err(|error| connect_error(url, error))?;
    if connect_options.get_application_name().is_none() {
        // Shows who holds a session in pg_stat_activity.
        connect_options = connect_options.application_name("flamingock");
    }
    let pool_options = PgPoolOptions::new().max_connections(max_connections(options));
    let pool = open_pool(url, connect_options, pool_options, options).await?;
    Ok((pool, redact_url(url)))
}

/// The database as shown in descriptions of a store made on an application's pool (never its
/// password).
pub(crate) fn location(options: &PgConnectOptions) -> String {
    format!(
        "postgres://{}@{}:{}/{}",
        options.get_username(),
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or_default()
    )
}
