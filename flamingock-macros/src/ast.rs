//! Models the item under `#[change_unit]`: an `impl` block or an inline `mod`, and the functions
//! in it marked `#[execution]` or `#[rollback_execution]`. Building the model strips those markers
//! from the item, so that the item can be emitted unchanged otherwise, even when it has errors.

use proc_macro2::TokenStream;
use quote::{ToTokens, quote};
use syn::{Attribute, Generics, Ident, ImplItem, Item, Path, Signature, Type};

use crate::attr::{Role, role_of};
use crate::errors::Errors;

/// A change unit as written.
pub struct Unit {
    pub form: Form,
    /// Every function carrying at least one marker, in source order.
    pub methods: Vec<Method>,
    /// Markers found on items that are not functions (a `const`, a `struct`, ...).
    pub misplaced: Vec<Marker>,
}

/// Where the unit's functions live.
pub enum Form {
    /// `impl Type { ... }`: methods of a type built with `Default`.
    Impl {
        self_ty: Box<Type>,
        generics: Generics,
        /// `Trait` in `impl Trait for Type`, which a change unit cannot be.
        trait_path: Option<Path>,
    },
    /// `mod name { ... }`: free functions.
    Mod {
        ident: Ident,
        /// `false` for `mod name;`, whose items the macro cannot see.
        inline: bool,
        /// `mod name` as written, to point errors at.
        head: TokenStream,
    },
}

/// A marked function.
pub struct Method {
    pub markers: Vec<Marker>,
    pub sig: Signature,
}

/// One `#[execution]` or `#[rollback_execution]` attribute.
pub struct Marker {
    pub role: Role,
    pub attr: Attribute,
}

