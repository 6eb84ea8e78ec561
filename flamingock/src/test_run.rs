//! [`TestRun`]: a run of a program's own change units in a test, against a fresh audit store
//! (a temporary SQLite file, or kept in memory), given an audit history, with the final states
//! checked in a line.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use flamingock_core::model::{AuditEntry, AuditState, ChangeUnit, TxStrategy};
use flamingock_core::store::AuditStore;
use flamingock_core::testing::MemoryAuditStore;

use crate::builder::FlamingockBuilder;
use crate::{Error, RunReport};

/// Where a [`TestRun`] keeps its audit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StoreKind {
    /// A SQLite file of its own, in the system's temporary directory, removed afterwards; units
    /// on the audit store's database get a real `sqlx::Transaction<Sqlite>`.
    Sqlite,
    /// In memory: for units that run on targets of their own or without a transaction.
    Memory,
}

/// One run of selected units in a test: the audit the run starts from (`given_*`), then the run,
/// then what it left (a [`TestOutcome`] with `expect_*` checks that panic with the whole story).
///
/// ```standalone_crate
/// use flamingock::prelude::*;
/// use flamingock::testing::TestRun;
/// use flamingock::AuditState;
///
/// #[change_unit(id = "create-clients", order = "1", author = "ana")]
/// mod create_clients {
///     #[execution]
///     pub async fn execute(tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>) -> Result<(), sqlx::Error> {
///         sqlx::query("CREATE TABLE clients (id INTEGER PRIMARY KEY)").execute(&mut **tx).await?;
///         Ok(())
///     }
/// }
///
/// #[change_unit(id = "send-welcome", order = "2", author = "ana", transactional = false)]
/// mod send_welcome {
///     #[execution]
///     pub fn execute() {}
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// // A first deployment: both apply.
/// TestRun::new(Flamingock::builder())
///     .run()
///     .await
///     .expect_states([("create-clients", AuditState::Applied), ("send-welcome", AuditState::Applied)]);
///
/// // A deployment after the e-mail unit failed: a non-transactional unit blocks for a person.
/// TestRun::new(Flamingock::builder())
///     .given_applied("create-clients")
///     .given_failed("send-welcome")
///     .run()
///     .await
///     .expect_blocked(["send-welcome"]);
/// # }
/// ```
#[must_use = "a TestRun does nothing until `.run().await`"]
pub struct TestRun {
    builder: FlamingockBuilder,
    store: StoreKind,
    given: Vec<(String, AuditState)>,
}

impl TestRun {
    /// A run of the units `builder` selects (narrow it with `.module(..)` or `.stage(..)`; give
    /// it the dependencies and targets the units need), on a temporary SQLite audit store.
    /// The builder's audit store and URL, if any, are replaced.
    pub fn new(builder: FlamingockBuilder) -> Self {
        Self {
            builder,
            store: StoreKind::Sqlite,
            given: Vec::new(),
        }
    }

    /// Keeps the audit in memory instead of a temporary SQLite file. Units on the audit store's
    /// database then have no SQL transaction to take: use it for units on targets of their own.
    pub fn in_memory(mut self) -> Self {
        self.store = StoreKind::Memory;
        self
    }

    /// The audit already records unit `id` as applied (one `APPLIED` row): the run skips it.
    pub fn given_applied(self, id: &str) -> Self {
        self.given(id, AuditState::Applied)
    }

    /// The audit's newest row of unit `id` is `FAILED`: what the run does depends on the unit's
    /// strategy (a transactional one is applied again, a non-transactional one blocks).
    pub fn given_failed(self, id: &str) -> Self {
        self.given(id, AuditState::Failed)
    }

    /// The audit's newest row of unit `id` is `state` (rows are written in the order given).
    pub fn given(mut self, id: &str, state: AuditState) -> Self {
        self.given.push((id.to_owned(), state));
        self
    }

