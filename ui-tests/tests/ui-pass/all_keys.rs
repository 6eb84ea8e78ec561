// Every optional key set; the registration carries each of them.
use flamingock::prelude::*;

#[derive(Default)]
struct Everything;

#[change_unit(
    id = "everything",
    order = "10",
    author = "cy",
    target_system = "billing-db",
    transactional = false,
    recovery = "always_retry",
    run_always = true,
    system_version = "1.2.0-rc.1",
    stage = "seed",
    description = "sets every key"
)]
impl Everything {
    #[execution]
    fn execute(&self) {}
}

fn main() {
    let unit = flamingock::ChangeUnit::registered()
        .find(|unit| unit.id == "everything")
        .expect("the unit registers itself");
    assert_eq!((unit.order, unit.author), ("10", "cy"));
    assert_eq!(unit.target_system, Some("billing-db"));
    assert!(!unit.transactional);
    assert_eq!(unit.recovery, flamingock::RecoveryStrategy::AlwaysRetry);
    assert!(unit.run_always);
    assert_eq!(unit.system_version, Some("1.2.0-rc.1"));
    assert_eq!(unit.stage, Some("seed"));
    assert_eq!(unit.description, Some("sets every key"));
    assert_eq!(unit.source.line, 7);
    assert!((unit.execution.params)().is_empty());
}
