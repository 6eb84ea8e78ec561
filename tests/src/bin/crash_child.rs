//! The child process of the crash-matrix tests (tests/tests/crash_matrix.rs): one run of one
//! stage, on one backend, usually told by `FLAMINGOCK_FAILPOINT` to abort at a failure point.
//!
//! Usage: `crash_child <audit-url> <backend> <stage> <effects-file> [<target-url>]`
//!
//! - backend: `sqlite`, `postgres` or `mysql` (selects the units typed for it);
//! - stage: `shared`, `separate`, `non_tx` or `retry`, optionally with `-failing` (the unit fails
//!   while `CRASH_UNIT_FAILS=1`);
//! - `CRASH_INSIDE=execution|rollback` aborts inside the unit's own code, after its effect;
//! - `CRASH_MODE=undo` rolls the stage's applied unit back (`undo --last 1`) instead of applying.
//! - `CRASH_MODE=fix` records `fix <unit> --applied`, as seen STARTED, instead of applying.
//!
//! Transactional units insert their id into `crash_effects` (in the audit database for `shared`,
//! in the target database for `separate`); non-transactional ones append a line to the effects
//! file, and their rollback appends `undo <id>`. Exit code 0 on success, 1 on a run error.

use std::io::Write;
use std::path::PathBuf;

use flamingock::{Flamingock, FlamingockBuilder, SqlTarget};

/// Where non-transactional units write.
pub struct EffectsFile(pub PathBuf);

fn should_fail() -> bool {
    std::env::var("CRASH_UNIT_FAILS").is_ok_and(|v| v == "1")
}

fn crash_inside(place: &str) {
    if std::env::var("CRASH_INSIDE").is_ok_and(|v| v == place) {
        eprintln!("crash_child: aborting inside {place}");
        std::process::abort();
    }
}

fn append_line(file: &EffectsFile, line: &str) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&file.0)?;
    writeln!(f, "{line}")?;
    f.sync_all()
}

/// Stamps the units of every stage for one dialect: the same code, typed for `$db`.
macro_rules! crash_units {
    ($module:ident, $db:ty) => {
        pub mod $module {
            use flamingock::prelude::*;
            use sqlx::Transaction;

            use super::{EffectsFile, append_line, crash_inside, should_fail};

            async fn insert_effect(
                tx: &mut Transaction<'_, $db>,
                id: &str,
            ) -> Result<(), sqlx::Error> {
                let sql = format!("INSERT INTO crash_effects (unit) VALUES ('{id}')");
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                    .execute(&mut **tx)
                    .await?;
                Ok(())
            }

            async fn transactional(
                tx: &mut Transaction<'_, $db>,
                id: &str,
                may_fail: bool,
            ) -> anyhow::Result<()> {
                insert_effect(tx, id).await?;
                crash_inside("execution");
                if may_fail && should_fail() {
                    anyhow::bail!("{id} failed on purpose");
                }
                Ok(())
            }

            fn non_transactional(
                file: &EffectsFile,
                id: &str,
                may_fail: bool,
            ) -> anyhow::Result<()> {
                append_line(file, id)?;
                crash_inside("execution");
                if may_fail && should_fail() {
                    anyhow::bail!("{id} failed on purpose");
                }
                Ok(())
            }

            fn undo(file: &EffectsFile, id: &str) -> anyhow::Result<()> {
                append_line(file, &format!("undo {id}"))?;
                crash_inside("rollback");
                Ok(())
            }

            #[change_unit(id = "shared", order = "1", author = "crash", stage = "shared")]
            mod shared {
                use super::*;
                #[execution]
                async fn execute(tx: &mut Transaction<'_, $db>) -> anyhow::Result<()> {
                    transactional(tx, "shared", false).await
                }
                #[rollback_execution]
                async fn rollback(tx: &mut Transaction<'_, $db>) -> anyhow::Result<()> {
                    sqlx::raw_sql("DELETE FROM crash_effects WHERE unit = 'shared'")
                        .execute(&mut **tx)
                        .await?;
                    crash_inside("rollback");
                    Ok(())
                }
            }

            #[change_unit(
                id = "shared-failing",
                order = "2",
                author = "crash",
                stage = "shared-failing"
            )]
            mod shared_failing {
                use super::*;
                #[execution]
                async fn execute(tx: &mut Transaction<'_, $db>) -> anyhow::Result<()> {
                    transactional(tx, "shared-failing", true).await
                }
            }

            #[change_unit(
                id = "separate",
                order = "3",
                author = "crash",
                stage = "separate",
                target_system = "target"
            )]
            mod separate {
                use super::*;
                #[execution]
                async fn execute(tx: &mut Transaction<'_, $db>) -> anyhow::Result<()> {
                    transactional(tx, "separate", false).await
                }
                #[rollback_execution]
                async fn rollback(tx: &mut Transaction<'_, $db>) -> anyhow::Result<()> {
                    sqlx::raw_sql("DELETE FROM crash_effects WHERE unit = 'separate'")
                        .execute(&mut **tx)
                        .await?;
                    crash_inside("rollback");
                    Ok(())
                }
            }

            #[change_unit(
                id = "separate-failing",
                order = "4",
                author = "crash",
                stage = "separate-failing",
                target_system = "target"
            )]
            mod separate_failing {
                use super::*;
                #[execution]
                async fn execute(tx: &mut Transaction<'_, $db>) -> anyhow::Result<()> {
                    transactional(tx, "separate-failing", true).await
                }
            }

            #[change_unit(
                id = "non_tx",
                order = "5",
                author = "crash",
                stage = "non_tx",
                transactional = false
            )]
            mod non_tx {
                use super::*;
                #[execution]
                fn execute(file: &EffectsFile) -> anyhow::Result<()> {
                    non_transactional(file, "non_tx", false)
                }
                #[rollback_execution]
                fn rollback(file: &EffectsFile) -> anyhow::Result<()> {
                    undo(file, "non_tx")
                }
            }

            #[change_unit(
                id = "non_tx-failing",
                order = "6",
                author = "crash",
                stage = "non_tx-failing",
                transactional = false
            )]
            mod non_tx_failing {
                use super::*;
                #[execution]
                fn execute(file: &EffectsFile) -> anyhow::Result<()> {
                    non_transactional(file, "non_tx-failing", true)
                }
                #[rollback_execution]
                fn rollback(file: &EffectsFile) -> anyhow::Result<()> {
                    undo(file, "non_tx-failing")
                }
            }

            #[change_unit(
                id = "retry",
                order = "7",
                author = "crash",
                stage = "retry",
                transactional = false,
                recovery = "always_retry"
            )]
            mod retry {
                use super::*;
                #[execution]
                fn execute(file: &EffectsFile) -> anyhow::Result<()> {
                    non_transactional(file, "retry", false)
                }
                #[rollback_execution]
                fn rollback(file: &EffectsFile) -> anyhow::Result<()> {
                    undo(file, "retry")
                }
            }

            #[change_unit(
                id = "retry-failing",
                order = "8",
                author = "crash",
                stage = "retry-failing",
                transactional = false,
                recovery = "always_retry"
            )]
            mod retry_failing {
                use super::*;
                #[execution]
                fn execute(file: &EffectsFile) -> anyhow::Result<()> {
                    non_transactional(file, "retry-failing", true)
                }
                #[rollback_execution]
                fn rollback(file: &EffectsFile) -> anyhow::Result<()> {
                    undo(file, "retry-failing")
                }
            }
        }
    };
}

