//! SQL files as change units, at run time: what the code `sql_units!` generates calls to run a
//! file (placeholders replaced, in the unit's transaction or statement by statement), the
//! placeholder values a run resolves before anything runs, and the statements `plan --sql` shows.

use std::collections::HashMap;

use flamingock_core::Error;
use flamingock_core::engine::{Engine, PlannedUnit};
use flamingock_core::inject::{Param, ParamSpec, Scope, UnitFuture};
use flamingock_core::model::ChangeUnit;
use flamingock_core::plan::Selection;
use flamingock_core::sql_unit::{
    Direction, SqlFile, SqlMigration, SqlPlaceholders, placeholder_env_var, placeholders_in,
    substitute, unknown_placeholders,
};
use flamingock_sqlx::script::{ScriptError, SqlScripts, split_statements};

pub use flamingock_core::sql_unit::{self, SqlLayout};

/// An SQL file of a change unit that did not run to its end.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {source}")]
pub struct SqlFileError {
    /// The file, as the crate sees it (`migrations/20240101120000_create_users.sql`).
    pub file: &'static str,
    #[source]
    pub source: ScriptError,
}

/// What the generated code names. Not a public API.
#[doc(hidden)]
pub mod private {
    pub use flamingock_core::sql_unit::{Direction, SqlFile, SqlLayout, SqlMigration};

    pub use super::{params, run};
}

/// The parameters of an SQL file's unit: the database that runs it ([`SqlScripts`], which the
/// SQL audit store and every `SqlTarget` offer), so that a unit aimed at another kind of target
/// is refused before anything runs.
#[doc(hidden)]
pub fn params() -> Vec<ParamSpec> {
    vec![ParamSpec {
        name: "sql",
        written_type: "&SqlScripts (SQL files run on an SQL audit store's database or an SqlTarget)",
        requirement: <&SqlScripts as Param<'_>>::requirement(),
    }]
}

/// Runs `migration`'s file of `direction`: placeholders replaced; in the unit's transaction as
/// one batch, or, without one (`-- no-transaction`), statement by statement.
#[doc(hidden)]
pub fn run<'s>(
    mut scope: Scope<'s>,
    migration: &'static SqlMigration,
    direction: Direction,
) -> UnitFuture<'s> {
    Box::pin(async move {
        let file = migration.file(direction).ok_or_else(|| {
            format!(
                "change unit \"{}\" has no down file to roll back with",
                migration.id
            )
        })?;
        let scripts = <&SqlScripts as Param<'s>>::take(&mut scope)?;
        let sql = match <&SqlPlaceholders as Param<'s>>::take(&mut scope) {
            Ok(values) => substitute(file, values)?,
            // An engine built by hand, not by the builder: the environment only.
            Err(_) => substitute(file, &from_environment(file, SqlPlaceholders::new()))?,
        };
        let ran = match scope.take_transaction() {
            Some(transaction) => scripts.run_in_transaction(transaction, &sql).await,
            None => {
                let statements = split_statements(&sql, scripts.dialect());
                scripts.run_each(&statements).await
            }
        };
        ran.map_err(|source| SqlFileError {
            file: file.path,
            source,
        })?;
        Ok(())
    })
}

/// `values` with every placeholder of `file` that has an environment variable
/// (`FLAMINGOCK_PLACEHOLDER_<NAME>`) set to it: the environment wins over the builder, so that
/// one program takes each environment's values.
fn from_environment(file: &SqlFile, mut values: SqlPlaceholders) -> SqlPlaceholders {
    for used in placeholders_in(file.text) {
        if let Ok(value) = std::env::var(placeholder_env_var(used.name)) {
            values.insert(used.name, value);
        }
    }
    values
}

/// The SQL migrations among the selected units.
fn selected_migrations(selection: &Selection) -> Vec<&'static SqlMigration> {
    let units: HashMap<&str, &ChangeUnit> =
        ChangeUnit::registered().map(|unit| (unit.id, unit)).collect();
    SqlMigration::registered()
        .filter(|migration| {
            units
                .get(migration.id)
                .is_some_and(|unit| selection.includes(unit))
        })
        .collect()
}

/// The placeholder values of a run: those given on the builder, overridden by the environment,
/// checked against every selected SQL file (up and down) so that a placeholder without a value
/// is an error before anything runs.
pub(crate) fn resolve_placeholders(
    given: SqlPlaceholders,
    selection: &Selection,
) -> Result<SqlPlaceholders, Error> {
    let migrations = selected_migrations(selection);
    let mut values = given;
    for file in migrations.iter().flat_map(|m| m.files()) {
        values = from_environment(file, values);
    }
    let unknown: Vec<String> = migrations
        .iter()
        .flat_map(|migration| {
            migration
                .files()
                .flat_map(|file| unknown_placeholders(file, &values))
                .map(move |unknown| format!("change unit \"{}\": {unknown}", migration.id))
        })
        .collect();
    if unknown.is_empty() {
        Ok(values)
    } else {
        Err(Error::Config(format!(
            "SQL units use placeholders that have no value; nothing ran\n  - {}",
            unknown.join("\n  - ")
        )))
    }
}

/// The SQL a pending SQL unit would run, for `plan --sql`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingSql {
    pub change_id: String,
    /// The up file.
    pub file: &'static str,
    /// `true`: in one transaction; `false`: statement by statement, without one.
    pub transactional: bool,
    /// The statements, placeholders replaced, each without its closing `;`.
    pub statements: Vec<String>,
}

/// The statements each pending SQL unit of `planned` would run, in order, placeholders replaced
/// with the values the run would use. Code units are left out.
pub fn pending_sql(engine: &Engine, planned: &[PlannedUnit]) -> Result<Vec<PendingSql>, String> {
    let mut pending = Vec::new();
    for unit in planned.iter().filter(|p| p.is_pending()) {
        let Some(migration) = SqlMigration::find(unit.unit.id) else {
            continue;
        };
        let Some(scripts) = engine.dependencies_of(unit).get::<SqlScripts>() else {
            return Err(format!(
                "change unit \"{}\" ({}) is an SQL file, but its target \"{}\" is not an SQL database",
                unit.unit.id,
                migration.up.path,
                unit.unit.target_name()
            ));
        };
        let sql = match engine.dependencies().get::<SqlPlaceholders>() {
            Some(values) => substitute(&migration.up, values),
            None => substitute(
                &migration.up,
                &from_environment(&migration.up, SqlPlaceholders::new()),
            ),
        }
        .map_err(|unknown| format!("change unit \"{}\": {unknown}", unit.unit.id))?;
        pending.push(PendingSql {
            change_id: unit.unit.id.to_owned(),
            file: migration.up.path,
            transactional: migration.transactional,
            statements: split_statements(&sql, scripts.dialect())
                .into_iter()
                .map(|statement| statement.text)
                .collect(),
        });
    }
    Ok(pending)
}
