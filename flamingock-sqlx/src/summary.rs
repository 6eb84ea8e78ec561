//! Generic (above the backends, below the store): the warm start's summary table
//! (docs/architecture.md#the-warm-starts-summary), `<audit table>_summary`, one row per plan
//! digest: the id of the newest audit row it covers, and the states of the plan's units that run
//! always.
//!
//! - **Read** ([`current`]): one statement reads the plan's row and the audit's newest id; the
//!   summary is current only when they are equal.
//! - **Written** ([`record`]) in one transaction that first makes sure no audit insert is in
//!   flight and none can begin before it ends (each backend's `summary` module says how), so that
//!   every row with an id up to the one it covers is committed and read, and every later row has
//!   a greater id. From the plan's earlier row and the rows written since (at most
//!   [`FOLD_LIMIT`] of them), or else from every unit's state, the summary is established with
//!   [`PlanDigest::establish`] / [`PlanDigest::advance`], and upserted only while the writer's
//!   lease is held.

use std::sync::Arc;

use flamingock_core::lock::Fence;
use flamingock_core::model::UnitState;
use flamingock_core::summary::{CurrentSummary, PlanDigest, SummaryWrite};
use flamingock_core::{AuditEntry, StoreError};
use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Pool, Row, Transaction, Type};

use crate::dialect::Dialect;
use crate::identifier::TableName;
use crate::row;
use crate::sql::{TableKind, begin, query_error, sql};

/// How many audit rows since a plan's last summary a new one is advanced over; past that, it is
/// established from every unit's state instead.
pub(crate) const FOLD_LIMIT: i64 = 1000;

/// The summary table, as [`ensure_table`](crate::sql::ensure_table) creates or checks it.
pub(crate) const SUMMARY_TABLE: TableKind = TableKind {
    kind: "summary",
    reading: "reading the summary table's columns",
    creating: "creating the summary table",
    serializing: "taking the lock that serializes summary table creation",
};

/// The columns every summary table has; a table lacking one is not ours.
pub(crate) const SUMMARY_COLUMNS: [&str; 5] = [
    "plan_digest",
    "covers_id",
    "run_always",
    "units",
    "written_at",
];

/// The summary table beside one audit table, and its SQL, built once from validated names.
pub(crate) struct SummaryTable {
    pub(crate) table: TableName,
    pub(crate) create: Arc<str>,
    current: Arc<str>,
    base: Arc<str>,
    after: Arc<str>,
    newest: Arc<str>,
    quiesce: Vec<Arc<str>>,
    lock_whole: Option<Arc<str>>,
    upsert: Arc<str>,
}

impl SummaryTable {
    /// The summary table of `audit` (`<audit>_summary`), whose fenced writes check `lock_table`.
    pub(crate) fn new<DB: Dialect>(
        audit: &TableName,
        lock_table: &str,
    ) -> Result<Self, StoreError> {
        let table = TableName::new(&audit.derived("summary"))?;
        let (name, audit) = (table.as_str(), audit.as_str());
        Ok(Self {
            create: DB::create_summary_table(name).into(),
            current: DB::select_current_summary(name, audit).into(),
            base: DB::select_summary_base(name).into(),
            after: DB::select_entries_after(audit).into(),
            newest: DB::select_newest_id(audit).into(),
            quiesce: DB::quiesce_audit(audit)
                .into_iter()
                .map(Arc::from)
                .collect(),
            lock_whole: DB::lock_whole_audit(audit).map(Arc::from),
            upsert: DB::upsert_summary_fenced(name, lock_table).into(),
            table,
        })
    }
}

/// The run-always states a summary row keeps, or `None` for text that is not ours (the summary is
/// then not used: a start reads every unit's state instead).
fn decode_states(text: &str, table: &TableName) -> Option<Vec<UnitState>> {
    match serde_json::from_str(text) {
        Ok(states) => Some(states),
        Err(error) => {
            tracing::warn!(%error, table = %table, "a summary row cannot be read; it is not used");
            None
        }
    }
}

/// The plan's summary when it is current (see the module's documentation).
pub(crate) async fn current<DB>(
    pool: &Pool<DB>,
    summary: &SummaryTable,
    plan: &PlanDigest,
) -> Result<Option<CurrentSummary>, StoreError>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    &'static str: ColumnIndex<DB::Row>,
    String: Type<DB> + for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB>,
    i64: Type<DB> + for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB>,
{
    const ACTION: &str = "reading the audit's summary";
    let Some(row) = sqlx::query(sql(&summary.current))
        .bind(plan.digest().to_owned())
        .fetch_optional(pool)
        .await
        .map_err(query_error(ACTION))?
    else {
        return Ok(None);
    };
    let covers: i64 = row.try_get("covers_id").map_err(query_error(ACTION))?;
    let newest: Option<i64> = row.try_get("newest").map_err(query_error(ACTION))?;
    if newest != Some(covers) {
        return Ok(None);
    }
    let text: String = row.try_get("run_always").map_err(query_error(ACTION))?;
    Ok(
        decode_states(&text, &summary.table)
            .map(|run_always| CurrentSummary { covers, run_always }),
    )
}

