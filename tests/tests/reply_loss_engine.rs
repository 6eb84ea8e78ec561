//! The engine through the reply-loss proxy (issue 12): a unit's commit or APPLIED insert (or a
//! person's `fix`) reaches PostgreSQL or MariaDB and its reply is lost. The run finds the outcome out, or stops in doubt
//! naming the unit; then a normal run (direct URL) leaves at most one APPLIED per unit, each
//! effect exactly once, a non-transactional rollback never called, and no audit row lost.
//!
//! Set `FLAMINGOCK_REPLY_LOSS_TRACE=1` to see every statement the engine sends through the proxy.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use flamingock::{AuditEntry, AuditState, Error, Flamingock, FlamingockBuilder, UnitOutcome};
use flamingock_tests::reply_loss::{ReplyLossProxy, Trigger};
use flamingock_tests::servers::{Server, ServerDb};

/// Where the non-transactional unit writes: one line per execution, `undo` per rollback.
pub struct EffectsFile(pub PathBuf);

fn append_line(file: &EffectsFile, line: &str) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&file.0)?;
    writeln!(f, "{line}")?;
    f.sync_all()
}

/// A transactional unit on PostgreSQL's audit database: `TX_SHARED`.
mod pg_shared {
    use flamingock::prelude::*;
    use sqlx::{Postgres, Transaction};

    #[change_unit(id = "pg-shared-effect", order = "1", author = "t")]
    mod insert {
        use super::*;

        #[execution]
        async fn execute(tx: &mut Transaction<'_, Postgres>) -> Result<(), sqlx::Error> {
            sqlx::query("INSERT INTO rl_effects (unit) VALUES ('pg-shared-effect')")
                .execute(&mut **tx)
                .await?;
            Ok(())
        }
    }
}

/// A transactional unit on MariaDB's audit database: `TX_SEPARATE` there (DESIGN §4).
mod my_separate {
    use flamingock::prelude::*;
    use sqlx::{MySql, Transaction};

    #[change_unit(id = "my-separate-effect", order = "1", author = "t")]
    mod insert {
        use super::*;

        #[execution]
        async fn execute(tx: &mut Transaction<'_, MySql>) -> Result<(), sqlx::Error> {
            sqlx::query("INSERT INTO rl_effects (unit) VALUES ('my-separate-effect')")
                .execute(&mut **tx)
                .await?;
            Ok(())
        }
    }
}

/// A non-transactional unit (any backend): appends to the effects file; its rollback says so.
mod non_tx {
    use flamingock::prelude::*;

    use super::{EffectsFile, append_line};

    #[change_unit(id = "publish-once", order = "1", author = "t", transactional = false)]
    mod publish {
        use super::*;

        #[execution]
        fn execute(file: &EffectsFile) -> std::io::Result<()> {
            append_line(file, "publish")
        }

        #[rollback_execution]
        fn rollback(file: &EffectsFile) -> std::io::Result<()> {
            append_line(file, "undo publish")
        }
    }
}

/// A non-transactional unit without rollback that fails: FAILED, then blocked for a person.
mod non_tx_failing {
    use flamingock::prelude::*;

    #[change_unit(id = "publish-fails", order = "1", author = "t", transactional = false)]
    mod publish {
        #[execution]
        fn execute() -> std::io::Result<()> {
            Err(std::io::Error::other("the broker refused the message"))
        }
    }
}

/// Whether the database is on PostgreSQL (else MariaDB), from its URL.
fn is_postgres(db: &ServerDb) -> bool {
    db.url.starts_with("postgres")
}

/// A fresh database with the `rl_effects` table, and a proxy in front of its server.
async fn setup(server: Server, hint: &str) -> Option<(ServerDb, ReplyLossProxy)> {
    let db = ServerDb::create(server, hint).await?;
    let create = "CREATE TABLE rl_effects (unit VARCHAR(100) NOT NULL)";
    if is_postgres(&db) {
        let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
        sqlx::query(create).execute(&pool).await.unwrap();
        pool.close().await;
    } else {
        let pool = sqlx::MySqlPool::connect(&db.url).await.unwrap();
        sqlx::query(create).execute(&pool).await.unwrap();
        pool.close().await;
    }
    let proxy = ReplyLossProxy::in_front_of(&db.url).await;
    Some((db, proxy))
}

