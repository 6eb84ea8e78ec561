//! [`HttpAuditStore`]: the audit store and lock of one service and environment on a Flamingock
//! server.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use flamingock_core::history::HistoryQuery;
use flamingock_core::inject::Dependencies;
use flamingock_core::lock::{Acquisition, DistributedLock, Fence, LeaseKeeper, LockInfo};
use flamingock_core::model::UnitState;
use flamingock_core::store::SharedTransaction;
use flamingock_core::{AuditEntry, AuditStore, StoreError, TypeLabel};
use reqwest::Method;

use crate::scope::Scope;
use crate::transport::{Failure, Message, RetryPolicy, Token, Transport};
use crate::wire::{
    AcquireReply, AcquireRequest, AppendReply, AppendRequest, EntriesReply, ExtendReply,
    ExtendRequest, HistoryRequest, LockReply, NowReply, PlanRequest, ReleaseRequest,
    UnitStatesReply,
};

/// The variable the token is read from when the builder sets none.
pub const TOKEN_ENV: &str = "FLAMINGOCK_TOKEN";

/// A Flamingock server URL: `http[s]://host[:port][/base]/<service>/<environment>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerUrl {
    /// `scheme://host[:port][/base]`, no trailing slash.
    pub server: String,
    /// The service and environment the store speaks for.
    pub scope: Scope,
}

impl ServerUrl {
    /// Parses and checks a server URL; the error says what a right one looks like.
    ///
    /// ```
    /// use flamingock_client::ServerUrl;
    /// let url = ServerUrl::parse("https://flamingock.internal/orders/prod").unwrap();
    /// assert_eq!(url.server, "https://flamingock.internal");
    /// assert_eq!(url.scope.service(), "orders");
    /// assert!(ServerUrl::parse("https://flamingock.internal/").is_err());
    /// ```
    pub fn parse(url: &str) -> Result<Self, StoreError> {
        let unsupported = |why: String| {
            StoreError::Unsupported(format!(
                "{why}: a Flamingock server URL is http[s]://host[:port]/<service>/<environment> (e.g. https://flamingock.internal/orders/prod)"
            ))
        };
        let parsed = reqwest::Url::parse(url)
            .map_err(|error| unsupported(format!("{:?} is not a URL ({error})", redact(url))))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(unsupported(format!(
                "{:?} is not http or https",
                redact(url)
            )));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(unsupported(
                "the URL holds credentials; pass the token in FLAMINGOCK_TOKEN or with the builder's .token(..) instead".to_owned(),
            ));
        }
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(unsupported(format!(
                "{:?} has a query or fragment",
                redact(url)
            )));
        }
        let segments: Vec<&str> = parsed
            .path_segments()
            .map(|s| s.filter(|s| !s.is_empty()).collect())
            .unwrap_or_default();
        let [base @ .., service, environment] = segments.as_slice() else {
            return Err(unsupported(format!(
                "{:?} names no service and environment",
                redact(url)
            )));
        };
        let scope = Scope::new(service, environment)
            .map_err(|error| StoreError::Unsupported(error.to_string()))?;
        let host = parsed
            .host_str()
            .ok_or_else(|| unsupported(format!("{:?} names no host", redact(url))))?;
        let mut server = format!("{}://{host}", parsed.scheme());
        if let Some(port) = parsed.port() {
            server.push_str(&format!(":{port}"));
        }
        for segment in base {
            server.push('/');
            server.push_str(segment);
        }
        Ok(Self { server, scope })
    }
}

/// A URL shown in an error: its credentials cut off.
fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

/// What a unit on the default target would receive as its transaction: nothing can, the server
/// shares no transaction with a unit (see [`HttpAuditStore`]).
#[derive(Debug)]
pub struct NoSharedTransaction;

/// The audit store and lock of one service and environment, kept by a Flamingock server.
///
/// The token is never shown by `Debug` or in any error or log line.
///
/// A transactional unit on the default target cannot run: the server's database is not the
/// unit's. Name a SQL target system (its units then run `TX_SEPARATE`, the marker in the
/// target's transaction deciding after a crash or a lost reply) or make the unit
/// `transactional = false`.
#[derive(Clone)]
pub struct HttpAuditStore {
    transport: Transport,
    scope: Scope,
    /// `services/{s}/environments/{e}`.
    path: String,
    read_only: bool,
}

