//! One pipeline, five kinds of target system: a PostgreSQL audit store whose own database gets a
//! schema change (`TX_SHARED`), a Redis feature flag, a NATS JetStream stream with its consumer,
//! an S3 bucket with a lifecycle rule (the three `NON_TX`, each undone by its rollback on
//! failure), and a table in MariaDB (`TX_SEPARATE`, with a marker row).
//!
//! ```text
//! cargo run --example multi-target --features multi-target     # applies all five
//! cargo run --example multi-target --features multi-target     # applies none: "nothing to apply"
//! ```
//!
//! Where everything is, from the environment (defaults: the local services):
//! `FLAMINGOCK_DATABASE_URL` (audit store and the `TX_SHARED` unit's database,
//! `postgres://postgres@127.0.0.1:5432/test`), `MULTI_TARGET_MYSQL_URL`
//! (`mysql://root@127.0.0.1:3306/test`), `MULTI_TARGET_REDIS_URL` (`redis://127.0.0.1:6379`),
//! `MULTI_TARGET_NATS_URL` (`nats://127.0.0.1:4222`), `MULTI_TARGET_S3_URL` (an S3-compatible
//! endpoint, `http://127.0.0.1:5055`: `moto_server -H 127.0.0.1 -p 5055`) and
//! `MULTI_TARGET_NAMESPACE` (`flamingock-demo`: prefixes the Redis key, the stream and the bucket).

use std::time::Duration;

use async_nats::jetstream;
use flamingock::prelude::*;
use flamingock::{NonTxTarget, RunReport, SqlTarget};
use s3::creds::Credentials;
use s3::{Bucket, Region};

/// Where the services are and how this run names what it creates.
#[derive(Debug, Clone)]
pub struct Settings {
    pub postgres_url: String,
    pub mysql_url: String,
    pub redis_url: String,
    pub nats_url: String,
    pub s3_url: String,
    pub namespace: Namespace,
}

impl Settings {
    /// From the environment, with the local services as defaults.
    pub fn from_env() -> Settings {
        let var = |name: &str, default: &str| {
            std::env::var(name)
                .ok()
                .filter(|value| !value.trim().is_empty())
                .unwrap_or_else(|| default.to_owned())
        };
        Settings {
            postgres_url: var(
                flamingock::DATABASE_URL_ENV,
                "postgres://postgres@127.0.0.1:5432/test",
            ),
            mysql_url: var("MULTI_TARGET_MYSQL_URL", "mysql://root@127.0.0.1:3306/test"),
            redis_url: var("MULTI_TARGET_REDIS_URL", "redis://127.0.0.1:6379"),
            nats_url: var("MULTI_TARGET_NATS_URL", "nats://127.0.0.1:4222"),
            s3_url: var("MULTI_TARGET_S3_URL", "http://127.0.0.1:5055"),
            namespace: Namespace(var("MULTI_TARGET_NAMESPACE", "flamingock-demo")),
        }
    }
}

/// The prefix of every name this pipeline creates outside SQL (lower-case letters, digits and
/// `-`, so that it suits a Redis key, a stream name and a bucket name alike).
#[derive(Debug, Clone)]
pub struct Namespace(pub String);

impl Namespace {
    /// The Redis hash of feature flags.
    pub fn flags_key(&self) -> String {
        format!("{}:feature-flags", self.0)
    }

    /// The JetStream stream of order events.
    pub fn stream(&self) -> String {
        format!("{}-orders", self.0)
    }

    /// The subjects that stream captures.
    pub fn subjects(&self) -> String {
        format!("{}.orders.>", self.0)
    }

    /// The bucket of invoices.
    pub fn bucket(&self) -> String {
        format!("{}-invoices", self.0)
    }
}

/// PostgreSQL, the audit store's own database: the table commits with its audit row.
#[derive(Default)]
pub struct CreateOrdersTable;

#[change_unit(id = "create-orders-table", order = "0001", author = "ana")]
impl CreateOrdersTable {
    #[execution]
    async fn execute(&self, tx: &mut sqlx::Transaction<'_, sqlx::Postgres>) -> sqlx::Result<()> {
        sqlx::query(
            "CREATE TABLE shop_orders (
                id BIGSERIAL PRIMARY KEY,
                customer TEXT NOT NULL,
                total_cents BIGINT NOT NULL,
                created_at TIMESTAMPTZ NOT NULL DEFAULT now()
            )",
        )
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Used by `undo` only: after a failure the transaction has already undone the table.
    #[rollback_execution]
    async fn rollback(&self, tx: &mut sqlx::Transaction<'_, sqlx::Postgres>) -> sqlx::Result<()> {
        sqlx::query("DROP TABLE shop_orders")
            .execute(&mut **tx)
            .await?;
        Ok(())
    }
}

