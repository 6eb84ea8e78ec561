//! Test support shared by the integration tests: a database per test (its own table, and for
//! SQLite its own file), the servers from the environment, and loud skips when one is down
//! (the workspace's `flamingock-testkit` supplies the servers, names and skips).
//!
//! PostgreSQL: `FLAMINGOCK_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`).
//! MariaDB/MySQL: `FLAMINGOCK_TEST_MYSQL_URL` (default `mysql://root@127.0.0.1:3306/test`).
//! An unreachable server skips its tests with a `SKIPPED:` line, unless
//! `FLAMINGOCK_REQUIRE_SERVERS=1`, which makes it a failure.

#![allow(dead_code)] // each test file uses its own part of this module

use std::any::TypeId;
use std::sync::Arc;

use flamingock_core::store::SharedTransaction;
use flamingock_core::{AuditEntry, AuditState, AuditStore, RecoveryStrategy, TxStrategy};
use flamingock_sqlx::sqlx::{self, AssertSqlSafe};
use flamingock_sqlx::{Backend, StoreOptions, redact_url};

/// A table name no other test (in this process or another run) uses.
pub use flamingock_testkit::unique_name;

/// The URL of the test server for `backend`, from the environment or the default.
pub fn server_url(backend: Backend) -> String {
    kit_backend(backend).url()
}

/// The workspace's test backend for a backend of this crate.
fn kit_backend(backend: Backend) -> flamingock_testkit::Backend {
    match backend {
        Backend::Sqlite => flamingock_testkit::Backend::Sqlite,
        Backend::Postgres => flamingock_testkit::Backend::Postgres,
        Backend::MySql => flamingock_testkit::Backend::MySql,
    }
}

/// One test's database: where it is, and the audit table the test owns.
pub struct TestDb {
    pub backend: Backend,
    pub url: String,
    pub table: String,
    /// Every table the test created, dropped by [`TestDb::cleanup`].
    tables: std::sync::Mutex<Vec<String>>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    /// A fresh database for one test, or `None` (after a loud `SKIPPED:` line) when the server is
    /// unreachable and servers are not required.
    pub async fn new(backend: Backend) -> Option<Self> {
        let (url, dir) = match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}/audit.db", dir.path().display());
                (url, Some(dir))
            }
            server => (server_url(server), None),
        };
        let db = TestDb {
            backend,
            url,
            table: unique_name("audit"),
            tables: std::sync::Mutex::new(Vec::new()),
            _dir: dir,
        };
        if backend != Backend::Sqlite {
            let probe = StoreOptions::default().with_connect_attempts(1);
            if let Err(error) = flamingock_sqlx::connect(&db.url, probe).await {
                flamingock_testkit::skip(&format!(
                    "{} at {} unreachable: {error}",
                    backend.label(),
                    redact_url(&db.url)
                ));
                return None;
            }
        }
        db.tables.lock().expect("lock").push(db.table.clone());
        Some(db)
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

    /// Remembers `table` to be dropped by [`cleanup`](Self::cleanup).
    pub fn owns(&self, table: &str) {
        self.tables.lock().expect("lock").push(table.to_owned());
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
                "sqlx::Transaction<'_, sqlx::Sqlite>",
            ),
            #[cfg(feature = "postgres")]
            Backend::Postgres => (
                TypeId::of::<sqlx::Transaction<'static, sqlx::Postgres>>(),
                "sqlx::Transaction<'_, sqlx::Postgres>",
            ),
            #[cfg(feature = "mysql")]
            Backend::MySql => (
                TypeId::of::<sqlx::Transaction<'static, sqlx::MySql>>(),
                "sqlx::Transaction<'_, sqlx::MySql>",
            ),
            #[allow(unreachable_patterns)]
            _ => unreachable!("backend not compiled in"),
        }
    }

    /// Drops every table the test made (server databases outlive the test; SQLite files don't).
    pub async fn cleanup(&self, store: &dyn AuditStore) {
        if self.backend == Backend::Sqlite {
            return;
        }
        let tables = std::mem::take(&mut *self.tables.lock().expect("lock"));
        for table in tables {
            self.execute(store, &format!("DROP TABLE IF EXISTS {table}"))
                .await;
            // The lock table an audit table of that name gets beside it.
            self.execute(store, &format!("DROP TABLE IF EXISTS {table}_lock"))
                .await;
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
    }
}
