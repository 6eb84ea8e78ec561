//! One try of one unit (or of its rollback): the unit, its context and the lease it runs under.
//! It builds and writes the try's audit rows, records failures, and calls the unit's methods.

use std::time::Duration;

use crate::history::HistoryQuery;
use crate::inject::{BoxError, ChangeContext, Scope};
use crate::lock::Fence;
use crate::model::{AuditEntry, AuditState, UnitMethod, metadata_keys};
use crate::store::StoreError;

use super::failure::UnitFailure;
use super::lease::Lease;
use super::planned::PlannedUnit;
use super::{Engine, unwind};

/// The pauses before each read that finds out a lost reply's outcome (about 2 s in all). The
/// first is short but not zero: a server whose reply was lost may still be finishing the commit.
pub(super) const FIND_OUT_PAUSES: [Duration; 4] = [
    Duration::from_millis(100),
    Duration::from_millis(250),
    Duration::from_millis(500),
    Duration::from_millis(1250),
];

/// Reads the evidence of a write whose reply was lost, after each of [`FIND_OUT_PAUSES`], until
/// a read answers; `None` when none does (or the `failpoints` feature makes every read fail).
/// `what` names the evidence in the log.
pub(super) async fn read_evidence<T, E, F, Fut>(
    change_id: &str,
    what: &str,
    mut read: F,
) -> Option<T>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    for pause in FIND_OUT_PAUSES {
        tokio::time::sleep(pause).await;
        if crate::failpoint::blind() {
            continue;
        }
        match read().await {
            Ok(evidence) => return Some(evidence),
            Err(error) => {
                tracing::warn!(change_id, %error, "cannot read the {what} yet to learn a lost reply's outcome")
            }
        }
    }
    None
}

/// Whether a row whose write may have lost its reply is in the audit.
pub(super) enum Written {
    Yes,
    /// It is not (with the write's error, when there was one).
    No(Option<StoreError>),
    /// Nobody can tell (with the write's error, when there was one).
    Unknown(Option<StoreError>),
}

/// One try of one unit.
pub(super) struct Attempt<'a> {
    pub(super) engine: &'a Engine,
    pub(super) unit: &'a PlannedUnit,
    pub(super) context: ChangeContext,
    pub(super) lease: Option<&'a Lease>,
}

impl<'a> Attempt<'a> {
    /// A try of `unit` in run `execution_id`, its `attempt`-th.
    pub(super) fn new(
        engine: &'a Engine,
        unit: &'a PlannedUnit,
        execution_id: &str,
        attempt: u32,
        lease: Option<&'a Lease>,
    ) -> Self {
        let context = ChangeContext {
            change_id: unit.unit.id.to_owned(),
            execution_id: execution_id.to_owned(),
            attempt,
            stage: unit.unit.stage_name().to_owned(),
            target_system: unit.unit.target_name().to_owned(),
            runner_id: engine.runner_id.clone(),
        };
        Self {
            engine,
            unit,
            context,
            lease,
        }
    }

