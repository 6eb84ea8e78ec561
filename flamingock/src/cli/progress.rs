//! Logs and the progress bar on stderr. Logs are `tracing` events at the level `-v` asks for; the
//! bar follows the engine's per-unit spans (`flamingock.unit` for apply, `flamingock.rollback`
//! for undo), so the engine needs no callbacks. The bar is drawn only when stderr is a terminal.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// The spans the bar counts: one per unit applied or rolled back.
const UNIT_SPANS: [&str; 2] = ["flamingock.unit", "flamingock.rollback"];
const BAR_WIDTH: usize = 24;

/// A progress bar over a known number of units; does nothing until [`start`](Self::start).
#[derive(Clone, Default)]
pub struct Progress {
    state: Arc<Mutex<Bar>>,
}

#[derive(Default)]
struct Bar {
    active: bool,
    total: usize,
    done: usize,
    /// Unit spans opened so far: units run one after the other, so each new one means the
    /// previous ones are done (a span may close late, when a task that captured it ends).
    started: usize,
    /// Unit spans closed so far.
    closed: usize,
    current: String,
    verb: &'static str,
}

impl Progress {
    /// Shows the bar for `total` units (`verb`: "applying", "rolling back") when stderr is a
    /// terminal and there is something to do.
    pub fn start(&self, total: usize, verb: &'static str) {
        if total == 0 || !std::io::stderr().is_terminal() {
            return;
        }
        let mut bar = self.bar();
        *bar = Bar {
            active: true,
            total,
            done: 0,
            started: 0,
            closed: 0,
            current: String::new(),
            verb,
        };
        draw(&bar);
    }

    /// Clears the bar, leaving the terminal as it was.
    pub fn finish(&self) {
        let mut bar = self.bar();
        if bar.active {
            bar.done = bar.started.min(bar.total);
            bar.current = String::new();
            draw(&bar);
            bar.active = false;
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
        }
    }

    fn bar(&self) -> std::sync::MutexGuard<'_, Bar> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn draw(bar: &Bar) {
    let filled = (bar.done * BAR_WIDTH).checked_div(bar.total).unwrap_or(0);
    let _ = write!(
        std::io::stderr(),
        "\r\x1b[2K[{}{}] {}/{} {} {}",
        "#".repeat(filled),
        "-".repeat(BAR_WIDTH - filled.min(BAR_WIDTH)),
        bar.done,
        bar.total,
        bar.verb,
        bar.current
    );
}

/// Follows unit spans: a new one names the unit being worked on and counts the ones before it
/// as done; a closed one advances the bar too.
struct ProgressLayer(Progress);

struct ChangeId(Option<String>);

impl Visit for ChangeId {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "change_id" {
            self.0 = Some(value.to_owned());
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "change_id" {
            self.0 = Some(format!("{value:?}").trim_matches('"').to_owned());
        }
    }
}

impl<S> Layer<S> for ProgressLayer
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, _id: &Id, _ctx: Context<'_, S>) {
        if !UNIT_SPANS.contains(&attrs.metadata().name()) {
            return;
        }
        let mut bar = self.0.bar();
        if !bar.active {
            return;
        }
        let mut change_id = ChangeId(None);
        attrs.record(&mut change_id);
        bar.current = change_id.0.unwrap_or_default();
        bar.done = bar.done.max(bar.started).min(bar.total);
        bar.started += 1;
        draw(&bar);
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        if !UNIT_SPANS.contains(&span.metadata().name()) {
            return;
        }
        let mut bar = self.0.bar();
        if !bar.active {
            return;
        }
        bar.closed += 1;
        bar.done = bar.done.max(bar.closed).min(bar.total);
        draw(&bar);
    }
}

/// Installs the logger (warnings by default; `-v` info, `-vv` debug) and the progress layer for
/// this process. Returns the bar's handle.
pub fn init(verbose: u8) -> Progress {
    let progress = Progress::default();
    let level = match verbose {
        0 => LevelFilter::WARN,
        1 => LevelFilter::INFO,
        _ => LevelFilter::DEBUG,
    };
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(LogWriter(progress.clone()))
        .with_ansi(false)
        .with_target(false)
        .with_filter(level);
    let subscriber = tracing_subscriber::registry()
        .with(logs)
        .with(ProgressLayer(progress.clone()));
    // A program that installed its own subscriber keeps it; the bar then stays off.
    let _ = tracing::subscriber::set_global_default(subscriber);
    progress
}

/// Log lines go to stderr above the bar: the bar's line is cleared first and redrawn after.
#[derive(Clone)]
struct LogWriter(Progress);

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogLine;
    fn make_writer(&'a self) -> Self::Writer {
        LogLine(self.0.clone(), Vec::new())
    }
}

/// One log line, written whole when dropped.
struct LogLine(Progress, Vec<u8>);

impl Write for LogLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.1.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogLine {
    fn drop(&mut self) {
        let bar = self.0.bar();
        let mut stderr = std::io::stderr().lock();
        if bar.active {
            let _ = write!(stderr, "\r\x1b[2K");
        }
        let _ = stderr.write_all(&self.1);
        if bar.active {
            draw(&bar);
        }
    }
}
