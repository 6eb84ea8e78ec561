//! The commands that need only the audit store, shared by the standalone `flamingock` binary and
//! the embedded CLI: `history`, `fix` and `lock` (`status` is in `status.rs`). With the program's
//! units known, `fix` also checks them.

use flamingock_core::engine::{FixRequest, LockRelease, Resolution, SeenState};
use flamingock_core::history::HistoryQuery;
use flamingock_core::lock::LockInfo;
use flamingock_core::{AuditEntry, AuditState, AuditStore, StoreError};

use super::args::{FixArgs, Format, HistoryArgs, LockAction, StoreCommand};
use super::output::{Table, html_only_for_history, json, out, outln, terminal_safe, when};
use super::time::{Bound, TypedTime, read_time};
use super::{Failure, Session, html};

/// What `history`'s options ask for, read before anything is asked of the store. Ages
/// (`--since 1h`) are measured when the store's clock is known: see [`HistoryRequest::query`].
#[derive(Debug, Clone)]
pub struct HistoryRequest {
    query: HistoryQuery,
    since: Option<TypedTime>,
    until: Option<TypedTime>,
}

/// Reads `history`'s options; a typo is a usage error.
pub fn history_request(args: &HistoryArgs) -> Result<HistoryRequest, Failure> {
    let mut query = HistoryQuery::new();
    query.change_id = args.change.clone();
    query.author = args.author.clone();
    query.stage = args.stage.clone();
    query.execution_id = args.execution.clone();
    if let Some(version) = &args.system_version {
        let parsed = semver::Version::parse(version).map_err(|error| {
            Failure::Usage(format!(
                "--system-version {version}: not a semver version ({error}); e.g. 1.4.0"
            ))
        })?;
        query = query.system_version(parsed.to_string());
    }
    for state in &args.states {
        let parsed = AuditState::parse(&state.to_ascii_uppercase()).ok_or_else(|| {
            let known: Vec<&str> = AuditState::ALL.iter().map(|s| s.as_str()).collect();
            Failure::Usage(format!(
                "--state {state}: not a state; one of {}",
                known.join(", ")
            ))
        })?;
        query = query.state(parsed);
    }
    let time = |text: &Option<String>, bound| {
        text.as_deref()
            .map(|text| read_time(text, bound).map_err(Failure::Usage))
            .transpose()
    };
    let since = time(&args.since, Bound::Since)?;
    let until = time(&args.until, Bound::Until)?;
    if args.newest_first {
        query = query.newest_first();
    }
    query.limit = args.limit;
    query.after_id = args.after;
    Ok(HistoryRequest {
        query,
        since,
        until,
    })
}

impl HistoryRequest {
    /// The query, its ages measured back from `store`'s clock: the one that stamped the rows
    /// (`created_at`), as the lock's leases are judged by it too.
    pub async fn query(&self, store: &dyn AuditStore) -> Result<HistoryQuery, Failure> {
        let mut query = self.query.clone();
        let ages = [self.since, self.until]
            .iter()
            .any(|time| matches!(time, Some(TypedTime::Ago(_))));
        // The clock is asked only when an age needs it (instants do not look at `now`).
        let now = match ages {
            true => store.now().await.map_err(Failure::from_store)?,
            false => chrono::DateTime::<chrono::Utc>::MIN_UTC,
        };
        let at =
            |time: Option<TypedTime>| time.map(|t| t.at(now).map_err(Failure::Usage)).transpose();
        query.since = at(self.since)?;
        query.until = at(self.until)?;
        Ok(query)
    }
}

/// `history`.
pub async fn history(session: &Session, args: &HistoryArgs) -> Result<(), Failure> {
    let query = history_request(args)?
        .query(session.engine.store().as_ref())
        .await?;
    let rows = match super::audit_table_present(session).await? {
        true => session
            .engine
            .store()
            .history(&query)
            .await
            .map_err(Failure::from_store)?,
        false => Vec::new(),
    };
    match session.format {
        Format::Json => out!("{}", json(&rows))?,
        Format::Csv => out!("{}", history_table(&rows, true).to_csv())?,
        Format::Table => {
            if rows.is_empty() {
                outln!("no audit rows match")?;
            } else {
                out!("{}", history_table(&rows, false).to_text(60))?;
                if let (Some(limit), Some(last)) = (query.limit, rows.last())
                    && rows.len() == limit as usize
                {
                    outln!(
                        "(more may follow: add --after {} for the next page)",
                        last.id
                    )?;
                }
            }
        }
        Format::Html => {
            let store = session.engine.store().describe();
            let filters = describe_filters(args);
            let context = html::PageContext {
                store: &store,
                filters: &filters,
                generated_at: chrono::Utc::now(),
            };
            out!("{}", html::page(&rows, &context))?;
        }
    }
    Ok(())
}

