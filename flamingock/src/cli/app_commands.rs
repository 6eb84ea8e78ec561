//! The commands that need the program's change units: `status` (with units that never ran),
//! `plan`, `apply`, `undo`, `validate`.

use std::collections::HashSet;

use flamingock_core::engine::PlannedUnit;
use flamingock_core::engine::{UndoError, UndoReport, UndoScope};
use flamingock_core::error::BlockedUnit;
use flamingock_core::plan::{Decision, Selection};
use flamingock_core::{ChangeUnit, RunReport};
use serde::Serialize;

use super::args::{Format, SelectionArgs, StatusArgs, UndoArgs};
use super::output::{Table, html_only_for_history, json, out, outln, terminal_safe_lines, when};
use super::status::{
    StatusLine, current_rows, line_from_row, print_status, retain_in_range, status_label,
};
use super::{Failure, Session};

/// `--stage` / `--module` as a selection.
fn selection(args: &SelectionArgs) -> Selection {
    // `--system-versions` goes to the builder (out-of-range units are reported, not dropped).
    Selection {
        stages: args.stages.clone(),
        module_prefixes: args.modules.clone(),
        ..Selection::default()
    }
}

/// Refuses, as a run does, a `plan` or `apply` that the builder's selection and `--stage` /
/// `--module` together leave without a unit (unless the builder allows none).
fn check_some_selected(session: &Session, args: &SelectionArgs) -> Result<(), Failure> {
    let (expected, builder_selection) = &session.units_check;
    expected
        .check(&session.units, builder_selection, Some(&selection(args)))
        .map_err(|error| Failure::Failed(error.to_string()))
}

/// The session's units narrowed by `--stage` / `--module`.
pub(super) fn selected(session: &Session, args: &SelectionArgs) -> Vec<&'static ChangeUnit> {
    let selection = selection(args);
    session
        .units
        .iter()
        .copied()
        .filter(|unit| selection.includes(unit))
        .collect()
}

pub(super) async fn plan_units(
    session: &Session,
    units: Vec<&'static ChangeUnit>,
) -> Result<Vec<PlannedUnit>, Failure> {
    session
        .engine
        .plan(units)
        .await
        .map_err(|error| Failure::Failed(error.to_string()))
}

fn planned_line(planned: &PlannedUnit) -> StatusLine {
    let state = planned.current.as_ref().map(|s| s.state);
    StatusLine {
        change_id: planned.unit.id.to_owned(),
        order: planned.unit.order.to_owned(),
        stage: planned.unit.stage_name().to_owned(),
        tx_strategy: Some(planned.strategy()),
        state,
        since: planned.current.as_ref().and_then(|s| s.created_at),
        by: planned.unit.author.to_owned(),
        status: if planned.out_of_range {
            "out of range (system version)".into()
        } else {
            status_label(planned.decision, state, planned.unit.run_always)
        },
        last_error: planned.current.as_ref().and_then(|s| s.error.clone()),
        fix: None,
        declared: Some(true),
        system_version: planned.unit.system_version.map(str::to_owned),
    }
}

/// `status` with the program's units: every selected unit, and the units the audit knows that
/// this program does not declare.
pub async fn status(session: &Session, args: &StatusArgs) -> Result<(), Failure> {
    let planned = plan_units(session, session.units.clone()).await?;
    let known: HashSet<&str> = planned.iter().map(|p| p.unit.id).collect();
    let mut lines: Vec<StatusLine> = planned.iter().map(planned_line).collect();
    let mut rows = current_rows(session).await?;
    rows.retain(|row| !known.contains(row.change_id.as_str()));
    let mut note = String::new();
    if !rows.is_empty() {
        let ids: Vec<&str> = rows.iter().map(|row| row.change_id.as_str()).collect();
        note = format!(
            "in the audit but not among this program's selected units: {}",
            ids.join(", ")
        );
    }
    for row in &rows {
        let mut line = line_from_row(row);
        line.declared = Some(false);
        lines.push(line);
    }
    retain_in_range(
        &mut lines,
        args.version_range().map_err(Failure::Usage)?.as_ref(),
    );
    print_status(session, lines, &note)
}

