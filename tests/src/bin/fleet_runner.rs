//! One instance of a fleet, for the fleet tests (`tests/tests/fleet.rs`): an application with
//! fifty change units that the tests start several times at once, kill, or pause.
//!
//! ```text
//! fleet_runner --url URL --dir DIR [--lease-ms N] [--wait-ms N] [--slow none|tx|nontx|gate]
//!              [--token TOKEN]
//! ```
//!
//! With an `http://` URL (a `flamingock-server`, `--token` its runner token) only the 25
//! non-transactional units run: the server shares no transaction with a unit.
//!
//! The units: 25 transactional ones, each inserting a row (its id, the runner's id) into the
//! table `fleet_effects` in the audit store's database (one set per database, since transactions
//! are typed), and 25 non-transactional ones, each appending a line to `DIR/effects.log`. With
//! `--slow`, one more unit sits in the middle (order 255): `tx` inserts its row and then waits,
//! `nontx` waits and then appends its line, `gate` (always retried) only waits. It waits only in
//! the first instance that reaches it, until `DIR/wake` exists: the tests kill or pause it there.
//!
//! Protocol: after connecting, the runner writes its runner id to `DIR/ready-<pid>` and waits for
//! `DIR/go`, so that all instances start their runs at the same moment. On reaching the slow unit
//! it creates `DIR/slow-<pid>`. It prints `FLEET applied=<n> runner=<id>` on success and exits 0;
//! otherwise it prints the error and exits 2 (blocked), 3 (lock lost), 4 (lock timeout) or 1.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use flamingock::{ChangeContext, ChangeUnit, Error, Flamingock};

/// Where the units write and the instances meet.
pub struct FleetDir(pub PathBuf);

/// How long anything here waits for the test before giving up.
const PATIENCE: Duration = Duration::from_secs(120);

/// Appends `<change id> <runner id> <pid>` to the effects file, in one write.
fn append_effect(dir: &FleetDir, context: &ChangeContext) -> std::io::Result<()> {
    let line = format!(
        "{} {} {}\n",
        context.change_id,
        context.runner_id,
        std::process::id()
    );
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.0.join("effects.log"))?
        .write_all(line.as_bytes())
}

/// Marks that this instance reached the slow unit; the first instance to get there then waits
/// for `wake` (the tests kill or pause it meanwhile), later ones go straight on.
async fn slow_point(dir: &FleetDir) -> std::io::Result<()> {
    std::fs::write(dir.0.join(format!("slow-{}", std::process::id())), b"")?;
    let reached = std::fs::read_dir(&dir.0)?
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("slow-"))
        .count();
    if reached > 1 {
        return Ok(());
    }
    wait_for(&dir.0.join("wake")).await
}

