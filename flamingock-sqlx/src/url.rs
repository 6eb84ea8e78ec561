//! Leaf: database URLs: which backend a scheme names, and redaction so that no password reaches a log
//! line or an error message.

use flamingock_core::StoreError;

/// Query parameters whose values are secrets (compared case-insensitively).
const SECRET_PARAMS: [&str; 7] = [
    "password",
    "passwd",
    "pass",
    "pwd",
    "sslpassword",
    "secret",
    "token",
];

/// What stands in for a redacted secret.
const MASK: &str = "***";

/// Returns `url` with any password replaced by `***`: the one in the user-info part
/// (`postgres://user:***@host/db`) and those in query parameters (`?password=***`).
///
/// Never fails: input that is not a URL comes back with anything that looks like a password
/// masked, erring on the side of masking too much.
///
/// ```
/// use flamingock_sqlx::redact_url;
///
/// assert_eq!(redact_url("postgres://ana:s3cret@db:5432/app"), "postgres://ana:***@db:5432/app");
/// assert_eq!(redact_url("mysql://db/app?user=ana&password=s3cret"), "mysql://db/app?user=ana&password=***");
/// assert_eq!(redact_url("sqlite:flamingock.db"), "sqlite:flamingock.db");
/// ```
pub fn redact_url(url: &str) -> String {
    let (head, query) = match url.split_once('?') {
        Some((head, query)) => (head, Some(query)),
        None => (url, None),
    };
    let mut redacted = redact_user_info(head);
    if let Some(query) = query {
        redacted.push('?');
        redacted.push_str(&redact_query(query));
    }
    redacted
}

/// Masks the password of `scheme://user:password@host/...` (and of `user:password@host`).
fn redact_user_info(head: &str) -> String {
    // User info starts after `scheme://`. Without `//` there is no telling a scheme from a user
    // name (`user:secret@host`), so everything before the first `:` counts as the user.
    let start = head.find("://").map_or(0, |at| at + 3);
    // The *last* `@` ends the user info, so a password holding an unescaped `/` or `@` is still
    // masked whole (at worst the host is masked with it).
    let Some(at) = head[start..].rfind('@').map(|at| start + at) else {
        return head.to_owned();
    };
    let user_info = &head[start..at];
    match user_info.split_once(':') {
        Some((user, _password)) => format!("{}{user}:{MASK}{}", &head[..start], &head[at..]),
        None => head.to_owned(),
    }
}

/// Masks the values of secret-looking parameters in `a=1&password=2`.
fn redact_query(query: &str) -> String {
    query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if SECRET_PARAMS.iter().any(|s| key.eq_ignore_ascii_case(s)) => {
                format!("{key}={MASK}")
            }
            _ => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// The scheme of `url` (the letters before the first `:`), if it has a well-formed one.
fn scheme_of(url: &str) -> Option<&str> {
    let (scheme, _) = url.split_once(':')?;
    let mut chars = scheme.chars();
    let well_formed = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    well_formed.then_some(scheme)
}

/// The databases this crate can hold an audit store in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `sqlite:` URLs (cargo feature `sqlite`).
    Sqlite,
    /// `postgres:` and `postgresql:` URLs (cargo feature `postgres`).
    Postgres,
    /// `mysql:` and `mariadb:` URLs (cargo feature `mysql`).
    MySql,
}

impl Backend {
    /// The backend a database URL names by its scheme.
    ///
    /// ```
    /// use flamingock_sqlx::Backend;
    ///
    /// assert_eq!(Backend::from_url("postgresql://db/app").unwrap(), Backend::Postgres);
    /// assert!(Backend::from_url("oracle://db/app").is_err());
    /// ```
    pub fn from_url(url: &str) -> Result<Self, StoreError> {
        let scheme = scheme_of(url).map(str::to_ascii_lowercase);
        match scheme.as_deref() {
            Some("sqlite") => Ok(Backend::Sqlite),
            Some("postgres" | "postgresql") => Ok(Backend::Postgres),
            Some("mysql" | "mariadb") => Ok(Backend::MySql),
            _ => Err(StoreError::Unsupported(format!(
                "unsupported audit store URL `{}`: the scheme must be `sqlite:`, `postgres:` \
                 (or `postgresql:`), or `mysql:` (or `mariadb:`)",
                redact_url(url)
            ))),
        }
    }

