//! The plan a run reports to its store at the start (`AuditStore::record_plan`): what it holds,
//! and that a store refusing it does not stop the run.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use flamingock_core::lock::{DistributedLock, Fence};
use flamingock_core::model::UnitState;
use flamingock_core::plan::Selection;
use flamingock_core::run_plan::RunPlan;
use flamingock_core::testing::{MemoryAuditStore, UnitBuilder};
use flamingock_core::{AuditEntry, AuditStore, Engine, RunOptions, StoreError, TxStrategy};

/// The in-memory store, keeping the plans it is told of, or refusing them.
#[derive(Clone, Default)]
struct PlanStore {
    inner: MemoryAuditStore,
    plans: Arc<Mutex<Vec<RunPlan>>>,
    refuse: bool,
}

#[async_trait::async_trait]
impl AuditStore for PlanStore {
    async fn initialize(&self) -> Result<(), StoreError> {
        self.inner.initialize().await
    }
    async fn unit_states(&self) -> Result<HashMap<String, UnitState>, StoreError> {
        self.inner.unit_states().await
    }
    async fn append(&self, entry: &AuditEntry, fence: Option<&Fence>) -> Result<(), StoreError> {
        self.inner.append(entry, fence).await
    }
    async fn entries(&self) -> Result<Vec<AuditEntry>, StoreError> {
        self.inner.entries().await
    }
    fn keeps_plans(&self) -> bool {
        true
    }
    async fn record_plan(&self, plan: &RunPlan) -> Result<(), StoreError> {
        if self.refuse {
            return Err(StoreError::Unsupported(
                "this store refuses plans".to_owned(),
            ));
        }
        self.plans.lock().expect("not poisoned").push(plan.clone());
        Ok(())
    }
    async fn begin_shared(
        &self,
    ) -> Result<Box<dyn flamingock_core::store::SharedTransaction>, StoreError> {
        self.inner.begin_shared().await
    }
    fn shared_transaction_type(&self) -> flamingock_core::TypeLabel {
        self.inner.shared_transaction_type()
    }
    fn dependencies(&self) -> flamingock_core::inject::Dependencies {
        self.inner.dependencies()
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn lock(&self) -> Option<&dyn DistributedLock> {
        self.inner.lock()
    }
}

fn units() -> Vec<&'static flamingock_core::ChangeUnit> {
    vec![
        UnitBuilder::new("second", "10", "bob")
            .transactional(false)
            .system_version("2.0.0")
            .execute_sync(|_| Ok(()))
            .build(),
        UnitBuilder::new("first", "2", "ana")
            .execute_sync(|_| Ok(()))
            .checksum("sum-1")
            .build(),
    ]
}

#[tokio::test]
async fn every_run_reports_its_selected_units_in_run_order_with_their_checksums_and_versions() {
    let store = PlanStore::default();
    let engine = Engine::new(Arc::new(store.clone())).with_options(RunOptions {
        app_name: Some("orders".to_owned()),
        app_version: Some("1.2.0".to_owned()),
        selection: Selection {
            system_versions: Some("<2.0.0".parse().expect("a range")),
            ..Selection::default()
        },
        ..RunOptions::default()
    });
    let report = engine.run(units()).await.expect("the run applies");
    engine
        .run(units())
        .await
        .expect("the second run applies nothing");
    let plans = store.plans.lock().expect("not poisoned").clone();
    assert_eq!(plans.len(), 2, "one plan per run");
    let plan = &plans[0];
    assert_eq!(plan.execution_id, report.execution_id);
    assert_eq!(plan.runner_id, engine.runner_id());
    assert_eq!(plan.app_name.as_deref(), Some("orders"));
    assert_eq!(plan.app_version.as_deref(), Some("1.2.0"));
    let ids: Vec<&str> = plan.units.iter().map(|u| u.change_id.as_str()).collect();
    assert_eq!(ids, ["first", "second"], "natural order: 2 before 10");
    let first = &plan.units[0];
    assert_eq!(first.checksum, "sum-1");
    assert_eq!(first.author, "ana");
    assert_eq!(first.tx_strategy, TxStrategy::Shared);
    assert!(!first.out_of_range);
    let second = &plan.units[1];
    assert_eq!(second.tx_strategy, TxStrategy::NonTransactional);
    assert_eq!(second.system_version.as_deref(), Some("2.0.0"));
    assert!(second.out_of_range, "outside <2.0.0");
    assert_ne!(plans[1].execution_id, plan.execution_id);
}

#[tokio::test]
async fn a_store_that_refuses_the_plan_does_not_stop_the_run() {
    let store = PlanStore {
        refuse: true,
        ..PlanStore::default()
    };
    let report = Engine::new(Arc::new(store.clone()))
        .run(units())
        .await
        .expect("the run goes on without its plan recorded");
    assert_eq!(report.applied(), ["first", "second"]);
    assert!(store.plans.lock().expect("not poisoned").is_empty());
}

#[tokio::test]
async fn a_validation_run_records_no_plan() {
    let store = PlanStore::default();
    let engine = Engine::new(Arc::new(store.clone())).with_options(RunOptions {
        validate_only: true,
        ..RunOptions::default()
    });
    engine
        .run(units())
        .await
        .expect_err("units are pending: the validation fails");
    assert!(
        store.plans.lock().expect("not poisoned").is_empty(),
        "a validation run writes nothing, its plan neither"
    );
}
