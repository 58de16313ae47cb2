//! `catrust build` for the platform targets (trust-manager, ClusterTrustBundle, ...):
//! every rendered document validated strictly against the platform's own schema
//! (`tests/fixtures/schemas/platforms/`, provenance in its README), the limits refused
//! with their codes, hostile values refused before anything is written.

use std::path::{Path, PathBuf};

use catrust_tests::schema::{schema_path, validate_yaml, yaml_documents};
use catrust_tests::{catrust, k8s, require_tool, run, workspace_root};

fn build(example: &str, extra: &[&str]) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let trust = format!("examples/{example}/trust.yaml");
    let mut args = vec!["build", "-f", &trust, "--out", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    let o = catrust(&workspace_root(), &args);
    assert!(
        o.status.success(),
        "{example}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    (tmp, out)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The certificates of a PEM bundle, each checked by the real openssl to be a CA.
fn openssl_cas(bundle: &str) -> usize {
    let openssl = require_tool("openssl", "openssl");
    let tmp = tempfile::tempdir().unwrap();
    let blocks: Vec<&str> = bundle
        .split_inclusive("-----END CERTIFICATE-----\n")
        .filter(|b| b.contains("BEGIN CERTIFICATE"))
        .collect();
    for (i, block) in blocks.iter().enumerate() {
        let file = tmp.path().join(format!("{i}.pem"));
        std::fs::write(&file, block).unwrap();
        let o = run(std::process::Command::new(&openssl)
            .args(["x509", "-noout", "-ext", "basicConstraints", "-in"])
            .arg(&file));
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success() && text.contains("CA:TRUE"),
            "block {i}: {text}"
        );
    }
    blocks.len()
}

fn lock_files(out: &Path) -> Vec<String> {
    let lock: serde_json::Value =
        serde_json::from_str(&read(&out.join("catrust.lock.json"))).unwrap();
    lock["files"].as_object().unwrap().keys().cloned().collect()
}

fn resources(out: &Path) -> Vec<String> {
    let k = &yaml_documents(&read(&out.join("kustomization.yaml")))[0];
    k["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn trust_manager_bundle_and_cluster_bundle_validate_against_the_crds() {
    let (_tmp, out) = build("trust-manager", &[]);
    let bundle = read(&out.join("trust-manager/bundle.yaml"));
    validate_yaml(
        &schema_path("platforms/trust.cert-manager.io_Bundle_v1alpha1.json"),
        "bundle",
        &bundle,
    );
    validate_yaml(
        &schema_path("platforms/trust.cert-manager.io_Bundle_v1alpha1@v0.24.0.json"),
        "bundle",
        &bundle,
    );
    let cluster = read(&out.join("trust-manager/clusterbundle.yaml"));
    validate_yaml(
        &schema_path("platforms/trust-manager.io_ClusterBundle_v1alpha2.json"),
        "clusterbundle",
        &cluster,
    );
    let doc = &yaml_documents(&bundle)[0];
    let sources = doc["spec"]["sources"].as_array().unwrap();
    assert_eq!(sources.len(), 1, "useDefaultCAs: false adds no source");
    assert_eq!(openssl_cas(sources[0]["inLine"].as_str().unwrap()), 2);
    assert_eq!(
        doc["spec"]["target"]["configMap"]["key"],
        "ca-certificates.crt"
    );
    assert_eq!(
        doc["spec"]["target"]["additionalFormats"]["jks"]["key"],
        "truststore.jks"
    );
    assert_eq!(
        doc["spec"]["target"]["namespaceSelector"]["matchLabels"]["catrust.dev/trust"],
        "true"
    );
    // Kubernetes objects: in the kustomization and the lock file.
    for path in [
        "trust-manager/bundle.yaml",
        "trust-manager/clusterbundle.yaml",
    ] {
        assert!(resources(&out).contains(&path.to_string()), "{path}");
        assert!(lock_files(&out).contains(&path.to_string()), "{path}");
    }
    let stream = k8s::kustomize(&out);
    assert!(stream.contains("kind: Bundle") && stream.contains("kind: ClusterBundle"));
}

#[test]
fn cluster_trust_bundle_validates_against_the_api_schema_and_kubernetes_validate() {
    let (_tmp, out) = build("cluster-trust-bundle", &[]);
    let path = out.join("cluster-trust-bundle/clustertrustbundle.yaml");
    let text = read(&path);
    validate_yaml(
        &schema_path("platforms/certificates.k8s.io_ClusterTrustBundle_v1beta1.json"),
        "ctb",
        &text,
    );
    // The real validator, with a Kubernetes release that serves v1beta1.
    k8s::validate_strict_for("1.34.0", &[&path]);
    let doc = &yaml_documents(&text)[0];
    let signer = doc["spec"]["signerName"].as_str().unwrap();
    let name = doc["metadata"]["name"].as_str().unwrap();
    assert!(
        name.starts_with(&format!("{}:", signer.replace('/', ":"))),
        "{name}"
    );
    assert_eq!(openssl_cas(doc["spec"]["trustBundle"].as_str().unwrap()), 2);
}

/// A copy of an example folder with its trust.yaml changed by `edit`.
fn variant(example: &str, edit: impl Fn(String) -> String) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let src = workspace_root().join("examples").join(example);
    std::fs::create_dir_all(tmp.path().join("certs")).unwrap();
    for f in std::fs::read_dir(src.join("certs")).unwrap().flatten() {
        std::fs::copy(f.path(), tmp.path().join("certs").join(f.file_name())).unwrap();
    }
    std::fs::write(
        tmp.path().join("trust.yaml"),
        edit(read(&src.join("trust.yaml"))),
    )
    .unwrap();
    tmp
}

/// `lint --format json` codes, and that `build` refuses and writes nothing.
fn refused(dir: &Path) -> Vec<String> {
    let trust = dir.join("trust.yaml");
    let o = catrust(
        dir,
        &["lint", "-f", trust.to_str().unwrap(), "--format", "json"],
    );
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let out = dir.join("out");
    let b = catrust(
        dir,
        &[
            "build",
            "-f",
            trust.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(b.status.code(), Some(1), "{report:#}");
    assert!(!out.exists(), "a refused build wrote {}", out.display());
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            assert!(
                f["line"].as_u64().unwrap() > 0,
                "every finding is spanned: {f}"
            );
            f["code"].as_str().unwrap().to_string()
        })
        .collect()
}

#[test]
fn cluster_trust_bundle_without_a_signer_has_no_colon_and_a_bad_signer_is_ct512() {
    let plain = variant("cluster-trust-bundle", |t| {
        t.replace("      signerName: corp.example/roots\n", "")
    });
    let out = plain.path().join("out");
    let o = catrust(plain.path(), &["build", "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = read(&out.join("cluster-trust-bundle/clustertrustbundle.yaml"));
    validate_yaml(
        &schema_path("platforms/certificates.k8s.io_ClusterTrustBundle_v1beta1.json"),
        "ctb",
        &text,
    );
    assert_eq!(yaml_documents(&text)[0]["metadata"]["name"], "corp");
    for bad in [
        "corp",
        "Corp.example/roots",
        "corp.example/a/b",
        "corp.example/$(reboot)",
    ] {
        let dir = variant("cluster-trust-bundle", |t| {
            t.replace("corp.example/roots", bad)
        });
        assert_eq!(refused(dir.path()), ["CT512"], "{bad}");
    }
}

#[test]
fn trust_manager_limits_and_hostile_values_are_refused_with_their_codes() {
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "key: ca-certificates.crt",
            "key: \"ca bundle.pem\"",
            &["CT503"],
        ),
        (
            "key: ca-certificates.crt",
            "key: \"../../etc/x\"",
            &["CT503"],
        ),
        ("name: corp-trust", "name: \"corp$(reboot)\"", &["CT503"]),
        (
            "{key: truststore.jks}",
            "{key: ca-certificates.crt}",
            &["CT514"],
        ),
        (
            "      file: certs/proxy-ca.pem\n",
            "      file: certs/proxy-ca.pem\n      pools: [gpu]\n",
            &["CT501"],
        ),
    ];
    for (from, to, codes) in cases {
        let dir = variant("trust-manager", |t| {
            assert!(t.contains(from), "{from}");
            t.replace(from, to)
        });
        let mut found = refused(dir.path());
        found.retain(|c| c != "CT513");
        assert_eq!(&found, codes, "{to}");
    }
}

#[test]
fn distrust_with_default_cas_warns_and_a_distrusted_authority_is_never_rendered() {
    let fingerprint = "00".repeat(32);
    let dir = variant("trust-manager", |t| {
        t.replace("useDefaultCAs: false", "useDefaultCAs: true")
            .replace(
                "  targets:\n",
                &format!("  distrust:\n    - sha256: \"{fingerprint}\"\n  targets:\n"),
            )
    });
    let (report, codes) = catrust_tests::lint_json(dir.path());
    assert!(codes.iter().any(|c| c == "CT511"), "{report:#}");
    // Distrusting a listed authority is CT402: nothing renders it.
    let pem = read(&workspace_root().join("examples/trust-manager/certs/proxy-ca.pem"));
    let der = catrust_tests::pki::der_of(
        &workspace_root().join("examples/trust-manager/certs/proxy-ca.pem"),
    );
    let sha = catrust_bundle::sha256_hex(&der);
    assert!(pem.contains("BEGIN CERTIFICATE"));
    let dir = variant("trust-manager", |t| {
        t.replace(
            "  targets:\n",
            &format!("  distrust:\n    - sha256: \"{sha}\"\n  targets:\n"),
        )
    });
    let mut found = refused(dir.path());
    found.retain(|c| c != "CT513");
    assert_eq!(found, ["CT402"]);
}

#[test]
fn target_flag_picks_one_platform_and_accepts_the_trust_yaml_key() {
    for flag in ["trust-manager", "trustManager"] {
        let (_tmp, out) = build("trust-manager", &["--target", flag]);
        assert!(out.join("trust-manager/bundle.yaml").exists());
    }
    let o = catrust(
        &workspace_root(),
        &[
            "build",
            "-f",
            "examples/trust-manager/trust.yaml",
            "--stdout",
            "--target",
            "cluster-trust-bundle",
        ],
    );
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("spec.targets.clusterTrustBundle"));
}

