//! HTML by hand: [`Html`] escapes every value pushed into it unless told it is markup, a page
//! frame with the inline style sheet, and the small pieces pages share (state badges, links).

use std::fmt::Write as _;

use flamingock_core::AuditState;

pub use flamingock_core::text::escape_html as escape;

/// `text` as one path segment or query value: everything but the unreserved characters is
/// percent-encoded (ids may hold `/`, `?`, spaces, anything).
///
/// ```
/// use flamingock_server::dashboard::html::url_part;
/// assert_eq!(url_part("a b/c?d"), "a%20b%2Fc%3Fd");
/// ```
pub fn url_part(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// A page being written: markup pushed as is with [`raw`](Self::raw), values escaped with
/// [`text`](Self::text).
#[derive(Default)]
pub struct Html(String);

impl Html {
    /// An empty page body.
    pub fn new() -> Self {
        Self::default()
    }

    /// Pushes markup written in this crate (never a value from a request or the database).
    pub fn raw(&mut self, markup: &str) -> &mut Self {
        self.0.push_str(markup);
        self
    }

    /// Pushes `value`, escaped.
    pub fn text(&mut self, value: &str) -> &mut Self {
        self.0.push_str(&escape(value));
        self
    }

    /// Pushes `<a href="{href}">{label}</a>`, both escaped (`href` built with [`url_part`]).
    pub fn link(&mut self, href: &str, label: &str) -> &mut Self {
        self.raw("<a href=\"")
            .text(href)
            .raw("\">")
            .text(label)
            .raw("</a>")
    }

    /// Pushes a hidden form field.
    pub fn hidden(&mut self, name: &str, value: &str) -> &mut Self {
        self.raw("<input type=\"hidden\" name=\"")
            .text(name)
            .raw("\" value=\"")
            .text(value)
            .raw("\">")
    }

    /// Pushes a table cell holding `value`, escaped.
    pub fn cell(&mut self, value: &str) -> &mut Self {
        self.raw("<td>").text(value).raw("</td>")
    }

    /// The markup written so far.
    pub fn into_string(self) -> String {
        self.0
    }
}

/// What the frame of a page shows besides its body.
pub struct Frame<'a> {
    /// The title, in the tab and as the heading.
    pub title: &'a str,
    /// Who is signed in (role and scope), for the header; `None` on the sign-in page.
    pub viewer: Option<&'a str>,
    /// The sign-out form's CSRF token (with `viewer`).
    pub csrf: Option<&'a str>,
}

