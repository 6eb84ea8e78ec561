//! The warm start: a run plans from the summary its store keeps beside the audit when that summary
//! is current, and reads every unit's state only when it is not; a run that ends with every unit
//! in place writes the summary again (docs/architecture.md#the-warm-starts-summary).

use std::collections::HashMap;
use std::time::Duration;

use super::{Engine, PlannedUnit};
use crate::error::Error;
use crate::lock::{Acquisition, Fence};
use crate::model::ChangeUnit;
use crate::plan::{Decision, decide};
use crate::summary::{PlanDigest, SummaryWrite};

/// The longest lease a start takes only to write a summary (a start killed meanwhile keeps others
/// waiting no longer than this).
const SUMMARY_LEASE: Duration = Duration::from_secs(15);

/// Where a plan's states came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Source {
    /// A current summary: the applied units' states were not read.
    Summary,
    /// Every unit's state, read from the audit.
    States,
}

impl Engine {
    /// Plans `units` from the store's summary when it is current, from every unit's state
    /// otherwise. A unit planned from the summary that does not run always is skipped with no
    /// `current` state: the summary says it is applied, unchanged, and nothing more of it is
    /// read. Units that run always get the state the summary keeps for them.
    pub(super) async fn plan_summary_first(
        &self,
        units: &[&'static ChangeUnit],
    ) -> Result<(Vec<PlannedUnit>, Source), Error> {
        let mut planned = self.routed(units.iter().copied())?;
        let digest = PlanDigest::of(planned.iter().map(|p| p.unit));
        let summary = match self.store.current_summary(&digest).await {
            Ok(summary) => summary,
            Err(error) => {
                // No summary table yet (made by an earlier release), or a store that cannot be
                // read: the full read below says what is wrong, if anything is.
                tracing::debug!(%error, "no summary to plan from; reading every unit's state");
                None
            }
        };
        let Some(summary) = summary else {
            let states = self.read_states().await?;
            self.decide_from(&mut planned, states);
            return Ok((planned, Source::States));
        };
        tracing::debug!(covers = summary.covers, "planning from the audit's summary");
        let mut run_always: HashMap<String, _> = summary
            .run_always
            .into_iter()
            .map(|state| (state.change_id.clone(), state))
            .collect();
        for unit in &mut planned {
            if unit.unit.run_always {
                unit.current = run_always.remove(unit.unit.id);
                unit.decision = decide(
                    unit.strategy(),
                    unit.unit.recovery,
                    true,
                    unit.current.as_ref().map(|s| s.state),
                );
            } else {
                unit.current = None;
                unit.decision = Decision::Skip;
            }
            if !self.options.selection.in_version_range(unit.unit) {
                unit.out_of_range = true;
                unit.decision = Decision::Skip;
            }
        }
        Ok((planned, Source::Summary))
    }

    /// After a run that ended well under `fence`'s lease: the plan's summary, written again to
    /// cover what the run wrote. A failure is logged, never the run's: the next start reads every
    /// unit's state instead.
    pub(super) async fn keep_summary(&self, planned: &[PlannedUnit], fence: &Fence) {
        if !self.store.keeps_summaries() {
            return;
        }
        let digest = PlanDigest::of(planned.iter().map(|p| p.unit));
        crate::failpoint!("summary.before_write");
        log_summary(self.store.record_summary(&digest, fence).await);
    }

    /// After a start that found every unit in place by reading their states, without the lock:
    /// the summary written, so that the next start reads one row. Only where the states read show
    /// the plan in place (not on drift), on a store that keeps summaries, and only if the lock
    /// is free right now (a holder's run writes it itself).
    pub(super) async fn refresh_summary(&self, planned: &[PlannedUnit]) {
        if self.options.validate_only || !self.store.keeps_summaries() {
            return;
        }
        let Some(lock) = self.store.lock() else {
            return;
        };
        let digest = PlanDigest::of(planned.iter().map(|p| p.unit));
        let states = planned
            .iter()
            .filter_map(|p| Some((p.unit.id.to_owned(), p.current.clone()?)))
            .collect();
        if digest.establish(&states).is_none() {
            return;
        }
        if let Err(error) = self.initialize().await {
            tracing::debug!(%error, "the summary is not written: the store's tables could not be made");
            return;
        }
        let fence = Fence {
            key: self.lock_options.key.clone(),
            owner: self.runner_id.clone(),
        };
        let lease = self.lock_options.lease.min(SUMMARY_LEASE);
        match lock.try_acquire(&fence, &self.hostname, lease).await {
            Ok(Acquisition::Acquired) => {}
            Ok(Acquisition::Held(holder)) => {
                tracing::debug!(holder = %holder.owner, "the summary is not written: the lock is held");
                return;
            }
            Err(error) => {
                tracing::debug!(%error, "the summary is not written: the lock could not be taken");
                return;
            }
        }
        log_summary(self.store.record_summary(&digest, &fence).await);
        if let Err(error) = lock.release(&fence).await {
            tracing::warn!(%error, "could not release the lock taken to write the summary; it ends with its lease");
        }
    }
}

/// Logs what writing a summary came to.
fn log_summary(written: Result<SummaryWrite, crate::store::StoreError>) {
    match written {
        Ok(SummaryWrite::Written { covers }) => {
            tracing::debug!(covers, "wrote the audit's summary")
        }
        Ok(SummaryWrite::NotEstablished) => {
            tracing::debug!("the audit does not show every unit in place: no summary written")
        }
        Ok(SummaryWrite::Busy) => {
            tracing::debug!("the audit table was busy: no summary written")
        }
        Ok(SummaryWrite::Unsupported) => {}
        Err(error) => {
            tracing::warn!(%error, "could not write the audit's summary; the next start reads every unit's state")
        }
    }
}
