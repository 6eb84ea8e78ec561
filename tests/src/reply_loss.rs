//! A TCP proxy for tests that loses the server's reply to one chosen statement: it forwards the
//! statement, lets the server execute it, drops the answer and cuts the client, so a write reaches
//! the database while the client never learns its outcome (the reply-loss matrix of issue 12).
//!
//! It speaks enough of the PostgreSQL and MySQL/MariaDB wire protocols to see each statement the
//! client executes (simple or prepared, with its bound values), and forces TLS off so it can read
//! them. Every execution is recorded ([`ReplyLossProxy::executions`]); set
//! `FLAMINGOCK_REPLY_LOSS_TRACE=1` to print every client message on stderr as well.
//!
//! ```no_run
//! # async fn demo(database_url: &str) {
//! use std::time::Duration;
//! use flamingock_tests::reply_loss::{ReplyLossProxy, Trigger};
//!
//! let proxy = ReplyLossProxy::in_front_of(database_url).await;
//! proxy
//!     .arm(Trigger::statement_contains("COMMIT"))
//!     .refuse_reconnects_for(Duration::from_secs(3));
//! let url = proxy.url_for(database_url);
//! // ... run something on `url` ...
//! assert!(proxy.fired());
//! # }
//! ```

mod mysql;
mod postgres;
mod trigger;
mod url;

use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub use trigger::{Execution, Trigger};
use url::UrlParts;

/// The wire protocol the proxy speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    /// MySQL and MariaDB.
    MySql,
}

impl Backend {
    /// The backend of a `postgres://`/`postgresql://` or `mysql://`/`mariadb://` URL.
    pub fn of_url(url: &str) -> Option<Backend> {
        let scheme = url.split_once("://")?.0;
        match scheme {
            "postgres" | "postgresql" => Some(Backend::Postgres),
            "mysql" | "mariadb" => Some(Backend::MySql),
            _ => None,
        }
    }

    fn default_port(self) -> u16 {
        match self {
            Backend::Postgres => 5432,
            Backend::MySql => 3306,
        }
    }
}

/// A running proxy; dropping it stops accepting (open connections end with their clients).
pub struct ReplyLossProxy {
    addr: SocketAddr,
    backend: Backend,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

/// Options of an armed trigger; each takes effect at once.
pub struct Arming<'a> {
    shared: &'a Shared,
}

impl Arming<'_> {
    /// After the reply is lost, new connections are refused (accepted and closed at once) for
    /// `duration`.
    pub fn refuse_reconnects_for(self, duration: Duration) -> Self {
        self.shared.lock().refusal_on_fire = Some(Refusal::For(duration));
        self
    }

    /// After the reply is lost, new connections are refused until
    /// [`ReplyLossProxy::accept_reconnects`].
    pub fn refuse_reconnects_until_released(self) -> Self {
        self.shared.lock().refusal_on_fire = Some(Refusal::UntilReleased);
        self
    }

    /// The client's connection is cut the moment the chosen statement is forwarded, while the
    /// server still executes it (PostgreSQL only): the client learns of the failure before the
    /// statement has finished, as when a connection breaks during a slow `COMMIT`.
    pub fn cut_client_at_once(self) -> Self {
        self.shared.lock().cut_client_at_once = true;
        self
    }

    /// When the reply is lost, every other open connection through the proxy is cut too (as when
    /// the network fails), so a pool cannot answer the outcome from an idle connection.
    pub fn cut_other_connections(self) -> Self {
        self.shared.lock().cut_others_on_fire = true;
        self
    }
}

