//! The SQL audit store, written once for every database: [`SqlAuditStore`] implements
//! [`AuditStore`] over any [`Dialect`], which supplies the SQL text and the few behaviours that
//! differ (how a transaction begins, how concurrent table creation is serialized).

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use flamingock_core::inject::Dependencies;
use flamingock_core::lock::{DistributedLock, Fence};
use flamingock_core::model::UnitState;
use flamingock_core::store::SharedTransaction;
use flamingock_core::{AuditEntry, AuditState, AuditStore, StoreError, TxStrategy};
use sqlx::{
    AssertSqlSafe, ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Pool,
    Transaction, Type,
};

use crate::identifier::TableName;
use crate::lock::{self, LockDialect, LockTable, WriteHold};
use crate::options::StoreOptions;
use crate::row;
use crate::sql::{TableKind, ensure_table, serialize_creation};

/// The columns every audit table has (DESIGN §4); a table lacking one is not ours.
pub(crate) const AUDIT_COLUMNS: [&str; 20] = [
    "id",
    "execution_id",
    "change_id",
    "author",
    "change_order",
    "stage",
    "state",
    "created_at",
    "execution_ms",
    "hostname",
    "runner_id",
    "target_system",
    "tx_strategy",
    "recovery_strategy",
    "app_name",
    "app_version",
    "source",
    "checksum",
    "error",
    "metadata",
];

/// The audit table, as [`ensure_table`] creates or checks it.
const AUDIT_TABLE: TableKind = TableKind {
    kind: "audit",
    reading: "reading the audit table's columns",
    creating: "creating the audit table",
    serializing: "taking the lock that serializes audit table creation",
};

/// The columns an insert binds, in bind order (see [`row::bind_entry`]); each dialect's insert
/// lists them in this order, then `created_at` from the database clock.
pub(crate) const INSERT_COLUMNS: &str = "execution_id, change_id, author, change_order, stage, \
     state, execution_ms, hostname, runner_id, target_system, tx_strategy, recovery_strategy, \
     app_name, app_version, source, checksum, error, metadata, created_at";

/// The columns read back as they are stored; `created_at` and `metadata` are read through
/// dialect-specific conversions to text.
pub(crate) const PLAIN_COLUMNS: &str = "id, execution_id, change_id, author, change_order, \
     stage, state, execution_ms, hostname, runner_id, target_system, tx_strategy, \
     recovery_strategy, app_name, app_version, source, checksum, error";

/// The SQL condition true for rows that [`counts_as_try`] counts: the same in every dialect.
///
/// [`counts_as_try`]: flamingock_core::store::counts_as_try
pub(crate) fn counts_as_try_condition() -> String {
    format!(
        "state = '{started}' OR (tx_strategy = '{shared}' AND state IN ('{applied}', '{failed}'))",
        started = AuditState::Started.as_str(),
        shared = TxStrategy::Shared.as_str(),
        applied = AuditState::Applied.as_str(),
        failed = AuditState::Failed.as_str(),
    )
}

mod sealed {
    pub trait Sealed {}
}

/// A database the SQL audit store supports: `sqlx::Sqlite`, `sqlx::Postgres` or `sqlx::MySql`,
/// each behind its cargo feature. Sealed; its items are the store's internals.
///
/// Every SQL function takes a name that passed [`validate_identifier`](crate::validate_identifier).
pub trait Dialect: Database + sealed::Sealed + crate::history::HistorySql + LockDialect {
    /// The database's name for people (`"SQLite"`).
    #[doc(hidden)]
    const LABEL: &'static str;
    /// The readable name of the transaction type `TX_SHARED` units take by `&mut`.
    #[doc(hidden)]
    const TRANSACTION_TYPE: &'static str;
    /// The statement that opens the schema and `TX_SHARED` transactions (`None`: sqlx's default).
    #[doc(hidden)]
    const BEGIN: Option<&'static str>;
    /// A statement taking a transaction-scoped lock on one bound `i64` key, so that concurrent
    /// `initialize()` calls create the table one after the other (`None`: the DDL is safe as is).
    #[doc(hidden)]
    const SCHEMA_LOCK: Option<&'static str>;
    /// Selects `name` (text) of every column of the table named by the one bound parameter.
    #[doc(hidden)]
    const TABLE_COLUMNS: &'static str;
    /// The sizes of the columns a unit's id, author, order and stage go in, as the dialect's
    /// `create_schema` declares them (see [`AuditStore::limits`]).
    #[doc(hidden)]
    const LIMITS: flamingock_core::store::StoreLimits = flamingock_core::store::StoreLimits::NONE;

