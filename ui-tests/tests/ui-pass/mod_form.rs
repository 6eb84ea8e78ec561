// An inline module of free functions: no type, no `Default`.
use flamingock::prelude::*;

pub struct Greeting(pub String);

#[change_unit(
    id = "seed",
    order = "2",
    author = "bo",
    transactional = false,
    recovery = "always_retry"
)]
mod seed {
    use super::*;

    #[execution]
    pub fn execute(ctx: &ChangeContext, greeting: &Greeting) {
        println!("{} from {}", greeting.0, ctx.change_id);
    }

    #[rollback_execution]
    async fn rollback(_ctx: &ChangeContext) -> Result<(), std::io::Error> {
        Ok(())
    }

    // Items without a marker are left alone.
    pub fn helper() -> u8 {
        7
    }
}

fn main() {
    assert_eq!(seed::helper(), 7);
    let unit = flamingock::ChangeUnit::registered()
        .find(|unit| unit.id == "seed")
        .expect("the unit registers itself");
    assert_eq!(unit.recovery, flamingock::RecoveryStrategy::AlwaysRetry);
    assert_eq!(unit.source.module_path, format!("{}::seed", module_path!()));
    assert_eq!(unit.source.line, 6);
    let params = (unit.execution.params)();
    let names: Vec<_> = params.iter().map(|p| (p.name, p.written_type)).collect();
    assert_eq!(
        names,
        [("ctx", "&ChangeContext"), ("greeting", "&Greeting")]
    );
    let rollback = unit.rollback.expect("the rollback method is registered");
    assert_eq!(
        (rollback.name, (rollback.params)()[0].name),
        ("rollback", "_ctx")
    );
}
