//! The `/v1` JSON API (shapes in [`flamingock_client::wire`]): one router built from small
//! handlers, the caller as an extractor, every handler checking role and scope before it
//! touches the store, limits and timeouts as layers.

use std::time::Duration;

use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use flamingock_client::Scope;
use flamingock_client::wire::{
    AcquireReply, AcquireRequest, AppendReply, AppendRequest, CreateTokenRequest, CreatedToken,
    EntriesReply, ErrorReply, ExtendReply, ExtendRequest, HistoryRequest, LockReply, NowReply,
    PlanReply, PlanRequest, REQUEST_ID_KEY, ReleaseRequest, Role, TokenInfo, TokenList,
    UnitStatesReply,
};
use flamingock_core::history::HistoryQuery;
use flamingock_core::lock::{Acquisition, DistributedLock, Fence};
use flamingock_core::{AuditState, StoreError};
use serde::Deserialize;
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::db::ServerDb;
use crate::error::ServerError;
use crate::plans;
use crate::tokens::{self, Caller};

/// The largest request body the server reads (an audit row with a long error fits many times).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// How long one request may take before the server answers `503`.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest lease a runner may ask for.
const MAX_LEASE_MS: u64 = 24 * 60 * 60 * 1000;
/// The shortest: a lease that ends before the store has read it back can never be held (the
/// store reports it as changing under it), so a runner asks for at least a second.
const MIN_LEASE_MS: u64 = 1000;
/// The longest lock key.
const MAX_LOCK_KEY_LEN: usize = 200;

/// What every handler shares: the database, nothing else.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The server's database.
    pub db: ServerDb,
}

/// The API's OpenAPI document, derived from the handlers and the wire types (served at
/// `/v1/openapi.json`).
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "Flamingock server", description = "The audit store and lock of many services and environments"),
    paths(now, initialize, unit_states, entries, history, append, record_plan, read_plan, read_lock, force_release, acquire, extend, release, list_tokens, create_token, revoke_token),
    modifiers(&BearerAuth, &CommonErrors)
)]
pub struct ApiDoc;

/// Documents, on every operation, the error replies any request may get: a refused body or name
/// (`400`), no or a bad token (`401`), a token out of its role or scope (`403`), nothing there
/// (`404`), a body over [`MAX_BODY_BYTES`] (`413`), and the store failing (`500`, `503`), each
/// an [`ErrorReply`].
struct CommonErrors;

impl utoipa::Modify for CommonErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::ResponseBuilder;
        use utoipa::openapi::content::ContentBuilder;
        use utoipa::openapi::schema::Ref;
        let common = [
            ("400", "A body or name the server refuses"),
            ("401", "No token, or an unknown or revoked one"),
            ("403", "The token is out of its role or scope"),
            ("404", "No audit table yet, or nothing of that name"),
            ("413", "The body is over the size limit"),
            ("500", "The store failed or holds a row it cannot read"),
            (
                "503",
                "The database is unreachable, or the request took too long",
            ),
        ];
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.delete,
                &mut item.put,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                for (status, description) in common {
                    operation
                        .responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| {
                            ResponseBuilder::new()
                                .description(description)
                                .content(
                                    "application/json",
                                    ContentBuilder::new()
                                        .schema(Some(Ref::from_schema_name("ErrorReply")))
                                        .build(),
                                )
                                .build()
                                .into()
                        });
                }
            }
        }
    }
}

/// A JSON body whose refusal (not JSON, wrong shape, too large, wrong content type) is an
/// [`ErrorReply`] like every other error, not axum's plain-text one.
struct Body<T>(T);

impl<T, S> axum::extract::FromRequest<S> for Body<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ServerError;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, ServerError> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(Body(value)),
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(
                ServerError::TooLarge(format!("the body is over {MAX_BODY_BYTES} bytes")),
            ),
            Err(rejection) => Err(ServerError::Invalid(format!(
                "the body is not the JSON this endpoint takes: {}",
                rejection.body_text()
            ))),
        }
    }
}

/// Declares the bearer token every endpoint takes.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(<ApiDoc as utoipa::OpenApi>::openapi())
}

/// The router of the whole API.
pub fn router(state: AppState) -> Router {
    router_with_timeout(state, REQUEST_TIMEOUT)
}

