use flamingock::prelude::*;

#[derive(Default)]
struct CreateClients;

impl CreateClients {
    #[execution]
    fn execute(&self) {}

    #[rollback_execution]
    fn rollback(&self) {}
}

fn main() {
    CreateClients.execute();
    CreateClients.rollback();
}
