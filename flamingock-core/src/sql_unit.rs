//! SQL files as change units: what `flamingock::sql_units!` registers for each migration file
//! (beside its [`ChangeUnit`](crate::model::ChangeUnit)), and the `${name}` placeholders their
//! text may hold.
//!
//! Each [`SqlMigration`] knows where it came from (its [`SqlLayout`], the source tool's version
//! and, where that tool computes one, its checksum), so that another tool's history can be matched
//! to it. Nothing here runs SQL: the SQL crates do, with the text this module substitutes.

use std::collections::BTreeMap;
use std::fmt;

/// The folder layout a migration was read from: which tool names its files this way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SqlLayout {
    /// `<version>_<description>.sql`, or `.up.sql` with `.down.sql` (sqlx's `migrate!`).
    Sqlx,
    /// `V<version>__<name>.sql` (refinery).
    Refinery,
    /// `<version>_<name>/up.sql` with `down.sql` and an optional `metadata.toml` (diesel).
    Diesel,
}

impl SqlLayout {
    /// The name used in `sql_units!(.., layout = "...")` and shown to people.
    pub fn as_str(self) -> &'static str {
        match self {
            SqlLayout::Sqlx => "sqlx",
            SqlLayout::Refinery => "refinery",
            SqlLayout::Diesel => "diesel",
        }
    }
}

impl fmt::Display for SqlLayout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One SQL file embedded at compile time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqlFile {
    /// The file's path as the program's crate sees it (the folder given to `sql_units!` joined
    /// with the file's name), for messages.
    pub path: &'static str,
    /// The file's text, as written (placeholders not yet replaced).
    pub text: &'static str,
}

/// Which file of a migration runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// The migration itself (`up.sql`, `.up.sql`, the only file).
    Up,
    /// Its rollback (`down.sql`, `.down.sql`).
    Down,
}

/// A migration file registered by `flamingock::sql_units!`, keyed by the id of the change unit
/// registered with it.
#[derive(Debug, Clone, Copy)]
pub struct SqlMigration {
    /// The change unit's id: what the source tool calls the migration (sqlx and diesel: the file
    /// or folder name without extension, `20240101120000_create_users`; refinery: `V1__initial`).
    pub id: &'static str,
    /// The version as the source tool records it in its history table (sqlx's and refinery's
    /// `version`, diesel's `version` without dashes); also the unit's order.
    pub version: &'static str,
    /// The description or name part of the file name, as the source tool records it (sqlx:
    /// underscores turned into spaces).
    pub description: &'static str,
    /// The folder layout the file was found in (which tool's naming rules apply).
    pub layout: SqlLayout,
    /// The file that applies the migration.
    pub up: SqlFile,
    /// The file that reverts it, the unit's rollback (`None`: undo refuses the unit).
    pub down: Option<SqlFile>,
    /// `false` when the file says `-- no-transaction` (or diesel's `run_in_transaction = false`):
    /// it runs statement by statement, outside any transaction.
    pub transactional: bool,
    /// The source tool's own checksum of the up file, lower-case hex, where it can be computed
    /// from the file alone (sqlx: SHA-384 of the file's bytes); `None` otherwise.
    pub source_checksum: Option<&'static str>,
}

inventory::collect!(SqlMigration);

impl SqlMigration {
    /// Every SQL migration linked into this binary, in no particular order.
    pub fn registered() -> impl Iterator<Item = &'static SqlMigration> {
        inventory::iter::<SqlMigration>.into_iter()
    }

    /// The registered migration of the change unit `id`, if that unit is an SQL file.
    pub fn find(id: &str) -> Option<&'static SqlMigration> {
        Self::registered().find(|migration| migration.id == id)
    }

    /// The file that runs in `direction`, if there is one.
    pub fn file(&self, direction: Direction) -> Option<&SqlFile> {
        match direction {
            Direction::Up => Some(&self.up),
            Direction::Down => self.down.as_ref(),
        }
    }

    /// The files of the migration (up, then down if any).
    pub fn files(&self) -> impl Iterator<Item = &SqlFile> {
        std::iter::once(&self.up).chain(self.down.as_ref())
    }
}

/// The environment variable prefix of a placeholder's value: `${schema}` is read from
/// `FLAMINGOCK_PLACEHOLDER_SCHEMA`.
pub const PLACEHOLDER_ENV_PREFIX: &str = "FLAMINGOCK_PLACEHOLDER_";

/// The environment variable that holds placeholder `name`'s value.
pub fn placeholder_env_var(name: &str) -> String {
    format!("{PLACEHOLDER_ENV_PREFIX}{}", name.to_ascii_uppercase())
}

/// The values of the `${name}` placeholders of SQL units, offered to them as a dependency.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SqlPlaceholders {
    values: BTreeMap<String, String>,
}

