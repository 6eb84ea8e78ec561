//! Top: the SQL audit store, written once for every database: [`SqlAuditStore`] implements
//! [`AuditStore`] over any [`Dialect`], which supplies the SQL text and the few behaviours that
//! differ (how a transaction begins, how concurrent table creation is serialized).

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use flamingock_core::inject::Dependencies;
use flamingock_core::lock::{Acquisition, DistributedLock, Fence, LeaseKeeper, LockInfo};
use flamingock_core::model::UnitState;
use flamingock_core::store::SharedTransaction;
use flamingock_core::summary::{CurrentSummary, PlanDigest, SummaryWrite};
use flamingock_core::target::TransactionalTarget;
use flamingock_core::{AuditEntry, AuditStore, StoreError};
use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Pool, Row, Transaction, Type};

use crate::columns::{bind_entry, bind_fenced, first_shape_column_names};
use crate::commit::{CommitFailure, commit_settled, commit_settled_as};
use crate::dialect::{Dialect, TargetDialect};
use crate::identifier::TableName;
use crate::lock::{self, Leases, LockTable, Renewals, SqlKeeper, WriteHold};
use crate::options::StoreOptions;
use crate::row;
use crate::sql::{
    TableKind, begin, ensure_table, inspect_columns, query_error, serialize_creation, sql,
    write_error,
};
use crate::summary::{SUMMARY_COLUMNS, SUMMARY_TABLE, SummaryTable};
use crate::target::SqlTarget;
use crate::upgrade::{missing_columns, upgrade_audit_table};

/// The audit table, as [`ensure_table`] creates or checks it.
pub(crate) const AUDIT_TABLE: TableKind = TableKind {
    kind: "audit",
    reading: "reading the audit table's columns",
    creating: "creating the audit table",
    serializing: "taking the lock that serializes audit table creation",
};

/// The SQL text of one store, built once from its validated table name.
struct Statements {
    schema: Vec<Arc<str>>,
    insert: Arc<str>,
    /// A shared transaction's audit insert, unfenced and fenced: the insert and the fenced
    /// insert, returning the transaction's id where the dialect can
    /// ([`Dialect::RETURNING_TRANSACTION_ID`]).
    shared_insert: Arc<str>,
    shared_insert_fenced: Arc<str>,
    entries: Arc<str>,
    unit_states: Arc<str>,
}

/// An append-only audit store in an SQL database (docs/architecture.md#audit-states), over a sqlx connection pool.
///
/// Made by [`connect`](crate::connect()) from a URL, or from a pool the application already has
/// with `SqlAuditStore::sqlite`, `::postgres` or `::mysql`.
pub struct SqlAuditStore<DB: Dialect> {
    pool: Pool<DB>,
    table: TableName,
    sql: Arc<Statements>,
    lock: Arc<LockTable>,
    /// The warm start's summary table (`<audit table>_summary`).
    summary: Arc<SummaryTable>,
    location: String,
    identity: String,
    /// Opened only to read (see [`StoreOptions::read_only`]).
    read_only: bool,
    /// Where the pool's sessions resolve table names ([`Dialect::NAME_RESOLUTION`]), read on the
    /// run's runtime when the lock is first taken, for the heartbeat's own connection.
    name_resolution: Arc<tokio::sync::OnceCell<Option<String>>>,
    /// Set once the audit table is known to have every column reads name (or to be absent).
    readable: Arc<tokio::sync::OnceCell<()>>,
}

/// What the audit table's columns say about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AuditShape {
    /// There is no audit table yet.
    Absent,
    /// Ours, of an earlier shape: it lacks columns added since ([`upgrade_audit_table`]).
    Earlier,
    /// Ours, with every column.
    Current,
}

