//! An audit store and lock kept in memory, for tests of code that runs change units.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::Utc;

use crate::inject::Dependencies;
use crate::lock::{Acquisition, DistributedLock, Fence, LeaseKeeper, LockInfo};
use crate::model::{AuditEntry, AuditState, UnitState};
use crate::store::{AuditStore, SharedTransaction, StoreError, counts_as_try};

/// An in-memory audit store for tests of the engine; its "transaction" is a [`MemoryTransaction`].
/// Clones share the same rows and lock. Its lock runs on the local clock.
#[derive(Clone, Default)]
pub struct MemoryAuditStore {
    rows: Arc<Mutex<Vec<AuditEntry>>>,
    leases: Arc<Mutex<HashMap<String, LockInfo>>>,
    /// States whose appends are refused (see [`MemoryAuditStore::refuse_appends_of`]).
    refused: Arc<Mutex<Vec<AuditState>>>,
}

/// The transaction [`MemoryAuditStore`] hands to `TX_SHARED` units: a scratch list of effects that
/// is recorded only on commit, in the `effects` key of the `APPLIED` row's
/// [`metadata`](crate::AuditEntry::metadata).
#[derive(Debug, Default)]
pub struct MemoryTransaction {
    /// Effects recorded by the unit.
    pub effects: Vec<String>,
}

impl MemoryAuditStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// From now on, appending a row in `state` fails (as a write the database refused: known
    /// not to be recorded), for tests of what the engine does when the audit cannot record.
    pub fn refuse_appends_of(&self, state: AuditState) {
        self.refused
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(state);
    }

    /// Every row, oldest first.
    pub fn rows(&self) -> Vec<AuditEntry> {
        self.rows_guard().clone()
    }

    /// The states of the rows of one unit, oldest first.
    pub fn states_of(&self, change_id: &str) -> Vec<AuditState> {
        self.rows_guard()
            .iter()
            .filter(|row| row.change_id == change_id)
            .map(|row| row.state)
            .collect()
    }

    fn rows_guard(&self) -> std::sync::MutexGuard<'_, Vec<AuditEntry>> {
        // A panic while holding the lock cannot leave the Vec half-updated (push is atomic here).
        self.rows
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn fenced(&self, fence: Option<&Fence>) -> Result<(), StoreError> {
        let Some(fence) = fence else { return Ok(()) };
        let leases = self.leases.lock().unwrap_or_else(|p| p.into_inner());
        match leases.get(&fence.key) {
            Some(info) if info.owner == fence.owner && info.expires_at > Utc::now() => Ok(()),
            _ => Err(StoreError::LockLost {
                key: fence.key.clone(),
                owner: fence.owner.clone(),
            }),
        }
    }

    fn push(&self, entry: &AuditEntry) {
        let mut rows = self.rows_guard();
        let mut entry = entry.clone();
        entry.id = rows.len() as i64 + 1;
        entry.created_at = Some(Utc::now());
        rows.push(entry);
    }
}

struct MemoryShared {
    store: MemoryAuditStore,
    tx: MemoryTransaction,
}

#[async_trait]
impl SharedTransaction for MemoryShared {
    fn as_any_mut(&mut self) -> &mut (dyn Any + Send) {
        &mut self.tx
    }

    async fn commit_with(
        self: Box<Self>,
        entry: &AuditEntry,
        fence: Option<&Fence>,
    ) -> Result<(), StoreError> {
        self.store.fenced(fence)?;
        let mut entry = entry.clone();
        if !self.tx.effects.is_empty() {
            entry.metadata = Some(serde_json::json!({ "effects": self.tx.effects }));
        }
        self.store.push(&entry);
        Ok(())
    }

    async fn rollback(self: Box<Self>) -> Result<(), StoreError> {
        Ok(())
    }
}

