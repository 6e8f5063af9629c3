//! Pages a person reads: the verification report (核对报告), the applicant's data receipt
//! (数据查询回执) and the run dashboard (批次汇总), as self-contained HTML.
//!
//! Where it sits: after `open` (a civil-affairs key has opened a sealed report) and after
//! `batch` (summary.json is written). Nothing here decides anything; it shows a
//! [`VerificationReport`](crate::report::VerificationReport) or a summary as they are.
//!
//! - Self-contained: one file, inline CSS and hand-written SVG, no JavaScript, no fonts or
//!   images fetched. A `Content-Security-Policy` of `default-src 'none'` makes the browser refuse
//!   any fetch even if a value slipped through.
//! - Every value is HTML-escaped by [`escape`], which also masks any run of 15 or more digits
//!   (an ID or card number) the way `domain::id_number::mask` does: the pages never carry a full
//!   ID number, whatever the report holds (a source value such as `household_head_id` is one).
//! - Every word comes from a template file per language (`zh.toml`, embedded), read through
//!   [`Texts`]; adding a language is adding a file.
//! - Print: A4, page breaks between the report's sections, table rows never split.

mod chart;
mod receipt_page;
mod report_page;
mod summary_page;

#[cfg(test)]
mod tests;

use std::borrow::Cow;

pub use receipt_page::receipt_html;
pub use report_page::{MatchField, PossibleMatch, possible_matches, report_html, report_html_with};
pub use summary_page::summary_html;

/// The page texts of one language: `src/render/zh.toml` or a file of the same shape.
///
/// Tables: `[meta]` (lang), `[ui]` (sentences, with `{placeholders}`), and tables of terms keyed
/// by their code term (`[source]`, `[rule]`, `[column]`, `[value.<column>]`, …). A missing `[ui]`
/// key shows as `⟦ui.key⟧` (tests look for it); a missing term shows its code term.
#[derive(Debug, Clone)]
pub struct Texts {
    table: toml::Table,
    lang: String,
}

/// Why a texts file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TextsError {
    /// Not TOML. (TOML's message is in this one's, and not the error's `source`, so that an
    /// error chain prints it once.)
    #[error("texts file is not valid TOML: {0}")]
    Parse(toml::de::Error),
    /// A required table or key is missing.
    #[error("texts file lacks {0}")]
    Missing(&'static str),
}

impl From<toml::de::Error> for TextsError {
    fn from(e: toml::de::Error) -> TextsError {
        TextsError::Parse(e)
    }
}

impl Texts {
    /// 简体中文, from the embedded `zh.toml`.
    pub fn zh() -> Texts {
        Texts::from_toml(include_str!("zh.toml"))
            .expect("the bundled src/render/zh.toml is valid (unit-tested)")
    }

    /// Load texts from a TOML document shaped like `zh.toml`.
    ///
    /// # Errors
    /// [`TextsError`] when the text is not TOML or lacks `meta.lang` or the `[ui]` table.
    pub fn from_toml(text: &str) -> Result<Texts, TextsError> {
        let table: toml::Table = text.parse()?;
        let lang = table
            .get("meta")
            .and_then(|m| m.get("lang"))
            .and_then(|l| l.as_str())
            .ok_or(TextsError::Missing("meta.lang"))?
            .to_string();
        if !table.get("ui").is_some_and(toml::Value::is_table) {
            return Err(TextsError::Missing("the [ui] table"));
        }
        Ok(Texts { table, lang })
    }

    /// The language tag for `<html lang>` (`zh-CN`).
    pub fn lang(&self) -> &str {
        &self.lang
    }

    fn lookup(&self, group: &str, key: &str) -> Option<&toml::Value> {
        self.table.get(group)?.get(key)
    }

