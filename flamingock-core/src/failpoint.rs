//! Named failure points at every step of each strategy, for crash tests.
//!
//! Compiled in only with the `failpoints` cargo feature, which only tests enable: in a production
//! build `failpoint!` expands to nothing. With the feature, a point whose name
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
    "undo.after_rollback_started",
    "undo.after_rollback",
    "summary.before_write",
];

/// The failure points a store hits through [`reached`] (a driver crate's own features cannot
/// switch this crate's `failpoint!`).
pub const STORE_POINTS: &[&str] = &["summary.before_commit"];

/// Aborts the process if `name` is the armed failure point; nothing at all without this crate's
/// `failpoints` feature. For the points of [`STORE_POINTS`].
pub fn reached(name: &'static str) {
    #[cfg(feature = "failpoints")]
    {
        debug_assert!(
            STORE_POINTS.contains(&name),
            "unknown store failure point {name}"
        );
        if std::env::var(ENV).is_ok_and(|armed| armed == name) {
            eprintln!("flamingock: failure point {name} reached: aborting");
            std::process::abort();
        }
    }
    let _ = name;
}

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

/// The environment variable naming the write whose reply is lost (see [`reply_lost`]).
pub const LOSE_REPLY_ENV: &str = "FLAMINGOCK_LOSE_REPLY";

/// Set to any value, every attempt to find out a lost reply's outcome fails too (the store seems
/// unreachable), so the engine cannot tell.
pub const BLIND_ENV: &str = "FLAMINGOCK_LOSE_REPLY_BLIND";

/// Every write whose reply a test can lose: the write happens, then reports an error.
pub const REPLY_POINTS: &[&str] = &[
    "shared.commit",
    "separate.commit",
    "separate.applied",
    "non_tx.applied",
    "undo.shared.commit",
    "undo.separate.commit",
    "undo.rolled_back",
    "fix.recorded",
];

/// Whether the write `name` just made should report an error as if its reply was lost: once per
/// process, when `name` equals [`LOSE_REPLY_ENV`]. Always `false` without the feature.
pub fn reply_lost(name: &'static str) -> bool {
    #[cfg(feature = "failpoints")]
    {
        use std::sync::atomic::{AtomicBool, Ordering};
        static FIRED: AtomicBool = AtomicBool::new(false);
        debug_assert!(REPLY_POINTS.contains(&name), "unknown reply point {name}");
        if std::env::var(LOSE_REPLY_ENV).is_ok_and(|armed| armed == name)
            && !FIRED.swap(true, Ordering::SeqCst)
        {
            eprintln!("flamingock: reply of {name} lost (failure point)");
            return true;
        }
    }
    let _ = name;
    false
}

/// Whether finding out a lost reply's outcome must fail (see [`BLIND_ENV`]). Always `false`
/// without the feature.
pub fn blind() -> bool {
    cfg!(feature = "failpoints") && std::env::var_os(BLIND_ENV).is_some()
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
        let source = [
            include_str!("engine/apply.rs"),
            include_str!("engine/undo.rs"),
            include_str!("engine/warm.rs"),
        ]
        .concat();
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