/// Models `item` and strips every marker from it. Returns `None`, with an error recorded, when the
/// item is neither an `impl` block nor a `mod`.
pub fn parse_item(item: &mut Item, errors: &Errors) -> Option<Unit> {
    let mut methods = Vec::new();
    let mut misplaced = Vec::new();
    let form = match item {
        Item::Impl(block) => {
            for inner in &mut block.items {
                match inner {
                    ImplItem::Fn(function) => {
                        collect(&mut function.attrs, &function.sig, &mut methods);
                    }
                    ImplItem::Const(c) => misplaced.extend(take_markers(&mut c.attrs)),
                    ImplItem::Type(t) => misplaced.extend(take_markers(&mut t.attrs)),
                    ImplItem::Macro(m) => misplaced.extend(take_markers(&mut m.attrs)),
                    _ => {}
                }
            }
            Form::Impl {
                self_ty: block.self_ty.clone(),
                generics: block.generics.clone(),
                trait_path: block.trait_.as_ref().map(|(_, path, _)| path.clone()),
            }
        }
        Item::Mod(module) => {
            for inner in module.content.iter_mut().flat_map(|(_, items)| items) {
                match inner {
                    Item::Fn(function) => collect(&mut function.attrs, &function.sig, &mut methods),
                    other => {
                        if let Some(attrs) = item_attrs(other) {
                            misplaced.extend(take_markers(attrs));
                        }
                    }
                }
            }
            let (mod_token, ident) = (&module.mod_token, &module.ident);
            Form::Mod {
                ident: module.ident.clone(),
                inline: module.content.is_some(),
                head: quote!(#mod_token #ident),
            }
        }
        other => {
            errors.error_spanned_by(
                head(other),
                "`#[change_unit]` goes on an `impl` block of a `Default` type, \
                 or on an inline `mod` of free functions",
            );
            return None;
        }
    };
    Some(Unit {
        form,
        methods,
        misplaced,
    })
}

/// Strips the markers of one function and records it if it had any.
fn collect(attrs: &mut Vec<Attribute>, sig: &Signature, methods: &mut Vec<Method>) {
    let markers = take_markers(attrs);
    if !markers.is_empty() {
        methods.push(Method {
            markers,
            sig: sig.clone(),
        });
    }
}

fn take_markers(attrs: &mut Vec<Attribute>) -> Vec<Marker> {
    let mut markers = Vec::new();
    attrs.retain(|attr| match role_of(attr) {
        Some(role) => {
            markers.push(Marker {
                role,
                attr: attr.clone(),
            });
            false
        }
        None => true,
    });
    markers
}

/// The attributes of the items a module may hold besides functions.
fn item_attrs(item: &mut Item) -> Option<&mut Vec<Attribute>> {
    Some(match item {
        Item::Const(i) => &mut i.attrs,
        Item::Enum(i) => &mut i.attrs,
        Item::ExternCrate(i) => &mut i.attrs,
        Item::ForeignMod(i) => &mut i.attrs,
        Item::Impl(i) => &mut i.attrs,
        Item::Macro(i) => &mut i.attrs,
        Item::Mod(i) => &mut i.attrs,
        Item::Static(i) => &mut i.attrs,
        Item::Struct(i) => &mut i.attrs,
        Item::Trait(i) => &mut i.attrs,
        Item::TraitAlias(i) => &mut i.attrs,
        Item::Type(i) => &mut i.attrs,
        Item::Union(i) => &mut i.attrs,
        Item::Use(i) => &mut i.attrs,
        _ => return None,
    })
}

/// The keyword and name of an item (`struct Foo`), to point an error at without underlining
/// its whole body.
fn head(item: &Item) -> TokenStream {
    match item {
        Item::Fn(i) => {
            let (fn_token, ident) = (&i.sig.fn_token, &i.sig.ident);
            quote!(#fn_token #ident)
        }
        Item::Struct(i) => {
            let (token, ident) = (&i.struct_token, &i.ident);
            quote!(#token #ident)
        }
        Item::Enum(i) => {
            let (token, ident) = (&i.enum_token, &i.ident);
            quote!(#token #ident)
        }
        Item::Trait(i) => {
            let (token, ident) = (&i.trait_token, &i.ident);
            quote!(#token #ident)
        }
        Item::Const(i) => {
            let (token, ident) = (&i.const_token, &i.ident);
            quote!(#token #ident)
        }
        Item::Static(i) => {
            let (token, ident) = (&i.static_token, &i.ident);
            quote!(#token #ident)
        }
        Item::Type(i) => {
            let (token, ident) = (&i.type_token, &i.ident);
            quote!(#token #ident)
        }
        other => other.to_token_stream(),
    }
}

#[cfg(test)]
mod tests {
    use syn::parse_quote;

    use super::*;

    #[test]
    fn strips_markers_and_models_methods() {
        let mut item: Item = parse_quote! {
            impl Unit {
                #[execution]
                #[inline]
                async fn execute(&self) {}
                #[rollback_execution]
                fn rollback() {}
                fn helper(&self) {}
                #[execution]
                const X: u8 = 1;
            }
        };
        let errors = Errors::new();
        let unit = parse_item(&mut item, &errors).expect("an impl block is a unit");
        assert!(errors.is_empty());
        let names: Vec<_> = unit
            .methods
            .iter()
            .map(|m| m.sig.ident.to_string())
            .collect();
        assert_eq!(names, ["execute", "rollback"]);
        assert_eq!(unit.misplaced.len(), 1);
        let text = item.to_token_stream().to_string();
        assert!(!text.contains("execution"), "{text}");
        assert!(text.contains("inline"), "{text}");
    }

    #[test]
    fn models_an_inline_module() {
        let mut item: Item = parse_quote! {
            mod seed {
                use super::*;
                #[execution]
                pub fn execute() {}
            }
        };
        let unit = parse_item(&mut item, &Errors::new()).expect("a module is a unit");
        assert!(matches!(unit.form, Form::Mod { inline: true, .. }));
        assert_eq!(unit.methods.len(), 1);
    }

    #[test]
    fn rejects_other_items() {
        let mut item: Item = parse_quote!(
            struct S;
        );
        let errors = Errors::new();
        assert!(parse_item(&mut item, &errors).is_none());
        assert!(!errors.is_empty());
    }
}
