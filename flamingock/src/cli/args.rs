//! The command line's grammar (clap): the commands, their options, and the help that explains
//! each with an example.

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns for people.
    Table,
    /// JSON for scripts.
    Json,
    /// CSV with a header row, for spreadsheets.
    Csv,
    /// One self-contained HTML page (`history` only).
    Html,
}

/// Options every command takes.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// The audit store's URL: sqlite://file.db, postgres://…, mysql://…
    #[arg(
        long,
        env = "FLAMINGOCK_DATABASE_URL",
        hide_env_values = true,
        global = true,
        value_name = "URL"
    )]
    pub database_url: Option<String>,

    /// The audit table's name (default flamingock_audit_log).
    #[arg(
        long,
        env = "FLAMINGOCK_AUDIT_TABLE",
        global = true,
        value_name = "TABLE"
    )]
    pub audit_table: Option<String>,

    /// Output format: table (default), json, csv; html for `history`.
    #[arg(long, value_enum, default_value_t = Format::Table, global = true)]
    pub format: Format,

    /// Log more to stderr (-v: info, -vv: debug).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
}

/// Which of the program's units a command considers, on top of the program's own selection.
#[derive(Debug, Clone, Default, Args)]
pub struct SelectionArgs {
    /// Only units of this stage (repeatable).
    #[arg(long = "stage", value_name = "STAGE")]
    pub stages: Vec<String>,

    /// Only units declared in this module or below it (repeatable), e.g. my_app::billing.
    #[arg(long = "module", value_name = "PATH")]
    pub modules: Vec<String>,

    /// Only units whose system version is in this semver range, e.g. ">=1.2.0, <2.0.0"; the
    /// others are out of range (units without a version are always in). Replaces the
    /// program's own range and FLAMINGOCK_SYSTEM_VERSIONS.
    #[arg(long = "system-versions", value_name = "RANGE")]
    pub system_versions: Option<String>,
}

/// `plan` options.
#[derive(Debug, Clone, Default, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub selection: SelectionArgs,

    /// Print, in order, the SQL statements the pending SQL-file units would run (placeholders
    /// replaced) instead of the table.
    #[arg(long, conflicts_with = "check")]
    pub sql: bool,

    /// Only say whether anything is pending or blocked, with the exit code: 0 up to date, 3
    /// units pending, 4 a unit blocked (`--format json` for machines).
    #[arg(long)]
    pub check: bool,
}

const STORE_EXAMPLES: &str = "\
Examples:
  flamingock status
  flamingock history --author ana --since 2026-01-01 --until 2026-01-31
  flamingock history --state FAILED --format json
  flamingock history --format html > report.html
  flamingock fix export-clients --applied --reason \"checked the export: it is complete\"
  flamingock lock show

Exit codes: 0 ok, 1 failure, 2 usage.";

const APP_EXAMPLES: &str = "\
Examples:
  my-app plan                      what a run would do; writes nothing
  my-app apply                     brings every unit up to date
  my-app undo --last 3             rolls the last three applied units back
  my-app undo --to create-clients  rolls back every unit after create-clients
  my-app status --format json
  my-app history --change seed-clients
  my-app fix export-clients --rolled-back --reason \"removed the partial export by hand\"
  my-app verify                    applied units that changed since they were applied
  my-app repair 3_add_index --reason \"only comments changed\"

Exit codes: 0 ok, 1 failure, 2 usage.";

/// The standalone `flamingock` binary: operations on an audit store, without the program's units.
#[derive(Debug, Parser)]
#[command(
    name = "flamingock",
    version,
    about = "Inspect and repair a Flamingock audit store: status, history, fix, lock",
    long_about = "Inspect and repair a Flamingock audit store: status, history, fix, lock.\n\n\
        This binary knows only the audit store. Commands that need the change units themselves \
        (plan, apply, undo, validate) run from the program that declares them, through \
        `flamingock::cli::main()`.",
    after_help = STORE_EXAMPLES
)]
pub struct StoreCli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: StoreCommand,
}

/// The embedded command line: `flamingock::cli::main()` in a program that declares change units.
#[derive(Debug, Parser)]
#[command(
    about = "Flamingock operations for this program's change units",
    long_about = "Flamingock operations for this program's change units: status, history, plan, \
        apply, undo, fix, lock, validate, verify, repair.",
    after_help = APP_EXAMPLES
)]
pub struct AppCli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: AppCommand,
}