/// Redis, the configuration service: a feature flag at a 10 % rollout.
#[derive(Default)]
pub struct EnableNewCheckout;

#[change_unit(
    id = "enable-new-checkout",
    order = "0002",
    author = "growth",
    target_system = "flags"
)]
impl EnableNewCheckout {
    #[execution]
    async fn execute(&self, redis: &redis::Client, ns: &Namespace) -> redis::RedisResult<()> {
        let mut connection = redis.get_multiplexed_async_connection().await?;
        redis::cmd("HSET")
            .arg(ns.flags_key())
            .arg("new-checkout")
            .arg("on")
            .arg("new-checkout-rollout-percent")
            .arg(10)
            .query_async(&mut connection)
            .await
    }

    #[rollback_execution]
    async fn rollback(&self, redis: &redis::Client, ns: &Namespace) -> redis::RedisResult<()> {
        let mut connection = redis.get_multiplexed_async_connection().await?;
        redis::cmd("HDEL")
            .arg(ns.flags_key())
            .arg("new-checkout")
            .arg("new-checkout-rollout-percent")
            .query_async(&mut connection)
            .await
    }
}

/// NATS JetStream, the messaging backbone: a stream of order events (a topic) and the billing
/// team's durable consumer (its consumer group).
#[derive(Default)]
pub struct CreateOrderEvents;

#[change_unit(
    id = "create-order-events",
    order = "0003",
    author = "platform",
    target_system = "events"
)]
impl CreateOrderEvents {
    #[execution]
    async fn execute(&self, js: &jetstream::Context, ns: &Namespace) -> anyhow::Result<()> {
        let stream = js
            .create_stream(jetstream::stream::Config {
                name: ns.stream(),
                subjects: vec![ns.subjects()],
                max_age: Duration::from_secs(7 * 24 * 3600),
                ..Default::default()
            })
            .await?;
        stream
            .create_consumer(jetstream::consumer::pull::Config {
                durable_name: Some("billing".into()),
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                ..Default::default()
            })
            .await?;
        Ok(())
    }

    /// Deleting the stream deletes its consumers; a stream that never got created is fine.
    #[rollback_execution]
    async fn rollback(&self, js: &jetstream::Context, ns: &Namespace) -> anyhow::Result<()> {
        match js.delete_stream(ns.stream()).await {
            Ok(_) => Ok(()),
            Err(error) => match error.kind() {
                jetstream::context::DeleteStreamErrorKind::JetStream(e)
                    if e.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND =>
                {
                    Ok(())
                }
                _ => Err(error.into()),
            },
        }
    }
}

/// S3, the object store: a bucket whose drafts expire after 30 days.
#[derive(Default)]
pub struct CreateInvoiceArchive;

#[change_unit(
    id = "create-invoice-archive",
    order = "0004",
    author = "finance",
    target_system = "archive"
)]
impl CreateInvoiceArchive {
    #[execution]
    async fn execute(&self, bucket: &Bucket) -> anyhow::Result<()> {
        use s3::serde_types::{
            BucketLifecycleConfiguration, Expiration, LifecycleFilter, LifecycleRule,
        };
        let credentials = bucket.credentials().await?;
        Bucket::create_with_path_style(
            &bucket.name,
            bucket.region(),
            credentials,
            s3::BucketConfiguration::default(),
        )
        .await?;
        let expire_drafts = LifecycleRule {
            id: Some("expire-drafts".into()),
            status: "Enabled".into(),
            filter: Some(LifecycleFilter {
                prefix: Some("drafts/".into()),
                ..Default::default()
            }),
            expiration: Some(Expiration {
                days: Some(30),
                ..Default::default()
            }),
            ..Default::default()
        };
        bucket
            .put_bucket_lifecycle(BucketLifecycleConfiguration::new(vec![expire_drafts]))
            .await?;
        Ok(())
    }

    /// A bucket is deleted only once empty; one that is not there is fine.
    #[rollback_execution]
    async fn rollback(&self, bucket: &Bucket) -> anyhow::Result<()> {
        let not_found =
            |e: &s3::error::S3Error| matches!(e, s3::error::S3Error::HttpFailWithBody(404, _));
        let pages = match bucket.list(String::new(), None).await {
            Ok(pages) => pages,
            Err(error) if not_found(&error) => return Ok(()),
            Err(error) => return Err(error.into()),
        };
        for object in pages.iter().flat_map(|page| &page.contents) {
            bucket.delete_object(&object.key).await?;
        }
        match bucket.delete().await {
            Err(error) if !not_found(&error) => Err(error.into()),
            _ => Ok(()),
        }
    }
}

