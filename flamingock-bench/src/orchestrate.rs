//! The benchmark run: for each database and N, a fresh database per cold measurement, each tool in
//! a child process of its own, tools taking turns within each repetition (so that a busy machine
//! slows them alike); warm starts on the last cold run's database; then the macro path, the
//! compiled-in SQL files, the history row, and the fleet start on each server database.
//! Progress goes to stderr.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::runtime::Runtime;

use crate::child::ChildResult;
use crate::cli::{Options, ProfileArgs, URL_ENV};
use crate::error::BenchError;
use crate::fresh::{FreshDb, MariadbCommits, MariadbServer, PostgresServer, Servers};
use crate::macro_units;
use crate::results::{Fleet, History, Key, Load, Results, Sample};
use crate::server::ServerProcess;
use crate::sql_files;
use crate::tools::server::SERVER_URL_ENV;
use crate::trace::{TRACE_ENV, WALL_CLOCK};
use crate::workload::{Database, Mode, Tool};

/// Variables a user may have set that would change what the tools do.
const CLEARED_ENV: [&str; 6] = [
    "FLAMINGOCK_DATABASE_URL",
    "FLAMINGOCK_AUDIT_TABLE",
    "DATABASE_URL",
    TOKEN_ENV,
    SERVER_URL_ENV,
    TRACE_ENV,
];

/// The variable the client reads its server token from.
const TOKEN_ENV: &str = "FLAMINGOCK_TOKEN";

/// What the orchestrator found out besides the samples: for the report's header.
#[derive(Debug, Clone, Default)]
pub struct RunFacts {
    /// `SHOW server_version` of the PostgreSQL server, when it was used.
    pub postgres_version: Option<String>,
    /// The MariaDB server's version and own commit settings, when it was used.
    pub mariadb: Option<(String, MariadbCommits)>,
}

/// Measures everything `options` asks for.
pub fn measure(options: &Options) -> Result<(Results, RunFacts), BenchError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(BenchError::io(
            "starting a tokio runtime in",
            std::env::temp_dir(),
        ))?;
    let exe = std::env::current_exe().map_err(BenchError::io(
        "finding the benchmark's own executable",
        ".",
    ))?;
    let mut bench = Bench {
        runtime,
        exe: exe.as_path(),
        servers: Servers::default(),
        results: Results::default(),
    };
    let mut facts = RunFacts::default();
    if options.databases.contains(&Database::Postgres) {
        let server = bench
            .runtime
            .block_on(PostgresServer::connect(&options.postgres_url))?;
        facts.postgres_version = Some(server.version().to_owned());
        bench.servers.postgres = Some(server);
    }
    if options.databases.contains(&Database::Mariadb) {
        let server = bench
            .runtime
            .block_on(MariadbServer::connect(&options.mysql_url))?;
        facts.mariadb = Some((server.version().to_owned(), server.own_commits()));
        bench.servers.mariadb = Some(server);
    }
    let measured = bench.everything(options);
    // MariaDB's own commit settings go back whatever happened.
    let restored = bench.runtime.block_on(bench.servers.restore());
    measured?;
    restored?;
    Ok((bench.results, facts))
}

impl Bench<'_> {
    /// Every measurement `options` asks for, into `self.results`.
    fn everything(&mut self, options: &Options) -> Result<(), BenchError> {
        for &database in &options.databases {
            for &n in &options.sizes {
                let runs = options.runs_for(n);
                self.cold_and_warm(Pass::Main, database, n, &Tool::AT_EVERY_N, runs)?;
            }
            self.cold_and_warm(
                Pass::Main,
                database,
                macro_units::COUNT,
                &[Tool::Flamingock, Tool::FlamingockMacro],
                options.runs,
            )?;
            self.cold_and_warm(
                Pass::Main,
                database,
                sql_files::COUNT,
                &[Tool::SqlxMacro, Tool::FlamingockSqlFiles],
                options.runs,
            )?;
            if let Some(rows) = options.history_rows {
                let history = self.history(database, options.history_n, rows, options.runs)?;
                self.results.history.insert(database, history);
            }
            for &n in &options.durable_sizes {
                let runs = options.runs_for(n);
                self.cold_and_warm(Pass::Durable, database, n, &Tool::AT_EVERY_N, runs)?;
            }
        }
        for database in Database::SERVERS {
            if options.databases.contains(&database) {
                let fleet = self.fleet(database, options)?;
                self.results.fleets.insert(database, fleet);
            }
        }
        if options.databases.contains(&Database::Postgres) {
            self.through_server(options)?;
            if let Some((services, instances)) = options.load {
                self.results.load = Some(self.load(services, instances, options.load_n)?);
            }
        }
        Ok(())
    }
}

