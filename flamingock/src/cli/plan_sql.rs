//! `plan --sql`: the statements the pending SQL-file units would run, in order, placeholders
//! replaced; pending code units are named where they would run. Writes nothing.

use serde::Serialize;

use super::app_commands::{plan_units, selected, would_get_through};
use super::args::{Format, SelectionArgs};
use super::output::{html_only_for_history, json, out, outln};
use super::{Failure, Session};

/// One pending unit, as `--format json` shows it.
#[derive(Serialize)]
struct PendingLine {
    change_id: String,
    order: String,
    /// `"sql"` or `"code"`.
    kind: &'static str,
    file: Option<&'static str>,
    /// For an SQL file: whether it runs in one transaction.
    transactional: Option<bool>,
    statements: Vec<String>,
}

pub async fn plan_sql(session: &Session, args: &SelectionArgs) -> Result<(), Failure> {
    let planned = plan_units(session, selected(session, args)).await?;
    would_get_through(session, &planned)?;
    let sql = crate::pending_sql(&session.engine, &planned).map_err(Failure::Failed)?;
    let lines: Vec<PendingLine> = planned
        .iter()
        .filter(|p| p.is_pending())
        .map(|p| {
            let order = p.unit.order.to_owned();
            match sql.iter().find(|s| s.change_id == p.unit.id) {
                Some(file) => PendingLine {
                    change_id: file.change_id.clone(),
                    order,
                    kind: "sql",
                    file: Some(file.file),
                    transactional: Some(file.transactional),
                    statements: file.statements.clone(),
                },
                None => PendingLine {
                    change_id: p.unit.id.to_owned(),
                    order,
                    kind: "code",
                    file: None,
                    transactional: None,
                    statements: Vec::new(),
                },
            }
        })
        .collect();
    match session.format {
        Format::Json => out!("{}", json(&lines)),
        Format::Table | Format::Csv => print_sql(&lines),
        Format::Html => Err(html_only_for_history()),
    }
}

fn print_sql(lines: &[PendingLine]) -> Result<(), Failure> {
    let mut statements = 0;
    for line in lines {
        match line.file {
            Some(file) => {
                let how = if line.transactional == Some(true) {
                    "in one transaction"
                } else {
                    "statement by statement, without a transaction"
                };
                outln!("-- {} ({file}), {how}", line.change_id)?;
                for statement in &line.statements {
                    outln!("{statement};")?;
                }
                statements += line.statements.len();
            }
            None => outln!(
                "-- {}: a code unit (Rust code, no SQL to show)",
                line.change_id
            )?,
        }
        outln!("")?;
    }
    let files = lines.iter().filter(|l| l.kind == "sql").count();
    outln!(
        "-- a run would apply {} units: {files} SQL files with {statements} statements, {} code units (nothing was written)",
        lines.len(),
        lines.len() - files
    )
}
