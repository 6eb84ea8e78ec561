//! The errors a run can end with. Each says what went wrong, where, and what to do.

use std::fmt;

use crate::model::SourceLocation;
use crate::plan::Selection;
use crate::report::RunReport;
use crate::store::{StoreError, TextLimit};

/// A problem with the registered units themselves, found before anything runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValidationProblem {
    /// Two units have the same id.
    DuplicateId {
        /// The id both have.
        id: String,
        /// Where the first is declared.
        first: SourceLocation,
        /// Where the second is declared.
        second: SourceLocation,
    },
    /// Two units have the same order.
    DuplicateOrder {
        /// The order both have.
        order: String,
        /// The first unit's id.
        first_id: String,
        /// Where the first is declared.
        first: SourceLocation,
        /// The second unit's id.
        second_id: String,
        /// Where the second is declared.
        second: SourceLocation,
    },
    /// A unit's order is empty.
    EmptyOrder {
        /// The unit's id.
        id: String,
        /// Where it is declared.
        location: SourceLocation,
    },
    /// An id or author that a database would store, compare or show otherwise than written
    /// (whitespace at an end, control or invisible characters).
    UnsafeText {
        /// The unit's id.
        id: String,
        /// Which key: `"id"` or `"author"`.
        field: &'static str,
        /// Where the unit is declared.
        location: SourceLocation,
        /// What is wrong, as "must not ..." continues.
        problem: String,
    },
    /// An id, author, order or stage longer than the store's column for it.
    TooLong {
        /// The unit's id.
        id: String,
        /// Which key: `"id"`, `"author"`, `"order"` or `"stage"`.
        field: &'static str,
        /// Where the unit is declared.
        location: SourceLocation,
        /// The value's length, in the limit's unit.
        length: usize,
        /// The longest value the store's column keeps.
        limit: TextLimit,
    },
}

impl fmt::Display for ValidationProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValidationProblem::DuplicateId { id, first, second } => write!(
                f,
                "two change units have id \"{id}\": one at {first}, one at {second}; ids must be unique"
            ),
            ValidationProblem::DuplicateOrder {
                order,
                first_id,
                first,
                second_id,
                second,
            } => write!(
                f,
                "change units \"{first_id}\" ({first}) and \"{second_id}\" ({second}) have the same order \"{order}\"; give each its own order"
            ),
            ValidationProblem::EmptyOrder { id, location } => {
                write!(f, "change unit \"{id}\" at {location} has an empty order")
            }
            ValidationProblem::UnsafeText {
                id,
                field,
                location,
                problem,
            } => write!(
                f,
                "change unit {id:?} at {location}: its {field} must not {problem}"
            ),
            ValidationProblem::TooLong {
                id,
                field,
                location,
                length,
                limit,
            } => write!(
                f,
                "change unit {id:?} at {location}: its {field} is {length} {unit} long, and \
                 the audit store keeps at most {limit}; shorten it",
                unit = match limit {
                    TextLimit::Bytes(_) => "bytes",
                    _ => "characters",
                }
            ),
        }
    }
}

/// A parameter no dependency or transaction can fill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingDependency {
    /// The unit's id.
    pub change_id: String,
    /// Where the unit is declared.
    pub location: SourceLocation,
    /// The method's name (`execute`).
    pub method: &'static str,
    /// The parameter's pattern, as written (`pool`).
    pub parameter: &'static str,
    /// The parameter's type, as written (`&sqlx::PgPool`).
    pub written_type: &'static str,
    /// Why it cannot be filled and what to do.
    pub reason: String,
}

impl fmt::Display for MissingDependency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "change unit \"{}\" ({}): parameter `{}: {}` of `{}`: {}",
            self.change_id,
            self.location,
            self.parameter,
            self.written_type,
            self.method,
            self.reason
        )
    }
}

/// A unit that blocks its stage until a person resolves it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BlockedUnit {
    /// The unit's id.
    pub change_id: String,
    /// The stage it blocks.
    pub stage: String,
    /// Its current audit state (`STARTED`, `FAILED`, `ROLLBACK_FAILED`).
    pub state: String,
    /// The error of its last try, if it recorded one.
    pub last_error: Option<String>,
}

