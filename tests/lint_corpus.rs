//! The lint corpus (`tests/corpus/`, described in its README): every folder except
//! `_pki` is one bad input. For each case, in a copy of the folder:
//! - `lint --format json` reports exactly the codes of `expected`, and every located
//!   line of `expected` (`CODE file:line:column`) is a finding;
//! - human output quotes every located finding with its `[file:line:column]`;
//! - `lint` exits 1 (with `--deny-warnings` when the case has warnings only);
//! - `build` exits 1 and writes nothing: no output folder appears, an existing output
//!   folder stays byte-identical, and no temporary folder is left beside it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use catrust_tests::{bin, run, snapshot_tree, workspace_root};

/// 2027-01-01T00:00:00Z: the corpus clock unless a case has a `now` file.
const DEFAULT_NOW: &str = "1798761600";

struct Case {
    name: String,
    dir: PathBuf,
    codes: BTreeSet<String>,
    located: Vec<String>,
    now: String,
}

fn cases() -> Vec<Case> {
    let root = workspace_root().join("tests/corpus");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&root).expect("tests/corpus") {
        let dir = entry.expect("corpus entry").path();
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        if !dir.is_dir() || name.starts_with('_') {
            continue;
        }
        let expected = std::fs::read_to_string(dir.join("expected"))
            .unwrap_or_else(|e| panic!("{name}/expected: {e}"));
        let mut codes = BTreeSet::new();
        let mut located = Vec::new();
        for line in expected.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let code = line.split_whitespace().next().unwrap().to_string();
            if line.contains(' ') {
                located.push(line.to_string());
            }
            codes.insert(code);
        }
        assert!(!codes.is_empty(), "{name}: expected lists no code");
        let now = std::fs::read_to_string(dir.join("now"))
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| DEFAULT_NOW.to_string());
        out.push(Case {
            name,
            dir,
            codes,
            located,
            now,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "expected" || name == "now" {
            continue;
        }
        let target = to.join(&name);
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn catrust(repo: &Path, now: &str, args: &[&str]) -> std::process::Output {
    run(Command::new(bin("catrust"))
        .args(args)
        .current_dir(repo)
        .env("CATRUST_NOW", now)
        .env("NO_COLOR", "1"))
}

fn check(case: &Case) -> Result<(), String> {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    copy_dir(&case.dir, &repo);

    // JSON: the exact code set, and the located findings.
    let out = catrust(&repo, &case.now, &["lint", "--format", "json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("lint --format json is not JSON ({e}): {out:?}"))?;
    let findings = report["findings"].as_array().ok_or("no findings array")?;
    let got_codes: BTreeSet<String> = findings
        .iter()
        .map(|f| f["code"].as_str().unwrap().to_string())
        .collect();
    if got_codes != case.codes {
        return Err(format!(
            "codes: expected {:?}, got {:?}",
            case.codes, got_codes
        ));
    }
    let got_located: BTreeSet<String> = findings
        .iter()
        .map(|f| {
            format!(
                "{} {}:{}:{}",
                f["code"].as_str().unwrap(),
                f["file"].as_str().unwrap_or("-"),
                f["line"],
                f["column"]
            )
        })
        .collect();
    for l in &case.located {
        if !got_located.contains(l) {
            return Err(format!("no finding `{l}`; got {got_located:?}"));
        }
    }
    for f in findings {
        if f["help"].as_str().is_none_or(str::is_empty) {
            return Err(format!("finding without help: {f}"));
        }
    }
    let errors = report["summary"]["errors"].as_u64().unwrap();
    let warnings_only = errors == 0;

    // Exit codes: 1 on errors; warnings block with --deny-warnings only.
    let lint_args: &[&str] = if warnings_only {
        &["lint", "--deny-warnings"]
    } else {
        &["lint"]
    };
    let human = catrust(&repo, &case.now, lint_args);
    if human.status.code() != Some(1) {
        return Err(format!("lint exit code {:?}, expected 1", human.status));
    }
    let text = String::from_utf8_lossy(&human.stdout);
    for l in &case.located {
        let (code, place) = l.split_once(' ').unwrap();
        if !text.contains(code) || !text.contains(&format!("[{place}]")) {
            return Err(format!("human output lacks {code} at [{place}]:\n{text}"));
        }
    }
    if warnings_only {
        let plain = catrust(&repo, &case.now, &["lint"]);
        if plain.status.code() != Some(0) {
            return Err("warnings alone must not fail lint without --deny-warnings".into());
        }
    }

    // build: exit 1, nothing written.
    let deny: &[&str] = if warnings_only {
        &["--deny-warnings"]
    } else {
        &[]
    };
    let before = snapshot_tree(&repo);
    let mut args = vec!["build", "-f", "trust.yaml", "--out", "out"];
    args.extend_from_slice(deny);
    let out = catrust(&repo, &case.now, &args);
    if out.status.code() != Some(1) {
        return Err(format!("build exit code {:?}, expected 1", out.status));
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    for code in &case.codes {
        if !stderr.contains(code.as_str()) {
            return Err(format!("build's report lacks {code}:\n{stderr}"));
        }
    }
    if repo.join("out").exists() {
        return Err("build wrote out/ despite the findings".into());
    }
    if snapshot_tree(&repo) != before {
        return Err("build changed files beside trust.yaml".into());
    }

    // A previous output folder stays byte-identical.
    let previous = repo.join("rendered");
    std::fs::create_dir_all(previous.join("aks")).unwrap();
    std::fs::write(previous.join("catrust.lock.json"), "{\"previous\": true}\n").unwrap();
    std::fs::write(
        previous.join("aks/custom-ca-trust-certificates.pem"),
        "old\n",
    )
    .unwrap();
    let before = snapshot_tree(&repo);
    let mut args = vec!["build", "-f", "trust.yaml", "--out", "rendered"];
    args.extend_from_slice(deny);
    let out = catrust(&repo, &case.now, &args);
    if out.status.code() != Some(1) {
        return Err(format!(
            "build over a previous output: exit code {:?}",
            out.status
        ));
    }
    if snapshot_tree(&repo) != before {
        return Err("build changed the previous output folder".into());
    }
    let entries: Vec<_> = std::fs::read_dir(&repo)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    if entries
        .iter()
        .any(|n| n.to_string_lossy().starts_with(".rendered"))
    {
        return Err(format!("a temporary folder was left: {entries:?}"));
    }
    Ok(())
}

#[test]
fn every_corpus_case_reports_its_codes_and_writes_nothing() {
    let cases = cases();
    assert!(
        cases.len() >= 40,
        "the corpus has {} cases, at least 40 expected",
        cases.len()
    );
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|c| check(c).err().map(|e| format!("{}: {e}", c.name)))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} corpus cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

/// Every rule family of docs/contract.md §6 that a bad input can trigger has a case
/// (CT401 needs git history and CT403 a stale render: they have their own tests).
#[test]
fn the_corpus_covers_every_input_rule() {
    let covered: BTreeSet<String> = cases().into_iter().flat_map(|c| c.codes).collect();
    let missing: Vec<&str> = catrust::rules::RULES
        .iter()
        .map(|r| r.code.as_str())
        .filter(|c| !matches!(*c, "CT401" | "CT403"))
        .filter(|c| !covered.contains(*c))
        .collect();
    assert!(missing.is_empty(), "no corpus case for {missing:?}");
}

/// The AKS document's troubleshooting cases are in the corpus by name.
#[test]
fn the_aks_troubleshooting_cases_are_present() {
    let names: BTreeSet<String> = cases().into_iter().map(|c| c.name).collect();
    for case in [
        "aks-base64-certificates-file",
        "aks-crlf-secret-input",
        "aks-malformed-pem-header",
    ] {
        assert!(names.contains(case), "missing corpus case {case}");
    }
}

/// The AKS troubleshooting fix end to end: a CRLF certificate is only a warning, and
/// every output is LF PEM (the Secret's data decodes to it; the certificates file is
/// not base64).
#[test]
fn a_crlf_certificate_builds_lf_outputs() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    copy_dir(
        &workspace_root().join("tests/corpus/aks-crlf-secret-input"),
        &repo,
    );
    let out = catrust(&repo, DEFAULT_NOW, &["build", "--out", "out"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("CT101"));
    for (path, bytes) in snapshot_tree(&repo.join("out")) {
        assert!(!bytes.contains(&b'\r'), "CR in {}", path);
    }
    let pem =
        std::fs::read_to_string(repo.join("out/aks/custom-ca-trust-certificates.pem")).unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----\n"), "{pem}");
    let arm: serde_json::Value =
        serde_json::from_slice(&std::fs::read(repo.join("out/aks/managed-cluster.json")).unwrap())
            .unwrap();
    let value = arm["properties"]["securityProfile"]["customCATrustCertificates"][0]
        .as_str()
        .expect("the ARM fragment has the certificate");
    let python = catrust_tests::require_tool("python3", "python3");
    let decoded = run(Command::new(python).args([
        "-c",
        "import base64,sys; sys.stdout.write(base64.b64decode(sys.argv[1]).decode())",
        value,
    ]));
    assert_eq!(
        String::from_utf8_lossy(&decoded.stdout),
        pem.trim_end().to_string() + "\n"
    );
}
