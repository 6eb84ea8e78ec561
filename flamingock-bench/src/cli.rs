//! The command line: the benchmark's options, and the hidden `child` sub-command the benchmark
//! re-executes itself with to measure one tool in a process of its own.

use std::path::PathBuf;
use std::str::FromStr;

use crate::error::BenchError;
use crate::workload::{Database, Mode, Tool};

/// The usage text.
pub const USAGE: &str = "\
flamingock-bench: Flamingock beside sqlx's migrator, refinery and a plain-sqlx floor

USAGE:
    flamingock-bench [OPTIONS]

OPTIONS:
    --out PATH             where the Markdown report is written (default BENCHMARKS.md)
    --sizes N,N,...        the numbers of changes (default 100,1000,5000)
    --runs R               repetitions for N <= 1000 (default 5)
    --runs-large R         repetitions for N > 1000 (default 5)
    --databases D,D,...    sqlite, postgres, mariadb (default all three)
    --postgres-url URL     the PostgreSQL server fresh databases are created on (default
                           $FLAMINGOCK_TEST_POSTGRES_URL, else postgres://postgres@127.0.0.1:5432/test)
    --mysql-url URL        the MariaDB server fresh databases are created on (default
                           $FLAMINGOCK_TEST_MYSQL_URL, else mysql://root@127.0.0.1:3306/test)
    --durable-sizes N,...  the Ns of the extra cold-apply pass with durable commits (default
                           1000; `none` to skip)
    --fleet-size P         processes started together in the fleet measurement, on PostgreSQL
                           and MariaDB (default 8)
    --fleet-n N            changes pending in the fleet measurement (default 200)
    --history-rows R       the history row: flamingock's warm start with the audit of one cold
                           apply, and with about R audit rows (default 100000; `none` to skip)
    --history-n N          units in the history row (default 1000)
    --server-sizes N,...   the Ns measured with the audit store on a flamingock-server on
                           PostgreSQL (default 100,1000; `none` to skip)
    --load SxI             the load run: S services of I instances each starting together
                           against one server (default 50x4; `none` to skip)
    --load-n N             units per service in the load run (default 20)
    --compile-sizes N,...  the Ns of the compile-time measurement: generated crates of N
                           `#[change_unit]` units and of N SQL files under `sqlx::migrate!`
                           (default 10,100,1000; `none` to skip)
    --compile-runs R       timed builds of each kind per crate (default 3)
    --compile-dir DIR      generate the compile-time workspace there and keep it (default: a
                           temporary folder, removed afterwards)
    -h, --help             this text

    flamingock-bench compile [OPTIONS]
                           the compile-time measurement alone, its sections on stdout

    flamingock-bench profile --tool T --mode cold|warm|fleet --database D --n N
                           [--postgres-url URL] [--mysql-url URL]
                           one measurement with a timeline of every SQL statement and span on
                           stderr (tools: floor, sqlx, refinery, flamingock, flamingock-macro,
                           sqlx-macro, flamingock-sql-files (these two at N = 20 only);
                           fleet: 8 flamingock processes at once, wall-clock stamps)

The full run: cargo run --release -p flamingock-bench -- --out BENCHMARKS.md
";

/// The environment variable carrying a child's database URL (kept off its command line).
pub const URL_ENV: &str = "FLAMINGOCK_BENCH_URL";

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Bench(Options),
    /// The compile-time measurement alone (`compile [OPTIONS]`), its sections on stdout.
    Compile(Options),
    Child(ChildArgs),
    Profile(ProfileArgs),
    /// The server process the measurements through the server use (see `crate::server`).
    Serve,
    Help,
}

/// The benchmark's options.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub out: PathBuf,
    pub sizes: Vec<usize>,
    pub runs: usize,
    pub runs_large: usize,
    pub databases: Vec<Database>,
    pub postgres_url: String,
    pub mysql_url: String,
    /// The Ns of the cold-apply pass whose commits wait for the disk.
    pub durable_sizes: Vec<usize>,
    pub fleet_size: usize,
    pub fleet_n: usize,
    /// The audit rows of the history row's long-lived database, if it is measured.
    pub history_rows: Option<usize>,
    /// The units of the history row.
    pub history_n: usize,
    /// The Ns measured through the server (PostgreSQL only).
    pub server_sizes: Vec<usize>,
    /// Services and instances per service of the load run, if any.
    pub load: Option<(usize, usize)>,
    /// Units per service in the load run.
    pub load_n: usize,
    /// The Ns of the compile-time measurement (empty: skipped).
    pub compile_sizes: Vec<usize>,
    /// Timed builds of each kind per generated crate.
    pub compile_runs: usize,
    /// Where the compile-time workspace is generated and kept (`None`: a temporary folder).
    pub compile_dir: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            out: PathBuf::from("BENCHMARKS.md"),
            sizes: vec![100, 1_000, 5_000],
            runs: 5,
            runs_large: 5,
            databases: Database::ALL.to_vec(),
            postgres_url: url_from_env(
                "FLAMINGOCK_TEST_POSTGRES_URL",
                "postgres://postgres@127.0.0.1:5432/test",
            ),
            mysql_url: url_from_env(
                "FLAMINGOCK_TEST_MYSQL_URL",
                "mysql://root@127.0.0.1:3306/test",
            ),
            durable_sizes: vec![1_000],
            fleet_size: 8,
            fleet_n: 200,
            history_rows: Some(Self::HISTORY_ROWS),
            history_n: 1_000,
            server_sizes: vec![100, 1_000],
            load: Some((50, 4)),
            load_n: 20,
            compile_sizes: crate::compile::DEFAULT_SIZES.to_vec(),
            compile_runs: crate::compile::DEFAULT_RUNS,
            compile_dir: None,
        }
    }
}

