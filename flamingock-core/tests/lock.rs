//! The engine's use of the distributed lock, against the in-memory store's lock.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use flamingock_core::lock::{
    Acquisition, DistributedLock, Fence, LeaseKeeper, LockInfo, LockOptions,
};
use flamingock_core::model::UnitState;
use flamingock_core::testing::{MemoryAuditStore, StepFuture, UnitBuilder, UnitScope};
use flamingock_core::{AuditEntry, AuditState, AuditStore, ChangeUnit, Engine, Error, StoreError};

fn succeed<'s>(_: UnitScope<'s>) -> StepFuture<'s> {
    Box::pin(async { Ok(()) })
}

fn slow<'s>(_: UnitScope<'s>) -> StepFuture<'s> {
    Box::pin(async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        Ok(())
    })
}

fn unit(
    id: &'static str,
    order: &'static str,
    call: for<'s> fn(UnitScope<'s>) -> StepFuture<'s>,
) -> &'static ChangeUnit {
    UnitBuilder::new(id, order, "test")
        .transactional(false)
        .execute(call)
        .build()
}

fn options(lease_ms: u64, wait_ms: u64) -> LockOptions {
    LockOptions {
        lease: Duration::from_millis(lease_ms),
        wait: Duration::from_millis(wait_ms),
        ..LockOptions::default()
    }
}

fn someone_else() -> Fence {
    Fence {
        key: "flamingock".into(),
        owner: "other-runner".into(),
    }
}

#[tokio::test]
async fn a_held_lock_times_out_naming_its_holder_and_nothing_runs() {
    let store = MemoryAuditStore::new();
    store
        .try_acquire(&someone_else(), "other-host", Duration::from_secs(60))
        .await
        .unwrap();
    let engine = Engine::new(Arc::new(store.clone())).with_lock_options(options(1000, 200));
    let error = engine.run([unit("a", "1", succeed)]).await.unwrap_err();
    assert!(matches!(error, Error::LockTimeout { .. }), "{error}");
    let message = error.to_string();
    assert!(
        message.contains("other-runner") && message.contains("other-host"),
        "{message}"
    );
    assert!(store.rows().is_empty());
}

#[tokio::test]
async fn a_run_with_nothing_pending_takes_no_lock() {
    let store = MemoryAuditStore::new();
    let units = [unit("a", "1", succeed)];
    Engine::new(Arc::new(store.clone()))
        .run(units)
        .await
        .unwrap();
    assert_eq!(
        store.read("flamingock").await.unwrap(),
        None,
        "released after the run"
    );
    store
        .try_acquire(&someone_else(), "other-host", Duration::from_secs(60))
        .await
        .unwrap();
    // Held by someone else, yet a run with nothing to do succeeds at once.
    let engine = Engine::new(Arc::new(store.clone())).with_lock_options(options(1000, 50));
    engine.run(units).await.unwrap();
}

#[tokio::test]
async fn the_lease_is_extended_while_a_long_unit_runs() {
    let store = MemoryAuditStore::new();
    let engine = Engine::new(Arc::new(store.clone())).with_lock_options(options(150, 1000));
    let report = engine.run([unit("slow", "1", slow)]).await.unwrap();
    assert_eq!(report.applied(), ["slow"]);
    assert_eq!(
        store.states_of("slow"),
        [AuditState::Started, AuditState::Applied]
    );
}

#[tokio::test]
async fn a_runner_that_lost_its_lease_records_nothing_more_and_says_so() {
    let store = MemoryAuditStore::new();
    let engine = Engine::new(Arc::new(store.clone())).with_lock_options(options(60_000, 1000));
    let thief = {
        let store = store.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            // An operator releases the lease and another runner takes it.
            store.force_release("flamingock").await.unwrap();
            store
                .try_acquire(&someone_else(), "other-host", Duration::from_secs(60))
                .await
                .unwrap();
        })
    };
    let error = engine
        .run([unit("slow", "1", slow), unit("after", "2", succeed)])
        .await
        .unwrap_err();
    thief.await.unwrap();
    assert!(matches!(error, Error::LockLost { .. }), "{error}");
    // STARTED was written under the lease; APPLIED was refused by the fence.
    assert_eq!(store.states_of("slow"), [AuditState::Started]);
    assert!(store.states_of("after").is_empty());
    let holder = store.read("flamingock").await.unwrap().unwrap();
    assert_eq!(
        holder.owner, "other-runner",
        "the lost lease was not re-taken or released"
    );
}

#[tokio::test]
async fn a_unit_another_runner_is_applying_is_judged_under_the_lock() {
    let store = MemoryAuditStore::new();
    let units = [unit("slow", "1", slow)];
    let first = {
        let store = store.clone();
        tokio::spawn(async move {
            Engine::new(Arc::new(store))
                .with_lock_options(options(5_000, 5_000))
                .run(units)
                .await
        })
    };
    while store.states_of("slow").is_empty() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // STARTED, non-transactional: it would block if this were a crash's leftover, but the first
    // runner is applying it right now. Under the lock the second finds it applied.
    let second = Engine::new(Arc::new(store.clone()))
        .with_lock_options(options(5_000, 5_000))
        .run(units)
        .await
        .expect("not blocked by a unit in progress");
    assert!(second.applied().is_empty());
    first.await.unwrap().unwrap();
    assert_eq!(
        store.states_of("slow"),
        [AuditState::Started, AuditState::Applied]
    );
}

/// How many times [`blocking`] ran, and whether it is running.
static BLOCKING_RUNS: AtomicUsize = AtomicUsize::new(0);
static BLOCKING_RUNNING: AtomicBool = AtomicBool::new(false);

