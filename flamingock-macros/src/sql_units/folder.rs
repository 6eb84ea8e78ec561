//! Reads a migrations folder at compile time: which layout it is in, and one [`Migration`] per
//! migration, or every problem found (each naming the file), in the source tools' own naming rules:
//!
//! - sqlx: `<version>_<description>.sql`, or `<version>_<description>.up.sql` with `.down.sql`;
//!   `-- no-transaction` on the first line;
//! - refinery: `V<version>__<name>.sql`;
//! - diesel: a folder `<version>_<name>/` with `up.sql`, `down.sql` and optionally `metadata.toml`
//!   (`run_in_transaction = false`); the version is the part before the first `_`, dashes removed.
//!
//! Files that are not `.sql` (a README) and names starting with `.` are ignored.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256, Sha384};

use super::args::Layout;

/// One SQL file of a migration, read.
pub struct File {
    /// The path shown in messages: the folder as given to the macro, joined with the file name.
    pub shown: String,
    /// The absolute path, for `include_str!`.
    pub absolute: PathBuf,
    pub text: String,
}

/// One migration of the folder.
pub struct Migration {
    pub id: String,
    pub version: String,
    pub description: String,
    pub up: File,
    pub down: Option<File>,
    pub transactional: bool,
    /// From a `-- author:` line of the up file.
    pub author: Option<String>,
    /// SHA-256 of the up file with line endings normalised and trailing whitespace ignored.
    pub checksum: String,
    /// The source tool's own checksum of the up file, where it is computed from the file alone.
    pub source_checksum: Option<String>,
}

/// The folder's layout (as named, or detected) and its migrations in version order.
pub struct Folder {
    pub layout: Layout,
    pub migrations: Vec<Migration>,
}

/// Reads `folder` (`shown` is how the user wrote it).
pub fn read(folder: &Path, shown: &str, layout: Option<Layout>) -> Result<Folder, Vec<String>> {
    let shown = shown.trim_end_matches('/');
    let entries = match list(folder) {
        Ok(entries) => entries,
        Err(error) => {
            return Err(vec![format!(
                "cannot read the migrations folder `{shown}` ({}): {error}; the path is relative to the crate's Cargo.toml",
                folder.display()
            )]);
        }
    };
    let layout = layout.unwrap_or_else(|| detect(&entries));
    let mut reader = Reader {
        shown,
        errors: Vec::new(),
        by_version: BTreeMap::new(),
    };
    for (name, path, is_dir) in &entries {
        match layout {
            Layout::Sqlx | Layout::Refinery if *is_dir => reader.errors.push(format!(
                "`{shown}/{name}` is a folder, but the {} layout has files only; name the layout with `layout = \"diesel\"` if this is a diesel folder",
                layout.name()
            )),
            Layout::Sqlx | Layout::Refinery if !name.ends_with(".sql") => {}
            Layout::Sqlx => reader.sqlx_file(name, path),
            Layout::Refinery => reader.refinery_file(name, path),
            Layout::Diesel if *is_dir => reader.diesel_folder(name, path),
            Layout::Diesel => {}
        }
    }
    let mut migrations = Vec::new();
    for (_, pending) in std::mem::take(&mut reader.by_version) {
        if let Some(migration) = reader.finish(pending) {
            migrations.push(migration);
        }
    }
    if reader.errors.is_empty() {
        Ok(Folder { layout, migrations })
    } else {
        Err(reader.errors)
    }
}

/// The folder's entries, sorted by name: (name, path, is a directory). Names starting with `.`
/// are left out.
fn list(folder: &Path) -> std::io::Result<Vec<(String, PathBuf, bool)>> {
    let mut entries = Vec::new();
    for entry in fs::read_dir(folder)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let is_dir = entry.file_type()?.is_dir() || entry.path().is_dir();
        entries.push((name, entry.path(), is_dir));
    }
    entries.sort();
    Ok(entries)
}

