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
    let (head, tail) = split_user_info(url);
    let mut redacted = match head {
        // `user:password`: the user stays, everything after its first `:` goes; a user that no
        // URL could spell goes too, being likely a piece of the password.
        Some((prefix, user_info)) => match user_info.split_once(':') {
            Some((user, _password)) if is_plain_user(user) => format!("{prefix}{user}:{MASK}"),
            Some(_) => format!("{prefix}{MASK}"),
            None => format!("{prefix}{user_info}"),
        },
        None => String::new(),
    };
    // When the user info swallowed a `?`, what follows it may be parameters.
    let swallowed_query = head.is_some_and(|(_, user_info)| user_info.contains('?'));
    match tail.split_once('?') {
        _ if swallowed_query => redacted.push_str(&redact_query(tail)),
        Some((rest, query)) => {
            redacted.push_str(rest);
            redacted.push('?');
            redacted.push_str(&redact_query(query));
        }
        None => redacted.push_str(tail),
    }
    redacted
}

/// Splits `url` into its `scheme://` with the user info (as typed, not as any URL parser would
/// read it) and what follows from the `@` on; `(None, url)` when there is no user info.
///
/// The user info ends at the *last* `@` of the URL, wherever it is: a password holding an
/// unescaped `?`, `#`, `/` or `@` is then masked whole, at worst with part of what follows it.
/// Without `//` there is no telling a scheme from a user name (`user:secret@host`), so the user
/// info starts at the beginning. SQLite URLs name a file and have no user info.
fn split_user_info(url: &str) -> (Option<(&str, &str)>, &str) {
    if scheme_of(url).is_some_and(|scheme| scheme.eq_ignore_ascii_case("sqlite")) {
        return (None, url);
    }
    let start = url.find("://").map_or(0, |at| at + 3);
    match url[start..].rfind('@').map(|at| start + at) {
        Some(at) => (Some((&url[..start], &url[start..at])), &url[at..]),
        None => (None, url),
    }
}

/// Whether `user` is made only of what a URL's user name may hold (RFC 3986: unreserved
/// characters, sub-delimiters and `%` escapes).
fn is_plain_user(user: &str) -> bool {
    user.chars().all(|c| {
        c.is_ascii_alphanumeric()
            || matches!(
                c,
                '-' | '.'
                    | '_'
                    | '~'
                    | '%'
                    | '!'
                    | '$'
                    | '&'
                    | '\''
                    | '('
                    | ')'
                    | '*'
                    | '+'
                    | ','
                    | ';'
                    | '='
            )
    })
}

/// The secret parts of `url` as typed and percent-decoded: the password of its user info and the
/// values of its secret query parameters. A driver's error may quote any of them.
pub(crate) fn secrets_of(url: &str) -> Vec<String> {
    let (head, tail) = split_user_info(url);
    let mut secrets = Vec::new();
    if let Some((_, user_info)) = head
        && let Some((_, password)) = user_info.split_once(':')
    {
        secrets.push(password.to_owned());
    }
    let query = if head.is_some_and(|(_, user_info)| user_info.contains('?')) {
        Some(tail)
    } else {
        tail.split_once('?').map(|(_, query)| query)
    };
    if let Some(query) = query {
        for pair in query.split('&') {
            if let Some((key, value)) = pair.split_once('=')
                && SECRET_PARAMS.iter().any(|s| key.eq_ignore_ascii_case(s))
            {
                secrets.push(value.to_owned());
            }
        }
    }
    let decoded: Vec<String> = secrets.iter().filter_map(|s| percent_decode(s)).collect();
    secrets.extend(decoded);
    secrets.retain(|secret| !secret.is_empty());
    // Longest first, so that a secret containing another is masked whole.
    secrets.sort_by_key(|secret| std::cmp::Reverse(secret.len()));
    secrets.dedup();
    secrets
}

/// `text` with every secret of `url` (see [`secrets_of`]) replaced by `***`.
pub(crate) fn scrub(text: &str, url: &str) -> String {
    secrets_of(url)
        .iter()
        .fold(text.to_owned(), |text, secret| {
            text.replace(secret.as_str(), MASK)
        })
}

/// `%XX` escapes decoded, when they decode to UTF-8 and there is any; `None` otherwise.
fn percent_decode(text: &str) -> Option<String> {
    if !text.contains('%') {
        return None;
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        let hex = bytes
            .get(at + 1..at + 3)
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match (bytes[at], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                at += 3;
            }
            (byte, _) => {
                out.push(byte);
                at += 1;
            }
        }
    }
    String::from_utf8(out).ok()
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

