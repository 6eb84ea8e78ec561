//! Backend: MySQL, what a history query spells its own way (see [`HistorySql`]).

use chrono::{DateTime, Utc};

use crate::dialect::{HistorySql, IndexColumns};

impl HistorySql for sqlx::MySql {
    fn placeholder(_n: usize) -> String {
        "?".to_owned()
    }
    fn quoted(table: &str) -> String {
        format!("`{table}`")
    }
    fn time_param(placeholder: &str) -> String {
        format!("CAST({placeholder} AS DATETIME(3))")
    }
    fn time_text(at: &DateTime<Utc>) -> String {
        at.format("%Y-%m-%d %H:%M:%S%.3f").to_string()
    }
    const TEXT_COLUMNS: &'static str = "DATE_FORMAT(created_at, '%Y-%m-%dT%H:%i:%s.%fZ') AS created_at, \
         CAST(metadata AS CHAR) AS metadata";
    const SELECT_CLOCK: &'static str =
        "SELECT DATE_FORMAT(UTC_TIMESTAMP(3), '%Y-%m-%dT%H:%i:%s.%fZ') AS now";
    fn create_index(table: &str, index: &str, columns: IndexColumns) -> String {
        // TEXT columns are indexed by a prefix (an index key is bounded).
        let columns = match columns {
            IndexColumns::CreatedAt => "created_at",
            IndexColumns::Author => "author(191), id",
            IndexColumns::Execution => "execution_id(64)",
        };
        format!("CREATE INDEX `{index}` ON `{table}` ({columns})")
    }
    const INDEX_EXISTS: Option<&'static str> = Some(
        "SELECT COUNT(*) AS n FROM information_schema.statistics \
         WHERE table_schema = DATABASE() AND table_name = ? AND index_name = ?",
    );
}
