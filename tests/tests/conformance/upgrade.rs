//! The audit table of the first released shape (`tests/fixtures/audit-shape-1`: the tables and
//! rows exactly as main created them before the `system_version` column), upgraded in place on
//! SQLite, PostgreSQL and MariaDB: a store that only reads still answers a pending check and
//! refuses, with what to do, to read rows it cannot; the first run adds the column under the
//! lock, fills it from the rows' metadata, keeps every row as it was and applies what is new;
//! eight instances upgrading one table at once add the column once.

use flamingock::{AuditState, ChangeUnit, HistoryQuery, UnitOutcome};
use flamingock_tests::conformance::{Backend, BackendDb};

mod units {
    use flamingock::prelude::*;

    #[change_unit(id = "up-base", order = "1", author = "ana", transactional = false)]
    mod base {
        #[execution]
        fn execute() {}
    }

    #[change_unit(
        id = "up-1-2",
        order = "2",
        author = "ana",
        system_version = "1.2.0",
        transactional = false
    )]
    mod one_two {
        #[execution]
        fn execute() {}
    }

    #[change_unit(
        id = "up-always",
        order = "3",
        author = "bo",
        run_always = true,
        transactional = false
    )]
    mod always {
        #[execution]
        fn execute() {}
    }

    #[change_unit(
        id = "up-1-3-failed",
        order = "4",
        author = "bo",
        system_version = "1.3.0",
        transactional = false
    )]
    mod one_three {
        #[execution]
        fn execute() {}
    }

    #[change_unit(id = "up-1-4", order = "5", author = "ana", system_version = "1.4.0")]
    mod one_four {
        #[execution]
        async fn execute(tx: &mut flamingock::SqlTx) -> Result<(), flamingock::sqlx::Error> {
            tx.execute("CREATE TABLE up_items (id INTEGER PRIMARY KEY)")
                .await?;
            Ok(())
        }
    }
}

const MODULE: &str = "conformance::upgrade::units";

/// The fixture of `backend`, with each `{{checksum:ID}}` replaced by unit ID's checksum now.
fn fixture(backend: Backend) -> String {
    let file = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
        Backend::MySql => "mysql",
    };
    let path = format!(
        "{}/fixtures/audit-shape-1/{file}.sql",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    for unit in ChangeUnit::registered() {
        text = text.replace(&format!("{{{{checksum:{}}}}}", unit.id), unit.checksum);
    }
    assert!(
        !text.contains("{{checksum:up-"),
        "every unit of the fixture is declared here"
    );
    text
}

/// Rows of the first shape that have a version column (0 before the upgrade: the column is not
/// there, which the statement reports as an error, so count on the column list instead).
async fn has_version_column(db: &BackendDb) -> bool {
    let sql = match db.backend {
        Backend::Sqlite => {
            "SELECT COUNT(*) FROM pragma_table_info('flamingock_audit_log') WHERE name = 'system_version'"
        }
        Backend::Postgres => {
            "SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = current_schema() \
             AND table_name = 'flamingock_audit_log' AND column_name = 'system_version'"
        }
        Backend::MySql => {
            "SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = DATABASE() \
             AND table_name = 'flamingock_audit_log' AND column_name = 'system_version'"
        }
    };
    db.count(sql).await == 1
}

/// The fixture's rows as (change id, state, system version), in row order.
const FIXTURE_ROWS: [(&str, AuditState, Option<&str>); 8] = [
    ("up-base", AuditState::Started, None),
    ("up-base", AuditState::Applied, None),
    ("up-1-2", AuditState::Started, Some("1.2.0")),
    ("up-1-2", AuditState::Applied, Some("1.2.0")),
    ("up-always", AuditState::Applied, None),
    ("up-1-3-failed", AuditState::Started, Some("1.3.0")),
    ("up-1-3-failed", AuditState::Failed, Some("1.3.0")),
    (
        "up-1-3-failed",
        AuditState::ManualMarkedAsApplied,
        Some("1.3.0"),
    ),
];

