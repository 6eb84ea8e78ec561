//! Backend: MySQL's and MariaDB's audit table SQL and opening their pool. Their lock, marker and
//! history SQL are in the submodules.
//!
//! `CREATE INDEX` has no `IF NOT EXISTS` in MySQL, so the index is declared inside the one
//! `CREATE TABLE IF NOT EXISTS` statement: table and index appear together or not at all, and
//! concurrent creators are serialized by the server's metadata lock on the table name (the
//! loser's statement is a no-op with a warning). The table uses `utf8mb4_bin`, so change ids
//! compare exactly (case and accents matter) and any Unicode text round-trips.

mod history;
mod lock;
mod marker;
mod summary;

use std::str::FromStr;

use flamingock_core::StoreError;
use flamingock_core::store::{StoreLimits, TextLimit};
use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions};
use sqlx::{MySql, Pool};

use crate::columns::{counts_as_try_condition, insert_columns, insert_values, plain_columns};
use crate::dialect::{Dialect, HistorySql};
use crate::options::StoreOptions;
use crate::pool::{connect_error, max_connections, open_pool};
use crate::url::redact_url;

impl Dialect for MySql {
    const LABEL: &'static str = "MySQL";
    const TRANSACTION_TYPE: &'static str = "Transaction<'_, MySql>";
    const POOL_TYPE: &'static str = "MySqlPool";
    const BEGIN: Option<&'static str> = None;
    const SCHEMA_LOCK: Option<&'static str> = None;
    const TABLE_COLUMNS: &'static str = "SELECT column_name AS name \
         FROM information_schema.columns \
         WHERE table_schema = DATABASE() AND table_name = ?";
    const DDL_COMMITS: bool = true;
    const NAME_RESOLUTION: Option<&'static str> = Some("SELECT DATABASE() AS setting");
    // change_id VARCHAR(255) counts characters; TEXT holds 65,535 bytes.
    const LIMITS: StoreLimits = StoreLimits {
        change_id: TextLimit::Chars(255),
        author: TextLimit::Bytes(65_535),
        order: TextLimit::Bytes(65_535),
        stage: TextLimit::Bytes(65_535),
    };

    fn resolving_names_as(options: MySqlConnectOptions, database: &str) -> MySqlConnectOptions {
        options.database(database)
    }

    fn create_schema(table: &str, index: &str) -> Vec<String> {
        // change_id is the only indexed text, hence the only VARCHAR (an index needs a bounded
        // key); everything else is TEXT, so that no value is ever cut short.
        vec![format!(
            r#"CREATE TABLE IF NOT EXISTS `{table}` (
    id BIGINT NOT NULL AUTO_INCREMENT,
    execution_id TEXT NOT NULL,
    change_id VARCHAR(255) NOT NULL,
    author TEXT NOT NULL,
    change_order TEXT NOT NULL,
    stage TEXT NOT NULL,
    state VARCHAR(32) NOT NULL,
    created_at DATETIME(3) NOT NULL,
    execution_ms BIGINT NULL,
    hostname TEXT NOT NULL,
    runner_id TEXT NOT NULL,
    target_system TEXT NOT NULL,
    tx_strategy VARCHAR(32) NOT NULL,
    recovery_strategy VARCHAR(32) NOT NULL,
    app_name TEXT NULL,
    app_version TEXT NULL,
    source TEXT NOT NULL,
    checksum TEXT NULL,
    error MEDIUMTEXT NULL,
    metadata JSON NULL,
    system_version TEXT NULL,
    PRIMARY KEY (id),
    KEY `{index}` (change_id, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"#
        )]
    }

    fn database_identity(options: &MySqlConnectOptions) -> String {
        let host = match options.get_socket() {
            Some(socket) => socket.display().to_string(),
            None => options.get_host().to_ascii_lowercase(),
        };
        format!(
            "mysql://{host}:{}/{}",
            options.get_port(),
            options.get_database().unwrap_or_default()
        )
    }

    fn add_text_column(table: &str, column: &str) -> String {
        format!(r#"ALTER TABLE `{table}` ADD COLUMN {column} TEXT NULL"#)
    }

    fn fill_from_metadata(table: &str, column: &str, key: &str) -> String {
        format!(
            r#"UPDATE `{table}` SET {column} = JSON_UNQUOTE(JSON_EXTRACT(metadata, '$.{key}'))
WHERE {column} IS NULL AND JSON_TYPE(JSON_EXTRACT(metadata, '$.{key}')) = 'STRING'"#
        )
    }

    fn is_duplicate_column(error: &sqlx::Error) -> bool {
        // ER_DUP_FIELDNAME
        error
            .as_database_error()
            .and_then(|e| e.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>())
            .is_some_and(|e| e.number() == 1060)
    }

    fn insert_entry(table: &str) -> String {
        format!(
            r#"INSERT INTO `{table}` ({columns})
VALUES ({values})"#,
            columns = insert_columns(),
            values = insert_values(Self::placeholder, |p| p, "UTC_TIMESTAMP(3)"),
        )
    }

    fn select_entries(table: &str) -> String {
        format!(
            r#"SELECT {plain},
       DATE_FORMAT(created_at, '%Y-%m-%dT%H:%i:%s.%fZ') AS created_at,
       CAST(metadata AS CHAR) AS metadata
FROM `{table}` ORDER BY id"#,
            plain = plain_columns()
        )
    }

    fn select_unit_states(table: &str) -> String {
        format!(
            r#"SELECT newest.change_id, newest.state, newest.execution_id,
       DATE_FORMAT(newest.created_at, '%Y-%m-%dT%H:%i:%s.%fZ') AS created_at,
       newest.error, newest.checksum, history.tries
FROM (SELECT change_id, MAX(id) AS newest_id,
             COUNT(CASE WHEN {counts_as_try} THEN 1 END) AS tries
      FROM `{table}` GROUP BY change_id) AS history
JOIN `{table}` AS newest ON newest.id = history.newest_id"#,
            counts_as_try = counts_as_try_condition(),
        )
    }
}

/// Opens the pool of a MySQL or MariaDB store (and its redacted URL), retrying while the server is unreachable.
pub(crate) async fn open(
    url: &str,
    options: &StoreOptions,
) -> Result<(Pool<MySql>, String), StoreError> {
    let connect_options =
        MySqlConnectOptions::from_str(url).map_err(|error| connect_error(url, error))?;
    let pool_options = MySqlPoolOptions::new().max_connections(max_connections(options));
    let pool = open_pool(url, connect_options, pool_options, options).await?;
    Ok((pool, redact_url(url)))
}

/// The database as shown in descriptions of a store made on an application's pool (never its
/// password).
pub(crate) fn location(options: &MySqlConnectOptions) -> String {
    format!(
        "mysql://{}@{}:{}/{}",
        options.get_username(),
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or_default()
    )
}
