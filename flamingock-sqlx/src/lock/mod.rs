//! Generic (above the backends, below the store): the distributed lock in SQL (docs/architecture.md#lock): the lock table ([`LockTable`]: its
//! name, SQL and the leases this process holds) and its lease rows ([`Leases`]), next to the audit
//! table, judged by the database clock.
//!
//! - `try_acquire` first reads the row (waiting instances poll with reads, never contending for
//!   writes), then takes it with one atomic upsert that succeeds only if the row is absent,
//!   expired, or already ours, and reads the outcome back in the same transaction.
//! - `extend` moves the expiry only while the lease is still ours and unexpired; `release` removes
//!   the row only if it is ours; `force_release` removes it whoever holds it (an operator's tool).
//! - Fencing: an audit insert made under the lock is an `INSERT .. SELECT .. WHERE EXISTS` on the
//!   lease row (see `LockDialect::insert_entry_fenced`), so it writes nothing once the lease is
//!   no longer ours.
//!
//! On SQLite a shared transaction holds the whole database's write lock; [`write_hold`] explains
//! how the lease survives a unit that holds it longer than the lease.

mod keeper;
mod lease;
mod write_hold;

use std::collections::HashMap;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use flamingock_core::StoreError;
use flamingock_core::lock::LockInfo;
use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Row, Type};

use crate::dialect::Dialect;
use crate::identifier::TableName;
use crate::options::{DEFAULT_AUDIT_TABLE, StoreOptions};

pub(crate) use keeper::SqlKeeper;
pub(crate) use lease::Leases;
pub(crate) use write_hold::{
    Renewals, WriteHold, begin_shared, renew_held, rollback_keeping_lease,
};

/// The lock table's name next to the default audit table.
pub const DEFAULT_LOCK_TABLE: &str = "flamingock_lock";

/// The lock table, as [`ensure_table`](crate::sql::ensure_table) creates or checks it.
const LOCK_TABLE: crate::sql::TableKind = crate::sql::TableKind {
    kind: "lock",
    reading: "reading the lock table's columns",
    creating: "creating the lock table",
    serializing: "taking the lock that serializes lock table creation",
};

/// The columns every lock table has; a table lacking one is not ours.
const LOCK_COLUMNS: [&str; 5] = ["lock_key", "owner", "hostname", "acquired_at", "expires_at"];

/// The lock table's name: `flamingock_lock` beside the default audit table, `<audit table>_lock`
/// beside any other (so that independent audit tables in one database do not share a lock), or
/// the configured [`StoreOptions::lock_table`].
pub(crate) fn lock_table_name(
    options: &StoreOptions,
    audit: &TableName,
) -> Result<TableName, StoreError> {
    let name = match &options.lock_table {
        Some(name) => TableName::new(name)?,
        None if audit.as_str() == DEFAULT_AUDIT_TABLE => TableName::new(DEFAULT_LOCK_TABLE)?,
        None => TableName::new(&audit.derived("lock"))?,
    };
    if name.as_str().eq_ignore_ascii_case(audit.as_str()) {
        return Err(StoreError::InvalidIdentifier {
            name: name.to_string(),
            reason: "the lock table must not be the audit table",
        });
    }
    Ok(name)
}

/// The SQL text of the lock, built once from the validated table names.
struct LockStatements {
    create: Arc<str>,
    select: Arc<str>,
    select_for_update: Arc<str>,
    upsert: Arc<str>,
    extend: Arc<str>,
    renew_since: Option<Arc<str>>,
    release: Arc<str>,
    delete: Arc<str>,
    insert_fenced: Arc<str>,
}

/// A lease this store took and has not seen lost: what a SQLite shared transaction renews.
#[derive(Debug, Clone)]
struct HeldLease {
    owner: String,
    lease_ms: i64,
    /// When the last statement that moved its expiry was sent (so the expiry is at least a lease
    /// later than this, by the database clock).
    renewed: Instant,
}

impl HeldLease {
    /// Whether a third of the lease has passed since it was last renewed (the heartbeat's
    /// period): when a SQLite shared transaction renews it (see [`write_hold`]).
    fn due(&self, now: Instant) -> bool {
        let lease = Duration::from_millis(u64::try_from(self.lease_ms).unwrap_or(0));
        now.saturating_duration_since(self.renewed) >= lease / 3
    }
}