/// MariaDB, another transactional database: the table commits with a marker row there, so an
/// interrupted run is recovered without running it twice.
#[derive(Default)]
pub struct CreateOrderSearch;

#[change_unit(
    id = "create-order-search",
    order = "0005",
    author = "search",
    target_system = "search"
)]
impl CreateOrderSearch {
    #[execution]
    async fn execute(&self, tx: &mut sqlx::Transaction<'_, sqlx::MySql>) -> sqlx::Result<()> {
        sqlx::query(
            "CREATE TABLE order_search (
                order_id BIGINT PRIMARY KEY,
                customer VARCHAR(200) NOT NULL,
                FULLTEXT KEY customer_text (customer)
            )",
        )
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Used by `undo`.
    #[rollback_execution]
    async fn rollback(&self, tx: &mut sqlx::Transaction<'_, sqlx::MySql>) -> sqlx::Result<()> {
        sqlx::query("DROP TABLE order_search")
            .execute(&mut **tx)
            .await?;
        Ok(())
    }
}

/// Connects to every target system and brings them all up to date.
pub async fn run(settings: &Settings) -> anyhow::Result<RunReport> {
    let redis = redis::Client::open(settings.redis_url.as_str())?;
    let js = jetstream::new(async_nats::connect(&settings.nats_url).await?);
    let region = Region::Custom {
        // Any region but us-east-1, where S3 refuses the location constraint the client sends.
        region: "eu-west-1".into(),
        endpoint: settings.s3_url.clone(),
    };
    // moto accepts any credentials; against real S3, use `Credentials::default()`.
    let credentials = Credentials::new(Some("demo"), Some("demo"), None, None, None)?;
    let bucket = Bucket::new(&settings.namespace.bucket(), region, credentials)?.with_path_style();
    let search = SqlTarget::<sqlx::MySql>::connect("search", &settings.mysql_url).await?;

    let builder = Flamingock::builder()
        .database_url(&settings.postgres_url)
        .dependency(settings.namespace.clone())
        .target(NonTxTarget::new("flags").with(redis))
        .target(NonTxTarget::new("events").with(js))
        .target(NonTxTarget::new("archive").with(*bucket))
        .target(search);
    Ok(flamingock::run!(builder).await?)
}

/// One line per system: what the pipeline's units left there, read back from each.
pub async fn describe(settings: &Settings) -> anyhow::Result<Vec<String>> {
    let ns = &settings.namespace;
    let redis = redis::Client::open(settings.redis_url.as_str())?;
    let mut connection = redis.get_multiplexed_async_connection().await?;
    let flags: Vec<(String, String)> = redis::cmd("HGETALL")
        .arg(ns.flags_key())
        .query_async(&mut connection)
        .await?;
    let flags: Vec<String> = flags.iter().map(|(k, v)| format!("{k}={v}")).collect();

    let js = jetstream::new(async_nats::connect(&settings.nats_url).await?);
    let stream = js.get_stream(ns.stream()).await?;
    let consumers = stream.cached_info().state.consumer_count;

    let region = Region::Custom {
        region: "eu-west-1".into(),
        endpoint: settings.s3_url.clone(),
    };
    let credentials = Credentials::new(Some("demo"), Some("demo"), None, None, None)?;
    let bucket = Bucket::new(&ns.bucket(), region, credentials)?.with_path_style();
    let rules: Vec<String> = (bucket.get_bucket_lifecycle().await?.rules.into_iter())
        .filter_map(|rule| rule.id)
        .collect();

    let postgres = sqlx::PgPool::connect(&settings.postgres_url).await?;
    let (orders,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM information_schema.columns WHERE table_name = 'shop_orders'",
    )
    .fetch_one(&postgres)
    .await?;
    let mysql = sqlx::MySqlPool::connect(&settings.mysql_url).await?;
    let (search,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM information_schema.columns
         WHERE table_schema = DATABASE() AND table_name = 'order_search'",
    )
    .fetch_one(&mysql)
    .await?;

    Ok(vec![
        format!("postgres  table shop_orders ({orders} columns)"),
        format!("redis     hash {}: {}", ns.flags_key(), flags.join(", ")),
        format!(
            "nats      stream {} on {} with {consumers} consumer(s)",
            ns.stream(),
            ns.subjects()
        ),
        format!(
            "s3        bucket {}, lifecycle rules: {}",
            ns.bucket(),
            rules.join(", ")
        ),
        format!("mariadb   table order_search ({search} columns)"),
    ])
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::from_env();
    let report = run(&settings).await?;
    println!("{report}");
    for line in describe(&settings).await? {
        println!("{line}");
    }
    Ok(())
}