impl<DB: Dialect> Clone for SqlAuditStore<DB> {
    /// Another handle on the same pool and table.
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
            table: self.table.clone(),
            sql: Arc::clone(&self.sql),
            lock: Arc::clone(&self.lock),
            summary: Arc::clone(&self.summary),
            location: self.location.clone(),
            identity: self.identity.clone(),
            read_only: self.read_only,
            name_resolution: Arc::clone(&self.name_resolution),
            readable: Arc::clone(&self.readable),
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
        let lock = LockTable::new::<DB>(options, &table)?;
        let insert = DB::insert_entry(table.as_str());
        let returning = DB::RETURNING_TRANSACTION_ID.unwrap_or("");
        let sql = Statements {
            schema: DB::create_schema(table.as_str(), &index)
                .into_iter()
                .map(Arc::from)
                .collect(),
            shared_insert: format!("{insert}{returning}").into(),
            shared_insert_fenced: format!("{}{returning}", lock.insert_fenced()).into(),
            insert: insert.into(),
            entries: DB::select_entries(table.as_str()).into(),
            unit_states: DB::select_unit_states(table.as_str()).into(),
        };
        let summary = SummaryTable::new::<DB>(&table, lock.name())?;
        let identity = DB::database_identity(&pool.connect_options());
        Ok(Self {
            pool,
            table,
            sql: Arc::new(sql),
            lock: Arc::new(lock),
            summary: Arc::new(summary),
            location,
            identity,
            read_only: options.read_only,
            name_resolution: Arc::default(),
            readable: Arc::default(),
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

    /// The lock table's name (`flamingock_lock` beside the default audit table).
    pub fn lock_table(&self) -> &str {
        self.lock.name()
    }

    /// Reads, once, where the pool's sessions resolve table names (a user's pool may change it
    /// in `after_connect`), so the heartbeat's own connection finds the same lock table.
    async fn read_name_resolution(&self) -> Result<(), StoreError>
    where
        for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
        DB::Arguments: IntoArguments<DB>,
        &'static str: ColumnIndex<DB::Row>,
        String: Type<DB> + for<'r> Decode<'r, DB>,
    {
        let Some(query) = DB::NAME_RESOLUTION else {
            return Ok(());
        };
        self.name_resolution
            .get_or_try_init(|| async {
                const ACTION: &str = "read where the session resolves table names";
                let row = sqlx::query(query)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(query_error(ACTION))?;
                row.try_get::<Option<String>, _>("setting")
                    .map_err(query_error(ACTION))
            })
            .await
            .map(|_| ())
    }

    /// The leases of the lock table, through the store's pool.
    fn leases(&self) -> Leases<'_, DB> {
        Leases {
            pool: &self.pool,
            lock: &self.lock,
        }
    }
}

/// The distributed lock: the lease rows of the lock table (see the `lock` module).
#[async_trait]
impl<DB> DistributedLock for SqlAuditStore<DB>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    &'static str: ColumnIndex<DB::Row>,
    String: Type<DB> + for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB>,
    i64: Type<DB> + for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB>,
{
    async fn try_acquire(
        &self,
        fence: &Fence,
        hostname: &str,
        lease: Duration,
    ) -> Result<Acquisition, StoreError> {
        self.read_name_resolution().await?;
        self.leases().try_acquire(fence, hostname, lease).await
    }

    async fn extend(&self, fence: &Fence, lease: Duration) -> Result<bool, StoreError> {
        self.leases().extend(fence, lease).await
    }

    async fn release(&self, fence: &Fence) -> Result<(), StoreError> {
        self.leases().release(fence).await
    }

    async fn read(&self, key: &str) -> Result<Option<LockInfo>, StoreError> {
        self.leases().read(key).await
    }

    async fn force_release(&self, key: &str) -> Result<Option<LockInfo>, StoreError> {
        self.leases().force_release(key).await
    }

    async fn keeper(&self) -> Result<Box<dyn LeaseKeeper>, StoreError> {
        let setting = self.name_resolution.get().cloned().flatten();
        Ok(Box::new(SqlKeeper::beside(
            &self.pool,
            &self.lock,
            setting.as_deref(),
        )))
    }

    fn heartbeat_on_own_thread(&self) -> bool {
        // The keeper shares the store's pool there: a connection handed back to it from another
        // runtime that ends may be dropped, and with an in-memory database's only connection
        // the database goes too.
        DB::second_connection_reaches_same_database(&self.pool.connect_options())
    }
}

#[async_trait]
impl<DB> AuditStore for SqlAuditStore<DB>
where
    DB: TargetDialect,
    SqlTarget<DB>: TransactionalTarget,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    &'static str: ColumnIndex<DB::Row>,
    String: Type<DB> + for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB>,
    i64: Type<DB> + for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB>,
    Option<String>: for<'q> Encode<'q, DB>,
    Option<i64>: for<'q> Encode<'q, DB>,
{
    async fn initialize(&self) -> Result<(), StoreError> {
        if self.read_only {
            return self.check_tables().await;
        }
        // Tables that are there and ours need no write transaction: on SQLite that would wait
        // for a holder's write lock (up to the busy timeout) before the lock wait even began.
        let (shape, lock_there, summary_there) = self.tables().await?;
        if shape == AuditShape::Current && lock_there && summary_there {
            let _ = self.readable.set(());
            return Ok(());
        }
        let mut tx = begin(&self.pool).await.map_err(query_error(
            "opening the transaction that creates the audit table",
        ))?;
        serialize_creation::<DB>(&mut tx, &self.table, &AUDIT_TABLE).await?;
        let schema: Vec<Arc<str>> = self.sql.schema.clone();
        let columns = first_shape_column_names();
        if ensure_table::<DB>(&mut tx, &self.table, &AUDIT_TABLE, columns, &schema).await? {
            tracing::info!(table = %self.table, store = %self.describe(), "created the audit table");
        }
        lock::ensure_table::<DB>(&mut tx, &self.lock).await?;
        // Tables made by a release without summaries get theirs in place.
        let create = [Arc::clone(&self.summary.create)];
        if ensure_table::<DB>(
            &mut tx,
            &self.summary.table,
            &SUMMARY_TABLE,
            SUMMARY_COLUMNS,
            &create,
        )
        .await?
        {
            tracing::info!(table = %self.summary.table, "created the summary table");
        }
        tx.commit()
            .await
            .map_err(query_error("committing the creation of the audit table"))?;
        if shape == AuditShape::Earlier {
            upgrade_audit_table(&self.pool, &self.table, &self.lock).await?;
        }
        let _ = self.readable.set(());
        Ok(())
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
        // The connection first, on its own: a failure to connect means the insert was never
        // sent, a plain error, not one whose outcome is unknown.
        let mut connection = self
            .pool
            .acquire()
            .await
            .map_err(query_error("connecting to append an audit entry"))?;
        let Some(fence) = fence else {
            bind_entry(sqlx::query(sql(&self.sql.insert)), entry)
                .execute(&mut *connection)
                .await
                .map_err(write_error("appending an audit entry"))?;
            return Ok(());
        };
        let inserted = bind_fenced(sqlx::query(sql(self.lock.insert_fenced())), entry, fence)
            .execute(&mut *connection)
            .await
            .map_err(write_error("appending an audit entry under the lock"))?;
        fenced_outcome(DB::rows_affected(&inserted), fence)
    }

    async fn entries(&self) -> Result<Vec<AuditEntry>, StoreError> {
        self.ensure_readable().await?;
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
        self.ensure_readable().await?;
        let indexes = !self.read_only;
        crate::history::history(&self.pool, &self.table, &self.identity, indexes, query).await
    }

    async fn now(&self) -> Result<chrono::DateTime<chrono::Utc>, StoreError> {
        crate::history::database_now(&self.pool).await
    }

    async fn begin_shared(&self) -> Result<Box<dyn SharedTransaction>, StoreError> {
        let (tx, hold) = lock::begin_shared(&self.pool, &self.lock)
            .await
            .map_err(query_error("opening a shared transaction"))?;
        Ok(Box::new(SqlSharedTransaction {
            tx,
            pool: self.pool.clone(),
            sql: Arc::clone(&self.sql),
            hold,
        }))
    }

    fn shared_transaction_type(&self) -> flamingock_core::TypeLabel {
        crate::labels::transaction_label::<DB>()
    }

    fn dependencies(&self) -> Dependencies {
        let mut dependencies = Dependencies::new();
        dependencies.insert_labeled(self.pool.clone(), crate::labels::pool_label::<DB>());
        dependencies.insert(crate::script::SqlScripts::new(self.pool.clone()));
        dependencies
    }

    fn database_identity(&self) -> Option<String> {
        Some(self.identity.clone())
    }

    fn unusable_in_shared_transaction(&self, type_id: TypeId) -> Option<String> {
        (DB::TRANSACTION_LOCKS_DATABASE && type_id == TypeId::of::<Pool<DB>>()).then(|| {
            format!(
                "on {} the unit's transaction holds the database's write lock and the pool's only connection, so the pool would wait until it times out; do everything through the transaction (`&mut {}`), or make the unit `transactional = false` to use the pool",
                DB::LABEL,
                DB::TRANSACTION_TYPE
            )
        })
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

    fn foreign_history(&self) -> Option<&dyn flamingock_core::import::ForeignHistory> {
        Some(self)
    }

    fn keeps_summaries(&self) -> bool {
        !self.read_only
    }

    async fn current_summary(
        &self,
        plan: &PlanDigest,
    ) -> Result<Option<CurrentSummary>, StoreError> {
        crate::summary::current(&self.pool, &self.summary, plan).await
    }

    async fn record_summary(
        &self,
        plan: &PlanDigest,
        fence: &Fence,
    ) -> Result<SummaryWrite, StoreError> {
        if self.read_only {
            return Ok(SummaryWrite::Unsupported);
        }
        // Whole rows are read since the last summary: a table of an earlier shape is upgraded first.
        self.ensure_readable().await?;
        crate::summary::record(
            &self.pool,
            &self.table,
            &self.sql.unit_states,
            &self.summary,
            plan,
            fence,
        )
        .await
    }

    async fn append_all(
        &self,
        entries: &[AuditEntry],
        fence: Option<&Fence>,
    ) -> Result<(), StoreError> {
        let mut tx = begin(&self.pool).await.map_err(query_error(
            "opening the transaction that appends audit entries",
        ))?;
        let action = "appending audit entries in one transaction";
        for entry in entries {
            let inserted = match fence {
                None => bind_entry(sqlx::query(sql(&self.sql.insert)), entry)
                    .execute(&mut *tx)
                    .await
                    .map_err(query_error(action))?,
                Some(fence) => {
                    bind_fenced(sqlx::query(sql(self.lock.insert_fenced())), entry, fence)
                        .execute(&mut *tx)
                        .await
                        .map_err(query_error(action))?
                }
            };
            if let Some(fence) = fence
                && DB::rows_affected(&inserted) == 0
            {
                if let Err(error) = tx.rollback().await {
                    tracing::warn!(%error, "rolling back after losing the lock failed; the connection is discarded");
                }
                return fenced_outcome(0, fence);
            }
        }
        let action = "committing audit entries";
        commit_settled(tx, &self.pool)
            .await
            .map_err(|failure| match failure {
                CommitFailure::NotCommitted(error) => query_error(action)(error),
                CommitFailure::Unknown(error) => StoreError::OutcomeUnknown {
                    action,
                    source: Box::new(error),
                },
            })
    }
}

#[async_trait]
impl<DB> flamingock_core::import::ForeignHistory for SqlAuditStore<DB>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    &'static str: ColumnIndex<DB::Row>,
    String: Type<DB> + for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB>,
{
    async fn read_foreign(
        &self,
        tool: flamingock_core::import::SourceTool,
        table: &str,
    ) -> Result<Option<Vec<flamingock_core::import::ForeignEntry>>, StoreError> {
        crate::import::read_foreign(&self.pool, tool, table).await
    }
}

impl<DB> SqlAuditStore<DB>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    &'static str: ColumnIndex<DB::Row>,
    String: Type<DB> + for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB>,
{
    /// The audit table's shape, and whether the lock and summary tables are there (and ours),
    /// read without a transaction.
    async fn tables(&self) -> Result<(AuditShape, bool, bool), StoreError> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(query_error("reading the audit table's columns"))?;
        let shape = self.audit_shape(&mut conn).await?;
        let lock_there = lock::table_is_there::<DB>(&mut conn, &self.lock).await?;
        let summary_there = crate::sql::inspect_table::<DB>(
            &mut conn,
            &self.summary.table,
            &SUMMARY_TABLE,
            SUMMARY_COLUMNS,
        )
        .await?;
        Ok((shape, lock_there, summary_there))
    }

    /// The warm start's summary table's name (`<audit table>_summary`).
    pub fn summary_table(&self) -> &str {
        self.summary.table.as_str()
    }

    /// What the audit table's columns say: absent, ours of an earlier shape, or current; an
    /// error for a table that is not ours.
    async fn audit_shape(&self, conn: &mut DB::Connection) -> Result<AuditShape, StoreError> {
        let columns = first_shape_column_names();
        Ok(
            match inspect_columns::<DB>(conn, &self.table, &AUDIT_TABLE, columns).await? {
                None => AuditShape::Absent,
                Some(found) if missing_columns(&found).is_empty() => AuditShape::Current,
                Some(_) => AuditShape::Earlier,
            },
        )
    }

    /// `initialize()` of a store that only reads: the audit table must be there and ours (of
    /// this release's shape or an earlier one: states read the same), the lock table ours if it
    /// is there; nothing is created, upgraded or locked.
    async fn check_tables(&self) -> Result<(), StoreError> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(query_error("reading the audit table's columns"))?;
        if self.audit_shape(&mut conn).await? == AuditShape::Absent {
            return Err(StoreError::NoAuditTable {
                table: self.table.to_string(),
                store: format!("the {} database {}", DB::LABEL, self.location),
            });
        }
        lock::check_table::<DB>(&mut conn, &self.lock).await
    }

