// Options are checked: an unknown key and an unknown layout.
flamingock::sql_units!("sql-fixtures/two_versions", owner = "ana", layout = "flyway");

fn main() {}
