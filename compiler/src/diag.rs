//! Findings: a code, a message, a help line and a span into the file they are about.

use crate::rules::{Code, Severity};
use crate::span::{SourceFile, Span};

/// Where a finding points: a span in one named source file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    /// The file as the user names it (see `SourceFile::name`).
    pub file: String,
    pub span: Span,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub code: Code,
    pub message: String,
    pub help: Option<String>,
    pub location: Option<Location>,
}

/// The most characters of input a message quotes in one excerpt.
pub const MAX_EXCERPT: usize = 80;

/// Input text as a message may quote it: control characters escaped (`\u{1b}`), at
/// most [`MAX_EXCERPT`] characters (then `…`).
pub fn excerpt(text: &str) -> String {
    let mut out = String::new();
    for (i, c) in text.chars().enumerate() {
        if i == MAX_EXCERPT {
            out.push('…');
            break;
        }
        push_escaped(&mut out, c);
    }
    out
}

/// `c`, or its escape when it is a control character a terminal would act on.
fn push_escaped(out: &mut String, c: char) {
    if c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    {
        out.extend(c.escape_unicode());
    } else {
        out.push(c);
    }
}

/// A message or help line as reports carry it: control characters escaped, every
/// backquoted excerpt cut to [`MAX_EXCERPT`] characters, and the whole to 1,000.
pub fn bounded(text: &str) -> String {
    let mut out = String::new();
    for (i, part) in text.split('`').enumerate() {
        if i > 0 {
            out.push('`');
        }
        if i % 2 == 1 {
            out.push_str(&excerpt(part));
        } else {
            part.chars().for_each(|c| push_escaped(&mut out, c));
        }
    }
    if out.chars().count() > 1_000 {
        out = out.chars().take(999).collect::<String>() + "…";
    }
    out
}

/// `text` with every backquoted excerpt replaced by `…`: for findings about a file
/// that holds a private key, whose text no report may quote.
pub fn without_quotes(text: &str) -> String {
    text.split('`')
        .enumerate()
        .map(|(i, part)| if i % 2 == 1 { "…" } else { part })
        .collect::<Vec<_>>()
        .join("`")
}

impl Diagnostic {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Diagnostic {
            code,
            message: bounded(&message.into()),
            help: None,
            location: None,
        }
    }

    pub fn at(mut self, file: &str, span: Span) -> Self {
        self.location = Some(Location {
            file: file.to_string(),
            span,
        });
        self
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(bounded(&help.into()));
        self
    }

    pub fn severity(&self) -> Severity {
        self.code.severity()
    }

    /// The help line: the finding's own, or the rule's general fix.
    pub fn help_text(&self) -> &str {
        self.help.as_deref().unwrap_or(self.code.rule().fix)
    }
}

/// The files findings point into, kept so that reports can quote the lines.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    files: Vec<SourceFile>,
}

impl Sources {
    pub fn add(&mut self, file: SourceFile) {
        if !self.files.iter().any(|f| f.name == file.name) {
            self.files.push(file);
        }
    }

    pub fn get(&self, name: &str) -> Option<&SourceFile> {
        self.files.iter().find(|f| f.name == name)
    }

    /// 1-based line and column of a location, when its file is known.
    pub fn line_col(&self, location: &Location) -> Option<(usize, usize)> {
        self.get(&location.file)
            .map(|f| f.line_col(location.span.start))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_quote_bounded_escaped_excerpts() {
        let long = "x".repeat(10_000_000);
        let d = Diagnostic::new(
            Code::Ct004,
            format!("authority name `{long}` is not a DNS label"),
        );
        assert_eq!(
            d.message,
            format!(
                "authority name `{}…` is not a DNS label",
                "x".repeat(MAX_EXCERPT)
            )
        );
        let d = Diagnostic::new(Code::Ct004, "name `a\u{1b}[31mred\r\u{9b}` bad\u{7}");
        assert_eq!(d.message, "name `a\\u{1b}[31mred\\u{d}\\u{9b}` bad\\u{7}");
        assert_eq!(without_quotes("a `secret` b `x`"), "a `…` b `…`");
        assert!(bounded(&"y".repeat(5_000)).chars().count() <= 1_000);
    }
}

/// Every finding of one run, in a stable order (file, position, code).
pub fn sort(diagnostics: &mut [Diagnostic]) {
    diagnostics
        .sort_by(|a, b| (&a.location, a.code, &a.message).cmp(&(&b.location, b.code, &b.message)));
}

/// Counts of findings by severity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub errors: usize,
    pub warnings: usize,
    pub infos: usize,
}

impl Summary {
    pub fn of(diagnostics: &[Diagnostic]) -> Self {
        let mut s = Summary::default();
        for d in diagnostics {
            match d.severity() {
                Severity::Error => s.errors += 1,
                Severity::Warning => s.warnings += 1,
                Severity::Info => s.infos += 1,
            }
        }
        s
    }
}
