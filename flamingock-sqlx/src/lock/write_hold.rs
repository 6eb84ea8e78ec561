//! Generic, part of the lock: SQLite's database-wide write lock and the lease (the parent module has the lock itself).
//!
//! A `TX_SHARED` transaction on SQLite begins with `BEGIN IMMEDIATE` and holds the whole
//! database's write lock until it ends, so the heartbeat, which writes from another connection,
//! cannot extend the lease while a unit runs. Nobody else can change the lease row then either:
//! another instance would need that same write lock to take it. So while a shared transaction of
//! this store is open, `extend` reports the lease as kept without writing ([`WriteHold`]); the
//! transaction itself notes the time at which it took the write lock, and before it commits
//! renews the leases this store holds, *only* if a lease was still valid when the write lock was
//! taken. The renewal never resurrects a lease someone else could have taken: from that moment on
//! no other connection could write. Its fenced insert then finds a valid lease, however long the
//! unit ran.
//!
//! Two things keep a unit at the floor's four statements (`BEGIN`, the change, the fenced insert,
//! `COMMIT`):
//!
//! - The time the write lock was taken comes from this process's clock right after `BEGIN`
//!   returns, not from a `SELECT`: SQLite's `'now'` *is* this process's clock (the VFS reads the
//!   system time; [`clock_text`] writes it as the lock table does), and a time read after the
//!   lock was granted can only be later than the grant, which makes the check stricter.
//! - A lease is renewed in the transaction only once a third of it has passed since this process
//!   last moved its expiry (timed on the monotonic clock from before that statement was sent), as
//!   the heartbeat would; until then at least two thirds of it remain, and the fenced insert,
//!   which still judges the lease by the database clock, finds it valid.
//!
//! A unit that fails rolls the whole transaction back (no savepoint); the leases due for renewal
//! are then renewed the same way right after, from the pool: the renewal still requires the row to
//! be ours and valid at the moment the write lock was taken, so a lease that lapsed while the unit
//! held the lock comes back only if nobody has taken it since, exactly as re-acquiring it would.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use chrono::{DateTime, Utc};
use sqlx::{Encode, Executor, IntoArguments, Pool, Transaction, Type};

use super::LockTable;
use crate::dialect::Dialect;
use crate::sql::{begin, sql};

impl LockTable {
    /// Notes that a shared transaction is about to take the database's write lock; the returned
    /// hold ends when it is dropped.
    fn hold_writes(self: &Arc<Self>) -> WriteHold {
        self.write_holds.fetch_add(1, Ordering::SeqCst);
        WriteHold {
            lock: Arc::clone(self),
            since: None,
        }
    }

    /// Whether a shared transaction of this store holds (or waits for) the write lock.
    pub(super) fn writes_held(&self) -> bool {
        self.write_holds.load(Ordering::SeqCst) > 0
    }
}

/// A shared transaction's hold on SQLite's database-wide write lock.
pub(crate) struct WriteHold {
    lock: Arc<LockTable>,
    /// The clock right after the write lock was taken, as the lock table writes times.
    since: Option<String>,
}

impl Drop for WriteHold {
    fn drop(&mut self) {
        self.lock.write_holds.fetch_sub(1, Ordering::SeqCst);
    }
}

