//! Pins every rendered file of the shipped examples. A change in output shows up as a
//! snapshot diff (`cargo insta review`), never silently.

use std::path::Path;

use catrust::compile::{self, Request};
use catrust::render::TargetSelection;
use catrust::source::FsSource;
use catrust::templates::Templates;

/// 2030-01-01: inside every example certificate's validity.
const NOW: i64 = 1_893_456_000;

fn rendered(example: &str) -> std::collections::BTreeMap<String, Vec<u8>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(example);
    let source = FsSource::new(&root, Path::new(example)).unwrap();
    let templates = Templates::default();
    let outcome = compile::build(&Request {
        source: &source,
        config_path: "trust.yaml",
        selection: TargetSelection::Declared,
        templates: &templates,
        now: NOW,
        deny_warnings: false,
    })
    .unwrap();
    outcome
        .rendered
        .unwrap_or_else(|| panic!("{example} does not build: {:?}", outcome.diagnostics))
        .files
}

fn snapshot_all(example: &str) {
    for (path, bytes) in rendered(example) {
        let name = format!("{example}__{}", path.replace('/', "__"));
        insta::assert_snapshot!(name, String::from_utf8(bytes).unwrap());
    }
}

#[test]
fn basic_example() {
    snapshot_all("basic");
}

#[test]
fn aks_example() {
    snapshot_all("aks");
}

#[test]
fn agent_example() {
    snapshot_all("agent");
}

#[test]
fn trust_manager_example() {
    snapshot_all("trust-manager");
}

#[test]
fn cluster_trust_bundle_example() {
    snapshot_all("cluster-trust-bundle");
}

#[test]
fn openshift_example() {
    snapshot_all("openshift");
}

#[test]
fn talos_example() {
    snapshot_all("talos");
}

#[test]
fn bottlerocket_example() {
    snapshot_all("bottlerocket");
}

#[test]
fn k3s_example() {
    snapshot_all("k3s");
}

#[test]
fn gke_example() {
    snapshot_all("gke");
}

#[test]
fn rendering_twice_gives_the_same_bytes() {
    for example in [
        "basic",
        "aks",
        "agent",
        "trust-manager",
        "cluster-trust-bundle",
        "openshift",
        "talos",
        "bottlerocket",
        "k3s",
        "gke",
    ] {
        assert_eq!(rendered(example), rendered(example));
    }
}
