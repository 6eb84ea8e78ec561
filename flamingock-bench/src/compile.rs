//! The compile-time measurement: a generated Cargo workspace with, for each N, a crate of N
//! `#[change_unit]` units (`units_N`, one module file per unit, written as a user writes them)
//! and a crate of the same N changes as SQL files under `sqlx::migrate!` (`sqlx_N`), both
//! depending on this repository's crates by path and sharing one target directory. Measured:
//! a clean build of the crate alone (dependencies already built), the rebuild after editing one
//! unit or one SQL file, the size of the release binary, and the size of the macro expansion.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::cli::Options;
use crate::error::BenchError;

/// The Ns measured unless `--compile-sizes` says otherwise.
pub const DEFAULT_SIZES: [usize; 3] = [10, 100, 1_000];
/// Timed builds of each kind, per crate.
pub const DEFAULT_RUNS: usize = 3;

/// The two ways of writing the same N changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Flavour {
    /// N `#[change_unit]` impl blocks, one module file each, run by `flamingock::run!()`.
    Units,
    /// N `.sql` files embedded by `sqlx::migrate!`, run by its `Migrator`.
    SqlxMigrate,
}

impl Flavour {
    pub const ALL: [Flavour; 2] = [Flavour::Units, Flavour::SqlxMigrate];

    /// The generated crate's name at `n`.
    pub fn crate_name(self, n: usize) -> String {
        match self {
            Flavour::Units => format!("units_{n}"),
            Flavour::SqlxMigrate => format!("sqlx_{n}"),
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Flavour::Units => "flamingock `#[change_unit]`",
            Flavour::SqlxMigrate => "`sqlx::migrate!`",
        }
    }

    /// The file an incremental rebuild edits, relative to the crate: the middle unit.
    pub fn edited_file(self, n: usize) -> PathBuf {
        let k = n.div_ceil(2);
        match self {
            Flavour::Units => PathBuf::from(format!("src/units/{}.rs", unit_module(k))),
            Flavour::SqlxMigrate => PathBuf::from(format!("migrations/{}", sql_file_name(k))),
        }
    }

    /// The text of change `k` in its file; `edit` is how many times it was edited.
    pub fn change_file(self, k: usize, edit: usize) -> String {
        match self {
            Flavour::Units => unit_source(k, edit),
            Flavour::SqlxMigrate => format!("{}\n", statement(k, edit)),
        }
    }
}

/// What was measured of one crate.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CrateBuild {
    /// `cargo build -p` after `cargo clean -p`, dependencies already built.
    pub clean: Vec<Duration>,
    /// `cargo build -p` after editing one change.
    pub incremental: Vec<Duration>,
    /// The release binary as built (symbols kept; no debug info in release).
    pub release_bytes: Option<u64>,
    /// The same binary after `strip`.
    pub stripped_bytes: Option<u64>,
    /// The crate's code after macro expansion (`-Zunpretty=expanded`): lines and bytes.
    pub expanded_lines: Option<usize>,
    pub expanded_bytes: Option<usize>,
}

/// Everything the compile measurement found, per flavour and N.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CompileResults {
    pub runs: usize,
    pub crates: std::collections::BTreeMap<(Flavour, usize), CrateBuild>,
}

impl CompileResults {
    pub fn get(&self, flavour: Flavour, n: usize) -> Option<&CrateBuild> {
        self.crates.get(&(flavour, n))
    }

    /// The Ns measured, ascending.
    pub fn sizes(&self) -> Vec<usize> {
        let mut sizes: Vec<usize> = self.crates.keys().map(|(_, n)| *n).collect();
        sizes.sort_unstable();
        sizes.dedup();
        sizes
    }

    /// How much `value` grows per change between the smallest and the largest N measured.
    pub fn per_unit(
        &self,
        flavour: Flavour,
        value: impl Fn(&CrateBuild) -> Option<f64>,
    ) -> Option<f64> {
        let sizes = self.sizes();
        let (&small, &large) = (sizes.first()?, sizes.last()?);
        if large == small {
            return None;
        }
        let at = |n| self.get(flavour, n).and_then(&value);
        Some((at(large)? - at(small)?) / (large - small) as f64)
    }
}

/// The module name of change `k`.
fn unit_module(k: usize) -> String {
    format!("u_{k:04}")
}

