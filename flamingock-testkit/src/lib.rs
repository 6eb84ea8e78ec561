//! Test support shared by the workspace: the databases the tests run on ([`Backend`]), a fresh
//! database per test ([`FreshDb`]) and one suite stamped once per backend ([`for_each_backend!`]).
//!
//! Servers come from `FLAMINGOCK_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`) and `FLAMINGOCK_TEST_MYSQL_URL` (default
//! `mysql://root@127.0.0.1:3306/test`). An unreachable server skips the test with a loud
//! `SKIPPED:` line on stderr, unless `FLAMINGOCK_REQUIRE_SERVERS=1`, which makes it a failure.
//!
//! It depends on sqlx only (not on Flamingock), so that every crate's tests can use it.

mod fresh;
mod names;

pub use fresh::FreshDb;
pub use names::{replace_database, unique_name};
/// The sqlx the suites stamped by [`for_each_backend!`] name their databases with.
pub use sqlx;

use std::io::Write;

/// A database the tests run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// A file in a temporary directory of its own.
    Sqlite,
    /// The PostgreSQL server.
    Postgres,
    /// The MariaDB/MySQL server.
    MySql,
}

impl Backend {
    /// Every backend, SQLite first.
    pub const ALL: [Backend; 3] = [Backend::Sqlite, Backend::Postgres, Backend::MySql];

    /// The server's URL (pointing at its default database), from the environment or the
    /// default; `None` for SQLite, which needs no server.
    pub fn server_url(self) -> Option<String> {
        let (variable, default) = match self {
            Backend::Sqlite => return None,
            Backend::Postgres => (
                "FLAMINGOCK_TEST_POSTGRES_URL",
                "postgres://postgres@127.0.0.1:5432/test",
            ),
            Backend::MySql => (
                "FLAMINGOCK_TEST_MYSQL_URL",
                "mysql://root@127.0.0.1:3306/test",
            ),
        };
        Some(std::env::var(variable).unwrap_or_else(|_| default.to_owned()))
    }

    /// The server's URL; for the server backends only.
    ///
    /// # Panics
    /// On [`Backend::Sqlite`].
    pub fn url(self) -> String {
        self.server_url()
            .unwrap_or_else(|| panic!("{} needs no server", self.label()))
    }

    /// How messages name it.
    pub fn label(self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
            Backend::MySql => "MariaDB/MySQL",
        }
    }

    /// Whether a transaction on it can hold DDL. Not on MySQL/MariaDB: they commit before every
    /// DDL statement, even inside a transaction.
    pub fn shares_transactions(self) -> bool {
        self != Backend::MySql
    }
}

/// Whether CI demands the servers (`FLAMINGOCK_REQUIRE_SERVERS=1`).
pub fn servers_required() -> bool {
    std::env::var("FLAMINGOCK_REQUIRE_SERVERS").is_ok_and(|v| v == "1")
}

/// Reports that the running test cannot reach what it needs (`what`: "PostgreSQL unreachable:
/// ..."): a loud `SKIPPED:` line on stderr, or a panic under `FLAMINGOCK_REQUIRE_SERVERS=1`.
pub fn skip(what: &str) {
    let test = std::thread::current().name().unwrap_or("?").to_owned();
    let message = format!("{test}: {what}");
    assert!(
        !servers_required(),
        "FLAMINGOCK_REQUIRE_SERVERS=1 but {message}"
    );
    // Straight to stderr: a passing test's captured output is never shown, and a skip must be.
    let _ = writeln!(std::io::stderr(), "SKIPPED: {message}");
}

/// Stamps a suite once per backend: `for_each_backend!(my_suite)` expands to
/// `my_suite!(sqlite, sqlx::Sqlite, Backend::Sqlite);` and the same for `postgres`
/// (`sqlx::Postgres`) and `mariadb` (`sqlx::MySql`), so that `my_suite!` (a `macro_rules!`
/// taking `$name:ident, $db:ty, $backend:expr`) writes one module of tests per backend whose
/// units take that backend's transaction.
#[macro_export]
macro_rules! for_each_backend {
    ($suite:ident) => {
        $suite!(sqlite, $crate::sqlx::Sqlite, $crate::Backend::Sqlite);
        $suite!(postgres, $crate::sqlx::Postgres, $crate::Backend::Postgres);
        $suite!(mariadb, $crate::sqlx::MySql, $crate::Backend::MySql);
    };
}
