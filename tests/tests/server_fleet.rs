//! Runner processes through server replicas (issue 16): 8 `fleet_runner` processes of one
//! service and 8 of another start together, half of each service through one of two servers on
//! one PostgreSQL database; every unit of each service is applied exactly once (one line in its
//! effects files, one `APPLIED` row in its audit table on the server).
//!
//! The runners are real OS processes (tests/src/bin/fleet_runner.rs, its 25 non-transactional
//! units: the server shares no transaction with a unit); the two servers are the real router on
//! two listeners and two connection pools, in this test's process (a test of this crate cannot
//! name the `flamingock-server` binary; `flamingock-server/tests/` starts it as a process).
#![cfg(unix)]

use std::collections::BTreeMap;

use flamingock_client::wire::Role;
use flamingock_server::{AppState, ServerDb};
use flamingock_testkit::{Backend, FreshDb};
use flamingock_tests::fleet::{Fleet, unit_ids};

/// The test binary each instance runs.
const RUNNER: &str = env!("CARGO_BIN_EXE_fleet_runner");

/// One server replica on `database_url`, serving until the test's runtime ends; its base URL.
async fn replica(database_url: &str) -> String {
    let db = ServerDb::open(database_url)
        .await
        .expect("the server's database");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let address = listener.local_addr().expect("the address");
    tokio::spawn(async move {
        axum::serve(listener, flamingock_server::router(AppState { db }))
            .await
            .expect("the replica serves");
    });
    format!("http://{address}")
}

async fn runner_token(database_url: &str, service: &str) -> String {
    let db = ServerDb::open(database_url)
        .await
        .expect("the server's database");
    flamingock_server::tokens::create(&db, Role::Runner, Some(service), Some("prod"))
        .await
        .expect("a runner token")
        .token
}

/// `APPLIED` rows per unit in a service's audit table on the server's database.
async fn applied_rows(database_url: &str, service: &str) -> BTreeMap<String, i64> {
    let pool = sqlx::PgPool::connect(database_url).await.expect("connect");
    let rows: Vec<(String, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT change_id, COUNT(*) FROM fk_{service}__prod_audit WHERE state = 'APPLIED' GROUP BY change_id"
    )))
    .fetch_all(&pool)
    .await
    .expect("the service's audit table");
    pool.close().await;
    rows.into_iter().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_runner_processes_of_each_of_two_services_through_two_replicas_apply_every_unit_once()
{
    let Some(db) = FreshDb::create(Backend::Postgres, "server_fleet_procs").await else {
        return;
    };
    let replicas = [replica(&db.url).await, replica(&db.url).await];
    let services = ["orders", "billing"];
    // Four fleets: each service through each replica, 4 processes each.
    let mut fleets = Vec::new();
    for service in services {
        let token = runner_token(&db.url, service).await;
        for base in &replicas {
            let mut fleet = Fleet::new(RUNNER, &format!("{base}/{service}/prod"));
            let spawn = tokio::task::block_in_place(|| fleet.spawn(4, &["--token", &token]));
            fleets.push((service, fleet, spawn));
        }
    }
    for (_, fleet, _) in &fleets {
        fleet.go();
    }
    for (_, fleet, started) in &mut fleets {
        let started = started.clone();
        tokio::task::block_in_place(|| fleet.wait_exit(started));
    }
    let expected: Vec<String> = unit_ids(None)
        .into_iter()
        .filter(|id| id.starts_with("file-"))
        .collect();
    assert_eq!(expected.len(), 25);
    for service in services {
        let mut effects: BTreeMap<String, usize> = BTreeMap::new();
        let mut applied_by_runners = 0;
        for (_, fleet, _) in fleets.iter().filter(|(s, _, _)| *s == service) {
            for (i, runner) in fleet.runners.iter().enumerate() {
                assert_eq!(
                    runner.code(),
                    Some(0),
                    "{service} runner {i} failed:\n{}",
                    fleet.outputs()
                );
                applied_by_runners += runner.applied().expect("a FLEET line");
            }
            for (id, lines) in fleet.effect_lines() {
                *effects.entry(id).or_default() += lines;
            }
        }
        let once: BTreeMap<String, usize> = expected.iter().map(|id| (id.clone(), 1)).collect();
        assert_eq!(effects, once, "{service}: each unit's effect exactly once");
        assert_eq!(applied_by_runners, 25, "{service}: the runners' reports");
        let rows = applied_rows(&db.url, service).await;
        let once: BTreeMap<String, i64> = expected.iter().map(|id| (id.clone(), 1)).collect();
        assert_eq!(rows, once, "{service}: one APPLIED row per unit");
    }
    drop(fleets);
    db.drop_database().await;
}
