// A malformed migrations folder is a compile error naming the file.
flamingock::sql_units!("sql-fixtures/diesel_no_down", author = "ana");

fn main() {}
