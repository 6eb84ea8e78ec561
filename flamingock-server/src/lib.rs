//! The Flamingock server: the audit store and distributed lock of many services and
//! environments, behind one versioned JSON API (`/v1`), kept in one SQLite or PostgreSQL
//! database through Flamingock's SQL store.
//!
//! - `db`: the database, and the audit store of each service and environment (tables
//!   `fk_<service>__<environment>_audit` and `_lock`, made per request: no state in memory, so
//!   replicas on one PostgreSQL act as one);
//! - `tokens`: random tokens kept hashed, with a role and a scope;
//! - `plans`: the latest plan each scope's runners reported;
//! - `api`: the router and its handlers; `error`: what a failure replies; `limits`: the body
//!   limit;
//! - `dashboard`: the pages at `/dashboard` for people, signed in through `sessions`.
//!
//! Services reach it with `flamingock`'s `server` feature: an audit store URL
//! `https://<server>/<service>/<environment>` and a token in `FLAMINGOCK_TOKEN`.

#![warn(missing_docs)]

pub mod api;
pub mod dashboard;
pub mod db;
pub mod error;
pub mod limits;
pub mod plans;
pub mod sessions;
pub mod tokens;

pub use api::{AppState, router};

/// Everything the server serves: the `/v1` API ([`router`]) and the dashboard
/// ([`dashboard::router`]), each with its own limits and layers.
pub fn app(state: AppState) -> axum::Router {
    router(state.clone()).merge(dashboard::router(state))
}
pub use db::ServerDb;
pub use error::ServerError;

/// Serves the API on `listener` until the process is told to stop (Ctrl-C or SIGTERM).
pub async fn serve(db: ServerDb, listener: tokio::net::TcpListener) -> std::io::Result<()> {
    axum::serve(listener, app(AppState { db }))
        .with_graceful_shutdown(shutdown())
        .await
}

async fn shutdown() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = interrupt => {},
            _ = terminate => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
    tracing::info!("stopping: finishing the requests in flight");
}