/// A synchronous unit that blocks its thread for two and a half leases of one second.
fn blocking(_: UnitScope<'_>) -> Result<(), flamingock_core::inject::BoxError> {
    BLOCKING_RUNS.fetch_add(1, Ordering::SeqCst);
    BLOCKING_RUNNING.store(true, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(2500));
    Ok(())
}

/// A unit that blocks the only thread of a current-thread runtime for longer than the lease
/// cannot starve the heartbeat (it has a thread of its own): a second instance starting
/// meanwhile finds the lock held, waits, and then finds the work done. The unit runs once.
#[test]
fn a_unit_blocking_its_thread_does_not_starve_the_heartbeat() {
    let store = MemoryAuditStore::new();
    let units: [&'static ChangeUnit; 1] = [UnitBuilder::new("blocking", "1", "test")
        .transactional(false)
        .execute_sync(blocking)
        .build()];
    let second = {
        let store = store.clone();
        std::thread::spawn(move || {
            while !BLOCKING_RUNNING.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(5));
            }
            current_thread().block_on(
                Engine::new(Arc::new(store))
                    .with_lock_options(options(1000, 20_000))
                    .run(units),
            )
        })
    };
    let first = current_thread().block_on(
        Engine::new(Arc::new(store.clone()))
            .with_lock_options(options(1000, 20_000))
            .run(units),
    );
    let second = second.join().expect("the second instance did not panic");
    let first = first.expect("the first instance kept its lease");
    assert_eq!(first.applied(), ["blocking"]);
    let second = second.expect("the second instance waited, then found nothing to do");
    assert!(second.applied().is_empty(), "{second}");
    assert_eq!(BLOCKING_RUNS.load(Ordering::SeqCst), 1, "the unit ran once");
    assert_eq!(
        store.states_of("blocking"),
        [AuditState::Started, AuditState::Applied]
    );
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

/// The in-memory store, except that its heartbeat can never extend the lease (its connection
/// "fails"): only the engine's own confirmation before each unit keeps the lease.
#[derive(Clone)]
struct DeafHeartbeat(MemoryAuditStore);

struct FailingKeeper;

#[async_trait::async_trait]
impl LeaseKeeper for FailingKeeper {
    async fn extend(&self, _: &Fence, _: Duration) -> Result<bool, StoreError> {
        Err(StoreError::Query {
            action: "extending the lease",
            source: "the heartbeat's connection is down".into(),
        })
    }
}

#[async_trait::async_trait]
impl DistributedLock for DeafHeartbeat {
    async fn try_acquire(
        &self,
        fence: &Fence,
        hostname: &str,
        lease: Duration,
    ) -> Result<Acquisition, StoreError> {
        self.0.try_acquire(fence, hostname, lease).await
    }
    async fn extend(&self, fence: &Fence, lease: Duration) -> Result<bool, StoreError> {
        DistributedLock::extend(&self.0, fence, lease).await
    }
    async fn release(&self, fence: &Fence) -> Result<(), StoreError> {
        self.0.release(fence).await
    }
    async fn read(&self, key: &str) -> Result<Option<LockInfo>, StoreError> {
        self.0.read(key).await
    }
    async fn force_release(&self, key: &str) -> Result<Option<LockInfo>, StoreError> {
        self.0.force_release(key).await
    }
    async fn keeper(&self) -> Result<Box<dyn LeaseKeeper>, StoreError> {
        Ok(Box::new(FailingKeeper))
    }
}

#[async_trait::async_trait]
impl AuditStore for DeafHeartbeat {
    async fn initialize(&self) -> Result<(), StoreError> {
        self.0.initialize().await
    }
    async fn unit_states(&self) -> Result<HashMap<String, UnitState>, StoreError> {
        self.0.unit_states().await
    }
    async fn append(&self, entry: &AuditEntry, fence: Option<&Fence>) -> Result<(), StoreError> {
        self.0.append(entry, fence).await
    }
    async fn entries(&self) -> Result<Vec<AuditEntry>, StoreError> {
        self.0.entries().await
    }
    async fn begin_shared(
        &self,
    ) -> Result<Box<dyn flamingock_core::store::SharedTransaction>, StoreError> {
        self.0.begin_shared().await
    }
    fn shared_transaction_type(&self) -> flamingock_core::TypeLabel {
        self.0.shared_transaction_type()
    }
    fn dependencies(&self) -> flamingock_core::inject::Dependencies {
        self.0.dependencies()
    }
    fn describe(&self) -> String {
        self.0.describe()
    }
    fn lock(&self) -> Option<&dyn DistributedLock> {
        Some(self)
    }
}

fn a_third_of_a_lease<'s>(_: UnitScope<'s>) -> StepFuture<'s> {
    Box::pin(async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        Ok(())
    })
}

/// With a heartbeat that cannot extend the lease, units that together run longer than the lease
/// still apply: before each unit, a lease last extended more than half a lease ago is confirmed
/// first (and a unit never starts on a lease that may have lapsed).
#[tokio::test]
async fn the_lease_is_confirmed_before_a_unit_when_the_heartbeat_is_held_up() {
    let store = DeafHeartbeat(MemoryAuditStore::new());
    let units = [
        unit("one", "1", a_third_of_a_lease),
        unit("two", "2", a_third_of_a_lease),
        unit("three", "3", a_third_of_a_lease),
        unit("four", "4", a_third_of_a_lease),
        unit("five", "5", a_third_of_a_lease),
    ];
    let report = Engine::new(Arc::new(store.clone()))
        .with_lock_options(options(600, 1000))
        .run(units)
        .await
        .expect("each unit started on a confirmed lease");
    assert_eq!(report.applied(), ["one", "two", "three", "four", "five"]);
}
