//! The non-SQL services the target-system tests use (Redis, NATS JetStream, an S3-compatible
//! object store) and a small REST API served in-process, each reached with its ecosystem's client.
//!
//! Addresses come from `FLAMINGOCK_TEST_REDIS_URL` (default `redis://127.0.0.1:6379`),
//! `FLAMINGOCK_TEST_NATS_URL` (default `nats://127.0.0.1:4222`) and `FLAMINGOCK_TEST_S3_URL`
//! (default `http://127.0.0.1:5055`, the `moto_server` that `.ci/run` starts). As with the
//! database servers, an unreachable service skips the test with a loud `SKIPPED:` line on stderr,
//! unless `FLAMINGOCK_REQUIRE_SERVERS=1`, which makes it a failure. Every test names its keys,
//! streams and buckets with [`unique_name`] or [`bucket_name`], so parallel runs and reruns never
//! meet, and removes them when it is done.

use std::collections::BTreeMap;
use std::future::Future;
use std::io::Write;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::put;
use s3::creds::Credentials;
use s3::{Bucket, Region};
use serde_json::{Value, json};

use crate::servers::servers_required;
pub use crate::servers::unique_name;

/// How long a test waits for a service to answer before calling it unreachable.
const REACH_TIMEOUT: Duration = Duration::from_secs(5);

/// A non-SQL service the target tests use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Redis,
    Nats,
    S3,
}

impl Service {
    /// The service's URL, from the environment or the default.
    pub fn url(self) -> String {
        let (variable, default) = match self {
            Service::Redis => ("FLAMINGOCK_TEST_REDIS_URL", "redis://127.0.0.1:6379"),
            Service::Nats => ("FLAMINGOCK_TEST_NATS_URL", "nats://127.0.0.1:4222"),
            Service::S3 => ("FLAMINGOCK_TEST_S3_URL", "http://127.0.0.1:5055"),
        };
        std::env::var(variable).unwrap_or_else(|_| default.to_owned())
    }

    fn label(self) -> &'static str {
        match self {
            Service::Redis => "Redis",
            Service::Nats => "NATS JetStream",
            Service::S3 => "the S3-compatible object store (moto_server)",
        }
    }
}

/// Skips the calling test loudly, or fails it under `FLAMINGOCK_REQUIRE_SERVERS=1`.
fn unreachable<T>(service: Service, error: impl std::fmt::Display) -> Option<T> {
    let test = std::thread::current().name().unwrap_or("?").to_owned();
    let message = format!(
        "{test}: {} at {} unreachable: {error}",
        service.label(),
        service.url()
    );
    assert!(
        !servers_required(),
        "FLAMINGOCK_REQUIRE_SERVERS=1 but {message}"
    );
    // Straight to stderr: a passing test's captured output is never shown.
    let _ = writeln!(std::io::stderr(), "SKIPPED: {message}");
    None
}

/// An error with its causes, `: `-separated (clients often keep "connection refused" in a cause).
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// A Redis client that has answered `PING`, or `None` after a loud skip.
pub async fn redis() -> Option<redis::Client> {
    let client = match redis::Client::open(Service::Redis.url()) {
        Ok(client) => client,
        Err(error) => return unreachable(Service::Redis, chain(&error)),
    };
    let ping = async {
        let mut connection = client.get_multiplexed_async_connection().await?;
        redis::cmd("PING")
            .query_async::<String>(&mut connection)
            .await
    };
    match tokio::time::timeout(REACH_TIMEOUT, ping).await {
        Ok(Ok(_)) => Some(client),
        Ok(Err(error)) => unreachable(Service::Redis, chain(&error)),
        Err(_) => unreachable(Service::Redis, "no answer to PING"),
    }
}

/// A JetStream context on a server that has JetStream enabled, or `None` after a loud skip.
pub async fn jetstream() -> Option<jetstream::Context> {
    let options = async_nats::ConnectOptions::new().connection_timeout(REACH_TIMEOUT);
    let client = match async_nats::connect_with_options(Service::Nats.url(), options).await {
        Ok(client) => client,
        Err(error) => return unreachable(Service::Nats, chain(&error)),
    };
    let context = jetstream::new(client);
    // Asking for a stream that does not exist answers "stream not found" only when JetStream is on.
    match context.get_stream_no_info("FLAMINGOCK_PROBE_ABSENT").await {
        Ok(_) => Some(context),
        Err(error) if is_stream_not_found(&error) => Some(context),
        Err(error) => unreachable(
            Service::Nats,
            format!("JetStream does not answer: {}", chain(&error)),
        ),
    }
}

