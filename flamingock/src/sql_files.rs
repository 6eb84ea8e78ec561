//! SQL files as change units, at run time: what the code `sql_units!` generates calls to run a
//! file (placeholders replaced, in the unit's transaction or statement by statement), the check
//! that its placeholders have values (before anything runs), and the statements `plan --sql`
//! shows.

use flamingock_core::Dependencies;
use flamingock_core::engine::{Engine, PlannedUnit};
use flamingock_core::inject::{DependencyCheck, Param, ParamSpec, Requirement, Scope, UnitFuture};
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
    /// What failed.
    #[source]
    pub source: ScriptError,
}

/// What the generated code names. Not a public API.
#[doc(hidden)]
pub mod private {
    pub use flamingock_core::sql_unit::{Direction, SqlFile, SqlLayout, SqlMigration};

    pub use super::{check, params, run};
    pub use flamingock_core::Dependencies;
}

/// The parameters of an SQL file's unit: the database that runs it ([`SqlScripts`], which the
/// SQL audit store and every `SqlTarget` offer), so that a unit aimed at another kind of target
/// is refused before anything runs, and `check` (the file's placeholders have values).
#[doc(hidden)]
pub fn params(check: fn(&Dependencies, &Dependencies) -> Result<(), String>) -> Vec<ParamSpec> {
    vec![
        ParamSpec {
            name: "sql",
            written_type: "&SqlScripts (SQL files run on an SQL audit store's database or an SqlTarget)",
            requirement: <&SqlScripts as Param<'_>>::requirement(),
        },
        ParamSpec {
            name: "placeholders",
            written_type: "${..}",
            requirement: Requirement::Check(DependencyCheck(check)),
        },
    ]
}

/// Whether every placeholder of `migration`'s file of `direction` has a value, from the
/// builder's dependencies or the environment.
#[doc(hidden)]
pub fn check(
    migration: &'static SqlMigration,
    direction: Direction,
    _target: &Dependencies,
    builder: &Dependencies,
) -> Result<(), String> {
    let Some(file) = migration.file(direction) else {
        return Ok(());
    };
    let values = values_for(file, builder.get::<SqlPlaceholders>());
    let unknown: Vec<String> = unknown_placeholders(file, &values)
        .iter()
        .map(ToString::to_string)
        .collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(unknown.join("; "))
    }
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
        let given = <&SqlPlaceholders as Param<'s>>::take(&mut scope).ok();
        let sql = substitute(file, &values_for(file, given))?;
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

/// The values `file`'s placeholders get: those given on the builder, each overridden by its
/// environment variable (`FLAMINGOCK_PLACEHOLDER_<NAME>`) when set, so that one program takes
/// each environment's values.
fn values_for(file: &SqlFile, given: Option<&SqlPlaceholders>) -> SqlPlaceholders {
    let mut values = given.cloned().unwrap_or_default();
    for used in placeholders_in(file.text) {
        if let Ok(value) = std::env::var(placeholder_env_var(used.name)) {
            values.insert(used.name, value);
        }
    }
    values
}

/// The SQL a pending SQL unit would run, for `plan --sql`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingSql {
    /// The unit's id.
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
        let values = values_for(
            &migration.up,
            engine.dependencies().get::<SqlPlaceholders>(),
        );
        let sql = substitute(&migration.up, &values)
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
