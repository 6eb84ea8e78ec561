//! Injection by type: how a change-unit method's parameters are resolved from the run.
//!
//! Like axum's extractors, each parameter type implements [`Param`]: `&T` is a dependency (from
//! the unit's target system first, then the builder) or the [`ChangeContext`]; `&mut T` is the
//! target system's open transaction. The macro calls [`Param::take`] once per parameter and
//! [`Param::requirement`] to let the engine check every pending unit before the first one runs.

use std::any::{Any, TypeId, type_name};
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::Serialize;

use crate::type_label::TypeLabel;

/// The boxed error a change-unit method may fail with (any `std::error::Error`, or anyhow's).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

#[doc(hidden)]
/// The future a generated method wrapper returns.
pub type UnitFuture<'s> = Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send + 's>>;

/// What the running unit can know about itself: `&ChangeContext` as a parameter.
///
/// ```standalone_crate
/// use std::sync::Mutex;
///
/// use flamingock::prelude::*;
///
/// static SEEN: Mutex<Vec<String>> = Mutex::new(Vec::new());
///
/// #[change_unit(id = "note-attempt", order = "1", author = "ana", transactional = false)]
/// mod note_attempt {
///     use super::*;
///
///     #[execution]
///     pub fn execute(ctx: &ChangeContext) {
///         let line = format!("{} (attempt {}, stage {})", ctx.change_id, ctx.attempt, ctx.stage);
///         SEEN.lock().expect("not poisoned").push(line);
///     }
/// }
///
/// # #[tokio::main] async fn main() -> Result<(), flamingock::Error> {
/// let report = flamingock::run!(Flamingock::builder().database_url("sqlite::memory:")).await?;
/// assert_eq!(*SEEN.lock().unwrap(), ["note-attempt (attempt 1, stage default)"]);
/// assert_eq!(report.units[0].change_id, "note-attempt");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangeContext {
    /// The unit's id.
    pub change_id: String,
    /// The id (UUID v7) of this run, shared by every unit the run applies.
    pub execution_id: String,
    /// 1 on the first try; each earlier try that did not end applied (failed, or interrupted by a
    /// crash) adds one.
    pub attempt: u32,
    /// The stage the unit belongs to.
    pub stage: String,
    /// The target system's name.
    pub target_system: String,
    /// The runner (one `Flamingock` instance) applying the unit.
    pub runner_id: String,
}

/// A map from type to value: the dependencies a builder or a target system offers to units.
#[derive(Clone, Default)]
pub struct Dependencies {
    values: HashMap<TypeId, (TypeLabel, Arc<dyn Any + Send + Sync>)>,
}

impl Dependencies {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `value`, replacing any earlier value of the same type.
    pub fn insert<T: Any + Send + Sync>(&mut self, value: T) {
        self.insert_labeled(value, TypeLabel::of::<T>());
    }

    /// Adds `value`, shown in messages by `label` (`PgPool`, from `sqlx 0.9`). `label` must be
    /// `T`'s: `TypeLabel::of::<T>()` with a name or origin set.
    pub fn insert_labeled<T: Any + Send + Sync>(&mut self, value: T, label: TypeLabel) {
        debug_assert!(
            label.type_id == TypeId::of::<T>(),
            "a label of another type"
        );
        self.values
            .insert(TypeId::of::<T>(), (label, Arc::new(value)));
    }

    /// Adds an already shared value.
    pub fn insert_arc<T: Any + Send + Sync>(&mut self, value: Arc<T>) {
        self.values
            .insert(TypeId::of::<T>(), (TypeLabel::of::<T>(), value));
    }

    /// The value of type `T`, if one was added.
    pub fn get<T: Any>(&self) -> Option<&T> {
        self.values
            .get(&TypeId::of::<T>())
            .and_then(|(_, value)| value.downcast_ref::<T>())
    }

    /// Whether a value of the given type was added.
    pub fn contains(&self, type_id: TypeId) -> bool {
        self.values.contains_key(&type_id)
    }

    /// The type names offered, sorted: for error messages.
    pub fn type_names(&self) -> Vec<&'static str> {
        let mut names: Vec<_> = self
            .values
            .values()
            .map(|(label, _)| label.type_name)
            .collect();
        names.sort_unstable();
        names
    }

    /// The labels of the types offered, sorted by their shown names: for error messages.
    pub fn labels(&self) -> Vec<TypeLabel> {
        let mut labels: Vec<_> = self.values.values().map(|(label, _)| *label).collect();
        labels.sort_by_key(TypeLabel::name);
        labels
    }

    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

impl fmt::Debug for Dependencies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.type_names()).finish()
    }
}

