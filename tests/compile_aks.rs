//! `catrust build` for the aks target, end to end: the real binary on temp folders,
//! checked with the tools a user would point at its output.

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use catrust_tests::{catrust, k8s, pki, require_tool, run, snapshot_tree, workspace_root};

fn example() -> PathBuf {
    workspace_root().join("examples/basic/trust.yaml")
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
            "aks/az-commands.sh",
            "aks/custom-ca-trust-certificates.pem",
            "aks/custom-ca-trust-secret.yaml",
            "aks/managed-cluster.json",
            "catrust.lock.json",
            "kustomization.yaml"
        ]
    );

    // kubectl kustomize accepts the folder; the schema validator accepts every YAML.
    let stream = k8s::kustomize(&out);
    assert!(stream.contains("name: custom-ca-trust-secret"));
    k8s::validate_strict(&[&out.join("aks/custom-ca-trust-secret.yaml")]);

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
    let secret: Secret =
        serde_saphyr::from_slice(&files["aks/custom-ca-trust-secret.yaml"]).unwrap();
    assert_eq!(
        (
            secret.metadata.name.as_str(),
            secret.metadata.namespace.as_str(),
            secret.type_.as_str()
        ),
        ("custom-ca-trust-secret", "kube-system", "Opaque")
    );
    assert_eq!(
        secret.data.keys().collect::<Vec<_>>(),
        ["corp-root-2024.crt", "proxy-ca.crt"]
    );
    for (key, value) in &secret.data {
        let pem = base64::engine::general_purpose::STANDARD
            .decode(value)
            .unwrap();
        assert!(!pem.contains(&b'\r'), "{key} has CR");
        let f = tmp.path().join(key);
        std::fs::write(&f, &pem).unwrap();
        let o = run(Command::new(require_tool("openssl", "openssl"))
            .args(["x509", "-noout", "-subject", "-in"])
            .arg(&f));
        assert!(o.status.success(), "openssl cannot read {key}");
    }

    // The certificates file is PEM, not base64, and survives the Azure CLI's split rule
    // (split on a blank line, at most 10 chunks, each one certificate).
    let pem = String::from_utf8(files["aks/custom-ca-trust-certificates.pem"].clone()).unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----\n") && !pem.contains('\r'));
    let chunks: Vec<&str> = pem.split("\n\n").collect();
    assert_eq!(chunks.len(), 2);
    assert!(chunks.len() <= 10);
    for chunk in chunks {
        let chunk = chunk.trim_end_matches('\n');
        assert!(
            chunk.starts_with("-----BEGIN CERTIFICATE-----")
                && chunk.ends_with("-----END CERTIFICATE-----")
        );
        assert_eq!(chunk.matches("BEGIN").count(), 1);
    }

    // The ARM fragment has the certificates as base64 PEM, in order.
    let arm: serde_json::Value =
        serde_json::from_slice(&files["aks/managed-cluster.json"]).unwrap();
    let list = arm["properties"]["securityProfile"]["customCATrustCertificates"]
        .as_array()
        .unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].as_str().unwrap(), secret.data["corp-root-2024.crt"]);

    // The az script passes bash -n and shellcheck.
    let script = out.join("aks/az-commands.sh");
    let o = run(Command::new("bash").arg("-n").arg(&script));
    assert!(o.status.success());
    let o = run(Command::new(require_tool("shellcheck", "shellcheck")).arg(&script));
    assert!(
        o.status.success(),
        "shellcheck: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    let text = String::from_utf8_lossy(&files["aks/az-commands.sh"]).into_owned();
    assert!(text.contains("az aks update --resource-group \"$RESOURCE_GROUP\" --name \"$CLUSTER\" --custom-ca-trust-certificates \"$CERTIFICATES_FILE\""));
    assert!(
        !text.contains("aks-preview"),
        "no preview prerequisites without per-pool flags"
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
        .args(["build", "-f", "basic/trust.yaml", "--out"])
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
    assert_eq!(codes(&o.stderr), ["CT101", "CT106"], "warnings, not errors");
    let clean = snapshot_tree(&s.path().join("clean"));
    let messy = snapshot_tree(&s.path().join("messy"));
    for f in [
        "aks/custom-ca-trust-secret.yaml",
        "aks/custom-ca-trust-certificates.pem",
        "aks/managed-cluster.json",
    ] {
        assert_eq!(clean[f], messy[f], "{f} differs");
        assert!(!messy[f].contains(&b'\r'));
    }
}

#[test]
fn eleven_certificates_are_ct301_and_nothing_is_written() {
    let s = Scratch::new();
    let mut authorities = String::new();
    for i in 0..11 {
        s.ca(&format!("ca-{i}"));
        authorities.push_str(&format!(
            "    - name: ca-{i}\n      file: certs/ca-{i}.pem\n"
        ));
    }
    s.trust(&authorities, "");
    let o = s.build("out");
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(codes(&o.stderr), ["CT301"]);
    assert!(!s.path().join("out").exists());

    // With the cluster list off, the Secret carries all eleven.
    s.trust(&authorities, "      certificatesFile: false\n");
    let o = s.build("out");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!s
        .path()
        .join("out/aks/custom-ca-trust-certificates.pem")
        .exists());
    assert!(!s.path().join("out/aks/managed-cluster.json").exists());
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
fn per_pool_flags_render_the_preview_prerequisites_and_warn() {
    let s = Scratch::new();
    s.ca("a");
    s.trust(
        "    - name: a\n      file: certs/a.pem\n",
        "      nodePools:\n        - name: nodepool1\n          osType: Linux\n          customCATrust: true\n        - name: \"old pool\"\n          customCATrust: false\n",
    );
    let o = s.build("out");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(codes(&o.stderr), ["CT303"]);
    let script = s.path().join("out/aks/az-commands.sh");
    let text = std::fs::read_to_string(&script).unwrap();
    for line in [
        "az extension add --name aks-preview",
        "az extension update --name aks-preview",
        "az feature register --namespace Microsoft.ContainerService --name CustomCATrustPreview",
        "az feature show --namespace Microsoft.ContainerService --name CustomCATrustPreview",
        "az provider register --namespace Microsoft.ContainerService",
        "--name nodepool1 --enable-custom-ca-trust",
        "--name 'old pool' --disable-custom-ca-trust",
        "az aks nodepool add --resource-group \"$RESOURCE_GROUP\" --cluster-name \"$CLUSTER\" --name nodepool1 --os-type Linux --enable-custom-ca-trust",
        "retired on 2026-09-14",
    ] {
        assert!(text.contains(line), "script lacks `{line}`:\n{text}");
    }
    let o = run(Command::new(require_tool("shellcheck", "shellcheck")).arg(&script));
    assert!(
        o.status.success(),
        "shellcheck: {}",
        String::from_utf8_lossy(&o.stdout)
    );
}

#[test]
fn hostile_values_are_shell_quoted() {
    let s = Scratch::new();
    s.ca("a");
    s.write(
        "trust.yaml",
        "apiVersion: catrust.dev/v1alpha1\nkind: TrustConfig\nmetadata:\n  name: t\nspec:\n  authorities:\n    - name: a\n      file: certs/a.pem\n  targets:\n    aks:\n      resourceGroup: \"rg; touch /tmp/pwned-$USER\"\n      cluster: \"$(reboot)\"\n",
    );
    assert!(s.build("out").status.success());
    let script = s.path().join("out/aks/az-commands.sh");
    let text = std::fs::read_to_string(&script).unwrap();
    assert!(
        text.contains("RESOURCE_GROUP='rg; touch /tmp/pwned-$USER'"),
        "{text}"
    );
    assert!(text.contains("CLUSTER='$(reboot)'"));
    assert!(
        run(Command::new(require_tool("shellcheck", "shellcheck")).arg(&script))
            .status
            .success()
    );
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
    assert!(text.starts_with("apiVersion: v1\nkind: Secret\n"));
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