/// Establishes `plan`'s summary from the audit and writes it under `fence`'s lease (see the
/// module's documentation).
pub(crate) async fn record<DB>(
    pool: &Pool<DB>,
    audit: &TableName,
    unit_states: &Arc<str>,
    summary: &SummaryTable,
    plan: &PlanDigest,
    fence: &Fence,
) -> Result<SummaryWrite, StoreError>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    &'static str: ColumnIndex<DB::Row>,
    String: Type<DB> + for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB>,
    i64: Type<DB> + for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB>,
{
    let mut tx = begin(pool).await.map_err(query_error(
        "opening the transaction that writes the audit's summary",
    ))?;
    for statement in &summary.quiesce {
        if let Err(error) = sqlx::raw_sql(sql(statement)).execute(&mut *tx).await {
            if DB::is_lock_timeout(&error) {
                return Ok(SummaryWrite::Busy);
            }
            return Err(query_error("waiting for the audit's writes to end")(error));
        }
    }
    let established = match advance(&mut tx, audit, summary, plan).await {
        Ok(Some(established)) => Ok(established),
        Ok(None) => establish(&mut tx, audit, unit_states, summary, plan).await,
        Err(error) => Err(error),
    };
    let (covers, run_always) = match established {
        Ok(Some(established)) => established,
        Ok(None) => return Ok(SummaryWrite::NotEstablished),
        Err(error) if lock_timeout::<DB>(&error) => return Ok(SummaryWrite::Busy),
        Err(error) => return Err(error),
    };
    let states = serde_json::to_string(&run_always).map_err(|error| StoreError::Query {
        action: "writing the audit's summary",
        source: Box::new(error),
    })?;
    let units = i64::try_from(plan.units().len()).unwrap_or(i64::MAX);
    let written = sqlx::query(sql(&summary.upsert))
        .bind(plan.digest().to_owned())
        .bind(covers)
        .bind(states)
        .bind(units)
        .bind(fence.key.clone())
        .bind(fence.owner.clone())
        .execute(&mut *tx)
        .await
        .map_err(query_error("writing the audit's summary"))?;
    if DB::rows_affected(&written) == 0 {
        if let Err(error) = tx.rollback().await {
            tracing::warn!(%error, "rolling back after losing the lock failed; the connection is discarded");
        }
        return Err(StoreError::LockLost {
            key: fence.key.clone(),
            owner: fence.owner.clone(),
        });
    }
    flamingock_core::failpoint::reached("summary.before_commit");
    // A commit whose reply is lost leaves a summary that is right either way: written or not.
    tx.commit()
        .await
        .map_err(query_error("committing the audit's summary"))?;
    Ok(SummaryWrite::Written { covers })
}

/// Whether `error` is a lock wait that ran out (the audit table stayed busy).
fn lock_timeout<DB: Dialect>(error: &StoreError) -> bool {
    match error {
        StoreError::Query { source, .. } => source
            .downcast_ref::<sqlx::Error>()
            .is_some_and(DB::is_lock_timeout),
        _ => false,
    }
}

/// An established summary: the id of the newest row it covers and the run-always states; `None`
/// when the audit does not show the plan in place.
type Established = Option<(i64, Vec<UnitState>)>;

/// From the plan's last summary and the rows written since; `None` when there is no summary to
/// advance from, or more rows than [`FOLD_LIMIT`] since.
async fn advance<DB>(
    tx: &mut Transaction<'static, DB>,
    audit: &TableName,
    summary: &SummaryTable,
    plan: &PlanDigest,
) -> Result<Option<Established>, StoreError>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    &'static str: ColumnIndex<DB::Row>,
    String: Type<DB> + for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB>,
    i64: Type<DB> + for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB>,
{
    const ACTION: &str = "reading the audit's summary";
    let Some(base) = sqlx::query(sql(&summary.base))
        .bind(plan.digest().to_owned())
        .fetch_optional(&mut **tx)
        .await
        .map_err(query_error(ACTION))?
    else {
        return Ok(None);
    };
    let covers: i64 = base.try_get("covers_id").map_err(query_error(ACTION))?;
    let text: String = base.try_get("run_always").map_err(query_error(ACTION))?;
    let Some(run_always) = decode_states(&text, &summary.table) else {
        return Ok(None);
    };
    let rows = sqlx::query(sql(&summary.after))
        .bind(covers)
        .bind(FOLD_LIMIT + 1)
        .fetch_all(&mut **tx)
        .await
        .map_err(query_error("reading the audit rows since its summary"))?;
    if rows.len() as i64 > FOLD_LIMIT {
        return Ok(None);
    }
    let newer: Vec<AuditEntry> = rows
        .iter()
        .map(|r| row::decode_entry::<DB>(r, audit))
        .collect::<Result<_, _>>()?;
    let covers = newer.last().map_or(covers, |entry| entry.id);
    Ok(Some(
        plan.advance(run_always, &newer)
            .map(|states| (covers, states)),
    ))
}

/// From every unit's state.
async fn establish<DB>(
    tx: &mut Transaction<'static, DB>,
    audit: &TableName,
    unit_states: &Arc<str>,
    summary: &SummaryTable,
    plan: &PlanDigest,
) -> Result<Established, StoreError>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    &'static str: ColumnIndex<DB::Row>,
    String: Type<DB> + for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB>,
    i64: Type<DB> + for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB>,
{
    if let Some(statement) = &summary.lock_whole {
        sqlx::raw_sql(sql(statement))
            .execute(&mut **tx)
            .await
            .map_err(query_error("waiting for the audit's writes to end"))?;
    }
    let states = sqlx::query(sql(unit_states))
        .fetch_all(&mut **tx)
        .await
        .map_err(query_error("reading unit states"))?
        .iter()
        .map(|r| {
            let state = row::decode_unit_state::<DB>(r, audit)?;
            Ok((state.change_id.clone(), state))
        })
        .collect::<Result<_, StoreError>>()?;
    let newest: Option<i64> = sqlx::query(sql(&summary.newest))
        .fetch_one(&mut **tx)
        .await
        .and_then(|row| row.try_get("newest"))
        .map_err(query_error("reading the audit's newest id"))?;
    let Some(newest) = newest else {
        return Ok(None);
    };
    Ok(plan.establish(&states).map(|states| (newest, states)))
}
