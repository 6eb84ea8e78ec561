use flamingock::prelude::*;

trait Migration {
    fn execute(&self);
}

#[derive(Default)]
struct CreateClients;

#[change_unit(id = "create-clients", order = "0001", author = "ana")]
impl Migration for CreateClients {
    #[execution]
    fn execute(&self) {}
}

fn main() {}
