//! Flamingock with its audit store and lock on a `flamingock-server`: the child side. The
//! parent ([`crate::server`]) runs the server and names the audit store URL (service and
//! environment included) in [`SERVER_URL_ENV`] and the token in `FLAMINGOCK_TOKEN`, which the
//! builder reads as a service's deployment would.
//!
//! - [`run_on_target`]: the N units of the other tools, on a PostgreSQL target system (the job's
//!   fresh database), so the marker protocol runs: `STARTED` on the server, the change and its
//!   marker in the target's transaction, `APPLIED` on the server.
//! - [`run_load_instance`]: one instance of the load run, N units that change nothing, so that
//!   what is measured is the server.

use std::time::{Duration, Instant};

use flamingock::{Flamingock, SqlTarget};
use flamingock_core::ChangeUnit;
use flamingock_core::testing::UnitBuilder;
use sqlx::Postgres;
use sqlx::postgres::PgPoolOptions;

use super::Job;
use super::flamingock::{APP_NAME, APP_VERSION, check, runtime_units_on};
use crate::error::BenchError;
use crate::workload::{Database, change_id, change_order};

/// The variable carrying the child's audit store URL on the server.
pub const SERVER_URL_ENV: &str = "FLAMINGOCK_BENCH_SERVER_URL";

/// The name of the target system the units change.
const TARGET: &str = "app";

fn audit_url() -> Result<String, BenchError> {
    std::env::var(SERVER_URL_ENV).map_err(|_| {
        BenchError::Usage(format!(
            "a measurement through the server needs its audit store URL in {SERVER_URL_ENV}"
        ))
    })
}

/// The N units on a PostgreSQL target, audited on the server: from connecting (to the target
/// and the server) to the last change applied, or to concluding that nothing is pending.
pub async fn run_on_target(job: &Job) -> Result<Duration, BenchError> {
    if job.database != Database::Postgres {
        return Err(BenchError::Usage(
            "the measurement through the server runs on a PostgreSQL target only".into(),
        ));
    }
    let audit = audit_url()?;
    let units = runtime_units_on::<Postgres>(job.n, Some(TARGET));
    let started = Instant::now();
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect(&job.url)
        .await
        .map_err(BenchError::sql("connecting to the target database"))?;
    let engine = Flamingock::builder()
        .database_url(audit.as_str())
        .target(SqlTarget::new(TARGET, pool))
        .app(APP_NAME, APP_VERSION)
        .build()
        .await?;
    let report = engine.run(units).await?;
    let elapsed = started.elapsed();
    check(job.tool, &report, job)?;
    Ok(elapsed)
}

/// One instance of the load run: N units that change nothing (`NON_TX` on the default target),
/// audited on the server, started beside the other instances of its service and of the other
/// services; any of its service's instances may apply each unit.
pub async fn run_load_instance(job: &Job) -> Result<Duration, BenchError> {
    let audit = audit_url()?;
    let units = load_units(job.n);
    let started = Instant::now();
    let engine = Flamingock::builder()
        .database_url(audit.as_str())
        .app(APP_NAME, APP_VERSION)
        .build()
        .await?;
    let report = engine.run(units).await?;
    let elapsed = started.elapsed();
    check(job.tool, &report, job)?;
    Ok(elapsed)
}

fn load_units(n: usize) -> Vec<&'static ChangeUnit> {
    (1..=n)
        .map(|i| {
            UnitBuilder::new(change_id(i), change_order(i), "flamingock-bench")
                .checksum("0000000000000000")
                .transactional(false)
                .execute_sync(|_| Ok(()))
                .build()
        })
        .collect()
}
