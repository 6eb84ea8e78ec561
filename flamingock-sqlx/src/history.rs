//! History queries in SQL: one statement per [`HistoryQuery`], assembled only from fixed
//! fragments (one per filter that is set) with every value bound as a parameter, ordered and paged
//! by row id (keyset paging), so a page reads only the rows it returns.
//!
//! The filters operators use most have indexes: `(change_id, id)` comes with the table; the
//! first history query of a process adds `created_at`, `(author, id)` and `execution_id` indexes
//! to a table that lacks them (idempotently; a database user without the right to create them
//! still gets answers, only slower).

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};

use chrono::{DateTime, SecondsFormat, Utc};
use flamingock_core::history::{HistoryOrder, HistoryQuery};
use flamingock_core::{AuditEntry, StoreError};
use sqlx::{
    AssertSqlSafe, ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Pool, Type,
};

use crate::columns::plain_columns;
use crate::identifier::TableName;
use crate::row;
use crate::store::query_error;

/// What each dialect spells its own way in a history query. Implemented for every [`Dialect`];
/// not for use outside this crate (the module is private, so the trait is sealed).
///
/// [`Dialect`]: crate::Dialect
pub trait HistorySql {
    /// The `n`-th bind parameter (1-based).
    #[doc(hidden)]
    fn placeholder(n: usize) -> String;
    /// The table name quoted.
    #[doc(hidden)]
    fn quoted(table: &str) -> String;
    /// A bound timestamp (as written by [`time_text`](Self::time_text)) in a comparison with
    /// `created_at`.
    #[doc(hidden)]
    fn time_param(placeholder: &str) -> String;
    /// The bound form of an instant.
    #[doc(hidden)]
    fn time_text(at: &DateTime<Utc>) -> String;
    /// `created_at` and `metadata` read as text, as `decode_entry` expects them.
    #[doc(hidden)]
    const TEXT_COLUMNS: &'static str;
    /// Statements that create the history indexes if they are missing. MySQL cannot say
    /// `IF NOT EXISTS`: there, an index is created only when [`index_exists`](Self::index_exists)
    /// finds none.
    #[doc(hidden)]
    fn create_index(table: &str, index: &str, columns: IndexColumns) -> String;
    /// A query counting indexes named by the second bound parameter on the table named by the
    /// first, where `CREATE INDEX` has no `IF NOT EXISTS` (`None` elsewhere).
    #[doc(hidden)]
    const INDEX_EXISTS: Option<&'static str>;
}

/// The history indexes.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexColumns {
    CreatedAt,
    Author,
    Execution,
}

impl IndexColumns {
    const ALL: [IndexColumns; 3] = [
        IndexColumns::CreatedAt,
        IndexColumns::Author,
        IndexColumns::Execution,
    ];

    fn suffix(self) -> &'static str {
        match self {
            IndexColumns::CreatedAt => "created_at_idx",
            IndexColumns::Author => "author_idx",
            IndexColumns::Execution => "execution_idx",
        }
    }
}

#[cfg(feature = "sqlite")]
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

#[cfg(feature = "postgres")]
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

#[cfg(feature = "mysql")]
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

/// One bound value of a history statement.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Bind {
    Text(String),
    Int(i64),
}

/// The statement answering `query` on `table`, and its bind values in order.
fn statement<DB: HistorySql>(table: &str, query: &HistoryQuery) -> (String, Vec<Bind>) {
    let quoted = DB::quoted(table);
    let mut sql = format!(
        "SELECT {}, {} FROM {quoted}",
        plain_columns(),
        DB::TEXT_COLUMNS
    );
    if query.latest_per_unit {
        sql.push_str(&format!(
            " JOIN (SELECT MAX(id) AS newest_id FROM {quoted} GROUP BY change_id) AS newest \
             ON newest.newest_id = id"
        ));
    }
    let mut binds = Vec::new();
    let mut conditions: Vec<String> = Vec::new();
    let next = |binds: &mut Vec<Bind>, value: Bind| {
        binds.push(value);
        DB::placeholder(binds.len())
    };
    let equal = [
        ("change_id", &query.change_id),
        ("author", &query.author),
        ("stage", &query.stage),
        ("execution_id", &query.execution_id),
    ];
    for (column, value) in equal {
        if let Some(value) = value {
            let p = next(&mut binds, Bind::Text(value.clone()));
            conditions.push(format!("{column} = {p}"));
        }
    }
    if !query.states.is_empty() {
        let list: Vec<String> = query
            .states
            .iter()
            .map(|state| next(&mut binds, Bind::Text(state.as_str().to_owned())))
            .collect();
        conditions.push(format!("state IN ({})", list.join(", ")));
    }
    if let Some(since) = &query.since {
        let p = next(&mut binds, Bind::Text(DB::time_text(since)));
        conditions.push(format!("created_at >= {}", DB::time_param(&p)));
    }
    if let Some(until) = &query.until {
        let p = next(&mut binds, Bind::Text(DB::time_text(until)));
        conditions.push(format!("created_at < {}", DB::time_param(&p)));
    }
    let (comparison, direction) = match query.order {
        HistoryOrder::OldestFirst => (">", "ASC"),
        HistoryOrder::NewestFirst => ("<", "DESC"),
    };
    if let Some(after) = query.after_id {
        let p = next(&mut binds, Bind::Int(after));
        conditions.push(format!("id {comparison} {p}"));
    }
    if !conditions.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&conditions.join(" AND "));
    }
    sql.push_str(&format!(" ORDER BY id {direction}"));
    if let Some(limit) = query.limit {
        let p = next(&mut binds, Bind::Int(i64::from(limit)));
        sql.push_str(&format!(" LIMIT {p}"));
    }
    (sql, binds)
}

