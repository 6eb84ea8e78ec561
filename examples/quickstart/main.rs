//! The quick start: five change units on the embedded SQLite default.
//!
//! ```text
//! cargo run --example quickstart     # applies all five
//! cargo run --example quickstart     # applies none: "nothing to apply"
//! ```
//!
//! The audit store and the data live in `flamingock.db` in the working directory (set
//! `FLAMINGOCK_DATABASE_URL` to use another file or server). The non-transactional unit writes
//! `clients.csv` into `target/quickstart-export/`, outside the database.

use std::path::PathBuf;

use flamingock::prelude::*;
use sqlx::{Sqlite, SqlitePool, Transaction};

/// Schema: a table, in the same transaction as its audit entry (TX_SHARED).
#[derive(Default)]
pub struct CreateClients;

#[change_unit(id = "create-clients", order = "0001", author = "ana")]
impl CreateClients {
    #[execution]
    async fn execute(&self, tx: &mut Transaction<'_, Sqlite>) -> Result<(), sqlx::Error> {
        sqlx::query("CREATE TABLE clients (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    #[rollback_execution]
    async fn rollback(&self, tx: &mut Transaction<'_, Sqlite>) -> Result<(), sqlx::Error> {
        sqlx::query("DROP TABLE clients").execute(&mut **tx).await?;
        Ok(())
    }
}

/// Seed data, as a module of free functions.
#[change_unit(
    id = "seed-clients",
    order = "0002",
    author = "ana",
    description = "first customers"
)]
mod seed_clients {
    use super::*;

    #[execution]
    pub async fn execute(tx: &mut Transaction<'_, Sqlite>) -> Result<(), sqlx::Error> {
        for name in ["  Ada Lovelace", "Grace Hopper ", "Alan Turing"] {
            sqlx::query("INSERT INTO clients (name) VALUES (?)")
                .bind(name)
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }
}

/// A new column, filled from the data already there.
#[derive(Default)]
pub struct AddClientEmail;

#[change_unit(id = "add-client-email", order = "0003", author = "bo")]
impl AddClientEmail {
    #[execution]
    async fn execute(&self, tx: &mut Transaction<'_, Sqlite>) -> Result<(), sqlx::Error> {
        sqlx::query("ALTER TABLE clients ADD COLUMN email TEXT")
            .execute(&mut **tx)
            .await?;
        sqlx::query(
            "UPDATE clients SET email = lower(replace(trim(name), ' ', '.')) || '@example.com'",
        )
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}

/// A data fix that also reads its own context: the seed left stray spaces in names.
#[change_unit(id = "trim-client-names", order = "0004", author = "bo")]
mod trim_client_names {
    use super::*;

    #[execution]
    pub async fn execute(
        tx: &mut Transaction<'_, Sqlite>,
        ctx: &ChangeContext,
    ) -> Result<(), sqlx::Error> {
        let fixed = sqlx::query("UPDATE clients SET name = trim(name) WHERE name <> trim(name)")
            .execute(&mut **tx)
            .await?
            .rows_affected();
        println!(
            "  [{}] trimmed {fixed} names (attempt {})",
            ctx.change_id, ctx.attempt
        );
        Ok(())
    }
}

/// Where the export unit writes: a dependency, injected by type.
pub struct ExportDir(pub PathBuf);

/// Outside the database: a file other systems read. Not transactional, so a failure is undone by
/// the rollback method.
#[derive(Default)]
pub struct ExportClients;

#[change_unit(
    id = "export-clients",
    order = "0005",
    author = "cy",
    transactional = false
)]
impl ExportClients {
    #[execution]
    async fn execute(&self, pool: &SqlitePool, dir: &ExportDir) -> Result<(), std::io::Error> {
        let rows: Vec<(String, Option<String>)> =
            sqlx::query_as("SELECT name, email FROM clients ORDER BY id")
                .fetch_all(pool)
                .await
                .map_err(std::io::Error::other)?;
        let mut csv = String::from("name,email\n");
        for (name, email) in rows {
            csv.push_str(&format!("{name},{}\n", email.unwrap_or_default()));
        }
        std::fs::create_dir_all(&dir.0)?;
        std::fs::write(dir.0.join("clients.csv"), csv)
    }

    #[rollback_execution]
    fn rollback(&self, dir: &ExportDir) -> Result<(), std::io::Error> {
        match std::fs::remove_file(dir.0.join("clients.csv")) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

#[tokio::main]
pub async fn main() -> Result<(), flamingock::Error> {
    let export_dir = PathBuf::from("target/quickstart-export");
    let builder = Flamingock::builder().dependency(ExportDir(export_dir.clone()));
    let report = flamingock::run!(builder).await?;
    println!("{report}");
    println!("export file: {}", export_dir.join("clients.csv").display());
    Ok(())
}
