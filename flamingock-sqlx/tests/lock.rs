//! The SQL lock (docs/architecture.md#lock) on every backend compiled in: the lease row judged by the database
//! clock, its atomic acquisition, fenced audit writes, and a long shared transaction that keeps its
//! lease. Each check is written once (in `checks`) and run per backend.

mod common;

/// The lock's tests on one backend (stamped per backend compiled in by
/// `flamingock_testkit::for_each_backend!`, behind its cargo feature).
macro_rules! lock_suite {
    ($name:ident, $db:ty, $backend:expr) => {
        mod $name {
            lock_suite!(@checks $backend;
                acquire_extend_release,
                an_expired_lease_is_taken_over_and_fences_its_old_holder,
                concurrent_acquisitions_have_one_winner,
                fenced_appends_need_a_live_lease,
                a_refused_shared_commit_leaves_nothing,
                force_release_removes_any_holder,
                the_lock_table_is_created_checked_and_configurable,
                a_long_shared_unit_keeps_its_lease,
                a_long_failing_shared_unit_records_its_failure,
            );
            lock_suite!(@generic $db, $backend; a_unit_holding_every_connection_keeps_its_lease,);

            // MySQL runs units on the audit store's own database as TX_SEPARATE: the target's
            // commit is not covered by the audit fence, so the engine confirms the lease right
            // before it.
            flamingock_testkit::if_backend!(mariadb, $name, {
                lock_suite!(@checks $backend; a_separate_commit_waits_for_a_confirmed_lease,);
            });
        }
    };
    (@generic $db:ty, $backend:expr; $($check:ident,)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $check() {
            super::checks::$check::<$db>($backend).await;
        }
    )*};
    (@checks $backend:expr; $($check:ident,)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $check() {
            super::checks::$check($backend).await;
        }
    )*};
}

flamingock_testkit::for_each_backend!(lock_suite, features);

#[allow(dead_code)] // with no backend feature, no check is instantiated
mod checks {
    use std::time::Duration;

    use flamingock_core::lock::{Acquisition, DistributedLock, Fence, LockOptions};
    use flamingock_core::testing::{StepFuture, UnitBuilder, UnitScope};
    use flamingock_core::{
        AuditState, AuditStore, ChangeUnit, Engine, StoreError, TxStrategy, UnitOutcome,
    };
    use flamingock_sqlx::StoreOptions;

    use crate::common::{Backend, TestDb, entry, unique_name};

    const KEY: &str = "flamingock";

    fn fence(owner: &str) -> Fence {
        Fence {
            key: KEY.to_owned(),
            owner: owner.to_owned(),
        }
    }

    fn lock(store: &dyn AuditStore) -> &dyn DistributedLock {
        store.lock().expect("SQL stores keep a lock")
    }

    /// A test database (its cleanup drops the lock table beside the audit table too).
    async fn test_db(backend: Backend) -> Option<TestDb> {
        TestDb::new(backend).await
    }

