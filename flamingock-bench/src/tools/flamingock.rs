//! Flamingock, two ways: N change units built at run time and driven through the same builder,
//! engine and SQL audit store that `run!()` uses; and the `#[change_unit]` units of
//! [`crate::macro_units`] through `run!()` itself, to show that the macro path costs the same.
//!
//! `#[change_unit]` registers a `&'static ChangeUnit` whose `execution.call` is a generated wrapper
//! that takes each parameter from the run's `Scope` and calls the method (see
//! `flamingock-macros/src/expand.rs`). The units built here are the same struct, made by
//! `flamingock_core::testing::UnitBuilder` with a step of the same shape: it takes the context and
//! the open transaction and runs the statement named by the unit's id. Building 5,000 units by
//! macro would only make the benchmark's compile slow.

use std::time::{Duration, Instant};

use flamingock::{Flamingock, RunReport, UnitOutcome};
use flamingock_core::ChangeUnit;
use flamingock_core::inject::BoxError;
use flamingock_core::testing::{StepFuture, UnitBuilder, UnitScope};
use sqlx::{AssertSqlSafe, Executor, IntoArguments, MySql, Postgres, Sqlite, Transaction};

use super::Job;
use crate::error::BenchError;
use crate::macro_units;
use crate::workload::{Database, Mode, Tool, change_id, change_order, statement_for_id};

/// The application name recorded in the audit (what `run!()` records for this crate).
pub(super) const APP_NAME: &str = env!("CARGO_PKG_NAME");
pub(super) const APP_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Runs N units built at run time.
pub async fn run_runtime_units(job: &Job) -> Result<Duration, BenchError> {
    let units = match job.database {
        Database::Sqlite => runtime_units::<Sqlite>(job.n),
        Database::Postgres => runtime_units::<Postgres>(job.n),
        // The same units: the engine runs them `TX_SEPARATE` on a MariaDB audit store's own
        // database (see the method in the report).
        Database::Mariadb => runtime_units::<MySql>(job.n),
    };
    let pool_size = pool_size_override()?;
    let started = Instant::now();
    let mut builder = Flamingock::builder()
        .database_url(job.url.as_str())
        .app(APP_NAME, APP_VERSION);
    if let Some(size) = pool_size {
        // A diagnostic, not the default path: the same store on a pool of another size.
        let options = flamingock::sqlx_store::StoreOptions::default().with_max_connections(size);
        let store = flamingock::sqlx_store::connect(&job.url, options)
            .await
            .map_err(flamingock::Error::from)?;
        builder = builder.audit_store(store);
    }
    let engine = builder.build().await?;
    let report = engine.run(units).await?;
    let elapsed = started.elapsed();
    check(Tool::Flamingock, &report, job)?;
    Ok(elapsed)
}

/// The environment variable that, for diagnosis, opens the audit store on a pool of this size
/// instead of the default (see `ANALYSIS.md`).
pub const POOL_SIZE_ENV: &str = "FLAMINGOCK_BENCH_POOL_SIZE";

fn pool_size_override() -> Result<Option<u32>, BenchError> {
    match std::env::var(POOL_SIZE_ENV) {
        Err(_) => Ok(None),
        Ok(value) if value.trim().is_empty() => Ok(None),
        Ok(value) => match value.parse::<u32>() {
            Ok(size) if size > 0 => Ok(Some(size)),
            _ => Err(BenchError::Usage(format!(
                "{POOL_SIZE_ENV} must be a positive number of connections, not `{value}`"
            ))),
        },
    }
}

/// Runs the `#[change_unit]` units of the job's database through `run!()`.
pub async fn run_macro_units(job: &Job) -> Result<Duration, BenchError> {
    if job.n != macro_units::COUNT {
        return Err(BenchError::Usage(format!(
            "the `#[change_unit]` units are {} per database, declared at compile time; N = {} cannot be measured with them",
            macro_units::COUNT,
            job.n
        )));
    }
    let started = Instant::now();
    let builder = Flamingock::builder()
        .database_url(job.url.as_str())
        .module(macro_units::module(job.database));
    let report = flamingock::run!(builder).await?;
    let elapsed = started.elapsed();
    check(Tool::FlamingockMacro, &report, job)?;
    Ok(elapsed)
}

/// Refuses a report that is not what the mode requires.
pub(super) fn check(tool: Tool, report: &RunReport, job: &Job) -> Result<(), BenchError> {
    let applied = report.count(UnitOutcome::Applied);
    let already = report.count(UnitOutcome::AlreadyApplied);
    let fine = match job.mode {
        Mode::Cold => applied == job.n && already == 0,
        Mode::Warm => applied == 0 && already == job.n,
        // Another process of the fleet may have applied any of them.
        Mode::Fleet => applied + already == job.n,
    };
    if fine {
        Ok(())
    } else {
        Err(BenchError::Unexpected {
            tool: tool.key(),
            detail: format!(
                "{} run of {} units: {applied} applied, {already} already applied, of {} in the report",
                job.mode.key(),
                job.n,
                report.units.len()
            ),
        })
    }
}

/// N units `bench-1` … `bench-N`, leaked: registrations are `'static`, as the macro's are.
pub fn runtime_units<DB: sqlx::Database>(n: usize) -> Vec<&'static ChangeUnit>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
{
    runtime_units_on::<DB>(n, None)
}

/// [`runtime_units`] on the target system `target` (the audit store's database when `None`).
pub fn runtime_units_on<DB: sqlx::Database>(
    n: usize,
    target: Option<&'static str>,
) -> Vec<&'static ChangeUnit>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
{
    (1..=n)
        .map(|i| {
            let unit = UnitBuilder::new(change_id(i), change_order(i), "flamingock-bench")
                .checksum("0000000000000000")
                .takes_transaction::<Transaction<'static, DB>>()
                .execute(execute::<DB>);
            match target {
                Some(target) => unit.target(target).build(),
                None => unit.build(),
            }
        })
        .collect()
}

/// What the macro's `__flamingock_execution` wrapper does: take each parameter from the scope,
/// then run the method's body (here: the statement the unit's id names).
fn execute<'s, DB: sqlx::Database>(mut scope: UnitScope<'s>) -> StepFuture<'s>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
{
    Box::pin(async move {
        let context = scope.context();
        let tx = scope.transaction::<Transaction<'static, DB>>()?;
        let statement = statement_for_id(&context.change_id).ok_or_else(|| -> BoxError {
            format!("`{}` is not a benchmark unit id", context.change_id).into()
        })?;
        sqlx::query(AssertSqlSafe(statement))
            .execute(&mut **tx)
            .await?;
        Ok(())
    })
}