/// A whole page: the frame around `body` (markup built with [`Html`]).
pub fn page(frame: &Frame<'_>, body: &str) -> String {
    let mut out = Html::new();
    out.raw("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">")
        .raw("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">")
        .raw("<title>")
        .text(frame.title)
        .raw(" · Flamingock</title><style>")
        .raw(STYLE)
        .raw("</style></head><body><header><a class=\"brand\" href=\"/dashboard\">Flamingock</a>");
    if let Some(viewer) = frame.viewer {
        out.raw("<span class=\"viewer\">")
            .text(viewer)
            .raw("</span>");
        if let Some(csrf) = frame.csrf {
            out.raw("<form method=\"post\" action=\"/dashboard/sign-out\" class=\"inline\">")
                .hidden("csrf", csrf)
                .raw("<button type=\"submit\">Sign out</button></form>");
        }
    }
    out.raw("</header><main><h1>")
        .text(frame.title)
        .raw("</h1>")
        .raw(body)
        .raw("</main></body></html>");
    out.into_string()
}

/// The CSS class of a state's badge: applied green, needing a person red, in between amber.
pub fn state_class(state: Option<AuditState>) -> &'static str {
    match state {
        None => "pending",
        Some(AuditState::Applied | AuditState::ManualMarkedAsApplied) => "ok",
        Some(AuditState::RolledBack | AuditState::ManualMarkedAsRolledBack) => "neutral",
        Some(AuditState::Started | AuditState::RollbackStarted) => "warn",
        Some(AuditState::Failed | AuditState::RollbackFailed) => "bad",
    }
}

/// Pushes a state badge (`label`, coloured as `class`).
pub fn badge(out: &mut Html, class: &str, label: &str) {
    out.raw("<span class=\"badge ")
        .text(class)
        .raw("\">")
        .text(label)
        .raw("</span>");
}

/// An instant as the pages show it (UTC, to the second).
pub fn when(at: Option<chrono::DateTime<chrono::Utc>>) -> String {
    at.map_or_else(
        || "-".to_owned(),
        |at| at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    )
}

const STYLE: &str = r#"
:root { --fg:#1d2330; --muted:#5d6677; --line:#dde1e8; --bg:#f6f7f9; --ok:#1f7a3d; --bad:#b3261e; --warn:#9a6700; --accent:#3451b2; }
* { box-sizing: border-box; }
body { margin:0; font:15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color:var(--fg); background:var(--bg); }
header { display:flex; gap:1rem; align-items:center; padding:.6rem 1.5rem; background:#fff; border-bottom:1px solid var(--line); }
header .brand { font-weight:700; color:var(--fg); text-decoration:none; margin-right:auto; }
header .viewer { color:var(--muted); font-size:.9rem; }
main { max-width:1200px; margin:0 auto; padding:1rem 1.5rem 3rem; }
h1 { font-size:1.4rem; margin:.6rem 0 1rem; }
h2 { font-size:1.1rem; margin:1.6rem 0 .6rem; }
a { color:var(--accent); }
table { width:100%; border-collapse:collapse; background:#fff; border:1px solid var(--line); }
th, td { text-align:left; padding:.4rem .6rem; border-bottom:1px solid var(--line); vertical-align:top; }
th { background:#eef0f4; font-weight:600; font-size:.85rem; }
tr.alert td { background:#fdecea; }
td.num { text-align:right; font-variant-numeric:tabular-nums; }
td.error, pre { white-space:pre-wrap; word-break:break-word; font:13px/1.4 ui-monospace, monospace; }
pre { background:#fff; border:1px solid var(--line); padding:.6rem; }
.badge { display:inline-block; padding:0 .45rem; border-radius:.6rem; font-size:.8rem; font-weight:600; border:1px solid; }
.badge.ok { color:var(--ok); } .badge.bad { color:var(--bad); } .badge.warn, .badge.pending { color:var(--warn); } .badge.neutral { color:var(--muted); }
.bad-count { color:var(--bad); font-weight:700; }
form.filters, form.fix, form.sign-in { display:flex; flex-wrap:wrap; gap:.6rem; align-items:end; background:#fff; border:1px solid var(--line); padding:.8rem; margin:.6rem 0; }
form.fix, form.sign-in { flex-direction:column; align-items:stretch; max-width:36rem; }
form.inline { display:inline; margin:0; }
label { display:flex; flex-direction:column; font-size:.85rem; color:var(--muted); gap:.2rem; }
input, select, textarea, button { font:inherit; padding:.3rem .45rem; border:1px solid #b9c0cc; border-radius:4px; background:#fff; }
button { background:var(--accent); color:#fff; border-color:var(--accent); cursor:pointer; }
.pager { display:flex; gap:1rem; margin:.6rem 0; }
.note { background:#eef4ff; border:1px solid #c9d6f5; padding:.6rem .8rem; }
.problem { background:#fdecea; border:1px solid #f2b8b5; padding:.6rem .8rem; }
.muted { color:var(--muted); }
dl { display:grid; grid-template-columns:max-content 1fr; gap:.2rem 1rem; }
dt { color:var(--muted); }
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_is_escaped_and_markup_is_not() {
        let mut html = Html::new();
        html.raw("<p>")
            .text("<script>alert('x')</script>")
            .raw("</p>");
        assert_eq!(
            html.into_string(),
            "<p>&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;</p>"
        );
        let mut html = Html::new();
        html.link("/dashboard?a=\"1\"", "a&b");
        assert_eq!(
            html.into_string(),
            "<a href=\"/dashboard?a=&quot;1&quot;\">a&amp;b</a>"
        );
    }

    #[test]
    fn url_parts_keep_only_unreserved_characters() {
        assert_eq!(url_part("create-clients_v1.2~"), "create-clients_v1.2~");
        assert_eq!(url_part("ü"), "%C3%BC");
        assert_eq!(url_part("a&b=c#d"), "a%26b%3Dc%23d");
    }
}
