// Included by `main.rs` into a module that defines `Db` (the audit store's sqlx database): the
// same units for SQLite and PostgreSQL. Three TX_SHARED units by ana and bo, a NON_TX export by
// cy; every one has a rollback.

use flamingock::prelude::*;
use sqlx::Transaction;

use super::OutDir;

#[derive(Default)]
pub struct CreateClients;

#[change_unit(id = "create-clients", order = "1", author = "ana")]
impl CreateClients {
    #[execution]
    async fn execute(&self, tx: &mut Transaction<'_, Db>) -> Result<(), sqlx::Error> {
        sqlx::query("CREATE TABLE clients (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    #[rollback_execution]
    async fn rollback(&self, tx: &mut Transaction<'_, Db>) -> Result<(), sqlx::Error> {
        sqlx::query("DROP TABLE clients").execute(&mut **tx).await?;
        Ok(())
    }
}

#[derive(Default)]
pub struct SeedClients;

#[change_unit(id = "seed-clients", order = "2", author = "ana")]
impl SeedClients {
    #[execution]
    async fn execute(&self, tx: &mut Transaction<'_, Db>) -> Result<(), sqlx::Error> {
        sqlx::query("INSERT INTO clients (id, name) VALUES (1, 'Ada'), (2, 'Grace')")
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    #[rollback_execution]
    async fn rollback(&self, tx: &mut Transaction<'_, Db>) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM clients").execute(&mut **tx).await?;
        Ok(())
    }
}

#[derive(Default)]
pub struct AddEmail;

#[change_unit(id = "add-email", order = "3", author = "bo")]
impl AddEmail {
    #[execution]
    async fn execute(&self, tx: &mut Transaction<'_, Db>) -> Result<(), sqlx::Error> {
        sqlx::query("ALTER TABLE clients ADD COLUMN email TEXT")
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    #[rollback_execution]
    async fn rollback(&self, tx: &mut Transaction<'_, Db>) -> Result<(), sqlx::Error> {
        sqlx::query("ALTER TABLE clients DROP COLUMN email")
            .execute(&mut **tx)
            .await?;
        Ok(())
    }
}

#[derive(Default)]
pub struct ExportClients;

#[change_unit(id = "export-clients", order = "4", author = "cy", transactional = false)]
impl ExportClients {
    #[execution]
    async fn execute(&self, pool: &sqlx::Pool<Db>, dir: &OutDir) -> Result<(), anyhow::Error> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM clients")
            .fetch_one(pool)
            .await?;
        std::fs::write(dir.0.join("clients.csv"), format!("{count} clients\n"))?;
        Ok(())
    }

    #[rollback_execution]
    fn rollback(&self, dir: &OutDir) -> Result<(), std::io::Error> {
        std::fs::remove_file(dir.0.join("clients.csv"))
    }
}
