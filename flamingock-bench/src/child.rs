//! One measurement in a process of its own, so that its peak RSS is the tool's: run the job,
//! then print one result line (`FLAMINGOCK_BENCH_RESULT {json}`) for the parent to read.

use std::process::ExitCode;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::cli::{ChildArgs, URL_ENV};
use crate::error::BenchError;
use crate::tools::{self, Job};
use crate::workload::Database;

/// The prefix of the line a child reports its result on.
pub const RESULT_PREFIX: &str = "FLAMINGOCK_BENCH_RESULT ";

/// What one child measured.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ChildResult {
    /// The tool's timed part, in microseconds.
    pub elapsed_us: u64,
    /// The process's peak resident set (`VmHWM`), in KiB; `None` where the OS does not say.
    pub peak_rss_kib: Option<u64>,
}

impl ChildResult {
    /// The timed part.
    pub fn elapsed(&self) -> Duration {
        Duration::from_micros(self.elapsed_us)
    }

    /// Reads the result line out of a child's standard output.
    pub fn from_output(stdout: &str) -> Option<ChildResult> {
        stdout
            .lines()
            .rev()
            .find_map(|line| line.strip_prefix(RESULT_PREFIX))
            .and_then(|json| serde_json::from_str(json).ok())
    }
}

/// Runs the child sub-command: the exit code says whether the measurement succeeded.
pub fn run(args: ChildArgs) -> ExitCode {
    match measure(args) {
        Ok(result) => match serde_json::to_string(&result) {
            Ok(json) => {
                println!("{RESULT_PREFIX}{json}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("error: cannot encode the result: {error}");
                ExitCode::FAILURE
            }
        },
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn measure(args: ChildArgs) -> Result<ChildResult, BenchError> {
    let url = match args.database {
        Database::Sqlite => Job::sqlite_url(&args.workdir),
        Database::Postgres | Database::Mariadb => std::env::var(URL_ENV).map_err(|_| {
            BenchError::Usage(format!(
                "a {} child needs its database URL in {URL_ENV}",
                args.database
            ))
        })?,
    };
    let job = Job {
        tool: args.tool,
        mode: args.mode,
        database: args.database,
        n: args.n,
        url,
        workdir: args.workdir,
    };
    crate::trace::install_if_asked();
    // The multi-threaded runtime an application's `#[tokio::main]` starts.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(BenchError::io("starting a tokio runtime in", &job.workdir))?;
    let elapsed = runtime.block_on(tools::run(&job))?;
    drop(runtime);
    Ok(ChildResult {
        elapsed_us: u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
        peak_rss_kib: peak_rss_kib(),
    })
}

/// The process's peak resident set size so far, from `/proc/self/status` (Linux).
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_vm_hwm(&status)
}

pub fn parse_vm_hwm(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_hwm_is_read_in_kib() {
        let status = "Name:\tx\nVmPeak:\t  20000 kB\nVmHWM:\t    1234 kB\nVmRSS:\t 1000 kB\n";
        assert_eq!(parse_vm_hwm(status), Some(1234));
        assert_eq!(parse_vm_hwm("Name:\tx\n"), None);
    }

    #[test]
    fn the_result_line_is_found_among_other_output() {
        let result = ChildResult {
            elapsed_us: 1500,
            peak_rss_kib: Some(9000),
        };
        let json = serde_json::to_string(&result).expect("json");
        let stdout = format!("some log line\n{RESULT_PREFIX}{json}\n");
        assert_eq!(ChildResult::from_output(&stdout), Some(result));
        assert_eq!(ChildResult::from_output("nothing here"), None);
        assert_eq!(result.elapsed(), Duration::from_micros(1500));
    }
}
