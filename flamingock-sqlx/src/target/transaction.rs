//! Generic, part of the target: the marker SQL ([`MarkerStatements`], built once from the validated table name) and one
//! unit's transaction on a [`SqlTarget`](super::SqlTarget), which commits the change with its
//! marker or removes the marker with the rollback of an undo.

use std::any::Any;
use std::sync::Arc;

use async_trait::async_trait;
use flamingock_core::store::OutcomeUnknown;
use flamingock_core::target::{TargetError, TargetTransaction};
use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Pool, Transaction, Type};

use crate::commit::{CommitFailure, commit_settled};

use crate::dialect::TargetDialect;
use crate::identifier::TableName;
use crate::sql::sql;

/// The marker table's SQL, built once from its validated name.
pub(super) struct MarkerStatements {
    pub(super) create: Arc<str>,
    pub(super) upsert: Arc<str>,
    pub(super) select: Arc<str>,
    pub(super) delete: Arc<str>,
}

impl MarkerStatements {
    pub(super) fn new<DB: TargetDialect>(table: &TableName) -> Arc<Self> {
        let table = table.as_str();
        Arc::new(Self {
            create: DB::create_marker_table(table).into(),
            upsert: DB::upsert_marker(table).into(),
            select: DB::select_marker(table).into(),
            delete: DB::delete_marker(table).into(),
        })
    }
}

/// One unit's transaction on a [`SqlTarget`](super::SqlTarget).
pub(super) struct SqlTargetTransaction<DB: TargetDialect> {
    pub(super) tx: Transaction<'static, DB>,
    /// Where a commit whose reply was lost is settled from (another connection).
    pub(super) pool: Pool<DB>,
    pub(super) target: String,
    pub(super) sql: Arc<MarkerStatements>,
}

impl<DB: TargetDialect> SqlTargetTransaction<DB> {
    fn error(target: String, action: &'static str) -> impl FnOnce(sqlx::Error) -> TargetError {
        move |source| TargetError {
            target,
            action,
            source: Box::new(source),
        }
    }

    /// The error of a commit that did not certainly happen: an [`OutcomeUnknown`] source when it
    /// may have.
    fn commit_error(
        target: String,
        action: &'static str,
    ) -> impl FnOnce(CommitFailure) -> TargetError {
        move |failure| TargetError {
            target,
            action,
            source: match failure {
                CommitFailure::NotCommitted(error) => Box::new(error),
                CommitFailure::Unknown(error) => Box::new(OutcomeUnknown(Box::new(error))),
            },
        }
    }
}

#[async_trait]
impl<DB> TargetTransaction for SqlTargetTransaction<DB>
where
    DB: TargetDialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    &'static str: ColumnIndex<DB::Row>,
    String: Type<DB> + for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB>,
    bool: Type<DB> + for<'q> Encode<'q, DB>,
{
    fn as_any_mut(&mut self) -> &mut (dyn Any + Send) {
        &mut self.tx
    }

    async fn commit_with_marker(
        self: Box<Self>,
        change_id: &str,
        execution_id: &str,
    ) -> Result<(), TargetError> {
        let Self {
            mut tx,
            pool,
            target,
            sql: statements,
        } = *self;
        sqlx::query(sql(&statements.upsert))
            .bind(change_id.to_owned())
            .bind(execution_id.to_owned())
            .bind(true)
            .execute(&mut *tx)
            .await
            .map_err(Self::error(target.clone(), "writing the marker"))?;
        commit_settled(tx, &pool).await.map_err(Self::commit_error(
            target,
            "committing the change with its marker",
        ))
    }

    async fn rollback(self: Box<Self>) -> Result<(), TargetError> {
        let Self { tx, target, .. } = *self;
        tx.rollback()
            .await
            .map_err(Self::error(target, "rolling back"))
    }

    async fn commit_removing_marker(self: Box<Self>, change_id: &str) -> Result<(), TargetError> {
        let Self {
            mut tx,
            pool,
            target,
            sql: statements,
        } = *self;
        sqlx::query(sql(&statements.delete))
            .bind(change_id.to_owned())
            .execute(&mut *tx)
            .await
            .map_err(Self::error(target.clone(), "removing the marker"))?;
        commit_settled(tx, &pool).await.map_err(Self::commit_error(
            target,
            "committing the rollback with the marker's removal",
        ))
    }
}
