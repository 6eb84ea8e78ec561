//! The foundation end to end on SQLite: macros, registry, planning, engine and audit store.
//! Each scenario's units live in their own module and each test selects its module, so the
//! scenarios share this binary without seeing each other's units.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use flamingock::error::ValidationProblem;
use flamingock::{AuditState, Error, StoreError, TxStrategy, UnitOutcome};
use flamingock_tests::TestDb;

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
    let db = TestDb::sqlite();
    let report = flamingock::run!(db.builder("sqlite_engine::ordering"))
        .await
        .unwrap();
    assert_eq!(report.applied(), ["one", "two", "ten"]);
    let applied: Vec<String> = db
        .entries()
        .await
        .into_iter()
        .map(|e| e.change_id)
        .collect();
    assert_eq!(applied, ["one", "two", "ten"]);
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
async fn duplicate_ids_and_orders_name_both_locations_before_anything_runs() {
    for (module, what) in [
        ("sqlite_engine::duplicate_ids", "id"),
        ("sqlite_engine::duplicate_orders", "order"),
    ] {
        let db = TestDb::sqlite();
        let error = db.builder(module).run().await.unwrap_err();
        let Error::Validation(problems) = &error else {
            panic!("expected a validation error, got {error}");
        };
        assert_eq!(problems.len(), 1, "{error}");
        let (first, second) = match &problems[0] {
            ValidationProblem::DuplicateId { first, second, .. } if what == "id" => (first, second),
            ValidationProblem::DuplicateOrder { first, second, .. } if what == "order" => {
                (first, second)
            }
            other => panic!("unexpected problem {other:?}"),
        };
        assert!(
            first.file.ends_with("sqlite_engine.rs") && second.file.ends_with("sqlite_engine.rs")
        );
        assert_ne!(first.line, second.line);
        let message = error.to_string();
        for location in [first, second] {
            assert!(
                message.contains(&format!("{}:{}", location.file, location.line)),
                "{message}"
            );
        }
        assert!(db.entries().await.is_empty(), "nothing may run");
    }
    let whole = flamingock::validate().unwrap_err().to_string();
    assert!(
        whole.contains("\"same\"") && whole.contains("\"07\""),
        "{whole}"
    );
    let selection = flamingock::Selection {
        module_prefixes: vec!["sqlite_engine::ordering".into()],
        ..Default::default()
    };
    flamingock::validate_selection(&selection).unwrap();
}

/// Makes a unit fail while set.
pub struct FailSwitch(pub AtomicBool);

mod tx_failure {
    use flamingock::prelude::*;
    use sqlx::{Sqlite, Transaction};

    use super::FailSwitch;

    #[derive(Default)]
    pub struct CreateGadgets;

    #[change_unit(id = "create-gadgets", order = "1", author = "t")]
    impl CreateGadgets {
        #[execution]
        async fn execute(
            &self,
            tx: &mut Transaction<'_, Sqlite>,
            switch: &FailSwitch,
        ) -> anyhow::Result<()> {
            sqlx::query("CREATE TABLE gadgets (id INTEGER PRIMARY KEY)")
                .execute(&mut **tx)
                .await?;
            sqlx::query("INSERT INTO gadgets (id) VALUES (1)")
                .execute(&mut **tx)
                .await?;
            if switch.0.load(super::Ordering::SeqCst) {
                anyhow::bail!("gadget supplier unavailable");
            }
            Ok(())
        }
    }
}

async fn table_exists(db: &TestDb, table: &str) -> bool {
    let count: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?")
            .bind(table)
            .fetch_one(&db.pool().await)
            .await
            .unwrap();
    count == 1
}

#[tokio::test]
async fn a_failing_transactional_unit_leaves_no_trace_and_applies_once_fixed() {
    let db = TestDb::sqlite();
    let module = "sqlite_engine::tx_failure";
    let failing = db
        .builder(module)
        .dependency(FailSwitch(AtomicBool::new(true)));
    let error = flamingock::run!(failing).await.unwrap_err();
    assert!(
        error.to_string().contains("gadget supplier unavailable"),
        "{error}"
    );
    assert_eq!(
        error.report().unwrap().units[0].outcome,
        UnitOutcome::Failed
    );
    assert!(
        !table_exists(&db, "gadgets").await,
        "the transaction must have been rolled back"
    );
    assert_eq!(db.states_of("create-gadgets").await, [AuditState::Failed]);

    let fixed = db
        .builder(module)
        .dependency(FailSwitch(AtomicBool::new(false)));
    let report = flamingock::run!(fixed).await.unwrap();
    assert_eq!(report.applied(), ["create-gadgets"]);
    assert!(table_exists(&db, "gadgets").await);
    let again = db
        .builder(module)
        .dependency(FailSwitch(AtomicBool::new(false)));
    let report = flamingock::run!(again).await.unwrap();
    assert_eq!(report.count(UnitOutcome::AlreadyApplied), 1);
    assert_eq!(
        db.states_of("create-gadgets").await,
        [AuditState::Failed, AuditState::Applied]
    );
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM gadgets")
        .fetch_one(&db.pool().await)
        .await
        .unwrap();
    assert_eq!(count, 1, "applied exactly once");
}

