//! System versions on SQLite, PostgreSQL and MariaDB: a run with `system_versions` applies only
//! the units in range (units without a version always), reports the others as out of range and
//! leaves them unapplied and unblocked; a later run with a wider range applies them; `undo
//! --to-version` rolls back, newest first, every applied unit above the version, a `TX_SHARED`
//! one and a `NON_TX` one, and never a unit without a version.

use std::sync::{Arc, Mutex};

use flamingock::{AuditState, ChangeUnit, Error, UndoScope, UnitOutcome};
use flamingock_tests::conformance::{Backend, BackendDb};

/// What the non-transactional unit did: `sent` per execution, `unsent` per rollback.
#[derive(Default, Clone)]
pub struct Mails(pub Arc<Mutex<Vec<&'static str>>>);

mod units {
    use flamingock::prelude::*;

    #[change_unit(id = "sv-base", order = "1", author = "t")]
    mod base {
        #[execution]
        async fn execute(tx: &mut flamingock::SqlTx) -> Result<(), flamingock::sqlx::Error> {
            tx.execute("CREATE TABLE sv_items (id INTEGER PRIMARY KEY)")
                .await?;
            Ok(())
        }
    }

    #[change_unit(id = "sv-1-2", order = "2", author = "t", system_version = "1.2.0")]
    mod one_two {
        #[execution]
        async fn execute(tx: &mut flamingock::SqlTx) -> Result<(), flamingock::sqlx::Error> {
            tx.execute("INSERT INTO sv_items (id) VALUES (12)").await?;
            Ok(())
        }

        #[rollback_execution]
        async fn rollback(tx: &mut flamingock::SqlTx) -> Result<(), flamingock::sqlx::Error> {
            tx.execute("DELETE FROM sv_items WHERE id = 12").await?;
            Ok(())
        }
    }

    #[change_unit(
        id = "sv-1-4-shared",
        order = "3",
        author = "t",
        system_version = "1.4.0"
    )]
    mod one_four_shared {
        #[execution]
        async fn execute(tx: &mut flamingock::SqlTx) -> Result<(), flamingock::sqlx::Error> {
            tx.execute("INSERT INTO sv_items (id) VALUES (14)").await?;
            Ok(())
        }

        #[rollback_execution]
        async fn rollback(tx: &mut flamingock::SqlTx) -> Result<(), flamingock::sqlx::Error> {
            tx.execute("DELETE FROM sv_items WHERE id = 14").await?;
            Ok(())
        }
    }

    #[change_unit(
        id = "sv-1-4-mail",
        order = "4",
        author = "t",
        system_version = "1.4.1",
        transactional = false
    )]
    mod one_four_mail {
        use crate::system_versions::Mails;

        #[execution]
        fn execute(mails: &Mails) {
            mails.0.lock().unwrap().push("sent");
        }

        #[rollback_execution]
        fn rollback(mails: &Mails) {
            mails.0.lock().unwrap().push("unsent");
        }
    }

    #[change_unit(id = "sv-unversioned", order = "5", author = "t")]
    mod unversioned {
        #[execution]
        async fn execute(tx: &mut flamingock::SqlTx) -> Result<(), flamingock::sqlx::Error> {
            tx.execute("INSERT INTO sv_items (id) VALUES (99)").await?;
            Ok(())
        }

        #[rollback_execution]
        async fn rollback(tx: &mut flamingock::SqlTx) -> Result<(), flamingock::sqlx::Error> {
            tx.execute("DELETE FROM sv_items WHERE id = 99").await?;
            Ok(())
        }
    }
}

const MODULE: &str = "conformance::system_versions::units";

fn outcomes(report: &flamingock::RunReport) -> Vec<(&str, UnitOutcome)> {
    report
        .units
        .iter()
        .map(|u| (u.change_id.as_str(), u.outcome))
        .collect()
}

/// Which of the units' rows are in the table.
async fn ids(db: &BackendDb) -> Vec<i64> {
    let mut present = Vec::new();
    for id in [12, 14, 99] {
        let sql = format!("SELECT COUNT(*) FROM sv_items WHERE id = {id}");
        if db.count(&sql).await == 1 {
            present.push(id);
        }
    }
    present
}

async fn versions_in_and_out_of_range_and_undo_to_a_version(backend: Backend) {
    let Some(db) = BackendDb::create(backend, "sysver").await else {
        return;
    };
    let mails = Mails::default();
    let builder = || db.builder(MODULE).dependency(mails.clone());

    // Release 1.2: the 1.4 units are out of range, neither applied nor blocked.
    let report = flamingock::run!(builder().system_versions(">=1.0.0, <1.3.0"))
        .await
        .expect("a run with out-of-range units succeeds");
    assert_eq!(
        outcomes(&report),
        [
            ("sv-base", UnitOutcome::Applied),
            ("sv-1-2", UnitOutcome::Applied),
            ("sv-1-4-shared", UnitOutcome::OutOfRange),
            ("sv-1-4-mail", UnitOutcome::OutOfRange),
            ("sv-unversioned", UnitOutcome::Applied),
        ]
    );
    assert!(report.to_string().contains("2 out of range"), "{report}");
    assert!(db.states_of("sv-1-4-shared").await.is_empty());
    assert!(mails.0.lock().unwrap().is_empty());
    assert_eq!(ids(&db).await, [12, 99]);

    // Release 1.4: the rest applies.
    let report = flamingock::run!(builder().system_versions("<2.0.0"))
        .await
        .unwrap();
    assert_eq!(report.applied(), ["sv-1-4-shared", "sv-1-4-mail"]);
    assert_eq!(ids(&db).await, [12, 14, 99]);

    // Roll the 1.4 release back: both its units, newest first, the unversioned one untouched.
    let engine = builder().build().await.expect("the store opens");
    let scope = UndoScope::ToVersion(semver::Version::new(1, 3, 0));
    let plan = engine
        .undo_plan(ChangeUnit::registered(), &scope)
        .await
        .expect("an undo plan");
    let planned: Vec<&str> = plan.iter().map(|p| p.unit.id).collect();
    assert_eq!(planned, ["sv-1-4-mail", "sv-1-4-shared"]);
    let undone = engine
        .undo(ChangeUnit::registered(), &scope)
        .await
        .expect("the release is undone");
    assert_eq!(undone.rolled_back(), ["sv-1-4-mail", "sv-1-4-shared"]);
    assert_eq!(*mails.0.lock().unwrap(), ["sent", "unsent"]);
    assert_eq!(
        ids(&db).await,
        [12, 99],
        "1.2 and the unversioned unit stay"
    );
    for id in ["sv-1-4-mail", "sv-1-4-shared"] {
        assert_eq!(
            db.states_of(id).await.last(),
            Some(&AuditState::RolledBack),
            "{id}"
        );
    }
    assert_eq!(
        db.states_of("sv-unversioned").await.last(),
        Some(&AuditState::Applied)
    );

    // A range that is not one is refused before anything runs.
    let error = flamingock::run!(builder().system_versions("1.x.y.z"))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Config(_)), "{error}");
    assert!(error.to_string().contains("not a semver range"), "{error}");
    db.drop().await;
}

macro_rules! system_versions_suite {
    ($name:ident, $db:ty, $backend:expr) => {
        mod $name {
            #[tokio::test]
            async fn versions_in_and_out_of_range_and_undo_to_a_version() {
                super::versions_in_and_out_of_range_and_undo_to_a_version($backend).await;
            }
        }
    };
}

flamingock_testkit::for_each_backend!(system_versions_suite);