/// Waits until `path` exists, for at most [`PATIENCE`].
async fn wait_for(path: &Path) -> std::io::Result<()> {
    let started = Instant::now();
    while !path.exists() {
        if started.elapsed() > PATIENCE {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("{} did not appear", path.display()),
            ));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

/// The transactional units of one database: `$db` names the sqlx database type, `$insert` the
/// statement (with that database's placeholders).
macro_rules! tx_units {
    ($db:ident, $insert:literal) => {
        tx_units!(@each $db, $insert;
            t001 "tx-001" "010", t003 "tx-003" "030", t005 "tx-005" "050", t007 "tx-007" "070",
            t009 "tx-009" "090", t011 "tx-011" "110", t013 "tx-013" "130", t015 "tx-015" "150",
            t017 "tx-017" "170", t019 "tx-019" "190", t021 "tx-021" "210", t023 "tx-023" "230",
            t025 "tx-025" "250", t027 "tx-027" "270", t029 "tx-029" "290", t031 "tx-031" "310",
            t033 "tx-033" "330", t035 "tx-035" "350", t037 "tx-037" "370", t039 "tx-039" "390",
            t041 "tx-041" "410", t043 "tx-043" "430", t045 "tx-045" "450", t047 "tx-047" "470",
            t049 "tx-049" "490",
        );
    };
    (@each $db:ident, $insert:literal; $($name:ident $id:tt $order:tt,)*) => {$(
        #[flamingock::change_unit(id = $id, order = $order, author = "fleet")]
        pub mod $name {
            use flamingock::ChangeContext;

            #[execution]
            pub async fn execute(
                tx: &mut sqlx::Transaction<'_, sqlx::$db>,
                context: &ChangeContext,
            ) -> Result<(), sqlx::Error> {
                sqlx::query($insert)
                    .bind(&context.change_id)
                    .bind(&context.runner_id)
                    .execute(&mut **tx)
                    .await?;
                Ok(())
            }
        }
    )*};
}

/// The non-transactional units, the same for every database.
macro_rules! file_units {
    ($($name:ident $id:tt $order:tt,)*) => {$(
        #[flamingock::change_unit(id = $id, order = $order, author = "fleet", transactional = false)]
        pub mod $name {
            use flamingock::ChangeContext;

            use crate::FleetDir;

            #[execution]
            pub fn execute(context: &ChangeContext, dir: &FleetDir) -> std::io::Result<()> {
                crate::append_effect(dir, context)
            }
        }
    )*};
}

/// The fifty units (ids `tx-NNN` and `file-NNN`, orders `NNN0`), by module.
pub mod units {
    pub mod files {
        file_units! {
            f002 "file-002" "020", f004 "file-004" "040", f006 "file-006" "060",
            f008 "file-008" "080", f010 "file-010" "100", f012 "file-012" "120",
            f014 "file-014" "140", f016 "file-016" "160", f018 "file-018" "180",
            f020 "file-020" "200", f022 "file-022" "220", f024 "file-024" "240",
            f026 "file-026" "260", f028 "file-028" "280", f030 "file-030" "300",
            f032 "file-032" "320", f034 "file-034" "340", f036 "file-036" "360",
            f038 "file-038" "380", f040 "file-040" "400", f042 "file-042" "420",
            f044 "file-044" "440", f046 "file-046" "460", f048 "file-048" "480",
            f050 "file-050" "500",
        }
    }

    pub mod tx_sqlite {
        tx_units!(
            Sqlite,
            "INSERT INTO fleet_effects (change_id, runner_id) VALUES (?1, ?2)"
        );
    }

    pub mod tx_postgres {
        tx_units!(
            Postgres,
            "INSERT INTO fleet_effects (change_id, runner_id) VALUES ($1, $2)"
        );
    }

    pub mod tx_mysql {
        tx_units!(
            MySql,
            "INSERT INTO fleet_effects (change_id, runner_id) VALUES (?, ?)"
        );
    }
}

/// The unit the tests kill or pause an instance in (order 255: after 25 units, before 25).
macro_rules! slow_tx_unit {
    ($db:ident, $insert:literal) => {
        #[flamingock::change_unit(id = "slow-tx", order = "255", author = "fleet")]
        pub mod slow_tx {
            use flamingock::ChangeContext;

            use crate::FleetDir;

            #[execution]
            pub async fn execute(
                tx: &mut sqlx::Transaction<'_, sqlx::$db>,
                context: &ChangeContext,
                dir: &FleetDir,
            ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
                sqlx::query($insert)
                    .bind(&context.change_id)
                    .bind(&context.runner_id)
                    .execute(&mut **tx)
                    .await?;
                crate::slow_point(dir).await?;
                Ok(())
            }
        }
    };
}

/// The slow units, one module per `--slow` choice.
pub mod slow {
    pub mod tx_sqlite {
        slow_tx_unit!(
            Sqlite,
            "INSERT INTO fleet_effects (change_id, runner_id) VALUES (?1, ?2)"
        );
    }

    pub mod tx_postgres {
        slow_tx_unit!(
            Postgres,
            "INSERT INTO fleet_effects (change_id, runner_id) VALUES ($1, $2)"
        );
    }

    pub mod tx_mysql {
        slow_tx_unit!(
            MySql,
            "INSERT INTO fleet_effects (change_id, runner_id) VALUES (?, ?)"
        );
    }

    /// Non-transactional, manual intervention: a crash inside it blocks the next run.
    pub mod nontx {
        use flamingock::prelude::*;

        #[change_unit(
            id = "slow-nontx",
            order = "255",
            author = "fleet",
            transactional = false
        )]
        pub mod slow_nontx {
            use flamingock::ChangeContext;

            use crate::FleetDir;

            #[execution]
            pub async fn execute(context: &ChangeContext, dir: &FleetDir) -> std::io::Result<()> {
                crate::slow_point(dir).await?;
                crate::append_effect(dir, context)
            }
        }
    }

    /// Non-transactional, always retried, with no effect of its own: an instance paused in it
    /// holds nothing in the database, so another can take over.
    pub mod gate {
        use flamingock::prelude::*;

        #[change_unit(
            id = "slow-gate",
            order = "255",
            author = "fleet",
            transactional = false,
            recovery = "always_retry"
        )]
        pub mod slow_gate {
            use crate::FleetDir;

            #[execution]
            pub async fn execute(dir: &FleetDir) -> std::io::Result<()> {
                crate::slow_point(dir).await
            }
        }
    }
}

