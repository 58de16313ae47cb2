//! Presenting findings: human (miette, colour only on a terminal), JSON and GitHub
//! workflow annotations.

use std::fmt;

use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource};
use serde::Serialize;

use crate::diag::{Diagnostic, Sources, Summary};
use crate::rules::Severity;
use crate::span::SourceFile;

/// Input text (a file name, a message) with terminal control characters escaped.
fn escape(text: &str) -> String {
    crate::diag::bounded(text)
}

/// One finding, adapted to miette's report renderer.
struct Report<'a> {
    diagnostic: &'a Diagnostic,
    source: Option<NamedSource<String>>,
}

impl fmt::Debug for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.diagnostic.message)
    }
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::diag::bounded(&self.diagnostic.message))
    }
}

impl std::error::Error for Report<'_> {}

impl miette::Diagnostic for Report<'_> {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.diagnostic.code))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.diagnostic.severity() {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
            Severity::Info => miette::Severity::Advice,
        })
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(format!(
            "{} (catrust explain {})",
            crate::diag::bounded(self.diagnostic.help_text()),
            self.diagnostic.code
        )))
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.source.as_ref().map(|s| s as &dyn miette::SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let location = self.diagnostic.location.as_ref()?;
        self.source.as_ref()?;
        // The label covers the first line of the span only: a span over a whole
        // base64 run would quote all of it.
        let span = location.span;
        let text = self.source.as_ref()?.inner();
        let start = crate::span::floor_char_boundary(text, span.start.min(text.len()));
        let first_line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
        let span = crate::span::Span::new(span.start, span.end.min(first_line_end));
        Some(Box::new(std::iter::once(
            LabeledSpan::new_primary_with_span(
                Some(self.diagnostic.code.rule().summary.to_string()),
                (span.start, span.len().max(1)),
            ),
        )))
    }
}

/// The longest line a report quotes around a finding; a longer one is not quoted
/// (the finding names its line and column).
const MAX_QUOTED_LINE: usize = 200;

/// The text of `file` as the human report may quote it, byte offsets unchanged:
/// `None` for a file that holds a private key marker anywhere; otherwise every line
/// inside a PEM block masked with `*`, terminal control characters (C0, DEL, C1,
/// bidirectional overrides) as `?`, and a lone CR as LF (so lines match the spans).
fn quotable(file: &SourceFile) -> Option<String> {
    if crate::pem::holds_private_key(&file.text) {
        return None;
    }
    let mut bytes = file.text.as_bytes().to_vec();
    for span in crate::pem::block_bodies(&file.text) {
        bytes[span.start..span.end].fill(b'*');
    }
    let mut out = String::with_capacity(bytes.len());
    let text = String::from_utf8(bytes).expect("masked whole characters with ASCII");
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' if chars.peek() == Some(&'\n') => out.push('\r'),
            '\r' => out.push('\n'),
            '\n' | '\t' => out.push(c),
            c if c.is_control()
                || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') =>
            {
                out.extend(std::iter::repeat_n('?', c.len_utf8()));
            }
            c => out.push(c),
        }
    }
    Some(out)
}

/// Whether the lines a report would show around `span` (one before, one after) are
/// all short enough to quote.
fn short_lines_around(text: &str, span: crate::span::Span) -> bool {
    let floor = |i: usize| crate::span::floor_char_boundary(text, i.min(text.len()));
    let start = floor(span.start);
    let before = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let before = text[..before.saturating_sub(1)]
        .rfind('\n')
        .map_or(0, |i| i + 1);
    let end = floor(span.end).max(start);
    let mut after = end;
    for _ in 0..2 {
        after = text[after..]
            .find('\n')
            .map_or(text.len(), |i| after + i + 1);
    }
    text[before..after.min(text.len())]
        .split('\n')
        .all(|l| l.len() <= MAX_QUOTED_LINE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Diagnostic;
    use crate::rules::Code;

    /// Fuzz finding: a span inside a multi-byte character (a byte order mark).
    #[test]
    fn spans_inside_a_character_are_quoted_without_panicking() {
        let mut sources = Sources::default();
        sources.add(SourceFile::new("a.pem", "\u{feff}hello\n"));
        let d = Diagnostic::new(Code::Ct103, "no certificate")
            .at("a.pem", crate::span::Span::new(1, 2));
        let out = human(&[d], &sources, false);
        assert!(out.contains("CT103"), "{out}");
    }
}

/// Renders findings for a person. `color` should be true only on a terminal.
pub fn human(diagnostics: &[Diagnostic], sources: &Sources, color: bool) -> String {
    let theme = if color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme.clone()).with_width(100);
    // Private key findings quote the marker line only: the lines around it are key
    // material, and reports end up in CI logs.
    let no_context = GraphicalReportHandler::new_themed(theme)
        .with_width(100)
        .with_context_lines(0);
    let mut out = String::new();
    let mut quoted: std::collections::BTreeMap<&str, Option<String>> = Default::default();
    for d in diagnostics {
        let source = d.location.as_ref().and_then(|l| {
            let file = sources.get(&l.file)?;
            let text = quoted
                .entry(file.name.as_str())
                .or_insert_with(|| quotable(file))
                .as_ref()?;
            short_lines_around(text, l.span)
                .then(|| NamedSource::new(escape(&file.name), text.clone()))
        });
        let report = Report {
            diagnostic: d,
            source,
        };
        // Findings without a file still get their code and message.
        let handler = if d.code == crate::rules::Code::Ct105 {
            &no_context
        } else {
            &handler
        };
        if handler.render_report(&mut out, &report).is_err() {
            out.push_str(&format!("{}: {}\n", d.code, escape(&d.message)));
        }
        if let (Some(l), None) = (&d.location, &report.source) {
            // Not quoted (a file with a key, a line too long): the place only.
            out.push_str(&format!("  at [{}]\n", position(l, sources)));
        }
    }
    let s = Summary::of(diagnostics);
    out.push_str(&format!(
        "{} error(s), {} warning(s), {} info\n",
        s.errors, s.warnings, s.infos
    ));
    out
}