#[doc(hidden)]
/// Everything a method's parameters can be resolved from, for one call.
pub struct Scope<'s> {
    context: &'s ChangeContext,
    target_dependencies: &'s Dependencies,
    dependencies: &'s Dependencies,
    transaction: Option<&'s mut (dyn Any + Send)>,
}

impl<'s> Scope<'s> {
    /// A scope for one method call. `transaction` is the target's open transaction, if any.
    pub fn new(
        context: &'s ChangeContext,
        target_dependencies: &'s Dependencies,
        dependencies: &'s Dependencies,
        transaction: Option<&'s mut (dyn Any + Send)>,
    ) -> Self {
        Self {
            context,
            target_dependencies,
            dependencies,
            transaction,
        }
    }

    /// The context of the call: which unit, run and attempt.
    pub fn context(&self) -> &'s ChangeContext {
        self.context
    }

    /// Takes the open transaction out of the scope whatever its type (once: a second call, or a
    /// unit without one, gets `None`): for a [`Param`] that takes it as something other than its
    /// own type, and for callers that only learn at run time which database they are on, as an
    /// SQL file's unit does.
    pub fn take_transaction(&mut self) -> Option<&'s mut (dyn Any + Send)> {
        self.transaction.take()
    }
}

/// What a parameter needs from the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    /// `&ChangeContext`: always available.
    Context,
    /// `&T`: a dependency of this type on the unit's target or the builder.
    Dependency {
        /// The dependency's type.
        type_id: TypeId,
        /// Its name, for messages.
        type_name: &'static str,
    },
    /// `&mut T`: the target system's open transaction, of this type.
    Transaction {
        /// The transaction's type.
        type_id: TypeId,
        /// Its name, for messages.
        type_name: &'static str,
    },
    /// What the unit needs from the values it will be given, checked by the unit's own function
    /// (an SQL file's placeholders need values).
    Check(DependencyCheck),
    /// A parameter that takes the target system's open transaction as any of several types (the
    /// backend-neutral `&mut flamingock::SqlTx`).
    AnyTransaction(AcceptedTransactions),
}

/// A check of what a unit will be given, before anything runs: called with the dependencies of
/// the unit's target and those of the builder; `Err` says what is missing and how to supply it.
#[derive(Clone, Copy)]
pub struct DependencyCheck(pub fn(&Dependencies, &Dependencies) -> Result<(), String>);

impl DependencyCheck {
    /// Runs the check.
    pub fn check(&self, target: &Dependencies, builder: &Dependencies) -> Result<(), String> {
        (self.0)(target, builder)
    }
}

impl PartialEq for DependencyCheck {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::fn_addr_eq(self.0, other.0)
    }
}

impl Eq for DependencyCheck {}

impl fmt::Debug for DependencyCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DependencyCheck(..)")
    }
}

/// The transaction types a backend-neutral parameter takes.
#[derive(Debug, Clone, Copy)]
pub struct AcceptedTransactions {
    /// Whether a target's transaction of this type can be taken.
    pub accepts: fn(TypeId) -> bool,
    /// What it takes, for messages (`the transaction of a SQLite, PostgreSQL or MySQL database`).
    pub described: &'static str,
}

impl PartialEq for AcceptedTransactions {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::fn_addr_eq(self.accepts, other.accepts) && self.described == other.described
    }
}

impl Eq for AcceptedTransactions {}

#[doc(hidden)]
/// One parameter of a generated method, as the macro describes it.
#[derive(Debug, Clone, Copy)]
pub struct ParamSpec {
    /// The parameter's pattern as written (`tx`, `_pool`).
    pub name: &'static str,
    /// The parameter's type as written (`&mut sqlx::Transaction<'_, sqlx::Sqlite>`).
    pub written_type: &'static str,
    /// What it needs.
    pub requirement: Requirement,
}

/// Why a parameter could not be resolved at call time. The engine checks requirements before
/// anything runs, so this is only seen when that check was bypassed.
#[derive(Debug, thiserror::Error)]
#[error("cannot inject a `{}`: {reason}", crate::type_label::short_type_name(.type_name))]
pub struct ParamError {
    /// The parameter's type.
    pub type_name: &'static str,
    /// Why it could not be filled.
    pub reason: &'static str,
}

/// A type a change-unit method can take as a parameter: resolved from the run by its type.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be injected into a change unit",
    label = "not injectable",
    note = "parameters are `&ChangeContext`, `&T` for a dependency registered on the builder or the target system, or `&mut T` for the target system's transaction (such as `&mut sqlx::Transaction<'_, sqlx::Sqlite>`, or `&mut flamingock::SqlTx` on any SQL database)"
)]
#[doc(hidden)]
pub trait Param<'s>: Sized {
    /// What this parameter needs, checked before any unit runs.
    fn requirement() -> Requirement;
    /// Takes the parameter's value out of the scope.
    fn take(scope: &mut Scope<'s>) -> Result<Self, ParamError>;
}

