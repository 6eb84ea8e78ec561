use flamingock::prelude::*;

#[change_unit(id = "create-clients", order = "0001", author = "ana")]
mod create_clients;

fn main() {}
