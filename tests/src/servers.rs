//! A fresh database per test on the PostgreSQL and MariaDB servers, so that tests of whole runs
//! (audit, lock, marker and user tables) isolate themselves, run in parallel and twice in a row.
//! The workspace's one copy lives in `flamingock-testkit`; these are the names the tests here use
//! for it (a server is a [`Backend`](flamingock_testkit::Backend) other than SQLite).
//!
//! Servers come from `FLAMINGOCK_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`) and `FLAMINGOCK_TEST_MYSQL_URL` (default
//! `mysql://root@127.0.0.1:3306/test`). An unreachable server skips the test with a loud
//! `SKIPPED:` line on stderr, unless `FLAMINGOCK_REQUIRE_SERVERS=1`, which makes it a failure.

pub use flamingock_testkit::{replace_database, servers_required, unique_name};

/// A database server the tests use: [`Server::Postgres`] or [`Server::MySql`].
pub type Server = flamingock_testkit::Backend;

/// A database created for one test; [`ServerDb::drop_database`] removes it.
pub type ServerDb = flamingock_testkit::FreshDb;
