//! What is measured: the databases, the tools, the modes, and the one trivial change every tool
//! applies N times (`CREATE TABLE t_<n> (id INTEGER)`), named the same way by every tool.

use std::fmt;
use std::str::FromStr;

/// A database the benchmark runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Database {
    Sqlite,
    Postgres,
    Mariadb,
}

impl Database {
    /// Every database, in table order.
    pub const ALL: [Database; 3] = [Database::Sqlite, Database::Postgres, Database::Mariadb];

    /// The databases on a server (fresh databases are created on it; fleets can share one).
    pub const SERVERS: [Database; 2] = [Database::Postgres, Database::Mariadb];

    /// The name used on the command line.
    pub fn key(self) -> &'static str {
        match self {
            Database::Sqlite => "sqlite",
            Database::Postgres => "postgres",
            Database::Mariadb => "mariadb",
        }
    }

    /// The name shown in tables.
    pub fn label(self) -> &'static str {
        match self {
            Database::Sqlite => "SQLite",
            Database::Postgres => "PostgreSQL",
            Database::Mariadb => "MariaDB",
        }
    }
}

impl FromStr for Database {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Database::ALL
            .into_iter()
            .find(|d| d.key() == s)
            .ok_or_else(|| format!("unknown database `{s}` (known: sqlite, postgres, mariadb)"))
    }
}

impl fmt::Display for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// A tool that applies the N changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tool {
    /// The floor: each statement in its own transaction with one bookkeeping insert, plain sqlx.
    Floor,
    /// sqlx's `Migrator` over a directory of N `.sql` files, loaded at run time.
    SqlxMigrator,
    /// refinery's `Runner`, one transaction per migration (its default).
    Refinery,
    /// Flamingock's engine with N change units built at run time.
    Flamingock,
    /// Flamingock through `run!()` with the units `#[change_unit]` declares in this crate.
    FlamingockMacro,
    /// sqlx's `Migrator` built at compile time by `sqlx::migrate!` over the checked-in files.
    SqlxMacro,
    /// Flamingock through `run!()` with the units `sql_units!` registers for the same files.
    FlamingockSqlFiles,
    /// Flamingock's engine with N units on a PostgreSQL target, its audit store and lock a
    /// `flamingock-server` (itself on PostgreSQL) reached over HTTP.
    FlamingockServer,
    /// One instance of the load run: N units that change nothing, audited through the server.
    ServerLoad,
}

impl Tool {
    /// The tools measured at every N, in table order.
    pub const AT_EVERY_N: [Tool; 4] = [
        Tool::Floor,
        Tool::SqlxMigrator,
        Tool::Refinery,
        Tool::Flamingock,
    ];

    /// Every tool, for parsing.
    pub const ALL: [Tool; 9] = [
        Tool::Floor,
        Tool::SqlxMigrator,
        Tool::Refinery,
        Tool::Flamingock,
        Tool::FlamingockMacro,
        Tool::SqlxMacro,
        Tool::FlamingockSqlFiles,
        Tool::FlamingockServer,
        Tool::ServerLoad,
    ];

    /// The name used on the command line.
    pub fn key(self) -> &'static str {
        match self {
            Tool::Floor => "floor",
            Tool::SqlxMigrator => "sqlx",
            Tool::Refinery => "refinery",
            Tool::Flamingock => "flamingock",
            Tool::FlamingockMacro => "flamingock-macro",
            Tool::SqlxMacro => "sqlx-macro",
            Tool::FlamingockSqlFiles => "flamingock-sql-files",
            Tool::FlamingockServer => "flamingock-server",
            Tool::ServerLoad => "server-load",
        }
    }

    /// The name shown in tables.
    pub fn label(self) -> &'static str {
        match self {
            Tool::Floor => "floor (plain sqlx)",
            Tool::SqlxMigrator => "sqlx `Migrator`",
            Tool::Refinery => "refinery",
            Tool::Flamingock => "flamingock",
            Tool::FlamingockMacro => "flamingock, `#[change_unit]` units",
            Tool::SqlxMacro => "sqlx `migrate!`",
            Tool::FlamingockSqlFiles => "flamingock, `sql_units!`",
            Tool::FlamingockServer => "flamingock, audit on `flamingock-server`",
            Tool::ServerLoad => "flamingock, one instance of the load run",
        }
    }
}

impl FromStr for Tool {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Tool::ALL.into_iter().find(|t| t.key() == s).ok_or_else(|| {
            let known: Vec<&str> = Tool::ALL.iter().map(|t| t.key()).collect();
            format!("unknown tool `{s}` (known: {})", known.join(", "))
        })
    }
}

/// What one child process measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Mode {
    /// N changes pending on an empty database: all must be applied by this process.
    Cold,
    /// Everything already applied: the time to conclude there is nothing to do.
    Warm,
    /// One process of a fleet starting together: every change must end applied, by anyone.
    Fleet,
}

impl Mode {
    /// The name used on the command line.
    pub fn key(self) -> &'static str {
        match self {
            Mode::Cold => "cold",
            Mode::Warm => "warm",
            Mode::Fleet => "fleet",
        }
    }
}

impl FromStr for Mode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Mode::Cold, Mode::Warm, Mode::Fleet]
            .into_iter()
            .find(|m| m.key() == s)
            .ok_or_else(|| format!("unknown mode `{s}` (known: cold, warm, fleet)"))
    }
}

/// The id of change `n` (1-based) in every tool: `bench-<n>`.
pub fn change_id(n: usize) -> String {
    format!("bench-{n}")
}

/// The order of change `n`: its number (Flamingock compares digit runs numerically).
pub fn change_order(n: usize) -> String {
    n.to_string()
}

/// The statement of change `n`: one small DDL.
pub fn statement(n: usize) -> String {
    format!("CREATE TABLE t_{n} (id INTEGER)")
}

/// The statement of the change with id `bench-<n>`, or `None` for any other id.
pub fn statement_for_id(id: &str) -> Option<String> {
    let n: usize = id.strip_prefix("bench-")?.parse().ok()?;
    (n > 0).then(|| statement(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_are_derived_from_ids() {
        assert_eq!(change_id(42), "bench-42");
        assert_eq!(
            statement_for_id(&change_id(42)).as_deref(),
            Some("CREATE TABLE t_42 (id INTEGER)")
        );
        assert_eq!(statement_for_id("bench-0"), None);
        assert_eq!(statement_for_id("bench-x"), None);
        assert_eq!(statement_for_id("other-1"), None);
    }

    #[test]
    fn names_round_trip() {
        for tool in Tool::ALL {
            assert_eq!(tool.key().parse::<Tool>(), Ok(tool));
        }
        for database in Database::ALL {
            assert_eq!(database.key().parse::<Database>(), Ok(database));
        }
        assert!("oracle".parse::<Database>().is_err());
        assert_eq!("warm".parse::<Mode>(), Ok(Mode::Warm));
    }
}
