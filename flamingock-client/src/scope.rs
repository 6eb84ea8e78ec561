//! Which service and environment a store speaks for, and the names the server accepts for them.

use std::fmt;

/// The longest service name the server accepts.
pub const MAX_SERVICE_LEN: usize = 30;
/// The longest environment name the server accepts.
pub const MAX_ENVIRONMENT_LEN: usize = 20;

/// A service and one of its environments: the unit of scope of tokens, audit tables and locks.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    service: String,
    environment: String,
}

/// A service or environment name the server refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{what} name {name:?} is not valid: {reason}; use lowercase letters and digits in words joined by single hyphens, at most {max} characters (e.g. \"orders\", \"prod-eu\")"
)]
pub struct InvalidName {
    /// `"service"` or `"environment"`.
    pub what: &'static str,
    /// The name as given.
    pub name: String,
    /// What is wrong with it.
    pub reason: &'static str,
    /// The longest name allowed.
    pub max: usize,
}

/// Checks a service or environment name: words of `a-z`/`0-9` joined by single `-`, at most
/// `max` characters, so that it maps to a distinct SQL identifier.
fn check(what: &'static str, name: &str, max: usize) -> Result<(), InvalidName> {
    let invalid = |reason| InvalidName {
        what,
        name: name.to_owned(),
        reason,
        max,
    };
    if name.is_empty() {
        return Err(invalid("it is empty"));
    }
    if name.len() > max {
        return Err(invalid("it is too long"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(invalid("it holds a character other than a-z, 0-9 and -"));
    }
    if name.starts_with('-') || name.ends_with('-') || name.contains("--") {
        return Err(invalid("a hyphen must stand between two letters or digits"));
    }
    Ok(())
}

impl Scope {
    /// A scope, both names checked.
    ///
    /// ```
    /// use flamingock_client::Scope;
    /// assert!(Scope::new("orders", "prod-eu").is_ok());
    /// assert!(Scope::new("Orders", "prod").is_err());
    /// assert!(Scope::new("orders", "prod--eu").is_err());
    /// ```
    pub fn new(service: &str, environment: &str) -> Result<Self, InvalidName> {
        check("service", service, MAX_SERVICE_LEN)?;
        check("environment", environment, MAX_ENVIRONMENT_LEN)?;
        Ok(Self {
            service: service.to_owned(),
            environment: environment.to_owned(),
        })
    }

    /// The service.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The environment.
    pub fn environment(&self) -> &str {
        &self.environment
    }

    /// The path of this scope's API under `/v1`.
    pub fn path(&self) -> String {
        format!(
            "services/{}/environments/{}",
            self.service, self.environment
        )
    }

    /// The prefix of this scope's tables: `fk_<service>__<environment>` with `-` as `_`. Names
    /// never hold `__` themselves, so two scopes never share a prefix.
    pub fn table_prefix(&self) -> String {
        format!(
            "fk_{}__{}",
            self.service.replace('-', "_"),
            self.environment.replace('-', "_")
        )
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "service {} environment {}",
            self.service, self.environment
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_scopes_have_distinct_table_prefixes() {
        let a = Scope::new("a-b", "c").unwrap();
        let b = Scope::new("a", "b-c").unwrap();
        assert_ne!(a.table_prefix(), b.table_prefix());
        assert_eq!(a.table_prefix(), "fk_a_b__c");
    }

    #[test]
    fn names_that_would_not_be_identifiers_are_refused_with_the_rule() {
        for bad in [
            "",
            "-a",
            "a-",
            "a--b",
            "a_b",
            "A",
            "a b",
            "é",
            &"x".repeat(31),
        ] {
            let error = Scope::new(bad, "prod").unwrap_err();
            assert!(error.to_string().contains("lowercase letters"), "{error}");
        }
        assert!(Scope::new("orders", &"x".repeat(21)).is_err());
        assert!(Scope::new(&"x".repeat(30), &"y".repeat(20)).is_ok());
    }
}
