//! Generic: the backend-neutral transaction parameter, `&mut SqlTx`: a unit written once that
//! runs on SQLite, PostgreSQL and MySQL/MariaDB, whichever database its target (or the audit
//! store) is.
//!
//! It is the same transaction a `&mut sqlx::Transaction<'_, DB>` parameter gets (for `TX_SHARED`
//! the one its audit row commits in), seen through a trait object: the engine's guarantees are
//! unchanged. sqlx's own `Any` driver is no substitute here: an `AnyPool` is a pool of its own,
//! and a `TX_SHARED` unit must run in the transaction of the store's pool.

use std::any::{Any, TypeId};
use std::future::Future;
use std::pin::Pin;

use flamingock_core::inject::{AcceptedTransactions, Param, ParamError, Requirement, Scope};
use sqlx::{SqlSafeStr, SqlStr, Transaction};

use crate::url::Backend;

mod sealed {
    pub trait Sealed {}
}

/// The transaction of a SQLite, PostgreSQL or MySQL/MariaDB database, whichever the unit's target
/// is: what `&mut` [`SqlTx`] refers to. Implemented by this crate's `sqlx::Transaction<'static,
/// DB>` for each enabled backend, and sealed.
pub trait SqlTransaction: Send + sealed::Sealed {
    /// Which database the transaction is on.
    fn backend(&self) -> Backend;

    #[doc(hidden)]
    fn execute_sql(
        &mut self,
        sql: SqlStr,
    ) -> Pin<Box<dyn Future<Output = Result<u64, sqlx::Error>> + Send + '_>>;

    #[doc(hidden)]
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

/// A unit's transaction on whichever SQL database its target is: a unit that takes
/// `tx: &mut SqlTx` runs unchanged on SQLite, PostgreSQL and MySQL/MariaDB.
///
/// It is the very transaction a `&mut sqlx::Transaction<'_, DB>` parameter would get, so every
/// strategy holds as for that one (`TX_SHARED`: the change commits with its audit row or not at
/// all). `execute` runs a statement on it; the backend's own transaction, for binding values or
/// reading rows, is `sqlite()`, `postgres()` or `mysql()` (methods of `SqlTx` below).
///
/// Its limits are SQL's: one statement text must mean the same on every database the unit meets,
/// so keep to the common dialect (`CREATE TABLE t (id INTEGER PRIMARY KEY, name VARCHAR(100))`,
/// `INSERT`, `UPDATE`), or branch on [`backend`](SqlTransaction::backend). Placeholders differ
/// (`?` on SQLite and MySQL, `$1` on PostgreSQL), which is why `execute` binds nothing; quoting
/// of identifiers differs too (`"t"` against `` `t` ``). On MySQL and MariaDB every DDL
/// statement commits on its own, whatever the transaction (see the README).
///
/// In a unit: `async fn execute(&self, tx: &mut flamingock::SqlTx) -> Result<(), sqlx::Error>`.
///
/// ```no_run
/// use flamingock_sqlx::SqlTx;
///
/// async fn create_clients(tx: &mut SqlTx) -> Result<(), sqlx::Error> {
///     tx.execute("CREATE TABLE clients (id INTEGER PRIMARY KEY, name VARCHAR(100) NOT NULL)")
///         .await?;
///     tx.execute("INSERT INTO clients (id, name) VALUES (1, 'Ana')").await?;
///     #[cfg(feature = "postgres")]
///     if let Some(pg) = tx.postgres() {
///         sqlx::query("UPDATE clients SET name = $1 WHERE id = 1")
///             .bind("Ana Lima")
///             .execute(&mut **pg)
///             .await?;
///     }
///     Ok(())
/// }
/// ```
pub type SqlTx = dyn SqlTransaction;

impl SqlTx {
    /// Runs one SQL statement that binds no values; returns the number of rows it affected.
    ///
    /// `sql` is a `&'static str`, or any text wrapped in `sqlx::AssertSqlSafe` (never text
    /// built from untrusted input).
    pub async fn execute(&mut self, sql: impl SqlSafeStr) -> Result<u64, sqlx::Error> {
        self.execute_sql(sql.into_sql_str()).await
    }

    /// The SQLite transaction, when the unit runs on SQLite.
    #[cfg(feature = "sqlite")]
    pub fn sqlite(&mut self) -> Option<&mut Transaction<'static, sqlx::Sqlite>> {
        self.as_any_mut().downcast_mut()
    }

    /// The PostgreSQL transaction, when the unit runs on PostgreSQL.
    #[cfg(feature = "postgres")]
    pub fn postgres(&mut self) -> Option<&mut Transaction<'static, sqlx::Postgres>> {
        self.as_any_mut().downcast_mut()
    }

    /// The MySQL/MariaDB transaction, when the unit runs on MySQL or MariaDB.
    #[cfg(feature = "mysql")]
    pub fn mysql(&mut self) -> Option<&mut Transaction<'static, sqlx::MySql>> {
        self.as_any_mut().downcast_mut()
    }
}

