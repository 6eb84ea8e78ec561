//! Test support shared by the integration tests: a fresh database per test (from the workspace's
//! `flamingock-testkit`, which reads the servers from the environment and skips loudly, or fails
//! under `FLAMINGOCK_REQUIRE_SERVERS=1`, when one is down), an audit table of its own in it, and
//! statements run through the pool or transaction a store offers.

#![allow(dead_code)] // each test file uses its own part of this module

use std::any::TypeId;
use std::sync::{Arc, Mutex};

use flamingock_core::store::SharedTransaction;
use flamingock_core::{AuditEntry, AuditState, AuditStore, RecoveryStrategy, TxStrategy};
use flamingock_sqlx::StoreOptions;
use flamingock_sqlx::sqlx::{self, AssertSqlSafe};
pub use flamingock_testkit::Backend;
use flamingock_testkit::FreshDb;

/// A table name no other test (in this process or another run) uses.
pub use flamingock_testkit::unique_name;

/// The URL of the test server for `backend` (pointing at its default database).
pub fn server_url(backend: Backend) -> String {
    backend.url()
}

/// This crate's name for a test backend (its stores and URLs say `flamingock_sqlx::Backend`).
pub fn sqlx_backend(backend: Backend) -> flamingock_sqlx::Backend {
    match backend {
        Backend::Sqlite => flamingock_sqlx::Backend::Sqlite,
        Backend::Postgres => flamingock_sqlx::Backend::Postgres,
        Backend::MySql => flamingock_sqlx::Backend::MySql,
    }
}

/// One test's database: a fresh one (a new SQLite file, or a new database on the server), and
/// the audit table the test names in it.
pub struct TestDb {
    pub backend: Backend,
    pub url: String,
    pub table: String,
    /// The fresh database, dropped by [`TestDb::cleanup`].
    fresh: Mutex<Option<FreshDb>>,
}

impl TestDb {
    /// A fresh database for one test, or `None` (after a loud `SKIPPED:` line) when the server is
    /// unreachable and servers are not required.
    pub async fn new(backend: Backend) -> Option<Self> {
        let fresh = FreshDb::create(backend, "sqlx").await?;
        assert_eq!(
            flamingock_sqlx::Backend::from_url(&fresh.url).ok(),
            Some(sqlx_backend(backend)),
            "{}",
            fresh.url
        );
        Some(TestDb {
            backend,
            url: fresh.url.clone(),
            table: unique_name("audit"),
            fresh: Mutex::new(Some(fresh)),
        })
    }

    /// Options naming this test's audit table.
    pub fn options(&self) -> StoreOptions {
        StoreOptions::default().with_audit_table(&self.table)
    }

    /// A new store (with a pool of its own) on this test's database and table.
    pub async fn store(&self) -> Arc<dyn AuditStore> {
        flamingock_sqlx::connect(&self.url, self.options())
            .await
            .expect("connect to the test database")
    }

    /// A store on this test's database and table, initialized.
    pub async fn initialized_store(&self) -> Arc<dyn AuditStore> {
        let store = self.store().await;
        store.initialize().await.expect("initialize");
        store
    }

    /// A store built with `SqlAuditStore::sqlite` / `::postgres` / `::mysql` on the pool `store`
    /// offers, for the table `table`.
    pub fn store_on_pool_of(
        &self,
        store: &dyn AuditStore,
        table: &str,
    ) -> Result<Arc<dyn AuditStore>, flamingock_core::StoreError> {
        use flamingock_sqlx::SqlAuditStore;
        let deps = store.dependencies();
        let options = StoreOptions::default().with_audit_table(table);
        Ok(match self.backend {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite => Arc::new(SqlAuditStore::sqlite(pool(&deps).clone(), options)?),
            #[cfg(feature = "postgres")]
            Backend::Postgres => Arc::new(SqlAuditStore::postgres(pool(&deps).clone(), options)?),
            #[cfg(feature = "mysql")]
            Backend::MySql => Arc::new(SqlAuditStore::mysql(pool(&deps).clone(), options)?),
            #[allow(unreachable_patterns)]
            _ => unreachable!("backend not compiled in"),
        })
    }

    /// Runs `sql` on the store's pool (taken from its dependencies, as a unit would).
    pub async fn execute(&self, store: &dyn AuditStore, sql: &str) {
        let sql = AssertSqlSafe(sql.to_owned());
        let deps = store.dependencies();
        let result = match self.backend {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite => sqlx::raw_sql(sql)
                .execute(pool::<sqlx::Sqlite>(&deps))
                .await
                .map(drop),
            #[cfg(feature = "postgres")]
            Backend::Postgres => sqlx::raw_sql(sql)
                .execute(pool::<sqlx::Postgres>(&deps))
                .await
                .map(drop),
            #[cfg(feature = "mysql")]
            Backend::MySql => sqlx::raw_sql(sql)
                .execute(pool::<sqlx::MySql>(&deps))
                .await
                .map(drop),
            #[allow(unreachable_patterns)]
            _ => unreachable!("backend not compiled in"),
        };
        result.expect("test statement");
    }

