//! Flamingock's SQL audit store for SQLite, PostgreSQL and MySQL/MariaDB, over sqlx.
//!
//! [`connect()`] opens the store a URL names; `SqlAuditStore::sqlite` / `::postgres` / `::mysql`
//! build one on a pool the application already has. Each backend is behind its cargo feature
//! (`sqlite` by default, `postgres`, `mysql`); the logic is written once in [`SqlAuditStore`],
//! and each backend's module holds only its SQL and connection details.
//! [`SqlTarget`] makes any of these databases a target system of change units.
//!
//! Files import downward only:
//! - leaves: `dialect` (the traits a backend implements), `columns` (the audit columns, defined
//!   once), `sql` (running SQL, `ensure_table`), `pool`, `row`, `identifier`, `url`, `options`;
//! - backends: `sqlite/`, `postgres/`, `mysql/`, each with all of its SQL (audit, fenced insert,
//!   lock, marker, history) and the opening of its pool;
//! - generic: `lock/`, `summary` (the warm start's summary table), `history`, `target/`, `script/` (the SQL files of `sql_units!`), `import/`
//!   (other tools' history tables, read for the engine's import);
//! - top: `store` ([`SqlAuditStore`]) and `connect` (by URL or on an application's pool).

// Every public item is documented: this crate's are what users of `flamingock` read.
#![warn(missing_docs)]
// A build with no backend is legal (the facade's features pick them) but leaves the shared code
// unused.
#![cfg_attr(
    not(any(feature = "sqlite", feature = "postgres", feature = "mysql")),
    allow(dead_code, unused_imports, unused_macros)
)]

mod columns;
mod commit;
mod connect;
mod dialect;
mod history;
mod identifier;
mod import;
mod labels;
mod lock;
mod options;
mod pool;
mod row;
pub mod script;
mod sql;
mod sql_tx;
mod store;
mod summary;
mod target;
mod upgrade;
mod url;

#[cfg(feature = "mysql")]
mod mysql;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;

pub use connect::connect;
pub use dialect::{Dialect, TargetDialect};
pub use identifier::{MAX_IDENTIFIER_LEN, validate_identifier};
pub use labels::SQLX_VERSION;
#[doc(hidden)]
pub use labels::{SqlxTransaction, assert_sqlx_transaction};
pub use lock::DEFAULT_LOCK_TABLE;
pub use options::{DEFAULT_AUDIT_TABLE, StoreOptions};
pub use sql_tx::{SqlTransaction, SqlTx};
pub use store::SqlAuditStore;
pub use target::{DEFAULT_MARKER_TABLE, SqlTarget};
pub use url::{Backend, redact_url};

/// The audit store in a SQLite database.
#[cfg(feature = "sqlite")]
pub type SqliteAuditStore = SqlAuditStore<sqlx::Sqlite>;
/// The audit store in a PostgreSQL database.
#[cfg(feature = "postgres")]
pub type PgAuditStore = SqlAuditStore<sqlx::Postgres>;
/// The audit store in a MySQL or MariaDB database.
#[cfg(feature = "mysql")]
pub type MySqlAuditStore = SqlAuditStore<sqlx::MySql>;

/// The sqlx this crate is built on, for naming its pool and transaction types.
pub use sqlx;
