//! `lint --format sarif` validates against the official SARIF 2.1.0 schema (with the
//! PyPI `jsonschema` validator) for every corpus case and a clean input, and carries
//! what GitHub code scanning needs; `explain` has a page for every rule.

use std::path::Path;
use std::process::Command;

use catrust_tests::{bin, require_tool, run, workspace_root};

fn corpus_cases() -> Vec<std::path::PathBuf> {
    let mut cases: Vec<_> = std::fs::read_dir(workspace_root().join("tests/corpus"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir() && !p.file_name().unwrap().to_string_lossy().starts_with('_'))
        .collect();
    cases.sort();
    cases
}

fn sarif_of(dir: &Path) -> Vec<u8> {
    let out = run(Command::new(bin("catrust"))
        .args(["lint", "--format", "sarif"])
        .current_dir(dir)
        .env("CATRUST_NOW", "1798761600"));
    assert!(matches!(out.status.code(), Some(0 | 1)), "{out:?}");
    out.stdout
}

#[test]
fn sarif_validates_against_the_2_1_0_schema() {
    let python = require_tool("python3", "python3");
    let tmp = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    let mut dirs = corpus_cases();
    dirs.push(workspace_root().join("examples/basic"));
    for (i, dir) in dirs.iter().enumerate() {
        let sarif = sarif_of(dir);
        let path = tmp.path().join(format!("{i}.sarif"));
        std::fs::write(&path, &sarif).unwrap();
        files.push(path);
    }
    let schema = workspace_root().join("tests/fixtures/sarif-schema-2.1.0.json");
    let script = r#"
import json, sys
try:
    import jsonschema
except ImportError:
    sys.exit("the PyPI package jsonschema is missing: pip install jsonschema (or run .ci/run)")
schema = json.load(open(sys.argv[1]))
validator = jsonschema.Draft4Validator(schema)
bad = 0
for f in sys.argv[2:]:
    log = json.load(open(f))
    for e in validator.iter_errors(log):
        bad += 1
        print(f, "/".join(map(str, e.absolute_path)), e.message)
    run = log["runs"][0]
    ids = [r["id"] for r in run["tool"]["driver"]["rules"]]
    for r in run["results"]:
        # What GitHub code scanning requires beyond the schema.
        assert r["ruleId"] in ids and ids[r["ruleIndex"]] == r["ruleId"], r
        loc = r["locations"][0]["physicalLocation"]
        assert not loc["artifactLocation"]["uri"].startswith("/"), loc
        assert loc["region"]["startLine"] >= 1, loc
print(len(sys.argv) - 2, "logs checked")
sys.exit(1 if bad else 0)
"#;
    let out = run(Command::new(python)
        .arg("-c")
        .arg(script)
        .arg(&schema)
        .args(&files));
    assert!(
        out.status.success(),
        "SARIF does not validate:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn sarif_results_point_at_the_file_and_region() {
    let case = workspace_root().join("tests/corpus/bad-base64-character");
    let tmp = tempfile::tempdir().unwrap();
    for f in ["trust.yaml", "root.pem"] {
        std::fs::copy(case.join(f), tmp.path().join(f)).unwrap();
    }
    let log: serde_json::Value = serde_json::from_slice(&sarif_of(tmp.path())).unwrap();
    let run = &log["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "catrust");
    let result = &run["results"][0];
    assert_eq!(result["ruleId"], "CT107");
    assert_eq!(result["level"], "error");
    let loc = &result["locations"][0]["physicalLocation"];
    assert_eq!(loc["artifactLocation"]["uri"], "root.pem");
    assert_eq!(loc["artifactLocation"]["uriBaseId"], "%SRCROOT%");
    assert_eq!(loc["region"]["startLine"], 3);
    assert_eq!(loc["region"]["startColumn"], 11);
    assert_eq!(loc["region"]["endColumn"], 12);
    let rule = &run["tool"]["driver"]["rules"][result["ruleIndex"].as_u64().unwrap() as usize];
    assert_eq!(rule["defaultConfiguration"]["level"], "error");
    assert!(rule["help"]["text"]
        .as_str()
        .unwrap()
        .contains("How to fix"));
}

/// CONTRACT section 6, as of this writing; cross-checked against the contract itself
/// when `shared/CONTRACT.md` is beside the repository.
const CONTRACT_CODES: &[&str] = &[
    "CT001", "CT002", "CT003", "CT004", "CT005", "CT006", "CT101", "CT102", "CT103", "CT104",
    "CT105", "CT106", "CT107", "CT201", "CT202", "CT203", "CT204", "CT205", "CT206", "CT207",
    "CT208", "CT209", "CT210", "CT301", "CT302", "CT303", "CT304", "CT305", "CT306", "CT307",
    "CT308", "CT401", "CT402", "CT403",
];

#[test]
fn every_contract_code_has_an_explain_page() {
    let mut codes: Vec<String> = CONTRACT_CODES.iter().map(|c| c.to_string()).collect();
    let contract = workspace_root().join("../shared/CONTRACT.md");
    if let Ok(text) = std::fs::read_to_string(contract) {
        let section = text.split("## 6.").nth(1).expect("CONTRACT section 6");
        for line in section.lines() {
            if let Some(code) = line.strip_prefix("| CT").map(|r| format!("CT{}", &r[..3])) {
                assert!(
                    CONTRACT_CODES.contains(&code.as_str()),
                    "{code} is new in CONTRACT: add it here"
                );
                codes.push(code);
            }
        }
    }
    let list = run(Command::new(bin("catrust")).args(["explain", "--list"]));
    assert!(list.status.success());
    let list = String::from_utf8_lossy(&list.stdout);
    for code in &codes {
        assert!(list.contains(code.as_str()), "explain --list lacks {code}");
        let page = run(Command::new(bin("catrust")).args(["explain", &code.to_lowercase()]));
        assert!(page.status.success(), "explain {code}: {page:?}");
        let page = String::from_utf8_lossy(&page.stdout);
        for part in [code.as_str(), "Why", "How to fix", "Example"] {
            assert!(page.contains(part), "explain {code} lacks {part}:\n{page}");
        }
    }
    let unknown = run(Command::new(bin("catrust")).args(["explain", "CT999"]));
    assert_eq!(unknown.status.code(), Some(2));
}

#[test]
fn docs_rules_md_is_what_explain_markdown_prints() {
    let out = run(Command::new(bin("catrust")).args(["explain", "--markdown"]));
    assert!(out.status.success());
    let checked_in = std::fs::read(workspace_root().join("docs/rules.md")).unwrap();
    assert!(
        out.stdout == checked_in,
        "docs/rules.md is stale: cargo run -q -p catrust -- explain --markdown > docs/rules.md"
    );
}

/// Human output is coloured on a terminal only (and never with NO_COLOR); it always
/// quotes the offending line with its `[file:line:column]`.
#[test]
fn human_output_is_coloured_only_on_a_terminal() {
    let script = require_tool("script", "bsdutils");
    let case = workspace_root().join("tests/corpus/bad-base64-character");
    let tmp = tempfile::tempdir().unwrap();
    for f in ["trust.yaml", "root.pem"] {
        std::fs::copy(case.join(f), tmp.path().join(f)).unwrap();
    }
    let catrust = bin("catrust");
    let lint = |tty: bool, no_color: bool| {
        let mut cmd = if tty {
            let mut c = Command::new(&script);
            c.args([
                "-qec",
                &format!("'{}' lint", catrust.display()),
                "/dev/null",
            ]);
            c
        } else {
            let mut c = Command::new(&catrust);
            c.arg("lint");
            c
        };
        cmd.current_dir(tmp.path())
            .env("CATRUST_NOW", "1798761600")
            .env("TERM", "xterm-256color")
            .env_remove("NO_COLOR");
        if no_color {
            cmd.env("NO_COLOR", "1");
        }
        let out = run(&mut cmd);
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let piped = lint(false, false);
    assert!(
        !piped.contains('\u{1b}'),
        "escape codes in piped output:\n{piped}"
    );
    assert!(piped.contains("[root.pem:3:11]"), "{piped}");
    assert!(piped.contains("CT107"), "{piped}");
    let terminal = lint(true, false);
    assert!(
        terminal.contains("\u{1b}["),
        "no colour on a terminal:\n{terminal}"
    );
    let no_color = lint(true, true);
    assert!(
        !no_color.contains("\u{1b}["),
        "colour despite NO_COLOR:\n{no_color}"
    );
}
