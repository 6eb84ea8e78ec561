//! `history --format html`: one self-contained page (inline CSS, no script, no external
//! resource) with a timeline of runs, each unit's state, author and duration, failures
//! highlighted. Every value from the audit is HTML-escaped.

use std::fmt::Write as _;

use flamingock_core::{AuditEntry, AuditState};

/// What the page says about where its rows come from.
pub struct PageContext<'a> {
    /// The audit store, as described by the store (no password).
    pub store: &'a str,
    /// The filters, as typed (empty: the whole log).
    pub filters: &'a str,
    /// When the page was made.
    pub generated_at: chrono::DateTime<chrono::Utc>,
}

pub use flamingock_core::text::escape_html as escape;

fn state_class(state: AuditState) -> &'static str {
    match state {
        AuditState::Applied => "ok",
        AuditState::ManualMarkedAsApplied | AuditState::ManualMarkedAsRolledBack => "manual",
        AuditState::Failed | AuditState::RollbackFailed => "bad",
        AuditState::RolledBack => "back",
        AuditState::Started | AuditState::RollbackStarted => "started",
    }
}

const STYLE: &str = "
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
header{background:#1d2330;color:#fff;padding:20px 32px}
header h1{margin:0 0 4px;font-size:20px}
header p{margin:2px 0;color:#c9cfdb}
main{padding:16px 32px 40px;max-width:1200px}
.summary{display:flex;gap:12px;flex-wrap:wrap;margin:8px 0 20px}
.summary div{background:#fff;border-radius:8px;padding:10px 16px;box-shadow:0 1px 2px #0002}
.summary b{display:block;font-size:22px}
.run{background:#fff;border-radius:8px;margin:0 0 16px;box-shadow:0 1px 2px #0002;border-left:6px solid #3b82f6}
.run.failed{border-left-color:#dc2626}
.run h2{font-size:15px;margin:0;padding:12px 16px;border-bottom:1px solid #eceef2}
.run h2 small{font-weight:normal;color:#667085;margin-left:8px}
table{border-collapse:collapse;width:100%;table-layout:fixed}
col.t{width:13%}col.u{width:31%}col.s{width:21%}col.a{width:12%}col.x{width:11%}col.d{width:12%}
.kind{display:inline-block;margin-right:8px;padding:1px 8px;border-radius:10px;background:#e0e7ff;color:#3730a3;font-size:12px}
th,td{text-align:left;padding:6px 16px;border-bottom:1px solid #f0f1f4;vertical-align:top}
th{font-weight:600;color:#667085;font-size:12px;text-transform:uppercase}
tr.bad td{background:#fef2f2}
.badge{display:inline-block;border-radius:10px;padding:1px 8px;font-size:12px;font-weight:600}
.ok{background:#dcfce7;color:#166534}.bad{background:#fee2e2;color:#991b1b}
.back{background:#fef3c7;color:#92400e}.manual{background:#ede9fe;color:#5b21b6}
.started{background:#e5e7eb;color:#374151}
.bar{height:8px;background:#3b82f6;border-radius:4px;min-width:2px}
pre{white-space:pre-wrap;margin:4px 0 0;font-size:12px;color:#991b1b}
.note{color:#5b21b6;font-size:12px}
";

/// What a run was, from the states it wrote: an undo writes only rollback states, a fix only
/// manual ones.
fn run_kind(members: &[&AuditEntry]) -> &'static str {
    let all = |pred: fn(AuditState) -> bool| members.iter().all(|r| pred(r.state));
    if all(|s| matches!(s, AuditState::RolledBack | AuditState::RollbackFailed)) {
        "undo"
    } else if all(|s| {
        matches!(
            s,
            AuditState::ManualMarkedAsApplied | AuditState::ManualMarkedAsRolledBack
        )
    }) {
        "manual fix"
    } else {
        "apply"
    }
}

/// The whole page for `rows` (in the order given).
pub fn page(rows: &[AuditEntry], context: &PageContext<'_>) -> String {
    let mut runs: Vec<(&str, Vec<&AuditEntry>)> = Vec::new();
    for row in rows {
        match runs.iter_mut().find(|(id, _)| *id == row.execution_id) {
            Some((_, members)) => members.push(row),
            None => runs.push((&row.execution_id, vec![row])),
        }
    }
    let failures = rows
        .iter()
        .filter(|r| matches!(r.state, AuditState::Failed | AuditState::RollbackFailed))
        .count();
    let units: std::collections::HashSet<&str> =
        rows.iter().map(|r| r.change_id.as_str()).collect();
    let longest = rows
        .iter()
        .filter_map(|r| r.execution_ms)
        .max()
        .unwrap_or(0)
        .max(1);

    let mut html = String::new();
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>Flamingock history</title><style>{STYLE}</style></head><body>\
         <header><h1>Flamingock history</h1><p>{store}</p><p>{filters} · generated {generated} UTC</p></header><main>\
         <section class=\"summary\"><div><b>{runs}</b>runs</div><div><b>{units}</b>units</div>\
         <div><b>{rows}</b>audit rows</div><div><b>{failures}</b>failures</div></section>",
        store = escape(context.store),
        filters = if context.filters.is_empty() {
            "the whole log".to_owned()
        } else {
            format!("filters: {}", escape(context.filters))
        },
        generated = context.generated_at.format("%Y-%m-%d %H:%M:%S"),
        runs = runs.len(),
        units = units.len(),
        rows = rows.len(),
    );
    if rows.is_empty() {
        html.push_str("<p>No audit rows match.</p>");
    }
    for (execution_id, members) in &runs {
        let first = members[0];
        let failed = members
            .iter()
            .any(|r| matches!(r.state, AuditState::Failed | AuditState::RollbackFailed));
        let app = match (&first.app_name, &first.app_version) {
            (Some(name), Some(version)) => format!(" · {} {}", escape(name), escape(version)),
            (Some(name), None) => format!(" · {}", escape(name)),
            _ => String::new(),
        };
        let units: std::collections::HashSet<&str> =
            members.iter().map(|r| r.change_id.as_str()).collect();
        let span = match (first.created_at, members[members.len() - 1].created_at) {
            (Some(start), Some(end)) => format!(" · {} ms", (end - start).num_milliseconds()),
            _ => String::new(),
        };
        let _ = write!(
            html,
            "<section class=\"run{}\"><h2><span class=\"kind\">{}</span>{}<small>{} unit(s){span} · run {} · host {}{app}</small></h2>\
             <table><colgroup><col class=\"t\"><col class=\"u\"><col class=\"s\"><col class=\"a\"><col class=\"x\"><col class=\"d\"></colgroup>\
             <tr><th>time</th><th>unit</th><th>state</th><th>author</th><th>strategy</th><th>duration</th></tr>",
            if failed { " failed" } else { "" },
            run_kind(members),
            super::output::when(first.created_at),
            units.len(),
            escape(execution_id),
            escape(&first.hostname),
        );
        for row in members {
            let bad = matches!(row.state, AuditState::Failed | AuditState::RollbackFailed);
            let duration = row.execution_ms.map_or_else(String::new, |ms| {
                let percent = (ms.max(0) * 100 / longest).max(2);
                format!("<div class=\"bar\" style=\"width:{percent}%\"></div>{ms} ms")
            });
            let mut detail = String::new();
            if let Some(error) = &row.error {
                let _ = write!(detail, "<pre>{}</pre>", escape(error));
            }
            if let Some(reason) = row.reason() {
                let _ = write!(
                    detail,
                    "<div class=\"note\">reason: {}</div>",
                    escape(reason)
                );
            }
            let _ = write!(
                html,
                "<tr{}><td>{}</td><td><b>{}</b> <small>{}</small>{detail}</td>\
                 <td><span class=\"badge {}\">{}</span></td><td>{}</td><td>{}</td><td>{duration}</td></tr>",
                if bad { " class=\"bad\"" } else { "" },
                row.created_at
                    .map_or_else(String::new, |at| at.format("%H:%M:%S%.3f").to_string()),
                escape(&row.change_id),
                escape(&row.change_order),
                state_class(row.state),
                row.state,
                escape(&row.author),
                row.tx_strategy,
            );
        }
        html.push_str("</table></section>");
    }
    html.push_str("</main></body></html>\n");
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_everything_that_could_be_markup() {
        assert_eq!(
            escape("<script>alert('x') & \"y\"</script>"),
            "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;"
        );
    }
}
