use flamingock::prelude::*;

#[derive(Default)]
struct CreateClients;

#[change_unit(
    id = "create-clients",
    order = "0001",
    author = "ana",
    recovery = "retry"
)]
impl CreateClients {
    #[execution]
    fn execute(&self) {}
}

fn main() {}
