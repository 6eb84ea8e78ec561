//! The JSON bodies of the server's `/v1` API, shared by the server and this client, so that the
//! two cannot disagree on a field.
//!
//! Paths (every one under `/v1`; `{scope}` is `services/{service}/environments/{environment}`):
//!
//! | method and path | body -> reply | roles |
//! |---|---|---|
//! | `GET /now` | -> [`NowReply`] | any |
//! | `POST /{scope}/initialize` | -> `204` | runner, operator, admin |
//! | `GET /{scope}/unit-states` | -> [`UnitStatesReply`] | reader, runner, operator, admin |
//! | `GET /{scope}/entries` | -> [`EntriesReply`] | reader, runner, operator, admin |
//! | `POST /{scope}/history` | [`HistoryRequest`] -> [`EntriesReply`] | reader, runner, operator, admin |
//! | `POST /{scope}/entries` | [`AppendRequest`] -> [`AppendReply`] | runner (other rows), operator (`MANUAL_MARKED_*` rows), admin |
//! | `GET /{scope}/locks/{key}` | -> [`LockReply`] | reader, runner, operator, admin |
//! | `POST /{scope}/locks/{key}/acquire` | [`AcquireRequest`] -> [`AcquireReply`] | runner, operator, admin |
//! | `POST /{scope}/locks/{key}/extend` | [`ExtendRequest`] -> [`ExtendReply`] | runner, operator, admin |
//! | `POST /{scope}/locks/{key}/release` | [`ReleaseRequest`] -> `204` | runner, operator, admin |
//! | `DELETE /{scope}/locks/{key}` | -> [`LockReply`] (what was removed) | operator, admin |
//! | `PUT /{scope}/plan` | [`PlanRequest`] -> `204` | runner, admin |
//! | `GET /{scope}/plan` | -> [`PlanReply`] | reader, runner, operator, admin |
//! | `GET /tokens` | -> [`TokenList`] | admin |
//! | `POST /tokens` | [`CreateTokenRequest`] -> [`CreatedToken`] | admin |
//! | `POST /tokens/{id}/revoke` | -> [`TokenInfo`] | admin |
//!
//! Errors come as [`ErrorReply`] with `401` (no token, or one the server does not know or that
//! is revoked), `403` (a token out of its role or scope), `400` (a body or name the server
//! refuses), `409` with code `lock_lost` (a fenced append whose lease is gone), `413` with code
//! `too_large` (a body over the server's limit), `500`/`503`.

use chrono::{DateTime, Utc};
use flamingock_core::history::{HistoryOrder, HistoryQuery};
use flamingock_core::lock::{Fence, LockInfo};
use flamingock_core::model::{AuditEntry, AuditState, UnitState};
use flamingock_core::run_plan::RunPlan;
use serde::{Deserialize, Serialize};

/// The key of an entry's metadata under which the client names the row it writes, so that a
/// retried append is recorded once.
pub const REQUEST_ID_KEY: &str = "request_id";

/// The reply of `GET /v1/now`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NowReply {
    /// The server's database clock.
    pub now: DateTime<Utc>,
}

/// The reply of `GET unit-states`: the newest row of every unit.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UnitStatesReply {
    /// One per unit that has a row.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<schema::UnitStateSchema>))]
    pub units: Vec<UnitState>,
}

/// The reply of `GET entries` and `POST history`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EntriesReply {
    /// The rows, in the order asked for.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<schema::AuditEntrySchema>))]
    pub entries: Vec<AuditEntry>,
}

/// Who must hold which lease for a fenced write (see [`Fence`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WireFence {
    /// The lock's key.
    pub key: String,
    /// The runner id that must hold it.
    pub owner: String,
}

impl From<&Fence> for WireFence {
    fn from(fence: &Fence) -> Self {
        Self {
            key: fence.key.clone(),
            owner: fence.owner.clone(),
        }
    }
}