impl fmt::Debug for HttpAuditStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpAuditStore")
            .field("server", &self.transport.shown())
            .field("scope", &self.scope)
            .field("read_only", &self.read_only)
            .finish_non_exhaustive()
    }
}

impl HttpAuditStore {
    /// A store on the server `url` names (see [`ServerUrl`]), authenticated by `token`.
    /// Nothing is sent until the first call.
    pub fn new(url: &str, token: impl Into<String>) -> Result<Self, StoreError> {
        Self::with_retry(url, token, RetryPolicy::default())
    }

    /// As [`new`](Self::new), with its own retry policy.
    pub fn with_retry(
        url: &str,
        token: impl Into<String>,
        retry: RetryPolicy,
    ) -> Result<Self, StoreError> {
        let parsed = ServerUrl::parse(url)?;
        let token = token.into();
        if token.trim().is_empty() {
            return Err(StoreError::Unsupported(format!(
                "no token for the Flamingock server at {}: set {TOKEN_ENV} or call .token(..) on the builder (an admin makes one with `flamingock-server token create`)",
                parsed.server
            )));
        }
        let transport = Transport::new(
            format!("{}/v1", parsed.server),
            parsed.server.clone(),
            Token::new(token),
            retry,
            format!("{}_audit", parsed.scope.table_prefix()),
        )?;
        Ok(Self {
            transport,
            path: parsed.scope.path(),
            scope: parsed.scope,
            read_only: false,
        })
    }

    /// Opens the store only to read: `initialize` checks and creates nothing (what a reader
    /// token may do).
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// The service and environment.
    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    async fn get<R: serde::de::DeserializeOwned>(
        &self,
        action: &'static str,
        path: &str,
    ) -> Result<R, StoreError> {
        self.transport
            .call::<(), R>(Method::GET, &format!("{}/{path}", self.path), None)
            .await
            .map_err(|failure| self.transport.error(action, false, failure))
    }

    async fn post<B: serde::Serialize, R: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<R, Failure> {
        self.transport
            .call(Method::POST, &format!("{}/{path}", self.path), Some(body))
            .await
    }
}

/// A lease length in milliseconds.
fn millis(lease: Duration) -> u64 {
    u64::try_from(lease.as_millis()).unwrap_or(u64::MAX)
}

#[async_trait]
impl AuditStore for HttpAuditStore {
    async fn initialize(&self) -> Result<(), StoreError> {
        const ACTION: &str = "initializing the audit store on the Flamingock server";
        self.post::<_, ()>(
            "initialize",
            &serde_json::json!({ "read_only": self.read_only }),
        )
        .await
        .map_err(|failure| self.transport.error(ACTION, false, failure))
    }

    async fn unit_states(&self) -> Result<HashMap<String, UnitState>, StoreError> {
        let reply: UnitStatesReply = self.get("reading unit states", "unit-states").await?;
        Ok(reply
            .units
            .into_iter()
            .map(|unit| (unit.change_id.clone(), unit))
            .collect())
    }

    async fn append(&self, entry: &AuditEntry, fence: Option<&Fence>) -> Result<(), StoreError> {
        const ACTION: &str = "appending an audit entry on the Flamingock server";
        // The row's name: every retry of this append carries it, so the server records it once.
        let request = AppendRequest {
            request_id: uuid::Uuid::new_v4().to_string(),
            entry: entry.clone(),
            fence: fence.map(Into::into),
        };
        match self.post::<_, AppendReply>("entries", &request).await {
            Ok(_) => Ok(()),
            Err(Failure::Refused { reply, .. }) if reply.code == "lock_lost" => {
                let fence = fence.cloned().unwrap_or(Fence {
                    key: String::new(),
                    owner: entry.runner_id.clone(),
                });
                Err(StoreError::LockLost {
                    key: fence.key,
                    owner: fence.owner,
                })
            }
            Err(failure) => Err(self.transport.error(ACTION, true, failure)),
        }
    }

