//! The report's "Compile time" and "Binary size and memory per unit" sections, and the
//! compile-time rows of its targets table.

use std::fmt::Write as _;

use crate::compile::{CompileResults, CrateBuild, Flavour};
use crate::markdown::{Table, duration, thousands};
use crate::results::{Key, Results, Sample, max_rss_kib, median, ratio};
use crate::workload::{Mode, Tool};

/// The rebuild after editing one unit may take at most this many times sqlx's after editing one
/// SQL file, at [`INCREMENTAL_TARGET_N`].
pub const INCREMENTAL_LIMIT: f64 = 2.0;
/// The N the incremental-rebuild target is stated at.
pub const INCREMENTAL_TARGET_N: usize = 1_000;

/// Both sections, in order.
pub fn render(out: &mut String, results: &Results) {
    if let Some(compile) = &results.compile {
        compile_time(out, compile, target_rows(results));
    }
    sizes_and_memory(out, results);
}

/// The targets the compile measurement decides, as rows of the targets table (target,
/// database, measured, verdict): the incremental rebuild at [`INCREMENTAL_TARGET_N`], or at the
/// largest N measured when that one was not.
pub fn target_rows(results: &Results) -> Vec<[String; 4]> {
    results
        .compile
        .as_ref()
        .map(target_rows_of)
        .unwrap_or_default()
}

fn target_rows_of(compile: &CompileResults) -> Vec<[String; 4]> {
    let sizes = compile.sizes();
    let Some(n) = sizes
        .contains(&INCREMENTAL_TARGET_N)
        .then_some(INCREMENTAL_TARGET_N)
        .or_else(|| sizes.last().copied())
    else {
        return Vec::new();
    };
    let incremental = |flavour| {
        compile
            .get(flavour, n)
            .and_then(|b| median_of(&b.incremental))
    };
    let (Some(units), Some(sqlx)) = (
        incremental(Flavour::Units),
        incremental(Flavour::SqlxMigrate),
    ) else {
        return Vec::new();
    };
    let Some(r) = ratio(units, sqlx) else {
        return Vec::new();
    };
    vec![[
        format!(
            "incremental debug rebuild after editing one unit of a {}-unit crate: within \
             {INCREMENTAL_LIMIT}× `sqlx::migrate!`'s after editing one file",
            thousands(n)
        ),
        "–".to_owned(),
        format!(
            "{r:.2}× sqlx ({} against {})",
            duration(units),
            duration(sqlx)
        ),
        if r <= INCREMENTAL_LIMIT {
            "met".to_owned()
        } else {
            format!(
                "**missed** by {:.0}%",
                (r / INCREMENTAL_LIMIT - 1.0) * 100.0
            )
        },
    ]]
}

fn median_of(times: &[std::time::Duration]) -> Option<std::time::Duration> {
    let samples: Vec<Sample> = times
        .iter()
        .map(|&elapsed| Sample {
            elapsed,
            peak_rss_kib: None,
        })
        .collect();
    median(&samples)
}

