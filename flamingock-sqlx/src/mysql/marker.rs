//! Backend: MySQL, the marker table's SQL (see [`TargetDialect`]).

use crate::dialect::TargetDialect;

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
