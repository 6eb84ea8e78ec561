//! Connecting: scheme dispatch and its error messages, redaction, the bounded retry, and errors
//! that must fail at once.

mod common;

use std::time::Duration;

use flamingock_core::StoreError;
use flamingock_sqlx::{StoreOptions, connect, redact_url};

#[test]
fn redact_url_masks_every_password() {
    let cases = [
        ("postgres://user:pw@host/db", "postgres://user:***@host/db"),
        (
            "postgresql://user@host:5432/db",
            "postgresql://user@host:5432/db",
        ),
        (
            "mysql://host/db?user=u&password=pw",
            "mysql://host/db?user=u&password=***",
        ),
        (
            "mariadb://u:p%2Fw@h/db?Password=x",
            "mariadb://u:***@h/db?Password=***",
        ),
        ("sqlite:flamingock.db", "sqlite:flamingock.db"),
        ("sqlite::memory:", "sqlite::memory:"),
        ("", ""),
        ("no url at all", "no url at all"),
        ("user:secret@host", "user:***@host"),
    ];
    for (url, redacted) in cases {
        assert_eq!(redact_url(url), redacted, "{url}");
    }
    for garbage in [
        "pg://u:secret/x@h",
        "%%%:secret@@",
        "x://:secret@",
        "h?pwd=secret",
    ] {
        assert!(!redact_url(garbage).contains("secret"), "{garbage}");
    }
}

#[tokio::test]
async fn unknown_schemes_name_the_supported_ones() {
    let Err(err) = connect("mongodb://u:pw@host/db", StoreOptions::default()).await else {
        panic!("mongodb is not an audit store");
    };
    let message = err.to_string();
    assert!(matches!(err, StoreError::Unsupported(_)), "{message}");
    for scheme in ["sqlite:", "postgres:", "mysql:", "mariadb:"] {
        assert!(message.contains(scheme), "{message}");
    }
    assert!(message.contains("mongodb://u:***@host/db"), "{message}");
    assert!(!message.contains("pw"), "{message}");
}