    pub async fn acquire_extend_release(backend: Backend) {
        let Some(db) = test_db(backend).await else {
            return;
        };
        let store = db.initialized_store().await;
        let lock = lock(store.as_ref());
        assert_eq!(lock.read(KEY).await.unwrap(), None);
        let minute = Duration::from_secs(60);

        let taken = lock.try_acquire(&fence("a"), "host-a", minute).await;
        assert_eq!(taken.unwrap(), Acquisition::Acquired);
        let held = lock.read(KEY).await.unwrap().expect("a row");
        assert_eq!(
            (held.key.as_str(), held.owner.as_str()),
            (KEY, "a"),
            "{held}"
        );
        assert_eq!(held.hostname, "host-a");
        assert!(!held.expired);
        let lease = held.expires_at - held.acquired_at;
        assert!(
            (59_000..=61_000).contains(&lease.num_milliseconds()),
            "{held}"
        );

        match lock.try_acquire(&fence("b"), "host-b", minute).await {
            Ok(Acquisition::Held(holder)) => assert_eq!(holder, held),
            other => panic!("b must find a's lease: {other:?}"),
        }
        // Ours again: kept, with the same acquisition time.
        let again = lock.try_acquire(&fence("a"), "host-a", minute).await;
        assert_eq!(again.unwrap(), Acquisition::Acquired);
        let kept = lock.read(KEY).await.unwrap().expect("a row");
        assert_eq!(kept.acquired_at, held.acquired_at);

        assert!(lock.extend(&fence("a"), minute).await.unwrap());
        assert!(!lock.extend(&fence("b"), minute).await.unwrap());
        lock.release(&fence("b")).await.unwrap();
        assert_eq!(lock.read(KEY).await.unwrap().expect("a row").owner, "a");
        lock.release(&fence("a")).await.unwrap();
        assert_eq!(lock.read(KEY).await.unwrap(), None);
        assert!(
            !lock.extend(&fence("a"), minute).await.unwrap(),
            "a released lease is not extended back"
        );
        // Other keys are other locks.
        let other = Fence {
            key: "other".to_owned(),
            owner: "b".to_owned(),
        };
        lock.try_acquire(&fence("a"), "host-a", minute)
            .await
            .unwrap();
        let taken = lock.try_acquire(&other, "host-b", minute).await;
        assert_eq!(taken.unwrap(), Acquisition::Acquired);
        db.cleanup(store.as_ref()).await;
    }

    pub async fn an_expired_lease_is_taken_over_and_fences_its_old_holder(backend: Backend) {
        let Some(db) = test_db(backend).await else {
            return;
        };
        let store = db.initialized_store().await;
        let lock = lock(store.as_ref());
        let short = Duration::from_millis(300);
        let taken = lock.try_acquire(&fence("a"), "host-a", short).await;
        assert_eq!(taken.unwrap(), Acquisition::Acquired);
        let row = entry("u", AuditState::Started, TxStrategy::NonTransactional);
        store.append(&row, Some(&fence("a"))).await.unwrap();

        tokio::time::sleep(Duration::from_millis(700)).await;
        let stale = lock.read(KEY).await.unwrap().expect("a row");
        assert!(stale.expired, "{stale}");
        // Expired: no longer extended, and no longer good for writing.
        assert!(!lock.extend(&fence("a"), short).await.unwrap());
        let refused = store.append(&row, Some(&fence("a"))).await;
        assert!(
            matches!(refused, Err(StoreError::LockLost { .. })),
            "{refused:?}"
        );

        let taken = lock
            .try_acquire(&fence("b"), "host-b", Duration::from_secs(60))
            .await;
        assert_eq!(taken.unwrap(), Acquisition::Acquired);
        let holder = lock.read(KEY).await.unwrap().expect("a row");
        assert_eq!((holder.owner.as_str(), holder.expired), ("b", false));
        assert!(holder.acquired_at > stale.acquired_at);
        let refused = store.append(&row, Some(&fence("a"))).await;
        assert!(matches!(refused, Err(StoreError::LockLost { .. })));
        store.append(&row, Some(&fence("b"))).await.unwrap();
        assert_eq!(store.entries().await.unwrap().len(), 2, "a's first, b's");
        db.cleanup(store.as_ref()).await;
    }

