//! Generic (above the backends, below the store): history queries in SQL: one statement per [`HistoryQuery`], assembled only from fixed
//! fragments (one per filter that is set) with every value bound as a parameter, ordered and paged
//! by row id (keyset paging), so a page reads only the rows it returns.
//!
//! The filters operators use most have indexes: `(change_id, id)` comes with the table; the
//! first history query of a process adds `created_at`, `(author, id)` and `execution_id` indexes
//! to a table that lacks them (idempotently; a database user without the right to create them
//! still gets answers, only slower).

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};

use chrono::{DateTime, Utc};
use flamingock_core::history::{HistoryOrder, HistoryQuery};
use flamingock_core::{AuditEntry, StoreError};
use sqlx::{
    AssertSqlSafe, ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Pool, Type,
};

use crate::columns::plain_columns;
use crate::dialect::{HistorySql, IndexColumns};
use crate::identifier::TableName;
use crate::row;
use crate::sql::query_error;

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
        ("system_version", &query.system_version),
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
    indexes: bool,
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
    // A store opened only to read creates no index.
    if indexes {
        ensure_indexes(pool, table, identity).await;
    }
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

/// The database clock, the one `created_at` is stamped from.
pub(crate) async fn database_now<DB>(pool: &Pool<DB>) -> Result<DateTime<Utc>, StoreError>
where
    DB: Database + HistorySql,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    &'static str: ColumnIndex<DB::Row>,
    String: Type<DB> + for<'r> Decode<'r, DB>,
{
    let action = "reading the database clock";
    let text: String = sqlx::query(DB::SELECT_CLOCK)
        .fetch_one(pool)
        .await
        .and_then(|row| sqlx::Row::try_get(&row, "now"))
        .map_err(query_error(action))?;
    DateTime::parse_from_rfc3339(&text)
        .map(|at| at.with_timezone(&Utc))
        .map_err(|error| StoreError::Query {
            action,
            source: format!("`{text}` is not a timestamp: {error}").into(),
        })
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