    /// Writes the given history, then runs. Setting up the store or writing the history fails
    /// the test (panics) with the reason; the run's own result is in the outcome.
    pub async fn run(self) -> TestOutcome {
        let selection = self.builder.selection().clone();
        let selected: Vec<&'static ChangeUnit> = ChangeUnit::registered()
            .filter(|unit| selection.includes(unit))
            .collect();
        let file = match self.store {
            StoreKind::Sqlite => Some(TempFile::new()),
            StoreKind::Memory => None,
        };
        let store: Arc<dyn AuditStore> = match &file {
            Some(file) => flamingock_sqlx::connect(&file.url(), Default::default())
                .await
                .unwrap_or_else(|error| panic!("TestRun: the temporary SQLite store: {error}")),
            None => Arc::new(MemoryAuditStore::new()),
        };
        if !self.given.is_empty() {
            store
                .initialize()
                .await
                .unwrap_or_else(|error| panic!("TestRun: creating the audit table: {error}"));
        }
        for (id, state) in &self.given {
            let unit = selected
                .iter()
                .find(|unit| unit.id == id)
                .unwrap_or_else(|| {
                    panic!(
                        "TestRun: given_{}({id:?}) names no unit the builder selects (selected: {})",
                        state.as_str().to_ascii_lowercase(),
                        list(selected.iter().map(|u| u.id))
                    )
                });
            store
                .append(&given_row(unit, *state), None)
                .await
                .unwrap_or_else(|error| {
                    panic!("TestRun: writing the given {state} row of {id}: {error}")
                });
        }
        let result = self.builder.audit_store(Arc::clone(&store)).run().await;
        let rows = store
            .entries()
            .await
            .unwrap_or_else(|error| panic!("TestRun: reading the audit after the run: {error}"));
        TestOutcome {
            result,
            rows,
            _file: file,
        }
    }
}

/// The row a `given_*` writes: the unit's as a run would record it, by a test runner.
fn given_row(unit: &ChangeUnit, state: AuditState) -> AuditEntry {
    AuditEntry {
        id: 0,
        execution_id: "given-by-the-test".to_owned(),
        change_id: unit.id.to_owned(),
        author: unit.author.to_owned(),
        change_order: unit.order.to_owned(),
        stage: unit.stage_name().to_owned(),
        state,
        created_at: None,
        execution_ms: None,
        hostname: "test".to_owned(),
        runner_id: "test".to_owned(),
        target_system: unit.target_name().to_owned(),
        tx_strategy: if unit.transactional {
            TxStrategy::Shared
        } else {
            TxStrategy::NonTransactional
        },
        recovery_strategy: unit.recovery,
        app_name: None,
        app_version: None,
        source: format!(
            "{} {}:{}",
            unit.source.module_path, unit.source.file, unit.source.line
        ),
        checksum: Some(unit.checksum.to_owned()),
        error: (state == AuditState::Failed).then(|| "failed (given by the test)".to_owned()),
        metadata: None,
        system_version: unit.system_version.map(str::to_owned),
    }
}

/// What a [`TestRun`] left: the run's result and the whole audit. The `expect_*` methods panic
/// with the report, the error and each unit's rows when what they expect is not so.
#[derive(Debug)]
pub struct TestOutcome {
    /// What the run returned.
    pub result: Result<RunReport, Error>,
    /// Every audit row, the given ones first, oldest first.
    pub rows: Vec<AuditEntry>,
    _file: Option<TempFile>,
}

impl TestOutcome {
    /// Each unit's current state (its newest row's), by id.
    pub fn states(&self) -> BTreeMap<&str, AuditState> {
        let mut states = BTreeMap::new();
        for row in &self.rows {
            states.insert(row.change_id.as_str(), row.state);
        }
        states
    }

    /// The run's report (also when it failed, if it got as far as making one).
    pub fn report(&self) -> Option<&RunReport> {
        match &self.result {
            Ok(report) => Some(report),
            Err(error) => error.report(),
        }
    }

