//! Leaf: the audit table's columns, defined once. [`AUDIT_COLUMNS`] says, for each column in
//! table order, how it is written; from it come the column list every insert names
//! ([`insert_columns`]), its values in a dialect's spelling ([`insert_values`]), the binds of an
//! [`AuditEntry`] in that same order ([`bind_entry`], [`bind_fenced`]), the check that a table is
//! ours ([`first_shape_column_names`], and [`ADDED_COLUMNS`], those a table of an earlier shape
//! gets in place) and the columns reads take as stored ([`plain_columns`]); and
//! [`counts_as_try_condition`], the one condition every dialect counts tries with.

use flamingock_core::lock::Fence;
use flamingock_core::{AuditEntry, AuditState, TxStrategy};
use sqlx::query::Query;
use sqlx::{Database, Encode, Type};

/// How a column gets its value.
pub(crate) enum Written {
    /// Assigned by the database (`id`).
    Id,
    /// The database clock when the row is written (`created_at`), read back as text.
    Clock,
    /// Bound text, never null.
    Text(fn(&AuditEntry) -> String),
    /// Bound text or null.
    OptionalText(fn(&AuditEntry) -> Option<String>),
    /// Bound integer or null.
    OptionalInt(fn(&AuditEntry) -> Option<i64>),
    /// Bound JSON text or null (`metadata`), read back as text.
    Json(fn(&AuditEntry) -> Option<String>),
}

/// One column of the audit table.
pub(crate) struct AuditColumn {
    pub(crate) name: &'static str,
    pub(crate) written: Written,
}

const fn column(name: &'static str, written: Written) -> AuditColumn {
    AuditColumn { name, written }
}

/// The columns every audit table has (docs/architecture.md#audit-states), in table order: those
/// of the first released shape (a table lacking one is not ours), then [`ADDED_COLUMNS`].
pub(crate) const AUDIT_COLUMNS: [AuditColumn; 21] = [
    column("id", Written::Id),
    column("execution_id", Written::Text(|e| e.execution_id.clone())),
    column("change_id", Written::Text(|e| e.change_id.clone())),
    column("author", Written::Text(|e| e.author.clone())),
    column("change_order", Written::Text(|e| e.change_order.clone())),
    column("stage", Written::Text(|e| e.stage.clone())),
    column("state", Written::Text(|e| e.state.as_str().to_owned())),
    column("created_at", Written::Clock),
    column("execution_ms", Written::OptionalInt(|e| e.execution_ms)),
    column("hostname", Written::Text(|e| e.hostname.clone())),
    column("runner_id", Written::Text(|e| e.runner_id.clone())),
    column("target_system", Written::Text(|e| e.target_system.clone())),
    column(
        "tx_strategy",
        Written::Text(|e| e.tx_strategy.as_str().to_owned()),
    ),
    column(
        "recovery_strategy",
        Written::Text(|e| e.recovery_strategy.as_str().to_owned()),
    ),
    column("app_name", Written::OptionalText(|e| e.app_name.clone())),
    column(
        "app_version",
        Written::OptionalText(|e| e.app_version.clone()),
    ),
    column("source", Written::Text(|e| e.source.clone())),
    column("checksum", Written::OptionalText(|e| e.checksum.clone())),
    column("error", Written::OptionalText(|e| e.error.clone())),
    column(
        "metadata",
        Written::Json(|e| e.metadata.as_ref().map(|value| value.to_string())),
    ),
    column(
        "system_version",
        Written::OptionalText(|e| e.system_version.clone()),
    ),
];

/// A column the audit table gained after its first released shape: a table of an earlier shape
/// gets it in place ([`upgrade`](crate::upgrade)), as nullable text, filled from the metadata key
/// that held the value before.
pub(crate) struct AddedColumn {
    pub(crate) name: &'static str,
    /// The [`AuditEntry::metadata`] key earlier releases wrote the value under.
    pub(crate) metadata_key: &'static str,
}

/// The columns added since the first released shape, oldest first (the last ones of
/// [`AUDIT_COLUMNS`], in the same order).
pub(crate) const ADDED_COLUMNS: [AddedColumn; 1] = [AddedColumn {
    name: "system_version",
    metadata_key: flamingock_core::model::metadata_keys::SYSTEM_VERSION,
}];

/// The names of the first released shape's columns: a table lacking one of them is not ours.
pub(crate) fn first_shape_column_names() -> impl Iterator<Item = &'static str> {
    audit_column_names().filter(|name| !ADDED_COLUMNS.iter().any(|added| added.name == *name))
}

/// The names of [`AUDIT_COLUMNS`], in table order.
pub(crate) fn audit_column_names() -> impl Iterator<Item = &'static str> {
    AUDIT_COLUMNS.iter().map(|c| c.name)
}

fn is_bound(column: &AuditColumn) -> bool {
    !matches!(column.written, Written::Id | Written::Clock)
}

/// The columns an insert writes, in insert order: the bound ones as [`bind_entry`] binds them,
/// then the clock columns.
fn insert_order() -> impl Iterator<Item = &'static AuditColumn> {
    let clock = AUDIT_COLUMNS
        .iter()
        .filter(|c| matches!(c.written, Written::Clock));
    AUDIT_COLUMNS.iter().filter(|c| is_bound(c)).chain(clock)
}