/// Rows of `rl_effects` (what the transactional units did).
async fn effects(db: &ServerDb) -> i64 {
    let count = "SELECT COUNT(*) FROM rl_effects";
    if is_postgres(db) {
        let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
        let n = sqlx::query_scalar(count).fetch_one(&pool).await.unwrap();
        pool.close().await;
        n
    } else {
        let pool = sqlx::MySqlPool::connect(&db.url).await.unwrap();
        let n = sqlx::query_scalar(count).fetch_one(&pool).await.unwrap();
        pool.close().await;
        n
    }
}

/// The lines of the effects file (none when it was never written).
fn effect_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .map(|text| text.lines().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// A run on `url` of the units under `module`. The store gives up on a connection within a
/// second; the lease outlives a few seconds of refused reconnects (so losing the lease is not
/// what ends the run), and the next run waits it out when the lock could not be released.
async fn builder(url: &str, module: &str) -> FlamingockBuilder {
    let options = flamingock::sqlx_store::StoreOptions::default()
        .with_connect_attempts(1)
        .with_connect_timeout(Duration::from_secs(1));
    let store = flamingock::sqlx_store::connect(url, options)
        .await
        .expect("connect");
    Flamingock::builder()
        .audit_store(store)
        .module(module)
        .lock_lease(Duration::from_secs(15))
        .lock_wait(Duration::from_secs(60))
}

async fn audit(url: &str) -> Vec<AuditEntry> {
    let engine = Flamingock::builder()
        .database_url(url)
        .build()
        .await
        .expect("connect");
    engine.store().entries().await.expect("entries")
}

fn states(rows: &[AuditEntry]) -> Vec<AuditState> {
    rows.iter().map(|e| e.state).collect()
}

fn print_executions(proxy: &ReplyLossProxy) {
    for execution in proxy.executions() {
        println!("{execution}");
    }
}

/// The proxy lost the reply to a simple `COMMIT` (not to a statement that merely mentions it).
fn assert_commit_reply_lost(proxy: &ReplyLossProxy) {
    let fired = proxy.fired_on().expect("the COMMIT's reply was not lost");
    assert!(
        !fired.prepared && fired.statement.trim().eq_ignore_ascii_case("COMMIT"),
        "the wrong reply was lost: {fired}"
    );
}

/// The proxy lost the reply to the audit insert of the APPLIED row.
fn assert_applied_reply_lost(proxy: &ReplyLossProxy) {
    let fired = proxy
        .fired_on()
        .expect("the APPLIED insert's reply was not lost");
    assert!(
        fired.statement.contains("INSERT INTO")
            && fired.params.contains(&Some(b"APPLIED".to_vec())),
        "the wrong reply was lost: {fired}"
    );
}

/// The first run stopped in doubt on `unit` and its report says so.
fn assert_in_doubt(result: Result<flamingock::RunReport, Error>, unit: &str) {
    let error = match result {
        Ok(report) => panic!("the run succeeded although the outcome was unknowable:\n{report}"),
        Err(error) => error,
    };
    let message = error.to_string();
    match &error {
        Error::InDoubt { change_id, .. } => assert_eq!(change_id, unit, "{message}"),
        other => panic!("expected InDoubt, got: {other}"),
    }
    let report = error.report().expect("a report");
    assert_eq!(
        report.unit(unit).map(|u| u.outcome),
        Some(UnitOutcome::InDoubt),
        "{message}"
    );
}

/// After the second, normal run: exactly `expected` audit states for the unit (so one APPLIED,
/// nothing lost, no FAILED over a commit) and the first run's rows still there.
async fn assert_audit(db: &ServerDb, first: &[AuditEntry], expected: &[AuditState]) {
    let rows = audit(&db.url).await;
    assert_eq!(states(&rows), expected, "{rows:#?}");
    for row in first {
        assert!(
            rows.iter().any(|r| r.id == row.id && r.state == row.state),
            "the first run's {row:?} is gone"
        );
    }
}

/// The second, normal run (direct URL): `unit` comes out `outcome`, and the audit holds exactly
/// `expected`, the first run's rows among them.
async fn assert_second_run(
    db: &ServerDb,
    builder: FlamingockBuilder,
    unit: &str,
    outcome: UnitOutcome,
    first: &[AuditEntry],
    expected: &[AuditState],
) {
    let report = flamingock::run!(builder)
        .await
        .unwrap_or_else(|e| panic!("the second, normal run failed: {e}"));
    assert_eq!(
        report.unit(unit).map(|u| u.outcome),
        Some(outcome),
        "{report}"
    );
    assert_audit(db, first, expected).await;
}

/// Case 1: the COMMIT holding a TX_SHARED unit's APPLIED row loses its reply; reconnects are
/// accepted, so the engine reads the APPLIED row on a fresh connection and reports it applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_shared_lost_commit_reply_is_found_applied_and_not_applied_again() {
    let Some((db, proxy)) = setup(Server::Postgres, "rle_pg_shared").await else {
        return;
    };
    let module = "reply_loss_engine::pg_shared";
    proxy.arm(
        Trigger::statement_contains("COMMIT").after(
            Trigger::statement_contains("flamingock_audit_log")
                .and_contains("INSERT")
                .and_param("APPLIED"),
        ),
    );
    let first = flamingock::run!(builder(&proxy.url_for(&db.url), module).await).await;
    print_executions(&proxy);
    assert_commit_reply_lost(&proxy);
    let report = first.unwrap_or_else(|e| panic!("the engine could find the outcome out: {e}"));
    assert_eq!(report.applied(), ["pg-shared-effect"]);
    assert_eq!(
        report.unit("pg-shared-effect").map(|u| u.tx_strategy),
        Some(flamingock::TxStrategy::Shared)
    );
    assert_eq!(effects(&db).await, 1);
    let first_rows = audit(&db.url).await;
    assert_eq!(states(&first_rows), [AuditState::Applied]);

    let again = builder(&db.url, module).await;
    assert_second_run(
        &db,
        again,
        "pg-shared-effect",
        UnitOutcome::AlreadyApplied,
        &first_rows,
        &[AuditState::Applied],
    )
    .await;
    assert_eq!(effects(&db).await, 1, "the effect is there once");
    drop(proxy);
    db.drop_database().await;
}