impl ReplyLossProxy {
    /// Listens on a free port of 127.0.0.1 and relays to `upstream`, passing everything through
    /// until [`ReplyLossProxy::arm`].
    pub async fn start(backend: Backend, upstream: SocketAddr) -> ReplyLossProxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the reply-loss proxy");
        let addr = listener.local_addr().expect("the proxy's address");
        let (cut_all, _) = watch::channel(0u64);
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            cut_all,
            trace: std::env::var("FLAMINGOCK_REPLY_LOSS_TRACE").is_ok_and(|v| v == "1"),
        });
        let task = tokio::spawn(accept_loop(listener, backend, upstream, shared.clone()));
        ReplyLossProxy {
            addr,
            backend,
            shared,
            task,
        }
    }

    /// A proxy in front of the server of `database_url` (backend from its scheme, upstream from its
    /// host and port).
    pub async fn in_front_of(database_url: &str) -> ReplyLossProxy {
        let backend = Backend::of_url(database_url)
            .unwrap_or_else(|| panic!("not a PostgreSQL or MySQL URL: {database_url}"));
        let parts = UrlParts::split(database_url);
        let host_port = match parts.host_port.rsplit_once(':') {
            Some((_, port)) if port.parse::<u16>().is_ok() => parts.host_port.to_owned(),
            _ => format!("{}:{}", parts.host_port, backend.default_port()),
        };
        let upstream = tokio::net::lookup_host(host_port.as_str())
            .await
            .unwrap_or_else(|e| panic!("resolve {host_port}: {e}"))
            .next()
            .unwrap_or_else(|| panic!("{host_port} resolves to no address"));
        ReplyLossProxy::start(backend, upstream).await
    }

    /// The address to connect to instead of the server.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `database_url` pointing at the proxy (user, database and other options kept), with TLS
    /// disabled so the proxy can read the statements.
    pub fn url_for(&self, database_url: &str) -> String {
        let parts = UrlParts::split(database_url);
        let tls_off = match self.backend {
            Backend::Postgres => "sslmode=disable",
            Backend::MySql => "ssl-mode=disabled",
        };
        let mut query: Vec<&str> = parts
            .query
            .split('&')
            .filter(|kv| {
                let key = kv.split('=').next().unwrap_or_default();
                !kv.is_empty() && !matches!(key, "sslmode" | "ssl-mode" | "ssl_mode")
            })
            .collect();
        query.push(tls_off);
        format!(
            "{}{}{}?{}",
            parts.scheme_and_user,
            self.addr,
            parts.path,
            query.join("&")
        )
    }

    /// Arms `trigger` (replacing any armed one); the reply to the execution it picks is lost.
    pub fn arm(&self, trigger: Trigger) -> Arming<'_> {
        let mut state = self.shared.lock();
        state.matched = 0;
        state.primed.clear();
        state.trigger = Some(trigger);
        state.refusal_on_fire = None;
        state.cut_others_on_fire = false;
        drop(state);
        Arming {
            shared: &self.shared,
        }
    }

    /// Disarms the trigger if it has not fired yet.
    pub fn disarm(&self) {
        self.shared.lock().trigger = None;
    }

    /// Whether a reply was lost: the statement executed, its answer dropped, its client cut.
    pub fn fired(&self) -> bool {
        self.shared.lock().fired.is_some()
    }

    /// The execution whose reply was lost, once [`ReplyLossProxy::fired`].
    pub fn fired_on(&self) -> Option<Execution> {
        self.shared.lock().fired.clone()
    }

    /// Accepts new connections again (ends any refusal now).
    pub fn accept_reconnects(&self) {
        self.shared.lock().refusing = None;
    }

    /// Whether new connections are being refused right now.
    pub fn refusing_reconnects(&self) -> bool {
        self.shared.lock().is_refusing(Instant::now())
    }

    /// Every execution seen so far, in order (all connections).
    pub fn executions(&self) -> Vec<Execution> {
        self.shared.lock().executions.clone()
    }
}

impl Drop for ReplyLossProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Debug, Clone, Copy)]
enum Refusal {
    For(Duration),
    UntilReleased,
}

#[derive(Debug, Clone, Copy)]
enum Refusing {
    Until(Instant),
    UntilReleased,
}

#[derive(Default)]
struct State {
    trigger: Option<Trigger>,
    matched: usize,
    /// Connections that executed the trigger's `after` condition since arming.
    primed: HashSet<u64>,
    refusal_on_fire: Option<Refusal>,
    cut_others_on_fire: bool,
    cut_client_at_once: bool,
    /// The execution whose reply is being lost (set when chosen, before it reaches the server).
    chosen: Option<Execution>,
    fired: Option<Execution>,
    refusing: Option<Refusing>,
    executions: Vec<Execution>,
    connections: u64,
}

impl State {
    fn is_refusing(&self, now: Instant) -> bool {
        match self.refusing {
            None => false,
            Some(Refusing::UntilReleased) => true,
            Some(Refusing::Until(deadline)) => now < deadline,
        }
    }
}

