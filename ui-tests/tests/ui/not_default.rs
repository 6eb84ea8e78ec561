use flamingock::prelude::*;

struct CreateClients {
    table: &'static str,
}

#[change_unit(id = "create-clients", order = "0001", author = "ana")]
impl CreateClients {
    #[execution]
    fn execute(&self) {
        let _ = self.table;
    }
}

fn main() {
    let _ = CreateClients { table: "clients" };
}