impl Options {
    /// The N above which `runs_large` applies.
    pub const LARGE_ABOVE: usize = 1_000;

    /// The audit rows of the history row's long-lived database unless told otherwise.
    pub const HISTORY_ROWS: usize = 100_000;

    /// How many repetitions a measurement at `n` gets.
    pub fn runs_for(&self, n: usize) -> usize {
        if n > Self::LARGE_ABOVE {
            self.runs_large
        } else {
            self.runs
        }
    }
}

/// `variable`'s value when set and not blank, else `default`.
fn url_from_env(variable: &str, default: &str) -> String {
    std::env::var(variable)
        .ok()
        .filter(|url| !url.trim().is_empty())
        .unwrap_or_else(|| default.to_owned())
}

/// One measurement in a child process: `child --tool T --mode M --database D --n N --workdir DIR`
/// (the URL comes from [`URL_ENV`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ChildArgs {
    pub tool: Tool,
    pub mode: Mode,
    pub database: Database,
    pub n: usize,
    pub workdir: PathBuf,
}

/// One measurement with its timeline: `profile --tool T --mode M --database D --n N`.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileArgs {
    pub tool: Tool,
    pub mode: Mode,
    pub database: Database,
    pub n: usize,
    pub postgres_url: String,
    pub mysql_url: String,
}

/// Parses the arguments after the program name.
pub fn parse(args: &[String]) -> Result<Command, BenchError> {
    match args.first().map(String::as_str) {
        Some("child") => return parse_child(&args[1..]).map(Command::Child),
        Some("profile") => return parse_profile(&args[1..]).map(Command::Profile),
        Some("serve") if args.len() == 1 => return Ok(Command::Serve),
        Some("compile") => {
            return match parse(&args[1..])? {
                Command::Bench(options) => Ok(Command::Compile(options)),
                other => Ok(other),
            };
        }
        _ => {}
    }
    let mut options = Options::default();
    let mut rest = args.iter();
    while let Some(flag) = rest.next() {
        if flag == "-h" || flag == "--help" {
            return Ok(Command::Help);
        }
        let value = rest
            .next()
            .ok_or_else(|| BenchError::Usage(format!("`{flag}` needs a value")))?;
        match flag.as_str() {
            "--out" => options.out = PathBuf::from(value),
            "--sizes" => options.sizes = list(flag, value)?,
            "--runs" => options.runs = positive(flag, value)?,
            "--runs-large" => options.runs_large = positive(flag, value)?,
            "--databases" => options.databases = list(flag, value)?,
            "--postgres-url" => options.postgres_url = value.clone(),
            "--mysql-url" => options.mysql_url = value.clone(),
            "--history-rows" if value == "none" => options.history_rows = None,
            "--history-rows" => {
                options.history_rows = Some(positive(flag, &value.replace('_', ""))?)
            }
            "--history-n" => options.history_n = positive(flag, value)?,
            "--durable-sizes" if value == "none" => options.durable_sizes.clear(),
            "--durable-sizes" => options.durable_sizes = list(flag, value)?,
            "--fleet-size" => options.fleet_size = positive(flag, value)?,
            "--fleet-n" => options.fleet_n = positive(flag, value)?,
            "--server-sizes" if value == "none" => options.server_sizes.clear(),
            "--server-sizes" => options.server_sizes = list(flag, value)?,
            "--load" if value == "none" => options.load = None,
            "--load" => options.load = Some(services_by_instances(flag, value)?),
            "--load-n" => options.load_n = positive(flag, value)?,
            "--compile-sizes" if value == "none" => options.compile_sizes.clear(),
            "--compile-sizes" => options.compile_sizes = list(flag, value)?,
            "--compile-runs" => options.compile_runs = positive(flag, value)?,
            "--compile-dir" => options.compile_dir = Some(PathBuf::from(value)),
            _ => return Err(BenchError::Usage(format!("unknown option `{flag}`"))),
        }
    }
    if options.sizes.contains(&0)
        || options.durable_sizes.contains(&0)
        || options.server_sizes.contains(&0)
        || options.compile_sizes.contains(&0)
    {
        return Err(BenchError::Usage("sizes must be positive".into()));
    }
    // The short history already has a row or two per unit: a long one must have more, or
    // there is nothing to compare.
    if let Some(rows) = options.history_rows
        && rows <= 2 * options.history_n
    {
        return Err(BenchError::Usage(format!(
            "`--history-rows` must exceed twice `--history-n` ({}), the rows a cold apply of the \
             history row's units leaves; not {rows}",
            2 * options.history_n
        )));
    }
    options.sizes.sort_unstable();
    options.sizes.dedup();
    options.durable_sizes.sort_unstable();
    options.durable_sizes.dedup();
    options.server_sizes.sort_unstable();
    options.server_sizes.dedup();
    options.compile_sizes.sort_unstable();
    options.compile_sizes.dedup();
    options.databases.sort_unstable();
    options.databases.dedup();
    Ok(Command::Bench(options))
}

