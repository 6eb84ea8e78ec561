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

/// A person's browser without a browser: the dashboard's cookies kept by hand, redirects not
/// followed (so that each reply can be checked).
pub struct Visitor {
    pub client: reqwest::Client,
    pub base: String,
    /// `name=value` pairs the dashboard set.
    pub cookies: Vec<(String, String)>,
}

/// A reply of the dashboard.
pub struct Reply {
    pub status: reqwest::StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Reply {
    /// The `Location` of a redirect.
    pub fn location(&self) -> &str {
        self.headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The `Set-Cookie` lines.
    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect()
    }

    /// The value of the first hidden field `name` on the page.
    pub fn hidden(&self, name: &str) -> Option<String> {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self.body.find(&marker)? + marker.len();
        let end = self.body[start..].find('"')?;
        Some(self.body[start..start + end].to_owned())
    }
}

/// `application/x-www-form-urlencoded` of `fields`.
pub fn form_body(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Percent-encodes everything but the unreserved characters.
pub fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

impl Visitor {
    pub fn new(base: &str) -> Visitor {
        Visitor {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(30))
                .build()
                .expect("a client"),
            base: base.to_owned(),
            cookies: Vec::new(),
        }
    }

    fn keep(&mut self, reply: &Reply) {
        for line in reply.set_cookies() {
            let pair = line.split(';').next().unwrap_or("");
            if let Some((name, value)) = pair.split_once('=') {
                self.cookies.retain(|(n, _)| n != name);
                if !value.is_empty() {
                    self.cookies.push((name.to_owned(), value.to_owned()));
                }
            }
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Sends `request` with the kept cookies, keeping the ones the reply sets.
    pub async fn send_with(&mut self, request: reqwest::RequestBuilder) -> Reply {
        let request = if self.cookies.is_empty() {
            request
        } else {
            request.header("cookie", self.cookie_header())
        };
        let response = request.send().await.expect("the server answers");
        let reply = Reply {
            status: response.status(),
            headers: response.headers().clone(),
            body: response.text().await.expect("a body"),
        };
        self.keep(&reply);
        reply
    }

    pub async fn get(&mut self, path: &str) -> Reply {
        let request = self.client.get(format!("{}{path}", self.base));
        self.send_with(request).await
    }

    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Reply {
        let request = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_body(fields));
        self.send_with(request).await
    }

    /// Signs in with `token` through the sign-in page; the reply of the form's POST.
    pub async fn sign_in(&mut self, token: &str) -> Reply {
        let page = self.get("/dashboard/sign-in").await;
        assert_eq!(page.status, reqwest::StatusCode::OK, "{}", page.body);
        let csrf = page.hidden("csrf").expect("the sign-in form's CSRF field");
        self.post("/dashboard/sign-in", &[("token", token), ("csrf", &csrf)])
            .await
    }

    /// The session's CSRF secret, from any page's sign-out form.
    pub async fn csrf(&mut self) -> String {
        let page = self.get("/dashboard").await;
        page.hidden("csrf")
            .expect("a signed-in page has the CSRF field")
    }
}

/// Units of the seeded scope: one applied, one that fails (non-transactional, manual
/// intervention: blocked from then on) and one after it, never reached.
pub fn seeded_units() -> Vec<&'static flamingock_core::ChangeUnit> {
    use flamingock_core::testing::UnitBuilder;
    vec![
        UnitBuilder::new("create-clients", "0001", "ana")
            .transactional(false)
            .execute_sync(|_| Ok(()))
            .system_version("1.0.0")
            .build(),
        UnitBuilder::new("backfill-emails", "0002", "bob")
            .transactional(false)
            .execute_sync(|_| Err("the mail service answered 503, with \"quotes\", commas".into()))
            .build(),
        UnitBuilder::new("add-index", "0003", "ana")
            .transactional(false)
            .execute_sync(|_| Ok(()))
            .build(),
    ]
}

/// Runs [`seeded_units`] against `service`/`environment` on `server` through the real engine
/// and the HTTP store: the plan is reported, `create-clients` applied, `backfill-emails` failed
/// (blocked), `add-index` pending.
pub async fn seed_blocked(server: &Server, runner: &str, service: &str, environment: &str) {
    let store = flamingock_client::HttpAuditStore::new(&server.url(service, environment), runner)
        .expect("a store");
    let engine = flamingock_core::Engine::new(std::sync::Arc::new(store));
    let error = engine
        .run(seeded_units())
        .await
        .expect_err("the second unit fails");
    assert!(
        matches!(error, flamingock_core::Error::UnitFailed { .. }),
        "{error}"
    );
}
