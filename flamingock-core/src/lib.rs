//! Flamingock core: the change-unit model, planning, the execution engine, and the traits the
//! drivers implement (audit store, target systems). It knows nothing of SQL or of macros; the
//! `flamingock` crate glues it to `flamingock-sqlx` and `flamingock-macros`.

// Every public item is documented: this crate's are what users of `flamingock` read.
#![warn(missing_docs)]

pub mod engine;
pub mod error;
#[doc(hidden)]
pub mod failpoint;
pub mod history;
pub mod import;
pub mod inject;
pub mod listener;
pub mod lock;
pub mod model;
pub mod plan;
pub mod report;
pub mod run_plan;
pub mod sql_unit;
pub mod store;
pub mod summary;
pub mod target;
pub mod testing;
pub mod text;
pub mod type_label;

pub use engine::{Engine, RunOptions};
pub use error::Error;
pub use inject::{ChangeContext, Dependencies};
pub use model::{AuditEntry, AuditState, ChangeUnit, RecoveryStrategy, TxStrategy};
pub use report::{RunReport, UnitOutcome, UnitReport};
pub use store::{AuditStore, StoreError};
pub use type_label::TypeLabel;

/// What `flamingock-macros` and the facade's plumbing name. Not a public API: it changes without
/// notice.
#[doc(hidden)]
pub mod __private {
    pub use crate::inject::{IntoUnitResult, Param, ParamSpec, Scope, UnitFuture};
    pub use crate::model::UnitMethod;
}
