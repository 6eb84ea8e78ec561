//! Taking over from another migration tool, on SQLite, PostgreSQL and MariaDB: the real tools
//! migrate the database first (sqlx's `Migrator`; refinery's runner on SQLite and PostgreSQL, and
//! on MariaDB its table made with refinery's own DDL; diesel's and sea-orm's tables made as those
//! tools make them), then the same folder through Flamingock imports every migration and applies
//! none; a new file applies; undo runs its down file; a second run imports nothing; an entry that
//! matches no unit refuses the import (unless ignored); sqlx's failed row blocks; the source
//! table is never written; eight engines importing together import once (each backend). Baseline records the
//! units up to one, and refuses on history or an unknown id.

use std::path::Path;
use std::str::FromStr;

use flamingock::import::ForeignEntry;
use flamingock::{
    AuditEntry, AuditState, BaselineError, BaselineRequest, ChangeUnit, Error, ImportOptions,
    SourceTool, UndoScope, UnitOutcome, metadata_keys,
};
use flamingock_tests::conformance::{Backend, BackendDb};

/// The units declared in `module` or below it.
fn units_of(module: &str) -> Vec<&'static ChangeUnit> {
    let below = format!("{module}::");
    ChangeUnit::registered()
        .filter(|u| u.source.module_path == module || u.source.module_path.starts_with(&below))
        .collect()
}

fn fixture(folder: &str) -> String {
    format!("{}/fixtures/sql/{folder}", env!("CARGO_MANIFEST_DIR"))
}

/// Migrates `db` with sqlx's own migrator over `folder`, read at run time.
async fn sqlx_migrate(db: &BackendDb, folder: &str) {
    let migrator = sqlx::migrate::Migrator::new(Path::new(&fixture(folder)))
        .await
        .expect("sqlx reads the folder");
    let migrated = match db.backend {
        Backend::Sqlite => {
            let options = sqlx::sqlite::SqliteConnectOptions::from_str(&db.url)
                .expect("a SQLite URL")
                .create_if_missing(true);
            let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
            let migrated = migrator.run(&pool).await;
            pool.close().await;
            migrated
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
            let migrated = migrator.run(&pool).await;
            pool.close().await;
            migrated
        }
        Backend::MySql => {
            let pool = sqlx::MySqlPool::connect(&db.url).await.unwrap();
            let migrated = migrator.run(&pool).await;
            pool.close().await;
            migrated
        }
    };
    migrated.expect("sqlx's migrator applies the folder");
}

mod refinery_migrations {
    refinery::embed_migrations!("fixtures/sql/refinery");
}

/// Migrates `db` with refinery's runner (SQLite: rusqlite; PostgreSQL: tokio-postgres). On
/// MariaDB, which would need refinery's `mysql_async` driver, its table is made with refinery's
/// own DDL and rows (refinery-core's `ASSERT_MIGRATIONS_TABLE_QUERY`, `insert_migration_query`),
/// and the files run as refinery runs them.
async fn refinery_migrate(db: &BackendDb) {
    match db.backend {
        Backend::Sqlite => {
            let path = db.url.trim_start_matches("sqlite://").to_owned();
            tokio::task::spawn_blocking(move || {
                let mut conn = rusqlite::Connection::open(path).unwrap();
                refinery_migrations::migrations::runner()
                    .run(&mut conn)
                    .expect("refinery migrates SQLite");
            })
            .await
            .unwrap();
        }
        Backend::Postgres => {
            let (mut client, connection) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls)
                .await
                .expect("tokio-postgres connects");
            let driver = tokio::spawn(connection);
            refinery_migrations::migrations::runner()
                .run_async(&mut client)
                .await
                .expect("refinery migrates PostgreSQL");
            drop(client);
            let _ = driver.await;
        }
        Backend::MySql => {
            db.execute(
                "CREATE TABLE IF NOT EXISTS refinery_schema_history(
             version INT4 PRIMARY KEY,
             name VARCHAR(255),
             applied_on VARCHAR(255),
             checksum VARCHAR(255));",
            )
            .await;
            for file in ["V1__create_shelves.sql", "V2__label_shelves.sql"] {
                let sql =
                    std::fs::read_to_string(format!("{}/{file}", fixture("refinery"))).unwrap();
                db.execute(&sql).await;
            }
            // Rows as refinery's `insert_migration_query` writes them; the checksums stand in for
            // refinery's SipHash, which Flamingock never compares.
            db.execute(
                "INSERT INTO refinery_schema_history (version, name, applied_on, checksum) VALUES \
                 (1, 'create_shelves', '2024-01-01T00:00:00Z', '7386929018372636377'), \
                 (2, 'label_shelves', '2024-01-01T00:00:01Z', '3129400384928187421')",
            )
            .await;
        }
    }
}

