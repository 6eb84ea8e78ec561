//! The conformance suite, written once and run against SQLite, PostgreSQL and MariaDB: the
//! foundation end to end (macros, registry, planning, engine and audit store). `targets.rs` adds
//! SQL targets and MySQL's implicit commit of DDL; `separate.rs` and `mysql_ddl.rs` go across
//! databases.
//!
//! `conformance_suite!` stamps one module of change units and tests per backend, with
//! `type Db = sqlx::Postgres;` (and so on) so that units take that backend's transaction; each
//! test runs on a fresh database and selects only its own module's units.
//!
//! MySQL and MariaDB commit before every DDL statement, even inside a transaction, so there
//! transactional units run `TX_SEPARATE` (marker protocol) even on the audit store's database;
//! [`Backend::shares_transactions`] says where the expected audit rows differ.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use flamingock::error::ValidationProblem;
use flamingock::{AuditState, Error, StoreError, TxStrategy, UnitOutcome};
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

/// Where non-transactional units write.
pub struct OutputDir(pub PathBuf);

/// A dependency nobody registers.
pub struct NotRegistered;

/// The audit states of one applied try of a transactional unit.
fn applied(backend: Backend) -> Vec<AuditState> {
    use AuditState::*;
    if backend.shares_transactions() {
        vec![Applied]
    } else {
        vec![Started, Applied]
    }
}

/// The audit states of one failed try of a transactional unit.
fn failed(backend: Backend) -> Vec<AuditState> {
    use AuditState::*;
    if backend.shares_transactions() {
        vec![Failed]
    } else {
        vec![Started, Failed]
    }
}

/// The audit states of a failed try followed by an applied one.
fn failed_then_applied(backend: Backend) -> Vec<AuditState> {
    [failed(backend), applied(backend)].concat()
}

/// Two units with one id, outside the suite's macro so that each has its own line.
mod duplicates_located {
    use flamingock::prelude::*;

    #[change_unit(id = "twice", order = "1", author = "t")]
    mod first {
        #[execution]
        fn execute() {}
    }

    #[change_unit(id = "twice", order = "2", author = "t")]
    mod second {
        #[execution]
        fn execute() {}
    }
}

#[test]
fn duplicates_are_named_by_the_file_and_line_of_each_unit() {
    let selection = flamingock::Selection {
        module_prefixes: vec![concat!(module_path!(), "::duplicates_located").into()],
        ..Default::default()
    };
    let error = flamingock::validate_selection(&selection).unwrap_err();
    let Error::Validation(problems) = &error else {
        panic!("expected a validation error, got {error}");
    };
    assert_eq!(problems.len(), 1, "{error}");
    let ValidationProblem::DuplicateId { first, second, .. } = &problems[0] else {
        panic!("unexpected problem {:?}", problems[0]);
    };
    assert_eq!((first.file, second.file), (file!(), file!()));
    assert_ne!(first.line, second.line);
    let message = error.to_string();
    for location in [first, second] {
        let at = format!("{}:{}", location.file, location.line);
        assert!(message.contains(&at), "{message}");
    }
}

