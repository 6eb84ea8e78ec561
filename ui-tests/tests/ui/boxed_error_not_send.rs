use std::error::Error;

use flamingock::prelude::*;

#[derive(Default)]
struct CreateClients;

#[change_unit(id = "create-clients", order = "0001", author = "ana", transactional = false)]
impl CreateClients {
    #[execution]
    fn execute(&self) -> Result<(), Box<dyn std::error::Error>> {
        Ok(())
    }

    #[rollback_execution]
    fn rollback(&self) -> std::result::Result<(), Box<dyn Error + Send>> {
        Ok(())
    }
}

fn main() {}
