//! The marker table's SQL, per dialect: what a [`SqlTarget`](crate::SqlTarget) writes next to a
//! `TX_SEPARATE` unit's change so that the outcome of an interrupted run can be recovered.
//!
//! One row per unit (`change_id` is the key): the execution id of the try that wrote it, whether
//! that try committed (`committed`; an *open* marker is written first thing in the try's
//! transaction and turned into a committed one by the same transaction's last statement), and
//! when it was written (database clock, UTC). Every statement takes a table name that passed
//! [`validate_identifier`](crate::validate_identifier); values are bound, in the order
//! `change_id`, `execution_id`, `committed`.

use crate::store::Dialect;

/// The columns a marker table must have; a table lacking one is not ours.
pub(crate) const MARKER_COLUMNS: [&str; 3] = ["change_id", "execution_id", "committed"];

/// A database a [`SqlTarget`](crate::SqlTarget) can write markers in: the dialects of the audit
/// store (`sqlx::Sqlite`, `sqlx::Postgres`, `sqlx::MySql`). Sealed through [`Dialect`]; its items
/// are the target's internals.
pub trait TargetDialect: Dialect {
    /// Creates the marker table if it is missing.
    #[doc(hidden)]
    fn create_marker_table(table: &str) -> String;
    /// Inserts the unit's marker, or replaces the one it has (upsert): binds `change_id`,
    /// `execution_id`, `committed`.
    #[doc(hidden)]
    fn upsert_marker(table: &str) -> String;
    /// Selects `execution_id` and `committed` of the marker of the bound `change_id`.
    #[doc(hidden)]
    fn select_marker(table: &str) -> String;
    /// Deletes the marker of the bound `change_id`.
    #[doc(hidden)]
    fn delete_marker(table: &str) -> String;
    /// Adjusts the options [`SqlTarget::connect`](crate::SqlTarget::connect) opens a URL with.
    #[doc(hidden)]
    fn target_connect_options(options: ConnectOptionsOf<Self>) -> ConnectOptionsOf<Self> {
        options
    }
}

/// The connect options of a database's connections.
pub(crate) type ConnectOptionsOf<DB> =
    <<DB as sqlx::Database>::Connection as sqlx::Connection>::Options;

#[cfg(feature = "sqlite")]
impl TargetDialect for sqlx::Sqlite {
    fn create_marker_table(table: &str) -> String {
        format!(
            r#"CREATE TABLE IF NOT EXISTS "{table}" (
    change_id TEXT NOT NULL PRIMARY KEY,
    execution_id TEXT NOT NULL,
    committed INTEGER NOT NULL,
    created_at TEXT NOT NULL
)"#
        )
    }

    fn upsert_marker(table: &str) -> String {
        format!(
            r#"INSERT INTO "{table}" (change_id, execution_id, committed, created_at)
VALUES (?1, ?2, ?3, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
ON CONFLICT (change_id) DO UPDATE SET execution_id = excluded.execution_id,
    committed = excluded.committed, created_at = excluded.created_at"#
        )
    }

    fn select_marker(table: &str) -> String {
        format!(r#"SELECT execution_id, committed FROM "{table}" WHERE change_id = ?1"#)
    }

    fn delete_marker(table: &str) -> String {
        format!(r#"DELETE FROM "{table}" WHERE change_id = ?1"#)
    }

    fn target_connect_options(options: ConnectOptionsOf<Self>) -> ConnectOptionsOf<Self> {
        // As for the audit store: the file is created if missing, and a statement waits for
        // another connection's write lock rather than failing at once.
        options
            .create_if_missing(true)
            .busy_timeout(std::time::Duration::from_secs(30))
    }
}

#[cfg(feature = "postgres")]
impl TargetDialect for sqlx::Postgres {
    fn create_marker_table(table: &str) -> String {
        format!(
            r#"CREATE TABLE IF NOT EXISTS "{table}" (
    change_id TEXT NOT NULL PRIMARY KEY,
    execution_id TEXT NOT NULL,
    committed BOOLEAN NOT NULL,
    created_at TIMESTAMPTZ(3) NOT NULL
)"#
        )
    }

    fn upsert_marker(table: &str) -> String {
        format!(
            r#"INSERT INTO "{table}" (change_id, execution_id, committed, created_at)
VALUES ($1, $2, $3, clock_timestamp())
ON CONFLICT (change_id) DO UPDATE SET execution_id = excluded.execution_id,
    committed = excluded.committed, created_at = excluded.created_at"#
        )
    }

    fn select_marker(table: &str) -> String {
        format!(r#"SELECT execution_id, committed FROM "{table}" WHERE change_id = $1"#)
    }

    fn delete_marker(table: &str) -> String {
        format!(r#"DELETE FROM "{table}" WHERE change_id = $1"#)
    }
}

#[cfg(feature = "mysql")]
impl TargetDialect for sqlx::MySql {
    fn create_marker_table(table: &str) -> String {
        // utf8mb4_bin: change ids compare exactly, as in the audit table.
        format!(
            r#"CREATE TABLE IF NOT EXISTS `{table}` (
    change_id VARCHAR(255) NOT NULL,
    execution_id VARCHAR(64) NOT NULL,
    committed BOOLEAN NOT NULL,
    created_at DATETIME(3) NOT NULL,
    PRIMARY KEY (change_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"#
        )
    }

    fn upsert_marker(table: &str) -> String {
        // `VALUES(col)` rather than MySQL 8's row alias, which MariaDB does not understand.
        format!(
            r#"INSERT INTO `{table}` (change_id, execution_id, committed, created_at)
VALUES (?, ?, ?, UTC_TIMESTAMP(3))
ON DUPLICATE KEY UPDATE execution_id = VALUES(execution_id), committed = VALUES(committed),
    created_at = VALUES(created_at)"#
        )
    }

    fn select_marker(table: &str) -> String {
        format!(r#"SELECT execution_id, committed FROM `{table}` WHERE change_id = ?"#)
    }

    fn delete_marker(table: &str) -> String {
        format!(r#"DELETE FROM `{table}` WHERE change_id = ?"#)
    }
}