impl SqlPlaceholders {
    /// No values.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `name`'s value, replacing an earlier one.
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.values.insert(name.into(), value.into());
    }

    /// `name`'s value, if it has one.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// Every name with a value, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.values.keys().map(String::as_str)
    }
}

/// A placeholder in a file that has no value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{file}:{line}: placeholder ${{{name}}} has no value; give it one with `Flamingock::builder().placeholder(\"{name}\", ..)` or the environment variable {env}"
)]
pub struct UnknownPlaceholder {
    /// The file, as the crate sees it.
    pub file: &'static str,
    /// The 1-based line the placeholder is on.
    pub line: u32,
    /// The placeholder's name (without `${` and `}`).
    pub name: String,
    /// The environment variable that would give it a value.
    pub env: String,
}

/// A `${name}` in a text: its name and the 1-based line it is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaceholderUse<'t> {
    /// The placeholder's name (without `${` and `}`).
    pub name: &'t str,
    /// The 1-based line it is on.
    pub line: u32,
    /// Byte range of `${name}` in the text.
    range: std::ops::Range<usize>,
}

/// Every `${name}` in `text`, in order. A name is an ASCII letter or `_` followed by letters,
/// digits or `_`; `$` followed by anything else (PostgreSQL's `$1`, `$$`, `$tag$`) is left alone.
pub fn placeholders_in(text: &str) -> Vec<PlaceholderUse<'_>> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => line += 1,
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                let start = i + 2;
                let mut end = start;
                while end < bytes.len()
                    && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_')
                {
                    end += 1;
                }
                let named = end > start && !bytes[start].is_ascii_digit();
                if named && bytes.get(end) == Some(&b'}') {
                    found.push(PlaceholderUse {
                        name: &text[start..end],
                        line,
                        range: i..end + 1,
                    });
                    i = end + 1;
                    continue;
                }
            }
            _ => {}
        }
        i += 1;
    }
    found
}

/// The names a file uses that `values` has no value for, each once, with the first line it is
/// on.
pub fn unknown_placeholders(file: &SqlFile, values: &SqlPlaceholders) -> Vec<UnknownPlaceholder> {
    let mut unknown: Vec<UnknownPlaceholder> = Vec::new();
    for used in placeholders_in(file.text) {
        if values.get(used.name).is_none() && !unknown.iter().any(|u| u.name == used.name) {
            unknown.push(UnknownPlaceholder {
                file: file.path,
                line: used.line,
                name: used.name.to_owned(),
                env: placeholder_env_var(used.name),
            });
        }
    }
    unknown
}

/// The file's text with every `${name}` replaced by its value; the first placeholder without a
/// value is an error (nothing is half-replaced).
pub fn substitute(file: &SqlFile, values: &SqlPlaceholders) -> Result<String, UnknownPlaceholder> {
    let mut text = String::with_capacity(file.text.len());
    let mut copied = 0;
    for used in placeholders_in(file.text) {
        let Some(value) = values.get(used.name) else {
            return Err(UnknownPlaceholder {
                file: file.path,
                line: used.line,
                name: used.name.to_owned(),
                env: placeholder_env_var(used.name),
            });
        };
        text.push_str(&file.text[copied..used.range.start]);
        text.push_str(value);
        copied = used.range.end;
    }
    text.push_str(&file.text[copied..]);
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &'static str) -> SqlFile {
        SqlFile {
            path: "migrations/1_a.sql",
            text,
        }
    }

    #[test]
    fn placeholders_are_found_with_their_lines_and_dollar_quotes_are_not_placeholders() {
        let text = "CREATE SCHEMA ${schema};\nSELECT $1, $$x$$, $tag$ ${ } ${1x} $tag$;\nGRANT ${role_2} TO ${schema};";
        let found: Vec<_> = placeholders_in(text)
            .into_iter()
            .map(|u| (u.name, u.line))
            .collect();
        assert_eq!(found, [("schema", 1), ("role_2", 3), ("schema", 3)]);
    }

    #[test]
    fn substitution_replaces_every_use_and_refuses_an_unknown_name() {
        let mut values = SqlPlaceholders::new();
        values.insert("schema", "app");
        let sql = file("CREATE TABLE ${schema}.t (x INT);\nSELECT '${schema}';");
        assert_eq!(
            substitute(&sql, &values).unwrap(),
            "CREATE TABLE app.t (x INT);\nSELECT 'app';"
        );
        let sql = file("SELECT 1;\nGRANT ALL ON ${schema}.t TO ${role};");
        let error = substitute(&sql, &values).unwrap_err();
        assert_eq!(error.name, "role");
        assert_eq!(error.line, 2);
        assert_eq!(error.env, "FLAMINGOCK_PLACEHOLDER_ROLE");
        assert!(
            error
                .to_string()
                .starts_with("migrations/1_a.sql:2: placeholder ${role} has no value"),
            "{error}"
        );
        assert_eq!(unknown_placeholders(&sql, &values), [error]);
    }
}
