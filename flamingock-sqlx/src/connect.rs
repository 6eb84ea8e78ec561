//! Top: the ways to make an audit store: [`connect`] opens the one a URL names (the backend by
//! its scheme, the pool by the backend's folder, the store on top); `SqlAuditStore::sqlite`,
//! `::postgres` and `::mysql` build one on a pool the application already has.

use std::sync::Arc;

use flamingock_core::{AuditStore, StoreError};

use crate::identifier::TableName;
use crate::options::StoreOptions;
use crate::store::SqlAuditStore;
use crate::url::Backend;

/// Connects to the audit store at `url` and returns it, not yet initialized
/// ([`AuditStore::initialize`] creates the table).
///
/// The scheme picks the backend: `sqlite:` (the file is created if missing, unless
/// [`StoreOptions::read_only`]; WAL journal, busy timeout), `postgres:`/`postgresql:`, `mysql:`/`mariadb:`. A scheme this build lacks the feature
/// for, or an unknown one, is [`StoreError::Unsupported`]. A server that is down is tried
/// [`StoreOptions::connect_attempts`] times, waiting [`StoreOptions::connect_backoff`] after the
/// first failure and twice as long after each next one; wrong credentials or a malformed URL fail
/// at once. Errors and log lines show the URL with its password redacted.
///
/// ```
/// # #[cfg(not(feature = "sqlite"))] fn main() {}
/// # #[cfg(feature = "sqlite")]
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), flamingock_core::StoreError> {
/// let dir = tempfile::tempdir().expect("temp dir");
/// let url = format!("sqlite://{}/audit.db", dir.path().display());
/// let store = flamingock_sqlx::connect(&url, flamingock_sqlx::StoreOptions::default()).await?;
/// store.initialize().await?;
/// assert!(store.unit_states().await?.is_empty());
/// # Ok(())
/// # }
/// ```
pub async fn connect(url: &str, options: StoreOptions) -> Result<Arc<dyn AuditStore>, StoreError> {
    // Everything the store would refuse is refused before a connection creates a SQLite file.
    let audit = TableName::new(&options.audit_table)?;
    crate::lock::lock_table_name(&options, &audit)?;
    match Backend::from_url(url)? {
        #[cfg(feature = "sqlite")]
        Backend::Sqlite => {
            let mut options = options;
            // `mode=ro`: SQLite refuses every write, so the store attempts none.
            options.read_only |= crate::sqlite::is_read_only(url);
            let (pool, location) = crate::sqlite::open(url, &options).await?;
            Ok(Arc::new(SqlAuditStore::with_location(
                pool, &options, location,
            )?))
        }
        #[cfg(feature = "postgres")]
        Backend::Postgres => {
            let (pool, location) = crate::postgres::open(url, &options).await?;
            Ok(Arc::new(SqlAuditStore::with_location(
                pool, &options, location,
            )?))
        }
        #[cfg(feature = "mysql")]
        Backend::MySql => {
            let (pool, location) = crate::mysql::open(url, &options).await?;
            Ok(Arc::new(SqlAuditStore::with_location(
                pool, &options, location,
            )?))
        }
        #[allow(unreachable_patterns)] // every backend compiled in
        backend => Err(backend.not_compiled_in(url)),
    }
}

#[cfg(feature = "sqlite")]
impl SqlAuditStore<sqlx::Sqlite> {
    /// A store in the database of an existing pool (shared with the application).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use flamingock_core::AuditStore;
    /// use flamingock_sqlx::{SqlAuditStore, StoreOptions};
    ///
    /// let pool = sqlx::SqlitePool::connect("sqlite::memory:").await?;
    /// let store = SqlAuditStore::sqlite(pool, StoreOptions::default())?;
    /// store.initialize().await?;
    /// assert_eq!(store.describe(), "SQLite audit store :memory: (table flamingock_audit_log)");
    /// # Ok(())
    /// # }
    /// ```
    pub fn sqlite(pool: sqlx::SqlitePool, options: StoreOptions) -> Result<Self, StoreError> {
        let location = crate::sqlite::location(&pool.connect_options());
        Self::with_location(pool, &options, location)
    }
}

#[cfg(feature = "postgres")]
impl SqlAuditStore<sqlx::Postgres> {
    /// A store in the database of an existing pool (shared with the application).
    pub fn postgres(
        pool: sqlx::postgres::PgPool,
        options: StoreOptions,
    ) -> Result<Self, StoreError> {
        let location = crate::postgres::location(&pool.connect_options());
        Self::with_location(pool, &options, location)
    }
}

#[cfg(feature = "mysql")]
impl SqlAuditStore<sqlx::MySql> {
    /// A store in the database of an existing pool (shared with the application).
    pub fn mysql(pool: sqlx::mysql::MySqlPool, options: StoreOptions) -> Result<Self, StoreError> {
        let location = crate::mysql::location(&pool.connect_options());
        Self::with_location(pool, &options, location)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn unknown_schemes_are_unsupported() {
        let Err(err) = connect("oracle://u:pw@db/x", StoreOptions::default()).await else {
            panic!("oracle is not supported");
        };
        let message = err.to_string();
        assert!(matches!(err, StoreError::Unsupported(_)), "{message}");
        assert!(message.contains("oracle://u:***@db/x"), "{message}");
        assert!(!message.contains("pw"), "{message}");
    }

    #[tokio::test]
    async fn invalid_table_names_are_refused_before_connecting() {
        let options = StoreOptions::default().with_audit_table("a;b");
        let Err(err) = connect("postgres://127.0.0.1:1/x", options).await else {
            panic!("`a;b` is not a table name");
        };
        assert!(matches!(err, StoreError::InvalidIdentifier { .. }), "{err}");
    }

    #[cfg(feature = "sqlite")]
    #[tokio::test]
    async fn a_refused_configuration_creates_no_sqlite_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("audit.db");
        let url = format!("sqlite://{}", file.display());
        // The lock table may not be the audit table, in any spelling.
        let options = StoreOptions::default().with_lock_table("FLAMINGOCK_AUDIT_LOG");
        let Err(err) = connect(&url, options).await else {
            panic!("the lock table is the audit table");
        };
        assert!(matches!(err, StoreError::InvalidIdentifier { .. }), "{err}");
        assert!(!file.exists(), "{} was left behind", file.display());
    }

    #[cfg(feature = "sqlite")]
    #[tokio::test]
    async fn a_store_that_only_reads_creates_no_file_and_no_table() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("audit.db");
        let url = format!("sqlite://{}", file.display());
        let reading = || StoreOptions::default().with_read_only(true);
        let missing = connect(&url, reading()).await.expect("reads as empty");
        let err = missing.initialize().await.expect_err("no audit table");
        assert!(matches!(err, StoreError::NoAuditTable { .. }), "{err}");
        assert!(err.to_string().contains(&*file.to_string_lossy()), "{err}");
        assert!(!file.exists());

        // A database without the tables: said so, and still without them.
        let writer = connect(&url, StoreOptions::default()).await.expect("opens");
        drop(writer);
        let store = connect(&url, reading()).await.expect("opens to read");
        let err = store.initialize().await.expect_err("no audit table");
        assert!(err.to_string().contains("there is no audit table"), "{err}");
        assert!(store.initialize().await.is_err(), "still none");

        let writer = connect(&url, StoreOptions::default()).await.expect("opens");
        writer.initialize().await.expect("creates the tables");
        store.initialize().await.expect("the tables are there now");
        assert!(store.entries().await.expect("reads").is_empty());
        let query = flamingock_core::history::HistoryQuery::new();
        assert!(store.history(&query).await.expect("reads").is_empty());
        let err = store
            .append(&sample_entry(), None)
            .await
            .expect_err("a store that only reads writes nothing");
        assert!(err.to_string().contains("readonly"), "{err}");
    }

    fn sample_entry() -> flamingock_core::AuditEntry {
        use flamingock_core::{AuditState, RecoveryStrategy, TxStrategy};
        flamingock_core::AuditEntry {
            id: 0,
            execution_id: "run".into(),
            change_id: "a".into(),
            author: "ana".into(),
            change_order: "1".into(),
            stage: "default".into(),
            state: AuditState::Applied,
            created_at: None,
            execution_ms: None,
            hostname: "host".into(),
            runner_id: "runner".into(),
            target_system: "default".into(),
            tx_strategy: TxStrategy::Shared,
            recovery_strategy: RecoveryStrategy::ManualIntervention,
            app_name: None,
            app_version: None,
            source: "tests".into(),
            checksum: None,
            error: None,
            metadata: None,
            system_version: None,
        }
    }
}
