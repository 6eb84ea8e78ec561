//! The attribute macros of Flamingock: `#[change_unit]`, `#[execution]` and `#[rollback_execution]`.
//!
//! Use them through the `flamingock` crate (`use flamingock::prelude::*;`), whose generated code
//! they name. One module per phase, as in `thiserror` and `serde_derive`: `attr` parses the
//! attribute's arguments, `ast` models the annotated item, `valid` checks both and reports every
//! problem at its token, `expand` generates the wrappers and the registration.

mod ast;
mod attr;
mod errors;
mod expand;
mod source_text;
mod sql_units;
mod valid;

use proc_macro::TokenStream;

/// Declares a change unit: code that runs once, in order, audited, against a target system.
///
/// Put it on an inherent `impl` block of a type that implements `Default`, or on an inline `mod`
/// of free functions. Inside, mark the function that applies the change with
/// [`#[execution]`](macro@execution) (exactly one) and, optionally, the one that undoes it with
/// [`#[rollback_execution]`](macro@rollback_execution). Other items are left alone. The unit
/// registers itself with `inventory`; in a library crate, add `flamingock::export_units!()` there
/// and pass `.units(my_units::change_units())` to the program's builder, so that it is linked.
///
/// ```
/// use flamingock::prelude::*;
///
/// #[derive(Default)]
/// pub struct CreateClients;
///
/// #[change_unit(id = "create-clients", order = "0001", author = "ana")]
/// impl CreateClients {
///     #[execution]
///     async fn execute(&self, tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>) -> Result<(), sqlx::Error> {
///         sqlx::query("CREATE TABLE clients (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
///             .execute(&mut **tx)
///             .await?;
///         Ok(())
///     }
///
///     #[rollback_execution]
///     async fn rollback(&self, tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>) -> Result<(), sqlx::Error> {
///         sqlx::query("DROP TABLE clients").execute(&mut **tx).await?;
///         Ok(())
///     }
/// }
///
/// pub struct Greeting(pub String);
///
/// #[change_unit(id = "greet", order = "0002", author = "bo", transactional = false)]
/// mod greet {
///     use super::*;
///
///     #[execution]
///     pub fn execute(ctx: &ChangeContext, greeting: &Greeting) {
///         println!("{} from {} (attempt {})", greeting.0, ctx.change_id, ctx.attempt);
///     }
/// }
/// # fn main() {
/// #     let unit = flamingock::ChangeUnit::registered().find(|u| u.id == "greet").expect("registered");
/// #     assert!(!unit.transactional);
/// # }
/// ```
///
/// # Keys
///
/// | key | value | |
/// |---|---|---|
/// | `id` | string, required | Identifies the unit in the audit store forever: never change it once applied. |
/// | `order` | string, required | Position among all units; digit runs compare as numbers (`"2"` < `"10"`). |
/// | `author` | string, required | Who wrote the change; recorded in every audit entry. |
/// | `target_system` | string | The target system the unit changes, as registered on the builder. Default: the audit store's own database. |
/// | `transactional` | `true` / `false` | Default `true`: the unit runs inside the target's transaction. `false` runs it outside any transaction; a failure is undone by `#[rollback_execution]`. |
/// | `recovery` | `"manual_intervention"` / `"always_retry"` | What the next run does with a non-transactional unit that failed or was interrupted. Default `"manual_intervention"`: it blocks its stage until `flamingock fix` says what happened. `"always_retry"` runs it again. |
/// | `run_always` | `true` / `false` | Default `false`. `true` applies the unit on every run. |
/// | `system_version` | string, a semantic version (`"1.2.0"`) | The version of the system the change belongs to. Checked at compile time. |
/// | `stage` | string | The stage the unit belongs to (default `"default"`): a run can apply one stage at a time. |
/// | `description` | string | Free text, shown by the CLI. |
///
/// Values are literals: `id = "create-clients"`, `transactional = false`.
///
/// # Methods
///
/// The marked functions may be `fn` or `async fn`. In an `impl` block they take `&self`,
/// `&mut self`, `self` or no receiver; a receiver is a value built with `Default::default()` for
/// the call (so the type must implement `Default` only if a marked method has one). In a `mod`
/// they are free functions. They may not be generic, `unsafe` or `extern`.
///
/// They return `()` or `Result<(), E>`, where `E` is any `std::error::Error + Send + Sync +
/// 'static`, or `anyhow::Error` (so `anyhow::Result<()>` works). A boxed error must say so:
/// `Box<dyn std::error::Error + Send + Sync>`; `Box<dyn std::error::Error>` is a compile error that
/// says which to write.
///
/// # Parameters are injected by type
///
/// Every parameter is a reference, resolved from the run by its type:
///
/// - `&ChangeContext`: the unit's id, the run's execution id, the attempt number, the stage;
/// - `&mut T`: the target system's open transaction, such as
///   `&mut sqlx::Transaction<'_, sqlx::Sqlite>` (a transactional unit only; a
///   `sqlx::Transaction` of another sqlx version than flamingock's does not compile: name it
///   through `flamingock::sqlx`), or `&mut flamingock::SqlTx` on whichever SQL database the unit
///   runs;
/// - `&T` for any other `T`: a dependency registered on the target system or on the builder
///   (`&sqlx::SqlitePool`, `&MyConfig`).
///
/// A dependency nobody registered is reported before any unit runs, naming the unit, the parameter
/// and its type. A type that can never be injected (`String` by value, `&str`, `&mut [u8]`) does
/// not compile.
///
/// # Compile errors
///
/// Unknown, repeated, missing or mistyped keys, an empty `id`, `order` or `author`, a `recovery`
/// or `system_version` that is not one, a missing or repeated `#[execution]`, a repeated
/// `#[rollback_execution]`, a generic or trait `impl`, a `mod` without a body, a parameter or return
/// type that cannot be used: each is reported at the token that is wrong, all of them at once. The
/// item is still emitted (without the markers), so a mistake in the attribute does not turn into
/// errors about the rest of the code. A unit with errors is not registered.
///
/// # What is registered
///
/// Besides the keys, each unit records its `module_path!()`, file and line (of the attribute),
/// which every error naming the unit shows and which lets a program run a subset of units, and a
/// checksum of its source tokens, stored in the audit.
#[proc_macro_attribute]
pub fn change_unit(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::change_unit(args.into(), item.into()).into()
}

