//! What a test of code that uses Flamingock needs: an audit store kept in memory.
//!
//! ```
//! use flamingock_core::testing::MemoryAuditStore;
//!
//! let store = MemoryAuditStore::new();
//! # let _ = store;
//! ```

pub use crate::store::{MemoryAuditStore, MemoryTransaction};
