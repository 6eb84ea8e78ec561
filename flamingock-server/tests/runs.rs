//! Change units applied through a real server process, on SQLite and on PostgreSQL: a first run
//! applies everything (a unit on a SQL target through the marker protocol), a second applies
//! nothing; a transactional unit on the default target is refused with what to do instead.

mod common;

use std::sync::{Arc, Mutex};

use common::{Server, fresh, token};
use flamingock::sqlx::{self, SqlitePool};
use flamingock::{ChangeContext, ChangeUnit, Flamingock, SqlTarget, UnitOutcome};
use flamingock_testkit::Backend;

/// What the non-transactional units did, in order.
#[derive(Clone, Default)]
pub struct Tally(Arc<Mutex<Vec<String>>>);

impl Tally {
    fn seen(&self) -> Vec<String> {
        self.0.lock().expect("not poisoned").clone()
    }
}

pub mod good {
    use super::*;

    #[flamingock::change_unit(id = "announce", order = "1", author = "ana", transactional = false)]
    pub mod announce {
        use super::*;
        #[execution]
        pub fn execute(context: &ChangeContext, tally: &Tally) {
            tally
                .0
                .lock()
                .expect("not poisoned")
                .push(context.change_id.clone());
        }
    }

    #[flamingock::change_unit(
        id = "create-clients",
        order = "2",
        author = "ana",
        target_system = "app"
    )]
    pub mod create_clients {
        use super::*;
        #[execution]
        pub async fn execute(
            tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
        ) -> Result<(), sqlx::Error> {
            sqlx::query("CREATE TABLE clients (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
                .execute(&mut **tx)
                .await?;
            Ok(())
        }
    }

    #[flamingock::change_unit(
        id = "announce-again",
        order = "10",
        author = "bo",
        transactional = false
    )]
    pub mod announce_again {
        use super::*;
        #[execution]
        pub fn execute(context: &ChangeContext, tally: &Tally) {
            tally
                .0
                .lock()
                .expect("not poisoned")
                .push(context.change_id.clone());
        }
    }
}

pub mod shared {
    #[flamingock::change_unit(id = "on-the-default-target", order = "1", author = "ana")]
    pub mod on_default {
        #[execution]
        pub fn execute() {}
    }
}

pub mod blocked {
    #[flamingock::change_unit(
        id = "flaky-export",
        order = "1",
        author = "ana",
        transactional = false
    )]
    pub mod flaky {
        #[execution]
        pub fn execute() -> Result<(), std::io::Error> {
            Err(std::io::Error::other("the export endpoint answered 500"))
        }
    }
}

fn units(module: &str) -> Vec<&'static ChangeUnit> {
    ChangeUnit::registered()
        .filter(|unit| unit.source.module_path.contains(module))
        .collect()
}