#[cfg(not(feature = "postgres"))]
#[tokio::test]
async fn a_backend_not_compiled_in_names_its_feature() {
    let Err(err) = connect("postgres://u:pw@host/db", StoreOptions::default()).await else {
        panic!("postgres is not compiled in");
    };
    let message = err.to_string();
    assert!(matches!(err, StoreError::Unsupported(_)), "{message}");
    assert!(message.contains("`postgres` cargo feature"), "{message}");
    assert!(!message.contains("pw"), "{message}");
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn sqlite_files_are_created_and_bad_paths_fail_at_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("new.db");
    let url = format!("sqlite://{}", path.display());
    let store = connect(&url, StoreOptions::default())
        .await
        .expect("connect");
    store.initialize().await.expect("initialize");
    assert!(path.exists(), "the database file is created");

    let url = format!("sqlite://{}/missing/dir/x.db", dir.path().display());
    let options = StoreOptions::default()
        .with_connect_attempts(5)
        .with_connect_backoff(Duration::from_secs(2));
    let Err(err) = connect(&url, options).await else {
        panic!("a file in a missing directory cannot be opened");
    };
    assert!(matches!(err, StoreError::Connect { .. }), "{err}");
    assert_tried_once(&err);
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn in_memory_sqlite_keeps_its_one_database() {
    let store = connect("sqlite::memory:", StoreOptions::default())
        .await
        .expect("connect");
    store.initialize().await.expect("initialize");
    let entry = common::entry(
        "m",
        flamingock_core::AuditState::Applied,
        flamingock_core::TxStrategy::Shared,
    );
    store.append(&entry, None).await.expect("append");
    assert_eq!(store.entries().await.expect("entries").len(), 1);
    assert_eq!(
        store.describe(),
        "SQLite audit store :memory: (table flamingock_audit_log)"
    );
}

/// A closed port: refused at once, so each try is quick and only the back-off takes time.
#[cfg(feature = "postgres")]
#[tokio::test]
async fn unreachable_servers_are_retried_with_backoff_then_reported() {
    let options = StoreOptions::default()
        .with_connect_attempts(3)
        .with_connect_backoff(Duration::from_millis(100));
    let started = std::time::Instant::now();
    let Err(err) = connect("postgres://ana:s3cret@127.0.0.1:1/db", options).await else {
        panic!("nothing listens on port 1");
    };
    let elapsed = started.elapsed();
    let message = err.to_string();
    assert!(matches!(err, StoreError::Connect { .. }), "{message}");
    assert!(
        message.contains("postgres://ana:***@127.0.0.1:1/db"),
        "{message}"
    );
    assert!(message.contains("gave up after 3 attempts"), "{message}");
    assert!(!message.contains("s3cret"), "{message}");
    // Waits of 100 ms then 200 ms between the three tries: a sleep lasts at least its duration,
    // so this lower bound cannot flake; the count of tries is in the message above.
    assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
}

/// An error the server answers with (no such database) is final: no retry.
#[cfg(feature = "postgres")]
#[tokio::test]
async fn postgres_errors_that_retrying_cannot_fix_fail_at_once() {
    use common::Backend;
    let Some(db) = common::TestDb::new(Backend::Postgres).await else {
        return;
    };
    let url = flamingock_testkit::replace_database(
        &common::server_url(Backend::Postgres),
        "no_such_db_flamingock",
    );
    assert_fails_at_once(&url).await;
    db.drop_database().await;
}

/// Likewise on MariaDB/MySQL.
#[cfg(feature = "mysql")]
#[tokio::test]
async fn mysql_errors_that_retrying_cannot_fix_fail_at_once() {
    use common::Backend;
    let Some(db) = common::TestDb::new(Backend::MySql).await else {
        return;
    };
    let url = flamingock_testkit::replace_database(
        &common::server_url(Backend::MySql),
        "no_such_db_flamingock",
    );
    assert_fails_at_once(&url).await;
    db.drop_database().await;
}

#[cfg(any(feature = "postgres", feature = "mysql"))]
async fn assert_fails_at_once(url: &str) {
    let options = StoreOptions::default()
        .with_connect_attempts(5)
        .with_connect_backoff(Duration::from_secs(2));
    let Err(err) = connect(url, options).await else {
        panic!("{url} names a database that does not exist");
    };
    assert!(matches!(err, StoreError::Connect { .. }), "{err}");
    assert_tried_once(&err);
}

/// A retried connect always reports how many tries it gave up after ("gave up after 5
/// attempts"); an error returned at once, on the first try, does not. Counting tries instead of
/// timing them keeps the check steady on a busy machine.
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
fn assert_tried_once(err: &StoreError) {
    let message = err.to_string();
    assert!(!message.contains("gave up after"), "retried: {message}");
}

/// URLs a user may type, each holding the secret `S3cr?t` (or its escaped form) somewhere a URL
/// parser does not look for a password; none may reach an error message.
#[cfg(all(feature = "postgres", feature = "mysql"))]
const NASTY_URLS: [&str; 12] = [
    "postgres://ana:S3cr?t@127.0.0.1:1/db",
    "postgres://ana:S3cr#t@127.0.0.1:1/db",
    "postgres://ana:S3cr@t@127.0.0.1:1/db",
    "postgres://ana:S3cr/t@127.0.0.1:1/db",
    "postgres://ana:S3cr%3Ft@127.0.0.1:1/db",
    "postgres://ana:S3cr t@127.0.0.1:1/db",
    "postgres://ana:S3cr?tÄ𝄞@127.0.0.1:1/db",
    "postgres://:S3cr?t@127.0.0.1:1/db",
    "postgres://ana:S3cr?t@[::1]:1/db",
    "postgres://ana:S3cr?t@[::1/db",
    "mysql://ana:S3cr?t@127.0.0.1:1/db",
    "mariadb://ana:S3cr#t@127.0.0.1:1/db?ssl-mode=disabled",
];

/// The error and every cause below it, as one text.
#[cfg(all(feature = "postgres", feature = "mysql"))]
fn whole_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(cause) = next {
        text.push_str(" | ");
        text.push_str(&cause.to_string());
        next = cause.source();
    }
    text
}

