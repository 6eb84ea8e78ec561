//! Opening an audit store from a URL: the backend by scheme, then a bounded retry with exponential
//! back-off while the server is down or starting, and a clear error after the last try.

use std::sync::Arc;

use flamingock_core::{AuditStore, StoreError};
use sqlx::pool::PoolOptions;
use sqlx::{ConnectOptions, Connection, Database, Pool};

use crate::identifier::validate_identifier;
use crate::options::StoreOptions;
use crate::url::{Backend, redact_url, refuse_unnamed_sqlite, scrub};

/// Connects to the audit store at `url` and returns it, not yet initialized
/// ([`AuditStore::initialize`] creates the table).
///
/// The scheme picks the backend: `sqlite:` (the file is created if missing; WAL journal, busy
/// timeout), `postgres:`/`postgresql:`, `mysql:`/`mariadb:`. A scheme this build lacks the feature
/// for, or an unknown one, is [`StoreError::Unsupported`]. A server that is down is tried
/// [`StoreOptions::connect_attempts`] times, waiting [`StoreOptions::connect_backoff`] after the
/// first failure and twice as long after each next one; wrong credentials or a malformed URL fail
/// at once. Errors and log lines show the URL with its password redacted.
///
/// ```
/// # #[cfg(not(feature = "sqlite"))] fn main() {}
/// # #[cfg(feature = "sqlite")]
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), flamingock_core::StoreError> {
/// let dir = tempfile::tempdir().expect("temp dir");
/// let url = format!("sqlite://{}/audit.db", dir.path().display());
/// let store = flamingock_sqlx::connect(&url, flamingock_sqlx::StoreOptions::default()).await?;
/// store.initialize().await?;
/// assert!(store.unit_states().await?.is_empty());
/// # Ok(())
/// # }
/// ```
pub async fn connect(url: &str, options: StoreOptions) -> Result<Arc<dyn AuditStore>, StoreError> {
    validate_identifier(&options.audit_table)?;
    if let Some(lock_table) = &options.lock_table {
        validate_identifier(lock_table)?;
    }
    match Backend::from_url(url)? {
        #[cfg(feature = "sqlite")]
        Backend::Sqlite => Ok(Arc::new(crate::sqlite::connect(url, &options).await?)),
        #[cfg(feature = "postgres")]
        Backend::Postgres => Ok(Arc::new(crate::postgres::connect(url, &options).await?)),
        #[cfg(feature = "mysql")]
        Backend::MySql => Ok(Arc::new(crate::mysql::connect(url, &options).await?)),
        #[allow(unreachable_patterns)] // every backend compiled in
        backend => Err(backend.not_compiled_in(url)),
    }
}

/// The [`StoreError::Connect`] for `url`, redacted.
pub(crate) fn connect_error(
    url: &str,
    source: impl Into<flamingock_core::inject::BoxError>,
) -> StoreError {
    StoreError::Connect {
        url: redact_url(url),
        source: scrub_error(source.into(), url),
    }
}

/// `error` as it is when no text in its chain quotes a secret of `url`; otherwise its chain as
/// one message with the secrets masked. A driver may echo the part of a URL it could not parse,
/// and a password with an unescaped `?`, `#`, `/` or `@` is not where a URL parser looks for it.
fn scrub_error(
    error: flamingock_core::inject::BoxError,
    url: &str,
) -> flamingock_core::inject::BoxError {
    let mut chain = Vec::new();
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(error.as_ref());
    while let Some(current) = next {
        chain.push(current.to_string());
        next = current.source();
    }
    let text = chain.join(": ");
    let scrubbed = scrub(&text, url);
    if scrubbed == text {
        error
    } else {
        scrubbed.into()
    }
}

/// Opens a pool once one connection could be made, retrying while the server is unreachable.
///
/// sqlx's pool would itself wait for a refused server until its acquire timeout, unbounded by
/// our attempts; so each try is one plain connection, and the pool is built after the first
/// success.
pub(crate) async fn open_pool<DB: Database>(
    url: &str,
    connect_options: <DB::Connection as Connection>::Options,
    pool_options: PoolOptions<DB>,
    options: &StoreOptions,
) -> Result<Pool<DB>, StoreError> {
    refuse_unnamed_sqlite(url)?;
    let redacted = redact_url(url);
    let attempts = options.connect_attempts.max(1);
    let mut backoff = options.connect_backoff;
    for attempt in 1..=attempts {
        let error =
            match tokio::time::timeout(options.connect_timeout, connect_options.connect()).await {
                Ok(Ok(probe)) => {
                    // The probe only proves the server answers; the pool makes its own connections.
                    let _ = probe.close().await;
                    break;
                }
                Ok(Err(error)) if !is_transient(&error) => return Err(connect_error(url, error)),
                Ok(Err(error)) => scrub(&error.to_string(), url),
                Err(_) => format!("no answer within {:?}", options.connect_timeout),
            };
        if attempt == attempts {
            return Err(connect_error(
                url,
                format!(
                    "{error} (gave up after {attempts} attempt{})",
                    if attempts == 1 { "" } else { "s" }
                ),
            ));
        }
        tracing::warn!(
            url = %redacted,
            attempt,
            attempts,
            retry_in = ?backoff,
            %error,
            "audit store unreachable, retrying"
        );
        tokio::time::sleep(backoff).await;
        backoff = backoff.saturating_mul(2);
    }
    // A server lost mid-run fails each statement after the connect timeout, not sqlx's 30 s.
    let pool = pool_options
        .acquire_timeout(options.connect_timeout)
        .connect_with(connect_options)
        .await
        .map_err(|error| connect_error(url, error))?;
    tracing::debug!(url = %redacted, "connected to the audit store");
    Ok(pool)
}

/// Whether a failed connection may succeed later: the server is down, starting or overloaded, or
/// (SQLite) another process holds the file's lock, as when several instances open a new database
/// at once and each switches it to WAL, which waits for no busy timeout. Bad credentials, a bad
/// URL or a missing database are not.
fn is_transient(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut => true,
        sqlx::Error::Database(error) => {
            error.is_transient_in_connect_phase() || is_sqlite_busy(error.as_ref())
        }
        _ => false,
    }
}