/// Refuses a SQLite URL that names no file (`sqlite:`, `sqlite://`, `sqlite:?mode=rwc`): SQLite
/// would open a temporary database, deleted when it closes, so every run would apply every change
/// unit again, the non-transactional ones too. An in-memory database asked for by name
/// (`sqlite::memory:`, `?mode=memory`) is a choice and stays allowed.
pub(crate) fn refuse_unnamed_sqlite(url: &str) -> Result<(), StoreError> {
    if !scheme_of(url).is_some_and(|scheme| scheme.eq_ignore_ascii_case("sqlite")) {
        return Ok(());
    }
    let after_scheme = &url["sqlite:".len()..];
    let after_scheme = after_scheme.strip_prefix("//").unwrap_or(after_scheme);
    let (path, query) = after_scheme.split_once('?').unwrap_or((after_scheme, ""));
    let memory_mode = query
        .split('&')
        .any(|pair| pair.eq_ignore_ascii_case("mode=memory"));
    if !path.trim().is_empty() || memory_mode {
        return Ok(());
    }
    Err(StoreError::Unsupported(format!(
        "the SQLite URL `{}` names no database file: SQLite would open a temporary database that \
         is deleted when it closes, and every run would apply every change unit again; write \
         `sqlite://path/to/flamingock.db` (or `sqlite:flamingock.db`, relative to the working \
         directory), or `sqlite::memory:` for a database that lives only as long as the process",
        redact_url(url)
    )))
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

    /// URLs a user may type, each holding the secret `S3cr?t` in some form.
    pub(crate) const NASTY_URLS: [&str; 14] = [
        "postgres://ana:S3cr?t@127.0.0.1:1/db",
        "postgres://ana:S3cr#t@127.0.0.1:1/db",
        "postgres://ana:S3cr@t@127.0.0.1:1/db",
        "postgres://ana:S3cr/t@127.0.0.1:1/db",
        "postgres://ana:S3cr%3Ft@127.0.0.1:1/db",
        "mysql://ana:S3cr t S3cr?t@127.0.0.1:1/db",
        "mysql://ana:S3cr?tÄ€𝄞@127.0.0.1:1/db?ssl-mode=disabled",
        "mariadb://:S3cr?t@127.0.0.1:1/db",
        "postgres://ana:S3cr?t@[::1]:1/db",
        "postgres://ana:S3cr?t@[::1/db",
        "postgres//ana:S3cr?t@127.0.0.1:1/db",
        "postgres://ana:S3cr?t@",
        "postgres://127.0.0.1:1/db?password=S3cr?t",
        "postgres://ana:S3cr?t@h:1/db?x=a@b&password=S3cr?t",
    ];

    #[test]
    fn no_typed_url_leaks_its_password() {
        for url in NASTY_URLS {
            let redacted = redact_url(url);
            assert!(!redacted.contains("S3cr"), "{url} -> {redacted}");
            let scrubbed = scrub(&format!("bad url {url}, host {url}"), url);
            assert!(!scrubbed.contains("S3cr"), "{url} -> {scrubbed}");
        }
        assert_eq!(
            redact_url("postgres://ana:S3cr?t@[::1]:5432/db"),
            "postgres://ana:***@[::1]:5432/db"
        );
        assert_eq!(
            redact_url("postgres://ana:a#b/c@d@h/db?sslmode=require"),
            "postgres://ana:***@h/db?sslmode=require"
        );
        // A "user" no URL could spell is likely part of the password: masked with it.
        assert_eq!(
            redact_url("postgres://an?a:b#c@h/db"),
            "postgres://***@h/db"
        );
        assert_eq!(redact_url("postgres//u:secret@h"), "***@h");
        // No password, no user: nothing to mask.
        for url in [
            "postgres://ana@h/db",
            "postgres://h/db",
            "postgres://[::1]:5432/db",
        ] {
            assert_eq!(redact_url(url), url);
            assert!(secrets_of(url).is_empty(), "{url}");
        }
        // The decoded form is a secret too: a driver may quote it.
        assert!(secrets_of("postgres://a:S%3Fx@h/db").contains(&"S?x".to_owned()));
    }

    #[test]
    fn sqlite_urls_must_name_a_database() {
        for url in [
            "sqlite:",
            "sqlite://",
            "SQLite:",
            "sqlite:?mode=rwc",
            "sqlite://  ",
        ] {
            let err = refuse_unnamed_sqlite(url).expect_err(url).to_string();
            assert!(err.contains("sqlite://path/to/flamingock.db"), "{err}");
        }
        for url in [
            "sqlite:flamingock.db",
            "sqlite://data/a.db",
            "sqlite::memory:",
            "sqlite://?mode=memory",
            "postgres://",
        ] {
            refuse_unnamed_sqlite(url).expect(url);
        }
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
