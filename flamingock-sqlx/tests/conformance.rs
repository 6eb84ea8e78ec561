//! The audit-store conformance suite: every check is written once (in `checks`) and run against
//! each backend compiled in (SQLite always; PostgreSQL and MariaDB with their features, skipped
//! loudly when their server is down).

mod common;

/// The conformance checks on one backend (stamped per backend compiled in by
/// `flamingock_testkit::for_each_backend!`, behind its cargo feature).
macro_rules! conformance_suite {
    ($name:ident, $db:ty, $backend:expr) => {
        mod $name {
            conformance_suite!(@checks $backend;
                initialize_twice,
                initialize_concurrently,
                unit_states_are_newest_rows_with_tries,
                entries_round_trip_in_order,
                shared_transaction_commits_unit_and_entry_together,
                shared_transaction_rollback_leaves_nothing,
                foreign_table_is_refused,
                corrupt_rows_are_reported,
                invalid_identifiers_are_refused,
                describe_and_dependencies,
                store_on_an_existing_pool,
            );
        }
    };
    (@checks $backend:expr; $($check:ident,)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $check() {
            super::checks::$check($backend).await;
        }
    )*};
}

flamingock_testkit::for_each_backend!(conformance_suite, features);

#[allow(dead_code)] // with no backend feature, no check is instantiated
mod checks {
    use chrono::{Duration, Utc};
    use flamingock_core::testing::MemoryAuditStore;
    use flamingock_core::{AuditState, AuditStore, RecoveryStrategy, StoreError, TxStrategy};
    use flamingock_sqlx::StoreOptions;
    use serde_json::json;

    use crate::common::{Backend, TestDb, entry, unique_name};

    pub async fn initialize_twice(backend: Backend) {
        let Some(db) = TestDb::new(backend).await else {
            return;
        };
        let store = db.store().await;
        store.initialize().await.expect("first initialize");
        store.initialize().await.expect("second initialize");
        let other = db.store().await;
        other
            .initialize()
            .await
            .expect("initialize from another pool");
        assert!(store.unit_states().await.expect("unit states").is_empty());
        assert!(store.entries().await.expect("entries").is_empty());
        db.cleanup(store.as_ref()).await;
    }

    pub async fn initialize_concurrently(backend: Backend) {
        let Some(db) = TestDb::new(backend).await else {
            return;
        };
        // Four pools racing to create the same table, twice over.
        let mut stores = Vec::new();
        for _ in 0..4 {
            stores.push(db.store().await);
        }
        for _ in 0..2 {
            let tasks: Vec<_> = stores
                .iter()
                .map(|store| {
                    let store = store.clone();
                    tokio::spawn(async move { store.initialize().await })
                })
                .collect();
            for task in tasks {
                task.await.expect("task").expect("concurrent initialize");
            }
        }
        stores[0]
            .append(&entry("a", AuditState::Applied, TxStrategy::Shared), None)
            .await
            .expect("append");
        assert_eq!(stores[3].entries().await.expect("entries").len(), 1);
        db.cleanup(stores[0].as_ref()).await;
    }

