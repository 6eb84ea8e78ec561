//! Why one try of a unit, or of its rollback, did not end well: the step that failed, the typed
//! cause, and what happened after it (a rollback that failed too, a row that could not be written).

use std::fmt;

use crate::inject::BoxError;
use crate::model::error_chain;

/// A failed try, kept typed until the report renders it.
///
/// `Display` is the whole story as the report and the audit row show it: the step, the cause
/// with its chain, then one line per note. [`source`](std::error::Error::source) gives the cause
/// itself, for code that inspects its type.
#[derive(Debug)]
pub struct UnitFailure {
    step: Option<String>,
    cause: Option<BoxError>,
    notes: Vec<String>,
}

impl UnitFailure {
    /// The unit's own method failed (or panicked) with `cause`.
    pub(crate) fn unit(cause: BoxError) -> Self {
        Self {
            step: None,
            cause: Some(cause),
            notes: Vec::new(),
        }
    }

    /// A step of the engine's failed with `cause`: `step` says which, and what it means.
    pub(crate) fn at(step: impl Into<String>, cause: impl Into<BoxError>) -> Self {
        Self {
            step: Some(step.into()),
            cause: Some(cause.into()),
            notes: Vec::new(),
        }
    }

    /// A failure the engine found itself, with no error underneath.
    pub(crate) fn found(step: impl Into<String>) -> Self {
        Self {
            step: Some(step.into()),
            cause: None,
            notes: Vec::new(),
        }
    }

    /// Adds what happened after the failure, as a line of its own.
    pub(crate) fn note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }
}

impl fmt::Display for UnitFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.step, &self.cause) {
            (Some(step), Some(cause)) => write!(f, "{step}: {}", error_chain(cause.as_ref()))?,
            (Some(step), None) => f.write_str(step)?,
            (None, Some(cause)) => f.write_str(&error_chain(cause.as_ref()))?,
            (None, None) => f.write_str("failed")?,
        }
        for note in &self.notes {
            write!(f, "\n{note}")?;
        }
        Ok(())
    }
}

impl std::error::Error for UnitFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause
            .as_deref()
            .map(|cause| cause as &(dyn std::error::Error + 'static))
    }
}

/// What one try came to: the outcome, and the failure when it did not end well.
pub(super) struct Tried<O> {
    pub(super) outcome: O,
    pub(super) failure: Option<UnitFailure>,
}

impl<O> Tried<O> {
    pub(super) fn ok(outcome: O) -> Self {
        Self {
            outcome,
            failure: None,
        }
    }

    pub(super) fn failed(outcome: O, failure: UnitFailure) -> Self {
        Self {
            outcome,
            failure: Some(failure),
        }
    }
}
