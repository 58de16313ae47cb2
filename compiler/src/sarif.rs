//! `lint --format sarif`: SARIF 2.1.0 as GitHub code scanning reads it.
//!
//! The rule metadata (`tool.driver.rules`) is generated from [`crate::rules::RULES`],
//! the same table `catrust explain` prints. Locations are relative URIs under the
//! `%SRCROOT%` base (the folder `catrust lint` ran in, normally the repository root),
//! with 1-based lines and columns; `endColumn` is exclusive, as SARIF defines it.

use serde_json::{json, Value};

use crate::diag::{Diagnostic, Location, Sources};
use crate::rules::{self, Rule, Severity, RULES};

/// The schema URI written into `$schema`.
pub const SCHEMA_URI: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// Where a rule's documentation lives (an anchor in `docs/rules.md`).
fn help_uri(rule: &Rule) -> String {
    format!(
        "{}/blob/main/docs/rules.md#{}",
        env!("CARGO_PKG_REPOSITORY"),
        rule.code.as_str().to_ascii_lowercase()
    )
}

fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "note",
    }
}

fn rule_descriptor(rule: &Rule) -> Value {
    json!({
        "id": rule.code.as_str(),
        "name": rule.code.as_str(),
        "shortDescription": { "text": rule.summary },
        "fullDescription": { "text": rule.why },
        "help": {
            "text": rules::explain(rule),
            "markdown": crate::docs::rule_markdown(rule),
        },
        "helpUri": help_uri(rule),
        "defaultConfiguration": { "level": level(rule.severity) },
        "properties": {
            "tags": ["catrust", family(rule)],
        },
    })
}

/// The family of a code, from its hundreds digit (see [`crate::rules`]).
pub fn family(rule: &Rule) -> &'static str {
    match rule.code.as_str().as_bytes().get(2) {
        Some(b'0') => "structure",
        Some(b'1') => "pem",
        Some(b'2') => "certificate",
        Some(b'3') => "aks",
        _ => "git",
    }
}

/// A repository-relative path as a relative URI reference: `/`-separated, every byte
/// outside RFC 3986's unreserved set and `/` percent-encoded.
pub fn relative_uri(path: &str) -> String {
    let path = path.replace('\\', "/");
    let path = path.trim_start_matches("./");
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn region(location: &Location, sources: &Sources) -> Option<Value> {
    let file = sources.get(&location.file)?;
    let (start_line, start_column) = file.line_col(location.span.start);
    let (end_line, mut end_column) = file.line_col(location.span.end);
    if end_line == start_line && end_column <= start_column {
        end_column = start_column + 1;
    }
    Some(json!({
        "startLine": start_line,
        "startColumn": start_column,
        "endLine": end_line,
        "endColumn": end_column,
    }))
}

/// The SARIF log of one lint run. `fallback_file` is where findings without a file
/// are placed (GitHub code scanning requires a location on every result): trust.yaml.
/// `repo_path` turns a file name as diagnostics show it into a path relative to the
/// repository root (`%SRCROOT%`).
pub fn sarif(
    diagnostics: &[Diagnostic],
    sources: &Sources,
    fallback_file: &str,
    repo_path: &dyn Fn(&str) -> String,
) -> String {
    let results: Vec<Value> = diagnostics
        .iter()
        .map(|d| {
            let index = RULES
                .iter()
                .position(|r| r.code == d.code)
                .expect("every code has a rule");
            let uri = d
                .location
                .as_ref()
                .map_or(fallback_file, |l| l.file.as_str());
            let mut physical = json!({
                "artifactLocation": { "uri": relative_uri(&repo_path(uri)), "uriBaseId": "%SRCROOT%" },
            });
            let region = d
                .location
                .as_ref()
                .and_then(|l| region(l, sources))
                .unwrap_or_else(|| json!({ "startLine": 1, "startColumn": 1 }));
            physical["region"] = region;
            json!({
                "ruleId": d.code.as_str(),
                "ruleIndex": index,
                "level": level(d.severity()),
                "message": { "text": format!("{} (help: {})", d.message, d.help_text()) },
                "locations": [{ "physicalLocation": physical }],
            })
        })
        .collect();
    let log = json!({
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "catrust",
                    "version": env!("CARGO_PKG_VERSION"),
                    "semanticVersion": env!("CARGO_PKG_VERSION"),
                    "informationUri": env!("CARGO_PKG_REPOSITORY"),
                    "rules": RULES.iter().map(rule_descriptor).collect::<Vec<_>>(),
                },
            },
            "originalUriBaseIds": {
                "%SRCROOT%": {
                    "description": { "text": "The repository root (the folder holding .git, or trust.yaml's folder outside git)." },
                },
            },
            "columnKind": "unicodeCodePoints",
            "results": results,
        }],
    });
    let mut out = serde_json::to_string_pretty(&log).expect("SARIF serialises");
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::Code;
    use crate::span::{SourceFile, Span};

    #[test]
    fn uris_are_relative_and_escaped() {
        assert_eq!(relative_uri("./certs/a b.pem"), "certs/a%20b.pem");
        assert_eq!(relative_uri("trust.yaml"), "trust.yaml");
        assert_eq!(relative_uri("c\u{e9}.pem"), "c%C3%A9.pem");
    }

    #[test]
    fn results_carry_rule_level_and_region() {
        let mut sources = Sources::default();
        sources.add(SourceFile::new("certs/a.pem", "xx\nsubject=CN\n"));
        let d = vec![
            Diagnostic::new(Code::Ct106, "text outside").at("certs/a.pem", Span::new(3, 13)),
            Diagnostic::new(Code::Ct210, "intermediate"),
        ];
        let v: Value =
            serde_json::from_str(&sarif(&d, &sources, "trust.yaml", &|f| f.to_string())).unwrap();
        let run = &v["runs"][0];
        assert_eq!(
            run["tool"]["driver"]["rules"].as_array().unwrap().len(),
            RULES.len()
        );
        let r0 = &run["results"][0];
        assert_eq!(r0["ruleId"], "CT106");
        assert_eq!(r0["level"], "warning");
        let region = &r0["locations"][0]["physicalLocation"]["region"];
        assert_eq!(region["startLine"], 2);
        assert_eq!(region["startColumn"], 1);
        assert_eq!(region["endColumn"], 11);
        let r1 = &run["results"][1];
        assert_eq!(r1["level"], "note");
        assert_eq!(
            r1["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            "trust.yaml"
        );
    }
}