/// The SQL file of change `k`, named as `sqlx::migrate!` wants (`<version>_<description>.sql`).
fn sql_file_name(k: usize) -> String {
    format!("{k:04}_t_{k}.sql")
}

/// Change `k`'s statement; each edit adds one column, so that the text differs every time.
fn statement(k: usize, edit: usize) -> String {
    let extra: String = (1..=edit).map(|e| format!(", c{e} INTEGER")).collect();
    format!("CREATE TABLE t_{k} (id INTEGER{extra})")
}

/// One unit's module, as the README shows a user writing it.
fn unit_source(k: usize, edit: usize) -> String {
    format!(
        r#"use flamingock::prelude::*;

#[derive(Default)]
pub struct CreateT{k};

#[change_unit(id = "create-t-{k}", order = "{k}", author = "flamingock-bench")]
impl CreateT{k} {{
    #[execution]
    async fn execute(&self, tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>) -> Result<(), sqlx::Error> {{
        sqlx::query("{statement}").execute(&mut **tx).await?;
        Ok(())
    }}
}}
"#,
        statement = statement(k, edit)
    )
}

/// The generated workspace: where it lives and the repository its crates depend on.
pub struct Workspace {
    pub root: PathBuf,
    pub repo: PathBuf,
    pub sizes: Vec<usize>,
}