/// Every OpenShift output (with registries) and its schema.
const OPENSHIFT_SCHEMAS: [(&str, &str); 4] = [
    (
        "openshift/user-ca-bundle.yaml",
        "platforms/openshift-config_ConfigMap_user-ca-bundle.json",
    ),
    (
        "openshift/proxy-cluster.yaml",
        "platforms/config.openshift.io_Proxy_v1.json",
    ),
    (
        "openshift/registry-cas.yaml",
        "platforms/openshift-config_ConfigMap_image-additionalTrustedCA.json",
    ),
    (
        "openshift/image-cluster.yaml",
        "platforms/config.openshift.io_Image_v1.json",
    ),
];

#[test]
fn openshift_objects_validate_and_registry_keys_use_two_dots_for_the_port() {
    let (_tmp, out) = build("openshift", &[]);
    for (file, schema) in OPENSHIFT_SCHEMAS {
        validate_yaml(&schema_path(schema), file, &read(&out.join(file)));
        assert!(resources(&out).contains(&file.to_string()), "{file}");
        assert!(lock_files(&out).contains(&file.to_string()), "{file}");
    }
    // The ConfigMaps are core objects: the real validator too.
    k8s::validate_strict(&[
        &out.join("openshift/user-ca-bundle.yaml"),
        &out.join("openshift/registry-cas.yaml"),
    ]);
    let bundle = &yaml_documents(&read(&out.join("openshift/user-ca-bundle.yaml")))[0];
    assert_eq!(
        openssl_cas(bundle["data"]["ca-bundle.crt"].as_str().unwrap()),
        3
    );
    let cas = &yaml_documents(&read(&out.join("openshift/registry-cas.yaml")))[0];
    let keys: Vec<&String> = cas["data"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["models.corp.example", "registry.corp.example..5000"]);
    assert_eq!(
        openssl_cas(cas["data"]["registry.corp.example..5000"].as_str().unwrap()),
        2
    );
    let image = &yaml_documents(&read(&out.join("openshift/image-cluster.yaml")))[0];
    assert_eq!(image["spec"]["additionalTrustedCA"]["name"], "registry-cas");
    // Without registries: no image config at all.
    let plain = variant("openshift", |t| {
        t.replace(
            "      registries: [models.corp.example, registry.corp.example:5000]\n",
            "",
        )
        .replace("      registries: [registry.corp.example:5000]\n", "")
    });
    let o = catrust(plain.path(), &["build", "--out", "out"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!plain
        .path()
        .join("out/openshift/image-cluster.yaml")
        .exists());
}

#[test]
fn openshift_limits_are_refused_with_their_codes() {
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "registryConfigMap: registry-cas",
            "registryConfigMap: user-ca-bundle",
            &["CT521"],
        ),
        (
            "registryConfigMap: registry-cas",
            "registryConfigMap: \"Registry CAs\"",
            &["CT503"],
        ),
        (
            "registries: [models.corp.example, registry.corp.example:5000]",
            "registries: [\"[::1]:5000\"]",
            &["CT522"],
        ),
        (
            "      file: certs/proxy-ca.pem\n",
            "      file: certs/proxy-ca.pem\n      pools: [gpu]\n",
            &["CT501"],
        ),
    ];
    for (from, to, codes) in cases {
        let dir = variant("openshift", |t| {
            assert!(t.contains(from), "{from}");
            t.replace(from, to)
        });
        assert_eq!(&refused(dir.path()), codes, "{to}");
    }
}

