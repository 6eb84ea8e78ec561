//! Leaf: how to reach and lay out the audit store: table name, connection retries, pool size.

use std::time::Duration;

/// The audit table's name unless configured otherwise.
pub const DEFAULT_AUDIT_TABLE: &str = "flamingock_audit_log";

/// Options of an SQL audit store.
///
/// ```
/// use std::time::Duration;
/// use flamingock_sqlx::StoreOptions;
///
/// let options = StoreOptions::default()
///     .with_audit_table("billing_audit_log")
///     .with_connect_attempts(10)
///     .with_connect_backoff(Duration::from_millis(500));
/// assert_eq!(options.audit_table, "billing_audit_log");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// The audit table (default `flamingock_audit_log`); must pass
    /// [`validate_identifier`](crate::validate_identifier).
    pub audit_table: String,
    /// The lock table (docs/architecture.md#lock). Default: `flamingock_lock` beside the default audit table,
    /// `<audit table>_lock` beside any other. Must pass
    /// [`validate_identifier`](crate::validate_identifier) and differ from the audit table.
    pub lock_table: Option<String>,
    /// How many times to try reaching a server that is down or starting up (default 5; at least
    /// one try is always made). Wrong credentials or a malformed URL are not retried.
    pub connect_attempts: u32,
    /// The wait after the first failed try; it doubles after each further one (default 200 ms).
    pub connect_backoff: Duration,
    /// How long one try may take before it counts as failed (default 10 s).
    pub connect_timeout: Duration,
    /// The size of the connection pool [`connect`](crate::connect()) opens on PostgreSQL and
    /// MySQL (default 5). SQLite always uses one connection: it has one writer at a time, and a
    /// single connection keeps its schema cache warm across units.
    pub max_connections: u32,
    /// Open the store only to read (default `false`), as the CLI does for `status`, `history`,
    /// `plan` and `lock show`: SQLite opens the file read-only and never creates it;
    /// `initialize()` creates and upgrades nothing, it checks that the tables are there and ours
    /// ([`StoreError::NoAuditTable`](flamingock_core::StoreError::NoAuditTable) when the audit
    /// table is not); history queries add no index. A SQLite URL with `mode=ro` is read-only too.
    pub read_only: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            audit_table: DEFAULT_AUDIT_TABLE.to_owned(),
            lock_table: None,
            connect_attempts: 5,
            connect_backoff: Duration::from_millis(200),
            connect_timeout: Duration::from_secs(10),
            max_connections: 5,
            read_only: false,
        }
    }
}

impl StoreOptions {
    /// Sets [`audit_table`](Self::audit_table).
    pub fn with_audit_table(mut self, table: impl Into<String>) -> Self {
        self.audit_table = table.into();
        self
    }

    /// Sets [`lock_table`](Self::lock_table).
    pub fn with_lock_table(mut self, table: impl Into<String>) -> Self {
        self.lock_table = Some(table.into());
        self
    }

    /// Sets [`connect_attempts`](Self::connect_attempts).
    pub fn with_connect_attempts(mut self, attempts: u32) -> Self {
        self.connect_attempts = attempts;
        self
    }

    /// Sets [`connect_backoff`](Self::connect_backoff).
    pub fn with_connect_backoff(mut self, backoff: Duration) -> Self {
        self.connect_backoff = backoff;
        self
    }

    /// Sets [`connect_timeout`](Self::connect_timeout).
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets [`read_only`](Self::read_only).
    pub fn with_read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// Sets [`max_connections`](Self::max_connections).
    pub fn with_max_connections(mut self, max: u32) -> Self {
        self.max_connections = max;
        self
    }
}