    async fn entries(&self) -> Result<Vec<AuditEntry>, StoreError> {
        let reply: EntriesReply = self.get("reading the audit log", "entries").await?;
        Ok(reply.entries)
    }

    async fn history(&self, query: &HistoryQuery) -> Result<Vec<AuditEntry>, StoreError> {
        const ACTION: &str = "reading the history";
        let reply: EntriesReply = self
            .post("history", &HistoryRequest::from(query))
            .await
            .map_err(|failure| self.transport.error(ACTION, false, failure))?;
        Ok(reply.entries)
    }

    fn keeps_plans(&self) -> bool {
        true
    }

    async fn record_plan(
        &self,
        plan: &flamingock_core::run_plan::RunPlan,
    ) -> Result<(), StoreError> {
        const ACTION: &str = "recording the run's plan on the Flamingock server";
        let request = PlanRequest { plan: plan.clone() };
        // A PUT of the whole plan: repeating it after a lost reply changes nothing more.
        self.transport
            .call::<_, ()>(Method::PUT, &format!("{}/plan", self.path), Some(&request))
            .await
            .map_err(|failure| self.transport.error(ACTION, false, failure))
    }

    async fn now(&self) -> Result<DateTime<Utc>, StoreError> {
        let reply: NowReply = self
            .transport
            .call::<(), NowReply>(Method::GET, "now", None)
            .await
            .map_err(|failure| {
                self.transport
                    .error("reading the server's clock", false, failure)
            })?;
        Ok(reply.now)
    }

    async fn begin_shared(&self) -> Result<Box<dyn SharedTransaction>, StoreError> {
        Err(StoreError::Query {
            action: "opening a shared transaction",
            source: Box::new(Message(format!(
                "the audit store is the Flamingock server at {}, which cannot share a transaction with a unit: give the unit a `target_system` (a SQL target runs it with the marker protocol) or make it `transactional = false`",
                self.transport.shown()
            ))),
        })
    }

    fn shared_transaction_refusal(&self) -> Option<String> {
        Some(format!(
            "its audit store, the Flamingock server at {}, cannot share a transaction with a unit: give the unit a `target_system` (a SQL target runs it with the marker protocol) or make it `transactional = false`",
            self.transport.shown()
        ))
    }

    fn shared_transaction_type(&self) -> TypeLabel {
        TypeLabel::of::<NoSharedTransaction>()
            .shown_as("no transaction (the Flamingock server shares none; name a target system)")
    }

    fn dependencies(&self) -> Dependencies {
        Dependencies::new()
    }

    fn describe(&self) -> String {
        format!(
            "Flamingock server {} ({})",
            self.transport.shown(),
            self.scope
        )
    }

    fn lock(&self) -> Option<&dyn DistributedLock> {
        Some(self)
    }
}

#[async_trait]
impl DistributedLock for HttpAuditStore {
    async fn try_acquire(
        &self,
        fence: &Fence,
        hostname: &str,
        lease: Duration,
    ) -> Result<Acquisition, StoreError> {
        const ACTION: &str = "taking the lock on the Flamingock server";
        let request = AcquireRequest {
            owner: fence.owner.clone(),
            hostname: hostname.to_owned(),
            lease_ms: millis(lease),
        };
        let reply: AcquireReply = self
            .post(&lock_path(&fence.key, "acquire"), &request)
            .await
            .map_err(|failure| self.transport.error(ACTION, false, failure))?;
        match (reply.acquired, reply.holder) {
            (true, _) => Ok(Acquisition::Acquired),
            (false, Some(holder)) => Ok(Acquisition::Held(holder.into())),
            (false, None) => Err(self.transport.error(
                ACTION,
                false,
                Failure::Garbled("a refused lease without its holder".to_owned()),
            )),
        }
    }

    async fn extend(&self, fence: &Fence, lease: Duration) -> Result<bool, StoreError> {
        extend(&self.transport, &self.path, fence, lease).await
    }

