//! Generic (above the backends, below the store): SQL databases as target systems: a [`SqlTarget`] is a named database (SQLite, PostgreSQL or
//! MySQL/MariaDB) that change units apply to, with the marker table of docs/architecture.md#strategies in it.
//!
//! Which strategy its units run with is the engine's call, from the target's database identity:
//! on the audit store's own database `TX_SHARED` (change and audit row in one transaction), on
//! any other database `TX_SEPARATE` (the change commits together with a marker row, so an
//! interrupted run is recovered without running the change twice). MySQL and MariaDB commit
//! before every DDL statement even inside a transaction; there, every transactional unit runs
//! `TX_SEPARATE`, whose open marker (see [`Marker`]) reveals such a commit: a unit cut short
//! after one is recorded `ROLLBACK_FAILED` and waits for a person instead of running again.

mod transaction;

use std::any::Any;
use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use flamingock_core::StoreError;
use flamingock_core::inject::Dependencies;
use flamingock_core::model::DEFAULT_TARGET;
use flamingock_core::target::{
    Marker, TargetError, TargetSystem, TargetTransaction, TransactionalTarget,
};
use sqlx::pool::PoolOptions;
use sqlx::{ColumnIndex, Connection, Decode, Encode, Executor, IntoArguments, Pool, Row, Type};

use crate::dialect::TargetDialect;
use crate::identifier::TableName;
use crate::options::StoreOptions;
use crate::pool::{connect_error, open_pool};
use crate::sql::{EnsureError, TableKind, ensure_table, serialize_creation};
use crate::sql::{begin, sql};
use transaction::{MarkerStatements, SqlTargetTransaction};

/// The columns a marker table must have; a table lacking one is not ours.
const MARKER_COLUMNS: [&str; 3] = ["change_id", "execution_id", "committed"];

/// The marker table's name unless configured otherwise.
pub const DEFAULT_MARKER_TABLE: &str = "flamingock_marker";

/// The marker table, as [`ensure_table`] creates or checks it.
const MARKER_TABLE: TableKind = TableKind {
    kind: "marker",
    reading: "reading the marker table's columns",
    creating: "creating the marker table",
    serializing: "taking the lock that serializes marker table creation",
};

/// A SQL database that change units name with `target_system = "..."`.
///
/// Units on it take the database's transaction as `&mut sqlx::Transaction<'_, DB>` and its pool
/// as `&sqlx::Pool<DB>` (`&PgPool`, `&MySqlPool`, `&SqlitePool`); [`with`](Self::with) offers
/// more. The marker table (`flamingock_marker`, see [`with_marker_table`](Self::with_marker_table))
/// is created on the first run.
///
/// [`connect`](Self::connect) opens the database at a URL
/// (`SqlTarget::<sqlx::Postgres>::connect("orders", "postgres://app@db/orders")`);
/// [`new`](Self::new) takes a pool the application already has:
///
/// ```standalone_crate
/// use flamingock::SqlTarget;
/// use flamingock::prelude::*;
///
/// #[derive(Default)]
/// pub struct CreateOrders;
///
/// #[change_unit(id = "create-orders", order = "1", author = "ana", target_system = "orders")]
/// impl CreateOrders {
///     #[execution]
///     async fn execute(&self, tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>) -> Result<(), sqlx::Error> {
///         sqlx::query("CREATE TABLE orders (id INTEGER PRIMARY KEY)").execute(&mut **tx).await?;
///         Ok(())
///     }
/// }
///
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // One connection: each connection to `sqlite::memory:` is a database of its own.
/// let pool = sqlx::sqlite::SqlitePoolOptions::new()
///     .max_connections(1)
///     .connect("sqlite::memory:")
///     .await?;
/// let builder = Flamingock::builder()
///     .database_url("sqlite::memory:") // the audit store: another database
///     .target(SqlTarget::new("orders", pool.clone()));
/// let report = flamingock::run!(builder).await?;
/// assert_eq!(report.applied(), ["create-orders"]);
/// sqlx::query("SELECT id FROM orders").fetch_all(&pool).await?; // the table is there
/// # Ok(()) }
/// ```
pub struct SqlTarget<DB: TargetDialect> {
    name: String,
    pool: Pool<DB>,
    marker_table: TableName,
    sql: Arc<MarkerStatements>,
    dependencies: Dependencies,
}

