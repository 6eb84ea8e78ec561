// `sql_units!` embeds its folder's files with `include_str!`, so editing one rebuilds the
// examples; a file added to the folder is seen only when something tells cargo to look.
fn main() {
    println!("cargo:rerun-if-changed=sql-units/migrations");
    println!("cargo:rerun-if-changed=from-sqlx/migrations");
}
