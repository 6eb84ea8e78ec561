//! Another service's REST API as a target system: webhook subscriptions registered through HTTP
//! with `reqwest`, against a small API served in-process. The unit takes the API's address from
//! its target and the HTTP client from the builder: dependencies resolve from the unit's target
//! first, then the builder. Registered exactly once; deleted by the rollback on failure.

use flamingock::{AuditState, Error, NonTxTarget, TxStrategy, UnitOutcome};
use flamingock_tests::TestDb;
use flamingock_tests::services::PartnerApi;

/// Where the partner's API lives, offered by the target.
pub struct PartnerEndpoint {
    pub base_url: String,
}

impl PartnerEndpoint {
    fn webhook(&self, name: &str) -> String {
        format!("{}/webhooks/{name}", self.base_url)
    }
}

/// Deletes a webhook; one that is not there is fine.
async fn unregister(
    http: &reqwest::Client,
    partner: &PartnerEndpoint,
    name: &str,
) -> reqwest::Result<()> {
    let response = http.delete(partner.webhook(name)).send().await?;
    if response.status() != reqwest::StatusCode::NOT_FOUND {
        response.error_for_status()?;
    }
    Ok(())
}

/// Creates or replaces a webhook subscription.
async fn register(
    http: &reqwest::Client,
    partner: &PartnerEndpoint,
    name: &str,
    url: &str,
    event: &str,
) -> reqwest::Result<()> {
    http.put(partner.webhook(name))
        .json(&serde_json::json!({ "url": url, "events": [event] }))
        .send()
        .await?
        .error_for_status()?;
    Ok(())
}

mod order_paid_hook {
    use flamingock::prelude::*;

    use super::PartnerEndpoint;

    #[derive(Default)]
    pub struct RegisterOrderPaidHook;

    #[change_unit(
        id = "register-order-paid-hook",
        order = "1",
        author = "integrations",
        target_system = "partner-api"
    )]
    impl RegisterOrderPaidHook {
        #[execution]
        async fn execute(
            &self,
            http: &reqwest::Client,
            partner: &PartnerEndpoint,
        ) -> reqwest::Result<()> {
            let url = "https://billing.example/hooks/order-paid";
            crate::http::register(http, partner, "order-paid", url, "order.paid").await
        }

        #[rollback_execution]
        async fn rollback(
            &self,
            http: &reqwest::Client,
            partner: &PartnerEndpoint,
        ) -> reqwest::Result<()> {
            crate::http::unregister(http, partner, "order-paid").await
        }
    }
}

mod refund_hooks {
    use flamingock::prelude::*;

    use super::PartnerEndpoint;

    #[derive(Default)]
    pub struct RegisterRefundHooks;

    #[change_unit(
        id = "register-refund-hooks",
        order = "1",
        author = "integrations",
        target_system = "partner-api"
    )]
    impl RegisterRefundHooks {
        /// The first hook is accepted; the second, on plain http, is refused with 422.
        #[execution]
        async fn execute(
            &self,
            http: &reqwest::Client,
            partner: &PartnerEndpoint,
        ) -> reqwest::Result<()> {
            let accepted = "https://billing.example/hooks/refund-requested";
            crate::http::register(
                http,
                partner,
                "refund-requested",
                accepted,
                "refund.requested",
            )
            .await?;
            let refused = "http://billing.example/hooks/refund-paid";
            crate::http::register(http, partner, "refund-paid", refused, "refund.paid").await
        }

        #[rollback_execution]
        async fn rollback(
            &self,
            http: &reqwest::Client,
            partner: &PartnerEndpoint,
        ) -> reqwest::Result<()> {
            crate::http::unregister(http, partner, "refund-requested").await?;
            crate::http::unregister(http, partner, "refund-paid").await
        }
    }
}

#[tokio::test]
async fn a_webhook_is_registered_once() {
    let api = PartnerApi::start().await;
    let db = TestDb::sqlite();
    let builder = || {
        db.builder("targets::http::order_paid_hook")
            .dependency(reqwest::Client::new())
            .target(NonTxTarget::new("partner-api").with(PartnerEndpoint {
                base_url: api.base_url.clone(),
            }))
    };

    let first = flamingock::run!(builder()).await.unwrap();
    assert_eq!(first.applied(), ["register-order-paid-hook"]);
    assert_eq!(first.units[0].tx_strategy, TxStrategy::NonTransactional);
    let hooks = api.webhooks();
    assert_eq!(hooks.keys().collect::<Vec<_>>(), ["order-paid"]);
    assert_eq!(
        hooks["order-paid"]["url"],
        "https://billing.example/hooks/order-paid"
    );

    // The partner's support team removes the hook: the unit must not run again and re-create it.
    reqwest::Client::new()
        .delete(format!("{}/webhooks/order-paid", api.base_url))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    let second = flamingock::run!(builder()).await.unwrap();
    assert!(second.applied().is_empty(), "{second}");
    assert_eq!(second.count(UnitOutcome::AlreadyApplied), 1);
    assert!(api.webhooks().is_empty());

    let states = db.states_of("register-order-paid-hook").await;
    assert_eq!(states, [AuditState::Started, AuditState::Applied]);
}

#[tokio::test]
async fn a_refused_call_rolls_back_what_the_unit_registered() {
    let api = PartnerApi::start().await;
    let db = TestDb::sqlite();
    let builder = db
        .builder("targets::http::refund_hooks")
        .dependency(reqwest::Client::new())
        .target(NonTxTarget::new("partner-api").with(PartnerEndpoint {
            base_url: api.base_url.clone(),
        }));

    let error = flamingock::run!(builder).await.unwrap_err();
    let Error::UnitFailed { report, .. } = &error else {
        panic!("expected the unit to fail, got {error}");
    };
    assert_eq!(report.units[0].outcome, UnitOutcome::RolledBack);
    assert!(
        api.webhooks().is_empty(),
        "the rollback left {:?}",
        api.webhooks()
    );

    let entries = db.entries().await;
    let states: Vec<AuditState> = entries.iter().map(|e| e.state).collect();
    assert_eq!(
        states,
        [
            AuditState::Started,
            AuditState::Failed,
            AuditState::RolledBack
        ]
    );
    // The refusal came on the second call, after the first hook had been registered.
    let failed = entries[1].error.as_deref().unwrap_or_default();
    assert!(
        failed.contains("422") && failed.contains("refund-paid"),
        "FAILED row's error: {failed}"
    );
}
