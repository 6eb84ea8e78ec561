//! How units find their target systems and what those offer, checked before anything runs: an
//! unknown target is refused naming the known ones; `&T` parameters resolve from the unit's target
//! first, then the builder; a parameter no one offers, or a transaction asked of a `NON_TX`
//! target, is reported naming the unit, the parameter and the target. No service is needed.

use std::sync::{Arc, Mutex};

use flamingock::{Error, NonTxTarget};
use flamingock_tests::TestDb;

/// What the units did, in order, shared with the test (a builder dependency).
#[derive(Default, Clone)]
pub struct Journal(pub Arc<Mutex<Vec<String>>>);

impl Journal {
    pub fn write(&self, line: impl Into<String>) {
        self.0.lock().unwrap().push(line.into());
    }

    pub fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

/// A value a target or the builder can offer.
pub struct Greeting(pub &'static str);

/// A client no one registers.
pub struct CacheClient;

mod unknown_target {
    use flamingock::prelude::*;

    #[change_unit(id = "warm-cache", order = "1", author = "t", target_system = "flags")]
    mod warm_cache {
        #[execution]
        fn execute(journal: &crate::resolution::Journal) {
            journal.write("warm-cache ran");
        }
    }

    #[change_unit(id = "enable-flag", order = "2", author = "t", target_system = "flagz")]
    mod enable_flag {
        #[execution]
        fn execute(journal: &crate::resolution::Journal) {
            journal.write("enable-flag ran");
        }
    }
}

#[tokio::test]
async fn an_unknown_target_is_refused_before_anything_runs_naming_the_known_ones() {
    let db = TestDb::sqlite();
    let journal = Journal::default();
    let builder = db
        .builder("targets::resolution::unknown_target")
        .dependency(journal.clone())
        .target(NonTxTarget::new("flags"))
        .target(NonTxTarget::new("events"));

    let error = flamingock::run!(builder).await.unwrap_err();
    let Error::UnknownTarget {
        change_id,
        target,
        known,
        ..
    } = &error
    else {
        panic!("expected an unknown target, got {error}");
    };
    assert_eq!(change_id, "enable-flag");
    assert_eq!(target, "flagz");
    assert_eq!(
        known,
        &["default (the audit store's database)", "events", "flags"]
    );
    let message = error.to_string();
    assert!(
        message.contains("\"flagz\"") && message.contains("events, flags"),
        "{message}"
    );
    assert!(
        message.contains("targets/resolution.rs"),
        "names the source: {message}"
    );

    // Nothing ran, not even the unit before it on a known target, and nothing was recorded.
    assert!(journal.lines().is_empty(), "{:?}", journal.lines());
    assert!(db.entries().await.is_empty());
}

mod resolution_order {
    use flamingock::prelude::*;

    #[change_unit(id = "greet-eu", order = "1", author = "t", target_system = "eu")]
    mod greet_eu {
        #[execution]
        fn execute(greeting: &crate::resolution::Greeting, journal: &crate::resolution::Journal) {
            journal.write(format!("eu: {}", greeting.0));
        }
    }

    #[change_unit(id = "greet-us", order = "2", author = "t", target_system = "us")]
    mod greet_us {
        #[execution]
        fn execute(greeting: &crate::resolution::Greeting, journal: &crate::resolution::Journal) {
            journal.write(format!("us: {}", greeting.0));
        }
    }
}

#[tokio::test]
async fn dependencies_resolve_from_the_units_target_first_then_the_builder() {
    let db = TestDb::sqlite();
    let journal = Journal::default();
    let builder = db
        .builder("targets::resolution::resolution_order")
        .dependency(Greeting("from the builder"))
        .dependency(journal.clone())
        .target(NonTxTarget::new("eu").with(Greeting("from target eu")))
        .target(NonTxTarget::new("us"));

    let report = flamingock::run!(builder).await.unwrap();
    assert_eq!(report.applied(), ["greet-eu", "greet-us"]);
    assert_eq!(
        journal.lines(),
        ["eu: from target eu", "us: from the builder"]
    );
}

mod missing_client {
    use flamingock::prelude::*;

    #[change_unit(id = "note", order = "1", author = "t", target_system = "cache")]
    mod note {
        #[execution]
        fn execute(journal: &crate::resolution::Journal) {
            journal.write("note ran");
        }
    }

    #[change_unit(id = "prime-cache", order = "2", author = "t", target_system = "cache")]
    mod prime_cache {
        #[execution]
        fn execute(client: &crate::resolution::CacheClient) {
            let _ = client;
        }
    }
}

#[tokio::test]
async fn a_client_nobody_offers_is_reported_naming_unit_parameter_and_target() {
    let db = TestDb::sqlite();
    let journal = Journal::default();
    let builder = db
        .builder("targets::resolution::missing_client")
        .dependency(journal.clone())
        .target(NonTxTarget::new("cache").with(Greeting("unrelated")));

    let error = flamingock::run!(builder).await.unwrap_err();
    let Error::MissingDependencies(missing) = &error else {
        panic!("expected a missing dependency, got {error}");
    };
    assert_eq!(missing.len(), 1, "{error}");
    assert_eq!(missing[0].change_id, "prime-cache");
    assert_eq!(missing[0].parameter, "client");
    let message = error.to_string();
    for expected in ["prime-cache", "CacheClient", "target \"cache\"", "Greeting"] {
        assert!(message.contains(expected), "no {expected:?} in: {message}");
    }
    assert!(journal.lines().is_empty(), "nothing runs before the check");
    assert!(db.entries().await.is_empty());
}

mod transaction_on_cache {
    use flamingock::prelude::*;

    #[change_unit(
        id = "cache-schema",
        order = "1",
        author = "t",
        target_system = "cache"
    )]
    mod cache_schema {
        #[execution]
        async fn execute(tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>) -> Result<(), sqlx::Error> {
            sqlx::query("SELECT 1").execute(&mut **tx).await?;
            Ok(())
        }
    }
}

