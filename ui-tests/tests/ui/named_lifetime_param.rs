use flamingock::prelude::*;

pub struct Config;

#[derive(Default)]
struct CreateClients;

#[change_unit(id = "create-clients", order = "0001", author = "ana")]
impl CreateClients {
    #[execution]
    fn execute(&self, config: &'static Config) {
        let _ = config;
    }
}

fn main() {}