/// Case 1b: the connection breaks while the server is still committing (a deferred trigger makes
/// the COMMIT take a second and a half; the proxy cuts the client the moment it forwards it). A
/// fresh read of the audit right then finds no APPLIED row although the commit is about to land:
/// the engine must not take that for "not committed" and write FAILED (the next run would apply
/// the unit again). It asks PostgreSQL what became of the transaction, waits while it is in
/// progress, and reports the unit applied; the next run applies nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_shared_commit_still_landing_is_not_taken_for_a_failure() {
    let Some((db, proxy)) = setup(Server::Postgres, "rle_pg_slow").await else {
        return;
    };
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    for statement in [
        "CREATE FUNCTION rl_slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(1.5); RETURN NULL; END $$",
        "CREATE CONSTRAINT TRIGGER rl_slow AFTER INSERT ON rl_effects DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION rl_slow_commit()",
    ] {
        sqlx::query(statement).execute(&pool).await.unwrap();
    }
    pool.close().await;
    // The process's first history query creates the history indexes, which waits for the
    // committing transaction and so would hide the window: have it done first.
    let warm = flamingock::sqlx_store::connect(
        &proxy.url_for(&db.url),
        flamingock::sqlx_store::StoreOptions::default(),
    )
    .await
    .expect("connect");
    warm.initialize().await.expect("initialize");
    warm.history(&flamingock::HistoryQuery::new())
        .await
        .expect("history");
    let module = "reply_loss_engine::pg_shared";
    proxy
        .arm(
            Trigger::statement_contains("COMMIT").after(
                Trigger::statement_contains("flamingock_audit_log")
                    .and_contains("INSERT")
                    .and_param("APPLIED"),
            ),
        )
        .cut_client_at_once();
    let first = flamingock::run!(builder(&proxy.url_for(&db.url), module).await).await;
    print_executions(&proxy);
    let report = first.unwrap_or_else(|e| panic!("the database tells the outcome: {e}"));
    // The proxy notes the lost reply once the server has finished the COMMIT.
    for _ in 0..50 {
        if proxy.fired() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_commit_reply_lost(&proxy);
    assert_eq!(report.applied(), ["pg-shared-effect"]);
    assert_eq!(effects(&db).await, 1);
    let first_rows = audit(&db.url).await;
    assert_eq!(
        states(&first_rows),
        [AuditState::Applied],
        "no FAILED over the commit"
    );

    let again = builder(&db.url, module).await;
    assert_second_run(
        &db,
        again,
        "pg-shared-effect",
        UnitOutcome::AlreadyApplied,
        &first_rows,
        &[AuditState::Applied],
    )
    .await;
    assert_eq!(effects(&db).await, 1, "the effect is there once");
    drop(proxy);
    db.drop_database().await;
}