/// Folders: diesel; `V<digit>...sql` files: refinery; otherwise sqlx.
fn detect(entries: &[(String, PathBuf, bool)]) -> Layout {
    if entries.iter().any(|(_, _, is_dir)| *is_dir) {
        Layout::Diesel
    } else if entries.iter().any(|(name, _, _)| {
        name.ends_with(".sql")
            && name.starts_with('V')
            && name[1..].starts_with(|c: char| c.is_ascii_digit())
    }) {
        Layout::Refinery
    } else {
        Layout::Sqlx
    }
}

/// A migration being assembled: its files as found so far.
struct Pending {
    id: String,
    version: String,
    description: String,
    up: Option<File>,
    down: Option<File>,
    /// Diesel's `run_in_transaction`, when its metadata says so.
    metadata_transactional: Option<bool>,
    /// The layout's source checksum is computed (sqlx).
    sqlx_checksum: bool,
    /// Down file required (diesel).
    down_required: bool,
    /// The folder (diesel) or file that stands for the migration, for messages.
    shown: String,
}

struct Reader<'a> {
    shown: &'a str,
    errors: Vec<String>,
    by_version: BTreeMap<(u128, String), Pending>,
}

impl Reader<'_> {
    fn read_file(&mut self, shown: String, path: &Path) -> Option<File> {
        match fs::read(path) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => Some(File {
                    shown,
                    absolute: path.to_path_buf(),
                    text,
                }),
                Err(_) => {
                    self.errors
                        .push(format!("`{shown}` is not UTF-8 text; save it as UTF-8"));
                    None
                }
            },
            Err(error) => {
                self.errors.push(format!("cannot read `{shown}`: {error}"));
                None
            }
        }
    }

    /// Files the migration under its version, merging the up and down files of one sqlx
    /// migration; another migration with the same version is an error naming both.
    fn add(&mut self, pending: Pending) {
        let key = (numeric(&pending.version), pending.version.clone());
        let Some(existing) = self.by_version.get_mut(&key) else {
            self.by_version.insert(key, pending);
            return;
        };
        let overlaps = (existing.up.is_some() && pending.up.is_some())
            || (existing.down.is_some() && pending.down.is_some());
        if existing.id == pending.id && !overlaps {
            existing.up = existing.up.take().or(pending.up);
            existing.down = existing.down.take().or(pending.down);
            return;
        }
        let first = |p: &Pending| {
            p.up.as_ref()
                .or(p.down.as_ref())
                .map_or(p.shown.clone(), |f| f.shown.clone())
        };
        self.errors.push(format!(
            "`{}` and `{}` have the same version {}; each migration needs a version of its own",
            first(existing),
            first(&pending),
            pending.version
        ));
    }

    fn sqlx_file(&mut self, name: &str, path: &Path) {
        let shown = format!("{}/{name}", self.shown);
        let (stem, role) = if let Some(stem) = name.strip_suffix(".up.sql") {
            (stem, Role::Up)
        } else if let Some(stem) = name.strip_suffix(".down.sql") {
            (stem, Role::Down)
        } else {
            (name.trim_end_matches(".sql"), Role::Up)
        };
        let parsed = stem.split_once('_').and_then(|(version, description)| {
            (!version.is_empty()
                && version.bytes().all(|b| b.is_ascii_digit())
                && version.parse::<i64>().is_ok())
            .then_some((version, description))
        });
        let Some((version, description)) = parsed else {
            self.errors.push(format!(
                "`{shown}`: not a sqlx migration name; expected `<version>_<description>.sql` (or `.up.sql` / `.down.sql`) with a numeric version, such as `20240101120000_create_users.sql`"
            ));
            return;
        };
        let Some(file) = self.read_file(shown.clone(), path) else {
            return;
        };
        let (up, down) = match role {
            Role::Up => (Some(file), None),
            Role::Down => (None, Some(file)),
        };
        let pending = Pending {
            id: stem.to_owned(),
            version: version.to_owned(),
            description: description.replace('_', " "),
            up,
            down,
            metadata_transactional: None,
            sqlx_checksum: true,
            down_required: false,
            shown,
        };
        self.add(pending);
    }

    fn refinery_file(&mut self, name: &str, path: &Path) {
        let shown = format!("{}/{name}", self.shown);
        let stem = name.trim_end_matches(".sql");
        let parsed = stem.strip_prefix('V').and_then(|rest| {
            let (version, description) = rest.split_once("__")?;
            let version_ok = !version.is_empty()
                && version.bytes().all(|b| b.is_ascii_digit())
                && version.parse::<i64>().is_ok();
            let name_ok = !description.is_empty()
                && description.chars().all(|c| c.is_alphanumeric() || c == '_');
            (version_ok && name_ok).then_some((version, description))
        });
        let Some((version, description)) = parsed else {
            let hint = if stem.starts_with('U') {
                " (refinery's unversioned `U` migrations have no order and are not supported: give it a version)"
            } else {
                ""
            };
            self.errors.push(format!(
                "`{shown}`: not a refinery migration name; expected `V<version>__<name>.sql` with a numeric version and a name of letters, digits and `_`, such as `V1__create_users.sql`{hint}"
            ));
            return;
        };
        let Some(file) = self.read_file(shown.clone(), path) else {
            return;
        };
        let pending = Pending {
            id: stem.to_owned(),
            version: version.to_owned(),
            description: description.to_owned(),
            up: Some(file),
            down: None,
            metadata_transactional: None,
            sqlx_checksum: false,
            down_required: false,
            shown,
        };
        self.add(pending);
    }

    fn diesel_folder(&mut self, name: &str, path: &Path) {
        let shown = format!("{}/{name}", self.shown);
        let parsed = name.split_once('_').and_then(|(version, description)| {
            let digits = version.replace('-', "");
            (!digits.is_empty()
                && digits.bytes().all(|b| b.is_ascii_digit())
                && !description.is_empty())
            .then_some((digits, description))
        });
        let Some((version, description)) = parsed else {
            self.errors.push(format!(
                "`{shown}`: not a diesel migration folder name; expected `<version>_<name>` with a version of digits and dashes, such as `2024-01-01-120000_create_users`"
            ));
            return;
        };
        let up_path = path.join("up.sql");
        if !up_path.is_file() {
            self.errors.push(format!(
                "`{shown}` has no `up.sql`; a diesel migration folder holds `up.sql` and `down.sql`"
            ));
            return;
        }
        let metadata_transactional = match fs::read_to_string(path.join("metadata.toml")) {
            Ok(text) => match run_in_transaction(&text) {
                Ok(value) => value,
                Err(message) => {
                    self.errors
                        .push(format!("`{shown}/metadata.toml`: {message}"));
                    return;
                }
            },
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
            Err(error) => {
                self.errors
                    .push(format!("cannot read `{shown}/metadata.toml`: {error}"));
                return;
            }
        };
        let Some(up) = self.read_file(format!("{shown}/up.sql"), &up_path) else {
            return;
        };
        let down_path = path.join("down.sql");
        let down = if down_path.is_file() {
            self.read_file(format!("{shown}/down.sql"), &down_path)
        } else {
            None
        };
        self.add(Pending {
            id: name.to_owned(),
            version,
            description: description.to_owned(),
            up: Some(up),
            down,
            metadata_transactional,
            sqlx_checksum: false,
            down_required: true,
            shown,
        });
    }

    /// Checks a migration's files and turns it into a [`Migration`].
    fn finish(&mut self, pending: Pending) -> Option<Migration> {
        let Some(up) = pending.up else {
            let down = pending.down.map_or(pending.shown.clone(), |f| f.shown);
            self.errors.push(format!(
                "`{down}` has no up file; add `{}.up.sql` beside it, or remove it",
                down.trim_end_matches(".down.sql")
            ));
            return None;
        };
        if pending.down_required && pending.down.is_none() {
            self.errors.push(format!(
                "`{}` has no `down.sql`; a diesel migration needs one (an empty `down.sql` if it cannot be undone)",
                pending.shown
            ));
            return None;
        }
        let author = match author_line(&up.text) {
            Ok(author) => author,
            Err(message) => {
                self.errors.push(format!("`{}`: {message}", up.shown));
                return None;
            }
        };
        let transactional = match pending.metadata_transactional {
            Some(value) => value,
            None => !no_transaction(&up.text),
        };
        Some(Migration {
            id: pending.id,
            version: pending.version,
            description: pending.description,
            checksum: checksum(&up.text),
            source_checksum: pending
                .sqlx_checksum
                .then(|| hex(&Sha384::digest(up.text.as_bytes()))),
            transactional,
            author,
            up,
            down: pending.down,
        })
    }
}

