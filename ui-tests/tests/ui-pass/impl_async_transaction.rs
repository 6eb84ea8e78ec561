// The quick-start form: an async method of a `Default` type, given the unit's sqlx transaction.
use flamingock::prelude::*;

#[derive(Default)]
pub struct CreateClients;

#[change_unit(id = "create-clients", order = "0001", author = "ana")]
impl CreateClients {
    #[execution]
    async fn execute(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    ) -> Result<(), sqlx::Error> {
        sqlx::query("CREATE TABLE clients (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    #[rollback_execution]
    async fn rollback(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    ) -> Result<(), sqlx::Error> {
        sqlx::query("DROP TABLE clients").execute(&mut **tx).await?;
        Ok(())
    }

    // Methods without a marker are left alone.
    fn table(&self) -> &'static str {
        "clients"
    }
}

fn main() {
    assert_eq!(CreateClients.table(), "clients");
    let unit = flamingock::ChangeUnit::registered()
        .find(|unit| unit.id == "create-clients")
        .expect("the unit registers itself");
    assert_eq!((unit.order, unit.author), ("0001", "ana"));
    // The defaults.
    assert_eq!(unit.target_system, None);
    assert!(unit.transactional);
    assert_eq!(
        unit.recovery,
        flamingock::RecoveryStrategy::ManualIntervention
    );
    assert!(!unit.run_always);
    assert_eq!(
        (unit.system_version, unit.stage, unit.description),
        (None, None, None)
    );
    // Where it was declared: the line of the attribute.
    assert_eq!(unit.source.line, 7);
    assert!(
        unit.source.file.ends_with("impl_async_transaction.rs"),
        "{}",
        unit.source.file
    );
    assert_eq!(unit.source.module_path, module_path!());
    assert_eq!(unit.checksum.len(), 16);
    assert!(unit.checksum.chars().all(|c| c.is_ascii_hexdigit()));

    assert_eq!(unit.execution.name, "execute");
    let params = (unit.execution.params)();
    assert_eq!(params.len(), 1);
    assert_eq!(params[0].name, "tx");
    assert_eq!(
        params[0].written_type,
        "&mut sqlx::Transaction<'_, sqlx::Sqlite>"
    );
    assert!(matches!(
        params[0].requirement,
        flamingock_core::inject::Requirement::Transaction { type_name, .. } if type_name.contains("Transaction")
    ));
    let rollback = unit.rollback.expect("the rollback method is registered");
    assert_eq!(rollback.name, "rollback");
}