    pub async fn unit_states_are_newest_rows_with_tries(backend: Backend) {
        let Some(db) = TestDb::new(backend).await else {
            return;
        };
        let store = db.initialized_store().await;
        let memory = MemoryAuditStore::new();
        let non_tx = TxStrategy::NonTransactional;
        let history = [
            ("a", AuditState::Started, non_tx, "e1", None),
            ("a", AuditState::Failed, non_tx, "e1", Some("boom")),
            (
                "b",
                AuditState::Failed,
                TxStrategy::Shared,
                "e1",
                Some("tx failed"),
            ),
            ("a", AuditState::Started, non_tx, "e2", None),
            ("b", AuditState::Applied, TxStrategy::Shared, "e2", None),
            ("a", AuditState::Applied, non_tx, "e2", None),
            ("c", AuditState::ManualMarkedAsApplied, non_tx, "e3", None),
            ("d", AuditState::Started, TxStrategy::Separate, "e3", None),
            // Ids are compared exactly: these are two more units, not "a" again.
            ("A", AuditState::Started, non_tx, "e3", None),
            (
                "ä",
                AuditState::RollbackFailed,
                non_tx,
                "e3",
                Some("undo failed"),
            ),
        ];
        for (change_id, state, tx, execution_id, error) in history {
            let mut row = entry(change_id, state, tx);
            row.execution_id = execution_id.to_owned();
            row.error = error.map(str::to_owned);
            // Each row its own checksum (one none, as imported history may have), so the
            // newest row's is told apart from an older one's.
            row.checksum = (change_id != "c").then(|| format!("sum-{execution_id}-{state}"));
            store.append(&row, None).await.expect("append");
            memory.append(&row, None).await.expect("append to memory");
        }
        let states = store.unit_states().await.expect("unit states");
        let expected = memory.unit_states().await.expect("memory unit states");
        assert_eq!(states.len(), expected.len(), "{states:#?}");
        for (change_id, want) in &expected {
            let got = &states[change_id];
            assert_eq!(got.change_id, want.change_id);
            assert_eq!(got.state, want.state, "{change_id}");
            assert_eq!(got.execution_id, want.execution_id, "{change_id}");
            assert_eq!(got.error, want.error, "{change_id}");
            assert_eq!(got.checksum, want.checksum, "{change_id}");
            assert_eq!(got.tries, want.tries, "tries of {change_id}");
            assert!(got.created_at.is_some(), "{change_id}");
        }
        assert_eq!(states["a"].tries, 2);
        assert_eq!(states["b"].tries, 2);
        assert_eq!(states["c"].tries, 0);
        // The checksum is the newest row's: a NON_TX unit's APPLIED, not its STARTED.
        assert_eq!(states["a"].checksum.as_deref(), Some("sum-e2-APPLIED"));
        assert_eq!(states["c"].checksum, None);
        db.cleanup(store.as_ref()).await;
    }

    pub async fn entries_round_trip_in_order(backend: Backend) {
        let Some(db) = TestDb::new(backend).await else {
            return;
        };
        let store = db.initialized_store().await;
        let mut full = entry("full", AuditState::Failed, TxStrategy::Separate);
        full.execution_ms = Some(1234);
        full.recovery_strategy = RecoveryStrategy::AlwaysRetry;
        full.app_name = Some("billing".to_owned());
        full.app_version = Some("1.2.3".to_owned());
        full.checksum = Some("sha256:abc".to_owned());
        full.error = Some(
            "writing the flag\ncaused by: disk full\ncaused by: ünïcødé ✓ 🚀 'quoted' \"double\" \\"
                .to_owned(),
        );
        full.metadata = Some(json!({
            "effects": ["a", "b"],
            "nested": { "n": 1, "f": 1.5, "t": true, "null": null, "text": "ü\n🚀" }
        }));
        let empty = entry("empty", AuditState::Started, TxStrategy::NonTransactional);
        let before = Utc::now() - Duration::seconds(5);
        for row in [&full, &empty, &full] {
            store.append(row, None).await.expect("append");
        }
        let after = Utc::now() + Duration::seconds(5);

        let rows = store.entries().await.expect("entries");
        assert_eq!(rows.len(), 3);
        assert!(rows.windows(2).all(|w| w[0].id < w[1].id), "ids ascend");
        for (row, written) in rows.iter().zip([&full, &empty, &full]) {
            let at = row.created_at.expect("created_at set by the database");
            assert!(before <= at && at <= after, "created_at {at} is UTC now");
            assert_eq!(
                at.timestamp_subsec_nanos() % 1_000_000,
                0,
                "ms precision: {at}"
            );
            let mut expected = written.clone();
            expected.id = row.id;
            expected.created_at = row.created_at;
            assert_eq!(row, &expected);
        }
        db.cleanup(store.as_ref()).await;
    }

