//! [`RunPlan`]: the units a run considers, as it sends them to its audit store at the start
//! (see [`AuditStore::record_plan`](crate::store::AuditStore::record_plan)), so that a store
//! shared by many services (the Flamingock server) knows what each one has pending before any
//! of it is applied.
//!
//! The plan names the units only (ids, orders, checksums, stages, targets, system versions): what
//! is pending follows from it and the audit, which the store has.

use serde::{Deserialize, Serialize};

use crate::model::{ChangeUnit, RecoveryStrategy, TxStrategy};

/// The units one run considers, in the order it runs them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunPlan {
    /// The run (UUID v7), as its audit rows name it.
    pub execution_id: String,
    /// The runner (one per engine).
    pub runner_id: String,
    /// The runner's host.
    pub hostname: String,
    /// The application's crate name.
    pub app_name: Option<String>,
    /// The application's crate version.
    pub app_version: Option<String>,
    /// The selected units, in run order.
    pub units: Vec<PlanUnit>,
}

/// One unit of a [`RunPlan`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanUnit {
    /// The unit's id.
    pub change_id: String,
    /// Its order.
    pub order: String,
    /// Its author.
    pub author: String,
    /// Its stage.
    pub stage: String,
    /// Its target system.
    pub target_system: String,
    /// How it runs.
    pub tx_strategy: TxStrategy,
    /// What a run does with it after an interrupted try.
    pub recovery_strategy: RecoveryStrategy,
    /// Whether it applies on every run.
    pub run_always: bool,
    /// Its checksum (of its source).
    pub checksum: String,
    /// The release it ships with, if it names one.
    pub system_version: Option<String>,
    /// Whether the run's system version range leaves it out (never applied by this run).
    pub out_of_range: bool,
}

impl PlanUnit {
    /// The plan line of `unit`, running with `strategy`.
    pub fn of(unit: &ChangeUnit, strategy: TxStrategy, out_of_range: bool) -> Self {
        Self {
            change_id: unit.id.to_owned(),
            order: unit.order.to_owned(),
            author: unit.author.to_owned(),
            stage: unit.stage_name().to_owned(),
            target_system: unit.target_name().to_owned(),
            tx_strategy: strategy,
            recovery_strategy: unit.recovery,
            run_always: unit.run_always,
            checksum: unit.checksum.to_owned(),
            system_version: unit.system_version.map(str::to_owned),
            out_of_range,
        }
    }
}
