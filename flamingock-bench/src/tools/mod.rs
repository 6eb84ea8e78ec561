//! The tools under measurement. Each applies the N changes (or concludes that nothing is pending)
//! and returns how long its timed part took: from connecting to being done. Writing migration
//! files and checking the outcome happen outside the timed part.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};

use crate::error::BenchError;
use crate::workload::{Database, Mode, Tool};

pub mod flamingock;
pub mod floor;
pub mod refinery;
pub mod server;
pub mod sql_files;
pub mod sqlx_migrator;

/// How long a SQLite statement waits for another connection's write lock: the audit store's
/// value, given to every tool.
pub const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// The SQLite file of a measurement, inside its working directory.
pub const SQLITE_FILE: &str = "bench.db";

/// One measurement: which tool, in which mode, on which database, for how many changes.
#[derive(Debug, Clone)]
pub struct Job {
    pub tool: Tool,
    pub mode: Mode,
    pub database: Database,
    pub n: usize,
    /// The database's URL (for SQLite: the file in `workdir`).
    pub url: String,
    /// A directory of this measurement's own, for the SQLite file and migration files.
    pub workdir: PathBuf,
}

impl Job {
    /// The SQLite URL of a measurement's working directory.
    pub fn sqlite_url(workdir: &Path) -> String {
        format!("sqlite://{}", workdir.join(SQLITE_FILE).display())
    }
}

/// Runs one measurement and returns the duration of its timed part.
pub async fn run(job: &Job) -> Result<Duration, BenchError> {
    match job.tool {
        Tool::Floor => floor::run(job).await,
        Tool::SqlxMigrator => sqlx_migrator::run(job).await,
        Tool::Refinery => refinery::run(job).await,
        Tool::Flamingock => flamingock::run_runtime_units(job).await,
        Tool::FlamingockMacro => flamingock::run_macro_units(job).await,
        Tool::SqlxMacro => sql_files::run_sqlx(job).await,
        Tool::FlamingockSqlFiles => sql_files::run_flamingock(job).await,
        Tool::FlamingockServer => server::run_on_target(job).await,
        Tool::ServerLoad => server::run_load_instance(job).await,
    }
}

/// The SQLite options every sqlx-based tool uses: the ones Flamingock's audit store sets (file
/// created if missing, WAL journal, busy timeout), so that journal settings are not what differs.
pub fn sqlite_options(url: &str) -> Result<SqliteConnectOptions, BenchError> {
    Ok(SqliteConnectOptions::from_str(url)
        .map_err(BenchError::sql("parsing the SQLite URL"))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .busy_timeout(SQLITE_BUSY_TIMEOUT))
}

/// Refuses a count other than `expected`, naming what was counted.
pub fn expect_count(
    tool: Tool,
    what: &str,
    expected: usize,
    actual: usize,
) -> Result<(), BenchError> {
    if expected == actual {
        Ok(())
    } else {
        Err(BenchError::Unexpected {
            tool: tool.key(),
            detail: format!("expected {expected} {what}, found {actual}"),
        })
    }
}

/// The PostgreSQL options of `url`, as sqlx parses them (the audit store does the same).
pub fn postgres_options(url: &str) -> Result<sqlx::postgres::PgConnectOptions, BenchError> {
    sqlx::postgres::PgConnectOptions::from_str(url)
        .map_err(BenchError::sql("parsing the PostgreSQL URL"))
}

/// The MariaDB options of `url`, as sqlx parses them (the audit store does the same).
pub fn mariadb_options(url: &str) -> Result<sqlx::mysql::MySqlConnectOptions, BenchError> {
    sqlx::mysql::MySqlConnectOptions::from_str(url)
        .map_err(BenchError::sql("parsing the MariaDB URL"))
}
