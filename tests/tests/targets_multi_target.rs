//! The `multi-target` example, run twice as a user would, against fresh PostgreSQL and MariaDB
//! databases and uniquely named Redis, NATS and S3 resources: the first run applies its five units
//! with the strategy each target calls for, the second applies nothing, and every system holds
//! what the units made.

#[allow(dead_code)]
#[path = "../../examples/multi-target/main.rs"]
mod multi_target;

use flamingock::{AuditState, Flamingock, TxStrategy, UnitOutcome};
use flamingock_tests::servers::{Server, ServerDb};
use flamingock_tests::services::{self, Cleanup, Service, bucket_name, is_stream_not_found};
use multi_target::{Namespace, Settings};

#[tokio::test]
async fn the_pipeline_applies_each_target_once_then_nothing() {
    let namespace = Namespace(bucket_name("multi"));
    let Some(redis) = services::redis().await else {
        return;
    };
    let Some(jetstream) = services::jetstream().await else {
        return;
    };
    let Some(bucket) = services::s3_bucket(&namespace.bucket()).await else {
        return;
    };
    let Some(postgres) = ServerDb::create(Server::Postgres, "multi").await else {
        return;
    };
    let Some(mariadb) = ServerDb::create(Server::MySql, "multi").await else {
        postgres.drop_database().await;
        return;
    };
    let _cleanup = [
        Cleanup::redis_key(&namespace.flags_key()),
        Cleanup::stream(&namespace.stream()),
        Cleanup::bucket(&namespace.bucket()),
    ];
    let settings = Settings {
        postgres_url: postgres.url.clone(),
        mysql_url: mariadb.url.clone(),
        redis_url: Service::Redis.url(),
        nats_url: Service::Nats.url(),
        s3_url: Service::S3.url(),
        namespace: namespace.clone(),
    };

    let first = multi_target::run(&settings).await.unwrap();
    assert_eq!(
        first.applied(),
        [
            "create-orders-table",
            "enable-new-checkout",
            "create-order-events",
            "create-invoice-archive",
            "create-order-search"
        ]
    );
    let strategies: Vec<TxStrategy> = first.units.iter().map(|u| u.tx_strategy).collect();
    assert_eq!(
        strategies,
        [
            TxStrategy::Shared,
            TxStrategy::NonTransactional,
            TxStrategy::NonTransactional,
            TxStrategy::NonTransactional,
            TxStrategy::Separate
        ]
    );

    let second = multi_target::run(&settings).await.unwrap();
    assert!(second.applied().is_empty(), "{second}");
    assert_eq!(second.count(UnitOutcome::AlreadyApplied), 5);

    // What each system holds now.
    let mut connection = redis.get_multiplexed_async_connection().await.unwrap();
    let flag: Option<String> = redis::cmd("HGET")
        .arg(namespace.flags_key())
        .arg("new-checkout")
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(flag.as_deref(), Some("on"));
    match jetstream.get_stream(namespace.stream()).await {
        Ok(stream) => {
            assert_eq!(stream.cached_info().config.subjects, [namespace.subjects()]);
            stream.consumer_info("billing").await.unwrap();
        }
        Err(error) if is_stream_not_found(&error) => panic!("no stream {}", namespace.stream()),
        Err(error) => panic!("cannot read the stream: {error}"),
    }
    assert!(bucket.exists().await.unwrap());
    let pg = sqlx::PgPool::connect(&postgres.url).await.unwrap();
    sqlx::query("SELECT id, customer, total_cents, created_at FROM shop_orders")
        .fetch_all(&pg)
        .await
        .unwrap();
    let maria = sqlx::MySqlPool::connect(&mariadb.url).await.unwrap();
    sqlx::query("SELECT order_id, customer FROM order_search")
        .fetch_all(&maria)
        .await
        .unwrap();
    let (markers,): (i64,) = sqlx::query_as("SELECT count(*) FROM flamingock_marker")
        .fetch_one(&maria)
        .await
        .unwrap();
    assert_eq!(markers, 0, "the marker is removed once APPLIED is recorded");

    // One APPLIED row per unit; a STARTED row before it wherever the audit is not the target.
    let engine = Flamingock::builder()
        .database_url(&postgres.url)
        .build()
        .await
        .unwrap();
    let entries = engine.store().entries().await.unwrap();
    let rows: Vec<(&str, AuditState)> = entries
        .iter()
        .map(|e| (e.change_id.as_str(), e.state))
        .collect();
    assert_eq!(
        rows,
        [
            ("create-orders-table", AuditState::Applied),
            ("enable-new-checkout", AuditState::Started),
            ("enable-new-checkout", AuditState::Applied),
            ("create-order-events", AuditState::Started),
            ("create-order-events", AuditState::Applied),
            ("create-invoice-archive", AuditState::Started),
            ("create-invoice-archive", AuditState::Applied),
            ("create-order-search", AuditState::Started),
            ("create-order-search", AuditState::Applied),
        ]
    );

    pg.close().await;
    maria.close().await;
    drop(engine);
    postgres.drop_database().await;
    mariadb.drop_database().await;
}
