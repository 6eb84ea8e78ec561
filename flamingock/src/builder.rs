//! `Flamingock::builder()`: where the audit store, dependencies, targets and selection are set.

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use flamingock_core::engine::{Engine, RunOptions};
use flamingock_core::listener::RunListener;
use flamingock_core::plan::Selection;
use flamingock_core::store::AuditStore;
use flamingock_core::target::TargetSystem;
use flamingock_core::{ChangeUnit, Dependencies, Error, RunReport};

/// The environment variable holding the audit store's URL. When it is unset,
/// [`SQLX_DATABASE_URL_ENV`](crate::SQLX_DATABASE_URL_ENV) (`DATABASE_URL`) is used if set.
pub const DATABASE_URL_ENV: &str = "FLAMINGOCK_DATABASE_URL";
/// The environment variable holding the audit table's name.
pub const AUDIT_TABLE_ENV: &str = "FLAMINGOCK_AUDIT_TABLE";
/// The environment variable that makes every run validate-only (`1`/`true`; `0`/`false` or
/// unset: runs apply), as [`FlamingockBuilder::validate_only`] does.
pub const VALIDATE_ONLY_ENV: &str = "FLAMINGOCK_VALIDATE_ONLY";
/// The environment variable holding the range of system versions runs apply
/// (`>=1.2.0, <2.0.0`), as [`FlamingockBuilder::system_versions`] does; the builder's wins.
pub const SYSTEM_VERSIONS_ENV: &str = "FLAMINGOCK_SYSTEM_VERSIONS";
/// The audit store used when no URL is configured: a SQLite file in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://flamingock.db";

/// The entry point: `Flamingock::builder()`, then [`run!`](crate::run!) (or
/// [`run_blocking!`](crate::run_blocking!)) with the builder.
///
/// ```standalone_crate
/// use flamingock::Flamingock;
///
/// # #[tokio::main] async fn main() -> Result<(), flamingock::Error> {
/// let builder = Flamingock::builder().database_url("sqlite::memory:");
/// // This program declares no change unit: a run is refused unless that is allowed.
/// let refused = flamingock::run!(builder).await;
/// assert!(matches!(refused, Err(flamingock::Error::NoUnitsSelected { .. })));
///
/// let builder = Flamingock::builder()
///     .database_url("sqlite::memory:")
///     .allow_no_units();
/// let report = flamingock::run!(builder).await?;
/// assert!(report.applied().is_empty());
/// # Ok(()) }
/// ```
pub struct Flamingock;

impl Flamingock {
    /// A builder with nothing set: the audit store comes from `FLAMINGOCK_DATABASE_URL`, else
    /// from `DATABASE_URL`, else is a local `flamingock.db` SQLite file.
    pub fn builder() -> FlamingockBuilder {
        FlamingockBuilder::default()
    }
}

/// Configures and starts a run. Every setting has a default; see each method.
///
/// ```standalone_crate
/// use flamingock::prelude::*;
///
/// pub struct AppConfig {
///     pub greeting: String,
/// }
///
/// #[change_unit(id = "greet", order = "1", author = "ana", stage = "schema", transactional = false)]
/// mod greet {
///     use super::*;
///
///     #[execution]
///     pub fn execute(config: &AppConfig) {
///         println!("{}", config.greeting);
///     }
/// }
///
/// # #[tokio::main] async fn main() -> Result<(), flamingock::Error> {
/// let builder = Flamingock::builder()
///     .database_url("sqlite::memory:") // default: FLAMINGOCK_DATABASE_URL, or ./flamingock.db
///     .dependency(AppConfig { greeting: "hello".into() }) // a `&AppConfig` parameter
///     .stage("schema"); // only the units of this stage
/// let report = flamingock::run!(builder).await?;
/// assert_eq!(report.applied(), ["greet"]);
/// # Ok(()) }
/// ```
#[derive(Default)]
pub struct FlamingockBuilder {
    database_url: Option<String>,
    store: Option<Arc<dyn AuditStore>>,
    audit_table: Option<String>,
    lock_table: Option<String>,
    lock_key: Option<String>,
    lock_lease: Option<Duration>,
    lock_wait: Option<Duration>,
    dependencies: Dependencies,
    targets: Vec<Arc<dyn TargetSystem>>,
    selection: Selection,
    app_name: Option<String>,
    app_version: Option<String>,
    read_only: bool,
    units_expected: crate::unit_crate::UnitsExpected,
    placeholders: flamingock_core::sql_unit::SqlPlaceholders,
    listeners: Vec<Arc<dyn RunListener>>,
    validate_only: bool,
    /// `.system_versions(..)` as given, parsed when the engine is built.
    system_versions: Option<String>,
    history_import: Option<flamingock_core::import::ImportOptions>,
    baseline: Option<(String, String)>,
    /// The Flamingock server's token (never shown: the builder has no `Debug`).
    token: Option<String>,
    on_drift: Option<flamingock_core::engine::DriftPolicy>,
}

