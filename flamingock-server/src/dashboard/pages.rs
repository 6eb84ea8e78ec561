//! The pages: the overview of every scope, one scope (its units and history), one run's
//! timeline, one unit (its rows, its error, the fix form) and the fix itself.

use std::time::Duration;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use flamingock_client::Scope;
use flamingock_core::engine::{FixError, FixRequest, Resolution, SeenState};
use flamingock_core::history::HistoryQuery;
use flamingock_core::lock::LockOptions;
use flamingock_core::{AuditEntry, AuditState, Engine, RunOptions};
use serde::Deserialize;

use super::html::{self, Frame, Html, badge, state_class, url_part, when};
use super::view::{HistoryFilter, PAGE_SIZE, PagePosition, ScopeView, UnitLine};
use super::{PageError, Viewer, page_response, redirect};
use crate::api::AppState;
use crate::plans;

/// How long a fix waits for a run holding the scope's lock before the page says so.
const FIX_LOCK_WAIT: Duration = Duration::from_secs(10);

/// The longest name or reason a fix records.
const MAX_FIX_TEXT: usize = 2000;

/// The scope a path names, if the viewer may see it.
fn scope_for(viewer: &Viewer, service: &str, environment: &str) -> Result<Scope, PageError> {
    let scope = Scope::new(service, environment)
        .map_err(|error| PageError::bad_request(error.to_string()))?;
    if !viewer.0.caller.covers(&scope) {
        return Err(PageError::forbidden(format!(
            "you signed in as {}, which does not cover {scope}",
            viewer.label()
        )));
    }
    Ok(scope)
}

/// A scope the server knows, read.
async fn known(state: &AppState, scope: &Scope) -> Result<ScopeView, PageError> {
    ScopeView::load(&state.db, scope).await?.ok_or_else(|| {
        PageError::not_found(format!(
            "this server knows nothing of {scope}: no run has reported to it (check the names)"
        ))
    })
}

/// A full page for `viewer`.
fn respond(viewer: &Viewer, title: &str, body: Html) -> Response {
    let label = viewer.label();
    let frame = Frame {
        title,
        viewer: Some(&label),
        csrf: Some(&viewer.0.csrf),
    };
    page_response(StatusCode::OK, html::page(&frame, &body.into_string()))
}

/// `/dashboard/{service}/{environment}`.
fn scope_href(scope: &Scope) -> String {
    format!(
        "/dashboard/{}/{}",
        url_part(scope.service()),
        url_part(scope.environment())
    )
}

fn unit_href(scope: &Scope, change_id: &str) -> String {
    format!("{}/units/{}", scope_href(scope), url_part(change_id))
}

fn run_href(scope: &Scope, execution_id: &str) -> String {
    format!("{}/runs/{}", scope_href(scope), url_part(execution_id))
}

