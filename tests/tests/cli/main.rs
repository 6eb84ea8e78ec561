//! The embedded CLI end to end, as an operator uses it: the `cli_app` binary (whose `main` calls
//! `flamingock::cli::main_async`) run as a process against a fresh SQLite file or a fresh
//! PostgreSQL database per test. Every scenario is written once and run on both.

mod app;

use app::{App, ids, pairs, show, states};
use flamingock_testkit::Backend;

fn schema_module(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "cli_app::sqlite_schema",
        Backend::Postgres | Backend::MySql => "cli_app::pg_schema",
    }
}

/// Every scenario on one database (stamped by `flamingock_testkit::for_each_backend!` on SQLite
/// and PostgreSQL: `cli_app` has no MariaDB schema).
macro_rules! cli_suite {
    ($name:ident, $db:ty, $backend:expr) => {
        mod $name {
            cli_suite!(@scenarios $backend;
                undo_last_three_then_apply_reapplies_them,
                undo_is_refused_for_a_unit_without_rollback,
                fix_resolves_a_blocked_unit,
                plan_check_exits_with_the_state,
                history_filters_by_author_and_date_range,
                lock_show_and_release,
                usage_errors_exit_with_two,
                plan_and_apply_that_select_no_unit_fail,
                undo_of_a_separate_target_removes_its_marker,
                import_takes_over_a_database_migrated_by_sqlx,
                baseline_records_units_up_to_one_once,
                verify_exits_one_on_drift_and_repair_accepts_it_once,
                system_versions_select_show_filter_and_undo_a_release,
            );
        }
    };
    (@scenarios $backend:expr; $($scenario:ident,)*) => {$(
        #[tokio::test]
        async fn $scenario() {
            super::scenarios::$scenario($backend).await;
        }
    )*};
}

flamingock_testkit::for_each_backend!(cli_suite, [sqlite, postgres]);

mod scenarios {
    use super::*;

    /// Migrates the scenario's database with sqlx's own migrator over `import_sqlx_v1`.
    async fn sqlx_migrate(app: &App) {
        use std::str::FromStr;
        let folder = format!("{}/fixtures/sql/import_sqlx_v1", env!("CARGO_MANIFEST_DIR"));
        let migrator = sqlx::migrate::Migrator::new(std::path::Path::new(&folder))
            .await
            .expect("sqlx reads the folder");
        if app.url().starts_with("sqlite:") {
            let options = sqlx::sqlite::SqliteConnectOptions::from_str(app.url())
                .expect("a SQLite URL")
                .create_if_missing(true);
            let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
            migrator.run(&pool).await.expect("sqlx migrates");
            pool.close().await;
        } else {
            let pool = sqlx::PgPool::connect(app.url()).await.unwrap();
            migrator.run(&pool).await.expect("sqlx migrates");
            pool.close().await;
        }
    }

    pub async fn import_takes_over_a_database_migrated_by_sqlx(backend: Backend) {
        let Some(app) = App::new(backend, "cli_app::takeover").await else {
            return;
        };
        sqlx_migrate(&app).await;
        let usage = app.run(&["import", "--from", "flyway"]);
        assert_eq!(usage.status.code(), Some(2), "{}", show(&usage));
        let bad = app.run(&["import", "--from", "sqlx", "--table", "no;table"]);
        assert_eq!(bad.status.code(), Some(1), "{}", show(&bad));
        assert!(
            String::from_utf8_lossy(&bad.stderr).contains("not a valid table name"),
            "{}",
            show(&bad)
        );
        assert!(app.history(&[]).is_empty(), "nothing imported");
        let imported = app.json(&["import", "--from", "sqlx"]);
        assert_eq!(
            imported["imported"],
            serde_json::json!(["1_create_authors", "2_seed_authors"]),
            "{imported}"
        );
        let text = app.expect(&["import", "--from", "sqlx"], 0);
        assert!(text.contains("imported 0 units"), "{text}");
        assert!(text.contains("2 already in the audit"), "{text}");
        let report = app.json(&["apply"]);
        let applied: Vec<&str> = report["units"]
            .as_array()
            .expect("units")
            .iter()
            .filter(|u| u["outcome"] == "applied")
            .map(|u| u["change_id"].as_str().expect("id"))
            .collect();
        assert_eq!(applied, ["3_create_loans"], "{report}");
        let missing = app.expect(&["import", "--from", "diesel"], 0);
        assert!(
            missing.contains("no table `__diesel_schema_migrations`"),
            "{missing}"
        );
    }

