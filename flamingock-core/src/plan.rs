//! Planning: which registered units a run considers, in what order, and what it does with each.

use std::cmp::Ordering;
use std::collections::HashMap;

use crate::error::ValidationProblem;
use crate::model::{AuditState, ChangeUnit, RecoveryStrategy, TxStrategy};

/// Compares two order strings "naturally": runs of digits compare as numbers, so `"2" < "10"` and
/// `"v1.9" < "v1.10"`; everything else compares character by character. Leading zeros do not
/// change a number's value: `"0002"` and `"2"` differ only in spelling, which decides (shorter
/// first) when nothing else does.
///
/// ```
/// use std::cmp::Ordering;
/// use flamingock_core::plan::natural_cmp;
/// assert_eq!(natural_cmp("2", "10"), Ordering::Less);
/// assert_eq!(natural_cmp("0010", "9"), Ordering::Greater);
/// assert_eq!(natural_cmp("a-2", "a-10"), Ordering::Less);
/// ```
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    compare(a, b, true)
}

/// Whether two orders name the same position (`"2"`, `"02"` and `"002"` do): such units would run
/// in an order nobody chose, so planning refuses them.
pub fn same_order(a: &str, b: &str) -> bool {
    compare(a, b, false) == Ordering::Equal
}

fn compare(a: &str, b: &str, by_spelling: bool) -> Ordering {
    let (mut a, mut b) = (a, b);
    // "01" and "1" are the same number: their spelling only decides when all else is equal.
    let mut spelling = Ordering::Equal;
    loop {
        match (a.chars().next(), b.chars().next()) {
            (None, None) if by_spelling => return spelling,
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let (digits_a, rest_a) = split_digits(a);
                let (digits_b, rest_b) = split_digits(b);
                let (value_a, value_b) = (
                    digits_a.trim_start_matches('0'),
                    digits_b.trim_start_matches('0'),
                );
                let by_value = value_a
                    .len()
                    .cmp(&value_b.len())
                    .then_with(|| value_a.cmp(value_b));
                if by_value != Ordering::Equal {
                    return by_value;
                }
                spelling = spelling.then(digits_a.len().cmp(&digits_b.len()));
                (a, b) = (rest_a, rest_b);
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(&y);
                }
                (a, b) = (&a[x.len_utf8()..], &b[y.len_utf8()..]);
            }
        }
    }
}

fn split_digits(s: &str) -> (&str, &str) {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    s.split_at(end)
}

/// Which registered units a run considers. Empty lists select everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// Only units of these stages.
    pub stages: Vec<String>,
    /// Only units whose `module_path!()` is one of these modules or lies below one.
    pub module_prefixes: Vec<String>,
}

impl Selection {
    /// Whether `unit` is selected.
    pub fn includes(&self, unit: &ChangeUnit) -> bool {
        let stage_ok = self.stages.is_empty() || self.stages.iter().any(|s| s == unit.stage_name());
        let module_ok = self.module_prefixes.is_empty()
            || self
                .module_prefixes
                .iter()
                .any(|prefix| module_is_within(unit.source.module_path, prefix));
        stage_ok && module_ok
    }
}

/// `a::b::c` lies within `a::b` and `a::b::c`, not within `a::bc`.
fn module_is_within(module: &str, prefix: &str) -> bool {
    let prefix = prefix.trim_end_matches("::");
    module == prefix
        || module
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with("::"))
}

/// Selects, validates and orders units: duplicate ids or orders among the selected units are
/// reported together, each naming both source locations.
pub fn order_units(
    units: impl IntoIterator<Item = &'static ChangeUnit>,
    selection: &Selection,
) -> Result<Vec<&'static ChangeUnit>, Vec<ValidationProblem>> {
    let mut selected: Vec<&'static ChangeUnit> = units
        .into_iter()
        .filter(|u| selection.includes(u))
        .collect();
    // A stable order for reporting duplicates, whatever order inventory yields.
    selected.sort_by(|a, b| {
        natural_cmp(a.order, b.order)
            .then_with(|| a.id.cmp(b.id))
            .then_with(|| a.source.file.cmp(b.source.file))
            .then_with(|| a.source.line.cmp(&b.source.line))
    });

    let mut problems = Vec::new();
    let mut by_id: HashMap<&str, &ChangeUnit> = HashMap::new();
    for unit in &selected {
        if let Some(first) = by_id.insert(unit.id, unit) {
            problems.push(ValidationProblem::DuplicateId {
                id: unit.id.to_owned(),
                first: first.source,
                second: unit.source,
            });
        }
    }
    for pair in selected.windows(2) {
        if same_order(pair[0].order, pair[1].order) {
            problems.push(ValidationProblem::DuplicateOrder {
                order: pair[1].order.to_owned(),
                first_id: pair[0].id.to_owned(),
                first: pair[0].source,
                second_id: pair[1].id.to_owned(),
                second: pair[1].source,
            });
        }
    }
    for unit in &selected {
        if unit.order.trim().is_empty() {
            problems.push(ValidationProblem::EmptyOrder {
                id: unit.id.to_owned(),
                location: unit.source,
            });
        }
    }
    if problems.is_empty() {
        Ok(selected)
    } else {
        Err(problems)
    }
}

