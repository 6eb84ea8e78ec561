//! The same [`COUNT`] changes as SQL files checked in under `migrations/` (`<n>_t_<n>.sql`:
//! `CREATE TABLE t_<n> (id INTEGER);`), embedded at compile time twice over: by
//! `flamingock::sql_units!` (one change unit per file) and by `sqlx::migrate!` (a static
//! `Migrator`). Neither reads a file at run time, so the two are measured on equal terms: a
//! compiled-in folder each, one transaction per file, each tool's own history table.

/// How many files `migrations/` holds.
pub const COUNT: usize = 20;

/// The module whose units are the files (one module serves both databases: an SQL unit runs in
/// whatever transaction its target opens).
pub const MODULE: &str = concat!(module_path!(), "::units");

/// The files as change units.
pub mod units {
    flamingock::sql_units!("migrations", author = "flamingock-bench");
}

/// The files as sqlx embeds them.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::statement;

    /// The id (and sqlx's version) of file `n`: `<n>_t_<n>`.
    fn file_id(n: usize) -> String {
        format!("{n}_t_{n}")
    }

    #[test]
    fn both_tools_embed_the_same_count_files_each_the_statement_of_its_number() {
        let mut ids: Vec<&str> = flamingock::ChangeUnit::registered()
            .filter(|unit| unit.source.module_path == MODULE)
            .map(|unit| unit.id)
            .collect();
        ids.sort_by_key(|id| id.split('_').next().and_then(|n| n.parse::<usize>().ok()));
        let expected: Vec<String> = (1..=COUNT).map(file_id).collect();
        assert_eq!(ids, expected);
        assert_eq!(MIGRATOR.iter().count(), COUNT);
        for (n, migration) in (1..=COUNT).zip(MIGRATOR.iter()) {
            assert_eq!(migration.version, n as i64);
            let sql = migration.sql.as_str();
            assert_eq!(sql.trim().trim_end_matches(';'), statement(n));
            let file = flamingock::sql_unit::SqlMigration::find(&file_id(n)).expect("registered");
            assert_eq!(file.up.text, sql);
        }
    }
}
