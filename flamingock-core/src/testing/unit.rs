//! A change unit built in code, for tests and tools that cannot use `#[change_unit]`.

use std::any::{Any, TypeId, type_name};
use std::borrow::Cow;
use std::panic::Location;

use crate::ChangeContext;
use crate::inject::{BoxError, ParamError, ParamSpec, Requirement, Scope, UnitFuture, run_sync};
use crate::model::{ChangeUnit, RecoveryStrategy, SourceLocation, UnitMethod};

/// What a step built with [`UnitBuilder::execute`] or [`UnitBuilder::rollback`] returns: a boxed,
/// sendable future of the step's result.
pub type StepFuture<'s> = UnitFuture<'s>;

/// What one call of a built unit's step is given: its context, and what the run injects by type
/// (the target's open transaction, the registered dependencies).
pub struct UnitScope<'s> {
    scope: Scope<'s>,
}

impl<'s> UnitScope<'s> {
    /// Which unit, run and attempt this call is.
    pub fn context(&self) -> &'s ChangeContext {
        self.scope.context()
    }

    /// The target's open transaction, as a `#[change_unit]` method's `&mut T` parameter. Declare it
    /// with [`UnitBuilder::takes_transaction`] so the run checks it before anything runs.
    pub fn transaction<T: Any + Send>(&mut self) -> Result<&'s mut T, ParamError> {
        crate::inject::Param::take(&mut self.scope)
    }

    /// A dependency registered on the target or the builder, as a `&T` parameter. Declare it with
    /// [`UnitBuilder::takes_dependency`] so the run checks it before anything runs.
    pub fn dependency<T: Any + Send + Sync>(&mut self) -> Result<&'s T, ParamError> {
        crate::inject::Param::take(&mut self.scope)
    }
}

type Step = dyn for<'s> Fn(UnitScope<'s>) -> StepFuture<'s> + Send + Sync;

/// Builds a [`ChangeUnit`] in code: what `#[change_unit]` registers, for a test or a tool that
/// makes its units at run time.
///
/// Defaults are the macro's: transactional, on the audit store's own database, stage `default`,
/// `MANUAL_INTERVENTION`, not run always, checksum `"0"`, no rollback. The source location is
/// where [`UnitBuilder::new`] was called.
///
/// [`UnitBuilder::build`] leaks the unit and its steps (a registration is `'static`, as the
/// macro's statics are): build units once per test or per process, not in a loop that runs
/// forever.
///
/// ```
/// use flamingock_core::testing::{MemoryAuditStore, MemoryTransaction, UnitBuilder};
/// use flamingock_core::Engine;
/// use std::sync::Arc;
///
/// let create = UnitBuilder::new("create-users", "0001", "ana")
///     .takes_transaction::<MemoryTransaction>()
///     .execute(|mut scope| {
///         Box::pin(async move {
///             let tx = scope.transaction::<MemoryTransaction>()?;
///             tx.effects.push("created users".into());
///             Ok(())
///         })
///     })
///     .build();
/// let log = UnitBuilder::new("log", "0002", "ana")
///     .transactional(false)
///     .execute_sync(|scope| {
///         println!("running {}", scope.context().change_id);
///         Ok(())
///     })
///     .build();
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let store = MemoryAuditStore::new();
/// let report = Engine::new(Arc::new(store.clone())).run([create, log]).await?;
/// assert_eq!(report.applied(), ["create-users", "log"]);
/// # Ok::<_, flamingock_core::Error>(())
/// # }).unwrap();
/// ```
pub struct UnitBuilder {
    unit: ChangeUnit,
    id: Cow<'static, str>,
    order: Cow<'static, str>,
    execution: Option<&'static Step>,
    rollback: Option<&'static Step>,
    params: Vec<fn() -> ParamSpec>,
}

impl UnitBuilder {
    /// A unit with this id, order and author (owned strings are leaked by [`UnitBuilder::build`]).
    #[track_caller]
    pub fn new(
        id: impl Into<Cow<'static, str>>,
        order: impl Into<Cow<'static, str>>,
        author: &'static str,
    ) -> Self {
        let caller = Location::caller();
        Self {
            unit: ChangeUnit {
                id: "",
                order: "",
                author,
                target_system: None,
                transactional: true,
                recovery: RecoveryStrategy::ManualIntervention,
                run_always: false,
                system_version: None,
                stage: None,
                description: None,
                source: SourceLocation {
                    module_path: "flamingock_core::testing",
                    file: caller.file(),
                    line: caller.line(),
                },
                checksum: "0",
                execution: NOTHING,
                rollback: None,
            },
            id: id.into(),
            order: order.into(),
            execution: None,
            rollback: None,
            params: Vec::new(),
        }
    }