#[async_trait]
impl AuditStore for MemoryAuditStore {
    async fn initialize(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn unit_states(&self) -> Result<HashMap<String, UnitState>, StoreError> {
        let mut states: HashMap<String, UnitState> = HashMap::new();
        for row in self.rows_guard().iter() {
            let tries =
                states.get(&row.change_id).map_or(0, |s| s.tries) + i64::from(counts_as_try(row));
            states.insert(
                row.change_id.clone(),
                UnitState {
                    change_id: row.change_id.clone(),
                    state: row.state,
                    execution_id: row.execution_id.clone(),
                    created_at: row.created_at,
                    error: row.error.clone(),
                    checksum: row.checksum.clone(),
                    tries,
                },
            );
        }
        Ok(states)
    }

    async fn append(&self, entry: &AuditEntry, fence: Option<&Fence>) -> Result<(), StoreError> {
        let refused = self.refused.lock().unwrap_or_else(|p| p.into_inner());
        if refused.contains(&entry.state) {
            return Err(StoreError::Query {
                action: "appending an audit entry",
                source: format!("the test store refuses {} rows", entry.state).into(),
            });
        }
        drop(refused);
        self.fenced(fence)?;
        self.push(entry);
        Ok(())
    }

    async fn entries(&self) -> Result<Vec<AuditEntry>, StoreError> {
        Ok(self.rows())
    }

    async fn begin_shared(&self) -> Result<Box<dyn SharedTransaction>, StoreError> {
        Ok(Box::new(MemoryShared {
            store: self.clone(),
            tx: MemoryTransaction::default(),
        }))
    }

    fn shared_transaction_type(&self) -> crate::TypeLabel {
        crate::TypeLabel::of::<MemoryTransaction>()
    }

    fn dependencies(&self) -> Dependencies {
        Dependencies::new()
    }

    fn describe(&self) -> String {
        "in-memory audit store".to_owned()
    }

    fn lock(&self) -> Option<&dyn DistributedLock> {
        Some(self)
    }
}

#[async_trait]
impl DistributedLock for MemoryAuditStore {
    async fn try_acquire(
        &self,
        fence: &Fence,
        hostname: &str,
        lease: std::time::Duration,
    ) -> Result<Acquisition, StoreError> {
        let mut leases = self.leases.lock().unwrap_or_else(|p| p.into_inner());
        let now = Utc::now();
        if let Some(info) = leases.get(&fence.key)
            && info.owner != fence.owner
            && info.expires_at > now
        {
            return Ok(Acquisition::Held(info.clone()));
        }
        leases.insert(
            fence.key.clone(),
            LockInfo {
                key: fence.key.clone(),
                owner: fence.owner.clone(),
                hostname: hostname.to_owned(),
                acquired_at: now,
                expires_at: now + lease,
                expired: false,
            },
        );
        Ok(Acquisition::Acquired)
    }

    async fn extend(&self, fence: &Fence, lease: std::time::Duration) -> Result<bool, StoreError> {
        let mut leases = self.leases.lock().unwrap_or_else(|p| p.into_inner());
        let now = Utc::now();
        match leases.get_mut(&fence.key) {
            Some(info) if info.owner == fence.owner && info.expires_at > now => {
                info.expires_at = now + lease;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn release(&self, fence: &Fence) -> Result<(), StoreError> {
        let mut leases = self.leases.lock().unwrap_or_else(|p| p.into_inner());
        if leases
            .get(&fence.key)
            .is_some_and(|info| info.owner == fence.owner)
        {
            leases.remove(&fence.key);
        }
        Ok(())
    }

    async fn keeper(&self) -> Result<Box<dyn LeaseKeeper>, StoreError> {
        // The leases are plain memory: any thread can extend them.
        Ok(Box::new(self.clone()))
    }

    async fn read(&self, key: &str) -> Result<Option<LockInfo>, StoreError> {
        let leases = self.leases.lock().unwrap_or_else(|p| p.into_inner());
        Ok(leases.get(key).cloned().map(|mut info| {
            info.expired = info.expires_at <= Utc::now();
            info
        }))
    }

    async fn force_release(&self, key: &str) -> Result<Option<LockInfo>, StoreError> {
        let mut leases = self.leases.lock().unwrap_or_else(|p| p.into_inner());
        Ok(leases.remove(key))
    }
}

#[async_trait]
impl LeaseKeeper for MemoryAuditStore {
    async fn extend(&self, fence: &Fence, lease: std::time::Duration) -> Result<bool, StoreError> {
        DistributedLock::extend(self, fence, lease).await
    }
}
