//! The distributed lock (docs/architecture.md#lock): a lease row judged by the database clock, so that many
//! instances starting together apply each unit exactly once.
//!
//! The engine takes the lock only when something is pending, re-plans after taking it, keeps it
//! alive from a background task at a third of the lease, and releases it however the run ends.
//! Every audit row written under the lock is *fenced*: the store inserts it only while the lease
//! is still this runner's, in the same statement, so a paused instance that lost its lease can
//! record nothing.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::store::StoreError;

/// The key of the lock a run takes unless configured otherwise.
pub const DEFAULT_LOCK_KEY: &str = "flamingock";

/// The lease holder as stored, with the database's view of whether the lease has ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LockInfo {
    /// The lock's key (its row).
    pub key: String,
    /// The holder's runner id.
    pub owner: String,
    /// The holder's host name.
    pub hostname: String,
    /// When the holder took the lease, by the database clock.
    pub acquired_at: DateTime<Utc>,
    /// When the lease ends unless its holder extends it, by the database clock.
    pub expires_at: DateTime<Utc>,
    /// Whether `expires_at` had passed by the database clock when this was read.
    pub expired: bool,
}

impl std::fmt::Display for LockInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "lock \"{}\" held by runner {} on host {} since {}, {} {}",
            self.key,
            self.owner,
            self.hostname,
            self.acquired_at.format("%Y-%m-%d %H:%M:%S%.3f UTC"),
            if self.expired {
                "expired at"
            } else {
                "expires at"
            },
            self.expires_at.format("%Y-%m-%d %H:%M:%S%.3f UTC"),
        )
    }
}

/// What an attempt to take the lock came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acquisition {
    /// The lease is ours.
    Acquired,
    /// Someone else holds a lease that has not ended.
    Held(LockInfo),
}

/// Who must hold which lease for a fenced write to succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    /// The lock's key.
    pub key: String,
    /// The runner id that must hold it.
    pub owner: String,
}

/// A lease lock kept in the audit store's database.
#[async_trait]
pub trait DistributedLock: Send + Sync {
    /// One atomic statement: takes the lease if the row is absent, expired, or already ours.
    async fn try_acquire(
        &self,
        fence: &Fence,
        hostname: &str,
        lease: Duration,
    ) -> Result<Acquisition, StoreError>;

    /// Extends our lease to `lease` from now; `false` when it is no longer ours (never re-taken).
    async fn extend(&self, fence: &Fence, lease: Duration) -> Result<bool, StoreError>;

    /// Gives the lease up if it is still ours.
    async fn release(&self, fence: &Fence) -> Result<(), StoreError>;

    /// The current holder of `key`, if any row exists.
    async fn read(&self, key: &str) -> Result<Option<LockInfo>, StoreError>;

    /// Removes the lease of `key` whoever holds it (an operator's `lock release`); returns what
    /// was removed. A row that cannot be read is removed all the same, and returned as `None`
    /// ([`read`](Self::read) reports it as [`StoreError::CorruptLockRow`]).
    async fn force_release(&self, key: &str) -> Result<Option<LockInfo>, StoreError>;

    /// What the heartbeat extends the lease with: a handle that shares nothing with the run's own
    /// connections, so that a unit holding every connection of the store's pool, or blocking the
    /// thread the run is on, cannot starve it.
    ///
    /// The engine calls this on the heartbeat's own thread and runtime, so whatever it opens (a
    /// database connection) belongs to that runtime.
    async fn keeper(&self) -> Result<Box<dyn LeaseKeeper>, StoreError>;

    /// Whether the heartbeat may run on a thread and runtime of its own (the default). A lock
    /// whose keeper can only share the run's own connections (SQLite in memory: its one
    /// connection *is* the database) says no, and the heartbeat runs as a task of the run.
    fn heartbeat_on_own_thread(&self) -> bool {
        true
    }
}

/// Extends one runner's lease on behalf of its heartbeat (see [`DistributedLock::keeper`]).
#[async_trait]
pub trait LeaseKeeper: Send + Sync {
    /// As [`DistributedLock::extend`]: `false` once the lease is no longer ours.
    async fn extend(&self, fence: &Fence, lease: Duration) -> Result<bool, StoreError>;

    /// Closes whatever the keeper opened; called on the runtime that made it.
    async fn close(self: Box<Self>) {}
}

/// How the engine uses the lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockOptions {
    /// The lock row's key; runs with different keys do not exclude each other.
    pub key: String,
    /// How long a lease lasts without being extended (default 60 s).
    pub lease: Duration,
    /// How long to wait for a lease held by someone else before giving up (default 180 s).
    pub wait: Duration,
    /// The first pause between attempts; it doubles up to a second (default 50 ms).
    pub retry_interval: Duration,
}

impl Default for LockOptions {
    fn default() -> Self {
        Self {
            key: DEFAULT_LOCK_KEY.to_owned(),
            lease: Duration::from_secs(60),
            wait: Duration::from_secs(180),
            retry_interval: Duration::from_millis(50),
        }
    }
}
