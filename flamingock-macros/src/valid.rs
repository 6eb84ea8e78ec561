//! Checks a parsed change unit against the rules of `#[change_unit]` and turns its arguments into
//! typed options. Every problem is recorded, each at the token that is wrong, so one build shows
//! them all.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote};
use syn::visit::Visit;
use syn::{FnArg, LitStr, Signature, Type};

use crate::ast::{Form, Method, Unit};
use crate::attr::{self, REQUIRED_KEYS, Role, UnitArgs};
use crate::errors::Errors;
use crate::source_text::render;

/// What happens to a unit whose outcome is in doubt (mirrors the core's `RecoveryStrategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    ManualIntervention,
    AlwaysRetry,
}

/// The arguments of `#[change_unit]`, checked and with their defaults filled in.
#[derive(Debug)]
pub struct Options {
    pub id: String,
    pub order: String,
    pub author: String,
    pub target_system: Option<String>,
    pub transactional: bool,
    pub recovery: Recovery,
    pub run_always: bool,
    pub system_version: Option<String>,
    pub stage: Option<String>,
    pub description: Option<String>,
}

/// A change unit that passed every check: what the expansion needs.
pub struct Checked<'a> {
    pub form: &'a Form,
    pub options: Options,
    pub execution: &'a Method,
    pub rollback: Option<&'a Method>,
}

/// Checks the arguments and, when the item is a unit at all, the item. Returns `Some` only when
/// `errors` is still empty afterwards (problems found while parsing count too).
pub fn check<'a>(args: &UnitArgs, unit: Option<&'a Unit>, errors: &Errors) -> Option<Checked<'a>> {
    let options = check_args(args, errors);
    let unit = unit?;
    let (execution, rollback) = check_unit(unit, errors)?;
    errors.is_empty().then_some(Checked {
        form: &unit.form,
        options,
        execution,
        rollback,
    })
}

fn check_args(args: &UnitArgs, errors: &Errors) -> Options {
    let missing: Vec<_> = REQUIRED_KEYS
        .into_iter()
        .filter(|key| !args.mentions(key))
        .collect();
    if let Some((last, init)) = missing.split_last()
        && args.complete
    {
        let listed = if init.is_empty() {
            format!("key `{last}`")
        } else {
            let init: Vec<_> = init.iter().map(|key| format!("`{key}`")).collect();
            format!("keys {} and `{last}`", init.join(", "))
        };
        errors.push(syn::Error::new(
            Span::call_site(),
            format!(
                "missing {listed}: every change unit needs `id`, `order` and `author`, as in \
                 `#[change_unit(id = \"create-clients\", order = \"0001\", author = \"ana\")]`"
            ),
        ));
    }
    let not_blank = |key: &str| {
        let lit = args.string(key)?;
        let value = lit.value();
        if value.trim().is_empty() {
            errors.error_spanned_by(
                lit,
                format_args!("`{key}` must not be empty: write `{}`", attr::example(key)),
            );
        } else if let Some(problem) = text_problem(key, &value) {
            errors.error_spanned_by(
                lit,
                format_args!(
                    "`{key}` must not {problem}; write it as in `{}`",
                    attr::example(key)
                ),
            );
        }
        Some(value)
    };
    let [id, order, author, target_system, stage] =
        ["id", "order", "author", "target_system", "stage"].map(not_blank);
    Options {
        id: id.unwrap_or_default(),
        order: order.unwrap_or_default(),
        author: author.unwrap_or_default(),
        target_system,
        transactional: args.boolean("transactional").is_none_or(|lit| lit.value),
        recovery: args
            .string("recovery")
            .map_or(Recovery::ManualIntervention, |lit| recovery(lit, errors)),
        run_always: args.boolean("run_always").is_some_and(|lit| lit.value),
        system_version: args
            .string("system_version")
            .map(|lit| system_version(lit, errors)),
        stage,
        description: args.string("description").map(LitStr::value),
    }
}

