//! Planning: which registered units a run considers, in what order, and what it does with each.

use std::cmp::Ordering;
use std::collections::HashMap;

use crate::error::ValidationProblem;
use crate::model::{AuditState, ChangeUnit, RecoveryStrategy, TxStrategy};
use crate::store::{StoreLimits, TextLimit};

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
    /// Run the stages in the order [`stages`](Self::stages) lists them (every unit of the first,
    /// then of the second, ...), each in its units' order; `false`: every selected unit in one
    /// order, whatever its stage.
    pub ordered_stages: bool,
    /// Only units whose `system_version` is in this range (`>=1.2.0, <2.0.0`); the others are
    /// out of range: reported, never applied or blocked. Units without a system version are
    /// always in range. `None`: every version.
    pub system_versions: Option<semver::VersionReq>,
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

impl Selection {
    /// Whether `unit`'s system version is in [`system_versions`](Self::system_versions) (a unit
    /// without one always is; one whose version does not parse never is).
    pub fn in_version_range(&self, unit: &ChangeUnit) -> bool {
        match (&self.system_versions, unit.system_version) {
            (None, _) | (Some(_), None) => true,
            (Some(range), Some(version)) => {
                semver::Version::parse(version).is_ok_and(|version| range.matches(&version))
            }
        }
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
        for (field, value) in [("id", unit.id), ("author", unit.author)] {
            if let Some(problem) = text_problem(field, value) {
                problems.push(ValidationProblem::UnsafeText {
                    id: unit.id.to_owned(),
                    field,
                    location: unit.source,
                    problem,
                });
            }
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    if selection.ordered_stages {
        // Stable: within a stage, the units keep their order.
        selected.sort_by_key(|unit| {
            selection
                .stages
                .iter()
                .position(|stage| stage == unit.stage_name())
        });
    }
    Ok(selected)
}

/// What is wrong with an id or author, as "must not ..." continues; `None` when nothing is.
/// `#[change_unit]` applies the same rule at compile time; this catches units built in code.
///
/// Neither may start or end with whitespace (MariaDB pads trailing spaces, so `"a "` and `"a"`
/// would be one unit there) nor hold control characters; an id may hold no whitespace but plain
/// spaces and no invisible or direction-changing characters, which show in a terminal otherwise
/// than they compare in a database.
///
/// ```
/// use flamingock_core::plan::text_problem;
/// assert!(text_problem("id", "create-clients").is_none());
/// assert!(text_problem("id", "trail ").is_some());
/// assert!(text_problem("id", "add-\u{202E}users").is_some());
/// assert!(text_problem("author", "ana\n").is_some());
/// ```
pub fn text_problem(field: &str, value: &str) -> Option<String> {
    if value.starts_with(char::is_whitespace) || value.ends_with(char::is_whitespace) {
        return Some(
            "start or end with whitespace: MariaDB pads trailing spaces, so \"a \" and \"a\" \
             would be one unit there"
                .to_owned(),
        );
    }
    let is_id = field == "id";
    let bad = value.chars().find(|&c| {
        c.is_control() || (is_id && ((c.is_whitespace() && c != ' ') || is_invisible(c)))
    })?;
    Some(format!(
        "hold the invisible or control character U+{:04X}: it shows in a terminal otherwise than \
         it compares in the database",
        u32::from(bad)
    ))
}

/// Format characters that change how text shows without showing themselves: zero-width ones,
/// direction marks, embeddings, overrides and isolates, the byte-order mark.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{FEFF}'
    )
}

/// Checks the units' ids, authors, orders and stages against the store's column sizes
/// ([`AuditStore::limits`](crate::store::AuditStore::limits)), so that a value too long is refused
/// before anything runs, not by the database after the unit's work is done.
pub fn check_limits(
    units: &[&ChangeUnit],
    limits: &StoreLimits,
) -> Result<(), Vec<ValidationProblem>> {
    let mut problems = Vec::new();
    for unit in units {
        let fields = [
            ("id", unit.id, limits.change_id),
            ("author", unit.author, limits.author),
            ("order", unit.order, limits.order),
            ("stage", unit.stage_name(), limits.stage),
        ];
        for (field, value, limit) in fields {
            if !limit.admits(value) {
                problems.push(ValidationProblem::TooLong {
                    id: unit.id.to_owned(),
                    field,
                    location: unit.source,
                    length: match limit {
                        TextLimit::Bytes(_) => value.len(),
                        _ => value.chars().count(),
                    },
                    limit,
                });
            }
        }
    }
    if problems.is_empty() {
        Ok(())
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
        // The marker is the truth about a separate target, retry or not: a try that committed
        // there is recorded, never run again.
        S::Failed | S::Started if strategy == TxStrategy::Separate => Decision::ConsultMarker,
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

    fn unit(id: &'static str, author: &'static str, order: &'static str) -> &'static ChangeUnit {
        crate::testing::UnitBuilder::new(id, order, author)
            .execute_sync(|_| Ok(()))
            .build()
    }

    #[test]
    fn ids_and_authors_a_database_would_read_otherwise_are_refused() {
        let bad = [
            unit("trail ", "ana", "1"),
            unit(" lead", "ana", "2"),
            unit("tab\tinside", "ana", "3"),
            unit("no\u{00A0}break", "ana", "4"),
            unit("add-\u{202E}users", "ana", "5"),
            unit("zero\u{200B}width", "ana", "6"),
            unit("ok-id", "ana\n", "7"),
            unit("ok-id-2", "\u{2003}ana", "8"),
            unit("ok-id-3", "a\u{1B}[31mna", "9"),
        ];
        let problems = order_units(bad, &Selection::default()).expect_err("all are refused");
        assert_eq!(problems.len(), bad.len(), "{problems:?}");
        assert!(
            problems
                .iter()
                .all(|p| matches!(p, ValidationProblem::UnsafeText { .. })),
            "{problems:?}"
        );
        let message = problems[0].to_string();
        assert!(
            message.contains("\"trail \"") && message.contains("whitespace"),
            "{message}"
        );
        let good = [
            unit("create clients", "Ana María", "1"),
            unit("ünïcødé-日本", "ana", "2"),
        ];
        assert_eq!(
            order_units(good, &Selection::default())
                .expect("fine")
                .len(),
            2
        );
    }

    #[test]
    fn values_longer_than_the_store_keeps_are_refused() {
        let long_id: &'static str = Box::leak("x".repeat(256).into_boxed_str());
        let wide_author: &'static str = Box::leak("ä".repeat(3).into_boxed_str());
        let units = [unit(long_id, "ana", "1"), unit("fits", wide_author, "2")];
        let limits = StoreLimits {
            change_id: TextLimit::Chars(255),
            author: TextLimit::Bytes(5),
            ..StoreLimits::NONE
        };
        let problems = check_limits(&units, &limits).expect_err("both too long");
        assert_eq!(
            problems
                .iter()
                .map(|p| match p {
                    ValidationProblem::TooLong { field, length, .. } => (*field, *length),
                    other => panic!("{other}"),
                })
                .collect::<Vec<_>>(),
            [("id", 256), ("author", 6)]
        );
        let message = problems[0].to_string();
        assert!(
            message.contains("256 characters long") && message.contains("at most 255 characters"),
            "{message}"
        );
        assert!(
            problems[1].to_string().contains("6 bytes long"),
            "{problems:?}"
        );
        check_limits(&units, &StoreLimits::NONE).expect("no limits");
    }

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
            (Separate, retry, Some(S::Started), ConsultMarker),
            (Separate, retry, Some(S::Failed), ConsultMarker),
            (Separate, retry, Some(S::RollbackFailed), Apply),
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
