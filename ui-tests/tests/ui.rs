//! Pins the compile errors of the attribute macros (`tests/ui`, one misuse per file, each with the
//! `.stderr` it must produce). What the macros accept is checked by ordinary tests beside this
//! one (`all_keys.rs`), so that trybuild only type-checks its cases instead of building them.

use std::path::Path;

#[test]
fn ui() {
    link_sql_fixtures();
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}

/// `sql_units!` reads its folder relative to `CARGO_MANIFEST_DIR`, which trybuild sets to the
/// project it generates (`<target>/tests/trybuild/<crate>`): link the malformed folders of
/// `tests/sql-fixtures` there, so that the `sql_units_*` cases find them as `sql-fixtures/..`.
fn link_sql_fixtures() {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target directory holds tmp/");
    let project = target
        .join("tests")
        .join("trybuild")
        .join(env!("CARGO_PKG_NAME"));
    std::fs::create_dir_all(&project).expect("the trybuild project directory");
    let link = project.join("sql-fixtures");
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sql-fixtures");
    if std::fs::read_link(&link).is_ok_and(|to| to == fixtures) {
        return;
    }
    let _ = std::fs::remove_file(&link);
    #[cfg(unix)]
    std::os::unix::fs::symlink(&fixtures, &link).expect("link the SQL fixtures");
    #[cfg(not(unix))]
    panic!("the sql_units! UI cases link their fixtures with a Unix symlink");
}
