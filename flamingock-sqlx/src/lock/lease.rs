//! Generic, part of the lock: the lease operations on one pool ([`Leases`]): take, extend, release, read and remove
//! by force the lease row of a key, as the store's [`DistributedLock`] runs them (see the parent
//! module for how each one is made safe).
//!
//! [`DistributedLock`]: flamingock_core::lock::DistributedLock

use std::time::{Duration, Instant};

use flamingock_core::StoreError;
use flamingock_core::lock::{Acquisition, Fence, LockInfo};
use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Pool, Type};

use super::{HeldLease, LockTable, decode_lock, lease_ms};
use crate::dialect::Dialect;
use crate::sql::{begin, query_error, sql};

/// The leases of one lock table, reached through one pool.
pub(crate) struct Leases<'a, DB: Dialect> {
    pub(crate) pool: &'a Pool<DB>,
    pub(crate) lock: &'a LockTable,
}

impl<DB> Leases<'_, DB>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    &'static str: ColumnIndex<DB::Row>,
    String: Type<DB> + for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB>,
    i64: Type<DB> + for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB>,
{
    /// The atomic upsert, then the row as it now stands, in one transaction.
    async fn upsert_and_read(
        &self,
        fence: &Fence,
        hostname: &str,
        lease_ms: i64,
    ) -> Result<Option<DB::Row>, sqlx::Error> {
        let lock = self.lock;
        let mut tx = begin(self.pool).await?;
        sqlx::query(sql(&lock.sql.upsert))
            .bind(fence.key.clone())
            .bind(fence.owner.clone())
            .bind(hostname.to_owned())
            .bind(lease_ms)
            .execute(&mut *tx)
            .await?;
        let row = sqlx::query(sql(&lock.sql.select))
            .bind(fence.key.clone())
            .fetch_optional(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(row)
    }
    pub(crate) async fn try_acquire(
        &self,
        fence: &Fence,
        hostname: &str,
        lease: Duration,
    ) -> Result<Acquisition, StoreError> {
        let lock = self.lock;
        let lease_ms = lease_ms(lease);
        // The row can change between statements (a release, an expiry); a few rounds settle it.
        for _ in 0..3 {
            let seen = self.read(&fence.key).await?;
            if let Some(holder) = &seen
                && !holder.expired
                && holder.owner != fence.owner
            {
                return Ok(Acquisition::Held(holder.clone()));
            }
            let sent = Instant::now();
            let outcome = match self.upsert_and_read(fence, hostname, lease_ms).await {
                Ok(row) => row.map(|row| decode_lock(&row, &lock.table)).transpose()?,
                Err(error) if DB::is_busy(&error) => match seen {
                    // Another connection holds the database's write lock (on SQLite, a holder in
                    // the middle of a shared transaction): report the holder and poll again.
                    Some(holder) => return Ok(Acquisition::Held(holder)),
                    None => continue,
                },
                Err(error) => return Err(query_error("taking the lock")(error)),
            };
            match outcome {
                Some(now) if now.owner == fence.owner && !now.expired => {
                    lock.held().insert(
                        fence.key.clone(),
                        HeldLease {
                            owner: fence.owner.clone(),
                            lease_ms,
                            renewed: sent,
                        },
                    );
                    return Ok(Acquisition::Acquired);
                }
                Some(holder) if !holder.expired => return Ok(Acquisition::Held(holder)),
                // Expired or gone again right after the upsert: look once more.
                _ => continue,
            }
        }
        Err(StoreError::Query {
            action: "taking the lock",
            source: format!(
                "the lock row \"{}\" in table `{}` kept changing while it was being taken",
                fence.key, lock.table
            )
            .into(),
        })
    }

    pub(crate) async fn extend(&self, fence: &Fence, lease: Duration) -> Result<bool, StoreError> {
        let lock = self.lock;
        if DB::TRANSACTION_LOCKS_DATABASE
            && lock.writes_held()
            && lock
                .held()
                .get(&fence.key)
                .is_some_and(|held| held.owner == fence.owner)
        {
            // A shared transaction of ours holds the database's write lock: nobody can take the
            // lease meanwhile, and the transaction renews it when due, before its fenced insert
            // or right after it rolls back (`write_hold`).
            return Ok(true);
        }
        let sent = Instant::now();
        let matched = sqlx::query(sql(&lock.sql.extend))
            .bind(lease_ms(lease))
            .bind(fence.key.clone())
            .bind(fence.owner.clone())
            .execute(self.pool)
            .await
            .map_err(query_error("extending the lock's lease"))?;
        let matched = DB::rows_affected(&matched);
        if matched == 0 {
            lock.forget(&fence.key, Some(&fence.owner));
        } else {
            lock.renewed(&fence.key, &fence.owner, sent);
        }
        Ok(matched > 0)
    }

    pub(crate) async fn release(&self, fence: &Fence) -> Result<(), StoreError> {
        let lock = self.lock;
        lock.forget(&fence.key, Some(&fence.owner));
        sqlx::query(sql(&lock.sql.release))
            .bind(fence.key.clone())
            .bind(fence.owner.clone())
            .execute(self.pool)
            .await
            .map_err(query_error("releasing the lock"))?;
        Ok(())
    }

    pub(crate) async fn read(&self, key: &str) -> Result<Option<LockInfo>, StoreError> {
        let lock = self.lock;
        let row = sqlx::query(sql(&lock.sql.select))
            .bind(key.to_owned())
            .fetch_optional(self.pool)
            .await
            .map_err(query_error("reading the lock"))?;
        row.map(|row| decode_lock(&row, &lock.table)).transpose()
    }

    pub(crate) async fn force_release(&self, key: &str) -> Result<Option<LockInfo>, StoreError> {
        let lock = self.lock;
        let action = "removing the lock";
        let mut tx = begin(self.pool).await.map_err(query_error(action))?;
        let row = sqlx::query(sql(&lock.sql.select_for_update))
            .bind(key.to_owned())
            .fetch_optional(&mut *tx)
            .await
            .map_err(query_error(action))?;
        // Removed whatever it holds: a row that cannot be read is what an operator removes it for.
        let removed = match row.map(|row| decode_lock(&row, &lock.table)).transpose() {
            Ok(removed) => removed,
            Err(error) => {
                tracing::warn!(%error, "removing a lock row that cannot be read");
                None
            }
        };
        sqlx::query(sql(&lock.sql.delete))
            .bind(key.to_owned())
            .execute(&mut *tx)
            .await
            .map_err(query_error(action))?;
        tx.commit().await.map_err(query_error(action))?;
        lock.forget(key, None);
        if let Some(info) = &removed {
            tracing::warn!(%info, "lock removed by force");
        }
        Ok(removed)
    }
}
