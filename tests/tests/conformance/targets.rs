//! SQL targets in the conformance suite, written once and run against SQLite, PostgreSQL and
//! MariaDB: a `SqlTarget` on the audit store's own database (one transaction with the audit row,
//! or on MySQL/MariaDB the marker protocol), a unit naming an unknown target, and what a unit that
//! fails after its DDL leaves behind: nothing where DDL is transactional; on MySQL/MariaDB, which
//! commit before every DDL statement, part of the change, recorded `ROLLBACK_FAILED` so that the
//! unit waits for a person instead of running twice.

use std::sync::atomic::{AtomicBool, Ordering};

use flamingock::{AuditState, Error, SqlTarget, UnitOutcome};
use flamingock_tests::conformance::{Backend, BackendDb, own_database_strategy};

/// Makes a unit fail while set.
pub struct FailSwitch(pub AtomicBool);

impl FailSwitch {
    pub fn new(on: bool) -> Self {
        Self(AtomicBool::new(on))
    }

    pub fn is_on(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

macro_rules! target_suite {
    ($name:ident, $db:ty, $backend:expr) => {
        mod $name {
            use super::*;

            /// The sqlx database this module's units are written for.
            pub type Db = $db;
            const BACKEND: Backend = $backend;

            async fn fresh(hint: &str) -> Option<BackendDb> {
                BackendDb::create(BACKEND, hint).await
            }

            mod own_database_target {
                use flamingock::prelude::*;
                use sqlx::{Pool, Transaction};

                use super::Db;

                #[change_unit(
                    id = "fill-reports",
                    order = "1",
                    author = "t",
                    target_system = "reports"
                )]
                mod fill_reports {
                    use super::*;

                    #[execution]
                    async fn execute(
                        tx: &mut Transaction<'_, Db>,
                        pool: &Pool<Db>,
                    ) -> Result<(), sqlx::Error> {
                        assert!(!pool.is_closed(), "the target offers its pool");
                        sqlx::query("INSERT INTO reports (id) VALUES (1)")
                            .execute(&mut **tx)
                            .await?;
                        Ok(())
                    }
                }

                #[change_unit(
                    id = "misplaced",
                    order = "2",
                    author = "t",
                    target_system = "warehouse"
                )]
                mod misplaced {
                    #[execution]
                    fn execute() {}
                }
            }

            #[tokio::test]
            async fn a_target_on_the_audit_store_database_shares_its_transaction() {
                let Some(db) = fresh("owntarget").await else {
                    return;
                };
                db.execute("CREATE TABLE reports (id INTEGER PRIMARY KEY)")
                    .await;
                let module = concat!(module_path!(), "::own_database_target::fill_reports");
                let target =
                    || async { SqlTarget::<Db>::connect("reports", &db.url).await.unwrap() };
                let report = flamingock::run!(db.builder(module).target(target().await))
                    .await
                    .unwrap();
                assert_eq!(report.applied(), ["fill-reports"]);
                let expected = own_database_strategy(BACKEND);
                assert_eq!(report.units[0].tx_strategy, expected);
                let entries = db.entries().await;
                assert!(
                    entries
                        .iter()
                        .all(|e| e.tx_strategy == expected && e.target_system == "reports")
                );
                assert_eq!(db.count("SELECT COUNT(*) FROM reports").await, 1);
                let again = flamingock::run!(db.builder(module).target(target().await))
                    .await
                    .unwrap();
                assert_eq!(again.count(UnitOutcome::AlreadyApplied), 1);
                db.drop().await;
            }

            #[tokio::test]
            async fn an_unknown_target_is_refused_before_anything_runs() {
                let Some(db) = fresh("unknown").await else {
                    return;
                };
                let reports = SqlTarget::<Db>::connect("reports", &db.url).await.unwrap();
                let builder = db
                    .builder(concat!(module_path!(), "::own_database_target"))
                    .target(reports);
                let error = flamingock::run!(builder).await.unwrap_err();
                let Error::UnknownTarget {
                    change_id, known, ..
                } = &error
                else {
                    panic!("expected UnknownTarget, got {error}");
                };
                assert_eq!(change_id, "misplaced");
                assert_eq!(known, &["default (the audit store's database)", "reports"]);
                assert!(error.to_string().contains("\"warehouse\""), "{error}");
                assert!(
                    db.entries().await.is_empty(),
                    "nothing ran, not even fill-reports"
                );
                db.drop().await;
            }

            mod ddl_then_failure {
                use flamingock::prelude::*;
                use sqlx::Transaction;

                use super::Db;
                use crate::targets::FailSwitch;

                #[change_unit(id = "ledger-with-ddl", order = "1", author = "t")]
                mod ledger_with_ddl {
                    use super::*;

                    #[execution]
                    async fn execute(
                        tx: &mut Transaction<'_, Db>,
                        switch: &FailSwitch,
                    ) -> anyhow::Result<()> {
                        sqlx::query("INSERT INTO ledger (id) VALUES (1)")
                            .execute(&mut **tx)
                            .await?;
                        sqlx::query("CREATE TABLE ddl_made (id INTEGER PRIMARY KEY)")
                            .execute(&mut **tx)
                            .await?;
                        if switch.is_on() {
                            anyhow::bail!("failed after its DDL");
                        }
                        Ok(())
                    }
                }
            }

            /// MySQL commits before DDL: a unit failing after its DDL keeps part of its change
            /// and must stop for a person; elsewhere the transaction undoes everything.
            #[tokio::test]
            async fn a_unit_failing_after_ddl_is_undone_or_stops_for_a_person() {
                let Some(db) = fresh("ddl").await else { return };
                db.execute("CREATE TABLE ledger (id INTEGER PRIMARY KEY)")
                    .await;
                let module = concat!(module_path!(), "::ddl_then_failure");
                let run =
                    |fail| flamingock::run!(db.builder(module).dependency(FailSwitch::new(fail)));
                let error = run(true).await.unwrap_err();
                let outcome = error.report().unwrap().units[0].outcome;
                use AuditState::*;
                if BACKEND.shares_transactions() {
                    assert_eq!(outcome, UnitOutcome::Failed, "{error}");
                    assert_eq!(db.count("SELECT COUNT(*) FROM ledger").await, 0);
                    assert!(
                        !db.table_exists("ddl_made").await,
                        "the DDL was rolled back"
                    );
                    let report = run(false).await.unwrap();
                    assert_eq!(report.applied(), ["ledger-with-ddl"]);
                    assert_eq!(db.states_of("ledger-with-ddl").await, [Failed, Applied]);
                } else {
                    assert_eq!(outcome, UnitOutcome::RollbackFailed, "{error}");
                    let message = error.to_string();
                    assert!(message.contains("failed after its DDL"), "{message}");
                    assert!(
                        message.contains("committed part of the change on its own"),
                        "{message}"
                    );
                    // What MySQL did: the insert before the DDL and the DDL itself stayed.
                    assert_eq!(db.count("SELECT COUNT(*) FROM ledger").await, 1);
                    assert!(db.table_exists("ddl_made").await);
                    let states = [Started, Failed, RollbackFailed];
                    assert_eq!(db.states_of("ledger-with-ddl").await, states);
                    let blocked = run(false).await.unwrap_err();
                    assert!(matches!(blocked, Error::Blocked { .. }), "{blocked}");
                    assert_eq!(
                        db.count("SELECT COUNT(*) FROM ledger").await,
                        1,
                        "not run again"
                    );
                    assert_eq!(db.states_of("ledger-with-ddl").await, states);
                }
                db.drop().await;
            }
        }
    };
}

flamingock_testkit::for_each_backend!(target_suite);