/// Answers `query` with one statement.
pub(crate) async fn history<DB>(
    pool: &Pool<DB>,
    table: &TableName,
    identity: &str,
    query: &HistoryQuery,
) -> Result<Vec<AuditEntry>, StoreError>
where
    DB: Database + HistorySql,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    &'static str: ColumnIndex<DB::Row>,
    String: Type<DB> + for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB>,
    i64: Type<DB> + for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB>,
{
    ensure_indexes(pool, table, identity).await;
    let (text, binds) = statement::<DB>(table.as_str(), query);
    // Every fragment is fixed text or a validated table name; values are bound.
    let mut statement = sqlx::query(AssertSqlSafe(text));
    for bind in binds {
        statement = match bind {
            Bind::Text(value) => statement.bind(value),
            Bind::Int(value) => statement.bind(value),
        };
    }
    let rows = statement
        .fetch_all(pool)
        .await
        .map_err(query_error("querying the audit history"))?;
    rows.iter()
        .map(|r| row::decode_entry::<DB>(r, table))
        .collect()
}

/// Creates the history indexes once per process and table. A failure (no right to create an
/// index, a concurrent creator) costs only speed, so it is logged, not returned.
async fn ensure_indexes<DB>(pool: &Pool<DB>, table: &TableName, identity: &str)
where
    DB: Database + HistorySql,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    &'static str: ColumnIndex<DB::Row>,
    String: Type<DB> + for<'q> Encode<'q, DB>,
    i64: Type<DB> + for<'r> Decode<'r, DB>,
{
    static ENSURED: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    let key = format!("{identity} {}", table.as_str());
    {
        let ensured = ENSURED.get_or_init(Default::default);
        let mut ensured = ensured.lock().unwrap_or_else(|p| p.into_inner());
        if !ensured.insert(key) {
            return;
        }
    }
    for columns in IndexColumns::ALL {
        let index = table.derived(columns.suffix());
        if let Some(exists) = DB::INDEX_EXISTS {
            let found = sqlx::query(exists)
                .bind(table.as_str().to_owned())
                .bind(index.clone())
                .fetch_one(pool)
                .await
                .and_then(|row| sqlx::Row::try_get::<i64, _>(&row, "n"));
            match found {
                Ok(0) => {}
                Ok(_) => continue,
                Err(error) => {
                    tracing::debug!(%error, %index, "could not look for a history index");
                    continue;
                }
            }
        }
        let create = DB::create_index(table.as_str(), &index, columns);
        if let Err(error) = sqlx::raw_sql(AssertSqlSafe(create)).execute(pool).await {
            tracing::warn!(%error, %index, "could not create a history index; history queries still work, more slowly");
        }
    }
}

#[cfg(all(test, feature = "sqlite", feature = "postgres", feature = "mysql"))]
mod tests {
    use super::*;
    use flamingock_core::AuditState;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("a timestamp")
            .with_timezone(&Utc)
    }

    #[test]
    fn every_filter_is_a_bound_parameter() {
        let query = HistoryQuery::new()
            .change("x'; DROP TABLE t; --")
            .author("ana")
            .state(AuditState::Failed)
            .state(AuditState::Applied)
            .since(at("2026-01-02T03:04:05.678Z"))
            .newest_first()
            .after(10)
            .limit(5);
        let (sql, binds) = statement::<sqlx::Postgres>("audit", &query);
        assert!(!sql.contains("DROP"), "{sql}");
        assert!(
            sql.contains("change_id = $1 AND author = $2 AND state IN ($3, $4)"),
            "{sql}"
        );
        assert!(
            sql.contains("created_at >= CAST($5 AS TIMESTAMPTZ) AND id < $6"),
            "{sql}"
        );
        assert!(sql.ends_with("ORDER BY id DESC LIMIT $7"), "{sql}");
        assert_eq!(binds.len(), 7);
        assert_eq!(binds[4], Bind::Text("2026-01-02T03:04:05.678Z".into()));
        assert_eq!(binds[6], Bind::Int(5));

        let (sql, binds) = statement::<sqlx::MySql>("audit", &query);
        assert!(
            sql.contains("created_at >= CAST(? AS DATETIME(3))"),
            "{sql}"
        );
        assert_eq!(binds[4], Bind::Text("2026-01-02 03:04:05.678".into()));
    }

    #[test]
    fn an_empty_query_reads_everything_oldest_first() {
        let (sql, binds) = statement::<sqlx::Sqlite>("audit", &HistoryQuery::new());
        assert!(binds.is_empty());
        assert!(!sql.contains("WHERE"), "{sql}");
        assert!(sql.ends_with(r#"FROM "audit" ORDER BY id ASC"#), "{sql}");
        let (sql, _) = statement::<sqlx::Sqlite>("audit", &HistoryQuery::new().latest_per_unit());
        assert!(sql.contains("GROUP BY change_id"), "{sql}");
    }
}
