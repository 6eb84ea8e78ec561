//! Every optional key of `#[change_unit]` set; the registration carries each of them. An
//! ordinary test rather than a trybuild pass case: with a pass case, trybuild builds (not only
//! checks) every case and all their dependencies again, which took most of the UI suite's time.
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

#[test]
fn every_key_is_registered() {
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
    assert_eq!(unit.source.line, 9);
    assert!((unit.execution.params)().is_empty());
}