impl FlamingockBuilder {
    /// The audit store's URL (`sqlite://file.db`, `postgres://...`, `mysql://...`). Takes
    /// precedence over `FLAMINGOCK_DATABASE_URL` and `DATABASE_URL`.
    pub fn database_url(mut self, url: impl Into<String>) -> Self {
        self.database_url = Some(url.into());
        self
    }

    /// Runs only the units whose `system_version` is in `range`, a semver requirement
    /// (`">=1.2.0, <2.0.0"`, `"~1.4"`): the others are reported as out of range, never applied
    /// or blocked. Units without a system version are always in range. Also
    /// `FLAMINGOCK_SYSTEM_VERSIONS` (the builder's wins) and the CLI's `--system-versions`. A
    /// range that does not parse fails the run before it connects. As in semver, a pre-release
    /// (`1.4.0-rc.1`) is only in a range that names a pre-release of the same version.
    pub fn system_versions(mut self, range: impl Into<String>) -> Self {
        self.system_versions = Some(range.into());
        self
    }

    /// Makes runs apply nothing: a run that finds a unit pending or blocked fails with
    /// [`Error::PendingUnits`] listing them, before it takes the lock or writes anything; one
    /// that finds everything applied succeeds. For services that must never migrate themselves
    /// (a separate job or init container does). Also set by `FLAMINGOCK_VALIDATE_ONLY=1`.
    pub fn validate_only(mut self) -> Self {
        self.validate_only = true;
        self
    }

    /// Adds a listener, told of every event of the runs (run started, each unit started and
    /// finished with its outcome and duration, run finished or failed), after the listeners
    /// added before it. A listener that fails or panics is logged and changes nothing in the
    /// run. See [`crate::listener`]; `WebhookListener` (feature `webhook`) posts the events to
    /// a URL.
    pub fn listener(mut self, listener: impl RunListener + 'static) -> Self {
        self.listeners.push(Arc::new(listener));
        self
    }

