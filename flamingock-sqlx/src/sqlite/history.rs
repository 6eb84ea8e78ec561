//! Backend: SQLite, what a history query spells its own way (see [`HistorySql`]).

use chrono::{DateTime, SecondsFormat, Utc};

use crate::dialect::{HistorySql, IndexColumns};

impl HistorySql for sqlx::Sqlite {
    fn placeholder(n: usize) -> String {
        format!("?{n}")
    }
    fn quoted(table: &str) -> String {
        format!("\"{table}\"")
    }
    fn time_param(placeholder: &str) -> String {
        // Stored as fixed-width RFC 3339 text in UTC, which sorts as time does.
        placeholder.to_owned()
    }
    fn time_text(at: &DateTime<Utc>) -> String {
        at.to_rfc3339_opts(SecondsFormat::Millis, true)
    }
    const TEXT_COLUMNS: &'static str = "created_at, metadata";
    const SELECT_CLOCK: &'static str = "SELECT strftime('%Y-%m-%dT%H:%M:%fZ', 'now') AS now";
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
