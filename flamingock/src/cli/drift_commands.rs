//! `verify` (which applied units drifted, which cannot be compared) and `repair` (accept a
//! unit's checksum now), docs/drift.md. Both need the program's units: only it knows their
//! checksums now.

use flamingock_core::engine::{DriftCheck, RepairError, RepairRequest};

use super::app_commands::{plan_units, selected};
use super::args::{Format, RepairArgs, SelectionArgs};
use super::output::{Table, html_only_for_history, json, out, outln, terminal_safe};
use super::{Failure, Session};

/// `verify`: the drift of the selected units; fails (exit 1) when any unit drifted.
pub async fn verify(session: &Session, args: &SelectionArgs) -> Result<(), Failure> {
    if session.format == Format::Html {
        return Err(html_only_for_history());
    }
    let planned = plan_units(session, selected(session, args)).await?;
    let check = session.engine.drift(&planned);
    let compared = planned
        .iter()
        .filter(|p| p.current.as_ref().is_some_and(|s| s.state.is_applied()) && !p.unit.run_always)
        .count();
    match session.format {
        Format::Json => out!("{}", json(&check))?,
        Format::Csv => out!("{}", table(&check).to_csv())?,
        _ if check.drifted.is_empty() && check.not_comparable.is_empty() => outln!(
            "no drift: each of the {compared} applied units has the checksum it was applied with"
        )?,
        _ => {
            out!("{}", table(&check).to_text(80))?;
            outln!(
                "{} of {compared} applied units drifted, {} cannot be compared (no checksum recorded)",
                check.drifted.len(),
                check.not_comparable.len()
            )?;
        }
    }
    if check.drifted.is_empty() {
        return Ok(());
    }
    let mut message = format!(
        "{} applied change unit(s) changed since they were applied:",
        check.drifted.len()
    );
    for unit in &check.drifted {
        message.push_str(&format!("\n  - {unit}"));
    }
    Err(Failure::Failed(message))
}

/// One row per drifted or not comparable unit.
fn table(check: &DriftCheck) -> Table {
    let mut table = Table::new(&[
        "change",
        "source",
        "state",
        "drift",
        "recorded checksum",
        "current checksum",
    ]);
    for unit in &check.drifted {
        table.push(vec![
            unit.change_id.clone(),
            format!("{}:{}", unit.file, unit.line),
            unit.state.to_string(),
            "DRIFTED".to_owned(),
            unit.recorded_checksum.clone(),
            unit.current_checksum.clone(),
        ]);
    }
    for unit in &check.not_comparable {
        table.push(vec![
            unit.change_id.clone(),
            format!("{}:{}", unit.file, unit.line),
            unit.state.to_string(),
            "not comparable".to_owned(),
            String::new(),
            unit.current_checksum.clone(),
        ]);
    }
    table
}

/// Who `repair` records as accepting the change: `--by`, else `$USER`.
pub fn operator(args: &RepairArgs) -> Result<String, Failure> {
    super::store_commands::operator(args.by.as_ref(), "who accepts the change")
}

/// `repair`.
pub async fn repair(session: &Session, args: &RepairArgs) -> Result<(), Failure> {
    if session.format == Format::Html {
        return Err(html_only_for_history());
    }
    let request = RepairRequest {
        change_id: args.change_id.clone(),
        operator: operator(args)?,
        reason: args.reason.clone(),
    };
    let outcome = session
        .engine
        .repair(session.units.iter().copied(), &request)
        .await
        .map_err(|error| match error {
            RepairError::UnknownUnit(_)
            | RepairError::InvalidId { .. }
            | RepairError::Missing(_) => Failure::Usage(error.to_string()),
            other => Failure::Failed(other.to_string()),
        })?;
    match session.format {
        Format::Json => out!("{}", json(&outcome))?,
        _ => outln!(
            "recorded {} for \"{}\" by {}: {}\nits checksum was {}, is now {}: runs compare it with this one from now on",
            outcome.entry.state,
            terminal_safe(&request.change_id),
            terminal_safe(&request.operator),
            terminal_safe(&request.reason),
            outcome
                .previous_checksum
                .as_deref()
                .unwrap_or("not recorded"),
            outcome.entry.checksum.as_deref().unwrap_or_default(),
        )?,
    }
    Ok(())
}