    /// An audit store built by hand (e.g. on a pool the application already has, or the
    /// in-memory store in tests). Takes precedence over any URL.
    pub fn audit_store(mut self, store: Arc<dyn AuditStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// The audit table's name (default `flamingock_audit_log`, or `FLAMINGOCK_AUDIT_TABLE`). It
    /// must be a plain SQL identifier; anything else is refused before any SQL runs.
    pub fn audit_table(mut self, name: impl Into<String>) -> Self {
        self.audit_table = Some(name.into());
        self
    }

    /// The lock table's name (default `flamingock_lock` beside the default audit table,
    /// `<audit table>_lock` beside another; or `FLAMINGOCK_LOCK_TABLE`). A plain SQL identifier.
    pub fn lock_table(mut self, name: impl Into<String>) -> Self {
        self.lock_table = Some(name.into());
        self
    }

    /// The key of the lock row runs take (default `"flamingock"`). Applications that share an
    /// audit table but must not wait for each other use different keys.
    pub fn lock_key(mut self, key: impl Into<String>) -> Self {
        self.lock_key = Some(key.into());
        self
    }

    /// How long a lease lasts unless its holder extends it (it does, at a third of it, while it
    /// runs); a crashed holder is replaced this long after its last extension. Default 60 s, or
    /// `FLAMINGOCK_LOCK_LEASE_SECS`; between 100 ms and 24 h.
    pub fn lock_lease(mut self, lease: Duration) -> Self {
        self.lock_lease = Some(lease);
        self
    }

    /// How long a run waits for a lock another instance holds before it gives up with an error
    /// naming the holder. Default 180 s, or `FLAMINGOCK_LOCK_WAIT_SECS`.
    pub fn lock_wait(mut self, wait: Duration) -> Self {
        self.lock_wait = Some(wait);
        self
    }

    /// Opens the audit store only to read (default: no), for tools that only look, like the
    /// CLI's `status`, `history`, `plan` and `lock show`: a SQLite file is opened read-only and
    /// never created, and no table is created or upgraded (see
    /// [`StoreOptions::read_only`](flamingock_sqlx::StoreOptions::read_only)). A store given
    /// with [`audit_store`](Self::audit_store) is used as it is.
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// The token for a Flamingock server audit store (a URL `http://` or `https://`; feature
    /// `server`); default: the `FLAMINGOCK_TOKEN` variable. Never logged or shown.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Offers `value` to every change unit as a `&T` parameter.
    pub fn dependency<T: Any + Send + Sync>(mut self, value: T) -> Self {
        self.dependencies.insert(value);
        self
    }

    /// The value of `${name}` in the SQL files of [`sql_units!`](crate::sql_units) (replaced
    /// before a file runs; its checksum is of the file as written). The environment variable
    /// `FLAMINGOCK_PLACEHOLDER_<NAME>` (`${schema}`: `FLAMINGOCK_PLACEHOLDER_SCHEMA`) overrides
    /// it. A placeholder with no value in a file a run would apply (or undo) is refused before
    /// anything runs.
    pub fn placeholder(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.placeholders.insert(name, value);
        self
    }

    /// What a run does when an applied unit changed since it was applied (its checksum is not
    /// the one the audit recorded): [`DriftPolicy::Stop`](crate::DriftPolicy::Stop), the
    /// default, stops it before anything runs, naming each unit and the `repair` command;
    /// [`DriftPolicy::Warn`](crate::DriftPolicy::Warn) logs a warning, lists them in the report
    /// and goes on. Unset here, `FLAMINGOCK_ON_DRIFT` (`stop` or `warn`) decides.
    pub fn on_drift(mut self, policy: flamingock_core::engine::DriftPolicy) -> Self {
        self.on_drift = Some(policy);
        self
    }

    /// Adds a target system that units name with `target_system = "..."`.
    pub fn target(mut self, target: impl TargetSystem + 'static) -> Self {
        self.targets.push(Arc::new(target));
        self
    }

    /// Runs only units of this stage (may be called several times). Default: every stage.
    pub fn stage(mut self, stage: impl Into<String>) -> Self {
        self.selection.stages.push(stage.into());
        self
    }

    /// Runs only units of these stages, one stage after the other in the order given (every
    /// unit of `"schema"`, then of `"data"`), each in its units' order. A run stops at the first
    /// failure, so a stage runs only when the ones before it succeeded; a blocked unit stops its
    /// stage and the ones after it, while the stages before it are still brought up to date.
    /// Replaces the stages named with [`stage`](Self::stage).
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), flamingock::Error> {
    /// flamingock::run!(flamingock::Flamingock::builder().stages(["schema", "data"])).await?;
    /// # Ok(()) }
    /// ```
    pub fn stages<S: Into<String>>(mut self, stages: impl IntoIterator<Item = S>) -> Self {
        self.selection.stages = stages.into_iter().map(Into::into).collect();
        self.selection.ordered_stages = true;
        self
    }

    /// Runs only units declared in this module or below it (`my_app::billing`; may be called
    /// several times), so independent pipelines, and tests, can share one binary.
    pub fn module(mut self, module_prefix: impl Into<String>) -> Self {
        self.selection.module_prefixes.push(module_prefix.into());
        self
    }

    /// Links the change units of a library crate into the program, from the
    /// `change_units()` its [`export_units!`](crate::export_units) declares (may be called once
    /// per crate). A crate the program never names is not linked, and its units are never seen:
    ///
    /// ```ignore
    /// let builder = flamingock::Flamingock::builder()
    ///     .units(billing_units::change_units())
    ///     .units(search_units::change_units());
    /// ```
    ///
    /// It does not narrow the run: units of the program itself, and of every other linked crate,
    /// run too (`.module(..)` narrows).
    pub fn units(mut self, units: crate::UnitCrate) -> Self {
        self.units_expected.crates.push(units);
        self
    }

    /// Makes the run import another tool's history first (sqlx, refinery, diesel, sea-orm): under
    /// the lock, before it plans, each migration that tool applied is recorded as applied, once
    /// (docs/migrating.md). The source table is only read.
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), flamingock::Error> {
    /// use flamingock::{Flamingock, ImportOptions, SourceTool};
    /// // beside `flamingock::sql_units!("migrations");`, the folder sqlx's migrator applied
    /// let builder = Flamingock::builder().import_history(ImportOptions::from(SourceTool::Sqlx));
    /// let report = flamingock::run!(builder).await?;
    /// println!("{report}");
    /// # Ok(()) }
    /// ```
    pub fn import_history(mut self, options: flamingock_core::import::ImportOptions) -> Self {
        self.history_import = Some(options);
        self
    }

    /// Before the first run on a database whose schema exists but has no history: records every
    /// selected unit up to and including `up_to` (in run order) as applied by a person
    /// (`MANUAL_MARKED_AS_APPLIED`, `baseline: true`, the reason in metadata; the person is
    /// `$USER`, else the application's name). Once any of those units has history, later runs
    /// record nothing and take no lock for it (units in range added since are named in a
    /// warning and applied by the run); a validate-only run records nothing. The CLI's
    /// `baseline` does the same once, by hand, and refuses when any unit in range has history.
    pub fn baseline(mut self, up_to: impl Into<String>, reason: impl Into<String>) -> Self {
        self.baseline = Some((up_to.into(), reason.into()));
        self
    }

    /// Lets a run that selects no change unit succeed, doing nothing. Without it such a run
    /// fails with [`Error::NoUnitsSelected`] before it connects: finding no unit almost always
    /// means units in a library crate the program does not name (see
    /// [`units`](Self::units)), or a stage or module selection that matches nothing.
    pub fn allow_no_units(mut self) -> Self {
        self.units_expected.allow_none = true;
        self
    }

    /// The units this builder's runs select.
    pub(crate) fn selection(&self) -> &Selection {
        &self.selection
    }

    /// What the CLI needs to refuse an `apply` that selects nothing, as [`run`](Self::run) does.
    #[cfg(feature = "cli")]
    pub(crate) fn units_check(&self) -> (crate::unit_crate::UnitsExpected, Selection) {
        (self.units_expected.clone(), self.selection.clone())
    }

    /// The application's name and version, recorded in every audit entry. `run!()` sets them
    /// from the calling crate unless set here.
    pub fn app(mut self, name: impl Into<String>, version: impl Into<String>) -> Self {
        self.app_name = Some(name.into());
        self.app_version = Some(version.into());
        self
    }

    #[doc(hidden)]
    pub fn app_if_unset(self, name: &str, version: &str) -> Self {
        if self.app_name.is_some() {
            self
        } else {
            self.app(name, version)
        }
    }

    /// Connects to the audit store and builds the engine, without running anything.
    pub async fn build(mut self) -> Result<Engine, Error> {
        check_target_names(&self.targets)?;
        let range = match self.system_versions.take() {
            Some(range) => Some(range),
            None => env_var(SYSTEM_VERSIONS_ENV)?,
        };
        if let Some(range) = range {
            self.selection.system_versions = Some(parse_version_range(&range)?);
        }
        let mut dependencies = self.dependencies;
        dependencies.insert(self.placeholders);
        let lock_options = crate::lock_config::lock_options(
            self.lock_key,
            self.lock_lease,
            self.lock_wait,
            env_var,
        )?;
        let drift_policy = crate::drift_config::drift_policy(self.on_drift, env_var)?;
        // A validate-only run writes nothing, not even the tables of a store never used.
        let validate_only = self.validate_only || env_flag(VALIDATE_ONLY_ENV)?;
        let read_only = self.read_only || validate_only;
        let server = match &self.store {
            Some(_) => None,
            None => crate::store_url::server_store(&self.database_url, self.token, read_only)?,
        };
        let store = match self.store.or(server) {
            Some(store) => store,
            None => {
                let (url, _) = crate::store_url::audit_store_url(self.database_url, env_var)?;
                let mut options =
                    flamingock_sqlx::StoreOptions::default().with_read_only(read_only);
                if let Some(table) = self.audit_table.or(env_var(AUDIT_TABLE_ENV)?) {
                    options.audit_table = table;
                }
                options.lock_table = self
                    .lock_table
                    .or(env_var(crate::lock_config::LOCK_TABLE_ENV)?);
                flamingock_sqlx::connect(&url, options).await?
            }
        };
        let mut engine = Engine::new(store)
            .with_lock_options(lock_options)
            .with_drift_policy(drift_policy)
            .with_dependencies(dependencies)
            .with_options(RunOptions {
                selection: self.selection,
                app_name: self.app_name,
                app_version: self.app_version,
                validate_only,
            });
        for target in self.targets {
            engine = engine.with_target(target);
        }
        for listener in self.listeners {
            engine = engine.with_listener(listener);
        }
        if let Some(options) = self.history_import {
            engine = engine.with_history_import(flamingock_core::engine::HistoryImport {
                options,
                migrations: flamingock_core::sql_unit::SqlMigration::registered().collect(),
            });
        }
        Ok(engine)
    }

    /// Brings every selected change unit up to date. Prefer `flamingock::run!(builder)`, which
    /// also records the calling crate's name and version.
    ///
    /// A run that selects no unit fails with [`Error::NoUnitsSelected`], before it connects,
    /// unless [`allow_no_units`](Self::allow_no_units) was called.
    pub async fn run(self) -> Result<RunReport, Error> {
        let registered: Vec<&'static ChangeUnit> = ChangeUnit::registered().collect();
        self.units_expected
            .check(&registered, &self.selection, None)?;
        let baseline = self.baseline.clone();
        let app_name = self.app_name.clone();
        let engine = self.build().await?;
        // A validate-only run writes nothing, a baseline neither (its units show as pending).
        let baseline = baseline.filter(|_| !engine.options().validate_only);
        if let Some((up_to, reason)) = baseline {
            crate::baseline::on_start(&engine, &registered, up_to, reason, app_name).await?;
        }
        engine.run(registered).await
    }

    /// What a run would find, without running: up to date, pending (the units it would apply) or
    /// blocked (with each blocked unit's state and error). For a readiness endpoint or a CI
    /// gate; `plan --check` prints the same and exits 0, 3 or 4. A drifted unit counts as
    /// blocked while drift stops runs (the default). Opens the store read-only: writes nothing,
    /// and a store never used reads as every unit pending.
    ///
    /// ```standalone_crate
    /// use flamingock::prelude::*;
    /// use flamingock::PendingStatus;
    ///
    /// #[change_unit(id = "seed", order = "1", author = "ana", transactional = false)]
    /// mod seed {
    ///     #[execution]
    ///     pub fn execute() {}
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), flamingock::Error> {
    /// let builder = || Flamingock::builder().database_url("sqlite::memory:");
    /// let check = flamingock::pending(builder()).await?;
    /// assert_eq!(check.status, PendingStatus::Pending);
    /// assert_eq!(check.pending, ["seed"]);
    /// assert_eq!(check.status.exit_code(), 3);
    /// # Ok(()) }
    /// ```
    pub async fn pending(self) -> Result<flamingock_core::engine::PendingCheck, Error> {
        let registered: Vec<&'static ChangeUnit> = ChangeUnit::registered().collect();
        self.units_expected
            .check(&registered, &self.selection, None)?;
        let engine = self.read_only(true).build().await?;
        engine.pending(registered).await
    }

    /// [`run`](Self::run) for a sync `main`: starts a single-threaded tokio runtime for the run.
    /// Called from inside an async runtime it refuses (use `run().await` there).
    pub fn run_blocking(self) -> Result<RunReport, Error> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(Error::Config(
                "run_blocking was called inside an async runtime; use `flamingock::run!().await` there".into(),
            ));
        }
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Config(format!("cannot start a tokio runtime: {e}")))?
            .block_on(self.run())
    }
}

