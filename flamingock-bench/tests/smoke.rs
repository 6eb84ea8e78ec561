//! CI smoke test: the whole benchmark, with a tiny N and one repetition, into a temporary report
//! that must have every section, row and column. Nothing about speed is asserted.
//!
//! SQLite always; PostgreSQL and MariaDB (and with each its fleet start) when its server answers,
//! else a loud `SKIPPED` line, or a failure under `FLAMINGOCK_REQUIRE_SERVERS=1`.

use std::io::Write;
use std::process::Command;

use sqlx::Connection;

const N: usize = 5;
const MACRO_UNITS: usize = 20;
const SQL_FILES: usize = 20;
const FLEET_SIZE: usize = 8;
const LOAD_SERVICES: usize = 3;
const LOAD_INSTANCES: usize = 2;
/// The history row's long audit: far more than the N rows (2N on MariaDB) of its short one.
const HISTORY_ROWS: usize = 60;

fn url(variable: &str, default: &str) -> String {
    std::env::var(variable)
        .ok()
        .filter(|url| !url.trim().is_empty())
        .unwrap_or_else(|| default.to_owned())
}

/// Whether a server answers; a loud skip line (or a failure in CI) when it does not.
fn reachable<C: Connection>(label: &str, url: &str) -> bool {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match runtime.block_on(C::connect(url)) {
        Ok(connection) => {
            drop(runtime.block_on(connection.close()));
            true
        }
        Err(error) => {
            let required = std::env::var("FLAMINGOCK_REQUIRE_SERVERS").is_ok_and(|v| v == "1");
            assert!(
                !required,
                "FLAMINGOCK_REQUIRE_SERVERS=1 but {label} is unreachable: {error}"
            );
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: the {label} part of the benchmark smoke test: {label} unreachable: {error}"
            );
            false
        }
    }
}

/// The lines of the section under `## title`, up to the next section.
fn section<'a>(report: &'a str, title: &str) -> Vec<&'a str> {
    let heading = format!("## {title}");
    report
        .lines()
        .skip_while(|line| line.trim() != heading)
        .skip(1)
        .take_while(|line| !line.starts_with("## "))
        .collect()
}

fn has_row(lines: &[&str], prefix: &str, columns: usize) -> bool {
    lines
        .iter()
        .any(|line| line.starts_with(prefix) && line.matches(" | ").count() == columns - 1)
}