/// Case 2: the same lost COMMIT reply, and no connection can reach the server until after the
/// run: it stops in doubt, writes nothing more; the commit happened, so the next run applies
/// nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_shared_lost_commit_reply_unreadable_audit_stops_in_doubt() {
    let Some((db, proxy)) = setup(Server::Postgres, "rle_pg_doubt").await else {
        return;
    };
    let module = "reply_loss_engine::pg_shared";
    proxy
        .arm(
            Trigger::statement_contains("COMMIT").after(
                Trigger::statement_contains("flamingock_audit_log")
                    .and_contains("INSERT")
                    .and_param("APPLIED"),
            ),
        )
        .refuse_reconnects_until_released()
        .cut_other_connections();
    let first = flamingock::run!(builder(&proxy.url_for(&db.url), module).await).await;
    proxy.accept_reconnects();
    print_executions(&proxy);
    assert_commit_reply_lost(&proxy);
    assert_in_doubt(first, "pg-shared-effect");
    assert_eq!(effects(&db).await, 1, "the commit happened");
    let first_rows = audit(&db.url).await;
    assert_eq!(
        states(&first_rows),
        [AuditState::Applied],
        "the commit happened (TX_SHARED writes no STARTED); nothing written after it"
    );

    let again = builder(&db.url, module).await;
    assert_second_run(
        &db,
        again,
        "pg-shared-effect",
        UnitOutcome::AlreadyApplied,
        &first_rows,
        &[AuditState::Applied],
    )
    .await;
    assert_eq!(effects(&db).await, 1, "the effect is there once");
    drop(proxy);
    db.drop_database().await;
}