/// Refuses two targets with one name (the later would silently replace the earlier) and a target
/// named like the audit store's database (units naming it would never reach it).
fn check_target_names(targets: &[Arc<dyn TargetSystem>]) -> Result<(), Error> {
    let mut seen = std::collections::HashSet::new();
    for target in targets {
        let name = target.name();
        if name == flamingock_core::model::DEFAULT_TARGET {
            return Err(Error::Config(format!(
                "a target system is named \"{name}\", the name of the audit store's own database; give it another name"
            )));
        }
        if !seen.insert(name) {
            return Err(Error::Config(format!(
                "two target systems are named \"{name}\"; give each its own name"
            )));
        }
    }
    Ok(())
}

/// A semver range as `system_versions` takes it, or an error that says what a range looks like.
pub(crate) fn parse_version_range(range: &str) -> Result<semver::VersionReq, Error> {
    semver::VersionReq::parse(range).map_err(|error| {
        Error::Config(format!(
            "system versions {range:?} is not a semver range ({error}); \
             e.g. \">=1.2.0, <2.0.0\" or \"~1.4\""
        ))
    })
}

/// A yes/no environment variable: `1`, `true`, `yes` or `on` (any case) is yes; unset, empty,
/// `0`, `false`, `no` or `off` is no; anything else is refused, naming it.
fn env_flag(name: &str) -> Result<bool, Error> {
    match env_var(name)?.as_deref().map(str::trim) {
        None | Some("") => Ok(false),
        Some(value) => match value.to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(true),
            "0" | "false" | "no" | "off" => Ok(false),
            _ => Err(Error::Config(format!(
                "{name}={value:?} is not a yes or no; use 1 or 0 (true/false)"
            ))),
        },
    }
}

pub(crate) fn env_var(name: &str) -> Result<Option<String>, Error> {
    match std::env::var(name) {
        Ok(value) if value.trim().is_empty() => Ok(None),
        Ok(value) => Ok(Some(value)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => {
            Err(Error::Config(format!("{name} is not valid UTF-8")))
        }
    }
}
