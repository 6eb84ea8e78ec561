//! The audit store: the append-only record of every state change, and the trait drivers implement.

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::inject::{BoxError, Dependencies};
use crate::lock::{DistributedLock, Fence};
use crate::model::{AuditEntry, AuditState, TxStrategy, UnitState};

/// What can go wrong talking to an audit store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store could not be reached (after the driver's retries).
    #[error("cannot connect to the audit store at {url}: {source}")]
    Connect {
        /// The URL with any password redacted.
        url: String,
        /// The driver's error.
        #[source]
        source: BoxError,
    },
    /// A statement failed.
    #[error("audit store: {action} failed: {source}")]
    Query {
        /// What was being done (`"reading unit states"`).
        action: &'static str,
        /// The driver's error.
        #[source]
        source: BoxError,
    },
    /// A configured table name is not a plain SQL identifier.
    #[error("`{name}` is not a valid table name: {reason}")]
    InvalidIdentifier {
        /// The name as configured.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A table exists under the configured name but is not one of ours.
    #[error(
        "table `{table}` exists but is not a Flamingock {kind} table ({detail}); configure another table name or remove it"
    )]
    ForeignTable {
        /// The table's name.
        table: String,
        /// Which table it was meant to be: `"audit"`, `"lock"` or `"marker"`.
        kind: &'static str,
        /// How it differs (a missing column, say).
        detail: String,
    },
    /// A row could not be understood.
    #[error("audit table `{table}` holds a row Flamingock cannot read: {detail}")]
    CorruptRow {
        /// The audit table's name.
        table: String,
        /// What could not be read.
        detail: String,
    },
    /// A store opened only to read has no audit table to read (and creates none).
    #[error(
        "there is no audit table `{table}` in {store}: nothing has run against this store yet, or another database or audit table is meant (a command that only reads creates nothing)"
    )]
    NoAuditTable {
        /// The audit table's name.
        table: String,
        /// The store, described for people.
        store: String,
    },
    /// A lease row of the lock table could not be understood (`detail` says what could be read).
    #[error(
        "lock table `{table}` holds a row Flamingock cannot read: {detail}; `flamingock lock release --force` removes it"
    )]
    CorruptLockRow {
        /// The lock table's name.
        table: String,
        /// What could be read of the row.
        detail: String,
    },
    /// The database URL names no supported backend, or a backend this build lacks.
    #[error("{0}")]
    Unsupported(String),
    /// A fenced write was refused: the lease is no longer this runner's.
    #[error(
        "the lock \"{key}\" is no longer held by this runner ({owner}): another instance may have taken over, so this one records and runs nothing more"
    )]
    LockLost {
        /// The lock's key.
        key: String,
        /// This runner's id.
        owner: String,
    },
    /// A write was sent (a commit, typically) and its reply was lost, and the store could not
    /// learn whether it took effect: it may have, or not. Unlike every other error, this one does
    /// not mean "nothing happened".
    #[error("audit store: whether {action} took effect is unknown (its reply was lost): {source}")]
    OutcomeUnknown {
        /// What was being done (`"committing a shared transaction"`).
        action: &'static str,
        /// The driver's error.
        #[source]
        source: BoxError,
    },
}

