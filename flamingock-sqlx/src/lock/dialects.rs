//! The lock's SQL for each database: the lease row, its atomic acquisition, and the fenced audit
//! insert. Each statement judges time by the database clock, never the client's.

#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
use super::LockDialect;
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
use crate::columns::{bound_count, insert_columns, insert_values};
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
use crate::history::HistorySql;

/// SQLite keeps timestamps as RFC 3339 text with milliseconds, whose text order is time order.
#[cfg(feature = "sqlite")]
mod sqlite {
    use super::*;

    /// The database clock.
    const NOW: &str = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";

    /// The database clock plus the lease bound at `?{n}` (milliseconds).
    fn now_plus(n: u8) -> String {
        format!("strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '+' || (?{n} / 1000.0) || ' seconds')")
    }

    impl LockDialect for sqlx::Sqlite {
        fn rows_affected(result: &Self::QueryResult) -> u64 {
            result.rows_affected()
        }

        const TRANSACTION_LOCKS_DATABASE: bool = true;
        const SELECT_NOW: &'static str = "SELECT strftime('%Y-%m-%dT%H:%M:%fZ', 'now') AS now";

        fn create_lock_table(table: &str) -> String {
            format!(
                r#"CREATE TABLE IF NOT EXISTS "{table}" (
    lock_key TEXT PRIMARY KEY NOT NULL,
    owner TEXT NOT NULL,
    hostname TEXT NOT NULL,
    acquired_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
)"#
            )
        }

        fn select_lock(table: &str) -> String {
            format!(
                r#"SELECT lock_key, owner, hostname, acquired_at, expires_at,
       CASE WHEN expires_at <= {NOW} THEN 1 ELSE 0 END AS expired
FROM "{table}" WHERE lock_key = ?1"#
            )
        }

        fn select_lock_for_update(table: &str) -> String {
            // The transaction began with BEGIN IMMEDIATE: the whole database is locked already.
            Self::select_lock(table)
        }

        fn upsert_lock(table: &str) -> String {
            // `excluded.acquired_at` is the statement's `now` (constant within one statement).
            format!(
                r#"INSERT INTO "{table}" (lock_key, owner, hostname, acquired_at, expires_at)
VALUES (?1, ?2, ?3, {NOW}, {expiry})
ON CONFLICT (lock_key) DO UPDATE SET
    acquired_at = CASE WHEN "{table}".owner = excluded.owner
                         AND "{table}".expires_at > excluded.acquired_at
                       THEN "{table}".acquired_at ELSE excluded.acquired_at END,
    owner = excluded.owner,
    hostname = excluded.hostname,
    expires_at = excluded.expires_at
WHERE "{table}".expires_at <= excluded.acquired_at OR "{table}".owner = excluded.owner"#,
                expiry = now_plus(4)
            )
        }

        fn extend_lock(table: &str) -> String {
            format!(
                r#"UPDATE "{table}" SET expires_at = {expiry}
WHERE lock_key = ?2 AND owner = ?3 AND expires_at > {NOW}"#,
                expiry = now_plus(1)
            )
        }

        fn renew_lock_since(table: &str) -> Option<String> {
            Some(format!(
                r#"UPDATE "{table}" SET expires_at = {expiry}
WHERE lock_key = ?2 AND owner = ?3 AND expires_at > ?4"#,
                expiry = now_plus(1)
            ))
        }

        fn release_lock(table: &str) -> String {
            format!(r#"DELETE FROM "{table}" WHERE lock_key = ?1 AND owner = ?2"#)
        }

        fn delete_lock(table: &str) -> String {
            format!(r#"DELETE FROM "{table}" WHERE lock_key = ?1"#)
        }

        fn insert_entry_fenced(audit_table: &str, lock_table: &str) -> String {
            format!(
                r#"INSERT INTO "{audit_table}" ({columns})
SELECT {values}
WHERE EXISTS (SELECT 1 FROM "{lock_table}"
              WHERE lock_key = {key} AND owner = {owner} AND expires_at > {NOW})"#,
                columns = insert_columns(),
                values = insert_values(Self::placeholder, |p| p, NOW),
                key = Self::placeholder(bound_count() + 1),
                owner = Self::placeholder(bound_count() + 2),
            )
        }

        fn is_busy(error: &sqlx::Error) -> bool {
            // SQLITE_BUSY (5) and SQLITE_LOCKED (6), with any extended code.
            let sqlx::Error::Database(error) = error else {
                return false;
            };
            error
                .code()
                .and_then(|code| code.parse::<i32>().ok())
                .is_some_and(|code| matches!(code & 0xff, 5 | 6))
        }
    }
}

/// PostgreSQL: `clock_timestamp()`, not `now()`, which is the start of the transaction and would
/// judge a fenced insert at the end of a long unit by the time the unit began.
#[cfg(feature = "postgres")]
mod postgres {
    use super::*;

