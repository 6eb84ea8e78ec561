//! Pins the compile errors of the attribute macros (`tests/ui`, one misuse per file, each with the
//! `.stderr` it must produce) and checks that every accepted form compiles and registers
//! (`tests/ui-pass`).

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
    t.pass("tests/ui-pass/*.rs");
}
