//! SQL files as change units (`flamingock::sql_units!`) on SQLite, PostgreSQL and MariaDB: each
//! layout's folder (`tests/fixtures/sql/`) applied in version order, interleaved with a code
//! unit, exactly once; down files run by undo; a file without one refused by undo; files outside
//! a transaction run statement by statement (PostgreSQL's `CREATE INDEX CONCURRENTLY`);
//! placeholders replaced, and a missing one refused before anything is written; the checksum
//! stored is the file's, the same for a CRLF copy.

use flamingock::{AuditState, ChangeUnit, Error, TxStrategy, UndoScope, UnitOutcome};
use flamingock_tests::conformance::{Backend, BackendDb, own_database_strategy};

/// The states a transactional unit on the audit store's database leaves.
fn applied(backend: Backend) -> Vec<AuditState> {
    if backend.shares_transactions() {
        vec![AuditState::Applied]
    } else {
        vec![AuditState::Started, AuditState::Applied]
    }
}

/// The registered unit `id` declared in `module`.
fn unit(module: &str, id: &str) -> &'static ChangeUnit {
    ChangeUnit::registered()
        .find(|u| u.id == id && u.source.module_path == module)
        .unwrap_or_else(|| panic!("unit {id} in {module}"))
}

/// The units declared in `module` or below it.
fn units_of(module: &str) -> Vec<&'static ChangeUnit> {
    let below = format!("{module}::");
    ChangeUnit::registered()
        .filter(|u| u.source.module_path == module || u.source.module_path.starts_with(&below))
        .collect()
}

mod crlf {
    flamingock::sql_units!("fixtures/sql/sqlx_crlf");
}

#[test]
fn a_crlf_copy_of_a_file_has_the_same_checksum() {
    let lf = ChangeUnit::registered()
        .find(|u| {
            u.id == "1_create_books" && u.source.module_path.ends_with("::sqlite::sqlx_layout")
        })
        .expect("the sqlx folder's first unit");
    let crlf = unit("conformance::sql_units::crlf", "1_create_books");
    assert_eq!(lf.checksum, crlf.checksum);
    assert_eq!(lf.checksum.len(), 64, "SHA-256 in hex: {}", lf.checksum);
    let migration = flamingock::sql_unit::SqlMigration::registered()
        .find(|m| m.up.path == "fixtures/sql/sqlx_crlf/1_create_books.up.sql")
        .expect("the CRLF copy is registered");
    assert!(
        migration.up.text.contains("\r\n"),
        "the copy really is CRLF"
    );
    // sqlx's own checksum is of the bytes, so the copies differ there.
    let lf_migration = flamingock::sql_unit::SqlMigration::registered()
        .find(|m| m.up.path == "fixtures/sql/sqlx/1_create_books.up.sql")
        .expect("the LF file is registered");
    assert_ne!(migration.source_checksum, lf_migration.source_checksum);
    assert_eq!(
        lf_migration.source_checksum.map(str::len),
        Some(96),
        "SHA-384 in hex"
    );
}

