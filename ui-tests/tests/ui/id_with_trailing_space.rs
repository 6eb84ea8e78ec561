use flamingock::prelude::*;

#[derive(Default)]
struct CreateClients;

#[change_unit(id = "trail ", order = "0001", author = "ana")]
impl CreateClients {
    #[execution]
    fn execute(&self) {}
}

fn main() {}
