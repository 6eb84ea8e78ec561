//! A messaging backbone as a target system: a NATS JetStream stream and a durable consumer (the
//! equivalent of a Kafka topic and its consumer group), created by `NON_TX` units that take the
//! target's `jetstream::Context` by type. Created exactly once; deleted by the rollback when the
//! unit fails halfway.

use std::time::Duration;

use flamingock::{AuditEntry, AuditState, Error, Flamingock, NonTxTarget, TxStrategy, UnitOutcome};
use flamingock_tests::TestDb;
use flamingock_tests::servers::{Server, ServerDb};
use flamingock_tests::services::{self, Cleanup, is_stream_not_found, unique_name};

/// The stream this test's units create: unique per test, offered by the target.
pub struct OrderEvents {
    pub stream: String,
}

impl OrderEvents {
    /// The subjects the stream captures: `<stream>.orders.>`.
    pub fn subjects(&self) -> String {
        format!("{}.orders.>", self.stream)
    }
}

mod order_events {
    use std::time::Duration;

    use async_nats::jetstream::{self, consumer, stream};
    use flamingock::prelude::*;

    use super::OrderEvents;

    #[derive(Default)]
    pub struct CreateOrderEvents;

    #[change_unit(
        id = "create-order-events",
        order = "1",
        author = "platform",
        target_system = "events"
    )]
    impl CreateOrderEvents {
        #[execution]
        async fn execute(
            &self,
            jetstream: &jetstream::Context,
            events: &OrderEvents,
        ) -> anyhow::Result<()> {
            let stream = jetstream
                .create_stream(stream::Config {
                    name: events.stream.clone(),
                    subjects: vec![events.subjects()],
                    max_age: Duration::from_secs(7 * 24 * 3600),
                    description: Some("every order event, kept a week".into()),
                    ..Default::default()
                })
                .await?;
            stream
                .create_consumer(consumer::pull::Config {
                    durable_name: Some("billing".into()),
                    filter_subject: format!("{}.orders.paid", events.stream),
                    ack_policy: consumer::AckPolicy::Explicit,
                    ..Default::default()
                })
                .await?;
            Ok(())
        }

        #[rollback_execution]
        async fn rollback(
            &self,
            jetstream: &jetstream::Context,
            events: &OrderEvents,
        ) -> anyhow::Result<()> {
            crate::nats::delete_stream(jetstream, &events.stream).await
        }
    }
}

mod shipping_consumer {
    use async_nats::jetstream::{self, consumer, stream};
    use flamingock::prelude::*;

    use super::OrderEvents;

    #[derive(Default)]
    pub struct CreateOrderEventsWithShipping;

    #[change_unit(
        id = "create-order-events-with-shipping",
        order = "1",
        author = "platform",
        target_system = "events"
    )]
    impl CreateOrderEventsWithShipping {
        /// Creates the stream and the billing consumer, then a shipping consumer whose filter
        /// lies outside the stream's subjects: the server refuses it, and the unit fails.
        #[execution]
        async fn execute(
            &self,
            jetstream: &jetstream::Context,
            events: &OrderEvents,
        ) -> anyhow::Result<()> {
            let stream = jetstream
                .create_stream(stream::Config {
                    name: events.stream.clone(),
                    subjects: vec![events.subjects()],
                    ..Default::default()
                })
                .await?;
            stream
                .create_consumer(consumer::pull::Config {
                    durable_name: Some("billing".into()),
                    ..Default::default()
                })
                .await?;
            stream
                .create_consumer(consumer::pull::Config {
                    durable_name: Some("shipping".into()),
                    filter_subject: "shipments.>".into(),
                    ..Default::default()
                })
                .await?;
            Ok(())
        }

        #[rollback_execution]
        async fn rollback(
            &self,
            jetstream: &jetstream::Context,
            events: &OrderEvents,
        ) -> anyhow::Result<()> {
            crate::nats::delete_stream(jetstream, &events.stream).await
        }
    }
}