impl From<WireFence> for Fence {
    fn from(fence: WireFence) -> Self {
        Self {
            key: fence.key,
            owner: fence.owner,
        }
    }
}

/// The body of `POST entries`: one row to append.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AppendRequest {
    /// The client's name for this row (a UUID); an append whose row is already recorded under
    /// this name succeeds without writing a second one. Stored in the row's metadata under
    /// [`REQUEST_ID_KEY`].
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 100, pattern = "\\S")
    )]
    pub request_id: String,
    /// The row (`id` and `created_at` are the store's and ignored).
    #[cfg_attr(feature = "openapi", schema(value_type = schema::AuditEntrySchema))]
    pub entry: AuditEntry,
    /// With a fence, the row is written only while that lease is still held.
    pub fence: Option<WireFence>,
}

/// The reply of `POST entries`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AppendReply {
    /// `false` when the row was already recorded under this request id (a retry).
    pub written: bool,
}

/// The body of `POST history`: a [`HistoryQuery`] on the wire.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct HistoryRequest {
    /// Only rows of this change unit.
    pub change_id: Option<String>,
    /// Only rows with this author.
    pub author: Option<String>,
    /// Only rows in one of these states (empty: any state).
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<schema::AuditStateSchema>))]
    pub states: Vec<AuditState>,
    /// Only rows of this stage.
    pub stage: Option<String>,
    /// Only rows of this run.
    pub execution_id: Option<String>,
    /// Only rows of units that ship with this system version.
    pub system_version: Option<String>,
    /// Only rows written at or after this instant.
    pub since: Option<DateTime<Utc>>,
    /// Only rows written strictly before this instant.
    pub until: Option<DateTime<Utc>>,
    /// Only each unit's newest row.
    pub latest_per_unit: bool,
    /// `true`: newest first; `false`: oldest first.
    pub newest_first: bool,
    /// Keyset paging: only rows after this row id in the chosen order.
    pub after_id: Option<i64>,
    /// At most this many rows.
    pub limit: Option<u32>,
}

impl From<&HistoryQuery> for HistoryRequest {
    fn from(query: &HistoryQuery) -> Self {
        Self {
            change_id: query.change_id.clone(),
            author: query.author.clone(),
            states: query.states.clone(),
            stage: query.stage.clone(),
            execution_id: query.execution_id.clone(),
            system_version: query.system_version.clone(),
            since: query.since,
            until: query.until,
            latest_per_unit: query.latest_per_unit,
            newest_first: query.order == HistoryOrder::NewestFirst,
            after_id: query.after_id,
            limit: query.limit,
        }
    }
}

impl From<HistoryRequest> for HistoryQuery {
    fn from(request: HistoryRequest) -> Self {
        let mut query = HistoryQuery::new();
        query.change_id = request.change_id;
        query.author = request.author;
        query.states = request.states;
        query.stage = request.stage;
        query.execution_id = request.execution_id;
        query.system_version = request.system_version;
        query.since = request.since;
        query.until = request.until;
        query.latest_per_unit = request.latest_per_unit;
        query.order = if request.newest_first {
            HistoryOrder::NewestFirst
        } else {
            HistoryOrder::OldestFirst
        };
        query.after_id = request.after_id;
        query.limit = request.limit;
        query
    }
}

/// The body of `PUT plan`: the plan of a run that is starting.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlanRequest {
    /// The units the run considers, in run order.
    #[cfg_attr(feature = "openapi", schema(value_type = schema::RunPlanSchema))]
    pub plan: RunPlan,
}

/// The reply of `GET plan`: the latest plan a runner of the scope reported.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlanReply {
    /// The plan.
    #[cfg_attr(feature = "openapi", schema(value_type = schema::RunPlanSchema))]
    pub plan: RunPlan,
    /// When the server received it (its database clock).
    pub reported_at: DateTime<Utc>,
    /// The host of the runner that sent it.
    pub hostname: String,
}

