//! The reply-loss proxy does what the reply-loss matrix relies on, with sqlx straight on the
//! servers: an armed statement reaches the database and commits while its client gets an error,
//! reconnects are refused while asked, and an unarmed proxy is invisible.
//!
//! Run with `--nocapture` to see what sqlx sent (each test prints the proxy's executions).

use std::time::{Duration, Instant};

use flamingock_testkit::Backend;
use flamingock_tests::reply_loss::{ReplyLossProxy, Trigger};
use flamingock_tests::servers::ServerDb;
use sqlx::Connection;

const CREATE_EFFECTS: &str = "CREATE TABLE effects (id INT PRIMARY KEY, state VARCHAR(20))";

fn print_executions(proxy: &ReplyLossProxy) {
    for execution in proxy.executions() {
        println!("{execution}");
    }
}

/// The proxy's tests on one server (stamped by `flamingock_testkit::for_each_backend!` on the
/// server backends only: the proxy stands in front of a server).
macro_rules! reply_loss_tests {
    ($name:ident, $db:ty, $backend:expr) => {
        mod $name {
            use super::*;

            type Conn = <$db as sqlx::Database>::Connection;
            const INSERT: &str = match $backend {
                Backend::Postgres => "INSERT INTO effects (id, state) VALUES ($1, $2)",
                _ => "INSERT INTO effects (id, state) VALUES (?, ?)",
            };

            /// A fresh database with the `effects` table, and a proxy in front of its server.
            async fn setup(hint: &str) -> Option<(ServerDb, ReplyLossProxy)> {
                let db = ServerDb::create($backend, hint).await?;
                let mut direct = Conn::connect(&db.url).await.unwrap();
                sqlx::raw_sql(CREATE_EFFECTS)
                    .execute(&mut direct)
                    .await
                    .unwrap();
                direct.close().await.unwrap();
                let proxy = ReplyLossProxy::in_front_of(&db.url).await;
                Some((db, proxy))
            }

            async fn rows(db: &ServerDb) -> Vec<(i32, String)> {
                let mut direct = Conn::connect(&db.url).await.unwrap();
                let rows = sqlx::query_as("SELECT id, state FROM effects ORDER BY id")
                    .fetch_all(&mut direct)
                    .await
                    .unwrap();
                direct.close().await.unwrap();
                rows
            }

            async fn insert(conn: &mut Conn, id: i32, state: &str) -> Result<(), sqlx::Error> {
                sqlx::query(INSERT)
                    .bind(id)
                    .bind(state)
                    .execute(conn)
                    .await
                    .map(drop)
            }

            #[tokio::test]
            async fn an_unarmed_proxy_passes_everything_through() {
                let Some((db, proxy)) = setup("rl_pass").await else {
                    return;
                };
                let mut conn = Conn::connect(&proxy.url_for(&db.url)).await.unwrap();
                let one: i32 = sqlx::query_scalar("SELECT 1")
                    .fetch_one(&mut conn)
                    .await
                    .unwrap();
                assert_eq!(one, 1);
                let mut tx = conn.begin().await.unwrap();
                insert(&mut tx, 1, "APPLIED").await.unwrap();
                tx.commit().await.unwrap();
                insert(&mut conn, 2, "APPLIED").await.unwrap();
                conn.close().await.unwrap();
                print_executions(&proxy);
                assert!(!proxy.fired());
                assert!(
                    proxy
                        .executions()
                        .iter()
                        .any(|e| e.statement == INSERT && e.prepared)
                );
                assert_eq!(
                    rows(&db).await,
                    vec![(1, "APPLIED".to_owned()), (2, "APPLIED".to_owned())]
                );
                db.drop_database().await;
            }

            #[tokio::test]
            async fn a_lost_commit_reply_leaves_the_transaction_committed() {
                let Some((db, proxy)) = setup("rl_commit").await else {
                    return;
                };
                // The second COMMIT loses its reply; the first is delivered.
                proxy.arm(Trigger::statement_contains("COMMIT").nth(2));
                let mut conn = Conn::connect(&proxy.url_for(&db.url)).await.unwrap();
                for id in [1, 2] {
                    let mut tx = conn.begin().await.unwrap();
                    insert(&mut tx, id, "APPLIED").await.unwrap();
                    let committed = tx.commit().await;
                    if id == 1 {
                        committed.unwrap();
                        assert!(!proxy.fired());
                    } else {
                        assert!(
                            committed.is_err(),
                            "the client learns nothing: {committed:?}"
                        );
                    }
                }
                print_executions(&proxy);
                assert!(proxy.fired());
                let fired = proxy.fired_on().unwrap();
                assert!(!fired.prepared);
                assert!(fired.statement.to_ascii_uppercase().contains("COMMIT"));
                assert_eq!(
                    rows(&db).await,
                    vec![(1, "APPLIED".to_owned()), (2, "APPLIED".to_owned())],
                    "the COMMIT whose reply was lost committed"
                );
                db.drop_database().await;
            }

            #[tokio::test]
            async fn the_commit_after_a_chosen_insert_loses_its_reply() {
                let Some((db, proxy)) = setup("rl_after").await else {
                    return;
                };
                proxy.arm(Trigger::statement_contains("COMMIT").after(
                    Trigger::statement_contains("INSERT INTO effects").and_param("APPLIED"),
                ));
                let mut conn = Conn::connect(&proxy.url_for(&db.url)).await.unwrap();
                let mut tx = conn.begin().await.unwrap();
                insert(&mut tx, 1, "STARTED").await.unwrap();
                tx.commit().await.unwrap();
                let mut tx = conn.begin().await.unwrap();
                insert(&mut tx, 2, "APPLIED").await.unwrap();
                assert!(!proxy.fired(), "the insert itself passes");
                assert!(tx.commit().await.is_err());
                assert!(proxy.fired());
                assert_eq!(rows(&db).await.len(), 2, "both transactions committed");
                db.drop_database().await;
            }

            #[tokio::test]
            async fn a_lost_reply_to_an_insert_with_binds_leaves_the_row_written() {
                let Some((db, proxy)) = setup("rl_insert").await else {
                    return;
                };
                proxy.arm(Trigger::statement_contains("INSERT INTO effects").and_param("APPLIED"));
                let mut conn = Conn::connect(&proxy.url_for(&db.url)).await.unwrap();
                // A bind that does not match passes.
                insert(&mut conn, 1, "STARTED").await.unwrap();
                let lost = insert(&mut conn, 2, "APPLIED").await;
                assert!(lost.is_err(), "the client learns nothing: {lost:?}");
                print_executions(&proxy);
                assert!(proxy.fired());
                let fired = proxy.fired_on().unwrap();
                assert!(fired.prepared);
                assert!(fired.params.contains(&Some(b"APPLIED".to_vec())));
                assert_eq!(
                    rows(&db).await,
                    vec![(1, "STARTED".to_owned()), (2, "APPLIED".to_owned())]
                );
                db.drop_database().await;
            }

            #[tokio::test]
            async fn reconnects_are_refused_until_released() {
                let Some((db, proxy)) = setup("rl_release").await else {
                    return;
                };
                let url = proxy.url_for(&db.url);
                proxy
                    .arm(Trigger::statement_contains("INSERT INTO effects"))
                    .refuse_reconnects_until_released()
                    .cut_other_connections();
                let mut idle = Conn::connect(&url).await.unwrap();
                let mut conn = Conn::connect(&url).await.unwrap();
                assert!(insert(&mut conn, 1, "APPLIED").await.is_err());
                assert!(proxy.fired());
                assert!(proxy.refusing_reconnects());
                assert!(
                    Conn::connect(&url).await.is_err(),
                    "refused while not released"
                );
                assert!(
                    sqlx::query("SELECT 1").execute(&mut idle).await.is_err(),
                    "the other open connection was cut too"
                );
                proxy.accept_reconnects();
                let mut again = Conn::connect(&url).await.unwrap();
                // Disarmed once fired: the same statement now passes.
                insert(&mut again, 2, "APPLIED").await.unwrap();
                again.close().await.unwrap();
                assert_eq!(rows(&db).await.len(), 2);
                db.drop_database().await;
            }

            #[tokio::test]
            async fn reconnects_are_refused_for_the_set_duration_then_accepted() {
                let Some((db, proxy)) = setup("rl_refuse").await else {
                    return;
                };
                let url = proxy.url_for(&db.url);
                let window = Duration::from_secs(3);
                let armed_at = Instant::now();
                proxy
                    .arm(Trigger::statement_contains("INSERT INTO effects"))
                    .refuse_reconnects_for(window);
                let mut conn = Conn::connect(&url).await.unwrap();
                assert!(insert(&mut conn, 1, "APPLIED").await.is_err());
                assert!(proxy.fired());
                // Refusal starts after arming: an accepted connection proves the window is over.
                let refused = Conn::connect(&url).await.is_err();
                assert!(refused || armed_at.elapsed() >= window);
                let accepted = loop {
                    if let Ok(conn) = Conn::connect(&url).await {
                        break conn;
                    }
                    assert!(
                        armed_at.elapsed() < window + Duration::from_secs(120),
                        "reconnects still refused long after the window"
                    );
                    tokio::time::sleep(Duration::from_millis(200)).await;
                };
                assert!(armed_at.elapsed() >= window);
                accepted.close().await.unwrap();
                assert_eq!(rows(&db).await, vec![(1, "APPLIED".to_owned())]);
                db.drop_database().await;
            }
        }
    };
}

flamingock_testkit::for_each_backend!(reply_loss_tests, servers);
