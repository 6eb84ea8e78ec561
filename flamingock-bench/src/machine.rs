//! What the benchmark ran on, for the report's header: date, CPU, cores, memory, OS, build and
//! database versions. Every field is best effort; what cannot be read is left out.

use std::process::Command;

use crate::fresh::MariadbCommits;

/// The machine and software a run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Machine {
    /// UTC, to the minute.
    pub date: String,
    pub cpu: Option<String>,
    pub cores: Option<usize>,
    pub memory_gib: Option<f64>,
    pub os: Option<String>,
    pub kernel: Option<String>,
    pub rustc: Option<String>,
    /// `release` or `debug`.
    pub profile: &'static str,
    /// The SQLite library every tool links (one copy: see the crate's Cargo.toml).
    pub sqlite: String,
    pub postgres: Option<String>,
    /// The MariaDB server's version and its own commit settings (the durable pass's).
    pub mariadb: Option<(String, MariadbCommits)>,
}

impl Machine {
    /// Reads the machine's description now.
    pub fn describe(
        postgres: Option<String>,
        mariadb: Option<(String, MariadbCommits)>,
    ) -> Machine {
        Machine {
            date: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
            cpu: read("/proc/cpuinfo").and_then(|text| field(&text, "model name")),
            cores: std::thread::available_parallelism().ok().map(usize::from),
            memory_gib: read("/proc/meminfo")
                .and_then(|text| field(&text, "MemTotal"))
                .and_then(|kib| kib.trim_end_matches("kB").trim().parse::<f64>().ok())
                .map(|kib| kib / (1024.0 * 1024.0)),
            os: read("/etc/os-release").and_then(|text| {
                text.lines()
                    .find_map(|line| line.strip_prefix("PRETTY_NAME="))
                    .map(|name| name.trim_matches('"').to_owned())
            }),
            kernel: read("/proc/sys/kernel/osrelease").map(|text| text.trim().to_owned()),
            rustc: Command::new("rustc")
                .arg("--version")
                .output()
                .ok()
                .filter(|output| output.status.success())
                .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned()),
            profile: if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            },
            sqlite: rusqlite::version().to_owned(),
            postgres,
            mariadb,
        }
    }

    /// One line for the report: `AMD EPYC, 2 cores, 23.5 GiB, Debian …, Linux 6.1`.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        parts.extend(self.cpu.clone());
        parts.extend(self.cores.map(|cores| format!("{cores} cores")));
        parts.extend(self.memory_gib.map(|gib| format!("{gib:.1} GiB memory")));
        parts.extend(self.os.clone());
        parts.extend(self.kernel.as_ref().map(|kernel| format!("Linux {kernel}")));
        if parts.is_empty() {
            "unknown machine".to_owned()
        } else {
            parts.join(", ")
        }
    }
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// The value of the first `name : value` line.
fn field(text: &str, name: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key.trim() == name).then(|| value.trim().to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_read_by_name() {
        let text = "processor\t: 0\nmodel name\t: AMD EPYC\nMemTotal:  100 kB\n";
        assert_eq!(field(text, "model name").as_deref(), Some("AMD EPYC"));
        assert_eq!(field(text, "MemTotal").as_deref(), Some("100 kB"));
        assert_eq!(field(text, "flags"), None);
    }

    #[test]
    fn the_summary_names_what_is_known() {
        let machine = Machine {
            date: "2026-01-01 00:00 UTC".into(),
            cpu: Some("AMD EPYC".into()),
            cores: Some(2),
            memory_gib: None,
            os: None,
            kernel: Some("6.1".into()),
            rustc: None,
            profile: "release",
            sqlite: "3.50.0".into(),
            postgres: None,
            mariadb: None,
        };
        assert_eq!(machine.summary(), "AMD EPYC, 2 cores, Linux 6.1");
    }
}