/// One measurement with its timeline on stderr (see [`crate::trace`]); a warm one is set up by
/// an untraced cold run of the same tool first.
pub fn profile(args: &ProfileArgs) -> Result<(), BenchError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(BenchError::io(
            "starting a tokio runtime in",
            std::env::temp_dir(),
        ))?;
    let exe = std::env::current_exe().map_err(BenchError::io(
        "finding the benchmark's own executable",
        ".",
    ))?;
    let mut servers = Servers::default();
    match args.database {
        Database::Postgres => {
            servers.postgres = Some(runtime.block_on(PostgresServer::connect(&args.postgres_url))?);
        }
        Database::Mariadb => {
            servers.mariadb = Some(runtime.block_on(MariadbServer::connect(&args.mysql_url))?);
        }
        Database::Sqlite => {}
    }
    let mut bench = Bench {
        runtime,
        exe: exe.as_path(),
        servers,
        results: Results::default(),
    };
    let profiled = bench.profile(args);
    let restored = bench.runtime.block_on(bench.servers.restore());
    profiled?;
    restored
}

impl Bench<'_> {
    /// [`profile`]'s measurement, on the servers it connected to.
    fn profile(&mut self, args: &ProfileArgs) -> Result<(), BenchError> {
        let exe = self.exe;
        let fresh = self.fresh(args.database, false)?;
        if args.mode == Mode::Warm {
            self.one(args.tool, Mode::Cold, &fresh, args.n)?;
        }
        let (processes, stamps) = match args.mode {
            Mode::Fleet => (Options::default().fleet_size, WALL_CLOCK),
            Mode::Cold | Mode::Warm => (1, "1"),
        };
        let what = describe(args.database, args.mode, args.n, args.tool);
        let started = Instant::now();
        let children = (0..processes)
            .map(|_| {
                let mut command = self.command(args.tool, args.mode, &fresh, args.n);
                command.env(TRACE_ENV, stamps).stderr(Stdio::inherit());
                command.spawn().map_err(|error| BenchError::Child {
                    what: what.clone(),
                    detail: format!("cannot start {}: {error}", exe.display()),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        for child in children {
            let result = finish(child, &what)?;
            eprintln!(
                "{what}: {:.2} ms, peak RSS {} KiB",
                result.elapsed().as_secs_f64() * 1e3,
                result
                    .peak_rss_kib
                    .map_or_else(|| "?".to_owned(), |kib| kib.to_string())
            );
        }
        if processes > 1 {
            eprintln!(
                "{processes} processes: {:.2} ms wall time",
                started.elapsed().as_secs_f64() * 1e3
            );
        }
        self.remove(fresh)
    }
}

struct Bench<'a> {
    runtime: Runtime,
    exe: &'a Path,
    servers: Servers,
    results: Results,
}

impl Bench<'_> {
    /// `runs` cold applies of each tool on fresh databases, then (in the main pass) `runs` warm
    /// starts of each on its last cold run's database.
    fn cold_and_warm(
        &mut self,
        pass: Pass,
        database: Database,
        n: usize,
        tools: &[Tool],
        runs: usize,
    ) -> Result<(), BenchError> {
        let durable = pass == Pass::Durable;
        let mut applied: Vec<(Tool, FreshDb)> = Vec::new();
        for run in 1..=runs {
            for &tool in tools {
                let fresh = self.fresh(database, durable)?;
                self.checkpoint()?;
                let sample = self.one(tool, Mode::Cold, &fresh, n)?;
                let key = key(durable, database, Mode::Cold, n, tool);
                progress(key, run, runs, sample.elapsed);
                self.results.add(key, sample);
                if run == runs && pass == Pass::Main {
                    applied.push((tool, fresh));
                } else {
                    self.remove(fresh)?;
                }
            }
        }
        for run in 1..=runs {
            for (tool, fresh) in &applied {
                let sample = self.one(*tool, Mode::Warm, fresh, n)?;
                let key = key(durable, database, Mode::Warm, n, *tool);
                progress(key, run, runs, sample.elapsed);
                self.results.add(key, sample);
            }
        }
        for (_, fresh) in applied {
            self.remove(fresh)?;
        }
        Ok(())
    }

    /// One child process measuring one tool; its own timing of the tool's timed part.
    fn one(&self, tool: Tool, mode: Mode, fresh: &FreshDb, n: usize) -> Result<Sample, BenchError> {
        let what = describe(fresh.database, mode, n, tool);
        let child = self.spawn(tool, mode, fresh, n, &what)?;
        let result = finish(child, &what)?;
        Ok(Sample {
            elapsed: result.elapsed(),
            peak_rss_kib: result.peak_rss_kib,
        })
    }

    fn spawn(
        &self,
        tool: Tool,
        mode: Mode,
        fresh: &FreshDb,
        n: usize,
        what: &str,
    ) -> Result<Child, BenchError> {
        self.command(tool, mode, fresh, n)
            .spawn()
            .map_err(|error| BenchError::Child {
                what: what.to_owned(),
                detail: format!("cannot start {}: {error}", self.exe.display()),
            })
    }

    /// The child command measuring `tool`, its output captured.
    fn command(&self, tool: Tool, mode: Mode, fresh: &FreshDb, n: usize) -> Command {
        let mut command = Command::new(self.exe);
        command
            .arg("child")
            .args(["--tool", tool.key()])
            .args(["--mode", mode.key()])
            .args(["--database", fresh.database.key()])
            .args(["--n", &n.to_string()])
            .arg("--workdir")
            .arg(fresh.workdir.path())
            .env(URL_ENV, &fresh.url)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for variable in CLEARED_ENV {
            command.env_remove(variable);
        }
        command
    }

    /// The fleet on `database`: `runs` times one process alone, then `size` processes
    /// together, each on a fresh database with `fleet_n` changes pending; checks that each
    /// change was applied once.
    fn fleet(&mut self, database: Database, options: &Options) -> Result<Fleet, BenchError> {
        if let Some(reason) = self.lock_missing(database)? {
            eprintln!("fleet start skipped: {reason}");
            return Ok(Fleet::Skipped(reason));
        }
        let (n, size, runs) = (options.fleet_n, options.fleet_size, options.runs);
        let mut alone = Vec::with_capacity(runs);
        let mut together = Vec::with_capacity(runs);
        for run in 1..=runs {
            for (processes, samples) in [(1, &mut alone), (size, &mut together)] {
                let fresh = self.fresh(database, false)?;
                self.checkpoint()?;
                let what = format!("fleet start of {processes} on {database}, N = {n}");
                let started = Instant::now();
                let children = (0..processes)
                    .map(|_| self.spawn(Tool::Flamingock, Mode::Fleet, &fresh, n, &what))
                    .collect::<Result<Vec<_>, _>>()?;
                let mut peak = None;
                for child in children {
                    let result = finish(child, &what)?;
                    peak = peak.max(result.peak_rss_kib);
                }
                let wall = started.elapsed();
                self.check_applied_once(&fresh, n)?;
                eprintln!(
                    "[{database} N={n} fleet] {processes} process(es) run {run}/{runs}: {:.1} ms",
                    wall.as_secs_f64() * 1e3
                );
                samples.push(Sample {
                    elapsed: wall,
                    peak_rss_kib: peak,
                });
                self.remove(fresh)?;
            }
        }
        Ok(Fleet::Measured {
            n,
            size,
            alone,
            together,
        })
    }

    /// Cold applies and warm starts with the audit store on one `flamingock-server` (on a
    /// PostgreSQL database of its own), each measurement on a fresh PostgreSQL target and a
    /// scope (service and environment) of its own on that server.
    fn through_server(&mut self, options: &Options) -> Result<(), BenchError> {
        if options.server_sizes.is_empty() {
            return Ok(());
        }
        let server_db = self.fresh(Database::Postgres, false)?;
        let mut server = ServerProcess::start(self.exe, &server_db.url)?;
        let mut scopes = 0usize;
        let tool = Tool::FlamingockServer;
        for &n in &options.server_sizes {
            let runs = options.runs_for(n);
            let mut last = None;
            for run in 1..=runs {
                let target = self.fresh(Database::Postgres, false)?;
                self.checkpoint()?;
                scopes += 1;
                let audit = server.scope_url("bench", &format!("run-{scopes}"));
                let sample = self.one_through(&server, &audit, Mode::Cold, &target, n)?;
                let key = key(false, Database::Postgres, Mode::Cold, n, tool);
                progress(key, run, runs, sample.elapsed);
                self.results.add(key, sample);
                if run == runs {
                    last = Some((target, audit));
                } else {
                    self.remove(target)?;
                }
            }
            if let Some((target, audit)) = last {
                for run in 1..=runs {
                    let sample = self.one_through(&server, &audit, Mode::Warm, &target, n)?;
                    let key = key(false, Database::Postgres, Mode::Warm, n, tool);
                    progress(key, run, runs, sample.elapsed);
                    self.results.add(key, sample);
                }
                self.remove(target)?;
            }
            server.check_running()?;
        }
        drop(server);
        self.remove(server_db)
    }

    /// One measurement through `server`, the audit store URL `audit`, the target `target`.
    fn one_through(
        &self,
        server: &ServerProcess,
        audit: &str,
        mode: Mode,
        target: &FreshDb,
        n: usize,
    ) -> Result<Sample, BenchError> {
        let tool = Tool::FlamingockServer;
        let what = describe(Database::Postgres, mode, n, tool);
        let child = self
            .command(tool, mode, target, n)
            .env(SERVER_URL_ENV, audit)
            .env(TOKEN_ENV, &server.token)
            .spawn()
            .map_err(|error| BenchError::Child {
                what: what.clone(),
                detail: format!("cannot start {}: {error}", self.exe.display()),
            })?;
        let result = finish(child, &what)?;
        Ok(Sample {
            elapsed: result.elapsed(),
            peak_rss_kib: result.peak_rss_kib,
        })
    }

    /// The load run: `services` × `instances` processes started together against one fresh
    /// server, each service with `n` units; every unit must end applied exactly once per
    /// service. The server records each request's latency; its peak RSS is read at the end.
    fn load(&mut self, services: usize, instances: usize, n: usize) -> Result<Load, BenchError> {
        let server_db = self.fresh(Database::Postgres, false)?;
        let mut server = ServerProcess::start(self.exe, &server_db.url)?;
        self.checkpoint()?;
        let what = format!("the load run ({services} services × {instances} instances)");
        let started = Instant::now();
        let mut children = Vec::with_capacity(services * instances);
        for service in 1..=services {
            let audit = server.scope_url(&format!("svc-{service}"), "load");
            for _ in 0..instances {
                let child = self
                    .command(Tool::ServerLoad, Mode::Fleet, &server_db, n)
                    .env(SERVER_URL_ENV, &audit)
                    .env(TOKEN_ENV, &server.token)
                    .spawn()
                    .map_err(|error| BenchError::Child {
                        what: what.clone(),
                        detail: format!("cannot start {}: {error}", self.exe.display()),
                    })?;
                children.push(child);
            }
        }
        let mut instance_peak = None;
        let mut failures = Vec::new();
        for child in children {
            match finish(child, &what) {
                Ok(result) => instance_peak = instance_peak.max(result.peak_rss_kib),
                Err(error) => failures.push(error.to_string()),
            }
        }
        let wall = started.elapsed();
        server.check_running()?;
        if let Some(first) = failures.first() {
            return Err(BenchError::Unexpected {
                tool: Tool::ServerLoad.key(),
                detail: format!(
                    "{} of {} instances failed; the first: {first}",
                    failures.len(),
                    services * instances
                ),
            });
        }
        let mut latencies_us = self.runtime.block_on(server.take_latencies())?;
        latencies_us.sort_unstable();
        let server_peak_rss_kib = server.peak_rss_kib();
        drop(server);
        self.check_each_service_applied_once(&server_db, services, n)?;
        eprintln!(
            "[PostgreSQL load] {services} services × {instances} instances: {:.1} ms wall, {} requests",
            wall.as_secs_f64() * 1e3,
            latencies_us.len()
        );
        self.remove(server_db)?;
        Ok(Load {
            services,
            instances,
            n,
            wall,
            latencies_us,
            server_peak_rss_kib,
            instance_peak_rss_kib: instance_peak,
        })
    }

    /// Every service of the load run has exactly one `APPLIED` row per unit, in its table on
    /// the server's database (`fk_<service>__<environment>_audit`).
    fn check_each_service_applied_once(
        &self,
        server_db: &FreshDb,
        services: usize,
        n: usize,
    ) -> Result<(), BenchError> {
        let counts: Vec<(usize, i64, i64)> = self.runtime.block_on(async {
            let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&server_db.url)
                .await
                .map_err(BenchError::sql("connecting to check the load run's audit"))?;
            let mut counts = Vec::with_capacity(services);
            for service in 1..=services {
                let (rows, distinct): (i64, i64) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT COUNT(*), COUNT(DISTINCT change_id) FROM fk_svc_{service}__load_audit \
                     WHERE state = 'APPLIED'"
                )))
                .fetch_one(&mut conn)
                .await
                .map_err(BenchError::sql("counting a service's APPLIED rows"))?;
                counts.push((service, rows, distinct));
            }
            Ok::<_, BenchError>(counts)
        })?;
        let expected = i64::try_from(n).unwrap_or(i64::MAX);
        match counts
            .iter()
            .find(|(_, rows, distinct)| (*rows, *distinct) != (expected, expected))
        {
            None => Ok(()),
            Some((service, rows, distinct)) => Err(BenchError::Unexpected {
                tool: Tool::ServerLoad.key(),
                detail: format!(
                    "service svc-{service} has {rows} APPLIED rows for {distinct} distinct units; {n} of each expected (every unit exactly once)"
                ),
            }),
        }
    }

    /// Why a fleet cannot be measured: the audit store offers no distributed lock, so the
    /// processes would all apply every change.
    fn lock_missing(&mut self, database: Database) -> Result<Option<String>, BenchError> {
        let fresh = self.fresh(database, false)?;
        let store = self.runtime.block_on(flamingock::sqlx_store::connect(
            &fresh.url,
            flamingock::sqlx_store::StoreOptions::default(),
        ));
        let reason = match store {
            Ok(store) if store.lock().is_some() => None,
            Ok(_) => Some(
                "the SQL audit store of this build offers no distributed lock (`AuditStore::lock()` is `None`), so concurrent processes would each apply every change"
                    .to_owned(),
            ),
            Err(error) => Some(format!("cannot open the audit store: {error}")),
        };
        self.remove(fresh)?;
        Ok(reason)
    }

    /// Every change has exactly one `APPLIED` row: the fleet applied each once.
    fn check_applied_once(&self, fresh: &FreshDb, n: usize) -> Result<(), BenchError> {
        const APPLIED: &str = "SELECT COUNT(*), COUNT(DISTINCT change_id) \
                               FROM flamingock_audit_log WHERE state = 'APPLIED'";
        let connecting = BenchError::sql("connecting to check the fleet's audit");
        let counting = BenchError::sql("counting the fleet's APPLIED rows");
        let counts: (i64, i64) = self.runtime.block_on(async {
            match fresh.database {
                Database::Postgres => {
                    fetch_counts::<sqlx::PgConnection>(&fresh.url, APPLIED, connecting, counting)
                        .await
                }
                Database::Mariadb => {
                    fetch_counts::<sqlx::MySqlConnection>(&fresh.url, APPLIED, connecting, counting)
                        .await
                }
                Database::Sqlite => Err(BenchError::Usage(
                    "the fleet start runs on a server database only".into(),
                )),
            }
        })?;
        let expected = i64::try_from(n).unwrap_or(i64::MAX);
        if counts == (expected, expected) {
            Ok(())
        } else {
            Err(BenchError::Unexpected {
                tool: Tool::Flamingock.key(),
                detail: format!(
                    "the fleet wrote {} APPLIED rows for {} distinct changes; {n} of each expected (every change exactly once)",
                    counts.0, counts.1
                ),
            })
        }
    }

    /// The history row on `database`: two databases with the same `n` units applied by
    /// Flamingock, one of them then lengthened to about `rows` audit rows (see
    /// [`crate::history`]); `runs` warm starts of each, in turns.
    fn history(
        &mut self,
        database: Database,
        n: usize,
        rows: usize,
        runs: usize,
    ) -> Result<History, BenchError> {
        let tool = Tool::Flamingock;
        let short = self.fresh(database, false)?;
        let long = self.fresh(database, false)?;
        for fresh in [&short, &long] {
            self.checkpoint()?;
            self.one(tool, Mode::Cold, fresh, n)?;
        }
        let (short_rows, long_rows) = self
            .runtime
            .block_on(crate::history::lengthen(&long.url, rows))?;
        eprintln!("[{database} N={n} history] {short_rows} audit rows lengthened to {long_rows}");
        let mut history = History {
            n,
            short_rows,
            long_rows,
            short: Vec::with_capacity(runs),
            long: Vec::with_capacity(runs),
        };
        self.checkpoint()?;
        for run in 1..=runs {
            for (fresh, rows, samples) in [
                (&short, short_rows, &mut history.short),
                (&long, long_rows, &mut history.long),
            ] {
                let sample = self.one(tool, Mode::Warm, fresh, n)?;
                eprintln!(
                    "[{database} N={n} history] warm start with {rows} audit rows run {run}/{runs}: {:.1} ms",
                    sample.elapsed.as_secs_f64() * 1e3
                );
                samples.push(sample);
            }
        }
        self.remove(short)?;
        self.remove(long)?;
        Ok(history)
    }

    fn fresh(&mut self, database: Database, durable: bool) -> Result<FreshDb, BenchError> {
        self.runtime
            .block_on(FreshDb::create(database, durable, &mut self.servers))
    }

    /// A PostgreSQL `CHECKPOINT` (untimed) when that server is in use.
    fn checkpoint(&mut self) -> Result<(), BenchError> {
        self.runtime.block_on(self.servers.checkpoint())
    }

    fn remove(&mut self, fresh: FreshDb) -> Result<(), BenchError> {
        self.runtime.block_on(fresh.remove(&mut self.servers))
    }
}

