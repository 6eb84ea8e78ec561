//! The command line (feature `cli`): `status`, `history`, `plan`, `apply`, `undo`, `fix`, `lock`,
//! `validate`, `verify`, `repair` (docs/architecture.md#recovery for `fix` and undo, docs/drift.md
//! for `verify` and `repair`).
//!
//! Put it in a binary of your own, so that it knows your change units:
//!
//! ```no_run
//! // src/bin/migrate.rs — `cargo run --bin migrate -- status`
//! use std::process::ExitCode;
//!
//! fn main() -> ExitCode {
//!     let builder = flamingock::Flamingock::builder()
//!         .app(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"));
//!     flamingock::cli::main_with(builder)
//! }
//! ```
//!
//! The standalone `flamingock` binary (crate `flamingock-cli`) runs [`standalone_main`]: the
//! commands that need only the audit store, on `--database-url` or `FLAMINGOCK_DATABASE_URL`.
//! Results print as a table, or `--format json|csv` for scripts (`history` also `html`); a
//! progress bar shows on `apply` and `undo` when stderr is a terminal. Exit codes: 0 ok,
//! 1 failure, 2 usage.

mod app_commands;
mod args;
mod drift_commands;
mod html;
mod output;
mod plan_sql;
mod progress;
mod status;
mod store_commands;
mod takeover;
mod time;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches};
use flamingock_core::testing::MemoryAuditStore;
use flamingock_core::{ChangeUnit, Engine, StoreError};

pub use args::Format;

use crate::{Flamingock, FlamingockBuilder};
use args::{AppCli, AppCommand, StoreCli, StoreCommand};

/// Runs the embedded command line on this process's arguments, with an audit store from
/// `--database-url`, `FLAMINGOCK_DATABASE_URL` or the default SQLite file.
pub fn main() -> ExitCode {
    main_with(Flamingock::builder())
}

/// [`main`] on a builder of your own (dependencies, targets, selection, lock settings). Options
/// typed on the command line (`--database-url`, `--audit-table`) take precedence over it. It
/// starts a tokio runtime of its own: call it from a sync `main` (from an async one, use
/// [`main_async`]).
pub fn main_with(builder: FlamingockBuilder) -> ExitCode {
    run_from(std::env::args_os(), builder)
}

/// [`main_with`] inside a tokio runtime the program already runs, for builders whose targets
/// need one to be made (a pool connected with `.await`):
///
/// ```no_run
/// #[tokio::main]
/// async fn main() -> std::process::ExitCode {
///     let builder = flamingock::Flamingock::builder();
///     // ... .target(flamingock::SqlTarget::connect("warehouse", "postgres://…").await?) ...
///     flamingock::cli::main_async(builder).await
/// }
/// ```
pub async fn main_async(builder: FlamingockBuilder) -> ExitCode {
    run_async_from(std::env::args_os(), builder).await
}

/// [`main_with`] on the given arguments (the first is the program's name).
pub fn run_from<I, T>(args: I, builder: FlamingockBuilder) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    match app_invocation(args, builder) {
        Ok(invocation) => execute(invocation.run()),
        Err(code) => code,
    }
}

/// [`main_async`] on the given arguments (the first is the program's name).
pub async fn run_async_from<I, T>(args: I, builder: FlamingockBuilder) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    match app_invocation(args, builder) {
        Ok(invocation) => outcome(invocation.run().await),
        Err(code) => code,
    }
}

/// A parsed command line of the embedded CLI, ready to run.
struct AppInvocation {
    cli: AppCli,
    builder: FlamingockBuilder,
    progress: progress::Progress,
}

/// Parses the arguments and applies the options typed on the command line to `builder`.
fn app_invocation<I, T>(args: I, mut builder: FlamingockBuilder) -> Result<AppInvocation, ExitCode>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let matches = AppCli::command()
        .try_get_matches_from(args)
        .map_err(clap_exit)?;
    let cli = AppCli::from_arg_matches(&matches).map_err(clap_exit)?;
    let typed = |id: &str| matches.value_source(id) == Some(ValueSource::CommandLine);
    if let (true, Some(url)) = (typed("database_url"), &cli.global.database_url) {
        builder = builder.database_url(url);
    }
    if let (true, Some(table)) = (typed("audit_table"), &cli.global.audit_table) {
        builder = builder.audit_table(table);
    }
    check_app_arguments(&cli)?;
    if let Some(range) = selection_args(&cli.command).and_then(|s| s.system_versions.as_ref()) {
        builder = builder.system_versions(range);
    }
    builder = builder.read_only(app_reads_only(&cli.command));
    if matches!(cli.command, AppCommand::Validate(_)) {
        // Validation needs the builder's selection, not its database: connect to nothing.
        builder = builder.audit_store(std::sync::Arc::new(MemoryAuditStore::new()));
    }
    let progress = progress::init(cli.global.verbose);
    Ok(AppInvocation {
        cli,
        builder,
        progress,
    })
}

