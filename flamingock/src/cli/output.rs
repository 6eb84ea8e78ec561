//! Printing results: aligned tables for people, CSV and JSON for scripts.

use flamingock_core::text::csv_cell;
use std::fmt::Write as _;
use std::io::Write as _;

use serde::Serialize;

use super::Failure;

/// `print!` that returns what became of the write (see [`emit`]) instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::output::emit(format_args!($($arg)*))
    };
}

/// `println!` that returns what became of the write (see [`emit`]) instead of panicking.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::cli::output::emit(format_args!("{}\n", format_args!($($arg)*)))
    };
}

pub(crate) use {out, outln};

/// Writes `text` to stdout. A reader that went away (`flamingock history | head -1`) is
/// [`Failure::OutputClosed`], which ends the command quietly with success, as `cat` and `rg` do;
/// `print!` would panic there.
pub fn emit(text: std::fmt::Arguments<'_>) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_fmt(text)
        .and_then(|()| stdout.flush())
        .map_err(|error| match error.kind() {
            std::io::ErrorKind::BrokenPipe => Failure::OutputClosed,
            _ => Failure::Failed(format!("cannot write the output: {error}")),
        })
}

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
            let line = &*terminal_safe(line);
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

/// Several lines of `text`, each made [`terminal_safe`]: for reports and error messages, whose
/// line breaks are theirs but whose ids, authors and causes come from code and from people.
pub fn terminal_safe_lines(text: &str) -> String {
    text.split('\n')
        .map(terminal_safe)
        .collect::<Vec<_>>()
        .join("\n")
}

/// `text` safe to print on a terminal: control characters (escape sequences among them),
/// direction overrides and other invisible format characters are shown as `\u{..}` instead of
/// acting on the terminal. Ids, authors and reasons come from code and from people.
pub fn terminal_safe(text: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| {
        c.is_control()
            || matches!(
                c,
                '\u{00AD}'
                    | '\u{061C}'
                    | '\u{180E}'
                    | '\u{200B}'..='\u{200F}'
                    | '\u{202A}'..='\u{202E}'
                    | '\u{2060}'..='\u{2064}'
                    | '\u{2066}'..='\u{2069}'
                    | '\u{FEFF}'
            )
    };
    if !text.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unsafe_char(c) {
            let _ = write!(out, "\\u{{{:04X}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
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

    #[test]
    fn escapes_and_bidi_overrides_do_not_reach_the_terminal() {
        let mut table = Table::new(&["id", "author"]);
        table.push(vec!["add-\u{202E}users".into(), "ana\u{1b}[31m".into()]);
        let text = table.to_text(80);
        assert!(
            !text.contains('\u{202E}') && !text.contains('\u{1b}'),
            "{text:?}"
        );
        assert!(text.contains("add-\\u{202E}users"), "{text}");
        assert!(text.contains("ana\\u{001B}[31m"), "{text}");
        assert_eq!(terminal_safe("plain"), "plain");
        assert_eq!(
            terminal_safe_lines("unit \u{1b}[31mred\nnext\u{202E}line"),
            "unit \\u{001B}[31mred\nnext\\u{202E}line"
        );
    }

    #[test]
    fn csv_cells_that_a_spreadsheet_would_run_are_kept_text() {
        let mut table = Table::new(&["reason"]);
        for cell in ["=1+1", "+cmd", "-2", "@SUM(A1)", "ok"] {
            table.push(vec![cell.into()]);
        }
        assert_eq!(table.to_csv(), "reason\n'=1+1\n'+cmd\n'-2\n'@SUM(A1)\nok\n");
    }
}
