//! Target systems: what change units touch, by name, with the dependencies they offer.
//!
//! A unit names its target with `target_system = "..."`; a unit that names none targets the audit
//! store's own database (`"default"`), where a transactional unit runs as `TX_SHARED`.

use std::any::{Any, TypeId};
use std::sync::Arc;

use async_trait::async_trait;

use crate::inject::{BoxError, Dependencies};

/// A named system change units apply to.
pub trait TargetSystem: Send + Sync {
    /// The name units refer to with `target_system = "..."`.
    fn name(&self) -> &str;
    /// What units on this target may take as `&T`; looked up before the builder's dependencies.
    fn dependencies(&self) -> &Dependencies;
    /// Transactions, for a database: its units run as `TX_SHARED` when it is the audit store's
    /// own database, `TX_SEPARATE` otherwise. `None` (the default): units run as `NON_TX`.
    fn transactional(&self) -> Option<&dyn TransactionalTarget> {
        None
    }
}

/// What went wrong on a target system.
#[derive(Debug, thiserror::Error)]
#[error("target system \"{target}\": {action} failed: {source}")]
pub struct TargetError {
    pub target: String,
    /// What was being done (`"writing the marker"`).
    pub action: &'static str,
    #[source]
    pub source: BoxError,
}

/// A transactional target other than the audit store (DESIGN §5, `TX_SEPARATE`): the unit's change
/// commits together with a marker row in the target, so that the outcome of a run interrupted
/// between that commit and the `APPLIED` audit row can be recovered without running it again.
#[async_trait]
pub trait TransactionalTarget: Send + Sync {
    /// Identifies the database (scheme, host, port, database; no credentials). Equal to the audit
    /// store's [`database_identity`](crate::store::AuditStore::database_identity) means that the
    /// target *is* the audit store's database, and its units run as `TX_SHARED`.
    fn database_identity(&self) -> String;
    /// The type handed to units as `&mut T`, and its readable name.
    fn transaction_type(&self) -> (TypeId, &'static str);
    /// Creates the marker table if it is missing.
    async fn initialize(&self) -> Result<(), TargetError>;
    /// Opens a transaction for one unit.
    async fn begin(&self) -> Result<Box<dyn TargetTransaction>, TargetError>;
    /// The execution id on the unit's marker, if there is one.
    async fn marker(&self, change_id: &str) -> Result<Option<String>, TargetError>;
    /// Removes the unit's marker (done once `APPLIED` is recorded, or when it is stale).
    async fn remove_marker(&self, change_id: &str) -> Result<(), TargetError>;
}

/// One unit's open transaction on a [`TransactionalTarget`].
#[async_trait]
pub trait TargetTransaction: Send {
    /// The driver's transaction, handed to the unit as `&mut T`.
    fn as_any_mut(&mut self) -> &mut (dyn Any + Send);
    /// Inserts the marker (`change_id`, `execution_id`) in this transaction, replacing a stale
    /// marker of the same unit, then commits.
    async fn commit_with_marker(
        self: Box<Self>,
        change_id: &str,
        execution_id: &str,
    ) -> Result<(), TargetError>;
    /// Rolls back everything the unit did.
    async fn rollback(self: Box<Self>) -> Result<(), TargetError>;
}

/// A target without transactions (a cache, a broker, an HTTP API): its units run as `NON_TX`,
/// and a failure is undone by the unit's `#[rollback_execution]`.
///
/// ```
/// use flamingock_core::target::{NonTxTarget, TargetSystem};
///
/// struct FlagClient { base_url: String }
/// let cache = NonTxTarget::new("cache").with(FlagClient { base_url: "http://127.0.0.1:9".into() });
/// assert_eq!(cache.name(), "cache");
/// ```
#[derive(Debug, Clone)]
pub struct NonTxTarget {
    name: String,
    dependencies: Dependencies,
}

impl NonTxTarget {
    /// A target called `name`, offering nothing yet.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            dependencies: Dependencies::new(),
        }
    }

    /// Offers `value` to this target's units as `&T`.
    pub fn with<T: Any + Send + Sync>(mut self, value: T) -> Self {
        self.dependencies.insert(value);
        self
    }

    /// Offers an already shared value to this target's units as `&T`.
    pub fn with_arc<T: Any + Send + Sync>(mut self, value: Arc<T>) -> Self {
        self.dependencies.insert_arc(value);
        self
    }
}

impl TargetSystem for NonTxTarget {
    fn name(&self) -> &str {
        &self.name
    }

    fn dependencies(&self) -> &Dependencies {
        &self.dependencies
    }
}