    /// The statements creating the table (and its index) if missing, in order.
    #[doc(hidden)]
    fn create_schema(table: &str, index: &str) -> Vec<String>;
    /// Inserts one row: [`INSERT_COLUMNS`] bound in order, `created_at` from the database clock.
    #[doc(hidden)]
    fn insert_entry(table: &str) -> String;
    /// Every row, oldest first, with `created_at` and `metadata` as text.
    #[doc(hidden)]
    fn select_entries(table: &str) -> String;
    /// The newest row of each unit and its `tries` count, in one statement.
    #[doc(hidden)]
    fn select_unit_states(table: &str) -> String;
    /// Which database `options` reach: scheme, host, port and database (or the file), never
    /// credentials; equal for two pools exactly when they reach the same database.
    #[doc(hidden)]
    fn database_identity(options: &<Self::Connection as sqlx::Connection>::Options) -> String;
}

macro_rules! seal {
    ($($db:ty),*) => { $(impl sealed::Sealed for $db {})* };
}
#[cfg(feature = "sqlite")]
seal!(sqlx::Sqlite);
#[cfg(feature = "postgres")]
seal!(sqlx::Postgres);
#[cfg(feature = "mysql")]
seal!(sqlx::MySql);

/// The SQL text of one store, built once from its validated table name.
struct Statements {
    schema: Vec<Arc<str>>,
    insert: Arc<str>,
    entries: Arc<str>,
    unit_states: Arc<str>,
}

/// An append-only audit store in an SQL database (DESIGN §4), over a sqlx connection pool.
///
/// Made by [`connect`](crate::connect) from a URL, or from a pool the application already has
/// with `SqlAuditStore::sqlite`, `::postgres` or `::mysql`.
pub struct SqlAuditStore<DB: Dialect> {
    pool: Pool<DB>,
    table: TableName,
    sql: Arc<Statements>,
    lock: Arc<LockTable>,
    location: String,
    identity: String,
}

impl<DB: Dialect> Clone for SqlAuditStore<DB> {
    /// Another handle on the same pool and table.
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
            table: self.table.clone(),
            sql: Arc::clone(&self.sql),
            lock: Arc::clone(&self.lock),
            location: self.location.clone(),
            identity: self.identity.clone(),
        }
    }
}

impl<DB: Dialect> std::fmt::Debug for SqlAuditStore<DB> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlAuditStore")
            .field("database", &DB::LABEL)
            .field("location", &self.location)
            .field("table", &self.table.as_str())
            .field("lock_table", &self.lock.name())
            .finish_non_exhaustive()
    }
}

impl<DB: Dialect> SqlAuditStore<DB> {
    /// A store on `pool` whose database is shown as `location` (never holding a password).
    pub(crate) fn with_location(
        pool: Pool<DB>,
        options: &StoreOptions,
        location: String,
    ) -> Result<Self, StoreError> {
        let table = TableName::new(&options.audit_table)?;
        let index = table.derived("change_id_idx");
        let sql = Statements {
            schema: DB::create_schema(table.as_str(), &index)
                .into_iter()
                .map(Arc::from)
                .collect(),
            insert: DB::insert_entry(table.as_str()).into(),
            entries: DB::select_entries(table.as_str()).into(),
            unit_states: DB::select_unit_states(table.as_str()).into(),
        };
        let lock = LockTable::new::<DB>(options, &table)?;
        let identity = DB::database_identity(&pool.connect_options());
        Ok(Self {
            pool,
            table,
            sql: Arc::new(sql),
            lock: Arc::new(lock),
            location,
            identity,
        })
    }

    /// The connection pool (the one units on the default target receive as `&Pool<DB>`).
    pub fn pool(&self) -> &Pool<DB> {
        &self.pool
    }

    /// The audit table's name.
    pub fn table(&self) -> &str {
        self.table.as_str()
    }

    /// Which database the store lives in (see [`AuditStore::database_identity`]).
    pub fn database_identity(&self) -> &str {
        &self.identity
    }

