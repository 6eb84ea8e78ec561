//! The lock guards non-transactional targets too (docs/architecture.md#lock): a `NON_TX` unit runs only under a
//! valid lease, and its `APPLIED` row is fenced. Here a unit on an HTTP API target loses the lease
//! while it runs (an operator forces the lock away and another instance takes it): its `APPLIED`
//! row is refused, it does not roll back what may now be the new holder's business, the next unit
//! never starts, and the following run blocks on the unit whose outcome no one recorded.
//! On SQLite and on PostgreSQL.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use flamingock::lock::{Acquisition, Fence};
use flamingock::{AuditState, DEFAULT_LOCK_KEY, Error, Flamingock, NonTxTarget, UnitOutcome};
use flamingock_tests::TestDb;
use flamingock_tests::servers::{Server, ServerDb};
use flamingock_tests::services::PartnerApi;

/// The runner id the other instance takes the lock under.
const INTRUDER: &str = "another-instance";

/// Where the partner's API lives, offered by the target.
pub struct PartnerEndpoint {
    pub base_url: String,
}

/// What the units did, shared with the test.
#[derive(Default, Clone)]
pub struct Journal(pub Arc<Mutex<Vec<String>>>);

impl Journal {
    fn write(&self, line: &str) {
        self.0.lock().unwrap().push(line.to_owned());
    }

    fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

/// Takes the lock away from the running instance, as `flamingock lock release --force` followed
/// by another instance's start would.
pub struct Intruder {
    pub audit_url: String,
}

impl Intruder {
    async fn take_over(&self) -> anyhow::Result<()> {
        let engine = Flamingock::builder()
            .database_url(&self.audit_url)
            .build()
            .await?;
        engine.force_release_lock().await?;
        let lock = engine.store().lock().expect("SQL audit stores keep a lock");
        let fence = Fence {
            key: DEFAULT_LOCK_KEY.to_owned(),
            owner: INTRUDER.to_owned(),
        };
        match lock
            .try_acquire(&fence, "elsewhere", Duration::from_secs(3600))
            .await?
        {
            Acquisition::Acquired => Ok(()),
            Acquisition::Held(holder) => anyhow::bail!("the lock is still held: {holder}"),
        }
    }
}

async fn put_hook(
    partner: &PartnerEndpoint,
    name: &str,
    method: reqwest::Method,
) -> reqwest::Result<()> {
    let url = format!("{}/webhooks/{name}", partner.base_url);
    let body = serde_json::json!({ "url": "https://billing.example/hooks", "events": [name] });
    reqwest::Client::new()
        .request(method, url)
        .json(&body)
        .send()
        .await?
        .error_for_status()?;
    Ok(())
}

mod lease_lost {
    use flamingock::prelude::*;

    #[change_unit(
        id = "register-order-hook",
        order = "1",
        author = "integrations",
        target_system = "partner-api"
    )]
    mod register_order_hook {
        use crate::lock::{Intruder, Journal, PartnerEndpoint};

        /// Registers its hook; meanwhile the lock passes to another instance.
        #[execution]
        async fn execute(
            partner: &PartnerEndpoint,
            intruder: &Intruder,
            journal: &Journal,
        ) -> anyhow::Result<()> {
            crate::lock::put_hook(partner, "order", reqwest::Method::PUT).await?;
            intruder.take_over().await?;
            journal.write("register-order-hook ran");
            Ok(())
        }

        #[rollback_execution]
        async fn rollback(partner: &PartnerEndpoint, journal: &Journal) -> anyhow::Result<()> {
            journal.write("register-order-hook rolled back");
            crate::lock::put_hook(partner, "order", reqwest::Method::DELETE).await?;
            Ok(())
        }
    }

    #[change_unit(
        id = "register-refund-hook",
        order = "2",
        author = "integrations",
        target_system = "partner-api"
    )]
    mod register_refund_hook {
        use crate::lock::{Journal, PartnerEndpoint};

        #[execution]
        async fn execute(partner: &PartnerEndpoint, journal: &Journal) -> anyhow::Result<()> {
            journal.write("register-refund-hook ran");
            crate::lock::put_hook(partner, "refund", reqwest::Method::PUT).await?;
            Ok(())
        }
    }
}

async fn a_non_tx_unit_that_loses_the_lease_records_nothing_more(audit_url: &str) {
    let api = PartnerApi::start().await;
    let journal = Journal::default();
    let builder = || {
        Flamingock::builder()
            .database_url(audit_url)
            .module("targets::lock::lease_lost")
            .dependency(journal.clone())
            .dependency(Intruder {
                audit_url: audit_url.to_owned(),
            })
            .target(NonTxTarget::new("partner-api").with(PartnerEndpoint {
                base_url: api.base_url.clone(),
            }))
    };

    let error = flamingock::run!(builder()).await.unwrap_err();
    let Error::LockLost { change_id, report } = &error else {
        panic!("expected the lease to be lost, got {error}");
    };
    assert_eq!(change_id, "register-order-hook");
    let outcomes: Vec<UnitOutcome> = report.units.iter().map(|u| u.outcome).collect();
    assert_eq!(outcomes, [UnitOutcome::Failed, UnitOutcome::NotReached]);

    // The first unit's effect happened, but it was not rolled back (the unit may be the new
    // holder's business now); the second never started.
    assert_eq!(journal.lines(), ["register-order-hook ran"]);
    let hooks: Vec<String> = api.webhooks().into_keys().collect();
    assert_eq!(hooks, ["order"]);

    // Only the STARTED row, written while the lease was ours; APPLIED was refused.
    let engine = Flamingock::builder()
        .database_url(audit_url)
        .build()
        .await
        .unwrap();
    let rows: Vec<(String, AuditState)> = (engine.store().entries().await.unwrap().into_iter())
        .map(|e| (e.change_id, e.state))
        .collect();
    assert_eq!(
        rows,
        [("register-order-hook".to_owned(), AuditState::Started)]
    );
    let holder = engine
        .lock_state()
        .await
        .unwrap()
        .expect("the lock is held");
    assert_eq!(holder.owner, INTRUDER);

    // Once the other instance is gone, the next run stops at the unit nobody recorded.
    engine.force_release_lock().await.unwrap();
    let error = flamingock::run!(builder()).await.unwrap_err();
    let Error::Blocked { blocked, .. } = &error else {
        panic!("expected the unit to block, got {error}");
    };
    assert_eq!(blocked[0].change_id, "register-order-hook");
    assert_eq!(blocked[0].state, "STARTED");
    assert!(
        error
            .to_string()
            .contains("flamingock fix register-order-hook"),
        "{error}"
    );
    assert_eq!(journal.lines(), ["register-order-hook ran"]);
}

#[tokio::test]
async fn on_sqlite_a_non_tx_unit_that_loses_the_lease_records_nothing_more() {
    let db = TestDb::sqlite();
    a_non_tx_unit_that_loses_the_lease_records_nothing_more(&db.url).await;
}

#[tokio::test]
async fn on_postgres_a_non_tx_unit_that_loses_the_lease_records_nothing_more() {
    let Some(db) = ServerDb::create(Server::Postgres, "lease_lost").await else {
        return;
    };
    a_non_tx_unit_that_loses_the_lease_records_nothing_more(&db.url).await;
    db.drop_database().await;
}