fn compile_time(out: &mut String, compile: &CompileResults, targets: Vec<[String; 4]>) {
    let _ = writeln!(out, "## Compile time\n");
    let _ = writeln!(
        out,
        "A generated workspace: for each N a crate of N `#[change_unit]` units, one module file \
         each, written as the README shows (`units_N`), and a crate of the same N statements as \
         SQL files under `sqlx::migrate!` with the `build.rs` that `sqlx migrate build-script` \
         writes (`sqlx_N`: without it a changed file is not seen). Both are binaries whose `main` \
         applies the changes, depend on this repository's crates by path and share one target \
         directory, so that dependencies are built once, untimed. Debug builds (cargo's default \
         profile), medians of {} runs: *clean* is `cargo build -p` after `cargo clean -p` (the \
         crate alone, linking included); *incremental* is `cargo build -p` after changing the \
         statement of the middle change. *Expanded* is the crate after macro expansion \
         (`-Zunpretty=expanded`), in lines. The machine's two cores are shared with whatever \
         else runs on it: these times are noisier than the others.\n",
        compile.runs
    );
    let mut table = Table::new(&[
        "N",
        "crate",
        "clean build",
        "incremental",
        "incremental × sqlx",
        "expanded lines",
        "expanded lines per change",
    ]);
    for n in compile.sizes() {
        let sqlx_incremental = compile
            .get(Flavour::SqlxMigrate, n)
            .and_then(|b| median_of(&b.incremental));
        for flavour in Flavour::ALL {
            let Some(build) = compile.get(flavour, n) else {
                continue;
            };
            let incremental = median_of(&build.incremental);
            table.row([
                thousands(n),
                flavour.label().to_owned(),
                median_of(&build.clean).map_or_else(|| "–".to_owned(), duration),
                incremental.map_or_else(|| "–".to_owned(), duration),
                incremental
                    .zip(sqlx_incremental)
                    .and_then(|(a, b)| ratio(a, b))
                    .map_or_else(|| "–".to_owned(), |r| format!("{r:.2}")),
                build
                    .expanded_lines
                    .map_or_else(|| "–".to_owned(), thousands),
                build.expanded_lines.map_or_else(
                    || "–".to_owned(),
                    |lines| format!("{:.0}", lines as f64 / n as f64),
                ),
            ]);
        }
    }
    table.write(out);
    out.push('\n');
    if !targets.is_empty() {
        let mut table = Table::new(&["target", "database", "measured", "verdict"]);
        for row in targets {
            table.row(row);
        }
        table.write(out);
        out.push('\n');
    }
}

fn sizes_and_memory(out: &mut String, results: &Results) {
    let compile = results.compile.as_ref();
    let memory = memory_rows(results);
    if compile.is_none() && memory.is_empty() {
        return;
    }
    let _ = writeln!(out, "## Binary size and memory per unit\n");
    if let Some(compile) = compile {
        let _ = writeln!(
            out,
            "The release binaries of the compile-time crates (cargo's default release profile: \
             symbols kept, no debug info; *stripped* after `strip`), each run once to check it \
             applies its changes. Per change: (size at the largest N − size at the smallest) / \
             the difference in N.\n"
        );
        let mut table = Table::new(&["tool", "N", "release binary", "stripped"]);
        for flavour in Flavour::ALL {
            for n in compile.sizes() {
                if let Some(build) = compile.get(flavour, n) {
                    table.row([
                        flavour.label().to_owned(),
                        thousands(n),
                        build.release_bytes.map_or_else(|| "–".to_owned(), mib),
                        build.stripped_bytes.map_or_else(|| "–".to_owned(), mib),
                    ]);
                }
            }
            let per = |value: fn(&CrateBuild) -> Option<u64>| {
                compile
                    .per_unit(flavour, |b| value(b).map(|v| v as f64))
                    .map_or_else(|| "–".to_owned(), bytes)
            };
            table.row([
                flavour.label().to_owned(),
                "per change".to_owned(),
                per(|b| b.release_bytes),
                per(|b| b.stripped_bytes),
            ]);
        }
        table.write(out);
        out.push('\n');
    }
    if !memory.is_empty() {
        let _ = writeln!(
            out,
            "Peak memory per change, from the cold-apply runs above: (peak RSS at the largest N − \
             at the smallest) / the difference in N, per tool.\n"
        );
        let mut table = Table::new(&["database", "tool", "Ns", "peak RSS per change"]);
        for row in memory {
            table.row(row);
        }
        table.write(out);
        out.push('\n');
    }
}

/// A binary's size in MiB.
fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// A per-change size in bytes, or KiB past 10 KiB.
fn bytes(value: f64) -> String {
    if value.abs() < 10_240.0 {
        format!("{value:.0} B")
    } else {
        format!("{:.1} KiB", value / 1024.0)
    }
}