/// `status`'s options.
#[derive(Debug, Clone, Default, Args)]
pub struct StatusArgs {
    /// Only say whether anything is pending or blocked, with the exit code: 0 up to date, 3
    /// units pending, 4 a unit blocked (`--format json` for machines). The standalone binary
    /// knows only the units the audit records: a unit that never ran is not counted.
    #[arg(long)]
    pub check: bool,
    /// Only the units whose system version is in this semver range, e.g. ">=1.4.0, <1.5.0"
    /// (units without a version are not listed).
    #[arg(
        long = "system-versions",
        value_name = "RANGE",
        conflicts_with = "check"
    )]
    pub system_versions: Option<String>,
}

impl StatusArgs {
    /// The range of `--system-versions`; a range that is not one is a usage error.
    pub fn version_range(&self) -> Result<Option<semver::VersionReq>, String> {
        self.system_versions
            .as_deref()
            .map(|range| {
                semver::VersionReq::parse(range).map_err(|error| {
                    format!("--system-versions {range}: not a semver range ({error}); e.g. \">=1.4.0, <1.5.0\"")
                })
            })
            .transpose()
    }
}

/// Commands that need only the audit store.
#[derive(Debug, Clone, Subcommand)]
pub enum StoreCommand {
    /// Every unit's current state: when, by whom; pending and blocked units marked.
    #[command(
        after_help = "Examples:\n  flamingock status\n  flamingock status --check --format json\n  \
        flamingock status --system-versions \">=1.4.0, <1.5.0\"\n\n\
        Blocked units are listed with the exact `fix` command that resolves them. --check exits \
        0 up to date, 3 units pending, 4 a unit blocked. The standalone \
        binary shows the units the store has seen; a program's embedded CLI also shows its \
        units that never ran."
    )]
    Status(StatusArgs),

    /// The audit log, filtered: every state change of every unit.
    #[command(
        after_help = "Examples:\n  flamingock history --change create-clients\n  \
        flamingock history --author ana --since 2026-01-01 --until 2026-01-31 --format csv\n  \
        flamingock history --state FAILED --state ROLLBACK_FAILED --newest-first --limit 20\n  \
        flamingock history --system-version 1.4.0\n  \
        flamingock history --format html > report.html\n\n\
        Times are RFC 3339 (2026-01-31T12:00:00Z), a date (2026-01-31, UTC; --until includes \
        that whole day), or an age (30m, 12h, 7d ago). --since is inclusive, --until exclusive."
    )]
    History(HistoryArgs),

    /// Record that a person resolved a unit: its effect is in place, or it is not.
    #[command(after_help = "Examples:\n  \
        flamingock fix export-clients --applied --reason \"checked: the export is complete\"\n  \
        flamingock fix export-clients --rolled-back --reason \"deleted the partial export\"\n\n\
        Appends MANUAL_MARKED_AS_APPLIED or MANUAL_MARKED_AS_ROLLED_BACK with who (--by, default \
        $USER) and why, under the lock. --applied: runs skip the unit from now on; \
        --rolled-back: the next run applies it again.")]
    Fix(FixArgs),

    /// Show or release the distributed lock.
    #[command(
        after_help = "Examples:\n  flamingock lock show\n  flamingock lock release\n  \
        flamingock lock release --force\n\n\
        The lock is the one runs take (the program's lock key; \"flamingock\" by default). \
        `release` removes only a lease that has ended; --force removes a running one: use it only \
        when its holder is gone."
    )]
    Lock {
        #[command(subcommand)]
        action: LockAction,
    },
}

/// Commands that need the program's units, besides the store-only ones.
#[derive(Debug, Clone, Subcommand)]
pub enum AppCommand {
    #[command(flatten)]
    Store(StoreCommand),

    /// What a run would do with each unit; writes nothing.
    #[command(after_help = "Example:\n  my-app plan --format json\n\n\
        my-app plan --sql\n  my-app plan --check --format json\n\n\
        Exits 1 when a run would not get through (a blocked unit, a missing dependency). With \
        --check: 0 up to date, 3 units pending, 4 a unit blocked (1: the check itself failed).")]
    Plan(PlanArgs),

    /// Bring every selected unit up to date (what `flamingock::run!()` does).
    #[command(after_help = "Example:\n  my-app apply --stage schema")]
    Apply(SelectionArgs),