/// Case 3: a NON_TX unit's APPLIED insert loses its reply and reconnects are refused until after
/// the run: in doubt, its rollback not called, its effect kept; the next run applies nothing.
async fn non_tx_lost_applied_reply_stops_in_doubt(server: Server, hint: &str) {
    let Some((db, proxy)) = setup(server, hint).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("published");
    let module = "reply_loss_engine::non_tx";
    proxy
        .arm(
            Trigger::statement_contains("flamingock_audit_log")
                .and_contains("INSERT")
                .and_param("APPLIED"),
        )
        .refuse_reconnects_until_released()
        .cut_other_connections();
    let first = builder(&proxy.url_for(&db.url), module)
        .await
        .dependency(EffectsFile(file.clone()));
    let first = flamingock::run!(first).await;
    proxy.accept_reconnects();
    print_executions(&proxy);
    assert_applied_reply_lost(&proxy);
    assert_in_doubt(first, "publish-once");
    assert_eq!(
        effect_lines(&file),
        ["publish"],
        "the effect is kept and the rollback was not called"
    );
    let first_rows = audit(&db.url).await;
    assert_eq!(
        states(&first_rows),
        [AuditState::Started, AuditState::Applied],
        "the APPLIED insert happened; nothing written after it"
    );

    let again = builder(&db.url, module)
        .await
        .dependency(EffectsFile(file.clone()));
    let expected = [AuditState::Started, AuditState::Applied];
    assert_second_run(
        &db,
        again,
        "publish-once",
        UnitOutcome::AlreadyApplied,
        &first_rows,
        &expected,
    )
    .await;
    assert_eq!(effect_lines(&file), ["publish"], "the effect is there once");
    drop(proxy);
    db.drop_database().await;
}

/// Case 3, and a lost fix reply, on each server (stamped by `flamingock_testkit::for_each_backend!`, servers only).
macro_rules! non_tx_suite {
    ($name:ident, $db:ty, $backend:expr) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn non_tx_lost_applied_reply_stops_in_doubt_without_rollback() {
                super::non_tx_lost_applied_reply_stops_in_doubt($backend, "rle_nontx").await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn fix_lost_reply_is_unknown_and_not_repeated() {
                super::fix_lost_reply_is_unknown_and_not_repeated($backend, "rle_fix").await;
            }
        }
    };
}

flamingock_testkit::for_each_backend!(non_tx_suite, servers);

/// The COMMIT of a TX_SEPARATE unit's target transaction. On its connection the open marker's
/// upsert comes first (it primes the trigger), then the unit's insert, then the upsert marking
/// it committed (its text says `committed`, so it is the first match) and then COMMIT, the
/// second.
fn separate_commit() -> Trigger {
    Trigger::statement_contains("COMMIT")
        .after(Trigger::statement_contains("flamingock_marker").and_contains("INSERT"))
        .nth(2)
}

/// Case 4: on MariaDB's audit database a transactional unit runs TX_SEPARATE; its target
/// commit loses its reply, reconnects are accepted: the marker tells it committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_separate_lost_commit_reply_is_found_by_the_marker() {
    let Some((db, proxy)) = setup(Server::MySql, "rle_my_sep").await else {
        return;
    };
    let module = "reply_loss_engine::my_separate";
    proxy.arm(separate_commit());
    let first = flamingock::run!(builder(&proxy.url_for(&db.url), module).await).await;
    print_executions(&proxy);
    assert_commit_reply_lost(&proxy);
    let report = first.unwrap_or_else(|e| panic!("the marker tells the outcome: {e}"));
    let line = report.unit("my-separate-effect").expect("in the report");
    assert_eq!(line.tx_strategy, flamingock::TxStrategy::Separate);
    assert_eq!(line.outcome, UnitOutcome::Applied);
    assert_eq!(effects(&db).await, 1);
    let first_rows = audit(&db.url).await;
    assert_eq!(
        states(&first_rows),
        [AuditState::Started, AuditState::Applied]
    );

    let again = builder(&db.url, module).await;
    assert_second_run(
        &db,
        again,
        "my-separate-effect",
        UnitOutcome::AlreadyApplied,
        &first_rows,
        &[AuditState::Started, AuditState::Applied],
    )
    .await;
    assert_eq!(effects(&db).await, 1, "the effect is there once");
    drop(proxy);
    db.drop_database().await;
}

