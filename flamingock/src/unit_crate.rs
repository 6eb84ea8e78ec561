//! Change units declared in a library crate: `flamingock::export_units!()` in that crate,
//! `.units(my_units::change_units())` in the program, and the check that refuses a run that
//! selects no unit at all.
//!
//! Units register themselves with `inventory`, which finds every unit of every crate linked into
//! the program. But a dependency the program never names is not linked: Cargo hands it to rustc,
//! and rustc leaves it out, with its units. Naming the crate once, in code, links it (rustc then
//! keeps its registrations, since 1.62); `export_units!` gives that name a form that reads as
//! what it does, and a run that still finds nothing fails instead of doing nothing.

use flamingock_core::plan::Selection;
use flamingock_core::{ChangeUnit, Error};

/// The change units of one library crate, as [`export_units!`](crate::export_units) hands them
/// out: pass it to [`FlamingockBuilder::units`](crate::FlamingockBuilder::units), which makes the
/// program link the crate.
///
/// ```ignore
/// // my_units/src/lib.rs (a library crate of change units)
/// flamingock::export_units!();
///
/// // the program
/// let builder = flamingock::Flamingock::builder().units(my_units::change_units());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnitCrate {
    name: &'static str,
    module_path: &'static str,
}

impl UnitCrate {
    #[doc(hidden)]
    pub const fn __new(name: &'static str, module_path: &'static str) -> Self {
        Self { name, module_path }
    }

    /// The crate's package name, as its `Cargo.toml` spells it (`my-units`).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The crate's root module, as its units' `module_path!()` starts (`my_units`).
    pub fn root_module(&self) -> &'static str {
        self.module_path
            .split("::")
            .next()
            .unwrap_or(self.module_path)
    }

    /// The registered units declared in this crate.
    pub fn units(&self) -> impl Iterator<Item = &'static ChangeUnit> + use<> {
        let root = self.root_module();
        ChangeUnit::registered().filter(move |unit| in_crate(unit, root))
    }
}

/// Whether `unit` was declared in the crate whose root module is `root`.
fn in_crate(unit: &ChangeUnit, root: &str) -> bool {
    let module = unit.source.module_path;
    module == root
        || module
            .strip_prefix(root)
            .is_some_and(|rest| rest.starts_with("::"))
}

/// Declares, in a library crate of change units, `pub fn change_units() -> flamingock::UnitCrate`,
/// for the program to pass to [`FlamingockBuilder::units`](crate::FlamingockBuilder::units).
///
/// A crate that nothing in the program names is not linked, and `inventory` never sees its units:
/// `flamingock::run!()` would find none (and refuse to run, see
/// [`allow_no_units`](crate::FlamingockBuilder::allow_no_units)). Naming
/// `my_units::change_units()` in the program links the crate.
///
/// ```ignore
/// // my_units/src/lib.rs
/// pub mod schema;            // files of #[change_unit]s
/// flamingock::export_units!();
///
/// // my_app/src/main.rs
/// #[tokio::main]
/// async fn main() -> Result<(), flamingock::Error> {
///     let builder = flamingock::Flamingock::builder().units(my_units::change_units());
///     let report = flamingock::run!(builder).await?;
///     println!("{report}");
///     Ok(())
/// }
/// ```
///
/// Invoke it once per crate, anywhere (the crate root reads best): the function it declares is
/// public at that place. What it hands out also lists the crate's units:
///
/// ```
/// flamingock::export_units!();
///
/// fn main() {
///     let units = change_units();
///     for unit in units.units() {
///         println!("{} at {}", unit.id, unit.source); // this crate's units only
///         assert!(unit.source.module_path.starts_with(units.root_module()));
///     }
///     let _builder = flamingock::Flamingock::builder().units(units);
/// }
/// ```
#[macro_export]
macro_rules! export_units {
    () => {
        /// The change units this crate declares, for
        /// `flamingock::Flamingock::builder().units(..)`: naming it links this crate into the
        /// program, and with it the units.
        pub fn change_units() -> $crate::UnitCrate {
            $crate::UnitCrate::__new(::core::env!("CARGO_PKG_NAME"), ::core::module_path!())
        }
    };
}

/// What a run checks before it connects: that it selects at least one unit, unless told that
/// none is fine.
#[derive(Debug, Clone, Default)]
pub(crate) struct UnitsExpected {
    /// `allow_no_units()` was called.
    pub(crate) allow_none: bool,
    /// The crates passed to `.units(..)`.
    pub(crate) crates: Vec<UnitCrate>,
}

