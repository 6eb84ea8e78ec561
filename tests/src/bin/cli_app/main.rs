//! A program with the embedded Flamingock CLI, for the CLI tests: its `main` is
//! `flamingock::cli::main_async(builder)`, so every command knows the units below.
//!
//! Environment: `CLI_APP_MODULE` selects one scenario module (`cli_app::sqlite_schema`,
//! `cli_app::pg_schema`, `cli_app::no_rollback`, `cli_app::blocking`, `cli_app::separate`,
//! `cli_app::drift_original`, `cli_app::drift_edited`);
//! `CLI_APP_DIR` is where the non-transactional units write files and where the "warehouse"
//! target's SQLite file lives; `CLI_APP_FAIL` names units that must fail this time.

use std::path::PathBuf;
use std::process::ExitCode;

/// Where non-transactional units write.
pub struct OutDir(pub PathBuf);

/// The ids of the units told to fail (comma-separated).
pub struct FailSwitch(pub String);

impl FailSwitch {
    /// Fails when `change_id` is named.
    pub fn check(&self, change_id: &str) -> Result<(), std::io::Error> {
        if self.0.split(',').any(|id| id == change_id) {
            Err(std::io::Error::other(format!(
                "{change_id} was told to fail"
            )))
        } else {
            Ok(())
        }
    }
}

/// The schema scenario on SQLite: three TX_SHARED units and a NON_TX export, all with rollbacks.
mod sqlite_schema {
    pub type Db = sqlx::Sqlite;
    include!("schema.rs");
}

/// The same scenario on PostgreSQL.
mod pg_schema {
    pub type Db = sqlx::Postgres;
    include!("schema.rs");
}

/// A unit with a rollback after one without: undoing both must be refused.
mod no_rollback {
    use flamingock::prelude::*;

    use super::OutDir;

    #[change_unit(id = "write-a", order = "1", author = "ana", transactional = false)]
    mod write_a {
        use super::OutDir;

        #[execution]
        pub fn execute(dir: &OutDir) -> Result<(), std::io::Error> {
            std::fs::write(dir.0.join("a.txt"), "a")
        }
    }

    #[derive(Default)]
    pub struct WriteB;

    #[change_unit(id = "write-b", order = "2", author = "ana", transactional = false)]
    impl WriteB {
        #[execution]
        fn execute(&self, dir: &OutDir) -> Result<(), std::io::Error> {
            std::fs::write(dir.0.join("b.txt"), "b")
        }

        #[rollback_execution]
        fn rollback(&self, dir: &OutDir) -> Result<(), std::io::Error> {
            std::fs::remove_file(dir.0.join("b.txt"))
        }
    }
}

/// Three releases' units: one without a system version, one of 1.2.0, one of 1.4.0 (with a
/// rollback), each writing a file.
mod releases {
    use flamingock::prelude::*;

    use super::OutDir;

    #[change_unit(id = "rel-base", order = "1", author = "ana", transactional = false)]
    mod base {
        use super::OutDir;

        #[execution]
        pub fn execute(dir: &OutDir) -> Result<(), std::io::Error> {
            std::fs::write(dir.0.join("base.txt"), "base")
        }
    }

    #[change_unit(
        id = "rel-1-2",
        order = "2",
        author = "ana",
        system_version = "1.2.0",
        transactional = false
    )]
    mod one_two {
        use super::OutDir;

        #[execution]
        pub fn execute(dir: &OutDir) -> Result<(), std::io::Error> {
            std::fs::write(dir.0.join("1.2.txt"), "1.2")
        }
    }

    #[derive(Default)]
    pub struct OneFour;

    #[change_unit(
        id = "rel-1-4",
        order = "3",
        author = "bo",
        system_version = "1.4.0",
        transactional = false
    )]
    impl OneFour {
        #[execution]
        fn execute(&self, dir: &OutDir) -> Result<(), std::io::Error> {
            std::fs::write(dir.0.join("1.4.txt"), "1.4")
        }

        #[rollback_execution]
        fn rollback(&self, dir: &OutDir) -> Result<(), std::io::Error> {
            std::fs::remove_file(dir.0.join("1.4.txt"))
        }
    }
}

