//! A transactional unit on the default target cannot run with the server as audit store (the
//! server shares no transaction with it): the run is refused before it sends anything that
//! writes, naming the unit and what to do; no table is made, no row written, no lock taken,
//! beside units that did run before as well.

mod common;

use common::{Server, fresh, token};
use flamingock::{AuditState, AuditStore, ChangeUnit, Error, Flamingock};
use flamingock_client::HttpAuditStore;
use flamingock_testkit::Backend;

pub mod first {
    #[flamingock::change_unit(id = "announce", order = "1", author = "ana", transactional = false)]
    pub mod announce {
        #[execution]
        pub fn execute() {}
    }
}

pub mod with_shared {
    #[flamingock::change_unit(id = "announce", order = "1", author = "ana", transactional = false)]
    pub mod announce {
        #[execution]
        pub fn execute() {}
    }

    #[flamingock::change_unit(id = "on-the-default-target", order = "2", author = "ana")]
    pub mod on_default {
        #[execution]
        pub fn execute() {}
    }
}

fn units(module: &str) -> Vec<&'static ChangeUnit> {
    ChangeUnit::registered()
        .filter(|unit| unit.source.module_path.contains(module))
        .collect()
}

/// The refusal names the unit, says why and what to do, and is one that comes before anything ran.
fn assert_refused(error: &Error) {
    let text = error.to_string();
    assert!(
        matches!(error, Error::NoSharedTransaction { .. }),
        "expected the plan's refusal, got: {text}"
    );
    assert!(text.contains("on-the-default-target"), "{text}");
    assert!(text.contains("cannot share a transaction"), "{text}");
    assert!(
        text.contains("target_system") && text.contains("transactional = false"),
        "{text}"
    );
    assert!(text.contains("nothing ran"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transactional_unit_on_the_default_target_is_refused_before_anything_is_written() {
    let Some(db) = fresh(Backend::Sqlite, "server_default_target").await else {
        return;
    };
    let server = Server::start(&db.url);
    let url = server.url("orders", "prod");
    let runner = token(&db.url, "runner", Some(("orders", "prod")));
    let engine = || async {
        Flamingock::builder()
            .database_url(&url)
            .token(runner.clone())
            .build()
            .await
            .expect("the engine")
    };
    let store = HttpAuditStore::new(&url, runner.clone()).expect("a store");

    // A scope nothing ran in: not even its tables are made.
    let error = engine()
        .await
        .run(units("::with_shared::"))
        .await
        .expect_err("the server shares no transaction");
    assert_refused(&error);
    match store.unit_states().await {
        Err(flamingock::StoreError::NoAuditTable { .. }) => {}
        other => panic!("the refused run made the scope's tables: {other:?}"),
    }

    // A scope with a history: no row is added, the lock is not taken.
    engine()
        .await
        .run(units("::first::"))
        .await
        .expect("a unit that can run");
    let before = store.entries().await.expect("the audit");
    let states: Vec<AuditState> = before.iter().map(|row| row.state).collect();
    assert_eq!(states, [AuditState::Started, AuditState::Applied]);
    let error = engine()
        .await
        .run(units("::with_shared::"))
        .await
        .expect_err("the server shares no transaction");
    assert_refused(&error);
    let after = store.entries().await.expect("the audit");
    assert_eq!(
        after.iter().map(|row| row.id).collect::<Vec<_>>(),
        before.iter().map(|row| row.id).collect::<Vec<_>>(),
        "the refused run wrote {after:#?}"
    );
    let lock = flamingock::DistributedLock::read(&store, "flamingock")
        .await
        .expect("the lock reads");
    assert!(lock.is_none(), "{lock:?}");
    // `plan` says the same, writing nothing either.
    let Err(planned) = engine().await.plan(units("::with_shared::")).await else {
        panic!("the plan must refuse the unit");
    };
    assert_refused(&planned);
    drop(server);
    db.drop_database().await;
}