impl fmt::Display for BlockedUnit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "\"{}\" (stage \"{}\") is {}",
            self.change_id, self.stage, self.state
        )?;
        match &self.last_error {
            Some(error) => write!(f, "; last error: {}", error.replace('\n', "; "))?,
            None if self.state == "STARTED" => {
                write!(f, "; it was interrupted, its effect is unknown")?
            }
            None => {}
        }
        write!(
            f,
            "\n    check the target, then: flamingock fix {} --applied --reason \"...\"   (its effect is in place)\n                         or: flamingock fix {} --rolled-back --reason \"...\"   (it is not; the next run applies it again)",
            self.change_id, self.change_id
        )
    }
}

/// Everything a run (or its set-up) can fail with.
///
/// Its `Display` is the message for a person: what went wrong, which unit and where it is
/// declared, and what to do next (often the `flamingock` command to run). Errors raised after
/// units were considered carry the run's [`report`](Self::report).
///
/// ```standalone_crate
/// use flamingock::prelude::*;
/// use flamingock::{Error, ValidationProblem};
///
/// #[change_unit(id = "create-clients", order = "1", author = "ana", transactional = false)]
/// mod create_clients {
///     #[execution]
///     pub fn execute() {}
/// }
///
/// #[change_unit(id = "seed-clients", order = "1", author = "bo", transactional = false)]
/// mod seed_clients {
///     #[execution]
///     pub fn execute() {}
/// }
///
/// fn main() {
///     // `validate()` checks the units without a database; a run checks the same first.
///     let error = flamingock::validate().expect_err("two units have order 1");
///     let Error::Validation(problems) = &error else { panic!("{error}") };
///     assert!(matches!(problems[..], [ValidationProblem::DuplicateOrder { .. }]));
///     let message = error.to_string();
///     assert!(message.contains("\"create-clients\"") && message.contains("\"seed-clients\""));
///     eprintln!("error: {error}");
/// }
/// ```
///
/// `Debug` prints the same text as `Display` (see the `impl Debug` below), so that
/// `fn main() -> Result<(), flamingock::Error>` shows a failure as a person reads it.
#[derive(thiserror::Error)]
pub enum Error {
    /// The registered units are inconsistent; nothing ran.
    #[error("{}", list("invalid change units; nothing ran", .0))]
    Validation(Vec<ValidationProblem>),

