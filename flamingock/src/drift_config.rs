//! What a run does on drift (docs/drift.md): from the builder first, then `FLAMINGOCK_ON_DRIFT`,
//! then the default (stop), checked before anything connects.

use flamingock_core::Error;
use flamingock_core::engine::{DriftPolicy, ON_DRIFT_ENV};

/// The builder's policy if set, else the environment's, else [`DriftPolicy::Stop`]. A value the
/// environment gives that is neither `stop` nor `warn` is refused, naming the variable.
pub(crate) fn drift_policy(
    builder: Option<DriftPolicy>,
    env: impl Fn(&str) -> Result<Option<String>, Error>,
) -> Result<DriftPolicy, Error> {
    if let Some(policy) = builder {
        return Ok(policy);
    }
    match env(ON_DRIFT_ENV)? {
        None => Ok(DriftPolicy::default()),
        Some(text) => DriftPolicy::parse(&text).ok_or_else(|| {
            Error::Config(format!(
                "{ON_DRIFT_ENV} must be `stop` or `warn`, not `{}`",
                text.escape_debug()
            ))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(value: Option<&'static str>) -> impl Fn(&str) -> Result<Option<String>, Error> {
        move |name| {
            assert_eq!(name, ON_DRIFT_ENV);
            Ok(value.map(str::to_owned))
        }
    }

    #[test]
    fn the_builder_comes_first_then_the_environment_then_stop() {
        let policy = |builder, value| drift_policy(builder, env(value)).unwrap();
        assert_eq!(policy(None, None), DriftPolicy::Stop);
        assert_eq!(policy(None, Some("warn")), DriftPolicy::Warn);
        assert_eq!(policy(None, Some("Stop")), DriftPolicy::Stop);
        assert_eq!(
            policy(Some(DriftPolicy::Stop), Some("warn")),
            DriftPolicy::Stop
        );
        assert_eq!(policy(Some(DriftPolicy::Warn), None), DriftPolicy::Warn);
    }

    #[test]
    fn another_value_is_refused_naming_the_variable() {
        let error = drift_policy(None, env(Some("ignore"))).unwrap_err();
        assert!(matches!(error, Error::Config(_)), "{error}");
        assert_eq!(
            error.to_string(),
            "configuration: FLAMINGOCK_ON_DRIFT must be `stop` or `warn`, not `ignore`"
        );
    }
}
