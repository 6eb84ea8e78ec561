//! What is checked before anything runs, for apply and undo alike: which route (strategy and
//! target) a unit takes, and whether every parameter of its methods can be filled.

use crate::error::{Error, MissingDependency};
use crate::inject::{Dependencies, ParamSpec, Requirement};
use crate::model::{ChangeUnit, DEFAULT_TARGET, UnitMethod};
use crate::type_label::{TypeLabel, last_word, short_type_name};

use super::Engine;
use super::planned::{PlannedUnit, Route, SeparateTarget};

impl Engine {
    /// The route of `unit`: its target by name (refused when unknown, naming the known ones) and
    /// the strategy that target and the unit's `transactional` flag give.
    pub(super) fn resolve_route(&self, unit: &'static ChangeUnit) -> Result<Route, Error> {
        let Some(name) = unit.target_system.filter(|name| *name != DEFAULT_TARGET) else {
            return match &self.separate_store_target {
                _ if !unit.transactional => Ok(Route::NonTransactional(None)),
                Some(own) => Ok(Route::Separate(own.clone())),
                None => match self.store.shared_transaction_refusal() {
                    None => Ok(Route::Shared(None)),
                    Some(reason) => Err(Error::NoSharedTransaction {
                        change_id: unit.id.to_owned(),
                        location: unit.source,
                        reason,
                    }),
                },
            };
        };
        let Some(target) = self.targets.get(name) else {
            let mut known: Vec<String> = self.targets.keys().cloned().collect();
            known.sort();
            known.insert(0, format!("{DEFAULT_TARGET} (the audit store's database)"));
            return Err(Error::UnknownTarget {
                change_id: unit.id.to_owned(),
                location: unit.source,
                target: name.to_owned(),
                known,
            });
        };
        let Some(separate) = SeparateTarget::new(target.clone()).filter(|_| unit.transactional)
        else {
            return Ok(Route::NonTransactional(Some(target.clone())));
        };
        if Some(separate.transactional().database_identity()) != self.store.database_identity()
            || self.separate_store_target.is_some()
        {
            // Another database, or the audit store's own one where transactions are not atomic
            // (MySQL): the marker protocol, on the named target (its pool, its marker table).
            return Ok(Route::Separate(separate));
        }
        // The audit store's own database: one transaction with the audit row; the unit still
        // takes the named target's dependencies.
        Ok(Route::Shared(Some(target.clone())))
    }

