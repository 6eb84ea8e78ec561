//! Backend: MySQL and MariaDB, the summary table's SQL (see [`SummaryDialect`]). Auto-increment
//! ids are handed out in order but committed in any order; InnoDB's locking reads (`LOCK IN
//! SHARE MODE`, at the default `REPEATABLE READ`) wait for every uncommitted row in the range
//! they read and lock the gaps, up to the end of the index, so no insert lands there until the
//! summary's transaction ends. The rows since the last summary are read that way (every earlier
//! row was committed before that summary was); a summary made from every unit's state first
//! reads the whole table that way. The transaction's snapshot is taken by its first plain read,
//! after those waits.

use crate::columns::plain_columns;
use crate::dialect::{HistorySql, SummaryDialect};

impl SummaryDialect for sqlx::MySql {
    fn create_summary_table(table: &str) -> String {
        format!(
            r#"CREATE TABLE IF NOT EXISTS `{table}` (
    plan_digest VARCHAR(64) NOT NULL,
    covers_id BIGINT NOT NULL,
    run_always LONGTEXT NOT NULL,
    units BIGINT NOT NULL,
    written_at DATETIME(3) NOT NULL,
    PRIMARY KEY (plan_digest)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"#
        )
    }

    fn select_current_summary(summary: &str, audit: &str) -> String {
        format!(
            r#"SELECT s.covers_id, s.run_always, (SELECT MAX(id) FROM `{audit}`) AS newest
FROM `{summary}` AS s WHERE s.plan_digest = ?"#
        )
    }

    fn select_summary_base(summary: &str) -> String {
        format!(
            r#"SELECT covers_id, run_always FROM `{summary}` WHERE plan_digest = ? LOCK IN SHARE MODE"#
        )
    }

    fn select_entries_after(audit: &str) -> String {
        format!(
            r#"SELECT {plain}, {text} FROM `{audit}` WHERE id > ? ORDER BY id LIMIT ? LOCK IN SHARE MODE"#,
            plain = plain_columns(),
            text = Self::TEXT_COLUMNS,
        )
    }

    fn select_newest_id(audit: &str) -> String {
        format!(r#"SELECT MAX(id) AS newest FROM `{audit}`"#)
    }

    fn quiesce_audit(_audit: &str) -> Vec<String> {
        Vec::new()
    }

    fn lock_whole_audit(audit: &str) -> Option<String> {
        Some(format!(
            r#"SELECT COUNT(*) AS n FROM `{audit}` LOCK IN SHARE MODE"#
        ))
    }

    fn upsert_summary_fenced(summary: &str, lock: &str) -> String {
        format!(
            r#"INSERT INTO `{summary}` (plan_digest, covers_id, run_always, units, written_at)
SELECT ?, ?, ?, ?, UTC_TIMESTAMP(3) FROM DUAL
WHERE EXISTS (SELECT 1 FROM `{lock}`
              WHERE lock_key = ? AND owner = ? AND expires_at > UTC_TIMESTAMP(3))
ON DUPLICATE KEY UPDATE covers_id = VALUES(covers_id), run_always = VALUES(run_always),
    units = VALUES(units), written_at = VALUES(written_at)"#
        )
    }

    fn is_lock_timeout(error: &sqlx::Error) -> bool {
        // ER_LOCK_WAIT_TIMEOUT
        error
            .as_database_error()
            .and_then(|e| e.code())
            .is_some_and(|code| code == "HY000" || code == "1205")
            && error.to_string().contains("Lock wait timeout")
    }
}
