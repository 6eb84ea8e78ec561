//! Databases that are not there: an audit store or a target on a closed local port is retried a
//! bounded number of times, then fails with an error that says what and where, without the
//! password. Port 1 on 127.0.0.1 refuses at once, so these tests need no server.

use flamingock::{Error, SqlTarget, StoreError};

const CLOSED: [&str; 2] = [
    "postgres://flamingock:s3cret-pw@127.0.0.1:1/app",
    "mysql://flamingock:s3cret-pw@127.0.0.1:1/app",
];

#[tokio::test]
async fn an_audit_store_on_a_closed_port_fails_after_bounded_retries_without_its_password() {
    for url in CLOSED {
        let error = flamingock::Flamingock::builder()
            .database_url(url)
            .module("conformance::connect::nothing")
            .allow_no_units()
            .run()
            .await
            .unwrap_err();
        assert!(
            matches!(error, Error::Store(StoreError::Connect { .. })),
            "{url}: {error}"
        );
        let message = error.to_string();
        assert!(
            message.contains("cannot connect to the audit store"),
            "{message}"
        );
        assert!(
            message.contains("flamingock:***@127.0.0.1:1/app"),
            "{message}"
        );
        assert!(message.contains("gave up after 5 attempts"), "{message}");
        assert!(!message.contains("s3cret"), "{message}");
        assert!(!format!("{error:?}").contains("s3cret"), "{error:?}");
    }
}

#[tokio::test]
async fn a_target_on_a_closed_port_fails_naming_the_target_without_its_password() {
    let error = SqlTarget::<sqlx::Postgres>::connect("orders", CLOSED[0])
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(message.contains("target system \"orders\""), "{message}");
    assert!(
        message.contains("flamingock:***@127.0.0.1:1/app"),
        "{message}"
    );
    assert!(message.contains("gave up after 5 attempts"), "{message}");
    assert!(!message.contains("s3cret"), "{message}");

    // A malformed URL fails at once, also without its password.
    let error = SqlTarget::<sqlx::MySql>::connect("books", "mysql://u:s3cret-pw@127.0.0.1:port/x")
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(message.contains("target system \"books\""), "{message}");
    assert!(!message.contains("s3cret"), "{message}");
}
