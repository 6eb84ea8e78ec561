//! The plans runners report (`PUT /v1/{scope}/plan`): one row per service and environment in
//! [`PLAN_TABLE`], the latest plan replacing the one before, so that the dashboard can tell what
//! is pending before any of it ran.

use chrono::{DateTime, Utc};
use flamingock_client::Scope;
use flamingock_client::wire::PlanReply;
use flamingock_core::run_plan::RunPlan;
use sqlx::Row;

use crate::db::{PLAN_TABLE, ServerDb};
use crate::error::ServerError;

/// The most units a plan may name.
pub const MAX_PLAN_UNITS: usize = 10_000;
/// The longest text a plan's field may hold.
pub const MAX_FIELD_LEN: usize = 255;

/// Refuses a plan the dashboard could not show: too many units, an empty id or order, a field
/// over [`MAX_FIELD_LEN`] characters, two units of one id.
pub fn check(plan: &RunPlan) -> Result<(), ServerError> {
    let invalid = |why: String| Err(ServerError::Invalid(format!("the plan is refused: {why}")));
    if plan.units.len() > MAX_PLAN_UNITS {
        return invalid(format!("it names over {MAX_PLAN_UNITS} units"));
    }
    let run_fields = [
        ("execution_id", plan.execution_id.as_str()),
        ("runner_id", plan.runner_id.as_str()),
        ("hostname", plan.hostname.as_str()),
        ("app_name", plan.app_name.as_deref().unwrap_or("")),
        ("app_version", plan.app_version.as_deref().unwrap_or("")),
    ];
    for (name, value) in run_fields {
        if value.chars().count() > MAX_FIELD_LEN {
            return invalid(format!("{name} is over {MAX_FIELD_LEN} characters"));
        }
    }
    let mut ids = std::collections::HashSet::new();
    for unit in &plan.units {
        if unit.change_id.trim().is_empty() || unit.order.trim().is_empty() {
            return invalid("a unit has an empty id or order".to_owned());
        }
        let fields = [
            ("change_id", unit.change_id.as_str()),
            ("order", unit.order.as_str()),
            ("author", unit.author.as_str()),
            ("stage", unit.stage.as_str()),
            ("target_system", unit.target_system.as_str()),
            ("checksum", unit.checksum.as_str()),
            (
                "system_version",
                unit.system_version.as_deref().unwrap_or(""),
            ),
        ];
        for (name, value) in fields {
            if value.chars().count() > MAX_FIELD_LEN {
                return invalid(format!(
                    "the {name} of a unit is over {MAX_FIELD_LEN} characters"
                ));
            }
        }
        if !ids.insert(unit.change_id.as_str()) {
            return invalid(format!("it names unit {:?} twice", unit.change_id));
        }
    }
    Ok(())
}

/// Keeps `plan` as the latest of `scope`, replacing the one before.
pub async fn record(db: &ServerDb, scope: &Scope, plan: &RunPlan) -> Result<(), ServerError> {
    let text = serde_json::to_string(plan)
        .map_err(|e| ServerError::Internal(format!("a plan did not serialize: {e}")))?;
    let upsert = format!(
        "INSERT INTO {PLAN_TABLE} (service, environment, plan, hostname, reported_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (service, environment) DO UPDATE SET plan = excluded.plan, hostname = excluded.hostname, reported_at = excluded.reported_at"
    );
    let reported_at = Utc::now().to_rfc3339();
    let values = [
        Some(scope.service()),
        Some(scope.environment()),
        Some(text.as_str()),
        Some(plan.hostname.as_str()),
        Some(reported_at.as_str()),
    ];
    db.execute(&upsert, &values, "recording a plan").await?;
    Ok(())
}

fn decode<R: Row>(row: &R) -> Result<(Scope, PlanReply), ServerError>
where
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    &'static str: sqlx::ColumnIndex<R>,
{
    let get = |column: &'static str| -> Result<String, ServerError> {
        row.try_get::<String, _>(column)
            .map_err(ServerError::database("reading the plan table"))
    };
    let corrupt = |what: String| ServerError::Internal(format!("the plan table holds {what}"));
    let scope = Scope::new(&get("service")?, &get("environment")?)
        .map_err(|e| corrupt(format!("a row of no valid scope: {e}")))?;
    let plan: RunPlan = serde_json::from_str(&get("plan")?)
        .map_err(|e| corrupt(format!("an unreadable plan of {scope}: {e}")))?;
    let reported_at = DateTime::parse_from_rfc3339(&get("reported_at")?)
        .map_err(|_| corrupt(format!("an unreadable time for {scope}")))?
        .with_timezone(&Utc);
    Ok((
        scope,
        PlanReply {
            plan,
            reported_at,
            hostname: get("hostname")?,
        },
    ))
}

/// The latest plan of `scope`, if a runner reported one.
pub async fn latest(db: &ServerDb, scope: &Scope) -> Result<Option<PlanReply>, ServerError> {
    let select = format!(
        "SELECT service, environment, plan, hostname, reported_at FROM {PLAN_TABLE} WHERE service = $1 AND environment = $2"
    );
    let action = ServerError::database("reading a plan");
    let (service, environment) = (scope.service().to_owned(), scope.environment().to_owned());
    let row = match db {
        ServerDb::Sqlite(pool) => sqlx::query(sqlx::AssertSqlSafe(select))
            .bind(service)
            .bind(environment)
            .fetch_optional(pool)
            .await
            .map_err(action)?
            .as_ref()
            .map(decode)
            .transpose()?,
        ServerDb::Postgres(pool) => sqlx::query(sqlx::AssertSqlSafe(select))
            .bind(service)
            .bind(environment)
            .fetch_optional(pool)
            .await
            .map_err(action)?
            .as_ref()
            .map(decode)
            .transpose()?,
    };
    Ok(row.map(|(_, reply)| reply))
}

/// The latest plan of every scope that reported one.
pub async fn all(db: &ServerDb) -> Result<Vec<(Scope, PlanReply)>, ServerError> {
    let select = format!(
        "SELECT service, environment, plan, hostname, reported_at FROM {PLAN_TABLE} ORDER BY service, environment"
    );
    let action = ServerError::database("reading the plans");
    match db {
        ServerDb::Sqlite(pool) => sqlx::query(sqlx::AssertSqlSafe(select))
            .fetch_all(pool)
            .await
            .map_err(action)?
            .iter()
            .map(decode)
            .collect(),
        ServerDb::Postgres(pool) => sqlx::query(sqlx::AssertSqlSafe(select))
            .fetch_all(pool)
            .await
            .map_err(action)?
            .iter()
            .map(decode)
            .collect(),
    }
}