/// Whether a JetStream error says the stream does not exist.
pub fn is_stream_not_found(error: &jetstream::context::GetStreamError) -> bool {
    matches!(
        error.kind(),
        jetstream::context::GetStreamErrorKind::JetStream(inner)
            if inner.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND
    )
}

/// The object store's region: a custom endpoint, addressed path-style.
pub fn s3_region() -> Region {
    Region::Custom {
        // Not us-east-1: S3 refuses a location constraint naming it, and the client always sends one.
        region: "eu-west-1".to_owned(),
        endpoint: Service::S3.url(),
    }
}

/// Credentials for the test object store (moto accepts any).
pub fn s3_credentials() -> Credentials {
    Credentials::new(
        Some("flamingock-test"),
        Some("flamingock-test"),
        None,
        None,
        None,
    )
    .expect("static credentials need no lookup")
}

/// A handle on the (not yet created) bucket `name` in the test object store, after checking that
/// the store answers; `None` after a loud skip.
pub async fn s3_bucket(name: &str) -> Option<Box<Bucket>> {
    let listed = tokio::time::timeout(
        REACH_TIMEOUT,
        Bucket::list_buckets(s3_region(), s3_credentials()),
    )
    .await;
    match listed {
        Ok(Ok(_)) => {}
        Ok(Err(error)) => return unreachable(Service::S3, chain(&error)),
        Err(_) => return unreachable(Service::S3, "no answer to ListBuckets"),
    }
    match Bucket::new(name, s3_region(), s3_credentials()) {
        Ok(bucket) => Some(bucket.with_path_style()),
        Err(error) => unreachable(Service::S3, chain(&error)),
    }
}

/// A bucket name no other test, process or earlier run uses (S3 names take no underscores).
pub fn bucket_name(hint: &str) -> String {
    unique_name(hint).replace('_', "-")
}

/// Whether an S3 error is the server's 404 (no such bucket, key, policy…).
pub fn is_s3_not_found(error: &s3::error::S3Error) -> bool {
    matches!(error, s3::error::S3Error::HttpFailWithBody(404, _))
}

/// Removes a bucket and everything in it; a bucket that is already gone is fine.
pub async fn remove_bucket(bucket: &Bucket) -> Result<(), s3::error::S3Error> {
    let pages = match bucket.list(String::new(), None).await {
        Ok(pages) => pages,
        Err(error) if is_s3_not_found(&error) => return Ok(()),
        Err(error) => return Err(error),
    };
    for object in pages.iter().flat_map(|page| &page.contents) {
        bucket.delete_object(&object.key).await?;
    }
    match bucket.delete().await {
        Ok(_) => Ok(()),
        Err(error) if is_s3_not_found(&error) => Ok(()),
        Err(error) => Err(error),
    }
}

/// Removes what a test created when it is dropped, even when the test panicked halfway.
///
/// The removal runs on a runtime of its own in a thread of its own (a `Drop` cannot await, and
/// the test's runtime may be the one blocked), with clients it opens itself.
pub struct Cleanup {
    what: String,
    removal: Option<Removal>,
}

type Removal = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send>;

impl Cleanup {
    /// Deletes the Redis key `key`.
    pub fn redis_key(key: &str) -> Cleanup {
        let key = key.to_owned();
        Cleanup::new(format!("Redis key {key}"), move || {
            Box::pin(async move {
                let client =
                    redis::Client::open(Service::Redis.url()).map_err(|e| e.to_string())?;
                let mut connection = client
                    .get_multiplexed_async_connection()
                    .await
                    .map_err(|e| e.to_string())?;
                redis::cmd("DEL")
                    .arg(&key)
                    .query_async::<()>(&mut connection)
                    .await
                    .map_err(|e| e.to_string())
            })
        })
    }

    /// Deletes the JetStream stream `name` (and so its consumers).
    pub fn stream(name: &str) -> Cleanup {
        let name = name.to_owned();
        Cleanup::new(format!("JetStream stream {name}"), move || {
            Box::pin(async move {
                let client = async_nats::connect(Service::Nats.url())
                    .await
                    .map_err(|e| e.to_string())?;
                match jetstream::new(client).delete_stream(&name).await {
                    Ok(_) => Ok(()),
                    Err(error) if is_stream_not_found(&error) => Ok(()),
                    Err(error) => Err(error.to_string()),
                }
            })
        })
    }