    pub async fn concurrent_acquisitions_have_one_winner(backend: Backend) {
        let Some(db) = test_db(backend).await else {
            return;
        };
        let first = db.initialized_store().await;
        let mut stores = vec![first.clone()];
        for _ in 1..8 {
            stores.push(db.store().await);
        }
        for round in 0..3 {
            let tasks: Vec<_> = stores
                .iter()
                .enumerate()
                .map(|(i, store)| {
                    let store = store.clone();
                    tokio::spawn(async move {
                        let owner = format!("runner-{round}-{i}");
                        let lock = store.lock().expect("a lock");
                        lock.try_acquire(&fence(&owner), "host", Duration::from_secs(60))
                            .await
                            .map(|outcome| (owner, outcome))
                    })
                })
                .collect();
            let mut winners = Vec::new();
            for task in tasks {
                let (owner, outcome) = task.await.expect("task").expect("try_acquire");
                if outcome == Acquisition::Acquired {
                    winners.push(owner);
                }
            }
            assert_eq!(winners.len(), 1, "round {round}: {winners:?}");
            let holder = lock(first.as_ref()).read(KEY).await.unwrap().expect("row");
            assert_eq!(holder.owner, winners[0]);
            lock(first.as_ref())
                .force_release(KEY)
                .await
                .unwrap()
                .expect("removed");
        }
        db.cleanup(first.as_ref()).await;
    }

    pub async fn fenced_appends_need_a_live_lease(backend: Backend) {
        let Some(db) = test_db(backend).await else {
            return;
        };
        let store = db.initialized_store().await;
        let row = entry("u", AuditState::Applied, TxStrategy::Shared);
        let refused = store.append(&row, Some(&fence("a"))).await;
        match refused {
            Err(StoreError::LockLost { key, owner }) => {
                assert_eq!((key, owner), (KEY.into(), "a".into()))
            }
            other => panic!("no lease, no write: {other:?}"),
        }
        assert!(store.entries().await.unwrap().is_empty());
        lock(store.as_ref())
            .try_acquire(&fence("a"), "host", Duration::from_secs(60))
            .await
            .unwrap();
        store.append(&row, Some(&fence("a"))).await.unwrap();
        let refused = store.append(&row, Some(&fence("b"))).await;
        assert!(matches!(refused, Err(StoreError::LockLost { .. })));
        store.append(&row, None).await.expect("unfenced writes");
        let rows = store.entries().await.unwrap();
        assert_eq!(rows.len(), 2);
        let mut expected = row.clone();
        expected.id = rows[0].id;
        expected.created_at = rows[0].created_at;
        assert_eq!(rows[0], expected, "a fenced insert stores the same row");
        db.cleanup(store.as_ref()).await;
    }

    pub async fn a_refused_shared_commit_leaves_nothing(backend: Backend) {
        let Some(db) = test_db(backend).await else {
            return;
        };
        let store = db.initialized_store().await;
        let effects = unique_name("effects");
        db.execute(
            store.as_ref(),
            &format!("CREATE TABLE {effects} (n INTEGER)"),
        )
        .await;
        let lock = lock(store.as_ref());
        lock.try_acquire(&fence("a"), "host", Duration::from_secs(60))
            .await
            .unwrap();

        let mut tx = store.begin_shared().await.unwrap();
        db.execute_in(
            tx.as_mut(),
            &format!("INSERT INTO {effects} (n) VALUES (1)"),
        )
        .await;
        let row = entry("u", AuditState::Applied, TxStrategy::Shared);
        tx.commit_with(&row, Some(&fence("a"))).await.unwrap();
        assert_eq!(db.count(store.as_ref(), &effects).await, 1);

        let mut tx = store.begin_shared().await.unwrap();
        db.execute_in(
            tx.as_mut(),
            &format!("INSERT INTO {effects} (n) VALUES (2)"),
        )
        .await;
        if backend == Backend::Sqlite {
            // The open transaction holds SQLite's write lock: the takeover happens on another
            // connection once it ends, so take the lease away by its expiry instead.
            tx.rollback().await.unwrap();
            lock.force_release(KEY).await.unwrap();
            tx = store.begin_shared().await.unwrap();
            db.execute_in(
                tx.as_mut(),
                &format!("INSERT INTO {effects} (n) VALUES (2)"),
            )
            .await;
        } else {
            lock.force_release(KEY).await.unwrap();
            lock.try_acquire(&fence("b"), "host-b", Duration::from_secs(60))
                .await
                .unwrap();
        }
        let refused = tx.commit_with(&row, Some(&fence("a"))).await;
        assert!(
            matches!(refused, Err(StoreError::LockLost { .. })),
            "{refused:?}"
        );
        assert_eq!(
            db.count(store.as_ref(), &effects).await,
            1,
            "the unit's work is rolled back"
        );
        assert_eq!(store.entries().await.unwrap().len(), 1);
        db.cleanup(store.as_ref()).await;
    }

