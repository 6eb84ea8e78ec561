//! Generic: reading another migration tool's history table (sqlx's `_sqlx_migrations`,
//! refinery's `refinery_schema_history`, diesel's `__diesel_schema_migrations`, sea-orm's
//! `seaql_migrations`) from the audit store's database, for the engine's import
//! ([`ForeignHistory`]). Only `SELECT`s: the table is never written. Every column is read as text
//! (each dialect spells the casts in [`ForeignSql`]), so one decoder serves every backend.

use flamingock_core::StoreError;
use flamingock_core::import::{ForeignEntry, SourceTool};
use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Pool, Row, Type};

use crate::dialect::Dialect;
use crate::identifier::TableName;
use crate::sql::{query_error, sql};

/// How a dialect reads a column of another tool's table as text.
#[doc(hidden)]
pub trait ForeignSql {
    /// `expr` as text.
    fn text(expr: &str) -> String;
    /// The bytes of `expr` as lower-case hex.
    fn hex(expr: &str) -> String;
}

#[cfg(feature = "sqlite")]
impl ForeignSql for sqlx::Sqlite {
    fn text(expr: &str) -> String {
        format!("CAST({expr} AS TEXT)")
    }
    fn hex(expr: &str) -> String {
        format!("lower(hex({expr}))")
    }
}

#[cfg(feature = "postgres")]
impl ForeignSql for sqlx::Postgres {
    fn text(expr: &str) -> String {
        format!("CAST({expr} AS TEXT)")
    }
    fn hex(expr: &str) -> String {
        format!("encode({expr}, 'hex')")
    }
}

#[cfg(feature = "mysql")]
impl ForeignSql for sqlx::MySql {
    fn text(expr: &str) -> String {
        format!("CAST({expr} AS CHAR)")
    }
    fn hex(expr: &str) -> String {
        format!("LOWER(HEX({expr}))")
    }
}

/// The columns a tool's table must have, and the `SELECT` that reads them as text under the
/// names `version`, `name`, `applied_at`, `checksum` and `success` (those the tool has).
fn select<DB: Dialect>(tool: SourceTool, table: &TableName) -> (&'static [&'static str], String) {
    let quoted = DB::quoted(table.as_str());
    match tool {
        SourceTool::Sqlx => (
            &[
                "version",
                "description",
                "installed_on",
                "success",
                "checksum",
            ],
            format!(
                "SELECT {} AS version, {} AS name, {} AS applied_at, {} AS checksum, \
                 CASE WHEN success THEN 'true' ELSE 'false' END AS success \
                 FROM {quoted} ORDER BY version",
                DB::text("version"),
                DB::text("description"),
                DB::text("installed_on"),
                DB::hex("checksum"),
            ),
        ),
        SourceTool::Refinery => (
            &["version", "name", "applied_on", "checksum"],
            format!(
                "SELECT {} AS version, {} AS name, {} AS applied_at, {} AS checksum \
                 FROM {quoted} ORDER BY version",
                DB::text("version"),
                DB::text("name"),
                DB::text("applied_on"),
                DB::text("checksum"),
            ),
        ),
        SourceTool::Diesel => (
            &["version", "run_on"],
            format!(
                "SELECT {} AS version, {} AS applied_at FROM {quoted} ORDER BY version",
                DB::text("version"),
                DB::text("run_on"),
            ),
        ),
        SourceTool::SeaOrm => (
            &["version", "applied_at"],
            format!(
                "SELECT {} AS version, {} AS applied_at FROM {quoted} ORDER BY version",
                DB::text("version"),
                DB::text("applied_at"),
            ),
        ),
    }
}

/// Every entry of `tool`'s table `table` in `pool`'s database; `None` when there is no such table.
pub(crate) async fn read_foreign<DB>(
    pool: &Pool<DB>,
    tool: SourceTool,
    table: &str,
) -> Result<Option<Vec<ForeignEntry>>, StoreError>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    &'static str: ColumnIndex<DB::Row>,
    String: Type<DB> + for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB>,
{
    let table = TableName::new(table)?;
    let mut conn = pool
        .acquire()
        .await
        .map_err(query_error("connecting to read another tool's history"))?;
    let found: Vec<String> = sqlx::query(DB::TABLE_COLUMNS)
        .bind(table.as_str().to_owned())
        .fetch_all(&mut *conn)
        .await
        .map_err(query_error(
            "reading the columns of another tool's history table",
        ))?
        .iter()
        .map(|row| row.try_get::<String, _>("name"))
        .collect::<Result<_, _>>()
        .map_err(query_error(
            "reading the columns of another tool's history table",
        ))?;
    if found.is_empty() {
        return Ok(None);
    }
    let (columns, statement) = select::<DB>(tool, &table);
    if let Some(missing) = columns
        .iter()
        .find(|c| !found.iter().any(|f| f.eq_ignore_ascii_case(c)))
    {
        return Err(StoreError::Unsupported(format!(
            "table `{table}` is not {tool}'s history table: it has no column `{missing}`; name the right table with the import's `table` option (`--table NAME`)"
        )));
    }
    let statement: std::sync::Arc<str> = statement.into();
    let rows = sqlx::query(sql(&statement))
        .fetch_all(&mut *conn)
        .await
        .map_err(query_error("reading another tool's history table"))?;
    let text = |row: &DB::Row, column: &'static str| -> Result<Option<String>, StoreError> {
        if !matches!(
            (tool, column),
            (_, "version" | "applied_at")
                | (SourceTool::Sqlx | SourceTool::Refinery, "name" | "checksum")
                | (SourceTool::Sqlx, "success")
        ) {
            return Ok(None);
        }
        row.try_get::<Option<String>, _>(column)
            .map_err(query_error("decoding another tool's history table"))
    };
    let mut entries = Vec::with_capacity(rows.len());
    for row in &rows {
        let Some(version) = text(row, "version")? else {
            return Err(StoreError::CorruptRow {
                table: table.to_string(),
                detail: "an entry has no version".into(),
            });
        };
        let mut applied_at = text(row, "applied_at")?;
        if tool == SourceTool::SeaOrm {
            applied_at = applied_at.map(|seconds| epoch_text(&seconds));
        }
        entries.push(ForeignEntry {
            version,
            name: text(row, "name")?,
            applied_at,
            checksum: text(row, "checksum")?.filter(|c| !c.is_empty()),
            success: text(row, "success")?.is_none_or(|s| s == "true"),
        });
    }
    Ok(Some(entries))
}

/// sea-orm's `applied_at` (seconds since the epoch) as RFC 3339; left as it is if it is not a
/// number.
fn epoch_text(seconds: &str) -> String {
    seconds
        .trim()
        .parse::<i64>()
        .ok()
        .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
        .map_or_else(|| seconds.to_owned(), |at| at.to_rfc3339())
}

#[cfg(test)]
mod tests {
    #[test]
    fn sea_orm_seconds_read_as_rfc3339() {
        assert_eq!(super::epoch_text("0"), "1970-01-01T00:00:00+00:00");
        assert_eq!(super::epoch_text("x"), "x");
    }
}
