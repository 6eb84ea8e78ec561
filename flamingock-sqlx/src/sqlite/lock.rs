//! Backend: SQLite, the lock's SQL: the lease row, its atomic acquisition and the fenced audit
//! insert, each judging time by the database clock. SQLite keeps timestamps as RFC 3339 text
//! with milliseconds, whose text order is time order.

use crate::columns::{bound_count, insert_columns, insert_values};
use crate::dialect::{HistorySql, LockDialect};

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
