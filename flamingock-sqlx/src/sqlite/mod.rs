//! Backend: SQLite's audit table SQL, and opening its pool with the pragmas a file shared by
//! several processes needs. Its lock, marker and history SQL are in the submodules.
//!
//! Concurrent `initialize()` calls are serialized by `BEGIN IMMEDIATE`, which takes the database's
//! write lock before the table is looked at (waiting up to the busy timeout); `TX_SHARED`
//! transactions begin the same way, so a unit never fails half-way on a lock upgrade.

mod history;
mod lock;
mod marker;
mod summary;

use std::str::FromStr;
use std::time::Duration;

use flamingock_core::StoreError;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{Pool, Sqlite};

use crate::columns::{counts_as_try_condition, insert_columns, insert_values, plain_columns};
use crate::dialect::{Dialect, HistorySql};
use crate::options::StoreOptions;
use crate::pool::{connect_error, open_pool};

/// How long a statement waits for another connection's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// The database clock, UTC, as RFC 3339 text with milliseconds.
const NOW: &str = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";

impl Dialect for Sqlite {
    const LABEL: &'static str = "SQLite";
    const TRANSACTION_TYPE: &'static str = "Transaction<'_, Sqlite>";
    const POOL_TYPE: &'static str = "SqlitePool";
    const BEGIN: Option<&'static str> = Some("BEGIN IMMEDIATE");
    const SCHEMA_LOCK: Option<&'static str> = None;
    const TABLE_COLUMNS: &'static str = "SELECT name FROM pragma_table_info(?1)";
    const DDL_COMMITS: bool = false;

    fn create_schema(table: &str, index: &str) -> Vec<String> {
        vec![
            format!(
                r#"CREATE TABLE IF NOT EXISTS "{table}" (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    execution_id TEXT NOT NULL,
    change_id TEXT NOT NULL,
    author TEXT NOT NULL,
    change_order TEXT NOT NULL,
    stage TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at TEXT NOT NULL,
    execution_ms INTEGER,
    hostname TEXT NOT NULL,
    runner_id TEXT NOT NULL,
    target_system TEXT NOT NULL,
    tx_strategy TEXT NOT NULL,
    recovery_strategy TEXT NOT NULL,
    app_name TEXT,
    app_version TEXT,
    source TEXT NOT NULL,
    checksum TEXT,
    error TEXT,
    metadata TEXT,
    system_version TEXT
)"#
            ),
            format!(r#"CREATE INDEX IF NOT EXISTS "{index}" ON "{table}" (change_id, id)"#),
        ]
    }

    fn database_identity(options: &SqliteConnectOptions) -> String {
        let filename = options.get_filename();
        if is_in_memory(options, "") {
            // Its shared-cache name is unique to the pool (and its clones).
            return format!("sqlite::memory:{}", filename.display());
        }
        // Another spelling of the same file (relative, through a link) is the same database.
        let file = std::fs::canonicalize(filename).unwrap_or_else(|_| filename.to_owned());
        format!("sqlite://{}", file.display())
    }

    fn second_connection_reaches_same_database(options: &SqliteConnectOptions) -> bool {
        !is_in_memory(options, "")
    }

