//! The audit store becoming unreachable mid-run (docs/architecture.md#unknown-outcomes): a TCP proxy in front of
//! PostgreSQL is cut while a unit runs. The run ends with a clear error, and the state it leaves
//! is handled by the next run through the same decision table as a crash.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use flamingock::{AuditState, Error, Flamingock, FlamingockBuilder};
use flamingock_tests::proxy::{Proxy, ProxyCut};
use flamingock_tests::servers::{Server, ServerDb};

/// The cut a unit makes, if any (the run after the cut gets none).
pub struct Cut(pub Option<ProxyCut>);

impl Cut {
    fn now(&self) {
        if let Some(cut) = &self.0 {
            cut.cut();
        }
    }
}

/// Where the non-transactional unit writes.
pub struct EffectsFile(pub PathBuf);

mod shared_cut {
    use flamingock::prelude::*;
    use sqlx::{Postgres, Transaction};

    use super::Cut;

    #[change_unit(id = "insert-then-lose-the-store", order = "1", author = "t")]
    mod insert {
        use super::*;

        #[execution]
        async fn execute(tx: &mut Transaction<'_, Postgres>, cut: &Cut) -> Result<(), sqlx::Error> {
            sqlx::query("INSERT INTO cut_effects (unit) VALUES ('shared')")
                .execute(&mut **tx)
                .await?;
            cut.now();
            Ok(())
        }
    }
}

mod non_tx_cut {
    use flamingock::prelude::*;

    use super::{Cut, EffectsFile};

    #[change_unit(
        id = "publish-then-lose-the-store",
        order = "1",
        author = "t",
        transactional = false
    )]
    mod publish {
        use super::*;

        #[execution]
        fn execute(file: &EffectsFile, cut: &Cut) -> std::io::Result<()> {
            std::fs::write(&file.0, "published")?;
            cut.now();
            Ok(())
        }

        #[rollback_execution]
        fn rollback(file: &EffectsFile) -> std::io::Result<()> {
            std::fs::remove_file(&file.0)
        }
    }
}

fn server_addr(url: &str) -> SocketAddr {
    let authority = url.split('@').nth(1).expect("user@host in the URL");
    let host_port = authority.split('/').next().expect("host:port");
    host_port
        .to_socket_addrs()
        .expect("resolvable")
        .next()
        .expect("an address")
}

fn through(url: &str, proxy: SocketAddr) -> String {
    let (scheme_user, rest) = url.split_once('@').expect("user@host");
    let path = rest.split_once('/').map_or("", |(_, path)| path);
    format!("{scheme_user}@{proxy}/{path}")
}

async fn builder(url: &str, module: &str) -> FlamingockBuilder {
    let options = flamingock::sqlx_store::StoreOptions::default()
        .with_connect_attempts(1)
        .with_connect_timeout(Duration::from_secs(1));
    let store = flamingock::sqlx_store::connect(url, options)
        .await
        .expect("connect");
    Flamingock::builder()
        .audit_store(store)
        .module(module)
        .lock_lease(Duration::from_secs(1))
}

async fn audit(url: &str) -> Vec<flamingock::AuditEntry> {
    let engine = Flamingock::builder()
        .database_url(url)
        .build()
        .await
        .expect("connect");
    engine.store().entries().await.expect("entries")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_the_store_inside_a_shared_unit_commits_nothing_and_the_next_run_applies_it() {
    let Some(db) = ServerDb::create(Server::Postgres, "cut_shared").await else {
        return;
    };
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    sqlx::query("CREATE TABLE cut_effects (unit TEXT NOT NULL)")
        .execute(&pool)
        .await
        .unwrap();
    let proxy = Proxy::start(server_addr(&db.url)).await;
    let proxied = through(&db.url, proxy.addr);

    let first = builder(&proxied, "conformance::store_unreachable::shared_cut")
        .await
        .dependency(Cut(Some(proxy.cutter())));
    let error = flamingock::run!(first).await.unwrap_err();
    let message = error.to_string();
    // The connection died before COMMIT was sent (the APPLIED insert inside the transaction
    // failed), so the transaction is known not to have committed: the unit failed, nothing of
    // it remains. The 1 s lease may lapse meanwhile (the heartbeat cannot reach the store
    // either): then the run says the lock was lost, the report still names the failure.
    assert!(
        matches!(error, Error::UnitFailed { .. } | Error::LockLost { .. }),
        "{message}"
    );
    assert!(
        message.contains("its transaction did not commit, so nothing of it remains"),
        "{message}"
    );
    assert!(!message.contains("password"), "{message}");
    let effects: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM cut_effects")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(effects, 0, "nothing of the unit committed");
    assert!(
        audit(&db.url).await.is_empty(),
        "no audit row could be written"
    );

    // The store is back (direct URL): the unit is applied, once.
    let second = builder(&db.url, "conformance::store_unreachable::shared_cut")
        .await
        .dependency(Cut(None));
    let report = flamingock::run!(second).await.unwrap();
    assert_eq!(report.applied(), ["insert-then-lose-the-store"]);
    let effects: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM cut_effects")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(effects, 1);
    pool.close().await;
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_the_store_inside_a_non_tx_unit_leaves_it_started_and_the_next_run_blocks() {
    let Some(db) = ServerDb::create(Server::Postgres, "cut_nontx").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("published");
    let proxy = Proxy::start(server_addr(&db.url)).await;
    let proxied = through(&db.url, proxy.addr);

    let first = builder(&proxied, "conformance::store_unreachable::non_tx_cut")
        .await
        .dependency(Cut(Some(proxy.cutter())))
        .dependency(EffectsFile(file.clone()));
    let error = flamingock::run!(first).await.unwrap_err();
    let message = error.to_string();
    // Usually no connection could be had to send APPLIED: it is known not to be recorded, but
    // neither could FAILED be, and rollback code runs only after its intent is in the audit (or
    // the lease lapsed first and nothing more was tried). When the cut lands after APPLIED was
    // sent (a loaded machine), its reply is lost instead and the run stops in doubt. Either way
    // the effect stays and the unit stays STARTED.
    match &error {
        Error::UnitFailed { .. } | Error::LockLost { .. } => assert!(
            message.contains("the change ran but APPLIED could not be recorded"),
            "{message}"
        ),
        Error::InDoubt { change_id, .. } => {
            assert_eq!(change_id, "publish-then-lose-the-store", "{message}")
        }
        _ => panic!("expected the run to fail or stop in doubt: {message}"),
    }
    let rows = audit(&db.url).await;
    let states: Vec<AuditState> = rows.iter().map(|e| e.state).collect();
    assert_eq!(states, [AuditState::Started]);
    assert!(file.exists(), "no rollback before FAILED is in the audit");

    // The next run cannot know what happened: manual intervention, nothing written.
    let second = builder(&db.url, "conformance::store_unreachable::non_tx_cut")
        .await
        .dependency(Cut(None))
        .dependency(EffectsFile(file.clone()));
    let blocked = flamingock::run!(second).await.unwrap_err();
    assert!(matches!(blocked, Error::Blocked { .. }), "{blocked}");
    assert!(
        blocked
            .to_string()
            .contains("flamingock fix publish-then-lose-the-store")
    );
    assert_eq!(
        audit(&db.url).await.len(),
        1,
        "a blocked run writes nothing"
    );
    drop(proxy);
    db.drop_database().await;
}
