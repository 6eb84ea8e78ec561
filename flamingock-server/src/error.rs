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

impl IntoResponse for ServerError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let error = match &self {
            ServerError::Store(store) => flamingock_core::model::error_chain(store),
            other => flamingock_core::model::error_chain(other),
        };
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