/// Where non-transactional units write.
pub struct OutputDir(pub PathBuf);

mod non_tx_failure {
    use flamingock::prelude::*;

    use super::OutputDir;

    #[derive(Default)]
    pub struct PublishFlag;

    #[change_unit(id = "publish-flag", order = "1", author = "t", transactional = false)]
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

mod rollback_failure {
    use flamingock::prelude::*;

    use super::OutputDir;

    #[change_unit(id = "publish-topic", order = "1", author = "t", transactional = false)]
    mod publish_topic {
        use super::OutputDir;

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
async fn a_failing_non_transactional_unit_is_rolled_back_by_its_rollback() {
    let db = TestDb::sqlite();
    let dir = tempfile::tempdir().unwrap();
    let builder = db
        .builder("sqlite_engine::non_tx_failure")
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
    assert_eq!(
        db.states_of("publish-flag").await,
        [
            AuditState::Started,
            AuditState::Failed,
            AuditState::RolledBack
        ]
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
}

#[tokio::test]
async fn a_failing_rollback_is_recorded_with_both_errors_and_then_blocks() {
    let db = TestDb::sqlite();
    let dir = tempfile::tempdir().unwrap();
    let builder = || {
        db.builder("sqlite_engine::rollback_failure")
            .dependency(OutputDir(dir.path().to_owned()))
    };
    let error = flamingock::run!(builder()).await.unwrap_err();
    assert_eq!(
        error.report().unwrap().units[0].outcome,
        UnitOutcome::RollbackFailed
    );
    assert_eq!(
        db.states_of("publish-topic").await,
        [
            AuditState::Started,
            AuditState::Failed,
            AuditState::RollbackFailed
        ]
    );
    let last = db.entries().await.pop().unwrap();
    let text = last.error.unwrap();
    assert!(
        text.contains("topic config invalid") && text.contains("broker unreachable"),
        "{text}"
    );

    let blocked = flamingock::run!(builder()).await.unwrap_err();
    assert!(matches!(blocked, Error::Blocked { .. }), "{blocked}");
    assert_eq!(
        db.states_of("publish-topic").await.len(),
        3,
        "nothing more was written"
    );
}

mod interrupted {
    use flamingock::prelude::*;

    #[change_unit(
        id = "send-welcome-mails",
        order = "1",
        author = "t",
        transactional = false
    )]
    mod send_welcome_mails {
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
    let db = TestDb::sqlite();
    let module = "sqlite_engine::interrupted";
    flamingock::run!(db.builder(module)).await.unwrap();
    // Simulate a crash in the middle of the unit: its newest row is STARTED.
    let engine = db.builder(module).build().await.unwrap();
    let mut started = db.entries().await.remove(0);
    assert_eq!(started.change_id, "send-welcome-mails");
    started.state = AuditState::Started;
    engine.store().append(&started, None).await.unwrap();
    let rows_before = db.entries().await.len();