#[derive(Clone, Copy)]
enum Role {
    Up,
    Down,
}

/// The version as a number, for ordering (versions are digits; too long ones sort last).
fn numeric(version: &str) -> u128 {
    version.parse().unwrap_or(u128::MAX)
}

/// sqlx's marker: the file starts with `-- no-transaction`.
fn no_transaction(text: &str) -> bool {
    text.trim_start_matches('\u{feff}')
        .lines()
        .next()
        .is_some_and(|line| line.trim() == "-- no-transaction")
}

/// The `-- author: name` line among the file's leading comments, if any.
fn author_line(text: &str) -> Result<Option<String>, String> {
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let Some(comment) = line.strip_prefix("--") else {
            break;
        };
        if let Some(author) = comment.trim().strip_prefix("author:") {
            let author = author.trim();
            if author.is_empty() {
                return Err("the `-- author:` line names nobody".into());
            }
            return Ok(Some(author.to_owned()));
        }
    }
    Ok(None)
}

/// Diesel's `run_in_transaction` from `metadata.toml` (other keys are left alone).
fn run_in_transaction(text: &str) -> Result<Option<bool>, String> {
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        if key.trim() == "run_in_transaction" {
            return match value.trim() {
                "true" => Ok(Some(true)),
                "false" => Ok(Some(false)),
                other => Err(format!(
                    "`run_in_transaction` is `{other}`; expected `true` or `false`"
                )),
            };
        }
    }
    Ok(None)
}