    /// Roll applied units back with their rollback methods, newest first, under the lock.
    #[command(after_help = "Examples:\n  my-app undo --last 3\n  \
        my-app undo --to create-clients      (create-clients stays applied)\n  \
        my-app undo --last 1 --dry-run\n  \
        my-app undo --to-version 1.3.0 --dry-run   (everything that came after 1.3.0)\n\n\
        Each unit is recorded as ROLLED_BACK or ROLLBACK_FAILED; the next apply runs rolled back \
        units again. Nothing runs when a unit in range has no rollback method or is blocked.")]
    Undo(UndoArgs),

    /// Check the program's units (duplicate ids or orders) without a database.
    #[command(after_help = "Example:\n  my-app validate")]
    Validate(SelectionArgs),

    /// Copy another tool's history (sqlx, refinery, diesel, sea-orm) into the audit, under the
    /// lock; the tool's table is only read.
    #[command(after_help = "Examples:\n  my-app import --from sqlx\n  \
        my-app import --from diesel --table old_diesel_migrations --ignore-unknown\n\n\
        Each migration the tool applied is recorded as APPLIED (sqlx's failed ones as in doubt, \
        blocking until `fix`). Units that already have audit rows are left alone, so importing \
        twice imports nothing. An entry that matches no unit refuses the import (nothing is \
        written) unless --ignore-unknown.")]
    Import(ImportArgs),

    /// Record every unit up to one as applied by a person, for a database whose schema exists
    /// but has no history.
    #[command(
        after_help = "Example:\n  my-app baseline --up-to 20240301120000_add_orders \
        --reason \"restored from the production dump of 2024-03-01\"\n\n\
        Refused, with nothing written, if any of those units already has history."
    )]
    Baseline(BaselineArgs),

    /// List applied units whose code or SQL file changed since they were applied (drift), and
    /// those whose history has no checksum to compare; writes nothing.
    #[command(
        after_help = "Examples:\n  my-app verify\n  my-app verify --format json\n\n\
        Exits 1 when any unit drifted, 0 otherwise (units that cannot be compared are listed, \
        and do not fail it). `repair` accepts a drifted unit as it is now."
    )]
    Verify(SelectionArgs),

    /// Accept an applied unit as it is now, after it changed (or when its imported history has
    /// no checksum): records its current checksum, with who and why, under the lock.
    #[command(after_help = "Example:\n  \
        my-app repair 3_add_index --reason \"reformatted the file; the index is the same\"\n\n\
        Appends MANUAL_MARKED_AS_APPLIED with the unit's current checksum, the previous one, who \
        (--by, default $USER) and why. Refused, with nothing written, when the unit is not \
        applied or has not drifted.")]
    Repair(RepairArgs),
}

/// `import` arguments.
#[derive(Debug, Clone, Args)]
pub struct ImportArgs {
    /// The tool whose history table is read.
    #[arg(long, value_name = "TOOL", value_parser = ["sqlx", "refinery", "diesel", "sea-orm"])]
    pub from: String,
    /// The history table, if not the tool's default.
    #[arg(long, value_name = "NAME")]
    pub table: Option<String>,
    /// Skip entries that match no unit instead of refusing the import.
    #[arg(long)]
    pub ignore_unknown: bool,
}

/// `baseline` arguments.
#[derive(Debug, Clone, Args)]
pub struct BaselineArgs {
    /// The last unit (in run order) whose change is already in place.
    #[arg(long, value_name = "ID")]
    pub up_to: String,
    /// Why: how the schema came to be there.
    #[arg(long, value_name = "TEXT")]
    pub reason: String,
    /// Who decides (default: $USER).
    #[arg(long, value_name = "NAME")]
    pub by: Option<String>,
}

/// `repair` arguments.
#[derive(Debug, Clone, Args)]
pub struct RepairArgs {
    /// The unit's id.
    pub change_id: String,
    /// Why the unit may stay as it is now: what was checked.
    #[arg(long, value_name = "TEXT")]
    pub reason: String,
    /// Who accepts it (default: $USER).
    #[arg(long, value_name = "NAME")]
    pub by: Option<String>,
}