macro_rules! sql_units_suite {
    ($name:ident, $db:ty, $backend:expr) => {
        mod $name {
            use super::*;

            const BACKEND: Backend = $backend;

            async fn fresh(hint: &str) -> Option<BackendDb> {
                BackendDb::create(BACKEND, hint).await
            }

            pub mod sqlx_layout {
                use flamingock::prelude::*;

                flamingock::sql_units!("fixtures/sql/sqlx", author = "fixtures");

                /// Between `1_create_books` and `3_shelve_books` by its order.
                #[change_unit(id = "write-book-two", order = "2", author = "t")]
                pub mod write_book_two {
                    #[execution]
                    async fn execute(
                        tx: &mut sqlx::Transaction<'_, $db>,
                    ) -> Result<(), sqlx::Error> {
                        sqlx::query("INSERT INTO books (id, title) VALUES (2, 'from code')")
                            .execute(&mut **tx)
                            .await?;
                        Ok(())
                    }

                    #[rollback_execution]
                    async fn rollback(
                        tx: &mut sqlx::Transaction<'_, $db>,
                    ) -> Result<(), sqlx::Error> {
                        sqlx::query("DELETE FROM books WHERE id = 2")
                            .execute(&mut **tx)
                            .await?;
                        Ok(())
                    }
                }
            }

            pub mod refinery_layout {
                flamingock::sql_units!("fixtures/sql/refinery", author = "fixtures", stage = "shelves");
            }

            pub mod diesel_layout {
                flamingock::sql_units!("fixtures/sql/diesel", layout = "diesel", author = "fixtures");
            }

            pub mod placeholders {
                flamingock::sql_units!("fixtures/sql/placeholders", author = "fixtures");
            }

            fn module(child: &str) -> String {
                format!("{}::{child}", module_path!())
            }

            #[tokio::test]
            async fn sql_files_and_a_code_unit_apply_in_one_order_exactly_once() {
                let Some(db) = fresh("sqlorder").await else {
                    return;
                };
                let builder = db
                    .builder(&module("sqlx_layout"))
                    .placeholder("first_title", "Dune");
                let report = flamingock::run!(builder).await.unwrap();
                assert_eq!(
                    report.applied(),
                    ["1_create_books", "write-book-two", "3_shelve_books"]
                );
                let first = &report.units[0];
                assert_eq!(first.author, "ana", "from the file's `-- author:` line");
                assert_eq!(report.units[2].author, "fixtures", "the macro's default");
                assert_eq!(first.tx_strategy, own_database_strategy(BACKEND));
                // The file after the code unit saw its row, and its placeholder was replaced.
                assert_eq!(
                    db.count("SELECT COUNT(*) FROM books WHERE id = 3 AND title = 'Dune; the sequel'")
                        .await,
                    1
                );
                assert_eq!(db.states_of("1_create_books").await, applied(BACKEND));
                let stored = db
                    .entries()
                    .await
                    .into_iter()
                    .find(|e| e.change_id == "1_create_books" && e.state == AuditState::Applied)
                    .expect("an APPLIED row");
                let declared = unit(&module("sqlx_layout"), "1_create_books");
                assert_eq!(stored.checksum.as_deref(), Some(declared.checksum));
                assert!(
                    stored.source.ends_with("fixtures/sql/sqlx/1_create_books.up.sql:1"),
                    "the unit's source is its file: {}",
                    stored.source
                );

                let again = flamingock::run!(db
                    .builder(&module("sqlx_layout"))
                    .placeholder("first_title", "Dune"))
                .await
                .unwrap();
                assert_eq!(again.count(UnitOutcome::AlreadyApplied), 3);
                assert_eq!(db.count("SELECT COUNT(*) FROM books").await, 2);
                db.drop().await;
            }

            #[tokio::test]
            async fn undo_refuses_a_file_without_a_down_file_and_runs_the_down_file_of_one_with_it() {
                let Some(db) = fresh("sqlundo").await else {
                    return;
                };
                let sqlx_module = module("sqlx_layout");
                let builder = || db.builder(&sqlx_module).placeholder("first_title", "Dune");
                flamingock::run!(builder()).await.unwrap();
                let engine = builder().build().await.unwrap();
                let refused = engine
                    .undo(units_of(&sqlx_module), &UndoScope::Last(3))
                    .await
                    .unwrap_err()
                    .to_string();
                assert!(refused.contains("\"3_shelve_books\""), "{refused}");
                assert!(db.table_exists("books").await, "nothing was undone");

                let diesel_module = module("diesel_layout");
                let report = flamingock::run!(db.builder(&diesel_module)).await.unwrap();
                assert_eq!(
                    report.applied(),
                    ["2024-01-01-000000_create_loans", "2024-01-02-000000_note_loans"]
                );
                assert_eq!(report.units[0].order, "20240101000000");
                assert_eq!(report.units[1].tx_strategy, TxStrategy::NonTransactional);
                assert_eq!(
                    db.count("SELECT COUNT(*) FROM loan_notes WHERE note = 'due -- soon; really'")
                        .await,
                    1
                );
                let engine = db.builder(&diesel_module).build().await.unwrap();
                let undone = engine
                    .undo(units_of(&diesel_module), &UndoScope::Last(2))
                    .await
                    .unwrap();
                assert_eq!(
                    undone.rolled_back(),
                    ["2024-01-02-000000_note_loans", "2024-01-01-000000_create_loans"]
                );
                assert!(!db.table_exists("loans").await, "the down files ran");
                assert!(!db.table_exists("loan_notes").await);
                let again = flamingock::run!(db.builder(&diesel_module)).await.unwrap();
                assert_eq!(again.count(UnitOutcome::Applied), 2, "rolled back units apply again");
                db.drop().await;
            }

            #[tokio::test]
            async fn a_refinery_folder_applies_with_refinery_names() {
                let Some(db) = fresh("sqlrefinery").await else {
                    return;
                };
                let report = flamingock::run!(db.builder(&module("refinery_layout")))
                    .await
                    .unwrap();
                assert_eq!(report.applied(), ["V1__create_shelves", "V2__label_shelves"]);
                assert_eq!(report.units[0].stage, "shelves");
                assert_eq!(report.units[1].author, "bo");
                assert_eq!(
                    db.count("SELECT COUNT(*) FROM shelves WHERE label IN ('a;b', 'it''s')")
                        .await,
                    2
                );
                db.drop().await;
            }

            #[tokio::test]
            async fn a_placeholder_without_a_value_is_refused_before_anything_is_written() {
                let Some(db) = fresh("sqlplaceholder").await else {
                    return;
                };
                let error = flamingock::run!(db.builder(&module("placeholders")))
                    .await
                    .unwrap_err();
                assert!(matches!(error, Error::MissingDependencies(_)), "{error:?}");
                let message = error.to_string();
                assert!(
                    message.contains("fixtures/sql/placeholders/2_write_note.sql:1: placeholder ${greeting} has no value")
                        && message.contains("FLAMINGOCK_PLACEHOLDER_GREETING"),
                    "{message}"
                );
                assert!(message.contains("nothing ran"), "{message}");
                assert!(!db.table_exists("notes").await, "not even the first file ran");
                assert!(db.entries().await.is_empty(), "nothing was recorded");

                let report = flamingock::run!(db
                    .builder(&module("placeholders"))
                    .placeholder("greeting", "hello ${not} twice"))
                .await
                .unwrap();
                assert_eq!(report.count(UnitOutcome::Applied), 2);
                assert_eq!(
                    db.count("SELECT COUNT(*) FROM notes WHERE body = 'hello ${not} twice'")
                        .await,
                    1
                );
                db.drop().await;
            }

            #[tokio::test]
            async fn plan_sql_lists_the_statements_of_pending_files_after_placeholders() {
                let Some(db) = fresh("sqlplan").await else {
                    return;
                };
                let sqlx_module = module("sqlx_layout");
                let builder = || db.builder(&sqlx_module).placeholder("first_title", "Dune");
                let engine = builder().build().await.unwrap();
                let planned = engine.plan(units_of(&sqlx_module)).await.unwrap();
                let pending = flamingock::pending_sql(&engine, &planned).unwrap();
                let files: Vec<(&str, bool)> = pending
                    .iter()
                    .map(|p| (p.change_id.as_str(), p.transactional))
                    .collect();
                assert_eq!(files, [("1_create_books", true), ("3_shelve_books", true)]);
                assert_eq!(
                    pending[1].statements,
                    ["-- Runs after the code unit of order 2, which writes book 2: this copies it only if it is there.\nINSERT INTO books (id, title) SELECT 3, 'Dune; the sequel' FROM books WHERE id = 2"]
                );
                flamingock::run!(builder()).await.unwrap();
                let planned = engine.plan(units_of(&sqlx_module)).await.unwrap();
                assert_eq!(flamingock::pending_sql(&engine, &planned).unwrap(), []);

                let diesel_module = module("diesel_layout");
                let engine = db.builder(&diesel_module).build().await.unwrap();
                let planned = engine.plan(units_of(&diesel_module)).await.unwrap();
                let pending = flamingock::pending_sql(&engine, &planned).unwrap();
                assert!(!pending[1].transactional);
                assert_eq!(pending[1].statements.len(), 3, "{:?}", pending[1].statements);
                db.drop().await;
            }

            flamingock_testkit::if_backend!(postgres, $name, {
                pub mod concurrently {
                    flamingock::sql_units!("fixtures/sql/pg_concurrently", author = "fixtures");
                }

                #[tokio::test]
                async fn a_no_transaction_file_runs_create_index_concurrently_statement_by_statement() {
                    let Some(db) = fresh("sqlconcurrently").await else {
                        return;
                    };
                    let report = flamingock::run!(db.builder(&module("concurrently")))
                        .await
                        .unwrap();
                    assert_eq!(report.applied(), ["1_create_pages", "2_index_pages"]);
                    assert_eq!(report.units[1].tx_strategy, TxStrategy::NonTransactional);
                    assert_eq!(
                        db.count("SELECT COUNT(*) FROM pg_indexes WHERE tablename = 'pages' AND indexname LIKE 'pages_by_%'")
                            .await,
                        2
                    );
                    assert_eq!(
                        db.states_of("2_index_pages").await,
                        [AuditState::Started, AuditState::Applied]
                    );
                    db.drop().await;
                }
            });
        }
    };
}

flamingock_testkit::for_each_backend!(sql_units_suite);
