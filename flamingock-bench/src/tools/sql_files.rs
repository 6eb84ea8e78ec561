//! The checked-in SQL files of [`crate::sql_files`], compiled in: through `flamingock::run!()`
//! with the units `sql_units!` registered, and through the static `Migrator` `sqlx::migrate!`
//! built (`MIGRATOR.run(&pool)`, as an application runs it).

use std::time::{Duration, Instant};

use flamingock::{Flamingock, UnitOutcome};
use sqlx::{MySql, Pool, Postgres, Sqlite};

use super::{Job, expect_count, mariadb_options, postgres_options, sqlite_options};
use crate::error::BenchError;
use crate::sql_files::{COUNT, MIGRATOR, MODULE};
use crate::workload::{Database, Mode, Tool};

/// Refuses an N the compiled-in folder cannot give.
fn check_n(job: &Job) -> Result<(), BenchError> {
    if job.n == COUNT {
        return Ok(());
    }
    Err(BenchError::Usage(format!(
        "the compiled-in SQL files are {COUNT}, embedded at compile time; N = {} cannot be measured with them",
        job.n
    )))
}

/// Runs the files as Flamingock change units, through `run!()`.
pub async fn run_flamingock(job: &Job) -> Result<Duration, BenchError> {
    check_n(job)?;
    let started = Instant::now();
    let builder = Flamingock::builder()
        .database_url(job.url.as_str())
        .module(MODULE);
    let report = flamingock::run!(builder).await?;
    let elapsed = started.elapsed();
    let applied = report.count(UnitOutcome::Applied);
    let already = report.count(UnitOutcome::AlreadyApplied);
    let (expected_applied, expected_already) = match job.mode {
        Mode::Cold => (COUNT, 0),
        Mode::Warm => (0, COUNT),
        Mode::Fleet => {
            return Err(BenchError::Usage(
                "the compiled-in SQL files are not measured in a fleet".into(),
            ));
        }
    };
    expect_count(
        Tool::FlamingockSqlFiles,
        "files applied",
        expected_applied,
        applied,
    )?;
    expect_count(
        Tool::FlamingockSqlFiles,
        "files already applied",
        expected_already,
        already,
    )?;
    Ok(elapsed)
}

/// Runs the files with sqlx's compiled-in `Migrator`; the check is that sqlx recorded all of
/// them (a warm run starts with all recorded).
pub async fn run_sqlx(job: &Job) -> Result<Duration, BenchError> {
    check_n(job)?;
    let (elapsed, recorded) = match job.database {
        Database::Sqlite => {
            let options = sqlite_options(&job.url)?;
            let started = Instant::now();
            let pool = Pool::<Sqlite>::connect_with(options)
                .await
                .map_err(BenchError::sql("connecting sqlx's migrator to SQLite"))?;
            MIGRATOR.run(&pool).await?;
            let elapsed = started.elapsed();
            (elapsed, super::sqlx_migrator::count(&pool).await?)
        }
        Database::Postgres => {
            let options = postgres_options(&job.url)?;
            let started = Instant::now();
            let pool = Pool::<Postgres>::connect_with(options)
                .await
                .map_err(BenchError::sql("connecting sqlx's migrator to PostgreSQL"))?;
            MIGRATOR.run(&pool).await?;
            let elapsed = started.elapsed();
            (elapsed, super::sqlx_migrator::count(&pool).await?)
        }
        Database::Mariadb => {
            let options = mariadb_options(&job.url)?;
            let started = Instant::now();
            let pool = Pool::<MySql>::connect_with(options)
                .await
                .map_err(BenchError::sql("connecting sqlx's migrator to MariaDB"))?;
            MIGRATOR.run(&pool).await?;
            let elapsed = started.elapsed();
            (elapsed, super::sqlx_migrator::count(&pool).await?)
        }
    };
    expect_count(
        Tool::SqlxMacro,
        "migrations recorded by sqlx",
        COUNT,
        recorded,
    )?;
    Ok(elapsed)
}
