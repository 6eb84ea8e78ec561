//! Leaf: running SQL the same way everywhere: [`sql`], the one gate dynamic SQL passes to reach
//! sqlx; [`query_error`]; [`begin`] with the dialect's `BEGIN`; and [`ensure_table`], the one
//! "read the columns, create the table or report a foreign one" for the audit, lock and marker
//! tables.

use std::sync::Arc;

use flamingock_core::StoreError;
use sqlx::{
    AssertSqlSafe, ColumnIndex, Decode, Encode, Executor, IntoArguments, Pool, Row, Transaction,
    Type,
};

use crate::dialect::Dialect;
use crate::identifier::TableName;

/// Wraps a sqlx error with what was being done.
pub(crate) fn query_error(action: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Query {
        action,
        source: Box::new(source),
    }
}

/// Wraps the error of a write (an insert in autocommit, a commit): a write whose reply may have
/// been lost on the way (the connection broke, the driver's worker died) is
/// [`StoreError::OutcomeUnknown`], since the server may have carried it out, or still be doing
/// so; one the server refused, or that was never sent, is a plain [`StoreError::Query`].
pub(crate) fn write_error(action: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| {
        if reply_may_be_lost(&source) {
            StoreError::OutcomeUnknown {
                action,
                source: Box::new(source),
            }
        } else {
            query_error(action)(source)
        }
    }
}

/// Whether a statement that failed with `error` may nonetheless have been carried out.
pub(crate) fn reply_may_be_lost(error: &sqlx::Error) -> bool {
    matches!(
        error,
        sqlx::Error::Io(_) | sqlx::Error::Protocol(_) | sqlx::Error::WorkerCrashed
    )
}

/// Makes already validated SQL text executable (the only way dynamic SQL reaches sqlx here).
pub(crate) fn sql(text: &Arc<str>) -> AssertSqlSafe<Arc<str>> {
    AssertSqlSafe(Arc::clone(text))
}

/// Opens a transaction with the dialect's `BEGIN`.
pub(crate) async fn begin<DB: Dialect>(
    pool: &Pool<DB>,
) -> Result<Transaction<'static, DB>, sqlx::Error> {
    match DB::BEGIN {
        Some(statement) => pool.begin_with(statement).await,
        None => pool.begin().await,
    }
}

/// One of the tables this crate creates: what it must hold and how its steps are named in errors.
pub(crate) struct TableKind {
    /// `"audit"`, `"lock"`, `"marker"` (as [`StoreError::ForeignTable`] names it).
    pub(crate) kind: &'static str,
    pub(crate) reading: &'static str,
    pub(crate) creating: &'static str,
    /// Takes the lock that serializes concurrent creators, where the dialect needs one.
    pub(crate) serializing: &'static str,
}

/// What [`ensure_table`] met: a statement that failed (with what it was doing), or a table that
/// is not ours.
pub(crate) enum EnsureError {
    Query(&'static str, sqlx::Error),
    Foreign(StoreError),
}

impl From<EnsureError> for StoreError {
    fn from(error: EnsureError) -> Self {
        match error {
            EnsureError::Query(action, source) => query_error(action)(source),
            EnsureError::Foreign(error) => error,
        }
    }
}

/// Takes the dialect's transaction-scoped schema lock for `table` (none on SQLite and MySQL), so
/// that concurrent `initialize()` calls create it one after the other.
pub(crate) async fn serialize_creation<DB>(
    conn: &mut DB::Connection,
    table: &TableName,
    kind: &TableKind,
) -> Result<(), EnsureError>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    i64: Type<DB> + for<'q> Encode<'q, DB>,
{
    if let Some(lock) = DB::SCHEMA_LOCK {
        sqlx::query(lock)
            .bind(table.lock_key("schema"))
            .execute(&mut *conn)
            .await
            .map_err(|e| EnsureError::Query(kind.serializing, e))?;
    }
    Ok(())
}

/// The column names of `table` (none: there is no such table).
pub(crate) async fn table_columns<DB>(
    conn: &mut DB::Connection,
    table: &TableName,
    kind: &TableKind,
) -> Result<Vec<String>, EnsureError>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    &'static str: ColumnIndex<DB::Row>,
    String: Type<DB> + for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB>,
{
    let reading = |e| EnsureError::Query(kind.reading, e);
    sqlx::query(DB::TABLE_COLUMNS)
        .bind(table.as_str().to_owned())
        .fetch_all(&mut *conn)
        .await
        .map_err(reading)?
        .iter()
        .map(|row| row.try_get::<String, _>("name"))
        .collect::<Result<Vec<_>, _>>()
        .map_err(reading)
}

/// Refuses a table that lacks one of `columns`: it is not ours.
fn check_columns(
    found: &[String],
    table: &TableName,
    kind: &TableKind,
    columns: impl IntoIterator<Item = &'static str>,
) -> Result<(), EnsureError> {
    let missing: Vec<&str> = columns
        .into_iter()
        .filter(|wanted| !found.iter().any(|c| c.eq_ignore_ascii_case(wanted)))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(EnsureError::Foreign(StoreError::ForeignTable {
            table: table.to_string(),
            kind: kind.kind,
            detail: format!("missing column(s) {}", missing.join(", ")),
        }))
    }
}

/// [`ensure_table`] for a store that only reads: checks `table` and creates nothing;
/// `Ok(false)` when there is no such table.
pub(crate) async fn inspect_table<DB>(
    conn: &mut DB::Connection,
    table: &TableName,
    kind: &TableKind,
    columns: impl IntoIterator<Item = &'static str>,
) -> Result<bool, EnsureError>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    &'static str: ColumnIndex<DB::Row>,
    String: Type<DB> + for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB>,
{
    Ok(inspect_columns::<DB>(conn, table, kind, columns)
        .await?
        .is_some())
}

/// [`inspect_table`], answering with the table's column names when it is there and ours.
pub(crate) async fn inspect_columns<DB>(
    conn: &mut DB::Connection,
    table: &TableName,
    kind: &TableKind,
    columns: impl IntoIterator<Item = &'static str>,
) -> Result<Option<Vec<String>>, EnsureError>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    &'static str: ColumnIndex<DB::Row>,
    String: Type<DB> + for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB>,
{
    let found = table_columns::<DB>(conn, table, kind).await?;
    if found.is_empty() {
        return Ok(None);
    }
    check_columns(&found, table, kind, columns)?;
    Ok(Some(found))
}

/// Creates `table` with `create` if it has no columns yet, or checks that it has every one of
/// `columns`; `Ok(true)` when it was created.
pub(crate) async fn ensure_table<DB>(
    conn: &mut DB::Connection,
    table: &TableName,
    kind: &TableKind,
    columns: impl IntoIterator<Item = &'static str>,
    create: &[Arc<str>],
) -> Result<bool, EnsureError>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    &'static str: ColumnIndex<DB::Row>,
    String: Type<DB> + for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB>,
{
    let found = table_columns::<DB>(conn, table, kind).await?;
    if found.is_empty() {
        for statement in create {
            sqlx::raw_sql(sql(statement))
                .execute(&mut *conn)
                .await
                .map_err(|e| EnsureError::Query(kind.creating, e))?;
        }
        return Ok(true);
    }
    check_columns(&found, table, kind, columns)?;
    Ok(false)
}
