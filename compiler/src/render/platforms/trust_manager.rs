//! Trust for pods: the cert-manager trust-manager `Bundle` (`trust.cert-manager.io/v1alpha1`,
//! and optionally the newer `ClusterBundle`, `trust-manager.io/v1alpha2`) and the
//! Kubernetes `ClusterTrustBundle` (`certificates.k8s.io/v1beta1`). Node trust never
//! reaches pods; these do. Distrusted fingerprints are never trusted (CT402), so they
//! are never in an inline source.

use serde_json::{json, Map, Value};

use super::super::Rendered;
use super::{emit, metadata, pem_bundle};
use crate::config::{name_or_default, ClusterTrustBundleTarget, TrustConfig, TrustManagerTarget};
use crate::render::Inputs;

/// Where a file lives in the output folder.
pub const BUNDLE_PATH: &str = "trust-manager/bundle.yaml";
pub const CLUSTER_BUNDLE_PATH: &str = "trust-manager/clusterbundle.yaml";
pub const CLUSTER_TRUST_BUNDLE_PATH: &str = "cluster-trust-bundle/clustertrustbundle.yaml";

fn match_labels(tm: &TrustManagerTarget) -> Value {
    let labels: Map<String, Value> = tm
        .namespace_selector
        .iter()
        .map(|(k, v)| (k.value.clone(), Value::String(v.value.clone())))
        .collect();
    json!({ "matchLabels": labels })
}

/// The Bundle (and the ClusterBundle when asked for).
pub(in crate::render) fn render_bundle(
    input: &Inputs<'_>,
    tm: &TrustManagerTarget,
    out: &mut Rendered,
) {
    let name = name_or_default(&tm.name, &input.config.name.value, "");
    let inline = pem_bundle(input.certificates);
    let mut sources = Vec::new();
    if tm.use_default_cas.value {
        sources.push(json!({"useDefaultCAs": true}));
    }
    if !inline.is_empty() {
        sources.push(json!({ "inLine": inline }));
    }
    let mut target = json!({"configMap": {"key": tm.key.value}});
    let mut formats = Map::new();
    if let Some(key) = &tm.jks_key {
        formats.insert("jks".into(), json!({"key": key.value}));
    }
    if let Some(key) = &tm.pkcs12_key {
        formats.insert("pkcs12".into(), json!({"key": key.value}));
    }
    if !formats.is_empty() {
        target["additionalFormats"] = Value::Object(formats);
    }
    if !tm.namespace_selector.is_empty() {
        target["namespaceSelector"] = match_labels(tm);
    }
    let bundle = json!({
        "apiVersion": "trust.cert-manager.io/v1alpha1",
        "kind": "Bundle",
        "metadata": metadata(input.config, (&name, None), "trust-manager-bundle", input.provenance),
        "spec": {"sources": sources, "target": target},
    });
    emit(out, BUNDLE_PATH, &bundle);
    if tm.cluster_bundle.value {
        let mut data = vec![json!({"key": tm.key.value})];
        if let Some(key) = &tm.pkcs12_key {
            data.push(json!({"key": key.value, "format": "PKCS12"}));
        }
        let mut spec = Map::new();
        if !inline.is_empty() {
            spec.insert("inLineCAs".into(), Value::String(inline));
        }
        spec.insert(
            "defaultCAs".into(),
            json!({"provider": if tm.use_default_cas.value { "System" } else { "Disabled" }}),
        );
        spec.insert(
            "target".into(),
            json!({"configMap": {"data": data}, "namespaceSelector": match_labels(tm)}),
        );
        let cluster_bundle = json!({
            "apiVersion": "trust-manager.io/v1alpha2",
            "kind": "ClusterBundle",
            "metadata": metadata(input.config, (&name, None), "trust-manager-clusterbundle", input.provenance),
            "spec": spec,
        });
        emit(out, CLUSTER_BUNDLE_PATH, &cluster_bundle);
    }
}

/// `<signerName with / → :>:`, the prefix a signer's ClusterTrustBundle names carry.
pub fn signer_prefix(signer: &str) -> String {
    format!("{}:", signer.replace('/', ":"))
}

/// The object name: `name`, or `<signer prefix><name>` with a signer.
pub fn cluster_trust_bundle_name(config: &TrustConfig, ctb: &ClusterTrustBundleTarget) -> String {
    let name = name_or_default(&ctb.name, &config.name.value, "");
    match &ctb.signer_name {
        Some(signer) => format!("{}{name}", signer_prefix(&signer.value)),
        None => name,
    }
}

/// One ClusterTrustBundle holding the trusted set.
pub(in crate::render) fn render_cluster_trust_bundle(
    input: &Inputs<'_>,
    ctb: &ClusterTrustBundleTarget,
    out: &mut Rendered,
) {
    let name = cluster_trust_bundle_name(input.config, ctb);
    let mut spec = Map::new();
    if let Some(signer) = &ctb.signer_name {
        spec.insert("signerName".into(), Value::String(signer.value.clone()));
    }
    spec.insert(
        "trustBundle".into(),
        Value::String(pem_bundle(input.certificates)),
    );
    let object = json!({
        "apiVersion": "certificates.k8s.io/v1beta1",
        "kind": "ClusterTrustBundle",
        "metadata": metadata(input.config, (&name, None), "cluster-trust-bundle", input.provenance),
        "spec": spec,
    });
    emit(out, CLUSTER_TRUST_BUNDLE_PATH, &object);
}