#[test]
fn the_whole_benchmark_runs_and_reports_every_row() {
    let postgres_url = url(
        "FLAMINGOCK_TEST_POSTGRES_URL",
        "postgres://postgres@127.0.0.1:5432/test",
    );
    let mysql_url = url(
        "FLAMINGOCK_TEST_MYSQL_URL",
        "mysql://root@127.0.0.1:3306/test",
    );
    let postgres = reachable::<sqlx::PgConnection>("PostgreSQL", &postgres_url);
    let mariadb = reachable::<sqlx::MySqlConnection>("MariaDB", &mysql_url);
    let mut keys = vec!["sqlite"];
    let mut databases = vec!["SQLite"];
    let mut servers = Vec::new();
    for (up, key, label) in [
        (postgres, "postgres", "PostgreSQL"),
        (mariadb, "mariadb", "MariaDB"),
    ] {
        if up {
            keys.push(key);
            databases.push(label);
            servers.push(label);
        }
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("BENCHMARKS.md");
    let output = Command::new(env!("CARGO_BIN_EXE_flamingock-bench"))
        .args([
            "--sizes",
            &N.to_string(),
            "--runs",
            "1",
            "--runs-large",
            "1",
        ])
        .args(["--fleet-n", &N.to_string()])
        .args(["--durable-sizes", &N.to_string()])
        .args(["--fleet-size", &FLEET_SIZE.to_string()])
        .args(["--server-sizes", &N.to_string()])
        .args(["--load", &format!("{LOAD_SERVICES}x{LOAD_INSTANCES}")])
        .args(["--load-n", &N.to_string()])
        // Building generated crates takes minutes: the generator and its sections are unit-tested.
        .args(["--compile-sizes", "none"])
        .args(["--history-n", &N.to_string()])
        .args(["--history-rows", &HISTORY_ROWS.to_string()])
        .args(["--postgres-url", &postgres_url])
        .args(["--mysql-url", &mysql_url])
        .args(["--databases", &keys.join(",")])
        .arg("--out")
        .arg(&out)
        .output()
        .expect("the benchmark starts");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the benchmark failed:\n{stderr}");
    let report = std::fs::read_to_string(&out).expect("the report was written");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains(report.trim()), "the report is also printed");

    assert!(report.starts_with("# Benchmarks\n"), "{report}");
    for fact in [
        "- Date: ",
        "- Machine: ",
        "- Build: ",
        "- Databases: SQLite ",
    ] {
        assert!(report.contains(fact), "missing `{fact}` in:\n{report}");
    }

    let tools = [
        "floor (plain sqlx)",
        "sqlx `Migrator`",
        "refinery",
        "flamingock",
    ];
    let cold = section(&report, "Cold apply");
    let warm = section(&report, "Warm start");
    assert!(
        cold.contains(
            &"| database | N | tool | median | per change | × floor | × sqlx | peak RSS |"
        )
    );
    assert!(warm.contains(&"| database | N | tool | median | × floor | × sqlx | peak RSS |"));
    for database in &databases {
        for tool in tools {
            let row = format!("| {database} | {N} | {tool} | ");
            assert!(has_row(&cold, &row, 8), "no cold row `{row}` in:\n{report}");
            assert!(has_row(&warm, &row, 7), "no warm row `{row}` in:\n{report}");
        }
    }
    let durable = section(&report, "Cold apply with durable commits");
    for database in &databases {
        for tool in tools {
            let row = format!("| {database} | {N} | {tool} | ");
            assert!(
                has_row(&durable, &row, 8),
                "no durable row `{row}` in:\n{report}"
            );
        }
    }
    let rows = |lines: &[&str]| {
        lines
            .iter()
            .filter(|l| {
                l.starts_with("| ") && !l.starts_with("| database") && !l.starts_with("| ---")
            })
            .count()
    };
    assert_eq!(rows(&cold), databases.len() * tools.len(), "{report}");
    assert_eq!(rows(&warm), databases.len() * tools.len(), "{report}");
    assert_eq!(rows(&durable), databases.len() * tools.len(), "{report}");

    let macro_path = section(
        &report,
        "`#[change_unit]` units against units built at run time",
    );
    for database in &databases {
        for mode in ["cold", "warm"] {
            for units in ["built at run time", "`#[change_unit]`, `run!()`"] {
                let row = format!("| {database} | {mode} | {units} | ");
                assert!(
                    has_row(&macro_path, &row, 6),
                    "no row `{row}` in:\n{report}"
                );
            }
        }
    }
    assert!(
        report.contains(&format!("The same {MACRO_UNITS} changes")),
        "{report}"
    );

    let sql_files = section(&report, "SQL files: `sql_units!` beside sqlx's `migrate!`");
    for database in &databases {
        for mode in ["cold", "warm"] {
            for tool in ["sqlx `migrate!`", "flamingock, `sql_units!`"] {
                let row = format!("| {database} | {mode} | {tool} | ");
                assert!(has_row(&sql_files, &row, 6), "no row `{row}` in:\n{report}");
            }
        }
    }
    assert_eq!(rows(&sql_files), databases.len() * 4, "{report}");
    assert!(
        report.contains(&format!("The same {SQL_FILES} SQL files")),
        "{report}"
    );

    let targets = section(&report, "Targets");
    for database in &databases {
        for target in [
            format!(
                "| cold apply, N = {N}, commits not waiting for the disk: at most 1.1× the floor | {database} | "
            ),
            format!("| warm start, N = {N}: at most 1× the floor | {database} | "),
            format!(
                "| cold apply, N = {N}, durable commits: at most 1.1× the floor | {database} | "
            ),
            format!(
                "| cold apply, N = {N}, durable commits: no slower than sqlx's migrator | {database} | "
            ),
            format!(
                "| cold apply, N = {N}, durable commits: no slower than refinery | {database} | "
            ),
        ] {
            assert!(
                has_row(&targets, &target, 4),
                "no target `{target}` in:\n{report}"
            );
        }
    }

    let history = section(&report, "Warm start after a long history");
    for database in &databases {
        let row = format!("| {database} | {N} | ");
        let audit_rows: Vec<usize> = history
            .iter()
            .filter(|line| line.starts_with(&row) && line.matches(" | ").count() == 5)
            .filter_map(|line| line.split(" | ").nth(2)?.replace(',', "").parse().ok())
            .collect();
        assert!(
            matches!(audit_rows[..], [short, long] if short < N * 3 && long >= HISTORY_ROWS),
            "no short and long history for {database} in:\n{report}"
        );
        assert!(
            targets.iter().any(|line| line
                .starts_with(&format!("| warm start, N = {N}, costs the same after "))
                && line.contains(&format!(" | {database} | "))),
            "no history target for {database} in:\n{report}"
        );
    }

    let fleet = section(&report, "Fleet start");
    for database in &servers {
        for processes in [1, FLEET_SIZE] {
            let row = format!("| {database} | {N} | {processes} | ");
            assert!(
                has_row(&fleet, &row, 6),
                "no fleet row `{row}` in:\n{report}"
            );
        }
        let target =
            format!("| fleet start of {FLEET_SIZE}: within 1.2× one process | {database} | ");
        assert!(
            has_row(&targets, &target, 4),
            "no fleet target `{target}` in:\n{report}"
        );
    }
    if servers.is_empty() {
        assert!(fleet.is_empty(), "a fleet without a server:\n{report}");
    }
    if postgres {
        let server = section(&report, "Through the server");
        for mode in ["cold", "warm"] {
            let row = format!("| {mode} | {N} | ");
            assert!(has_row(&server, &row, 7), "no row `{row}` in:\n{report}");
        }
        // The header row is not a `database` one here.
        assert_eq!(rows(&server), 1 + 2, "{report}");
        let load = section(&report, "Load on one server");
        assert!(
            report.contains(&format!(
                "{LOAD_SERVICES} services × {LOAD_INSTANCES} instances"
            )),
            "{report}"
        );
        assert_eq!(rows(&load), 1 + 1, "{report}");
        assert!(
            load.iter()
                .any(|l| l.matches(" | ").count() == 6 && l.contains("MiB")),
            "no load row in:\n{report}"
        );
    } else {
        assert!(
            section(&report, "Through the server").is_empty(),
            "{report}"
        );
        assert!(
            section(&report, "Load on one server").is_empty(),
            "{report}"
        );
    }
    assert!(!section(&report, "How each tool is driven").is_empty());
    assert!(!section(&report, "Analysis: where the time goes").is_empty());
}
