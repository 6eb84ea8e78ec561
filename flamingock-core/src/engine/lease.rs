//! Holding the distributed lock for one run: acquire with back-off, keep alive in the background,
//! notice loss, release however the run ends (docs/architecture.md#lock).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::PlannedUnit;
use super::heartbeat::{Heartbeat, LeaseClock};
use crate::error::Error;
use crate::lock::{Acquisition, DistributedLock, Fence, LockInfo, LockOptions};
use crate::plan::Decision;
use crate::store::{AuditStore, StoreError};

/// The longest pause between two attempts to take a held lock.
const MAX_PAUSE: Duration = Duration::from_millis(250);

/// The least time one try to take the lock is given, however little is left of the wait.
const MIN_TRY: Duration = Duration::from_secs(1);

/// How long the clean-up after a try cut short may take.
const CLEAN_UP: Duration = Duration::from_secs(2);

/// What waiting for the lock came to.
pub(super) enum Acquired {
    /// The lease is this runner's.
    Lease(Lease),
    /// The store has no lock: runs are not coordinated.
    NoLock,
    /// While waiting, the audit showed every unit applied: nothing needs the lock any more.
    NotNeeded(Vec<PlannedUnit>),
}

/// This runner's lease, for the length of one run.
pub(super) struct Lease {
    store: Arc<dyn AuditStore>,
    pub(super) fence: Fence,
    /// How long the lease lasts from each extension.
    length: Duration,
    clock: Arc<LeaseClock>,
    heartbeat: Heartbeat,
    released: bool,
}

impl Lease {
    /// Takes the lock, retrying with back-off while someone else holds it, for at most
    /// `options.wait`; then keeps it alive at a third of the lease.
    ///
    /// While it waits, `replan` reads the audit again: when another instance has meanwhile applied
    /// everything, the wait ends without the lock ([`Acquired::NotNeeded`]).
    pub(super) async fn acquire<Replan, Planned>(
        store: &Arc<dyn AuditStore>,
        options: &LockOptions,
        owner: &str,
        hostname: &str,
        mut replan: Replan,
    ) -> Result<Acquired, Error>
    where
        Replan: FnMut() -> Planned,
        Planned: Future<Output = Result<Option<Vec<PlannedUnit>>, Error>>,
    {
        let Some(lock) = store.lock() else {
            return Ok(Acquired::NoLock);
        };
        let fence = Fence {
            key: options.key.clone(),
            owner: owner.to_owned(),
        };
        let started = Instant::now();
        let mut pause = options.retry_interval.max(Duration::from_millis(1));
        let mut last_holder: Option<LockInfo> = None;
        let taken_at = loop {
            let sent = Instant::now();
            // One try may itself wait on the database (a frozen holder's open transaction: SQLite's
            // write lock, an InnoDB row lock) far longer than the lock wait: bound it by what is
            // left of the wait.
            let left = options.wait.saturating_sub(started.elapsed()).max(MIN_TRY);
            let tried =
                tokio::time::timeout(left, lock.try_acquire(&fence, hostname, options.lease)).await;
            let Ok(tried) = tried else {
                return Err(gave_up_waiting(lock, &fence, last_holder, started.elapsed()).await);
            };
            match tried? {
                Acquisition::Acquired => break sent,
                Acquisition::Held(holder) => {
                    last_holder = Some(holder.clone());
                    let waited = started.elapsed();
                    if waited >= options.wait {
                        return Err(Error::LockTimeout {
                            holder: Box::new(holder),
                            waited,
                            unanswered: false,
                        });
                    }
                    tracing::debug!(%holder, "waiting for the lock");
                    tokio::time::sleep(pause.min(options.wait - waited)).await;
                    // Short pauses: a waiter that sleeps long after the release wastes the fleet's
                    // time, and each wake-up costs one state read.
                    pause = (pause * 2).min(MAX_PAUSE);
                    if let Some(planned) = replan().await?
                        && planned.iter().all(|p| p.decision == Decision::Skip)
                    {
                        tracing::info!("another instance applied everything while this one waited");
                        return Ok(Acquired::NotNeeded(planned));
                    }
                }
            }
        };
        tracing::info!(key = %fence.key, "lock acquired");
        let clock = LeaseClock::new(taken_at);
        let heartbeat = Heartbeat::start(
            store.clone(),
            fence.clone(),
            options.lease,
            Arc::clone(&clock),
        );
        Ok(Acquired::Lease(Lease {
            store: store.clone(),
            fence,
            length: options.lease,
            clock,
            heartbeat,
            released: false,
        }))
    }

    /// Takes the lock whatever the audit says meanwhile (undo, fix): `None` when the store has no
    /// lock.
    pub(super) async fn acquire_always(
        store: &Arc<dyn AuditStore>,
        options: &LockOptions,
        owner: &str,
        hostname: &str,
    ) -> Result<Option<Lease>, Error> {
        let no_replan = || std::future::ready(Ok(None));
        Ok(
            match Self::acquire(store, options, owner, hostname, no_replan).await? {
                Acquired::Lease(lease) => Some(lease),
                Acquired::NoLock | Acquired::NotNeeded(_) => None,
            },
        )
    }

    /// Whether the lease is known to be lost (by the heartbeat, or by a refused fenced write).
    pub(super) fn is_lost(&self) -> bool {
        self.clock.is_lost()
    }

