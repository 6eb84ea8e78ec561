//! Switching from sqlx's migrator to Flamingock on a database sqlx already migrated.
//!
//! `cargo run --example from-sqlx --features from-sqlx` twice, in a fresh directory:
//! 1. the first time, the application as it was before the switch migrates
//!    `flamingock-from-sqlx.db` with sqlx's own `Migrator` (both files of `from-sqlx/migrations`);
//! 2. then Flamingock takes the same folder over (`sql_units!`) and imports sqlx's history under
//!    its lock: the two files are recorded as applied, not run again; the code unit
//!    `seed-books`, whose order falls between the two files, is new and runs.
//!
//! The second time, sqlx is not asked (`_sqlx_migrations` is only read, never written) and
//! Flamingock has nothing to import or apply.

use flamingock::prelude::*;
use flamingock::{ImportOptions, SourceTool};

// One unit per migration, with sqlx's version as order and its file name as id.
flamingock::sql_units!("from-sqlx/migrations", author = "platform-team");

/// Between `20240101000000_create_books` and `20240301000000_add_book_isbn` by its order.
#[derive(Default)]
pub struct SeedBooks;

#[change_unit(id = "seed-books", order = "20240201000000", author = "ana")]
impl SeedBooks {
    #[execution]
    async fn execute(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    ) -> Result<(), sqlx::Error> {
        sqlx::query("INSERT INTO books (title) VALUES ('The Dispossessed'), ('Kindred')")
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    #[rollback_execution]
    async fn rollback(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    ) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM books").execute(&mut **tx).await?;
        Ok(())
    }
}

const URL: &str = "sqlite://flamingock-from-sqlx.db";

/// What the application did before the switch: sqlx's migrator over the same folder.
async fn migrate_with_sqlx_as_before() -> Result<(), Box<dyn std::error::Error>> {
    use std::str::FromStr;
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(URL)?.create_if_missing(true);
    let pool = sqlx::SqlitePool::connect_with(options).await?;
    let switched: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM sqlite_master WHERE name = 'flamingock_audit_log'",
    )
    .fetch_one(&pool)
    .await?;
    if switched == 0 {
        let folder = concat!(env!("CARGO_MANIFEST_DIR"), "/from-sqlx/migrations");
        let migrator = sqlx::migrate::Migrator::new(std::path::Path::new(folder)).await?;
        migrator.run(&pool).await?;
        println!(
            "before the switch: sqlx's migrator applied {} migrations",
            migrator
                .iter()
                .filter(|m| m.migration_type.is_up_migration())
                .count()
        );
    }
    pool.close().await;
    Ok(())
}

#[tokio::main]
pub async fn main() -> Result<(), Box<dyn std::error::Error>> {
    migrate_with_sqlx_as_before().await?;
    let builder = Flamingock::builder()
        .database_url(URL)
        .module(module_path!())
        .import_history(ImportOptions::from(SourceTool::Sqlx));
    let report = flamingock::run!(builder).await?;
    println!("{report}");
    Ok(())
}