/// Peak RSS growth per change of Flamingock and sqlx's migrator on each database's cold runs.
fn memory_rows(results: &Results) -> Vec<[String; 4]> {
    let mut rows = Vec::new();
    for database in results.databases() {
        for tool in [Tool::Flamingock, Tool::SqlxMigrator] {
            let peak = |n| {
                results
                    .series
                    .get(&Key {
                        durable: false,
                        database,
                        mode: Mode::Cold,
                        n,
                        tool,
                    })
                    .and_then(|samples| max_rss_kib(samples))
            };
            let sizes: Vec<usize> = results
                .sizes(false, database, Mode::Cold)
                .into_iter()
                .filter(|&n| peak(n).is_some())
                .collect();
            let (Some(&small), Some(&large)) = (sizes.first(), sizes.last()) else {
                continue;
            };
            let (Some(low), Some(high)) = (peak(small), peak(large)) else {
                continue;
            };
            if large == small {
                continue;
            }
            let per_unit = (high as f64 - low as f64) * 1024.0 / (large - small) as f64;
            rows.push([
                database.label().to_owned(),
                tool.label().to_owned(),
                format!("{} → {}", thousands(small), thousands(large)),
                bytes(per_unit),
            ]);
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::workload::Database;

    fn build(clean_ms: u64, incremental_ms: u64, bytes: u64) -> CrateBuild {
        CrateBuild {
            clean: vec![Duration::from_millis(clean_ms); 3],
            incremental: vec![
                Duration::from_millis(incremental_ms),
                Duration::from_millis(incremental_ms * 10),
                Duration::from_millis(incremental_ms),
            ],
            release_bytes: Some(bytes),
            stripped_bytes: Some(bytes / 2),
            expanded_lines: Some(clean_ms as usize),
            expanded_bytes: None,
        }
    }

    fn results(units_incremental_ms: u64) -> Results {
        let mut compile = CompileResults {
            runs: 3,
            ..CompileResults::default()
        };
        compile
            .crates
            .insert((Flavour::Units, 10), build(1_000, 500, 1_000_000));
        compile
            .crates
            .insert((Flavour::SqlxMigrate, 10), build(800, 400, 900_000));
        compile.crates.insert(
            (Flavour::Units, 1_000),
            build(20_000, units_incremental_ms, 1_990_000),
        );
        compile
            .crates
            .insert((Flavour::SqlxMigrate, 1_000), build(2_000, 1_000, 999_000));
        let mut results = Results {
            compile: Some(compile),
            ..Results::default()
        };
        for (n, tool, kib) in [
            (100, Tool::Flamingock, 10_000),
            (1_000, Tool::Flamingock, 10_900),
            (100, Tool::SqlxMigrator, 8_000),
            (1_000, Tool::SqlxMigrator, 8_090),
        ] {
            results.add(
                Key {
                    durable: false,
                    database: Database::Sqlite,
                    mode: Mode::Cold,
                    n,
                    tool,
                },
                Sample {
                    elapsed: Duration::from_millis(1),
                    peak_rss_kib: Some(kib),
                },
            );
        }
        results
    }

    #[test]
    fn the_incremental_target_compares_medians_at_a_thousand_units() {
        let met = target_rows(&results(1_900));
        assert_eq!(met.len(), 1);
        assert!(met[0][0].contains("1,000-unit crate"), "{:?}", met[0]);
        assert!(met[0][2].starts_with("1.90× sqlx"), "{:?}", met[0]);
        assert_eq!(met[0][3], "met");
        let missed = target_rows(&results(3_000));
        assert_eq!(missed[0][3], "**missed** by 50%");
        assert!(target_rows(&Results::default()).is_empty());
    }

    #[test]
    fn the_sections_show_times_sizes_and_growth_per_change() {
        let mut out = String::new();
        render(&mut out, &results(1_900));
        assert!(out.contains("## Compile time"), "{out}");
        assert!(out.contains("## Binary size and memory per unit"), "{out}");
        // Medians: the 10× outlier among the incremental runs is not the one shown.
        assert!(out.contains("| 1900 ms"), "{out}");
        assert!(out.contains("| 1.90 |"), "{out}");
        // (1,990,000 − 1,000,000) / 990 bytes per unit, and half of it stripped.
        assert!(out.contains("| 1000 B"), "{out}");
        assert!(out.contains("| 500 B"), "{out}");
        // (10,900 − 10,000) KiB / 900 changes = 1 KiB; sqlx's 90 KiB / 900 = 102 B.
        assert!(out.contains("| 1024 B"), "{out}");
        assert!(out.contains("| 102 B"), "{out}");
        // Expanded lines per change: 20,000 / 1,000.
        assert!(out.contains("| 20 |"), "{out}");
    }

    #[test]
    fn nothing_is_rendered_without_measurements() {
        let mut out = String::new();
        render(&mut out, &Results::default());
        assert!(out.is_empty(), "{out}");
    }
}
