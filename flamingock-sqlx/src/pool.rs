//! Leaf: opening a pool, with a bounded retry and exponential back-off while the server is down
//! or starting, and a clear error (URL redacted) after the last try.

use std::time::Duration;

use flamingock_core::StoreError;
use sqlx::pool::PoolOptions;
use sqlx::{ConnectOptions, Connection, Database, Pool};

use crate::options::StoreOptions;
use crate::url::{redact_url, refuse_unnamed_sqlite, scrub};

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

/// A connection that went back to the pool less than this long ago is handed out again without a
/// ping: sqlx pings every connection as it returns to the pool, so it answered moments ago. One
/// idle for longer is pinged first (sqlx's `test_before_acquire`), and replaced if it fails. A
/// run's units take a connection one after another, each a round trip cheaper this way. A server
/// lost within that second fails the next statement instead of the ping, which the engine treats
/// as any lost reply (docs/architecture.md, unknown outcomes).
const PING_WHEN_IDLE_FOR: Duration = Duration::from_secs(1);

/// How long the probe and the pool's first connection wait for each other once one has finished.
const PROBE_GRACE: Duration = Duration::from_millis(100);

/// Opens a pool once one connection could be made, retrying while the server is unreachable.
///
/// sqlx's pool would itself wait for a refused server until its acquire timeout, unbounded by
/// our attempts, and report only that it timed out; so for a server each try also makes one
/// plain connection, whose error is the server's own ([`probed`]). A SQLite file needs no such
/// probe, and every connection to it parses the whole schema first (milliseconds once it holds
/// thousands of tables): there each try builds the pool itself.
pub(crate) async fn open_pool<DB: Database>(
    url: &str,
    connect_options: <DB::Connection as Connection>::Options,
    pool_options: PoolOptions<DB>,
    options: &StoreOptions,
) -> Result<Pool<DB>, StoreError> {
    refuse_unnamed_sqlite(url)?;
    let redacted = redact_url(url);
    // A server lost mid-run fails each statement after the connect timeout, not sqlx's 30 s.
    let pool_options = pool_options
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= PING_WHEN_IDLE_FOR {
                    conn.ping().await?;
                }
                Ok(true)
            })
        })
        .acquire_timeout(options.connect_timeout);
    let probe_first = !DB::URL_SCHEMES.contains(&"sqlite");
    let attempts = options.connect_attempts.max(1);
    let mut backoff = options.connect_backoff;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let connecting = async {
            if probe_first {
                probed(&connect_options, pool_options.clone()).await
            } else {
                pool_options
                    .clone()
                    .connect_with(connect_options.clone())
                    .await
            }
        };
        let tried = tokio::time::timeout(options.connect_timeout, connecting).await;
        let error = match tried {
            Ok(Ok(pool)) => {
                tracing::debug!(url = %redacted, "connected to the audit store");
                return Ok(pool);
            }
            Ok(Err(error)) if !is_transient(&error) => return Err(connect_error(url, error)),
            Ok(Err(error)) => scrub(&error.to_string(), url),
            Err(_) => format!("no answer within {:?}", options.connect_timeout),
        };
        if attempt >= attempts {
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
}

/// The pool, connected beside a probe connection that tells what is wrong when the server does
/// not answer. Both connect at once, so that a start waits for one connection, not two: a probe
/// that fails stops the pool's attempt unless the pool connects within [`PROBE_GRACE`] (it would
/// otherwise retry a refused server until its acquire timeout and then report only that it timed
/// out); one that succeeds is closed while the pool finishes.
async fn probed<DB: Database>(
    connect_options: &<DB::Connection as Connection>::Options,
    pool_options: PoolOptions<DB>,
) -> Result<Pool<DB>, sqlx::Error> {
    let probe = async {
        let probe = connect_options.connect().await?;
        let _ = probe.close().await;
        Ok::<(), sqlx::Error>(())
    };
    let pool = pool_options.connect_with(connect_options.clone());
    tokio::pin!(probe, pool);
    tokio::select! {
        probed = &mut probe => match probed {
            Ok(()) => pool.await,
            // Near the server's connection limit the probe may lose the last free connection to
            // the pool: a pool that connects within the grace is what was asked for.
            Err(error) => match tokio::time::timeout(PROBE_GRACE, &mut pool).await {
                Ok(Ok(pool)) => Ok(pool),
                _ => Err(error),
            },
        },
        pooled = &mut pool => match pooled {
            Ok(pool) => {
                // Closed politely rather than cut mid-handshake, if it answers soon; its outcome
                // no longer matters.
                let _ = tokio::time::timeout(PROBE_GRACE, probe).await;
                Ok(pool)
            }
            // The probe's error is the server's own.
            Err(error) => match tokio::time::timeout(PROBE_GRACE, probe).await {
                Ok(Err(probed)) => Err(probed),
                _ => Err(error),
            },
        },
    }
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
}