    pub async fn baseline_records_units_up_to_one_once(backend: Backend) {
        let Some(app) = App::new(backend, "cli_app::takeover").await else {
            return;
        };
        let unknown = app.run(&[
            "baseline", "--up-to", "9_none", "--reason", "dump", "--by", "ops",
        ]);
        assert_eq!(unknown.status.code(), Some(1), "{}", show(&unknown));
        assert!(
            String::from_utf8_lossy(&unknown.stderr).contains("\"9_none\""),
            "{}",
            show(&unknown)
        );
        let recorded = app.json(&[
            "baseline",
            "--up-to",
            "2_seed_authors",
            "--reason",
            "restored from a dump",
            "--by",
            "ops",
        ]);
        assert_eq!(
            recorded["recorded"],
            serde_json::json!(["1_create_authors", "2_seed_authors"]),
            "{recorded}"
        );
        let history = app.history(&[]);
        assert_eq!(history.len(), 2);
        assert!(
            history
                .iter()
                .all(|row| row["state"] == "MANUAL_MARKED_AS_APPLIED" && row["author"] == "ops")
        );
        let again = app.run(&[
            "baseline",
            "--up-to",
            "2_seed_authors",
            "--reason",
            "again",
            "--by",
            "ops",
        ]);
        assert_eq!(again.status.code(), Some(1), "{}", show(&again));
        assert!(
            String::from_utf8_lossy(&again.stderr).contains("already have history"),
            "{}",
            show(&again)
        );
        assert_eq!(app.history(&[]).len(), 2, "nothing more written");
    }

    pub async fn verify_exits_one_on_drift_and_repair_accepts_it_once(backend: Backend) {
        let Some(mut app) = App::new(backend, "cli_app::drift_original").await else {
            return;
        };
        app.expect(&["apply"], 0);
        let clean = app.expect(&["verify"], 0);
        assert!(clean.contains("no drift"), "{clean}");
        let json = app.json(&["verify"]);
        assert_eq!(json["drifted"], serde_json::json!([]), "{json}");

        // A later build of the program: the first file was edited, a third added.
        app.select("cli_app::drift_edited");
        let drifted = app.run(&["verify"]);
        assert_eq!(drifted.status.code(), Some(1), "{}", show(&drifted));
        let stdout = String::from_utf8_lossy(&drifted.stdout);
        assert!(
            stdout.contains("1_create_authors") && stdout.contains("DRIFTED"),
            "{stdout}"
        );
        let stderr = String::from_utf8_lossy(&drifted.stderr);
        assert!(
            stderr.contains("fixtures/sql/drift_edited/1_create_authors.sql:1")
                && stderr.contains("flamingock repair 1_create_authors --reason"),
            "{stderr}"
        );
        let json = app.run(&["verify", "--format", "json"]);
        assert_eq!(json.status.code(), Some(1), "{}", show(&json));
        let json: serde_json::Value = serde_json::from_slice(&json.stdout).expect("JSON");
        assert_eq!(
            json["drifted"][0]["change_id"], "1_create_authors",
            "{json}"
        );
        assert_eq!(json["not_comparable"], serde_json::json!([]), "{json}");
        let plan = app.run(&["plan", "--format", "json"]);
        assert_eq!(
            plan.status.code(),
            Some(1),
            "a plan through drift fails: {}",
            show(&plan)
        );
        let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).expect("JSON");
        assert_eq!(plan[0]["drift"], "drifted", "{plan}");
        assert_eq!(plan[1].get("drift"), None, "{plan}");
        let refused = app.run(&["apply"]);
        assert_eq!(refused.status.code(), Some(1), "{}", show(&refused));
        let rows = app.history(&[]).len();
        assert_eq!(rows, 2, "the refused apply wrote nothing");

