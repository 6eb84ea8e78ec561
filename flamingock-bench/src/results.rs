//! The samples a run collects and the statistics the report shows: medians of the timed parts,
//! the highest peak RSS, and ratios between tools.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::workload::{Database, Mode, Tool};

/// One child process's measurement.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub elapsed: Duration,
    pub peak_rss_kib: Option<u64>,
}

/// What a series of samples is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key {
    /// Whether commits waited for the disk (`false`: SQLite on tmpfs, PostgreSQL
    /// `synchronous_commit = off`, MariaDB `innodb_flush_log_at_trx_commit = 2`, so that fsync
    /// latency does not drown the tools' own costs).
    pub durable: bool,
    pub database: Database,
    pub mode: Mode,
    pub n: usize,
    pub tool: Tool,
}

/// The fleet measurement: the same N pending, one process alone against `size` together.
#[derive(Debug, Clone, PartialEq)]
pub enum Fleet {
    /// Asked for but impossible, and why.
    Skipped(String),
    /// Wall times from spawning the first process to the last one's exit; the RSS is the highest
    /// of any one process.
    Measured {
        n: usize,
        size: usize,
        alone: Vec<Sample>,
        together: Vec<Sample>,
    },
}

/// The history row: Flamingock's warm start at the same N on two databases that differ only in
/// how long their audit is, measured in turns.
#[derive(Debug, Clone, PartialEq)]
pub struct History {
    pub n: usize,
    /// Audit rows of the short history (one per unit) and of the long one.
    pub short_rows: usize,
    pub long_rows: usize,
    pub short: Vec<Sample>,
    pub long: Vec<Sample>,
}

impl History {
    /// The long history's median warm start over the short one's.
    pub fn ratio(&self) -> Option<f64> {
        ratio(median(&self.long)?, median(&self.short)?)
    }
}

/// The load run: many services' instances starting together against one server.
#[derive(Debug, Clone, PartialEq)]
pub struct Load {
    pub services: usize,
    pub instances: usize,
    /// Units per service.
    pub n: usize,
    /// From spawning the first instance to the last one's exit.
    pub wall: Duration,
    /// Every request's latency in the server, in microseconds, sorted.
    pub latencies_us: Vec<u32>,
    /// The server's peak RSS over the run (its start included).
    pub server_peak_rss_kib: Option<u64>,
    /// The highest peak RSS of one instance.
    pub instance_peak_rss_kib: Option<u64>,
}

/// Everything one benchmark run measured.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Results {
    pub series: BTreeMap<Key, Vec<Sample>>,
    /// The fleet start on each server database measured.
    pub fleets: BTreeMap<Database, Fleet>,
    /// The history row on each database measured.
    pub history: BTreeMap<Database, History>,
    /// `None` when not asked for (or PostgreSQL not among the databases).
    pub load: Option<Load>,
    /// The compile-time measurement; `None` when not asked for (`--compile-sizes none`).
    pub compile: Option<crate::compile::CompileResults>,
}

impl Results {
    /// Adds one sample to its series.
    pub fn add(&mut self, key: Key, sample: Sample) {
        self.series.entry(key).or_default().push(sample);
    }

    /// The median timed part of a series, if it was measured.
    pub fn median(&self, key: Key) -> Option<Duration> {
        self.series.get(&key).and_then(|samples| median(samples))
    }

    /// `key`'s median over `other_tool`'s at the same database, mode and N.
    pub fn ratio_to(&self, key: Key, other_tool: Tool) -> Option<f64> {
        let other = Key {
            tool: other_tool,
            ..key
        };
        ratio(self.median(key)?, self.median(other)?)
    }

    /// The Ns measured for a database and mode, ascending.
    pub fn sizes(&self, durable: bool, database: Database, mode: Mode) -> Vec<usize> {
        let mut sizes: Vec<usize> = self
            .series
            .keys()
            .filter(|k| k.durable == durable && k.database == database && k.mode == mode)
            .map(|k| k.n)
            .collect();
        sizes.dedup();
        sizes
    }

    /// The databases measured, in order.
    pub fn databases(&self) -> Vec<Database> {
        let mut databases: Vec<Database> = self.series.keys().map(|k| k.database).collect();
        databases.sort_unstable();
        databases.dedup();
        databases
    }
}

/// The median duration (the mean of the middle two for an even count).
pub fn median(samples: &[Sample]) -> Option<Duration> {
    let mut times: Vec<Duration> = samples.iter().map(|s| s.elapsed).collect();
    times.sort_unstable();
    let middle = times.len() / 2;
    match times.len() {
        0 => None,
        len if len % 2 == 1 => Some(times[middle]),
        _ => Some((times[middle - 1] + times[middle]) / 2),
    }
}

/// The highest peak RSS among the samples, in KiB.
pub fn max_rss_kib(samples: &[Sample]) -> Option<u64> {
    samples.iter().filter_map(|s| s.peak_rss_kib).max()
}

/// `a / b`, or `None` when `b` is zero.
pub fn ratio(a: Duration, b: Duration) -> Option<f64> {
    (!b.is_zero()).then(|| a.as_secs_f64() / b.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(ms: u64) -> Sample {
        Sample {
            elapsed: Duration::from_millis(ms),
            peak_rss_kib: Some(ms * 10),
        }
    }

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(&[]), None);
        assert_eq!(
            median(&[sample(9), sample(1), sample(5)]),
            Some(Duration::from_millis(5))
        );
        assert_eq!(
            median(&[sample(4), sample(1), sample(2), sample(100)]),
            Some(Duration::from_millis(3))
        );
        assert_eq!(
            max_rss_kib(&[sample(4), sample(100), sample(2)]),
            Some(1000)
        );
    }

    #[test]
    fn ratios_compare_tools_at_the_same_point() {
        let mut results = Results::default();
        let key = |tool| Key {
            durable: false,
            database: Database::Sqlite,
            mode: Mode::Cold,
            n: 10,
            tool,
        };
        results.add(key(Tool::Floor), sample(10));
        results.add(key(Tool::Flamingock), sample(11));
        results.add(key(Tool::Flamingock), sample(12));
        results.add(key(Tool::Flamingock), sample(13));
        let ratio = results
            .ratio_to(key(Tool::Flamingock), Tool::Floor)
            .expect("both measured");
        assert!((ratio - 1.2).abs() < 1e-9, "{ratio}");
        assert_eq!(results.ratio_to(key(Tool::Refinery), Tool::Floor), None);
        assert_eq!(results.sizes(false, Database::Sqlite, Mode::Cold), vec![10]);
        assert!(results.sizes(true, Database::Sqlite, Mode::Cold).is_empty());
        assert_eq!(results.databases(), vec![Database::Sqlite]);
    }
}