impl UnitsExpected {
    /// Refuses a run over `registered` that `selection` (and `also`, a further narrowing such as
    /// the CLI's `--stage`) leaves empty, unless no units were allowed.
    pub(crate) fn check(
        &self,
        registered: &[&'static ChangeUnit],
        selection: &Selection,
        also: Option<&Selection>,
    ) -> Result<(), Error> {
        let selected = |unit: &ChangeUnit| {
            selection.includes(unit) && also.is_none_or(|also| also.includes(unit))
        };
        if self.allow_none || registered.iter().any(|unit| selected(unit)) {
            return Ok(());
        }
        let mut shown = selection.clone();
        if let Some(also) = also {
            shown.stages.extend(also.stages.iter().cloned());
            shown
                .module_prefixes
                .extend(also.module_prefixes.iter().cloned());
        }
        let empty_crates = self
            .crates
            .iter()
            .filter(|krate| {
                !registered
                    .iter()
                    .any(|unit| in_crate(unit, krate.root_module()))
            })
            .map(|krate| krate.name().to_owned())
            .collect();
        Err(Error::NoUnitsSelected {
            registered: registered.len(),
            selection: shown,
            empty_crates,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flamingock_core::testing::UnitBuilder;

    fn unit(
        id: &'static str,
        module: &'static str,
        stage: Option<&'static str>,
    ) -> &'static ChangeUnit {
        let mut builder = UnitBuilder::new(id, id, "ana");
        if let Some(stage) = stage {
            builder = builder.stage(stage);
        }
        let mut unit = *builder.build();
        unit.source.module_path = module;
        Box::leak(Box::new(unit))
    }

    #[test]
    fn a_unit_belongs_to_the_crate_its_module_path_starts_with() {
        let a = unit("a", "my_units::schema", None);
        let b = unit("b", "my_units_extra", None);
        assert!(in_crate(a, "my_units"));
        assert!(
            !in_crate(b, "my_units"),
            "a longer crate name is another crate"
        );
        assert_eq!(
            UnitCrate::__new("my-units", "my_units::inner").root_module(),
            "my_units"
        );
    }

    #[test]
    fn a_run_with_no_registered_unit_is_refused_naming_the_library_crate_fix() {
        let error = UnitsExpected::default()
            .check(&[], &Selection::default(), None)
            .unwrap_err();
        let message = error.to_string();
        assert!(matches!(
            error,
            Error::NoUnitsSelected { registered: 0, .. }
        ));
        assert!(
            message.starts_with("no change units are registered"),
            "{message}"
        );
        assert!(
            message.contains("flamingock::export_units!();"),
            "{message}"
        );
        assert!(
            message.contains(".units(my_units::change_units())"),
            "{message}"
        );
        assert!(message.contains("allow_no_units()"), "{message}");
        assert!(!message.contains("stage and module selection"), "{message}");
    }

    #[test]
    fn a_selection_that_matches_nothing_is_refused_naming_the_selection() {
        let units = [unit("a", "app::schema", Some("schema"))];
        let selection = Selection {
            stages: vec!["data".into()],
            module_prefixes: vec![],
            ..Default::default()
        };
        let cli = Selection {
            stages: vec![],
            module_prefixes: vec!["app::billing".into()],
            ..Default::default()
        };
        let expected = UnitsExpected {
            allow_none: false,
            crates: vec![UnitCrate::__new("empty-units", "empty_units")],
        };
        let message = expected
            .check(&units, &selection, Some(&cli))
            .unwrap_err()
            .to_string();
        assert!(
            message.starts_with(
                "none of the 1 change units registered in this program is selected by stage \"data\" and module \"app::billing\""
            ),
            "{message}"
        );
        assert!(
            message.contains("declaring no registered unit: empty-units"),
            "{message}"
        );
        assert!(message.contains("`.stage(..)`, `.module(..)`"), "{message}");
    }

    #[test]
    fn a_selected_unit_or_an_explicit_allowance_lets_the_run_go_on() {
        let units = [unit("a", "app::schema", Some("schema"))];
        let schema = Selection {
            stages: vec!["schema".into()],
            module_prefixes: vec![],
            ..Default::default()
        };
        assert!(
            UnitsExpected::default()
                .check(&units, &schema, None)
                .is_ok()
        );
        let allowed = UnitsExpected {
            allow_none: true,
            crates: vec![],
        };
        assert!(allowed.check(&[], &Selection::default(), None).is_ok());
        let data = Selection {
            stages: vec!["data".into()],
            module_prefixes: vec![],
            ..Default::default()
        };
        assert!(
            UnitsExpected::default()
                .check(&units, &schema, Some(&data))
                .is_err()
        );
    }
}