    /// What the unit does: an async step.
    pub fn execute<F>(mut self, step: F) -> Self
    where
        F: for<'s> Fn(UnitScope<'s>) -> StepFuture<'s> + Send + Sync + 'static,
    {
        self.execution = Some(Box::leak(Box::new(step)));
        self
    }

    /// What the unit does: a blocking step, run as the macro runs a unit's `fn` (off the async
    /// worker threads on a multi-threaded runtime, in place on a current-thread one).
    pub fn execute_sync<F>(self, step: F) -> Self
    where
        F: Fn(UnitScope<'_>) -> Result<(), BoxError> + Send + Sync + 'static,
    {
        let step: &'static F = Box::leak(Box::new(step));
        self.execute(move |scope| Box::pin(async move { run_sync(|| step(scope)) }))
    }

    /// What undoes the unit: an async step.
    pub fn rollback<F>(mut self, step: F) -> Self
    where
        F: for<'s> Fn(UnitScope<'s>) -> StepFuture<'s> + Send + Sync + 'static,
    {
        self.rollback = Some(Box::leak(Box::new(step)));
        self
    }

    /// What undoes the unit: a blocking step.
    pub fn rollback_sync<F>(self, step: F) -> Self
    where
        F: Fn(UnitScope<'_>) -> Result<(), BoxError> + Send + Sync + 'static,
    {
        let step: &'static F = Box::leak(Box::new(step));
        self.rollback(move |scope| Box::pin(async move { run_sync(|| step(scope)) }))
    }

    /// Declares that the steps take the target's transaction of type `T`: the run refuses, before
    /// anything runs, a unit whose target opens another type or none (as for a `&mut T` parameter).
    pub fn takes_transaction<T: Any + Send>(mut self) -> Self {
        self.params.push(|| ParamSpec {
            name: "transaction",
            written_type: type_name::<T>(),
            requirement: Requirement::Transaction {
                type_id: TypeId::of::<T>(),
                type_name: type_name::<T>(),
            },
        });
        self
    }

    /// Declares that the steps take a dependency of type `T`: the run refuses, before anything
    /// runs, when none is registered (as for a `&T` parameter).
    pub fn takes_dependency<T: Any + Send + Sync>(mut self) -> Self {
        self.params.push(|| ParamSpec {
            name: "dependency",
            written_type: type_name::<T>(),
            requirement: <&T as crate::inject::Param<'_>>::requirement(),
        });
        self
    }

    /// `false`: the unit runs `NON_TX` (no transaction; its rollback undoes a failure).
    pub fn transactional(mut self, transactional: bool) -> Self {
        self.unit.transactional = transactional;
        self
    }

    /// The named target system the unit changes (default: the audit store's own database).
    pub fn target(mut self, name: &'static str) -> Self {
        self.unit.target_system = Some(name);
        self
    }

    /// The stage the unit belongs to (default: `default`).
    pub fn stage(mut self, name: &'static str) -> Self {
        self.unit.stage = Some(name);
        self
    }

    /// What the next run does when the unit's outcome is in doubt.
    pub fn recovery(mut self, recovery: RecoveryStrategy) -> Self {
        self.unit.recovery = recovery;
        self
    }

    /// The unit runs on every run, not only the first.
    pub fn run_always(mut self) -> Self {
        self.unit.run_always = true;
        self
    }

    /// The unit's description, shown by `flamingock list`.
    pub fn description(mut self, description: &'static str) -> Self {
        self.unit.description = Some(description);
        self
    }

    /// The release the unit ships with (`system_version = "1.4.0"`).
    pub fn system_version(mut self, version: &'static str) -> Self {
        self.unit.system_version = Some(version);
        self
    }

    /// The checksum recorded with the unit (the macro hashes the unit's source).
    pub fn checksum(mut self, checksum: &'static str) -> Self {
        self.unit.checksum = checksum;
        self
    }

    /// The unit, leaked to `'static`. A unit without [`UnitBuilder::execute`] does nothing and
    /// succeeds.
    pub fn build(self) -> &'static ChangeUnit {
        let params: Vec<ParamSpec> = self.params.iter().map(|spec| spec()).collect();
        let params: &'static [ParamSpec] = Box::leak(params.into_boxed_slice());
        let method = |name: &'static str, step: &'static Step| -> UnitMethod {
            UnitMethod {
                name,
                params: Box::leak(Box::new(move || params.to_vec())),
                call: Box::leak(Box::new(call(move |scope| step(UnitScope { scope })))),
            }
        };
        let mut unit = self.unit;
        unit.id = leak(self.id);
        unit.order = leak(self.order);
        if let Some(step) = self.execution {
            unit.execution = method("execute", step);
        }
        unit.rollback = self.rollback.map(|step| method("rollback", step));
        Box::leak(Box::new(unit))
    }
}

/// Gives a closure the higher-ranked signature of [`UnitMethod::call`].
fn call<F>(f: F) -> F
where
    F: for<'s> Fn(Scope<'s>) -> UnitFuture<'s>,
{
    f
}

fn leak(text: Cow<'static, str>) -> &'static str {
    match text {
        Cow::Borrowed(text) => text,
        Cow::Owned(text) => Box::leak(text.into_boxed_str()),
    }
}

/// The step of a unit built without one: succeeds, changes nothing.
const NOTHING: UnitMethod = UnitMethod {
    name: "execute",
    params: &no_params,
    call: &succeed,
};

fn no_params() -> Vec<ParamSpec> {
    Vec::new()
}

fn succeed<'s>(_: Scope<'s>) -> UnitFuture<'s> {
    Box::pin(async { Ok(()) })
}
