//! Many runners and a server that dies: 8 engines of one service and 8 of another start together
//! through two server processes on one PostgreSQL database (every unit applied exactly once per
//! service); a server killed mid-run and restarted (the run finishes, or stops with a clear
//! error, and the next run completes, never applying a unit twice).

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Server, fresh, token};
use flamingock::sqlx::{self, SqlitePool};
use flamingock::{ChangeContext, ChangeUnit, Flamingock, SqlTarget, UnitOutcome};
use flamingock_testkit::Backend;
use tokio::sync::{Barrier, Notify, Semaphore};

/// Which units ran, per service, in the order they ran.
#[derive(Clone, Default)]
pub struct Tally(Arc<Mutex<Vec<String>>>);

/// Where the slow unit waits: it says it got there, then waits for a permit.
#[derive(Clone)]
pub struct Gate {
    reached: Arc<Notify>,
    open: Arc<Semaphore>,
}

pub mod fleet_units {
    use super::*;

    macro_rules! tally_unit {
        ($name:ident, $id:literal, $order:literal) => {
            #[flamingock::change_unit(id = $id, order = $order, author = "fleet", transactional = false)]
            pub mod $name {
                use super::*;
                #[execution]
                pub async fn execute(context: &ChangeContext, tally: &Tally) {
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                    tally.0.lock().expect("not poisoned").push(context.change_id.clone());
                }
            }
        };
    }
    tally_unit!(one, "fleet-1", "1");
    tally_unit!(two, "fleet-2", "2");
    tally_unit!(three, "fleet-3", "3");
    tally_unit!(four, "fleet-4", "4");
    tally_unit!(five, "fleet-5", "5");
}

pub mod crash_units {
    use super::*;

    async fn effect(
        tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
        id: &str,
    ) -> Result<(), sqlx::Error> {
        sqlx::query("INSERT INTO effects (unit) VALUES (?)")
            .bind(id.to_owned())
            .execute(&mut **tx)
            .await
            .map(drop)
    }

    #[flamingock::change_unit(id = "crash-1", order = "1", author = "fleet", target_system = "app")]
    pub mod first {
        use super::*;
        #[execution]
        pub async fn execute(
            tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
        ) -> Result<(), sqlx::Error> {
            effect(tx, "crash-1").await
        }
    }

    #[flamingock::change_unit(id = "crash-2", order = "2", author = "fleet", target_system = "app")]
    pub mod slow {
        use super::*;
        #[execution]
        pub async fn execute(
            tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
            gate: &Gate,
        ) -> Result<(), sqlx::Error> {
            effect(tx, "crash-2").await?;
            gate.reached.notify_one();
            // A permit taken and given back: once opened, the gate stays open.
            let _permit = gate.open.acquire().await.expect("the gate is never closed");
            Ok(())
        }
    }

    #[flamingock::change_unit(id = "crash-3", order = "3", author = "fleet", target_system = "app")]
    pub mod last {
        use super::*;
        #[execution]
        pub async fn execute(
            tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
        ) -> Result<(), sqlx::Error> {
            effect(tx, "crash-3").await
        }
    }
}

fn units(module: &str) -> Vec<&'static ChangeUnit> {
    ChangeUnit::registered()
        .filter(|unit| unit.source.module_path.contains(module))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_runners_of_two_services_through_two_servers_apply_every_unit_once() {
    let Some(db) = fresh(Backend::Postgres, "server_fleet").await else {
        return;
    };
    let servers = [Server::start(&db.url), Server::start(&db.url)];
    let services = ["orders", "billing"];
    let tokens: Vec<String> = services
        .iter()
        .map(|service| token(&db.url, "runner", Some((service, "prod"))))
        .collect();
    let tallies = [Tally::default(), Tally::default()];
    let barrier = Arc::new(Barrier::new(16));
    let mut runs = Vec::new();
    for instance in 0..16 {
        let service = instance % 2;
        let url = servers[(instance / 2) % 2].url(services[service], "prod");
        let token = tokens[service].clone();
        let tally = tallies[service].clone();
        let barrier = Arc::clone(&barrier);
        runs.push(tokio::spawn(async move {
            let engine = Flamingock::builder()
                .database_url(url)
                .token(token)
                .dependency(tally)
                .build()
                .await
                .expect("the engine");
            barrier.wait().await;
            engine.run(units("::fleet_units::")).await
        }));
    }
    let mut applied = [0, 0];
    for (instance, run) in runs.into_iter().enumerate() {
        let report = run
            .await
            .expect("no panic")
            .unwrap_or_else(|error| panic!("runner {instance}: {error}"));
        applied[instance % 2] += report.count(UnitOutcome::Applied);
    }
    let expected: Vec<String> = (1..=5).map(|n| format!("fleet-{n}")).collect();
    for (service, tally) in services.iter().zip(&tallies) {
        assert_eq!(
            *tally.0.lock().expect("not poisoned"),
            expected,
            "{service}"
        );
    }
    assert_eq!(applied, [5, 5]);
    drop(servers);
    db.drop_database().await;
}

