//! The `flamingock-server` the benchmark measures through: a process of its own (this binary's
//! hidden `serve` sub-command, so that its peak RSS is the server's alone), serving the real
//! router on PostgreSQL with one layer added outside it that records how long each request took,
//! from the request read to the reply ready, in the server.
//!
//! The parent starts it with [`ServerProcess::start`], which reads the line the server prints
//! once it listens (`FLAMINGOCK_BENCH_SERVER <address> <admin token>`), asks it for the recorded
//! latencies ([`ServerProcess::take_latencies`], a route outside the API) and reads its peak RSS
//! from `/proc`.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStderr, Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::Response;
use axum::routing::get;
use flamingock_client::wire::Role;
use flamingock_server::{AppState, ServerDb};

use crate::cli::URL_ENV;
use crate::error::BenchError;

/// The prefix of the line the server prints once it accepts requests.
const READY_PREFIX: &str = "FLAMINGOCK_BENCH_SERVER ";

/// Where the server hands out (and forgets) the latencies it recorded.
const LATENCIES_PATH: &str = "/__bench/latencies";

/// Request latencies recorded by the server, in microseconds.
type Latencies = Arc<Mutex<Vec<u32>>>;

/// Runs the `serve` sub-command: the server on the database in [`URL_ENV`], on a free port of
/// 127.0.0.1, with a fresh unscoped admin token; until killed.
pub fn serve() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start a tokio runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve_until_killed()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn serve_until_killed() -> Result<(), String> {
    let url = std::env::var(URL_ENV)
        .map_err(|_| format!("the server needs its database URL in {URL_ENV}"))?;
    let db = ServerDb::open(&url)
        .await
        .map_err(|e| format!("opening the server's database: {e}"))?;
    let admin = flamingock_server::tokens::create(&db, Role::Admin, None, None)
        .await
        .map_err(|e| format!("creating the benchmark's admin token: {e}"))?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("cannot listen on 127.0.0.1: {e}"))?;
    let address = listener
        .local_addr()
        .map_err(|e| format!("reading the listening address: {e}"))?;
    let latencies = Latencies::default();
    let api = flamingock_server::router(AppState { db })
        .layer(from_fn_with_state(latencies.clone(), record_latency));
    let app = Router::new()
        .route(LATENCIES_PATH, get(take_latencies))
        .with_state(latencies)
        .merge(api);
    println!("{READY_PREFIX}{address} {}", admin.token);
    axum::serve(listener, app)
        .await
        .map_err(|e| format!("serving: {e}"))
}

async fn record_latency(
    State(latencies): State<Latencies>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let response = next.run(request).await;
    let micros = u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX);
    if let Ok(mut recorded) = latencies.lock() {
        recorded.push(micros);
    }
    response
}

async fn take_latencies(State(latencies): State<Latencies>) -> axum::Json<Vec<u32>> {
    let taken = latencies
        .lock()
        .map(|mut recorded| std::mem::take(&mut *recorded))
        .unwrap_or_default();
    axum::Json(taken)
}

/// A running server process; killed when dropped.
pub struct ServerProcess {
    child: Child,
    stderr: Option<ChildStderr>,
    /// `http://127.0.0.1:<port>`.
    pub base_url: String,
    /// An unscoped admin token (it may run, lock and read every scope).
    pub token: String,
}

impl ServerProcess {
    /// Starts `exe serve` on the database `database_url` and waits until it listens.
    pub fn start(exe: &std::path::Path, database_url: &str) -> Result<ServerProcess, BenchError> {
        let failed = |detail: String| BenchError::Child {
            what: "the flamingock-server process".to_owned(),
            detail,
        };
        let mut child = Command::new(exe)
            .arg("serve")
            .env(URL_ENV, database_url)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| failed(format!("cannot start {}: {e}", exe.display())))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| failed("no stdout".into()))?;
        let mut stderr = child.stderr.take();
        let mut line = String::new();
        let read = BufReader::new(stdout).read_line(&mut line);
        let ready = line.trim_end().strip_prefix(READY_PREFIX).and_then(|rest| {
            let (address, token) = rest.split_once(' ')?;
            Some((format!("http://{address}"), token.to_owned()))
        });
        match (read, ready) {
            (Ok(_), Some((base_url, token))) => Ok(ServerProcess {
                child,
                stderr,
                base_url,
                token,
            }),
            (read, _) => {
                let _ = child.kill();
                let _ = child.wait();
                let mut message = String::new();
                if let Some(stderr) = stderr.as_mut() {
                    let _ = stderr.read_to_string(&mut message);
                }
                Err(failed(format!(
                    "it did not report its address ({}): {}",
                    match read {
                        Ok(_) => format!("it printed `{}`", line.trim_end()),
                        Err(error) => format!("reading its output: {error}"),
                    },
                    message.trim()
                )))
            }
        }
    }

    /// The audit store URL of one service and environment on this server.
    pub fn scope_url(&self, service: &str, environment: &str) -> String {
        format!("{}/{service}/{environment}", self.base_url)
    }

    /// The latencies recorded since the last call, in microseconds.
    pub async fn take_latencies(&self) -> Result<Vec<u32>, BenchError> {
        let failed = |detail: String| BenchError::Child {
            what: "the flamingock-server process".to_owned(),
            detail,
        };
        let reply = reqwest::Client::new()
            .get(format!("{}{LATENCIES_PATH}", self.base_url))
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .map_err(|e| failed(format!("asking for its latencies: {e}")))?;
        reply
            .json()
            .await
            .map_err(|e| failed(format!("reading its latencies: {e}")))
    }

    /// The server's peak resident set so far (`VmHWM`), in KiB.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        crate::child::parse_vm_hwm(&status)
    }

    /// Fails with the server's last words if it is no longer running.
    pub fn check_running(&mut self) -> Result<(), BenchError> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => {
                let mut message = String::new();
                if let Some(stderr) = self.stderr.as_mut() {
                    let _ = stderr.read_to_string(&mut message);
                }
                Err(BenchError::Child {
                    what: "the flamingock-server process".to_owned(),
                    detail: format!("it exited with {status}: {}", message.trim()),
                })
            }
            Err(error) => Err(BenchError::Child {
                what: "the flamingock-server process".to_owned(),
                detail: format!("cannot see whether it runs: {error}"),
            }),
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value at quantile `q` (0 to 1) of sorted values, nearest rank.
pub fn quantile(sorted: &[u32], q: f64) -> Option<u32> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_nearest_rank() {
        let values: Vec<u32> = (1..=100).collect();
        assert_eq!(quantile(&values, 0.5), Some(50));
        assert_eq!(quantile(&values, 0.99), Some(99));
        assert_eq!(quantile(&values, 1.0), Some(100));
        assert_eq!(quantile(&values, 0.0), Some(1));
        assert_eq!(quantile(&[7], 0.99), Some(7));
        assert_eq!(quantile(&[], 0.5), None);
    }
}
