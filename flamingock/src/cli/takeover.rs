//! The commands of a take-over from another migration tool: `import` (its history into the
//! audit) and `baseline` (units recorded as applied for a schema that has no history).

use flamingock_core::engine::BaselineRequest;
use flamingock_core::import::{ImportOptions, SourceTool};
use flamingock_core::sql_unit::SqlMigration;
use serde::Serialize;

use super::args::{BaselineArgs, Format, ImportArgs};
use super::output::{html_only_for_history, json, out, outln, terminal_safe};
use super::{Failure, Session};

/// `import --from TOOL [--table NAME] [--ignore-unknown]`.
pub async fn import(session: &Session, args: &ImportArgs) -> Result<(), Failure> {
    let tool = SourceTool::parse(&args.from).ok_or_else(|| {
        Failure::Usage(format!(
            "unknown tool \"{}\"; one of: sqlx, refinery, diesel, sea-orm",
            terminal_safe(&args.from)
        ))
    })?;
    let mut options = ImportOptions::from(tool).ignore_unknown(args.ignore_unknown);
    if let Some(table) = &args.table {
        options = options.table(table);
    }
    let report = session
        .engine
        .import_history(
            session.units.iter().copied(),
            SqlMigration::registered(),
            &options,
        )
        .await
        .map_err(|error| Failure::Failed(error.to_string()))?;
    match session.format {
        Format::Json => out!("{}", json(&report))?,
        Format::Table | Format::Csv if !report.table_found => outln!(
            "no table `{}` to import from {tool}: nothing imported",
            report.table
        )?,
        Format::Table | Format::Csv => {
            outln!(
                "imported {} unit{} from {tool}'s `{}`{}",
                report.imported.len(),
                if report.imported.len() == 1 { "" } else { "s" },
                report.table,
                if report.in_doubt.is_empty() {
                    String::new()
                } else {
                    format!(
                        " ({} in doubt, blocking until `fix`: {})",
                        report.in_doubt.len(),
                        terminal_safe(&report.in_doubt.join(", "))
                    )
                }
            )?;
            for id in &report.imported {
                outln!("  {}", terminal_safe(id))?;
            }
            if !report.already_in_audit.is_empty() {
                outln!(
                    "{} already in the audit, left alone",
                    report.already_in_audit.len()
                )?;
            }
            if !report.ignored.is_empty() {
                outln!(
                    "ignored (no unit): version {}",
                    terminal_safe(&report.ignored.join(", version "))
                )?;
            }
        }
        Format::Html => return Err(html_only_for_history()),
    }
    Ok(())
}

/// Who `baseline` records: `--by`, else `$USER`.
fn operator(args: &BaselineArgs) -> Result<String, Failure> {
    super::store_commands::operator(args.by.as_ref(), "who records the baseline")
}

#[derive(Serialize)]
struct BaselineOutput<'a> {
    up_to: &'a str,
    by: &'a str,
    reason: &'a str,
    recorded: Vec<&'a str>,
}

/// `baseline --up-to ID --reason TEXT [--by NAME]`.
pub async fn baseline(session: &Session, args: &BaselineArgs) -> Result<(), Failure> {
    let request = BaselineRequest {
        up_to: args.up_to.clone(),
        operator: operator(args)?,
        reason: args.reason.clone(),
        once: false,
    };
    let rows = session
        .engine
        .baseline(session.units.iter().copied(), &request)
        .await
        .map_err(|error| Failure::Failed(error.to_string()))?;
    let recorded: Vec<&str> = rows.iter().map(|row| row.change_id.as_str()).collect();
    match session.format {
        Format::Json => out!(
            "{}",
            json(&BaselineOutput {
                up_to: &request.up_to,
                by: &request.operator,
                reason: &request.reason,
                recorded,
            })
        )?,
        Format::Table | Format::Csv => {
            outln!(
                "recorded {} unit{} as MANUAL_MARKED_AS_APPLIED (baseline up to \"{}\") by {}: {}",
                recorded.len(),
                if recorded.len() == 1 { "" } else { "s" },
                terminal_safe(&request.up_to),
                terminal_safe(&request.operator),
                terminal_safe(&request.reason)
            )?;
            for id in recorded {
                outln!("  {}", terminal_safe(id))?;
            }
        }
        Format::Html => return Err(html_only_for_history()),
    }
    Ok(())
}
