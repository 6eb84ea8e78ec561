//! Printing results: aligned tables for people, CSV and JSON for scripts.

use std::fmt::Write as _;

use serde::Serialize;

use super::Failure;

/// Rows of text cells under a header: printed as aligned columns or as CSV.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    pub headers: Vec<&'static str>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// An empty table with these column names.
    pub fn new(headers: &[&'static str]) -> Self {
        Self {
            headers: headers.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Adds a row (as many cells as headers).
    pub fn push(&mut self, row: Vec<String>) {
        debug_assert_eq!(row.len(), self.headers.len());
        self.rows.push(row);
    }

    /// Aligned columns, a rule under the header, no trailing spaces; cells are one line, long
    /// ones cut with `…` at `max_width` characters.
    pub fn to_text(&self, max_width: usize) -> String {
        let cell = |text: &str| -> String {
            let line = text.lines().next().unwrap_or_default();
            let cut = line.chars().count() > max_width || text.lines().nth(1).is_some();
            if cut {
                let kept: String = line.chars().take(max_width.saturating_sub(1)).collect();
                format!("{kept}…")
            } else {
                line.to_owned()
            }
        };
        let rows: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|row| row.iter().map(|c| cell(c)).collect())
            .collect();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.len()).collect();
        for row in &rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let mut line = |cells: &[String]| {
            let mut text = String::new();
            for (cell, width) in cells.iter().zip(&widths) {
                let pad = width.saturating_sub(cell.chars().count());
                text.push_str(cell);
                text.push_str(&" ".repeat(pad + 2));
            }
            out.push_str(text.trim_end());
            out.push('\n');
        };
        line(
            &self
                .headers
                .iter()
                .map(|h| h.to_string())
                .collect::<Vec<_>>(),
        );
        line(&widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>());
        for row in &rows {
            line(row);
        }
        out
    }

    /// RFC 4180 CSV: a header row, then one record per row; cells holding a comma, a quote or a
    /// line break are quoted, quotes doubled.
    pub fn to_csv(&self) -> String {
        let mut out = String::new();
        let record = |out: &mut String, cells: &mut dyn Iterator<Item = &str>| {
            let cells: Vec<String> = cells.map(csv_cell).collect();
            let _ = writeln!(out, "{}", cells.join(","));
        };
        record(&mut out, &mut self.headers.iter().copied());
        for row in &self.rows {
            record(&mut out, &mut row.iter().map(String::as_str));
        }
        out
    }
}

fn csv_cell(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

/// Pretty JSON of a value that always serializes (plain data, string keys).
pub fn json<T: Serialize + ?Sized>(value: &T) -> String {
    let mut text = serde_json::to_string_pretty(value).expect("plain data always serializes");
    text.push('\n');
    text
}

/// A timestamp as shown in tables: UTC, to the millisecond.
pub fn when(at: Option<chrono::DateTime<chrono::Utc>>) -> String {
    at.map_or_else(String::new, |at| {
        at.format("%Y-%m-%d %H:%M:%S%.3f").to_string()
    })
}

/// The error for `--format html` outside `history`.
pub fn html_only_for_history() -> Failure {
    Failure::Usage("--format html is for `history`; use table, json or csv here".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Table {
        let mut table = Table::new(&["id", "note"]);
        table.push(vec!["1".into(), "plain".into()]);
        table.push(vec!["22".into(), "a, \"quoted\"\nsecond line".into()]);
        table
    }

    #[test]
    fn text_aligns_and_cuts_to_one_line() {
        let text = sample().to_text(40);
        assert_eq!(
            text,
            "id  note\n--  ------------\n1   plain\n22  a, \"quoted\"…\n"
        );
    }

    #[test]
    fn csv_quotes_what_needs_it() {
        assert_eq!(
            sample().to_csv(),
            "id,note\n1,plain\n22,\"a, \"\"quoted\"\"\nsecond line\"\n"
        );
    }
}
