//! `status`: one line per unit (its decision or its newest audit row), printed as a table, CSV
//! or JSON with fix commands for blocked units; and `status` from the audit alone.

use std::fmt::Write as _;

use flamingock_core::error::BlockedUnit;
use flamingock_core::history::HistoryQuery;
use flamingock_core::plan::{Decision, decide, natural_cmp};
use flamingock_core::{AuditEntry, AuditState, TxStrategy};
use serde::Serialize;

use super::args::{Format, StatusArgs};
use super::output::{Table, html_only_for_history, json, out, when};
use super::{Failure, Session};

/// One unit's line in `status`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusLine {
    pub change_id: String,
    pub order: String,
    pub stage: String,
    pub tx_strategy: Option<TxStrategy>,
    /// The unit's current audit state (`None`: it never ran).
    pub state: Option<AuditState>,
    /// When the current state was recorded.
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    /// Who wrote the unit, or who resolved it by hand.
    pub by: String,
    /// `applied`, `pending`, `BLOCKED`, …
    pub status: String,
    pub last_error: Option<String>,
    /// For a blocked unit: the commands that resolve it.
    pub fix: Option<String>,
    /// Whether the program declares the unit (`None`: the standalone binary cannot tell).
    pub declared: Option<bool>,
    /// The release the unit ships with (`system_version`).
    pub system_version: Option<String>,
}

/// Keeps the lines whose system version is in `range` (none: every line).
pub fn retain_in_range(lines: &mut Vec<StatusLine>, range: Option<&semver::VersionReq>) {
    let Some(range) = range else {
        return;
    };
    lines.retain(|line| {
        line.system_version
            .as_deref()
            .and_then(|version| semver::Version::parse(version).ok())
            .is_some_and(|version| range.matches(&version))
    });
}

/// What a decision means for a person reading `status`.
pub fn status_label(decision: Decision, state: Option<AuditState>, run_always: bool) -> String {
    match (decision, state) {
        (Decision::Block, _) => "BLOCKED".into(),
        (Decision::Skip, Some(AuditState::ManualMarkedAsApplied)) => "applied (by hand)".into(),
        (Decision::Skip, _) => "applied".into(),
        (Decision::ConsultMarker, _) => "pending (its marker decides)".into(),
        (Decision::Apply, Some(state)) if run_always && state.is_applied() => {
            "applied (runs always)".into()
        }
        (Decision::Apply, None) => "pending".into(),
        (Decision::Apply, Some(AuditState::RolledBack | AuditState::ManualMarkedAsRolledBack)) => {
            "pending (rolled back)".into()
        }
        (Decision::Apply, Some(_)) => "pending (retry)".into(),
    }
}

/// The blocked unit a status line stands for, with its fix commands.
pub fn blocked(line: &StatusLine) -> BlockedUnit {
    BlockedUnit {
        change_id: line.change_id.clone(),
        stage: line.stage.clone(),
        state: line.state.map(|s| s.to_string()).unwrap_or_default(),
        last_error: line.last_error.clone(),
    }
}

/// A status line from a unit's newest audit row alone (what the standalone binary knows).
pub fn line_from_row(row: &AuditEntry) -> StatusLine {
    let run_always = row.is_run_always();
    let decision = decide(
        row.tx_strategy,
        row.recovery_strategy,
        run_always,
        Some(row.state),
    );
    StatusLine {
        change_id: row.change_id.clone(),
        order: row.change_order.clone(),
        stage: row.stage.clone(),
        tx_strategy: Some(row.tx_strategy),
        state: Some(row.state),
        since: row.created_at,
        by: row.author.clone(),
        status: status_label(decision, Some(row.state), run_always),
        last_error: row.error.clone(),
        fix: None,
        declared: None,
        system_version: row.system_version.clone(),
    }
}