/// The source of a [`TargetError`](crate::target::TargetError) whose write may or may not have
/// taken effect (a commit whose reply was lost, that the target could not settle): the engine
/// then trusts only positive evidence (a marker that is there), never its absence.
#[derive(Debug, thiserror::Error)]
#[error("whether it took effect is unknown (its reply was lost): {0}")]
pub struct OutcomeUnknown(#[source] pub BoxError);

/// The transaction of a `TX_SHARED` unit: opened on the audit store's own database, so that the
/// change and its `APPLIED` row commit together.
#[async_trait]
pub trait SharedTransaction: Send {
    /// The driver's transaction, handed to the unit as `&mut T` (e.g. `sqlx::Transaction<'static, Sqlite>`).
    fn as_any_mut(&mut self) -> &mut (dyn Any + Send);
    /// Inserts `entry` in this transaction, then commits. With a fence, the insert succeeds only
    /// while the fence's lease is still held ([`StoreError::LockLost`] otherwise, nothing committed).
    async fn commit_with(
        self: Box<Self>,
        entry: &AuditEntry,
        fence: Option<&Fence>,
    ) -> Result<(), StoreError>;
    /// Rolls back everything the unit did.
    async fn rollback(self: Box<Self>) -> Result<(), StoreError>;
}

/// An append-only audit store (docs/architecture.md#audit-states).
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Creates the tables if they are missing and checks that existing ones are ours. A store
    /// opened only to read creates nothing: it checks, and reports a missing audit table as
    /// [`StoreError::NoAuditTable`].
    async fn initialize(&self) -> Result<(), StoreError>;

    /// The newest row of every unit, in one round trip.
    async fn unit_states(&self) -> Result<HashMap<String, UnitState>, StoreError>;

    /// Appends one row. With a fence, in the same statement, only while the fence's lease is still
    /// held: [`StoreError::LockLost`] otherwise, and nothing is written.
    async fn append(&self, entry: &AuditEntry, fence: Option<&Fence>) -> Result<(), StoreError>;

    /// Every row, oldest first (history queries with filters come with the operations API).
    async fn entries(&self) -> Result<Vec<AuditEntry>, StoreError>;

    /// The rows a [`HistoryQuery`](crate::history::HistoryQuery) selects, in its order, one page.
    ///
    /// The default reads every row and filters in memory; SQL stores answer with one indexed
    /// query instead, reading only the rows they return.
    async fn history(
        &self,
        query: &crate::history::HistoryQuery,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        Ok(query.apply_to(&self.entries().await?))
    }

    /// The store's clock: the time its database stamps rows with (`created_at`) and judges
    /// leases by. Ages people type ("rows of the last hour") are measured from it, so that a
    /// client whose clock is off still selects the rows it means. The default: this process's
    /// clock (right for a store kept in this process).
    async fn now(&self) -> Result<chrono::DateTime<chrono::Utc>, StoreError> {
        Ok(chrono::Utc::now())
    }

    /// Records the plan of a run that is starting (the units it considers, not what it will do
    /// with them), so that a store shared by many services can tell what each has pending. The
    /// engine sends it once per run, beside its first read of the unit states.
    ///
    /// A failure is logged and never fails the run: the plan only informs, the audit stays the
    /// truth, and a store that cannot be reached fails the run on that read anyway. The default
    /// keeps nothing (a store in the application's own database has no one to tell).
    async fn record_plan(&self, _plan: &crate::run_plan::RunPlan) -> Result<(), StoreError> {
        Ok(())
    }

    /// Whether the store keeps the plans [`record_plan`](Self::record_plan) is told of. The
    /// engine builds a run's plan only for a store that does (the default: no), so a start on a
    /// store in the application's own database does not order and route its units twice.
    fn keeps_plans(&self) -> bool {
        false
    }

    /// Opens a transaction on the store's own database for a `TX_SHARED` unit.
    async fn begin_shared(&self) -> Result<Box<dyn SharedTransaction>, StoreError>;

    /// The type of the transaction [`begin_shared`](Self::begin_shared) hands to units, and how
    /// messages name it, so that a unit asking for another type is refused before anything runs.
    fn shared_transaction_type(&self) -> crate::TypeLabel;

    /// What units on the default target may take as `&T` (the store's connection pool).
    fn dependencies(&self) -> Dependencies;

    /// A description for logs and errors, with any password redacted.
    fn describe(&self) -> String;

    /// Identifies the database the store lives in (see
    /// [`TransactionalTarget::database_identity`](crate::target::TransactionalTarget::database_identity)).
    fn database_identity(&self) -> Option<String> {
        None
    }

    /// The store's own database as a `TX_SEPARATE` target, for a database whose transactions are
    /// not atomic: MySQL and MariaDB commit before every DDL statement, so a `TX_SHARED` unit cut
    /// short after one would leave part of its change in place with no audit row saying so.
    /// When this is `Some`, transactional units on the store's database run `TX_SEPARATE` on it,
    /// whose open marker reveals such a commit. `None` (the default): they run `TX_SHARED`.
    fn separate_target(&self) -> Option<Arc<dyn crate::target::TargetSystem>> {
        None
    }

    /// Why this store cannot run units in one transaction with their audit row at all (a store
    /// that is not a database: the Flamingock server). When `Some`, a transactional unit on the
    /// default target is refused when the run is planned, before anything is read or written,
    /// with this reason and what to do instead. The default: `None`, the store shares its
    /// transactions ([`begin_shared`](Self::begin_shared)).
    fn shared_transaction_refusal(&self) -> Option<String> {
        None
    }

    /// Why a `TX_SHARED` unit cannot use the store's dependency of type `type_id` while its
    /// transaction is open (SQLite's pool: the transaction holds the database's write lock and
    /// the pool's only connection, so the unit would wait for the pool until it times out). Such
    /// a unit is refused before anything runs. The default: every dependency can be used.
    fn unusable_in_shared_transaction(&self, _type_id: std::any::TypeId) -> Option<String> {
        None
    }

    /// The longest id, author, order and stage the store's columns can keep, so that a unit
    /// whose values do not fit is refused before anything runs, not after its work is done.
    /// The default: no limits.
    fn limits(&self) -> StoreLimits {
        StoreLimits::NONE
    }

    /// The distributed lock kept in the same database, if the store has one. Without it, runs
    /// take no lock (fine for one process, not for a fleet).
    fn lock(&self) -> Option<&dyn DistributedLock> {
        None
    }

    /// Reads other tools' history tables in the store's database, if the store can (the SQL
    /// store). `None` (the default): importing a history is refused.
    fn foreign_history(&self) -> Option<&dyn crate::import::ForeignHistory> {
        None
    }

    /// Whether the store keeps the warm start's summaries ([`current_summary`](Self::current_summary),
    /// [`record_summary`](Self::record_summary)) and may write them. The default: no.
    fn keeps_summaries(&self) -> bool {
        false
    }

    /// The summary kept for `plan` when it is current (no audit row is newer than those it
    /// covers), read in one round trip together with the audit's newest id; `None` when there is
    /// none, or it is stale. A start that finds one needs no unit's state: every unit of the plan
    /// that does not run always is applied, unchanged (docs/architecture.md#the-warm-starts-summary).
    /// The default: `None`, so every start reads [`unit_states`](Self::unit_states).
    async fn current_summary(
        &self,
        _plan: &crate::summary::PlanDigest,
    ) -> Result<Option<crate::summary::CurrentSummary>, StoreError> {
        Ok(None)
    }

    /// Establishes and writes `plan`'s summary from the audit as it is now, only while `fence`'s
    /// lease is held ([`StoreError::LockLost`] otherwise, nothing written). The store, not the
    /// caller, decides what the summary says: it reads the audit (the rows since the plan's last
    /// summary, or every unit's state) while no audit write can be in flight. The default:
    /// [`SummaryWrite::Unsupported`](crate::summary::SummaryWrite::Unsupported).
    async fn record_summary(
        &self,
        _plan: &crate::summary::PlanDigest,
        _fence: &Fence,
    ) -> Result<crate::summary::SummaryWrite, StoreError> {
        Ok(crate::summary::SummaryWrite::Unsupported)
    }

    /// Appends `entries` in order, all or none where the store can (the SQL store: one
    /// transaction). With a fence, only while its lease is held. The default appends them one by
    /// one, so a failure may leave the first ones written.
    async fn append_all(
        &self,
        entries: &[AuditEntry],
        fence: Option<&Fence>,
    ) -> Result<(), StoreError> {
        for entry in entries {
            self.append(entry, fence).await?;
        }
        Ok(())
    }
}