    pub async fn force_release_removes_any_holder(backend: Backend) {
        let Some(db) = test_db(backend).await else {
            return;
        };
        let store = db.initialized_store().await;
        let lock = lock(store.as_ref());
        assert_eq!(lock.force_release(KEY).await.unwrap(), None);
        lock.try_acquire(&fence("a"), "host-a", Duration::from_secs(60))
            .await
            .unwrap();
        let held = lock.read(KEY).await.unwrap();
        let removed = lock.force_release(KEY).await.unwrap();
        assert_eq!(removed, held);
        assert_eq!(lock.read(KEY).await.unwrap(), None);
        assert!(
            !lock
                .extend(&fence("a"), Duration::from_secs(60))
                .await
                .unwrap()
        );
        db.cleanup(store.as_ref()).await;
    }

    pub async fn the_lock_table_is_created_checked_and_configurable(backend: Backend) {
        let Some(db) = test_db(backend).await else {
            return;
        };
        let store = db.initialized_store().await;
        let lock_table = format!("{}_lock", db.table);
        assert_eq!(db.count(store.as_ref(), &lock_table).await, 0, "created");

        // A table of that name that is not a lock table is refused, not used.
        let foreign_audit = unique_name("foreign");
        let foreign_lock = format!("{foreign_audit}_lock");
        db.execute(
            store.as_ref(),
            &format!("CREATE TABLE {foreign_lock} (lock_key INTEGER)"),
        )
        .await;
        let options = StoreOptions::default().with_audit_table(&foreign_audit);
        let other = flamingock_sqlx::connect(&db.url, options).await.unwrap();
        match other.initialize().await {
            Err(StoreError::ForeignTable {
                table,
                kind,
                detail,
            }) => {
                assert_eq!((table.as_str(), kind), (foreign_lock.as_str(), "lock"));
                assert!(detail.contains("owner"), "{detail}");
            }
            other => panic!("a foreign lock table must be refused: {other:?}"),
        }

        // A configured name.
        let named = unique_name("locks");
        let options = db.options().with_lock_table(&named);
        let custom = flamingock_sqlx::connect(&db.url, options).await.unwrap();
        custom.initialize().await.unwrap();
        lock(custom.as_ref())
            .try_acquire(&fence("a"), "host", Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(db.count(store.as_ref(), &named).await, 1);
        assert_eq!(db.count(store.as_ref(), &lock_table).await, 0);

        let invalid = db.options().with_lock_table("locks; DROP TABLE x");
        let refused = flamingock_sqlx::connect(&db.url, invalid).await;
        assert!(matches!(refused, Err(StoreError::InvalidIdentifier { .. })));
        db.cleanup(store.as_ref()).await;
    }

    /// How long a "long" unit runs: more than two of [`long_unit_lease`]'s leases.
    const LONG_UNIT: Duration = Duration::from_millis(3500);

    fn sleep_then_succeed<'s>(_: UnitScope<'s>) -> StepFuture<'s> {
        Box::pin(async {
            tokio::time::sleep(LONG_UNIT).await;
            Ok(())
        })
    }

    fn sleep_then_fail<'s>(_: UnitScope<'s>) -> StepFuture<'s> {
        Box::pin(async {
            tokio::time::sleep(LONG_UNIT).await;
            Err("the unit gave up".into())
        })
    }

    /// A lease the long units outlive twice over, so that only the heartbeat keeps it; long
    /// enough that the heartbeat (on a thread of its own, every half second) would have to be
    /// held up for a whole second to lose it, which a busy machine does not do.
    fn long_unit_lease() -> LockOptions {
        LockOptions {
            lease: Duration::from_millis(1500),
            wait: Duration::from_secs(10),
            ..LockOptions::default()
        }
    }

    /// A non-transactional unit that holds every connection of the store's pool (SQLite's pool
    /// has one) for longer than two leases.
    fn hold_every_connection<'s, DB: sqlx::Database>(mut scope: UnitScope<'s>) -> StepFuture<'s> {
        Box::pin(async move {
            let pool = scope.dependency::<sqlx::Pool<DB>>()?;
            let mut held = Vec::new();
            for _ in 0..pool.options().get_max_connections() {
                held.push(pool.acquire().await?);
            }
            tokio::time::sleep(LONG_UNIT).await;
            drop(held);
            Ok(())
        })
    }

    /// The heartbeat extends the lease through a connection of its own: a unit holding all of the
    /// store's connections does not starve it.
    pub async fn a_unit_holding_every_connection_keeps_its_lease<DB: sqlx::Database>(
        backend: Backend,
    ) {
        let Some(db) = test_db(backend).await else {
            return;
        };
        let store = db.initialized_store().await;
        let engine = Engine::new(store.clone()).with_lock_options(long_unit_lease());
        let unit = UnitBuilder::new("hog", "1", "test")
            .transactional(false)
            .takes_dependency::<sqlx::Pool<DB>>()
            .execute(hold_every_connection::<DB>)
            .build();
        let report = engine.run([unit]).await.expect("the lease was kept");
        assert_eq!(report.applied(), ["hog"]);
        let states: Vec<_> = store
            .entries()
            .await
            .unwrap()
            .iter()
            .map(|e| e.state)
            .collect();
        assert_eq!(states, [AuditState::Started, AuditState::Applied]);
        db.cleanup(store.as_ref()).await;
    }

    fn quick<'s>(_: UnitScope<'s>) -> StepFuture<'s> {
        Box::pin(async { Ok(()) })
    }

    /// A transactional unit on the audit store's database (TX_SHARED) that takes no parameters:
    /// its transaction is open, and on SQLite holds the write lock, for as long as it runs.
    fn shared_unit(
        id: &'static str,
        order: &'static str,
        call: for<'s> fn(UnitScope<'s>) -> StepFuture<'s>,
    ) -> &'static ChangeUnit {
        UnitBuilder::new(id, order, "test").execute(call).build()
    }

    fn sleep_briefly<'s>(_: UnitScope<'s>) -> StepFuture<'s> {
        Box::pin(async {
            tokio::time::sleep(Duration::from_millis(600)).await;
            Ok(())
        })
    }

    pub async fn a_separate_commit_waits_for_a_confirmed_lease(backend: Backend) {
        let Some(db) = test_db(backend).await else {
            return;
        };
        let store = db.initialized_store().await;
        // A lease far longer than the unit: the heartbeat does not notice the theft in time.
        let options = LockOptions {
            lease: Duration::from_secs(60),
            ..LockOptions::default()
        };
        let engine = Engine::new(store.clone()).with_lock_options(options);
        // Markers live in one table per database: an id of its own keeps this test's apart.
        let id: &'static str = Box::leak(unique_name("separate").into_boxed_str());
        let thief = {
            let store = store.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(200)).await;
                let lock = store.lock().expect("a lock");
                lock.force_release(KEY).await.expect("force");
                lock.try_acquire(&fence("thief"), "elsewhere", Duration::from_secs(60))
                    .await
                    .expect("taken")
            })
        };
        let error = engine
            .run([shared_unit(id, "1", sleep_briefly)])
            .await
            .expect_err("the lease was lost mid-unit");
        assert_eq!(thief.await.unwrap(), Acquisition::Acquired);
        assert!(
            matches!(error, flamingock_core::Error::LockLost { .. }),
            "{error}"
        );
        let rows = store.entries().await.unwrap();
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(
            (rows[0].state, rows[0].tx_strategy),
            (AuditState::Started, TxStrategy::Separate)
        );
        // No marker: the target's transaction was rolled back, not committed.
        let target = store
            .separate_target()
            .expect("MySQL runs units as TX_SEPARATE");
        let marker = target
            .transactional()
            .expect("a transactional target")
            .marker(id)
            .await
            .expect("the marker reads");
        assert!(marker.is_none(), "{marker:?}");
        db.cleanup(store.as_ref()).await;
    }

    pub async fn a_long_shared_unit_keeps_its_lease(backend: Backend) {
        let Some(db) = test_db(backend).await else {
            return;
        };
        let store = db.initialized_store().await;
        let engine = Engine::new(store.clone()).with_lock_options(long_unit_lease());
        let units = [
            shared_unit("long", "1", sleep_then_succeed),
            shared_unit("after", "2", quick),
        ];
        let report = engine.run(units).await.expect("the lease was kept");
        assert_eq!(report.applied(), ["long", "after"]);
        // TX_SHARED writes one row per unit; where the store's database runs them as TX_SEPARATE
        // (MySQL), STARTED comes first. Either way each ends APPLIED, once.
        let rows = store.entries().await.unwrap();
        for id in ["long", "after"] {
            let states: Vec<_> = rows
                .iter()
                .filter(|e| e.change_id == id)
                .map(|e| e.state)
                .collect();
            assert_eq!(
                states.last(),
                Some(&AuditState::Applied),
                "{id}: {states:?}"
            );
            let applied = states.iter().filter(|s| **s == AuditState::Applied).count();
            assert_eq!(applied, 1, "{id}: {states:?}");
            assert!(!states.contains(&AuditState::Failed), "{id}: {states:?}");
        }
        assert_eq!(
            lock(store.as_ref()).read(KEY).await.unwrap(),
            None,
            "released"
        );
        db.cleanup(store.as_ref()).await;
    }

    pub async fn a_long_failing_shared_unit_records_its_failure(backend: Backend) {
        let Some(db) = test_db(backend).await else {
            return;
        };
        let store = db.initialized_store().await;
        let engine = Engine::new(store.clone()).with_lock_options(long_unit_lease());
        let error = engine
            .run([shared_unit("long", "1", sleep_then_fail)])
            .await
            .expect_err("the unit fails");
        let report = error.report().expect("a report");
        assert_eq!(report.units[0].outcome, UnitOutcome::Failed, "{error}");
        let rows = store.entries().await.unwrap();
        let last = rows.last().expect("rows");
        assert_eq!(last.state, AuditState::Failed, "{rows:?}");
        assert!(
            rows.iter().all(|r| r.state != AuditState::Applied),
            "{rows:?}"
        );
        assert!(
            last.error
                .as_deref()
                .unwrap_or_default()
                .contains("gave up")
        );
        assert_eq!(
            lock(store.as_ref()).read(KEY).await.unwrap(),
            None,
            "released"
        );
        db.cleanup(store.as_ref()).await;
    }
}