    /// Deletes the bucket `name` and its objects.
    pub fn bucket(name: &str) -> Cleanup {
        let name = name.to_owned();
        Cleanup::new(format!("bucket {name}"), move || {
            Box::pin(async move {
                let bucket = Bucket::new(&name, s3_region(), s3_credentials())
                    .map_err(|e| e.to_string())?
                    .with_path_style();
                remove_bucket(&bucket).await.map_err(|e| e.to_string())
            })
        })
    }

    fn new(
        what: String,
        removal: impl FnOnce() -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>>
        + Send
        + 'static,
    ) -> Cleanup {
        Cleanup {
            what,
            removal: Some(Box::new(removal)),
        }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let Some(removal) = self.removal.take() else {
            return;
        };
        let outcome = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?
                .block_on(async { tokio::time::timeout(REACH_TIMEOUT, removal()).await })
                .map_err(|_| "timed out".to_owned())?
        })
        .join();
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                let _ = writeln!(
                    std::io::stderr(),
                    "warning: could not remove {}: {error}",
                    self.what
                );
            }
            Err(_) => {
                let _ = writeln!(
                    std::io::stderr(),
                    "warning: removing {} panicked",
                    self.what
                );
            }
        }
    }
}

/// Another team's service, as far as a change unit sees it: a REST API of webhook subscriptions,
/// served in-process on `127.0.0.1` for one test.
///
/// - `PUT /webhooks/{name}` with `{"url": "https://...", "events": [...]}`: creates (201) or
///   replaces (200) the subscription; a `url` that is not `https://` is refused with 422.
/// - `GET /webhooks/{name}`: the subscription (200) or 404.
/// - `DELETE /webhooks/{name}`: 204, or 404 when there is none.
pub struct PartnerApi {
    /// `http://127.0.0.1:<port>`.
    pub base_url: String,
    webhooks: Webhooks,
    server: tokio::task::JoinHandle<()>,
}

type Webhooks = Arc<Mutex<BTreeMap<String, Value>>>;

impl PartnerApi {
    /// Starts the API on a free port; it stops when dropped.
    pub async fn start() -> PartnerApi {
        let webhooks: Webhooks = Arc::default();
        let app = axum::Router::new()
            .route(
                "/webhooks/{name}",
                put(put_webhook).get(get_webhook).delete(delete_webhook),
            )
            .with_state(webhooks.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free port on 127.0.0.1");
        let base_url = format!(
            "http://{}",
            listener
                .local_addr()
                .expect("a bound listener has an address")
        );
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("the partner API serves until the test ends");
        });
        PartnerApi {
            base_url,
            webhooks,
            server,
        }
    }

    /// The subscriptions the API holds now, by name.
    pub fn webhooks(&self) -> BTreeMap<String, Value> {
        self.webhooks
            .lock()
            .expect("no handler panics holding the lock")
            .clone()
    }
}

impl Drop for PartnerApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn put_webhook(
    State(webhooks): State<Webhooks>,
    Path(name): Path<String>,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let url = body.get("url").and_then(Value::as_str).unwrap_or_default();
    if !url.starts_with("https://") {
        let error = json!({ "error": format!("webhook url must use https, got {url:?}") });
        return (StatusCode::UNPROCESSABLE_ENTITY, Json(error));
    }
    let mut webhooks = webhooks.lock().expect("no handler panics holding the lock");
    let status = if webhooks.insert(name, body.clone()).is_some() {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    (status, Json(body))
}

async fn get_webhook(
    State(webhooks): State<Webhooks>,
    Path(name): Path<String>,
) -> Result<Json<Value>, StatusCode> {
    let webhooks = webhooks.lock().expect("no handler panics holding the lock");
    webhooks
        .get(&name)
        .cloned()
        .map(Json)
        .ok_or(StatusCode::NOT_FOUND)
}

async fn delete_webhook(State(webhooks): State<Webhooks>, Path(name): Path<String>) -> StatusCode {
    let mut webhooks = webhooks.lock().expect("no handler panics holding the lock");
    match webhooks.remove(&name) {
        Some(_) => StatusCode::NO_CONTENT,
        None => StatusCode::NOT_FOUND,
    }
}
