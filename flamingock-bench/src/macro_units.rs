//! Real `#[change_unit]` units, [`COUNT`] per database, doing exactly what the runtime-built units
//! of [`crate::tools::flamingock`] do (`bench-<n>`: the statement its id names, in the audit
//! store's transaction), so that the two paths can be measured side by side.

use crate::workload::Database;

/// How many `#[change_unit]` units each database's module declares.
pub const COUNT: usize = 20;

/// The module prefix that selects one database's units.
pub fn module(database: Database) -> &'static str {
    match database {
        Database::Sqlite => concat!(module_path!(), "::sqlite"),
        Database::Postgres => concat!(module_path!(), "::postgres"),
        Database::Mariadb => concat!(module_path!(), "::mariadb"),
    }
}

/// Declares one unit per `Type "id" "order"` line, on the transaction type given first.
macro_rules! units {
    ($tx:ty; $($name:ident $id:literal $order:literal;)*) => {$(
        #[derive(Default)]
        pub struct $name;

        #[change_unit(id = $id, order = $order, author = "flamingock-bench")]
        impl $name {
            #[execution]
            async fn execute(
                &self,
                context: &ChangeContext,
                tx: &mut $tx,
            ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
                let statement = crate::workload::statement_for_id(&context.change_id)
                    .ok_or("not a benchmark unit id")?;
                sqlx::query(sqlx::AssertSqlSafe(statement)).execute(&mut **tx).await?;
                Ok(())
            }
        }
    )*};
}

/// Declares the [`COUNT`] units `bench-1` … `bench-20` on one transaction type.
macro_rules! twenty_units {
    ($tx:ty) => {
        units! { $tx;
            Unit1 "bench-1" "1"; Unit2 "bench-2" "2"; Unit3 "bench-3" "3"; Unit4 "bench-4" "4";
            Unit5 "bench-5" "5"; Unit6 "bench-6" "6"; Unit7 "bench-7" "7"; Unit8 "bench-8" "8";
            Unit9 "bench-9" "9"; Unit10 "bench-10" "10"; Unit11 "bench-11" "11";
            Unit12 "bench-12" "12"; Unit13 "bench-13" "13"; Unit14 "bench-14" "14";
            Unit15 "bench-15" "15"; Unit16 "bench-16" "16"; Unit17 "bench-17" "17";
            Unit18 "bench-18" "18"; Unit19 "bench-19" "19"; Unit20 "bench-20" "20";
        }
    };
}

/// The SQLite units.
pub mod sqlite {
    use flamingock::prelude::*;

    twenty_units!(sqlx::Transaction<'_, sqlx::Sqlite>);
}

/// The PostgreSQL units.
pub mod postgres {
    use flamingock::prelude::*;

    twenty_units!(sqlx::Transaction<'_, sqlx::Postgres>);
}

/// The MariaDB units (`TX_SEPARATE` there, as every unit on a MySQL or MariaDB audit store's own
/// database: DDL commits implicitly).
pub mod mariadb {
    use flamingock::prelude::*;

    twenty_units!(sqlx::Transaction<'_, sqlx::MySql>);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::change_id;

    #[test]
    fn each_database_declares_bench_1_to_count() {
        for database in Database::ALL {
            let prefix = module(database);
            let mut ids: Vec<&str> = flamingock::ChangeUnit::registered()
                .filter(|unit| unit.source.module_path == prefix)
                .map(|unit| unit.id)
                .collect();
            ids.sort_by_key(|id| id.trim_start_matches("bench-").parse::<usize>().ok());
            let expected: Vec<String> = (1..=COUNT).map(change_id).collect();
            assert_eq!(ids, expected, "{database}");
        }
    }
}