/// SHA-256 (hex) of the text with line endings normalised to `\n`, each line's trailing
/// whitespace and the file's trailing blank lines ignored: a CRLF checkout, or an editor that
/// trims lines, does not change it.
pub fn checksum(text: &str) -> String {
    let text = text.trim_start_matches('\u{feff}');
    let unified = text.replace("\r\n", "\n").replace('\r', "\n");
    let lines: Vec<&str> = unified.lines().map(str::trim_end).collect();
    let normalised = lines.join("\n");
    hex(&Sha256::digest(normalised.trim_end().as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checksum_ignores_line_endings_and_trailing_whitespace_only() {
        let lf = checksum("CREATE TABLE a (x INT);\nINSERT INTO a VALUES (1);\n");
        assert_eq!(
            checksum("CREATE TABLE a (x INT);  \r\nINSERT INTO a VALUES (1);\r\n\r\n"),
            lf
        );
        assert_ne!(
            checksum("CREATE TABLE a (x INT);\nINSERT INTO a VALUES (2);\n"),
            lf
        );
        assert_ne!(
            checksum("CREATE TABLE a  (x INT);\nINSERT INTO a VALUES (1);\n"),
            lf
        );
        assert_eq!(lf.len(), 64);
    }

    #[test]
    fn author_and_no_transaction_come_from_the_leading_comments() {
        assert_eq!(
            author_line("-- no-transaction\n-- author: ana\nCREATE INDEX i ON a (x);"),
            Ok(Some("ana".into()))
        );
        assert_eq!(author_line("SELECT 1;\n-- author: late"), Ok(None));
        assert!(author_line("-- author:\nSELECT 1;").is_err());
        assert!(no_transaction(
            "-- no-transaction\nCREATE INDEX CONCURRENTLY i ON a (x);"
        ));
        assert!(!no_transaction("SELECT 1;\n-- no-transaction"));
    }

    #[test]
    fn diesel_metadata_says_whether_to_run_in_a_transaction() {
        assert_eq!(
            run_in_transaction("run_in_transaction = false\n"),
            Ok(Some(false))
        );
        assert_eq!(run_in_transaction("# nothing\n"), Ok(None));
        assert!(run_in_transaction("run_in_transaction = maybe").is_err());
    }
}
