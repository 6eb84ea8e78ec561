//! The requests: the bearer token, bounded retries with back-off, and how replies and failures
//! become [`StoreError`]s.

use std::fmt;
use std::time::Duration;

use flamingock_core::StoreError;
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::wire::ErrorReply;

/// How often and how patiently a request is retried after a connection error or a `502`, `503`
/// or `504` (a proxy or a server that is restarting).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries in all, at least one (default 6).
    pub attempts: u32,
    /// The pause after the first failed try; it doubles up to [`max_backoff`](Self::max_backoff)
    /// (default 100 ms).
    pub backoff: Duration,
    /// The longest pause (default 2 s).
    pub max_backoff: Duration,
    /// How long one try may take (default 30 s).
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 6,
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            timeout: Duration::from_secs(30),
        }
    }
}

/// The bearer token: never shown by `Debug`, never logged.
#[derive(Clone)]
pub(crate) struct Token(String);

impl Token {
    pub(crate) fn new(token: String) -> Self {
        Self(token)
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// One HTTP client of one server.
#[derive(Debug, Clone)]
pub(crate) struct Transport {
    client: reqwest::Client,
    /// `scheme://host[:port][/base]/v1`, no trailing slash.
    api: String,
    /// The server as shown in errors.
    shown: String,
    token: Token,
    retry: RetryPolicy,
    /// The audit table the server keeps this store in, for errors.
    audit_table: String,
}

/// What a failed request came to.
pub(crate) enum Failure {
    /// The server answered with an error.
    Refused {
        status: StatusCode,
        reply: ErrorReply,
    },
    /// No answer. `maybe_sent`: the request may have reached the server (not a refused
    /// connection), so a write may have taken effect.
    Unreachable {
        error: reqwest::Error,
        maybe_sent: bool,
    },
    /// An answer that is not what the API says.
    Garbled(String),
}

impl Transport {
    pub(crate) fn new(
        api: String,
        shown: String,
        token: Token,
        retry: RetryPolicy,
        audit_table: String,
    ) -> Result<Self, StoreError> {
        let client = reqwest::Client::builder()
            .timeout(retry.timeout)
            .connect_timeout(retry.timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(|error| StoreError::Connect {
                url: shown.clone(),
                source: Box::new(error),
            })?;
        Ok(Self {
            client,
            api,
            shown,
            token,
            retry,
            audit_table,
        })
    }

    /// Another transport to the same server with a client (and connections) of its own.
    pub(crate) fn fresh(&self) -> Result<Self, StoreError> {
        Self::new(
            self.api.clone(),
            self.shown.clone(),
            self.token.clone(),
            self.retry,
            self.audit_table.clone(),
        )
    }

    pub(crate) fn shown(&self) -> &str {
        &self.shown
    }

    /// Sends `body` to `path` (under `/v1`) and reads the reply as `R`, retrying connection
    /// errors and `502`/`503`/`504` with back-off. Every request sent must be safe to repeat.
    pub(crate) async fn call<B: Serialize + ?Sized, R: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<R, Failure> {
        let url = format!("{}/{path}", self.api);
        let mut pause = self.retry.backoff;
        let mut maybe_sent = false;
        let attempts = self.retry.attempts.max(1);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut request = self
                .client
                .request(method.clone(), &url)
                .bearer_auth(&self.token.0);
            if let Some(body) = body {
                request = request.json(body);
            }
            let last = attempt == attempts;
            match request.send().await {
                Ok(response) if response.status().is_success() => {
                    return if response.status() == StatusCode::NO_CONTENT {
                        serde_json::from_value(serde_json::Value::Null)
                            .map_err(|e| Failure::Garbled(e.to_string()))
                    } else {
                        response
                            .json::<R>()
                            .await
                            .map_err(|e| Failure::Garbled(e.to_string()))
                    };
                }
                Ok(response)
                    if !last
                        && matches!(
                            response.status(),
                            StatusCode::BAD_GATEWAY
                                | StatusCode::SERVICE_UNAVAILABLE
                                | StatusCode::GATEWAY_TIMEOUT
                        ) =>
                {
                    // A proxy's 502/504 may come after the server did the work.
                    maybe_sent = true;
                    tracing::debug!(status = %response.status(), %path, attempt, "retrying a request to the Flamingock server");
                }
                Ok(response) => {
                    let status = response.status();
                    let text = response.text().await.unwrap_or_default();
                    let reply = serde_json::from_str::<ErrorReply>(&text).unwrap_or(ErrorReply {
                        code: "http".to_owned(),
                        error: format!(
                            "HTTP {status}: {}",
                            text.chars().take(300).collect::<String>()
                        ),
                    });
                    return Err(Failure::Refused { status, reply });
                }
                Err(error) => {
                    maybe_sent |= !error.is_connect();
                    if last {
                        return Err(Failure::Unreachable { error, maybe_sent });
                    }
                    tracing::debug!(error = %error_text(&error), %path, attempt, "retrying a request to the Flamingock server");
                }
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(self.retry.max_backoff);
        }
    }

    /// The [`StoreError`] of a failed request doing `action`. `write`: whether a lost reply leaves
    /// something people must know about in doubt (an append, a forced release), so that it is
    /// reported as of unknown outcome; idempotent requests (initialize, the lease) are not.
    pub(crate) fn error(&self, action: &'static str, write: bool, failure: Failure) -> StoreError {
        match failure {
            Failure::Refused { status, reply } => {
                refused(action, &self.audit_table, &self.shown, status, reply)
            }
            Failure::Unreachable { error, maybe_sent } if write && maybe_sent => {
                StoreError::OutcomeUnknown {
                    action,
                    source: Box::new(Message(format!(
                        "the Flamingock server at {} did not answer: {}",
                        self.shown,
                        error_text(&error)
                    ))),
                }
            }
            Failure::Unreachable { error, .. } => StoreError::Connect {
                url: self.shown.clone(),
                source: Box::new(Message(error_text(&error))),
            },
            Failure::Garbled(detail) => StoreError::Query {
                action,
                source: Box::new(Message(format!(
                    "the Flamingock server at {} answered something this client cannot read ({detail}); is it a Flamingock server of a compatible version?",
                    self.shown
                ))),
            },
        }
    }
}

/// A refusal as a [`StoreError`].
fn refused(
    action: &'static str,
    table: &str,
    server: &str,
    status: StatusCode,
    reply: ErrorReply,
) -> StoreError {
    let message = match status {
        StatusCode::UNAUTHORIZED => format!(
            "{} (set FLAMINGOCK_TOKEN to a token from `flamingock-server token create`)",
            reply.error
        ),
        _ => reply.error,
    };
    if reply.code == "no_audit_table" {
        // The error says it all; the server's own words would say it twice.
        return StoreError::NoAuditTable {
            table: table.to_owned(),
            store: format!("the Flamingock server at {server}"),
        };
    }
    if reply.code == "outcome_unknown" {
        return StoreError::OutcomeUnknown {
            action,
            source: Box::new(Message(message)),
        };
    }
    StoreError::Query {
        action,
        source: Box::new(Message(format!(
            "the Flamingock server refused ({status}): {message}"
        ))),
    }
}

/// reqwest's message with its causes (the URL it names holds no secret: credentials are refused
/// in server URLs, and the token travels in a header).
fn error_text(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A plain message as an error source.
#[derive(Debug)]
pub(crate) struct Message(pub(crate) String);

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Message {}