    /// Checks that the run succeeded and each named unit's current state is the one given
    /// (units not named are not checked). Returns the outcome for further checks.
    #[track_caller]
    pub fn expect_states<'a>(
        self,
        expected: impl IntoIterator<Item = (&'a str, AuditState)>,
    ) -> Self {
        if let Err(error) = &self.result {
            panic!(
                "expected the run to succeed; it failed: {error}\n{}",
                self.story()
            );
        }
        self.check_states(expected);
        self
    }

    /// Checks each named unit's current state, whether the run succeeded or not.
    #[track_caller]
    pub fn check_states<'a>(&self, expected: impl IntoIterator<Item = (&'a str, AuditState)>) {
        let states = self.states();
        let wrong: Vec<String> = expected
            .into_iter()
            .filter(|(id, state)| states.get(id) != Some(state))
            .map(|(id, state)| match states.get(id) {
                Some(found) => format!("{id}: expected {state}, found {found}"),
                None => format!("{id}: expected {state}, found no row"),
            })
            .collect();
        if !wrong.is_empty() {
            panic!(
                "unexpected states:\n  {}\n{}",
                wrong.join("\n  "),
                self.story()
            );
        }
    }

    /// Checks that the run stopped with `Error::Blocked` naming exactly these units.
    #[track_caller]
    pub fn expect_blocked<'a>(self, ids: impl IntoIterator<Item = &'a str>) -> Self {
        let mut expected: Vec<&str> = ids.into_iter().collect();
        expected.sort_unstable();
        match &self.result {
            Err(Error::Blocked { blocked, .. }) => {
                let mut found: Vec<&str> = blocked.iter().map(|b| b.change_id.as_str()).collect();
                found.sort_unstable();
                if found != expected {
                    panic!(
                        "expected {} blocked; blocked: {}\n{}",
                        list(expected),
                        list(found),
                        self.story()
                    );
                }
            }
            _ => panic!(
                "expected the run to block on {}\n{}",
                list(expected),
                self.story()
            ),
        }
        self
    }

    /// Checks that the run failed, and returns its error for further checks.
    #[track_caller]
    pub fn expect_error(&self) -> &Error {
        match &self.result {
            Err(error) => error,
            Ok(_) => panic!("expected the run to fail; it succeeded\n{}", self.story()),
        }
    }

    /// The run's result and every audit row, for a failed check's message.
    fn story(&self) -> String {
        let mut story = match &self.result {
            Ok(report) => format!("run report:\n{report}"),
            Err(error) => format!("run error: {error}"),
        };
        story.push_str("\naudit rows (oldest first):");
        for row in &self.rows {
            story.push_str(&format!(
                "\n  #{} {} {}{}",
                row.id,
                row.change_id,
                row.state,
                row.error
                    .as_deref()
                    .map(|e| format!(": {}", e.lines().next().unwrap_or_default()))
                    .unwrap_or_default()
            ));
        }
        story
    }
}

fn list<'a>(ids: impl IntoIterator<Item = &'a str>) -> String {
    let ids: Vec<&str> = ids.into_iter().collect();
    if ids.is_empty() {
        "none".to_owned()
    } else {
        ids.join(", ")
    }
}

/// A SQLite file path of its own, removed (with its WAL files) when dropped.
#[derive(Debug)]
struct TempFile(PathBuf);

impl TempFile {
    fn new() -> Self {
        let name = format!("flamingock-test-{}.db", uuid_like());
        TempFile(std::env::temp_dir().join(name))
    }

    fn url(&self) -> String {
        format!("sqlite://{}", self.0.display())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut path = self.0.clone().into_os_string();
            path.push(suffix);
            let _ = std::fs::remove_file(path);
        }
    }
}

/// A name no other test run in this or another process picks at the same time.
fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{}-{nanos}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}