/// The router of the whole API, a request cut short with `503` after `timeout` (tests use a
/// short one; [`router`] uses [`REQUEST_TIMEOUT`]). Every error reply, a layer's too, is an
/// [`ErrorReply`] (see [`json_errors`](crate::error::json_errors)).
pub fn router_with_timeout(state: AppState, timeout: Duration) -> Router {
    let scope = "/v1/services/{service}/environments/{environment}";
    Router::new()
        .route("/v1/now", get(now))
        .route("/v1/openapi.json", get(openapi))
        .route(&format!("{scope}/initialize"), post(initialize))
        .route(&format!("{scope}/unit-states"), get(unit_states))
        .route(&format!("{scope}/entries"), get(entries).post(append))
        .route(&format!("{scope}/history"), post(history))
        .route(&format!("{scope}/plan"), put(record_plan).get(read_plan))
        .route(
            &format!("{scope}/locks/{{key}}"),
            get(read_lock).delete(force_release),
        )
        .route(&format!("{scope}/locks/{{key}}/acquire"), post(acquire))
        .route(&format!("{scope}/locks/{{key}}/extend"), post(extend))
        .route(&format!("{scope}/locks/{{key}}/release"), post(release))
        .route("/v1/tokens", get(list_tokens).post(create_token))
        .route("/v1/tokens/{id}/revoke", post(revoke_token))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(crate::limits::limit_body))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            timeout,
        ))
        // Outside the limit and the timeout, so that their replies become `ErrorReply`s too.
        .layer(axum::middleware::map_response(crate::error::json_errors))
        .layer(TraceLayer::new_for_http())
        // Outermost: the trace layer (and anything else) sees the token only as "Sensitive".
        .layer(SetSensitiveRequestHeadersLayer::new([AUTHORIZATION]))
        .with_state(state)
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ServerError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ServerError> {
        let header = parts.headers.get(AUTHORIZATION).ok_or_else(|| {
            ServerError::Unauthorized(
                "no token: send `Authorization: Bearer <token>` (an admin makes one with `flamingock-server token create`)".to_owned(),
            )
        })?;
        let token = header
            .to_str()
            .ok()
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(|| {
                ServerError::Unauthorized(
                    "the Authorization header is not `Bearer <token>`".to_owned(),
                )
            })?;
        tokens::authenticate(&state.db, token).await
    }
}

/// The scope a path names, checked.
fn scope_of(service: &str, environment: &str) -> Result<Scope, ServerError> {
    Scope::new(service, environment).map_err(|error| ServerError::Invalid(error.to_string()))
}

/// Refuses `caller` unless its role is among `roles` (admin always is) and its scope covers
/// `scope`.
fn allow(caller: &Caller, scope: &Scope, roles: &[Role], what: &str) -> Result<(), ServerError> {
    if !caller.covers(scope) {
        let own = caller
            .scope
            .as_ref()
            .map_or_else(|| "every scope".to_owned(), ToString::to_string);
        return Err(ServerError::Forbidden(format!(
            "token {} is for {own}, not {scope}",
            caller.token_id
        )));
    }
    if caller.role != Role::Admin && !roles.contains(&caller.role) {
        let roles: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        return Err(ServerError::Forbidden(format!(
            "token {} has role {}, and {what} takes {} or admin",
            caller.token_id,
            caller.role,
            roles.join(", ")
        )));
    }
    Ok(())
}

const READERS: &[Role] = &[Role::Reader, Role::Runner, Role::Operator];
const LOCKERS: &[Role] = &[Role::Runner, Role::Operator];

async fn not_found() -> ServerError {
    ServerError::NotFound("no such endpoint; the API is under /v1".to_owned())
}

#[utoipa::path(get, path = "/v1/now", tag = "clock", responses((status = 200, body = NowReply), (status = 401, description = "No token, or an unknown or revoked one", body = ErrorReply), (status = 403, description = "The token is out of its role or scope", body = ErrorReply)), security(("bearer" = [])))]
async fn now(
    State(state): State<AppState>,
    _caller: Caller,
) -> Result<Json<NowReply>, ServerError> {
    Ok(Json(NowReply {
        now: state.db.now().await?,
    }))
}

/// The body of `POST initialize`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(default)]
struct InitializeRequest {
    /// Check the tables, create nothing (what a reader may do).
    read_only: bool,
}

