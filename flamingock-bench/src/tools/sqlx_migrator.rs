//! sqlx's `Migrator`, loaded at run time (`Migrator::new(path)`) from a directory of N generated
//! `<n>_t_<n>.sql` files, run on a pool as an application would (`migrator.run(&pool)`).
//!
//! The files are written before the timed part; reading and checksumming them is in it, as it is
//! in an application that loads its migrations at start-up.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sqlx::migrate::Migrator;
use sqlx::{MySql, Pool, Postgres, Sqlite};

use super::{Job, expect_count, mariadb_options, postgres_options, sqlite_options};
use crate::error::BenchError;
use crate::workload::{Database, Tool, statement};

/// The table sqlx records migrations in.
const MIGRATIONS_TABLE: &str = "_sqlx_migrations";

/// Runs sqlx's migrator for `job`. sqlx reports nothing about what it applied, so the check is
/// that it recorded all N (a warm run starts with all N recorded, and no file changed).
pub async fn run(job: &Job) -> Result<Duration, BenchError> {
    let directory = write_migrations(&job.workdir, job.n)?;
    let (elapsed, recorded) = match job.database {
        Database::Sqlite => {
            let options = sqlite_options(&job.url)?;
            let started = Instant::now();
            let pool = Pool::<Sqlite>::connect_with(options)
                .await
                .map_err(BenchError::sql("connecting sqlx's migrator to SQLite"))?;
            let migrator = Migrator::new(directory).await?;
            migrator.run(&pool).await?;
            let elapsed = started.elapsed();
            (elapsed, count(&pool).await?)
        }
        Database::Postgres => {
            let options = postgres_options(&job.url)?;
            let started = Instant::now();
            let pool = Pool::<Postgres>::connect_with(options)
                .await
                .map_err(BenchError::sql("connecting sqlx's migrator to PostgreSQL"))?;
            let migrator = Migrator::new(directory).await?;
            migrator.run(&pool).await?;
            let elapsed = started.elapsed();
            (elapsed, count(&pool).await?)
        }
        Database::Mariadb => {
            let options = mariadb_options(&job.url)?;
            let started = Instant::now();
            let pool = Pool::<MySql>::connect_with(options)
                .await
                .map_err(BenchError::sql("connecting sqlx's migrator to MariaDB"))?;
            let migrator = Migrator::new(directory).await?;
            migrator.run(&pool).await?;
            let elapsed = started.elapsed();
            (elapsed, count(&pool).await?)
        }
    };
    expect_count(
        Tool::SqlxMigrator,
        "migrations recorded by sqlx",
        job.n,
        recorded,
    )?;
    Ok(elapsed)
}

/// Writes `<workdir>/sqlx-migrations/<n>_t_<n>.sql` for n in 1..=N (kept when already there, so
/// that a warm run sees the files its cold run applied).
fn write_migrations(workdir: &Path, n: usize) -> Result<PathBuf, BenchError> {
    let directory = workdir.join("sqlx-migrations");
    std::fs::create_dir_all(&directory).map_err(BenchError::io(
        "creating the migrations directory",
        &directory,
    ))?;
    for i in 1..=n {
        let file = directory.join(format!("{i}_t_{i}.sql"));
        if !file.exists() {
            std::fs::write(&file, format!("{};\n", statement(i)))
                .map_err(BenchError::io("writing a migration file", &file))?;
        }
    }
    Ok(directory)
}

/// How many successful migrations sqlx has recorded (outside the timed part).
pub(super) async fn count<DB>(pool: &Pool<DB>) -> Result<usize, BenchError>
where
    DB: sqlx::Database,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    DB::Arguments: sqlx::IntoArguments<DB>,
    usize: sqlx::ColumnIndex<DB::Row>,
    i64: sqlx::Type<DB> + for<'r> sqlx::Decode<'r, DB>,
{
    let query = format!("SELECT COUNT(*) FROM {MIGRATIONS_TABLE} WHERE success");
    let count: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(query))
        .fetch_one(pool)
        .await
        .map_err(BenchError::sql("counting sqlx's recorded migrations"))?;
    Ok(usize::try_from(count).unwrap_or(0))
}