/// A lease holder on the wire (see [`LockInfo`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WireLockInfo {
    /// The lock's key.
    pub key: String,
    /// The holder's runner id.
    pub owner: String,
    /// The holder's host name.
    pub hostname: String,
    /// When the holder took the lease, by the server's database clock.
    pub acquired_at: DateTime<Utc>,
    /// When the lease ends unless extended.
    pub expires_at: DateTime<Utc>,
    /// Whether it had ended when read.
    pub expired: bool,
}

impl From<LockInfo> for WireLockInfo {
    fn from(info: LockInfo) -> Self {
        Self {
            key: info.key,
            owner: info.owner,
            hostname: info.hostname,
            acquired_at: info.acquired_at,
            expires_at: info.expires_at,
            expired: info.expired,
        }
    }
}

impl From<WireLockInfo> for LockInfo {
    fn from(info: WireLockInfo) -> Self {
        Self {
            key: info.key,
            owner: info.owner,
            hostname: info.hostname,
            acquired_at: info.acquired_at,
            expires_at: info.expires_at,
            expired: info.expired,
        }
    }
}

/// The body of `POST locks/{key}/acquire`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AcquireRequest {
    /// The runner id taking the lease.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 200))]
    pub owner: String,
    /// The runner's host name.
    pub hostname: String,
    /// How long the lease lasts, in milliseconds (a second to a day).
    #[cfg_attr(feature = "openapi", schema(minimum = 1000, maximum = 86_400_000))]
    pub lease_ms: u64,
}

/// The reply of `POST locks/{key}/acquire`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AcquireReply {
    /// Whether the lease is now the caller's.
    pub acquired: bool,
    /// When not: who holds it.
    pub holder: Option<WireLockInfo>,
}

/// The body of `POST locks/{key}/extend`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExtendRequest {
    /// The runner id that holds the lease.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 200))]
    pub owner: String,
    /// The new lease, from now, in milliseconds (a second to a day).
    #[cfg_attr(feature = "openapi", schema(minimum = 1000, maximum = 86_400_000))]
    pub lease_ms: u64,
}

/// The reply of `POST locks/{key}/extend`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExtendReply {
    /// `false` when the lease is no longer the caller's.
    pub extended: bool,
}

/// The body of `POST locks/{key}/release`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReleaseRequest {
    /// The runner id that holds the lease.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 200))]
    pub owner: String,
}

/// The reply of `GET locks/{key}` and `DELETE locks/{key}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LockReply {
    /// The lease row, if there is (or was) one that could be read.
    pub lock: Option<WireLockInfo>,
}

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads the audit and the lock of its service and environment.
    Reader,
    /// Also initializes, appends run rows and takes the lock: what a service's runs need.
    Runner,
    /// Also records fixes (`MANUAL_MARKED_*` rows) and force-releases the lock; no run rows.
    Operator,
    /// Everything, and manages tokens; may be unscoped.
    Admin,
}

impl Role {
    /// Every role, least first.
    pub const ALL: [Role; 4] = [Role::Reader, Role::Runner, Role::Operator, Role::Admin];

    /// The name on the command line and in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Runner => "runner",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    /// The role a name stands for.
    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.as_str() == name)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The body of `POST /v1/tokens`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateTokenRequest {
    /// The new token's role.
    pub role: Role,
    /// The service it is for (required unless the role is admin).
    pub service: Option<String>,
    /// The environment it is for (required unless the role is admin).
    pub environment: Option<String>,
}

/// A token as listed: never the token itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenInfo {
    /// The token's id (what `token revoke` takes).
    pub id: String,
    /// Its first characters, to recognize it by.
    pub prefix: String,
    /// Its role.
    pub role: Role,
    /// Its service; `None` for an unscoped admin token.
    pub service: Option<String>,
    /// Its environment; `None` for an unscoped admin token.
    pub environment: Option<String>,
    /// When it was made (the server's clock).
    pub created_at: DateTime<Utc>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// The reply of `POST /v1/tokens`: the only time the token is shown.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedToken {
    /// The token, shown once; the server keeps only its SHA-256.
    pub token: String,
    /// What `token list` shows of it.
    pub info: TokenInfo,
}

