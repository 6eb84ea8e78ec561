use flamingock::prelude::*;

#[derive(Default)]
struct CreateClients;

// Two mistakes: both are reported.
#[change_unit(
    id = "create-clients",
    order = 1,
    author = "ana",
    transactional = "yes"
)]
impl CreateClients {
    #[execution]
    fn execute(&self) {}
}

fn main() {}