impl<DB: TargetDialect> std::fmt::Debug for SqlTarget<DB> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlTarget")
            .field("name", &self.name)
            .field("database", &DB::LABEL)
            .field(
                "identity",
                &DB::database_identity(&self.pool.connect_options()),
            )
            .field("marker_table", &self.marker_table.as_str())
            .field("dependencies", &self.dependencies)
            .finish()
    }
}

impl<DB: TargetDialect> SqlTarget<DB> {
    /// A target called `name` on the database of `pool`, which its units receive as `&Pool<DB>`.
    pub fn new(name: impl Into<String>, pool: Pool<DB>) -> Self {
        let marker_table =
            TableName::new(DEFAULT_MARKER_TABLE).expect("the default marker table name is valid");
        let mut dependencies = Dependencies::new();
        dependencies.insert_labeled(pool.clone(), crate::labels::pool_label::<DB>());
        dependencies.insert(crate::script::SqlScripts::new(pool.clone()));
        Self {
            name: name.into(),
            sql: MarkerStatements::new::<DB>(&marker_table),
            pool,
            marker_table,
            dependencies,
        }
    }

    /// Connects to the database at `url` with bounded retries (those of
    /// [`StoreOptions::default`]) and makes it the target called `name`.
    ///
    /// A server that is down is tried a few times with a growing pause; a wrong password or a
    /// malformed URL fails at once. The error names the target and shows the URL without its
    /// password.
    pub async fn connect(name: impl Into<String>, url: &str) -> Result<Self, TargetError> {
        Self::connect_with(name, url, &StoreOptions::default()).await
    }

    /// [`connect`](Self::connect) with the retries, time-out and pool size of `options` (its
    /// table name is the audit store's and plays no part here).
    pub async fn connect_with(
        name: impl Into<String>,
        url: &str,
        options: &StoreOptions,
    ) -> Result<Self, TargetError> {
        let name = name.into();
        let unreachable = |error: StoreError| TargetError {
            target: name.clone(),
            action: "connecting",
            source: match error {
                StoreError::Connect { url, source } => Box::new(Unreachable { url, source }),
                other => Box::new(other),
            },
        };
        let connect_options = <<DB::Connection as Connection>::Options>::from_str(url)
            .map_err(|error| unreachable(connect_error(url, error)))?;
        let pool_options = PoolOptions::<DB>::new().max_connections(options.max_connections.max(1));
        let pool = open_pool(
            url,
            DB::target_connect_options(connect_options),
            pool_options,
            options,
        )
        .await
        .map_err(unreachable)?;
        Ok(Self::new(name, pool))
    }

    /// Keeps the markers in `table` instead of `flamingock_marker` (a plain SQL identifier;
    /// anything else is refused).
    pub fn with_marker_table(mut self, table: &str) -> Result<Self, StoreError> {
        self.marker_table = TableName::new(table)?;
        self.sql = MarkerStatements::new::<DB>(&self.marker_table);
        Ok(self)
    }

    /// Offers `value` to this target's units as `&T` (besides the pool).
    pub fn with<T: Any + Send + Sync>(mut self, value: T) -> Self {
        self.dependencies.insert(value);
        self
    }

    /// The connection pool.
    pub fn pool(&self) -> &Pool<DB> {
        &self.pool
    }

    /// The marker table's name.
    pub fn marker_table(&self) -> &str {
        self.marker_table.as_str()
    }

