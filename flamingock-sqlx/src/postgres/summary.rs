//! Backend: PostgreSQL, the summary table's SQL (see [`SummaryDialect`]). Identity values are
//! handed out in order but committed in any order, so the summary's transaction first takes a
//! `SHARE` lock on the audit table: it waits for every transaction that inserted a row (each
//! holds `ROW EXCLUSIVE` until it ends), and keeps new inserts waiting until it commits; their
//! ids are then above every id handed out before. The wait is bounded (`lock_timeout`).

use crate::columns::plain_columns;
use crate::dialect::{HistorySql, SummaryDialect};

impl SummaryDialect for sqlx::Postgres {
    fn create_summary_table(table: &str) -> String {
        format!(
            r#"CREATE TABLE IF NOT EXISTS "{table}" (
    plan_digest TEXT PRIMARY KEY,
    covers_id BIGINT NOT NULL,
    run_always TEXT NOT NULL,
    units BIGINT NOT NULL,
    written_at TIMESTAMPTZ(3) NOT NULL
)"#
        )
    }

    fn select_current_summary(summary: &str, audit: &str) -> String {
        format!(
            r#"SELECT s.covers_id, s.run_always, (SELECT MAX(id) FROM "{audit}") AS newest
FROM "{summary}" AS s WHERE s.plan_digest = $1"#
        )
    }

    fn select_summary_base(summary: &str) -> String {
        format!(r#"SELECT covers_id, run_always FROM "{summary}" WHERE plan_digest = $1"#)
    }

    fn select_entries_after(audit: &str) -> String {
        format!(
            r#"SELECT {plain}, {text} FROM "{audit}" WHERE id > $1 ORDER BY id LIMIT $2"#,
            plain = plain_columns(),
            text = Self::TEXT_COLUMNS,
        )
    }

    fn select_newest_id(audit: &str) -> String {
        format!(r#"SELECT MAX(id) AS newest FROM "{audit}""#)
    }

    fn quiesce_audit(audit: &str) -> Vec<String> {
        vec![
            "SET LOCAL lock_timeout = '5s'".to_owned(),
            format!(r#"LOCK TABLE "{audit}" IN SHARE MODE"#),
        ]
    }

    fn lock_whole_audit(_audit: &str) -> Option<String> {
        None
    }

    fn upsert_summary_fenced(summary: &str, lock: &str) -> String {
        format!(
            r#"INSERT INTO "{summary}" (plan_digest, covers_id, run_always, units, written_at)
SELECT $1, $2, $3, $4, clock_timestamp()
WHERE EXISTS (SELECT 1 FROM "{lock}"
              WHERE lock_key = $5 AND owner = $6 AND expires_at > clock_timestamp())
ON CONFLICT (plan_digest) DO UPDATE SET covers_id = excluded.covers_id,
    run_always = excluded.run_always, units = excluded.units, written_at = excluded.written_at"#
        )
    }

    fn is_lock_timeout(error: &sqlx::Error) -> bool {
        // lock_not_available
        error
            .as_database_error()
            .and_then(|e| e.code())
            .is_some_and(|code| code == "55P03")
    }
}
