// `&mut self`, `self` and no receiver; and a type that needs no `Default` when no marked method
// takes a receiver. Two units in one module do not clash.
use flamingock::prelude::*;

#[derive(Default)]
struct Counter {
    count: u32,
}

#[change_unit(id = "mut-self", order = "5", author = "ana", transactional = false)]
impl Counter {
    #[execution]
    fn execute(&mut self) {
        self.count += 1;
    }

    #[rollback_execution]
    async fn rollback(self) {
        let Counter { count: _ } = self;
    }
}

struct NoDefault;

#[change_unit(id = "no-receiver", order = "6", author = "ana", transactional = false)]
impl NoDefault {
    #[execution]
    async fn execute(ctx: &ChangeContext) -> Result<(), std::fmt::Error> {
        let _ = ctx;
        Ok(())
    }
}

fn main() {
    let ids: Vec<_> = flamingock::ChangeUnit::registered()
        .map(|unit| unit.id)
        .collect();
    assert!(
        ids.contains(&"mut-self") && ids.contains(&"no-receiver"),
        "{ids:?}"
    );
    let _ = NoDefault;
}
