//! [`ServerError`]: every way a request or a command fails, and the HTTP reply each becomes.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use flamingock_client::wire::ErrorReply;
use flamingock_core::StoreError;

/// What went wrong serving a request or running a command.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// No token, or one the server does not know or that was revoked (`401`).
    #[error("{0}")]
    Unauthorized(String),
    /// A token out of its role or scope (`403`).
    #[error("{0}")]
    Forbidden(String),
    /// A request the server refuses: a bad name or body (`400`).
    #[error("{0}")]
    Invalid(String),
    /// A body over the size limit (`413`).
    #[error("{0}")]
    TooLarge(String),
    /// Something named that is not there (`404`).
    #[error("{0}")]
    NotFound(String),
    /// The audit store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The server's own table could not be read or written.
    #[error("{action} failed: {source}")]
    Database {
        /// What was being done.
        action: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// Anything else (`500`).
    #[error("{0}")]
    Internal(String),
}

impl ServerError {
    /// The HTTP status of the reply.
    pub fn status(&self) -> StatusCode {
        self.status_and_code().0
    }

    /// The status and stable code of the reply.
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ServerError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ServerError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ServerError::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid"),
            ServerError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ServerError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            ServerError::Database { .. } => (StatusCode::SERVICE_UNAVAILABLE, "database"),
            ServerError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            ServerError::Store(error) => match error {
                StoreError::LockLost { .. } => (StatusCode::CONFLICT, "lock_lost"),
                StoreError::NoAuditTable { .. } => (StatusCode::NOT_FOUND, "no_audit_table"),
                StoreError::InvalidIdentifier { .. } => (StatusCode::BAD_REQUEST, "invalid"),
                StoreError::ForeignTable { .. } => {
                    (StatusCode::INTERNAL_SERVER_ERROR, "foreign_table")
                }
                StoreError::CorruptRow { .. } | StoreError::CorruptLockRow { .. } => {
                    (StatusCode::INTERNAL_SERVER_ERROR, "corrupt")
                }
                // Not 5xx-retryable: the client must settle it, not repeat it blindly.
                StoreError::OutcomeUnknown { .. } => {
                    (StatusCode::INTERNAL_SERVER_ERROR, "outcome_unknown")
                }
                // The database is down or restarting: the client retries.
                StoreError::Connect { .. } => (StatusCode::SERVICE_UNAVAILABLE, "store"),
                _ => (StatusCode::INTERNAL_SERVER_ERROR, "store"),
            },
        }
    }
}

impl ServerError {
    /// Maps a driver error of the server's own tables, met while doing `action`.
    pub(crate) fn database(action: &'static str) -> impl FnOnce(sqlx::Error) -> ServerError {
        move |source| ServerError::Database { action, source }
    }

    /// What a reply (JSON or a dashboard page) says of the error: never the server's own
    /// database file, which the store's words for a missing table name.
    pub fn public_message(&self) -> String {
        match self {
            ServerError::Store(StoreError::NoAuditTable { table, .. }) => format!(
                "there is no audit table `{table}` on this server: nothing has run for this service and environment yet"
            ),
            ServerError::Store(store) => flamingock_core::model::error_chain(store),
            other => flamingock_core::model::error_chain(other),
        }
    }
}

impl IntoResponse for ServerError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let error = self.public_message();
        if status.is_server_error() {
            tracing::warn!(%status, code, %error, "request failed");
        }
        (
            status,
            Json(ErrorReply {
                code: code.to_owned(),
                error,
            }),
        )
            .into_response()
    }
}

/// The largest body of a non-JSON error reply that is kept as the detail of its `ErrorReply`.
const MAX_DETAIL_BYTES: usize = 4096;

/// Makes every error reply an [`ErrorReply`] with `application/json`, whoever made it: a reply
/// of a layer or of the router itself (the timeout's `503`, the body limit's `413`, axum's `405`
/// and its plain-text rejections) gets the code of its status and a message that says what
/// happened, its own text kept as the detail. Replies with a body type of their own (JSON, an
/// HTML page) pass unchanged.
pub async fn json_errors(response: Response) -> Response {
    let status = response.status();
    // An empty body or plain text: what axum and the tower layers answer. A reply of a type of
    // its own (JSON, a page for people) is left as its handler made it.
    let bare = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_none_or(|value| value.as_bytes().starts_with(b"text/plain"));
    if !(status.is_client_error() || status.is_server_error()) || !bare {
        return response;
    }
    let (parts, body) = response.into_parts();
    let detail = axum::body::to_bytes(body, MAX_DETAIL_BYTES)
        .await
        .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_owned())
        .unwrap_or_default();
    let (code, message) = match status {
        StatusCode::BAD_REQUEST => ("invalid", "the request is not one the API takes"),
        StatusCode::NOT_FOUND => ("not_found", "no such endpoint; the API is under /v1"),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "this endpoint does not take that method (GET /v1/openapi.json lists the methods of each)",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => ("too_large", "the body is over the size limit"),
        // The timeout layer's: the handler was cut short, what it did may or may not stand
        // (a retried append is recorded once all the same).
        StatusCode::SERVICE_UNAVAILABLE | StatusCode::REQUEST_TIMEOUT => (
            "timeout",
            "the request took longer than the server allows and was cut short",
        ),
        status if status.is_server_error() => ("internal", "the server failed"),
        _ => ("invalid", "the request was refused"),
    };
    let error = if detail.is_empty() {
        message.to_owned()
    } else {
        format!("{message}: {detail}")
    };
    if status.is_server_error() {
        tracing::warn!(%status, code, %error, "request failed");
    }
    let mut reply = (
        status,
        Json(ErrorReply {
            code: code.to_owned(),
            error,
        }),
    )
        .into_response();
    // Headers a layer set (e.g. `Allow` on a 405) are kept; the body's own are the new body's.
    for (name, value) in &parts.headers {
        if name != axum::http::header::CONTENT_TYPE && name != axum::http::header::CONTENT_LENGTH {
            reply.headers_mut().insert(name.clone(), value.clone());
        }
    }
    reply
}