    pub async fn shared_transaction_commits_unit_and_entry_together(backend: Backend) {
        let Some(db) = TestDb::new(backend).await else {
            return;
        };
        let store = db.initialized_store().await;
        let offered = store.shared_transaction_type();
        assert_eq!(
            (offered.type_id, offered.name().as_ref()),
            db.transaction_type()
        );
        let side = unique_name("side");
        db.execute(
            store.as_ref(),
            &format!("CREATE TABLE {side} (v VARCHAR(10))"),
        )
        .await;

        let mut tx = store.begin_shared().await.expect("begin shared");
        db.execute_in(tx.as_mut(), &format!("INSERT INTO {side} (v) VALUES ('x')"))
            .await;
        // Nothing is visible outside the transaction before it commits (seen through a store of
        // its own: a SQLite store has a single connection, which the transaction holds).
        let outside = db.store().await;
        assert!(outside.entries().await.expect("entries").is_empty());
        assert_eq!(db.count(outside.as_ref(), &side).await, 0);
        tx.commit_with(
            &entry("shared", AuditState::Applied, TxStrategy::Shared),
            None,
        )
        .await
        .expect("commit with entry");

        assert_eq!(db.count(store.as_ref(), &side).await, 1);
        let rows = store.entries().await.expect("entries");
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].change_id, "shared");
        assert!(rows[0].created_at.is_some());
        let states = store.unit_states().await.expect("unit states");
        assert_eq!(states["shared"].tries, 1);
        db.cleanup(store.as_ref()).await;
    }

    pub async fn shared_transaction_rollback_leaves_nothing(backend: Backend) {
        let Some(db) = TestDb::new(backend).await else {
            return;
        };
        let store = db.initialized_store().await;
        let side = unique_name("side");
        db.execute(
            store.as_ref(),
            &format!("CREATE TABLE {side} (v VARCHAR(10))"),
        )
        .await;

        let mut tx = store.begin_shared().await.expect("begin shared");
        db.execute_in(tx.as_mut(), &format!("INSERT INTO {side} (v) VALUES ('x')"))
            .await;
        tx.rollback().await.expect("rollback");

        assert_eq!(db.count(store.as_ref(), &side).await, 0);
        assert!(store.entries().await.expect("entries").is_empty());
        // The connection went back to the pool in a usable state.
        store
            .append(
                &entry("after", AuditState::Failed, TxStrategy::Shared),
                None,
            )
            .await
            .expect("append after rollback");
        assert_eq!(store.entries().await.expect("entries").len(), 1);
        db.cleanup(store.as_ref()).await;
    }

    pub async fn foreign_table_is_refused(backend: Backend) {
        let Some(db) = TestDb::new(backend).await else {
            return;
        };
        let store = db.store().await;
        db.execute(
            store.as_ref(),
            &format!(
                "CREATE TABLE {} (id INTEGER, change_id VARCHAR(10), state VARCHAR(10))",
                db.table
            ),
        )
        .await;
        let err = store.initialize().await.expect_err("a foreign table");
        let message = err.to_string();
        match &err {
            StoreError::ForeignTable { table, detail, .. } => {
                assert_eq!(table, &db.table);
                assert!(detail.contains("execution_id"), "{detail}");
                assert!(detail.contains("metadata"), "{detail}");
                assert!(!detail.contains("change_id"), "{detail}");
            }
            other => panic!("expected ForeignTable, got {other:?}"),
        }
        assert!(message.contains(&db.table), "{message}");
        assert!(message.contains("missing column(s)"), "{message}");
        db.cleanup(store.as_ref()).await;
    }

    pub async fn corrupt_rows_are_reported(backend: Backend) {
        let Some(db) = TestDb::new(backend).await else {
            return;
        };
        let store = db.initialized_store().await;
        store
            .append(
                &entry("fine", AuditState::Applied, TxStrategy::Shared),
                None,
            )
            .await
            .expect("append");
        // A row Flamingock never writes, put there by hand.
        store
            .append(&entry("bad", AuditState::Failed, TxStrategy::Shared), None)
            .await
            .expect("append");
        db.execute(
            store.as_ref(),
            &format!(
                "UPDATE {} SET state = 'EXPLODED' WHERE change_id = 'bad'",
                db.table
            ),
        )
        .await;
        for result in [
            store.unit_states().await.map(drop),
            store.entries().await.map(drop),
        ] {
            match result {
                Err(StoreError::CorruptRow { table, detail }) => {
                    assert_eq!(table, db.table);
                    assert!(detail.contains("EXPLODED"), "{detail}");
                }
                other => panic!("expected CorruptRow, got {other:?}"),
            }
        }
        db.cleanup(store.as_ref()).await;
    }

    pub async fn invalid_identifiers_are_refused(backend: Backend) {
        let Some(db) = TestDb::new(backend).await else {
            return;
        };
        let too_long = "a".repeat(64);
        for name in ["drop table x", "a;b", "", &too_long, "1abc", "t\"", "t`"] {
            let options = StoreOptions::default().with_audit_table(name);
            match flamingock_sqlx::connect(&db.url, options).await {
                Err(StoreError::InvalidIdentifier {
                    name: refused,
                    reason,
                }) => {
                    assert_eq!(refused, name);
                    assert!(!reason.is_empty());
                }
                Err(other) => panic!("expected InvalidIdentifier for {name:?}, got {other:?}"),
                Ok(_) => panic!("{name:?} was accepted as a table name"),
            }
        }
        db.drop_database().await;
    }

    pub async fn describe_and_dependencies(backend: Backend) {
        let Some(db) = TestDb::new(backend).await else {
            return;
        };
        let store = db.store().await;
        let description = store.describe();
        let label = match backend {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
            Backend::MySql => "MySQL",
        };
        assert!(description.starts_with(label), "{description}");
        assert!(
            description.ends_with(&format!("(table {})", db.table)),
            "{description}"
        );
        if backend == Backend::Sqlite {
            assert!(description.contains("audit.db"), "{description}");
        }
        assert!(!store.dependencies().is_empty());
        // Two pools on one database have one identity (what routes a target to TX_SHARED).
        let identity = store
            .database_identity()
            .expect("an SQL store knows its database");
        assert_eq!(
            db.store().await.database_identity().as_deref(),
            Some(&*identity)
        );
        assert!(!identity.contains('@'), "no user or password: {identity}");
        // `count` reads through the pool the store offers.
        store.initialize().await.expect("initialize");
        assert_eq!(db.count(store.as_ref(), &db.table).await, 0);
        db.cleanup(store.as_ref()).await;
    }

    pub async fn store_on_an_existing_pool(backend: Backend) {
        let Some(db) = TestDb::new(backend).await else {
            return;
        };
        let store = db.initialized_store().await;
        let shared = db
            .store_on_pool_of(store.as_ref(), &db.table)
            .expect("store on the pool");
        shared
            .initialize()
            .await
            .expect("initialize an existing table");
        shared
            .append(
                &entry("pooled", AuditState::Applied, TxStrategy::Shared),
                None,
            )
            .await
            .expect("append");
        assert_eq!(
            store.entries().await.expect("entries")[0].change_id,
            "pooled"
        );
        assert_eq!(shared.database_identity(), store.database_identity());
        assert!(
            shared.describe().contains(&db.table),
            "{}",
            shared.describe()
        );
        match db.store_on_pool_of(store.as_ref(), "a;b") {
            Err(StoreError::InvalidIdentifier { name, .. }) => assert_eq!(name, "a;b"),
            Err(other) => panic!("expected InvalidIdentifier, got {other:?}"),
            Ok(_) => panic!("`a;b` was accepted as a table name"),
        }
        db.cleanup(store.as_ref()).await;
    }
}

