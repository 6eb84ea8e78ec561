// An application on sqlx 0.8 (here `sqlx08`) beside flamingock's sqlx 0.9: the transaction it
// names is not the one the audit store opens, and the macro says so at compile time.
use flamingock::prelude::*;

#[derive(Default)]
struct CreateClients;

#[change_unit(id = "create-clients", order = "0001", author = "ana")]
impl CreateClients {
    #[execution]
    async fn execute(
        &self,
        tx: &mut sqlx08::Transaction<'_, sqlx08::Postgres>,
    ) -> Result<(), sqlx08::Error> {
        sqlx08::query("SELECT 1").execute(&mut **tx).await?;
        Ok(())
    }
}

fn main() {}