impl AppInvocation {
    async fn run(self) -> Result<(), Failure> {
        let units_check = self.builder.units_check();
        let engine = self.builder.build().await.map_err(Failure::from_engine)?;
        let session = Session {
            engine,
            units: ChangeUnit::registered().collect(),
            units_check,
            format: self.cli.global.format,
            progress: self.progress,
        };
        match &self.cli.command {
            AppCommand::Store(StoreCommand::Status(status)) if status.check => {
                app_commands::check(&session, session.units.clone()).await
            }
            AppCommand::Store(StoreCommand::Status(args)) => {
                app_commands::status(&session, args).await
            }
            AppCommand::Store(command) => store_command(&session, command).await,
            AppCommand::Plan(plan) if plan.sql => {
                plan_sql::plan_sql(&session, &plan.selection).await
            }
            AppCommand::Plan(plan) if plan.check => {
                app_commands::plan_check(&session, &plan.selection).await
            }
            AppCommand::Plan(plan) => app_commands::plan(&session, &plan.selection).await,
            AppCommand::Apply(selection) => app_commands::apply(&session, selection).await,
            AppCommand::Undo(undo) => app_commands::undo(&session, undo).await,
            AppCommand::Validate(selection) => app_commands::validate(&session, selection),
            AppCommand::Import(args) => takeover::import(&session, args).await,
            AppCommand::Baseline(args) => takeover::baseline(&session, args).await,
            AppCommand::Verify(selection) => drift_commands::verify(&session, selection).await,
            AppCommand::Repair(repair) => drift_commands::repair(&session, repair).await,
        }
    }
}

/// The standalone `flamingock` binary: the commands that need only the audit store.
pub fn standalone_main() -> ExitCode {
    standalone_from(std::env::args_os())
}

/// [`standalone_main`] on the given arguments (the first is the program's name).
pub fn standalone_from<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match StoreCli::try_parse_from_args(args) {
        Ok(cli) => cli,
        Err(error) => return clap_exit(error),
    };
    let Some(url) = standalone_url(&cli) else {
        return report(Failure::Usage(
            "which audit store? pass --database-url URL or set FLAMINGOCK_DATABASE_URL (or DATABASE_URL)".into(),
        ));
    };
    if let Err(failure) = store_commands::check_arguments(&cli.command, cli.global.format) {
        return report(failure);
    }
    let progress = progress::init(cli.global.verbose);
    execute(async move {
        // Rows this binary writes (`fix`) name it as their application.
        let mut builder = Flamingock::builder()
            .database_url(url)
            .read_only(store_reads_only(&cli.command))
            .app("flamingock-cli", env!("CARGO_PKG_VERSION"));
        if let Some(table) = &cli.global.audit_table {
            builder = builder.audit_table(table);
        }
        let engine = builder.build().await.map_err(Failure::from_engine)?;
        let session = Session {
            engine,
            units: Vec::new(),
            units_check: Default::default(),
            format: cli.global.format,
            progress,
        };
        store_command(&session, &cli.command).await
    })
}

/// The standalone binary's audit store: `--database-url` or `FLAMINGOCK_DATABASE_URL`, else
/// `DATABASE_URL` (said on stderr, as the operator did not name it for Flamingock), as a run
/// chooses it; there is no default file, since an operator's command must name its store.
fn standalone_url(cli: &StoreCli) -> Option<String> {
    if let Some(url) = &cli.global.database_url {
        return Some(url.clone());
    }
    let url = std::env::var(crate::SQLX_DATABASE_URL_ENV)
        .ok()
        .filter(|url| !url.trim().is_empty())?;
    use std::io::Write as _;
    let _ = writeln!(
        std::io::stderr(),
        "note: audit store from DATABASE_URL ({}), as FLAMINGOCK_DATABASE_URL is unset",
        flamingock_sqlx::redact_url(&url)
    );
    Some(url)
}

/// Whether a store-only command only reads: its store is opened read-only (no file, table or
/// index is created).
fn store_reads_only(command: &StoreCommand) -> bool {
    match command {
        StoreCommand::Status(_) | StoreCommand::History(_) => true,
        StoreCommand::Lock { action } => matches!(action, args::LockAction::Show),
        StoreCommand::Fix(_) => false,
    }
}

/// [`store_reads_only`] for the embedded CLI's commands.
fn app_reads_only(command: &AppCommand) -> bool {
    match command {
        AppCommand::Store(command) => store_reads_only(command),
        AppCommand::Plan(_) | AppCommand::Validate(_) | AppCommand::Verify(_) => true,
        AppCommand::Undo(undo) => undo.dry_run,
        AppCommand::Apply(_)
        | AppCommand::Import(_)
        | AppCommand::Baseline(_)
        | AppCommand::Repair(_) => false,
    }
}

/// The `--stage` / `--module` / `--system-versions` options of a command that has them.
fn selection_args(command: &AppCommand) -> Option<&args::SelectionArgs> {
    match command {
        AppCommand::Plan(plan) => Some(&plan.selection),
        AppCommand::Apply(selection) | AppCommand::Validate(selection) => Some(selection),
        AppCommand::Undo(undo) => Some(&undo.selection),
        AppCommand::Verify(selection) => Some(selection),
        AppCommand::Store(_)
        | AppCommand::Import(_)
        | AppCommand::Baseline(_)
        | AppCommand::Repair(_) => None,
    }
}

