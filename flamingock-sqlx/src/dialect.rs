//! Leaf: the dialect traits, what each backend folder (`sqlite/`, `postgres/`, `mysql/`)
//! implements so that the generic store, lock, history and target run on it: its spelling of
//! placeholders, quotes and clocks, and its SQL statements. Imports nothing of this crate but
//! the leaf that names the quoting rules of its SQL files (`script::ScriptBackend`).

use chrono::{DateTime, Utc};
use sqlx::Database;

mod sealed {
    pub trait Sealed {}
}

/// A database the SQL audit store supports: `sqlx::Sqlite`, `sqlx::Postgres` or `sqlx::MySql`,
/// each behind its cargo feature. Sealed; its items are the store's internals.
///
/// Every SQL function takes a name that passed [`validate_identifier`](crate::validate_identifier).
pub trait Dialect:
    Database
    + sealed::Sealed
    + HistorySql
    + LockDialect
    + SummaryDialect
    + crate::script::ScriptBackend
    + crate::import::ForeignSql
{
    /// The database's name for people (`"SQLite"`).
    #[doc(hidden)]
    const LABEL: &'static str;
    /// The name a user writes for the transaction type units take by `&mut`
    /// (`Transaction<'_, Postgres>`).
    #[doc(hidden)]
    const TRANSACTION_TYPE: &'static str;
    /// The name a user writes for the pool type units take by `&` (`PgPool`).
    #[doc(hidden)]
    const POOL_TYPE: &'static str;
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
    /// `create_schema` declares them (see `AuditStore::limits`).
    #[doc(hidden)]
    const LIMITS: flamingock_core::store::StoreLimits = flamingock_core::store::StoreLimits::NONE;
    /// Whether the database commits before every DDL statement, even inside a transaction
    /// (MySQL, MariaDB): there `TX_SHARED` is not atomic, and the store's own database is offered
    /// as a `TX_SEPARATE` target instead.
    #[doc(hidden)]
    const DDL_COMMITS: bool;
    /// Selects the current transaction's id as text (`txid`), read before a unit's `COMMIT` so
    /// that a commit whose reply is lost can be settled (`None`: the database cannot be asked).
    #[doc(hidden)]
    const TRANSACTION_ID: Option<&'static str> = None;
    /// A clause that, appended to an `INSERT`, returns the current transaction's id as `txid`
    /// (what [`TRANSACTION_ID`](Self::TRANSACTION_ID) selects): a shared transaction's audit
    /// insert reads it this way, saving the `SELECT`'s round trip before every unit's `COMMIT`.
    #[doc(hidden)]
    const RETURNING_TRANSACTION_ID: Option<&'static str> = None;
    /// Selects what became of the transaction whose id is bound, as text (`status`):
    /// `committed`, `aborted`, `in progress`, or NULL when too old to know.
    #[doc(hidden)]
    const TRANSACTION_STATUS: Option<&'static str> = None;

    /// The statements creating the table (and its index) if missing, in order.
    #[doc(hidden)]
    fn create_schema(table: &str, index: &str) -> Vec<String>;
    /// Adds `column`, nullable text, to the audit `table` of an earlier shape.
    #[doc(hidden)]
    fn add_text_column(table: &str, column: &str) -> String;
    /// Fills `column` of the rows that have none from their metadata's `key` (a string), where
    /// earlier releases kept the value; leaves every other row as it is.
    #[doc(hidden)]
    fn fill_from_metadata(table: &str, column: &str, key: &str) -> String;
    /// Whether `error` says that the column an `ALTER TABLE .. ADD COLUMN` adds is already
    /// there (another instance added it first).
    #[doc(hidden)]
    fn is_duplicate_column(error: &sqlx::Error) -> bool;
    /// Inserts one row: the columns of [`insert_columns`](crate::columns::insert_columns) bound in order, `created_at` from the database clock.
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
    /// Whether a new connection made with `options` reaches the database that `options`' pool
    /// does (not so for SQLite in memory): then the lease's heartbeat opens one of its own.
    #[doc(hidden)]
    fn second_connection_reaches_same_database(
        _options: &<Self::Connection as sqlx::Connection>::Options,
    ) -> bool {
        true
    }

    /// Selects, as text, the session setting that decides where an unqualified table name
    /// resolves (PostgreSQL's `search_path`, MySQL's current database), so that a connection
    /// opened beside a user's pool (whose `after_connect` may have changed it) finds the same
    /// lock table (`None`: the connect options decide it alone).
    #[doc(hidden)]
    const NAME_RESOLUTION: Option<&'static str> = None;

    /// `options` with the setting [`NAME_RESOLUTION`](Self::NAME_RESOLUTION) read from the
    /// store's pool.
    #[doc(hidden)]
    fn resolving_names_as(
        options: <Self::Connection as sqlx::Connection>::Options,
        _setting: &str,
    ) -> <Self::Connection as sqlx::Connection>::Options {
        options
    }
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

/// The lock's SQL, per database. Every function takes names that passed
/// [`validate_identifier`](crate::validate_identifier). Timestamps are read back as RFC 3339 text
/// in UTC; leases are bound as `i64` milliseconds.
#[doc(hidden)]
pub trait LockDialect: Database {
    /// Whether a shared transaction holds the whole database's write lock from its `BEGIN` until
    /// it ends (SQLite): see the `lock::write_hold` module.
    const TRANSACTION_LOCKS_DATABASE: bool;

    /// Creates the lock table if it is missing.
    fn create_lock_table(table: &str) -> String;
    /// The row of one key (bind: key) with columns `lock_key`, `owner`, `hostname`,
    /// `acquired_at` and `expires_at` as text, and `expired` (`i64`, 1 when the database clock is
    /// past `expires_at`).
    fn select_lock(table: &str) -> String;
    /// [`select_lock`](Self::select_lock), locking the row until the transaction ends.
    fn select_lock_for_update(table: &str) -> String;
    /// The atomic acquisition (binds: key, owner, hostname, lease ms): inserts the row, or takes it
    /// over when it is expired or already ours; changes nothing when someone else holds it.
    fn upsert_lock(table: &str) -> String;
    /// Moves the expiry to now + lease (binds: lease ms, key, owner) if the row is ours and
    /// unexpired; the number of rows matched tells.
    fn extend_lock(table: &str) -> String;
    /// Moves the expiry to now + lease (binds: lease ms, key, owner, since) if the row is ours and
    /// was unexpired at `since`, this process's clock as the lock table writes times (the
    /// `lock::write_hold` module). Only for databases whose transactions lock the whole database.
    fn renew_lock_since(table: &str) -> Option<String>;
    /// Removes the row if it is ours (binds: key, owner).
    fn release_lock(table: &str) -> String;
    /// Removes the row whoever holds it (bind: key).
    fn delete_lock(table: &str) -> String;
    /// Inserts an audit row (the columns of [`insert_columns`](crate::columns::insert_columns)
    /// bound in order, then the lease's key and owner) only while that lease is ours and unexpired
    /// by the database clock, in one statement.
    fn insert_entry_fenced(audit_table: &str, lock_table: &str) -> String;
    /// The number of rows a statement wrote (or, for MySQL's `UPDATE`, matched).
    fn rows_affected(result: &Self::QueryResult) -> u64;
    /// Whether `error` says the database was busy (locked by another connection) rather than
    /// broken: an acquisition attempt that meets it reports the lock as held.
    fn is_busy(error: &sqlx::Error) -> bool;
}

/// The SQL of the warm start's summary table (`generic summary` module), per database. Every
/// function takes names that passed [`validate_identifier`](crate::validate_identifier).
///
/// What each backend must guarantee is the module's soundness argument: while a summary is
/// written, no audit insert is in flight and none can begin (SQLite: `BEGIN IMMEDIATE` holds the
/// database's write lock; PostgreSQL: a `SHARE` lock on the audit table, which every insert's
/// `ROW EXCLUSIVE` conflicts with; MySQL/MariaDB: locking reads, whose next-key locks wait for
/// uncommitted inserts and keep new ones out of the range read).
#[doc(hidden)]
pub trait SummaryDialect: Database {
    /// Creates the summary table if it is missing.
    fn create_summary_table(table: &str) -> String;
    /// One row: the summary of the bound plan digest (`covers_id`, `run_always`) and the audit
    /// table's newest id (`newest`), read together in one statement (one snapshot).
    fn select_current_summary(summary: &str, audit: &str) -> String;
    /// The summary of the bound plan digest (`covers_id`, `run_always`), read inside the
    /// summary's transaction (a locking read where the database needs one).
    fn select_summary_base(summary: &str) -> String;
    /// The audit rows with an id above the first bound value, oldest first, at most the second
    /// bound value of them, with the columns `decode_entry` reads (a locking read where the
    /// database needs one).
    fn select_entries_after(audit: &str) -> String;
    /// Selects the audit's newest id as `newest` (NULL when it is empty).
    fn select_newest_id(audit: &str) -> String;
    /// The statements that begin the summary's transaction, so that no audit insert is in flight
    /// and none begins before it ends (PostgreSQL: a bounded wait for the table lock).
    fn quiesce_audit(audit: &str) -> Vec<String>;
    /// A statement that, before every unit's state is read inside the summary's transaction,
    /// waits for every uncommitted audit insert and keeps new ones out (MySQL: a locking read
    /// of the whole table); `None` where [`quiesce_audit`](Self::quiesce_audit) did so already.
    fn lock_whole_audit(audit: &str) -> Option<String>;
    /// Inserts or replaces the summary of a plan (binds: digest, covers id, run-always states as
    /// JSON text, unit count, then the lease's key and owner) only while that lease is ours and
    /// unexpired by the database clock, in one statement.
    fn upsert_summary_fenced(summary: &str, lock: &str) -> String;
    /// Whether `error` says the wait for a lock ran out (the audit table is busy).
    fn is_lock_timeout(error: &sqlx::Error) -> bool;
}

/// What each dialect spells its own way in a history query. Implemented for every [`Dialect`];
/// not for use outside this crate (the module is private, so the trait is sealed).
pub trait HistorySql {
    /// The `n`-th bind parameter (1-based).
    #[doc(hidden)]
    fn placeholder(n: usize) -> String;
    /// The table name quoted.
    #[doc(hidden)]
    fn quoted(table: &str) -> String;
    /// A bound timestamp (as written by [`time_text`](Self::time_text)) in a comparison with
    /// `created_at`.
    #[doc(hidden)]
    fn time_param(placeholder: &str) -> String;
    /// The bound form of an instant.
    #[doc(hidden)]
    fn time_text(at: &DateTime<Utc>) -> String;
    /// `created_at` and `metadata` read as text, as `decode_entry` expects them.
    #[doc(hidden)]
    const TEXT_COLUMNS: &'static str;
    /// Selects the clock `created_at` is stamped from as column `now`, RFC 3339 text in UTC.
    #[doc(hidden)]
    const SELECT_CLOCK: &'static str;
    /// Statements that create the history indexes if they are missing. MySQL cannot say
    /// `IF NOT EXISTS`: there, an index is created only when [`index_exists`](Self::index_exists)
    /// finds none.
    #[doc(hidden)]
    fn create_index(table: &str, index: &str, columns: IndexColumns) -> String;
    /// A query counting indexes named by the second bound parameter on the table named by the
    /// first, where `CREATE INDEX` has no `IF NOT EXISTS` (`None` elsewhere).
    #[doc(hidden)]
    const INDEX_EXISTS: Option<&'static str>;
}

/// The history indexes.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexColumns {
    CreatedAt,
    Author,
    Execution,
}

