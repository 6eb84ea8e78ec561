//! Backend: PostgreSQL, what a history query spells its own way (see [`HistorySql`]).

use chrono::{DateTime, SecondsFormat, Utc};

use crate::dialect::{HistorySql, IndexColumns};

impl HistorySql for sqlx::Postgres {
    fn placeholder(n: usize) -> String {
        format!("${n}")
    }
    fn quoted(table: &str) -> String {
        format!("\"{table}\"")
    }
    fn time_param(placeholder: &str) -> String {
        format!("CAST({placeholder} AS TIMESTAMPTZ)")
    }
    fn time_text(at: &DateTime<Utc>) -> String {
        at.to_rfc3339_opts(SecondsFormat::Millis, true)
    }
    const TEXT_COLUMNS: &'static str = r#"to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS created_at, metadata::text AS metadata"#;
    const SELECT_CLOCK: &'static str = r#"SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS now"#;
    fn create_index(table: &str, index: &str, columns: IndexColumns) -> String {
        let columns = match columns {
            IndexColumns::CreatedAt => "created_at",
            IndexColumns::Author => "author, id",
            IndexColumns::Execution => "execution_id",
        };
        format!(r#"CREATE INDEX IF NOT EXISTS "{index}" ON "{table}" ({columns})"#)
    }
    const INDEX_EXISTS: Option<&'static str> = None;
}
