//! The engine's use of the distributed lock, against the in-memory store's lock.

use std::sync::Arc;
use std::time::Duration;

use flamingock_core::lock::{DistributedLock, Fence, LockOptions};
use flamingock_core::testing::{MemoryAuditStore, StepFuture, UnitBuilder, UnitScope};
use flamingock_core::{AuditState, ChangeUnit, Engine, Error};

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
