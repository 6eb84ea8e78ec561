//! A target in another database: the audit store is a local SQLite file, the change units apply
//! to PostgreSQL (`TX_SEPARATE`). Each unit's change commits in PostgreSQL together with a marker
//! row; `APPLIED` then goes to the SQLite audit and the marker is removed. Had the process died
//! between the two commits, the next run would find the marker and record the unit as applied
//! without running it again.
//!
//! ```text
//! cargo run --example separate-target --features postgres     # applies both
//! cargo run --example separate-target --features postgres     # applies none: "nothing to apply"
//! ```
//!
//! The audit store comes from `FLAMINGOCK_DATABASE_URL`, default `sqlite://separate-target.db` in
//! the working directory; the target from `SEPARATE_TARGET_POSTGRES_URL`, default the local test
//! server `postgres://postgres@127.0.0.1:5432/test`, where the units create `warehouse_stock`.
//! To start over, remove the file and drop that table.

use flamingock::SqlTarget;
use flamingock::prelude::*;
use sqlx::{PgPool, Postgres, Transaction};

/// The audit store unless `FLAMINGOCK_DATABASE_URL` says otherwise.
const DEFAULT_AUDIT_URL: &str = "sqlite://separate-target.db";
/// The environment variable naming the target database.
const TARGET_URL_ENV: &str = "SEPARATE_TARGET_POSTGRES_URL";
/// The local test server, unless `SEPARATE_TARGET_POSTGRES_URL` says otherwise.
const DEFAULT_TARGET_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Schema in the warehouse database.
#[derive(Default)]
pub struct CreateStock;

#[change_unit(
    id = "create-warehouse-stock",
    order = "1",
    author = "ana",
    target_system = "warehouse"
)]
impl CreateStock {
    #[execution]
    async fn execute(&self, tx: &mut Transaction<'_, Postgres>) -> Result<(), sqlx::Error> {
        sqlx::query(
            "CREATE TABLE warehouse_stock (sku TEXT PRIMARY KEY, quantity INTEGER NOT NULL)",
        )
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    #[rollback_execution]
    async fn rollback(&self, tx: &mut Transaction<'_, Postgres>) -> Result<(), sqlx::Error> {
        sqlx::query("DROP TABLE warehouse_stock")
            .execute(&mut **tx)
            .await?;
        Ok(())
    }
}

/// Initial stock; reads its own context and the target's pool.
#[change_unit(
    id = "count-initial-stock",
    order = "2",
    author = "bo",
    target_system = "warehouse"
)]
mod count_initial_stock {
    use super::*;

    #[execution]
    pub async fn execute(
        tx: &mut Transaction<'_, Postgres>,
        pool: &PgPool,
        ctx: &ChangeContext,
    ) -> sqlx::Result<()> {
        for (sku, quantity) in [("FL-001", 40_i32), ("FL-002", 12), ("FL-003", 300)] {
            sqlx::query("INSERT INTO warehouse_stock (sku, quantity) VALUES ($1, $2)")
                .bind(sku)
                .bind(quantity)
                .execute(&mut **tx)
                .await?;
        }
        // The pool sees only what is committed: the markers earlier units left (none, since
        // each is removed once its APPLIED row is in the audit), not this unit's own.
        let markers: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM flamingock_marker")
            .fetch_one(pool)
            .await?;
        println!(
            "  [{}] on target \"{}\" (attempt {}): {markers} marker(s) left by earlier units",
            ctx.change_id, ctx.target_system, ctx.attempt
        );
        Ok(())
    }
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|value| !value.trim().is_empty())
        .unwrap_or_else(|| default.to_owned())
}

#[tokio::main]
pub async fn main() -> Result<(), flamingock::Error> {
    let audit_url = env_or(flamingock::DATABASE_URL_ENV, DEFAULT_AUDIT_URL);
    let target_url = env_or(TARGET_URL_ENV, DEFAULT_TARGET_URL);
    let warehouse = SqlTarget::<Postgres>::connect("warehouse", &target_url).await?;
    let builder = Flamingock::builder()
        .database_url(&audit_url)
        .target(warehouse);
    let report = flamingock::run!(builder).await?;
    println!("{report}");
    Ok(())
}