/// What is wrong with the text of `id` or `author`, if anything (the same rule as the core's
/// validation of units built in code): no whitespace at either end, no control characters, and
/// in an id no whitespace but plain spaces and no invisible or direction-changing characters.
fn text_problem(key: &str, value: &str) -> Option<String> {
    if !matches!(key, "id" | "author") {
        return None;
    }
    if value.starts_with(char::is_whitespace) || value.ends_with(char::is_whitespace) {
        return Some(
            "start or end with whitespace: MariaDB pads trailing spaces, so `\"a \"` and `\"a\"` \
             would be one unit there"
                .to_owned(),
        );
    }
    let bad = value.chars().find(|&c| {
        c.is_control() || (key == "id" && ((c.is_whitespace() && c != ' ') || is_invisible(c)))
    })?;
    Some(format!(
        "hold the invisible or control character U+{:04X}: it shows in a terminal otherwise than \
         it compares in the database",
        u32::from(bad)
    ))
}

/// Format characters that change how text shows without showing themselves: zero-width ones,
/// direction marks, embeddings, overrides and isolates, the byte-order mark.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{FEFF}'
    )
}

fn recovery(lit: &LitStr, errors: &Errors) -> Recovery {
    match lit.value().as_str() {
        "manual_intervention" => Recovery::ManualIntervention,
        "always_retry" => Recovery::AlwaysRetry,
        other => {
            errors.error_spanned_by(
                lit,
                format_args!(
                    "unknown recovery `{other}`: write `recovery = \"manual_intervention\"` \
                     (the default: a failed unit waits for `flamingock fix`) or \
                     `recovery = \"always_retry\"`"
                ),
            );
            Recovery::ManualIntervention
        }
    }
}

fn system_version(lit: &LitStr, errors: &Errors) -> String {
    let value = lit.value();
    if let Err(error) = semver::Version::parse(&value) {
        errors.error_spanned_by(
            lit,
            format_args!(
                "`system_version` must be a semantic version such as \"1.2.0\": \
                 `{value}` is not ({error})"
            ),
        );
    }
    value
}

/// Checks the item; returns its execution and rollback methods when it has exactly one of the
/// former and at most one of the latter.
fn check_unit<'a>(unit: &'a Unit, errors: &Errors) -> Option<(&'a Method, Option<&'a Method>)> {
    let in_impl = matches!(unit.form, Form::Impl { .. });
    let anchor: TokenStream = match &unit.form {
        Form::Impl {
            self_ty,
            generics,
            trait_path,
        } => {
            if !generics.params.is_empty() || generics.where_clause.is_some() {
                let where_clause = &generics.where_clause;
                errors.error_spanned_by(
                    quote!(#generics #where_clause),
                    "a change unit cannot be generic: `#[change_unit]` builds one value of a \
                     concrete type; remove the generic parameters",
                );
            }
            if let Some(path) = trait_path {
                errors.error_spanned_by(
                    path,
                    "`#[change_unit]` goes on an inherent `impl` block (`impl Type { ... }`), \
                     not on a trait implementation",
                );
            }
            self_ty.to_token_stream()
        }
        Form::Mod {
            ident,
            inline,
            head,
        } => {
            if !inline {
                errors.error_spanned_by(
                    head,
                    format_args!(
                        "`#[change_unit]` needs the module's items inline: write \
                         `mod {ident} {{ ... }}` here, not in another file"
                    ),
                );
                return None;
            }
            head.clone()
        }
    };
    for marker in &unit.misplaced {
        errors.error_spanned_by(
            &marker.attr,
            format_args!(
                "`{}` goes on a function: the one that {}",
                marker.role.attribute(),
                what_it_does(marker.role)
            ),
        );
    }
    let mut execution: Option<&Method> = None;
    let mut rollback: Option<&Method> = None;
    for method in &unit.methods {
        let role = check_markers(method, errors);
        check_signature(&method.sig, in_impl, errors);
        let slot = match role {
            Role::Execution => &mut execution,
            Role::Rollback => &mut rollback,
        };
        match slot {
            None => *slot = Some(method),
            Some(first) => errors.error_spanned_by(
                &method.markers[0].attr,
                format_args!(
                    "a change unit has {} `{}` method, and `{first}` already is one: remove \
                     this attribute, and call `{this}` from `{first}` or move it to a change \
                     unit of its own",
                    if role == Role::Execution {
                        "exactly one"
                    } else {
                        "at most one"
                    },
                    role.attribute(),
                    first = first.sig.ident,
                    this = method.sig.ident,
                ),
            ),
        }
    }
    if execution.is_none() {
        errors.error_spanned_by(
            anchor,
            "this change unit has no `#[execution]` method: mark the function that applies the \
             change with `#[execution]`",
        );
    }
    Some((execution?, rollback))
}

fn what_it_does(role: Role) -> &'static str {
    match role {
        Role::Execution => "applies the change",
        Role::Rollback => "undoes it",
    }
}

