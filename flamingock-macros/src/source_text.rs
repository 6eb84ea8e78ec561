//! Renders tokens the way people write them (`&mut sqlx::Transaction<'_, sqlx::Sqlite>`), not the
//! way `TokenStream::to_string` spaces them (`& mut sqlx :: Transaction < '_ , sqlx :: Sqlite >`):
//! for the parameter types the engine names in its messages, and for the macro's own messages.

use proc_macro2::{Delimiter, Spacing, TokenStream, TokenTree};
use quote::ToTokens;

/// `tokens` as source text, with the spacing rustfmt would give a type or a pattern.
pub fn render<T: ToTokens>(tokens: &T) -> String {
    let mut out = Renderer::default();
    out.stream(tokens.to_token_stream());
    out.text
}

/// What the last thing written was, which decides whether the next one needs a space first.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Last {
    /// Nothing yet, an opening delimiter, or an operator that binds to what follows (`&`, `::`).
    Tight,
    /// An identifier, keyword or literal.
    Word,
    /// A keyword after which a parenthesis or bracket is spaced (`mut [u8]`, `dyn (Trait)`).
    SpacedKeyword,
    /// An operator written with spaces on both sides, or a separator followed by one (`,`).
    Spaced,
    /// The `'` of a lifetime.
    Quote,
    /// `>`, `)` or `]`: closes something.
    Close,
}

#[derive(Default)]
struct Renderer {
    text: String,
    last: Option<Last>,
}

impl Renderer {
    fn stream(&mut self, tokens: TokenStream) {
        let mut tokens = tokens.into_iter().peekable();
        while let Some(token) = tokens.next() {
            match token {
                TokenTree::Ident(ident) => {
                    let word = ident.to_string();
                    self.word(&word);
                    if matches!(word.as_str(), "mut" | "dyn" | "impl" | "const" | "as") {
                        self.last = Some(Last::SpacedKeyword);
                    }
                }
                TokenTree::Literal(literal) => self.word(&literal.to_string()),
                TokenTree::Group(group) => self.group(group.delimiter(), group.stream()),
                TokenTree::Punct(punct) => {
                    // Glue a multi-character operator (`::`, `->`, `>>`) back together.
                    let mut op = punct.as_char().to_string();
                    let mut spacing = punct.spacing();
                    while spacing == Spacing::Joint && op != "'" {
                        match tokens.peek() {
                            Some(TokenTree::Punct(next)) if next.as_char() != '\'' => {
                                op.push(next.as_char());
                                spacing = next.spacing();
                                tokens.next();
                            }
                            _ => break,
                        }
                    }
                    self.operator(&op);
                }
            }
        }
    }

    fn word(&mut self, word: &str) {
        if matches!(
            self.last,
            Some(Last::Word | Last::SpacedKeyword | Last::Spaced | Last::Close)
        ) {
            self.text.push(' ');
        }
        self.text.push_str(word);
        self.last = Some(Last::Word);
    }

    fn operator(&mut self, op: &str) {
        match op {
            "," | ";" => {
                self.text.push_str(op);
                self.last = Some(Last::Spaced);
            }
            "+" | "=" | "->" | "=>" => {
                if self.last.is_some() {
                    self.text.push(' ');
                }
                self.text.push_str(op);
                self.last = Some(Last::Spaced);
            }
            ">" | ">>" => {
                self.text.push_str(op);
                self.last = Some(Last::Close);
            }
            "'" => {
                if matches!(
                    self.last,
                    Some(Last::Word | Last::SpacedKeyword | Last::Spaced | Last::Close)
                ) {
                    self.text.push(' ');
                }
                self.text.push('\'');
                self.last = Some(Last::Quote);
            }
            _ => {
                // `&`, `*`, `::`, `<`, `!`, `?`, `:` and the rest bind to their neighbours, except
                // that a word before `&` or `*` keeps its space (`dyn A + &B` does not occur; `mut
                // *const` does not either), and `:` in a pattern is followed by one.
                if matches!(self.last, Some(Last::Spaced | Last::SpacedKeyword)) && op != "::" {
                    self.text.push(' ');
                }
                self.text.push_str(op);
                self.last = Some(if op == ":" { Last::Spaced } else { Last::Tight });
            }
        }
    }

    fn group(&mut self, delimiter: Delimiter, stream: TokenStream) {
        let (open, close) = match delimiter {
            Delimiter::Parenthesis => ("(", ")"),
            Delimiter::Bracket => ("[", "]"),
            Delimiter::Brace => ("{", "}"),
            // Invisible groups come from `macro_rules!` fragments: render their contents.
            Delimiter::None => {
                self.stream(stream);
                return;
            }
        };
        if matches!(self.last, Some(Last::SpacedKeyword | Last::Spaced))
            || (self.last == Some(Last::Word) && delimiter != Delimiter::Parenthesis)
        {
            self.text.push(' ');
        }
        self.text.push_str(open);
        self.last = Some(Last::Tight);
        self.stream(stream);
        self.text.push_str(close);
        self.last = Some(Last::Close);
    }
}

#[cfg(test)]
mod tests {
    use syn::{Pat, Type, parse_quote};

    use super::*;

    fn ty(ty: Type) -> String {
        render(&ty)
    }

    #[test]
    fn renders_types_as_written() {
        assert_eq!(
            ty(parse_quote!(&mut sqlx::Transaction<'_, sqlx::Sqlite>)),
            "&mut sqlx::Transaction<'_, sqlx::Sqlite>"
        );
        assert_eq!(ty(parse_quote!(&ChangeContext)), "&ChangeContext");
        assert_eq!(
            ty(parse_quote!(&'a mut Vec<Vec<u8>>)),
            "&'a mut Vec<Vec<u8>>"
        );
        assert_eq!(
            ty(parse_quote!(&::std::string::String)),
            "&::std::string::String"
        );
        assert_eq!(ty(parse_quote!(&mut [u8])), "&mut [u8]");
        assert_eq!(ty(parse_quote!(&[u8; 4])), "&[u8; 4]");
        assert_eq!(ty(parse_quote!(&(u8, String))), "&(u8, String)");
        assert_eq!(
            ty(parse_quote!(&(dyn Fn(u8) -> u8 + Send))),
            "&(dyn Fn(u8) -> u8 + Send)"
        );
        assert_eq!(
            ty(parse_quote!(&<T as Trait>::Assoc)),
            "&<T as Trait>::Assoc"
        );
        assert_eq!(ty(parse_quote!(*const u8)), "*const u8");
        assert_eq!(
            ty(parse_quote!(&Box<dyn Error + 'static>)),
            "&Box<dyn Error + 'static>"
        );
        assert_eq!(ty(parse_quote!(&Iter<Item = u8>)), "&Iter<Item = u8>");
    }

    #[test]
    fn renders_patterns_as_written() {
        let pat: Pat = Pat::parse_single
            .parse2(quote::quote!(mut tx))
            .expect("a pattern");
        assert_eq!(render(&pat), "mut tx");
        let pat: Pat = parse_quote!(_);
        assert_eq!(render(&pat), "_");
    }

    use syn::parse::Parser;
}