/// `at` as SQLite's `strftime('%Y-%m-%dT%H:%M:%fZ', ..)` writes it in the lock table: RFC 3339
/// in UTC with milliseconds (truncated, as SQLite's millisecond clock is), whose text order is
/// time order.
pub(crate) fn clock_text(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Opens a shared transaction; on a database whose transactions lock it whole (SQLite), also
/// notes when the write lock was taken.
pub(crate) async fn begin_shared<DB>(
    pool: &Pool<DB>,
    lock: &Arc<LockTable>,
) -> Result<(Transaction<'static, DB>, Option<WriteHold>), sqlx::Error>
where
    DB: Dialect,
{
    if !DB::TRANSACTION_LOCKS_DATABASE {
        return Ok((begin(pool).await?, None));
    }
    // Counted before BEGIN: while it waits for the write lock the heartbeat does not write
    // either; if the lease lapses meanwhile and someone takes it, the fence refuses the commit.
    let mut hold = lock.hold_writes();
    let tx = begin(pool).await?;
    // After BEGIN IMMEDIATE returned: no earlier than the moment the write lock was granted.
    hold.since = Some(clock_text(Utc::now()));
    Ok((tx, Some(hold)))
}

/// Leases a statement renewed, each with when that statement was sent: noted in the lock table
/// ([`Renewals::note`]) once the renewal is known to have committed.
#[must_use = "renewals count only once noted, after their transaction committed"]
pub(crate) struct Renewals {
    lock: Arc<LockTable>,
    renewed: Vec<(String, String, Instant)>,
}

impl Renewals {
    /// Records the renewals: their transaction committed.
    pub(crate) fn note(self) {
        for (key, owner, sent) in &self.renewed {
            self.lock.renewed(key, owner, *sent);
        }
    }
}

/// Renews every lease this store holds that is due for renewal (see the module documentation)
/// and was valid when `hold`'s transaction took the write lock, through `conn`. The renewals
/// returned count once their transaction has committed.
pub(crate) async fn renew_held<DB>(
    conn: &mut DB::Connection,
    hold: &WriteHold,
) -> Result<Renewals, sqlx::Error>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    String: Type<DB> + for<'q> Encode<'q, DB>,
    i64: Type<DB> + for<'q> Encode<'q, DB>,
{
    let mut renewals = Renewals {
        lock: Arc::clone(&hold.lock),
        renewed: Vec::new(),
    };
    let (Some(statement), Some(since)) = (&hold.lock.sql.renew_since, &hold.since) else {
        return Ok(renewals);
    };
    for (key, lease) in hold.lock.due_for_renewal() {
        let sent = Instant::now();
        let renewed = sqlx::query(sql(statement))
            .bind(lease.lease_ms)
            .bind(key.clone())
            .bind(lease.owner.clone())
            .bind(since.clone())
            .execute(&mut *conn)
            .await?;
        if DB::rows_affected(&renewed) > 0 {
            renewals.renewed.push((key, lease.owner, sent));
        }
    }
    Ok(renewals)
}

/// Rolls the whole transaction back, then renews, from `pool`, the held leases that are due and
/// were valid when the transaction took the write lock (the module documentation says why that
/// is safe once the write lock is released). A failed renewal is left to the heartbeat: the
/// rollback itself is what must not fail.
pub(crate) async fn rollback_keeping_lease<DB>(
    tx: Transaction<'static, DB>,
    hold: WriteHold,
    pool: &Pool<DB>,
) -> Result<(), sqlx::Error>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    String: Type<DB> + for<'q> Encode<'q, DB>,
    i64: Type<DB> + for<'q> Encode<'q, DB>,
{
    tx.rollback().await?;
    if hold.lock.due_for_renewal().is_empty() {
        return Ok(());
    }
    let renewed = async {
        let mut conn = pool.acquire().await?;
        renew_held::<DB>(&mut conn, &hold).await
    }
    .await;
    match renewed {
        // Outside a transaction: each renewal committed as it ran.
        Ok(renewals) => renewals.note(),
        Err(error) => {
            tracing::warn!(%error, "could not renew the lease after rolling a unit back; the heartbeat will try");
        }
    }
    Ok(())
}

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    use super::*;

    /// The module's premise: SQLite's `'now'` is this process's clock, written as [`clock_text`]
    /// writes it, so a time noted here right after `BEGIN` is comparable with the lease row's.
    #[tokio::test]
    async fn sqlite_now_is_this_process_clock_in_the_lock_table_format() {
        let pool = sqlx::SqlitePool::connect("sqlite::memory:").await.unwrap();
        for _ in 0..50 {
            let before = clock_text(Utc::now());
            let (now,): (String,) = sqlx::query_as("SELECT strftime('%Y-%m-%dT%H:%M:%fZ', 'now')")
                .fetch_one(&pool)
                .await
                .unwrap();
            let after = clock_text(Utc::now());
            assert_eq!(now.len(), before.len(), "{now} against {before}");
            assert!(
                before <= now && now <= after,
                "{before} <= {now} <= {after}"
            );
        }
    }
}
