//! A program with the embedded Flamingock command line: its `main` is
//! `flamingock::cli::main_with(builder)`, so `status`, `plan`, `apply`, `undo`, `fix`, `history`,
//! `lock` and `validate` all know the four units below.
//!
//! ```text
//! cargo run --example cli --features cli -- plan            # what a run would do; writes nothing
//! cargo run --example cli --features cli -- apply           # applies the four units
//! cargo run --example cli --features cli -- undo --last 2   # rolls back the export and the email column
//! cargo run --example cli --features cli -- status          # two applied, two pending (rolled back)
//! cargo run --example cli --features cli -- history --format html > report.html
//! ```
//!
//! The audit store and the data live in `flamingock-cli-example.db` in the working directory
//! (`--database-url` or `FLAMINGOCK_DATABASE_URL` chooses another); the non-transactional unit
//! writes `target/cli-example/clients.csv`.

use std::path::PathBuf;
use std::process::ExitCode;

use flamingock::prelude::*;
use sqlx::{Sqlite, SqlitePool, Transaction};

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

#[derive(Default)]
pub struct SeedClients;

#[change_unit(id = "seed-clients", order = "0002", author = "ana")]
impl SeedClients {
    #[execution]
    async fn execute(&self, tx: &mut Transaction<'_, Sqlite>) -> Result<(), sqlx::Error> {
        sqlx::query("INSERT INTO clients (name) VALUES ('Ada Lovelace'), ('Grace Hopper')")
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    #[rollback_execution]
    async fn rollback(&self, tx: &mut Transaction<'_, Sqlite>) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM clients")
            .execute(&mut **tx)
            .await?;
        Ok(())
    }
}

#[derive(Default)]
pub struct AddClientEmail;

#[change_unit(id = "add-client-email", order = "0003", author = "bo")]
impl AddClientEmail {
    #[execution]
    async fn execute(&self, tx: &mut Transaction<'_, Sqlite>) -> Result<(), sqlx::Error> {
        sqlx::query("ALTER TABLE clients ADD COLUMN email TEXT")
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    #[rollback_execution]
    async fn rollback(&self, tx: &mut Transaction<'_, Sqlite>) -> Result<(), sqlx::Error> {
        sqlx::query("ALTER TABLE clients DROP COLUMN email")
            .execute(&mut **tx)
            .await?;
        Ok(())
    }
}

/// Where the export unit writes.
pub struct ExportDir(pub PathBuf);

/// Outside the database, so not transactional: undone by its rollback method.
#[derive(Default)]
pub struct ExportClients;

#[change_unit(
    id = "export-clients",
    order = "0004",
    author = "cy",
    transactional = false
)]
impl ExportClients {
    #[execution]
    async fn execute(&self, pool: &SqlitePool, dir: &ExportDir) -> Result<(), std::io::Error> {
        let names: Vec<String> = sqlx::query_scalar("SELECT name FROM clients ORDER BY id")
            .fetch_all(pool)
            .await
            .map_err(std::io::Error::other)?;
        std::fs::create_dir_all(&dir.0)?;
        std::fs::write(dir.0.join("clients.csv"), names.join("\n") + "\n")
    }

    #[rollback_execution]
    fn rollback(&self, dir: &ExportDir) -> Result<(), std::io::Error> {
        match std::fs::remove_file(dir.0.join("clients.csv")) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

fn main() -> ExitCode {
    let mut builder = Flamingock::builder()
        .app(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"))
        .dependency(ExportDir(PathBuf::from("target/cli-example")));
    if std::env::var_os(flamingock::DATABASE_URL_ENV).is_none() {
        // Not the quick start's flamingock.db: that one has a `clients` table of its own.
        builder = builder.database_url("sqlite://flamingock-cli-example.db");
    }
    flamingock::cli::main_with(builder)
}
