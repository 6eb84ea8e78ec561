//! Backend: PostgreSQL, the marker table's SQL (see [`TargetDialect`]).

use crate::dialect::TargetDialect;

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
