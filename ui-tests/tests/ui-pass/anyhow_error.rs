// `anyhow::Result<()>` and a boxed error are accepted return types.
use flamingock::prelude::*;

pub struct Limits {
    pub max_attempts: u32,
}

#[derive(Default)]
struct CheckLimits;

#[change_unit(
    id = "check-limits",
    order = "3",
    author = "ana",
    transactional = false
)]
impl CheckLimits {
    #[execution]
    async fn execute(&self, ctx: &ChangeContext, limits: &Limits) -> anyhow::Result<()> {
        anyhow::ensure!(ctx.attempt <= limits.max_attempts, "too many attempts");
        Ok(())
    }

    #[rollback_execution]
    fn rollback(&self) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        Err("cannot be undone".into())
    }
}

fn main() {
    assert!(flamingock::ChangeUnit::registered().any(|unit| unit.id == "check-limits"));
}