/// What the accept loop and every connection share.
struct Shared {
    state: Mutex<State>,
    /// Bumped to cut every open connection.
    cut_all: watch::Sender<u64>,
    trace: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking relay task must not hide the state from the test.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records an execution about to be forwarded; true when its reply is the one to lose.
    fn observe(&self, execution: Execution) -> bool {
        let mut state = self.lock();
        let state = &mut *state;
        let primed = state.primed.contains(&execution.connection);
        let chosen = match &state.trigger {
            Some(trigger) if trigger.matches(&execution) && (primed || trigger.after.is_none()) => {
                state.matched += 1;
                state.matched == trigger.nth
            }
            _ => false,
        };
        if let Some(earlier) = state.trigger.as_ref().and_then(|t| t.after.as_deref())
            && earlier.matches(&execution)
        {
            state.primed.insert(execution.connection);
        }
        if chosen {
            state.trigger = None;
            state.chosen = Some(execution.clone());
        }
        if self.trace {
            eprintln!(
                "reply-loss proxy: {execution}{}",
                if chosen { "  <- reply lost" } else { "" }
            );
        }
        state.executions.push(execution);
        chosen
    }

    /// The chosen execution ran and its reply was dropped: refusal starts, others are cut.
    fn reply_lost(&self) {
        let mut state = self.lock();
        state.fired = state.chosen.take();
        state.refusing = match state.refusal_on_fire {
            Some(Refusal::For(duration)) => Some(Refusing::Until(Instant::now() + duration)),
            Some(Refusal::UntilReleased) => Some(Refusing::UntilReleased),
            None => state.refusing,
        };
        if state.cut_others_on_fire {
            self.cut_all.send_modify(|generation| *generation += 1);
        }
    }

    fn trace(&self, connection: u64, message: fmt::Arguments<'_>) {
        if self.trace {
            eprintln!("reply-loss proxy: #{connection} {message}");
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    backend: Backend,
    upstream: SocketAddr,
    shared: Arc<Shared>,
) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            return;
        };
        let connection = {
            let mut state = shared.lock();
            if state.is_refusing(Instant::now()) {
                drop(client);
                continue;
            }
            state.connections += 1;
            state.connections
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let Ok(server) = TcpStream::connect(upstream).await else {
                return;
            };
            let mut cut = shared.cut_all.subscribe();
            let relay = Relay {
                connection,
                shared: &shared,
            };
            tokio::select! {
                _ = async {
                    match backend {
                        Backend::Postgres => postgres::relay(relay, client, server).await,
                        Backend::MySql => mysql::relay(relay, client, server).await,
                    }
                } => {}
                _ = cut.changed() => {}
            }
        });
    }
}

/// One client connection's view of the proxy, handed to the protocol relays.
#[derive(Clone, Copy)]
struct Relay<'a> {
    connection: u64,
    shared: &'a Shared,
}

impl Relay<'_> {
    fn observe(&self, prepared: bool, statement: &str, params: Vec<Option<Vec<u8>>>) -> bool {
        self.shared.observe(Execution {
            connection: self.connection,
            prepared,
            statement: statement.to_owned(),
            params,
        })
    }

    fn reply_lost(&self) {
        self.shared.reply_lost();
    }

    /// Whether the client is cut as soon as the chosen statement is forwarded.
    fn cuts_client_at_once(&self) -> bool {
        self.shared.lock().cut_client_at_once
    }

    fn trace(&self, message: fmt::Arguments<'_>) {
        self.shared.trace(self.connection, message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_after_trigger_fires_only_on_a_primed_connection() {
        let shared = Shared {
            state: Mutex::new(State::default()),
            cut_all: watch::channel(0).0,
            trace: false,
        };
        let run = |connection: u64, statement: &str, param: &str| Execution {
            connection,
            prepared: false,
            statement: statement.to_owned(),
            params: vec![Some(param.as_bytes().to_vec())],
        };
        {
            let mut state = shared.lock();
            state.trigger =
                Some(Trigger::statement_contains("COMMIT").after(Trigger::param_equals("APPLIED")));
        }
        assert!(!shared.observe(run(1, "COMMIT", "")));
        assert!(!shared.observe(run(2, "INSERT", "APPLIED")));
        assert!(
            !shared.observe(run(1, "COMMIT", "")),
            "connection 1 is not primed"
        );
        assert!(shared.observe(run(2, "COMMIT", "")));
    }
}
