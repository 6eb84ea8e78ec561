//! A timeline of one measurement, for finding where its time goes: with
//! `FLAMINGOCK_BENCH_TRACE=1` a child prints every SQL statement sqlx runs (with its duration)
//! and every Flamingock span as it closes (with its busy and idle time), stamped with the time
//! since the process started. `flamingock-bench profile ...` sets it up.

use tracing::Level;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::fmt::time::{SystemTime, Uptime};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The environment variable that turns the timeline on in a child.
pub const TRACE_ENV: &str = "FLAMINGOCK_BENCH_TRACE";

/// The value of [`TRACE_ENV`] asking for wall-clock stamps (to line up several processes).
pub const WALL_CLOCK: &str = "wall";

/// Installs the timeline subscriber when [`TRACE_ENV`] is set; otherwise nothing is installed,
/// as in an application without a subscriber, so that measurements pay for no logging.
pub fn install_if_asked() {
    if std::env::var_os(TRACE_ENV).is_none() {
        return;
    }
    let targets = Targets::new()
        .with_target("sqlx::query", Level::DEBUG)
        .with_target("flamingock", Level::DEBUG)
        .with_target("flamingock_core", Level::DEBUG)
        .with_target("flamingock_sqlx", Level::DEBUG);
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_span_events(FmtSpan::CLOSE);
    // Another subscriber already installed only means this one is not needed.
    let _ = if std::env::var(TRACE_ENV).is_ok_and(|value| value == WALL_CLOCK) {
        // Several processes (a fleet): stamps they share; the run span's runner id tells them apart.
        let layer = layer.with_timer(SystemTime).with_thread_names(false);
        tracing_subscriber::registry()
            .with(layer)
            .with(targets)
            .try_init()
    } else {
        tracing_subscriber::registry()
            .with(layer.with_timer(Uptime::default()))
            .with(targets)
            .try_init()
    };
}
