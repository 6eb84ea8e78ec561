use flamingock::prelude::*;

#[change_unit(id = "create-clients", order = "0001", author = "ana")]
fn create_clients() {}

fn main() {
    create_clients();
}