    /// Checks that every parameter of every pending unit (and of its rollback) can be filled,
    /// before anything runs.
    pub(super) fn check_dependencies(&self, planned: &[PlannedUnit]) -> Result<(), Error> {
        let missing: Vec<MissingDependency> = planned
            .iter()
            .filter(|p| p.is_pending())
            .flat_map(|unit| {
                let methods = std::iter::once(&unit.unit.execution).chain(&unit.unit.rollback);
                methods.flat_map(move |method| self.missing_dependencies(unit, method))
            })
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(Error::MissingDependencies(missing))
        }
    }

    /// The parameters of `method` that nothing can fill for `unit`.
    pub(super) fn missing_dependencies(
        &self,
        unit: &PlannedUnit,
        method: &'static UnitMethod,
    ) -> Vec<MissingDependency> {
        (method.params)()
            .iter()
            .filter_map(|param| {
                let reason = self.unfilled_reason(unit, param)?;
                Some(MissingDependency {
                    change_id: unit.unit.id.to_owned(),
                    location: unit.unit.source,
                    method: method.name,
                    parameter: param.name,
                    written_type: param.written_type,
                    reason,
                })
            })
            .collect()
    }

    fn unfilled_reason(&self, unit: &PlannedUnit, param: &ParamSpec) -> Option<String> {
        let target_name = unit.unit.target_name();
        let written = param.written_type;
        // The type the parameter names, as its author wrote it, without paths or the reference.
        let asked = short_type_name(
            written
                .trim_start_matches('&')
                .trim_start()
                .trim_start_matches("mut ")
                .trim_start(),
        );
        match param.requirement {
            Requirement::Context => None,
            Requirement::Check(check) => check
                .check(self.target_dependencies(unit), &self.dependencies)
                .err(),
            Requirement::Dependency { type_id, type_name } => {
                if matches!(unit.route, Route::Shared(None))
                    && let Some(why) = self.store.unusable_in_shared_transaction(type_id)
                {
                    return Some(format!(
                        "`{asked}` cannot be used inside this transactional unit: {why}"
                    ));
                }
                let target_dependencies = self.target_dependencies(unit);
                if target_dependencies.contains(type_id) || self.dependencies.contains(type_id) {
                    return None;
                }
                let from_target = target_dependencies.labels();
                let from_builder = self.dependencies.labels();
                if let Some(twin) = from_target
                    .iter()
                    .chain(&from_builder)
                    .find(|label| label.is_other_version_of(type_id, type_name))
                {
                    return Some(other_version(
                        twin,
                        "a dependency of that name is registered",
                    ));
                }
                let offered = |labels: &[TypeLabel]| {
                    if labels.is_empty() {
                        "nothing".to_owned()
                    } else {
                        let names: Vec<_> = labels
                            .iter()
                            .map(|label| format!("`&{}`", label.name()))
                            .collect();
                        names.join(", ")
                    }
                };
                let wanted = last_word(written);
                let suggestion = from_target
                    .iter()
                    .chain(&from_builder)
                    .find(|label| last_word(&label.name()) == wanted)
                    .map(|label| format!("did you mean `&{}`? ", label.name()))
                    .unwrap_or_default();
                Some(format!(
                    "no `{asked}` is registered for this unit: target \"{target_name}\" offers {}, the builder offers {}; {suggestion}take one of those, or register one with `Flamingock::builder().dependency(value)`",
                    offered(&from_target),
                    offered(&from_builder),
                ))
            }
            Requirement::Transaction { type_id, type_name } => {
                let offered = match self.offered_transaction(unit) {
                    Ok(offered) => offered,
                    Err(reason) => return Some(reason),
                };
                if offered.type_id == type_id {
                    return None;
                }
                if offered.is_other_version_of(type_id, type_name) {
                    return Some(other_version(
                        &offered,
                        &format!("target \"{target_name}\" opens a transaction of that name"),
                    ));
                }
                Some(format!(
                    "target \"{target_name}\" opens a `{}`, not a `{asked}`; declare the parameter as `&mut {}`",
                    offered.name(),
                    offered.name(),
                ))
            }
            Requirement::AnyTransaction(accepted) => {
                let offered = match self.offered_transaction(unit) {
                    Ok(offered) => offered,
                    Err(reason) => return Some(reason),
                };
                (!(accepted.accepts)(offered.type_id)).then(|| {
                    format!(
                        "`{written}` takes {}, and target \"{target_name}\" opens a `{}`; declare the parameter as `&mut {}`",
                        accepted.described,
                        offered.name(),
                        offered.name(),
                    )
                })
            }
        }
    }

    /// The type of the transaction `unit` runs in, or why it has none.
    fn offered_transaction(&self, unit: &PlannedUnit) -> Result<TypeLabel, String> {
        match &unit.route {
            Route::Shared(_) => Ok(self.store.shared_transaction_type()),
            Route::Separate(target) => Ok(target.transactional().transaction_type()),
            Route::NonTransactional(target) => Err(format!(
                "the unit runs without a transaction (NON_TX: {}), so there is no transaction to give it; take the target's client as `&T` instead",
                if target.is_some() {
                    "its target system is not transactional"
                } else {
                    "it says `transactional = false`"
                }
            )),
        }
    }

    /// What a unit's target offers as `&T` (the audit store's, for its own database).
    pub(super) fn target_dependencies<'a>(&'a self, unit: &'a PlannedUnit) -> &'a Dependencies {
        unit.route
            .target()
            .map_or(&self.store_dependencies, |target| target.dependencies())
    }
}

/// Why a parameter of a type that the run offers under the same name is not filled: the two are
/// one type from two versions of its crate.
fn other_version(offered: &TypeLabel, whose: &str) -> String {
    let name = offered.name();
    let origin = offered
        .origin
        .map(|origin| format!("from {origin}"))
        .unwrap_or_else(|| "from one version of its crate".to_owned());
    format!(
        "{whose}, but it is another type: two versions of the crate that defines `{name}` are in your dependency tree (`cargo tree --duplicates` lists them); the offered `{name}` is {origin}, the parameter's from another version; write the parameter's type through the version the offer comes from, or make your own dependency that version"
    )
}
