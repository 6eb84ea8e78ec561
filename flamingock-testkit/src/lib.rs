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

/// Stamps a suite once per backend, so that a suite is written once for all of them.
///
/// The suite is a `macro_rules!` taking `($name:ident, $db:ty, $backend:expr)`: the module to
/// write its tests into (`sqlite`, `postgres` or `mariadb`), the sqlx database its units take
/// the transaction of (`sqlx::Sqlite`, `sqlx::Postgres`, `sqlx::MySql`) and the [`Backend`]
/// (`Backend::Sqlite`, `Backend::Postgres`, `Backend::MySql`). Its tests get their database from
/// [`FreshDb::create`] (or a helper built on it), which skips or fails them as the crate's
/// documentation says when the server is down.
///
/// - `for_each_backend!(my_suite)`: every backend, `my_suite!(sqlite, sqlx::Sqlite,
///   Backend::Sqlite);` then `postgres` and `mariadb`.
/// - `for_each_backend!(my_suite, servers)`: the server backends only, `postgres` and `mariadb`.
/// - `for_each_backend!(my_suite, [sqlite, postgres])`: the backends named, in that order (any of
///   `sqlite`, `postgres`, `mariadb`).
/// - `for_each_backend!(my_suite, features)`: every backend, each behind the cargo feature of the
///   calling crate that compiles it in: `#[cfg(feature = "sqlite")]`, `#[cfg(feature =
///   "postgres")]`, `#[cfg(feature = "mysql")]` (for `mariadb`). The `cfg` is evaluated where the
///   macro is called, so it is the calling crate's features that count (flamingock-sqlx's tests).
///
/// A test that only one backend has goes inside the suite through [`if_backend!`].
///
/// ```
/// macro_rules! my_suite {
///     ($name:ident, $db:ty, $backend:expr) => {
///         mod $name {
///             pub const BACKEND: flamingock_testkit::Backend = $backend;
///             pub type Db = $db;
///         }
///     };
/// }
/// flamingock_testkit::for_each_backend!(my_suite);
/// assert_eq!(mariadb::BACKEND, flamingock_testkit::Backend::MySql);
/// ```
#[macro_export]
macro_rules! for_each_backend {
    (@stamp $suite:ident, sqlite, $(#[$attr:meta])*) => {
        $(#[$attr])*
        $suite!(sqlite, $crate::sqlx::Sqlite, $crate::Backend::Sqlite);
    };
    (@stamp $suite:ident, postgres, $(#[$attr:meta])*) => {
        $(#[$attr])*
        $suite!(postgres, $crate::sqlx::Postgres, $crate::Backend::Postgres);
    };
    (@stamp $suite:ident, mariadb, $(#[$attr:meta])*) => {
        $(#[$attr])*
        $suite!(mariadb, $crate::sqlx::MySql, $crate::Backend::MySql);
    };
    ($suite:ident) => {
        $crate::for_each_backend!($suite, [sqlite, postgres, mariadb]);
    };
    ($suite:ident, servers) => {
        $crate::for_each_backend!($suite, [postgres, mariadb]);
    };
    ($suite:ident, features) => {
        $crate::for_each_backend!(@stamp $suite, sqlite, #[cfg(feature = "sqlite")]);
        $crate::for_each_backend!(@stamp $suite, postgres, #[cfg(feature = "postgres")]);
        $crate::for_each_backend!(@stamp $suite, mariadb, #[cfg(feature = "mysql")]);
    };
    ($suite:ident, [$($backend:ident),+ $(,)?]) => {
        $($crate::for_each_backend!(@stamp $suite, $backend,);)+
    };
}

/// Inside a suite stamped by [`for_each_backend!`], items that only one backend's module gets:
/// `if_backend!(postgres, $name, { ... })` writes the items in braces where `$name` is
/// `postgres`, and nothing in the other modules. The first argument is `sqlite`, `postgres` or
/// `mariadb`.
///
/// ```
/// macro_rules! my_suite {
///     ($name:ident, $db:ty, $backend:expr) => {
///         mod $name {
///             flamingock_testkit::if_backend!(postgres, $name, {
///                 pub const ONLY_HERE: bool = true;
///             });
///         }
///     };
/// }
/// flamingock_testkit::for_each_backend!(my_suite);
/// assert!(postgres::ONLY_HERE);
/// ```
#[macro_export]
macro_rules! if_backend {
    (sqlite, sqlite, { $($item:tt)* }) => { $($item)* };
    (postgres, postgres, { $($item:tt)* }) => { $($item)* };
    (mariadb, mariadb, { $($item:tt)* }) => { $($item)* };
    (sqlite, $name:ident, { $($item:tt)* }) => {};
    (postgres, $name:ident, { $($item:tt)* }) => {};
    (mariadb, $name:ident, { $($item:tt)* }) => {};
}
