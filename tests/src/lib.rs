//! Shared helpers for the integration tests: a fresh SQLite file per test, and reading its audit;
//! a fresh database per test on the servers ([`servers`]); the non-SQL services ([`services`]).

pub mod conformance;
pub mod counting;
#[cfg(unix)]
pub mod fleet;
pub mod proxy;
pub mod reply_loss;
pub mod servers;
pub mod services;

use flamingock::{AuditEntry, AuditState, Flamingock, FlamingockBuilder};

/// A SQLite database in its own temporary directory, removed when dropped.
pub struct TestDb {
    _dir: tempfile::TempDir,
    /// `sqlite://…` URL of the file.
    pub url: String,
}

impl TestDb {
    /// A fresh, empty database file.
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let url = format!("sqlite://{}", dir.path().join("audit.db").display());
        Self { _dir: dir, url }
    }

    /// A builder on this database, selecting only the units of `module` (a `module_path!()`).
    pub fn builder(&self, module: &str) -> FlamingockBuilder {
        Flamingock::builder().database_url(&self.url).module(module)
    }

    /// Every audit row, oldest first.
    pub async fn entries(&self) -> Vec<AuditEntry> {
        let engine = Flamingock::builder()
            .database_url(&self.url)
            .build()
            .await
            .expect("the test database opens");
        // A run refused before it touched the store left no table yet: the audit is then empty.
        engine
            .store()
            .initialize()
            .await
            .expect("the audit table exists");
        engine.store().entries().await.expect("the audit reads")
    }

    /// The states of one unit's rows, oldest first.
    pub async fn states_of(&self, change_id: &str) -> Vec<AuditState> {
        self.entries()
            .await
            .into_iter()
            .filter(|e| e.change_id == change_id)
            .map(|e| e.state)
            .collect()
    }

    /// A pool on the database, for checking what units did.
    pub async fn pool(&self) -> sqlx::SqlitePool {
        let options: sqlx::sqlite::SqliteConnectOptions =
            self.url.parse().expect("a valid SQLite URL");
        sqlx::SqlitePool::connect_with(options.create_if_missing(true))
            .await
            .expect("the test database opens")
    }
}
