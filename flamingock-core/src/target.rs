//! Target systems: what change units touch, by name, with the dependencies they offer.
//!
//! A unit names its target with `target_system = "..."`; a unit that names none targets the audit
//! store's own database (`"default"`), where a transactional unit runs as `TX_SHARED`.

use std::any::Any;
use std::sync::Arc;

use crate::inject::Dependencies;

/// A named system change units apply to.
pub trait TargetSystem: Send + Sync {
    /// The name units refer to with `target_system = "..."`.
    fn name(&self) -> &str;
    /// What units on this target may take as `&T`; looked up before the builder's dependencies.
    fn dependencies(&self) -> &Dependencies;
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
