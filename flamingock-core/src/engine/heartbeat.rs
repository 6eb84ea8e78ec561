//! The lease's heartbeat: it extends the lease at a third of its length from a thread and runtime
//! of its own, through a [`LeaseKeeper`] with its own connection, so that nothing a unit does on
//! the run's thread (block it, hold every connection of the store's pool) can starve it.
//!
//! It also keeps the time of the last extension known to have been made, from which the engine
//! tells whether the lease may have lapsed before it starts a unit ([`LeaseClock`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::lock::{Fence, LeaseKeeper};
use crate::store::AuditStore;

/// How long `stop` waits for the heartbeat to finish an extension in flight.
const STOP_WAIT: Duration = Duration::from_secs(5);

/// What the run and its heartbeat share about the lease: whether it is lost, and when it was
/// last extended.
pub(super) struct LeaseClock {
    origin: Instant,
    /// Milliseconds from `origin` to the moment the last successful extension was *sent* (so the
    /// lease runs at least a whole length from then).
    extended_ms: AtomicU64,
    lost: AtomicBool,
}

impl LeaseClock {
    /// A lease whose acquisition was sent at `taken_at`.
    pub(super) fn new(taken_at: Instant) -> Arc<Self> {
        Arc::new(Self {
            origin: taken_at,
            extended_ms: AtomicU64::new(0),
            lost: AtomicBool::new(false),
        })
    }

    pub(super) fn is_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    pub(super) fn mark_lost(&self) {
        self.lost.store(true, Ordering::SeqCst);
    }

    /// Records an extension that was sent at `sent` and succeeded.
    pub(super) fn extended(&self, sent: Instant) {
        let ms = u64::try_from(sent.saturating_duration_since(self.origin).as_millis())
            .unwrap_or(u64::MAX);
        self.extended_ms.fetch_max(ms, Ordering::SeqCst);
    }

    /// How long ago the last successful extension (or the acquisition) was sent.
    pub(super) fn since_extended(&self) -> Duration {
        let at = self.origin + Duration::from_millis(self.extended_ms.load(Ordering::SeqCst));
        at.elapsed()
    }
}

/// The running heartbeat; stopping it waits for an extension in flight.
pub(super) struct Heartbeat {
    stop: Option<oneshot::Sender<()>>,
    done: Option<oneshot::Receiver<()>>,
}

impl Heartbeat {
    /// Starts extending `fence`'s lease at a third of `lease`, on a thread of its own (or, if the
    /// system refuses a thread, as a task on the current runtime).
    pub(super) fn start(
        store: Arc<dyn AuditStore>,
        fence: Fence,
        lease: Duration,
        clock: Arc<LeaseClock>,
    ) -> Self {
        let own_thread = store
            .lock()
            .is_some_and(|lock| lock.heartbeat_on_own_thread());
        let (stop, stopped) = oneshot::channel();
        let (finished, done) = oneshot::channel();
        let beat: Pin<Box<dyn Future<Output = ()> + Send>> = Box::pin({
            let clock = Arc::clone(&clock);
            async move {
                keep_alive(store, fence, lease, clock, stopped).await;
                let _ = finished.send(());
            }
        });
        if !own_thread {
            tokio::spawn(beat);
            return Self {
                stop: Some(stop),
                done: Some(done),
            };
        }
        // The thread takes its work through a channel, so that the work is still here to run on
        // the current runtime if the system refuses a thread.
        let (hand, take) = std::sync::mpsc::channel::<Pin<Box<dyn Future<Output = ()> + Send>>>();
        let spawned = std::thread::Builder::new()
            .name("flamingock-heartbeat".to_owned())
            .spawn(move || {
                let Ok(beat) = take.recv() else { return };
                match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime.block_on(beat),
                    Err(error) => {
                        // Without a heartbeat the lease ends by itself; say so before it does.
                        tracing::error!(%error, "could not start the lease's heartbeat runtime");
                        clock.mark_lost();
                    }
                }
            });
        match spawned {
            Ok(_) => {
                let _ = hand.send(beat);
            }
            Err(error) => {
                // Without a thread of its own the heartbeat shares the run's runtime: still
                // correct, only starved by a unit that blocks.
                tracing::warn!(%error, "could not start the heartbeat thread; extending the lease from the run's runtime");
                tokio::spawn(beat);
            }
        }
        Self {
            stop: Some(stop),
            done: Some(done),
        }
    }

    /// Stops the heartbeat and waits (briefly) until an extension in flight has finished, so that
    /// none lands after the lease is released.
    pub(super) async fn stop(&mut self) {
        self.stop_now();
        if let Some(done) = self.done.take() {
            let _ = tokio::time::timeout(STOP_WAIT, done).await;
        }
    }

    /// Tells the heartbeat to stop without waiting.
    pub(super) fn stop_now(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Extends the lease at a third of its length. Once an extension is refused, or none has
/// succeeded for a whole lease, the lease counts as lost and is never re-taken.
async fn keep_alive(
    store: Arc<dyn AuditStore>,
    fence: Fence,
    lease: Duration,
    clock: Arc<LeaseClock>,
    mut stopped: oneshot::Receiver<()>,
) {
    let Some(lock) = store.lock() else { return };
    let period = (lease / 3).max(Duration::from_millis(10));
    let mut keeper: Option<Box<dyn LeaseKeeper>> = None;
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            () = tokio::time::sleep(period) => {}
        }
        if keeper.is_none() {
            match lock.keeper().await {
                Ok(opened) => keeper = Some(opened),
                Err(error) => {
                    tracing::warn!(%error, "could not open the heartbeat's connection; retrying");
                    if gave_up(&clock, lease) {
                        break;
                    }
                    continue;
                }
            }
        }
        let Some(current) = &keeper else { continue };
        let sent = Instant::now();
        match current.extend(&fence, lease).await {
            Ok(true) => clock.extended(sent),
            Ok(false) => {
                tracing::error!(key = %fence.key, "the lock's lease was lost; stopping");
                clock.mark_lost();
                break;
            }
            Err(error) => {
                tracing::warn!(%error, "could not extend the lock's lease; retrying");
                // The connection may be what failed: open a new one next time.
                if let Some(failed) = keeper.take() {
                    failed.close().await;
                }
                if gave_up(&clock, lease) {
                    break;
                }
            }
        }
    }
    if let Some(keeper) = keeper {
        keeper.close().await;
    }
}

/// Whether no extension has succeeded for a whole lease: then the lease counts as lost.
fn gave_up(clock: &LeaseClock, lease: Duration) -> bool {
    if clock.since_extended() >= lease {
        tracing::error!("the lock's lease could not be extended for a whole lease; stopping");
        clock.mark_lost();
        return true;
    }
    false
}