/// Deletes a stream (and its consumers); one that is already gone is fine, so a rollback after a
/// failure before the stream existed succeeds too.
async fn delete_stream(
    jetstream: &async_nats::jetstream::Context,
    name: &str,
) -> anyhow::Result<()> {
    match jetstream.delete_stream(name).await {
        Ok(_) => Ok(()),
        Err(error) if is_stream_not_found(&error) => Ok(()),
        Err(error) => Err(error.into()),
    }
}

async fn entries(url: &str) -> Vec<AuditEntry> {
    let engine = Flamingock::builder()
        .database_url(url)
        .build()
        .await
        .unwrap();
    engine.store().entries().await.unwrap()
}

#[tokio::test]
async fn a_stream_and_its_consumer_are_created_once() {
    let Some(jetstream) = services::jetstream().await else {
        return;
    };
    let Some(db) = ServerDb::create(Server::Postgres, "nats_once").await else {
        return;
    };
    let events = OrderEvents {
        stream: unique_name("orders"),
    };
    let _cleanup = Cleanup::stream(&events.stream);
    let builder = || {
        Flamingock::builder()
            .database_url(&db.url)
            .module("targets::nats::order_events")
            .target(
                NonTxTarget::new("events")
                    .with(jetstream.clone())
                    .with(OrderEvents {
                        stream: events.stream.clone(),
                    }),
            )
    };

    let first = flamingock::run!(builder()).await.unwrap();
    assert_eq!(first.applied(), ["create-order-events"]);
    assert_eq!(first.units[0].tx_strategy, TxStrategy::NonTransactional);

    // The stream is there as configured, and the consumer sees what is published to it.
    let stream = jetstream.get_stream(&events.stream).await.unwrap();
    let config = &stream.cached_info().config;
    assert_eq!(config.subjects, [events.subjects()]);
    assert_eq!(config.max_age, Duration::from_secs(7 * 24 * 3600));
    jetstream
        .publish(format!("{}.orders.paid", events.stream), "order 42".into())
        .await
        .unwrap()
        .await
        .unwrap();
    let billing = stream.consumer_info("billing").await.unwrap();
    assert_eq!(billing.num_pending, 1);

    let second = flamingock::run!(builder()).await.unwrap();
    assert!(second.applied().is_empty(), "{second}");
    assert_eq!(second.count(UnitOutcome::AlreadyApplied), 1);
    let billing = stream.consumer_info("billing").await.unwrap();
    assert_eq!(billing.num_pending, 1, "the stream was not recreated");

    let states: Vec<AuditState> = entries(&db.url).await.iter().map(|e| e.state).collect();
    assert_eq!(states, [AuditState::Started, AuditState::Applied]);
    db.drop_database().await;
}

#[tokio::test]
async fn a_failing_unit_deletes_the_stream_it_created() {
    let Some(jetstream) = services::jetstream().await else {
        return;
    };
    let db = TestDb::sqlite();
    let events = OrderEvents {
        stream: unique_name("orders"),
    };
    let _cleanup = Cleanup::stream(&events.stream);
    let builder = db.builder("targets::nats::shipping_consumer").target(
        NonTxTarget::new("events")
            .with(jetstream.clone())
            .with(OrderEvents {
                stream: events.stream.clone(),
            }),
    );

    let error = flamingock::run!(builder).await.unwrap_err();
    let Error::UnitFailed { report, .. } = &error else {
        panic!("expected the unit to fail, got {error}");
    };
    assert_eq!(report.units[0].outcome, UnitOutcome::RolledBack);

    // The rollback removed the stream, and the billing consumer with it.
    match jetstream.get_stream(&events.stream).await {
        Err(error) if is_stream_not_found(&error) => {}
        Err(error) => panic!("cannot tell whether the stream is gone: {error}"),
        Ok(_) => panic!("stream {} is still there", events.stream),
    }
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
    // The server's refusal of the second consumer: the stream existed by then.
    let failed = entries[1].error.as_deref().unwrap_or_default();
    assert!(
        failed.contains("not a valid subset"),
        "FAILED row's error: {failed}"
    );
}
