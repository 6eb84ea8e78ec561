//! Run listeners: what a service's own monitoring is told while a run goes (run started, each
//! unit started and finished with its outcome and duration, run finished or failed).
//!
//! A listener is called on the engine's task, in the order the listeners were added, and must
//! return quickly: one that has slow work to do (posting to a webhook) hands the event to a task
//! of its own, as the facade's `WebhookListener` does. A listener that returns an error
//! or panics is logged and skipped; it never changes what the run does or how it ends.
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use flamingock_core::listener::{ListenerError, RunEvent, RunListener};
//!
//! /// Counts the units each run applied.
//! #[derive(Default)]
//! struct Applied(Mutex<usize>);
//!
//! impl RunListener for Applied {
//!     fn on_event(&self, event: &RunEvent) -> Result<(), ListenerError> {
//!         if let RunEvent::UnitFinished { unit, .. } = event {
//!             if unit.outcome == flamingock_core::UnitOutcome::Applied {
//!                 *self.0.lock().map_err(|_| "poisoned")? += 1;
//!             }
//!         }
//!         Ok(())
//!     }
//! }
//! let listener: Arc<dyn RunListener> = Arc::new(Applied::default());
//! # let _ = listener;
//! ```

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;

use crate::model::TxStrategy;
use crate::report::{RunReport, UnitReport};

/// What a listener may return when it could not handle an event: logged, and the run goes on.
pub type ListenerError = Box<dyn std::error::Error + Send + Sync>;

/// Something that happened in a run. `Serialize` gives the JSON a webhook receives: an object
/// with an `"event"` field naming the variant in snake case (`"unit_finished"`) beside the
/// variant's fields.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum RunEvent {
    /// The run made its plan (under the lock when there was work) and starts on the units.
    RunStarted {
        /// The run's id, on every audit row it writes.
        execution_id: String,
        /// The runner (one engine) that runs.
        runner_id: String,
        /// How many units the run considers.
        units: usize,
        /// How many of them are pending (will be applied, or looked at, by this run).
        pending: usize,
    },
    /// A unit is about to be applied (or its earlier outcome found out).
    UnitStarted {
        /// The run's id.
        execution_id: String,
        /// The unit's id.
        change_id: String,
        /// The unit's order.
        order: String,
        /// The unit's target system.
        target_system: String,
        /// How it runs.
        tx_strategy: TxStrategy,
        /// Which try this is (1 for the first).
        attempt: u32,
    },
    /// A unit's line of the report is settled: applied, already applied (skipped), failed,
    /// rolled back, blocked, in doubt or not reached, with the time it took.
    UnitFinished {
        /// The run's id.
        execution_id: String,
        /// The unit's report line: its outcome, duration and error.
        unit: UnitReport,
    },
    /// The run ended with every unit in place.
    RunFinished {
        /// The run's report.
        report: RunReport,
    },
    /// The run stopped: a unit failed or is blocked or in doubt, the lock was lost or not to be
    /// had, or the run could not start.
    RunFailed {
        /// The run's id.
        execution_id: String,
        /// The error, as the run returns it (message and causes).
        error: String,
        /// The run's report, when it got as far as making one.
        report: Option<RunReport>,
    },
}

impl RunEvent {
    /// The event's name, as in its JSON `"event"` field.
    pub fn name(&self) -> &'static str {
        match self {
            RunEvent::RunStarted { .. } => "run_started",
            RunEvent::UnitStarted { .. } => "unit_started",
            RunEvent::UnitFinished { .. } => "unit_finished",
            RunEvent::RunFinished { .. } => "run_finished",
            RunEvent::RunFailed { .. } => "run_failed",
        }
    }
}

/// Told of every [`RunEvent`] of the runs of the engine it is added to
/// (`Engine::with_listener`, the builder's `.listener(..)`).
#[async_trait]
pub trait RunListener: Send + Sync {
    /// Handles one event. Called on the run's task: return quickly. An error (or a panic) is
    /// logged and changes nothing in the run.
    fn on_event(&self, event: &RunEvent) -> Result<(), ListenerError>;

    /// Called once the run has ended (after `RunFinished` or `RunFailed`), before the run
    /// returns: a listener that delivers events on a task of its own waits here until they
    /// are delivered (or given up), so a process that exits right after its run loses none.
    /// The run waits at most [`FLUSH_LIMIT`] for it. Does nothing by default.
    async fn flush(&self) {}
}

/// The longest a run waits for its listeners' [`RunListener::flush`] at its end.
pub const FLUSH_LIMIT: Duration = Duration::from_secs(30);

#[async_trait]
impl<F> RunListener for F
where
    F: Fn(&RunEvent) -> Result<(), ListenerError> + Send + Sync,
{
    fn on_event(&self, event: &RunEvent) -> Result<(), ListenerError> {
        self(event)
    }
}

/// The listeners of one engine, called in order.
#[derive(Clone, Default)]
pub(crate) struct Listeners(Vec<Arc<dyn RunListener>>);

impl Listeners {
    pub(crate) fn push(&mut self, listener: Arc<dyn RunListener>) {
        self.0.push(listener);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Tells every listener of the event `make` builds (built only when there are listeners).
    /// A listener's error or panic is logged; the others are still told.
    pub(crate) fn emit(&self, make: impl FnOnce() -> RunEvent) {
        if self.is_empty() {
            return;
        }
        let event = make();
        for (index, listener) in self.0.iter().enumerate() {
            match catch_unwind(AssertUnwindSafe(|| listener.on_event(&event))) {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::warn!(
                    listener = index,
                    event = event.name(),
                    error = %crate::model::error_chain(error.as_ref()),
                    "a run listener failed; the run goes on"
                ),
                Err(panic) => tracing::warn!(
                    listener = index,
                    event = event.name(),
                    panic = panic_message(panic.as_ref()),
                    "a run listener panicked; the run goes on"
                ),
            }
        }
    }
}

impl Listeners {
    /// Waits for every listener's [`RunListener::flush`], each on a task of its own (a panic
    /// in one is logged) and at most [`FLUSH_LIMIT`] in all.
    pub(crate) async fn flush(&self) {
        if self.is_empty() {
            return;
        }
        let flushes: Vec<_> = self
            .0
            .iter()
            .map(|listener| {
                let listener = Arc::clone(listener);
                tokio::spawn(async move { listener.flush().await })
            })
            .collect();
        let all = async {
            for (index, flush) in flushes.into_iter().enumerate() {
                if let Err(error) = flush.await {
                    tracing::warn!(listener = index, %error, "a run listener's flush failed");
                }
            }
        };
        if tokio::time::timeout(FLUSH_LIMIT, all).await.is_err() {
            tracing::warn!(
                limit_s = FLUSH_LIMIT.as_secs(),
                "run listeners still flushing after the limit; the run returns without them"
            );
        }
    }
}

impl std::fmt::Debug for Listeners {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} listener(s)", self.0.len())
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(not a string)")
}