/// The target of the crash tests: a SQLite file with the table the units insert into.
async fn target() -> (tempfile::TempDir, SqlitePool) {
    let dir = tempfile::tempdir().expect("a directory");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("app.db").display());
    let pool = SqlitePool::connect(&url).await.expect("the target");
    sqlx::query("CREATE TABLE effects (unit TEXT NOT NULL)")
        .execute(&pool)
        .await
        .expect("the effects table");
    (dir, pool)
}

async fn effects(pool: &SqlitePool) -> Vec<String> {
    sqlx::query_scalar("SELECT unit FROM effects ORDER BY rowid")
        .fetch_all(pool)
        .await
        .expect("the effects")
}

struct CrashRun {
    url: String,
    token: String,
    pool: SqlitePool,
    gate: Gate,
    lease: Duration,
}

impl CrashRun {
    async fn run(&self) -> Result<flamingock::RunReport, flamingock::Error> {
        Flamingock::builder()
            .database_url(self.url.clone())
            .token(self.token.clone())
            .dependency(self.gate.clone())
            .target(SqlTarget::new("app", self.pool.clone()))
            .lock_lease(self.lease)
            .build()
            .await?
            .run(units("::crash_units::"))
            .await
    }
}

async fn crash_setup(
    hint: &str,
    lease: Duration,
) -> Option<(
    flamingock_testkit::FreshDb,
    Server,
    CrashRun,
    tempfile::TempDir,
)> {
    let db = fresh(Backend::Postgres, hint).await?;
    let server = Server::start(&db.url);
    let (dir, pool) = target().await;
    let run = CrashRun {
        url: server.url("orders", "prod"),
        token: token(&db.url, "runner", Some(("orders", "prod"))),
        pool,
        gate: Gate {
            reached: Arc::new(Notify::new()),
            open: Arc::new(Semaphore::new(0)),
        },
        lease,
    };
    Some((db, server, run, dir))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restarted_mid_run_within_the_retries_lets_the_run_finish_applying_each_unit_once()
{
    let Some((db, mut server, crash, _dir)) =
        crash_setup("server_restart", Duration::from_secs(20)).await
    else {
        return;
    };
    let crash = Arc::new(crash);
    let running = tokio::spawn({
        let crash = Arc::clone(&crash);
        async move { crash.run().await }
    });
    crash.gate.reached.notified().await;
    server.kill();
    crash.gate.open.add_permits(1);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let _restarted = Server::start_on(&db.url, &server.listen);
    let report = running
        .await
        .expect("no panic")
        .expect("the run finishes after the restart");
    assert_eq!(
        report.applied(),
        ["crash-1", "crash-2", "crash-3"],
        "{report}"
    );
    let again = crash.run().await.expect("the next run");
    assert_eq!(again.count(UnitOutcome::Applied), 0, "{again}");
    assert_eq!(
        effects(&crash.pool).await,
        ["crash-1", "crash-2", "crash-3"]
    );
    drop(_restarted);
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_down_past_the_retries_stops_the_run_with_a_clear_error_and_the_next_run_completes()
 {
    let Some((db, mut server, crash, _dir)) =
        crash_setup("server_down", Duration::from_secs(2)).await
    else {
        return;
    };
    let crash = Arc::new(crash);
    let running = tokio::spawn({
        let crash = Arc::clone(&crash);
        async move { crash.run().await }
    });
    crash.gate.reached.notified().await;
    server.kill();
    crash.gate.open.add_permits(1);
    let error = running
        .await
        .expect("no panic")
        .expect_err("the server stays down");
    let text = format!("{error}");
    eprintln!("the run stopped with: {text}");
    assert!(
        text.contains("Flamingock server") || text.contains("audit store"),
        "{text}"
    );
    let _restarted = Server::start_on(&db.url, &server.listen);
    // The dead run's lease ends on its own (2 s); the next run waits for it, then completes.
    let report = crash.run().await.expect("the next run completes");
    // crash-2's STARTED is on the server, its marker was rolled back with its change: applied
    // again, once.
    assert_eq!(report.applied(), ["crash-2", "crash-3"], "{report}");
    let again = crash.run().await.expect("a third run");
    assert_eq!(again.count(UnitOutcome::Applied), 0, "{again}");
    assert_eq!(
        effects(&crash.pool).await,
        ["crash-1", "crash-2", "crash-3"]
    );
    drop(_restarted);
    db.drop_database().await;
}