    /// The number of rows of `table`.
    pub async fn count(&self, store: &dyn AuditStore, table: &str) -> i64 {
        let sql = AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}"));
        let deps = store.dependencies();
        let result = match self.backend {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite => {
                sqlx::query_scalar(sql)
                    .fetch_one(pool::<sqlx::Sqlite>(&deps))
                    .await
            }
            #[cfg(feature = "postgres")]
            Backend::Postgres => {
                sqlx::query_scalar(sql)
                    .fetch_one(pool::<sqlx::Postgres>(&deps))
                    .await
            }
            #[cfg(feature = "mysql")]
            Backend::MySql => {
                sqlx::query_scalar(sql)
                    .fetch_one(pool::<sqlx::MySql>(&deps))
                    .await
            }
            #[allow(unreachable_patterns)]
            _ => unreachable!("backend not compiled in"),
        };
        result.expect("count rows")
    }

    /// Runs `sql` inside a `TX_SHARED` transaction, through the type a unit receives.
    pub async fn execute_in(&self, tx: &mut dyn SharedTransaction, sql: &str) {
        let sql = AssertSqlSafe(sql.to_owned());
        let any = tx.as_any_mut();
        let result = match self.backend {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite => sqlx::raw_sql(sql)
                .execute(&mut **transaction::<sqlx::Sqlite>(any))
                .await
                .map(drop),
            #[cfg(feature = "postgres")]
            Backend::Postgres => sqlx::raw_sql(sql)
                .execute(&mut **transaction::<sqlx::Postgres>(any))
                .await
                .map(drop),
            #[cfg(feature = "mysql")]
            Backend::MySql => sqlx::raw_sql(sql)
                .execute(&mut **transaction::<sqlx::MySql>(any))
                .await
                .map(drop),
            #[allow(unreachable_patterns)]
            _ => unreachable!("backend not compiled in"),
        };
        result.expect("statement in the shared transaction");
    }

    /// The type and name a store of this backend must report for its shared transaction.
    pub fn transaction_type(&self) -> (TypeId, &'static str) {
        match self.backend {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite => (
                TypeId::of::<sqlx::Transaction<'static, sqlx::Sqlite>>(),
                "Transaction<'_, Sqlite>",
            ),
            #[cfg(feature = "postgres")]
            Backend::Postgres => (
                TypeId::of::<sqlx::Transaction<'static, sqlx::Postgres>>(),
                "Transaction<'_, Postgres>",
            ),
            #[cfg(feature = "mysql")]
            Backend::MySql => (
                TypeId::of::<sqlx::Transaction<'static, sqlx::MySql>>(),
                "Transaction<'_, MySql>",
            ),
            #[allow(unreachable_patterns)]
            _ => unreachable!("backend not compiled in"),
        }
    }

    /// Drops the test's database with everything it made, once the test is done with `store`
    /// (see [`drop_database`](Self::drop_database)).
    pub async fn cleanup(&self, _store: &dyn AuditStore) {
        self.drop_database().await;
    }

    /// Drops the test's database on the server (closing what still uses it on PostgreSQL). A
    /// SQLite file goes with its directory when the `TestDb` is dropped, after the stores on it.
    pub async fn drop_database(&self) {
        if self.backend == Backend::Sqlite {
            return;
        }
        let fresh = self.fresh.lock().expect("lock").take();
        if let Some(fresh) = fresh {
            fresh.drop_database().await;
        }
    }
}

fn pool<DB: sqlx::Database>(deps: &flamingock_core::Dependencies) -> &sqlx::Pool<DB> {
    deps.get::<sqlx::Pool<DB>>()
        .expect("the store offers its pool as a dependency")
}

fn transaction<DB: sqlx::Database>(
    any: &mut (dyn std::any::Any + Send),
) -> &mut sqlx::Transaction<'static, DB> {
    any.downcast_mut()
        .expect("the shared transaction is a sqlx::Transaction of the store's database")
}

/// An entry as the engine would write it, with every optional field empty.
pub fn entry(change_id: &str, state: AuditState, tx_strategy: TxStrategy) -> AuditEntry {
    AuditEntry {
        id: 0,
        execution_id: "0190a0a0-0000-7000-8000-000000000001".to_owned(),
        change_id: change_id.to_owned(),
        author: "ana".to_owned(),
        change_order: "0001".to_owned(),
        stage: "default".to_owned(),
        state,
        created_at: None,
        execution_ms: None,
        hostname: "test-host".to_owned(),
        runner_id: "runner-1".to_owned(),
        target_system: "default".to_owned(),
        tx_strategy,
        recovery_strategy: RecoveryStrategy::ManualIntervention,
        app_name: None,
        app_version: None,
        source: "tests::units (tests/units.rs:1)".to_owned(),
        checksum: None,
        error: None,
        metadata: None,
        system_version: None,
    }
}
