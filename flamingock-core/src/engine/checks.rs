//! What is checked before anything runs, for apply and undo alike: which route (strategy and
//! target) a unit takes, and whether every parameter of its methods can be filled.

use crate::error::{Error, MissingDependency};
use crate::inject::{Dependencies, Requirement};
use crate::model::{ChangeUnit, DEFAULT_TARGET, UnitMethod};

use super::Engine;
use super::planned::{PlannedUnit, Route, SeparateTarget};

impl Engine {
    /// The route of `unit`: its target by name (refused when unknown, naming the known ones) and
    /// the strategy that target and the unit's `transactional` flag give.
    pub(super) fn resolve_route(&self, unit: &'static ChangeUnit) -> Result<Route, Error> {
        let Some(name) = unit.target_system.filter(|name| *name != DEFAULT_TARGET) else {
            return Ok(match &self.separate_store_target {
                _ if !unit.transactional => Route::NonTransactional(None),
                Some(own) => Route::Separate(own.clone()),
                None => Route::Shared(None),
            });
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
                let reason = self.unfilled_reason(unit, param.requirement)?;
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

    fn unfilled_reason(&self, unit: &PlannedUnit, requirement: Requirement) -> Option<String> {
        let target_name = unit.unit.target_name();
        match requirement {
            Requirement::Context => None,
            Requirement::Check(check) => check
                .check(self.target_dependencies(unit), &self.dependencies)
                .err(),
            Requirement::Dependency { type_id, type_name } => {
                if matches!(unit.route, Route::Shared(None))
                    && let Some(why) = self.store.unusable_in_shared_transaction(type_id)
                {
                    return Some(format!(
                        "`{type_name}` cannot be used inside this transactional unit: {why}"
                    ));
                }
                let target_dependencies = self.target_dependencies(unit);
                if target_dependencies.contains(type_id) || self.dependencies.contains(type_id) {
                    return None;
                }
                let mut offered = target_dependencies.type_names();
                offered.extend(self.dependencies.type_names());
                let offered = if offered.is_empty() {
                    "none".to_owned()
                } else {
                    offered.join(", ")
                };
                Some(format!(
                    "no dependency of type `{type_name}` is registered for target \"{target_name}\" or on the builder; register one with `Flamingock::builder().dependency(value)` (registered: {offered})"
                ))
            }
            Requirement::Transaction { type_id, type_name } => {
                let (offered_id, offered_name) = match &unit.route {
                    Route::Shared(_) => self.store.shared_transaction_type(),
                    Route::Separate(target) => target.transactional().transaction_type(),
                    Route::NonTransactional(target) => {
                        return Some(format!(
                            "the unit runs without a transaction (NON_TX: {}), so there is no `{type_name}` to give it; take the target's client as `&T` instead",
                            if target.is_some() {
                                "its target system is not transactional"
                            } else {
                                "it says `transactional = false`"
                            }
                        ));
                    }
                };
                (offered_id != type_id).then(|| {
                    format!(
                        "the target \"{target_name}\" opens a `{offered_name}`, not a `{type_name}`; declare the parameter as `&mut {offered_name}`"
                    )
                })
            }
        }
    }

    /// What a unit's target offers as `&T` (the audit store's, for its own database).
    pub(super) fn target_dependencies<'a>(&'a self, unit: &'a PlannedUnit) -> &'a Dependencies {
        unit.route
            .target()
            .map_or(&self.store_dependencies, |target| target.dependencies())
    }
}
