//! `TX_SEPARATE` across databases, written once and run on two pairs: a SQLite audit store with a
//! PostgreSQL target, and a PostgreSQL audit store with a MariaDB target.
//!
//! The marker protocol (docs/architecture.md#strategies) end to end: the change commits with a marker in the target,
//! then `APPLIED` goes to the audit and the marker is removed. A run is cut short at an exact step
//! by making the audit store refuse rows (a trigger), and the next run must resolve the unit left
//! `STARTED` by the marker: present means committed (recorded `APPLIED`, not run again), absent
//! means not (applied).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use flamingock::{AuditState, Error, SqlTarget, TxStrategy, UnitOutcome};
use flamingock_tests::conformance::{Backend, BackendDb};

/// Makes a unit fail while set.
pub struct FailSwitch(pub AtomicBool);

/// Counts how many times a unit's execution ran, across runs.
#[derive(Clone, Default)]
pub struct Calls(pub Arc<AtomicU32>);

impl Calls {
    pub fn get(&self) -> u32 {
        self.0.load(Ordering::SeqCst)
    }
}

/// The marker rows of `change_id` in a target (`committed` or open ones).
fn marker_count(change_id: &str, committed: Option<bool>) -> String {
    let filter = match committed {
        None => String::new(),
        Some(true) => " AND committed = TRUE".to_owned(),
        Some(false) => " AND committed = FALSE".to_owned(),
    };
    format!("SELECT COUNT(*) FROM flamingock_marker WHERE change_id = '{change_id}'{filter}")
}

