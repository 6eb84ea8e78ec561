//! A fresh database per measurement: a SQLite file in a new temporary directory, or a new
//! PostgreSQL or MariaDB database created on its server (and dropped afterwards), each with a
//! working directory of its own for migration files.
//!
//! A database is *durable* (commits wait for the disk, as the servers and SQLite do by default)
//! or not: then the SQLite file lives on tmpfs (`/dev/shm`), where fsync costs nothing, the
//! PostgreSQL database is created with `synchronous_commit = off`, and the MariaDB server runs
//! with `innodb_flush_log_at_trx_commit = 2` (and `sync_binlog = 0` when its binary log is on):
//! those are global on MariaDB, so they are set while non-durable databases are measured and
//! the server's own values are put back for the durable ones and at the end, also after an
//! error. Either way every tool meets the same database with its own settings untouched.

use std::path::{Path, PathBuf};

use flamingock_testkit::{replace_database, unique_name};
use sqlx::{AssertSqlSafe, Connection, MySqlConnection, PgConnection};
use tempfile::TempDir;

use crate::error::BenchError;
use crate::tools::Job;
use crate::workload::Database;

/// An admin connection to the PostgreSQL server, used to create and drop databases.
pub struct PostgresServer {
    url: String,
    admin: PgConnection,
    version: String,
}

impl PostgresServer {
    /// Connects to the server `url` names (its database is only the admin connection's).
    pub async fn connect(url: &str) -> Result<Self, BenchError> {
        let unreachable = |source| BenchError::PostgresUnreachable {
            url: flamingock::sqlx_store::redact_url(url),
            source,
        };
        let mut admin = PgConnection::connect(url).await.map_err(unreachable)?;
        let version: String = sqlx::query_scalar("SHOW server_version")
            .fetch_one(&mut admin)
            .await
            .map_err(BenchError::sql("reading the PostgreSQL version"))?;
        Ok(Self {
            url: url.to_owned(),
            admin,
            version,
        })
    }

    /// The server's version, as it reports it.
    pub fn version(&self) -> &str {
        &self.version
    }

    async fn create_database(&mut self, name: &str, durable: bool) -> Result<String, BenchError> {
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut self.admin)
            .await
            .map_err(BenchError::sql("creating a fresh PostgreSQL database"))?;
        if !durable {
            // Every session in the database, whichever tool opens it, commits without waiting
            // for the WAL flush.
            sqlx::raw_sql(AssertSqlSafe(format!(
                "ALTER DATABASE {name} SET synchronous_commit = off"
            )))
            .execute(&mut self.admin)
            .await
            .map_err(BenchError::sql("turning synchronous_commit off"))?;
        }
        Ok(replace_database(&self.url, name))
    }

    /// Writes out every dirty buffer now, so that a checkpoint forced by an earlier
    /// measurement's WAL does not land in the middle of the next one.
    pub async fn checkpoint(&mut self) -> Result<(), BenchError> {
        sqlx::raw_sql("CHECKPOINT")
            .execute(&mut self.admin)
            .await
            .map_err(BenchError::sql("running CHECKPOINT between measurements"))?;
        Ok(())
    }

    async fn drop_database(&mut self, name: &str) -> Result<(), BenchError> {
        sqlx::raw_sql(AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&mut self.admin)
        .await
        .map_err(BenchError::sql("dropping a benchmark database"))?;
        Ok(())
    }
}

/// The durability settings of a MariaDB server: `innodb_flush_log_at_trx_commit`, and
/// `sync_binlog` when the binary log is on (otherwise it writes nothing a commit waits for).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MariadbCommits {
    pub flush_log_at_trx_commit: u64,
    pub sync_binlog: Option<u64>,
}

impl MariadbCommits {
    /// What the non-durable measurements run with: the log written at each commit, flushed to
    /// the disk about once a second, and the binary log left to the OS.
    const RELAXED: MariadbCommits = MariadbCommits {
        flush_log_at_trx_commit: 2,
        sync_binlog: Some(0),
    };

    /// The `SET GLOBAL` that puts these settings in force; the binary log's setting is only
    /// touched when the log is on.
    fn statement(&self, binlog_on: bool) -> String {
        let mut statement = format!(
            "SET GLOBAL innodb_flush_log_at_trx_commit = {}",
            self.flush_log_at_trx_commit
        );
        if let (true, Some(sync)) = (binlog_on, self.sync_binlog) {
            statement.push_str(&format!(", sync_binlog = {sync}"));
        }
        statement
    }