    /// The unit's id.
    pub(super) fn id(&self) -> &'static str {
        self.unit.unit.id
    }

    /// Whether the lease is known to be lost: then nothing more may be done or recorded.
    pub(super) fn lease_lost(&self) -> bool {
        self.lease.is_some_and(Lease::is_lost)
    }

    /// The checksum the unit's current row recorded (the try being recovered), if any.
    pub(super) fn recorded_checksum(&self) -> Option<String> {
        self.unit
            .current
            .as_ref()
            .and_then(|state| state.checksum.clone())
            .filter(|checksum| !checksum.is_empty())
    }

    /// An audit row of this try in `state`.
    pub(super) fn entry(
        &self,
        state: AuditState,
        execution_ms: Option<i64>,
        error: Option<String>,
    ) -> AuditEntry {
        let u = self.unit.unit;
        let engine = self.engine;
        let mut metadata = serde_json::Map::new();
        if let Some(description) = u.description {
            metadata.insert(metadata_keys::DESCRIPTION.into(), description.into());
        }
        if u.run_always {
            metadata.insert(metadata_keys::RUN_ALWAYS.into(), true.into());
        }
        AuditEntry {
            id: 0,
            execution_id: self.context.execution_id.clone(),
            change_id: u.id.to_owned(),
            author: u.author.to_owned(),
            change_order: u.order.to_owned(),
            stage: u.stage_name().to_owned(),
            state,
            created_at: None,
            execution_ms,
            hostname: engine.hostname.clone(),
            runner_id: engine.runner_id.clone(),
            target_system: u.target_name().to_owned(),
            tx_strategy: self.unit.strategy(),
            recovery_strategy: u.recovery,
            app_name: engine.options.app_name.clone(),
            app_version: engine.options.app_version.clone(),
            source: format!(
                "{} {}:{}",
                u.source.module_path, u.source.file, u.source.line
            ),
            checksum: Some(u.checksum.to_owned()),
            error,
            metadata: (!metadata.is_empty()).then_some(serde_json::Value::Object(metadata)),
            system_version: u.system_version.map(str::to_owned),
        }
    }

    /// The fence audit writes of this try carry.
    pub(super) fn fence(&self) -> Option<&'a Fence> {
        self.lease.map(|lease| &lease.fence)
    }

    /// Notes a refused fenced write: the lease is lost.
    pub(super) fn observe<T>(&self, result: &Result<T, StoreError>) {
        if let (Some(lease), Err(error)) = (self.lease, result) {
            lease.observe(error);
        }
    }

    /// Appends a row, fenced by the lease when there is one.
    pub(super) async fn append(&self, row: &AuditEntry) -> Result<(), StoreError> {
        let result = self.engine.store.append(row, self.fence()).await;
        self.observe(&result);
        result
    }

    /// Appends a row of `state` that carries `failure` as its error. When even that cannot be
    /// written, the failure gains a note saying so, then `consequence`.
    pub(super) async fn record(
        &self,
        state: AuditState,
        execution_ms: Option<i64>,
        failure: UnitFailure,
        consequence: &str,
    ) -> Result<UnitFailure, UnitFailure> {
        let row = self.entry(state, execution_ms, Some(failure.to_string()));
        match self.append(&row).await {
            Ok(()) => Ok(failure),
            Err(error) => Err(failure.note(format!(
                "(recording {state} failed too: {}{consequence})",
                crate::model::error_chain(&error)
            ))),
        }
    }

    /// Appends a row whose reply may be lost: `Ok` when it is in the audit (written, or found
    /// there after an error), `Err(Some(error))` when it is known not to be, `Err(None)` when
    /// nobody can tell.
    pub(super) async fn append_known(&self, row: &AuditEntry, point: &'static str) -> Written {
        match self.append(row).await {
            Ok(()) if !crate::failpoint::reply_lost(point) => Written::Yes,
            Ok(()) => self.find_out(row.state, None).await,
            Err(error) => self.find_out(row.state, Some(error)).await,
        }
    }

    /// After a write of this try's `state` row failed with `error` (or lost its reply), finds
    /// out whether the row is in the audit: the unit's newest row is read again, on whatever
    /// connection the store gives (a broken one is not reused), a few times. Under the lock
    /// nobody else writes this unit's rows, so the newest row tells.
    pub(super) async fn find_out(&self, state: AuditState, error: Option<StoreError>) -> Written {
        if let Some(StoreError::LockLost { .. }) = &error {
            // The fenced insert was refused: it certainly did not happen.
            return Written::No(error);
        }
        // After a reply the store could not settle, the write may still land: only a row that is
        // there tells; one that is not yet there tells nothing.
        let settled = !matches!(&error, Some(StoreError::OutcomeUnknown { .. }));
        let query = HistoryQuery::new()
            .change(self.id())
            .newest_first()
            .limit(1);
        let newest = read_evidence(self.id(), "audit", || self.engine.store.history(&query)).await;
        if let Some(rows) = newest {
            let found = rows.first().is_some_and(|row| {
                row.execution_id == self.context.execution_id && row.state == state
            });
            tracing::warn!(change_id = self.id(), %state, found, "a write's reply was lost; the audit tells");
            return if found {
                Written::Yes
            } else if settled {
                Written::No(error)
            } else {
                Written::Unknown(error)
            };
        }
        // A write refused by the server, or never sent (no connection could be had), is not in
        // the audit whether or not the audit can be read now. A lost reply (no error) tells
        // nothing.
        match error {
            Some(error) if settled => Written::No(Some(error)),
            error => Written::Unknown(error),
        }
    }

    /// Appends `FAILED` with `failure`, noting in it when even that failed.
    pub(super) async fn record_failed(
        &self,
        execution_ms: Option<i64>,
        failure: UnitFailure,
    ) -> UnitFailure {
        tracing::error!(change_id = self.id(), error = %failure, "change unit failed");
        self.record(AuditState::Failed, execution_ms, failure, "")
            .await
            .unwrap_or_else(|failure| failure)
    }

    /// Calls one of the unit's methods, with `transaction` as its `&mut` transaction when it has
    /// one; a panic becomes an error.
    pub(super) async fn call(
        &self,
        method: &UnitMethod,
        transaction: Option<&mut (dyn std::any::Any + Send)>,
    ) -> Result<(), BoxError> {
        let scope = Scope::new(
            &self.context,
            self.engine.target_dependencies(self.unit),
            &self.engine.dependencies,
            transaction,
        );
        unwind::CatchUnwind::new((method.call)(scope)).await
    }
}
