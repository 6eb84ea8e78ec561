//! The quick start, run twice as a user would: in a fresh working directory, on the default
//! SQLite file. The first run applies all five units, the second none; the audit then holds
//! exactly one APPLIED row per unit.

#[path = "../quickstart/main.rs"]
mod quickstart;

#[test]
fn quickstart_applies_everything_once_then_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::env::set_current_dir(dir.path()).unwrap();
    // SAFETY: this test binary has a single test, so nothing reads the environment concurrently.
    unsafe { std::env::remove_var(flamingock::DATABASE_URL_ENV) };
    // SAFETY: as above.
    unsafe { std::env::remove_var(flamingock::SQLX_DATABASE_URL_ENV) };

    quickstart::main().expect("first run");
    quickstart::main().expect("second run");

    let rows = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let pool = sqlx::SqlitePool::connect("sqlite://flamingock.db")
            .await
            .unwrap();
        sqlx::query_as::<_, (String, String)>(
            "SELECT change_id, state FROM flamingock_audit_log ORDER BY id",
        )
        .fetch_all(&pool)
        .await
        .unwrap()
    });
    let applied: Vec<&str> = rows
        .iter()
        .filter(|(_, state)| state == "APPLIED")
        .map(|(id, _)| id.as_str())
        .collect();
    assert_eq!(
        applied,
        [
            "create-clients",
            "seed-clients",
            "add-client-email",
            "trim-client-names",
            "export-clients"
        ]
    );
    // The only other row is the non-transactional unit's STARTED.
    assert_eq!(rows.len(), 6, "{rows:?}");
    let csv = std::fs::read_to_string("target/quickstart-export/clients.csv").unwrap();
    assert!(
        csv.contains("Ada Lovelace,ada.lovelace@example.com"),
        "{csv}"
    );
}
