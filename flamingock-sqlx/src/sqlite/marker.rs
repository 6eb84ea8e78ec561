//! Backend: SQLite, the marker table's SQL (see [`TargetDialect`]).

use crate::dialect::{ConnectOptionsOf, TargetDialect};

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
