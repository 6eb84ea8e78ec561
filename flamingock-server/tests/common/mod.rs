//! What the server tests share: the server binary started as a real process on a database of
//! its own, tokens made by its `token create` command, and raw API calls.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use flamingock_testkit::{Backend, FreshDb};

pub const BIN: &str = env!("CARGO_BIN_EXE_flamingock-server");

/// A server process; killed when dropped.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    pub listen: String,
    pub database_url: String,
}

impl Server {
    /// Starts `flamingock-server serve` on `database_url`, on a free port (or on `listen`).
    pub fn start(database_url: &str) -> Server {
        Self::start_on(database_url, "127.0.0.1:0")
    }

    pub fn start_on(database_url: &str, listen: &str) -> Server {
        Self::spawn(database_url, listen, Stdio::inherit())
    }

    /// Starts a server whose log (standard error) goes to `log`.
    pub fn start_logged(database_url: &str, log: &std::path::Path) -> Server {
        let file = std::fs::File::create(log).expect("the log file");
        Self::spawn(database_url, "127.0.0.1:0", Stdio::from(file))
    }

    fn spawn(database_url: &str, listen: &str, stderr: Stdio) -> Server {
        let mut child = Command::new(BIN)
            .args(["serve", "--listen", listen])
            .env("FLAMINGOCK_SERVER_DATABASE_URL", database_url)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("the server binary starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the server prints its address");
        let address = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("the server did not start: {line:?}"))
            .to_owned();
        Server {
            child,
            base: format!("http://{address}"),
            listen: address,
            database_url: database_url.to_owned(),
        }
    }

    /// The audit store URL of `service`/`environment` on this server.
    pub fn url(&self, service: &str, environment: &str) -> String {
        format!("{}/{service}/{environment}", self.base)
    }

    /// Kills the process (SIGKILL) and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A token made by `flamingock-server token create`.
pub fn token(database_url: &str, role: &str, scope: Option<(&str, &str)>) -> String {
    let mut command = Command::new(BIN);
    command
        .args([
            "--database-url",
            database_url,
            "token",
            "create",
            "--role",
            role,
        ])
        .stderr(Stdio::null());
    if let Some((service, environment)) = scope {
        command.args(["--service", service, "--environment", environment]);
    }
    let output = command.output().expect("token create runs");
    assert!(output.status.success(), "token create failed: {output:?}");
    String::from_utf8(output.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}

/// A fresh database for the server: a SQLite file, or a new PostgreSQL database (`None`: skipped,
/// said loudly by the testkit).
pub async fn fresh(backend: Backend, hint: &str) -> Option<FreshDb> {
    FreshDb::create(backend, hint).await
}

/// An HTTP client for raw calls.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("a client")
}

pub mod reply_dropper;
