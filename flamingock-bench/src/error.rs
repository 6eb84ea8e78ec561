//! The benchmark's one error type: what failed, in which tool or step, and what to do about it.

use std::path::PathBuf;

/// Why a benchmark run, or one measurement of it, failed.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The command line is wrong.
    #[error("{0}")]
    Usage(String),

    /// A file or directory could not be written or read.
    #[error("{action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },

    /// A child process could not be started, or did not report a result.
    #[error("measuring {what}: {detail}")]
    Child { what: String, detail: String },

    /// A statement of the benchmark's own (setup, floor, checks) failed.
    #[error("{action}: {source}")]
    Sql {
        action: &'static str,
        source: sqlx::Error,
    },

    /// PostgreSQL could not be reached to create a fresh database.
    #[error(
        "PostgreSQL is unreachable at {url}: {source}; start it, set --postgres-url, or pass --databases sqlite"
    )]
    PostgresUnreachable { url: String, source: sqlx::Error },

    /// MariaDB could not be reached to create a fresh database.
    #[error(
        "MariaDB is unreachable at {url}: {source}; start it, set --mysql-url, or leave mariadb out of --databases"
    )]
    MariadbUnreachable { url: String, source: sqlx::Error },

    /// Flamingock's run failed.
    #[error("flamingock: {0}")]
    Flamingock(#[from] flamingock::Error),

    /// sqlx's migrator failed.
    #[error("sqlx migrator: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),

    /// refinery failed.
    #[error("refinery: {0}")]
    Refinery(#[from] refinery::Error),

    /// rusqlite (refinery's SQLite driver) failed outside refinery.
    #[error("rusqlite: {0}")]
    Rusqlite(#[from] rusqlite::Error),

    /// tokio-postgres (refinery's PostgreSQL driver) failed outside refinery.
    #[error("tokio-postgres: {0}")]
    TokioPostgres(#[from] tokio_postgres::Error),

    /// mysql_async (refinery's MariaDB driver) failed outside refinery.
    #[error("mysql_async: {0}")]
    MysqlAsync(#[from] mysql_async::Error),

    /// A tool did something other than what the mode requires (a measurement that would be
    /// meaningless, so it is refused rather than reported).
    #[error("{tool}: {detail}")]
    Unexpected { tool: &'static str, detail: String },
}

impl BenchError {
    /// A [`BenchError::Sql`] for `action`.
    pub fn sql(action: &'static str) -> impl FnOnce(sqlx::Error) -> BenchError {
        move |source| BenchError::Sql { action, source }
    }

    /// A [`BenchError::Io`] for `action` on `path`.
    pub fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| BenchError::Io {
            action,
            path,
            source,
        }
    }
}
