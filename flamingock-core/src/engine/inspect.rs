//! Read-only checks for operators: what `flamingock plan` shows besides each unit's decision.

use super::{Engine, PlannedUnit};
use crate::error::Error;
use crate::model::ChangeUnit;
use crate::plan::order_units;

impl Engine {
    /// Checks a plan the way [`run`](Self::run) does before the first unit runs: every parameter
    /// of every pending unit (and of its rollback) can be filled, and no applied unit drifted
    /// (unless the drift policy is to warn). Writes nothing.
    pub fn check_plan(&self, planned: &[PlannedUnit]) -> Result<(), Error> {
        self.check_dependencies(planned)?;
        self.refuse_drift(planned).map(drop)
    }

    /// Checks `units` as this engine selects them (stage, module): duplicate ids or orders, each
    /// named with both source locations. Touches no database. Returns the selected units in order.
    pub fn validate(
        &self,
        units: impl IntoIterator<Item = &'static ChangeUnit>,
    ) -> Result<Vec<&'static ChangeUnit>, Error> {
        let ordered = order_units(units, &self.options.selection).map_err(Error::Validation)?;
        crate::plan::check_limits(&ordered, &self.store.limits()).map_err(Error::Validation)?;
        Ok(ordered)
    }
}
