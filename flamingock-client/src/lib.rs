//! Flamingock's audit store and distributed lock kept by a Flamingock server, over its versioned
//! JSON API (`/v1`, see [`wire`]).
//!
//! [`HttpAuditStore`] implements [`AuditStore`](flamingock_core::AuditStore) and
//! [`DistributedLock`](flamingock_core::lock::DistributedLock) with the SQL store's semantics:
//! the warm start is one request, the lease is judged by the server's database clock, appends
//! are fenced by the server, and every append names its row (a UUID) so that one retried after
//! a lost reply is recorded once. Connection errors and `502`/`503`/`504` are retried with
//! back-off, a bounded number of times.
//!
//! The server cannot share a transaction with a unit's target: units on a SQL target system run
//! `TX_SEPARATE` (the marker protocol: the intent commits in the target's transaction, the
//! server records `APPLIED`), and a transactional unit on the default target is refused with an
//! error that says to name a target system or make it `transactional = false`.

#![warn(missing_docs)]

mod scope;
mod store;
mod transport;
pub mod wire;

pub use scope::{InvalidName, MAX_ENVIRONMENT_LEN, MAX_SERVICE_LEN, Scope};
pub use store::{HttpAuditStore, NoSharedTransaction, ServerUrl, TOKEN_ENV};
pub use transport::RetryPolicy;
