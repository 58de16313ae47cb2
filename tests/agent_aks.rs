//! The agent on AKS-shaped nodes (throwaway roots): AKS's own CA files stay
//! byte-identical, the agent's files never collide with them, and both sets are trusted
//! (a real `openssl s_server` + `curl --cacert` handshake against the root's bundle).
//!
//! The files AKS writes (Azure/AgentBaker `update_certs.sh`, `cse_config.sh`): Ubuntu
//! `/usr/local/share/ca-certificates/certs/aks-custom-<tag>*.crt` and
//! `/usr/local/share/ca-certificates/proxyCA.crt`; Azure Linux
//! `/usr/share/pki/ca-trust-source/anchors/aks-custom-*`.

use std::path::Path;
use std::process::Output;

use catrust_bundle::ContainerdPolicy;
use catrust_tests::agent::{agent, bundle, host_flags, Ca, TlsServer};
use catrust_tests::host::{Node, TestHost};
use catrust_tests::kubelet::SecretVolume;
use catrust_tests::pki::{make_ca, make_server_cert, Issued};

#[track_caller]
fn ok(o: &Output) {
    assert!(
        o.status.success(),
        "catrust-agent: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Installs one CA named `name` with `apply --once`, the bundle laid out as kubelet does.
fn install(h: &TestHost, vol: &SecretVolume, name: &str, cert: &Issued) {
    let cas = [Ca {
        name,
        cert,
        registries: &[],
    }];
    let (files, hash) = bundle(&cas, &[], ContainerdPolicy::None);
    vol.write(&files);
    let mut args = vec!["apply".to_string(), "--once".into()];
    args.extend(host_flags(h.root(), &vol.dir));
    args.extend(["--expected-sha256".into(), hash]);
    ok(&agent(&args.iter().map(String::as_str).collect::<Vec<_>>()));
}

fn uninstall(h: &TestHost) {
    ok(&agent(&[
        "uninstall",
        "--host-root",
        h.root().to_str().unwrap(),
        "--host-exec",
        "direct",
    ]));
}

struct Cas {
    _dir: tempfile::TempDir,
    aks: Issued,
    proxy: Issued,
    corp: Issued,
    leaf_aks: Issued,
    leaf_proxy: Issued,
    leaf_corp: Issued,
}

fn cas() -> Cas {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (aks, proxy, corp) = (
        make_ca(d, "aks-list-ca", 30),
        make_ca(d, "aks-proxy-ca", 30),
        make_ca(d, "corp-rotating", 30),
    );
    Cas {
        leaf_aks: make_server_cert(d, "leaf-aks", &aks),
        leaf_proxy: make_server_cert(d, "leaf-proxy", &proxy),
        leaf_corp: make_server_cert(d, "leaf-corp", &corp),
        aks,
        proxy,
        corp,
        _dir: dir,
    }
}

/// An Ubuntu node as AKS provisions it: the cluster list as `certs/aks-custom-*.crt`,
/// the HTTP proxy's CA as `proxyCA.crt`, refreshed with `update-ca-certificates`.
fn ubuntu_aks_node(c: &Cas) -> TestHost {
    let h = TestHost::debian();
    h.write(
        "etc/os-release",
        "PRETTY_NAME=\"Ubuntu 22.04.5 LTS\"\nNAME=\"Ubuntu\"\nID=ubuntu\nID_LIKE=debian\nVERSION_ID=\"22.04\"\n",
    );
    h.write(
        "usr/local/share/ca-certificates/certs/aks-custom-corp-root.crt",
        c.aks.pem(),
    );
    h.write("usr/local/share/ca-certificates/proxyCA.crt", c.proxy.pem());
    h.refresh();
    h
}

const UBUNTU_AKS_FILES: &[&str] = &[
    "usr/local/share/ca-certificates/certs/aks-custom-corp-root.crt",
    "usr/local/share/ca-certificates/proxyCA.crt",
];

fn files_of(h: &TestHost, paths: &[&str]) -> Vec<Vec<u8>> {
    paths.iter().map(|p| h.read(p)).collect()
}

/// Every anchor under `usr/local/share/ca-certificates` has its own link in
/// `etc/ssl/certs` (update-ca-certificates names links by basename only).
fn every_anchor_is_linked(h: &TestHost) -> Result<(), String> {
    let snap = h.snapshot();
    let anchors: Vec<&String> = snap
        .keys()
        .filter(|k| k.starts_with("usr/local/share/ca-certificates/") && k.ends_with(".crt"))
        .collect();
    for anchor in anchors {
        let linked = snap
            .values()
            .any(|n| matches!(n, Node::Link(t) if t == &h.path(anchor)));
        if !linked {
            return Err(format!(
                "{anchor} has no link in etc/ssl/certs: another anchor with its basename took it"
            ));
        }
    }
    Ok(())
}

#[test]
fn on_an_ubuntu_aks_node_the_agent_leaves_aks_files_byte_identical() {
    let c = cas();
    let h = ubuntu_aks_node(&c);
    let before = files_of(&h, UBUNTU_AKS_FILES);
    let gen = h.generated_bundle();
    let (s_aks, s_proxy, s_corp) = (
        TlsServer::start(&c.leaf_aks),
        TlsServer::start(&c.leaf_proxy),
        TlsServer::start(&c.leaf_corp),
    );
    assert!(s_aks.trusted_by(&gen) && s_proxy.trusted_by(&gen));
    assert!(!s_corp.trusted_by(&gen));

    let vols = tempfile::tempdir().unwrap();
    let vol = SecretVolume::new(&vols.path().join("bundle"));
    install(&h, &vol, "corp-rotating", &c.corp);
    assert!(s_corp.trusted_by(&gen), "the agent's CA is trusted");
    assert!(
        s_aks.trusted_by(&gen) && s_proxy.trusted_by(&gen),
        "AKS's CAs stay trusted"
    );
    assert_eq!(
        files_of(&h, UBUNTU_AKS_FILES),
        before,
        "AKS's files untouched"
    );
    every_anchor_is_linked(&h).unwrap();

    uninstall(&h);
    assert!(!s_corp.trusted_by(&gen), "uninstall removes the agent's CA");
    assert!(
        s_aks.trusted_by(&gen) && s_proxy.trusted_by(&gen),
        "and only it"
    );
    assert_eq!(files_of(&h, UBUNTU_AKS_FILES), before);
}

#[test]
fn an_authority_named_like_an_aks_file_does_not_collide_with_it() {
    // update-ca-certificates links /etc/ssl/certs/<basename>.pem by the anchor's
    // basename only: an agent anchor `catrust/aks-custom-corp-root.crt` would take the
    // link of AKS's `certs/aks-custom-corp-root.crt`. Anchor names that carry the
    // agent's prefix (`catrust-<name>.crt`) cannot collide with AKS's names.
    let c = cas();
    let h = ubuntu_aks_node(&c);
    let before = files_of(&h, UBUNTU_AKS_FILES);
    let vols = tempfile::tempdir().unwrap();
    let vol = SecretVolume::new(&vols.path().join("bundle"));
    for name in ["aks-custom-corp-root", "proxyca"] {
        install(&h, &vol, name, &c.corp);
        assert_eq!(files_of(&h, UBUNTU_AKS_FILES), before);
        every_anchor_is_linked(&h).unwrap_or_else(|e| panic!("authority `{name}`: {e}"));
    }
}

#[test]
fn on_an_azure_linux_aks_node_the_agent_leaves_aks_files_byte_identical() {
    let c = cas();
    let h = TestHost::rhel();
    let aks_file = "usr/share/pki/ca-trust-source/anchors/aks-custom-corp-root.crt";
    h.write(aks_file, c.aks.pem());
    h.refresh();
    let before = h.read(aks_file);
    let gen = h.generated_bundle();
    let (s_aks, s_corp) = (
        TlsServer::start(&c.leaf_aks),
        TlsServer::start(&c.leaf_corp),
    );
    assert!(s_aks.trusted_by(&gen) && !s_corp.trusted_by(&gen));
    let vols = tempfile::tempdir().unwrap();
    let vol = SecretVolume::new(&vols.path().join("bundle"));
    // Named exactly like AKS's file: the agent's own folder and prefix keep them apart.
    install(&h, &vol, "aks-custom-corp-root", &c.corp);
    assert!(s_corp.trusted_by(&gen) && s_aks.trusted_by(&gen));
    assert_eq!(h.read(aks_file), before, "AKS's file untouched");
    assert!(
        Path::new(&h.path("etc/pki/ca-trust/source/anchors/catrust-aks-custom-corp-root.crt"))
            .is_file()
    );
    uninstall(&h);
    assert!(!s_corp.trusted_by(&gen) && s_aks.trusted_by(&gen));
    assert_eq!(h.read(aks_file), before);
}