macro_rules! sql_transaction {
    ($feature:literal, $db:ty, $backend:ident) => {
        #[cfg(feature = $feature)]
        impl sealed::Sealed for Transaction<'static, $db> {}

        #[cfg(feature = $feature)]
        impl SqlTransaction for Transaction<'static, $db> {
            fn backend(&self) -> Backend {
                Backend::$backend
            }

            fn execute_sql(
                &mut self,
                sql: SqlStr,
            ) -> Pin<Box<dyn Future<Output = Result<u64, sqlx::Error>> + Send + '_>> {
                Box::pin(async move {
                    let done = sqlx::query(sql).execute(&mut **self).await?;
                    Ok(done.rows_affected())
                })
            }

            fn as_any_mut(&mut self) -> &mut dyn Any {
                self
            }
        }
    };
}

sql_transaction!("sqlite", sqlx::Sqlite, Sqlite);
sql_transaction!("postgres", sqlx::Postgres, Postgres);
sql_transaction!("mysql", sqlx::MySql, MySql);

/// Whether a target's transaction of type `type_id` can be taken as `&mut SqlTx`.
fn accepts(type_id: TypeId) -> bool {
    #[cfg(feature = "sqlite")]
    if type_id == TypeId::of::<Transaction<'static, sqlx::Sqlite>>() {
        return true;
    }
    #[cfg(feature = "postgres")]
    if type_id == TypeId::of::<Transaction<'static, sqlx::Postgres>>() {
        return true;
    }
    #[cfg(feature = "mysql")]
    if type_id == TypeId::of::<Transaction<'static, sqlx::MySql>>() {
        return true;
    }
    let _ = type_id;
    false
}

/// The open transaction as `&mut SqlTx`, when it is one of the three databases'.
fn as_sql_tx(transaction: &mut (dyn Any + Send)) -> Option<&mut SqlTx> {
    #[cfg(feature = "sqlite")]
    if transaction.is::<Transaction<'static, sqlx::Sqlite>>() {
        return transaction
            .downcast_mut::<Transaction<'static, sqlx::Sqlite>>()
            .map(|tx| tx as &mut SqlTx);
    }
    #[cfg(feature = "postgres")]
    if transaction.is::<Transaction<'static, sqlx::Postgres>>() {
        return transaction
            .downcast_mut::<Transaction<'static, sqlx::Postgres>>()
            .map(|tx| tx as &mut SqlTx);
    }
    #[cfg(feature = "mysql")]
    if transaction.is::<Transaction<'static, sqlx::MySql>>() {
        return transaction
            .downcast_mut::<Transaction<'static, sqlx::MySql>>()
            .map(|tx| tx as &mut SqlTx);
    }
    let _ = transaction;
    None
}

impl<'s> Param<'s> for &'s mut SqlTx {
    fn requirement() -> Requirement {
        Requirement::AnyTransaction(AcceptedTransactions {
            accepts,
            described: "the transaction of a SQLite, PostgreSQL or MySQL/MariaDB database (of \
                        the backends this build enables)",
        })
    }

    fn take(scope: &mut Scope<'s>) -> Result<Self, ParamError> {
        let transaction = scope.take_transaction().ok_or(ParamError {
            type_name: "flamingock::SqlTx",
            reason: "no open transaction (the unit is not transactional, or another parameter took it)",
        })?;
        as_sql_tx(transaction).ok_or(ParamError {
            type_name: "flamingock::SqlTx",
            reason: "the target system's transaction is not a SQL database's",
        })
    }
}

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_sqlite_transaction_is_taken_as_sql_tx_and_runs_statements() {
        let pool = sqlx::SqlitePool::connect("sqlite::memory:")
            .await
            .expect("an in-memory database");
        let mut tx = pool.begin().await.expect("a transaction");
        assert!(accepts(TypeId::of::<Transaction<'static, sqlx::Sqlite>>()));
        assert!(!accepts(TypeId::of::<String>()));
        let sql_tx = as_sql_tx(&mut tx).expect("a SQLite transaction is a SqlTx");
        assert_eq!(sql_tx.backend(), Backend::Sqlite);
        sql_tx
            .execute("CREATE TABLE t (id INTEGER)")
            .await
            .expect("DDL");
        let inserted = sql_tx
            .execute("INSERT INTO t (id) VALUES (1), (2)")
            .await
            .expect("insert");
        assert_eq!(inserted, 2);
        assert!(sql_tx.sqlite().is_some());
        assert!(as_sql_tx(&mut String::new()).is_none());
    }
}