    /// The lock table and this store's leases in it.
    pub(crate) fn lock_state(&self) -> &Arc<LockTable> {
        &self.lock
    }
}

/// Wraps a sqlx error with what was being done.
pub(crate) fn query_error(action: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Query {
        action,
        source: Box::new(source),
    }
}

/// Makes already validated SQL text executable (the only way dynamic SQL reaches sqlx here).
pub(crate) fn sql(text: &Arc<str>) -> AssertSqlSafe<Arc<str>> {
    AssertSqlSafe(Arc::clone(text))
}

#[async_trait]
impl<DB> AuditStore for SqlAuditStore<DB>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    &'static str: ColumnIndex<DB::Row>,
    String: Type<DB> + for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB>,
    i64: Type<DB> + for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB>,
    Option<String>: for<'q> Encode<'q, DB>,
    Option<i64>: for<'q> Encode<'q, DB>,
{
    async fn initialize(&self) -> Result<(), StoreError> {
        let mut tx = begin(&self.pool).await.map_err(query_error(
            "opening the transaction that creates the audit table",
        ))?;
        serialize_creation::<DB>(&mut tx, &self.table, &AUDIT_TABLE).await?;
        let schema: Vec<Arc<str>> = self.sql.schema.clone();
        let columns = AUDIT_COLUMNS;
        if ensure_table::<DB>(&mut tx, &self.table, &AUDIT_TABLE, columns, &schema).await? {
            tracing::info!(table = %self.table, store = %self.describe(), "created the audit table");
        }
        lock::ensure_table::<DB>(&mut tx, &self.lock).await?;
        tx.commit()
            .await
            .map_err(query_error("committing the creation of the audit table"))
    }

    async fn unit_states(&self) -> Result<HashMap<String, UnitState>, StoreError> {
        let rows = sqlx::query(sql(&self.sql.unit_states))
            .fetch_all(&self.pool)
            .await
            .map_err(query_error("reading unit states"))?;
        rows.iter()
            .map(|r| {
                let state = row::decode_unit_state::<DB>(r, &self.table)?;
                Ok((state.change_id.clone(), state))
            })
            .collect()
    }

    async fn append(&self, entry: &AuditEntry, fence: Option<&Fence>) -> Result<(), StoreError> {
        let Some(fence) = fence else {
            row::bind_entry(sqlx::query(sql(&self.sql.insert)), entry)
                .execute(&self.pool)
                .await
                .map_err(query_error("appending an audit entry"))?;
            return Ok(());
        };
        let inserted = bind_fenced(sqlx::query(sql(self.lock.insert_fenced())), entry, fence)
            .execute(&self.pool)
            .await
            .map_err(query_error("appending an audit entry under the lock"))?;
        fenced_outcome(DB::rows_affected(&inserted), fence)
    }

    async fn entries(&self) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sqlx::query(sql(&self.sql.entries))
            .fetch_all(&self.pool)
            .await
            .map_err(query_error("reading the audit log"))?;
        rows.iter()
            .map(|r| row::decode_entry::<DB>(r, &self.table))
            .collect()
    }

    async fn history(
        &self,
        query: &flamingock_core::history::HistoryQuery,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        crate::history::history(&self.pool, &self.table, &self.identity, query).await
    }

    async fn begin_shared(&self) -> Result<Box<dyn SharedTransaction>, StoreError> {
        let (tx, hold) = lock::begin_shared(&self.pool, &self.lock)
            .await
            .map_err(query_error("opening a shared transaction"))?;
        Ok(Box::new(SqlSharedTransaction {
            tx,
            sql: Arc::clone(&self.sql),
            lock: Arc::clone(&self.lock),
            hold,
        }))
    }

    fn shared_transaction_type(&self) -> (TypeId, &'static str) {
        (
            TypeId::of::<Transaction<'static, DB>>(),
            DB::TRANSACTION_TYPE,
        )
    }

    fn dependencies(&self) -> Dependencies {
        let mut dependencies = Dependencies::new();
        dependencies.insert(self.pool.clone());
        dependencies
    }

    fn database_identity(&self) -> Option<String> {
        Some(self.identity.clone())
    }

    fn limits(&self) -> flamingock_core::store::StoreLimits {
        DB::LIMITS
    }

    fn separate_target(&self) -> Option<Arc<dyn flamingock_core::target::TargetSystem>> {
        crate::target::separate_store_target(&self.pool)
    }

    fn describe(&self) -> String {
        format!(
            "{} audit store {} (table {})",
            DB::LABEL,
            self.location,
            self.table
        )
    }

    fn lock(&self) -> Option<&dyn DistributedLock> {
        Some(self)
    }
}

