// A malformed migrations folder is a compile error naming the file.
flamingock::sql_units!("sql-fixtures/two_versions", author = "ana");

fn main() {}