/// How many parameters [`bind_entry`] binds; a fenced insert's lease parameters follow.
pub(crate) fn bound_count() -> usize {
    AUDIT_COLUMNS.iter().filter(|c| is_bound(c)).count()
}

/// The column list of an insert (`execution_id, ..., metadata, created_at`).
pub(crate) fn insert_columns() -> String {
    insert_order()
        .map(|c| c.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The values of an insert, matching [`insert_columns`]: the `n`-th (1-based) bound value is
/// `placeholder(n)`, passed through `json` for a JSON column; the clock columns are `now`.
pub(crate) fn insert_values(
    placeholder: impl Fn(usize) -> String,
    json: impl Fn(String) -> String,
    now: &str,
) -> String {
    let mut n = 0;
    insert_order()
        .map(|c| match c.written {
            Written::Clock => now.to_owned(),
            Written::Json(_) => {
                n += 1;
                json(placeholder(n))
            }
            _ => {
                n += 1;
                placeholder(n)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The columns read back as they are stored, in table order; the clock and JSON columns are read
/// through dialect-specific conversions to text.
pub(crate) fn plain_columns() -> String {
    AUDIT_COLUMNS
        .iter()
        .filter(|c| !matches!(c.written, Written::Clock | Written::Json(_)))
        .map(|c| c.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Binds `entry` to an insert in [`insert_columns`] order. `id` and `created_at` are the
/// database's to set.
pub(crate) fn bind_entry<'q, DB>(
    mut query: Query<'q, DB, DB::Arguments>,
    entry: &AuditEntry,
) -> Query<'q, DB, DB::Arguments>
where
    DB: Database,
    String: Type<DB> + for<'e> Encode<'e, DB>,
    i64: Type<DB> + for<'e> Encode<'e, DB>,
    Option<String>: for<'e> Encode<'e, DB>,
    Option<i64>: for<'e> Encode<'e, DB>,
{
    for column in insert_order() {
        query = match column.written {
            Written::Text(value) => query.bind(value(entry)),
            Written::OptionalText(value) | Written::Json(value) => query.bind(value(entry)),
            Written::OptionalInt(value) => query.bind(value(entry)),
            Written::Id | Written::Clock => query,
        };
    }
    query
}

/// Binds `entry`, then the fence's key and owner (parameters `bound_count() + 1` and `+ 2`), to a
/// fenced insert.
pub(crate) fn bind_fenced<'q, DB>(
    query: Query<'q, DB, DB::Arguments>,
    entry: &AuditEntry,
    fence: &Fence,
) -> Query<'q, DB, DB::Arguments>
where
    DB: Database,
    String: Type<DB> + for<'e> Encode<'e, DB>,
    i64: Type<DB> + for<'e> Encode<'e, DB>,
    Option<String>: for<'e> Encode<'e, DB>,
    Option<i64>: for<'e> Encode<'e, DB>,
{
    bind_entry(query, entry)
        .bind(fence.key.clone())
        .bind(fence.owner.clone())
}

/// The SQL condition true for rows that [`counts_as_try`] counts: the same in every dialect.
///
/// [`counts_as_try`]: flamingock_core::store::counts_as_try
pub(crate) fn counts_as_try_condition() -> String {
    format!(
        "state = '{started}' OR (tx_strategy = '{shared}' AND state IN ('{applied}', '{failed}'))",
        started = AuditState::Started.as_str(),
        shared = TxStrategy::Shared.as_str(),
        applied = AuditState::Applied.as_str(),
        failed = AuditState::Failed.as_str(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_insert_lists_each_bound_column_once_then_the_clock() {
        assert_eq!(bound_count(), 19);
        assert_eq!(
            insert_columns(),
            "execution_id, change_id, author, change_order, stage, state, execution_ms, \
             hostname, runner_id, target_system, tx_strategy, recovery_strategy, app_name, \
             app_version, source, checksum, error, metadata, system_version, created_at"
        );
        let values = insert_values(|n| format!("${n}"), |p| format!("{p}::jsonb"), "now()");
        assert!(values.starts_with("$1, $2, "), "{values}");
        assert!(values.ends_with("$17, $18::jsonb, $19, now()"), "{values}");
    }

    #[test]
    fn reads_take_every_column_but_the_clock_and_json_as_stored() {
        assert_eq!(
            plain_columns(),
            "id, execution_id, change_id, author, change_order, stage, state, execution_ms, \
             hostname, runner_id, target_system, tx_strategy, recovery_strategy, app_name, \
             app_version, source, checksum, error, system_version"
        );
        assert_eq!(audit_column_names().count(), 21);
        assert_eq!(first_shape_column_names().count(), 20);
        let last = AUDIT_COLUMNS.iter().rev().map(|c| c.name);
        assert!(
            last.zip(ADDED_COLUMNS.iter().rev())
                .all(|(name, added)| name == added.name),
            "the added columns come last, in the order they were added"
        );
    }
}
