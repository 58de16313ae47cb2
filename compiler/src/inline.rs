//! Positions inside an inline `pem: |` value, mapped back into trust.yaml.
//!
//! The PEM reader works on the decoded value of the YAML scalar; for a literal block
//! scalar (`|`, `|-`, `|+`) every decoded line is one source line with the block's
//! indentation removed, so a span in the value maps to an exact line and column in
//! trust.yaml. Any other scalar style (quoted, plain, folded `>`), or a block whose
//! lines do not match the value line for line, maps to the whole value instead.

use crate::span::Span;

/// Maps spans in a decoded scalar value to spans in the YAML text.
#[derive(Debug, Clone)]
pub struct ValueMap {
    /// For each decoded line: (its start in the value, its start in the YAML text).
    lines: Vec<(usize, usize)>,
    /// The whole scalar in the YAML text.
    whole: Span,
}

impl ValueMap {
    /// `value_span` is the scalar's span in `yaml`; `value` its decoded text.
    pub fn new(yaml: &str, value_span: Span, value: &str) -> ValueMap {
        let whole = value_span;
        let lines = literal_lines(yaml, value_span, value).unwrap_or_default();
        ValueMap { lines, whole }
    }

    /// The YAML span of `span` (relative to the value).
    pub fn map(&self, span: Span) -> Span {
        match (self.offset(span.start), self.offset(span.end)) {
            (Some(start), Some(end)) => Span::new(start, end),
            _ => self.whole,
        }
    }

    fn offset(&self, at: usize) -> Option<usize> {
        let index = self.lines.partition_point(|(start, _)| *start <= at);
        let (value_start, yaml_start) = *self.lines.get(index.checked_sub(1)?)?;
        Some(yaml_start + (at - value_start))
    }
}

/// The line table of a literal block scalar, or `None` when `value_span` is not one
/// (or its lines cannot be matched exactly).
fn literal_lines(yaml: &str, value_span: Span, value: &str) -> Option<Vec<(usize, usize)>> {
    // The parser's span starts either at the `|` header or at the first content line.
    let rest = yaml.get(value_span.start..)?;
    let (header, body_start) = if rest.starts_with('|') {
        let header_end = rest.find('\n')?;
        (&rest[..header_end], value_span.start + header_end + 1)
    } else {
        let line_start = yaml[..value_span.start].rfind('\n')? + 1;
        if !yaml[line_start..value_span.start]
            .bytes()
            .all(|b| b == b' ')
        {
            return None;
        }
        let previous = &yaml[..line_start - 1];
        let previous = &previous[previous.rfind('\n').map_or(0, |i| i + 1)..];
        (&previous[previous.rfind('|')?..], line_start)
    };
    let indicators = header.trim_end_matches('\r').strip_prefix('|')?;
    let indicators = indicators.split('#').next().unwrap_or("").trim();
    // An explicit indentation indicator (`|2`) is rare; only `+`/`-` chomping is mapped.
    if !indicators.chars().all(|c| c == '+' || c == '-') {
        return None;
    }
    let body = yaml.get(body_start..)?;
    let indent = body
        .split('\n')
        .map(|l| l.trim_end_matches('\r'))
        .find(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start_matches(' ').len())?;
    let mut out = Vec::new();
    let mut yaml_line_start = body_start;
    let mut value_line_start = 0;
    let mut yaml_lines = body.split_inclusive('\n');
    for value_line in value.split_inclusive('\n') {
        let content = value_line.strip_suffix('\n').unwrap_or(value_line);
        let yaml_line = yaml_lines.next().unwrap_or("");
        let yaml_content = yaml_line.trim_end_matches(['\n', '\r']);
        if !content.is_empty() {
            if yaml_content.get(indent..) != Some(content)
                || !yaml_content[..indent].bytes().all(|b| b == b' ')
            {
                return None;
            }
            out.push((value_line_start, yaml_line_start + indent));
        } else {
            out.push((
                value_line_start,
                yaml_line_start + yaml_content.len().min(indent),
            ));
        }
        value_line_start += value_line.len();
        yaml_line_start += yaml_line.len();
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_block_lines_map_to_their_yaml_line() {
        let yaml = "a:\n  pem: |\n    -----BEGIN X-----\n    ab!d\n\n    -----END X-----\nb: 1\n";
        let value = "-----BEGIN X-----\nab!d\n\n-----END X-----\n";
        // Spans from the header, or from the first content line: both map.
        for start in [yaml.find('|').unwrap(), yaml.find("-----BEGIN").unwrap()] {
            let map = ValueMap::new(yaml, Span::new(start, start + 50), value);
            let bang = value.find('!').unwrap();
            let mapped = map.map(Span::new(bang, bang + 1));
            assert_eq!(&yaml[mapped.start..mapped.end], "!");
        }
        let start = yaml.find('|').unwrap();
        let map = ValueMap::new(yaml, Span::new(start, start + 60), value);
        let bang = value.find('!').unwrap();
        let mapped = map.map(Span::new(bang, bang + 1));
        assert_eq!(&yaml[mapped.start..mapped.end], "!");
        let end = value.find("-----END").unwrap();
        let mapped = map.map(Span::new(end, end + 15));
        assert_eq!(&yaml[mapped.start..mapped.end], "-----END X-----");
    }

    #[test]
    fn other_styles_map_to_the_whole_value() {
        let yaml = "pem: \"abc\"\n";
        let span = Span::new(5, 10);
        let map = ValueMap::new(yaml, span, "abc");
        assert_eq!(map.map(Span::new(1, 2)), span);
    }
}