/// One unit in `plan`'s output.
#[derive(Debug, Serialize)]
struct PlanLine {
    change_id: String,
    order: String,
    stage: String,
    tx_strategy: String,
    state: Option<String>,
    action: &'static str,
    /// `"drifted"` or `"not comparable"` for an applied unit whose checksum changed or was not
    /// recorded (docs/drift.md); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    drift: Option<&'static str>,
}

fn action(decision: Decision) -> &'static str {
    match decision {
        Decision::Apply => "apply",
        Decision::Skip => "skip (applied)",
        Decision::ConsultMarker => "check the marker, apply unless it proves the last try",
        Decision::Block => "BLOCKED: needs `fix`",
    }
}

/// `plan`: each unit's decision; writes nothing. Fails when a run would not get through.
pub async fn plan(session: &Session, args: &SelectionArgs) -> Result<(), Failure> {
    check_some_selected(session, args)?;
    let planned = plan_units(session, selected(session, args)).await?;
    let drift = session.engine.drift(&planned);
    let drift_of = |id: &str| {
        if drift.drifted.iter().any(|d| d.change_id == id) {
            Some("drifted")
        } else if drift.not_comparable.iter().any(|d| d.change_id == id) {
            Some("not comparable")
        } else {
            None
        }
    };
    let lines: Vec<PlanLine> = planned
        .iter()
        .map(|p| PlanLine {
            change_id: p.unit.id.to_owned(),
            order: p.unit.order.to_owned(),
            stage: p.unit.stage_name().to_owned(),
            tx_strategy: p.strategy().to_string(),
            state: p.current.as_ref().map(|s| s.state.to_string()),
            action: if p.out_of_range {
                "skip (system version out of range)"
            } else {
                match drift_of(p.unit.id) {
                    Some("drifted") => "DRIFTED: changed since applied (see `verify`, `repair`)",
                    _ => action(p.decision),
                }
            },
            drift: drift_of(p.unit.id),
        })
        .collect();
    let mut table = Table::new(&["order", "change", "stage", "strategy", "state", "action"]);
    for line in &lines {
        table.push(vec![
            line.order.clone(),
            line.change_id.clone(),
            line.stage.clone(),
            line.tx_strategy.clone(),
            line.state.clone().unwrap_or_else(|| "-".into()),
            line.action.to_owned(),
        ]);
    }
    let printed = match session.format {
        Format::Json => out!("{}", json(&lines)),
        Format::Csv => out!("{}", table.to_csv()),
        Format::Table => out!("{}", table.to_text(80)).and_then(|()| {
            let pending = planned.iter().filter(|p| p.is_pending()).count();
            outln!(
                "a run would apply {pending} of {} units (nothing was written)",
                planned.len()
            )
        }),
        Format::Html => return Err(html_only_for_history()),
    };
    would_get_through(session, &planned)?;
    printed
}

/// `plan --check`: up to date (exit 0), pending (3) or blocked (4), printed as a sentence or as
/// JSON; writes nothing.
pub async fn plan_check(session: &Session, args: &SelectionArgs) -> Result<(), Failure> {
    check_some_selected(session, args)?;
    check(session, selected(session, args)).await
}

/// The check of `units` (`plan --check`, and `status --check` over every unit).
pub async fn check(session: &Session, units: Vec<&'static ChangeUnit>) -> Result<(), Failure> {
    let planned = plan_units(session, units).await?;
    print_check(session, &session.engine.pending_check(&planned))
}

/// Prints a check as a sentence or JSON and ends with its exit code.
pub(super) fn print_check(
    session: &Session,
    check: &flamingock_core::engine::PendingCheck,
) -> Result<(), Failure> {
    match session.format {
        Format::Json => out!("{}", json(&check))?,
        Format::Table => outln!("{check}")?,
        Format::Csv | Format::Html => {
            return Err(Failure::Usage(
                "plan --check prints a sentence (the default format) or JSON (--format json)"
                    .into(),
            ));
        }
    }
    match check.status.exit_code() {
        0 => Ok(()),
        code => Err(Failure::Check(code)),
    }
}