        let needs_who = app.run(&["repair", "1_create_authors", "--reason", "checked"]);
        assert_eq!(needs_who.status.code(), Some(2), "{}", show(&needs_who));
        let unknown = app.run(&["repair", "no-such-unit", "--reason", "x", "--by", "ana"]);
        assert_eq!(unknown.status.code(), Some(2), "{}", show(&unknown));
        let pending = app.run(&["repair", "3_index_authors", "--reason", "x", "--by", "ana"]);
        assert_eq!(pending.status.code(), Some(1), "{}", show(&pending));
        assert!(
            String::from_utf8_lossy(&pending.stderr).contains("is not applied"),
            "{}",
            show(&pending)
        );
        assert_eq!(
            app.history(&[]).len(),
            rows,
            "refused repairs wrote nothing"
        );

        let repaired = app.json(&[
            "repair",
            "1_create_authors",
            "--reason",
            "the column was widened by hand",
            "--by",
            "ana",
        ]);
        assert_eq!(
            repaired["entry"]["state"], "MANUAL_MARKED_AS_APPLIED",
            "{repaired}"
        );
        assert_eq!(repaired["entry"]["author"], "ana", "{repaired}");
        assert_eq!(repaired["entry"]["metadata"]["repair"], true, "{repaired}");
        assert!(repaired["previous_checksum"].is_string(), "{repaired}");
        app.expect(&["verify"], 0);
        let again = app.run(&[
            "repair",
            "1_create_authors",
            "--reason",
            "again",
            "--by",
            "ana",
        ]);
        assert_eq!(again.status.code(), Some(1), "{}", show(&again));
        assert!(
            String::from_utf8_lossy(&again.stderr).contains("nothing to repair"),
            "{}",
            show(&again)
        );
        let report = app.json(&["apply"]);
        assert_eq!(report["units"][2]["outcome"], "applied", "{report}");
        app.finish().await;
    }

    pub async fn undo_last_three_then_apply_reapplies_them(backend: Backend) {
        let Some(app) = App::new(backend, schema_module(backend)).await else {
            return;
        };
        let plan = app.json(&["plan"]);
        assert_eq!(plan.as_array().map(Vec::len), Some(4), "{plan}");
        assert!(app.history(&[]).is_empty(), "plan writes nothing");

        let report = app.json(&["apply"]);
        assert_eq!(
            report["units"].as_array().map(Vec::len),
            Some(4),
            "{report}"
        );
        assert!(app.file("clients.csv") && app.has_email_column().await);

        let dry = app.json(&["undo", "--last", "2", "--dry-run"]);
        assert_eq!(
            dry["would_roll_back"],
            serde_json::json!(["export-clients", "add-email"])
        );
        let before = app.history(&[]).len();
        assert_eq!(before, 5, "a dry run writes nothing");

        let undo = app.json(&["undo", "--last", "3"]);
        let rolled: Vec<&str> = undo["units"]
            .as_array()
            .expect("units")
            .iter()
            .map(|u| u["change_id"].as_str().expect("id"))
            .collect();
        assert_eq!(
            rolled,
            ["export-clients", "add-email", "seed-clients"],
            "{undo}"
        );
        let rows = app.history(&[]);
        assert_eq!(
            states(&rows[before..]),
            pairs(&[
                // NON_TX: the intent first, so an undo cut short blocks instead of lying.
                ("export-clients", "ROLLBACK_STARTED"),
                ("export-clients", "ROLLED_BACK"),
                ("add-email", "ROLLED_BACK"),
                ("seed-clients", "ROLLED_BACK"),
            ])
        );
        let undo_run = rows[before]["execution_id"].clone();
        assert!(rows[before..].iter().all(|r| r["execution_id"] == undo_run));
        assert!(
            !app.file("clients.csv"),
            "the export's rollback removed its file"
        );
        assert!(
            !app.has_email_column().await,
            "add-email's rollback dropped the column"
        );
        assert_eq!(
            app.clients().await,
            0,
            "seed-clients' rollback deleted the rows"
        );

        let status = app.json(&["status"]);
        let by_id = |id: &str| {
            status
                .as_array()
                .expect("status lines")
                .iter()
                .find(|line| line["change_id"] == id)
                .unwrap_or_else(|| panic!("{id} in {status}"))
                .clone()
        };
        assert_eq!(by_id("create-clients")["status"], "applied");
        assert_eq!(by_id("seed-clients")["status"], "pending (rolled back)");
        assert_eq!(by_id("export-clients")["state"], "ROLLED_BACK");

        let again = app.json(&["apply"]);
        let applied: Vec<&str> = again["units"]
            .as_array()
            .expect("units")
            .iter()
            .filter(|u| u["outcome"] == "applied")
            .map(|u| u["change_id"].as_str().expect("id"))
            .collect();
        assert_eq!(
            applied,
            ["seed-clients", "add-email", "export-clients"],
            "{again}"
        );
        assert!(app.file("clients.csv") && app.has_email_column().await);
        assert_eq!(app.clients().await, 2);

        // --to keeps the named unit and rolls back everything after it.
        let to = app.expect(&["undo", "--to", "seed-clients"], 0);
        assert!(to.contains("2 rolled back"), "{to}");
        assert!(!app.has_email_column().await);
        assert_eq!(app.clients().await, 2, "seed-clients stays applied");
        app.finish().await;
    }

    pub async fn undo_is_refused_for_a_unit_without_rollback(backend: Backend) {
        let Some(app) = App::new(backend, "cli_app::no_rollback").await else {
            return;
        };
        app.expect(&["apply"], 0);
        let before = app.history(&[]);
        let output = app.run(&["undo", "--last", "2"]);
        assert_eq!(output.status.code(), Some(1), "{}", show(&output));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("\"write-a\"") && stderr.contains("no #[rollback_execution]"),
            "{stderr}"
        );
        assert_eq!(app.history(&[]), before, "nothing was recorded");
        assert!(
            app.file("a.txt") && app.file("b.txt"),
            "nothing was rolled back"
        );

        // The unit that has a rollback can still be undone on its own.
        app.expect(&["undo", "--last", "1"], 0);
        assert!(app.file("a.txt") && !app.file("b.txt"));
        let last = app.history(&["--newest-first", "--limit", "1"]);
        assert_eq!(states(&last), pairs(&[("write-b", "ROLLED_BACK")]));
        app.finish().await;
    }

    pub async fn fix_resolves_a_blocked_unit(backend: Backend) {
        let Some(app) = App::new(backend, "cli_app::blocking").await else {
            return;
        };
        let failed = app.run_failing(&["apply"], "flaky-export");
        assert_eq!(failed.status.code(), Some(1), "{}", show(&failed));
        assert!(app.file("partial.csv") && !app.file("after.txt"));

        let blocked = app.run(&["apply"]);
        assert_eq!(blocked.status.code(), Some(1), "{}", show(&blocked));
        let stderr = String::from_utf8_lossy(&blocked.stderr);
        assert!(
            stderr.contains("flamingock fix flaky-export --applied"),
            "{stderr}"
        );

        let status = app.expect(&["status"], 0);
        assert!(status.contains("BLOCKED"), "{status}");
        assert!(
            status.contains("flamingock fix flaky-export --rolled-back"),
            "{status}"
        );
        let lines = app.json(&["status"]);
        let flaky = lines
            .as_array()
            .expect("lines")
            .iter()
            .find(|l| l["change_id"] == "flaky-export")
            .expect("flaky-export")
            .clone();
        assert_eq!(flaky["status"], "BLOCKED");
        assert!(
            flaky["fix"]
                .as_str()
                .is_some_and(|f| f.contains("--applied"))
        );
        assert_eq!(
            app.run(&["plan"]).status.code(),
            Some(1),
            "a plan through a blocked unit fails"
        );

        // Undo refuses a range that crosses the blocked unit, and changes nothing.
        let rows = app.history(&[]).len();
        let refused = app.run(&["undo", "--last", "1"]);
        assert_eq!(refused.status.code(), Some(1), "{}", show(&refused));
        assert!(String::from_utf8_lossy(&refused.stderr).contains("fix flaky-export"));
        assert_eq!(app.history(&[]).len(), rows);
        assert!(app.file("prepared.txt"));

        let html = app.expect(&["history", "--format", "html"], 0);
        assert!(html.starts_with("<!DOCTYPE html>") && html.contains("flaky-export"));
        assert!(
            html.contains("<tr class=\"bad\">"),
            "the failure is highlighted"
        );

        let needs_who = app.run(&["fix", "flaky-export", "--applied", "--reason", "checked"]);
        assert_eq!(needs_who.status.code(), Some(2), "{}", show(&needs_who));
        let fixed = app.json(&[
            "fix",
            "flaky-export",
            "--applied",
            "--reason",
            "checked the export: complete",
            "--by",
            "ops-eva",
        ]);
        assert_eq!(fixed["previous"], "FAILED");
        let last = app.history(&["--change", "flaky-export", "--newest-first", "--limit", "1"]);
        assert_eq!(last[0]["state"], "MANUAL_MARKED_AS_APPLIED");
        assert_eq!(last[0]["author"], "ops-eva");
        assert_eq!(
            last[0]["metadata"]["reason"],
            "checked the export: complete"
        );

        let report = app.json(&["apply"]);
        let outcomes: Vec<(&str, &str)> = report["units"]
            .as_array()
            .expect("units")
            .iter()
            .map(|u| {
                (
                    u["change_id"].as_str().unwrap(),
                    u["outcome"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            outcomes,
            [
                ("prepare-export", "already_applied"),
                ("flaky-export", "already_applied"),
                ("after-export", "applied")
            ]
        );
        assert!(app.file("after.txt"));
        app.finish().await;
    }

    pub async fn system_versions_select_show_filter_and_undo_a_release(backend: Backend) {
        let Some(app) = App::new(backend, "cli_app::releases").await else {
            return;
        };
        // Release 1.2: the 1.4 unit is out of range, so nothing is pending for that release.
        app.expect(&["apply", "--system-versions", "<1.3.0"], 0);
        assert!(app.file("base.txt") && app.file("1.2.txt") && !app.file("1.4.txt"));
        app.expect(&["plan", "--check", "--system-versions", "<1.3.0"], 0);
        app.expect(&["plan", "--check"], 3);

        // History by version: the rows of the 1.2 unit only, each showing its version.
        let rows = app.history(&["--system-version", "1.2.0"]);
        assert_eq!(
            states(&rows),
            pairs(&[("rel-1-2", "STARTED"), ("rel-1-2", "APPLIED")])
        );
        assert!(
            rows.iter().all(|r| r["system_version"] == "1.2.0"),
            "{rows:?}"
        );
        let table = app.expect(&["history", "--system-version", "1.2.0"], 0);
        assert!(
            table.contains("version") && table.contains("1.2.0"),
            "{table}"
        );

        // Release 1.4, then status filtered by a range shows only its unit, with its version.
        app.expect(&["apply"], 0);
        assert!(app.file("1.4.txt"));
        let status = app.json(&["status", "--system-versions", ">=1.4.0"]);
        let lines = status.as_array().expect("status is a JSON array");
        assert_eq!(lines.len(), 1, "{status}");
        assert_eq!(lines[0]["change_id"], "rel-1-4", "{status}");
        assert_eq!(lines[0]["system_version"], "1.4.0", "{status}");
        let all = app.json(&["status"]);
        assert_eq!(all.as_array().map(Vec::len), Some(3), "{all}");

        // Undo of the 1.4 release: its unit rolled back, the others untouched.
        app.expect(&["undo", "--to-version", "1.3.0"], 0);
        assert!(!app.file("1.4.txt") && app.file("1.2.txt") && app.file("base.txt"));
        let rows = app.history(&["--system-version", "1.4.0"]);
        assert_eq!(
            rows.last().map(|r| r["state"].clone()),
            Some(serde_json::json!("ROLLED_BACK")),
            "{rows:?}"
        );

        // Versions and ranges that are not ones are usage errors.
        let bad = app.run(&["history", "--system-version", "1.x"]);
        assert_eq!(bad.status.code(), Some(2), "{}", show(&bad));
        assert!(
            show(&bad).contains("not a semver version"),
            "{}",
            show(&bad)
        );
        let bad = app.run(&["status", "--system-versions", "one point four"]);
        assert_eq!(bad.status.code(), Some(2), "{}", show(&bad));
        assert!(show(&bad).contains("not a semver range"), "{}", show(&bad));
        app.finish().await;
    }

    pub async fn plan_check_exits_with_the_state(backend: Backend) {
        let Some(app) = App::new(backend, "cli_app::blocking").await else {
            return;
        };
        // Nothing applied yet: pending, exit 3; the check writes nothing.
        let pending = app.expect(&["plan", "--check"], 3);
        assert!(pending.contains("units pending: "), "{pending}");
        assert!(pending.contains("flaky-export"), "{pending}");
        let output = app.run(&["plan", "--check", "--format", "json"]);
        assert_eq!(output.status.code(), Some(3), "{}", show(&output));
        let check: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
        assert_eq!(check["status"], "pending", "{check}");
        assert!(check["blocked"].as_array().is_some_and(Vec::is_empty));
        assert!(app.history(&[]).is_empty(), "plan --check writes nothing");

        // A non-transactional unit failed: blocked, exit 4, named with its state.
        let failed = app.run_failing(&["apply"], "flaky-export");
        assert_eq!(failed.status.code(), Some(1), "{}", show(&failed));
        let blocked = app.expect(&["plan", "--check"], 4);
        assert!(blocked.contains("blocked (needs `fix`)"), "{blocked}");
        assert_eq!(app.expect(&["status", "--check"], 4), blocked);
        let output = app.run(&["plan", "--check", "--format", "json"]);
        assert_eq!(output.status.code(), Some(4), "{}", show(&output));
        let check: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
        assert_eq!(check["status"], "blocked", "{check}");
        assert_eq!(check["blocked"][0]["change_id"], "flaky-export", "{check}");
        assert!(
            app.run(&["plan", "--check", "--format", "csv"])
                .status
                .code()
                == Some(2),
            "csv is a usage error for --check"
        );

        // Fixed and applied: up to date, exit 0.
        app.expect(
            &[
                "fix",
                "flaky-export",
                "--applied",
                "--reason",
                "checked",
                "--by",
                "ops",
            ],
            0,
        );
        app.expect(&["apply"], 0);
        let done = app.expect(&["plan", "--check"], 0);
        assert!(done.starts_with("up to date: all "), "{done}");
        assert_eq!(app.expect(&["status", "--check"], 0), done);
    }

    pub async fn history_filters_by_author_and_date_range(backend: Backend) {
        let Some(app) = App::new(backend, schema_module(backend)).await else {
            return;
        };
        app.expect(&["apply"], 0);
        std::thread::sleep(std::time::Duration::from_millis(20));
        app.expect(&["undo", "--last", "2"], 0);
        std::thread::sleep(std::time::Duration::from_millis(20));
        app.expect(&["apply"], 0);
        let all = app.history(&[]);
        // The undo of the NON_TX export-clients writes ROLLBACK_STARTED, then ROLLED_BACK.
        assert_eq!(all.len(), 5 + 3 + 3);

        let by_bo = app.history(&["--author", "bo"]);
        assert_eq!(
            states(&by_bo),
            pairs(&[
                ("add-email", "APPLIED"),
                ("add-email", "ROLLED_BACK"),
                ("add-email", "APPLIED")
            ])
        );
        let expected: Vec<i64> = ids(&all)
            .into_iter()
            .zip(&all)
            .filter(|(_, r)| r["author"] == "bo")
            .map(|(id, _)| id)
            .collect();
        assert_eq!(ids(&by_bo), expected);
        let csv = app.expect(&["history", "--author", "bo", "--format", "csv"], 0);
        assert_eq!(csv.lines().count(), 1 + 3, "{csv}");

        // The undo's rows split the log in three, by the database's own timestamps.
        let undo_start = all[5]["created_at"].as_str().expect("time").to_owned();
        let second_apply = all[8]["created_at"].as_str().expect("time").to_owned();
        let during_undo = app.history(&["--since", &undo_start, "--until", &second_apply]);
        assert_eq!(
            states(&during_undo),
            pairs(&[
                ("export-clients", "ROLLBACK_STARTED"),
                ("export-clients", "ROLLED_BACK"),
                ("add-email", "ROLLED_BACK")
            ])
        );
        assert_eq!(ids(&app.history(&["--until", &undo_start])), ids(&all[..5]));
        assert_eq!(
            ids(&app.history(&["--since", &second_apply])),
            ids(&all[8..])
        );
        let bo_since_undo = app.history(&["--author", "bo", "--since", &undo_start]);
        assert_eq!(ids(&bo_since_undo), ids(&by_bo[1..]));
        assert!(
            app.history(&["--since", "2000-01-01", "--until", "2000-01-01"])
                .is_empty()
        );
        assert_eq!(app.history(&["--since", "2000-01-01"]).len(), all.len());

        // Paging by row id, newest first.
        let page = app.history(&["--newest-first", "--limit", "4"]);
        assert_eq!(
            ids(&page),
            ids(&all[7..]).into_iter().rev().collect::<Vec<_>>()
        );
        let after = page[3]["id"].as_i64().expect("id").to_string();
        let next = app.history(&["--newest-first", "--limit", "4", "--after", &after]);
        assert_eq!(
            ids(&next),
            ids(&all[3..7]).into_iter().rev().collect::<Vec<_>>()
        );
        app.finish().await;
    }

    pub async fn lock_show_and_release(backend: Backend) {
        let Some(app) = App::new(backend, schema_module(backend)).await else {
            return;
        };
        let free = app.expect(&["lock", "show"], 0);
        assert!(free.contains("is free"), "{free}");
        hold_lock(app.url(), "operator-test-runner").await;
        let held = app.json(&["lock", "show"]);
        assert_eq!(held["holder"]["owner"], "operator-test-runner", "{held}");
        assert_eq!(held["holder"]["expired"], false);
        let live = app.run(&["lock", "release"]);
        assert_eq!(live.status.code(), Some(1), "{}", show(&live));
        assert!(String::from_utf8_lossy(&live.stderr).contains("--force"));
        assert_eq!(
            app.json(&["lock", "show"])["holder"]["owner"],
            "operator-test-runner"
        );
        let released = app.expect(&["lock", "release", "--force"], 0);
        assert!(released.contains("released") && released.contains("operator-test-runner"));
        assert!(app.expect(&["lock", "show"], 0).contains("is free"));
        assert!(
            app.expect(&["lock", "release"], 0)
                .contains("nothing released")
        );
        // With the lock free again, a run goes through.
        app.expect(&["apply"], 0);
        app.finish().await;
    }

    pub async fn usage_errors_exit_with_two(backend: Backend) {
        let Some(app) = App::new(backend, schema_module(backend)).await else {
            return;
        };
        for args in [
            &["undo"][..],
            &["undo", "--to", "create-clients", "--last", "1"],
            &["history", "--since", "yesterday"],
            &["history", "--state", "DONE"],
            &["status", "--format", "html"],
            &["undo", "--to", "no-such-unit"],
            &["undo", "--to-version", "one.two"],
            &["undo", "--to-version", "1.3.0", "--last", "1"],
            &["plan", "--system-versions", "1.x.y.z"],
            &["frobnicate"],
        ] {
            let output = app.run(args);
            assert_eq!(output.status.code(), Some(2), "{args:?}\n{}", show(&output));
        }
        let help = app.expect(&["--help"], 0);
        assert!(
            help.contains("Examples:") && help.contains("undo --last 3"),
            "{help}"
        );
        let undo_help = app.expect(&["undo", "--help"], 0);
        assert!(
            undo_help.contains("--dry-run") && undo_help.contains("Examples:"),
            "{undo_help}"
        );
        let valid = app.json(&["validate"]);
        assert_eq!(valid["units"], 4);
        app.finish().await;
    }

    pub async fn plan_and_apply_that_select_no_unit_fail(backend: Backend) {
        let Some(app) = App::new(backend, schema_module(backend)).await else {
            return;
        };
        for command in ["plan", "apply"] {
            let output = app.run(&[command, "--stage", "no-such-stage"]);
            assert_eq!(
                output.status.code(),
                Some(1),
                "{command}\n{}",
                show(&output)
            );
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(
                stderr.contains("is selected by stage \"no-such-stage\""),
                "{command}\n{stderr}"
            );
            assert!(stderr.contains("--stage"), "{command}\n{stderr}");
        }
        assert!(app.history(&[]).is_empty(), "nothing was written");
        app.finish().await;
    }

    pub async fn undo_of_a_separate_target_removes_its_marker(backend: Backend) {
        let Some(app) = App::new(backend, "cli_app::separate").await else {
            return;
        };
        let warehouse = format!("sqlite://{}", app.dir.path().join("warehouse.db").display());
        // Read-only commands create nothing, not even the target's marker table.
        app.expect(&["plan"], 0);
        app.expect(&["status"], 0);
        let pool = sqlx::SqlitePool::connect(&format!("{warehouse}?mode=rwc"))
            .await
            .expect("warehouse");
        let markers: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM sqlite_master WHERE name = 'flamingock_marker'",
        )
        .fetch_one(&pool)
        .await
        .expect("count");
        pool.close().await;
        assert_eq!(markers, 0, "plan and status created the marker table");
        let report = app.json(&["apply"]);
        assert_eq!(report["units"][0]["tx_strategy"], "TX_SEPARATE", "{report}");
        let count = |sql: &'static str| {
            let url = warehouse.clone();
            async move {
                let pool = sqlx::SqlitePool::connect(&url).await.expect("warehouse");
                let n: i64 = sqlx::query_scalar(sql)
                    .fetch_one(&pool)
                    .await
                    .expect("count");
                pool.close().await;
                n
            }
        };
        let stock = "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'stock'";
        assert_eq!(count(stock).await, 1);

        let undo = app.json(&["undo", "--last", "1"]);
        assert_eq!(undo["units"][0]["outcome"], "rolled_back", "{undo}");
        assert_eq!(
            count(stock).await,
            0,
            "the rollback ran in the target's transaction"
        );
        assert_eq!(
            count("SELECT COUNT(*) FROM flamingock_marker").await,
            0,
            "no marker is left behind"
        );
        let last = app.history(&["--newest-first", "--limit", "1"]);
        assert_eq!(states(&last), pairs(&[("create-stock", "ROLLED_BACK")]));

        // A target whose marker table is not there yet (new to this audit store): plan and
        // status, which read only, leave it so.
        let pool = sqlx::SqlitePool::connect(&warehouse)
            .await
            .expect("warehouse");
        sqlx::query("DROP TABLE flamingock_marker")
            .execute(&pool)
            .await
            .expect("drop the marker table");
        pool.close().await;
        app.expect(&["plan"], 0);
        app.expect(&["status"], 0);
        assert_eq!(
            count("SELECT COUNT(*) FROM sqlite_master WHERE name = 'flamingock_marker'").await,
            0,
            "plan and status created the target's marker table"
        );

        app.expect(&["apply"], 0);
        assert_eq!(count(stock).await, 1, "a run applies it again");
        app.finish().await;
    }

    /// Takes the lock as another runner would, through the store's own lock.
    async fn hold_lock(url: &str, owner: &str) {
        let engine = flamingock::Flamingock::builder()
            .database_url(url)
            .build()
            .await
            .expect("the store opens");
        engine.store().initialize().await.expect("initialize");
        let lock = engine.store().lock().expect("the SQL store keeps a lock");
        let fence = flamingock::lock::Fence {
            key: "flamingock".into(),
            owner: owner.into(),
        };
        let taken = lock
            .try_acquire(&fence, "test-host", std::time::Duration::from_secs(600))
            .await
            .expect("try_acquire");
        assert_eq!(taken, flamingock::lock::Acquisition::Acquired);
    }
}
