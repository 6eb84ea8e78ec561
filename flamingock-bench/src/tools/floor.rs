//! The floor, in plain sqlx: what any correct migrator must at least do. Open one connection,
//! make sure the bookkeeping table exists, read which changes are recorded (one round trip), then
//! apply each pending change in its own transaction together with one bookkeeping insert.
//!
//! One connection, not a pool: with a pool, consecutive transactions may land on different
//! connections, and after DDL each one has to reload the schema (SQLite) or rebuild its catalog
//! caches (PostgreSQL); the floor is the cost without that.
//!
//! On MariaDB the same statements run, but DDL commits implicitly: `CREATE TABLE` ends the
//! transaction `BEGIN` opened, and the bookkeeping `INSERT` then commits on its own (autocommit),
//! so the floor there is two commits per change, as it is for any tool on MariaDB.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use sqlx::{
    AssertSqlSafe, Connection, Database, Decode, Encode, Executor, IntoArguments, MySql,
    MySqlConnection, PgConnection, Postgres, Sqlite, SqliteConnection, Type,
};

use super::{Job, expect_count, mariadb_options, postgres_options, sqlite_options};
use crate::error::BenchError;
use crate::workload::{Database as Db, Mode, Tool, change_id, statement};

/// The floor's bookkeeping SQL for one database.
struct FloorSql {
    create: &'static str,
    select: &'static str,
    insert: &'static str,
}

const SQLITE_SQL: FloorSql = FloorSql {
    create: "CREATE TABLE IF NOT EXISTS bench_floor_log \
             (id TEXT PRIMARY KEY, applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)",
    select: "SELECT id FROM bench_floor_log",
    insert: "INSERT INTO bench_floor_log (id) VALUES (?1)",
};

const POSTGRES_SQL: FloorSql = FloorSql {
    create: "CREATE TABLE IF NOT EXISTS bench_floor_log \
             (id TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
    select: "SELECT id FROM bench_floor_log",
    insert: "INSERT INTO bench_floor_log (id) VALUES ($1)",
};

const MARIADB_SQL: FloorSql = FloorSql {
    create: "CREATE TABLE IF NOT EXISTS bench_floor_log \
             (id VARCHAR(255) PRIMARY KEY, applied_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3))",
    select: "SELECT id FROM bench_floor_log",
    insert: "INSERT INTO bench_floor_log (id) VALUES (?)",
};

/// Runs the floor for `job`.
pub async fn run(job: &Job) -> Result<Duration, BenchError> {
    let (elapsed, applied, recorded) = match job.database {
        Db::Sqlite => {
            let options = sqlite_options(&job.url)?;
            let started = Instant::now();
            let mut conn = SqliteConnection::connect_with(&options)
                .await
                .map_err(BenchError::sql("connecting the floor to SQLite"))?;
            let applied = apply::<Sqlite>(&mut conn, &SQLITE_SQL, job.n).await?;
            let elapsed = started.elapsed();
            (
                elapsed,
                applied,
                recorded::<Sqlite>(&mut conn, &SQLITE_SQL).await?,
            )
        }
        Db::Postgres => {
            let options = postgres_options(&job.url)?;
            let started = Instant::now();
            let mut conn = PgConnection::connect_with(&options)
                .await
                .map_err(BenchError::sql("connecting the floor to PostgreSQL"))?;
            let applied = apply::<Postgres>(&mut conn, &POSTGRES_SQL, job.n).await?;
            let elapsed = started.elapsed();
            (
                elapsed,
                applied,
                recorded::<Postgres>(&mut conn, &POSTGRES_SQL).await?,
            )
        }
        Db::Mariadb => {
            let options = mariadb_options(&job.url)?;
            let started = Instant::now();
            let mut conn = MySqlConnection::connect_with(&options)
                .await
                .map_err(BenchError::sql("connecting the floor to MariaDB"))?;
            let applied = apply::<MySql>(&mut conn, &MARIADB_SQL, job.n).await?;
            let elapsed = started.elapsed();
            (
                elapsed,
                applied,
                recorded::<MySql>(&mut conn, &MARIADB_SQL).await?,
            )
        }
    };
    let expected_applied = match job.mode {
        Mode::Cold | Mode::Fleet => job.n,
        Mode::Warm => 0,
    };
    expect_count(Tool::Floor, "changes applied", expected_applied, applied)?;
    expect_count(Tool::Floor, "recorded changes", job.n, recorded)?;
    Ok(elapsed)
}

/// The timed part after connecting: returns how many changes were applied.
async fn apply<DB>(conn: &mut DB::Connection, sql: &FloorSql, n: usize) -> Result<usize, BenchError>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    usize: sqlx::ColumnIndex<DB::Row>,
    String: Type<DB> + for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB>,
{
    sqlx::query(sql.create)
        .execute(&mut *conn)
        .await
        .map_err(BenchError::sql("creating the floor's bookkeeping table"))?;
    let done: HashSet<String> = sqlx::query_scalar::<DB, String>(sql.select)
        .fetch_all(&mut *conn)
        .await
        .map_err(BenchError::sql("reading the floor's bookkeeping table"))?
        .into_iter()
        .collect();
    let mut applied = 0;
    for i in 1..=n {
        let id = change_id(i);
        if done.contains(&id) {
            continue;
        }
        let mut tx = sqlx::Connection::begin(&mut *conn)
            .await
            .map_err(BenchError::sql("opening a floor transaction"))?;
        sqlx::query(AssertSqlSafe(statement(i)))
            .execute(&mut *tx)
            .await
            .map_err(BenchError::sql("running a floor change"))?;
        sqlx::query(sql.insert)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(BenchError::sql("recording a floor change"))?;
        tx.commit()
            .await
            .map_err(BenchError::sql("committing a floor change"))?;
        applied += 1;
    }
    Ok(applied)
}

/// How many changes the bookkeeping table records (outside the timed part).
async fn recorded<DB>(conn: &mut DB::Connection, sql: &FloorSql) -> Result<usize, BenchError>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    usize: sqlx::ColumnIndex<DB::Row>,
    String: Type<DB> + for<'r> Decode<'r, DB>,
{
    let ids = sqlx::query_scalar::<DB, String>(sql.select)
        .fetch_all(&mut *conn)
        .await
        .map_err(BenchError::sql("counting the floor's recorded changes"))?;
    Ok(ids.len())
}