impl Workspace {
    /// The repository this benchmark was built from (its crates are the path dependencies).
    pub fn this_repository() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("flamingock-bench lives in the repository's root folder")
            .to_path_buf()
    }

    pub fn target_dir(&self) -> PathBuf {
        self.root.join("target")
    }

    pub fn crate_dir(&self, flavour: Flavour, n: usize) -> PathBuf {
        self.root.join(flavour.crate_name(n))
    }

    /// Every file of the workspace, as (path relative to the root, contents).
    pub fn files(&self) -> Vec<(PathBuf, String)> {
        let mut files = Vec::new();
        let members: Vec<String> = self
            .sizes
            .iter()
            .flat_map(|&n| Flavour::ALL.map(|flavour| format!("{:?}", flavour.crate_name(n))))
            .collect();
        files.push((
            PathBuf::from("Cargo.toml"),
            format!(
                "[workspace]\nresolver = \"3\"\nmembers = [{}]\n",
                members.join(", ")
            ),
        ));
        let flamingock = self.repo.join("flamingock");
        for &n in &self.sizes {
            let units = PathBuf::from(Flavour::Units.crate_name(n));
            files.push((
                units.join("Cargo.toml"),
                format!(
                    "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\
                     publish = false\n\n[dependencies]\n\
                     flamingock = {{ path = {path:?}, features = [\"sqlite\"] }}\n\
                     sqlx = {{ version = \"0.9\", default-features = false, features = \
                     [\"runtime-tokio\", \"sqlite\"] }}\n\
                     tokio = {{ version = \"1\", features = [\"macros\", \"rt-multi-thread\"] }}\n",
                    name = Flavour::Units.crate_name(n),
                    path = flamingock.display().to_string(),
                ),
            ));
            files.push((units.join("src/main.rs"), UNITS_MAIN.to_owned()));
            let modules: String = (1..=n)
                .map(|k| format!("mod {};\n", unit_module(k)))
                .collect();
            files.push((units.join("src/units/mod.rs"), modules));
            for k in 1..=n {
                files.push((
                    units.join(format!("src/units/{}.rs", unit_module(k))),
                    unit_source(k, 0),
                ));
            }

            let sqlx = PathBuf::from(Flavour::SqlxMigrate.crate_name(n));
            files.push((
                sqlx.join("Cargo.toml"),
                format!(
                    "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\
                     publish = false\n\n[dependencies]\n\
                     sqlx = {{ version = \"0.9\", default-features = false, features = \
                     [\"runtime-tokio\", \"sqlite\", \"migrate\", \"macros\"] }}\n\
                     tokio = {{ version = \"1\", features = [\"macros\", \"rt-multi-thread\"] }}\n",
                    name = Flavour::SqlxMigrate.crate_name(n),
                ),
            ));
            files.push((sqlx.join("build.rs"), SQLX_BUILD_RS.to_owned()));
            files.push((sqlx.join("src/main.rs"), SQLX_MAIN.to_owned()));
            for k in 1..=n {
                files.push((
                    sqlx.join("migrations").join(sql_file_name(k)),
                    Flavour::SqlxMigrate.change_file(k, 0),
                ));
            }
        }
        files
    }

    /// Writes the workspace, with this repository's `Cargo.lock` so that every dependency is the
    /// version the repository is tested with.
    pub fn write(&self) -> Result<(), BenchError> {
        for (path, text) in self.files() {
            let path = self.root.join(path);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(BenchError::io("creating the folder", parent))?;
            }
            std::fs::write(&path, text).map_err(BenchError::io("writing", &path))?;
        }
        let lock = self.repo.join("Cargo.lock");
        let copy = self.root.join("Cargo.lock");
        std::fs::copy(&lock, &copy).map_err(BenchError::io("copying", &lock))?;
        Ok(())
    }

    /// Edits change `k = n/2` of one crate for the `edit`-th time.
    pub fn edit(&self, flavour: Flavour, n: usize, edit: usize) -> Result<(), BenchError> {
        let path = self.crate_dir(flavour, n).join(flavour.edited_file(n));
        let text = flavour.change_file(n.div_ceil(2), edit);
        std::fs::write(&path, text).map_err(BenchError::io("editing", &path))
    }

    /// `cargo <args>` in the workspace, on its own target directory; fails with cargo's output.
    pub fn cargo(&self, args: &[&str]) -> Result<Duration, BenchError> {
        let mut command = Command::new(cargo());
        command
            .args(args)
            .current_dir(&self.root)
            .env("CARGO_TARGET_DIR", self.target_dir())
            .env_remove("RUSTC_BOOTSTRAP");
        let start = Instant::now();
        run(&mut command, &format!("cargo {}", args.join(" ")), 40)?;
        Ok(start.elapsed())
    }

    /// The crate's code after macro expansion, from rustc itself (`-Zunpretty=expanded`, which
    /// needs `RUSTC_BOOTSTRAP=1` on a stable toolchain).
    pub fn expanded(&self, flavour: Flavour, n: usize) -> Result<String, BenchError> {
        let name = flavour.crate_name(n);
        let what = format!("the expansion of {name}");
        let mut command = Command::new(cargo());
        command
            .args(["rustc", "-q", "-p", &name, "--", "-Zunpretty=expanded"])
            .current_dir(&self.root)
            // Its own target directory: flags of their own would otherwise rebuild the crate
            // measured in the shared one.
            .env("CARGO_TARGET_DIR", self.root.join("target-expand"))
            .env("RUSTC_BOOTSTRAP", "1");
        let stdout = run(&mut command, &what, 40)?;
        String::from_utf8(stdout).map_err(|error| BenchError::Child {
            what,
            detail: error.to_string(),
        })
    }

    /// Runs the release binary once in a fresh folder: the size measured is of a program that
    /// works (it applies its N changes to a new SQLite file).
    fn run_release(&self, flavour: Flavour, n: usize) -> Result<PathBuf, BenchError> {
        let binary = self
            .target_dir()
            .join("release")
            .join(flavour.crate_name(n));
        let folder = self.root.join(format!("run-{}", flavour.crate_name(n)));
        std::fs::create_dir_all(&folder).map_err(BenchError::io("creating the folder", &folder))?;
        let mut command = Command::new(&binary);
        command
            .current_dir(&folder)
            .env_remove("FLAMINGOCK_DATABASE_URL")
            .env_remove("DATABASE_URL");
        run(&mut command, &format!("running {}", binary.display()), 20)?;
        Ok(binary)
    }
}

/// The cargo that runs this benchmark (`$CARGO`), else the one on the path.
fn cargo() -> std::ffi::OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// Runs `command` to its end and returns its standard output; a failure to start it, or an exit
/// that is not a success, is [`BenchError::Child`] named `what`, with the last `lines` lines of
/// its standard error.
fn run(command: &mut Command, what: &str, lines: usize) -> Result<Vec<u8>, BenchError> {
    let output = command.output().map_err(|error| BenchError::Child {
        what: what.to_owned(),
        detail: error.to_string(),
    })?;
    if !output.status.success() {
        return Err(BenchError::Child {
            what: what.to_owned(),
            detail: tail(&String::from_utf8_lossy(&output.stderr), lines),
        });
    }
    Ok(output.stdout)
}

