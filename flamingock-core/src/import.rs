//! Another tool's migration history, as Flamingock imports it: which tool kept it
//! ([`SourceTool`]), how to import it ([`ImportOptions`]), one applied migration as that tool
//! recorded it ([`ForeignEntry`]), and the trait a store implements to read such a table from its
//! own database ([`ForeignHistory`]). The engine's import step (`engine::import`) matches entries
//! to units; the SQL that reads the table lives in the SQL crate.

use std::fmt;

use async_trait::async_trait;

use crate::store::StoreError;

/// The migration tool whose history table is imported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SourceTool {
    /// sqlx's migrator (`sqlx::migrate!`, `sqlx migrate run`): table `_sqlx_migrations`.
    Sqlx,
    /// refinery: table `refinery_schema_history`.
    Refinery,
    /// diesel_migrations: table `__diesel_schema_migrations`.
    Diesel,
    /// sea-orm-migration: table `seaql_migrations` (its migrations are Rust code: each entry is
    /// matched to the unit whose id equals the entry's version).
    SeaOrm,
}

impl SourceTool {
    /// Every tool, in the order the CLI lists them.
    pub const ALL: [SourceTool; 4] = [
        SourceTool::Sqlx,
        SourceTool::Refinery,
        SourceTool::Diesel,
        SourceTool::SeaOrm,
    ];

    /// The name people and the CLI use (`sqlx`, `refinery`, `diesel`, `sea-orm`), also recorded
    /// as `imported_from` in the audit.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceTool::Sqlx => "sqlx",
            SourceTool::Refinery => "refinery",
            SourceTool::Diesel => "diesel",
            SourceTool::SeaOrm => "sea-orm",
        }
    }

    /// Parses [`as_str`](Self::as_str)'s form.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|tool| tool.as_str() == name)
    }

    /// The table the tool keeps its history in, unless configured otherwise.
    pub fn default_table(self) -> &'static str {
        match self {
            SourceTool::Sqlx => "_sqlx_migrations",
            SourceTool::Refinery => "refinery_schema_history",
            SourceTool::Diesel => "__diesel_schema_migrations",
            SourceTool::SeaOrm => "seaql_migrations",
        }
    }
}

impl fmt::Display for SourceTool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a run (or the CLI's `import`) imports another tool's history.
///
/// ```
/// use flamingock_core::import::{ImportOptions, SourceTool};
/// let options = ImportOptions::from(SourceTool::Sqlx).table("old_migrations").ignore_unknown(true);
/// assert_eq!(options.table_name(), "old_migrations");
/// assert_eq!(ImportOptions::from(SourceTool::Diesel).table_name(), "__diesel_schema_migrations");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportOptions {
    /// The tool that kept the history.
    pub tool: SourceTool,
    /// The history table's name; `None`: the tool's default ([`SourceTool::default_table`]).
    pub table: Option<String>,
    /// Entries that match no unit are skipped (with a warning) instead of refusing the import.
    pub ignore_unknown: bool,
}

impl ImportOptions {
    /// Imports `tool`'s history from its default table, refusing entries that match no unit.
    pub fn from(tool: SourceTool) -> Self {
        Self {
            tool,
            table: None,
            ignore_unknown: false,
        }
    }

    /// Reads the history from `name` instead of the tool's default table.
    pub fn table(mut self, name: impl Into<String>) -> Self {
        self.table = Some(name.into());
        self
    }

    /// Whether entries that match no unit are skipped rather than refused.
    pub fn ignore_unknown(mut self, ignore: bool) -> Self {
        self.ignore_unknown = ignore;
        self
    }

    /// The table read.
    pub fn table_name(&self) -> &str {
        self.table
            .as_deref()
            .unwrap_or_else(|| self.tool.default_table())
    }
}

/// One row of another tool's history table, read as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignEntry {
    /// The version as the tool stores it (sqlx, refinery: a number; diesel: digits; sea-orm: the
    /// migration's name).
    pub version: String,
    /// sqlx's `description`, refinery's `name`; `None` for diesel and sea-orm.
    pub name: Option<String>,
    /// When the tool applied it, as its table records it (sea-orm's seconds since the epoch are
    /// given as RFC 3339).
    pub applied_at: Option<String>,
    /// The tool's checksum: sqlx's SHA-384 in lower-case hex, refinery's number as text; `None`
    /// for diesel and sea-orm.
    pub checksum: Option<String>,
    /// `false` for sqlx's rows with `success = false`; `true` everywhere else.
    pub success: bool,
}

/// A store that can read another tool's history table from its own database (the SQL store).
#[async_trait]
pub trait ForeignHistory: Send + Sync {
    /// Every entry of `tool`'s history in `table`, ordered by version; `Ok(None)` when there is
    /// no such table. Reads only: the table is never written.
    async fn read_foreign(
        &self,
        tool: SourceTool,
        table: &str,
    ) -> Result<Option<Vec<ForeignEntry>>, StoreError>;
}

/// Everything importing a history can be refused for; nothing is written in any case.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// Entries of the history table match no selected change unit.
    #[error(
        "{} entr{} of {tool}'s history table `{table}` match{} no change unit of this program: {}; nothing was imported. Add the missing migration files (or units), or import with `ignore_unknown` (`--ignore-unknown`) to skip them",
        .versions.len(),
        if .versions.len() == 1 { "y" } else { "ies" },
        if .versions.len() == 1 { "es" } else { "" },
        .versions.iter().map(|v| format!("version {v}")).collect::<Vec<_>>().join(", ")
    )]
    UnknownEntries {
        /// The tool.
        tool: SourceTool,
        /// The table read.
        table: String,
        /// The versions that match nothing.
        versions: Vec<String>,
    },
    /// The audit store cannot read other tools' tables (it is not an SQL store).
    #[error(
        "the audit store {store} cannot read {tool}'s history table: importing needs the SQL audit store on the database {tool} migrated"
    )]
    Unsupported {
        /// The tool.
        tool: SourceTool,
        /// The store, described.
        store: String,
    },
    /// An entry cannot be read as the tool writes it.
    #[error(
        "{tool}'s history table `{table}` holds an entry Flamingock cannot read: {detail}; nothing was imported"
    )]
    Unreadable {
        /// The tool.
        tool: SourceTool,
        /// The table read.
        table: String,
        /// What is wrong.
        detail: String,
    },
}