/// On SQLite a `TX_SHARED` unit's transaction holds the database's write lock and the pool's only
/// connection: a unit that also takes the pool is refused before anything runs, with the reason
/// (it used to wait for the pool until it timed out).
#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_sqlite_unit_taking_the_pool_is_refused_before_the_run() {
    use flamingock_core::testing::{StepFuture, UnitBuilder, UnitScope};
    use flamingock_core::{Engine, Error};

    fn uses_both<'s>(_: UnitScope<'s>) -> StepFuture<'s> {
        Box::pin(async { Ok(()) })
    }
    let Some(db) = common::TestDb::new(flamingock_testkit::Backend::Sqlite).await else {
        return;
    };
    let store = db.initialized_store().await;
    let unit = UnitBuilder::new("both", "1", "test")
        .takes_transaction::<sqlx::Transaction<'static, sqlx::Sqlite>>()
        .takes_dependency::<sqlx::SqlitePool>()
        .execute(uses_both)
        .build();
    let error = Engine::new(store.clone())
        .run([unit])
        .await
        .expect_err("refused");
    assert!(matches!(error, Error::MissingDependencies(_)), "{error}");
    let message = error.to_string();
    assert!(
        message.contains("write lock") && message.contains("transactional = false"),
        "{message}"
    );
    assert!(store.entries().await.unwrap().is_empty(), "nothing ran");
    // The same unit without a transaction may take the pool.
    let non_tx = UnitBuilder::new("pool-only", "1", "test")
        .transactional(false)
        .takes_dependency::<sqlx::SqlitePool>()
        .execute(uses_both)
        .build();
    Engine::new(store.clone())
        .run([non_tx])
        .await
        .expect("a non-transactional unit takes the pool");
    db.cleanup(store.as_ref()).await;
}