    const NOW: &str = "clock_timestamp()";

    fn text(column: &str) -> String {
        format!(r#"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')"#)
    }

    fn select(table: &str, suffix: &str) -> String {
        format!(
            r#"SELECT lock_key, owner, hostname, {acquired} AS acquired_at, {expires} AS expires_at,
       CAST(CASE WHEN expires_at <= {NOW} THEN 1 ELSE 0 END AS BIGINT) AS expired
FROM "{table}" WHERE lock_key = $1{suffix}"#,
            acquired = text("acquired_at"),
            expires = text("expires_at"),
        )
    }

    impl LockDialect for sqlx::Postgres {
        fn rows_affected(result: &Self::QueryResult) -> u64 {
            result.rows_affected()
        }

        const TRANSACTION_LOCKS_DATABASE: bool = false;
        const SELECT_NOW: &'static str = "SELECT clock_timestamp()::text AS now";

        fn create_lock_table(table: &str) -> String {
            format!(
                r#"CREATE TABLE IF NOT EXISTS "{table}" (
    lock_key TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    hostname TEXT NOT NULL,
    acquired_at TIMESTAMPTZ(3) NOT NULL,
    expires_at TIMESTAMPTZ(3) NOT NULL
)"#
            )
        }

        fn select_lock(table: &str) -> String {
            select(table, "")
        }

        fn select_lock_for_update(table: &str) -> String {
            select(table, " FOR UPDATE")
        }

        fn upsert_lock(table: &str) -> String {
            format!(
                r#"INSERT INTO "{table}" AS held (lock_key, owner, hostname, acquired_at, expires_at)
VALUES ($1, $2, $3, {NOW}, {NOW} + $4 * INTERVAL '1 millisecond')
ON CONFLICT (lock_key) DO UPDATE SET
    acquired_at = CASE WHEN held.owner = excluded.owner AND held.expires_at > {NOW}
                       THEN held.acquired_at ELSE excluded.acquired_at END,
    owner = excluded.owner,
    hostname = excluded.hostname,
    expires_at = excluded.expires_at
WHERE held.expires_at <= {NOW} OR held.owner = excluded.owner"#
            )
        }

        fn extend_lock(table: &str) -> String {
            format!(
                r#"UPDATE "{table}" SET expires_at = {NOW} + $1 * INTERVAL '1 millisecond'
WHERE lock_key = $2 AND owner = $3 AND expires_at > {NOW}"#
            )
        }

        fn renew_lock_since(_table: &str) -> Option<String> {
            None
        }

        fn release_lock(table: &str) -> String {
            format!(r#"DELETE FROM "{table}" WHERE lock_key = $1 AND owner = $2"#)
        }

        fn delete_lock(table: &str) -> String {
            format!(r#"DELETE FROM "{table}" WHERE lock_key = $1"#)
        }

        fn insert_entry_fenced(audit_table: &str, lock_table: &str) -> String {
            format!(
                r#"INSERT INTO "{audit_table}" ({columns})
SELECT {values}
WHERE EXISTS (SELECT 1 FROM "{lock_table}"
              WHERE lock_key = {key} AND owner = {owner} AND expires_at > {NOW})"#,
                columns = insert_columns(),
                values = insert_values(Self::placeholder, crate::postgres::json_param, NOW),
                key = Self::placeholder(bound_count() + 1),
                owner = Self::placeholder(bound_count() + 2),
            )
        }

        fn is_busy(_error: &sqlx::Error) -> bool {
            false
        }
    }
}

/// MySQL and MariaDB: `UTC_TIMESTAMP(3)`, which is fixed for the length of one statement.
#[cfg(feature = "mysql")]
mod mysql {
    use super::*;

    const NOW: &str = "UTC_TIMESTAMP(3)";

    fn select(table: &str, suffix: &str) -> String {
        format!(
            r#"SELECT lock_key, owner, hostname,
       DATE_FORMAT(acquired_at, '%Y-%m-%dT%H:%i:%s.%fZ') AS acquired_at,
       DATE_FORMAT(expires_at, '%Y-%m-%dT%H:%i:%s.%fZ') AS expires_at,
       CAST(CASE WHEN expires_at <= {NOW} THEN 1 ELSE 0 END AS SIGNED) AS expired
FROM `{table}` WHERE lock_key = ?{suffix}"#
        )
    }

    impl LockDialect for sqlx::MySql {
        fn rows_affected(result: &Self::QueryResult) -> u64 {
            result.rows_affected()
        }

        const TRANSACTION_LOCKS_DATABASE: bool = false;
        const SELECT_NOW: &'static str =
            "SELECT DATE_FORMAT(UTC_TIMESTAMP(3), '%Y-%m-%dT%H:%i:%s.%fZ') AS now";

        fn create_lock_table(table: &str) -> String {
            format!(
                r#"CREATE TABLE IF NOT EXISTS `{table}` (
    lock_key VARCHAR(255) NOT NULL,
    owner VARCHAR(255) NOT NULL,
    hostname TEXT NOT NULL,
    acquired_at DATETIME(3) NOT NULL,
    expires_at DATETIME(3) NOT NULL,
    PRIMARY KEY (lock_key)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"#
            )
        }

        fn select_lock(table: &str) -> String {
            select(table, "")
        }

        fn select_lock_for_update(table: &str) -> String {
            select(table, " FOR UPDATE")
        }

        fn upsert_lock(table: &str) -> String {
            // MySQL applies the assignments left to right, each seeing the ones before: `owner`
            // changes before `expires_at`, whose condition then still holds exactly when it held
            // for the original row (taken over: the owner is now ours; refused: nothing changed).
            // `VALUES(acquired_at)` is the statement's `now`.
            let free = "(expires_at <= VALUES(acquired_at) OR owner = VALUES(owner))";
            format!(
                r#"INSERT INTO `{table}` (lock_key, owner, hostname, acquired_at, expires_at)
VALUES (?, ?, ?, {NOW}, {NOW} + INTERVAL (? * 1000) MICROSECOND)
ON DUPLICATE KEY UPDATE
    acquired_at = IF({free},
                     IF(owner = VALUES(owner) AND expires_at > VALUES(acquired_at),
                        acquired_at, VALUES(acquired_at)),
                     acquired_at),
    hostname = IF({free}, VALUES(hostname), hostname),
    owner = IF({free}, VALUES(owner), owner),
    expires_at = IF({free}, VALUES(expires_at), expires_at)"#
            )
        }

        fn extend_lock(table: &str) -> String {
            // The client sets CLIENT_FOUND_ROWS: the count is of rows matched, even when the new
            // expiry equals the old one.
            format!(
                r#"UPDATE `{table}` SET expires_at = {NOW} + INTERVAL (? * 1000) MICROSECOND
WHERE lock_key = ? AND owner = ? AND expires_at > {NOW}"#
            )
        }

        fn renew_lock_since(_table: &str) -> Option<String> {
            None
        }

        fn release_lock(table: &str) -> String {
            format!("DELETE FROM `{table}` WHERE lock_key = ? AND owner = ?")
        }

        fn delete_lock(table: &str) -> String {
            format!("DELETE FROM `{table}` WHERE lock_key = ?")
        }

        fn insert_entry_fenced(audit_table: &str, lock_table: &str) -> String {
            // INSERT .. SELECT reads the lease row with a locking read: the newest committed
            // version, whatever the transaction's snapshot.
            format!(
                r#"INSERT INTO `{audit_table}` ({columns})
SELECT {values} FROM DUAL
WHERE EXISTS (SELECT 1 FROM `{lock_table}`
              WHERE lock_key = {key} AND owner = {owner} AND expires_at > {NOW})"#,
                columns = insert_columns(),
                values = insert_values(Self::placeholder, |p| p, NOW),
                key = Self::placeholder(bound_count() + 1),
                owner = Self::placeholder(bound_count() + 2),
            )
        }

        fn is_busy(_error: &sqlx::Error) -> bool {
            false
        }
    }
}