/// A user's own pool whose `after_connect` moves where table names resolve (`SET search_path` on
/// PostgreSQL, `USE` on MariaDB): the heartbeat's own connection must find the same lock table,
/// or every extension fails and a long unit loses its lease.
#[cfg(any(feature = "postgres", feature = "mysql"))]
mod name_resolution {
    use std::time::Duration;

    use flamingock_core::lock::Fence;
    use flamingock_core::{AuditStore, StoreError};
    use flamingock_sqlx::{SqlAuditStore, StoreOptions};
    use flamingock_testkit::{Backend, FreshDb};

    /// Takes the lock through `store`, then extends it through a fresh keeper.
    async fn extend_through_a_keeper(store: &dyn AuditStore) -> Result<bool, StoreError> {
        store
            .initialize()
            .await
            .expect("initialize in the moved place");
        let lock = store.lock().expect("a lock");
        let fence = Fence {
            key: "flamingock".to_owned(),
            owner: "runner-a".to_owned(),
        };
        let minute = Duration::from_secs(60);
        lock.try_acquire(&fence, "host-a", minute)
            .await
            .expect("the lock is taken");
        let keeper = lock.keeper().await.expect("a keeper");
        let extended = keeper.extend(&fence, minute).await;
        keeper.close().await;
        extended
    }