/// Waits for a child and reads its result line; a failure carries the tail of its stderr.
fn finish(child: Child, what: &str) -> Result<ChildResult, BenchError> {
    let output = child
        .wait_with_output()
        .map_err(|error| BenchError::Child {
            what: what.to_owned(),
            detail: format!("waiting for the child process: {error}"),
        })?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    match ChildResult::from_output(&stdout) {
        Some(result) if output.status.success() => Ok(result),
        _ => {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let tail: Vec<&str> = stderr.lines().rev().take(20).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            Err(BenchError::Child {
                what: what.to_owned(),
                detail: format!(
                    "the child exited with {}: {}",
                    output.status,
                    tail.join("\n")
                ),
            })
        }
    }
}

/// The main pass (commits not waiting for the disk; cold and warm) or the durable one (cold).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pass {
    Main,
    Durable,
}

fn key(durable: bool, database: Database, mode: Mode, n: usize, tool: Tool) -> Key {
    Key {
        durable,
        database,
        mode,
        n,
        tool,
    }
}

fn describe(database: Database, mode: Mode, n: usize, tool: Tool) -> String {
    format!("{} {} on {database}, N = {n}", tool.key(), mode.key())
}

fn progress(key: Key, run: usize, runs: usize, elapsed: Duration) {
    let durable = if key.durable { " durable" } else { "" };
    eprintln!(
        "[{} N={} {}{durable}] {} run {run}/{runs}: {:.1} ms",
        key.database,
        key.n,
        key.mode.key(),
        key.tool.key(),
        elapsed.as_secs_f64() * 1e3
    );
}

/// The one row of two counts `statement` selects, on a connection of its own to `url`.
async fn fetch_counts<C>(
    url: &str,
    statement: &'static str,
    connecting: impl FnOnce(sqlx::Error) -> BenchError,
    counting: impl FnOnce(sqlx::Error) -> BenchError,
) -> Result<(i64, i64), BenchError>
where
    C: sqlx::Connection,
    for<'c> &'c mut C: sqlx::Executor<'c, Database = C::Database>,
    <C::Database as sqlx::Database>::Arguments: sqlx::IntoArguments<C::Database>,
    (i64, i64): for<'r> sqlx::FromRow<'r, <C::Database as sqlx::Database>::Row>,
{
    let mut conn = C::connect(url).await.map_err(connecting)?;
    sqlx::query_as(statement)
        .fetch_one(&mut conn)
        .await
        .map_err(counting)
}
