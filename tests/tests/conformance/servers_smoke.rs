//! The per-test server databases work: created, usable by a run, dropped.

use flamingock_tests::servers::{Server, ServerDb};

#[tokio::test]
async fn a_fresh_database_per_test_on_each_server() {
    for server in [Server::Postgres, Server::MySql] {
        let Some(db) = ServerDb::create(server, "smoke").await else {
            continue;
        };
        let report = flamingock::Flamingock::builder()
            .database_url(&db.url)
            .module("conformance::servers_smoke::nothing")
            .run()
            .await
            .unwrap();
        assert!(report.units.is_empty());
        db.drop_database().await;
    }
}