fn parse_profile(args: &[String]) -> Result<ProfileArgs, BenchError> {
    let defaults = Options::default();
    let (mut postgres_url, mut mysql_url) = (defaults.postgres_url, defaults.mysql_url);
    let mut rest = Vec::new();
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let url = match flag.as_str() {
            "--postgres-url" => &mut postgres_url,
            "--mysql-url" => &mut mysql_url,
            _ => {
                rest.push(flag.clone());
                continue;
            }
        };
        *url = args
            .next()
            .ok_or_else(|| BenchError::Usage(format!("`{flag}` needs a value")))?
            .clone();
    }
    // The same flags as a child's, less the working directory the profile creates.
    rest.extend(["--workdir".to_owned(), ".".to_owned()]);
    let child = parse_child(&rest)?;
    Ok(ProfileArgs {
        tool: child.tool,
        mode: child.mode,
        database: child.database,
        n: child.n,
        postgres_url,
        mysql_url,
    })
}

fn parse_child(args: &[String]) -> Result<ChildArgs, BenchError> {
    let (mut tool, mut mode, mut database, mut n, mut workdir) = (None, None, None, None, None);
    let mut rest = args.iter();
    while let Some(flag) = rest.next() {
        let value = rest
            .next()
            .ok_or_else(|| BenchError::Usage(format!("`{flag}` needs a value")))?;
        match flag.as_str() {
            "--tool" => tool = Some(parsed(flag, value)?),
            "--mode" => mode = Some(parsed(flag, value)?),
            "--database" => database = Some(parsed(flag, value)?),
            "--n" => n = Some(positive(flag, value)?),
            "--workdir" => workdir = Some(PathBuf::from(value)),
            _ => return Err(BenchError::Usage(format!("unknown child option `{flag}`"))),
        }
    }
    let missing = |name: &str| BenchError::Usage(format!("`child` needs `{name}`"));
    Ok(ChildArgs {
        tool: tool.ok_or_else(|| missing("--tool"))?,
        mode: mode.ok_or_else(|| missing("--mode"))?,
        database: database.ok_or_else(|| missing("--database"))?,
        n: n.ok_or_else(|| missing("--n"))?,
        workdir: workdir.ok_or_else(|| missing("--workdir"))?,
    })
}

fn parsed<T: FromStr<Err = String>>(flag: &str, value: &str) -> Result<T, BenchError> {
    value
        .parse()
        .map_err(|error| BenchError::Usage(format!("`{flag}`: {error}")))
}

fn positive(flag: &str, value: &str) -> Result<usize, BenchError> {
    match value.parse::<usize>() {
        Ok(number) if number > 0 => Ok(number),
        _ => Err(BenchError::Usage(format!(
            "`{flag}` takes a positive whole number, not `{value}`"
        ))),
    }
}

/// `SxI`: S services of I instances each, both positive.
fn services_by_instances(flag: &str, value: &str) -> Result<(usize, usize), BenchError> {
    let bad = || {
        BenchError::Usage(format!(
            "`{flag}` takes services x instances, such as `50x4`, or `none`; not `{value}`"
        ))
    };
    let (services, instances) = value.split_once('x').ok_or_else(bad)?;
    match (services.trim().parse(), instances.trim().parse()) {
        (Ok(services), Ok(instances)) if services > 0 && instances > 0 => Ok((services, instances)),
        _ => Err(bad()),
    }
}