#[utoipa::path(post, path = "/v1/services/{service}/environments/{environment}/initialize", tag = "audit", params(("service" = String, Path, description = "The service: words of a-z and 0-9 joined by single hyphens", pattern = "^[a-z0-9]+(-[a-z0-9]+)*$", max_length = 30), ("environment" = String, Path, description = "The environment: words of a-z and 0-9 joined by single hyphens", pattern = "^[a-z0-9]+(-[a-z0-9]+)*$", max_length = 20)), request_body = InitializeRequest, responses((status = 204, description = "The tables are there"), (status = 404, description = "Read-only: no audit table yet", body = ErrorReply), (status = 401, description = "No token, or an unknown or revoked one", body = ErrorReply), (status = 403, description = "The token is out of its role or scope", body = ErrorReply)), security(("bearer" = [])))]
async fn initialize(
    State(state): State<AppState>,
    caller: Caller,
    Path((service, environment)): Path<(String, String)>,
    Body(request): Body<InitializeRequest>,
) -> Result<StatusCode, ServerError> {
    let scope = scope_of(&service, &environment)?;
    if request.read_only {
        allow(&caller, &scope, READERS, "checking the audit store")?;
    } else {
        allow(
            &caller,
            &scope,
            LOCKERS,
            "opening the audit store to write (what runs, fixes and lock releases do first; a fix takes an operator)",
        )?;
    }
    state
        .db
        .store(&scope, request.read_only)?
        .initialize()
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/v1/services/{service}/environments/{environment}/unit-states", tag = "audit", params(("service" = String, Path, description = "The service: words of a-z and 0-9 joined by single hyphens", pattern = "^[a-z0-9]+(-[a-z0-9]+)*$", max_length = 30), ("environment" = String, Path, description = "The environment: words of a-z and 0-9 joined by single hyphens", pattern = "^[a-z0-9]+(-[a-z0-9]+)*$", max_length = 20)), responses((status = 200, body = UnitStatesReply), (status = 404, body = ErrorReply), (status = 401, description = "No token, or an unknown or revoked one", body = ErrorReply), (status = 403, description = "The token is out of its role or scope", body = ErrorReply)), security(("bearer" = [])))]
async fn unit_states(
    State(state): State<AppState>,
    caller: Caller,
    Path((service, environment)): Path<(String, String)>,
) -> Result<Json<UnitStatesReply>, ServerError> {
    let scope = scope_of(&service, &environment)?;
    allow(&caller, &scope, READERS, "reading unit states")?;
    let store = state.db.store(&scope, true)?;
    let states = match store.unit_states().await {
        Ok(states) => states,
        Err(error) => return Err(explain(store.as_ref(), error).await),
    };
    let mut units: Vec<_> = states.into_values().collect();
    units.sort_by(|a, b| a.change_id.cmp(&b.change_id));
    Ok(Json(UnitStatesReply { units }))
}

#[utoipa::path(get, path = "/v1/services/{service}/environments/{environment}/entries", tag = "audit", params(("service" = String, Path, description = "The service: words of a-z and 0-9 joined by single hyphens", pattern = "^[a-z0-9]+(-[a-z0-9]+)*$", max_length = 30), ("environment" = String, Path, description = "The environment: words of a-z and 0-9 joined by single hyphens", pattern = "^[a-z0-9]+(-[a-z0-9]+)*$", max_length = 20)), responses((status = 200, body = EntriesReply), (status = 404, body = ErrorReply), (status = 401, description = "No token, or an unknown or revoked one", body = ErrorReply), (status = 403, description = "The token is out of its role or scope", body = ErrorReply)), security(("bearer" = [])))]
async fn entries(
    State(state): State<AppState>,
    caller: Caller,
    Path((service, environment)): Path<(String, String)>,
) -> Result<Json<EntriesReply>, ServerError> {
    let scope = scope_of(&service, &environment)?;
    allow(&caller, &scope, READERS, "reading the audit log")?;
    let store = state.db.store(&scope, true)?;
    let entries = match store.entries().await {
        Ok(entries) => entries,
        Err(error) => return Err(explain(store.as_ref(), error).await),
    };
    Ok(Json(EntriesReply { entries }))
}

#[utoipa::path(post, path = "/v1/services/{service}/environments/{environment}/history", tag = "audit", params(("service" = String, Path, description = "The service: words of a-z and 0-9 joined by single hyphens", pattern = "^[a-z0-9]+(-[a-z0-9]+)*$", max_length = 30), ("environment" = String, Path, description = "The environment: words of a-z and 0-9 joined by single hyphens", pattern = "^[a-z0-9]+(-[a-z0-9]+)*$", max_length = 20)), request_body = HistoryRequest, responses((status = 200, body = EntriesReply), (status = 404, body = ErrorReply), (status = 401, description = "No token, or an unknown or revoked one", body = ErrorReply), (status = 403, description = "The token is out of its role or scope", body = ErrorReply)), security(("bearer" = [])))]
async fn history(
    State(state): State<AppState>,
    caller: Caller,
    Path((service, environment)): Path<(String, String)>,
    Body(request): Body<HistoryRequest>,
) -> Result<Json<EntriesReply>, ServerError> {
    let scope = scope_of(&service, &environment)?;
    allow(&caller, &scope, READERS, "reading the history")?;
    let query = HistoryQuery::from(request);
    let store = state.db.store(&scope, true)?;
    let entries = match store.history(&query).await {
        Ok(entries) => entries,
        Err(error) => return Err(explain(store.as_ref(), error).await),
    };
    Ok(Json(EntriesReply { entries }))
}

#[utoipa::path(post, path = "/v1/services/{service}/environments/{environment}/entries", tag = "audit", params(("service" = String, Path, description = "The service: words of a-z and 0-9 joined by single hyphens", pattern = "^[a-z0-9]+(-[a-z0-9]+)*$", max_length = 30), ("environment" = String, Path, description = "The environment: words of a-z and 0-9 joined by single hyphens", pattern = "^[a-z0-9]+(-[a-z0-9]+)*$", max_length = 20)), request_body = AppendRequest, responses((status = 200, body = AppendReply), (status = 409, description = "The fence's lease is gone", body = ErrorReply), (status = 401, description = "No token, or an unknown or revoked one", body = ErrorReply), (status = 403, description = "The token is out of its role or scope", body = ErrorReply)), security(("bearer" = [])))]
async fn append(
    State(state): State<AppState>,
    caller: Caller,
    Path((service, environment)): Path<(String, String)>,
    Body(request): Body<AppendRequest>,
) -> Result<Json<AppendReply>, ServerError> {
    let scope = scope_of(&service, &environment)?;
    let manual = matches!(
        request.entry.state,
        AuditState::ManualMarkedAsApplied | AuditState::ManualMarkedAsRolledBack
    );
    if manual {
        allow(&caller, &scope, &[Role::Operator], "recording a fix")?;
    } else {
        allow(&caller, &scope, &[Role::Runner], "recording a run's rows")?;
    }
    let request_id = request.request_id.trim();
    if request_id.is_empty() || request_id.len() > 100 {
        return Err(ServerError::Invalid(
            "request_id must name the row: 1 to 100 characters (a UUID)".to_owned(),
        ));
    }
    let mut entry = request.entry;
    let store = state.db.store(&scope, false)?;
    let guard = state.db.guard_append(&scope, request_id).await?;
    let written = append_named(store.as_ref(), &mut entry, request_id, request.fence).await;
    guard.release().await;
    let written = match written {
        Ok(written) => written,
        // On a scope never initialized: `no_audit_table`, not the failed query.
        Err(ServerError::Store(error)) => return Err(explain_lock(&state.db, &scope, error).await),
        Err(other) => return Err(other),
    };
    Ok(Json(AppendReply { written }))
}

#[utoipa::path(put, path = "/v1/services/{service}/environments/{environment}/plan", tag = "plan", params(("service" = String, Path, description = "The service: words of a-z and 0-9 joined by single hyphens", pattern = "^[a-z0-9]+(-[a-z0-9]+)*$", max_length = 30), ("environment" = String, Path, description = "The environment: words of a-z and 0-9 joined by single hyphens", pattern = "^[a-z0-9]+(-[a-z0-9]+)*$", max_length = 20)), request_body = PlanRequest, responses((status = 204, description = "The plan is the scope's latest"), (status = 400, description = "A plan the server refuses", body = ErrorReply), (status = 401, description = "No token, or an unknown or revoked one", body = ErrorReply), (status = 403, description = "The token is out of its role or scope", body = ErrorReply)), security(("bearer" = [])))]
async fn record_plan(
    State(state): State<AppState>,
    caller: Caller,
    Path((service, environment)): Path<(String, String)>,
    Body(request): Body<PlanRequest>,
) -> Result<StatusCode, ServerError> {
    let scope = scope_of(&service, &environment)?;
    allow(&caller, &scope, &[Role::Runner], "reporting a run's plan")?;
    plans::check(&request.plan)?;
    plans::record(&state.db, &scope, &request.plan).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/v1/services/{service}/environments/{environment}/plan", tag = "plan", params(("service" = String, Path, description = "The service: words of a-z and 0-9 joined by single hyphens", pattern = "^[a-z0-9]+(-[a-z0-9]+)*$", max_length = 30), ("environment" = String, Path, description = "The environment: words of a-z and 0-9 joined by single hyphens", pattern = "^[a-z0-9]+(-[a-z0-9]+)*$", max_length = 20)), responses((status = 200, body = PlanReply), (status = 404, description = "No runner reported a plan yet", body = ErrorReply), (status = 401, description = "No token, or an unknown or revoked one", body = ErrorReply), (status = 403, description = "The token is out of its role or scope", body = ErrorReply)), security(("bearer" = [])))]
async fn read_plan(
    State(state): State<AppState>,
    caller: Caller,
    Path((service, environment)): Path<(String, String)>,
) -> Result<Json<PlanReply>, ServerError> {
    let scope = scope_of(&service, &environment)?;
    allow(&caller, &scope, READERS, "reading the plan")?;
    plans::latest(&state.db, &scope)
        .await?
        .map(Json)
        .ok_or_else(|| {
            ServerError::NotFound(format!(
                "no runner of {scope} has reported a plan yet (runs report one as they start)"
            ))
        })
}

/// Appends `entry` under its name `request_id`, unless a row of that name is there already
/// (`Ok(false)`). The caller holds the name's [`AppendGuard`](crate::db::AppendGuard).
async fn append_named(
    store: &dyn flamingock_core::AuditStore,
    entry: &mut flamingock_core::AuditEntry,
    request_id: &str,
    fence: Option<flamingock_client::wire::WireFence>,
) -> Result<bool, ServerError> {
    // A retry of an append whose reply was lost: the row is there under its name.
    let earlier = store
        .history(
            &HistoryQuery::new()
                .change(entry.change_id.clone())
                .execution(entry.execution_id.clone()),
        )
        .await?;
    if earlier
        .iter()
        .any(|row| row.metadata_str(REQUEST_ID_KEY) == Some(request_id))
    {
        return Ok(false);
    }
    let metadata = entry
        .metadata
        .get_or_insert_with(|| serde_json::Value::Object(Default::default()));
    let Some(object) = metadata.as_object_mut() else {
        return Err(ServerError::Invalid(
            "the entry's metadata must be a JSON object".to_owned(),
        ));
    };
    object.insert(REQUEST_ID_KEY.to_owned(), request_id.into());
    let fence = fence.map(Fence::from);
    store.append(entry, fence.as_ref()).await?;
    Ok(true)
}

/// A read's failure: `no_audit_table` when nothing ran for the scope yet (the engine then
/// initializes; a reader learns there is nothing), the error itself otherwise.
async fn explain(store: &dyn flamingock_core::AuditStore, error: StoreError) -> ServerError {
    match store.initialize().await {
        Err(missing @ StoreError::NoAuditTable { .. }) => missing.into(),
        _ => error.into(),
    }
}

/// A lock operation's or an append's failure: `no_audit_table` when the scope was never
/// initialized (checked on a read-only store, so that explaining creates nothing), the error
/// itself otherwise.
async fn explain_lock(db: &ServerDb, scope: &Scope, error: StoreError) -> ServerError {
    match db.store(scope, true) {
        Ok(store) => explain(store.as_ref(), error).await,
        Err(_) => error.into(),
    }
}

/// The lock of a store, which every SQL store has.
fn lock_of(store: &dyn flamingock_core::AuditStore) -> Result<&dyn DistributedLock, ServerError> {
    store
        .lock()
        .ok_or_else(|| ServerError::Internal("the audit store has no lock".to_owned()))
}

fn check_key(key: &str) -> Result<(), ServerError> {
    if key.is_empty() || key.len() > MAX_LOCK_KEY_LEN {
        return Err(ServerError::Invalid(format!(
            "a lock key is 1 to {MAX_LOCK_KEY_LEN} bytes"
        )));
    }
    Ok(())
}

fn lease(lease_ms: u64) -> Result<Duration, ServerError> {
    if !(MIN_LEASE_MS..=MAX_LEASE_MS).contains(&lease_ms) {
        return Err(ServerError::Invalid(format!(
            "lease_ms must be between {MIN_LEASE_MS} (a second) and {MAX_LEASE_MS} (a day)"
        )));
    }
    Ok(Duration::from_millis(lease_ms))
}

fn check_owner(owner: &str) -> Result<(), ServerError> {
    if owner.is_empty() || owner.len() > MAX_LOCK_KEY_LEN {
        return Err(ServerError::Invalid(format!(
            "owner must be 1 to {MAX_LOCK_KEY_LEN} bytes (the runner id)"
        )));
    }
    Ok(())
}

#[utoipa::path(get, path = "/v1/services/{service}/environments/{environment}/locks/{key}", tag = "lock", params(("service" = String, Path, description = "The service: words of a-z and 0-9 joined by single hyphens", pattern = "^[a-z0-9]+(-[a-z0-9]+)*$", max_length = 30), ("environment" = String, Path, description = "The environment: words of a-z and 0-9 joined by single hyphens", pattern = "^[a-z0-9]+(-[a-z0-9]+)*$", max_length = 20), ("key" = String, Path, description = "The lock key (1 to 200 bytes)", min_length = 1, max_length = 200)), responses((status = 200, body = LockReply), (status = 401, description = "No token, or an unknown or revoked one", body = ErrorReply), (status = 403, description = "The token is out of its role or scope", body = ErrorReply)), security(("bearer" = [])))]
async fn read_lock(
    State(state): State<AppState>,
    caller: Caller,
    Path((service, environment, key)): Path<(String, String, String)>,
) -> Result<Json<LockReply>, ServerError> {
    let scope = scope_of(&service, &environment)?;
    allow(&caller, &scope, READERS, "reading the lock")?;
    check_key(&key)?;
    let store = state.db.store(&scope, true)?;
    let lock = match lock_of(store.as_ref())?.read(&key).await {
        Ok(lock) => lock,
        Err(error) => return Err(explain_lock(&state.db, &scope, error).await),
    };
    Ok(Json(LockReply {
        lock: lock.map(Into::into),
    }))
}

#[utoipa::path(delete, path = "/v1/services/{service}/environments/{environment}/locks/{key}", tag = "lock", params(("service" = String, Path, description = "The service: words of a-z and 0-9 joined by single hyphens", pattern = "^[a-z0-9]+(-[a-z0-9]+)*$", max_length = 30), ("environment" = String, Path, description = "The environment: words of a-z and 0-9 joined by single hyphens", pattern = "^[a-z0-9]+(-[a-z0-9]+)*$", max_length = 20), ("key" = String, Path, description = "The lock key (1 to 200 bytes)", min_length = 1, max_length = 200)), responses((status = 200, body = LockReply), (status = 401, description = "No token, or an unknown or revoked one", body = ErrorReply), (status = 403, description = "The token is out of its role or scope", body = ErrorReply)), security(("bearer" = [])))]
async fn force_release(
    State(state): State<AppState>,
    caller: Caller,
    Path((service, environment, key)): Path<(String, String, String)>,
) -> Result<Json<LockReply>, ServerError> {
    let scope = scope_of(&service, &environment)?;
    allow(
        &caller,
        &scope,
        &[Role::Operator],
        "force-releasing the lock",
    )?;
    check_key(&key)?;
    let store = state.db.store(&scope, false)?;
    let lock = match lock_of(store.as_ref())?.force_release(&key).await {
        Ok(lock) => lock,
        Err(error) => return Err(explain_lock(&state.db, &scope, error).await),
    };
    Ok(Json(LockReply {
        lock: lock.map(Into::into),
    }))
}

#[utoipa::path(post, path = "/v1/services/{service}/environments/{environment}/locks/{key}/acquire", tag = "lock", params(("service" = String, Path, description = "The service: words of a-z and 0-9 joined by single hyphens", pattern = "^[a-z0-9]+(-[a-z0-9]+)*$", max_length = 30), ("environment" = String, Path, description = "The environment: words of a-z and 0-9 joined by single hyphens", pattern = "^[a-z0-9]+(-[a-z0-9]+)*$", max_length = 20), ("key" = String, Path, description = "The lock key (1 to 200 bytes)", min_length = 1, max_length = 200)), request_body = AcquireRequest, responses((status = 200, body = AcquireReply), (status = 401, description = "No token, or an unknown or revoked one", body = ErrorReply), (status = 403, description = "The token is out of its role or scope", body = ErrorReply)), security(("bearer" = [])))]
async fn acquire(
    State(state): State<AppState>,
    caller: Caller,
    Path((service, environment, key)): Path<(String, String, String)>,
    Body(request): Body<AcquireRequest>,
) -> Result<Json<AcquireReply>, ServerError> {
    let scope = scope_of(&service, &environment)?;
    allow(&caller, &scope, LOCKERS, "taking the lock")?;
    check_key(&key)?;
    check_owner(&request.owner)?;
    let lease = lease(request.lease_ms)?;
    let store = state.db.store(&scope, false)?;
    let fence = Fence {
        key,
        owner: request.owner,
    };
    let acquisition = match lock_of(store.as_ref())?
        .try_acquire(&fence, &request.hostname, lease)
        .await
    {
        Ok(acquisition) => acquisition,
        Err(error) => return Err(explain_lock(&state.db, &scope, error).await),
    };
    let reply = match acquisition {
        Acquisition::Acquired => AcquireReply {
            acquired: true,
            holder: None,
        },
        Acquisition::Held(holder) => AcquireReply {
            acquired: false,
            holder: Some(holder.into()),
        },
    };
    Ok(Json(reply))
}

#[utoipa::path(post, path = "/v1/services/{service}/environments/{environment}/locks/{key}/extend", tag = "lock", params(("service" = String, Path, description = "The service: words of a-z and 0-9 joined by single hyphens", pattern = "^[a-z0-9]+(-[a-z0-9]+)*$", max_length = 30), ("environment" = String, Path, description = "The environment: words of a-z and 0-9 joined by single hyphens", pattern = "^[a-z0-9]+(-[a-z0-9]+)*$", max_length = 20), ("key" = String, Path, description = "The lock key (1 to 200 bytes)", min_length = 1, max_length = 200)), request_body = ExtendRequest, responses((status = 200, body = ExtendReply), (status = 401, description = "No token, or an unknown or revoked one", body = ErrorReply), (status = 403, description = "The token is out of its role or scope", body = ErrorReply)), security(("bearer" = [])))]
async fn extend(
    State(state): State<AppState>,
    caller: Caller,
    Path((service, environment, key)): Path<(String, String, String)>,
    Body(request): Body<ExtendRequest>,
) -> Result<Json<ExtendReply>, ServerError> {
    let scope = scope_of(&service, &environment)?;
    allow(&caller, &scope, LOCKERS, "extending the lock")?;
    check_key(&key)?;
    check_owner(&request.owner)?;
    let lease = lease(request.lease_ms)?;
    let store = state.db.store(&scope, false)?;
    let fence = Fence {
        key,
        owner: request.owner,
    };
    let extended = match lock_of(store.as_ref())?.extend(&fence, lease).await {
        Ok(extended) => extended,
        Err(error) => return Err(explain_lock(&state.db, &scope, error).await),
    };
    Ok(Json(ExtendReply { extended }))
}

#[utoipa::path(post, path = "/v1/services/{service}/environments/{environment}/locks/{key}/release", tag = "lock", params(("service" = String, Path, description = "The service: words of a-z and 0-9 joined by single hyphens", pattern = "^[a-z0-9]+(-[a-z0-9]+)*$", max_length = 30), ("environment" = String, Path, description = "The environment: words of a-z and 0-9 joined by single hyphens", pattern = "^[a-z0-9]+(-[a-z0-9]+)*$", max_length = 20), ("key" = String, Path, description = "The lock key (1 to 200 bytes)", min_length = 1, max_length = 200)), request_body = ReleaseRequest, responses((status = 204, description = "Released, or not ours"), (status = 401, description = "No token, or an unknown or revoked one", body = ErrorReply), (status = 403, description = "The token is out of its role or scope", body = ErrorReply)), security(("bearer" = [])))]
async fn release(
    State(state): State<AppState>,
    caller: Caller,
    Path((service, environment, key)): Path<(String, String, String)>,
    Body(request): Body<ReleaseRequest>,
) -> Result<StatusCode, ServerError> {
    let scope = scope_of(&service, &environment)?;
    allow(&caller, &scope, LOCKERS, "releasing the lock")?;
    check_key(&key)?;
    check_owner(&request.owner)?;
    let store = state.db.store(&scope, false)?;
    let fence = Fence {
        key,
        owner: request.owner,
    };
    if let Err(error) = lock_of(store.as_ref())?.release(&fence).await {
        return Err(explain_lock(&state.db, &scope, error).await);
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Refuses every caller but an admin (scoped or not).
fn admin_only(caller: &Caller, what: &str) -> Result<(), ServerError> {
    if caller.role == Role::Admin {
        Ok(())
    } else {
        Err(ServerError::Forbidden(format!(
            "token {} has role {}, and {what} takes admin",
            caller.token_id, caller.role
        )))
    }
}

#[utoipa::path(get, path = "/v1/tokens", tag = "tokens", responses((status = 200, body = TokenList), (status = 401, description = "No token, or an unknown or revoked one", body = ErrorReply), (status = 403, description = "The token is out of its role or scope", body = ErrorReply)), security(("bearer" = [])))]
async fn list_tokens(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<TokenList>, ServerError> {
    admin_only(&caller, "listing tokens")?;
    let mut tokens = tokens::list(&state.db).await?;
    if let Some(scope) = &caller.scope {
        tokens.retain(|t| {
            t.service.as_deref() == Some(scope.service())
                && t.environment.as_deref() == Some(scope.environment())
        });
    }
    Ok(Json(TokenList { tokens }))
}

#[utoipa::path(post, path = "/v1/tokens", tag = "tokens", request_body = CreateTokenRequest, responses((status = 201, body = CreatedToken), (status = 400, body = ErrorReply), (status = 401, description = "No token, or an unknown or revoked one", body = ErrorReply), (status = 403, description = "The token is out of its role or scope", body = ErrorReply)), security(("bearer" = [])))]
async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    Body(request): Body<CreateTokenRequest>,
) -> Result<(StatusCode, Json<CreatedToken>), ServerError> {
    admin_only(&caller, "creating tokens")?;
    if let Some(own) = &caller.scope {
        // A scoped admin makes tokens of its own scope only.
        let asked = match (&request.service, &request.environment) {
            (Some(s), Some(e)) => Some(scope_of(s, e)?),
            _ => None,
        };
        if asked.as_ref() != Some(own) {
            return Err(ServerError::Forbidden(format!(
                "token {} is an admin of {own} only, and makes tokens of that scope only",
                caller.token_id
            )));
        }
    }
    let created = tokens::create(
        &state.db,
        request.role,
        request.service.as_deref(),
        request.environment.as_deref(),
    )
    .await?;
    tracing::info!(id = %created.info.id, role = %created.info.role, "created a token");
    Ok((StatusCode::CREATED, Json(created)))
}

#[utoipa::path(post, path = "/v1/tokens/{id}/revoke", tag = "tokens", params(("id" = String, Path, description = "The token's id")), responses((status = 200, body = TokenInfo), (status = 404, body = ErrorReply), (status = 401, description = "No token, or an unknown or revoked one", body = ErrorReply), (status = 403, description = "The token is out of its role or scope", body = ErrorReply)), security(("bearer" = [])))]
async fn revoke_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<TokenInfo>, ServerError> {
    admin_only(&caller, "revoking tokens")?;
    if let Some(own) = &caller.scope {
        let target = tokens::list(&state.db)
            .await?
            .into_iter()
            .find(|t| t.id == id);
        let theirs = target.as_ref().is_some_and(|t| {
            t.service.as_deref() == Some(own.service())
                && t.environment.as_deref() == Some(own.environment())
        });
        if !theirs {
            return Err(ServerError::Forbidden(format!(
                "token {} is an admin of {own} only, and revokes tokens of that scope only",
                caller.token_id
            )));
        }
    }
    let info = tokens::revoke(&state.db, &id).await?;
    tracing::info!(id = %info.id, "revoked a token");
    Ok(Json(info))
}