/// The reply of `GET /v1/tokens`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenList {
    /// Every token, oldest first.
    pub tokens: Vec<TokenInfo>,
}

/// What every error reply carries.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorReply {
    /// A stable code: `unauthorized`, `forbidden`, `invalid`, `not_found`,
    /// `method_not_allowed`, `lock_lost`, `too_large`, `no_audit_table`, `foreign_table`,
    /// `corrupt`, `outcome_unknown`, `store`, `database`, `internal`, `timeout`.
    pub code: String,
    /// What went wrong and what to do, for people.
    pub error: String,
}

/// The OpenAPI schemas of the `flamingock-core` types the wire carries as they are
/// ([`AuditEntry`], [`UnitState`], [`AuditState`] and the strategies): mirrors that only
/// describe, so that the core crate needs no OpenAPI dependency. A test below checks that each
/// mirror names exactly the fields the core type serializes.
#[cfg(feature = "openapi")]
#[allow(dead_code)]
mod schema {
    use chrono::{DateTime, Utc};

    /// One state change of a unit, as the audit records it.
    #[derive(utoipa::ToSchema)]
    #[schema(as = AuditState)]
    #[allow(clippy::enum_variant_names)]
    pub(super) enum AuditStateSchema {
        #[schema(rename = "STARTED")]
        Started,
        #[schema(rename = "APPLIED")]
        Applied,
        #[schema(rename = "FAILED")]
        Failed,
        #[schema(rename = "ROLLED_BACK")]
        RolledBack,
        #[schema(rename = "ROLLBACK_FAILED")]
        RollbackFailed,
        #[schema(rename = "MANUAL_MARKED_AS_APPLIED")]
        ManualMarkedAsApplied,
        #[schema(rename = "MANUAL_MARKED_AS_ROLLED_BACK")]
        ManualMarkedAsRolledBack,
        #[schema(rename = "ROLLBACK_STARTED")]
        RollbackStarted,
    }

    /// How a unit runs.
    #[derive(utoipa::ToSchema)]
    #[schema(as = TxStrategy)]
    pub(super) enum TxStrategySchema {
        #[schema(rename = "TX_SHARED")]
        Shared,
        #[schema(rename = "TX_SEPARATE")]
        Separate,
        #[schema(rename = "NON_TX")]
        NonTransactional,
    }

    /// What the engine does with a unit whose try was interrupted.
    #[derive(utoipa::ToSchema)]
    #[schema(as = RecoveryStrategy)]
    pub(super) enum RecoveryStrategySchema {
        #[schema(rename = "manual_intervention")]
        ManualIntervention,
        #[schema(rename = "always_retry")]
        AlwaysRetry,
    }

    /// One row of the audit log (on append, `id` and `created_at` are the store's and ignored).
    #[derive(utoipa::ToSchema)]
    #[schema(as = AuditEntry)]
    pub(super) struct AuditEntrySchema {
        /// Row id, assigned by the store; `0` before insertion.
        id: i64,
        /// The run (or undo, or fix) that wrote the row.
        execution_id: String,
        /// The unit's id.
        change_id: String,
        /// The unit's author; on a `MANUAL_MARKED_*` row, the person who decided.
        author: String,
        /// The unit's order.
        change_order: String,
        /// The unit's stage.
        stage: String,
        /// The state the row records.
        state: AuditStateSchema,
        /// The database clock at insertion; `null` before insertion.
        created_at: Option<DateTime<Utc>>,
        /// Time spent in the unit's method, on the rows that end a try.
        execution_ms: Option<i64>,
        /// The host of the runner that wrote the row.
        hostname: String,
        /// The runner that wrote the row.
        runner_id: String,
        /// The unit's target system.
        target_system: String,
        /// How the unit runs.
        tx_strategy: TxStrategySchema,
        /// The unit's recovery strategy.
        recovery_strategy: RecoveryStrategySchema,
        /// The application's name.
        app_name: Option<String>,
        /// The application's version.
        app_version: Option<String>,
        /// Where the unit is declared.
        source: String,
        /// The unit's checksum when the row was written.
        checksum: Option<String>,
        /// The error message and its cause chain, one cause per line.
        error: Option<String>,
        /// Everything else, as a JSON object.
        #[schema(value_type = Option<Object>)]
        metadata: Option<serde_json::Value>,
        /// The release the unit ships with (a semver version), if it names one.
        system_version: Option<String>,
    }