    /// Wraps a sqlx error with this target's name and what was being done.
    fn error(&self, action: &'static str) -> impl FnOnce(sqlx::Error) -> TargetError + '_ {
        move |source| TargetError {
            target: self.name.clone(),
            action,
            source: Box::new(source),
        }
    }
}

/// A target database that could not be reached; the URL is redacted.
#[derive(Debug, thiserror::Error)]
#[error("cannot connect to {url}: {source}")]
struct Unreachable {
    url: String,
    #[source]
    source: flamingock_core::inject::BoxError,
}

/// The audit store's database as a target of its own, where `TX_SHARED` would not be atomic (see
/// [`AuditStore::separate_target`](flamingock_core::AuditStore::separate_target)): the databases
/// whose DDL commits ([`Dialect::DDL_COMMITS`](crate::Dialect::DDL_COMMITS): MySQL and MariaDB). `None` for the others.
pub(crate) fn separate_store_target<DB>(pool: &Pool<DB>) -> Option<Arc<dyn TargetSystem>>
where
    DB: TargetDialect,
    SqlTarget<DB>: TransactionalTarget,
{
    DB::DDL_COMMITS
        .then(|| Arc::new(SqlTarget::new(DEFAULT_TARGET, pool.clone())) as Arc<dyn TargetSystem>)
}

#[async_trait]
impl<DB> TransactionalTarget for SqlTarget<DB>
where
    DB: TargetDialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    &'static str: ColumnIndex<DB::Row>,
    String: Type<DB> + for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB>,
    bool: Type<DB> + for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB>,
    i64: Type<DB> + for<'q> Encode<'q, DB>,
{
    fn database_identity(&self) -> String {
        // Computed each time: a SQLite file created after this target was made has a canonical
        // path only from then on.
        DB::database_identity(&self.pool.connect_options())
    }

    fn transaction_type(&self) -> flamingock_core::TypeLabel {
        crate::labels::transaction_label::<DB>()
    }

    async fn initialize(&self) -> Result<(), TargetError> {
        let mut tx = begin(&self.pool)
            .await
            .map_err(self.error("opening the transaction that creates the marker table"))?;
        let create = [Arc::clone(&self.sql.create)];
        let ensured = async {
            serialize_creation::<DB>(&mut tx, &self.marker_table, &MARKER_TABLE).await?;
            ensure_table::<DB>(
                &mut tx,
                &self.marker_table,
                &MARKER_TABLE,
                MARKER_COLUMNS,
                &create,
            )
            .await
        };
        match ensured.await {
            Ok(true) => {
                tracing::info!(target_system = %self.name, table = %self.marker_table, "created the marker table");
            }
            Ok(false) => {}
            Err(EnsureError::Query(action, source)) => return Err(self.error(action)(source)),
            Err(EnsureError::Foreign(error)) => {
                return Err(TargetError {
                    target: self.name.clone(),
                    action: "checking the marker table",
                    source: Box::new(error),
                });
            }
        }
        tx.commit()
            .await
            .map_err(self.error("committing the creation of the marker table"))
    }

    async fn begin(&self) -> Result<Box<dyn TargetTransaction>, TargetError> {
        let tx = begin(&self.pool)
            .await
            .map_err(self.error("opening a transaction"))?;
        Ok(Box::new(SqlTargetTransaction {
            tx,
            pool: self.pool.clone(),
            target: self.name.clone(),
            sql: Arc::clone(&self.sql),
        }))
    }

    async fn begin_apply(
        &self,
        change_id: &str,
        execution_id: &str,
    ) -> Result<Box<dyn TargetTransaction>, TargetError> {
        let mut tx = begin(&self.pool)
            .await
            .map_err(self.error("opening a transaction"))?;
        sqlx::query(sql(&self.sql.upsert))
            .bind(change_id.to_owned())
            .bind(execution_id.to_owned())
            .bind(false)
            .execute(&mut *tx)
            .await
            .map_err(self.error("writing the open marker"))?;
        Ok(Box::new(SqlTargetTransaction {
            tx,
            pool: self.pool.clone(),
            target: self.name.clone(),
            sql: Arc::clone(&self.sql),
        }))
    }

    async fn marker(&self, change_id: &str) -> Result<Option<Marker>, TargetError> {
        let row = sqlx::query(sql(&self.sql.select))
            .bind(change_id.to_owned())
            .fetch_optional(&self.pool)
            .await
            .map_err(self.error("reading the marker"))?;
        row.map(|row| {
            Ok(Marker {
                execution_id: row.try_get("execution_id")?,
                committed: row.try_get("committed")?,
            })
        })
        .transpose()
        .map_err(self.error("reading the marker"))
    }

    async fn remove_marker(&self, change_id: &str) -> Result<(), TargetError> {
        sqlx::query(sql(&self.sql.delete))
            .bind(change_id.to_owned())
            .execute(&self.pool)
            .await
            .map_err(self.error("removing the marker"))?;
        Ok(())
    }
}

impl<DB: TargetDialect> TargetSystem for SqlTarget<DB>
where
    SqlTarget<DB>: TransactionalTarget,
{
    fn name(&self) -> &str {
        &self.name
    }

    fn dependencies(&self) -> &Dependencies {
        &self.dependencies
    }

    fn transactional(&self) -> Option<&dyn TransactionalTarget> {
        Some(self)
    }
}

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    use std::any::TypeId;