macro_rules! conformance_suite {
    ($name:ident, $db:ty, $backend:expr) => {
        mod $name {
            use super::*;

            /// The sqlx database this module's units are written for.
            pub type Db = $db;
            const BACKEND: Backend = $backend;

            async fn fresh(hint: &str) -> Option<BackendDb> {
                BackendDb::create(BACKEND, hint).await
            }

            mod ordering {
                use flamingock::prelude::*;

                #[change_unit(id = "ten", order = "10", author = "t")]
                mod ten {
                    #[execution]
                    fn execute() {}
                }

                #[change_unit(id = "two", order = "2", author = "t")]
                mod two {
                    #[execution]
                    fn execute() {}
                }

                #[change_unit(id = "one", order = "1", author = "t")]
                mod one {
                    #[execution]
                    fn execute() {}
                }
            }

            #[tokio::test]
            async fn units_run_in_natural_order() {
                let Some(db) = fresh("order").await else {
                    return;
                };
                let module = concat!(module_path!(), "::ordering");
                let report = flamingock::run!(db.builder(module)).await.unwrap();
                assert_eq!(report.applied(), ["one", "two", "ten"]);
                let mut seen: Vec<String> = Vec::new();
                for entry in db.entries().await {
                    if entry.state == AuditState::Applied {
                        seen.push(entry.change_id);
                    }
                }
                assert_eq!(seen, ["one", "two", "ten"]);
                let mut rows: Vec<String> = db
                    .entries()
                    .await
                    .into_iter()
                    .map(|e| e.change_id)
                    .collect();
                rows.dedup();
                assert_eq!(
                    rows,
                    ["one", "two", "ten"],
                    "each unit's rows together, in order"
                );
                for id in ["one", "two", "ten"] {
                    assert_eq!(db.states_of(id).await, applied(BACKEND), "{id}");
                }
                let again = flamingock::run!(db.builder(module)).await.unwrap();
                assert_eq!(again.count(UnitOutcome::AlreadyApplied), 3);
                db.drop().await;
            }

            mod duplicate_ids {
                use flamingock::prelude::*;

                #[change_unit(id = "same", order = "1", author = "t")]
                mod first {
                    #[execution]
                    fn execute() {}
                }

                #[change_unit(id = "same", order = "2", author = "t")]
                mod second {
                    #[execution]
                    fn execute() {}
                }
            }

            mod duplicate_orders {
                use flamingock::prelude::*;

                #[change_unit(id = "a", order = "7", author = "t")]
                mod a {
                    #[execution]
                    fn execute() {}
                }

                #[change_unit(id = "b", order = "07", author = "t")]
                mod b {
                    #[execution]
                    fn execute() {}
                }
            }

            #[tokio::test]
            async fn duplicate_ids_and_orders_are_refused_before_anything_runs() {
                let whole = flamingock::validate().unwrap_err().to_string();
                assert!(
                    whole.contains("\"same\"") && whole.contains("\"07\""),
                    "{whole}"
                );
                let selection = flamingock::Selection {
                    module_prefixes: vec![concat!(module_path!(), "::ordering").into()],
                    ..Default::default()
                };
                flamingock::validate_selection(&selection).unwrap();
                let cases = [
                    (concat!(module_path!(), "::duplicate_ids"), "\"same\"", "id"),
                    (
                        concat!(module_path!(), "::duplicate_orders"),
                        "\"07\"",
                        "order",
                    ),
                ];
                for (module, named, what) in cases {
                    let Some(db) = fresh("dup").await else { return };
                    let error = db.builder(module).run().await.unwrap_err();
                    let Error::Validation(problems) = &error else {
                        panic!("expected a validation error, got {error}");
                    };
                    assert_eq!(problems.len(), 1, "{error}");
                    let (first, second) = match &problems[0] {
                        ValidationProblem::DuplicateId { first, second, .. } if what == "id" => {
                            (first, second)
                        }
                        ValidationProblem::DuplicateOrder { first, second, .. }
                            if what == "order" =>
                        {
                            (first, second)
                        }
                        other => panic!("unexpected problem {other:?}"),
                    };
                    // Inside this macro `line!()` is the invocation's: the distinct lines are
                    // checked by `duplicates_are_named_by_the_file_and_line_of_each_unit`.
                    assert_eq!((first.file, second.file), (file!(), file!()));
                    let message = error.to_string();
                    assert!(message.contains(named), "{message}");
                    for location in [first, second] {
                        let at = format!("{}:{}", location.file, location.line);
                        assert!(message.contains(&at), "{message}");
                    }
                    assert!(db.entries().await.is_empty(), "nothing may run");
                    db.drop().await;
                }
            }

            mod tx_failure {
                use flamingock::prelude::*;
                use sqlx::Transaction;

                use super::Db;
                use crate::suite::FailSwitch;

                #[derive(Default)]
                pub struct CreateGadgets;

                #[change_unit(id = "create-gadgets", order = "1", author = "t")]
                impl CreateGadgets {
                    #[execution]
                    async fn execute(
                        &self,
                        tx: &mut Transaction<'_, Db>,
                        switch: &FailSwitch,
                    ) -> anyhow::Result<()> {
                        sqlx::query("INSERT INTO gadgets (id) VALUES (1)")
                            .execute(&mut **tx)
                            .await?;
                        sqlx::query("INSERT INTO gadgets (id) VALUES (2)")
                            .execute(&mut **tx)
                            .await?;
                        if switch.is_on() {
                            anyhow::bail!("gadget supplier unavailable");
                        }
                        Ok(())
                    }
                }
            }

            #[tokio::test]
            async fn a_failing_transactional_unit_leaves_no_trace_and_applies_once_fixed() {
                let Some(db) = fresh("txfail").await else {
                    return;
                };
                db.execute("CREATE TABLE gadgets (id INTEGER PRIMARY KEY)")
                    .await;
                let module = concat!(module_path!(), "::tx_failure");
                let failing = db.builder(module).dependency(FailSwitch::new(true));
                let error = flamingock::run!(failing).await.unwrap_err();
                assert!(
                    error.to_string().contains("gadget supplier unavailable"),
                    "{error}"
                );
                let report = error.report().unwrap();
                assert_eq!(report.units[0].outcome, UnitOutcome::Failed);
                assert_eq!(
                    db.count("SELECT COUNT(*) FROM gadgets").await,
                    0,
                    "the transaction must have been rolled back"
                );
                assert_eq!(db.states_of("create-gadgets").await, failed(BACKEND));

                let fixed = db.builder(module).dependency(FailSwitch::new(false));
                let report = flamingock::run!(fixed).await.unwrap();
                assert_eq!(report.applied(), ["create-gadgets"]);
                let again = db.builder(module).dependency(FailSwitch::new(false));
                let report = flamingock::run!(again).await.unwrap();
                assert_eq!(report.count(UnitOutcome::AlreadyApplied), 1);
                assert_eq!(
                    db.states_of("create-gadgets").await,
                    failed_then_applied(BACKEND)
                );
                assert_eq!(
                    db.count("SELECT COUNT(*) FROM gadgets").await,
                    2,
                    "applied once"
                );
                db.drop().await;
            }

            mod non_tx_failure {
                use flamingock::prelude::*;

                use crate::suite::OutputDir;

                #[derive(Default)]
                pub struct PublishFlag;

                #[change_unit(
                    id = "publish-flag",
                    order = "1",
                    author = "t",
                    transactional = false
                )]
                impl PublishFlag {
                    #[execution]
                    fn execute(&self, out: &OutputDir) -> Result<(), std::io::Error> {
                        std::fs::write(out.0.join("flag"), "on")?;
                        Err(std::io::Error::other("broker rejected the flag"))
                    }

                    #[rollback_execution]
                    fn rollback(&self, out: &OutputDir) -> Result<(), std::io::Error> {
                        std::fs::remove_file(out.0.join("flag"))
                    }
                }
            }

            #[tokio::test]
            async fn a_failing_non_transactional_unit_is_rolled_back_by_its_rollback() {
                let Some(db) = fresh("nontx").await else {
                    return;
                };
                let dir = tempfile::tempdir().unwrap();
                let builder = db
                    .builder(concat!(module_path!(), "::non_tx_failure"))
                    .dependency(OutputDir(dir.path().to_owned()));
                let error = flamingock::run!(builder).await.unwrap_err();
                assert_eq!(
                    error.report().unwrap().units[0].outcome,
                    UnitOutcome::RolledBack
                );
                assert!(
                    !dir.path().join("flag").exists(),
                    "the rollback removed the effect"
                );
                use AuditState::*;
                assert_eq!(
                    db.states_of("publish-flag").await,
                    [Started, Failed, RolledBack]
                );
                let entries = db.entries().await;
                assert!(
                    entries
                        .iter()
                        .all(|e| e.tx_strategy == TxStrategy::NonTransactional)
                );
                assert_eq!(
                    entries[2].error.as_deref(),
                    Some("broker rejected the flag")
                );
                db.drop().await;
            }

            mod rollback_failure {
                use flamingock::prelude::*;

                #[change_unit(
                    id = "publish-topic",
                    order = "1",
                    author = "t",
                    transactional = false
                )]
                mod publish_topic {
                    use crate::suite::OutputDir;

                    #[execution]
                    async fn execute(out: &OutputDir) -> Result<(), std::io::Error> {
                        std::fs::write(out.0.join("topic"), "created")?;
                        Err(std::io::Error::other("topic config invalid"))
                    }

                    #[rollback_execution]
                    async fn rollback(_out: &OutputDir) -> Result<(), std::io::Error> {
                        Err(std::io::Error::other("broker unreachable"))
                    }
                }
            }

            #[tokio::test]
            async fn a_failing_rollback_is_recorded_with_both_errors_and_then_blocks() {
                let Some(db) = fresh("rbfail").await else {
                    return;
                };
                let dir = tempfile::tempdir().unwrap();
                let builder = || {
                    db.builder(concat!(module_path!(), "::rollback_failure"))
                        .dependency(OutputDir(dir.path().to_owned()))
                };
                let error = flamingock::run!(builder()).await.unwrap_err();
                assert_eq!(
                    error.report().unwrap().units[0].outcome,
                    UnitOutcome::RollbackFailed
                );
                use AuditState::*;
                let states = [Started, Failed, RollbackFailed];
                assert_eq!(db.states_of("publish-topic").await, states);
                let text = db.entries().await.pop().unwrap().error.unwrap();
                assert!(
                    text.contains("topic config invalid") && text.contains("broker unreachable"),
                    "{text}"
                );
                let blocked = flamingock::run!(builder()).await.unwrap_err();
                assert!(matches!(blocked, Error::Blocked { .. }), "{blocked}");
                assert_eq!(
                    db.states_of("publish-topic").await,
                    states,
                    "nothing more written"
                );
                db.drop().await;
            }

            mod interrupted {
                use flamingock::prelude::*;

                #[change_unit(id = "send-mails", order = "1", author = "t", transactional = false)]
                mod send_mails {
                    #[execution]
                    fn execute() {}
                }

                #[change_unit(id = "after-mails", order = "2", author = "t")]
                mod after_mails {
                    #[execution]
                    fn execute() {}
                }
            }

            #[tokio::test]
            async fn a_unit_left_started_blocks_the_run_and_nothing_after_it_runs() {
                let Some(db) = fresh("started").await else {
                    return;
                };
                let module = concat!(module_path!(), "::interrupted");
                flamingock::run!(db.builder(module)).await.unwrap();
                // A crash in the middle of the unit: its newest row is STARTED.
                let engine = db.builder(module).build().await.unwrap();
                let mut started = db.entries().await.remove(0);
                assert_eq!(started.change_id, "send-mails");
                started.state = AuditState::Started;
                engine.store().append(&started, None).await.unwrap();
                let rows_before = db.entries().await.len();

                let error = flamingock::run!(db.builder(module)).await.unwrap_err();
                let Error::Blocked { blocked, report } = &error else {
                    panic!("expected Blocked, got {error}");
                };
                assert_eq!(blocked[0].change_id, "send-mails");
                assert_eq!(
                    report.unit("send-mails").unwrap().outcome,
                    UnitOutcome::Blocked
                );
                let message = error.to_string();
                assert!(message.contains("manual intervention"), "{message}");
                assert!(
                    message.contains("\"send-mails\" (stage \"default\") is STARTED"),
                    "{message}"
                );
                assert!(
                    message.contains("flamingock fix send-mails --applied"),
                    "{message}"
                );
                assert_eq!(
                    db.entries().await.len(),
                    rows_before,
                    "a blocked run writes nothing"
                );
                db.drop().await;
            }

            mod missing_dependency {
                use flamingock::prelude::*;

                #[change_unit(id = "harmless", order = "1", author = "t")]
                mod harmless {
                    #[execution]
                    fn execute() {}
                }

                #[change_unit(id = "needs-config", order = "2", author = "t")]
                mod needs_config {
                    #[execution]
                    fn execute(_config: &crate::suite::NotRegistered) {}
                }
            }

            #[tokio::test]
            async fn a_missing_dependency_fails_before_any_unit_runs() {
                let Some(db) = fresh("deps").await else {
                    return;
                };
                let module = concat!(module_path!(), "::missing_dependency");
                let error = flamingock::run!(db.builder(module)).await.unwrap_err();
                let Error::MissingDependencies(missing) = &error else {
                    panic!("expected MissingDependencies, got {error}");
                };
                assert_eq!(missing.len(), 1);
                let message = error.to_string();
                assert!(message.contains("\"needs-config\""), "{message}");
                assert!(message.contains("_config"), "{message}");
                assert!(
                    message.contains("_config: &crate::suite::NotRegistered")
                        && message.contains("no `NotRegistered` is registered"),
                    "{message}"
                );
                assert!(
                    db.entries().await.is_empty(),
                    "not even the harmless unit ran"
                );
                db.drop().await;
            }

            mod always {
                use flamingock::prelude::*;

                #[change_unit(id = "refresh-stats", order = "1", author = "t", run_always = true)]
                mod refresh_stats {
                    #[execution]
                    fn execute() {}
                }
            }

            #[tokio::test]
            async fn run_always_units_apply_on_every_run() {
                let Some(db) = fresh("always").await else {
                    return;
                };
                for _ in 0..3 {
                    let builder = db.builder(concat!(module_path!(), "::always"));
                    let report = flamingock::run!(builder).await.unwrap();
                    assert_eq!(report.applied(), ["refresh-stats"]);
                }
                assert_eq!(
                    db.states_of("refresh-stats").await,
                    applied(BACKEND).repeat(3)
                );
                db.drop().await;
            }

            mod staged {
                use flamingock::prelude::*;

                #[change_unit(id = "schema-1", order = "1", author = "t", stage = "schema")]
                mod schema_1 {
                    #[execution]
                    fn execute() {}
                }

                #[change_unit(id = "data-1", order = "2", author = "t", stage = "data")]
                mod data_1 {
                    #[execution]
                    fn execute() {}
                }

                pub mod billing {
                    use flamingock::prelude::*;

                    #[change_unit(id = "billing-1", order = "3", author = "t", stage = "data")]
                    mod billing_1 {
                        #[execution]
                        fn execute() {}
                    }
                }
            }

            #[tokio::test]
            async fn a_subset_is_selected_by_stage_and_by_module() {
                let Some(db) = fresh("staged").await else {
                    return;
                };
                let module = concat!(module_path!(), "::staged");
                let billing = concat!(module_path!(), "::staged::billing");
                let report = flamingock::run!(db.builder(module).stage("schema"))
                    .await
                    .unwrap();
                assert_eq!(report.applied(), ["schema-1"]);
                let report = flamingock::run!(db.builder(billing)).await.unwrap();
                assert_eq!(report.applied(), ["billing-1"]);
                let report = flamingock::run!(db.builder(module).stage("data"))
                    .await
                    .unwrap();
                assert_eq!(report.applied(), ["data-1"]);
                assert_eq!(report.count(UnitOutcome::AlreadyApplied), 1);
                let report = flamingock::run!(db.builder(module)).await.unwrap();
                assert_eq!(report.count(UnitOutcome::AlreadyApplied), 3);
                db.drop().await;
            }

            #[tokio::test]
            async fn table_names_that_are_not_identifiers_are_refused() {
                let Some(db) = fresh("names").await else {
                    return;
                };
                let module = concat!(module_path!(), "::ordering");
                for name in ["drop table x", "audit;--", "", "1abc", "a\"b", "a`b"] {
                    let error = db
                        .builder(module)
                        .audit_table(name)
                        .run()
                        .await
                        .unwrap_err();
                    assert!(
                        matches!(error, Error::Store(StoreError::InvalidIdentifier { .. })),
                        "{name:?}: {error}"
                    );
                }
                assert_eq!(db.table_count().await, 0, "nothing was created");
                let report = db
                    .builder(module)
                    .audit_table("release_audit")
                    .run()
                    .await
                    .unwrap();
                assert_eq!(report.applied().len(), 3);
                let rows_per_unit = if BACKEND.shares_transactions() { 1 } else { 2 };
                let rows = db.count("SELECT COUNT(*) FROM release_audit").await;
                assert_eq!(rows, 3 * rows_per_unit);
                db.drop().await;
            }

            mod described {
                use flamingock::prelude::*;

                #[change_unit(
                    id = "described",
                    order = "1",
                    author = "dora",
                    description = "adds the thing",
                    system_version = "1.4.0",
                    stage = "docs"
                )]
                mod described_unit {
                    #[execution]
                    fn execute(ctx: &flamingock::ChangeContext) {
                        assert_eq!(ctx.change_id, "described");
                        assert_eq!(ctx.attempt, 1);
                    }
                }
            }

            #[tokio::test]
            async fn every_audit_column_is_filled() {
                let Some(db) = fresh("columns").await else {
                    return;
                };
                let module = concat!(module_path!(), "::described");
                let report = flamingock::run!(db.builder(module)).await.unwrap();
                assert_eq!(db.states_of("described").await, applied(BACKEND));
                let entries = db.entries().await;
                let e = entries.last().unwrap();
                assert_eq!(e.state, AuditState::Applied);
                assert!(e.id > 0);
                assert_eq!(e.execution_id, report.execution_id);
                assert_eq!(e.execution_id.chars().nth(14), Some('7'), "a UUID v7");
                assert_eq!(e.runner_id, report.runner_id);
                assert_eq!(
                    (e.change_id.as_str(), e.author.as_str()),
                    ("described", "dora")
                );
                assert_eq!((e.change_order.as_str(), e.stage.as_str()), ("1", "docs"));
                let age = chrono::Utc::now() - e.created_at.unwrap();
                assert!(
                    age.num_seconds().abs() < 60,
                    "created_at is the database's UTC clock"
                );
                assert!(e.execution_ms.is_some());
                assert!(!e.hostname.is_empty());
                assert_eq!(e.target_system, "default");
                assert_eq!(e.tx_strategy, own_database_strategy(BACKEND));
                assert_eq!(
                    e.recovery_strategy,
                    flamingock::RecoveryStrategy::ManualIntervention
                );
                assert_eq!(e.app_name.as_deref(), Some("flamingock-tests"));
                assert_eq!(e.app_version.as_deref(), Some(env!("CARGO_PKG_VERSION")));
                assert!(
                    e.source
                        .starts_with(concat!(module_path!(), "::described::described_unit ")),
                    "{}",
                    e.source
                );
                assert!(e.source.contains(concat!(file!(), ":")), "{}", e.source);
                assert_eq!(e.checksum.as_deref().map(str::len), Some(16));
                assert_eq!(e.error, None);
                let metadata = e.metadata.as_ref().unwrap();
                assert_eq!(metadata["description"], "adds the thing");
                assert_eq!(e.system_version.as_deref(), Some("1.4.0"));
                assert!(
                    metadata.get("system_version").is_none(),
                    "the version has its own column"
                );
                db.drop().await;
            }
        }
    };
}

flamingock_testkit::for_each_backend!(conformance_suite);
