//! The per-test server databases work: created, usable by a run, dropped; on each server.

use flamingock_tests::servers::ServerDb;

macro_rules! smoke_suite {
    ($name:ident, $db:ty, $backend:expr) => {
        mod $name {
            use super::*;

            #[tokio::test]
            async fn a_fresh_database_per_test() {
                let Some(db) = ServerDb::create($backend, "smoke").await else {
                    return;
                };
                let report = flamingock::Flamingock::builder()
                    .database_url(&db.url)
                    .module("conformance::servers_smoke::nothing")
                    .allow_no_units()
                    .run()
                    .await
                    .unwrap();
                assert!(report.units.is_empty());
                db.drop_database().await;
            }
        }
    };
}

flamingock_testkit::for_each_backend!(smoke_suite, servers);