/// What a run does with one unit, given its current state (the decision table of docs/architecture.md#decision-table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Run it.
    Apply,
    /// Its effect is in place.
    Skip,
    /// Ask the target's marker whether the last try committed (`TX_SEPARATE`).
    ConsultMarker,
    /// Manual intervention: nothing in its stage runs.
    Block,
}

/// The decision table of docs/architecture.md#decision-table (its test below is the table).
pub fn decide(
    strategy: TxStrategy,
    recovery: RecoveryStrategy,
    run_always: bool,
    current: Option<AuditState>,
) -> Decision {
    use AuditState as S;
    let Some(state) = current else {
        return Decision::Apply;
    };
    if run_always {
        return Decision::Apply;
    }
    match state {
        S::RolledBack | S::ManualMarkedAsRolledBack => Decision::Apply,
        S::Applied | S::ManualMarkedAsApplied => Decision::Skip,
        _ if recovery == RecoveryStrategy::AlwaysRetry => Decision::Apply,
        S::Failed | S::Started => match strategy {
            TxStrategy::Shared => Decision::Apply,
            TxStrategy::Separate => Decision::ConsultMarker,
            TxStrategy::NonTransactional => Decision::Block,
        },
        S::RollbackFailed | S::RollbackStarted => Decision::Block,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order_compares_digit_runs_as_numbers() {
        let mut orders = vec!["10", "2", "1", "001a", "1b", "v1.10", "v1.9", "0003"];
        orders.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            orders,
            ["1", "001a", "1b", "2", "0003", "10", "v1.9", "v1.10"]
        );
        assert_eq!(natural_cmp("0002", "2"), Ordering::Greater);
        assert_eq!(natural_cmp("abc", "abc"), Ordering::Equal);
        assert!(same_order("0002", "2"));
        assert!(!same_order("2", "20"));
        assert_eq!(
            natural_cmp("99999999999999999999999", "100000000000000000000000"),
            Ordering::Less
        );
    }

    #[test]
    fn module_prefix_matches_whole_path_segments() {
        assert!(module_is_within("app::billing::units", "app::billing"));
        assert!(module_is_within("app::billing", "app::billing"));
        assert!(module_is_within("app::billing", "app::billing::"));
        assert!(!module_is_within("app::billing_v2", "app::billing"));
    }

    #[test]
    fn decision_table_matches_the_design() {
        use AuditState as S;
        use Decision::*;
        use TxStrategy::*;
        let manual = RecoveryStrategy::ManualIntervention;
        let retry = RecoveryStrategy::AlwaysRetry;
        let cases = [
            (Shared, manual, None, Apply),
            (NonTransactional, manual, Some(S::RolledBack), Apply),
            (Separate, manual, Some(S::ManualMarkedAsRolledBack), Apply),
            (Shared, manual, Some(S::Applied), Skip),
            (
                NonTransactional,
                retry,
                Some(S::ManualMarkedAsApplied),
                Skip,
            ),
            (Shared, manual, Some(S::Failed), Apply),
            (Separate, manual, Some(S::Failed), ConsultMarker),
            (NonTransactional, manual, Some(S::Failed), Block),
            (NonTransactional, retry, Some(S::Failed), Apply),
            (Separate, manual, Some(S::Started), ConsultMarker),
            (NonTransactional, manual, Some(S::Started), Block),
            (NonTransactional, retry, Some(S::Started), Apply),
            (Shared, manual, Some(S::RollbackFailed), Block),
            (Separate, manual, Some(S::RollbackFailed), Block),
            (NonTransactional, manual, Some(S::RollbackFailed), Block),
            (NonTransactional, retry, Some(S::RollbackFailed), Apply),
            (Shared, manual, Some(S::RollbackStarted), Block),
            (Separate, manual, Some(S::RollbackStarted), Block),
            (NonTransactional, manual, Some(S::RollbackStarted), Block),
            (NonTransactional, retry, Some(S::RollbackStarted), Apply),
        ];
        for (strategy, recovery, state, expected) in cases {
            assert_eq!(
                decide(strategy, recovery, false, state),
                expected,
                "{strategy:?} {recovery:?} {state:?}"
            );
        }
        assert_eq!(
            decide(NonTransactional, manual, true, Some(S::Applied)),
            Apply
        );
    }
}