impl IndexColumns {
    pub(crate) const ALL: [IndexColumns; 3] = [
        IndexColumns::CreatedAt,
        IndexColumns::Author,
        IndexColumns::Execution,
    ];

    pub(crate) fn suffix(self) -> &'static str {
        match self {
            IndexColumns::CreatedAt => "created_at_idx",
            IndexColumns::Author => "author_idx",
            IndexColumns::Execution => "execution_idx",
        }
    }
}

/// A database a [`SqlTarget`](crate::SqlTarget) can write markers in: the dialects of the audit
/// store (`sqlx::Sqlite`, `sqlx::Postgres`, `sqlx::MySql`). Sealed through [`Dialect`]; its items
/// are the target's internals.
pub trait TargetDialect: Dialect {
    /// Creates the marker table if it is missing.
    #[doc(hidden)]
    fn create_marker_table(table: &str) -> String;
    /// Inserts the unit's marker, or replaces the one it has (upsert): binds `change_id`,
    /// `execution_id`, `committed`.
    #[doc(hidden)]
    fn upsert_marker(table: &str) -> String;
    /// Selects `execution_id` and `committed` of the marker of the bound `change_id`.
    #[doc(hidden)]
    fn select_marker(table: &str) -> String;
    /// Deletes the marker of the bound `change_id`.
    #[doc(hidden)]
    fn delete_marker(table: &str) -> String;
    /// Adjusts the options [`SqlTarget::connect`](crate::SqlTarget::connect) opens a URL with.
    #[doc(hidden)]
    fn target_connect_options(options: ConnectOptionsOf<Self>) -> ConnectOptionsOf<Self> {
        options
    }
}

/// The connect options of a database's connections.
pub(crate) type ConnectOptionsOf<DB> =
    <<DB as sqlx::Database>::Connection as sqlx::Connection>::Options;
