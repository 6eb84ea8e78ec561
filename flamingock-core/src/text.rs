//! Text made safe for where people read it: HTML (the CLI's history page, the server's
//! dashboard) and CSV (the CLI's and the dashboard's exports), shared so that both escape alike.

/// Text made safe to put in HTML, in an element or in a quoted attribute.
///
/// ```
/// use flamingock_core::text::escape_html;
/// assert_eq!(escape_html("<a href=\"x\">&'</a>"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;");
/// ```
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// One CSV cell: quoted when it holds a comma, a quote or a line break (quotes doubled); a
/// leading `=`, `+`, `-`, `@`, tab or carriage return guarded by `'`, since a spreadsheet runs
/// such a cell as a formula (the usual guard against CSV injection).
///
/// ```
/// use flamingock_core::text::csv_cell;
/// assert_eq!(csv_cell("plain"), "plain");
/// assert_eq!(csv_cell("a,\"b\""), "\"a,\"\"b\"\"\"");
/// assert_eq!(csv_cell("=SUM(A1)"), "'=SUM(A1)");
/// ```
pub fn csv_cell(text: &str) -> String {
    let guarded;
    let text = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        guarded = format!("'{text}");
        guarded.as_str()
    } else {
        text
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}
