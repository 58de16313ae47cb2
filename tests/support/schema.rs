//! Strict JSON Schema validation of rendered documents and examples against the
//! upstream schemas vendored in `tests/fixtures/schemas/` (provenance in its README and
//! `provenance.json` files), with the PyPI `jsonschema` validator. The schemas set
//! `additionalProperties: false` on every object, so an unknown field fails.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{require_tool, run, workspace_root};

/// A vendored schema by its path under `tests/fixtures/schemas/`, e.g.
/// `crds/argoproj.io_Application_v1alpha1.json`.
pub fn schema_path(relative: &str) -> PathBuf {
    let path = workspace_root()
        .join("tests/fixtures/schemas")
        .join(relative);
    assert!(path.is_file(), "no vendored schema {}", path.display());
    path
}

/// Parses a YAML stream (one or more `---`-separated documents) into JSON values.
pub fn yaml_documents(text: &str) -> Vec<serde_json::Value> {
    serde_saphyr::from_multiple::<serde_json::Value>(text)
        .unwrap_or_else(|e| panic!("not a YAML stream: {e}\n{text}"))
        .into_iter()
        .filter(|d| !d.is_null())
        .collect()
}

/// Validates each `(label, document)` against the schema (its `$schema` picks the
/// draft); fails the test listing every error with its label and JSON path.
pub fn validate(schema: &Path, documents: &[(String, serde_json::Value)]) {
    assert!(
        !documents.is_empty(),
        "nothing to validate against {}",
        schema.display()
    );
    let python = require_tool("python3", "python3");
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("documents.json");
    std::fs::write(&input, serde_json::to_vec(documents).unwrap()).unwrap();
    let script = r#"
import json, sys
try:
    import jsonschema
except ImportError:
    sys.exit("the PyPI package jsonschema is missing: pip install jsonschema (or run tests/run.sh)")
schema = json.load(open(sys.argv[1]))
cls = jsonschema.validators.validator_for(schema)
cls.check_schema(schema)
validator = cls(schema)
bad = 0
for label, doc in json.load(open(sys.argv[2])):
    for e in validator.iter_errors(doc):
        bad += 1
        print(f"{label}: /{'/'.join(map(str, e.absolute_path))}: {e.message}")
sys.exit(1 if bad else 0)
"#;
    let out = run(Command::new(python)
        .arg("-c")
        .arg(script)
        .arg(schema)
        .arg(&input));
    assert!(
        out.status.success(),
        "documents do not validate against {}:\n{}{}",
        schema.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Validates every document of a YAML stream against the schema.
pub fn validate_yaml(schema: &Path, label: &str, text: &str) {
    let docs: Vec<_> = yaml_documents(text)
        .into_iter()
        .enumerate()
        .map(|(i, d)| (format!("{label}#{i}"), d))
        .collect();
    validate(schema, &docs);
}

#[cfg(test)]
mod tests {
    use super::*;

    const APP: &str = "crds/argoproj.io_Application_v1alpha1.json";
    const GOOD: &str = "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {name: a}\n\
        spec:\n  project: default\n  destination: {server: https://kubernetes.default.svc}\n  \
        source: {repoURL: https://example.invalid/r.git, path: trust}\n";

    #[test]
    fn a_valid_application_passes() {
        validate_yaml(&schema_path(APP), "good", GOOD);
    }

    #[test]
    #[should_panic(expected = "Additional properties are not allowed")]
    fn an_unknown_field_fails() {
        validate_yaml(
            &schema_path(APP),
            "bad",
            &format!("{GOOD}  sourceTypo: 1\n"),
        );
    }
}
