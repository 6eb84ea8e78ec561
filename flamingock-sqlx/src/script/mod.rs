//! Generic: running the SQL files of `flamingock::sql_units!` on an SQL database. The audit
//! store and every [`SqlTarget`](crate::SqlTarget) offer their units an [`SqlScripts`], which
//! runs a file inside the unit's transaction (as one batch, like sqlx's migrator) or, for a file
//! that must run outside one, statement by statement on one connection ([`split_statements`]).

mod split;

use std::any::Any;
use std::sync::Arc;

use async_trait::async_trait;
use sqlx::{AssertSqlSafe, Database, Executor, Pool, Transaction};

pub use split::{ScriptDialect, ScriptStatement, split_statements};

/// Why an SQL file did not run to its end.
#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    /// The unit's transaction is not one of this database: the unit reached the wrong target.
    #[error("the unit's transaction is not a {expected} transaction, so the file cannot run in it")]
    WrongTransaction {
        /// The transaction type the file needs.
        expected: &'static str,
    },
    /// No connection could be had for a file that runs outside a transaction.
    #[error("could not get a connection to run the file on")]
    Connect(#[source] sqlx::Error),
    /// The file, run as one batch in the unit's transaction, failed (the transaction is rolled
    /// back by the engine).
    #[error("the file failed")]
    Batch(#[source] sqlx::Error),
    /// One statement of a file run statement by statement failed; the ones before it stay done.
    #[error(
        "statement {number} of {count} (line {line}) failed; the {done} before it ran and stay in place"
    )]
    Statement {
        /// Which statement failed (1-based).
        number: usize,
        /// How many statements the file has.
        count: usize,
        /// The 1-based line the statement starts on.
        line: u32,
        /// How many statements ran before it (and stay done).
        done: usize,
        /// The database's error.
        #[source]
        source: sqlx::Error,
    },
}

/// What runs SQL files on one database: offered as `&SqlScripts` by the audit store (for its own
/// database) and by each [`SqlTarget`](crate::SqlTarget).
#[derive(Clone)]
pub struct SqlScripts {
    runner: Arc<dyn ScriptRunner>,
}

impl std::fmt::Debug for SqlScripts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlScripts")
            .field("dialect", &self.dialect())
            .finish_non_exhaustive()
    }
}

impl SqlScripts {
    /// Scripts on `pool`'s database.
    pub fn new<DB: ScriptBackend>(pool: Pool<DB>) -> Self {
        Self {
            runner: DB::runner(pool),
        }
    }

    /// The database's quoting rules, for [`split_statements`].
    pub fn dialect(&self) -> ScriptDialect {
        self.runner.dialect()
    }

    /// Runs `sql` as one batch in `transaction` (which must be a `sqlx::Transaction` of this
    /// database, as the unit's transaction on it is).
    pub async fn run_in_transaction(
        &self,
        transaction: &mut (dyn Any + Send),
        sql: &str,
    ) -> Result<(), ScriptError> {
        self.runner.run_in(transaction, sql).await
    }

    /// Runs `statements` one by one, in order, each on its own (no transaction), on one
    /// connection, so that session settings (`SET search_path`) carry to the next statement.
    pub async fn run_each(&self, statements: &[ScriptStatement]) -> Result<(), ScriptError> {
        self.runner.run_each(statements).await
    }
}

/// A database whose SQL files [`SqlScripts`] can run: SQLite, PostgreSQL, MySQL/MariaDB.
pub trait ScriptBackend: Database {
    /// Its quoting rules.
    const DIALECT: ScriptDialect;
    #[doc(hidden)]
    fn runner(pool: Pool<Self>) -> Arc<dyn ScriptRunner>;
}

macro_rules! script_backend {
    ($feature:literal, $db:ty, $dialect:ident) => {
        #[cfg(feature = $feature)]
        impl ScriptBackend for $db {
            const DIALECT: ScriptDialect = ScriptDialect::$dialect;
            fn runner(pool: Pool<Self>) -> Arc<dyn ScriptRunner> {
                Arc::new(PoolRunner { pool })
            }
        }
    };
}
script_backend!("sqlite", sqlx::Sqlite, Sqlite);
script_backend!("postgres", sqlx::Postgres, Postgres);
script_backend!("mysql", sqlx::MySql, MySql);

/// Runs files on one database (the backend's [`PoolRunner`]).
#[doc(hidden)]
#[async_trait]
pub trait ScriptRunner: Send + Sync {
    fn dialect(&self) -> ScriptDialect;
    async fn run_in(
        &self,
        transaction: &mut (dyn Any + Send),
        sql: &str,
    ) -> Result<(), ScriptError>;
    async fn run_each(&self, statements: &[ScriptStatement]) -> Result<(), ScriptError>;
}

struct PoolRunner<DB: Database> {
    pool: Pool<DB>,
}

/// SQL text from a file embedded at compile time, after placeholders: the program's own SQL,
/// as trusted as a `sqlx::migrate!` folder.
fn file_sql(text: &str) -> AssertSqlSafe<String> {
    AssertSqlSafe(text.to_owned())
}

#[async_trait]
impl<DB: ScriptBackend> ScriptRunner for PoolRunner<DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
{
    fn dialect(&self) -> ScriptDialect {
        DB::DIALECT
    }

    async fn run_in(
        &self,
        transaction: &mut (dyn Any + Send),
        sql: &str,
    ) -> Result<(), ScriptError> {
        let transaction = transaction
            .downcast_mut::<Transaction<'static, DB>>()
            .ok_or(ScriptError::WrongTransaction { expected: DB::NAME })?;
        sqlx::raw_sql(file_sql(sql))
            .execute(&mut **transaction)
            .await
            .map(|_| ())
            .map_err(ScriptError::Batch)
    }

    async fn run_each(&self, statements: &[ScriptStatement]) -> Result<(), ScriptError> {
        let mut connection = self.pool.acquire().await.map_err(ScriptError::Connect)?;
        for (done, statement) in statements.iter().enumerate() {
            sqlx::raw_sql(file_sql(&statement.text))
                .execute(&mut *connection)
                .await
                .map_err(|source| ScriptError::Statement {
                    number: done + 1,
                    count: statements.len(),
                    line: statement.line,
                    done,
                    source,
                })?;
        }
        Ok(())
    }
}