/// The overview: every scope the viewer may see, with its counts; problems highlighted.
pub async fn overview(
    State(state): State<AppState>,
    viewer: Viewer,
) -> Result<Response, PageError> {
    let mut scopes = state.db.audited_scopes().await?;
    for (scope, _) in plans::all(&state.db).await? {
        if !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    scopes.retain(|scope| viewer.0.caller.covers(scope));
    scopes.sort_by(|a, b| (a.service(), a.environment()).cmp(&(b.service(), b.environment())));
    let mut body = Html::new();
    if scopes.is_empty() {
        body.raw("<p class=\"note\">No service has reported to this server yet. A service's runs report here once its audit store URL points at this server.</p>");
        return Ok(respond(&viewer, "Overview", body));
    }
    body.raw("<table><thead><tr><th>Service</th><th>Environment</th><th>Applied</th><th>Pending</th><th>Blocked</th><th>Failed</th><th>Last change</th><th>Plan reported</th></tr></thead><tbody>");
    for scope in &scopes {
        let Some(view) = ScopeView::load(&state.db, scope).await? else {
            continue;
        };
        let alert = view.blocked() > 0 || view.failed() > 0;
        body.raw(if alert {
            "<tr class=\"alert\">"
        } else {
            "<tr>"
        })
        .raw("<td>")
        .link(&scope_href(scope), scope.service())
        .raw("</td>")
        .cell(scope.environment())
        .raw("<td class=\"num\">")
        .text(&view.applied().to_string())
        .raw("</td><td class=\"num\">")
        .text(
            &view
                .pending()
                .map_or_else(|| "-".to_owned(), |n| n.to_string()),
        )
        .raw("</td>");
        for count in [view.blocked(), view.failed()] {
            body.raw(if count > 0 {
                "<td class=\"num bad-count\">"
            } else {
                "<td class=\"num\">"
            })
            .text(&count.to_string())
            .raw("</td>");
        }
        body.cell(&when(view.last_change()))
            .cell(&when(view.plan.as_ref().map(|p| p.reported_at)))
            .raw("</tr>");
    }
    body.raw("</tbody></table><p class=\"muted\">Pending counts the units of the latest plan a runner reported that a run would apply; \"-\": no plan reported yet. Blocked units need a person (open the unit to record a fix).</p>");
    Ok(respond(&viewer, "Overview", body))
}

/// The state cell of a unit: its badge, or "pending"/"not run".
fn unit_state(body: &mut Html, unit: &UnitLine) {
    match unit.state() {
        Some(state) => badge(body, state_class(Some(state)), state.as_str()),
        None => badge(body, "pending", "NOT RUN"),
    }
    if unit.blocked {
        body.raw(" ");
        badge(body, "bad", "BLOCKED");
    } else if unit.pending {
        body.raw(" ");
        badge(body, "pending", "PENDING");
    }
}

/// One scope: its units, then its history (filtered, paged).
pub async fn scope(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((service, environment)): Path<(String, String)>,
    filter: Result<Query<HistoryFilter>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, PageError> {
    let Query(filter) = filter.map_err(|e| PageError::bad_request(e.body_text()))?;
    let scope = scope_for(&viewer, &service, &environment)?;
    let query = filter.query()?;
    let position = filter.position()?;
    let view = known(&state, &scope).await?;
    let mut body = Html::new();
    if let Some(plan) = &view.plan {
        body.raw("<p class=\"muted\">Latest plan: ")
            .text(&plan.plan.units.len().to_string())
            .raw(" units, reported ")
            .text(&when(Some(plan.reported_at)))
            .raw(" by ")
            .text(&plan.hostname)
            .raw(" (")
            .link(&run_href(&scope, &plan.plan.execution_id), "its run")
            .raw(").</p>");
    } else {
        body.raw("<p class=\"muted\">No runner has reported a plan yet: pending units are not known.</p>");
    }
    body.raw("<h2>Units</h2><table><thead><tr><th>Unit</th><th>Order</th><th>State</th><th>Author</th><th>System version</th><th>Last change</th></tr></thead><tbody>");
    for unit in &view.units {
        body.raw(if unit.blocked || unit.failed() {
            "<tr class=\"alert\">"
        } else {
            "<tr>"
        })
        .raw("<td>")
        .link(&unit_href(&scope, &unit.change_id), &unit.change_id)
        .raw("</td>")
        .cell(&unit.order)
        .raw("<td>");
        unit_state(&mut body, unit);
        body.raw("</td>")
            .cell(&unit.author)
            .cell(unit.system_version.as_deref().unwrap_or("-"))
            .cell(&when(unit.latest.as_ref().and_then(|r| r.created_at)))
            .raw("</tr>");
    }
    body.raw("</tbody></table>");

    body.raw("<h2>History</h2>");
    filter_form(&mut body, &scope, &filter);
    let rows = if view.audited {
        history_page(&state, &scope, query, position).await?
    } else {
        Page::default()
    };
    history_table(&mut body, &scope, &rows.rows);
    let filters = filter.query_string();
    let base = format!(
        "{}?{filters}{}",
        scope_href(&scope),
        if filters.is_empty() { "" } else { "&" }
    );
    body.raw("<nav class=\"pager\">");
    if let (true, Some(first)) = (rows.newer, rows.rows.first()) {
        body.link(&format!("{base}before={}", first.id), "← Newer");
    }
    if let (true, Some(last)) = (rows.older, rows.rows.last()) {
        body.link(&format!("{base}after={}", last.id), "Older →");
    }
    let export = format!(
        "{}/export?{filters}{}",
        scope_href(&scope),
        if filters.is_empty() { "" } else { "&" }
    );
    body.link(&format!("{export}format=csv"), "Export CSV")
        .link(&format!("{export}format=json"), "Export JSON")
        .raw("</nav>");
    let title = format!("{} / {}", scope.service(), scope.environment());
    Ok(respond(&viewer, &title, body))
}

/// One page of history rows, newest first, and whether there are more either way.
#[derive(Default)]
struct Page {
    rows: Vec<AuditEntry>,
    older: bool,
    newer: bool,
}

async fn history_page(
    state: &AppState,
    scope: &Scope,
    query: HistoryQuery,
    position: PagePosition,
) -> Result<Page, PageError> {
    let store = state.db.store(scope, true)?;
    let size = PAGE_SIZE as usize;
    let query = query.limit(PAGE_SIZE + 1);
    Ok(match position {
        PagePosition::Newest | PagePosition::OlderThan(_) => {
            let mut query = query.newest_first();
            if let PagePosition::OlderThan(id) = position {
                query = query.after(id);
            }
            let mut rows = store.history(&query).await?;
            let older = rows.len() > size;
            rows.truncate(size);
            Page {
                rows,
                older,
                newer: position != PagePosition::Newest,
            }
        }
        PagePosition::NewerThan(id) => {
            let mut rows = store.history(&query.after(id)).await?;
            let newer = rows.len() > size;
            rows.truncate(size);
            rows.reverse();
            Page {
                rows,
                older: true,
                newer,
            }
        }
    })
}

fn filter_form(body: &mut Html, scope: &Scope, filter: &HistoryFilter) {
    let value = |v: &Option<String>| v.clone().unwrap_or_default();
    body.raw("<form class=\"filters\" method=\"get\" action=\"")
        .text(&scope_href(scope))
        .raw("\">");
    for (name, label, current, kind) in [
        ("change", "Unit", value(&filter.change), "text"),
        ("author", "Author", value(&filter.author), "text"),
        ("from", "From (UTC)", value(&filter.from), "text"),
        ("to", "To (UTC)", value(&filter.to), "text"),
    ] {
        body.raw("<label>")
            .text(label)
            .raw("<input type=\"")
            .raw(kind)
            .raw("\" name=\"")
            .raw(name)
            .raw("\" value=\"")
            .text(&current)
            .raw("\" placeholder=\"")
            .raw(if matches!(name, "from" | "to") {
                "YYYY-MM-DD"
            } else {
                ""
            })
            .raw("\"></label>");
    }
    let current = value(&filter.state);
    body.raw("<label>State<select name=\"state\"><option value=\"\">any</option>");
    for state in AuditState::ALL {
        body.raw("<option")
            .raw(if current == state.as_str() {
                " selected"
            } else {
                ""
            })
            .raw(">")
            .text(state.as_str())
            .raw("</option>");
    }
    body.raw("</select></label><button type=\"submit\">Filter</button> <a href=\"")
        .text(&scope_href(scope))
        .raw("\">Clear</a></form>");
}

fn history_table(body: &mut Html, scope: &Scope, rows: &[AuditEntry]) {
    if rows.is_empty() {
        body.raw("<p class=\"note\">No rows match.</p>");
        return;
    }
    body.raw("<table><thead><tr><th>#</th><th>When</th><th>Unit</th><th>State</th><th>Author</th><th>Run</th><th>Host</th><th>Error or reason</th></tr></thead><tbody>");
    for row in rows {
        body.raw("<tr>")
            .raw("<td class=\"num\">")
            .text(&row.id.to_string())
            .raw("</td>")
            .cell(&when(row.created_at))
            .raw("<td>")
            .link(&unit_href(scope, &row.change_id), &row.change_id)
            .raw("</td><td>");
        badge(body, state_class(Some(row.state)), row.state.as_str());
        body.raw("</td>")
            .cell(&row.author)
            .raw("<td>")
            .link(
                &run_href(scope, &row.execution_id),
                short(&row.execution_id),
            )
            .raw("</td>")
            .cell(&row.hostname)
            .raw("<td class=\"error\">")
            .text(&detail(row))
            .raw("</td></tr>");
    }
    body.raw("</tbody></table>");
}

/// The error of a row, or for a fix who resolved it and why.
fn detail(row: &AuditEntry) -> String {
    match (&row.error, row.reason()) {
        (Some(error), _) => error.clone(),
        (None, Some(reason)) => format!(
            "fixed by {}: {reason}",
            row.resolved_by().unwrap_or(&row.author)
        ),
        (None, None) => String::new(),
    }
}

/// The first characters of an execution id, enough to tell runs apart on a page.
fn short(execution_id: &str) -> &str {
    execution_id
        .char_indices()
        .nth(13)
        .map_or(execution_id, |(end, _)| &execution_id[..end])
}

/// One run's rows, in time order.
pub async fn run(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((service, environment, execution_id)): Path<(String, String, String)>,
) -> Result<Response, PageError> {
    let scope = scope_for(&viewer, &service, &environment)?;
    let view = known(&state, &scope).await?;
    let rows = if view.audited {
        state
            .db
            .store(&scope, true)?
            .history(&HistoryQuery::new().execution(execution_id.clone()))
            .await?
    } else {
        Vec::new()
    };
    let planned = view
        .plan
        .as_ref()
        .filter(|p| p.plan.execution_id == execution_id);
    if rows.is_empty() && planned.is_none() {
        return Err(PageError::not_found(format!(
            "{scope} has no run {execution_id:?}"
        )));
    }
    let mut body = Html::new();
    body.raw("<p>")
        .link(
            &scope_href(&scope),
            &format!("← {} / {}", scope.service(), scope.environment()),
        )
        .raw("</p><dl><dt>Run</dt><dd>")
        .text(&execution_id)
        .raw("</dd>");
    if let Some(first) = rows.first() {
        body.raw("<dt>Host</dt><dd>")
            .text(&first.hostname)
            .raw("</dd><dt>Runner</dt><dd>")
            .text(&first.runner_id)
            .raw("</dd><dt>Application</dt><dd>")
            .text(&format!(
                "{} {}",
                first.app_name.as_deref().unwrap_or("-"),
                first.app_version.as_deref().unwrap_or("")
            ))
            .raw("</dd>");
    }
    if let Some(plan) = planned {
        body.raw("<dt>Plan</dt><dd>")
            .text(&format!(
                "{} units, reported {}",
                plan.plan.units.len(),
                when(Some(plan.reported_at))
            ))
            .raw("</dd>");
    }
    body.raw("</dl>");
    if rows.is_empty() {
        body.raw("<p class=\"note\">This run reported its plan and recorded no row: everything was applied already, or it stopped before its first unit.</p>");
    } else {
        body.raw("<table><thead><tr><th>When</th><th>Unit</th><th>State</th><th>Took</th><th>Error or reason</th></tr></thead><tbody>");
        for row in &rows {
            body.raw("<tr>").cell(&when(row.created_at)).raw("<td>");
            body.link(&unit_href(&scope, &row.change_id), &row.change_id)
                .raw("</td><td>");
            badge(&mut body, state_class(Some(row.state)), row.state.as_str());
            body.raw("</td>")
                .cell(
                    &row.execution_ms
                        .map_or_else(|| "-".to_owned(), |ms| format!("{ms} ms")),
                )
                .raw("<td class=\"error\">")
                .text(&detail(row))
                .raw("</td></tr>");
        }
        body.raw("</tbody></table>");
    }
    Ok(respond(&viewer, "Run timeline", body))
}

/// The query of a unit page (`fixed`: the state a fix just recorded).
#[derive(Debug, Default, Deserialize)]
pub struct UnitQuery {
    fixed: Option<String>,
}

/// One unit: its state, its error, the fix form, its rows.
pub async fn unit(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((service, environment, change_id)): Path<(String, String, String)>,
    query: Result<Query<UnitQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, PageError> {
    let Query(query) = query.map_err(|e| PageError::bad_request(e.body_text()))?;
    let scope = scope_for(&viewer, &service, &environment)?;
    let view = known(&state, &scope).await?;
    let Some(line) = view.units.iter().find(|u| u.change_id == change_id) else {
        return Err(PageError::not_found(format!(
            "{scope} has no unit {change_id:?}: neither its audit nor its latest plan names it"
        )));
    };
    let rows = if view.audited {
        state
            .db
            .store(&scope, true)?
            .history(
                &HistoryQuery::new()
                    .change(change_id.clone())
                    .newest_first()
                    .limit(500),
            )
            .await?
    } else {
        Vec::new()
    };
    let mut body = Html::new();
    body.raw("<p>")
        .link(
            &scope_href(&scope),
            &format!("← {} / {}", scope.service(), scope.environment()),
        )
        .raw("</p>");
    if let Some(fixed) = query.fixed.as_deref().and_then(AuditState::parse) {
        body.raw("<p class=\"note\">Recorded ")
            .text(fixed.as_str())
            .raw(". It is the unit's newest row below.</p>");
    }
    body.raw("<dl><dt>State</dt><dd>");
    unit_state(&mut body, line);
    body.raw("</dd><dt>Order</dt><dd>")
        .text(&line.order)
        .raw("</dd><dt>Author</dt><dd>")
        .text(&line.author)
        .raw("</dd>");
    if let Some(row) = &line.latest {
        body.raw("<dt>Stage</dt><dd>")
            .text(&row.stage)
            .raw("</dd><dt>Target system</dt><dd>")
            .text(&row.target_system)
            .raw("</dd><dt>Strategy</dt><dd>")
            .text(&format!(
                "{} ({})",
                row.tx_strategy.as_str(),
                row.recovery_strategy.as_str()
            ))
            .raw("</dd><dt>Source</dt><dd>")
            .text(&row.source)
            .raw("</dd>");
    }
    body.raw("<dt>System version</dt><dd>")
        .text(line.system_version.as_deref().unwrap_or("-"))
        .raw("</dd><dt>In the latest plan</dt><dd>")
        .text(match (&view.plan, line.in_plan) {
            (None, _) => "no plan reported yet",
            (Some(_), true) => "yes",
            (Some(_), false) => "no (the code that runs no longer declares it, or selects it out)",
        })
        .raw("</dd></dl>");
    if line.blocked {
        body.raw("<p class=\"problem\">This unit is blocked: runs stop at its stage until a person checks its target and records what they found.</p>");
    }
    if let Some(error) = line.latest.as_ref().and_then(|r| r.error.as_deref()) {
        body.raw("<h2>Last error</h2><pre>")
            .text(error)
            .raw("</pre>");
    }
    if viewer.may_fix() {
        fix_form(&mut body, &scope, line, &viewer.0.csrf);
    }
    body.raw("<h2>Rows</h2>");
    history_table(&mut body, &scope, &rows);
    Ok(respond(&viewer, &format!("Unit {change_id}"), body))
}

fn fix_form(body: &mut Html, scope: &Scope, line: &UnitLine, csrf: &str) {
    let seen = line.state().map_or("never", AuditState::as_str);
    body.raw("<h2>Record a fix</h2><form class=\"fix\" method=\"post\" action=\"")
        .text(&format!("{}/fix", unit_href(scope, &line.change_id)))
        .raw("\">")
        .hidden("csrf", csrf)
        .hidden("seen", seen)
        .raw("<p class=\"muted\">Check the target system first, then say what you found. This appends a MANUAL_MARKED_* row with your name and reason, as <code>flamingock fix</code> does.</p>")
        .raw("<label><span><input type=\"radio\" name=\"resolution\" value=\"applied\" required> The change is in place: mark it applied (runs skip it)</span></label>")
        .raw("<label><span><input type=\"radio\" name=\"resolution\" value=\"rolled_back\"> The change is not in place: mark it rolled back (the next run applies it)</span></label>")
        .raw("<label>Your name<input type=\"text\" name=\"name\" required maxlength=\"2000\"></label>")
        .raw("<label>Reason: what you checked and found<textarea name=\"reason\" rows=\"3\" required maxlength=\"2000\"></textarea></label>")
        .raw("<button type=\"submit\">Record the fix</button></form>");
}

/// The fix form's fields.
#[derive(Debug, Default, Deserialize)]
pub struct FixForm {
    csrf: Option<String>,
    resolution: Option<String>,
    name: Option<String>,
    reason: Option<String>,
    seen: Option<String>,
}

/// Records a fix through the engine's `fix` (the CLI's), under the scope's lock.
pub async fn fix(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((service, environment, change_id)): Path<(String, String, String)>,
    form: Result<Form<FixForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, PageError> {
    let Form(form) = form.map_err(super::form_error)?;
    viewer.check_csrf(form.csrf.as_deref())?;
    let scope = scope_for(&viewer, &service, &environment)?;
    if !viewer.may_fix() {
        return Err(PageError::forbidden(format!(
            "you signed in as {}: recording a fix takes an operator or admin token",
            viewer.label()
        )));
    }
    let resolution = match form.resolution.as_deref() {
        Some("applied") => Resolution::Applied,
        Some("rolled_back") => Resolution::RolledBack,
        _ => {
            return Err(PageError::bad_request(
                "say what you found: the change is in place (applied) or it is not (rolled back)",
            ));
        }
    };
    let text = |value: &Option<String>, what: &str| -> Result<String, PageError> {
        let value = value.as_deref().map(str::trim).unwrap_or("");
        if value.is_empty() {
            return Err(PageError::bad_request(format!(
                "{what} is required: the audit keeps who resolved a unit and why; nothing was recorded"
            )));
        }
        if value.chars().count() > MAX_FIX_TEXT {
            return Err(PageError::bad_request(format!(
                "{what} is over {MAX_FIX_TEXT} characters; nothing was recorded"
            )));
        }
        Ok(value.to_owned())
    };
    let operator = text(&form.name, "your name")?;
    let reason = text(&form.reason, "the reason")?;
    let seen = match form.seen.as_deref() {
        Some("never") => SeenState::NeverRan,
        Some(state) => SeenState::State(AuditState::parse(state).ok_or_else(|| {
            PageError::bad_request(format!("{state:?} is not a state the unit page shows"))
        })?),
        None => {
            return Err(PageError::bad_request(
                "the form names no state seen: reload the unit's page",
            ));
        }
    };
    let view = known(&state, &scope).await?;
    if !view.units.iter().any(|unit| unit.change_id == change_id) {
        return Err(PageError::not_found(format!(
            "{scope} has no unit {change_id:?}: neither its audit nor its latest plan names it; nothing was recorded"
        )));
    }
    let engine = Engine::new(state.db.store(&scope, false)?)
        .with_options(RunOptions {
            app_name: Some("flamingock-server".to_owned()),
            app_version: Some(env!("CARGO_PKG_VERSION").to_owned()),
            ..RunOptions::default()
        })
        .with_lock_options(LockOptions {
            wait: FIX_LOCK_WAIT,
            ..LockOptions::default()
        });
    let request = FixRequest {
        change_id: change_id.clone(),
        resolution,
        operator,
        reason,
        expected: Some(seen),
    };
    let outcome = engine
        .fix(std::iter::empty(), &request)
        .await
        .map_err(|error| {
            let status = match &error {
                FixError::UnknownUnit(_) => StatusCode::NOT_FOUND,
                FixError::InvalidId { .. } | FixError::Missing(_) => StatusCode::BAD_REQUEST,
                FixError::StateChanged { .. } => StatusCode::CONFLICT,
                FixError::OutcomeUnknown { .. } | FixError::Engine(_) => {
                    StatusCode::SERVICE_UNAVAILABLE
                }
            };
            PageError::Page {
                status,
                message: flamingock_core::model::error_chain(&error),
            }
        })?;
    tracing::info!(
        scope = %scope,
        change_id = %change_id,
        state = %outcome.entry.state,
        token = %viewer.0.caller.token_id,
        "a fix recorded from the dashboard"
    );
    Ok(redirect(
        &format!(
            "{}?fixed={}",
            unit_href(&scope, &change_id),
            outcome.entry.state.as_str()
        ),
        HeaderMap::new(),
    ))
}