    /// A unit names a target system the run does not know; nothing ran.
    #[error(
        "change unit \"{change_id}\" ({location}) names target system \"{target}\", which is not registered; known target systems: {}",
        known.join(", ")
    )]
    UnknownTarget {
        /// The unit's id.
        change_id: String,
        /// Where the unit is declared.
        location: SourceLocation,
        /// The name it gives in `target_system = "..."`.
        target: String,
        /// The names of the target systems the builder has.
        known: Vec<String>,
    },

    /// A transactional unit on the default target, and an audit store that shares no
    /// transaction with units (the Flamingock server); nothing ran, nothing was written.
    #[error(
        "change unit \"{change_id}\" ({location}) is transactional on the default target, and {reason}; nothing ran"
    )]
    NoSharedTransaction {
        /// The unit's id.
        change_id: String,
        /// Where the unit is declared.
        location: SourceLocation,
        /// Why the store shares no transaction, and what to do instead.
        reason: String,
    },

    /// Some parameters of pending units cannot be injected; nothing ran.
    #[error("{}", list("missing dependencies; nothing ran", .0))]
    MissingDependencies(Vec<MissingDependency>),

    /// The run selected no change unit, which is almost always a mistake (units in a library
    /// crate the program never names, or a stage or module selection that matches nothing);
    /// nothing ran. `Flamingock::builder().allow_no_units()` accepts such a run.
    #[error("{}", no_units_message(*.registered, .selection, .empty_crates))]
    NoUnitsSelected {
        /// How many units this program registers, selected or not.
        registered: usize,
        /// The selection that matched none of them (empty: everything).
        selection: Selection,
        /// Crates named with `.units(..)` that declare no registered unit.
        empty_crates: Vec<String>,
    },

    /// A validate-only run (`validate_only`, `FLAMINGOCK_VALIDATE_ONLY=1`) found units pending or
    /// blocked; nothing was applied or written.
    #[error(
        "validate-only run: not up to date, nothing was applied\n{check}\n(apply them with a \
         normal run, e.g. the program's `apply` command; blocked units need `fix` first)"
    )]
    PendingUnits {
        /// What the run found.
        check: Box<crate::engine::PendingCheck>,
    },

    /// The audit store failed.
    #[error(transparent)]
    Store(#[from] StoreError),

    /// Another tool's history could not be imported; nothing was imported.
    #[error(transparent)]
    Import(#[from] crate::import::ImportError),

    /// A target system failed outside a unit (its marker table, say).
    #[error(transparent)]
    Target(#[from] crate::target::TargetError),

    /// Configuration (environment or builder) is not usable.
    #[error("configuration: {0}")]
    Config(String),

    /// Units need manual intervention; their stage did not run.
    #[error(
        "{}",
        list(
            "manual intervention needed; nothing in the blocked stage ran",
            blocked
        )
    )]
    Blocked {
        /// The units that need a person, each with the `flamingock fix` command to run.
        blocked: Vec<BlockedUnit>,
        /// What the run did before it stopped.
        report: Box<RunReport>,
    },

    /// Applied units changed since they were applied (their checksum is not the one the audit
    /// recorded); nothing ran. `DriftPolicy::Warn` lets such a run go on.
    #[error(
        "{}",
        list(
            "applied change units changed since they were applied; nothing ran",
            drifted
        )
    )]
    Drift {
        /// Each drifted unit, with both checksums and the `flamingock repair` command.
        drifted: Vec<crate::engine::DriftedUnit>,
    },

    /// The lock could not be had in time; nothing ran.
    #[error("{}", lock_timeout_message(holder, *waited, *unanswered))]
    LockTimeout {
        /// Who holds the lock, and until when.
        holder: Box<crate::lock::LockInfo>,
        /// How long this run waited.
        waited: std::time::Duration,
        /// Whether the last try got no answer within the wait: another connection holds the
        /// lock row, or the database's write lock, in an open transaction (a frozen holder), so
        /// removing the row would wait on it too.
        unanswered: bool,
    },

    /// This runner lost its lease during the run and stopped; it wrote nothing after losing it.
    #[error(
        "this runner lost the lock during the run (its lease ended or was taken over) and stopped before \"{change_id}\"; units it had not recorded are left to the instance that holds the lock now, as docs/architecture.md#lock explains\n{report}"
    )]
    LockLost {
        /// The unit the run stopped before.
        change_id: String,
        /// What the run did before it stopped.
        report: Box<RunReport>,
    },

    /// A write's reply was lost and its outcome could not be found out: nothing more was
    /// written for the unit and the run stopped there. The next run decides from the audit (and
    /// the marker), or blocks the unit for a person; it never re-applies on a guess. The lock is
    /// not released but left to end with its lease, so the write has time to land (or not) before
    /// another instance reads the audit.
    #[error(
        "the outcome of change unit \"{change_id}\" is unknown: {failure}\n(the lock this run held is left to end with its lease, so the write can land before another instance reads the audit)\n{report}"
    )]
    InDoubt {
        /// The unit whose outcome is unknown.
        change_id: String,
        /// The write that failed, with its cause as `source()`.
        #[source]
        failure: Box<crate::engine::UnitFailure>,
        /// What the run did before it stopped.
        report: Box<RunReport>,
    },
    /// A unit failed; the run stopped there.
    #[error("change unit \"{change_id}\" failed: {failure}\n{report}")]
    UnitFailed {
        /// The unit that failed.
        change_id: String,
        /// What went wrong, with its cause as `source()`.
        #[source]
        failure: Box<crate::engine::UnitFailure>,
        /// What the run did, this unit included (recorded `FAILED`, or rolled back).
        report: Box<RunReport>,
    },
}

impl Error {
    /// The report of the run, for errors raised after units were considered.
    pub fn report(&self) -> Option<&RunReport> {
        match self {
            Error::Blocked { report, .. }
            | Error::UnitFailed { report, .. }
            | Error::InDoubt { report, .. }
            | Error::LockLost { report, .. } => Some(report),
            _ => None,
        }
    }
}