/// `history` filters.
#[derive(Debug, Clone, Args)]
pub struct HistoryArgs {
    /// Only rows of this unit.
    #[arg(long, value_name = "ID")]
    pub change: Option<String>,
    /// Only rows by this author (a unit's author, or who made a manual fix).
    #[arg(long, value_name = "NAME")]
    pub author: Option<String>,
    /// Only rows in this state (repeatable): STARTED, APPLIED, FAILED, ROLLED_BACK,
    /// ROLLBACK_FAILED, MANUAL_MARKED_AS_APPLIED, MANUAL_MARKED_AS_ROLLED_BACK.
    #[arg(long = "state", value_name = "STATE")]
    pub states: Vec<String>,
    /// Only rows of this stage.
    #[arg(long, value_name = "STAGE")]
    pub stage: Option<String>,
    /// Only rows of this run (its execution id).
    #[arg(long, value_name = "ID")]
    pub execution: Option<String>,
    /// Only rows of units that ship with this system version (a semver version, e.g. 1.4.0).
    #[arg(long = "system-version", value_name = "VERSION")]
    pub system_version: Option<String>,
    /// Only rows written at or after this time.
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only rows written before this time.
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Newest rows first (default: oldest first).
    #[arg(long)]
    pub newest_first: bool,
    /// At most this many rows.
    #[arg(long, value_name = "N")]
    pub limit: Option<u32>,
    /// Only rows after this row id in the chosen order (the next page).
    #[arg(long, value_name = "ROW_ID")]
    pub after: Option<i64>,
}

/// `fix` arguments.
#[derive(Debug, Clone, Args)]
#[command(group(ArgGroup::new("resolution").required(true).args(["applied", "rolled_back"])))]
pub struct FixArgs {
    /// The unit's id.
    pub change_id: String,
    /// Its effect is in place: runs skip it from now on.
    #[arg(long)]
    pub applied: bool,
    /// Its effect is not in place: the next run applies it again.
    #[arg(long)]
    pub rolled_back: bool,
    /// Why: what was checked and what was found.
    #[arg(long, value_name = "TEXT")]
    pub reason: String,
    /// Who decides (default: $USER).
    #[arg(long, value_name = "NAME")]
    pub by: Option<String>,
}

/// `lock` actions.
#[derive(Debug, Clone, Subcommand)]
pub enum LockAction {
    /// Who holds the lock, since when, until when.
    Show,
    /// Remove a lease that has ended (its holder crashed); --force removes a running one too.
    Release(ReleaseArgs),
}

/// `lock release` options.
#[derive(Debug, Clone, Args)]
pub struct ReleaseArgs {
    /// Remove the lease even if it is still running. Its holder, if alive, stops at its next
    /// audit write; a non-transactional unit it is in the middle of may still finish.
    #[arg(long)]
    pub force: bool,
}

/// `undo` arguments.
#[derive(Debug, Clone, Args)]
#[command(group(ArgGroup::new("scope").required(true).args(["to", "last", "to_version"])))]
pub struct UndoArgs {
    /// Roll back every applied unit ordered after this one (it stays applied).
    #[arg(long, value_name = "ID")]
    pub to: Option<String>,
    /// Roll back the last N applied units.
    #[arg(long, value_name = "N")]
    pub last: Option<usize>,
    /// Roll back every applied unit whose system version is above VERSION (what came with
    /// later releases), newest first; units without a system version are not touched.
    #[arg(long, value_name = "VERSION")]
    pub to_version: Option<String>,
    /// Show what would be rolled back; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub selection: SelectionArgs,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn grammars_are_consistent() {
        StoreCli::command().debug_assert();
        AppCli::command().debug_assert();
    }

    #[test]
    fn undo_needs_exactly_one_scope() {
        assert!(AppCli::try_parse_from(["app", "undo"]).is_err());
        assert!(AppCli::try_parse_from(["app", "undo", "--to", "a", "--last", "1"]).is_err());
        assert!(
            AppCli::try_parse_from(["app", "undo", "--to", "a", "--to-version", "1.0.0"]).is_err()
        );
        assert!(AppCli::try_parse_from(["app", "undo", "--to-version", "1.3.0"]).is_ok());
        let cli = AppCli::try_parse_from(["app", "undo", "--last", "3"]).expect("valid");
        assert!(matches!(
            cli.command,
            AppCommand::Undo(UndoArgs { last: Some(3), .. })
        ));
    }

    #[test]
    fn fix_needs_a_resolution_and_a_reason() {
        assert!(StoreCli::try_parse_from(["f", "fix", "a", "--reason", "r"]).is_err());
        assert!(StoreCli::try_parse_from(["f", "fix", "a", "--applied"]).is_err());
        assert!(
            StoreCli::try_parse_from([
                "f",
                "fix",
                "a",
                "--applied",
                "--rolled-back",
                "--reason",
                "r"
            ])
            .is_err()
        );
        assert!(StoreCli::try_parse_from(["f", "fix", "a", "--applied", "--reason", "r"]).is_ok());
    }
}