async fn a_table_of_the_first_shape_is_upgraded_in_place_by_the_first_run(backend: Backend) {
    let Some(db) = BackendDb::create(backend, "upgrade").await else {
        return;
    };
    db.execute(&fixture(backend)).await;
    assert!(!has_version_column(&db).await);

    // A store that only reads: states read the same on the earlier shape; whole rows need the
    // column, and the refusal says what to do. Nothing is altered.
    let check = flamingock::pending(db.builder(MODULE))
        .await
        .expect("a pending check reads an audit table of the earlier shape");
    let pending: Vec<&str> = check.pending.iter().map(String::as_str).collect();
    assert_eq!(pending, ["up-1-4"], "{check:?}");
    let reader = db
        .builder(MODULE)
        .read_only(true)
        .build()
        .await
        .expect("the store opens to read");
    let error = reader
        .store()
        .history(&HistoryQuery::new())
        .await
        .expect_err("a reader cannot upgrade the table");
    let message = error.to_string();
    assert!(
        message.contains("earlier release") && message.contains("system_version"),
        "{message}"
    );
    assert!(!has_version_column(&db).await, "a reader alters nothing");

    // The first run upgrades the table, then applies what is new.
    let report = flamingock::run!(db.builder(MODULE))
        .await
        .expect("the run upgrades the table and applies the new unit");
    let outcomes: Vec<(&str, UnitOutcome)> = report
        .units
        .iter()
        .map(|u| (u.change_id.as_str(), u.outcome))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("up-base", UnitOutcome::AlreadyApplied),
            ("up-1-2", UnitOutcome::AlreadyApplied),
            ("up-always", UnitOutcome::Applied),
            ("up-1-3-failed", UnitOutcome::AlreadyApplied),
            ("up-1-4", UnitOutcome::Applied),
        ]
    );
    assert!(has_version_column(&db).await);
    // Filled in the column itself, not only read from the metadata.
    let filled = db
        .count("SELECT COUNT(*) FROM flamingock_audit_log WHERE system_version = '1.3.0'")
        .await;
    assert_eq!(filled, 3);

    // Every row of the first shape is there, as it was, with its version.
    let entries = db.entries().await;
    let old: Vec<(&str, AuditState, Option<&str>)> = entries[..8]
        .iter()
        .map(|e| (e.change_id.as_str(), e.state, e.system_version.as_deref()))
        .collect();
    assert_eq!(old, FIXTURE_ROWS);
    assert_eq!(
        entries[6].error.as_deref(),
        Some("the mail server said no\ncaused by: 550")
    );
    assert_eq!(entries[7].reason(), Some("sent by hand"));
    assert_eq!(
        entries[2].metadata_str("description"),
        Some("the 1.2 release's unit")
    );
    assert_eq!(entries[0].app_version.as_deref(), Some("0.9.0"));
    let ids: Vec<i64> = entries.iter().map(|e| e.id).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    let newest = entries.last().expect("the new unit's row");
    assert_eq!(
        (
            newest.change_id.as_str(),
            newest.state,
            newest.system_version.as_deref()
        ),
        ("up-1-4", AuditState::Applied, Some("1.4.0"))
    );

    // History filters by it, and the upgrade's lease is gone.
    let engine = db.builder(MODULE).build().await.expect("the store opens");
    let rows = engine
        .store()
        .history(&HistoryQuery::new().system_version("1.2.0"))
        .await
        .expect("history by version");
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r.change_id == "up-1-2"));
    let leases = db
        .count("SELECT COUNT(*) FROM flamingock_lock WHERE lock_key LIKE '%:upgrade'")
        .await;
    assert_eq!(leases, 0);

    // A second run finds the current shape and applies only what runs always.
    let report = flamingock::run!(db.builder(MODULE)).await.unwrap();
    assert_eq!(report.applied(), ["up-always"]);
    db.drop().await;
}

async fn eight_instances_upgrading_one_table_add_the_column_once(backend: Backend) {
    let Some(db) = BackendDb::create(backend, "upgrade8").await else {
        return;
    };
    db.execute(&fixture(backend)).await;
    let mut engines = Vec::new();
    for _ in 0..8 {
        engines.push(db.builder(MODULE).build().await.expect("the store opens"));
    }
    let mut tasks = tokio::task::JoinSet::new();
    for engine in engines {
        tasks.spawn(async move { engine.store().initialize().await });
    }
    while let Some(result) = tasks.join_next().await {
        result
            .expect("the task ends")
            .expect("every instance finds the table upgraded, by itself or another");
    }
    assert!(has_version_column(&db).await);
    let entries = db.entries().await;
    let rows: Vec<(&str, AuditState, Option<&str>)> = entries
        .iter()
        .map(|e| (e.change_id.as_str(), e.state, e.system_version.as_deref()))
        .collect();
    assert_eq!(
        rows, FIXTURE_ROWS,
        "no row lost, none added, each one filled"
    );
    db.drop().await;
}

macro_rules! upgrade_suite {
    ($name:ident, $db:ty, $backend:expr) => {
        mod $name {
            #[tokio::test]
            async fn a_table_of_the_first_shape_is_upgraded_in_place_by_the_first_run() {
                super::a_table_of_the_first_shape_is_upgraded_in_place_by_the_first_run($backend)
                    .await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn eight_instances_upgrading_one_table_add_the_column_once() {
                super::eight_instances_upgrading_one_table_add_the_column_once($backend).await;
            }
        }
    };
}

flamingock_testkit::for_each_backend!(upgrade_suite);
