//! Operating the distributed lock from outside a run (docs/architecture.md#lock): who holds it, and removing
//! a lease that a crashed runner left behind. The CLI's `lock show|release` is built on these.

use serde::Serialize;

use super::Engine;
use crate::error::Error;
use crate::lock::{DistributedLock, Fence, LockInfo, LockOptions};
use crate::store::StoreError;

/// What [`Engine::release_stale_lock`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", content = "lock", rename_all = "snake_case")]
pub enum LockRelease {
    /// Nobody held the lock; nothing was removed.
    Free,
    /// The lease had ended; its row was removed.
    Released(LockInfo),
    /// The lease is still running (its holder may be alive and working); nothing was removed.
    /// [`Engine::force_release_lock`] removes it anyway.
    Live(LockInfo),
}

impl Engine {
    /// How runs of this engine use the lock (key, lease, wait).
    pub fn lock_options(&self) -> &LockOptions {
        &self.lock_options
    }

    /// The current holder of this engine's lock key, as the database sees it (`expired` judged by
    /// the database clock), or `None` when nobody holds it. Creates the store's tables if missing.
    pub async fn lock_state(&self) -> Result<Option<LockInfo>, Error> {
        let lock = self.distributed_lock()?;
        self.store.initialize().await?;
        Ok(lock.read(&self.lock_options.key).await?)
    }

    /// Removes the lease of this engine's lock key if it has ended (its holder crashed or hangs),
    /// so that the next run need not wait for it; a running lease is left alone and reported.
    ///
    /// The removal names the holder it read: if another runner took the lock in between, its
    /// fresh lease is not touched.
    pub async fn release_stale_lock(&self) -> Result<LockRelease, Error> {
        let lock = self.distributed_lock()?;
        self.store.initialize().await?;
        let Some(holder) = lock.read(&self.lock_options.key).await? else {
            return Ok(LockRelease::Free);
        };
        if !holder.expired {
            return Ok(LockRelease::Live(holder));
        }
        let stale = Fence {
            key: holder.key.clone(),
            owner: holder.owner.clone(),
        };
        lock.release(&stale).await?;
        tracing::warn!(%holder, "stale lock released");
        Ok(LockRelease::Released(holder))
    }

    /// Removes the lease of this engine's lock key whoever holds it, running or not, and returns
    /// what was removed. A holder that is still alive loses its lease: its next audit write is
    /// refused and it stops (never recording anything more), but a non-transactional unit it is
    /// in the middle of may still finish its effect. Prefer
    /// [`release_stale_lock`](Self::release_stale_lock).
    pub async fn force_release_lock(&self) -> Result<Option<LockInfo>, Error> {
        let lock = self.distributed_lock()?;
        self.store.initialize().await?;
        Ok(lock.force_release(&self.lock_options.key).await?)
    }

    fn distributed_lock(&self) -> Result<&dyn DistributedLock, Error> {
        self.store.lock().ok_or_else(|| {
            Error::Store(StoreError::Unsupported(format!(
                "the {} keeps no distributed lock",
                self.store.describe()
            )))
        })
    }
}