/// The lock table of one store, and what this process knows about the leases it holds there.
/// Shared by every clone of the store.
pub(crate) struct LockTable {
    table: TableName,
    sql: LockStatements,
    held: Mutex<HashMap<String, HeldLease>>,
    /// Open shared transactions that hold (or are waiting for) the database's write lock.
    write_holds: AtomicUsize,
}

impl LockTable {
    /// The lock table beside the audit table `audit`.
    pub(crate) fn new<DB: Dialect>(
        options: &StoreOptions,
        audit: &TableName,
    ) -> Result<Self, StoreError> {
        let table = lock_table_name(options, audit)?;
        let name = table.as_str();
        let sql = LockStatements {
            create: DB::create_lock_table(name).into(),
            select: DB::select_lock(name).into(),
            select_for_update: DB::select_lock_for_update(name).into(),
            upsert: DB::upsert_lock(name).into(),
            extend: DB::extend_lock(name).into(),
            renew_since: DB::renew_lock_since(name).map(Arc::from),
            release: DB::release_lock(name).into(),
            delete: DB::delete_lock(name).into(),
            insert_fenced: DB::insert_entry_fenced(audit.as_str(), name).into(),
        };
        Ok(Self {
            table,
            sql,
            held: Mutex::new(HashMap::new()),
            write_holds: AtomicUsize::new(0),
        })
    }

    /// The lock table's name.
    pub(crate) fn name(&self) -> &str {
        self.table.as_str()
    }

    /// The fenced audit insert.
    pub(crate) fn insert_fenced(&self) -> &Arc<str> {
        &self.sql.insert_fenced
    }

    fn held(&self) -> MutexGuard<'_, HashMap<String, HeldLease>> {
        // The map is only ever replaced entry by entry: a panic elsewhere cannot leave it torn.
        self.held
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The held leases a third of whose time has passed since they were last renewed.
    fn due_for_renewal(&self) -> Vec<(String, HeldLease)> {
        let now = Instant::now();
        self.held()
            .iter()
            .filter(|(_, lease)| lease.due(now))
            .map(|(key, lease)| (key.clone(), lease.clone()))
            .collect()
    }

    /// Notes that a statement sent at `sent` moved the expiry of `owner`'s lease on `key`.
    fn renewed(&self, key: &str, owner: &str, sent: Instant) {
        if let Some(held) = self.held().get_mut(key)
            && held.owner == owner
            && held.renewed < sent
        {
            held.renewed = sent;
        }
    }

    fn forget(&self, key: &str, owner: Option<&str>) {
        let mut held = self.held();
        if owner.is_none_or(|owner| held.get(key).is_some_and(|h| h.owner == owner)) {
            held.remove(key);
        }
    }
}

/// The lease in milliseconds, as bound into the SQL.
fn lease_ms(lease: Duration) -> i64 {
    i64::try_from(lease.as_millis()).unwrap_or(i64::MAX)
}

/// Reads one lock row. A row that does not decode (a NULL, a blob, a time that is not one) is
/// [`StoreError::CorruptLockRow`], saying what could be read of it.
fn decode_lock<R>(row: &R, table: &TableName) -> Result<LockInfo, StoreError>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    String: Type<R::Database> + for<'r> Decode<'r, R::Database>,
    i64: Type<R::Database> + for<'r> Decode<'r, R::Database>,
{
    let text = |column: &'static str| -> Result<String, String> {
        match row.try_get::<Option<String>, _>(column) {
            Ok(Some(text)) => Ok(text),
            Ok(None) => Err(format!("{column} is NULL")),
            Err(error) => Err(format!("{column} cannot be read: {error}")),
        }
    };
    let time = |column: &'static str| -> Result<DateTime<Utc>, String> {
        let text = text(column)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|at| at.with_timezone(&Utc))
            .map_err(|e| format!("{column} `{text}` is not a timestamp: {e}"))
    };
    let decoded = (|| {
        let expired = match row.try_get::<Option<i64>, _>("expired") {
            Ok(Some(expired)) => expired != 0,
            Ok(None) => return Err("its expiry cannot be compared with the clock".to_owned()),
            Err(error) => return Err(format!("expired cannot be read: {error}")),
        };
        Ok(LockInfo {
            key: text("lock_key")?,
            owner: text("owner")?,
            hostname: text("hostname")?,
            acquired_at: time("acquired_at")?,
            expires_at: time("expires_at")?,
            expired,
        })
    })();
    decoded.map_err(|problem| {
        let readable: Vec<String> = LOCK_COLUMNS
            .iter()
            .map(|column| match text(column) {
                Ok(text) => format!("{column} `{text}`"),
                Err(_) => format!("{column} unreadable"),
            })
            .collect();
        StoreError::CorruptLockRow {
            table: table.to_string(),
            detail: format!("{problem} (the row reads: {})", readable.join(", ")),
        }
    })
}

