//! Generic, part of the lock: the heartbeat's [`LeaseKeeper`], a pool of one connection of its
//! own, opened on the heartbeat's runtime with the store's connect options. A unit holding every
//! connection of the store's pool (SQLite's pool has one), or blocking the run's thread, cannot
//! starve it.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use flamingock_core::StoreError;
use flamingock_core::lock::{Fence, LeaseKeeper};
use sqlx::pool::PoolOptions;
use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Pool, Type};

use super::{Leases, LockTable};
use crate::dialect::Dialect;

/// How long the heartbeat waits for its one connection before an extension counts as failed.
const CONNECT_WAIT: Duration = Duration::from_secs(10);

/// Extends leases of one lock table through a pool of its own.
pub(crate) struct SqlKeeper<DB: Dialect> {
    pool: Pool<DB>,
    lock: Arc<LockTable>,
    /// Whether `pool` was opened for the keeper (and is closed with it) or is the store's.
    own: bool,
}

impl<DB: Dialect> SqlKeeper<DB> {
    /// A keeper beside the store's `pool`: a new one-connection pool with the same connect
    /// options, opened lazily on the current runtime; or the store's pool itself where a second
    /// connection would reach another database (SQLite in memory; the heartbeat then runs on the
    /// run's own runtime, see `heartbeat_on_own_thread`).
    ///
    /// The store's pool may be a user's, whose `after_connect` changed where table names resolve
    /// (`SET search_path`, `USE`): `name_resolution` is that setting as read from it.
    pub(crate) fn beside(
        pool: &Pool<DB>,
        lock: &Arc<LockTable>,
        name_resolution: Option<&str>,
    ) -> Self {
        let options = pool.connect_options();
        if !DB::second_connection_reaches_same_database(&options) {
            return Self {
                pool: pool.clone(),
                lock: Arc::clone(lock),
                own: false,
            };
        }
        let mut options = (*options).clone();
        if let Some(setting) = name_resolution {
            options = DB::resolving_names_as(options, setting);
        }
        let own = PoolOptions::<DB>::new()
            .max_connections(1)
            .min_connections(0)
            .idle_timeout(None)
            .max_lifetime(None)
            .acquire_timeout(CONNECT_WAIT)
            .connect_lazy_with(options);
        Self {
            pool: own,
            lock: Arc::clone(lock),
            own: true,
        }
    }
}

#[async_trait]
impl<DB> LeaseKeeper for SqlKeeper<DB>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    &'static str: ColumnIndex<DB::Row>,
    String: Type<DB> + for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB>,
    i64: Type<DB> + for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB>,
{
    async fn extend(&self, fence: &Fence, lease: Duration) -> Result<bool, StoreError> {
        Leases {
            pool: &self.pool,
            lock: &self.lock,
        }
        .extend(fence, lease)
        .await
    }

    async fn close(self: Box<Self>) {
        if self.own {
            self.pool.close().await;
        }
    }
}