/// What a table holds, read through the same reader the import uses, and its column count.
async fn source_snapshot(db: &BackendDb, tool: SourceTool) -> (Vec<ForeignEntry>, i64) {
    let engine = flamingock::Flamingock::builder()
        .database_url(&db.url)
        .build()
        .await
        .unwrap();
    let table = tool.default_table();
    let rows = engine
        .store()
        .foreign_history()
        .expect("the SQL store reads other tools' tables")
        .read_foreign(tool, table)
        .await
        .unwrap()
        .expect("the table is there");
    let columns = match db.backend {
        Backend::Sqlite => format!("SELECT COUNT(*) FROM pragma_table_info('{table}')"),
        Backend::Postgres => format!(
            "SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = '{table}'"
        ),
        Backend::MySql => format!(
            "SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = '{table}'"
        ),
    };
    (rows, db.count(&columns).await)
}

fn imported(entries: &[AuditEntry]) -> Vec<&AuditEntry> {
    entries
        .iter()
        .filter(|e| e.metadata_str(metadata_keys::IMPORTED_FROM).is_some())
        .collect()
}

fn sqlx_import() -> ImportOptions {
    ImportOptions::from(SourceTool::Sqlx)
}

macro_rules! import_suite {
    ($name:ident, $db:ty, $backend:expr) => {
        mod $name {
            use super::*;

            const BACKEND: Backend = $backend;

            async fn fresh(hint: &str) -> Option<BackendDb> {
                BackendDb::create(BACKEND, hint).await
            }

            pub mod v1 {
                flamingock::sql_units!("fixtures/sql/import_sqlx_v1", author = "fixtures");
            }

            pub mod v2 {
                flamingock::sql_units!("fixtures/sql/import_sqlx_v2", author = "fixtures");
            }

            pub mod refinery_folder {
                flamingock::sql_units!("fixtures/sql/refinery", author = "fixtures");
            }

            pub mod diesel_folder {
                flamingock::sql_units!("fixtures/sql/diesel", layout = "diesel", author = "fixtures");
            }

            pub mod sea_orm {
                use flamingock::prelude::*;

                #[change_unit(id = "m20220101_000001_create_posts", order = "20220101000001", author = "sea")]
                pub mod create_posts {
                    #[execution]
                    async fn execute(tx: &mut sqlx::Transaction<'_, $db>) -> Result<(), sqlx::Error> {
                        sqlx::query("CREATE TABLE posts (id INTEGER PRIMARY KEY)")
                            .execute(&mut **tx)
                            .await?;
                        Ok(())
                    }
                }
            }

            fn module(child: &str) -> String {
                format!("{}::{child}", module_path!())
            }

            #[tokio::test]
            async fn a_database_migrated_by_sqlx_is_imported_once_then_runs_on() {
                let Some(db) = fresh("impsqlx").await else {
                    return;
                };
                sqlx_migrate(&db, "import_sqlx_v1").await;
                let before = source_snapshot(&db, SourceTool::Sqlx).await;
                assert_eq!(before.0.len(), 2, "sqlx applied both files");

                let report = flamingock::run!(db.builder(&module("v1")).import_history(sqlx_import()))
                    .await
                    .unwrap();
                assert_eq!(report.count(UnitOutcome::AlreadyApplied), 2, "{report}");
                assert!(report.applied().is_empty(), "nothing ran again: {report}");
                assert_eq!(db.count("SELECT COUNT(*) FROM authors").await, 1, "the seed ran once");
                let entries = db.entries().await;
                let rows = imported(&entries);
                assert_eq!(rows.len(), 2);
                let first = rows[0];
                assert_eq!(first.change_id, "1_create_authors");
                assert_eq!(first.state, AuditState::Applied);
                assert_eq!(first.author, "fixtures");
                assert!(first.created_at.is_some(), "stamped by the store's clock");
                let unit = units_of(&module("v1"))
                    .into_iter()
                    .find(|u| u.id == "1_create_authors")
                    .unwrap();
                assert_eq!(
                    first.checksum.as_deref(),
                    Some(unit.checksum),
                    "sqlx's checksum is the file's: comparable"
                );
                assert!(first.metadata.as_ref().unwrap().get(metadata_keys::CHECKSUM_COMPARABLE).is_none());
                assert_eq!(first.metadata_str(metadata_keys::IMPORTED_FROM), Some("sqlx"));
                assert_eq!(first.metadata_str(metadata_keys::SOURCE_VERSION), Some("1"));
                assert_eq!(
                    first.metadata_str(metadata_keys::SOURCE_CHECKSUM).map(str::len),
                    Some(96)
                );
                assert!(first.metadata_str(metadata_keys::IMPORTED_AT_SOURCE).is_some());

                // A new file applies; the second run imports nothing.
                let report = flamingock::run!(db.builder(&module("v2")).import_history(sqlx_import()))
                    .await
                    .unwrap();
                assert_eq!(report.applied(), ["3_create_loans"]);
                assert!(db.table_exists("loans").await);
                assert_eq!(imported(&db.entries().await).len(), 2, "imported once");
                let engine = db.builder(&module("v2")).build().await.unwrap();
                let undone = engine
                    .undo(units_of(&module("v2")), &UndoScope::Last(1))
                    .await
                    .unwrap();
                assert_eq!(undone.rolled_back(), ["3_create_loans"]);
                assert!(!db.table_exists("loans").await, "its down file ran");
                let again = engine
                    .import_history(
                        units_of(&module("v2")),
                        flamingock::sql_unit::SqlMigration::registered(),
                        &sqlx_import(),
                    )
                    .await
                    .unwrap();
                assert!(again.imported.is_empty(), "{again:?}");
                assert_eq!(again.already_in_audit.len(), 2);

                assert_eq!(source_snapshot(&db, SourceTool::Sqlx).await, before, "sqlx's table is unchanged");
                db.drop().await;
            }

            #[tokio::test]
            async fn an_entry_without_a_unit_refuses_the_import_unless_ignored() {
                let Some(db) = fresh("impunknown").await else {
                    return;
                };
                sqlx_migrate(&db, "import_sqlx_unknown").await;
                let error = flamingock::run!(db.builder(&module("v1")).import_history(sqlx_import()))
                    .await
                    .unwrap_err();
                assert!(matches!(error, Error::Import(_)), "{error:?}");
                let message = error.to_string();
                assert!(
                    message.contains("version 4") && message.contains("`_sqlx_migrations`")
                        && message.contains("nothing was imported"),
                    "{message}"
                );
                assert!(db.entries().await.is_empty(), "nothing was written");
                let report = flamingock::run!(db
                    .builder(&module("v1"))
                    .import_history(sqlx_import().ignore_unknown(true)))
                .await
                .unwrap();
                assert_eq!(report.count(UnitOutcome::AlreadyApplied), 2);
                assert_eq!(imported(&db.entries().await).len(), 2);
                db.drop().await;
            }

            #[tokio::test]
            async fn a_failed_sqlx_row_blocks_and_an_edited_file_is_not_comparable() {
                let Some(db) = fresh("impfailed").await else {
                    return;
                };
                sqlx_migrate(&db, "import_sqlx_v1").await;
                // As sqlx leaves a migration that failed part way, and a file edited since.
                db.execute("UPDATE _sqlx_migrations SET success = FALSE WHERE version = 2").await;
                let other = match BACKEND {
                    Backend::Postgres => "decode('00ff', 'hex')",
                    _ => "X'00FF'",
                };
                db.execute(&format!("UPDATE _sqlx_migrations SET checksum = {other} WHERE version = 1")).await;
                let error = flamingock::run!(db.builder(&module("v1")).import_history(sqlx_import()))
                    .await
                    .unwrap_err();
                let Error::Blocked { blocked, .. } = &error else {
                    panic!("blocked, not {error:?}");
                };
                assert_eq!(blocked[0].change_id, "2_seed_authors");
                let message = error.to_string();
                assert!(message.contains("sqlx recorded migration 2 as failed"), "{message}");
                assert!(message.contains("fix 2_seed_authors"), "{message}");
                let entries = db.entries().await;
                let first = entries.iter().find(|e| e.change_id == "1_create_authors").unwrap();
                assert_eq!(first.checksum, None, "the file differs from what sqlx applied");
                assert!(!first.metadata.as_ref().unwrap()[metadata_keys::CHECKSUM_COMPARABLE].as_bool().unwrap());
                assert_eq!(first.metadata_str(metadata_keys::SOURCE_CHECKSUM), Some("00ff"));
                db.drop().await;
            }

            #[tokio::test]
            async fn a_database_migrated_by_refinery_is_imported_without_comparable_checksums() {
                let Some(db) = fresh("imprefinery").await else {
                    return;
                };
                refinery_migrate(&db).await;
                let before = source_snapshot(&db, SourceTool::Refinery).await;
                let report = flamingock::run!(db
                    .builder(&module("refinery_folder"))
                    .import_history(ImportOptions::from(SourceTool::Refinery)))
                .await
                .unwrap();
                assert_eq!(report.count(UnitOutcome::AlreadyApplied), 2, "{report}");
                assert_eq!(db.count("SELECT COUNT(*) FROM shelves").await, 2, "nothing ran twice");
                let entries = db.entries().await;
                let rows = imported(&entries);
                assert_eq!(
                    rows.iter().map(|r| r.change_id.as_str()).collect::<Vec<_>>(),
                    ["V1__create_shelves", "V2__label_shelves"]
                );
                assert!(rows.iter().all(|r| r.checksum.is_none()
                    && !r.metadata.as_ref().unwrap()[metadata_keys::CHECKSUM_COMPARABLE].as_bool().unwrap()
                    && r.metadata_str(metadata_keys::SOURCE_CHECKSUM).is_some()));
                assert_eq!(source_snapshot(&db, SourceTool::Refinery).await, before);
                db.drop().await;
            }

            #[tokio::test]
            async fn diesel_and_sea_orm_tables_are_imported() {
                let Some(db) = fresh("impdiesel").await else {
                    return;
                };
                // diesel_migrations' table, and its files applied as diesel applies them.
                db.execute(
                    "CREATE TABLE IF NOT EXISTS __diesel_schema_migrations (
                       version VARCHAR(50) PRIMARY KEY NOT NULL,
                       run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
                    )",
                )
                .await;
                for folder in ["2024-01-01-000000_create_loans", "2024-01-02-000000_note_loans"] {
                    let sql = std::fs::read_to_string(format!("{}/{folder}/up.sql", fixture("diesel"))).unwrap();
                    db.execute(&sql).await;
                }
                db.execute(
                    "INSERT INTO __diesel_schema_migrations (version) VALUES ('20240101000000'), ('20240102000000')",
                )
                .await;
                let report = flamingock::run!(db
                    .builder(&module("diesel_folder"))
                    .import_history(ImportOptions::from(SourceTool::Diesel)))
                .await
                .unwrap();
                assert_eq!(report.count(UnitOutcome::AlreadyApplied), 2, "{report}");
                assert_eq!(db.count("SELECT COUNT(*) FROM loans").await, 1);
                let entries = db.entries().await;
                assert_eq!(imported(&entries).len(), 2);
                assert_eq!(
                    imported(&entries)[0].metadata_str(metadata_keys::SOURCE_VERSION),
                    Some("20240101000000")
                );

                // sea-orm-migration's table, as its entity declares it.
                db.execute(
                    "CREATE TABLE seaql_migrations (version VARCHAR(255) NOT NULL PRIMARY KEY, applied_at BIGINT NOT NULL)",
                )
                .await;
                db.execute("CREATE TABLE posts (id INTEGER PRIMARY KEY)").await;
                db.execute(
                    "INSERT INTO seaql_migrations (version, applied_at) VALUES ('m20220101_000001_create_posts', 1700000000)",
                )
                .await;
                let report = flamingock::run!(db
                    .builder(&module("sea_orm"))
                    .import_history(ImportOptions::from(SourceTool::SeaOrm)))
                .await
                .unwrap();
                assert_eq!(report.count(UnitOutcome::AlreadyApplied), 1, "{report}");
                let entries = db.entries().await;
                let row = entries
                    .iter()
                    .find(|e| e.change_id == "m20220101_000001_create_posts")
                    .unwrap();
                assert_eq!(row.metadata_str(metadata_keys::IMPORTED_FROM), Some("sea-orm"));
                assert_eq!(
                    row.metadata_str(metadata_keys::IMPORTED_AT_SOURCE),
                    Some("2023-11-14T22:13:20+00:00")
                );
                assert_eq!(row.checksum, None);
                db.drop().await;
            }

            #[tokio::test]
            async fn two_entries_for_one_unit_refuse_the_import() {
                let Some(db) = fresh("impdupe").await else {
                    return;
                };
                db.execute(
                    "CREATE TABLE IF NOT EXISTS __diesel_schema_migrations (
                       version VARCHAR(50) PRIMARY KEY NOT NULL,
                       run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
                    )",
                )
                .await;
                // Both read as version 20240101000000.
                db.execute(
                    "INSERT INTO __diesel_schema_migrations (version) VALUES ('20240101000000'), ('020240101000000')",
                )
                .await;
                let error = flamingock::run!(db
                    .builder(&module("diesel_folder"))
                    .import_history(ImportOptions::from(SourceTool::Diesel)))
                .await
                .unwrap_err();
                let message = error.to_string();
                assert!(message.contains("both match change unit"), "{message}");
                assert!(message.contains("nothing was imported"), "{message}");
                assert!(imported(&db.entries().await).is_empty());
                assert_eq!(db.count("SELECT COUNT(*) FROM __diesel_schema_migrations").await, 2);
                db.drop().await;
            }

            #[tokio::test]
            async fn a_missing_source_table_imports_nothing_and_units_run() {
                let Some(db) = fresh("impmissing").await else {
                    return;
                };
                let report = flamingock::run!(db.builder(&module("v1")).import_history(sqlx_import()))
                    .await
                    .unwrap();
                assert_eq!(report.applied(), ["1_create_authors", "2_seed_authors"]);
                assert!(imported(&db.entries().await).is_empty());
                assert!(!db.table_exists("_sqlx_migrations").await, "nothing created there");
                db.drop().await;
            }

            #[tokio::test]
            async fn baseline_records_the_units_up_to_one_and_refuses_history_or_an_unknown_id() {
                let Some(db) = fresh("baseline").await else {
                    return;
                };
                // The schema is there, built by hand; no history.
                db.execute("CREATE TABLE authors (id INTEGER PRIMARY KEY, name VARCHAR(100) NOT NULL)").await;
                let units = || units_of(&module("v2"));
                let engine = db.builder(&module("v2")).build().await.unwrap();
                let request = |up_to: &str| BaselineRequest {
                    up_to: up_to.into(),
                    operator: "ops".into(),
                    reason: "restored from a dump".into(),
                    once: false,
                };
                let unknown = engine.baseline(units(), &request("9_nothing")).await.unwrap_err();
                assert!(matches!(unknown, BaselineError::UnknownUnit(_)), "{unknown}");
                assert!(unknown.to_string().contains("\"9_nothing\""), "{unknown}");
                assert!(db.entries().await.is_empty());

                let rows = engine.baseline(units(), &request("2_seed_authors")).await.unwrap();
                assert_eq!(
                    rows.iter().map(|r| r.change_id.as_str()).collect::<Vec<_>>(),
                    ["1_create_authors", "2_seed_authors"]
                );
                let entries = db.entries().await;
                assert_eq!(entries.len(), 2);
                for row in &entries {
                    assert_eq!(row.state, AuditState::ManualMarkedAsApplied);
                    assert_eq!(row.author, "ops");
                    assert_eq!(row.unit_author(), "fixtures");
                    assert_eq!(row.reason(), Some("restored from a dump"));
                    assert!(row.metadata_flag(metadata_keys::BASELINE));
                    let unit = units().into_iter().find(|u| u.id == row.change_id).unwrap();
                    assert_eq!(row.checksum.as_deref(), Some(unit.checksum));
                }
                let refused = engine.baseline(units(), &request("3_create_loans")).await.unwrap_err();
                let message = refused.to_string();
                assert!(
                    message.contains("\"1_create_authors\"") && message.contains("\"2_seed_authors\""),
                    "{message}"
                );
                assert_eq!(db.entries().await.len(), 2, "nothing more was written");

                let report = flamingock::run!(db.builder(&module("v2"))).await.unwrap();
                assert_eq!(report.applied(), ["3_create_loans"], "only the unit after the baseline runs");
                assert_eq!(db.count("SELECT COUNT(*) FROM authors").await, 0, "the seed did not run");
                db.drop().await;
            }

            #[tokio::test]
            async fn a_builder_baseline_is_recorded_at_the_first_start_only() {
                let Some(db) = fresh("baselinebuilder").await else {
                    return;
                };
                db.execute("CREATE TABLE authors (id INTEGER PRIMARY KEY, name VARCHAR(100) NOT NULL)").await;
                let builder = || db.builder(&module("v2")).baseline("2_seed_authors", "schema from a dump");
                // A validate-only start records no baseline: it writes nothing at all.
                let refused = flamingock::run!(builder().validate_only()).await.unwrap_err();
                assert!(matches!(refused, flamingock::Error::PendingUnits { .. }), "{refused}");
                assert!(db.entries().await.is_empty(), "a validate-only run wrote a baseline");
                let report = flamingock::run!(builder()).await.unwrap();
                assert_eq!(report.applied(), ["3_create_loans"]);
                let again = flamingock::run!(builder()).await.unwrap();
                assert_eq!(again.count(UnitOutcome::AlreadyApplied), 3);
                assert_eq!(
                    db.entries().await.iter().filter(|e| e.metadata_flag(metadata_keys::BASELINE)).count(),
                    2
                );
                db.drop().await;
            }

            /// Eight engines (each its own pool) start together on one database that sqlx
            /// migrated: the history is imported exactly once.
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn eight_engines_importing_together_import_once() {
                let Some(db) = fresh("impfleet").await else {
                    return;
                };
                sqlx_migrate(&db, "import_sqlx_v2").await;
                let mut runs = Vec::new();
                for _ in 0..8 {
                    let builder = db.builder(&module("v2")).import_history(sqlx_import());
                    runs.push(tokio::spawn(async move { flamingock::run!(builder).await }));
                }
                for run in runs {
                    let report = run.await.unwrap().unwrap();
                    assert!(report.applied().is_empty(), "{report}");
                }
                let entries = db.entries().await;
                assert_eq!(imported(&entries).len(), 3, "{entries:#?}");
                assert_eq!(entries.len(), 3, "no other row");
                db.drop().await;
            }
        }
    };
}

flamingock_testkit::for_each_backend!(import_suite);