/// Creates the lock table if it is missing, or checks that the one there is ours; run inside
/// `initialize()`'s transaction, after the audit table, under the same serialization.
pub(crate) async fn ensure_table<DB>(
    conn: &mut DB::Connection,
    lock: &LockTable,
) -> Result<(), StoreError>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    &'static str: ColumnIndex<DB::Row>,
    String: Type<DB> + for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB>,
{
    let create = [Arc::clone(&lock.sql.create)];
    if crate::sql::ensure_table::<DB>(conn, &lock.table, &LOCK_TABLE, LOCK_COLUMNS, &create).await?
    {
        tracing::info!(table = %lock.table, "created the lock table");
    }
    Ok(())
}

/// [`ensure_table`] for a store that only reads: checks the lock table if there is one, and
/// creates nothing.
pub(crate) async fn check_table<DB>(
    conn: &mut DB::Connection,
    lock: &LockTable,
) -> Result<(), StoreError>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    &'static str: ColumnIndex<DB::Row>,
    String: Type<DB> + for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB>,
{
    table_is_there::<DB>(conn, lock).await?;
    Ok(())
}

/// Whether the lock table is there (checking, when it is, that it is ours); creates nothing.
pub(crate) async fn table_is_there<DB>(
    conn: &mut DB::Connection,
    lock: &LockTable,
) -> Result<bool, StoreError>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    &'static str: ColumnIndex<DB::Row>,
    String: Type<DB> + for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB>,
{
    Ok(crate::sql::inspect_table::<DB>(conn, &lock.table, &LOCK_TABLE, LOCK_COLUMNS).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(audit: &str, lock: Option<&str>) -> Result<String, StoreError> {
        let mut options = StoreOptions::default().with_audit_table(audit);
        options.lock_table = lock.map(str::to_owned);
        lock_table_name(&options, &TableName::new(audit)?).map(|t| t.to_string())
    }

    #[test]
    fn lock_tables_sit_next_to_their_audit_table() {
        assert_eq!(name(DEFAULT_AUDIT_TABLE, None).unwrap(), "flamingock_lock");
        assert_eq!(name("billing_audit", None).unwrap(), "billing_audit_lock");
        assert_eq!(name("billing_audit", Some("locks")).unwrap(), "locks");
        let long = "a".repeat(63);
        let derived = name(&long, None).unwrap();
        assert!(derived.len() <= crate::MAX_IDENTIFIER_LEN, "{derived}");
        assert_ne!(derived, long);
    }

    #[test]
    fn lock_table_names_are_validated() {
        assert!(matches!(
            name("audit", Some("x; DROP TABLE y")),
            Err(StoreError::InvalidIdentifier { .. })
        ));
        assert!(matches!(
            name("audit", Some("AUDIT")),
            Err(StoreError::InvalidIdentifier { .. })
        ));
    }

    #[test]
    fn a_lease_is_due_for_renewal_after_a_third_of_it() {
        let sent = Instant::now();
        let lease = HeldLease {
            owner: "me".to_owned(),
            lease_ms: 30_000,
            renewed: sent,
        };
        assert!(!lease.due(sent));
        assert!(!lease.due(sent + Duration::from_millis(9_999)));
        assert!(lease.due(sent + Duration::from_secs(10)));
        // A clock read before the renewal was sent is never "due".
        assert!(!lease.due(sent.checked_sub(Duration::from_secs(60)).unwrap_or(sent)));
        let zero = HeldLease {
            lease_ms: 0,
            ..lease
        };
        assert!(zero.due(sent));
    }

    #[test]
    fn leases_are_bound_in_milliseconds() {
        assert_eq!(lease_ms(Duration::from_millis(1500)), 1500);
        assert_eq!(lease_ms(Duration::MAX), i64::MAX);
    }
}
