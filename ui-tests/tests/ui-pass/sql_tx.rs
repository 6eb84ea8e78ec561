// The backend-neutral transaction, and the transaction named through `flamingock::sqlx` (which
// passes the compile check for transactions of another sqlx version).
use flamingock::prelude::*;

#[derive(Default)]
struct Neutral;

#[change_unit(id = "neutral", order = "1", author = "ana")]
impl Neutral {
    #[execution]
    async fn execute(&self, tx: &mut flamingock::SqlTx) -> Result<(), flamingock::sqlx::Error> {
        tx.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)").await?;
        Ok(())
    }

    #[rollback_execution]
    fn rollback(&self, tx: &mut flamingock::SqlTx) {
        let _ = tx.backend();
    }
}

#[change_unit(id = "through-the-re-export", order = "2", author = "ana")]
mod through_the_re_export {
    #[execution]
    async fn execute(
        tx: &mut flamingock::sqlx::Transaction<'_, flamingock::sqlx::Sqlite>,
    ) -> Result<(), flamingock::sqlx::Error> {
        flamingock::sqlx::query("SELECT 1").execute(&mut **tx).await?;
        Ok(())
    }
}

fn main() {
    let unit = flamingock::ChangeUnit::registered()
        .find(|unit| unit.id == "neutral")
        .expect("the unit registers itself");
    let params = (unit.execution.params)();
    assert!(matches!(
        params[0].requirement,
        flamingock_core::inject::Requirement::AnyTransaction(_)
    ));
}