    /// The cargo feature (of `flamingock` and of `flamingock-sqlx`) that brings this backend in.
    pub fn feature(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
            Backend::MySql => "mysql",
        }
    }

    /// The database's name for people.
    pub fn label(self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
            Backend::MySql => "MySQL/MariaDB",
        }
    }

    /// Whether this build was compiled with the backend's feature.
    pub fn is_compiled_in(self) -> bool {
        match self {
            Backend::Sqlite => cfg!(feature = "sqlite"),
            Backend::Postgres => cfg!(feature = "postgres"),
            Backend::MySql => cfg!(feature = "mysql"),
        }
    }

    /// The error for a URL whose backend this build lacks.
    pub(crate) fn not_compiled_in(self, url: &str) -> StoreError {
        StoreError::Unsupported(format!(
            "the audit store URL `{}` needs {} support, which this build lacks: enable the `{}` \
             cargo feature of `flamingock` (or `flamingock-sqlx`)",
            redact_url(url),
            self.label(),
            self.feature()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_user_info_are_masked() {
        assert_eq!(
            redact_url("postgres://user:pw@host/db"),
            "postgres://user:***@host/db"
        );
        assert_eq!(
            redact_url("mysql://root:p%40ss@127.0.0.1:3306/test?ssl-mode=disabled"),
            "mysql://root:***@127.0.0.1:3306/test?ssl-mode=disabled"
        );
        // An unescaped `/` or `@` in the password still leaks nothing.
        assert_eq!(redact_url("postgres://u:a/b@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact_url("postgres://u:a@b@h/db"), "postgres://u:***@h/db");
    }

    #[test]
    fn urls_without_password_are_unchanged() {
        for url in [
            "postgres://postgres@127.0.0.1:5432/test",
            "postgres://127.0.0.1/test",
            "sqlite:flamingock.db",
            "sqlite://data/a@b.db?mode=rwc",
            "sqlite::memory:",
        ] {
            assert_eq!(redact_url(url), url);
        }
    }

    #[test]
    fn password_parameters_are_masked() {
        assert_eq!(
            redact_url("postgres://h/db?user=u&password=pw&sslmode=require"),
            "postgres://h/db?user=u&password=***&sslmode=require"
        );
        assert_eq!(redact_url("mysql://h/db?PWD=x"), "mysql://h/db?PWD=***");
        assert_eq!(
            redact_url("postgres://u:pw@h/db?password=pw2"),
            "postgres://u:***@h/db?password=***"
        );
    }

    #[test]
    fn unparsable_input_leaks_nothing() {
        assert_eq!(redact_url(""), "");
        assert_eq!(redact_url("not a url"), "not a url");
        assert_eq!(redact_url("user:secret@host"), "user:***@host");
        assert_eq!(redact_url("://:secret@"), "://:***@");
        assert!(!redact_url("postgres//u:secret@h").contains("secret"));
        assert!(!redact_url("h?password=secret&&=").contains("secret"));
    }

    #[test]
    fn schemes_pick_backends() {
        assert_eq!(Backend::from_url("sqlite:x.db").unwrap(), Backend::Sqlite);
        assert_eq!(
            Backend::from_url("SQLite::memory:").unwrap(),
            Backend::Sqlite
        );
        assert_eq!(
            Backend::from_url("postgres://h/d").unwrap(),
            Backend::Postgres
        );
        assert_eq!(
            Backend::from_url("postgresql://h/d").unwrap(),
            Backend::Postgres
        );
        assert_eq!(Backend::from_url("mysql://h/d").unwrap(), Backend::MySql);
        assert_eq!(Backend::from_url("mariadb://h/d").unwrap(), Backend::MySql);
        let err = Backend::from_url("mongodb://u:pw@h/d")
            .unwrap_err()
            .to_string();
        assert!(err.contains("mongodb://u:***@h/d"), "{err}");
        assert!(err.contains("postgres:"), "{err}");
        assert!(Backend::from_url("flamingock.db").is_err());
    }
}
