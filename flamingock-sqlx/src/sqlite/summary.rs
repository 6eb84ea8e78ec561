//! Backend: SQLite, the summary table's SQL (see [`SummaryDialect`]). The summary's transaction
//! begins with `BEGIN IMMEDIATE`, which takes the database's write lock: no other connection
//! writes an audit row until it ends, and ids are handed out in commit order.

use crate::columns::plain_columns;
use crate::dialect::{HistorySql, SummaryDialect};

/// The database clock.
const NOW: &str = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";

impl SummaryDialect for sqlx::Sqlite {
    fn create_summary_table(table: &str) -> String {
        format!(
            r#"CREATE TABLE IF NOT EXISTS "{table}" (
    plan_digest TEXT PRIMARY KEY NOT NULL,
    covers_id INTEGER NOT NULL,
    run_always TEXT NOT NULL,
    units INTEGER NOT NULL,
    written_at TEXT NOT NULL
)"#
        )
    }

    fn select_current_summary(summary: &str, audit: &str) -> String {
        format!(
            r#"SELECT s.covers_id, s.run_always, (SELECT MAX(id) FROM "{audit}") AS newest
FROM "{summary}" AS s WHERE s.plan_digest = ?1"#
        )
    }

    fn select_summary_base(summary: &str) -> String {
        format!(r#"SELECT covers_id, run_always FROM "{summary}" WHERE plan_digest = ?1"#)
    }

    fn select_entries_after(audit: &str) -> String {
        format!(
            r#"SELECT {plain}, {text} FROM "{audit}" WHERE id > ?1 ORDER BY id LIMIT ?2"#,
            plain = plain_columns(),
            text = Self::TEXT_COLUMNS,
        )
    }

    fn select_newest_id(audit: &str) -> String {
        format!(r#"SELECT MAX(id) AS newest FROM "{audit}""#)
    }

    fn quiesce_audit(_audit: &str) -> Vec<String> {
        Vec::new()
    }

    fn lock_whole_audit(_audit: &str) -> Option<String> {
        None
    }

    fn upsert_summary_fenced(summary: &str, lock: &str) -> String {
        format!(
            r#"INSERT INTO "{summary}" (plan_digest, covers_id, run_always, units, written_at)
SELECT ?1, ?2, ?3, ?4, {NOW}
WHERE EXISTS (SELECT 1 FROM "{lock}"
              WHERE lock_key = ?5 AND owner = ?6 AND expires_at > {NOW})
ON CONFLICT (plan_digest) DO UPDATE SET covers_id = excluded.covers_id,
    run_always = excluded.run_always, units = excluded.units, written_at = excluded.written_at"#
        )
    }

    fn is_lock_timeout(error: &sqlx::Error) -> bool {
        <Self as crate::dialect::LockDialect>::is_busy(error)
    }
}
