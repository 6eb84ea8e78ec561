//! `flamingock-bench`: Flamingock measured beside sqlx's migrator, refinery and the database's
//! own floor, on SQLite, PostgreSQL and MariaDB: cold apply, warm start (after a short and a long
//! history too), fleet start and peak memory.
//!
//! The full run writes `BENCHMARKS.md`:
//!
//! ```sh
//! cargo run --release -p flamingock-bench -- --out BENCHMARKS.md
//! ```
//!
//! Each measurement runs in a child process (this binary with the hidden `child` sub-command), so
//! that its peak RSS is one tool's alone.

use std::process::ExitCode;

mod child;
mod cli;
mod compile;
mod error;
mod fresh;
mod history;
mod machine;
mod macro_units;
mod markdown;
mod orchestrate;
mod report;
mod report_compile;
mod results;
mod server;
mod sql_files;
mod tools;
mod trace;
mod workload;

use cli::Command;
use error::BenchError;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match cli::parse(&args) {
        Ok(Command::Help) => {
            print!("{}", cli::USAGE);
            ExitCode::SUCCESS
        }
        Ok(Command::Child(args)) => child::run(args),
        Ok(Command::Compile(options)) => match compile::measure(&options) {
            Ok(compile) => {
                let mut out = String::new();
                report_compile::render(
                    &mut out,
                    &results::Results {
                        compile: Some(compile),
                        ..results::Results::default()
                    },
                );
                print!("{out}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("error: {error}");
                ExitCode::FAILURE
            }
        },
        Ok(Command::Serve) => server::serve(),
        Ok(Command::Profile(args)) => match orchestrate::profile(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("error: {error}");
                ExitCode::FAILURE
            }
        },
        Ok(Command::Bench(options)) => match bench(&options) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("error: {error}");
                ExitCode::FAILURE
            }
        },
        Err(error) => {
            eprintln!("error: {error}\n\n{}", cli::USAGE);
            ExitCode::from(2)
        }
    }
}

/// Measures, prints the report and writes it to `options.out`.
fn bench(options: &cli::Options) -> Result<(), BenchError> {
    let (mut results, facts) = orchestrate::measure(options)?;
    if !options.compile_sizes.is_empty() {
        results.compile = Some(compile::measure(options)?);
    }
    let machine = machine::Machine::describe(facts.postgres_version, facts.mariadb);
    let markdown = report::render(&results, &machine, options);
    println!("{markdown}");
    std::fs::write(&options.out, &markdown)
        .map_err(BenchError::io("writing the report to", &options.out))?;
    eprintln!("report written to {}", options.out.display());
    Ok(())
}