impl<'s, T: Any + Send + Sync> Param<'s> for &'s T {
    fn requirement() -> Requirement {
        if TypeId::of::<T>() == TypeId::of::<ChangeContext>() {
            Requirement::Context
        } else {
            Requirement::Dependency {
                type_id: TypeId::of::<T>(),
                type_name: type_name::<T>(),
            }
        }
    }

    fn take(scope: &mut Scope<'s>) -> Result<Self, ParamError> {
        let context: &'s ChangeContext = scope.context;
        if let Some(context) = (context as &dyn Any).downcast_ref::<T>() {
            return Ok(context);
        }
        let (target, builder) = (scope.target_dependencies, scope.dependencies);
        target
            .get::<T>()
            .or_else(|| builder.get::<T>())
            .ok_or(ParamError {
                type_name: type_name::<T>(),
                reason: "no dependency of this type is registered",
            })
    }
}

impl<'s, T: Any + Send> Param<'s> for &'s mut T {
    fn requirement() -> Requirement {
        Requirement::Transaction {
            type_id: TypeId::of::<T>(),
            type_name: type_name::<T>(),
        }
    }

    fn take(scope: &mut Scope<'s>) -> Result<Self, ParamError> {
        let transaction = scope.take_transaction().ok_or(ParamError {
            type_name: type_name::<T>(),
            reason: "no open transaction (the unit is not transactional, or another parameter took it)",
        })?;
        transaction.downcast_mut::<T>().ok_or(ParamError {
            type_name: type_name::<T>(),
            reason: "the target system's transaction is of another type",
        })
    }
}

/// Runs a unit's synchronous method (a `fn`, not an `async fn`) off the async worker threads
/// where the runtime allows it (`block_in_place` on a multi-threaded runtime), so that a method
/// that blocks does not hold up the runtime's other tasks. On a current-thread runtime it runs in
/// place; the lease's heartbeat does not depend on either (it has a thread of its own).
#[doc(hidden)]
pub fn run_sync<R>(call: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(call)
        }
        _ => call(),
    }
}

/// What a change-unit method may return: `()` or `Result<(), E>` for any error type that converts
/// into [`BoxError`] (every `std::error::Error + Send + Sync + 'static`, and `anyhow::Error`).
#[diagnostic::on_unimplemented(
    message = "a change-unit method cannot return `{Self}`",
    label = "return `()` or `Result<(), E>`",
    note = "E is any `std::error::Error + Send + Sync + 'static`, or `anyhow::Error`"
)]
#[doc(hidden)]
pub trait IntoUnitResult {
    /// Converts the method's output.
    fn into_unit_result(self) -> Result<(), BoxError>;
}

impl IntoUnitResult for () {
    fn into_unit_result(self) -> Result<(), BoxError> {
        Ok(())
    }
}

impl<E: Into<BoxError>> IntoUnitResult for Result<(), E> {
    fn into_unit_result(self) -> Result<(), BoxError> {
        self.map_err(Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context() -> ChangeContext {
        ChangeContext {
            change_id: "c".into(),
            execution_id: "e".into(),
            attempt: 1,
            stage: "default".into(),
            target_system: "default".into(),
            runner_id: "r".into(),
        }
    }

    #[test]
    fn shared_parameters_come_from_target_then_builder() {
        let ctx = context();
        let mut target = Dependencies::new();
        target.insert(1_u32);
        let mut builder = Dependencies::new();
        builder.insert(2_u32);
        builder.insert(String::from("config"));
        let mut scope = Scope::new(&ctx, &target, &builder, None);
        assert_eq!(*<&u32 as Param>::take(&mut scope).unwrap(), 1);
        assert_eq!(<&String as Param>::take(&mut scope).unwrap(), "config");
        assert_eq!(<&ChangeContext as Param>::take(&mut scope).unwrap(), &ctx);
        assert!(<&i64 as Param>::take(&mut scope).is_err());
        assert_eq!(
            <&ChangeContext as Param>::requirement(),
            Requirement::Context
        );
    }

    #[test]
    fn the_transaction_is_taken_once_and_by_its_type() {
        let ctx = context();
        let deps = Dependencies::new();
        let mut tx = String::from("tx");
        let mut scope = Scope::new(&ctx, &deps, &deps, Some(&mut tx));
        assert!(<&mut u8 as Param>::take(&mut scope).is_err());
        let mut tx = String::from("tx");
        let mut scope = Scope::new(&ctx, &deps, &deps, Some(&mut tx));
        let taken = <&mut String as Param>::take(&mut scope).unwrap();
        taken.push('!');
        assert!(<&mut String as Param>::take(&mut scope).is_err());
        assert_eq!(tx, "tx!");
    }
}
