//! SQL files as change units: a folder of sqlx migrations (`sql-units/migrations`) embedded with
//! `flamingock::sql_units!`, and one code unit whose order puts it between two of the files.
//!
//! `cargo run --example sql-units` twice: the first run applies three units, the second none.
//! `cargo run --example sql-units --features cli -- plan --sql` shows what a run would execute.

use flamingock::prelude::*;

// One unit per file, ordered by version; `${default_country}` comes from the builder below.
flamingock::sql_units!("sql-units/migrations");

/// Runs after `20240101000000_create_clients` and before `20240102000000_index_client_names`.
#[derive(Default)]
pub struct SeedClients;

#[change_unit(id = "seed-clients", order = "20240101120000", author = "cy")]
impl SeedClients {
    #[execution]
    async fn execute(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    ) -> Result<(), sqlx::Error> {
        sqlx::query("INSERT INTO clients (name) VALUES ('Ada'), ('Grace')")
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    #[rollback_execution]
    async fn rollback(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    ) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM clients")
            .execute(&mut **tx)
            .await?;
        Ok(())
    }
}

fn builder() -> flamingock::FlamingockBuilder {
    let url = std::env::var(flamingock::DATABASE_URL_ENV)
        .unwrap_or_else(|_| "sqlite://flamingock-sql-units.db".to_owned());
    Flamingock::builder()
        .database_url(url)
        .module(module_path!())
        .placeholder("default_country", "PT")
        .app(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"))
}

#[cfg(feature = "cli")]
fn main() -> std::process::ExitCode {
    if std::env::args().len() > 1 {
        return flamingock::cli::main_with(builder());
    }
    match flamingock::run_blocking!(builder()) {
        Ok(report) => {
            println!("{report}");
            std::process::ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("{error}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(not(feature = "cli"))]
#[tokio::main]
async fn main() -> Result<(), flamingock::Error> {
    let report = flamingock::run!(builder()).await?;
    println!("{report}");
    Ok(())
}
