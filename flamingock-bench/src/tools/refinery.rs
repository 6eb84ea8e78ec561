//! refinery's `Runner` with its defaults (one transaction per migration, divergent and missing
//! migrations refused): on SQLite through rusqlite, on PostgreSQL through tokio-postgres, on
//! MariaDB through mysql_async (a pool of its own, as refinery's async MySQL driver takes).
//!
//! The migrations are built in the timed part with `Migration::unapplied`, which is what
//! `embed_migrations!`'s generated `runner()` does at start-up too (it parses each name and
//! checksums each script at run time).

use std::time::{Duration, Instant};

use refinery::{Migration, Runner};

use super::{Job, SQLITE_BUSY_TIMEOUT, SQLITE_FILE, expect_count};
use crate::error::BenchError;
use crate::workload::{Database, Mode, Tool, statement};

/// Runs refinery for `job`.
pub async fn run(job: &Job) -> Result<Duration, BenchError> {
    let (elapsed, applied) = match job.database {
        Database::Sqlite => run_sqlite(job)?,
        Database::Postgres => run_postgres(job).await?,
        Database::Mariadb => run_mariadb(job).await?,
    };
    let expected = match job.mode {
        Mode::Cold | Mode::Fleet => job.n,
        Mode::Warm => 0,
    };
    expect_count(Tool::Refinery, "migrations applied", expected, applied)?;
    Ok(elapsed)
}

/// The N migrations, named `V<n>__t_<n>` as refinery requires.
fn migrations(n: usize) -> Result<Vec<Migration>, BenchError> {
    (1..=n)
        .map(|i| Migration::unapplied(&format!("V{i}__t_{i}"), &statement(i)).map_err(Into::into))
        .collect()
}

/// rusqlite is synchronous: the work runs on the calling thread, as it would in an application's
/// start-up. The journal settings are those every sqlx-based tool gets (WAL, busy timeout).
fn run_sqlite(job: &Job) -> Result<(Duration, usize), BenchError> {
    let path = job.workdir.join(SQLITE_FILE);
    let started = Instant::now();
    let mut connection = rusqlite::Connection::open(&path)?;
    connection.busy_timeout(SQLITE_BUSY_TIMEOUT)?;
    connection.pragma_update(None, "journal_mode", "WAL")?;
    let runner = Runner::new(&migrations(job.n)?);
    let report = runner.run(&mut connection)?;
    let elapsed = started.elapsed();
    Ok((elapsed, report.applied_migrations().len()))
}

async fn run_postgres(job: &Job) -> Result<(Duration, usize), BenchError> {
    let started = Instant::now();
    let (mut client, connection) = tokio_postgres::connect(&job.url, tokio_postgres::NoTls).await?;
    let driver = tokio::spawn(connection);
    let runner = Runner::new(&migrations(job.n)?);
    let report = runner.run_async(&mut client).await?;
    let elapsed = started.elapsed();
    drop(client);
    // The connection task ends when the client is dropped; its error, if any, is not ours.
    let _ = driver.await;
    Ok((elapsed, report.applied_migrations().len()))
}

async fn run_mariadb(job: &Job) -> Result<(Duration, usize), BenchError> {
    let options = mysql_async::Opts::from_url(&job.url).map_err(|error| {
        BenchError::Usage(format!("refinery cannot use the MariaDB URL: {error}"))
    })?;
    let started = Instant::now();
    let mut pool = mysql_async::Pool::new(options);
    let runner = Runner::new(&migrations(job.n)?);
    let report = runner.run_async(&mut pool).await?;
    let elapsed = started.elapsed();
    pool.disconnect().await?;
    Ok((elapsed, report.applied_migrations().len()))
}
