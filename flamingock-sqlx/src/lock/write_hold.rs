//! Generic, part of the lock: SQLite's database-wide write lock and the lease (the parent module has the lock itself).
//!
//! A `TX_SHARED` transaction on SQLite begins with `BEGIN IMMEDIATE` and holds the whole
//! database's write lock until it ends, so the heartbeat, which writes from another connection,
//! cannot extend the lease while a unit runs. Nobody else can change the lease row then either:
//! another instance would need that same write lock to take it. So while a shared transaction of
//! this store is open, `extend` reports the lease as kept without writing ([`WriteHold`]); the
//! transaction itself records the database time at which it took the write lock, and before it
//! commits (or, through a savepoint, after it rolls the unit's work back) it renews every lease
//! this store holds, *only* if that lease was still valid when the write lock was taken. The
//! renewal never resurrects a lease someone else could have taken: from that moment on no other
//! connection could write. Its fenced insert then finds a valid lease, however long the unit ran.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Pool, Row, Transaction, Type};

use super::{HeldLease, LockTable};
use crate::dialect::Dialect;
use crate::sql::{begin, sql};

/// The savepoint a SQLite shared transaction rolls back to, keeping its write lock.
const UNIT_SAVEPOINT: &str = "flamingock_unit";

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
    /// The database clock right after the write lock was taken.
    since: Option<String>,
}

impl Drop for WriteHold {
    fn drop(&mut self) {
        self.lock.write_holds.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Opens a shared transaction; on a database whose transactions lock it whole (SQLite), also
/// records when the write lock was taken and sets the savepoint a rollback returns to.
pub(crate) async fn begin_shared<DB>(
    pool: &Pool<DB>,
    lock: &Arc<LockTable>,
) -> Result<(Transaction<'static, DB>, Option<WriteHold>), sqlx::Error>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    &'static str: ColumnIndex<DB::Row>,
    String: Type<DB> + for<'r> Decode<'r, DB>,
{
    if !DB::TRANSACTION_LOCKS_DATABASE {
        return Ok((begin(pool).await?, None));
    }
    // Counted before BEGIN: while it waits for the write lock the heartbeat does not write
    // either; if the lease lapses meanwhile and someone takes it, the fence refuses the commit.
    let mut hold = lock.hold_writes();
    let mut tx = begin(pool).await?;
    let now: String = sqlx::query(DB::SELECT_NOW)
        .fetch_one(&mut *tx)
        .await?
        .try_get("now")?;
    hold.since = Some(now);
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("SAVEPOINT {UNIT_SAVEPOINT}")))
        .execute(&mut *tx)
        .await?;
    Ok((tx, Some(hold)))
}

/// Renews every lease this store holds that was valid when `hold`'s transaction took the write
/// lock (see the module documentation).
pub(crate) async fn renew_held<DB>(
    conn: &mut DB::Connection,
    hold: &WriteHold,
) -> Result<(), sqlx::Error>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    String: Type<DB> + for<'q> Encode<'q, DB>,
    i64: Type<DB> + for<'q> Encode<'q, DB>,
{
    let (Some(statement), Some(since)) = (&hold.lock.sql.renew_since, &hold.since) else {
        return Ok(());
    };
    let held: Vec<(String, HeldLease)> = hold
        .lock
        .held()
        .iter()
        .map(|(key, lease)| (key.clone(), lease.clone()))
        .collect();
    for (key, lease) in held {
        sqlx::query(sql(statement))
            .bind(lease.lease_ms)
            .bind(key)
            .bind(lease.owner)
            .bind(since.clone())
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Rolls the unit's work back to the savepoint set at `BEGIN`, renews the held leases while the
/// write lock is still ours, and commits that (empty) transaction; on any failure the whole
/// transaction is rolled back instead, which undoes the unit's work all the same.
pub(crate) async fn rollback_keeping_lease<DB>(
    mut tx: Transaction<'static, DB>,
    hold: WriteHold,
) -> Result<(), sqlx::Error>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    String: Type<DB> + for<'q> Encode<'q, DB>,
    i64: Type<DB> + for<'q> Encode<'q, DB>,
{
    let undo =
        format!("ROLLBACK TO SAVEPOINT {UNIT_SAVEPOINT}; RELEASE SAVEPOINT {UNIT_SAVEPOINT}");
    let kept = async {
        sqlx::raw_sql(sqlx::AssertSqlSafe(undo))
            .execute(&mut *tx)
            .await?;
        renew_held::<DB>(&mut tx, &hold).await
    }
    .await;
    match kept {
        Ok(()) => tx.commit().await,
        Err(error) => {
            tracing::warn!(%error, "could not keep the lease while rolling back; rolling back plainly");
            tx.rollback().await
        }
    }
}
