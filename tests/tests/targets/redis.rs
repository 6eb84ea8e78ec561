//! A configuration service as a target system: feature flags in Redis, changed by `NON_TX` units
//! that take the target's `redis::Client` by type. A flag is set exactly once (a second run leaves
//! an operator's later change alone), and a failing unit's rollback really removes what it set.

use std::sync::{Arc, Mutex};

use flamingock::{AuditState, Error, NonTxTarget, TxStrategy, UnitOutcome};
use flamingock_tests::TestDb;
use flamingock_tests::services::{self, Cleanup, unique_name};

/// The Redis hash holding this test's flags: unique per test, offered by the target.
pub struct FlagSet {
    pub key: String,
}

/// What a unit saw while it ran, offered by the builder, for the test to check afterwards.
#[derive(Default, Clone)]
pub struct Observed(pub Arc<Mutex<Vec<String>>>);

mod enable_checkout {
    use flamingock::prelude::*;

    use super::FlagSet;

    #[derive(Default)]
    pub struct EnableNewCheckout;

    #[change_unit(
        id = "enable-new-checkout",
        order = "1",
        author = "growth",
        target_system = "flags"
    )]
    impl EnableNewCheckout {
        #[execution]
        async fn execute(&self, redis: &redis::Client, flags: &FlagSet) -> redis::RedisResult<()> {
            let mut connection = redis.get_multiplexed_async_connection().await?;
            redis::cmd("HSET")
                .arg(&flags.key)
                .arg("new-checkout")
                .arg("on")
                .query_async(&mut connection)
                .await
        }

        #[rollback_execution]
        async fn rollback(&self, redis: &redis::Client, flags: &FlagSet) -> redis::RedisResult<()> {
            let mut connection = redis.get_multiplexed_async_connection().await?;
            redis::cmd("HDEL")
                .arg(&flags.key)
                .arg("new-checkout")
                .query_async(&mut connection)
                .await
        }
    }
}

mod checkout_v3 {
    use flamingock::prelude::*;

    use super::{FlagSet, Observed};

    #[derive(Default)]
    pub struct EnableCheckoutV3;

    #[change_unit(
        id = "enable-checkout-v3",
        order = "1",
        author = "growth",
        target_system = "flags"
    )]
    impl EnableCheckoutV3 {
        /// Turns the flag on at 25 %, then finds the payment provider not ready and fails.
        #[execution]
        async fn execute(
            &self,
            redis: &redis::Client,
            flags: &FlagSet,
            observed: &Observed,
        ) -> anyhow::Result<()> {
            let mut connection = redis.get_multiplexed_async_connection().await?;
            redis::cmd("HSET")
                .arg(&flags.key)
                .arg("checkout-v3")
                .arg("on")
                .arg("checkout-v3-rollout-percent")
                .arg(25)
                .query_async::<()>(&mut connection)
                .await?;
            let fields: Vec<String> = redis::cmd("HKEYS")
                .arg(&flags.key)
                .query_async(&mut connection)
                .await?;
            observed.0.lock().unwrap().extend(fields);
            anyhow::bail!("the payment provider has not enabled checkout v3 for this merchant")
        }

        #[rollback_execution]
        async fn rollback(&self, redis: &redis::Client, flags: &FlagSet) -> redis::RedisResult<()> {
            let mut connection = redis.get_multiplexed_async_connection().await?;
            redis::cmd("HDEL")
                .arg(&flags.key)
                .arg("checkout-v3")
                .arg("checkout-v3-rollout-percent")
                .query_async(&mut connection)
                .await
        }
    }
}

async fn field(client: &redis::Client, key: &str, field: &str) -> Option<String> {
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("HGET")
        .arg(key)
        .arg(field)
        .query_async(&mut connection)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_flag_is_set_once_and_a_second_run_leaves_it_alone() {
    let Some(client) = services::redis().await else {
        return;
    };
    let db = TestDb::sqlite();
    let key = unique_name("flags");
    let _cleanup = Cleanup::redis_key(&key);
    let builder = || {
        db.builder("targets::redis::enable_checkout").target(
            NonTxTarget::new("flags")
                .with(client.clone())
                .with(FlagSet { key: key.clone() }),
        )
    };

    let first = flamingock::run!(builder()).await.unwrap();
    assert_eq!(first.applied(), ["enable-new-checkout"]);
    assert_eq!(first.units[0].tx_strategy, TxStrategy::NonTransactional);
    assert_eq!(
        field(&client, &key, "new-checkout").await.as_deref(),
        Some("on")
    );

    // An operator turns the flag off by hand: the unit must not run again and undo that.
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("HSET")
        .arg(&key)
        .arg("new-checkout")
        .arg("off")
        .query_async::<()>(&mut connection)
        .await
        .unwrap();
    let second = flamingock::run!(builder()).await.unwrap();
    assert!(second.applied().is_empty(), "{second}");
    assert_eq!(second.count(UnitOutcome::AlreadyApplied), 1);
    assert_eq!(
        field(&client, &key, "new-checkout").await.as_deref(),
        Some("off")
    );

    let entries = db.entries().await;
    let states: Vec<AuditState> = entries.iter().map(|e| e.state).collect();
    assert_eq!(states, [AuditState::Started, AuditState::Applied]);
    for entry in &entries {
        assert_eq!(entry.target_system, "flags");
        assert_eq!(entry.tx_strategy, TxStrategy::NonTransactional);
    }
}

#[tokio::test]
async fn a_failing_flag_change_is_rolled_back_in_redis() {
    let Some(client) = services::redis().await else {
        return;
    };
    let db = TestDb::sqlite();
    let key = unique_name("flags");
    let _cleanup = Cleanup::redis_key(&key);
    let observed = Observed::default();
    let builder = db
        .builder("targets::redis::checkout_v3")
        .dependency(observed.clone())
        .target(
            NonTxTarget::new("flags")
                .with(client.clone())
                .with(FlagSet { key: key.clone() }),
        );

    let error = flamingock::run!(builder).await.unwrap_err();
    let Error::UnitFailed {
        change_id, report, ..
    } = &error
    else {
        panic!("expected the unit to fail, got {error}");
    };
    assert_eq!(change_id, "enable-checkout-v3");
    assert_eq!(report.units[0].outcome, UnitOutcome::RolledBack);

    // The flag was really set while the unit ran, and is really gone now.
    let seen = observed.0.lock().unwrap().clone();
    assert!(seen.contains(&"checkout-v3".to_owned()), "{seen:?}");
    assert_eq!(field(&client, &key, "checkout-v3").await, None);
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let exists: bool = redis::cmd("EXISTS")
        .arg(&key)
        .query_async(&mut connection)
        .await
        .unwrap();
    assert!(!exists, "the rollback left the hash {key} behind");

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
    let failed = entries[1].error.as_deref().unwrap_or_default();
    assert!(
        failed.contains("has not enabled checkout v3"),
        "FAILED row's error: {failed}"
    );
}
