use flamingock::prelude::*;

#[derive(Default)]
struct CreateClients;

#[change_unit(id = "add-\u{202E}users", order = "0001", author = "ana")]
impl CreateClients {
    #[execution]
    fn execute(&self) {}
}

fn main() {}