fn describe_filters(args: &HistoryArgs) -> String {
    let mut parts = Vec::new();
    let mut add = |name: &str, value: &Option<String>| {
        if let Some(value) = value {
            parts.push(format!("{name} {value}"));
        }
    };
    add("change", &args.change);
    add("author", &args.author);
    add("stage", &args.stage);
    add("run", &args.execution);
    add("system version", &args.system_version);
    add("since", &args.since);
    add("until", &args.until);
    for state in &args.states {
        parts.push(format!("state {state}"));
    }
    parts.join(", ")
}

fn history_table(rows: &[AuditEntry], full: bool) -> Table {
    let mut table = if full {
        Table::new(&[
            "id",
            "created_at",
            "execution_id",
            "change_id",
            "order",
            "author",
            "stage",
            "state",
            "tx_strategy",
            "execution_ms",
            "hostname",
            "app_name",
            "app_version",
            "system_version",
            "error",
            "reason",
        ])
    } else {
        Table::new(&[
            "id",
            "time",
            "change",
            "state",
            "author",
            "version",
            "ms",
            "run",
            "error / reason",
        ])
    };
    for row in rows {
        let note = row
            .error
            .clone()
            .or_else(|| row.reason().map(str::to_owned))
            .unwrap_or_default();
        let ms = row
            .execution_ms
            .map(|ms| ms.to_string())
            .unwrap_or_default();
        if full {
            table.push(vec![
                row.id.to_string(),
                row.created_at
                    .map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
                    .unwrap_or_default(),
                row.execution_id.clone(),
                row.change_id.clone(),
                row.change_order.clone(),
                row.author.clone(),
                row.stage.clone(),
                row.state.to_string(),
                row.tx_strategy.to_string(),
                ms,
                row.hostname.clone(),
                row.app_name.clone().unwrap_or_default(),
                row.app_version.clone().unwrap_or_default(),
                row.system_version.clone().unwrap_or_default(),
                row.error.clone().unwrap_or_default(),
                row.reason().map(str::to_owned).unwrap_or_default(),
            ]);
        } else {
            table.push(vec![
                row.id.to_string(),
                when(row.created_at),
                row.change_id.clone(),
                row.state.to_string(),
                row.author.clone(),
                row.system_version.clone().unwrap_or_default(),
                ms,
                row.execution_id.clone(),
                note,
            ]);
        }
    }
    table
}

/// Refuses what the command line gets wrong before the store is opened, so that a typo neither
/// waits for a database nor leaves a new SQLite file behind.
pub fn check_arguments(command: &StoreCommand, format: Format) -> Result<(), Failure> {
    if format == Format::Html && !matches!(command, StoreCommand::History(_)) {
        return Err(html_only_for_history());
    }
    match command {
        StoreCommand::History(args) => history_request(args).map(drop),
        StoreCommand::Fix(args) => fix_operator(args).map(drop),
        StoreCommand::Status(args) => args.version_range().map(drop).map_err(Failure::Usage),
        StoreCommand::Lock { .. } => Ok(()),
    }
}

