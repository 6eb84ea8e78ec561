//! An application on sqlx 0.8 beside flamingock's sqlx 0.9: its units name types that look like
//! the ones the audit store offers and are not. `#[change_unit]` refuses a `sqlx::Transaction`
//! of the other version at compile time (`ui-tests/tests/ui/transaction_of_another_sqlx.rs`);
//! what it cannot see (an alias, a pool) is refused before anything runs, naming both versions.

use flamingock::Error;
use flamingock_tests::conformance::{Backend, BackendDb};

mod units {
    use flamingock::prelude::*;

    /// An alias the macro cannot read as a transaction.
    pub type Tx08<'a> = sqlx08::Transaction<'a, sqlx08::Postgres>;

    #[change_unit(id = "on-sqlx-08", order = "1", author = "t")]
    mod on_sqlx_08 {
        #[execution]
        async fn execute(
            tx: &mut super::Tx08<'_>,
            pool: &sqlx08::PgPool,
        ) -> Result<(), sqlx08::Error> {
            sqlx08::query("SELECT 1").execute(&mut **tx).await?;
            let _ = pool;
            Ok(())
        }
    }
}

#[tokio::test]
async fn types_of_another_sqlx_version_are_refused_naming_both_versions() {
    let Some(db) = BackendDb::create(Backend::Postgres, "other_sqlx").await else {
        return;
    };
    let builder = db.builder("conformance::other_sqlx::units");
    let error = flamingock::run!(builder).await.unwrap_err();
    let Error::MissingDependencies(missing) = &error else {
        panic!("expected the parameters refused, got {error}");
    };
    let reasons: Vec<_> = missing
        .iter()
        .map(|m| (m.parameter, m.reason.as_str()))
        .collect();
    assert_eq!(reasons.len(), 2, "{error}");
    let (tx, pool) = (reasons[0].1, reasons[1].1);
    assert_eq!((reasons[0].0, reasons[1].0), ("tx", "pool"));
    for expected in [
        "target \"default\" opens a transaction of that name, but it is another type",
        "two versions of the crate that defines `Transaction<'_, Postgres>` are in your dependency tree",
        "the offered `Transaction<'_, Postgres>` is from sqlx 0.9, re-exported as `flamingock::sqlx`, the parameter's from another version",
    ] {
        assert!(tx.contains(expected), "no {expected:?} in: {tx}");
    }
    for expected in [
        "a dependency of that name is registered, but it is another type",
        "the offered `PgPool` is from sqlx 0.9, re-exported as `flamingock::sqlx`",
    ] {
        assert!(pool.contains(expected), "no {expected:?} in: {pool}");
    }
    assert!(db.entries().await.is_empty(), "nothing ran");
    db.drop().await;
}