/// How much text one audit column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TextLimit {
    /// As much as a unit can be given.
    #[default]
    Unlimited,
    /// At most this many characters (MySQL's `VARCHAR(n)`).
    Chars(usize),
    /// At most this many bytes of UTF-8 (MySQL's `TEXT`).
    Bytes(usize),
}

impl TextLimit {
    /// Whether `text` fits.
    ///
    /// ```
    /// use flamingock_core::store::TextLimit;
    /// assert!(TextLimit::Chars(3).admits("äöü"));
    /// assert!(!TextLimit::Bytes(3).admits("äöü"));
    /// ```
    pub fn admits(self, text: &str) -> bool {
        match self {
            TextLimit::Unlimited => true,
            TextLimit::Chars(max) => text.chars().count() <= max,
            TextLimit::Bytes(max) => text.len() <= max,
        }
    }
}

impl fmt::Display for TextLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TextLimit::Unlimited => f.write_str("no limit"),
            TextLimit::Chars(max) => write!(f, "{max} characters"),
            TextLimit::Bytes(max) => write!(f, "{max} bytes"),
        }
    }
}

/// The sizes of the audit columns a unit's own values go in (see [`AuditStore::limits`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoreLimits {
    /// The `change_id` column.
    pub change_id: TextLimit,
    /// The `author` column.
    pub author: TextLimit,
    /// The `change_order` column.
    pub order: TextLimit,
    /// The `stage` column.
    pub stage: TextLimit,
}

impl StoreLimits {
    /// A store that keeps any length.
    pub const NONE: StoreLimits = StoreLimits {
        change_id: TextLimit::Unlimited,
        author: TextLimit::Unlimited,
        order: TextLimit::Unlimited,
        stage: TextLimit::Unlimited,
    };
}

/// Tries (per [`UnitState::tries`]) that a row stands for: every `STARTED`, and the single row a
/// `TX_SHARED` try writes.
pub fn counts_as_try(entry: &AuditEntry) -> bool {
    entry.state == AuditState::Started
        || (entry.tx_strategy == TxStrategy::Shared
            && matches!(entry.state, AuditState::Applied | AuditState::Failed))
}

/// The in-memory store, at its old path.
#[doc(hidden)]
pub use crate::testing::{MemoryAuditStore, MemoryTransaction};
