//! Leaf: SQL identifiers taken from configuration (table names): validated before any SQL is built.
//!
//! The audit table's name is the only user string that ever reaches SQL text; everything else is a
//! bind parameter. A [`TableName`] can only be made from a name that passed
//! [`validate_identifier`], so SQL builders that take one cannot be handed anything else.

use std::fmt;

use flamingock_core::StoreError;

/// The longest identifier accepted: PostgreSQL's limit (MySQL allows 64, SQLite more).
pub const MAX_IDENTIFIER_LEN: usize = 63;

/// Checks that `name` is a plain SQL identifier: an ASCII letter or `_` first, then ASCII letters,
/// digits or `_`, at most [`MAX_IDENTIFIER_LEN`] characters.
///
/// Such a name needs no escaping in any supported dialect and cannot carry SQL of its own.
///
/// ```
/// use flamingock_sqlx::validate_identifier;
///
/// assert!(validate_identifier("flamingock_audit_log").is_ok());
/// assert!(validate_identifier("audit; DROP TABLE users").is_err());
/// ```
pub fn validate_identifier(name: &str) -> Result<(), StoreError> {
    let invalid = |reason| StoreError::InvalidIdentifier {
        name: name.to_owned(),
        reason,
    };
    let mut chars = name.chars();
    let first = chars.next().ok_or_else(|| invalid("it is empty"))?;
    if !(first.is_ascii_alphabetic() || first == '_') {
        return Err(invalid("it must start with an ASCII letter or `_`"));
    }
    if !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(invalid("it may contain only ASCII letters, digits and `_`"));
    }
    if name.len() > MAX_IDENTIFIER_LEN {
        return Err(invalid("it is longer than 63 characters"));
    }
    Ok(())
}

/// A table name that passed [`validate_identifier`]: safe to splice into SQL text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct TableName(String);

impl TableName {
    /// Validates `name`.
    pub(crate) fn new(name: &str) -> Result<Self, StoreError> {
        validate_identifier(name)?;
        Ok(Self(name.to_owned()))
    }

    /// The name as configured.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// A name derived from this one for a companion object (an index), kept within
    /// [`MAX_IDENTIFIER_LEN`] so that PostgreSQL does not silently truncate it into a name another
    /// long table's index might share.
    pub(crate) fn derived(&self, suffix: &str) -> String {
        let name = format!("{}_{suffix}", self.0);
        if name.len() <= MAX_IDENTIFIER_LEN {
            return name;
        }
        // Keep a readable prefix and make the rest unique with a hash of the full name.
        let hash = format!("{:016x}", fnv1a(name.as_bytes()));
        let keep = MAX_IDENTIFIER_LEN - hash.len() - 1;
        format!("{}_{hash}", &name[..keep])
    }

    /// A stable 64-bit number for this table, for database-wide named locks.
    pub(crate) fn lock_key(&self, purpose: &str) -> i64 {
        let key = format!("flamingock:{purpose}:{}", self.0);
        // Reinterpreting the bits is the point: any i64 is a valid lock key.
        fnv1a(key.as_bytes()) as i64
    }
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// 64-bit FNV-1a: tiny, stable across releases and platforms (unlike `DefaultHasher`).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(name: &str) -> &'static str {
        match validate_identifier(name) {
            Err(StoreError::InvalidIdentifier { reason, .. }) => reason,
            other => panic!("expected InvalidIdentifier for {name:?}, got {other:?}"),
        }
    }

    #[test]
    fn plain_identifiers_pass() {
        for name in ["flamingock_audit_log", "_x", "A1", &"a".repeat(63)] {
            assert!(validate_identifier(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn anything_else_is_refused_with_a_reason() {
        assert_eq!(reason(""), "it is empty");
        assert_eq!(reason("1abc"), "it must start with an ASCII letter or `_`");
        assert_eq!(
            reason("drop table x"),
            "it may contain only ASCII letters, digits and `_`"
        );
        assert_eq!(
            reason("a;b"),
            "it may contain only ASCII letters, digits and `_`"
        );
        assert_eq!(
            reason("tablé"),
            "it may contain only ASCII letters, digits and `_`"
        );
        assert_eq!(reason(&"a".repeat(64)), "it is longer than 63 characters");
    }

    #[test]
    fn derived_names_stay_short_and_distinct() {
        let short = TableName::new("audit").expect("valid");
        assert_eq!(short.derived("change_id_idx"), "audit_change_id_idx");
        let a = TableName::new(&format!("{}a", "t".repeat(62))).expect("valid");
        let b = TableName::new(&format!("{}b", "t".repeat(62))).expect("valid");
        assert_eq!(a.derived("change_id_idx").len(), MAX_IDENTIFIER_LEN);
        assert_ne!(a.derived("change_id_idx"), b.derived("change_id_idx"));
        assert!(validate_identifier(&a.derived("change_id_idx")).is_ok());
    }
}
