//! What a test of code that uses Flamingock needs: an audit store kept in memory, and change units
//! built in code.
//!
//! ```
//! use flamingock_core::testing::MemoryAuditStore;
//!
//! let store = MemoryAuditStore::new();
//! # let _ = store;
//! ```

mod memory;
mod unit;

pub use memory::{MemoryAuditStore, MemoryTransaction};
pub use unit::{StepFuture, UnitBuilder, UnitScope};
