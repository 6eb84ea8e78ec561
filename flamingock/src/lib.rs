//! Flamingock for Rust: ordered, audited, exactly-once changes to everything a service depends on.
//!
//! Declare change units with [`macro@change_unit`], then bring every target up to date at start-up:
//!
//! ```no_run,standalone_crate
//! use flamingock::prelude::*;
//!
//! #[derive(Default)]
//! pub struct CreateClients;
//!
//! #[change_unit(id = "create-clients", order = "0001", author = "ana")]
//! impl CreateClients {
//!     #[execution]
//!     async fn execute(&self, tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>) -> Result<(), sqlx::Error> {
//!         sqlx::query("CREATE TABLE clients (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
//!             .execute(&mut **tx)
//!             .await?;
//!         Ok(())
//!     }
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), flamingock::Error> {
//!     let report = flamingock::run!().await?;
//!     println!("{report}");
//!     Ok(())
//! }
//! ```

// Every public item is documented: this crate's are what users of `flamingock` read.
#![warn(missing_docs)]

mod baseline;
mod builder;
#[cfg(feature = "cli")]
pub mod cli;
mod drift_config;
mod lock_config;
mod sql_files;
mod store_url;
mod test_run;
mod unit_crate;
#[cfg(feature = "webhook")]
mod webhook;
#[cfg(feature = "webhook")]
pub use webhook::WebhookListener;

pub use builder::{
    AUDIT_TABLE_ENV, DATABASE_URL_ENV, DEFAULT_DATABASE_URL, Flamingock, FlamingockBuilder,
    SYSTEM_VERSIONS_ENV, VALIDATE_ONLY_ENV,
};
pub use flamingock_core::engine::{BaselineError, BaselineRequest, HistoryImport, ImportReport};
pub use flamingock_core::engine::{
    DriftCheck, DriftPolicy, DriftedUnit, ON_DRIFT_ENV, RepairError, RepairOutcome, RepairRequest,
    UncomparableUnit,
};
pub use flamingock_core::engine::{
    Engine, FixError, FixOutcome, FixRequest, LockRelease, PendingCheck, PendingStatus,
    PlannedUnit, Resolution, Route, RunOptions, SeenState, SeparateTarget, UndoError, UndoLine,
    UndoOutcome, UndoRefusal, UndoReport, UndoScope, UnitFailure,
};
pub use flamingock_core::error::{self, BlockedUnit, MissingDependency, ValidationProblem};
pub use flamingock_core::history::{self, HistoryOrder, HistoryQuery};
pub use flamingock_core::import::{self, ImportError, ImportOptions, SourceTool};
pub use flamingock_core::inject::{BoxError, ParamError};
pub use flamingock_core::listener::{self, ListenerError, RunEvent, RunListener};
pub use flamingock_core::lock::{
    self, Acquisition, DEFAULT_LOCK_KEY, DistributedLock, Fence, LockInfo, LockOptions,
};
pub use flamingock_core::model::{SourceLocation, UnitState, metadata_keys};
pub use flamingock_core::plan::{Decision, Selection, natural_cmp};
pub use flamingock_core::store::{AuditStore, SharedTransaction, StoreError};
pub use flamingock_core::summary;
pub use flamingock_core::target::{
    Marker, NonTxTarget, TargetError, TargetSystem, TargetTransaction, TransactionalTarget,
};
/// What a test needs: [`TestRun`](testing::TestRun) runs the program's own units against a
/// fresh audit store, given a history, and checks what they left; for tests of code built on
/// the engine, change units built in code and an audit store kept in memory.
pub mod testing {
    pub use crate::test_run::{TestOutcome, TestRun};
    pub use flamingock_core::testing::*;
}
pub use flamingock_core::{
    AuditEntry, AuditState, ChangeContext, ChangeUnit, Dependencies, Error, RecoveryStrategy,
    RunReport, TxStrategy, TypeLabel, UnitOutcome, UnitReport,
};
#[doc = include_str!("sql_units.md")]
pub use flamingock_macros::sql_units;
pub use flamingock_macros::{change_unit, execution, rollback_execution};
pub use flamingock_sqlx as sqlx_store;
/// The sqlx flamingock is built on (see [`sqlx_store::SQLX_VERSION`]): name pools and
/// transactions through it (`flamingock::sqlx::PgPool`) and they always match the ones the audit
/// store and targets offer, whichever sqlx version the application itself depends on.
pub use flamingock_sqlx::sqlx;
pub use flamingock_sqlx::{Backend, SqlAuditStore, SqlTarget, SqlTransaction, SqlTx, StoreOptions};
pub use lock_config::{
    LOCK_LEASE_ENV, LOCK_TABLE_ENV, LOCK_WAIT_ENV, MAX_LOCK_LEASE, MAX_LOCK_WAIT, MIN_LOCK_LEASE,
};
pub use sql_files::{PendingSql, SqlFileError, SqlLayout, pending_sql, sql_unit};
pub use store_url::SQLX_DATABASE_URL_ENV;
pub use unit_crate::UnitCrate;

/// What a run of `builder` would find, without running: up to date, pending or blocked. The
/// same as [`FlamingockBuilder::pending`]; for a readiness endpoint:
/// `flamingock::pending(builder).await?.is_up_to_date()`.
pub async fn pending(builder: FlamingockBuilder) -> Result<PendingCheck, Error> {
    builder.pending().await
}

/// Checks every change unit linked into this binary (duplicate ids or orders, each named with
/// both source locations) without touching any database. Put it in a test:
///
/// ```standalone_crate
/// // in a test of your own: #[test] fn change_units_are_consistent() { ... }
/// flamingock::validate().expect("change units are consistent");
/// ```
pub fn validate() -> Result<(), Error> {
    validate_selection(&Selection::default())
}

/// [`validate`] for a subset of units (by stage or module prefix).
pub fn validate_selection(selection: &Selection) -> Result<(), Error> {
    flamingock_core::plan::order_units(ChangeUnit::registered(), selection)
        .map(|_| ())
        .map_err(Error::Validation)
}

/// Brings every change unit up to date: `flamingock::run!().await?`.
///
/// The audit store comes from `FLAMINGOCK_DATABASE_URL`, else `DATABASE_URL` (default: a
/// `flamingock.db` SQLite file in the working directory). A run that selects no change unit is an
/// error ([`Error::NoUnitsSelected`]); units in a library crate need [`export_units!`] there and
/// `.units(my_units::change_units())` on the builder. `run!(builder)` takes a
/// [`Flamingock::builder()`] instead. Either form records the calling crate's name and version in
/// every audit entry. It returns a future of
/// `Result<`[`RunReport`]`, `[`Error`]`>`; from a sync `main`, use [`run_blocking!`].
///
/// ```standalone_crate
/// use flamingock::prelude::*;
///
/// #[derive(Default)]
/// pub struct CreateClients;
///
/// #[change_unit(id = "create-clients", order = "0001", author = "ana")]
/// impl CreateClients {
///     #[execution]
///     async fn execute(&self, tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>) -> Result<(), sqlx::Error> {
///         sqlx::query("CREATE TABLE clients (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
///             .execute(&mut **tx)
///             .await?;
///         Ok(())
///     }
/// }
///
/// #[tokio::main]
/// async fn main() -> Result<(), flamingock::Error> {
///     // `flamingock::run!()` reads FLAMINGOCK_DATABASE_URL (default: ./flamingock.db); this
///     // example keeps its audit store in memory.
///     let builder = Flamingock::builder().database_url("sqlite::memory:");
///     let report = flamingock::run!(builder).await?;
///     assert_eq!(report.applied(), ["create-clients"]);
///     println!("{report}");
///     Ok(())
/// }
/// ```
#[macro_export]
macro_rules! run {
    () => {
        $crate::run!($crate::Flamingock::builder())
    };
    ($builder:expr $(,)?) => {
        $crate::FlamingockBuilder::run($crate::FlamingockBuilder::app_if_unset(
            $builder,
            ::core::env!("CARGO_PKG_NAME"),
            ::core::env!("CARGO_PKG_VERSION"),
        ))
    };
}

/// [`run!`] for a sync `main`: runs on a private single-threaded tokio runtime and returns the
/// result directly. Called inside an async runtime it refuses with [`Error::Config`] (use
/// `run!().await` there).
///
/// ```standalone_crate
/// use flamingock::prelude::*;
///
/// #[change_unit(id = "announce", order = "1", author = "ana", transactional = false)]
/// mod announce {
///     use super::*;
///
///     #[execution]
///     pub fn execute(ctx: &ChangeContext) {
///         println!("applying {}", ctx.change_id);
///     }
/// }
///
/// fn main() -> Result<(), flamingock::Error> {
///     let report = flamingock::run_blocking!(Flamingock::builder().database_url("sqlite::memory:"))?;
///     assert_eq!(report.applied(), ["announce"]);
///     Ok(())
/// }
/// ```
#[macro_export]
macro_rules! run_blocking {
    () => {
        $crate::run_blocking!($crate::Flamingock::builder())
    };
    ($builder:expr $(,)?) => {
        $crate::FlamingockBuilder::run_blocking($crate::FlamingockBuilder::app_if_unset(
            $builder,
            ::core::env!("CARGO_PKG_NAME"),
            ::core::env!("CARGO_PKG_VERSION"),
        ))
    };
}

/// Everything a file of change units needs: `use flamingock::prelude::*;`.
pub mod prelude {
    pub use crate::{ChangeContext, Flamingock, change_unit, execution, rollback_execution};
}

/// What the macros' generated code names. Not a public API: it changes without notice.
#[doc(hidden)]
pub mod __private {
    pub use crate::sql_files::private as sql;
    pub use flamingock_core::inject::{
        IntoUnitResult, Param, ParamSpec, Scope, UnitFuture, run_sync,
    };
    pub use flamingock_core::model::{ChangeUnit, RecoveryStrategy, SourceLocation, UnitMethod};
    pub use flamingock_sqlx::assert_sqlx_transaction;
    pub use inventory;

    /// Fails to compile, at the span of the type the macro passes, unless `T: Default`.
    #[diagnostic::on_unimplemented(
        message = "change unit type `{Self}` must implement `Default`",
        label = "`#[change_unit]` builds this type with `Default::default()`",
        note = "add `#[derive(Default)]` to the type, or put the attribute on an inline `mod` of free functions"
    )]
    pub trait ChangeUnitType: Sized {
        fn construct() -> Self;
    }

    impl<T: Default> ChangeUnitType for T {
        fn construct() -> Self {
            T::default()
        }
    }
}
