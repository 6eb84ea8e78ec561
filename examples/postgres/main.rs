//! PostgreSQL as both audit store and target: every unit commits in one transaction with its
//! audit row (`TX_SHARED`), including the one on the named target "reporting", which is the same
//! database.
//!
//! ```text
//! cargo run --example postgres --features postgres     # applies all three
//! cargo run --example postgres --features postgres     # applies none: "nothing to apply"
//! ```
//!
//! The database comes from `FLAMINGOCK_DATABASE_URL`, default the local test server
//! `postgres://postgres@127.0.0.1:5432/test`. The units create `catalog_products` and the view
//! `catalog_price_list` there; drop both (and the unit rows of `flamingock_audit_log`) to start
//! over.

use flamingock::prelude::*;
use flamingock::{SqlTarget, TxStrategy};
use sqlx::{PgPool, Postgres, Transaction};

/// The local test server, unless `FLAMINGOCK_DATABASE_URL` says otherwise.
const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Schema, on the audit store's database (no `target_system`).
#[derive(Default)]
pub struct CreateProducts;

#[change_unit(id = "pg-create-products", order = "1", author = "ana")]
impl CreateProducts {
    #[execution]
    async fn execute(&self, tx: &mut Transaction<'_, Postgres>) -> Result<(), sqlx::Error> {
        sqlx::query(
            "CREATE TABLE catalog_products (
                 id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                 sku TEXT NOT NULL UNIQUE,
                 name TEXT NOT NULL,
                 price_cents BIGINT NOT NULL CHECK (price_cents >= 0)
             )",
        )
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    #[rollback_execution]
    async fn rollback(&self, tx: &mut Transaction<'_, Postgres>) -> Result<(), sqlx::Error> {
        sqlx::query("DROP TABLE catalog_products")
            .execute(&mut **tx)
            .await?;
        Ok(())
    }
}

/// Seed data with bound values; the pool is there too (`&PgPool`), for reading.
#[change_unit(id = "pg-seed-products", order = "2", author = "ana")]
mod seed_products {
    use super::*;

    #[execution]
    pub async fn execute(tx: &mut Transaction<'_, Postgres>, pool: &PgPool) -> sqlx::Result<()> {
        for (sku, name, price_cents) in [
            ("FL-001", "Feeding kit", 1_250_i64),
            ("FL-002", "Wading boots", 8_900),
            ("FL-003", "Pink paint", 499),
        ] {
            sqlx::query(
                "INSERT INTO catalog_products (sku, name, price_cents) VALUES ($1, $2, $3)",
            )
            .bind(sku)
            .bind(name)
            .bind(price_cents)
            .execute(&mut **tx)
            .await?;
        }
        // The pool sees only committed data: the new rows appear once this unit commits.
        let visible: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM catalog_products")
            .fetch_one(pool)
            .await?;
        println!("  [pg-seed-products] rows visible outside the transaction so far: {visible}");
        Ok(())
    }
}

/// On the named target "reporting": the same database, so still one transaction (`TX_SHARED`).
#[change_unit(
    id = "pg-price-list",
    order = "3",
    author = "bo",
    target_system = "reporting"
)]
mod price_list {
    use super::*;

    #[execution]
    pub async fn execute(tx: &mut Transaction<'_, Postgres>) -> sqlx::Result<()> {
        sqlx::query(
            "CREATE VIEW catalog_price_list AS
             SELECT sku, name, price_cents / 100.0 AS price FROM catalog_products ORDER BY sku",
        )
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}

#[tokio::main]
pub async fn main() -> Result<(), flamingock::Error> {
    let url = std::env::var(flamingock::DATABASE_URL_ENV)
        .ok()
        .filter(|url| !url.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_URL.to_owned());
    let reporting = SqlTarget::<Postgres>::connect("reporting", &url).await?;
    let builder = Flamingock::builder().database_url(&url).target(reporting);
    let report = flamingock::run!(builder).await?;
    println!("{report}");
    let shared = report
        .units
        .iter()
        .filter(|unit| unit.tx_strategy == TxStrategy::Shared)
        .count();
    println!(
        "{shared} of {} units share their transaction with the audit",
        report.units.len()
    );
    Ok(())
}