/// `Debug` is `Display`: a run's errors are read by people far more often than by code that
/// inspects their fields (which `match` reaches), and the derived form put a whole report on one
/// line of escaped text where `main() -> Result<(), Error>` prints it.
impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// What [`Error::NoUnitsSelected`] says: what was found, then the likely causes, each with its fix.
fn no_units_message(registered: usize, selection: &Selection, empty_crates: &[String]) -> String {
    let mut text = if registered == 0 {
        "no change units are registered in this program, so a run would do nothing; nothing ran"
            .to_owned()
    } else {
        let mut filters = Vec::new();
        filters.extend(
            selection
                .stages
                .iter()
                .map(|stage| format!("stage \"{stage}\"")),
        );
        filters.extend(
            selection
                .module_prefixes
                .iter()
                .map(|module| format!("module \"{module}\"")),
        );
        format!(
            "none of the {registered} change units registered in this program is selected by {}; nothing ran",
            if filters.is_empty() {
                "the selection".to_owned()
            } else {
                filters.join(" and ")
            }
        )
    };
    if !empty_crates.is_empty() {
        text.push_str(&format!(
            "\n  - named with `.units(..)` but declaring no registered unit: {}",
            empty_crates.join(", ")
        ));
    }
    if registered > 0 {
        text.push_str(
            "\n  - check the stage and module selection (`.stage(..)`, `.module(..)`, or `--stage`, `--module`): a unit's stage is the `stage` of its #[change_unit] (default \"default\"), its module the path it is declared in",
        );
    }
    text.push_str(
        "\n  - units declared in a library crate are registered only if the program names that crate (a dependency nothing names is not linked, and its units with it): put `flamingock::export_units!();` in the library's lib.rs and pass `.units(my_units::change_units())` to `Flamingock::builder()`",
    );
    text.push_str(
        "\n  - if a run with no units is intended: `Flamingock::builder().allow_no_units()`",
    );
    text
}

fn list(title: &str, items: &[impl fmt::Display]) -> String {
    let mut text = format!("{title}:");
    for item in items {
        text.push_str("\n  - ");
        text.push_str(&item.to_string());
    }
    text
}

fn lock_timeout_message(
    holder: &crate::lock::LockInfo,
    waited: std::time::Duration,
    unanswered: bool,
) -> String {
    if unanswered {
        format!(
            "could not take the lock within {waited:?}: the database did not answer, because another connection holds the lock row (or, on SQLite, the database's write lock) in an open transaction; the lease was last held by {holder}. Ending that connection or its process frees the lock (`flamingock lock release --force` would wait on it too)"
        )
    } else {
        format!(
            "could not take the lock within {waited:?}: {holder}. If that runner is gone, its lease ends by itself; if you are sure it is gone, `flamingock lock release --force` removes it now"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_prints_the_same_readable_text_as_display() {
        // What `fn main() -> Result<(), flamingock::Error>` prints: one problem a line.
        let location = SourceLocation {
            module_path: "app::schema",
            file: "src/schema.rs",
            line: 7,
        };
        let error = Error::Validation(vec![
            ValidationProblem::DuplicateId {
                id: "create-clients".into(),
                first: location,
                second: location,
            },
            ValidationProblem::EmptyOrder {
                id: "seed".into(),
                location,
            },
        ]);
        let debug = format!("{error:?}");
        assert_eq!(debug, error.to_string());
        assert_eq!(debug.lines().count(), 3, "{debug}");
        assert!(
            debug.starts_with("invalid change units; nothing ran:\n  - two change units"),
            "{debug}"
        );
        assert!(
            !debug.contains("Validation(") && !debug.contains("\\n"),
            "{debug}"
        );
        assert_eq!(
            format!("{:#?}", Error::Config("x".into())),
            "configuration: x"
        );
    }

    #[test]
    fn the_lock_timeout_names_the_command_that_removes_a_running_lease() {
        let now = chrono::Utc::now();
        let error = Error::LockTimeout {
            holder: Box::new(crate::lock::LockInfo {
                key: "flamingock".into(),
                owner: "runner-1".into(),
                hostname: "host-a".into(),
                acquired_at: now,
                expires_at: now + chrono::Duration::seconds(60),
                expired: false,
            }),
            waited: std::time::Duration::from_secs(180),
            unanswered: false,
        };
        // The lease is running, and plain `lock release` leaves a running lease alone.
        let message = error.to_string();
        assert!(
            message.contains("`flamingock lock release --force` removes it now"),
            "{message}"
        );
        // A holder frozen inside a transaction: removing its row would wait on it too.
        let Error::LockTimeout { holder, waited, .. } = error else {
            unreachable!()
        };
        let frozen = Error::LockTimeout {
            holder,
            waited,
            unanswered: true,
        }
        .to_string();
        assert!(frozen.contains("did not answer"), "{frozen}");
        assert!(frozen.contains("would wait on it too"), "{frozen}");
        assert!(!frozen.contains("removes it now"), "{frozen}");
    }
}
