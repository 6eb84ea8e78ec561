//! Leaf: how a type a unit asks for, or a target offers, is compared (by its `TypeId`) and shown
//! to people (by the name they write: `PgPool`, `Transaction<'_, Postgres>`, never
//! `sqlx_core::pool::Pool<sqlx_postgres::database::Postgres>`).
//!
//! Two types with one `std::any::type_name` and two `TypeId`s are one type from two versions of
//! its crate (an application on sqlx 0.8 beside this crate's sqlx 0.9): the messages say so, and
//! name the version the offer comes from, rather than "expected `X`, found `X`".

use std::any::{Any, TypeId, type_name};
use std::borrow::Cow;

/// A type as the engine compares it and as messages show it.
#[derive(Debug, Clone, Copy)]
pub struct TypeLabel {
    /// What the engine compares.
    pub type_id: TypeId,
    /// [`std::any::type_name`]: crate paths without versions, so that two versions of one type
    /// share it.
    pub type_name: &'static str,
    /// The name a user writes (`PgPool`); `None`: `type_name` without its module paths.
    pub shown_as: Option<&'static str>,
    /// The crate version that defines the type, and the path that names that version, for the
    /// message that two versions are linked (`sqlx 0.9, re-exported as flamingock::sqlx`).
    pub origin: Option<&'static str>,
}

impl TypeLabel {
    /// The label of `T`, shown by its name without module paths.
    pub fn of<T: Any + ?Sized>() -> Self {
        Self {
            type_id: TypeId::of::<T>(),
            type_name: type_name::<T>(),
            shown_as: None,
            origin: None,
        }
    }

    /// Shows the type as `name` (the way a user writes it).
    pub fn shown_as(mut self, name: &'static str) -> Self {
        self.shown_as = Some(name);
        self
    }

    /// Records which crate version defines the type (see [`origin`](Self::origin)).
    pub fn from_crate(mut self, origin: &'static str) -> Self {
        self.origin = Some(origin);
        self
    }

    /// The name messages show.
    pub fn name(&self) -> Cow<'static, str> {
        match self.shown_as {
            Some(name) => Cow::Borrowed(name),
            None => Cow::Owned(short_type_name(self.type_name)),
        }
    }

    /// Whether `other` is this type from another version of its crate: the same name, another
    /// type.
    pub fn is_other_version_of(&self, type_id: TypeId, type_name: &str) -> bool {
        self.type_id != type_id && self.type_name == type_name
    }
}

impl PartialEq for TypeLabel {
    fn eq(&self, other: &Self) -> bool {
        self.type_id == other.type_id
    }
}

impl Eq for TypeLabel {}

/// `type_name` without module paths: `alloc::vec::Vec<my_app::Config>` becomes `Vec<Config>`.
pub fn short_type_name(type_name: &str) -> String {
    let mut short = String::with_capacity(type_name.len());
    // Where the path segment being read started in `short`: a `::` drops what precedes it.
    let mut segment_start = 0;
    let mut chars = type_name.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ':' && chars.peek() == Some(&':') {
            chars.next();
            if short.len() > segment_start {
                short.truncate(segment_start);
            } else {
                // `<T as Trait>::Assoc`: nothing to drop, keep the separator.
                short.push_str("::");
                segment_start = short.len();
            }
            continue;
        }
        short.push(c);
        // `{{closure}}` is a segment too, of a type declared in a function.
        if !(c.is_alphanumeric() || matches!(c, '_' | '{' | '}')) {
            segment_start = short.len();
        }
    }
    short
}

/// The last word of a type's name as written, without generics or paths, split at its last
/// capital: `sqlx::SqlitePool` and `PgPool` both end in `Pool`. Used to suggest the offered type
/// a parameter most likely meant.
pub(crate) fn last_word(written: &str) -> &str {
    let base = written.trim_start_matches(['&', ' ']);
    let base = base.strip_prefix("mut ").unwrap_or(base);
    let base = base.split('<').next().unwrap_or(base);
    let base = base.rsplit("::").next().unwrap_or(base).trim();
    match base.char_indices().rev().find(|(_, c)| c.is_uppercase()) {
        Some((at, _)) => &base[at..],
        None => base,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_paths_are_left_out_of_shown_names() {
        assert_eq!(
            short_type_name("sqlx_core::pool::Pool<sqlx_postgres::database::Postgres>"),
            "Pool<Postgres>"
        );
        assert_eq!(
            short_type_name("alloc::vec::Vec<(u32, &my_app::config::Config)>"),
            "Vec<(u32, &Config)>"
        );
        assert_eq!(
            short_type_name("<T as a::Trait>::Assoc"),
            "<T as Trait>::Assoc"
        );
        assert_eq!(short_type_name("u8"), "u8");
        assert_eq!(short_type_name("app::main::{{closure}}::Local"), "Local");
    }

    #[test]
    fn a_label_shows_its_written_name_and_tells_other_versions() {
        let label = TypeLabel::of::<Vec<u8>>()
            .shown_as("Bytes")
            .from_crate("alloc 1");
        assert_eq!(label.name(), "Bytes");
        assert_eq!(TypeLabel::of::<Vec<u8>>().name(), "Vec<u8>");
        assert!(label.is_other_version_of(TypeId::of::<u8>(), type_name::<Vec<u8>>()));
        assert!(!label.is_other_version_of(TypeId::of::<Vec<u8>>(), type_name::<Vec<u8>>()));
        assert!(!label.is_other_version_of(TypeId::of::<u8>(), "u8"));
    }

    #[test]
    fn the_last_word_is_what_pools_have_in_common() {
        assert_eq!(last_word("&sqlx::SqlitePool"), "Pool");
        assert_eq!(last_word("PgPool"), "Pool");
        assert_eq!(last_word("&sqlx::Pool<sqlx::Sqlite>"), "Pool");
        assert_eq!(last_word("&mut Transaction<'_, Postgres>"), "Transaction");
        assert_eq!(last_word("&config"), "config");
    }
}
