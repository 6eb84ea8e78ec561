//! Backend: PostgreSQL, the lock's SQL: the lease row, its atomic acquisition and the fenced audit
//! insert, each judging time by the database clock: `clock_timestamp()`, not
//! `now()`, which is the start of the transaction and would judge a fenced insert at the end of
//! a long unit by the time the unit began.

use crate::columns::{bound_count, insert_columns, insert_values};
use crate::dialect::{HistorySql, LockDialect};

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
