//! The platform targets: each platform's own object or file for trusting a CA
//! (trust-manager and ClusterTrustBundle for pods, OpenShift, Talos). Pure, like the
//! other renderers; every platform trusts one set per cluster (`pools` is CT501).
//! `k3s` renders only the registries' CAs (the OS store of k3s nodes is the agent's).

pub mod bottlerocket;
pub mod gke;
pub mod k3s;
pub mod openshift;
pub mod talos;
pub mod trust_manager;

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::{k8s, Provenance, RenderError, Rendered};
use crate::config::TrustConfig;
use crate::load::Certificate;
use crate::render::Inputs;

/// A platform target `--target` can pick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    TrustManager,
    ClusterTrustBundle,
    OpenShift,
    Talos,
    Bottlerocket,
    K3s,
    Gke,
}

impl Platform {
    pub const ALL: [Platform; 7] = [
        Platform::TrustManager,
        Platform::ClusterTrustBundle,
        Platform::OpenShift,
        Platform::Talos,
        Platform::Bottlerocket,
        Platform::K3s,
        Platform::Gke,
    ];

    /// The key under `spec.targets`.
    pub fn key(self) -> &'static str {
        match self {
            Platform::TrustManager => "trustManager",
            Platform::ClusterTrustBundle => "clusterTrustBundle",
            Platform::OpenShift => "openshift",
            Platform::Talos => "talos",
            Platform::Bottlerocket => "bottlerocket",
            Platform::K3s => "k3s",
            Platform::Gke => "gke",
        }
    }

    pub fn declared(self, config: &TrustConfig) -> bool {
        let p = &config.targets.platforms;
        match self {
            Platform::TrustManager => p.trust_manager.is_some(),
            Platform::ClusterTrustBundle => p.cluster_trust_bundle.is_some(),
            Platform::OpenShift => p.openshift.is_some(),
            Platform::Talos => p.talos.is_some(),
            Platform::Bottlerocket => p.bottlerocket.is_some(),
            Platform::K3s => p.k3s.is_some(),
            Platform::Gke => p.gke.is_some(),
        }
    }
}

/// Serialises one document: like [`super::k8s::to_yaml`], but PEM text is a literal
/// block (`|`), so a rotation reads as a few changed lines in review, not one long
/// escaped string. Long single-line strings (base64) are never folded.
pub fn to_yaml(value: &impl serde::Serialize) -> String {
    let mut options = serde_saphyr::SerializerOptions::default();
    options.prefer_block_scalars = true;
    options.folded_wrap_chars = usize::MAX;
    let mut s = serde_saphyr::to_string_with_options(value, options)
        .expect("platform documents serialise to YAML");
    if !s.ends_with('\n') {
        s.push('\n');
    }
    s
}

/// Adds a Kubernetes object to the output folder, the `--stdout` stream and the
/// kustomization.
pub(super) fn emit(out: &mut Rendered, path: &str, object: &impl serde::Serialize) {
    out.add_object(path, to_yaml(object));
}

/// `metadata` of a top-level platform object: name, the recommended labels and the
/// provenance annotations; `namespace` for namespaced objects.
pub(super) fn metadata(
    config: &TrustConfig,
    (name, namespace): (&str, Option<&str>),
    component: &str,
    provenance: &Provenance,
) -> Value {
    let mut m = json!({ "name": name });
    if let Some(namespace) = namespace {
        m["namespace"] = json!(namespace);
    }
    m["labels"] = json!(k8s::labels(&config.name.value, component));
    let annotations = provenance.annotations();
    if !annotations.is_empty() {
        m["annotations"] = json!(annotations);
    }
    m
}

/// The trusted set as one PEM bundle, in trust.yaml order.
pub fn pem_bundle<'c>(certificates: impl IntoIterator<Item = &'c Certificate>) -> String {
    certificates.into_iter().map(|c| c.pem.as_str()).collect()
}

/// Registry `host[:port]` → the certificates of the authorities naming it, hosts
/// sorted, certificates in trust.yaml order.
pub fn registry_cas<'c>(
    config: &TrustConfig,
    certificates: &'c [Certificate],
) -> BTreeMap<String, Vec<&'c Certificate>> {
    let mut out: BTreeMap<String, Vec<&Certificate>> = BTreeMap::new();
    for c in certificates {
        for r in &config.authorities[c.authority].registries {
            let list = out.entry(r.value.clone()).or_default();
            if !list.iter().any(|x| x.der == c.der) {
                list.push(c);
            }
        }
    }
    out
}

/// Renders `platform`. The configuration passed the lint.
pub(super) fn render(
    platform: Platform,
    input: &Inputs<'_>,
    out: &mut Rendered,
) -> Result<(), RenderError> {
    let p = &input.config.targets.platforms;
    let missing = || RenderError::TargetNotDeclared(platform.key());
    match platform {
        Platform::TrustManager => {
            let tm = p.trust_manager.as_ref().ok_or_else(missing)?;
            trust_manager::render_bundle(input, tm, out);
        }
        Platform::ClusterTrustBundle => {
            let ctb = p.cluster_trust_bundle.as_ref().ok_or_else(missing)?;
            trust_manager::render_cluster_trust_bundle(input, ctb, out);
        }
        Platform::OpenShift => {
            let os = p.openshift.as_ref().ok_or_else(missing)?;
            openshift::render(input, os, out);
        }
        Platform::Talos => {
            let talos = p.talos.as_ref().ok_or_else(missing)?;
            talos::render(input, talos, out)?;
        }
        Platform::Bottlerocket => {
            p.bottlerocket.as_ref().ok_or_else(missing)?;
            bottlerocket::render(input, out)?;
        }
        Platform::K3s => {
            let k3s = p.k3s.as_ref().ok_or_else(missing)?;
            k3s::render(input, k3s, out);
        }
        Platform::Gke => {
            let gke = p.gke.as_ref().ok_or_else(missing)?;
            gke::render(input, gke, out)?;
        }
    }
    Ok(())
}