/// The command line.
struct Args {
    url: String,
    dir: PathBuf,
    lease: Duration,
    wait: Duration,
    slow: String,
    token: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let (mut url, mut dir, mut slow, mut token) = (None, None, "none".to_owned(), None);
    let (mut lease, mut wait) = (Duration::from_secs(5), Duration::from_secs(60));
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        let millis = || {
            value
                .parse()
                .map(Duration::from_millis)
                .map_err(|e| format!("{flag}: {e}"))
        };
        match flag.as_str() {
            "--url" => url = Some(value.clone()),
            "--dir" => dir = Some(PathBuf::from(&value)),
            "--lease-ms" => lease = millis()?,
            "--wait-ms" => wait = millis()?,
            "--slow" => slow = value.clone(),
            "--token" => token = Some(value.clone()),
            _ => return Err(format!("unknown argument {flag}")),
        }
    }
    Ok(Args {
        url: url.ok_or("--url is required")?,
        dir: dir.ok_or("--dir is required")?,
        lease,
        wait,
        slow,
        token,
    })
}

/// The module prefixes a run selects: the files, the database's transactional units, and the
/// slow unit asked for.
fn modules(args: &Args) -> Result<Vec<String>, String> {
    let database = match args.url.split(':').next() {
        Some("http" | "https") if args.slow == "none" => {
            return Ok(vec!["fleet_runner::units::files".to_owned()]);
        }
        Some("http" | "https") => {
            return Err("--slow takes no unit through a server".to_owned());
        }
        Some("sqlite") => "sqlite",
        Some("postgres" | "postgresql") => "postgres",
        Some("mysql" | "mariadb") => "mysql",
        _ => return Err(format!("no units for the database of {}", args.url)),
    };
    let mut modules = vec![
        "fleet_runner::units::files".to_owned(),
        format!("fleet_runner::units::tx_{database}"),
    ];
    match args.slow.as_str() {
        "none" => {}
        "tx" => modules.push(format!("fleet_runner::slow::tx_{database}")),
        "nontx" | "gate" => modules.push(format!("fleet_runner::slow::{}", args.slow)),
        other => {
            return Err(format!(
                "--slow must be none, tx, nontx or gate, not {other}"
            ));
        }
    }
    Ok(modules)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("usage error: {message}");
            return ExitCode::from(64);
        }
    };
    let modules = match modules(&args) {
        Ok(modules) => modules,
        Err(message) => {
            eprintln!("usage error: {message}");
            return ExitCode::from(64);
        }
    };
    let mut builder = Flamingock::builder()
        .database_url(&args.url)
        .app("fleet_runner", "1.0.0")
        .lock_lease(args.lease)
        .lock_wait(args.wait)
        .dependency(FleetDir(args.dir.clone()));
    for module in modules {
        builder = builder.module(module);
    }
    if let Some(token) = &args.token {
        builder = builder.token(token.as_str());
    }
    let engine = match builder.build().await {
        Ok(engine) => engine,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(1);
        }
    };
    let ready = args.dir.join(format!("ready-{}", std::process::id()));
    if let Err(error) = std::fs::write(&ready, engine.runner_id()) {
        eprintln!("error: cannot write {}: {error}", ready.display());
        return ExitCode::from(1);
    }
    if let Err(error) = wait_for(&args.dir.join("go")).await {
        eprintln!("error: {error}");
        return ExitCode::from(1);
    }
    match engine.run(ChangeUnit::registered()).await {
        Ok(report) => {
            println!("{report}");
            println!(
                "FLEET applied={} runner={}",
                report.applied().len(),
                engine.runner_id()
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(match error {
                Error::Blocked { .. } => 2,
                Error::LockLost { .. } => 3,
                Error::LockTimeout { .. } => 4,
                _ => 1,
            })
        }
    }
}
