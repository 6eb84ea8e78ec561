// A malformed migrations folder is a compile error naming the file.
flamingock::sql_units!("sql-fixtures/bad_name", author = "ana");

fn main() {}