    /// A `[ui]` sentence (plain text, not yet escaped).
    pub fn ui(&self, key: &str) -> Cow<'_, str> {
        match self.lookup("ui", key).and_then(toml::Value::as_str) {
            Some(s) => Cow::Borrowed(s),
            None => Cow::Owned(format!("⟦ui.{key}⟧")),
        }
    }

    /// A `[ui]` sentence with `{name}` placeholders filled (plain text, not yet escaped).
    /// One pass: a value that itself contains `{…}` is not filled again; an unknown
    /// placeholder stays as written.
    pub fn fill(&self, key: &str, args: &[(&str, &str)]) -> String {
        let template = self.ui(key);
        let mut out = String::with_capacity(template.len() + 32);
        let mut rest: &str = &template;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            match after.find('}').map(|close| (&after[..close], close)) {
                Some((name, close)) if args.iter().any(|(n, _)| *n == name) => {
                    out.push_str(
                        args.iter()
                            .find(|(n, _)| *n == name)
                            .map(|(_, v)| *v)
                            .unwrap_or_default(),
                    );
                    rest = &after[close + 1..];
                }
                _ => {
                    out.push('{');
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        out
    }

    /// A `[ui]` list of sentences.
    pub fn ui_list(&self, key: &str) -> Vec<String> {
        match self.lookup("ui", key).and_then(toml::Value::as_array) {
            Some(a) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            None => vec![format!("⟦ui.{key}⟧")],
        }
    }

    /// A term of a table keyed by code (`source`, `rule`, `column`, …), or the code itself.
    pub fn term<'a>(&'a self, group: &str, code: &'a str) -> &'a str {
        self.lookup(group, code)
            .and_then(toml::Value::as_str)
            .unwrap_or(code)
    }

    /// A vocabulary value of a column (`[value.<column>]`), or the value as delivered.
    pub fn value<'a>(&'a self, column: &str, value: &'a str) -> &'a str {
        self.table
            .get("value")
            .and_then(|v| v.get(column))
            .and_then(|c| c.get(value))
            .and_then(toml::Value::as_str)
            .unwrap_or(value)
    }

    /// A reason text: `code: message` or `code` with the code's text from `[reason]`;
    /// anything else as given.
    pub fn reason(&self, raw: &str) -> String {
        let (code, rest) = match raw.split_once(": ") {
            Some((c, r)) => (c.trim(), Some(r.trim())),
            None => (raw.trim(), None),
        };
        match (
            self.lookup("reason", code).and_then(toml::Value::as_str),
            rest,
        ) {
            (Some(t), Some(r)) => format!("{t}（{code}：{r}）"),
            (Some(t), None) => format!("{t}（{code}）"),
            (None, _) => raw.to_string(),
        }
    }
}

/// HTML-escape a value for text or a quoted attribute, masking ID-like digit runs first.
/// Bidirectional formatting characters (U+202A–U+202E embeddings and overrides, U+2066–U+2069
/// isolates, U+200E/U+200F/U+061C marks) are dropped: a department value holding a
/// right-to-left override would show the rest of its cell, or of the page's line, reversed
/// (found by session 23's attack in the receipt's cells).
pub fn escape(s: &str) -> String {
    let masked = mask_digit_runs(s);
    let mut out = String::with_capacity(masked.len() + 8);
    for c in masked.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\u{202a}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}'
            | '\u{200e}'
            | '\u{200f}'
            | '\u{061c}' => {}
            c => out.push(c),
        }
    }
    out
}

/// Mask every run of 15 or more ASCII digits (with an `X`/`x` check character after 17 of
/// them): the first four and last four characters stay, the rest become `*`. An 18-digit ID
/// number, a 15-digit legacy one or a bank card number cannot pass through a page.
pub fn mask_digit_runs(s: &str) -> Cow<'_, str> {
    let mut out: Option<String> = None;
    let mut copied = 0;
    for std::ops::Range { start, end: i } in crate::domain::id_number::digit_runs(s) {
        let n = i - start;
        if n >= 15 {
            let o = out.get_or_insert_with(|| String::with_capacity(s.len()));
            o.push_str(&s[copied..start]);
            o.push_str(&s[start..start + 4]);
            o.extend(std::iter::repeat_n('*', n - 8));
            o.push_str(&s[i - 4..i]);
            copied = i;
        }
    }
    match out {
        None => Cow::Borrowed(s),
        Some(mut o) => {
            o.push_str(&s[copied..]);
            Cow::Owned(o)
        }
    }
}

