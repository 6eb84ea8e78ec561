//! Generates the code of a change unit: the user's item with its markers stripped, a wrapper per
//! marked method that resolves its parameters and calls it, and the `inventory` registration.
//! When anything is wrong, the item is emitted next to the errors and nothing is registered.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::visit_mut::VisitMut;
use syn::{FnArg, Item, ReturnType, Type};

use crate::ast::{self, Form, Method};
use crate::attr::{self, Role};
use crate::errors::Errors;
use crate::source_text::render;
use crate::valid::{self, Checked, Options, Recovery};

/// `#[change_unit(args)] input`.
pub fn change_unit(args: TokenStream, input: TokenStream) -> TokenStream {
    let mut source = String::new();
    token_text(input.clone(), &mut source);
    let checksum = checksum(&source);
    let mut item: Item = match syn::parse2(input.clone()) {
        Ok(item) => item,
        Err(error) => {
            let error = error.to_compile_error();
            return quote!(#error #input);
        }
    };
    let errors = Errors::new();
    let args = attr::parse_args(args, &errors);
    let unit = ast::parse_item(&mut item, &errors);
    let Some(checked) = valid::check(&args, unit.as_ref(), &errors) else {
        let errors = errors.into_compile_errors();
        return quote!(#item #errors);
    };
    let registration = registration(&checked, &checksum);
    match &mut item {
        Item::Mod(module) => {
            if let Some((_, items)) = &mut module.content {
                items.push(Item::Verbatim(registration));
            }
            item.into_token_stream()
        }
        _ => quote!(#item #registration),
    }
}

/// `#[execution]` or `#[rollback_execution]` expanded on its own: outside a change unit.
pub fn marker_outside(role: Role, item: TokenStream) -> TokenStream {
    let message = format!(
        "`{}` only has meaning on a method of a `#[change_unit]` impl block or module: put \
         `#[change_unit(id = \"...\", order = \"...\", author = \"...\")]` on the enclosing `impl` \
         block or `mod`",
        role.attribute()
    );
    let error = syn::Error::new(Span::call_site(), message).to_compile_error();
    quote!(#error #item)
}

/// The wrappers and the `inventory::submit!` of a checked unit, in an anonymous `const` so that
/// none of the helper names leak into the user's namespace.
fn registration(checked: &Checked<'_>, checksum: &str) -> TokenStream {
    let form = checked.form;
    let (execution_fns, execution) = method(form, checked.execution, Role::Execution);
    let (rollback_fns, rollback) = match checked.rollback {
        Some(method_) => {
            let (fns, unit_method) = method(form, method_, Role::Rollback);
            (fns, quote!(::core::option::Option::Some(#unit_method)))
        }
        None => (TokenStream::new(), quote!(::core::option::Option::None)),
    };
    let Options {
        id,
        order,
        author,
        target_system,
        transactional,
        recovery,
        run_always,
        system_version,
        stage,
        description,
    } = &checked.options;
    let [target_system, system_version, stage, description] =
        [target_system, system_version, stage, description]
            .map(|value| optional_str(value.as_deref()));
    let recovery = match recovery {
        Recovery::ManualIntervention => quote!(ManualIntervention),
        Recovery::AlwaysRetry => quote!(AlwaysRetry),
    };
    quote! {
        const _: () = {
            #execution_fns
            #rollback_fns
            ::flamingock::__private::inventory::submit! {
                ::flamingock::__private::ChangeUnit {
                    id: #id,
                    order: #order,
                    author: #author,
                    target_system: #target_system,
                    transactional: #transactional,
                    recovery: ::flamingock::__private::RecoveryStrategy::#recovery,
                    run_always: #run_always,
                    system_version: #system_version,
                    stage: #stage,
                    description: #description,
                    source: ::flamingock::__private::SourceLocation {
                        module_path: ::core::module_path!(),
                        file: ::core::file!(),
                        line: ::core::line!(),
                    },
                    checksum: #checksum,
                    execution: #execution,
                    rollback: #rollback,
                }
            }
        };
    }
}

fn optional_str(value: Option<&str>) -> TokenStream {
    match value {
        Some(value) => quote!(::core::option::Option::Some(#value)),
        None => quote!(::core::option::Option::None),
    }
}

/// The two functions that stand for one marked method (one calls it, one describes its
/// parameters) and the `UnitMethod` naming them.
fn method(form: &Form, method: &Method, role: Role) -> (TokenStream, TokenStream) {
    let prefix = match role {
        Role::Execution => "execution",
        Role::Rollback => "rollback",
    };
    let call_fn = format_ident!("__flamingock_{prefix}");
    let params_fn = format_ident!("__flamingock_{prefix}_params");
    let sig = &method.sig;
    let self_ty = match form {
        Form::Impl { self_ty, .. } => Some(&**self_ty),
        Form::Mod { .. } => None,
    };

    let mut takes = Vec::new();
    let mut args = Vec::new();
    let mut specs = Vec::new();
    let mut receiver = None;
    for input in &sig.inputs {
        let typed = match input {
            FnArg::Receiver(r) => {
                receiver = Some(r);
                continue;
            }
            FnArg::Typed(typed) => typed,
        };
        let arg = format_ident!("__flamingock_arg{}", args.len());
        let ty = with_self_replaced(&typed.ty, self_ty);
        let (name, written_type) = (render(&typed.pat), render(&typed.ty));
        // Spanned at the type, so that a type that cannot be injected is underlined in the
        // user's signature rather than at the attribute.
        let span = typed.ty.span();
        if let Some(transaction) = sqlx_transaction_in(&ty) {
            // A transaction of another sqlx version (the application's own, beside flamingock's)
            // is a compile error here rather than a refusal at run time.
            takes.push(quote_spanned! {span=>
                ::flamingock::__private::assert_sqlx_transaction::<#transaction>();
            });
        }
        takes.push(quote_spanned! {span=>
            let #arg = <#ty as ::flamingock::__private::Param<'_>>::take(&mut __flamingock_scope)?;
        });
        specs.push(quote_spanned! {span=>
            ::flamingock::__private::ParamSpec {
                name: #name,
                written_type: #written_type,
                requirement: <#ty as ::flamingock::__private::Param<'_>>::requirement(),
            }
        });
        args.push(arg);
    }

    let ident = &sig.ident;
    let construct = receiver.map(|receiver| {
        let self_ty = self_ty.expect("valid rejects `self` in a module's functions");
        let mutability =
            (receiver.reference.is_some() && receiver.mutability.is_some()).then(|| quote!(mut));
        quote! {
            let #mutability __flamingock_this =
                <#self_ty as ::flamingock::__private::ChangeUnitType>::construct();
        }
    });
    let mut call = match (receiver, self_ty) {
        (Some(_), _) => quote!(__flamingock_this.#ident(#(#args),*)),
        (None, Some(self_ty)) => quote!(<#self_ty>::#ident(#(#args),*)),
        (None, None) => quote!(#ident(#(#args),*)),
    };
    if sig.asyncness.is_some() {
        call = quote!(#call.await);
    } else {
        // A blocking method must not hold up the runtime's worker thread.
        call = quote!(::flamingock::__private::run_sync(|| #call));
    }
    let into_result = into_unit_result(&sig.output, self_ty);
    let scope_pattern = if args.is_empty() {
        quote!(_)
    } else {
        quote!(mut __flamingock_scope)
    };
    // Spanned at the method's name: a future that is not `Send` (a `&self` of a type that is not
    // `Sync`, held across an `.await`) is reported there rather than at the attribute.
    let future = quote_spanned! {ident.span()=>
        ::std::boxed::Box::pin(async move {
            #construct
            #(#takes)*
            // The output may be `()`; binding it keeps the conversion's span on the return type.
            #[allow(clippy::let_unit_value)]
            let __flamingock_output = #call;
            #into_result
        })
    };
    let fns = quote! {
        fn #call_fn<'s>(
            #scope_pattern: ::flamingock::__private::Scope<'s>,
        ) -> ::flamingock::__private::UnitFuture<'s> {
            #future
        }
        fn #params_fn() -> ::std::vec::Vec<::flamingock::__private::ParamSpec> {
            ::std::vec![#(#specs),*]
        }
    };
    let name = ident.to_string();
    let unit_method = quote! {
        ::flamingock::__private::UnitMethod { name: #name, params: &#params_fn, call: &#call_fn }
    };
    (fns, unit_method)
}

/// Converts the method's output, naming its return type where it can so that a type that is
/// neither `()` nor `Result<(), E>` is underlined in the signature.
fn into_unit_result(output: &ReturnType, self_ty: Option<&Type>) -> TokenStream {
    match output {
        ReturnType::Default => {
            quote!(::flamingock::__private::IntoUnitResult::into_unit_result(
                __flamingock_output
            ))
        }
        ReturnType::Type(_, ty) if valid::impl_trait_in(ty).is_some() => {
            let span = ty.span();
            quote_spanned! {span=>
                ::flamingock::__private::IntoUnitResult::into_unit_result(__flamingock_output)
            }
        }
        ReturnType::Type(_, ty) => {
            let ty = with_self_replaced(ty, self_ty);
            quote! {
                <#ty as ::flamingock::__private::IntoUnitResult>::into_unit_result(__flamingock_output)
            }
        }
    }
}

/// The `T` of a `&mut T` parameter that reads as a sqlx transaction: a path ending in
/// `Transaction` that goes through `sqlx` (`sqlx::Transaction<'_, sqlx::Postgres>`,
/// `flamingock::sqlx::Transaction<..>`) or names one of sqlx's databases
/// (`Transaction<'_, Postgres>`). An alias (`Tx<'_>`) is not seen; the check before the run
/// names two sqlx versions for those.
fn sqlx_transaction_in(ty: &Type) -> Option<&Type> {
    const DATABASES: [&str; 4] = ["Sqlite", "Postgres", "MySql", "Any"];
    let Type::Reference(reference) = ty else {
        return None;
    };
    reference.mutability?;
    let Type::Path(path) = &*reference.elem else {
        return None;
    };
    let last = path.path.segments.last()?;
    if last.ident != "Transaction" {
        return None;
    }
    let through_sqlx = path
        .path
        .segments
        .iter()
        .any(|segment| segment.ident == "sqlx");
    let names_database = match &last.arguments {
        syn::PathArguments::AngleBracketed(arguments) => arguments.args.iter().any(|argument| {
            matches!(argument, syn::GenericArgument::Type(Type::Path(db))
                if db.path.segments.last().is_some_and(|s| DATABASES.iter().any(|name| s.ident == name)))
        }),
        _ => false,
    };
    (through_sqlx || names_database).then_some(&*reference.elem)
}

/// `ty` with every `Self` replaced by the impl's type: the wrappers live outside the impl block.
fn with_self_replaced(ty: &Type, self_ty: Option<&Type>) -> Type {
    let mut ty = ty.clone();
    if let Some(self_ty) = self_ty {
        ReplaceSelf(self_ty).visit_type_mut(&mut ty);
    }
    ty
}

struct ReplaceSelf<'a>(&'a Type);

impl VisitMut for ReplaceSelf<'_> {
    fn visit_type_mut(&mut self, ty: &mut Type) {
        if let Type::Path(path) = ty
            && path.qself.is_none()
            && path.path.leading_colon.is_none()
            && path
                .path
                .segments
                .first()
                .is_some_and(|first| first.ident == "Self")
        {
            let self_token = path.path.segments[0].ident.span();
            let self_ty = respan(self.0.to_token_stream(), self_token);
            let rest: Vec<_> = path.path.segments.iter().skip(1).collect();
            *ty = if rest.is_empty() {
                syn::parse_quote!(#self_ty)
            } else {
                syn::parse_quote!(<#self_ty>::#(#rest)::*)
            };
            return;
        }
        syn::visit_mut::visit_type_mut(self, ty);
    }
}

/// `tokens` with every span set to `span`, so that errors about them point where `Self` was.
fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut token| {
            if let TokenTree::Group(group) = &token {
                let mut inner =
                    proc_macro2::Group::new(group.delimiter(), respan(group.stream(), span));
                inner.set_span(span);
                token = TokenTree::Group(inner);
            } else {
                token.set_span(span);
            }
            token
        })
        .collect()
}

/// The tokens as text, each followed by one space: unlike `TokenStream::to_string`, whose spacing
/// is the compiler's to choose, this stays the same across toolchains, so a unit's checksum changes
/// when its code does and only then (layout and comments are not tokens).
fn token_text(tokens: TokenStream, text: &mut String) {
    for token in tokens {
        match token {
            TokenTree::Group(group) => {
                let (open, close) = match group.delimiter() {
                    proc_macro2::Delimiter::Parenthesis => ("( ", ") "),
                    proc_macro2::Delimiter::Brace => ("{ ", "} "),
                    proc_macro2::Delimiter::Bracket => ("[ ", "] "),
                    proc_macro2::Delimiter::None => ("", ""),
                };
                text.push_str(open);
                token_text(group.stream(), text);
                text.push_str(close);
            }
            TokenTree::Punct(punct) => {
                text.push(punct.as_char());
                text.push(' ');
            }
            other => {
                text.push_str(&other.to_string());
                text.push(' ');
            }
        }
    }
}

/// FNV-1a (64 bits) of the unit's source text, as 16 hex digits.
fn checksum(text: &str) -> String {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0100_0000_01b3;
    let hash = text.bytes().fold(OFFSET, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(PRIME)
    });
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_is_fnv1a_64() {
        assert_eq!(checksum(""), "cbf29ce484222325");
        assert_eq!(checksum("a"), "af63dc4c8601ec8c");
        assert_eq!(checksum("foobar"), "85944171f73967e8");
    }

    #[test]
    fn checksum_text_does_not_depend_on_layout() {
        let text = |tokens: TokenStream| {
            let mut text = String::new();
            token_text(tokens, &mut text);
            text
        };
        let compact: TokenStream = "impl A{fn f(&self)->u8{1}}".parse().expect("tokens");
        let spaced: TokenStream = "impl A {\n    fn f( & self ) -> u8 {\n        1\n    }\n}"
            .parse()
            .expect("tokens");
        assert_eq!(text(compact.clone()), text(spaced));
        assert_eq!(text(compact), "impl A { fn f ( & self ) - > u8 { 1 } } ");
    }

    #[test]
    fn self_is_replaced_by_the_impl_type() {
        let self_ty: Type = syn::parse_quote!(Unit);
        let ty: Type = syn::parse_quote!(&Vec<Self>);
        let replaced = with_self_replaced(&ty, Some(&self_ty));
        assert_eq!(render(&replaced), "&Vec<Unit>");
        let ty: Type = syn::parse_quote!(&Self::Config);
        assert_eq!(
            render(&with_self_replaced(&ty, Some(&self_ty))),
            "&<Unit>::Config"
        );
    }

    #[test]
    fn a_valid_unit_registers_itself() {
        let output = change_unit(
            quote!(id = "a", order = "1", author = "ana"),
            quote!(impl Unit {
                #[execution]
                async fn execute(&self, tx: &mut Tx<'_>) -> Result<(), E> { Ok(()) }
            }),
        )
        .to_string();
        assert!(output.contains("inventory :: submit !"), "{output}");
        assert!(output.contains("\"&mut Tx<'_>\""), "{output}");
        assert!(!output.contains("compile_error"), "{output}");
        assert!(!output.contains("# [execution]"), "{output}");
    }

    #[test]
    fn sqlx_transactions_are_recognised_by_their_path() {
        let found = |ty: Type| sqlx_transaction_in(&ty).map(render);
        assert_eq!(
            found(syn::parse_quote!(&mut sqlx::Transaction<'_, sqlx::Sqlite>)).as_deref(),
            Some("sqlx::Transaction<'_, sqlx::Sqlite>")
        );
        assert!(found(syn::parse_quote!(&mut Transaction<'_, Postgres>)).is_some());
        assert!(
            found(syn::parse_quote!(
                &mut flamingock::sqlx::Transaction<'_, Db>
            ))
            .is_some()
        );
        assert!(found(syn::parse_quote!(&mut Transaction<'_, MyDb>)).is_none());
        assert!(found(syn::parse_quote!(&mut Tx<'_>)).is_none());
        assert!(found(syn::parse_quote!(&sqlx::Transaction<'_, sqlx::Sqlite>)).is_none());
        assert!(found(syn::parse_quote!(&mut flamingock::SqlTx)).is_none());
    }

    #[test]
    fn an_invalid_unit_keeps_the_item_and_registers_nothing() {
        let output = change_unit(
            quote!(id = "a", order = 1),
            quote!(impl Unit {
                #[execution]
                fn execute(&self, name: String) {}
            }),
        )
        .to_string();
        assert_eq!(output.matches("compile_error").count(), 3, "{output}");
        assert!(output.contains("fn execute"), "{output}");
        assert!(!output.contains("submit"), "{output}");
    }
}
