//! Source files and byte spans, so that every diagnostic can point at a line and column.

use std::fmt;

/// A byte range into one source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Self {
        Span {
            start,
            end: end.max(start),
        }
    }

    pub fn len(&self) -> usize {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }
}

/// A value and where it was written. Defaults that were not written carry the span of
/// the mapping that would have held them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spanned<T> {
    pub value: T,
    pub span: Span,
}

impl<T> Spanned<T> {
    pub fn new(value: T, span: Span) -> Self {
        Spanned { value, span }
    }
}

impl<T: fmt::Display> fmt::Display for Spanned<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.value.fmt(f)
    }
}

/// One file that diagnostics can point into, named as the user knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// Path as shown to the user (relative to the repository root where possible).
    pub name: String,
    pub text: String,
}

impl SourceFile {
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        SourceFile {
            name: name.into(),
            text: text.into(),
        }
    }

    /// 1-based line and column (in characters) of a byte offset. Lines end at LF,
    /// CRLF or a lone CR, as the PEM reader splits them.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..floor_char_boundary(&self.text, offset)];
        let b = before.as_bytes();
        let lone_cr = |i: usize| b[i] == b'\r' && self.text.as_bytes().get(i + 1) != Some(&b'\n');
        let line = (0..b.len())
            .filter(|&i| b[i] == b'\n' || lone_cr(i))
            .count()
            + 1;
        let line_start = (0..b.len())
            .rev()
            .find(|&i| b[i] == b'\n' || lone_cr(i))
            .map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        (line, column)
    }

    /// Byte offset of a 1-based line (the end of the text if there is no such line).
    pub fn line_offset(&self, line: usize) -> usize {
        if line <= 1 {
            return 0;
        }
        self.text
            .match_indices('\n')
            .nth(line - 2)
            .map_or(self.text.len(), |(i, _)| i + 1)
    }
}

pub(crate) fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Converts character indices (as the YAML parser reports them) into byte offsets.
pub(crate) struct CharIndex<'a> {
    text: &'a str,
    /// Byte offset of every char; empty when the text is ASCII (the identity map).
    offsets: Vec<usize>,
}

impl<'a> CharIndex<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        let offsets = if text.is_ascii() {
            Vec::new()
        } else {
            text.char_indices().map(|(i, _)| i).collect()
        };
        CharIndex { text, offsets }
    }

    pub(crate) fn byte(&self, char_index: usize) -> usize {
        if self.offsets.is_empty() {
            char_index.min(self.text.len())
        } else {
            self.offsets
                .get(char_index)
                .copied()
                .unwrap_or(self.text.len())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_are_one_based_and_count_characters() {
        let f = SourceFile::new("t", "ab\nçd: x\n");
        assert_eq!(f.line_col(0), (1, 1));
        assert_eq!(f.line_col(3), (2, 1));
        assert_eq!(f.line_col(5), (2, 2));
        assert_eq!(f.line_offset(2), 3);
        let idx = CharIndex::new(&f.text);
        assert_eq!(idx.byte(4), 5);
        let cr = SourceFile::new("t", "a\rb\r\nc");
        assert_eq!(cr.line_col(2), (2, 1));
        assert_eq!(cr.line_col(4), (2, 3));
        assert_eq!(cr.line_col(5), (3, 1));
    }
}