/// The current row of every unit the store knows, by unit order.
pub async fn current_rows(session: &Session) -> Result<Vec<AuditEntry>, Failure> {
    if !super::audit_table_present(session).await? {
        return Ok(Vec::new());
    }
    let mut rows = session
        .engine
        .store()
        .history(&HistoryQuery::new().latest_per_unit())
        .await
        .map_err(Failure::from_store)?;
    rows.sort_by(|a, b| natural_cmp(&a.change_order, &b.change_order).then(a.id.cmp(&b.id)));
    Ok(rows)
}

/// Prints status lines in the session's format; blocked units get their fix commands.
pub fn print_status(
    session: &Session,
    mut lines: Vec<StatusLine>,
    note: &str,
) -> Result<(), Failure> {
    for line in &mut lines {
        if line.status == "BLOCKED" {
            let text = blocked(line).to_string();
            line.fix = text.split_once('\n').map(|(_, fix)| fix.trim().to_owned());
        }
    }
    match session.format {
        Format::Json => out!("{}", json(&lines))?,
        Format::Csv => out!("{}", status_table(&lines).to_csv())?,
        Format::Table => {
            let mut out = format!(
                "Flamingock status of {}\n",
                session.engine.store().describe()
            );
            if lines.is_empty() {
                out.push_str("no change units\n");
            } else {
                out.push_str(&status_table(&lines).to_text(60));
            }
            let count = |prefix: &str| {
                lines
                    .iter()
                    .filter(|l| l.status.starts_with(prefix))
                    .count()
            };
            let _ = writeln!(
                out,
                "{} units: {} applied, {} pending, {} blocked",
                lines.len(),
                count("applied"),
                count("pending"),
                count("BLOCKED")
            );
            for line in lines.iter().filter(|l| l.status == "BLOCKED") {
                let _ = writeln!(out, "\nblocked: {}", blocked(line));
            }
            if !note.is_empty() {
                let _ = writeln!(out, "{note}");
            }
            out!("{out}")?;
        }
        Format::Html => return Err(html_only_for_history()),
    }
    Ok(())
}

fn status_table(lines: &[StatusLine]) -> Table {
    let mut table = Table::new(&[
        "order",
        "change",
        "stage",
        "strategy",
        "state",
        "since",
        "by",
        "version",
        "status",
        "last error",
    ]);
    for line in lines {
        table.push(vec![
            line.order.clone(),
            line.change_id.clone(),
            line.stage.clone(),
            line.tx_strategy.map(|s| s.to_string()).unwrap_or_default(),
            line.state
                .map(|s| s.to_string())
                .unwrap_or_else(|| "-".into()),
            when(line.since),
            line.by.clone(),
            line.system_version.clone().unwrap_or_default(),
            line.status.clone(),
            line.last_error.clone().unwrap_or_default(),
        ]);
    }
    table
}

/// `status` from the audit alone.
pub async fn status(session: &Session, args: &StatusArgs) -> Result<(), Failure> {
    let mut lines = current_rows(session)
        .await?
        .iter()
        .map(line_from_row)
        .collect();
    retain_in_range(
        &mut lines,
        args.version_range().map_err(Failure::Usage)?.as_ref(),
    );
    print_status(
        session,
        lines,
        "(units that never ran are not listed: only the program that declares them knows them)",
    )
}

/// `status --check` from the audit alone: the units it records that a run would apply again
/// (rolled back, failed in a transaction) or that block; units that never ran are unknown here.
pub async fn check(session: &Session) -> Result<(), Failure> {
    let lines: Vec<StatusLine> = current_rows(session)
        .await?
        .iter()
        .map(line_from_row)
        .collect();
    let pending = lines
        .iter()
        .filter(|line| line.status.starts_with("pending"))
        .map(|line| line.change_id.clone())
        .collect();
    let blocked_units = lines
        .iter()
        .filter(|line| line.status == "BLOCKED")
        .map(blocked)
        .collect();
    let check = flamingock_core::engine::PendingCheck::new(lines.len(), pending, blocked_units);
    super::app_commands::print_check(session, &check)
}
