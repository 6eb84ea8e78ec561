//! `flamingock::testing::TestRun` as a user's test would use it: units of this crate selected by
//! module, a given history, the final states checked; a check that does not hold panics naming
//! the unit, what was expected and what was found, with the audit rows.

use flamingock::testing::TestRun;
use flamingock::{AuditState, Error, Flamingock};

mod units {
    use flamingock::prelude::*;

    #[change_unit(id = "tr-schema", order = "1", author = "ana")]
    mod schema {
        #[execution]
        pub async fn execute(
            tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
        ) -> Result<(), sqlx::Error> {
            sqlx::query("CREATE TABLE books (id INTEGER PRIMARY KEY)")
                .execute(&mut **tx)
                .await?;
            Ok(())
        }
    }

    #[change_unit(id = "tr-notify", order = "2", author = "ana", transactional = false)]
    mod notify {
        #[execution]
        pub fn execute() {}
    }
}

fn builder() -> flamingock::FlamingockBuilder {
    Flamingock::builder().module("test_run::units")
}

#[tokio::test]
async fn a_fresh_store_applies_everything() {
    let outcome = TestRun::new(builder()).run().await.expect_states([
        ("tr-schema", AuditState::Applied),
        ("tr-notify", AuditState::Applied),
    ]);
    assert_eq!(
        outcome.report().map(|r| r.applied()),
        Some(vec!["tr-schema", "tr-notify"])
    );
}

#[tokio::test]
async fn a_given_history_is_what_the_run_starts_from() {
    // The schema is there: only the notification runs.
    let outcome = TestRun::new(builder())
        .given_applied("tr-schema")
        .run()
        .await
        .expect_states([("tr-notify", AuditState::Applied)]);
    assert_eq!(
        outcome.report().map(|r| r.applied()),
        Some(vec!["tr-notify"])
    );
    // A failed transactional unit is applied again; a failed non-transactional one blocks.
    TestRun::new(builder())
        .given_failed("tr-schema")
        .run()
        .await
        .expect_states([("tr-schema", AuditState::Applied)]);
    let blocked = TestRun::new(builder())
        .given_applied("tr-schema")
        .given_failed("tr-notify")
        .run()
        .await
        .expect_blocked(["tr-notify"]);
    assert!(matches!(blocked.expect_error(), Error::Blocked { .. }));
    blocked.check_states([("tr-notify", AuditState::Failed)]);
}

#[tokio::test]
async fn in_memory_runs_units_without_a_transaction() {
    TestRun::new(Flamingock::builder().module("test_run::units::notify"))
        .in_memory()
        .run()
        .await
        .expect_states([("tr-notify", AuditState::Applied)]);
}

#[tokio::test]
async fn a_validate_only_run_lists_what_is_pending_and_writes_nothing() {
    let outcome = TestRun::new(builder().validate_only())
        .given_applied("tr-schema")
        .run()
        .await;
    match outcome.expect_error() {
        Error::PendingUnits { check } => {
            assert_eq!(check.pending, ["tr-notify"]);
            assert_eq!(check.status.exit_code(), 3);
        }
        other => panic!("expected PendingUnits, got {other}"),
    }
    let message = outcome.expect_error().to_string();
    assert!(
        message.contains("1 of 2 units pending: tr-notify"),
        "{message}"
    );
    assert_eq!(
        outcome.rows.len(),
        1,
        "only the given row: {:?}",
        outcome.rows
    );
    // Everything applied: a validate-only run succeeds, doing nothing.
    TestRun::new(builder().validate_only())
        .given_applied("tr-schema")
        .given_applied("tr-notify")
        .run()
        .await
        .expect_states([("tr-notify", AuditState::Applied)]);
}

#[tokio::test]
async fn pending_says_what_a_run_would_find() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("audit.db").display());
    let check = flamingock::pending(builder().database_url(&url))
        .await
        .unwrap();
    assert_eq!(check.status, flamingock::PendingStatus::Pending);
    assert_eq!(check.pending, ["tr-schema", "tr-notify"]);
    flamingock::run!(builder().database_url(&url))
        .await
        .unwrap();
    let check = flamingock::pending(builder().database_url(&url))
        .await
        .unwrap();
    assert!(check.is_up_to_date(), "{check}");
    assert_eq!(check.status.exit_code(), 0);
}

#[tokio::test]
#[should_panic(expected = "tr-notify: expected ROLLED_BACK, found APPLIED")]
async fn a_wrong_state_names_the_unit_and_both_states() {
    TestRun::new(builder())
        .run()
        .await
        .expect_states([("tr-notify", AuditState::RolledBack)]);
}

#[tokio::test]
#[should_panic(expected = "expected the run to block on tr-schema")]
async fn expecting_a_block_of_a_run_that_succeeded_says_so() {
    TestRun::new(builder())
        .run()
        .await
        .expect_blocked(["tr-schema"]);
}

#[tokio::test]
#[should_panic(expected = "given_applied(\"no-such-unit\") names no unit the builder selects")]
async fn a_given_unit_that_is_not_selected_is_refused() {
    TestRun::new(builder())
        .given_applied("no-such-unit")
        .run()
        .await;
}
