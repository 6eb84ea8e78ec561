//! Backend: MySQL, the lock's SQL: the lease row, its atomic acquisition and the fenced audit
//! insert, each judging time by the database clock. MySQL and MariaDB: `UTC_TIMESTAMP(3)`,
//! which is fixed for the length of one statement.

use crate::columns::{bound_count, insert_columns, insert_values};
use crate::dialect::{HistorySql, LockDialect};

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