    use sqlx::Transaction;

    use super::*;

    fn lazy_pool() -> sqlx::SqlitePool {
        sqlx::SqlitePool::connect_lazy("sqlite::memory:").expect("an in-memory URL")
    }

    #[tokio::test]
    async fn the_marker_table_name_must_be_an_identifier() {
        let target = SqlTarget::new("orders", lazy_pool());
        assert_eq!(target.marker_table(), DEFAULT_MARKER_TABLE);
        let renamed = target.with_marker_table("billing_marker").expect("valid");
        assert_eq!(renamed.marker_table(), "billing_marker");
        assert!(renamed.sql.upsert.contains("\"billing_marker\""));
        let refused = SqlTarget::new("orders", lazy_pool()).with_marker_table("m; DROP TABLE x");
        assert!(matches!(refused, Err(StoreError::InvalidIdentifier { .. })));
    }

    #[tokio::test]
    async fn the_target_offers_its_pool_and_its_transaction_type() {
        let target = SqlTarget::new("orders", lazy_pool()).with(7_u32);
        assert!(target.dependencies().get::<sqlx::SqlitePool>().is_some());
        assert_eq!(target.dependencies().get::<u32>(), Some(&7));
        let transactional = target.transactional().expect("a database is transactional");
        let offered = transactional.transaction_type();
        assert_eq!(
            offered.type_id,
            TypeId::of::<Transaction<'static, sqlx::Sqlite>>()
        );
        assert_eq!(offered.name(), "Transaction<'_, Sqlite>");
        assert!(
            target
                .dependencies()
                .labels()
                .iter()
                .any(|label| label.name() == "SqlitePool"),
            "the pool is shown as users write it"
        );
        assert!(
            transactional
                .database_identity()
                .starts_with("sqlite::memory:"),
            "{}",
            transactional.database_identity()
        );
    }

    #[tokio::test]
    async fn only_mysql_audit_stores_get_a_separate_target() {
        assert!(separate_store_target(&lazy_pool()).is_none());
        #[cfg(feature = "mysql")]
        {
            let options = sqlx::mysql::MySqlConnectOptions::new();
            let pool = sqlx::mysql::MySqlPoolOptions::new().connect_lazy_with(options);
            let target = separate_store_target(&pool).expect("MySQL's DDL commits");
            assert_eq!(target.name(), DEFAULT_TARGET);
        }
        #[cfg(feature = "postgres")]
        {
            let options = sqlx::postgres::PgConnectOptions::new();
            let pool = sqlx::postgres::PgPoolOptions::new().connect_lazy_with(options);
            assert!(separate_store_target(&pool).is_none());
        }
    }
}