    async fn release(&self, fence: &Fence) -> Result<(), StoreError> {
        const ACTION: &str = "releasing the lock on the Flamingock server";
        let request = ReleaseRequest {
            owner: fence.owner.clone(),
        };
        self.post::<_, ()>(&lock_path(&fence.key, "release"), &request)
            .await
            .map_err(|failure| self.transport.error(ACTION, false, failure))
    }

    async fn read(&self, key: &str) -> Result<Option<LockInfo>, StoreError> {
        let reply: LockReply = self
            .get("reading the lock", &format!("locks/{}", encode(key)))
            .await?;
        Ok(reply.lock.map(Into::into))
    }

    async fn force_release(&self, key: &str) -> Result<Option<LockInfo>, StoreError> {
        const ACTION: &str = "releasing the lock on the Flamingock server";
        let reply: LockReply = self
            .transport
            .call::<(), LockReply>(
                Method::DELETE,
                &format!("{}/locks/{}", self.path, encode(key)),
                None,
            )
            .await
            .map_err(|failure| self.transport.error(ACTION, true, failure))?;
        Ok(reply.lock.map(Into::into))
    }

    async fn keeper(&self) -> Result<Box<dyn LeaseKeeper>, StoreError> {
        // A client of its own: its connections belong to the heartbeat's runtime.
        Ok(Box::new(HttpKeeper {
            transport: self.transport.fresh()?,
            path: self.path.clone(),
        }))
    }
}

/// The heartbeat's handle: a client of its own on the same server.
struct HttpKeeper {
    transport: Transport,
    path: String,
}

#[async_trait]
impl LeaseKeeper for HttpKeeper {
    async fn extend(&self, fence: &Fence, lease: Duration) -> Result<bool, StoreError> {
        extend(&self.transport, &self.path, fence, lease).await
    }
}

async fn extend(
    transport: &Transport,
    path: &str,
    fence: &Fence,
    lease: Duration,
) -> Result<bool, StoreError> {
    const ACTION: &str = "extending the lock's lease on the Flamingock server";
    let request = ExtendRequest {
        owner: fence.owner.clone(),
        lease_ms: millis(lease),
    };
    let reply: ExtendReply = transport
        .call(
            Method::POST,
            &format!("{path}/{}", lock_path(&fence.key, "extend")),
            Some(&request),
        )
        .await
        // Repeating it is harmless, and the heartbeat tries again: not a write of unknown outcome.
        .map_err(|failure| transport.error(ACTION, false, failure))?;
    Ok(reply.extended)
}

fn lock_path(key: &str, action: &str) -> String {
    format!("locks/{}/{action}", encode(key))
}

/// A lock key as one path segment.
fn encode(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for byte in key.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_never_shown() {
        let store =
            HttpAuditStore::new("http://127.0.0.1:1/orders/prod", "fks_very-secret").unwrap();
        let shown = format!("{store:?} {}", store.describe());
        assert!(!shown.contains("very-secret"), "{shown}");
        assert!(shown.contains("orders"), "{shown}");
    }

    #[test]
    fn a_url_without_a_scope_or_with_credentials_is_refused_with_the_right_form() {
        for bad in [
            "http://host/",
            "http://host/orders",
            "http://user:pw@host/orders/prod",
            "ftp://host/orders/prod",
            "http://host/Orders/prod",
        ] {
            let error = ServerUrl::parse(bad).unwrap_err().to_string();
            assert!(!error.contains("pw@"), "{error}");
            assert!(
                error.contains("service") || error.contains("credentials"),
                "{bad}: {error}"
            );
        }
        let url = ServerUrl::parse("http://host:8080/flamingock/orders/prod-eu").unwrap();
        assert_eq!(url.server, "http://host:8080/flamingock");
        assert_eq!(url.scope.environment(), "prod-eu");
    }

    #[test]
    fn an_empty_token_is_refused_naming_the_variable() {
        let error = HttpAuditStore::new("http://host/orders/prod", " ").unwrap_err();
        assert!(error.to_string().contains(TOKEN_ENV), "{error}");
    }

    #[test]
    fn lock_keys_become_one_path_segment() {
        assert_eq!(encode("flamingock"), "flamingock");
        assert_eq!(encode("a/b c"), "a%2Fb%20c");
    }
}