#[derive(Serialize)]
struct JsonFinding<'a> {
    code: &'a str,
    severity: &'a str,
    message: &'a str,
    help: &'a str,
    file: Option<&'a str>,
    line: Option<usize>,
    column: Option<usize>,
}

#[derive(Serialize)]
struct JsonSummary {
    errors: usize,
    warnings: usize,
    infos: usize,
}

#[derive(Serialize)]
struct JsonReport<'a> {
    findings: Vec<JsonFinding<'a>>,
    summary: JsonSummary,
}

/// `lint --format json`, as docs/contract.md §2 specifies.
pub fn json(diagnostics: &[Diagnostic], sources: &Sources) -> String {
    let findings = diagnostics
        .iter()
        .map(|d| {
            let lc = d.location.as_ref().and_then(|l| sources.line_col(l));
            JsonFinding {
                code: d.code.as_str(),
                severity: d.severity().as_str(),
                message: &d.message,
                help: d.help_text(),
                file: d.location.as_ref().map(|l| l.file.as_str()),
                line: lc.map(|(l, _)| l),
                column: lc.map(|(_, c)| c),
            }
        })
        .collect();
    let s = Summary::of(diagnostics);
    let mut out = serde_json::to_string_pretty(&JsonReport {
        findings,
        summary: JsonSummary {
            errors: s.errors,
            warnings: s.warnings,
            infos: s.infos,
        },
    })
    .expect("report serialises");
    out.push('\n');
    out
}

/// GitHub workflow commands (`::error file=…,line=…,col=…,title=…::message`).
pub fn github(diagnostics: &[Diagnostic], sources: &Sources) -> String {
    fn escape_data(s: &str) -> String {
        s.replace('%', "%25")
            .replace('\r', "%0D")
            .replace('\n', "%0A")
    }
    fn escape_prop(s: &str) -> String {
        escape_data(s).replace(':', "%3A").replace(',', "%2C")
    }
    let mut out = String::new();
    for d in diagnostics {
        let level = match d.severity() {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "notice",
        };
        let mut props = Vec::new();
        if let Some(l) = &d.location {
            props.push(format!("file={}", escape_prop(&escape(&l.file))));
            if let Some((line, col)) = sources.line_col(l) {
                props.push(format!("line={line}"));
                props.push(format!("col={col}"));
            }
        }
        props.push(format!(
            "title={}",
            escape_prop(&format!("{} {}", d.code, d.code.rule().summary))
        ));
        out.push_str(&format!(
            "::{level} {}::{}\n",
            props.join(","),
            escape_data(&escape(&format!(
                "{} {} (help: {})",
                d.code,
                d.message,
                d.help_text()
            )))
        ));
    }
    out
}

/// `file:line:column` of a location (just the file when its text is unknown).
fn position(location: &crate::diag::Location, sources: &Sources) -> String {
    match sources.line_col(location) {
        Some((line, column)) => format!("{}:{line}:{column}", escape(&location.file)),
        None => escape(&location.file),
    }
}

/// One line per finding, quoting nothing from the files:
/// `file:line:column: error[CT001]: message (help: …)`. For logs that others read,
/// such as the Argo CD UI.
pub fn compact(diagnostics: &[Diagnostic], sources: &Sources) -> String {
    let mut out = String::new();
    for d in diagnostics {
        let at = d
            .location
            .as_ref()
            .map(|l| format!("{}: ", position(l, sources)))
            .unwrap_or_default();
        out.push_str(&format!(
            "{at}{}[{}]: {} (help: {})\n",
            d.severity(),
            d.code,
            escape(&d.message),
            escape(d.help_text())
        ));
    }
    out
}
