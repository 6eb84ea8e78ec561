//! The history of a scope, with the page's filters, as a file: RFC 4180 CSV (cells a spreadsheet
//! would run as formulas kept text, as the CLI does) or a JSON array of audit rows.

use axum::extract::{Path, Query, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use flamingock_core::AuditEntry;

use super::view::HistoryFilter;
use super::{PageError, Viewer};
use crate::api::AppState;

/// The most rows one export holds.
pub const MAX_EXPORT_ROWS: u32 = 100_000;

/// The columns of the CSV, in order.
const COLUMNS: [&str; 20] = [
    "id",
    "created_at",
    "execution_id",
    "change_id",
    "change_order",
    "stage",
    "state",
    "author",
    "hostname",
    "runner_id",
    "target_system",
    "tx_strategy",
    "recovery_strategy",
    "app_name",
    "app_version",
    "system_version",
    "checksum",
    "execution_ms",
    "error",
    "metadata",
];

/// `GET /dashboard/{service}/{environment}/export?format=csv|json&<filters>`.
pub async fn export(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((service, environment)): Path<(String, String)>,
    filter: Result<Query<HistoryFilter>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, PageError> {
    let Query(filter) = filter.map_err(|e| PageError::bad_request(e.body_text()))?;
    let scope = flamingock_client::Scope::new(&service, &environment)
        .map_err(|error| PageError::bad_request(error.to_string()))?;
    if !viewer.0.caller.covers(&scope) {
        return Err(PageError::forbidden(format!(
            "you signed in as {}, which does not cover {scope}",
            viewer.label()
        )));
    }
    let format = match filter.format.as_deref().map(str::trim) {
        Some("csv") => Format::Csv,
        Some("json") => Format::Json,
        other => {
            return Err(PageError::bad_request(format!(
                "format={:?} is not an export format: csv or json",
                other.unwrap_or("")
            )));
        }
    };
    let query = filter.query()?.limit(MAX_EXPORT_ROWS);
    let rows = match super::view::latest_rows(&state.db, &scope).await? {
        Some(_) => state.db.store(&scope, true)?.history(&query).await?,
        None => {
            if crate::plans::latest(&state.db, &scope).await?.is_none() {
                return Err(PageError::not_found(format!(
                    "this server knows nothing of {scope}"
                )));
            }
            Vec::new()
        }
    };
    let name = format!("{}-{}-history", scope.service(), scope.environment());
    let (body, content_type, extension) = match format {
        Format::Csv => (to_csv(&rows), "text/csv; charset=utf-8", "csv"),
        Format::Json => (
            serde_json::to_string_pretty(&rows)
                .map_err(|e| PageError::bad_request(format!("the rows did not serialize: {e}")))?,
            "application/json",
            "json",
        ),
    };
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    // Scope names are [a-z0-9-]: always a valid header.
    if let Ok(value) =
        HeaderValue::from_str(&format!("attachment; filename=\"{name}.{extension}\""))
    {
        headers.insert(CONTENT_DISPOSITION, value);
    }
    headers.insert("cache-control", HeaderValue::from_static("no-store"));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    Ok(response)
}

enum Format {
    Csv,
    Json,
}

/// The rows as CSV: a header, then one record per row.
pub fn to_csv(rows: &[AuditEntry]) -> String {
    let mut out = String::new();
    push_record(&mut out, COLUMNS.iter().map(|c| (*c).to_owned()));
    for row in rows {
        let optional = |v: &Option<String>| v.clone().unwrap_or_default();
        push_record(
            &mut out,
            [
                row.id.to_string(),
                row.created_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
                row.execution_id.clone(),
                row.change_id.clone(),
                row.change_order.clone(),
                row.stage.clone(),
                row.state.as_str().to_owned(),
                row.author.clone(),
                row.hostname.clone(),
                row.runner_id.clone(),
                row.target_system.clone(),
                row.tx_strategy.as_str().to_owned(),
                row.recovery_strategy.as_str().to_owned(),
                optional(&row.app_name),
                optional(&row.app_version),
                optional(&row.system_version),
                optional(&row.checksum),
                row.execution_ms
                    .map(|ms| ms.to_string())
                    .unwrap_or_default(),
                optional(&row.error),
                row.metadata
                    .as_ref()
                    .map(|m| m.to_string())
                    .unwrap_or_default(),
            ],
        );
    }
    out
}

fn push_record(out: &mut String, cells: impl IntoIterator<Item = String>) {
    let cells: Vec<String> = cells.into_iter().map(|c| csv_cell(&c)).collect();
    out.push_str(&cells.join(","));
    out.push_str("\r\n");
}

pub use flamingock_core::text::csv_cell;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_quoted_when_they_must_be_and_formulas_stay_text() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_cell("=SUM(A1)"), "'=SUM(A1)");
        assert_eq!(csv_cell("-1,2"), "\"'-1,2\"");
    }
}