/// Fails when a run of `planned` would not get through: a blocked unit, a missing dependency.
pub(super) fn would_get_through(session: &Session, planned: &[PlannedUnit]) -> Result<(), Failure> {
    let blocked: Vec<BlockedUnit> = planned
        .iter()
        .filter(|p| p.decision == Decision::Block)
        .map(|p| BlockedUnit {
            change_id: p.unit.id.to_owned(),
            stage: p.unit.stage_name().to_owned(),
            state: p
                .current
                .as_ref()
                .map(|s| s.state.to_string())
                .unwrap_or_default(),
            last_error: p.current.as_ref().and_then(|s| s.error.clone()),
        })
        .collect();
    if !blocked.is_empty() {
        let mut message = String::from("a run would stop: manual intervention needed");
        for unit in blocked {
            message.push_str(&format!("\n  - {unit}"));
        }
        return Err(Failure::Failed(message));
    }
    // A plan that would not get through fails even when nobody reads the table any more.
    session
        .engine
        .check_plan(planned)
        .map_err(|error| Failure::Failed(error.to_string()))?;
    Ok(())
}

/// `apply`: a run, with a progress bar on a terminal.
pub async fn apply(session: &Session, args: &SelectionArgs) -> Result<(), Failure> {
    check_some_selected(session, args)?;
    let units = selected(session, args);
    let pending = plan_units(session, units.clone())
        .await?
        .iter()
        .filter(|p| p.is_pending())
        .count();
    session.progress.start(pending, "applying");
    let result = session.engine.run(units).await;
    session.progress.finish();
    match result {
        Ok(report) => print_run(session, &report),
        Err(error) => {
            if let Some(report) = error.report() {
                // The run's failure is what the exit code tells, whatever became of the report.
                let _ = print_run(session, report);
            }
            Err(Failure::Failed(error.to_string()))
        }
    }
}

fn print_run(session: &Session, report: &RunReport) -> Result<(), Failure> {
    match session.format {
        Format::Json => out!("{}", report.to_json())?,
        Format::Table => outln!("{}", terminal_safe_lines(&report.to_string()))?,
        Format::Csv => {
            let mut table = Table::new(&[
                "order",
                "change_id",
                "stage",
                "tx_strategy",
                "outcome",
                "duration_ms",
                "error",
            ]);
            for unit in &report.units {
                table.push(vec![
                    unit.order.clone(),
                    unit.change_id.clone(),
                    unit.stage.clone(),
                    unit.tx_strategy.to_string(),
                    serde_json::to_value(unit.outcome)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default(),
                    unit.duration_ms
                        .map(|ms| ms.to_string())
                        .unwrap_or_default(),
                    unit.error.clone().unwrap_or_default(),
                ]);
            }
            out!("{}", table.to_csv())?;
        }
        Format::Html => return Err(html_only_for_history()),
    }
    Ok(())
}

/// `undo`: rollbacks newest first, under the lock, with a progress bar on a terminal.
pub async fn undo(session: &Session, args: &UndoArgs) -> Result<(), Failure> {
    let scope = undo_scope(args)?;
    let units = selected(session, &args.selection);
    if session.format == Format::Html {
        return Err(html_only_for_history());
    }
    if args.dry_run {
        let range = session
            .engine
            .undo_plan(units, &scope)
            .await
            .map_err(undo_failure)?;
        return print_undo_plan(session, &range);
    }
    let range = session
        .engine
        .undo_plan(units.clone(), &scope)
        .await
        .map_err(undo_failure)?;
    session.progress.start(range.len(), "rolling back");
    let result = session.engine.undo(units, &scope).await;
    session.progress.finish();
    match result {
        Ok(report) => print_undo(session, &report),
        Err(error) => {
            if let Some(report) = error.report() {
                // The undo's failure is what the exit code tells, whatever became of the report.
                let _ = print_undo(session, report);
            }
            Err(undo_failure(error))
        }
    }
}