#[cfg(all(feature = "postgres", feature = "mysql"))]
#[tokio::test]
async fn connect_errors_never_show_a_password_however_it_is_typed() {
    let options = StoreOptions::default()
        .with_connect_attempts(1)
        .with_connect_timeout(Duration::from_secs(2));
    for url in NASTY_URLS {
        let Err(err) = connect(url, options.clone()).await else {
            panic!("nothing listens at {url}");
        };
        let text = whole_chain(&err);
        assert!(!text.contains("S3cr"), "{url}: {text}");
        let target = if url.starts_with("postgres") {
            flamingock_sqlx::SqlTarget::<sqlx::Postgres>::connect_with("orders", url, &options)
                .await
                .map(drop)
        } else {
            flamingock_sqlx::SqlTarget::<sqlx::MySql>::connect_with("orders", url, &options)
                .await
                .map(drop)
        };
        let Err(err) = target else {
            panic!("nothing listens at {url}");
        };
        let text = whole_chain(&err);
        assert!(!text.contains("S3cr"), "{url}: {text}");
        assert!(text.contains("orders"), "{url}: {text}");
    }
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn a_sqlite_url_without_a_file_is_refused() {
    for url in ["sqlite:", "sqlite://", "sqlite:?mode=rwc"] {
        let Err(err) = connect(url, StoreOptions::default()).await else {
            panic!("`{url}` names no file and must be refused");
        };
        let message = err.to_string();
        assert!(matches!(err, StoreError::Unsupported(_)), "{message}");
        assert!(message.contains("names no database file"), "{message}");
        assert!(
            message.contains("sqlite://path/to/flamingock.db"),
            "{message}"
        );
        let target = flamingock_sqlx::SqlTarget::<sqlx::Sqlite>::connect("files", url).await;
        let Err(err) = target else {
            panic!("`{url}` names no file and must be refused as a target too");
        };
        assert!(err.to_string().contains("names no database file"), "{err}");
    }
}

/// The store names its column sizes, so the engine refuses an id that would not fit before
/// anything runs; the limit is the column's: 255 characters fit, whatever their bytes.
#[cfg(feature = "mysql")]
#[tokio::test]
async fn the_mysql_store_names_the_size_of_its_id_column() {
    use common::Backend;
    use flamingock_core::store::TextLimit;
    let Some(db) = common::TestDb::new(Backend::MySql).await else {
        return;
    };
    let store = db.initialized_store().await;
    let limits = store.limits();
    assert_eq!(limits.change_id, TextLimit::Chars(255));
    assert_eq!(limits.author, TextLimit::Bytes(65_535));
    let widest = "é".repeat(255);
    assert!(limits.change_id.admits(&widest));
    let entry = common::entry(
        &widest,
        flamingock_core::AuditState::Applied,
        flamingock_core::TxStrategy::Shared,
    );
    store
        .append(&entry, None)
        .await
        .expect("255 characters fit");
    let too_long = common::entry(
        &"é".repeat(256),
        flamingock_core::AuditState::Applied,
        flamingock_core::TxStrategy::Shared,
    );
    assert!(!limits.change_id.admits(&too_long.change_id));
    assert!(
        store.append(&too_long, None).await.is_err(),
        "the column is 255 long"
    );
    db.cleanup(&*store).await;
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn a_sqlite_store_has_no_length_limits() {
    let store = connect("sqlite::memory:", StoreOptions::default())
        .await
        .expect("connect");
    assert_eq!(store.limits(), flamingock_core::store::StoreLimits::NONE);
}