    /// The units one run considers.
    #[derive(utoipa::ToSchema)]
    #[schema(as = RunPlan)]
    pub(super) struct RunPlanSchema {
        /// The run (UUID v7).
        #[schema(max_length = 255)]
        execution_id: String,
        /// The runner.
        #[schema(max_length = 255)]
        runner_id: String,
        /// The runner's host.
        #[schema(max_length = 255)]
        hostname: String,
        /// The application's crate name.
        #[schema(max_length = 255)]
        app_name: Option<String>,
        /// The application's crate version.
        #[schema(max_length = 255)]
        app_version: Option<String>,
        /// The selected units, in run order.
        #[schema(max_items = 10000)]
        units: Vec<PlanUnitSchema>,
    }

    /// One unit of a plan.
    #[derive(utoipa::ToSchema)]
    #[schema(as = PlanUnit)]
    pub(super) struct PlanUnitSchema {
        /// The unit's id.
        #[schema(min_length = 1, max_length = 255)]
        change_id: String,
        /// Its order.
        #[schema(min_length = 1, max_length = 255)]
        order: String,
        /// Its author.
        #[schema(max_length = 255)]
        author: String,
        /// Its stage.
        #[schema(max_length = 255)]
        stage: String,
        /// Its target system.
        #[schema(max_length = 255)]
        target_system: String,
        /// How it runs.
        tx_strategy: TxStrategySchema,
        /// What a run does with it after an interrupted try.
        recovery_strategy: RecoveryStrategySchema,
        /// Whether it applies on every run.
        run_always: bool,
        /// Its checksum.
        #[schema(max_length = 255)]
        checksum: String,
        /// The release it ships with, if it names one.
        #[schema(max_length = 255)]
        system_version: Option<String>,
        /// Whether the run's system version range leaves it out.
        out_of_range: bool,
    }

    /// A unit's newest row, as `unit-states` lists it.
    #[derive(utoipa::ToSchema)]
    #[schema(as = UnitState)]
    pub(super) struct UnitStateSchema {
        /// The unit's id.
        change_id: String,
        /// The state its newest row records.
        state: AuditStateSchema,
        /// The run that wrote that row.
        execution_id: String,
        /// When it was written, by the database clock.
        created_at: Option<DateTime<Utc>>,
        /// That row's error, if any.
        error: Option<String>,
        /// The unit's checksum as that row recorded it.
        checksum: Option<String>,
        /// How many times the unit has been tried so far.
        tries: i64,
    }
}

#[cfg(all(test, feature = "openapi"))]
mod tests {
    use std::collections::BTreeSet;

    use flamingock_core::model::{RecoveryStrategy, TxStrategy};
    use utoipa::PartialSchema;

    use super::*;

    /// The property names of a mirror's schema.
    fn schema_fields<T: PartialSchema>() -> BTreeSet<String> {
        let schema = serde_json::to_value(T::schema()).expect("a schema serializes");
        schema["properties"]
            .as_object()
            .expect("an object schema")
            .keys()
            .cloned()
            .collect()
    }

    /// The keys a value serializes with.
    fn serialized_fields(value: &impl Serialize) -> BTreeSet<String> {
        serde_json::to_value(value)
            .expect("serializes")
            .as_object()
            .expect("an object")
            .keys()
            .cloned()
            .collect()
    }