    /// Before a read that names every column (entries, history): an audit table of an earlier
    /// shape is upgraded first, or, by a store that only reads, refused with what to do. Checked
    /// once per store.
    async fn ensure_readable(&self) -> Result<(), StoreError>
    where
        Self: AuditStore,
    {
        self.readable
            .get_or_try_init(|| async {
                let mut conn = self
                    .pool
                    .acquire()
                    .await
                    .map_err(query_error("reading the audit table's columns"))?;
                let shape = self.audit_shape(&mut conn).await?;
                drop(conn);
                match shape {
                    AuditShape::Absent | AuditShape::Current => Ok(()),
                    AuditShape::Earlier if self.read_only => {
                        Err(StoreError::Unsupported(format!(
                            "the audit table `{}` in {} was created by an earlier release of Flamingock and lacks the column(s) {}; a store opened only to read does not upgrade it: run Flamingock once with write access (any run upgrades it in place, keeping every row), then read again",
                            self.table,
                            self.describe(),
                            upgrade_names(),
                        )))
                    }
                    AuditShape::Earlier => AuditStore::initialize(self).await,
                }
            })
            .await
            .map(|_| ())
    }
}

/// The added columns, for messages.
fn upgrade_names() -> String {
    crate::columns::ADDED_COLUMNS
        .iter()
        .map(|c| c.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The transaction of a `TX_SHARED` unit: the unit's statements and its audit row commit together.
struct SqlSharedTransaction<DB: Dialect> {
    tx: Transaction<'static, DB>,
    /// Where a commit whose reply was lost is settled from (another connection).
    pool: Pool<DB>,
    sql: Arc<Statements>,
    /// On SQLite: the database's write lock, held since `BEGIN` (see the `lock` module).
    hold: Option<WriteHold>,
}

#[async_trait]
impl<DB> SharedTransaction for SqlSharedTransaction<DB>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    &'static str: ColumnIndex<DB::Row>,
    String: Type<DB> + for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB>,
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
            pool,
            sql: statements,
            hold,
        } = *self;
        let action = "recording the audit entry of a shared transaction";
        let renewals = match (fence, &hold) {
            (Some(_), Some(hold)) => Some(
                lock::renew_held::<DB>(&mut tx, hold)
                    .await
                    .map_err(query_error("renewing the lock's lease"))?,
            ),
            _ => None,
        };
        let query = match fence {
            None => bind_entry(sqlx::query(sql(&statements.shared_insert)), entry),
            Some(fence) => bind_fenced(
                sqlx::query(sql(&statements.shared_insert_fenced)),
                entry,
                fence,
            ),
        };
        // Where the insert returns the transaction's id, no row back means nothing was inserted.
        let (inserted, txid) = if DB::RETURNING_TRANSACTION_ID.is_some() {
            match query
                .fetch_optional(&mut *tx)
                .await
                .map_err(query_error(action))?
            {
                Some(row) => (
                    1,
                    Some(
                        row.try_get::<String, _>("txid")
                            .map_err(query_error(action))?,
                    ),
                ),
                None => (0, None),
            }
        } else {
            let done = query.execute(&mut *tx).await.map_err(query_error(action))?;
            (DB::rows_affected(&done), None)
        };
        if let Some(fence) = fence
            && inserted == 0
        {
            // Nothing of the unit may commit once the lease is gone.
            if let Err(error) = tx.rollback().await {
                tracing::warn!(%error, "rolling back after losing the lock failed; the connection is discarded");
            }
            return fenced_outcome(inserted, fence);
        }
        let action = "committing a shared transaction";
        let committed = match txid {
            Some(txid) => commit_settled_as(tx, &pool, Some(txid)).await,
            None => commit_settled(tx, &pool).await,
        };
        if committed.is_ok() {
            // Only now: a renewal rolled back with its transaction left the lease where it was.
            renewals.into_iter().for_each(Renewals::note);
        }
        committed.map_err(|failure| match failure {
            CommitFailure::NotCommitted(error) => query_error(action)(error),
            CommitFailure::Unknown(error) => StoreError::OutcomeUnknown {
                action,
                source: Box::new(error),
            },
        })
    }

    async fn rollback(self: Box<Self>) -> Result<(), StoreError> {
        let Self { tx, hold, pool, .. } = *self;
        match hold {
            Some(hold) => lock::rollback_keeping_lease(tx, hold, &pool).await,
            None => tx.rollback().await,
        }
        .map_err(query_error("rolling back a shared transaction"))
    }
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