crash_units!(sqlite, sqlx::Sqlite);
crash_units!(postgres, sqlx::Postgres);
crash_units!(mysql, sqlx::MySql);

/// Adds the `target` system (another database of the same backend) to the builder.
async fn with_target(
    builder: FlamingockBuilder,
    backend: &str,
    url: &str,
) -> Result<FlamingockBuilder, String> {
    let fail = |e: flamingock::TargetError| format!("cannot connect to the target: {e}");
    Ok(match backend {
        "sqlite" => builder.target(
            SqlTarget::<sqlx::Sqlite>::connect("target", url)
                .await
                .map_err(fail)?,
        ),
        "postgres" => builder.target(
            SqlTarget::<sqlx::Postgres>::connect("target", url)
                .await
                .map_err(fail)?,
        ),
        "mysql" => builder.target(
            SqlTarget::<sqlx::MySql>::connect("target", url)
                .await
                .map_err(fail)?,
        ),
        other => return Err(format!("unknown backend {other}")),
    })
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [audit_url, backend, stage, effects, rest @ ..] = args.as_slice() else {
        eprintln!("usage: crash_child <audit-url> <backend> <stage> <effects-file> [<target-url>]");
        return std::process::ExitCode::from(2);
    };
    let mut builder = Flamingock::builder()
        .database_url(audit_url)
        .module(format!("crash_child::{backend}"))
        .stage(stage)
        .dependency(EffectsFile(PathBuf::from(effects)));
    if let Some(target_url) = rest.first() {
        match with_target(builder, backend, target_url).await {
            Ok(with) => builder = with,
            Err(message) => {
                eprintln!("crash_child: {message}");
                return std::process::ExitCode::from(2);
            }
        }
    }
    if std::env::var("CRASH_MODE").is_ok_and(|mode| mode == "undo") {
        return undo(builder).await;
    }
    if std::env::var("CRASH_MODE").is_ok_and(|mode| mode == "fix") {
        return fix(builder, stage).await;
    }
    match flamingock::run!(builder).await {
        Ok(report) => {
            println!("{}", report.to_json());
            std::process::ExitCode::SUCCESS
        }
        Err(error) => {
            if let Some(report) = error.report() {
                println!("{}", report.to_json());
            }
            eprintln!("crash_child: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `fix <stage's unit> --applied`, as a person who saw it STARTED and found its effect in place.
async fn fix(builder: FlamingockBuilder, id: &str) -> std::process::ExitCode {
    let engine = match builder.build().await {
        Ok(engine) => engine,
        Err(error) => {
            eprintln!("crash_child: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let request = flamingock::FixRequest {
        change_id: id.to_owned(),
        resolution: flamingock::Resolution::Applied,
        operator: "crash-matrix".to_owned(),
        reason: "the effect is in place".to_owned(),
        expected: Some(flamingock::SeenState::State(
            flamingock::AuditState::Started,
        )),
    };
    match engine
        .fix(flamingock::ChangeUnit::registered(), &request)
        .await
    {
        Ok(outcome) => {
            println!("fixed {}", outcome.entry.state);
            std::process::ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("crash_child: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `undo --last 1` on the stage.
async fn undo(builder: FlamingockBuilder) -> std::process::ExitCode {
    let engine = match builder.build().await {
        Ok(engine) => engine,
        Err(error) => {
            eprintln!("crash_child: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let scope = flamingock::UndoScope::Last(1);
    match engine
        .undo(flamingock::ChangeUnit::registered(), &scope)
        .await
    {
        Ok(report) => {
            println!("{report}");
            std::process::ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("crash_child: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}