    #[cfg(feature = "postgres")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_search_path_set_after_connect() {
        use sqlx::Executor;
        let Some(db) = FreshDb::create(Backend::Postgres, "keeper_path").await else {
            return;
        };
        let setup = sqlx::PgPool::connect(&db.url).await.unwrap();
        setup.execute("CREATE SCHEMA app").await.unwrap();
        setup.close().await;
        let pool = sqlx::postgres::PgPoolOptions::new()
            .after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute("SET search_path TO app").await?;
                    Ok(())
                })
            })
            .connect(&db.url)
            .await
            .unwrap();
        let store = SqlAuditStore::postgres(pool.clone(), StoreOptions::default()).unwrap();
        let extended = extend_through_a_keeper(&store).await;
        let in_app: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM information_schema.tables \
             WHERE table_schema = 'app' AND table_name = 'flamingock_lock'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        pool.close().await;
        db.drop_database().await;
        assert_eq!(
            in_app, 1,
            "the store made its lock table where the pool resolves names"
        );
        assert!(
            extended.expect("the keeper reaches the lock table in `app`"),
            "the keeper extends the lease"
        );
    }

    #[cfg(feature = "mysql")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn mariadb_database_chosen_after_connect() {
        use sqlx::Executor;
        let Some(url_db) = FreshDb::create(Backend::MySql, "keeper_url").await else {
            return;
        };
        let Some(used) = FreshDb::create(Backend::MySql, "keeper_use").await else {
            url_db.drop_database().await;
            return;
        };
        let statement = format!("USE {}", used.name);
        let pool = sqlx::mysql::MySqlPoolOptions::new()
            .after_connect(move |conn, _| {
                let statement = statement.clone();
                Box::pin(async move {
                    conn.execute(sqlx::AssertSqlSafe(statement)).await?;
                    Ok(())
                })
            })
            .connect(&url_db.url)
            .await
            .unwrap();
        let store = SqlAuditStore::mysql(pool.clone(), StoreOptions::default()).unwrap();
        let extended = extend_through_a_keeper(&store).await;
        pool.close().await;
        url_db.drop_database().await;
        used.drop_database().await;
        assert!(
            extended.expect("the keeper reaches the lock table in the database chosen by USE"),
            "the keeper extends the lease"
        );
    }
}

