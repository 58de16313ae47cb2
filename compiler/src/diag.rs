//! Findings: a code, a message, a help line and a span into the file they are about.

use crate::rules::{Code, Severity};
use crate::span::{SourceFile, Span};

/// Where a finding points: a span in one named source file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    /// The file as the user names it (see [`SourceFile::name`]).
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

impl Diagnostic {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Diagnostic {
            code,
            message: message.into(),
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
        self.help = Some(help.into());
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
