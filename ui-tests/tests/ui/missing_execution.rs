use flamingock::prelude::*;

#[derive(Default)]
struct CreateClients;

#[change_unit(id = "create-clients", order = "0001", author = "ana")]
impl CreateClients {
    fn execute(&self) {}

    #[rollback_execution]
    fn rollback(&self) {}
}

fn main() {}