/// What `--to` / `--last` ask to undo: exactly one of them.
pub fn undo_scope(args: &UndoArgs) -> Result<UndoScope, Failure> {
    match (&args.to, args.last, &args.to_version) {
        (Some(to), None, None) => Ok(UndoScope::To(to.clone())),
        (None, Some(last), None) => Ok(UndoScope::Last(last)),
        (None, None, Some(version)) => semver::Version::parse(version)
            .map(UndoScope::ToVersion)
            .map_err(|error| {
                Failure::Usage(format!(
                    "--to-version {version:?} is not a semver version ({error}), e.g. 1.3.0"
                ))
            }),
        _ => Err(Failure::Usage(
            "give exactly one of --to ID, --last N and --to-version VERSION".into(),
        )),
    }
}

fn undo_failure(error: UndoError) -> Failure {
    match error {
        UndoError::UnknownUnit(_) | UndoError::NotEnoughApplied { .. } => {
            Failure::Usage(error.to_string())
        }
        other => Failure::Failed(other.to_string()),
    }
}

fn print_undo_plan(session: &Session, range: &[PlannedUnit]) -> Result<(), Failure> {
    let mut table = Table::new(&["order", "change", "strategy", "applied at", "would"]);
    for unit in range {
        table.push(vec![
            unit.unit.order.to_owned(),
            unit.unit.id.to_owned(),
            unit.strategy().to_string(),
            when(unit.current.as_ref().and_then(|s| s.created_at)),
            "roll back".to_owned(),
        ]);
    }
    match session.format {
        Format::Json => {
            let ids: Vec<&str> = range.iter().map(|p| p.unit.id).collect();
            out!(
                "{}",
                json(&serde_json::json!({ "dry_run": true, "would_roll_back": ids }))
            )?;
        }
        Format::Csv => out!("{}", table.to_csv())?,
        _ if range.is_empty() => outln!("nothing to undo")?,
        _ => {
            out!("{}", table.to_text(60))?;
            outln!(
                "dry run: {} unit(s) would be rolled back, newest first; nothing was changed",
                range.len()
            )?;
        }
    }
    Ok(())
}

fn print_undo(session: &Session, report: &UndoReport) -> Result<(), Failure> {
    match session.format {
        Format::Json => out!("{}", json(report))?,
        Format::Csv => {
            let mut table = Table::new(&[
                "order",
                "change_id",
                "tx_strategy",
                "outcome",
                "duration_ms",
                "error",
            ]);
            for unit in &report.units {
                table.push(vec![
                    unit.order.clone(),
                    unit.change_id.clone(),
                    unit.tx_strategy.to_string(),
                    serde_json::to_value(unit.outcome)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default(),
                    unit.duration_ms
                        .map(|ms| ms.to_string())
                        .unwrap_or_default(),
                    unit.error.clone().unwrap_or_default(),
                ]);
            }
            out!("{}", table.to_csv())?;
        }
        _ => outln!("{}", terminal_safe_lines(&report.to_string()))?,
    }
    Ok(())
}

/// `validate`: the units' ids and orders, without a database.
pub fn validate(session: &Session, args: &SelectionArgs) -> Result<(), Failure> {
    let count = session
        .engine
        .validate(selected(session, args))
        .map_err(|error| Failure::Failed(error.to_string()))?
        .len();
    match session.format {
        Format::Json => out!(
            "{}",
            json(&serde_json::json!({ "units": count, "valid": true }))
        )?,
        Format::Csv => out!("units,valid\n{count},true\n")?,
        Format::Table => outln!("{count} change units, consistent (ids and orders unique)")?,
        Format::Html => return Err(html_only_for_history()),
    }
    Ok(())
}