async fn two_runs_apply_once(backend: Backend) {
    let Some(db) = fresh(backend, "server_runs").await else {
        return;
    };
    let server = Server::start(&db.url);
    let runner = token(&db.url, "runner", Some(("orders", "prod")));
    let dir = tempfile::tempdir().expect("a directory");
    let target_url = format!("sqlite://{}?mode=rwc", dir.path().join("app.db").display());
    let pool = SqlitePool::connect(&target_url).await.expect("the target");
    let tally = Tally::default();
    let run = || async {
        Flamingock::builder()
            .database_url(server.url("orders", "prod"))
            .token(runner.clone())
            .dependency(tally.clone())
            .target(SqlTarget::new("app", pool.clone()))
            .build()
            .await
            .expect("the engine")
            .run(units("::good::"))
            .await
            .expect("the run succeeds")
    };
    let first = run().await;
    assert_eq!(
        first.applied(),
        ["announce", "create-clients", "announce-again"],
        "{first}"
    );
    let second = run().await;
    assert_eq!(second.count(UnitOutcome::Applied), 0, "{second}");
    assert_eq!(tally.seen(), ["announce", "announce-again"]);
    let clients: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM clients")
        .fetch_one(&pool)
        .await
        .expect("the unit created the table on the target");
    assert_eq!(clients, 0);
    // The marker protocol ran: the marker is gone once APPLIED is on the server.
    let markers: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM flamingock_marker")
        .fetch_one(&pool)
        .await
        .expect("the marker table");
    assert_eq!(markers, 0);
    let reader = token(&db.url, "reader", Some(("orders", "prod")));
    let entries = flamingock_client::HttpAuditStore::new(&server.url("orders", "prod"), reader)
        .expect("a store");
    let rows = flamingock::AuditStore::entries(&entries)
        .await
        .expect("rows");
    let states: Vec<(String, String, String)> = rows
        .iter()
        .map(|r| {
            (
                r.change_id.clone(),
                r.state.as_str().to_owned(),
                r.tx_strategy.as_str().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        states,
        [
            ("announce".into(), "STARTED".into(), "NON_TX".into()),
            ("announce".into(), "APPLIED".into(), "NON_TX".into()),
            (
                "create-clients".into(),
                "STARTED".into(),
                "TX_SEPARATE".into()
            ),
            (
                "create-clients".into(),
                "APPLIED".into(),
                "TX_SEPARATE".into()
            ),
            ("announce-again".into(), "STARTED".into(), "NON_TX".into()),
            ("announce-again".into(), "APPLIED".into(), "NON_TX".into()),
        ]
    );
    drop(server);
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn units_apply_once_through_a_server_on_sqlite() {
    two_runs_apply_once(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn units_apply_once_through_a_server_on_postgres() {
    two_runs_apply_once(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transactional_unit_on_the_default_target_is_refused_saying_what_to_do() {
    let Some(db) = fresh(Backend::Sqlite, "server_shared").await else {
        return;
    };
    let server = Server::start(&db.url);
    let runner = token(&db.url, "runner", Some(("orders", "prod")));
    let error = Flamingock::builder()
        .database_url(server.url("orders", "prod"))
        .token(runner)
        .build()
        .await
        .expect("the engine")
        .run(units("::shared::"))
        .await
        .expect_err("the server shares no transaction");
    let text = format!("{error}\n{error:?}");
    assert!(text.contains("cannot share a transaction"), "{text}");
    assert!(text.contains("target_system"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_token_is_a_clear_error_before_anything_is_sent() {
    let Err(error) = Flamingock::builder()
        .database_url("http://127.0.0.1:9/orders/prod")
        .token("")
        .build()
        .await
    else {
        panic!("no token must be refused");
    };
    assert!(error.to_string().contains("FLAMINGOCK_TOKEN"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_fixes_a_blocked_unit_through_the_server_and_a_runner_may_not() {
    let Some(db) = fresh(Backend::Sqlite, "server_fix").await else {
        return;
    };
    let server = Server::start(&db.url);
    let url = server.url("orders", "prod");
    let engine = |token: String| {
        let url = url.clone();
        async move {
            Flamingock::builder()
                .database_url(url)
                .token(token)
                .build()
                .await
                .expect("the engine")
        }
    };
    let runner = engine(token(&db.url, "runner", Some(("orders", "prod")))).await;
    runner
        .run(units("::blocked::"))
        .await
        .expect_err("the unit fails");
    let blocked = runner
        .run(units("::blocked::"))
        .await
        .expect_err("the unit is blocked");
    assert!(blocked.to_string().contains("flaky-export"), "{blocked}");
    let request = flamingock::FixRequest {
        change_id: "flaky-export".to_owned(),
        resolution: flamingock::Resolution::Applied,
        operator: "eva".to_owned(),
        reason: "checked the export by hand".to_owned(),
        expected: None,
    };
    let refused = runner
        .fix(units("::blocked::"), &request)
        .await
        .expect_err("a runner records no fix");
    assert!(format!("{refused}").contains("403"), "{refused}");
    let operator = engine(token(&db.url, "operator", Some(("orders", "prod")))).await;
    let fixed = operator
        .fix(units("::blocked::"), &request)
        .await
        .expect("the operator's fix");
    assert_eq!(fixed.entry.author, "eva");
    // Runs skip it from now on; the operator's token cannot run units.
    let report = runner
        .run(units("::blocked::"))
        .await
        .expect("the run skips it");
    assert_eq!(report.count(UnitOutcome::Applied), 0, "{report}");
    let rows = flamingock::AuditStore::entries(runner.store().as_ref())
        .await
        .expect("rows");
    let states: Vec<&str> = rows.iter().map(|r| r.state.as_str()).collect();
    assert_eq!(states, ["STARTED", "FAILED", "MANUAL_MARKED_AS_APPLIED"]);
}
