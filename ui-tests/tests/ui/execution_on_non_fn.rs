use flamingock::prelude::*;

#[derive(Default)]
struct CreateClients;

#[change_unit(id = "create-clients", order = "0001", author = "ana")]
impl CreateClients {
    #[execution]
    const TABLE: &'static str = "clients";

    #[execution]
    fn execute(&self) {
        let _ = Self::TABLE;
    }
}

fn main() {}
