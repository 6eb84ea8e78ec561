//! Flamingock for Rust: ordered, audited, exactly-once changes to everything a service depends on.
//!
//! See the README for the quick start.

pub use flamingock_core::{
    AuditEntry, AuditState, ChangeContext, ChangeUnit, Dependencies, Error, RecoveryStrategy,
    RunReport, TxStrategy, UnitOutcome, UnitReport,
};
pub use flamingock_macros::{change_unit, execution, rollback_execution};

/// Everything a file of change units needs: `use flamingock::prelude::*;`.
pub mod prelude {
    pub use crate::{ChangeContext, change_unit, execution, rollback_execution};
}

/// What the macros' generated code names. Not a public API: it changes without notice.
#[doc(hidden)]
pub mod __private {
    pub use flamingock_core::inject::{IntoUnitResult, Param, ParamSpec, Scope, UnitFuture};
    pub use flamingock_core::model::{ChangeUnit, RecoveryStrategy, SourceLocation, UnitMethod};
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
