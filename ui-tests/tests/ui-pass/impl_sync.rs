// A sync method returning `()`, given the unit's context.
use flamingock::prelude::*;

#[derive(Default)]
struct LogStart;

#[change_unit(id = "log-start", order = "2", author = "bo", transactional = false)]
impl LogStart {
    #[execution]
    fn execute(&self, ctx: &ChangeContext) {
        println!("{} attempt {}", ctx.change_id, ctx.attempt);
    }
}

fn main() {
    let unit = flamingock::ChangeUnit::registered()
        .find(|unit| unit.id == "log-start")
        .expect("the unit registers itself");
    assert!(!unit.transactional);
    assert!(unit.rollback.is_none());
    let params = (unit.execution.params)();
    assert_eq!(params[0].name, "ctx");
    assert_eq!(params[0].written_type, "&ChangeContext");
    assert_eq!(
        params[0].requirement,
        flamingock_core::inject::Requirement::Context
    );
}
