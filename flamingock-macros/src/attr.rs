//! Parses the arguments of `#[change_unit(...)]` into plain values, and recognises the
//! `#[execution]` and `#[rollback_execution]` markers on the items inside.
//!
//! Only the shape of each argument is checked here (a known key, written once, with a literal of
//! the right kind); what the values mean is `valid`'s job.

use proc_macro2::TokenStream;
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::{Attribute, Expr, Lit, LitBool, LitStr, Meta, Token};

use crate::errors::Errors;

/// The kind of literal a key takes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Str,
    Bool,
}

/// One key `#[change_unit]` accepts.
struct Key {
    name: &'static str,
    kind: Kind,
    /// How it is written, for error messages.
    example: &'static str,
}

const KEYS: &[Key] = &[
    key("id", Kind::Str, r#"id = "create-clients""#),
    key("order", Kind::Str, r#"order = "0001""#),
    key("author", Kind::Str, r#"author = "ana""#),
    key(
        "target_system",
        Kind::Str,
        r#"target_system = "billing-db""#,
    ),
    key("transactional", Kind::Bool, "transactional = false"),
    key("recovery", Kind::Str, r#"recovery = "always_retry""#),
    key("run_always", Kind::Bool, "run_always = true"),
    key("system_version", Kind::Str, r#"system_version = "1.2.0""#),
    key("stage", Kind::Str, r#"stage = "seed""#),
    key(
        "description",
        Kind::Str,
        r#"description = "creates the clients table""#,
    ),
];

const fn key(name: &'static str, kind: Kind, example: &'static str) -> Key {
    Key {
        name,
        kind,
        example,
    }
}

/// The keys every change unit must set.
pub const REQUIRED_KEYS: [&str; 3] = ["id", "order", "author"];

/// The arguments of one `#[change_unit(...)]`, each as the literal the user wrote.
pub struct UnitArgs {
    /// `false` when the arguments are not even a list of `key = value` pairs; then no key is
    /// reported missing, since the syntax error already says what is wrong.
    pub complete: bool,
    values: Vec<(&'static str, Lit)>,
    /// Keys written, even with a wrong value, and the keys misspelt ones were taken for: none of
    /// them is reported missing on top of the error already given.
    mentioned: Vec<&'static str>,
}

impl UnitArgs {
    /// The string literal given for `key`, if any.
    pub fn string(&self, key: &str) -> Option<&LitStr> {
        self.values.iter().find_map(|(name, lit)| match lit {
            Lit::Str(lit) if *name == key => Some(lit),
            _ => None,
        })
    }

    /// The boolean literal given for `key`, if any.
    pub fn boolean(&self, key: &str) -> Option<&LitBool> {
        self.values.iter().find_map(|(name, lit)| match lit {
            Lit::Bool(lit) if *name == key => Some(lit),
            _ => None,
        })
    }

    /// Whether `key` was written at all, rightly or not (or a misspelling of it).
    pub fn mentions(&self, key: &str) -> bool {
        self.mentioned.contains(&key)
    }
}

/// Parses `key = literal, ...`, recording every unknown, repeated or mistyped key in `errors`.
pub fn parse_args(tokens: TokenStream, errors: &Errors) -> UnitArgs {
    let mut args = UnitArgs {
        complete: true,
        values: Vec::new(),
        mentioned: Vec::new(),
    };
    let metas = match Punctuated::<Meta, Token![,]>::parse_terminated.parse2(tokens) {
        Ok(metas) => metas,
        Err(error) => {
            errors.push(syn::Error::new(
                error.span(),
                format!(
                    "{error}: write the arguments as `key = value` pairs separated by commas, as \
                     in `#[change_unit(id = \"create-clients\", order = \"0001\", author = \"ana\")]`"
                ),
            ));
            args.complete = false;
            return args;
        }
    };
    let mut seen: Vec<&'static str> = Vec::new();
    for meta in metas {
        let Some(key) = meta
            .path()
            .get_ident()
            .and_then(|ident| known_key(&ident.to_string()))
        else {
            let written = written_path(meta.path());
            let suggestion = did_you_mean(&written);
            args.mentioned.extend(suggestion);
            errors.error_spanned_by(meta.path(), unknown_key_message(&written, suggestion));
            continue;
        };
        if seen.contains(&key.name) {
            errors.error_spanned_by(
                meta.path(),
                format_args!(
                    "duplicate key `{}`: each key is set once; remove this one",
                    key.name
                ),
            );
            continue;
        }
        seen.push(key.name);
        args.mentioned.push(key.name);
        let value = match &meta {
            Meta::NameValue(pair) => &pair.value,
            Meta::Path(path) => {
                errors.error_spanned_by(
                    path,
                    format_args!("`{}` needs a value: write `{}`", key.name, key.example),
                );
                continue;
            }
            Meta::List(list) => {
                errors.error_spanned_by(
                    list,
                    format_args!("write `{}`, with `=` and a literal", key.example),
                );
                continue;
            }
        };
        match (key.kind, literal(value)) {
            (Kind::Str, Some(lit @ Lit::Str(_))) | (Kind::Bool, Some(lit @ Lit::Bool(_))) => {
                args.values.push((key.name, lit.clone()));
            }
            (Kind::Str, _) => errors.error_spanned_by(
                value,
                format_args!("`{}` takes a string literal: `{}`", key.name, key.example),
            ),
            (Kind::Bool, _) => errors.error_spanned_by(
                value,
                format_args!("`{}` takes `true` or `false`: `{}`", key.name, key.example),
            ),
        }
    }
    args
}

/// How `key` is written, for messages: `id = "create-clients"`.
pub fn example(key: &str) -> &'static str {
    known_key(key).map_or("", |key| key.example)
}

fn known_key(name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|key| key.name == name)
}

/// The literal an argument's value is, looking through the invisible groups `macro_rules!` adds.
fn literal(expr: &Expr) -> Option<&Lit> {
    match expr {
        Expr::Lit(lit) => Some(&lit.lit),
        Expr::Group(group) => literal(&group.expr),
        _ => None,
    }
}

fn written_path(path: &syn::Path) -> String {
    path.segments
        .iter()
        .map(|segment| segment.ident.to_string())
        .collect::<Vec<_>>()
        .join("::")
}

fn unknown_key_message(written: &str, suggestion: Option<&str>) -> String {
    let all = KEYS
        .iter()
        .map(|key| format!("`{}`", key.name))
        .collect::<Vec<_>>()
        .join(", ");
    match suggestion {
        Some(close) => {
            format!("unknown key `{written}`: did you mean `{close}`? The keys are {all}")
        }
        None => format!("unknown key `{written}`: the keys are {all}"),
    }
}

/// The known key closest to a misspelt one, if one is close enough to be what was meant.
fn did_you_mean(written: &str) -> Option<&'static str> {
    KEYS.iter()
        .map(|key| (edit_distance(written, key.name), key.name))
        .filter(|(distance, name)| *distance <= (name.len() / 3).max(1))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, name)| name)
}

/// Levenshtein distance between two short ASCII-ish strings.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

/// Which method of a change unit a marker attribute designates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Execution,
    Rollback,
}

impl Role {
    /// The attribute as the user writes it.
    pub fn attribute(self) -> &'static str {
        match self {
            Role::Execution => "#[execution]",
            Role::Rollback => "#[rollback_execution]",
        }
    }
}