/// A frozen holder: its lease has ended, but an open transaction of its still holds what the
/// waiter needs: on SQLite the database's write lock (`BEGIN IMMEDIATE`), so every attempt to
/// take the lease waits for SQLite's busy timeout (30 s); on a server the lock row (`SELECT ...
/// FOR UPDATE`), so the waiter's statement blocks in the server (up to MariaDB's 50 s
/// `innodb_lock_wait_timeout`, or forever on PostgreSQL). The waiter honours its own lock wait
/// (2 s here) and names the holder, instead of a raw "database is locked" or a hang.
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
mod frozen_holder {
    use std::time::{Duration, Instant};

    use flamingock_core::lock::{Fence, LockOptions};
    use flamingock_core::testing::{StepFuture, UnitBuilder, UnitScope};
    use flamingock_core::{Engine, Error};
    use flamingock_testkit::Backend;
    use sqlx::Connection;

    fn never<'s>(_: UnitScope<'s>) -> StepFuture<'s> {
        Box::pin(async { Err("the unit must not run while another holds the lock".into()) })
    }

    /// Takes the lock for a holder that then freezes: its connection runs `freeze` (given the
    /// lock table's name) and stays open. A run with a 2 s lock wait must give up within
    /// `within`, naming the holder, writing nothing; `check` looks at the error further.
    async fn a_frozen_holder_is_named_within_the_lock_wait<C: Connection>(
        backend: Backend,
        freeze: fn(&str) -> Vec<String>,
        within: Duration,
        check: fn(&Error),
    ) where
        for<'c> &'c mut C: sqlx::Executor<'c>,
    {
        let Some(db) = crate::common::TestDb::new(backend).await else {
            return;
        };
        let store = db.initialized_store().await;
        let frozen = Fence {
            key: "flamingock".to_owned(),
            owner: "frozen-runner".to_owned(),
        };
        store
            .lock()
            .expect("a lock")
            .try_acquire(&frozen, "frozen-host", Duration::from_millis(300))
            .await
            .expect("the frozen holder takes the lock");
        let mut holder = C::connect(&db.url).await.unwrap();
        // The lock table beside the test's audit table (short enough not to be hashed).
        for statement in freeze(&format!("{}_lock", db.table)) {
            sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
                .execute(&mut holder)
                .await
                .unwrap();
        }
        let engine = Engine::new(store.clone()).with_lock_options(LockOptions {
            wait: Duration::from_secs(2),
            ..LockOptions::default()
        });
        let started = Instant::now();
        let error = engine
            .run([UnitBuilder::new("waits", "1", "test")
                .execute(never)
                .build()])
            .await
            .expect_err("the lock is not to be had");
        let waited = started.elapsed();
        sqlx::raw_sql("ROLLBACK")
            .execute(&mut holder)
            .await
            .unwrap();
        holder.close().await.unwrap();
        assert!(matches!(error, Error::LockTimeout { .. }), "{error}");
        assert!(error.to_string().contains("frozen-runner"), "{error}");
        check(&error);
        assert!(
            waited < within,
            "the waiter took {waited:?}, beyond its 2 s wait"
        );
        assert!(store.entries().await.unwrap().is_empty());
        db.cleanup(store.as_ref()).await;
    }

    #[cfg(feature = "sqlite")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        a_frozen_holder_is_named_within_the_lock_wait::<sqlx::SqliteConnection>(
            Backend::Sqlite,
            |_| vec!["BEGIN IMMEDIATE".to_owned()],
            // Below SQLite's 30 s busy timeout, which one attempt may wait out in part.
            Duration::from_secs(20),
            |error| {
                assert!(
                    matches!(
                        error,
                        Error::LockTimeout {
                            unanswered: true,
                            ..
                        }
                    ),
                    "{error}"
                );
                // `lock release --force` would wait on the same write lock: not what the
                // message offers.
                assert!(error.to_string().contains("did not answer"), "{error}");
                assert!(!error.to_string().contains("removes it now"), "{error}");
            },
        )
        .await;
    }

    /// Holds the lock row in an open transaction.
    #[cfg(any(feature = "postgres", feature = "mysql"))]
    fn hold_the_row(lock_table: &str) -> Vec<String> {
        vec![
            "BEGIN".to_owned(),
            format!("SELECT owner FROM {lock_table} WHERE lock_key = 'flamingock' FOR UPDATE"),
        ]
    }

    #[cfg(feature = "postgres")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        a_frozen_holder_is_named_within_the_lock_wait::<sqlx::PgConnection>(
            Backend::Postgres,
            hold_the_row,
            Duration::from_secs(15),
            |_| {},
        )
        .await;
    }

    #[cfg(feature = "mysql")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn mariadb() {
        a_frozen_holder_is_named_within_the_lock_wait::<sqlx::MySqlConnection>(
            Backend::MySql,
            hold_the_row,
            Duration::from_secs(15),
            |_| {},
        )
        .await;
    }
}