    /// For the report: `innodb_flush_log_at_trx_commit = 1, sync_binlog = 0`.
    pub fn describe(&self) -> String {
        match self.sync_binlog {
            Some(sync) => format!(
                "`innodb_flush_log_at_trx_commit = {}`, `sync_binlog = {sync}`",
                self.flush_log_at_trx_commit
            ),
            None => format!(
                "`innodb_flush_log_at_trx_commit = {}` (binary log off)",
                self.flush_log_at_trx_commit
            ),
        }
    }
}

/// An admin connection to the MariaDB server, used to create and drop databases and to switch
/// its (global) commit durability between the passes.
pub struct MariadbServer {
    url: String,
    admin: MySqlConnection,
    version: String,
    /// The server's own settings, read at connect time.
    own: MariadbCommits,
    /// Whether the relaxed settings are in force now (and must be put back).
    relaxed: bool,
}

impl MariadbServer {
    /// Connects to the server `url` names (its database is only the admin connection's).
    pub async fn connect(url: &str) -> Result<Self, BenchError> {
        let unreachable = |source| BenchError::MariadbUnreachable {
            url: flamingock::sqlx_store::redact_url(url),
            source,
        };
        let mut admin = MySqlConnection::connect(url).await.map_err(unreachable)?;
        let (version, flush, log_bin, sync_binlog): (String, i64, i64, i64) = sqlx::query_as(
            "SELECT VERSION(), CAST(@@GLOBAL.innodb_flush_log_at_trx_commit AS SIGNED), \
             CAST(@@GLOBAL.log_bin AS SIGNED), CAST(@@GLOBAL.sync_binlog AS SIGNED)",
        )
        .fetch_one(&mut admin)
        .await
        .map_err(BenchError::sql(
            "reading the MariaDB version and commit settings",
        ))?;
        Ok(Self {
            url: url.to_owned(),
            admin,
            version,
            own: MariadbCommits {
                flush_log_at_trx_commit: u64::try_from(flush).unwrap_or_default(),
                sync_binlog: (log_bin != 0).then(|| u64::try_from(sync_binlog).unwrap_or_default()),
            },
            relaxed: false,
        })
    }

    /// The server's version, as it reports it.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The server's own commit settings (the durable pass's).
    pub fn own_commits(&self) -> MariadbCommits {
        self.own
    }

    async fn create_database(&mut self, name: &str, durable: bool) -> Result<String, BenchError> {
        self.commits(durable).await?;
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE `{name}`")))
            .execute(&mut self.admin)
            .await
            .map_err(BenchError::sql("creating a fresh MariaDB database"))?;
        Ok(replace_database(&self.url, name))
    }

    /// Puts the server's durability in the state a measurement needs: its own settings when
    /// `durable`, else the relaxed ones (global: every session of the server sees them).
    async fn commits(&mut self, durable: bool) -> Result<(), BenchError> {
        let relax = !durable;
        if self.relaxed == relax {
            return Ok(());
        }
        let settings = if durable {
            self.own
        } else {
            MariadbCommits::RELAXED
        };
        self.set(settings).await?;
        self.relaxed = !durable;
        Ok(())
    }

    async fn set(&mut self, settings: MariadbCommits) -> Result<(), BenchError> {
        let statement = settings.statement(self.own.sync_binlog.is_some());
        sqlx::raw_sql(AssertSqlSafe(statement))
            .execute(&mut self.admin)
            .await
            .map_err(BenchError::sql(
                "setting MariaDB's commit durability (SET GLOBAL needs SUPER or SYSTEM_VARIABLES_ADMIN)",
            ))?;
        Ok(())
    }

    /// Puts the server's own commit settings back, if the relaxed ones are in force.
    pub async fn restore(&mut self) -> Result<(), BenchError> {
        self.commits(true).await
    }

    async fn drop_database(&mut self, name: &str) -> Result<(), BenchError> {
        sqlx::raw_sql(AssertSqlSafe(format!("DROP DATABASE IF EXISTS `{name}`")))
            .execute(&mut self.admin)
            .await
            .map_err(BenchError::sql("dropping a benchmark database"))?;
        Ok(())
    }
}