/// A non-transactional unit without rollback that fails on demand, so that it blocks, between
/// two units that do not fail.
mod blocking {
    use flamingock::prelude::*;

    use super::{FailSwitch, OutDir};

    #[derive(Default)]
    pub struct PrepareExport;

    #[change_unit(
        id = "prepare-export",
        order = "1",
        author = "ana",
        transactional = false
    )]
    impl PrepareExport {
        #[execution]
        fn execute(&self, dir: &OutDir) -> Result<(), std::io::Error> {
            std::fs::write(dir.0.join("prepared.txt"), "ready")
        }

        #[rollback_execution]
        fn rollback(&self, dir: &OutDir) -> Result<(), std::io::Error> {
            std::fs::remove_file(dir.0.join("prepared.txt"))
        }
    }

    #[derive(Default)]
    pub struct FlakyExport;

    #[change_unit(id = "flaky-export", order = "2", author = "bo", transactional = false)]
    impl FlakyExport {
        #[execution]
        fn execute(&self, dir: &OutDir, fail: &FailSwitch) -> Result<(), std::io::Error> {
            std::fs::write(dir.0.join("partial.csv"), "half")?;
            fail.check("flaky-export")?;
            std::fs::write(dir.0.join("export.csv"), "all")
        }
    }

    #[change_unit(id = "after-export", order = "3", author = "bo", transactional = false)]
    mod after_export {
        use super::OutDir;

        #[execution]
        pub fn execute(dir: &OutDir) -> Result<(), std::io::Error> {
            std::fs::write(dir.0.join("after.txt"), "after")
        }
    }
}

/// A folder of sqlx migrations, for `import` and `baseline` (sqlx's migrator applies
/// `import_sqlx_v1` first in the scenario).
mod takeover {
    flamingock::sql_units!("fixtures/sql/import_sqlx_v2", author = "fixtures");
}

/// A unit on another transactional database (a SQLite file): `TX_SEPARATE`, with a marker.
mod separate {
    use flamingock::prelude::*;
    use sqlx::{Sqlite, Transaction};

    #[derive(Default)]
    pub struct CreateStock;

    #[change_unit(
        id = "create-stock",
        order = "1",
        author = "dee",
        target_system = "warehouse"
    )]
    impl CreateStock {
        #[execution]
        async fn execute(&self, tx: &mut Transaction<'_, Sqlite>) -> Result<(), sqlx::Error> {
            sqlx::query("CREATE TABLE stock (sku TEXT PRIMARY KEY, units INTEGER NOT NULL)")
                .execute(&mut **tx)
                .await?;
            Ok(())
        }

        #[rollback_execution]
        async fn rollback(&self, tx: &mut Transaction<'_, Sqlite>) -> Result<(), sqlx::Error> {
            sqlx::query("DROP TABLE stock").execute(&mut **tx).await?;
            Ok(())
        }
    }
}

/// A folder of SQL files as first applied, and an edited copy of it (the first file changed, a
/// third added) under the same ids, for `verify` and `repair`.
mod drift_original {
    flamingock::sql_units!("fixtures/sql/drift", author = "fixtures");
}

/// See [`drift_original`].
mod drift_edited {
    flamingock::sql_units!("fixtures/sql/drift_edited", author = "fixtures");
}

/// The "warehouse" target: a SQLite file in `dir` (its pool connects on first use).
fn warehouse(dir: &std::path::Path) -> flamingock::SqlTarget<sqlx::Sqlite> {
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(dir.join("warehouse.db"))
        .create_if_missing(true);
    flamingock::SqlTarget::new("warehouse", sqlx::SqlitePool::connect_lazy_with(options))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let dir = std::env::var_os("CLI_APP_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
    let mut builder = flamingock::Flamingock::builder()
        .app("cli-app", "1.0.0")
        .target(warehouse(&dir))
        .dependency(OutDir(dir))
        .dependency(FailSwitch(
            std::env::var("CLI_APP_FAIL").unwrap_or_default(),
        ));
    if let Ok(module) = std::env::var("CLI_APP_MODULE") {
        builder = builder.module(module);
    }
    flamingock::cli::main_async(builder).await
}
