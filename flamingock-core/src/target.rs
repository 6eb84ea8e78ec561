//! Target systems: what change units touch, by name, with the dependencies they offer.
//!
//! A unit names its target with `target_system = "..."`; a unit that names none targets the audit
//! store's own database (`"default"`), where a transactional unit runs as `TX_SHARED`.

use std::any::Any;
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
    /// The target system's name.
    pub target: String,
    /// What was being done (`"writing the marker"`).
    pub action: &'static str,
    /// What the driver or system said.
    #[source]
    pub source: BoxError,
}

/// A transactional target other than the audit store (docs/architecture.md#strategies, `TX_SEPARATE`): the unit's change
/// commits together with a marker row in the target, so that the outcome of a run interrupted
/// between that commit and the `APPLIED` audit row can be recovered without running it again.
#[async_trait]
pub trait TransactionalTarget: Send + Sync {
    /// Identifies the database (scheme, host, port, database; no credentials). Equal to the audit
    /// store's [`database_identity`](crate::store::AuditStore::database_identity) means that the
    /// target *is* the audit store's database, and its units run as `TX_SHARED`.
    fn database_identity(&self) -> String;
    /// The type handed to units as `&mut T`, and how messages name it.
    fn transaction_type(&self) -> crate::TypeLabel;
    /// Creates the marker table if it is missing.
    async fn initialize(&self) -> Result<(), TargetError>;
    /// Opens a transaction for one unit.
    async fn begin(&self) -> Result<Box<dyn TargetTransaction>, TargetError>;
    /// Opens the transaction that applies `change_id` in run `execution_id`: [`begin`](Self::begin)
    /// and, first thing in it, an *open* marker of this try ([`Marker::committed`] `false`), which
    /// [`TargetTransaction::commit_with_marker`] turns into the committed one.
    ///
    /// Where transactions are atomic nobody ever sees the open marker: it commits with the change
    /// or not at all. Where the database commits on its own inside a transaction (MySQL and
    /// MariaDB commit before every DDL statement), that commit makes it visible: proof that part
    /// of the try is in place although the try did not finish. The default opens a plain
    /// transaction, for targets without implicit commits.
    async fn begin_apply(
        &self,
        change_id: &str,
        execution_id: &str,
    ) -> Result<Box<dyn TargetTransaction>, TargetError> {
        let _ = (change_id, execution_id);
        self.begin().await
    }
    /// The unit's marker, if there is one.
    async fn marker(&self, change_id: &str) -> Result<Option<Marker>, TargetError>;
    /// Removes the unit's marker (done once `APPLIED` is recorded, or when it is stale).
    async fn remove_marker(&self, change_id: &str) -> Result<(), TargetError>;
}

/// A unit's marker row in a [`TransactionalTarget`]: what the target knows of the unit's last try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    /// The run whose try wrote it.
    pub execution_id: String,
    /// `true`: the try's transaction committed, change and marker together, so the change is in
    /// place. `false`: the open marker of [`TransactionalTarget::begin_apply`] was committed
    /// before the try finished, by a commit the database made on its own (MySQL's implicit commit
    /// of DDL): part of the change may be in place, and no one can tell which part.
    pub committed: bool,
}

/// One unit's open transaction on a [`TransactionalTarget`].
#[async_trait]
pub trait TargetTransaction: Send {
    /// The driver's transaction, handed to the unit as `&mut T`.
    fn as_any_mut(&mut self) -> &mut (dyn Any + Send);
    /// Writes the committed marker (`change_id`, `execution_id`) in this transaction, replacing
    /// the open marker of [`TransactionalTarget::begin_apply`] or a stale marker of the same
    /// unit, then commits.
    async fn commit_with_marker(
        self: Box<Self>,
        change_id: &str,
        execution_id: &str,
    ) -> Result<(), TargetError>;
    /// Rolls back everything the unit did.
    async fn rollback(self: Box<Self>) -> Result<(), TargetError>;
    /// Removes the unit's marker in this transaction, then commits: how `undo` commits a unit's
    /// rollback, so that the rollback and the marker's removal happen together or not at all.
    ///
    /// The default refuses (nothing is committed, the transaction is dropped and so rolled
    /// back): a target that supports undo overrides it.
    async fn commit_removing_marker(self: Box<Self>, change_id: &str) -> Result<(), TargetError> {
        Err(TargetError {
            target: String::new(),
            action: "committing an undo",
            source: format!(
                "this target system cannot remove the marker of \"{change_id}\" in a transaction, so it does not support undo"
            )
            .into(),
        })
    }
}

/// A target without transactions (a cache, a broker, an HTTP API): its units run as `NON_TX`,
/// and a failure is undone by the unit's `#[rollback_execution]`.
///
/// ```standalone_crate
/// use std::sync::{Arc, Mutex};
///
/// use flamingock::NonTxTarget;
/// use flamingock::prelude::*;
///
/// /// Stands for a client of the cache (a `redis::Client`, say), offered to units as `&Cache`.
/// pub struct Cache(pub Mutex<Vec<String>>);
///
/// #[change_unit(id = "warm-cache", order = "1", author = "ana", target_system = "cache")]
/// mod warm_cache {
///     use super::*;
///
///     #[execution]
///     pub fn execute(cache: &Cache) {
///         cache.0.lock().expect("not poisoned").push("clients".to_owned());
///     }
///
///     #[rollback_execution]
///     pub fn rollback(cache: &Cache) {
///         cache.0.lock().expect("not poisoned").clear();
///     }
/// }
///
/// # #[tokio::main] async fn main() -> Result<(), flamingock::Error> {
/// let cache = Arc::new(Cache(Mutex::new(Vec::new())));
/// let builder = Flamingock::builder()
///     .database_url("sqlite::memory:")
///     .target(NonTxTarget::new("cache").with_arc(cache.clone()));
/// let report = flamingock::run!(builder).await?;
/// assert_eq!(report.applied(), ["warm-cache"]);
/// assert_eq!(*cache.0.lock().unwrap(), ["clients"]);
/// # Ok(()) }
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