    /// Whether a unit may start under this lease: not if it is lost, nor if it may have lapsed
    /// (no extension known to have succeeded for a whole lease; it is then never re-taken). When
    /// the last extension is older than half a lease (a heartbeat held up), the lease is confirmed
    /// first, so that a unit starts with a good part of a lease ahead of it.
    pub(super) async fn may_start_unit(&self) -> bool {
        if self.is_lost() {
            return false;
        }
        let since = self.clock.since_extended();
        if since >= self.length {
            tracing::error!(key = %self.fence.key, ?since, "the lock's lease may have lapsed; stopping before the next unit");
            self.clock.mark_lost();
            return false;
        }
        if since < self.length / 2 {
            return true;
        }
        match self.confirm().await {
            Ok(kept) => kept,
            Err(error) => {
                tracing::warn!(%error, "could not confirm the lock's lease before a unit");
                // Not known to be ours for long enough: do not start the unit.
                false
            }
        }
    }

    /// Extends the lease right before a commit that no audit fence can cover (a `TX_SEPARATE`
    /// target's own transaction): `Ok(true)` when the lease is ours for a whole lease from now, so
    /// that another instance can take over only if this one stalls that long before committing.
    /// A refusal marks the lease lost.
    pub(super) async fn confirm(&self) -> Result<bool, StoreError> {
        if self.is_lost() {
            return Ok(false);
        }
        let Some(lock) = self.store.lock() else {
            return Ok(true);
        };
        let sent = Instant::now();
        let kept = lock.extend(&self.fence, self.length).await?;
        if kept {
            self.clock.extended(sent);
        } else {
            tracing::error!(key = %self.fence.key, "the lock's lease was lost; stopping");
            self.clock.mark_lost();
        }
        Ok(kept)
    }

    /// Notes that a fenced write was refused.
    pub(super) fn observe(&self, error: &StoreError) {
        if matches!(error, StoreError::LockLost { .. }) {
            self.clock.mark_lost();
        }
    }

    /// Gives the lease up (unless it is already lost: then it is someone else's).
    pub(super) async fn release(mut self) {
        self.heartbeat.stop().await;
        self.released = true;
        // Even a lease counted lost (by this runner's own clock, say) is given back: the release
        // removes the row only while it is still this runner's, so another holder's is safe.
        if let Some(lock) = self.store.lock() {
            match lock.release(&self.fence).await {
                Ok(()) => tracing::info!(key = %self.fence.key, "lock released"),
                Err(error) => {
                    tracing::warn!(%error, "could not release the lock; it ends with its lease")
                }
            }
        }
    }
}

impl Lease {
    /// Stops extending the lease but keeps it: it ends on its own, `length` after the last
    /// extension. For a run that stops with a write in doubt: a commit whose reply was lost may
    /// still be landing, and another instance that took the lock at once could read the audit
    /// before it lands and apply the unit a second time.
    pub(super) async fn leave_to_expire(mut self, change_id: &str) {
        self.heartbeat.stop().await;
        self.released = true;
        tracing::warn!(
            key = %self.fence.key,
            change_id,
            lease_s = self.length.as_secs_f64(),
            "lock kept until its lease ends: a write of this unit is in doubt and may still land"
        );
    }
}

impl Drop for Lease {
    /// A run that ends without `release` (a panic, a dropped future) still gives the lease up.
    fn drop(&mut self) {
        self.heartbeat.stop_now();
        if self.released || self.is_lost() {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (store, fence) = (self.store.clone(), self.fence.clone());
            runtime.spawn(async move {
                if let Some(lock) = store.lock() {
                    let _ = lock.release(&fence).await;
                }
            });
        }
    }
}

/// The error of a wait whose last try was cut short: the holder as last seen (or read now), and
/// any lease that try may have taken given back.
async fn gave_up_waiting(
    lock: &dyn DistributedLock,
    fence: &Fence,
    last_holder: Option<LockInfo>,
    waited: Duration,
) -> Error {
    // The cut-short try may have taken the lease before its reply came: give it back.
    let _ = tokio::time::timeout(CLEAN_UP, lock.release(fence)).await;
    let holder = match last_holder {
        Some(holder) => Some(holder),
        None => tokio::time::timeout(CLEAN_UP, lock.read(&fence.key))
            .await
            .ok()
            .and_then(Result::ok)
            .flatten(),
    };
    match holder {
        Some(holder) => Error::LockTimeout {
            holder: Box::new(holder),
            waited,
            unanswered: true,
        },
        None => Error::Store(StoreError::Query {
            action: "taking the lock",
            source: format!(
                "the database did not answer within {waited:?} (the lock wait): another connection holds it, or the lock row, in an open transaction"
            )
            .into(),
        }),
    }
}

impl super::Engine {
    /// A person's (or a command's) write under the lock, taken whatever the audit says (fix,
    /// repair, baseline, import by hand): the store's tables first, then the lease, given to
    /// `work` and released when it is done.
    pub(super) async fn with_lock<T, E: From<Error>>(
        &self,
        work: impl AsyncFnOnce(Option<&Lease>) -> Result<T, E>,
    ) -> Result<T, E> {
        self.store.initialize().await.map_err(Error::from)?;
        let lease = Lease::acquire_always(
            &self.store,
            &self.lock_options,
            &self.runner_id,
            &self.hostname,
        )
        .await?;
        let result = work(lease.as_ref()).await;
        if let Some(lease) = lease {
            lease.release().await;
        }
        result
    }
}
