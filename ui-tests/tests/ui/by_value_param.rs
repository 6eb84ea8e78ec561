use flamingock::prelude::*;

pub struct Config {
    pub table: String,
}

#[derive(Default)]
struct CreateClients;

#[change_unit(id = "create-clients", order = "0001", author = "ana")]
impl CreateClients {
    #[execution]
    fn execute(&self, config: Config) {
        let _ = config.table;
    }
}

fn main() {}