/// SQLITE_BUSY or SQLITE_LOCKED, with any extended code.
#[cfg(feature = "sqlite")]
fn is_sqlite_busy(error: &dyn sqlx::error::DatabaseError) -> bool {
    error
        .try_downcast_ref::<sqlx::sqlite::SqliteError>()
        .and_then(sqlx::error::DatabaseError::code)
        .and_then(|code| code.parse::<i32>().ok())
        .is_some_and(|code| matches!(code & 0xff, 5 | 6))
}

#[cfg(not(feature = "sqlite"))]
fn is_sqlite_busy(_error: &dyn sqlx::error::DatabaseError) -> bool {
    false
}

/// The pool size: at least one connection.
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub(crate) fn max_connections(options: &StoreOptions) -> u32 {
    options.max_connections.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unreachable_servers_are_retried() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(is_transient(&sqlx::Error::Io(refused)));
        assert!(is_transient(&sqlx::Error::PoolTimedOut));
        assert!(!is_transient(&sqlx::Error::Configuration("bad url".into())));
    }

    #[tokio::test]
    async fn unknown_schemes_are_unsupported() {
        let Err(err) = connect("oracle://u:pw@db/x", StoreOptions::default()).await else {
            panic!("oracle is not supported");
        };
        let message = err.to_string();
        assert!(matches!(err, StoreError::Unsupported(_)), "{message}");
        assert!(message.contains("oracle://u:***@db/x"), "{message}");
        assert!(!message.contains("pw"), "{message}");
    }

    #[tokio::test]
    async fn invalid_table_names_are_refused_before_connecting() {
        let options = StoreOptions::default().with_audit_table("a;b");
        let Err(err) = connect("postgres://127.0.0.1:1/x", options).await else {
            panic!("`a;b` is not a table name");
        };
        assert!(matches!(err, StoreError::InvalidIdentifier { .. }), "{err}");
    }
}