/// `main` of a units crate: the README's.
const UNITS_MAIN: &str = r#"mod units;

#[tokio::main]
async fn main() -> Result<(), flamingock::Error> {
    let report = flamingock::run!().await?;
    println!("{report}");
    Ok(())
}
"#;

/// `main` of a sqlx crate: sqlx's own example of `migrate!`.
const SQLX_MAIN: &str = r#"#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let options = "sqlite://sqlx.db?mode=rwc".parse::<sqlx::sqlite::SqliteConnectOptions>()?;
    let pool = sqlx::SqlitePool::connect_with(options).await?;
    sqlx::migrate!("./migrations").run(&pool).await?;
    println!("migrated");
    Ok(())
}
"#;

/// What `sqlx migrate build-script` writes: without it, `migrate!` on a stable toolchain does not
/// see a changed or added migration until something else rebuilds the crate.
const SQLX_BUILD_RS: &str = r#"// generated by `sqlx migrate build-script`
fn main() {
    // trigger recompilation when a new migration is added
    println!("cargo:rerun-if-changed=migrations");
}
"#;

/// The last `lines` lines of `text`.
fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Generates the workspace (under a temporary folder unless `--compile-dir` names one) and
/// measures every crate in it.
pub fn measure(options: &Options) -> Result<CompileResults, BenchError> {
    let temp;
    let root = match &options.compile_dir {
        Some(dir) => dir.clone(),
        None => {
            temp = tempfile::Builder::new()
                .prefix("flamingock-compile-")
                .tempdir()
                .map_err(BenchError::io(
                    "creating a folder in",
                    &std::env::temp_dir(),
                ))?;
            temp.path().to_path_buf()
        }
    };
    let workspace = Workspace {
        root,
        repo: Workspace::this_repository(),
        sizes: options.compile_sizes.clone(),
    };
    workspace.write()?;
    let runs = options.compile_runs;
    let mut results = CompileResults {
        runs,
        ..CompileResults::default()
    };
    for &n in &options.compile_sizes {
        for flavour in Flavour::ALL {
            eprintln!("compile: {} ({})", flavour.crate_name(n), flavour.label());
            let build = measure_crate(&workspace, flavour, n, runs)?;
            results.crates.insert((flavour, n), build);
        }
    }
    Ok(results)
}

fn measure_crate(
    workspace: &Workspace,
    flavour: Flavour,
    n: usize,
    runs: usize,
) -> Result<CrateBuild, BenchError> {
    let name = flavour.crate_name(n);
    let build = ["build", "-q", "-p", name.as_str()];
    // Untimed: the dependencies, and the first build of the crate.
    workspace.cargo(&build)?;
    let mut result = CrateBuild::default();
    for _ in 0..runs {
        workspace.cargo(&["clean", "-q", "-p", &name])?;
        result.clean.push(workspace.cargo(&build)?);
    }
    for edit in 1..=runs {
        workspace.edit(flavour, n, edit)?;
        result.incremental.push(workspace.cargo(&build)?);
    }
    workspace.edit(flavour, n, 0)?;

    let expanded = workspace.expanded(flavour, n)?;
    result.expanded_lines = Some(expanded.lines().count());
    result.expanded_bytes = Some(expanded.len());

    workspace.cargo(&["build", "-q", "--release", "-p", &name])?;
    let binary = workspace.run_release(flavour, n)?;
    result.release_bytes = Some(file_size(&binary)?);
    let stripped = binary.with_extension("stripped");
    let status = Command::new("strip")
        .arg("-o")
        .arg(&stripped)
        .arg(&binary)
        .status();
    // `strip` is binutils', not Rust's: where it is missing the stripped size is left out.
    if matches!(status, Ok(status) if status.success()) {
        result.stripped_bytes = Some(file_size(&stripped)?);
    }
    Ok(result)
}

