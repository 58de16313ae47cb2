//! Presenting findings: human (miette, colour only on a terminal), JSON and GitHub
//! workflow annotations.

use std::fmt;

use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource};
use serde::Serialize;

use crate::diag::{Diagnostic, Sources, Summary};
use crate::rules::Severity;

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
        f.write_str(&self.diagnostic.message)
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
            self.diagnostic.help_text(),
            self.diagnostic.code
        )))
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.source.as_ref().map(|s| s as &dyn miette::SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let location = self.diagnostic.location.as_ref()?;
        self.source.as_ref()?;
        let span = location.span;
        Some(Box::new(std::iter::once(
            LabeledSpan::new_primary_with_span(
                Some(self.diagnostic.code.rule().summary.to_string()),
                (span.start, span.len().max(1)),
            ),
        )))
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
    for d in diagnostics {
        let source = d.location.as_ref().and_then(|l| {
            sources
                .get(&l.file)
                .map(|f| NamedSource::new(&f.name, f.text.clone()))
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
            out.push_str(&format!("{}: {}\n", d.code, d.message));
        }
        if let (Some(l), None) = (&d.location, &report.source) {
            out.push_str(&format!("  at {}\n", position(l, sources)));
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
            props.push(format!("file={}", escape_prop(&l.file)));
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
            escape_data(&format!(
                "{} {} (help: {})",
                d.code,
                d.message,
                d.help_text()
            ))
        ));
    }
    out
}

/// `file:line:column` of a location (just the file when its text is unknown).
fn position(location: &crate::diag::Location, sources: &Sources) -> String {
    match sources.line_col(location) {
        Some((line, column)) => format!("{}:{line}:{column}", location.file),
        None => location.file.clone(),
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
            d.message,
            d.help_text()
        ));
    }
    out
}
