//! An audit store that counts how often every unit's state is read ([`AuditStore::unit_states`],
//! the grouping of the whole audit table) and otherwise is the store it wraps: what the warm
//! start's tests check instead of timing anything.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use flamingock_core::history::HistoryQuery;
use flamingock_core::import::ForeignHistory;
use flamingock_core::lock::{DistributedLock, Fence};
use flamingock_core::model::UnitState;
use flamingock_core::store::{SharedTransaction, StoreLimits};
use flamingock_core::summary::{CurrentSummary, PlanDigest, SummaryWrite};
use flamingock_core::target::TargetSystem;
use flamingock_core::{AuditEntry, AuditStore, Dependencies, StoreError, TypeLabel};

/// The counts of one [`CountingStore`].
#[derive(Debug, Default)]
pub struct Reads {
    /// Calls of `unit_states`.
    pub unit_states: AtomicUsize,
    /// Calls of `current_summary`.
    pub summaries: AtomicUsize,
    /// Calls of `record_summary`.
    pub summary_writes: AtomicUsize,
}

impl Reads {
    /// Calls of `unit_states` so far.
    pub fn unit_states(&self) -> usize {
        self.unit_states.load(Ordering::SeqCst)
    }
    /// Calls of `current_summary` so far.
    pub fn summaries(&self) -> usize {
        self.summaries.load(Ordering::SeqCst)
    }
    /// Calls of `record_summary` so far.
    pub fn summary_writes(&self) -> usize {
        self.summary_writes.load(Ordering::SeqCst)
    }
}

/// Wraps a store and counts its reads (see [`Reads`]).
pub struct CountingStore {
    inner: Arc<dyn AuditStore>,
    /// What was read so far.
    pub reads: Arc<Reads>,
}

impl CountingStore {
    /// Counts the reads of `inner`; the counts are shared with the returned handle.
    pub fn wrap(inner: Arc<dyn AuditStore>) -> (Arc<dyn AuditStore>, Arc<Reads>) {
        let reads = Arc::new(Reads::default());
        let store = CountingStore {
            inner,
            reads: Arc::clone(&reads),
        };
        (Arc::new(store), reads)
    }

    /// The store at `url` (opened as a run would), counted.
    pub async fn connect(
        url: &str,
        options: flamingock::StoreOptions,
    ) -> (Arc<dyn AuditStore>, Arc<Reads>) {
        let inner = flamingock::sqlx_store::connect(url, options)
            .await
            .expect("the test database opens");
        Self::wrap(inner)
    }
}

#[async_trait]
impl AuditStore for CountingStore {
    async fn initialize(&self) -> Result<(), StoreError> {
        self.inner.initialize().await
    }
    async fn unit_states(&self) -> Result<HashMap<String, UnitState>, StoreError> {
        self.reads.unit_states.fetch_add(1, Ordering::SeqCst);
        self.inner.unit_states().await
    }
    async fn append(&self, entry: &AuditEntry, fence: Option<&Fence>) -> Result<(), StoreError> {
        self.inner.append(entry, fence).await
    }
    async fn entries(&self) -> Result<Vec<AuditEntry>, StoreError> {
        self.inner.entries().await
    }
    async fn history(&self, query: &HistoryQuery) -> Result<Vec<AuditEntry>, StoreError> {
        self.inner.history(query).await
    }
    async fn now(&self) -> Result<chrono::DateTime<chrono::Utc>, StoreError> {
        self.inner.now().await
    }
    async fn begin_shared(&self) -> Result<Box<dyn SharedTransaction>, StoreError> {
        self.inner.begin_shared().await
    }
    fn shared_transaction_type(&self) -> TypeLabel {
        self.inner.shared_transaction_type()
    }
    fn dependencies(&self) -> Dependencies {
        self.inner.dependencies()
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn database_identity(&self) -> Option<String> {
        self.inner.database_identity()
    }
    fn separate_target(&self) -> Option<Arc<dyn TargetSystem>> {
        self.inner.separate_target()
    }
    fn unusable_in_shared_transaction(&self, type_id: std::any::TypeId) -> Option<String> {
        self.inner.unusable_in_shared_transaction(type_id)
    }
    fn limits(&self) -> StoreLimits {
        self.inner.limits()
    }
    fn lock(&self) -> Option<&dyn DistributedLock> {
        self.inner.lock()
    }
    fn foreign_history(&self) -> Option<&dyn ForeignHistory> {
        self.inner.foreign_history()
    }
    fn keeps_summaries(&self) -> bool {
        self.inner.keeps_summaries()
    }
    async fn current_summary(
        &self,
        plan: &PlanDigest,
    ) -> Result<Option<CurrentSummary>, StoreError> {
        self.reads.summaries.fetch_add(1, Ordering::SeqCst);
        self.inner.current_summary(plan).await
    }
    async fn record_summary(
        &self,
        plan: &PlanDigest,
        fence: &Fence,
    ) -> Result<SummaryWrite, StoreError> {
        self.reads.summary_writes.fetch_add(1, Ordering::SeqCst);
        self.inner.record_summary(plan, fence).await
    }
    async fn append_all(
        &self,
        entries: &[AuditEntry],
        fence: Option<&Fence>,
    ) -> Result<(), StoreError> {
        self.inner.append_all(entries, fence).await
    }
}