/// Refuses what the command line gets wrong before the store is opened.
fn check_app_arguments(cli: &AppCli) -> Result<(), ExitCode> {
    let checked = match &cli.command {
        AppCommand::Store(command) => store_commands::check_arguments(command, cli.global.format),
        AppCommand::Undo(undo) => app_commands::undo_scope(undo).map(drop),
        AppCommand::Repair(repair) => drift_commands::operator(repair).map(drop),
        _ => Ok(()),
    };
    let checked = checked.and_then(|()| match (&cli.command, cli.global.format) {
        (AppCommand::Store(_), _) | (_, Format::Table | Format::Json | Format::Csv) => Ok(()),
        (_, Format::Html) => Err(output::html_only_for_history()),
    });
    checked.map_err(report)
}

impl StoreCli {
    fn try_parse_from_args<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        <Self as clap::Parser>::try_parse_from(args)
    }
}

/// `history`, `fix`, `lock` (and the store-only `status`), with or without the program's units.
async fn store_command(session: &Session, command: &StoreCommand) -> Result<(), Failure> {
    match command {
        StoreCommand::Status(status) if status.check => status::check(session).await,
        StoreCommand::Status(args) => status::status(session, args).await,
        StoreCommand::History(args) => store_commands::history(session, args).await,
        StoreCommand::Fix(args) => {
            session
                .engine
                .store()
                .initialize()
                .await
                .map_err(Failure::from_store)?;
            store_commands::fix(session, args).await
        }
        StoreCommand::Lock { action } => store_commands::lock(session, action).await,
    }
}

/// Whether the audit table is there (a store that may write creates it). A store opened only to
/// read, that nothing ran against yet, has none and creates none: that is said on stderr, and
/// the command answers as for an empty audit.
pub(crate) async fn audit_table_present(session: &Session) -> Result<bool, Failure> {
    match session.engine.store().initialize().await {
        Ok(()) => Ok(true),
        Err(error @ StoreError::NoAuditTable { .. }) => {
            use std::io::Write as _;
            let _ = writeln!(std::io::stderr(), "note: {error}");
            Ok(false)
        }
        Err(error) => Err(Failure::from_store(error)),
    }
}

/// What one invocation works with.
pub(crate) struct Session {
    engine: Engine,
    /// The program's units (none in the standalone binary).
    units: Vec<&'static ChangeUnit>,
    /// What `plan` and `apply` check before they run: the builder's `allow_no_units` and
    /// `.units(..)` crates, and its selection.
    units_check: (
        crate::unit_crate::UnitsExpected,
        flamingock_core::plan::Selection,
    ),
    format: Format,
    progress: progress::Progress,
}

/// Why a command did not succeed, and so its exit code.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The command line asks for something impossible (exit code 2).
    Usage(String),
    /// The command failed (exit code 1).
    Failed(String),
    /// A check's answer that is not "all is well" (`plan --check`: 3 pending, 4 blocked),
    /// already printed: the exit code alone, no error line.
    Check(u8),
    /// Whoever read the output stopped reading (a closed pipe): the command stops there, quietly
    /// and with success, since what it did was done and nobody is left to tell.
    OutputClosed,
}

impl Failure {
    fn from_store(error: StoreError) -> Self {
        Failure::Failed(error.to_string())
    }

    fn from_engine(error: flamingock_core::Error) -> Self {
        match error {
            flamingock_core::Error::Config(message) => Failure::Usage(message),
            other => Failure::Failed(other.to_string()),
        }
    }
}

/// Runs a command on a runtime of its own and turns its outcome into an exit code.
fn execute(command: impl std::future::Future<Output = Result<(), Failure>>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            return report(Failure::Failed(format!(
                "cannot start a tokio runtime: {error}"
            )));
        }
    };
    outcome(runtime.block_on(command))
}

fn outcome(result: Result<(), Failure>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => report(failure),
    }
}

fn report(failure: Failure) -> ExitCode {
    use std::io::Write as _;
    // `eprintln!` would panic on a closed stderr; the exit code still tells.
    let mut stderr = std::io::stderr();
    match failure {
        Failure::Usage(message) => {
            let _ = writeln!(
                stderr,
                "error: {message}\n\nFor more information, try '--help'."
            );
            ExitCode::from(2)
        }
        Failure::Failed(message) => {
            // Error texts carry ids, authors and causes verbatim: escape what would act on the
            // terminal.
            let message = output::terminal_safe_lines(&message);
            let _ = writeln!(stderr, "error: {message}");
            ExitCode::FAILURE
        }
        Failure::Check(code) => ExitCode::from(code),
        Failure::OutputClosed => ExitCode::SUCCESS,
    }
}

/// Prints clap's message (help and version to stdout, errors to stderr) with its exit code:
/// 0 for help and version, 2 for usage errors.
fn clap_exit(error: clap::Error) -> ExitCode {
    let _ = error.print();
    ExitCode::from(u8::try_from(error.exit_code()).unwrap_or(2))
}