/// A yuan amount for people: thousands separated (`27769.40` → `27,769.40`); other text as is.
pub(crate) fn yuan(amount: &str) -> String {
    let (sign, rest) = amount.strip_prefix('-').map_or(("", amount), |r| ("-", r));
    let (int, frac) = rest
        .split_once('.')
        .map_or((rest, None), |(i, f)| (i, Some(f)));
    if int.is_empty()
        || !int.bytes().all(|c| c.is_ascii_digit())
        || frac.is_some_and(|f| !f.bytes().all(|c| c.is_ascii_digit()))
    {
        return amount.to_string();
    }
    let mut grouped = String::with_capacity(int.len() + int.len() / 3);
    for (k, c) in int.chars().enumerate() {
        if k > 0 && (int.len() - k) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    match frac {
        Some(f) => format!("{sign}{grouped}.{f}"),
        None => format!("{sign}{grouped}"),
    }
}

/// Whether a value reads as a plain number (right-aligned in tables).
pub(crate) fn is_number(s: &str) -> bool {
    let s = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = s.split_once('.').map_or((s, None), |(i, f)| (i, Some(f)));
    !int.is_empty()
        && int.bytes().all(|c| c.is_ascii_digit())
        && frac.is_none_or(|f| !f.is_empty() && f.bytes().all(|c| c.is_ascii_digit()))
}

/// The UTC time of a run from its id (`YYYYMMDD-YYYYMMDDTHHMMSSZ-xxxxxxxx`, batch::new_run_id),
/// as `YYYY-MM-DD HH:MM:SS`; `None` for other ids.
pub(crate) fn run_time(run_id: &str) -> Option<String> {
    let t = run_id.split('-').nth(1)?;
    let b = t.as_bytes();
    let ok = b.len() == 16
        && b[8] == b'T'
        && b[15] == b'Z'
        && b[..8].iter().chain(&b[9..15]).all(u8::is_ascii_digit);
    ok.then(|| {
        format!(
            "{}-{}-{} {}:{}:{}",
            &t[0..4],
            &t[4..6],
            &t[6..8],
            &t[9..11],
            &t[11..13],
            &t[13..15]
        )
    })
}

/// A page being built. `text` escapes; `raw` is for the renderer's own markup only.
pub(crate) struct Html(String);

impl Html {
    pub(crate) fn new() -> Html {
        Html(String::with_capacity(64 * 1024))
    }

    pub(crate) fn raw(&mut self, markup: &str) -> &mut Html {
        self.0.push_str(markup);
        self
    }

    pub(crate) fn text(&mut self, value: &str) -> &mut Html {
        self.0.push_str(&escape(value));
        self
    }

    /// `<tag class="class">value</tag>`, the value escaped.
    pub(crate) fn el(&mut self, tag: &str, class: &str, value: &str) -> &mut Html {
        if class.is_empty() {
            self.0.push_str(&format!("<{tag}>"));
        } else {
            self.0.push_str(&format!("<{tag} class=\"{class}\">"));
        }
        self.text(value);
        self.0.push_str(&format!("</{tag}>"));
        self
    }

    /// A table cell; numbers right-aligned.
    pub(crate) fn td(&mut self, value: &str) -> &mut Html {
        let class = if is_number(value) { "num" } else { "" };
        self.el("td", class, value)
    }

    /// A table cell of a source value: amounts (decimals) right-aligned, codes and years not.
    pub(crate) fn td_value(&mut self, value: &str) -> &mut Html {
        let class = if is_number(value) && value.contains('.') {
            "num"
        } else {
            ""
        };
        self.el("td", class, value)
    }

    /// A table cell, left-aligned whatever it holds.
    pub(crate) fn td_text(&mut self, value: &str) -> &mut Html {
        self.el("td", "", value)
    }

    /// A header row of a table (`<thead>`), labels escaped.
    pub(crate) fn thead<S: AsRef<str>>(&mut self, labels: &[S]) -> &mut Html {
        self.raw("<thead><tr>");
        for l in labels {
            self.el("th", "", l.as_ref());
        }
        self.raw("</tr></thead>")
    }

    /// A coloured label (`determination`, `outcome`, `source_status` classes).
    pub(crate) fn badge(&mut self, class: &str, label: &str) -> &mut Html {
        self.raw(&format!("<span class=\"badge {}\">", escape(class)));
        self.text(label).raw("</span>")
    }

    /// The document head: language, strict CSP, title, the shared style sheet.
    pub(crate) fn start(lang: &Texts, title: &str, body_class: &str) -> Html {
        let mut h = Html::new();
        h.raw("<!DOCTYPE html>\n<html lang=\"")
            .text(lang.lang())
            .raw("\">\n<head>\n<meta charset=\"utf-8\">\n");
        h.raw("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
        // No fetch of any kind: styles are inline, images are inline SVG.
        h.raw("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\n");
        h.raw("<meta name=\"referrer\" content=\"no-referrer\">\n<meta name=\"robots\" content=\"noindex\">\n<title>").text(title).raw("</title>\n<style>\n");
        h.raw(include_str!("style.css"));
        h.raw("</style>\n</head>\n<body class=\"")
            .raw(body_class)
            .raw("\">\n");
        h
    }

    pub(crate) fn finish(mut self) -> String {
        self.raw("</body>\n</html>\n");
        self.0
    }
}
