//! A fresh database per measurement: a SQLite file in a new temporary directory, or a new
//! PostgreSQL database created on the server (and dropped afterwards), each with a working
//! directory of its own for migration files.
//!
//! A database is *durable* (commits wait for the disk, as the server and SQLite do by default)
//! or not: then the SQLite file lives on tmpfs (`/dev/shm`), where fsync costs nothing, and the
//! PostgreSQL database is created with `synchronous_commit = off`. Either way every tool meets
//! the same database with its own settings untouched.

use std::path::{Path, PathBuf};

use flamingock_testkit::{replace_database, unique_name};
use sqlx::{AssertSqlSafe, Connection, PgConnection};
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

/// The database and working directory of one measurement.
pub struct FreshDb {
    pub database: Database,
    /// The URL the tools connect to.
    pub url: String,
    /// For migration files, and the SQLite file.
    pub workdir: TempDir,
    postgres_name: Option<String>,
}

impl FreshDb {
    /// A new empty database; PostgreSQL needs the server.
    pub async fn create(
        database: Database,
        durable: bool,
        server: Option<&mut PostgresServer>,
    ) -> Result<FreshDb, BenchError> {
        let parent = workdir_parent(durable);
        let workdir = tempfile::Builder::new()
            .prefix("flamingock-bench-")
            .tempdir_in(&parent)
            .map_err(BenchError::io("creating a working directory in", &parent))?;
        let (url, postgres_name) = match (database, server) {
            (Database::Sqlite, _) => (Job::sqlite_url(workdir.path()), None),
            (Database::Postgres, Some(server)) => {
                let name = unique_name("bench");
                let url = server.create_database(&name, durable).await?;
                (url, Some(name))
            }
            (Database::Postgres, None) => {
                return Err(BenchError::Usage(
                    "a PostgreSQL measurement needs the server's admin connection".into(),
                ));
            }
        };
        Ok(FreshDb {
            database,
            url,
            workdir,
            postgres_name,
        })
    }

    /// Drops the PostgreSQL database (the directory goes when dropped).
    pub async fn remove(self, server: Option<&mut PostgresServer>) -> Result<(), BenchError> {
        if let (Some(name), Some(server)) = (&self.postgres_name, server) {
            server.drop_database(name).await?;
        }
        Ok(())
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
