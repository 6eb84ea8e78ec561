//! `examples/from-sqlx` run twice as a user would, in a fresh working directory: sqlx's migrator
//! applies both files first; Flamingock then imports them (applying neither again) and runs only
//! the code unit between them; the second run applies nothing and sqlx's table is unchanged.
#![cfg(feature = "from-sqlx")]

#[path = "../from-sqlx/main.rs"]
mod from_sqlx;

#[test]
fn sqlx_migrates_then_flamingock_imports_and_runs_only_the_new_unit() {
    let dir = tempfile::tempdir().unwrap();
    std::env::set_current_dir(dir.path()).unwrap();

    from_sqlx::main().expect("first run");
    let read = || {
        tokio::runtime::Runtime::new().unwrap().block_on(async {
            let pool = sqlx::SqlitePool::connect("sqlite://flamingock-from-sqlx.db")
                .await
                .unwrap();
            let audit = sqlx::query_as::<_, (String, String, Option<String>)>(
                "SELECT change_id, state, json_extract(metadata, '$.imported_from') FROM flamingock_audit_log ORDER BY id",
            )
            .fetch_all(&pool)
            .await
            .unwrap();
            let sqlx_rows: Vec<(i64, bool)> =
                sqlx::query_as("SELECT version, success FROM _sqlx_migrations ORDER BY version")
                    .fetch_all(&pool)
                    .await
                    .unwrap();
            let books: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM books")
                .fetch_one(&pool)
                .await
                .unwrap();
            (audit, sqlx_rows, books)
        })
    };
    let (audit, sqlx_rows, books) = read();
    let sqlx = Some("sqlx".to_owned());
    assert_eq!(
        audit,
        [
            (
                "20240101000000_create_books".into(),
                "APPLIED".into(),
                sqlx.clone()
            ),
            (
                "20240301000000_add_book_isbn".into(),
                "APPLIED".into(),
                sqlx.clone()
            ),
            ("seed-books".into(), "APPLIED".into(), None),
        ]
    );
    assert_eq!(books, 2);

    from_sqlx::main().expect("second run");
    let again = read();
    assert_eq!(again.0, audit, "the second run recorded nothing");
    assert_eq!(again.1, sqlx_rows, "sqlx's table is unchanged");
    assert_eq!(sqlx_rows, [(20240101000000, true), (20240301000000, true)]);
}
