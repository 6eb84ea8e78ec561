//! A cloud object store as a target system: an S3 bucket with a lifecycle rule and a policy,
//! created by `NON_TX` units that take the target's `s3::Bucket` handle by type, against the
//! S3-compatible `moto_server`. Created exactly once; removed, objects and all, by the rollback
//! when the unit fails halfway.

use flamingock::{AuditState, Error, NonTxTarget, TxStrategy, UnitOutcome};
use flamingock_tests::TestDb;
use flamingock_tests::services::{self, Cleanup, bucket_name, is_s3_not_found};

/// The policy the archive gets: nobody deletes an invoice.
pub fn retention_policy(bucket: &str) -> String {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "KeepInvoices",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:DeleteObject",
            "Resource": format!("arn:aws:s3:::{bucket}/invoices/*"),
        }],
    })
    .to_string()
}

mod invoice_archive {
    use flamingock::prelude::*;
    use s3::serde_types::{
        BucketLifecycleConfiguration, Expiration, LifecycleFilter, LifecycleRule,
    };
    use s3::{Bucket, BucketConfiguration};

    #[derive(Default)]
    pub struct CreateInvoiceArchive;

    #[change_unit(
        id = "create-invoice-archive",
        order = "1",
        author = "finance",
        target_system = "archive"
    )]
    impl CreateInvoiceArchive {
        /// The bucket, a rule that expires drafts after 30 days, and a policy that keeps invoices.
        #[execution]
        async fn execute(&self, bucket: &Bucket) -> anyhow::Result<()> {
            Bucket::create_with_path_style(
                &bucket.name,
                bucket.region(),
                bucket.credentials().await?,
                BucketConfiguration::default(),
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
            bucket
                .put_bucket_policy(&crate::s3::retention_policy(&bucket.name))
                .await?;
            Ok(())
        }

        #[rollback_execution]
        async fn rollback(&self, bucket: &Bucket) -> anyhow::Result<()> {
            flamingock_tests::services::remove_bucket(bucket).await?;
            Ok(())
        }
    }
}

mod seeded_archive {
    use flamingock::prelude::*;
    use s3::{Bucket, BucketConfiguration};

    #[derive(Default)]
    pub struct CreateSeededArchive;

    #[change_unit(
        id = "create-seeded-archive",
        order = "1",
        author = "finance",
        target_system = "archive"
    )]
    impl CreateSeededArchive {
        /// Creates the bucket and writes a README into it, then copies the invoice template from
        /// a shared bucket that does not exist: the store answers 404 and the unit fails.
        #[execution]
        async fn execute(&self, bucket: &Bucket) -> anyhow::Result<()> {
            Bucket::create_with_path_style(
                &bucket.name,
                bucket.region(),
                bucket.credentials().await?,
                BucketConfiguration::default(),
            )
            .await?;
            bucket
                .put_object("README.txt", b"invoices, one object per invoice")
                .await?;
            let templates = Bucket::new(
                &format!("{}-templates", bucket.name),
                bucket.region(),
                bucket.credentials().await?,
            )?
            .with_path_style();
            let template = templates.get_object("invoice.html").await?;
            bucket
                .put_object("templates/invoice.html", template.as_slice())
                .await?;
            Ok(())
        }

        #[rollback_execution]
        async fn rollback(&self, bucket: &Bucket) -> anyhow::Result<()> {
            flamingock_tests::services::remove_bucket(bucket).await?;
            Ok(())
        }
    }
}

#[tokio::test]
async fn a_bucket_with_its_rules_is_created_once() {
    let name = bucket_name("invoices");
    let Some(bucket) = services::s3_bucket(&name).await else {
        return;
    };
    let _cleanup = Cleanup::bucket(&name);
    let db = TestDb::sqlite();
    let builder = || {
        db.builder("targets::s3::invoice_archive")
            .target(NonTxTarget::new("archive").with(bucket.as_ref().clone()))
    };

    let first = flamingock::run!(builder()).await.unwrap();
    assert_eq!(first.applied(), ["create-invoice-archive"]);
    assert_eq!(first.units[0].tx_strategy, TxStrategy::NonTransactional);
    assert!(bucket.exists().await.unwrap());
    let lifecycle = bucket.get_bucket_lifecycle().await.unwrap();
    let rules: Vec<_> = lifecycle.rules.iter().map(|r| r.id.as_deref()).collect();
    assert_eq!(rules, [Some("expire-drafts")]);
    let policy = bucket.get_bucket_policy().await.unwrap();
    let policy: serde_json::Value = serde_json::from_str(policy.as_str().unwrap()).unwrap();
    assert_eq!(policy["Statement"][0]["Sid"], "KeepInvoices");

    // An operator removes the lifecycle rule: the unit must not run again and put it back.
    bucket.delete_bucket_lifecycle().await.unwrap();
    let second = flamingock::run!(builder()).await.unwrap();
    assert!(second.applied().is_empty(), "{second}");
    assert_eq!(second.count(UnitOutcome::AlreadyApplied), 1);
    let lifecycle = bucket.get_bucket_lifecycle().await;
    assert!(
        lifecycle.as_ref().is_err_and(is_s3_not_found),
        "the rule came back: {lifecycle:?}"
    );

    let states = db.states_of("create-invoice-archive").await;
    assert_eq!(states, [AuditState::Started, AuditState::Applied]);
}

#[tokio::test]
async fn a_failing_unit_removes_the_bucket_it_created() {
    let name = bucket_name("invoices");
    let Some(bucket) = services::s3_bucket(&name).await else {
        return;
    };
    let _cleanup = Cleanup::bucket(&name);
    let db = TestDb::sqlite();
    let builder = db
        .builder("targets::s3::seeded_archive")
        .target(NonTxTarget::new("archive").with(bucket.as_ref().clone()));

    let error = flamingock::run!(builder).await.unwrap_err();
    let Error::UnitFailed { report, .. } = &error else {
        panic!("expected the unit to fail, got {error}");
    };
    assert_eq!(report.units[0].outcome, UnitOutcome::RolledBack);
    // The rollback emptied and removed the bucket.
    assert!(
        !bucket.exists().await.unwrap(),
        "bucket {name} is still there"
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
    let failed = entries[1].error.as_deref().unwrap_or_default();
    // The store's answer names the missing template bucket: the unit got that far, so the
    // archive had been created and written to.
    assert!(
        failed.contains("NoSuchBucket") && failed.contains(&format!("{name}-templates")),
        "FAILED row's error: {failed}"
    );
}
