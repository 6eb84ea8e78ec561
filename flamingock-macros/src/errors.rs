//! Collects every problem found in one `#[change_unit]` so that all of them are reported at once.

use std::cell::RefCell;
use std::fmt::Display;

use proc_macro2::TokenStream;
use quote::ToTokens;

/// The problems found so far, each with the span of the token at fault.
///
/// Parsing and validation push into it and go on; the expansion emits them all together, next to
/// the user's item, instead of stopping at the first.
#[derive(Default)]
pub struct Errors {
    errors: RefCell<Vec<syn::Error>>,
}

impl Errors {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a problem located at `tokens` (their first and last token, as rustc shows them).
    pub fn error_spanned_by<T: ToTokens, M: Display>(&self, tokens: T, message: M) {
        self.push(syn::Error::new_spanned(tokens.into_token_stream(), message));
    }

    /// Records an already built error (from syn, or located with a `Span`).
    pub fn push(&self, error: syn::Error) {
        self.errors.borrow_mut().push(error);
    }

    /// Whether nothing went wrong so far.
    pub fn is_empty(&self) -> bool {
        self.errors.borrow().is_empty()
    }

    /// One `compile_error!` per problem, in the order they were found.
    pub fn into_compile_errors(self) -> TokenStream {
        self.errors
            .into_inner()
            .into_iter()
            .map(|error| error.to_compile_error())
            .collect()
    }
}
