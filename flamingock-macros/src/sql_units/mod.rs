//! `sql_units!("folder", ..)`: one change unit per SQL migration file, embedded at compile time.
//! `args` parses the macro's arguments, `folder` reads the folder in its layout, and this module
//! generates, per migration, its `SqlMigration`, the two functions that run its files, and the
//! `ChangeUnit` registration beside it. The files are embedded with `include_str!`, so that
//! editing one rebuilds the crate (a new file needs a build script, as with `sqlx::migrate!`).

mod args;
mod folder;

use std::path::PathBuf;

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use args::{Args, Layout};
use folder::{File, Migration};

/// `sql_units!(input)`.
pub fn sql_units(input: TokenStream) -> TokenStream {
    let args: Args = match syn::parse2(input) {
        Ok(args) => args,
        Err(error) => return error.to_compile_error(),
    };
    let span = args.folder.span();
    let error = |message: String| syn::Error::new(span, message).to_compile_error();
    let Some(manifest_dir) = std::env::var_os("CARGO_MANIFEST_DIR") else {
        return error(
            "CARGO_MANIFEST_DIR is not set: `sql_units!` must be expanded by cargo".into(),
        );
    };
    let shown = args.folder.value();
    let path = PathBuf::from(manifest_dir).join(&shown);
    let folder = match folder::read(&path, &shown, args.layout) {
        Ok(folder) => folder,
        Err(problems) => return problems.into_iter().map(error).collect(),
    };
    let mut output = TokenStream::new();
    for migration in &folder.migrations {
        let author = match migration.author.as_deref().or(args.author.as_deref()) {
            Some(author) => author,
            None => {
                output.extend(error(format!(
                    "`{}` names no author: add a `-- author: name` line at its top, or `author = \"...\"` to `sql_units!`",
                    migration.up.shown
                )));
                continue;
            }
        };
        output.extend(unit(&args, folder.layout, migration, author));
    }
    if folder.migrations.is_empty() {
        output.extend(error(format!(
            "the migrations folder `{shown}` holds no {} migrations",
            folder.layout.name()
        )));
    }
    output
}

/// The registration of one migration, in an anonymous `const` of its own.
fn unit(args: &Args, layout: Layout, migration: &Migration, author: &str) -> TokenStream {
    let Migration {
        id,
        version,
        description,
        up,
        down,
        transactional,
        checksum,
        source_checksum,
        ..
    } = migration;
    let layout = format_ident!(
        "{}",
        match layout {
            Layout::Sqlx => "Sqlx",
            Layout::Refinery => "Refinery",
            Layout::Diesel => "Diesel",
        }
    );
    let up_file = file(up);
    let down_file = match down {
        Some(down) => {
            let down = file(down);
            quote!(::core::option::Option::Some(#down))
        }
        None => quote!(::core::option::Option::None),
    };
    let source_checksum = optional(source_checksum.as_deref());
    let target_system = optional(args.target_system.as_deref());
    let stage = optional(args.stage.as_deref());
    let up_path = &up.shown;
    let execution_fns = direction_fns("execution", "Up");
    let rollback_fns = down.as_ref().map(|_| direction_fns("rollback", "Down"));
    let rollback = match down {
        Some(down) => {
            let path = &down.shown;
            quote! {
                ::core::option::Option::Some(::flamingock::__private::UnitMethod {
                    name: #path,
                    params: &__flamingock_rollback_params,
                    call: &__flamingock_rollback,
                })
            }
        }
        None => quote!(::core::option::Option::None),
    };
    quote! {
        const _: () = {
            const __FLAMINGOCK_MIGRATION: ::flamingock::__private::sql::SqlMigration =
                ::flamingock::__private::sql::SqlMigration {
                    id: #id,
                    version: #version,
                    description: #description,
                    layout: ::flamingock::__private::sql::SqlLayout::#layout,
                    up: #up_file,
                    down: #down_file,
                    transactional: #transactional,
                    source_checksum: #source_checksum,
                };
            #execution_fns
            #rollback_fns
            ::flamingock::__private::inventory::submit! { __FLAMINGOCK_MIGRATION }
            ::flamingock::__private::inventory::submit! {
                ::flamingock::__private::ChangeUnit {
                    id: #id,
                    order: #version,
                    author: #author,
                    target_system: #target_system,
                    transactional: #transactional,
                    recovery: ::flamingock::__private::RecoveryStrategy::ManualIntervention,
                    run_always: false,
                    system_version: ::core::option::Option::None,
                    stage: #stage,
                    description: ::core::option::Option::Some(#description),
                    source: ::flamingock::__private::SourceLocation {
                        module_path: ::core::module_path!(),
                        file: #up_path,
                        line: 1,
                    },
                    checksum: #checksum,
                    execution: ::flamingock::__private::UnitMethod {
                        name: #up_path,
                        params: &__flamingock_execution_params,
                        call: &__flamingock_execution,
                    },
                    rollback: #rollback,
                }
            }
        };
    }
}

/// An `SqlFile` whose text is `include_str!` of the file, so that cargo rebuilds on an edit.
fn file(file: &File) -> TokenStream {
    let shown = &file.shown;
    let absolute = file.absolute.to_string_lossy().into_owned();
    quote! {
        ::flamingock::__private::sql::SqlFile {
            path: #shown,
            text: ::core::include_str!(#absolute),
        }
    }
}

fn optional(value: Option<&str>) -> TokenStream {
    match value {
        Some(value) => quote!(::core::option::Option::Some(#value)),
        None => quote!(::core::option::Option::None),
    }
}

/// The three functions a unit method of an SQL migration needs, named `__flamingock_<name>`,
/// `..._check` and `..._params`: the call that runs the file of `direction` (`Up` or `Down`), the
/// check of its dependencies (the pool it runs on, its placeholders) and their description.
fn direction_fns(name: &str, direction: &str) -> TokenStream {
    let call = format_ident!("__flamingock_{name}");
    let check = format_ident!("__flamingock_{name}_check");
    let params = format_ident!("__flamingock_{name}_params");
    let direction = format_ident!("{direction}");
    quote! {
        fn #call<'s>(
            scope: ::flamingock::__private::Scope<'s>,
        ) -> ::flamingock::__private::UnitFuture<'s> {
            ::flamingock::__private::sql::run(
                scope,
                &__FLAMINGOCK_MIGRATION,
                ::flamingock::__private::sql::Direction::#direction,
            )
        }
        fn #check(
            target: &::flamingock::__private::sql::Dependencies,
            builder: &::flamingock::__private::sql::Dependencies,
        ) -> ::core::result::Result<(), ::std::string::String> {
            ::flamingock::__private::sql::check(
                &__FLAMINGOCK_MIGRATION,
                ::flamingock::__private::sql::Direction::#direction,
                target,
                builder,
            )
        }
        fn #params() -> ::std::vec::Vec<::flamingock::__private::ParamSpec> {
            ::flamingock::__private::sql::params(#check)
        }
    }
}