#[tokio::test]
async fn a_transaction_asked_of_a_non_transactional_target_is_refused_up_front() {
    let db = TestDb::sqlite();
    let builder = db
        .builder("targets::resolution::transaction_on_cache")
        .target(NonTxTarget::new("cache"));

    let error = flamingock::run!(builder).await.unwrap_err();
    let Error::MissingDependencies(missing) = &error else {
        panic!("expected a refused parameter, got {error}");
    };
    assert_eq!(missing[0].change_id, "cache-schema");
    assert!(
        missing[0].reason.contains("NON_TX") && missing[0].reason.contains("not transactional"),
        "{}",
        missing[0].reason
    );
    assert!(db.entries().await.is_empty());
}

#[tokio::test]
async fn two_targets_with_one_name_are_refused() {
    let db = TestDb::sqlite();
    let builder = db
        .builder("targets::resolution::resolution_order")
        .target(NonTxTarget::new("eu").with(Greeting("first")))
        .target(NonTxTarget::new("eu").with(Greeting("second")));

    let error = flamingock::run!(builder).await.unwrap_err();
    assert!(matches!(error, Error::Config(_)), "{error}");
    assert!(
        error
            .to_string()
            .contains("two target systems are named \"eu\""),
        "{error}"
    );
    assert!(db.entries().await.is_empty());
}

#[tokio::test]
async fn a_target_named_like_the_audit_stores_database_is_refused() {
    let db = TestDb::sqlite();
    let builder = db
        .builder("targets::resolution::resolution_order")
        .target(NonTxTarget::new("default"));

    let error = flamingock::run!(builder).await.unwrap_err();
    assert!(
        error
            .to_string()
            .contains("the name of the audit store's own database"),
        "{error}"
    );
}
