//! Named failure points at every step of each strategy, for crash tests.
//!
//! Compiled in only with the `failpoints` cargo feature, which only tests enable: in a production
//! build [`failpoint!`](crate::failpoint) expands to nothing. With the feature, a point whose name
//! equals the `FLAMINGOCK_FAILPOINT` environment variable aborts the process on the spot (no
//! destructor, no rollback, no release: what a SIGKILL or a power cut leaves behind).

/// Every failure point the engine has, in the order a run meets them (per strategy).
pub const POINTS: &[&str] = &[
    "shared.before_execute",
    "shared.after_execute",
    "shared.after_commit",
    "shared.after_rollback",
    "separate.after_started",
    "separate.after_execute",
    "separate.after_commit",
    "separate.after_applied",
    "separate.after_rollback",
    "non_tx.after_started",
    "non_tx.after_execute",
    "non_tx.after_applied",
    "non_tx.after_failed",
    "non_tx.after_rollback",
];

/// The environment variable naming the point to crash at.
pub const ENV: &str = "FLAMINGOCK_FAILPOINT";

/// Aborts the process if `name` is the armed failure point.
#[cfg(feature = "failpoints")]
pub fn hit(name: &'static str) {
    debug_assert!(POINTS.contains(&name), "unknown failure point {name}");
    if std::env::var(ENV).is_ok_and(|armed| armed == name) {
        eprintln!("flamingock: failure point {name} reached: aborting");
        std::process::abort();
    }
}

/// Marks a failure point; nothing at all without the `failpoints` feature.
#[macro_export]
#[doc(hidden)]
macro_rules! failpoint {
    ($name:literal) => {
        #[cfg(feature = "failpoints")]
        $crate::failpoint::hit($name);
    };
}

#[cfg(test)]
mod tests {
    use super::POINTS;

    /// The list above and the points in the engine cannot drift apart.
    #[test]
    fn every_listed_point_is_in_the_engine_and_no_other() {
        let source = include_str!("engine/apply.rs");
        let used: Vec<&str> = source
            .split("failpoint!(\"")
            .skip(1)
            .map(|rest| rest.split('"').next().expect("a closing quote"))
            .collect();
        let mut sorted_used = used.clone();
        sorted_used.sort_unstable();
        let mut listed = POINTS.to_vec();
        listed.sort_unstable();
        assert_eq!(sorted_used, listed);
    }
}
