//! A unit as planned for a run: its decision, its current state, and its route (which strategy
//! and which target), decided once before anything runs.

use std::sync::Arc;

use crate::error::BlockedUnit;
use crate::model::{ChangeUnit, TxStrategy, UnitState};
use crate::plan::Decision;
use crate::report::{UnitOutcome, UnitReport};
use crate::target::{TargetSystem, TransactionalTarget};

/// How a unit's change reaches its target, with the target it needs for that.
#[derive(Clone)]
pub enum Route {
    /// `TX_SHARED`: in a transaction of the audit store's database, together with its audit row;
    /// with the named target whose dependencies the unit takes, when it names the store's
    /// database as a target.
    Shared(Option<Arc<dyn TargetSystem>>),
    /// `TX_SEPARATE`: in a transaction of another database, together with a marker row.
    Separate(SeparateTarget),
    /// `NON_TX`: without a transaction, on this target (none: the audit store's database, for a
    /// unit that says `transactional = false`).
    NonTransactional(Option<Arc<dyn TargetSystem>>),
}

impl Route {
    /// The strategy this route stands for.
    pub fn strategy(&self) -> TxStrategy {
        match self {
            Route::Shared(_) => TxStrategy::Shared,
            Route::Separate(_) => TxStrategy::Separate,
            Route::NonTransactional(_) => TxStrategy::NonTransactional,
        }
    }

    /// The target system, when it is not the audit store's database.
    pub fn target(&self) -> Option<&Arc<dyn TargetSystem>> {
        match self {
            Route::Shared(None) | Route::NonTransactional(None) => None,
            Route::Separate(separate) => Some(&separate.system),
            Route::Shared(Some(target)) | Route::NonTransactional(Some(target)) => Some(target),
        }
    }
}

/// A target system known to be transactional: only the engine makes one (`SeparateTarget::new`),
/// after checking, so [`transactional`](Self::transactional) cannot fail.
#[derive(Clone)]
pub struct SeparateTarget {
    system: Arc<dyn TargetSystem>,
}

impl SeparateTarget {
    /// `Some` when `system` has transactions.
    pub(super) fn new(system: Arc<dyn TargetSystem>) -> Option<Self> {
        system.transactional().is_some().then_some(Self { system })
    }

    /// The target's transactions and markers.
    pub fn transactional(&self) -> &dyn TransactionalTarget {
        self.system
            .transactional()
            .expect("SeparateTarget::new admits only targets with transactions")
    }
}

/// One selected unit with everything decided about it before anything runs.
#[derive(Clone)]
pub struct PlannedUnit {
    /// The unit, as registered.
    pub unit: &'static ChangeUnit,
    /// What the run does with it.
    pub decision: Decision,
    /// Its current state in the audit (its newest row), `None` if it never ran.
    pub current: Option<UnitState>,
    /// Its system version is outside the run's range (`system_versions`): the decision is
    /// [`Decision::Skip`] whatever its state, and the report says out of range.
    pub out_of_range: bool,
    pub(super) route: Route,
}

impl PlannedUnit {
    pub(super) fn new(unit: &'static ChangeUnit, route: Route) -> Self {
        Self {
            unit,
            decision: Decision::Apply,
            current: None,
            out_of_range: false,
            route,
        }
    }

    /// The strategy the unit runs with.
    pub fn strategy(&self) -> TxStrategy {
        self.route.strategy()
    }

    /// Whether a run would do anything with this unit.
    pub fn is_pending(&self) -> bool {
        matches!(self.decision, Decision::Apply | Decision::ConsultMarker)
    }

    /// A line of the run's report for this unit.
    pub(super) fn report_line(&self, outcome: UnitOutcome) -> UnitReport {
        UnitReport {
            change_id: self.unit.id.to_owned(),
            order: self.unit.order.to_owned(),
            author: self.unit.author.to_owned(),
            stage: self.unit.stage_name().to_owned(),
            target_system: self.unit.target_name().to_owned(),
            tx_strategy: self.strategy(),
            outcome,
            duration_ms: None,
            error: None,
        }
    }
}

/// The units among `planned` that are blocked, with what a person needs to resolve them.
pub(super) fn blocked_units(planned: &[PlannedUnit]) -> Vec<BlockedUnit> {
    planned
        .iter()
        .filter(|p| p.decision == Decision::Block)
        .map(|p| BlockedUnit {
            change_id: p.unit.id.to_owned(),
            stage: p.unit.stage_name().to_owned(),
            state: p
                .current
                .as_ref()
                .map_or_else(String::new, |s| s.state.to_string()),
            last_error: p.current.as_ref().and_then(|s| s.error.clone()),
        })
        .collect()
}