/// Who a person's command (`fix`, `repair`, `baseline`) records: `--by`, else `$USER` (or
/// `$USERNAME`); neither is a usage error that asks `question`.
pub(super) fn operator(by: Option<&String>, question: &str) -> Result<String, Failure> {
    match by {
        Some(by) => Ok(by.clone()),
        None => ["USER", "USERNAME"]
            .iter()
            .find_map(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
            .ok_or_else(|| {
                Failure::Usage(format!("{question}? pass --by NAME ($USER is not set)"))
            }),
    }
}

/// Who `fix` records as resolving the unit.
fn fix_operator(args: &FixArgs) -> Result<String, Failure> {
    operator(args.by.as_ref(), "who resolves the unit")
}

/// `fix`.
pub async fn fix(session: &Session, args: &FixArgs) -> Result<(), Failure> {
    let operator = fix_operator(args)?;
    // The state the person is deciding on: a run that changes it while `fix` waits for the lock
    // makes the engine refuse the fix rather than record a decision about a state that is gone.
    let seen = session
        .engine
        .store()
        .history(
            &HistoryQuery::new()
                .change(&args.change_id)
                .newest_first()
                .limit(1),
        )
        .await
        .map_err(|error| Failure::Failed(error.to_string()))?
        .pop()
        .map(|row| row.state);
    let request = FixRequest {
        expected: Some(SeenState::of(seen)),
        change_id: args.change_id.clone(),
        resolution: if args.applied {
            Resolution::Applied
        } else {
            Resolution::RolledBack
        },
        operator,
        reason: args.reason.clone(),
    };
    let outcome = session
        .engine
        .fix(session.units.iter().copied(), &request)
        .await
        .map_err(|error| Failure::Failed(error.to_string()))?;
    match session.format {
        Format::Json => out!("{}", json(&outcome))?,
        Format::Csv | Format::Table => {
            let previous = outcome
                .previous
                .map_or_else(|| "never ran".to_owned(), |s| s.to_string());
            let next = match request.resolution {
                Resolution::Applied => "runs skip it from now on",
                Resolution::RolledBack => "the next run applies it again",
            };
            outln!(
                "recorded {} for \"{}\" (was {previous}) by {}: {}\n{next}",
                outcome.entry.state,
                terminal_safe(&request.change_id),
                terminal_safe(&request.operator),
                terminal_safe(&request.reason)
            )?;
        }
        Format::Html => return Err(html_only_for_history()),
    }
    Ok(())
}

/// `lock show` / `lock release [--force]`, on the lock key runs of this program take.
pub async fn lock(session: &Session, action: &LockAction) -> Result<(), Failure> {
    let engine = &session.engine;
    let key = engine.lock_options().key.clone();
    if engine.store().lock().is_none() {
        return Err(Failure::Failed(format!(
            "the {} keeps no distributed lock, so there is nothing to show or release",
            engine.store().describe()
        )));
    }
    let failed = |error: flamingock_core::Error| Failure::Failed(error.to_string());
    // What could be read of a row that does not decode, when `--force` removes it anyway.
    let mut unreadable = None;
    let (outcome, holder, live) = match action {
        LockAction::Show => {
            // Without an audit table there is no lock table either: nobody holds the lock.
            let holder = match super::audit_table_present(session).await? {
                true => engine.lock_state().await.map_err(failed)?,
                false => None,
            };
            ("shown", holder, false)
        }
        LockAction::Release(args) if args.force => {
            if let Err(flamingock_core::Error::Store(StoreError::CorruptLockRow {
                detail, ..
            })) = engine.lock_state().await
            {
                unreadable = Some(detail);
            }
            let holder = engine.force_release_lock().await.map_err(failed)?;
            let removed = holder.is_some() || unreadable.is_some();
            (if removed { "released" } else { "free" }, holder, false)
        }
        LockAction::Release(_) => match engine.release_stale_lock().await.map_err(failed)? {
            LockRelease::Free => ("free", None, false),
            LockRelease::Released(holder) => ("released", Some(holder), false),
            LockRelease::Live(holder) => ("live", Some(holder), true),
        },
    };
    let printed = print_lock(
        session,
        &key,
        outcome,
        holder.as_ref(),
        unreadable.as_deref(),
    );
    // A running lease left alone is a refusal, even when nobody reads the output any more.
    if live {
        return Err(Failure::Failed(format!(
            "lock \"{key}\" is held by a lease that is still running, so it was left alone; if its holder is gone, wait for the lease to end or run `flamingock lock release --force`"
        )));
    }
    printed
}

fn print_lock(
    session: &Session,
    key: &str,
    outcome: &str,
    holder: Option<&LockInfo>,
    unreadable: Option<&str>,
) -> Result<(), Failure> {
    match session.format {
        Format::Json => {
            let mut report =
                serde_json::json!({ "key": key, "outcome": outcome, "holder": holder });
            if let Some(detail) = unreadable {
                report["unreadable"] = detail.into();
            }
            out!("{}", json(&report))?
        }
        Format::Csv => {
            let mut table = Table::new(&[
                "key",
                "owner",
                "hostname",
                "acquired_at",
                "expires_at",
                "expired",
                "outcome",
            ]);
            if let Some(info) = holder {
                table.push(vec![
                    info.key.clone(),
                    info.owner.clone(),
                    info.hostname.clone(),
                    info.acquired_at.to_rfc3339(),
                    info.expires_at.to_rfc3339(),
                    info.expired.to_string(),
                    outcome.to_owned(),
                ]);
            } else if unreadable.is_some() {
                let mut cells = vec![String::new(); 7];
                cells[0] = key.to_owned();
                cells[6] = outcome.to_owned();
                table.push(cells);
            }
            out!("{}", table.to_csv())?;
        }
        Format::Table => match (holder, outcome) {
            (None, "released") => outln!(
                "released lock \"{key}\", whose row could not be read: {}",
                unreadable.unwrap_or_default()
            )?,
            (Some(info), "shown") => outln!("{info}")?,
            (Some(info), "released") => outln!("released: {info}")?,
            (Some(info), _) => outln!("{info}")?,
            (None, "shown") => outln!("lock \"{key}\" is free")?,
            (None, _) => outln!("lock \"{key}\" was free; nothing released")?,
        },
        Format::Html => return Err(html_only_for_history()),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use chrono::{DateTime, Duration, Utc};
    use clap::Parser;
    use flamingock_core::StoreError;
    use flamingock_core::inject::Dependencies;
    use flamingock_core::lock::Fence;
    use flamingock_core::model::UnitState;
    use flamingock_core::store::SharedTransaction;
    use flamingock_core::testing::MemoryAuditStore;
    use std::collections::HashMap;

    /// A store whose database clock is three hours behind this process's.
    struct ClockBehind(MemoryAuditStore);

    fn database_now() -> DateTime<Utc> {
        "2026-03-10T09:00:00Z".parse().expect("a time")
    }

    #[async_trait]
    impl AuditStore for ClockBehind {
        async fn now(&self) -> Result<DateTime<Utc>, StoreError> {
            Ok(database_now())
        }
        async fn initialize(&self) -> Result<(), StoreError> {
            self.0.initialize().await
        }
        async fn unit_states(&self) -> Result<HashMap<String, UnitState>, StoreError> {
            self.0.unit_states().await
        }
        async fn append(
            &self,
            entry: &AuditEntry,
            fence: Option<&Fence>,
        ) -> Result<(), StoreError> {
            self.0.append(entry, fence).await
        }
        async fn entries(&self) -> Result<Vec<AuditEntry>, StoreError> {
            self.0.entries().await
        }
        async fn begin_shared(&self) -> Result<Box<dyn SharedTransaction>, StoreError> {
            self.0.begin_shared().await
        }
        fn shared_transaction_type(&self) -> flamingock_core::TypeLabel {
            self.0.shared_transaction_type()
        }
        fn dependencies(&self) -> Dependencies {
            self.0.dependencies()
        }
        fn describe(&self) -> String {
            "a store whose clock is behind".into()
        }
    }

    fn history_args(args: &[&str]) -> HistoryArgs {
        let mut line = vec!["flamingock", "history"];
        line.extend(args);
        match super::super::args::StoreCli::parse_from(line).command {
            super::super::args::StoreCommand::History(args) => args,
            _ => unreachable!("a history command line"),
        }
    }

    #[tokio::test]
    async fn ages_are_measured_back_from_the_stores_clock() {
        let store = ClockBehind(MemoryAuditStore::new());
        let args = history_args(&["--since", "1h", "--until", "30m"]);
        let query = history_request(&args)
            .expect("valid options")
            .query(&store)
            .await
            .expect("a query");
        assert_eq!(query.since, Some(database_now() - Duration::hours(1)));
        assert_eq!(query.until, Some(database_now() - Duration::minutes(30)));

        let args = history_args(&["--since", "2026-01-31"]);
        let query = history_request(&args).unwrap().query(&store).await.unwrap();
        assert_eq!(query.since, Some("2026-01-31T00:00:00Z".parse().unwrap()));
    }

    #[test]
    fn a_time_that_is_not_one_is_refused_before_the_store_is_asked() {
        let args = history_args(&["--since", "yesterday"]);
        assert!(matches!(history_request(&args), Err(Failure::Usage(_))));
    }
}
