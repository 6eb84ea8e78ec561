//! The distributed lock's settings (docs/architecture.md#lock): from the builder first, then the environment,
//! then the defaults (lease 60 s, give up after 180 s), each checked before anything connects.

use std::time::Duration;

use flamingock_core::Error;
use flamingock_core::lock::LockOptions;

/// The environment variable holding the lease, in (decimal) seconds: `60`, `1.5`.
pub const LOCK_LEASE_ENV: &str = "FLAMINGOCK_LOCK_LEASE_SECS";
/// The environment variable holding how long to wait for the lock, in (decimal) seconds.
pub const LOCK_WAIT_ENV: &str = "FLAMINGOCK_LOCK_WAIT_SECS";
/// The environment variable holding the lock table's name.
pub const LOCK_TABLE_ENV: &str = "FLAMINGOCK_LOCK_TABLE";

/// The shortest lease accepted: shorter ones could not be kept alive by a heartbeat at a third of
/// them against a database a few milliseconds away.
pub const MIN_LOCK_LEASE: Duration = Duration::from_millis(100);
/// The longest lease accepted: a crashed holder blocks every other instance for this long.
pub const MAX_LOCK_LEASE: Duration = Duration::from_secs(24 * 60 * 60);
/// The longest wait accepted.
pub const MAX_LOCK_WAIT: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// The lock options a run uses: each value from the builder if set, else from its environment
/// variable if set, else the default.
pub(crate) fn lock_options(
    key: Option<String>,
    lease: Option<Duration>,
    wait: Option<Duration>,
    env: impl Fn(&str) -> Result<Option<String>, Error>,
) -> Result<LockOptions, Error> {
    let defaults = LockOptions::default();
    let lease = match lease {
        Some(lease) => lease,
        None => match env(LOCK_LEASE_ENV)? {
            Some(text) => parse_seconds(LOCK_LEASE_ENV, &text)?,
            None => defaults.lease,
        },
    };
    let wait = match wait {
        Some(wait) => wait,
        None => match env(LOCK_WAIT_ENV)? {
            Some(text) => parse_seconds(LOCK_WAIT_ENV, &text)?,
            None => defaults.wait,
        },
    };
    if !(MIN_LOCK_LEASE..=MAX_LOCK_LEASE).contains(&lease) {
        return Err(Error::Config(format!(
            "the lock lease must be between {MIN_LOCK_LEASE:?} and {MAX_LOCK_LEASE:?}, not {lease:?}"
        )));
    }
    if wait > MAX_LOCK_WAIT {
        return Err(Error::Config(format!(
            "the lock wait must be at most {MAX_LOCK_WAIT:?}, not {wait:?}"
        )));
    }
    let key = key.unwrap_or(defaults.key);
    if key.is_empty() || key.len() > 255 {
        return Err(Error::Config(format!(
            "the lock key must be 1 to 255 bytes long, not {} (`{key}`)",
            key.len()
        )));
    }
    Ok(LockOptions {
        key,
        lease,
        wait,
        ..defaults
    })
}

/// Parses a non-negative number of seconds (`60`, `1.5`, `0.25`).
fn parse_seconds(variable: &str, text: &str) -> Result<Duration, Error> {
    let invalid = || {
        Error::Config(format!(
            "{variable} must be a number of seconds such as `60` or `1.5`, not `{text}`"
        ))
    };
    let seconds: f64 = text.trim().parse().map_err(|_| invalid())?;
    if !seconds.is_finite() || seconds < 0.0 {
        return Err(invalid());
    }
    Duration::try_from_secs_f64(seconds).map_err(|_| invalid())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_env<'a>(
        vars: &'a [(&'a str, &'a str)],
    ) -> impl Fn(&str) -> Result<Option<String>, Error> + use<'a> {
        move |name| {
            Ok(vars
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned()))
        }
    }

    #[test]
    fn defaults_are_a_minute_and_three() {
        let options = lock_options(None, None, None, from_env(&[])).unwrap();
        assert_eq!(options, LockOptions::default());
        assert_eq!(options.lease, Duration::from_secs(60));
        assert_eq!(options.wait, Duration::from_secs(180));
    }

    #[test]
    fn the_environment_takes_decimal_seconds() {
        let env = [(LOCK_LEASE_ENV, "1.5"), (LOCK_WAIT_ENV, " 0 ")];
        let options = lock_options(None, None, None, from_env(&env)).unwrap();
        assert_eq!(options.lease, Duration::from_millis(1500));
        assert_eq!(options.wait, Duration::ZERO);
    }

    #[test]
    fn the_builder_wins_over_the_environment() {
        let env = [(LOCK_LEASE_ENV, "not a number")];
        let options = lock_options(
            Some("billing".into()),
            Some(Duration::from_secs(5)),
            Some(Duration::from_secs(9)),
            from_env(&env),
        )
        .unwrap();
        assert_eq!(options.key, "billing");
        assert_eq!(options.lease, Duration::from_secs(5));
        assert_eq!(options.wait, Duration::from_secs(9));
    }

    #[test]
    fn bad_values_are_refused_naming_the_variable() {
        for (variable, value) in [
            (LOCK_LEASE_ENV, "soon"),
            (LOCK_LEASE_ENV, "-1"),
            (LOCK_LEASE_ENV, "NaN"),
            (LOCK_LEASE_ENV, "inf"),
            (LOCK_WAIT_ENV, "1e300"),
            (LOCK_WAIT_ENV, "3s"),
        ] {
            let env = [(variable, value)];
            let error = lock_options(None, None, None, from_env(&env)).unwrap_err();
            let message = error.to_string();
            assert!(matches!(error, Error::Config(_)), "{message}");
            assert!(
                message.contains(variable) && message.contains(value),
                "{message}"
            );
        }
    }

    #[test]
    fn leases_and_keys_out_of_range_are_refused() {
        let short = lock_options(None, Some(Duration::from_millis(10)), None, from_env(&[]));
        assert!(short.unwrap_err().to_string().contains("lease"));
        let env = [(LOCK_LEASE_ENV, "0")];
        assert!(lock_options(None, None, None, from_env(&env)).is_err());
        let long = lock_options(None, Some(Duration::from_secs(90_000)), None, from_env(&[]));
        assert!(long.is_err());
        let empty = lock_options(Some(String::new()), None, None, from_env(&[]));
        assert!(empty.unwrap_err().to_string().contains("lock key"));
    }
}