macro_rules! separate_suite {
    ($name:ident, audit = $audit:expr, target = $target_db:ty, $target:expr) => {
        mod $name {
            use super::*;

            /// The target's sqlx database, which its units are written for.
            pub type Db = $target_db;

            /// A fresh audit database and a fresh target database, or `None` when skipped.
            async fn fresh(hint: &str) -> Option<(BackendDb, BackendDb)> {
                let audit = BackendDb::create($audit, hint).await?;
                let Some(target) = BackendDb::create($target, hint).await else {
                    audit.drop().await;
                    return None;
                };
                target.execute("CREATE TABLE shipments (id INTEGER PRIMARY KEY)").await;
                Some((audit, target))
            }

            /// A run of `module` on `audit` with the target "orders" on `target`.
            async fn builder(
                audit: &BackendDb,
                target: &BackendDb,
                module: &str,
                fail: bool,
                calls: &Calls,
            ) -> flamingock::FlamingockBuilder {
                let orders = SqlTarget::<Db>::connect("orders", &target.url).await.unwrap();
                audit
                    .builder(module)
                    .target(orders)
                    .dependency(FailSwitch(AtomicBool::new(fail)))
                    .dependency(calls.clone())
            }

            mod shipping {
                use flamingock::prelude::*;
                use sqlx::{Pool, Transaction};

                use super::Db;
                use crate::separate::{Calls, FailSwitch};

                #[change_unit(id = "ship-orders", order = "1", author = "t", target_system = "orders")]
                mod ship_orders {
                    use super::*;

                    #[execution]
                    async fn execute(
                        tx: &mut Transaction<'_, Db>,
                        pool: &Pool<Db>,
                        switch: &FailSwitch,
                        calls: &Calls,
                    ) -> anyhow::Result<()> {
                        calls.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        assert!(!pool.is_closed(), "the target offers its pool");
                        sqlx::query("INSERT INTO shipments (id) VALUES (1)")
                            .execute(&mut **tx)
                            .await?;
                        if switch.0.load(std::sync::atomic::Ordering::SeqCst) {
                            anyhow::bail!("carrier unavailable");
                        }
                        Ok(())
                    }
                }
            }

            mod nothing {}

            const SHIPPING: &str = concat!(module_path!(), "::shipping");

            #[tokio::test]
            async fn a_unit_on_another_database_runs_tx_separate_and_replaces_a_stale_marker() {
                let Some((audit, target)) = fresh("sep").await else { return };
                let calls = Calls::default();
                // A run with nothing to apply still creates the target's marker table.
                let nothing = concat!(module_path!(), "::nothing");
                flamingock::run!(builder(&audit, &target, nothing, false, &calls).await.allow_no_units())
                    .await
                    .unwrap();
                target
                    .execute(
                        "INSERT INTO flamingock_marker (change_id, execution_id, committed, created_at) \
                         VALUES ('ship-orders', 'an-older-run', TRUE, '2020-01-01 00:00:00')",
                    )
                    .await;

                let report = flamingock::run!(builder(&audit, &target, SHIPPING, false, &calls).await)
                    .await
                    .unwrap();
                assert_eq!(report.applied(), ["ship-orders"]);
                assert_eq!(report.units[0].tx_strategy, TxStrategy::Separate);
                let entries = audit.entries().await;
                let states: Vec<_> = entries.iter().map(|e| e.state).collect();
                assert_eq!(states, [AuditState::Started, AuditState::Applied]);
                assert!(entries.iter().all(|e| e.tx_strategy == TxStrategy::Separate));
                assert!(entries.iter().all(|e| e.target_system == "orders"));
                assert_eq!(target.count("SELECT COUNT(*) FROM shipments").await, 1);
                assert!(!audit.table_exists("shipments").await, "the change went to the target");
                assert_eq!(target.count(&marker_count("ship-orders", None)).await, 0, "marker removed");

                let again = flamingock::run!(builder(&audit, &target, SHIPPING, false, &calls).await)
                    .await
                    .unwrap();
                assert_eq!(again.count(UnitOutcome::AlreadyApplied), 1);
                assert_eq!(calls.get(), 1, "applied exactly once");
                audit.drop().await;
                target.drop().await;
            }

            #[tokio::test]
            async fn a_foreign_marker_table_is_refused_before_anything_runs() {
                let Some((audit, target)) = fresh("foreign").await else { return };
                target.execute("CREATE TABLE flamingock_marker (note TEXT)").await;
                let calls = Calls::default();
                let error = flamingock::run!(builder(&audit, &target, SHIPPING, false, &calls).await)
                    .await
                    .unwrap_err();
                assert!(matches!(error, Error::Target(_)), "{error}");
                let message = error.to_string();
                assert!(message.contains("target system \"orders\""), "{message}");
                assert!(message.contains("not a Flamingock marker table"), "{message}");
                assert!(message.contains("change_id, execution_id, committed"), "{message}");
                assert_eq!(calls.get(), 0);
                assert!(audit.entries().await.is_empty(), "nothing ran");
                audit.drop().await;
                target.drop().await;
            }

            #[tokio::test]
            async fn a_failing_unit_is_rolled_back_on_the_target_and_applies_once_fixed() {
                let Some((audit, target)) = fresh("sepfail").await else { return };
                let calls = Calls::default();
                let error = flamingock::run!(builder(&audit, &target, SHIPPING, true, &calls).await)
                    .await
                    .unwrap_err();
                assert!(error.to_string().contains("carrier unavailable"), "{error}");
                assert_eq!(error.report().unwrap().units[0].outcome, UnitOutcome::Failed);
                assert_eq!(target.count("SELECT COUNT(*) FROM shipments").await, 0, "rolled back");
                assert_eq!(target.count(&marker_count("ship-orders", None)).await, 0);

                let report = flamingock::run!(builder(&audit, &target, SHIPPING, false, &calls).await)
                    .await
                    .unwrap();
                assert_eq!(report.applied(), ["ship-orders"]);
                use AuditState::*;
                assert_eq!(audit.states_of("ship-orders").await, [Started, Failed, Started, Applied]);
                assert_eq!(target.count("SELECT COUNT(*) FROM shipments").await, 1);
                audit.drop().await;
                target.drop().await;
            }

            #[tokio::test]
            async fn a_marker_present_means_committed_so_the_unit_is_recorded_not_run_again() {
                let Some((audit, target)) = fresh("present").await else { return };
                let calls = Calls::default();
                // Cut the run between the target's commit and the APPLIED row.
                audit.refuse_audit_states(&[AuditState::Applied]).await;
                let error = flamingock::run!(builder(&audit, &target, SHIPPING, false, &calls).await)
                    .await
                    .unwrap_err();
                assert!(error.to_string().contains("the marker keeps the outcome"), "{error}");
                let interrupted_run = error.report().unwrap().execution_id.clone();
                assert_eq!(audit.states_of("ship-orders").await, [AuditState::Started]);
                assert_eq!(target.count(&marker_count("ship-orders", Some(true))).await, 1);
                assert_eq!(target.count("SELECT COUNT(*) FROM shipments").await, 1);

                audit.accept_audit_states().await;
                let report = flamingock::run!(builder(&audit, &target, SHIPPING, false, &calls).await)
                    .await
                    .unwrap();
                assert_eq!(report.units[0].outcome, UnitOutcome::RecoveredApplied);
                assert_eq!(calls.get(), 1, "recorded from the marker, not run again");
                assert_eq!(target.count("SELECT COUNT(*) FROM shipments").await, 1);
                let entries = audit.entries().await;
                let states: Vec<_> = entries.iter().map(|e| e.state).collect();
                assert_eq!(states, [AuditState::Started, AuditState::Applied]);
                let metadata = entries[1].metadata.as_ref().unwrap();
                assert_eq!(metadata["recovered_execution_id"], interrupted_run.as_str());
                assert_eq!(target.count(&marker_count("ship-orders", None)).await, 0, "marker removed");
                let again = flamingock::run!(builder(&audit, &target, SHIPPING, false, &calls).await)
                    .await
                    .unwrap();
                assert_eq!(again.count(UnitOutcome::AlreadyApplied), 1);
                audit.drop().await;
                target.drop().await;
            }

            #[tokio::test]
            async fn a_marker_absent_means_not_committed_so_the_unit_is_applied() {
                let Some((audit, target)) = fresh("absent").await else { return };
                let calls = Calls::default();
                // The try fails and nothing after STARTED reaches the audit: left STARTED.
                audit
                    .refuse_audit_states(&[AuditState::Failed, AuditState::Applied])
                    .await;
                let error = flamingock::run!(builder(&audit, &target, SHIPPING, true, &calls).await)
                    .await
                    .unwrap_err();
                assert!(matches!(error, Error::UnitFailed { .. }), "{error}");
                assert_eq!(audit.states_of("ship-orders").await, [AuditState::Started]);
                assert_eq!(target.count(&marker_count("ship-orders", None)).await, 0);
                assert_eq!(target.count("SELECT COUNT(*) FROM shipments").await, 0);

                audit.accept_audit_states().await;
                let report = flamingock::run!(builder(&audit, &target, SHIPPING, false, &calls).await)
                    .await
                    .unwrap();
                assert_eq!(report.applied(), ["ship-orders"]);
                assert_eq!(calls.get(), 2, "no marker: the unit ran again");
                use AuditState::*;
                assert_eq!(audit.states_of("ship-orders").await, [Started, Started, Applied]);
                assert_eq!(target.count("SELECT COUNT(*) FROM shipments").await, 1);
                audit.drop().await;
                target.drop().await;
            }
        }
    };
}

separate_suite!(
    sqlite_audit_postgres_target,
    audit = Backend::Sqlite,
    target = sqlx::Postgres,
    Backend::Postgres
);
separate_suite!(
    postgres_audit_mariadb_target,
    audit = Backend::Postgres,
    target = sqlx::MySql,
    Backend::MySql
);
