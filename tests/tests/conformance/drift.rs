//! Drift detection and repair on SQLite, PostgreSQL and MariaDB: a folder of SQL files applied,
//! then the same ids from an edited copy (`tests/fixtures/sql/drift_edited`, another module)
//! stop the run before anything is applied, naming the unit, its file:line, both checksums and
//! the repair command; a CRLF copy (`drift_crlf`) does not; told to warn, the run goes on;
//! `repair` lets the next run go on, once; a code unit's changed checksum drifts too, a
//! `run_always` unit's never does; a row without a checksum (imported history) is not comparable
//! until repaired.

use flamingock::{
    AuditState, ChangeUnit, DriftPolicy, Error, Flamingock, RepairError, RepairRequest, UnitOutcome,
};
use flamingock_tests::conformance::{Backend, BackendDb};

/// The registered unit `id` declared in `module`.
fn unit(module: &str, id: &str) -> &'static ChangeUnit {
    ChangeUnit::registered()
        .find(|u| u.id == id && u.source.module_path == module)
        .unwrap_or_else(|| panic!("unit {id} in {module}"))
}

/// The units declared in `module`.
fn units_of(module: &str) -> Vec<&'static ChangeUnit> {
    ChangeUnit::registered()
        .filter(|u| u.source.module_path == module)
        .collect()
}

fn repair(change_id: &str) -> RepairRequest {
    RepairRequest {
        change_id: change_id.to_owned(),
        operator: "oncall".to_owned(),
        reason: "widened the column by hand, as the edited file says".to_owned(),
    }
}

