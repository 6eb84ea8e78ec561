//! Leaf: committing a unit's transaction so that its outcome is known even when the commit's
//! reply is lost ([`commit_settled`]).
//!
//! A commit that the server answers with an error did not happen. One whose reply never arrives
//! (a reset connection, a proxy that drops the answer, a timeout) may have: the server can still
//! be committing it while this process reads the audit again, so "the row is not there" proves
//! nothing. Where the database names its transactions (PostgreSQL's `txid_current()` and
//! `txid_status`), the transaction's id is read before `COMMIT`, and after a lost reply a fresh
//! connection asks the database what became of it, waiting while it is still in progress. Where
//! it does not, the outcome stays unknown and the engine trusts only positive evidence.

use std::time::Duration;

use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Pool, Row, Transaction, Type};

use crate::dialect::Dialect;

/// The pauses before each question about a transaction whose commit reply was lost.
const SETTLE_PAUSES: [Duration; 6] = [
    Duration::from_millis(50),
    Duration::from_millis(100),
    Duration::from_millis(250),
    Duration::from_millis(500),
    Duration::from_millis(1000),
    Duration::from_millis(2000),
];

/// Why a commit did not certainly happen.
#[derive(Debug)]
pub(crate) enum CommitFailure {
    /// It certainly did not: the server refused it, or said it aborted.
    NotCommitted(sqlx::Error),
    /// It may have: the reply was lost and the database could not be asked.
    Unknown(sqlx::Error),
}

/// Commits `tx`; after an error without a server's answer, settles the outcome through `pool`
/// where the dialect can (see the module documentation).
pub(crate) async fn commit_settled<DB>(
    mut tx: Transaction<'static, DB>,
    pool: &Pool<DB>,
) -> Result<(), CommitFailure>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    &'static str: ColumnIndex<DB::Row>,
    String: Type<DB> + for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB>,
{
    let txid: Option<String> = match DB::TRANSACTION_ID {
        Some(statement) => Some(
            sqlx::query(statement)
                .fetch_one(&mut *tx)
                .await
                .and_then(|row| row.try_get("txid"))
                // Before COMMIT: whatever failed, nothing is committed.
                .map_err(CommitFailure::NotCommitted)?,
        ),
        None => None,
    };
    commit_settled_as(tx, pool, txid).await
}

/// [`commit_settled`] for a transaction whose id (`txid`, as [`Dialect::TRANSACTION_ID`] reads
/// it) is already known, for instance from an insert's `RETURNING` clause; `None` where the
/// dialect cannot name transactions.
pub(crate) async fn commit_settled_as<DB>(
    tx: Transaction<'static, DB>,
    pool: &Pool<DB>,
    txid: Option<String>,
) -> Result<(), CommitFailure>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    &'static str: ColumnIndex<DB::Row>,
    String: Type<DB> + for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB>,
{
    let error = match tx.commit().await {
        Ok(()) => return Ok(()),
        Err(error) if crate::sql::reply_may_be_lost(&error) => error,
        // The server answered (or nothing was sent): it did not commit.
        Err(error) => return Err(CommitFailure::NotCommitted(error)),
    };
    let (Some(txid), Some(statement)) = (txid, DB::TRANSACTION_STATUS) else {
        return Err(CommitFailure::Unknown(error));
    };
    for pause in SETTLE_PAUSES {
        tokio::time::sleep(pause).await;
        let status: Result<Option<String>, sqlx::Error> = sqlx::query(statement)
            .bind(txid.clone())
            .fetch_one(pool)
            .await
            .and_then(|row| row.try_get("status"));
        match status.as_ref().map(Option::as_deref) {
            Ok(Some("committed")) => {
                tracing::warn!(%error, txid, "a commit's reply was lost; the database says it committed");
                return Ok(());
            }
            Ok(Some("aborted")) => {
                tracing::warn!(%error, txid, "a commit's reply was lost; the database says it aborted");
                return Err(CommitFailure::NotCommitted(error));
            }
            Ok(Some(status)) => {
                tracing::warn!(
                    txid,
                    status,
                    "a commit's reply was lost; its transaction is still in progress"
                )
            }
            // Too old for the database to remember (it cannot be, moments later): unknown.
            Ok(None) => break,
            Err(read) => {
                tracing::warn!(error = %read, txid, "cannot ask the database yet what became of a commit whose reply was lost")
            }
        }
    }
    Err(CommitFailure::Unknown(error))
}
