//! Parses `sql_units!("folder", key = "value", ...)` into [`Args`].

use proc_macro2::Span;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Expr, ExprLit, Lit, LitStr, MetaNameValue, Token};

/// A layout named with `layout = "..."`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    Sqlx,
    Refinery,
    Diesel,
}

impl Layout {
    pub fn name(self) -> &'static str {
        match self {
            Layout::Sqlx => "sqlx",
            Layout::Refinery => "refinery",
            Layout::Diesel => "diesel",
        }
    }
}

/// The macro's arguments.
pub struct Args {
    pub folder: LitStr,
    pub target_system: Option<String>,
    pub stage: Option<String>,
    pub author: Option<String>,
    pub layout: Option<Layout>,
}

const KEYS: &str = "`target_system`, `stage`, `author`, `layout`";

impl Parse for Args {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        if input.is_empty() {
            return Err(syn::Error::new(
                Span::call_site(),
                "expected the migrations folder, relative to the crate's Cargo.toml: `flamingock::sql_units!(\"migrations\")`",
            ));
        }
        let folder: LitStr = input.parse()?;
        let mut args = Args {
            folder,
            target_system: None,
            stage: None,
            author: None,
            layout: None,
        };
        if input.is_empty() {
            return Ok(args);
        }
        input.parse::<Token![,]>()?;
        let pairs = Punctuated::<MetaNameValue, Token![,]>::parse_terminated(input)?;
        let mut errors: Option<syn::Error> = None;
        let mut push = |error: syn::Error| match &mut errors {
            Some(all) => all.combine(error),
            None => errors = Some(error),
        };
        let mut seen = Vec::new();
        for pair in pairs {
            let Some(key) = pair.path.get_ident().map(ToString::to_string) else {
                push(syn::Error::new_spanned(
                    &pair.path,
                    format!("unknown key; expected one of {KEYS}"),
                ));
                continue;
            };
            if seen.contains(&key) {
                push(syn::Error::new_spanned(
                    &pair.path,
                    format!("`{key}` is given twice"),
                ));
                continue;
            }
            seen.push(key.clone());
            let value = match &pair.value {
                Expr::Lit(ExprLit {
                    lit: Lit::Str(value),
                    ..
                }) => value,
                other => {
                    push(syn::Error::new_spanned(
                        other,
                        format!("`{key}` takes a string literal"),
                    ));
                    continue;
                }
            };
            let text = value.value();
            if text.trim().is_empty() {
                push(syn::Error::new_spanned(value, format!("`{key}` is empty")));
                continue;
            }
            match key.as_str() {
                "target_system" => args.target_system = Some(text),
                "stage" => args.stage = Some(text),
                "author" => args.author = Some(text),
                "layout" => match text.as_str() {
                    "sqlx" => args.layout = Some(Layout::Sqlx),
                    "refinery" => args.layout = Some(Layout::Refinery),
                    "diesel" => args.layout = Some(Layout::Diesel),
                    _ => push(syn::Error::new_spanned(
                        value,
                        "unknown layout; expected \"sqlx\", \"refinery\" or \"diesel\" (or leave it out to detect it)",
                    )),
                },
                _ => push(syn::Error::new_spanned(
                    &pair.path,
                    format!("unknown key `{key}`; expected one of {KEYS}"),
                )),
            }
        }
        match errors {
            Some(errors) => Err(errors),
            None => Ok(args),
        }
    }
}