/// Marks the function of a [`#[change_unit]`](macro@change_unit) that applies the change.
///
/// Exactly one per unit. It has meaning only inside a `#[change_unit]` `impl` block or `mod`
/// (which removes it); anywhere else it is a compile error. See
/// [`#[change_unit]`](macro@change_unit) for the signatures it accepts.
///
/// ```
/// use flamingock::prelude::*;
///
/// #[derive(Default)]
/// struct Seed;
///
/// #[change_unit(id = "seed", order = "1", author = "ana", transactional = false)]
/// impl Seed {
///     #[execution]
///     fn execute(&self, ctx: &ChangeContext) -> anyhow::Result<()> {
///         anyhow::ensure!(ctx.attempt < 3, "giving up on {}", ctx.change_id);
///         Ok(())
///     }
/// }
/// # fn main() {}
/// ```
#[proc_macro_attribute]
pub fn execution(_args: TokenStream, item: TokenStream) -> TokenStream {
    expand::marker_outside(attr::Role::Execution, item.into()).into()
}

/// Marks the function of a [`#[change_unit]`](macro@change_unit) that undoes the change.
///
/// At most one per unit. It is called when a non-transactional unit fails (to undo what it did
/// before failing) and by `flamingock undo`; a transactional unit that fails is rolled back by its
/// database instead. Same signatures and injection rules as [`#[execution]`](macro@execution).
/// It has meaning only inside a `#[change_unit]` `impl` block or `mod`.
///
/// ```
/// use flamingock::prelude::*;
///
/// pub struct Cache(pub std::sync::Mutex<Vec<String>>);
///
/// #[change_unit(id = "warm-cache", order = "3", author = "bo", transactional = false)]
/// mod warm_cache {
///     use super::*;
///
///     #[execution]
///     pub fn execute(cache: &Cache) {
///         cache.0.lock().expect("not poisoned").push("clients".to_owned());
///     }
///
///     #[rollback_execution]
///     pub fn rollback(cache: &Cache) {
///         cache.0.lock().expect("not poisoned").clear();
///     }
/// }
/// # fn main() {}
/// ```
#[proc_macro_attribute]
pub fn rollback_execution(_args: TokenStream, item: TokenStream) -> TokenStream {
    expand::marker_outside(attr::Role::Rollback, item.into()).into()
}

/// Registers every SQL migration of a folder as a change unit, embedded at compile time.
///
/// `flamingock::sql_units!("migrations")` reads the folder (relative to the calling crate's
/// `Cargo.toml`) in the layout of sqlx, refinery or diesel (detected, or named with
/// `layout = "..."`), and registers one unit per migration: its id is what that tool calls it,
/// its order its version (so code units and SQL files share one order), its rollback the down
/// file. Options: `target_system`, `stage`, `author` (for files without a `-- author:` line),
/// `layout`. See the facade's `sql_units!` for the whole story.
#[proc_macro]
pub fn sql_units(input: TokenStream) -> TokenStream {
    sql_units::sql_units(input.into()).into()
}