/// Validates every document of a Talos patch against the schema of its kind.
fn validate_talos_patch(text: &str) -> Vec<serde_json::Value> {
    let docs = yaml_documents(text);
    for (i, doc) in docs.iter().enumerate() {
        let schemas: &[&str] = match doc["kind"].as_str() {
            Some("TrustedRootsConfig") => &["platforms/talos_TrustedRootsConfig_v1alpha1.json"],
            Some("RegistryTLSConfig") => &[
                "platforms/talos_RegistryTLSConfig_v1alpha1.json",
                "platforms/talos_RegistryTLSConfig_v1alpha1@v1.13.0.json",
            ],
            None => &["platforms/talos_v1alpha1-machine-registries-patch@v1.11.0.json"],
            Some(other) => panic!("unexpected Talos document kind {other}"),
        };
        for schema in schemas {
            validate_yaml(
                &schema_path(schema),
                &format!("talos#{i}"),
                &serde_json::to_string(doc).unwrap(),
            );
        }
    }
    docs
}

#[test]
fn talos_patch_validates_and_the_script_passes_the_nodes_quoted() {
    let (_tmp, out) = build("talos", &[]);
    let docs = validate_talos_patch(&read(&out.join("talos/machine-config-patch.yaml")));
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["TrustedRootsConfig", "RegistryTLSConfig"]);
    assert_eq!(openssl_cas(docs[0]["certificates"].as_str().unwrap()), 2);
    assert_eq!(docs[1]["name"], "registry.corp.example:5000");
    assert_eq!(openssl_cas(docs[1]["ca"].as_str().unwrap()), 1);
    // Not Kubernetes objects: listed in the lock file, not in the kustomization.
    for file in [
        "talos/machine-config-patch.yaml",
        "talos/talosctl-commands.sh",
    ] {
        assert!(lock_files(&out).contains(&file.to_string()), "{file}");
        assert!(!resources(&out).contains(&file.to_string()), "{file}");
    }
    // The script, run by bash with a talosctl that prints its arguments one per line.
    let script = out.join("talos/talosctl-commands.sh");
    let shellcheck = require_tool("shellcheck", "shellcheck");
    let o = run(std::process::Command::new(shellcheck).arg(&script));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    let patch = format!("@{}", out.join("talos/machine-config-patch.yaml").display());
    let o = run_with_echo(&script, "talosctl", &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        lines(&o),
        [
            "patch",
            "machineconfig",
            "--nodes",
            "10.0.0.2,10.0.0.3",
            "--mode=no-reboot",
            "--patch",
            patch.as_str()
        ]
    );
    // Without nodes the script asks for TALOS_NODES instead of patching nothing.
    let open = variant("talos", |t| {
        t.replace("      nodes: [10.0.0.2, 10.0.0.3]\n", "")
    });
    let o = catrust(open.path(), &["build", "--out", "out"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let script = open.path().join("out/talos/talosctl-commands.sh");
    let o = run_with_echo(&script, "talosctl", &[]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("TALOS_NODES"));
    let o = run_with_echo(&script, "talosctl", &[("TALOS_NODES", "10.0.0.9")]);
    assert!(lines(&o).iter().any(|l| l == "10.0.0.9"));
}

#[test]
fn talos_before_1_12_gets_the_legacy_base64_registry_ca() {
    let dir = variant("talos", |t| {
        t.replace("talosVersion: \"1.12\"", "talosVersion: \"1.11\"")
    });
    let o = catrust(dir.path(), &["build", "--out", "out"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let docs = validate_talos_patch(&read(
        &dir.path().join("out/talos/machine-config-patch.yaml"),
    ));
    assert_eq!(docs.len(), 2);
    assert_eq!(docs[1]["kind"], "TrustedRootsConfig");
    use base64::Engine as _;
    let ca = docs[0]["machine"]["registries"]["config"]["registry.corp.example:5000"]["tls"]["ca"]
        .as_str()
        .unwrap();
    let pem = base64::engine::general_purpose::STANDARD
        .decode(ca)
        .unwrap();
    assert_eq!(openssl_cas(&String::from_utf8(pem).unwrap()), 1);
}

#[test]
fn talos_limits_and_hostile_nodes_are_refused_with_their_codes() {
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "talosVersion: \"1.12\"",
            "talosVersion: \"1.7\"",
            &["CT531"],
        ),
        (
            "talosVersion: \"1.12\"",
            "talosVersion: \"latest\"",
            &["CT006"],
        ),
        (
            "nodes: [10.0.0.2, 10.0.0.3]",
            "nodes: [\"10.0.0.2; reboot\", \"$(reboot)\"]",
            &["CT532", "CT532"],
        ),
        (
            "nodes: [10.0.0.2, 10.0.0.3]",
            "nodes: [\"--insecure\"]",
            &["CT532"],
        ),
        (
            "      file: certs/proxy-ca.pem\n",
            "      file: certs/proxy-ca.pem\n      pools: [gpu]\n",
            &["CT501"],
        ),
    ];
    for (from, to, codes) in cases {
        let dir = variant("talos", |t| {
            assert!(t.contains(from), "{from}");
            t.replace(from, to)
        });
        assert_eq!(&refused(dir.path()), codes, "{to}");
    }
}

#[test]
fn one_trust_yaml_feeds_aks_the_agent_trust_manager_and_talos() {
    let (_tmp, out) = build("multi-platform", &[]);
    let bundle = read(&out.join("trust-manager/bundle.yaml"));
    validate_yaml(
        &schema_path("platforms/trust.cert-manager.io_Bundle_v1alpha1.json"),
        "bundle",
        &bundle,
    );
    let talos = validate_talos_patch(&read(&out.join("talos/machine-config-patch.yaml")));
    let aks = read(&out.join("aks/custom-ca-trust-certificates.pem"));
    // The same certificates, byte for byte, in every platform's output.
    let inline = yaml_documents(&bundle)[0]["spec"]["sources"][0]["inLine"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(inline, talos[0]["certificates"].as_str().unwrap());
    assert_eq!(
        inline,
        aks.replace(
            "-----END CERTIFICATE-----\n\n",
            "-----END CERTIFICATE-----\n"
        )
    );
    assert_eq!(
        resources(&out),
        [
            "agent/serviceaccount.yaml",
            "agent/bundle-secret.yaml",
            "agent/daemonset.yaml",
            "trust-manager/bundle.yaml"
        ]
    );
    k8s::kustomize(&out);
}

/// A TOML file as JSON, parsed by Python's tomllib (the parser the schema names).
fn toml_as_json(path: &Path) -> serde_json::Value {
    let python = require_tool("python3", "python3");
    let o = run(std::process::Command::new(python)
        .args([
            "-c",
            "import json, sys, tomllib; print(json.dumps(tomllib.load(open(sys.argv[1], 'rb'))))",
        ])
        .arg(path));
    assert!(
        o.status.success(),
        "{}: {}",
        path.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

/// Runs a rendered script with `tool` replaced by one that prints its arguments one
/// per line, with `env` set (and TALOS_NODES unset unless given).
fn run_with_echo(script: &Path, tool: &str, env: &[(&str, &str)]) -> std::process::Output {
    let bin = tempfile::tempdir().unwrap();
    std::fs::write(
        bin.path().join(tool),
        "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(
        bin.path().join(tool),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap()
    );
    let mut cmd = std::process::Command::new("bash");
    cmd.arg(script).env("PATH", &path).env_remove("TALOS_NODES");
    for (k, v) in env {
        cmd.env(k, v);
    }
    run(&mut cmd)
}

fn lines(o: &std::process::Output) -> Vec<String> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn bottlerocket_user_data_validates_and_apiclient_sets_the_same_bundle() {
    let (_tmp, out) = build("bottlerocket", &[]);
    let user_data = out.join("bottlerocket/user-data.toml");
    let doc = toml_as_json(&user_data);
    catrust_tests::schema::validate(
        &schema_path("platforms/bottlerocket_settings.pki_user-data-fragment.json"),
        &[("user-data.toml".into(), doc.clone())],
    );
    let bundle = &doc["settings"]["pki"]["catrust-corp"];
    assert_eq!(bundle["trusted"], true);
    use base64::Engine as _;
    let data = bundle["data"].as_str().unwrap();
    let pem = base64::engine::general_purpose::STANDARD
        .decode(data)
        .unwrap();
    assert_eq!(openssl_cas(&String::from_utf8(pem).unwrap()), 2);
    for file in [
        "bottlerocket/user-data.toml",
        "bottlerocket/apiclient-commands.sh",
    ] {
        assert!(lock_files(&out).contains(&file.to_string()), "{file}");
        assert!(!resources(&out).contains(&file.to_string()), "{file}");
    }
    let script = out.join("bottlerocket/apiclient-commands.sh");
    let o = run(std::process::Command::new(require_tool("shellcheck", "shellcheck")).arg(&script));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    let o = run_with_echo(&script, "apiclient", &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        lines(&o),
        [
            "set".to_string(),
            format!("pki.catrust-corp.data={data}"),
            "pki.catrust-corp.trusted=true".into()
        ]
    );
}

#[test]
fn bottlerocket_registry_cas_distrust_and_size_are_findings() {
    let registry = variant("bottlerocket", |t| {
        t.replace(
            "      file: certs/proxy-ca.pem\n",
            "      file: certs/proxy-ca.pem\n      registries: [registry.corp.example:5000]\n",
        )
    });
    let trust = registry.path().join("trust.yaml");
    let o = catrust(
        registry.path(),
        &[
            "lint",
            "-f",
            trust.to_str().unwrap(),
            "--format",
            "json",
            "--deny-warnings",
        ],
    );
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        o.status.code(),
        Some(1),
        "--deny-warnings refuses a registry CA on Bottlerocket"
    );
    assert_eq!(report["findings"][0]["code"], "CT541", "{report:#}");
    let distrust = variant("bottlerocket", |t| {
        t.replace(
            "  targets:\n",
            &format!(
                "  distrust:\n    - sha256: \"{}\"\n  targets:\n",
                "ab".repeat(32)
            ),
        )
    });
    let o = catrust(distrust.path(), &["lint", "--format", "json"]);
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["findings"][0]["code"], "CT542", "{report:#}");
    // 24 EC roots: more than the 16 KiB EC2 user data holds.
    let big = variant("bottlerocket", |t| t);
    let mut authorities = String::new();
    for i in 0..24 {
        let ca = catrust_tests::pki::make_ca(big.path(), &format!("big-{i}"), 3650);
        std::fs::copy(&ca.cert, big.path().join(format!("certs/big-{i}.pem"))).unwrap();
        authorities.push_str(&format!(
            "    - name: big-{i}\n      file: certs/big-{i}.pem\n"
        ));
    }
    let text = read(&big.path().join("trust.yaml"))
        .replace("  targets:\n", &format!("{authorities}  targets:\n"));
    std::fs::write(big.path().join("trust.yaml"), text).unwrap();
    let codes = refused(big.path());
    assert!(codes.contains(&"CT543".to_string()), "{codes:?}");
}

#[test]
fn k3s_registries_yaml_validates_and_names_the_ca_files_it_writes() {
    let (_tmp, out) = build("k3s", &[]);
    let text = read(&out.join("k3s/registries.yaml"));
    validate_yaml(
        &schema_path("platforms/k3s-rke2_registries.yaml.json"),
        "registries.yaml",
        &text,
    );
    let doc = &yaml_documents(&text)[0];
    let configs = doc["configs"].as_object().unwrap();
    assert_eq!(
        configs.keys().collect::<Vec<_>>(),
        ["models.corp.example", "registry.corp.example:5000"]
    );
    for (host, cfg) in configs {
        let ca_file = cfg["tls"]["ca_file"].as_str().unwrap();
        let name = ca_file
            .strip_prefix("/etc/rancher/k3s/catrust/")
            .unwrap_or_else(|| panic!("{host}: {ca_file}"));
        let rendered = format!("k3s/catrust/{name}");
        assert_eq!(openssl_cas(&read(&out.join(&rendered))), 1, "{rendered}");
        assert!(lock_files(&out).contains(&rendered) && !resources(&out).contains(&rendered));
    }
    // RKE2 reads the same format from its own folder.
    let rke2 = variant("k3s", |t| {
        t.replace("distribution: k3s", "distribution: rke2")
    });
    let o = catrust(rke2.path(), &["build", "--out", "out"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(read(&rke2.path().join("out/k3s/registries.yaml"))
        .contains("ca_file: /etc/rancher/rke2/catrust/"));
}

#[test]
fn k3s_without_registries_and_beside_the_agent_are_findings() {
    let codes = |dir: &Path| catrust_tests::lint_json(dir).1;
    let none = variant("k3s", |t| {
        t.replace("      registries: [registry.corp.example:5000]\n", "")
            .replace("      registries: [models.corp.example]\n", "")
    });
    assert_eq!(codes(none.path()), ["CT551"]);
    let both = variant("k3s", |t| {
        t.replace(
            "  targets:\n",
            "  targets:\n    agent:\n      image: ghcr.io/example/catrust-agent:0.1.0\n",
        )
    });
    assert_eq!(codes(both.path()), ["CT552"]);
    let bad = variant("k3s", |t| {
        t.replace("distribution: k3s", "distribution: microk8s")
    });
    assert_eq!(refused(bad.path()), ["CT006"]);
}

/// The file as gcloud itself reads it: `LoadContainerdConfigFromYAML` of the Cloud
/// SDK's own Python (`gcloud container clusters update --containerd-config-from-file`).
fn gcloud_parses(config: &Path) -> String {
    let gcloud = require_tool("gcloud", "google-cloud-cli (Google's Debian repository)");
    let sdk = std::fs::canonicalize(&gcloud).unwrap();
    let root = sdk.parent().unwrap().parent().unwrap();
    let script = "import sys\nroot = sys.argv[1]\nsys.path[:0] = [root + '/lib', root + '/lib/third_party']\nfrom googlecloudsdk.api_lib.container import util\nfrom googlecloudsdk.generated_clients.apis.container.v1 import container_v1_messages as m\nc = m.ContainerdConfig()\nutil.LoadContainerdConfigFromYAML(c, open(sys.argv[2]).read(), m)\nprint(c)\n";
    let o = run(
        std::process::Command::new(require_tool("python3", "python3"))
            .arg("-c")
            .arg(script)
            .arg(root)
            .arg(config),
    );
    assert!(
        o.status.success(),
        "gcloud refuses {}: {}",
        config.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn gke_containerd_config_validates_and_gcloud_reads_it() {
    let (_tmp, out) = build("gke", &[]);
    let config = out.join("gke/containerd-config.yaml");
    validate_yaml(
        &schema_path("platforms/gke_containerd-config-from-file.json"),
        "containerd-config",
        &read(&config),
    );
    let parsed = gcloud_parses(&config);
    assert!(
        parsed.contains(
            "secretUri: 'projects/my-project/secrets/catrust-corp-corp-root-2024/versions/latest'"
        ),
        "{parsed}"
    );
    assert!(
        parsed.contains("fqdns: ['registry.corp.example:5000']"),
        "{parsed}"
    );
    for file in [
        "gke/containerd-config.yaml",
        "gke/gcloud-commands.sh",
        "gke/certs/corp-root-2024.pem",
    ] {
        assert!(lock_files(&out).contains(&file.to_string()), "{file}");
        assert!(!resources(&out).contains(&file.to_string()), "{file}");
    }
    assert_eq!(
        openssl_cas(&read(&out.join("gke/certs/models-registry-ca.pem"))),
        1
    );
    let script = out.join("gke/gcloud-commands.sh");
    let o = run(std::process::Command::new(require_tool("shellcheck", "shellcheck")).arg(&script));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    let o = run_with_echo(&script, "gcloud", &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let args = lines(&o);
    let data_file = format!(
        "--data-file={}/certs/corp-root-2024.pem",
        out.join("gke").display()
    );
    assert!(args.contains(&data_file), "{args:?}");
    let update = format!("--containerd-config-from-file={}", config.display());
    assert_eq!(
        args[args.len() - 9..],
        [
            "container",
            "clusters",
            "update",
            "gke-prod",
            "--project",
            "my-project",
            "--location",
            "europe-west1",
            update.as_str()
        ]
    );
}

#[test]
fn gke_limits_and_hostile_names_are_refused_with_their_codes() {
    let six: String = (1..=6).map(|i| format!("    - name: r{i}\n      file: certs/r{i}.pem\n      registries: [r{i}.corp.example]\n")).collect();
    let many = variant("gke", |t| {
        t.replace("  targets:\n", &format!("{six}  targets:\n"))
    });
    for i in 1..=6 {
        let ca = catrust_tests::pki::make_ca(many.path(), &format!("r{i}"), 3650);
        std::fs::copy(&ca.cert, many.path().join(format!("certs/r{i}.pem"))).unwrap();
    }
    assert_eq!(refused(many.path()), ["CT561"]);
    let fqdns: Vec<String> = (1..=26).map(|i| format!("r{i}.corp.example")).collect();
    let cases: Vec<(&str, String, &[&str])> = vec![
        (
            "registries: [models.corp.example]",
            format!("registries: [{}]", fqdns.join(", ")),
            &["CT562"],
        ),
        (
            "registries: [models.corp.example]",
            "registries: [\"*.corp.example\"]".into(),
            &["CT006", "CT563"],
        ),
        (
            "registries: [models.corp.example]",
            "registries: [registry.corp.example:5000]".into(),
            &["CT564"],
        ),
        (
            "project: my-project",
            "project: \"my-project'; rm -rf / #\"".into(),
            &["CT565"],
        ),
        (
            "cluster: gke-prod",
            "cluster: \"$(reboot)\"".into(),
            &["CT565"],
        ),
        (
            "location: europe-west1",
            "location: \"--impersonate-service-account=x\"".into(),
            &["CT565"],
        ),
    ];
    for (from, to, codes) in &cases {
        let dir = variant("gke", |t| {
            assert!(t.contains(from), "{from}");
            t.replace(from, to)
        });
        let mut found = refused(dir.path());
        found.sort();
        assert_eq!(&found, codes, "{to}");
    }
}

#[test]
fn a_trust_yaml_with_every_target_builds_and_every_document_validates() {
    let every = "    clusterTrustBundle: {signerName: corp.example/roots}\n    openshift: {}\n    bottlerocket: {}\n    k3s: {}\n    gke: {project: my-project, cluster: gke-prod, location: europe-west1}\n";
    let dir = variant("multi-platform", |t| {
        t.replace("    talos:\n", &format!("{every}    talos:\n"))
    });
    let o = catrust(dir.path(), &["build", "--out", "out"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = dir.path().join("out");
    let schemas = [
        (
            "trust-manager/bundle.yaml",
            "platforms/trust.cert-manager.io_Bundle_v1alpha1.json",
        ),
        (
            "cluster-trust-bundle/clustertrustbundle.yaml",
            "platforms/certificates.k8s.io_ClusterTrustBundle_v1beta1.json",
        ),
        (
            "k3s/registries.yaml",
            "platforms/k3s-rke2_registries.yaml.json",
        ),
        (
            "gke/containerd-config.yaml",
            "platforms/gke_containerd-config-from-file.json",
        ),
    ];
    for (file, schema) in schemas.into_iter().chain(OPENSHIFT_SCHEMAS) {
        validate_yaml(&schema_path(schema), file, &read(&out.join(file)));
    }
    validate_talos_patch(&read(&out.join("talos/machine-config-patch.yaml")));
    catrust_tests::schema::validate(
        &schema_path("platforms/bottlerocket_settings.pki_user-data-fragment.json"),
        &[(
            "user-data.toml".into(),
            toml_as_json(&out.join("bottlerocket/user-data.toml")),
        )],
    );
    gcloud_parses(&out.join("gke/containerd-config.yaml"));
    k8s::validate_strict(&[&out.join("agent/daemonset.yaml")]);
    k8s::kustomize(&out);
    // Every file is in the lock file; every shell script passes shellcheck.
    let locked = lock_files(&out);
    let shellcheck = require_tool("shellcheck", "shellcheck");
    for entry in walk(&out) {
        let rel = entry
            .strip_prefix(&out)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if rel != "catrust.lock.json" {
            assert!(locked.contains(&rel), "{rel} is not in the lock file");
        }
        if rel.ends_with(".sh") {
            let o = run(std::process::Command::new(&shellcheck).arg(&entry));
            assert!(
                o.status.success(),
                "{rel}: {}",
                String::from_utf8_lossy(&o.stdout)
            );
        }
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
