use std::cell::Cell;

use flamingock::prelude::*;

// Units run on a multi-threaded runtime: `&self` held across an `.await` needs a `Sync` type.
#[derive(Default)]
struct CreateClients {
    calls: Cell<u8>,
}

#[change_unit(id = "create-clients", order = "0001", author = "ana")]
impl CreateClients {
    #[execution]
    async fn execute(&self) {
        std::future::ready(()).await;
        self.calls.set(1);
    }
}

fn main() {}
