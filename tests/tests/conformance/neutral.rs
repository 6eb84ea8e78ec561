//! Units written once against `&mut flamingock::SqlTx`, run unchanged on SQLite, PostgreSQL and
//! MariaDB: applied in the audit store's own transaction, a failure's work rolled back with it,
//! and undone by their rollback methods.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use flamingock::{AuditState, ChangeUnit, Error, UndoScope};
use flamingock_tests::conformance::{Backend, BackendDb};

/// Makes `neutral-seed` fail after its inserts while set.
pub struct FailAfterInsert(pub AtomicBool);

/// The backend each `neutral-seed` execution saw through `SqlTx::backend`, and the count it read
/// through the backend's own transaction.
#[derive(Default, Clone)]
pub struct Seen(pub Arc<Mutex<Vec<(flamingock::Backend, i64)>>>);

/// The units, once: no backend's type is named in them.
mod units {
    use flamingock::prelude::*;

    #[change_unit(id = "neutral-create", order = "1", author = "t")]
    mod create {
        #[execution]
        async fn execute(tx: &mut flamingock::SqlTx) -> Result<(), flamingock::sqlx::Error> {
            tx.execute(
                "CREATE TABLE neutral_clients (id INTEGER PRIMARY KEY, name VARCHAR(100) NOT NULL)",
            )
            .await?;
            Ok(())
        }
    }

    #[change_unit(id = "neutral-seed", order = "2", author = "t")]
    mod seed {
        use crate::neutral::{FailAfterInsert, Seen};

        #[execution]
        async fn execute(
            tx: &mut flamingock::SqlTx,
            fail: &FailAfterInsert,
            seen: &Seen,
        ) -> Result<(), flamingock::BoxError> {
            let inserted = tx
                .execute("INSERT INTO neutral_clients (id, name) VALUES (1, 'Ana'), (2, 'Bo')")
                .await?;
            assert_eq!(inserted, 2, "rows affected");
            let count = super::count_through_the_backend(tx).await?;
            seen.0
                .lock()
                .expect("not poisoned")
                .push((tx.backend(), count));
            if fail.0.load(std::sync::atomic::Ordering::SeqCst) {
                return Err("told to fail after its inserts".into());
            }
            Ok(())
        }

        #[rollback_execution]
        async fn rollback(tx: &mut flamingock::SqlTx) -> Result<(), flamingock::sqlx::Error> {
            tx.execute("DELETE FROM neutral_clients WHERE id IN (1, 2)")
                .await?;
            Ok(())
        }
    }

    /// What a unit does where dialects differ: the backend's own transaction.
    pub async fn count_through_the_backend(
        tx: &mut flamingock::SqlTx,
    ) -> Result<i64, flamingock::sqlx::Error> {
        const COUNT: &str = "SELECT COUNT(*) FROM neutral_clients";
        if let Some(tx) = tx.sqlite() {
            return flamingock::sqlx::query_scalar(COUNT)
                .fetch_one(&mut **tx)
                .await;
        }
        if let Some(tx) = tx.postgres() {
            return flamingock::sqlx::query_scalar(COUNT)
                .fetch_one(&mut **tx)
                .await;
        }
        let tx = tx.mysql().expect("one of the three databases");
        flamingock::sqlx::query_scalar(COUNT)
            .fetch_one(&mut **tx)
            .await
    }
}

fn facade_backend(backend: Backend) -> flamingock::Backend {
    match backend {
        Backend::Sqlite => flamingock::Backend::Sqlite,
        Backend::Postgres => flamingock::Backend::Postgres,
        Backend::MySql => flamingock::Backend::MySql,
    }
}

/// The audit states of one try that ended in `last`: the audit store's own transaction, or on
/// MySQL (whose DDL commits) the marker protocol's `STARTED` first.
fn one_try(backend: Backend, last: AuditState) -> Vec<AuditState> {
    if backend.shares_transactions() {
        vec![last]
    } else {
        vec![AuditState::Started, last]
    }
}

macro_rules! neutral_suite {
    ($name:ident, $db:ty, $backend:expr) => {
        mod $name {
            use super::*;

            #[tokio::test]
            async fn a_unit_written_once_applies_rolls_back_on_failure_and_undoes() {
                let backend: Backend = $backend;
                let Some(db) = BackendDb::create(backend, "neutral").await else {
                    return;
                };
                let module = "conformance::neutral::units";
                let seen = Seen::default();
                let builder = |fail: bool| {
                    db.builder(module)
                        .dependency(FailAfterInsert(AtomicBool::new(fail)))
                        .dependency(seen.clone())
                };

                let error = flamingock::run!(builder(true)).await.unwrap_err();
                assert!(matches!(error, Error::UnitFailed { .. }), "{error}");
                assert!(
                    db.table_exists("neutral_clients").await,
                    "the first unit applied"
                );
                assert_eq!(
                    db.count("SELECT COUNT(*) FROM neutral_clients").await,
                    0,
                    "the failed unit's inserts were rolled back with its transaction"
                );
                assert_eq!(
                    db.states_of("neutral-seed").await,
                    one_try(backend, AuditState::Failed)
                );

                let report = flamingock::run!(builder(false))
                    .await
                    .expect("the retry applies");
                assert_eq!(report.applied(), ["neutral-seed"]);
                assert_eq!(db.count("SELECT COUNT(*) FROM neutral_clients").await, 2);
                let expected = facade_backend(backend);
                assert_eq!(
                    *seen.0.lock().expect("not poisoned"),
                    [(expected, 2), (expected, 2)],
                    "each try saw its own inserts, on this backend"
                );

                let engine = db.builder(module).build().await.expect("the store opens");
                let undone = engine
                    .undo(ChangeUnit::registered(), &UndoScope::Last(1))
                    .await
                    .expect("the seed is undone");
                assert_eq!(undone.rolled_back(), ["neutral-seed"]);
                assert_eq!(db.count("SELECT COUNT(*) FROM neutral_clients").await, 0);
                assert_eq!(
                    db.states_of("neutral-seed").await.last(),
                    Some(&AuditState::RolledBack)
                );
                db.drop().await;
            }
        }
    };
}

flamingock_testkit::for_each_backend!(neutral_suite);