impl Drop for MariadbServer {
    /// The last resort when a run ends without [`MariadbServer::restore`] (a panic): put the
    /// server's own settings back on a connection and runtime of its own, or say loudly that
    /// it could not.
    fn drop(&mut self) {
        if !self.relaxed {
            return;
        }
        let own = self.own;
        let url = self.url.clone();
        let restored = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|error| error.to_string())
            .and_then(|runtime| {
                runtime.block_on(async {
                    let mut admin = MySqlConnection::connect(&url)
                        .await
                        .map_err(|error| error.to_string())?;
                    let statement = own.statement(own.sync_binlog.is_some());
                    sqlx::raw_sql(AssertSqlSafe(statement))
                        .execute(&mut admin)
                        .await
                        .map_err(|error| error.to_string())?;
                    Ok(())
                })
            });
        if let Err(error) = restored {
            eprintln!(
                "error: could not put MariaDB's commit settings back to {}: {error}; set them by hand",
                own.describe()
            );
        }
    }
}

/// The servers a run creates databases on; each is there only when one of its databases is
/// measured.
#[derive(Default)]
pub struct Servers {
    pub postgres: Option<PostgresServer>,
    pub mariadb: Option<MariadbServer>,
}

impl Servers {
    /// Puts back every server setting the run changed (MariaDB's commit durability).
    pub async fn restore(&mut self) -> Result<(), BenchError> {
        match self.mariadb.as_mut() {
            Some(mariadb) => mariadb.restore().await,
            None => Ok(()),
        }
    }

    /// A PostgreSQL `CHECKPOINT` (see [`PostgresServer::checkpoint`]) when that server is in use.
    pub async fn checkpoint(&mut self) -> Result<(), BenchError> {
        match self.postgres.as_mut() {
            Some(postgres) => postgres.checkpoint().await,
            None => Ok(()),
        }
    }
}

/// The database and working directory of one measurement.
pub struct FreshDb {
    pub database: Database,
    /// The URL the tools connect to.
    pub url: String,
    /// For migration files, and the SQLite file.
    pub workdir: TempDir,
    /// The database's name on its server (none for SQLite).
    server_name: Option<String>,
}

impl FreshDb {
    /// A new empty database; PostgreSQL and MariaDB need their server.
    pub async fn create(
        database: Database,
        durable: bool,
        servers: &mut Servers,
    ) -> Result<FreshDb, BenchError> {
        let parent = workdir_parent(durable);
        let workdir = tempfile::Builder::new()
            .prefix("flamingock-bench-")
            .tempdir_in(&parent)
            .map_err(BenchError::io("creating a working directory in", &parent))?;
        let missing = || {
            BenchError::Usage(format!(
                "a {database} measurement needs the server's admin connection"
            ))
        };
        let name = unique_name("bench");
        let (url, server_name) = match database {
            Database::Sqlite => (Job::sqlite_url(workdir.path()), None),
            Database::Postgres => {
                let server = servers.postgres.as_mut().ok_or_else(missing)?;
                (server.create_database(&name, durable).await?, Some(name))
            }
            Database::Mariadb => {
                let server = servers.mariadb.as_mut().ok_or_else(missing)?;
                (server.create_database(&name, durable).await?, Some(name))
            }
        };
        Ok(FreshDb {
            database,
            url,
            workdir,
            server_name,
        })
    }

    /// Drops the server's database (the directory goes when dropped).
    pub async fn remove(self, servers: &mut Servers) -> Result<(), BenchError> {
        let Some(name) = &self.server_name else {
            return Ok(());
        };
        match self.database {
            Database::Sqlite => Ok(()),
            Database::Postgres => match servers.postgres.as_mut() {
                Some(server) => server.drop_database(name).await,
                None => Ok(()),
            },
            Database::Mariadb => match servers.mariadb.as_mut() {
                Some(server) => server.drop_database(name).await,
                None => Ok(()),
            },
        }
    }
}

/// Where working directories (and SQLite files) go: tmpfs unless commits must be durable.
pub fn workdir_parent(durable: bool) -> PathBuf {
    let shm = Path::new(TMPFS);
    if !durable && shm.is_dir() {
        shm.to_owned()
    } else {
        std::env::temp_dir()
    }
}

/// The tmpfs that non-durable SQLite files live on.
pub const TMPFS: &str = "/dev/shm";