    fn add_text_column(table: &str, column: &str) -> String {
        format!(r#"ALTER TABLE "{table}" ADD COLUMN {column} TEXT"#)
    }

    fn fill_from_metadata(table: &str, column: &str, key: &str) -> String {
        format!(
            r#"UPDATE "{table}" SET {column} = json_extract(metadata, '$.{key}')
WHERE {column} IS NULL AND json_valid(metadata) AND json_type(metadata, '$.{key}') = 'text'"#
        )
    }

    fn is_duplicate_column(error: &sqlx::Error) -> bool {
        error
            .as_database_error()
            .is_some_and(|e| e.message().contains("duplicate column name"))
    }

    fn insert_entry(table: &str) -> String {
        format!(
            r#"INSERT INTO "{table}" ({columns})
VALUES ({values})"#,
            columns = insert_columns(),
            values = insert_values(Self::placeholder, |p| p, NOW),
        )
    }

    fn select_entries(table: &str) -> String {
        format!(
            r#"SELECT {plain}, created_at, metadata FROM "{table}" ORDER BY id"#,
            plain = plain_columns()
        )
    }

    fn select_unit_states(table: &str) -> String {
        format!(
            r#"SELECT newest.change_id, newest.state, newest.execution_id, newest.created_at,
       newest.error, newest.checksum, history.tries
FROM (SELECT change_id, MAX(id) AS newest_id,
             COUNT(CASE WHEN {counts_as_try} THEN 1 END) AS tries
      FROM "{table}" GROUP BY change_id) AS history
JOIN "{table}" AS newest ON newest.id = history.newest_id"#,
            counts_as_try = counts_as_try_condition(),
        )
    }
}

/// Opens the pool of a SQLite store, and its location as descriptions show it: the file is
/// created if missing (unless the URL sets `mode`), in WAL mode with a busy timeout, so that
/// several processes can share it. A store that only reads (the option, or `mode=ro`) opens the
/// file read-only, never creates it and leaves its journal mode alone.
pub(crate) async fn open(
    url: &str,
    options: &StoreOptions,
) -> Result<(Pool<Sqlite>, String), StoreError> {
    let mut connect_options = SqliteConnectOptions::from_str(url)
        .map_err(|error| connect_error(url, error))?
        .busy_timeout(BUSY_TIMEOUT);
    if options.read_only || is_read_only(url) {
        connect_options = connect_options.read_only(true);
        let file = connect_options.get_filename();
        if !is_in_memory(&connect_options, url) && !file.exists() {
            // Nothing to read, and nothing may be created: an empty database in memory reads as
            // the missing file would (no tables), under the file's name.
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect_with(SqliteConnectOptions::new().in_memory(true))
                .await
                .map_err(|error| connect_error(url, error))?;
            return Ok((pool, location(&connect_options)));
        }
    } else {
        connect_options = connect_options.journal_mode(SqliteJournalMode::Wal);
        if !sets_mode(url) {
            connect_options = connect_options.create_if_missing(true);
        }
    }
    let pool_options = if is_in_memory(&connect_options, url) {
        // Each connection to `:memory:` would be a database of its own: keep exactly one, forever.
        SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
    } else {
        // SQLite has one writer at a time anyway, and every connection re-reads the schema after
        // another one changed it: a pool handing consecutive units (each a DDL, typically) to
        // different connections made a run quadratic in its units (BENCHMARKS.md). One
        // connection keeps the schema cache warm. Inside a transactional unit, use its
        // transaction, not the pool.
        SqlitePoolOptions::new().max_connections(1)
    };
    let location = location(&connect_options);
    let pool = open_pool(url, connect_options, pool_options, options).await?;
    Ok((pool, location))
}

/// Whether the URL chooses its own open mode (`?mode=ro|rw|rwc|memory`).
fn sets_mode(url: &str) -> bool {
    url.split_once('?').is_some_and(|(_, query)| {
        query
            .split('&')
            .any(|pair| pair.split('=').next() == Some("mode"))
    })
}

/// Whether the URL opens the file read-only (`?mode=ro`).
pub(crate) fn is_read_only(url: &str) -> bool {
    url.split_once('?')
        .is_some_and(|(_, query)| query.split('&').any(|pair| pair == "mode=ro"))
}

fn is_in_memory(options: &SqliteConnectOptions, url: &str) -> bool {
    options
        .get_filename()
        .to_string_lossy()
        .starts_with("file:sqlx-in-memory-")
        || url.contains("mode=memory")
}

/// The database file, as shown in descriptions (`:memory:` for an in-memory database).
pub(crate) fn location(options: &SqliteConnectOptions) -> String {
    let filename = options.get_filename().to_string_lossy();
    if filename.starts_with("file:sqlx-in-memory-") {
        ":memory:".to_owned()
    } else {
        filename.into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_choosing_a_mode_are_respected() {
        assert!(sets_mode("sqlite://a.db?mode=ro"));
        assert!(sets_mode("sqlite://a.db?cache=shared&mode=rw"));
        assert!(!sets_mode("sqlite://a.db"));
        assert!(!sets_mode("sqlite://a.db?model=x"));
        assert!(is_read_only("sqlite://a.db?cache=shared&mode=ro"));
        assert!(!is_read_only("sqlite://a.db?mode=rw"));
    }

    #[test]
    fn identities_name_the_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("a.db"), b"").expect("file");
        let direct = format!("sqlite://{}/a.db", dir.path().display());
        let indirect = format!("sqlite://{}/./x/../a.db?mode=rw", dir.path().display());
        std::fs::create_dir(dir.path().join("x")).expect("dir");
        let identity = |url: &str| {
            Sqlite::database_identity(&SqliteConnectOptions::from_str(url).expect("url"))
        };
        assert_eq!(identity(&direct), identity(&indirect));
        assert_ne!(identity("sqlite::memory:"), identity("sqlite::memory:"));
    }

    #[test]
    fn locations_are_file_names() {
        let options = SqliteConnectOptions::from_str("sqlite://data/flamingock.db").expect("url");
        assert_eq!(location(&options), "data/flamingock.db");
        let options = SqliteConnectOptions::from_str("sqlite::memory:").expect("url");
        assert_eq!(location(&options), ":memory:");
        assert!(is_in_memory(&options, "sqlite::memory:"));
    }
}