    let error = flamingock::run!(db.builder(module)).await.unwrap_err();
    let Error::Blocked { blocked, report } = &error else {
        panic!("expected Blocked, got {error}");
    };
    assert_eq!(blocked[0].change_id, "send-welcome-mails");
    assert_eq!(
        report.unit("send-welcome-mails").unwrap().outcome,
        UnitOutcome::Blocked
    );
    let message = error.to_string();
    assert!(message.contains("manual intervention"), "{message}");
    assert!(
        message.contains("\"send-welcome-mails\" (stage \"default\") is STARTED"),
        "{message}"
    );
    assert!(
        message.contains("flamingock fix send-welcome-mails --applied"),
        "{message}"
    );
    assert_eq!(
        db.entries().await.len(),
        rows_before,
        "a blocked run writes nothing"
    );
}

pub struct NotRegistered;

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
        fn execute(_config: &crate::NotRegistered) {}
    }
}

#[tokio::test]
async fn a_missing_dependency_fails_before_any_unit_runs() {
    let db = TestDb::sqlite();
    let error = flamingock::run!(db.builder("sqlite_engine::missing_dependency"))
        .await
        .unwrap_err();
    let Error::MissingDependencies(missing) = &error else {
        panic!("expected MissingDependencies, got {error}");
    };
    assert_eq!(missing.len(), 1);
    let message = error.to_string();
    assert!(message.contains("\"needs-config\""), "{message}");
    assert!(message.contains("_config"), "{message}");
    assert!(
        message.contains("sqlite_engine::NotRegistered"),
        "{message}"
    );
    assert!(
        db.entries().await.is_empty(),
        "not even the harmless unit ran"
    );
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
    let db = TestDb::sqlite();
    for _ in 0..3 {
        let report = flamingock::run!(db.builder("sqlite_engine::always"))
            .await
            .unwrap();
        assert_eq!(report.applied(), ["refresh-stats"]);
    }
    assert_eq!(
        db.states_of("refresh-stats").await,
        [AuditState::Applied; 3]
    );
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
    let db = TestDb::sqlite();
    let report = flamingock::run!(db.builder("sqlite_engine::staged").stage("schema"))
        .await
        .unwrap();
    assert_eq!(report.applied(), ["schema-1"]);
    let report = flamingock::run!(db.builder("sqlite_engine::staged::billing"))
        .await
        .unwrap();
    assert_eq!(report.applied(), ["billing-1"]);
    let report = flamingock::run!(db.builder("sqlite_engine::staged").stage("data"))
        .await
        .unwrap();
    assert_eq!(report.applied(), ["data-1"]);
    assert_eq!(report.count(UnitOutcome::AlreadyApplied), 1);
    let report = flamingock::run!(db.builder("sqlite_engine::staged"))
        .await
        .unwrap();
    assert_eq!(report.count(UnitOutcome::AlreadyApplied), 3);
}

#[tokio::test]
async fn table_names_that_are_not_identifiers_are_refused() {
    let db = TestDb::sqlite();
    for name in ["drop table x", "audit;--", "", "1abc", "a\"b"] {
        let error = db
            .builder("sqlite_engine::ordering")
            .audit_table(name)
            .run()
            .await
            .unwrap_err();
        assert!(
            matches!(error, Error::Store(StoreError::InvalidIdentifier { .. })),
            "{name:?}: {error}"
        );
    }
    let pool = db.pool().await;
    let tables: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(tables, 0, "nothing was created");
    // A valid custom name is used as given.
    let report = db
        .builder("sqlite_engine::ordering")
        .audit_table("release_audit")
        .run()
        .await
        .unwrap();
    assert_eq!(report.applied().len(), 3);
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM release_audit")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows, 3);
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
    let db = TestDb::sqlite();
    let report = flamingock::run!(db.builder("sqlite_engine::described"))
        .await
        .unwrap();
    let entries = db.entries().await;
    assert_eq!(entries.len(), 1);
    let e = &entries[0];
    assert!(e.id > 0);
    assert_eq!(e.execution_id, report.execution_id);
    assert_eq!(uuid_version(&e.execution_id), '7');
    assert_eq!(e.runner_id, report.runner_id);
    assert_eq!(
        (e.change_id.as_str(), e.author.as_str()),
        ("described", "dora")
    );
    assert_eq!((e.change_order.as_str(), e.stage.as_str()), ("1", "docs"));
    assert_eq!(e.state, AuditState::Applied);
    let age = chrono::Utc::now() - e.created_at.unwrap();
    assert!(
        age.num_seconds().abs() < 60,
        "created_at is the database's UTC clock"
    );
    assert!(e.execution_ms.is_some());
    assert!(!e.hostname.is_empty());
    assert_eq!(e.target_system, "default");
    assert_eq!(e.tx_strategy, TxStrategy::Shared);
    assert_eq!(
        e.recovery_strategy,
        flamingock::RecoveryStrategy::ManualIntervention
    );
    assert_eq!(e.app_name.as_deref(), Some("flamingock-tests"));
    assert_eq!(e.app_version.as_deref(), Some(env!("CARGO_PKG_VERSION")));
    assert!(
        e.source
            .starts_with("sqlite_engine::described::described_unit "),
        "{}",
        e.source
    );
    assert!(e.source.contains("sqlite_engine.rs:"), "{}", e.source);
    assert_eq!(e.checksum.as_deref().map(str::len), Some(16));
    assert_eq!(e.error, None);
    let metadata = e.metadata.as_ref().unwrap();
    assert_eq!(metadata["description"], "adds the thing");
    assert_eq!(metadata["system_version"], "1.4.0");
}

fn uuid_version(uuid: &str) -> char {
    uuid.chars().nth(14).unwrap()
}
