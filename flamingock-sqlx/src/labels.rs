//! Leaf: how messages name this crate's sqlx types: as users write them (`PgPool`,
//! `Transaction<'_, Postgres>`), and from which sqlx version, so that an application linking
//! another sqlx version is told that two are in its build rather than "expected `X`, found `X`".

use flamingock_core::TypeLabel;
use sqlx::{Pool, Transaction};

use crate::dialect::Dialect;

macro_rules! sqlx_version {
    () => {
        "0.9"
    };
}

/// The sqlx version this crate is built on (the `major.minor` of the version its dependency
/// requires), which `flamingock::sqlx` re-exports. Units name their pool and transaction types
/// from this version.
pub const SQLX_VERSION: &str = sqlx_version!();

/// Where the types of this crate's sqlx come from, for the message that two versions are linked.
const SQLX_ORIGIN: &str = concat!(
    "sqlx ",
    sqlx_version!(),
    ", re-exported as `flamingock::sqlx`"
);

/// The label of the transaction `DB`'s stores and targets hand to units.
pub(crate) fn transaction_label<DB: Dialect>() -> TypeLabel {
    TypeLabel::of::<Transaction<'static, DB>>()
        .shown_as(DB::TRANSACTION_TYPE)
        .from_crate(SQLX_ORIGIN)
}

/// The label of the pool `DB`'s stores and targets offer to units.
pub(crate) fn pool_label<DB: Dialect>() -> TypeLabel {
    TypeLabel::of::<Pool<DB>>()
        .shown_as(DB::POOL_TYPE)
        .from_crate(SQLX_ORIGIN)
}

/// Implemented by this crate's sqlx transactions only: `#[change_unit]` requires it of a `&mut`
/// parameter whose type it reads as a sqlx transaction, so that one from another sqlx version
/// (an application on sqlx 0.8) is a compile error that says so, not a refusal at run time.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a transaction of the sqlx flamingock is built on (sqlx 0.9)",
    label = "a transaction of another sqlx version",
    note = "flamingock's audit stores and targets open `flamingock::sqlx::Transaction<'_, DB>`; when your own sqlx dependency is not 0.9, two versions of sqlx are in your build (`cargo tree --duplicates` lists them)",
    note = "write the parameter as `&mut flamingock::sqlx::Transaction<'_, flamingock::sqlx::Postgres>` (or `Sqlite`, `MySql`), take `&mut flamingock::SqlTx` for any of them, or depend on sqlx 0.9"
)]
#[doc(hidden)]
pub trait SqlxTransaction {}

impl<DB: sqlx::Database> SqlxTransaction for Transaction<'_, DB> {}

/// Compiles only when `T` is a transaction of this crate's sqlx (see [`SqlxTransaction`]).
#[doc(hidden)]
pub fn assert_sqlx_transaction<T: SqlxTransaction + ?Sized>() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_named_is_the_one_the_workspace_depends_on() {
        let manifest = include_str!("../../Cargo.toml");
        let line = manifest
            .lines()
            .find(|line| line.starts_with("sqlx = "))
            .expect("the workspace names its sqlx");
        // `major.minor`, or a patch release of it as the lowest version required.
        let named = [
            format!("version = \"{SQLX_VERSION}\""),
            format!("version = \"{SQLX_VERSION}."),
        ];
        assert!(
            named.iter().any(|named| line.contains(named.as_str())),
            "SQLX_VERSION is {SQLX_VERSION}, the workspace says {line}"
        );
    }
}