/// Reports repeated, conflicting or parameterised markers; returns the role of the first.
fn check_markers(method: &Method, errors: &Errors) -> Role {
    let role = method.markers[0].role;
    for (index, marker) in method.markers.iter().enumerate() {
        if let syn::Meta::List(_) | syn::Meta::NameValue(_) = marker.attr.meta {
            errors.error_spanned_by(
                &marker.attr,
                format_args!(
                    "`{0}` takes no arguments: write `{0}`; the unit's keys go in \
                     `#[change_unit(...)]`",
                    marker.role.attribute()
                ),
            );
        }
        if index == 0 {
            continue;
        }
        let message = if marker.role == role {
            format!(
                "`{}` is written twice on `{}`: remove this one",
                role.attribute(),
                method.sig.ident
            )
        } else {
            format!(
                "`{}` cannot be both the `#[execution]` and the `#[rollback_execution]` method: \
                 put `#[rollback_execution]` on a separate function that undoes the change",
                method.sig.ident
            )
        };
        errors.error_spanned_by(&marker.attr, message);
    }
    role
}

/// Reports what no generated call could handle: generics, `unsafe`, `extern`, odd receivers and
/// parameters that are not references.
fn check_signature(sig: &Signature, in_impl: bool, errors: &Errors) {
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        let (generics, where_clause) = (&sig.generics, &sig.generics.where_clause);
        errors.error_spanned_by(
            quote!(#generics #where_clause),
            "a change-unit method cannot be generic: its parameters are injected by their \
             concrete types; remove the generic parameters",
        );
    }
    if let Some(unsafety) = &sig.unsafety {
        errors.error_spanned_by(
            unsafety,
            "a change-unit method cannot be `unsafe`: remove `unsafe` here and use an \
             `unsafe { ... }` block in its body",
        );
    }
    if let Some(abi) = &sig.abi {
        errors.error_spanned_by(
            abi,
            "a change-unit method cannot be `extern`: remove the ABI",
        );
    }
    if let Some(variadic) = &sig.variadic {
        errors.error_spanned_by(
            variadic,
            "a change-unit method cannot be variadic: remove `...`",
        );
    }
    for input in &sig.inputs {
        match input {
            FnArg::Receiver(receiver) if !in_impl => errors.error_spanned_by(
                receiver,
                "a function of a `#[change_unit]` module takes no `self`: remove it, or put the \
                 function in an `impl` block of a `Default` type",
            ),
            FnArg::Receiver(receiver) => {
                if receiver.colon_token.is_some() {
                    errors.error_spanned_by(
                        receiver,
                        "write the receiver as `&self`, `&mut self` or `self`",
                    );
                }
            }
            FnArg::Typed(typed) => check_param_type(&typed.ty, errors),
        }
    }
    if let syn::ReturnType::Type(_, ty) = &sig.output {
        check_return_type(ty, errors);
    }
}