macro_rules! drift_suite {
    ($name:ident, $db:ty, $backend:expr) => {
        mod $name {
            use super::*;

            const BACKEND: Backend = $backend;

            async fn fresh(hint: &str) -> Option<BackendDb> {
                BackendDb::create(BACKEND, hint).await
            }

            pub mod original {
                flamingock::sql_units!("fixtures/sql/drift", author = "fixtures");
            }

            /// The same ids, the first file edited, and a third file not applied yet.
            pub mod edited {
                flamingock::sql_units!("fixtures/sql/drift_edited", author = "fixtures");
            }

            /// The original files with CRLF line endings and trailing whitespace.
            pub mod crlf {
                flamingock::sql_units!("fixtures/sql/drift_crlf", author = "fixtures");
            }

            fn module(child: &str) -> String {
                format!("{}::{child}", module_path!())
            }

            /// The folder applied as it was first written.
            async fn applied_original(db: &BackendDb) {
                let report = flamingock::run!(db.builder(&module("original")))
                    .await
                    .expect("the original folder applies");
                assert_eq!(report.applied(), ["1_create_authors", "2_seed_authors"]);
            }

            #[tokio::test]
            async fn an_edited_applied_file_stops_the_run_before_anything_is_applied() {
                let Some(db) = fresh("driftstop").await else {
                    return;
                };
                applied_original(&db).await;
                let rows = db.entries().await.len();

                let error = flamingock::run!(db.builder(&module("edited")))
                    .await
                    .unwrap_err();
                let Error::Drift { drifted } = &error else {
                    panic!("{error}")
                };
                let applied = unit(&module("original"), "1_create_authors");
                let edited = unit(&module("edited"), "1_create_authors");
                assert_ne!(applied.checksum, edited.checksum);
                assert_eq!(drifted.len(), 1, "only the edited file: {error}");
                assert_eq!(drifted[0].recorded_checksum, applied.checksum);
                assert_eq!(drifted[0].current_checksum, edited.checksum);
                let message = error.to_string();
                for needed in [
                    "\"1_create_authors\"",
                    "fixtures/sql/drift_edited/1_create_authors.sql:1",
                    applied.checksum,
                    edited.checksum,
                    "flamingock repair 1_create_authors --reason \"...\"",
                    "nothing ran",
                ] {
                    assert!(message.contains(needed), "{needed} in: {message}");
                }
                assert!(
                    db.states_of("3_index_authors").await.is_empty(),
                    "the pending file did not run"
                );
                assert_eq!(db.entries().await.len(), rows, "nothing was written");
                assert_eq!(
                    db.count("SELECT COUNT(*) FROM authors").await,
                    1,
                    "the data is as the first run left it"
                );
                // The lock was released: a run that goes on past the drift is not kept waiting.
                let report = flamingock::run!(db
                    .builder(&module("edited"))
                    .lock_wait(std::time::Duration::from_secs(5))
                    .on_drift(DriftPolicy::Warn))
                .await
                .expect("told to warn, the run goes on");
                assert_eq!(report.applied(), ["3_index_authors"]);
                assert_eq!(report.drift.len(), 1);
                assert_eq!(report.drift[0].change_id, "1_create_authors");
                assert!(report.to_string().contains("drift (going on, as told)"), "{report}");
                db.drop().await;
            }

            #[tokio::test]
            async fn a_crlf_copy_of_the_folder_is_not_drift() {
                let Some(db) = fresh("driftcrlf").await else {
                    return;
                };
                applied_original(&db).await;
                let report = flamingock::run!(db.builder(&module("crlf")))
                    .await
                    .expect("the same files with other line endings");
                assert_eq!(report.count(UnitOutcome::AlreadyApplied), 2);
                assert!(report.drift.is_empty());
                db.drop().await;
            }

            #[tokio::test]
            async fn repair_lets_the_next_run_go_on_and_a_second_repair_has_nothing_to_repair() {
                let Some(db) = fresh("driftrepair").await else {
                    return;
                };
                applied_original(&db).await;
                let edited_module = module("edited");
                let engine = db.builder(&edited_module).build().await.unwrap();
                let outcome = engine
                    .repair(units_of(&edited_module), &repair("1_create_authors"))
                    .await
                    .expect("repair");
                let edited = unit(&edited_module, "1_create_authors");
                let applied = unit(&module("original"), "1_create_authors");
                assert_eq!(outcome.previous_checksum.as_deref(), Some(applied.checksum));
                let row = db
                    .entries()
                    .await
                    .into_iter()
                    .rev()
                    .find(|e| e.change_id == "1_create_authors")
                    .expect("the repair row");
                assert_eq!(row.state, AuditState::ManualMarkedAsApplied);
                assert_eq!(row.checksum.as_deref(), Some(edited.checksum));
                assert_eq!(row.author, "oncall");
                assert!(row.metadata_flag(flamingock::metadata_keys::REPAIR));
                assert_eq!(
                    row.metadata_str(flamingock::metadata_keys::PREVIOUS_CHECKSUM),
                    Some(applied.checksum)
                );
                assert_eq!(row.reason(), Some(repair("x").reason.as_str()));

                let report = flamingock::run!(db.builder(&edited_module))
                    .await
                    .expect("the run goes on");
                assert_eq!(report.applied(), ["3_index_authors"]);
                let rows = db.entries().await.len();
                let again = engine
                    .repair(units_of(&edited_module), &repair("1_create_authors"))
                    .await
                    .unwrap_err();
                assert!(matches!(again, RepairError::NothingToRepair { .. }), "{again}");
                assert!(again.to_string().contains("nothing to repair"), "{again}");
                assert_eq!(db.entries().await.len(), rows, "nothing was written");
                db.drop().await;
            }

            #[tokio::test]
            async fn a_code_unit_whose_checksum_changed_drifts_and_a_run_always_unit_never_does() {
                let Some(db) = fresh("driftcode").await else {
                    return;
                };
                use flamingock::testing::UnitBuilder;
                let engine = || async {
                    Flamingock::builder()
                        .database_url(&db.url)
                        .build()
                        .await
                        .expect("the engine")
                };
                let first = UnitBuilder::new("create-index", "1", "ana")
                    .checksum("tokens-one")
                    .build();
                let always = UnitBuilder::new("refresh-cache", "2", "ana")
                    .run_always()
                    .checksum("tokens-one")
                    .build();
                let pending = UnitBuilder::new("seed-cache", "3", "ana").build();
                engine().await.run([first, always]).await.expect("first run");

                let changed_always = UnitBuilder::new("refresh-cache", "2", "ana")
                    .run_always()
                    .checksum("tokens-two")
                    .build();
                let report = engine()
                    .await
                    .run([first, changed_always])
                    .await
                    .expect("a run-always unit never drifts");
                assert_eq!(report.applied(), ["refresh-cache"]);

                let changed = UnitBuilder::new("create-index", "1", "ana")
                    .checksum("tokens-two")
                    .build();
                let error = engine()
                    .await
                    .run([changed, changed_always, pending])
                    .await
                    .unwrap_err();
                let Error::Drift { drifted } = &error else {
                    panic!("{error}")
                };
                assert_eq!(drifted.len(), 1, "{error}");
                assert_eq!(drifted[0].change_id, "create-index");
                assert_eq!(drifted[0].file, changed.source.file);
                assert_eq!(drifted[0].line, changed.source.line);
                assert_eq!(
                    (drifted[0].recorded_checksum.as_str(), drifted[0].current_checksum.as_str()),
                    ("tokens-one", "tokens-two")
                );
                assert!(db.states_of("seed-cache").await.is_empty());
                assert_eq!(
                    db.states_of("refresh-cache").await.len(),
                    db.states_of("create-index").await.len() * 2,
                    "the refused run did not apply the run-always unit either"
                );
                db.drop().await;
            }

            #[tokio::test]
            async fn a_row_without_a_checksum_is_not_comparable_until_repaired() {
                let Some(db) = fresh("driftnull").await else {
                    return;
                };
                applied_original(&db).await;
                // As history imported from a tool whose checksum cannot be compared is recorded.
                let mut imported = db
                    .entries()
                    .await
                    .into_iter()
                    .rev()
                    .find(|e| e.change_id == "1_create_authors")
                    .expect("the applied row");
                imported.checksum = None;
                imported.execution_id = "imported".into();
                imported.metadata = Some(serde_json::json!({ "checksum_comparable": false }));
                let engine = db.builder(&module("edited")).build().await.unwrap();
                engine.store().append(&imported, None).await.expect("append");

                let planned = engine.plan(units_of(&module("edited"))).await.unwrap();
                let check = engine.drift(&planned);
                assert!(check.drifted.is_empty(), "{check:?}");
                let ids: Vec<&str> =
                    check.not_comparable.iter().map(|u| u.change_id.as_str()).collect();
                assert_eq!(ids, ["1_create_authors"]);
                let report = flamingock::run!(db.builder(&module("edited")))
                    .await
                    .expect("not comparable is not drift");
                assert_eq!(report.applied(), ["3_index_authors"]);

                let outcome = engine
                    .repair(units_of(&module("edited")), &repair("1_create_authors"))
                    .await
                    .expect("repair records a checksum");
                assert_eq!(outcome.previous_checksum, None);
                let planned = engine.plan(units_of(&module("edited"))).await.unwrap();
                assert_eq!(engine.drift(&planned), Default::default());
                // Comparable from now on: the original file is not what was accepted.
                let error = flamingock::run!(db.builder(&module("original")))
                    .await
                    .unwrap_err();
                assert!(matches!(error, Error::Drift { .. }), "{error}");
                db.drop().await;
            }
        }
    };
}

flamingock_testkit::for_each_backend!(drift_suite);