/// Opens a transaction with the dialect's `BEGIN`.
pub(crate) async fn begin<DB: Dialect>(
    pool: &Pool<DB>,
) -> Result<Transaction<'static, DB>, sqlx::Error> {
    match DB::BEGIN {
        Some(statement) => pool.begin_with(statement).await,
        None => pool.begin().await,
    }
}

/// The transaction of a `TX_SHARED` unit: the unit's statements and its audit row commit together.
struct SqlSharedTransaction<DB: Dialect> {
    tx: Transaction<'static, DB>,
    sql: Arc<Statements>,
    lock: Arc<LockTable>,
    /// On SQLite: the database's write lock, held since `BEGIN` (see the `lock` module).
    hold: Option<WriteHold>,
}

#[async_trait]
impl<DB> SharedTransaction for SqlSharedTransaction<DB>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    String: Type<DB> + for<'q> Encode<'q, DB>,
    i64: Type<DB> + for<'q> Encode<'q, DB>,
    Option<String>: for<'q> Encode<'q, DB>,
    Option<i64>: for<'q> Encode<'q, DB>,
{
    fn as_any_mut(&mut self) -> &mut (dyn Any + Send) {
        &mut self.tx
    }

    async fn commit_with(
        self: Box<Self>,
        entry: &AuditEntry,
        fence: Option<&Fence>,
    ) -> Result<(), StoreError> {
        let Self {
            mut tx,
            sql: statements,
            lock,
            hold,
        } = *self;
        let action = "recording the audit entry of a shared transaction";
        match fence {
            None => {
                row::bind_entry(sqlx::query(sql(&statements.insert)), entry)
                    .execute(&mut *tx)
                    .await
                    .map_err(query_error(action))?;
            }
            Some(fence) => {
                if let Some(hold) = &hold {
                    lock::renew_held::<DB>(&mut tx, hold)
                        .await
                        .map_err(query_error("renewing the lock's lease"))?;
                }
                let inserted = bind_fenced(sqlx::query(sql(lock.insert_fenced())), entry, fence)
                    .execute(&mut *tx)
                    .await
                    .map_err(query_error(action))?;
                let inserted = DB::rows_affected(&inserted);
                if inserted == 0 {
                    // Nothing of the unit may commit once the lease is gone.
                    if let Err(error) = tx.rollback().await {
                        tracing::warn!(%error, "rolling back after losing the lock failed; the connection is discarded");
                    }
                    return fenced_outcome(inserted, fence);
                }
            }
        }
        tx.commit()
            .await
            .map_err(query_error("committing a shared transaction"))
    }

    async fn rollback(self: Box<Self>) -> Result<(), StoreError> {
        let Self { tx, hold, .. } = *self;
        match hold {
            Some(hold) => lock::rollback_keeping_lease(tx, hold).await,
            None => tx.rollback().await,
        }
        .map_err(query_error("rolling back a shared transaction"))
    }
}

/// Binds `entry`, then the fence's key and owner, to the fenced insert.
fn bind_fenced<'q, DB>(
    query: sqlx::query::Query<'q, DB, DB::Arguments>,
    entry: &AuditEntry,
    fence: &Fence,
) -> sqlx::query::Query<'q, DB, DB::Arguments>
where
    DB: Database,
    String: Type<DB> + for<'e> Encode<'e, DB>,
    i64: Type<DB> + for<'e> Encode<'e, DB>,
    Option<String>: for<'e> Encode<'e, DB>,
    Option<i64>: for<'e> Encode<'e, DB>,
{
    row::bind_entry(query, entry)
        .bind(fence.key.clone())
        .bind(fence.owner.clone())
}

/// A fenced insert that wrote no row met a lease that is no longer the fence's.
fn fenced_outcome(inserted: u64, fence: &Fence) -> Result<(), StoreError> {
    if inserted == 0 {
        Err(StoreError::LockLost {
            key: fence.key.clone(),
            owner: fence.owner.clone(),
        })
    } else {
        Ok(())
    }
}
