//! Which URL the audit store is opened on: the builder's, else `FLAMINGOCK_DATABASE_URL`, else
//! sqlx's own `DATABASE_URL` (said in a log line), else a local SQLite file.

use flamingock_core::Error;

use crate::builder::{DATABASE_URL_ENV, DEFAULT_DATABASE_URL};

/// sqlx's (and most applications') variable for the application's database, used for the audit
/// store when [`DATABASE_URL_ENV`] is unset: the audit then lives beside the data it describes,
/// and units on that database commit with their audit entry.
pub const SQLX_DATABASE_URL_ENV: &str = "DATABASE_URL";

/// Where the audit store's URL came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UrlSource {
    Builder,
    FlamingockEnv,
    SqlxEnv,
    Default,
}

/// The audit store's URL: `explicit` (the builder's) if set, else the first of
/// `FLAMINGOCK_DATABASE_URL` and `DATABASE_URL` that `env` finds, else the default SQLite file.
/// A URL taken from `DATABASE_URL` is logged (password redacted), since the program never named
/// it for Flamingock.
pub(crate) fn audit_store_url(
    explicit: Option<String>,
    env: impl Fn(&str) -> Result<Option<String>, Error>,
) -> Result<(String, UrlSource), Error> {
    if let Some(url) = explicit {
        return Ok((url, UrlSource::Builder));
    }
    if let Some(url) = env(DATABASE_URL_ENV)? {
        return Ok((url, UrlSource::FlamingockEnv));
    }
    if let Some(url) = env(SQLX_DATABASE_URL_ENV)? {
        tracing::info!(
            url = %flamingock_sqlx::redact_url(&url),
            "audit store from DATABASE_URL, as FLAMINGOCK_DATABASE_URL is unset"
        );
        return Ok((url, UrlSource::SqlxEnv));
    }
    Ok((DEFAULT_DATABASE_URL.to_owned(), UrlSource::Default))
}

/// Whether `url` names a Flamingock server (`http://` or `https://`) rather than a database.
pub(crate) fn is_server_url(url: &str) -> bool {
    let lower = url.trim_start().to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

/// The audit store on the Flamingock server the URL names (the builder's, else the
/// environment's), with the builder's token or `FLAMINGOCK_TOKEN`'s; `None` when the URL names
/// a database.
#[cfg(feature = "server")]
pub(crate) fn server_store(
    explicit: &Option<String>,
    token: Option<String>,
    read_only: bool,
) -> Result<Option<std::sync::Arc<dyn flamingock_core::AuditStore>>, Error> {
    let env = crate::builder::env_var;
    let (url, _) = audit_store_url(explicit.clone(), env)?;
    if !is_server_url(&url) {
        return Ok(None);
    }
    let token = match token {
        Some(token) => token,
        None => env(flamingock_client::TOKEN_ENV)?.unwrap_or_default(),
    };
    let store = flamingock_client::HttpAuditStore::new(&url, token)?.read_only(read_only);
    Ok(Some(std::sync::Arc::new(store)))
}

/// Without the `server` feature: `None` for a database URL, an error that says how to get the
/// client for a server URL.
#[cfg(not(feature = "server"))]
pub(crate) fn server_store(
    explicit: &Option<String>,
    _token: Option<String>,
    _read_only: bool,
) -> Result<Option<std::sync::Arc<dyn flamingock_core::AuditStore>>, Error> {
    let (url, _) = audit_store_url(explicit.clone(), crate::builder::env_var)?;
    if !is_server_url(&url) {
        return Ok(None);
    }
    Err(Error::Config(format!(
        "the audit store URL {} names a Flamingock server, and this build has no client for it: enable the `server` feature of the flamingock crate (features = [\"server\"])",
        flamingock_sqlx::redact_url(&url)
    )))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    fn env<'a>(
        vars: &'a [(&'a str, &'a str)],
    ) -> impl Fn(&str) -> Result<Option<String>, Error> + 'a {
        let vars: HashMap<&str, &str> = vars.iter().copied().collect();
        move |name| Ok(vars.get(name).map(|value| (*value).to_owned()))
    }

    #[test]
    fn http_and_https_urls_name_a_server() {
        assert!(is_server_url("https://flamingock.internal/orders/prod"));
        assert!(is_server_url("HTTP://127.0.0.1:8080/orders/prod"));
        assert!(!is_server_url("sqlite://flamingock.db"));
        assert!(!is_server_url("postgres://db/app"));
    }

    #[test]
    fn the_builder_then_flamingock_database_url_then_database_url_then_the_default() {
        let both = [
            (DATABASE_URL_ENV, "sqlite://flamingock-env.db"),
            (SQLX_DATABASE_URL_ENV, "sqlite://sqlx-env.db"),
        ];
        assert_eq!(
            audit_store_url(Some("sqlite://builder.db".into()), env(&both)).unwrap(),
            ("sqlite://builder.db".to_owned(), UrlSource::Builder)
        );
        assert_eq!(
            audit_store_url(None, env(&both)).unwrap(),
            (
                "sqlite://flamingock-env.db".to_owned(),
                UrlSource::FlamingockEnv
            )
        );
        assert_eq!(
            audit_store_url(None, env(&both[1..])).unwrap(),
            ("sqlite://sqlx-env.db".to_owned(), UrlSource::SqlxEnv)
        );
        assert_eq!(
            audit_store_url(None, env(&[])).unwrap(),
            (DEFAULT_DATABASE_URL.to_owned(), UrlSource::Default)
        );
    }

    /// Collects what the `fmt` subscriber writes.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .expect("not poisoned")
                .extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn logged_while(f: impl FnOnce()) -> String {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, f);
        String::from_utf8(captured.0.lock().expect("not poisoned").clone()).expect("utf-8 log")
    }

    #[test]
    fn a_url_from_database_url_is_logged_without_its_password() {
        let vars = [(
            SQLX_DATABASE_URL_ENV,
            "postgres://app:secret@db.internal/app",
        )];
        let log = logged_while(|| {
            audit_store_url(None, env(&vars)).unwrap();
        });
        assert!(
            log.contains("audit store from DATABASE_URL, as FLAMINGOCK_DATABASE_URL is unset"),
            "{log}"
        );
        assert!(log.contains("db.internal/app"), "{log}");
        assert!(!log.contains("secret"), "{log}");
    }

    #[test]
    fn a_url_from_flamingock_database_url_is_not_logged() {
        let vars = [
            (DATABASE_URL_ENV, "sqlite://flamingock-env.db"),
            (SQLX_DATABASE_URL_ENV, "sqlite://sqlx-env.db"),
        ];
        let log = logged_while(|| {
            audit_store_url(None, env(&vars)).unwrap();
        });
        assert!(!log.contains("DATABASE_URL"), "{log}");
    }
}