fn list<T: FromStr>(flag: &str, value: &str) -> Result<Vec<T>, BenchError>
where
    T::Err: std::fmt::Display,
{
    let items = value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            item.replace('_', "")
                .parse()
                .map_err(|error| BenchError::Usage(format!("`{flag}`: `{item}`: {error}")))
        })
        .collect::<Result<Vec<T>, _>>()?;
    if items.is_empty() {
        return Err(BenchError::Usage(format!(
            "`{flag}` needs at least one value"
        )));
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn options_are_parsed() {
        let Command::Bench(options) = parse(&args(
            "--sizes 5000,100 --runs 2 --databases sqlite --out x.md --durable-sizes none",
        ))
        .expect("valid") else {
            panic!("not a bench command");
        };
        assert_eq!(options.sizes, vec![100, 5_000]);
        assert_eq!(options.runs_for(100), 2);
        assert_eq!(options.runs_for(5_000), 5);
        assert_eq!(options.databases, vec![Database::Sqlite]);
        assert_eq!(options.out, PathBuf::from("x.md"));
        assert!(options.durable_sizes.is_empty());
        assert_eq!(options.server_sizes, vec![100, 1_000]);
        assert_eq!(options.load, Some((50, 4)));
        assert_eq!(options.history_rows, Some(100_000));
        let Command::Bench(options) = parse(&args(
            "--databases mariadb,sqlite,postgres --mysql-url mysql://u@h:1/d --history-rows 20_000",
        ))
        .expect("valid") else {
            panic!("not a bench command");
        };
        assert_eq!(options.databases, Database::ALL.to_vec());
        assert_eq!(options.mysql_url, "mysql://u@h:1/d");
        assert_eq!(options.history_rows, Some(20_000));
        let Command::Bench(options) = parse(&args("--history-rows none")).expect("valid") else {
            panic!("not a bench command");
        };
        assert_eq!(options.history_rows, None);
        let Command::Bench(options) =
            parse(&args("--server-sizes none --load 3x2 --load-n 7")).expect("valid")
        else {
            panic!("not a bench command");
        };
        assert!(options.server_sizes.is_empty());
        assert_eq!((options.load, options.load_n), (Some((3, 2)), 7));
        let Command::Bench(options) = parse(&args("--load none")).expect("valid") else {
            panic!("not a bench command");
        };
        assert_eq!(options.load, None);
        assert_eq!(options.compile_sizes, vec![10, 100, 1_000]);
        let Command::Bench(options) =
            parse(&args("--compile-sizes 100,10 --compile-runs 2")).expect("valid")
        else {
            panic!("not a bench command");
        };
        assert_eq!(
            (options.compile_sizes, options.compile_runs),
            (vec![10, 100], 2)
        );
        let Command::Bench(options) = parse(&args("--compile-sizes none")).expect("valid") else {
            panic!("not a bench command");
        };
        assert!(options.compile_sizes.is_empty());
        let Command::Compile(options) =
            parse(&args("compile --compile-sizes 10 --compile-dir /tmp/c")).expect("valid")
        else {
            panic!("not a compile command");
        };
        assert_eq!(options.compile_sizes, vec![10]);
        assert_eq!(options.compile_dir, Some(PathBuf::from("/tmp/c")));
        assert_eq!(parse(&args("serve")).expect("valid"), Command::Serve);
    }

    #[test]
    fn child_arguments_are_parsed() {
        let parsed = parse(&args(
            "child --tool refinery --mode warm --database postgres --n 10 --workdir /tmp/x",
        ))
        .expect("valid");
        assert_eq!(
            parsed,
            Command::Child(ChildArgs {
                tool: Tool::Refinery,
                mode: Mode::Warm,
                database: Database::Postgres,
                n: 10,
                workdir: PathBuf::from("/tmp/x"),
            })
        );
    }

    #[test]
    fn profile_arguments_take_either_server_url() {
        let Command::Profile(profile) = parse(&args(
            "profile --tool flamingock --mode warm --database mariadb --n 10 --mysql-url mysql://x@y/z",
        ))
        .expect("valid") else {
            panic!("not a profile command");
        };
        assert_eq!(profile.database, Database::Mariadb);
        assert_eq!(profile.mysql_url, "mysql://x@y/z");
        assert_eq!(profile.postgres_url, Options::default().postgres_url);
    }

    #[test]
    fn mistakes_are_usage_errors() {
        for bad in [
            "--runs 0",
            "--runs",
            "--sizes 1,x",
            "--databases oracle",
            "--what 1",
            "child --tool x",
            "child --tool floor --mode cold",
            "--load 50",
            "--load 0x4",
            "--load x4",
            "--server-sizes 0",
            "--load-n 0",
            "--history-rows 2000",
            "--history-rows 30 --history-n 20",
            "--history-rows lots",
            "--mysql-url",
            "profile --tool floor --mode cold --database mariadb --n 1 --mysql-url",
            "--compile-sizes 0",
            "--compile-runs 0",
        ] {
            assert!(
                matches!(parse(&args(bad)), Err(BenchError::Usage(_))),
                "{bad}"
            );
        }
    }
}