/// The role `attr` marks, if it is `#[execution]` or `#[rollback_execution]` (also when written
/// with a `flamingock::` path).
pub fn role_of(attr: &Attribute) -> Option<Role> {
    let path = attr.path();
    let last = path.segments.last()?;
    let first = path.segments.first()?;
    if path.segments.len() > 1 && first.ident != "flamingock" {
        return None;
    }
    if last.ident == "execution" {
        Some(Role::Execution)
    } else if last.ident == "rollback_execution" {
        Some(Role::Rollback)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use quote::quote;

    use super::*;

    fn parse(tokens: TokenStream) -> (UnitArgs, Vec<String>) {
        let errors = Errors::new();
        let args = parse_args(tokens, &errors);
        let messages = errors
            .into_compile_errors()
            .to_string()
            .split("compile_error !")
            .skip(1)
            .map(str::to_owned)
            .collect();
        (args, messages)
    }

    #[test]
    fn reads_every_key() {
        let (args, errors) = parse(quote!(
            id = "a",
            order = "1",
            author = "ana",
            target_system = "db",
            transactional = false,
            recovery = "always_retry",
            run_always = true,
            system_version = "1.0.0",
            stage = "s",
            description = "d",
        ));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(args.string("id").map(LitStr::value).as_deref(), Some("a"));
        assert_eq!(
            args.boolean("transactional").map(LitBool::value),
            Some(false)
        );
        assert_eq!(args.boolean("run_always").map(LitBool::value), Some(true));
        assert_eq!(
            args.string("description").map(LitStr::value).as_deref(),
            Some("d")
        );
        assert!(args.complete);
    }

    #[test]
    fn reports_every_problem() {
        let (args, errors) = parse(quote!(
            id = "a",
            id = "b",
            ordr = "1",
            order = 1,
            transactional = "yes",
            run_always
        ));
        assert_eq!(errors.len(), 5, "{errors:?}");
        assert!(errors[0].contains("duplicate key `id`"));
        assert!(errors[1].contains("did you mean `order`?"));
        assert!(errors[2].contains("`order` takes a string literal"));
        assert!(errors[3].contains("`transactional` takes `true` or `false`"));
        assert!(errors[4].contains("`run_always` needs a value"));
        assert_eq!(args.string("id").map(LitStr::value).as_deref(), Some("a"));
        assert!(args.mentions("order") && args.string("order").is_none());
    }

    #[test]
    fn a_syntax_error_leaves_the_arguments_incomplete() {
        let (args, errors) = parse(quote!(id: "a"));
        assert_eq!(errors.len(), 1);
        assert!(!args.complete);
    }

    #[test]
    fn suggests_only_close_keys() {
        assert_eq!(did_you_mean("ordr"), Some("order"));
        assert_eq!(did_you_mean("runalways"), Some("run_always"));
        assert_eq!(did_you_mean("name"), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn recognises_markers() {
        let attrs: Vec<Attribute> = vec![
            syn::parse_quote!(#[execution]),
            syn::parse_quote!(#[flamingock::rollback_execution]),
            syn::parse_quote!(#[other::execution]),
            syn::parse_quote!(#[inline]),
        ];
        let roles: Vec<_> = attrs.iter().map(role_of).collect();
        assert_eq!(
            roles,
            [Some(Role::Execution), Some(Role::Rollback), None, None]
        );
    }
}