/// Case 4, refused: the marker cannot be read either, so the run stops in doubt; the next run
/// finds the committed marker and records APPLIED without running the unit again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_separate_lost_commit_reply_unreadable_marker_stops_in_doubt() {
    let Some((db, proxy)) = setup(Server::MySql, "rle_my_sepdoubt").await else {
        return;
    };
    let module = "reply_loss_engine::my_separate";
    proxy
        .arm(separate_commit())
        .refuse_reconnects_until_released()
        .cut_other_connections();
    let first = flamingock::run!(builder(&proxy.url_for(&db.url), module).await).await;
    proxy.accept_reconnects();
    print_executions(&proxy);
    assert_commit_reply_lost(&proxy);
    assert_in_doubt(first, "my-separate-effect");
    assert_eq!(effects(&db).await, 1, "the target commit happened");
    let first_rows = audit(&db.url).await;
    assert_eq!(
        states(&first_rows),
        [AuditState::Started],
        "nothing written after the unknown commit"
    );

    let again = builder(&db.url, module).await;
    assert_second_run(
        &db,
        again,
        "my-separate-effect",
        UnitOutcome::RecoveredApplied,
        &first_rows,
        &[AuditState::Started, AuditState::Applied],
    )
    .await;
    assert_eq!(effects(&db).await, 1, "the effect is there once");
    drop(proxy);
    db.drop_database().await;
}

/// `fix --applied` of a blocked unit whose resolution row reaches the server and loses its
/// reply, reconnects refused until after the fix: the fix says its outcome is unknown (it did
/// land); repeating it with the state the person saw is refused and writes nothing; the next
/// run skips the unit. Exactly one resolution is in the audit.
async fn fix_lost_reply_is_unknown_and_not_repeated(server: Server, hint: &str) {
    let Some((db, proxy)) = setup(server, hint).await else {
        return;
    };
    let module = "reply_loss_engine::non_tx_failing";
    let failed = flamingock::run!(builder(&db.url, module).await).await;
    assert!(
        matches!(failed, Err(Error::UnitFailed { .. })),
        "{failed:?}"
    );
    let request = flamingock::FixRequest {
        change_id: "publish-fails".to_owned(),
        resolution: flamingock::Resolution::Applied,
        operator: "ana".to_owned(),
        reason: "the message was sent by hand".to_owned(),
        expected: Some(flamingock::SeenState::State(AuditState::Failed)),
    };
    proxy
        .arm(
            Trigger::statement_contains("flamingock_audit_log")
                .and_contains("INSERT")
                .and_param("MANUAL_MARKED_AS_APPLIED"),
        )
        .refuse_reconnects_until_released()
        .cut_other_connections();
    let engine = builder(&proxy.url_for(&db.url), module)
        .await
        .build()
        .await
        .expect("the engine");
    let fixed = engine
        .fix(flamingock::ChangeUnit::registered(), &request)
        .await;
    proxy.accept_reconnects();
    print_executions(&proxy);
    assert!(proxy.fired(), "the resolution's reply was not lost");
    match fixed {
        Err(flamingock::FixError::OutcomeUnknown { change_id, .. }) => {
            assert_eq!(change_id, "publish-fails")
        }
        other => panic!("expected the fix's outcome to be unknown, got {other:?}"),
    }
    let rows = audit(&db.url).await;
    assert_eq!(
        states(&rows),
        [
            AuditState::Started,
            AuditState::Failed,
            AuditState::ManualMarkedAsApplied
        ],
        "the resolution landed once"
    );

    let engine = builder(&db.url, module)
        .await
        .build()
        .await
        .expect("engine");
    let again = engine
        .fix(flamingock::ChangeUnit::registered(), &request)
        .await;
    assert!(
        matches!(again, Err(flamingock::FixError::StateChanged { .. })),
        "{again:?}"
    );
    let again = builder(&db.url, module).await;
    let expected = [
        AuditState::Started,
        AuditState::Failed,
        AuditState::ManualMarkedAsApplied,
    ];
    assert_second_run(
        &db,
        again,
        "publish-fails",
        UnitOutcome::AlreadyApplied,
        &rows,
        &expected,
    )
    .await;
    drop(proxy);
    db.drop_database().await;
}