/// Reports `Result<(), Box<dyn Error>>`, the one return type users commonly reach for that
/// cannot work: a unit's error crosses threads, so it must be `Send + Sync`. Without this, the
/// trait check behind the generated call reports three errors about `Unique`, `Sized` and `From`.
/// A type alias hides the box from the macro; the trait check still rejects it then.
fn check_return_type(ty: &Type, errors: &Errors) {
    let Some(error_type) = result_error_type(ty) else {
        return;
    };
    let Some(object) = boxed_trait_object(error_type) else {
        return;
    };
    let has = |name: &str| {
        object.bounds.iter().any(|bound| {
            matches!(bound, syn::TypeParamBound::Trait(t)
                if t.path.segments.last().is_some_and(|s| s.ident == name))
        })
    };
    if !has("Error") {
        return;
    }
    if has("Send") && has("Sync") {
        return;
    }
    errors.error_spanned_by(
        error_type,
        format_args!(
            "`{}` cannot be the error of a change unit: the error is sent across threads, so it \
             must be `Send + Sync`; return `Result<(), Box<dyn std::error::Error + Send + Sync>>`, \
             or `anyhow::Result<()>`",
            render(error_type),
        ),
    );
}

/// `E` of a return type written `Result<T, E>` (any path ending in `Result`, two arguments).
fn result_error_type(ty: &Type) -> Option<&Type> {
    let Type::Path(path) = ty else {
        return None;
    };
    let last = path.path.segments.last()?;
    if last.ident != "Result" {
        return None;
    }
    let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    let mut types = args.args.iter().filter_map(|arg| match arg {
        syn::GenericArgument::Type(ty) => Some(ty),
        _ => None,
    });
    match (types.next(), types.next(), types.next()) {
        (Some(_), Some(error), None) => Some(error),
        _ => None,
    }
}

/// `dyn ...` of a type written `Box<dyn ...>`.
fn boxed_trait_object(ty: &Type) -> Option<&syn::TypeTraitObject> {
    let Type::Path(path) = ty else {
        return None;
    };
    let last = path.path.segments.last()?;
    if last.ident != "Box" {
        return None;
    }
    let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    match args.args.first()? {
        syn::GenericArgument::Type(Type::TraitObject(object)) => Some(object),
        syn::GenericArgument::Type(Type::Paren(paren)) => match &*paren.elem {
            Type::TraitObject(object) => Some(object),
            _ => None,
        },
        _ => None,
    }
}

fn check_param_type(ty: &Type, errors: &Errors) {
    match ty {
        Type::Group(group) => check_param_type(&group.elem, errors),
        Type::Paren(paren) => check_param_type(&paren.elem, errors),
        Type::Reference(reference) => {
            if let Some(lifetime) = &reference.lifetime
                && lifetime.ident != "_"
            {
                errors.error_spanned_by(
                    lifetime,
                    format_args!(
                        "leave this lifetime out (write `{}`): an injected reference lives as \
                         long as the call",
                        render(&Type::Reference(syn::TypeReference {
                            lifetime: None,
                            ..reference.clone()
                        }))
                    ),
                );
            }
            if let Some(found) = impl_trait_in(&reference.elem) {
                errors.error_spanned_by(
                    found,
                    "a change-unit method cannot be generic: name the concrete type to inject",
                );
            }
        }
        Type::ImplTrait(_) => errors.error_spanned_by(
            ty,
            "a change-unit method cannot be generic: name the concrete type to inject, by \
             reference",
        ),
        _ => {
            let written = render(ty);
            errors.error_spanned_by(
                ty,
                format_args!(
                    "`{written}` cannot be injected by value: take `&{written}` for a dependency \
                     registered on the builder or the target system, `&ChangeContext` for the \
                     unit's context, or `&mut T` for the target system's transaction"
                ),
            );
        }
    }
}

/// The first `impl Trait` inside `ty`, if any: a generic in disguise, which no generated code can
/// name.
pub fn impl_trait_in(ty: &Type) -> Option<&syn::TypeImplTrait> {
    struct Find<'ast>(Option<&'ast syn::TypeImplTrait>);
    impl<'ast> Visit<'ast> for Find<'ast> {
        fn visit_type_impl_trait(&mut self, node: &'ast syn::TypeImplTrait) {
            self.0.get_or_insert(node);
        }
    }
    let mut find = Find(None);
    find.visit_type(ty);
    find.0
}