fn file_size(path: &Path) -> Result<u64, BenchError> {
    std::fs::metadata(path)
        .map(|metadata| metadata.len())
        .map_err(BenchError::io("reading the size of", path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workspace(sizes: &[usize]) -> Workspace {
        Workspace {
            root: PathBuf::from("/nowhere"),
            repo: PathBuf::from("/repo"),
            sizes: sizes.to_vec(),
        }
    }

    fn file<'a>(files: &'a [(PathBuf, String)], path: &str) -> &'a str {
        files
            .iter()
            .find(|(p, _)| p == Path::new(path))
            .map(|(_, text)| text.as_str())
            .unwrap_or_else(|| panic!("no {path} among {:?}", files.iter().map(|f| &f.0)))
    }

    #[test]
    fn each_size_has_a_units_crate_and_a_sqlx_crate_of_n_changes() {
        let files = workspace(&[3, 10]).files();
        let root = file(&files, "Cargo.toml");
        for name in ["units_3", "sqlx_3", "units_10", "sqlx_10"] {
            assert!(root.contains(&format!("\"{name}\"")), "{root}");
        }
        let count = |prefix: &str, suffix: &str| {
            files
                .iter()
                .filter(|(p, _)| {
                    p.starts_with(prefix)
                        && p.to_string_lossy().ends_with(suffix)
                        && !p.ends_with("mod.rs")
                        && !p.ends_with("main.rs")
                })
                .count()
        };
        assert_eq!(count("units_10/src/units", ".rs"), 10);
        assert_eq!(count("sqlx_10/migrations", ".sql"), 10);
        assert_eq!(count("units_3/src/units", ".rs"), 3);
        let modules = file(&files, "units_3/src/units/mod.rs");
        assert_eq!(modules, "mod u_0001;\nmod u_0002;\nmod u_0003;\n");
        let manifest = file(&files, "units_3/Cargo.toml");
        assert!(
            manifest.contains("path = \"/repo/flamingock\""),
            "{manifest}"
        );
        assert!(file(&files, "sqlx_3/build.rs").contains("rerun-if-changed=migrations"));
        assert!(file(&files, "sqlx_3/src/main.rs").contains("sqlx::migrate!(\"./migrations\")"));
    }

    #[test]
    fn a_unit_is_written_as_a_user_writes_it() {
        let files = workspace(&[3]).files();
        let unit = file(&files, "units_3/src/units/u_0002.rs");
        assert!(unit.contains(
            "#[change_unit(id = \"create-t-2\", order = \"2\", author = \"flamingock-bench\")]"
        ));
        assert!(unit.contains("sqlx::query(\"CREATE TABLE t_2 (id INTEGER)\")"));
        assert_eq!(
            file(&files, "sqlx_3/migrations/0002_t_2.sql"),
            "CREATE TABLE t_2 (id INTEGER)\n"
        );
    }

    #[test]
    fn every_edit_changes_the_middle_change_and_only_its_statement() {
        for flavour in Flavour::ALL {
            let texts: Vec<String> = (0..4).map(|edit| flavour.change_file(50, edit)).collect();
            for (i, a) in texts.iter().enumerate() {
                for b in &texts[i + 1..] {
                    assert_ne!(a, b, "{flavour:?}");
                }
            }
            assert!(texts[2].contains("CREATE TABLE t_50 (id INTEGER, c1 INTEGER, c2 INTEGER)"));
        }
        assert_eq!(
            Flavour::Units.edited_file(100),
            PathBuf::from("src/units/u_0050.rs")
        );
        assert_eq!(
            Flavour::SqlxMigrate.edited_file(10),
            PathBuf::from("migrations/0005_t_5.sql")
        );
    }

    #[test]
    fn growth_per_unit_is_taken_between_the_smallest_and_largest_n() {
        let mut results = CompileResults::default();
        for (n, bytes) in [(10, 1_000u64), (100, 5_000), (1_000, 100_000)] {
            results.crates.insert(
                (Flavour::Units, n),
                CrateBuild {
                    release_bytes: Some(bytes),
                    ..CrateBuild::default()
                },
            );
        }
        let per_unit = results
            .per_unit(Flavour::Units, |b| b.release_bytes.map(|v| v as f64))
            .expect("measured");
        assert!((per_unit - 100.0).abs() < 1e-9, "{per_unit}");
        assert_eq!(
            results.per_unit(Flavour::SqlxMigrate, |b| b.release_bytes.map(|v| v as f64)),
            None
        );
    }
}