    fn entry() -> AuditEntry {
        AuditEntry {
            id: 1,
            execution_id: "e".to_owned(),
            change_id: "c".to_owned(),
            author: "a".to_owned(),
            change_order: "1".to_owned(),
            stage: "default".to_owned(),
            state: AuditState::Applied,
            created_at: None,
            execution_ms: None,
            hostname: "h".to_owned(),
            runner_id: "r".to_owned(),
            target_system: "default".to_owned(),
            tx_strategy: TxStrategy::Shared,
            recovery_strategy: RecoveryStrategy::ManualIntervention,
            app_name: None,
            app_version: None,
            source: "s".to_owned(),
            checksum: None,
            error: None,
            metadata: None,
            system_version: Some("1.4.0".into()),
        }
    }

    #[test]
    fn the_audit_entry_schema_names_exactly_the_fields_an_entry_serializes() {
        assert_eq!(
            schema_fields::<schema::AuditEntrySchema>(),
            serialized_fields(&entry())
        );
    }

    #[test]
    fn the_unit_state_schema_names_exactly_the_fields_a_unit_state_serializes() {
        let state = UnitState {
            change_id: "c".to_owned(),
            state: AuditState::Failed,
            execution_id: "e".to_owned(),
            created_at: None,
            error: None,
            checksum: None,
            tries: 1,
        };
        assert_eq!(
            schema_fields::<schema::UnitStateSchema>(),
            serialized_fields(&state)
        );
    }

    #[test]
    fn the_plan_schemas_name_exactly_the_fields_a_plan_serializes() {
        use flamingock_core::run_plan::PlanUnit;
        let unit = PlanUnit {
            change_id: "c".to_owned(),
            order: "1".to_owned(),
            author: "a".to_owned(),
            stage: "default".to_owned(),
            target_system: "default".to_owned(),
            tx_strategy: TxStrategy::NonTransactional,
            recovery_strategy: RecoveryStrategy::ManualIntervention,
            run_always: false,
            checksum: "x".to_owned(),
            system_version: None,
            out_of_range: false,
        };
        let plan = RunPlan {
            execution_id: "e".to_owned(),
            runner_id: "r".to_owned(),
            hostname: "h".to_owned(),
            app_name: None,
            app_version: None,
            units: vec![unit.clone()],
        };
        assert_eq!(
            schema_fields::<schema::PlanUnitSchema>(),
            serialized_fields(&unit)
        );
        assert_eq!(
            schema_fields::<schema::RunPlanSchema>(),
            serialized_fields(&plan)
        );
    }

    /// The enum mirrors list exactly the names serde writes.
    #[test]
    fn the_enum_schemas_list_exactly_the_names_serde_writes() {
        fn names<T: PartialSchema>() -> BTreeSet<String> {
            let schema = serde_json::to_value(T::schema()).expect("a schema serializes");
            schema["enum"]
                .as_array()
                .expect("an enum schema")
                .iter()
                .map(|v| v.as_str().expect("a name").to_owned())
                .collect()
        }
        fn serialized<T: Serialize>(all: &[T]) -> BTreeSet<String> {
            all.iter()
                .map(|v| {
                    serde_json::to_value(v)
                        .expect("serializes")
                        .as_str()
                        .expect("a name")
                        .to_owned()
                })
                .collect()
        }
        assert_eq!(
            names::<schema::AuditStateSchema>(),
            serialized(&AuditState::ALL)
        );
        assert_eq!(
            names::<schema::TxStrategySchema>(),
            serialized(&[
                TxStrategy::Shared,
                TxStrategy::Separate,
                TxStrategy::NonTransactional
            ])
        );
        assert_eq!(
            names::<schema::RecoveryStrategySchema>(),
            serialized(&[
                RecoveryStrategy::ManualIntervention,
                RecoveryStrategy::AlwaysRetry
            ])
        );
    }
}
