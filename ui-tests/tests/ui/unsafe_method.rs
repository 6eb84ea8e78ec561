use flamingock::prelude::*;

#[derive(Default)]
struct CreateClients;

#[change_unit(id = "create-clients", order = "0001", author = "ana")]
impl CreateClients {
    #[execution]
    unsafe fn execute(&self) {}
}

fn main() {}
