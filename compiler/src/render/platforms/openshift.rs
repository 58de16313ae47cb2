//! OpenShift: the `openshift-config/user-ca-bundle` ConfigMap (key `ca-bundle.crt`) with
//! the `Proxy cluster` naming it (`spec.trustedCA`), and for registries the
//! `image.config.openshift.io/cluster` `additionalTrustedCA` ConfigMap, keyed by host
//! with `..` for `:` (a ConfigMap key cannot hold `:`; the MCO maps it back).

use serde_json::{json, Map, Value};

use super::super::Rendered;
use super::{emit, metadata, pem_bundle, registry_cas};
use crate::config::{name_or_default, OpenShiftTarget, TrustConfig};
use crate::render::Inputs;

/// Namespace, name and key OpenShift fixes for the cluster-wide bundle.
pub const CONFIG_NAMESPACE: &str = "openshift-config";
pub const USER_CA_BUNDLE: &str = "user-ca-bundle";
pub const USER_CA_BUNDLE_KEY: &str = "ca-bundle.crt";

/// `registry.corp:5000` → `registry.corp..5000`, the additionalTrustedCA key.
pub fn registry_key(host: &str) -> String {
    host.replace(':', "..")
}

/// The additionalTrustedCA ConfigMap's name.
pub fn registry_config_map(config: &TrustConfig, os: &OpenShiftTarget) -> String {
    name_or_default(&os.registry_config_map, &config.name.value, "-registries")
}

pub(in crate::render) fn render(input: &Inputs<'_>, os: &OpenShiftTarget, out: &mut Rendered) {
    let in_config_ns = |name: &str, component: &str| {
        metadata(
            input.config,
            (name, Some(CONFIG_NAMESPACE)),
            component,
            input.provenance,
        )
    };
    let bundle = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": in_config_ns(USER_CA_BUNDLE, "openshift-user-ca-bundle"),
        "data": { USER_CA_BUNDLE_KEY: pem_bundle(input.certificates) },
    });
    emit(out, "openshift/user-ca-bundle.yaml", &bundle);
    let proxy = json!({
        "apiVersion": "config.openshift.io/v1",
        "kind": "Proxy",
        "metadata": metadata(input.config, ("cluster", None), "openshift-proxy", input.provenance),
        "spec": {"trustedCA": {"name": USER_CA_BUNDLE}},
    });
    emit(out, "openshift/proxy-cluster.yaml", &proxy);
    let registries = registry_cas(input.config, input.certificates);
    if registries.is_empty() {
        return;
    }
    let name = registry_config_map(input.config, os);
    let data: Map<String, Value> = registries
        .iter()
        .map(|(host, certs)| {
            (
                registry_key(host),
                Value::String(pem_bundle(certs.iter().copied())),
            )
        })
        .collect();
    let cas = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": in_config_ns(&name, "openshift-registry-cas"),
        "data": data,
    });
    emit(out, "openshift/registry-cas.yaml", &cas);
    let image = json!({
        "apiVersion": "config.openshift.io/v1",
        "kind": "Image",
        "metadata": metadata(input.config, ("cluster", None), "openshift-image", input.provenance),
        "spec": {"additionalTrustedCA": {"name": name}},
    });
    emit(out, "openshift/image-cluster.yaml", &image);
}

#[cfg(test)]
mod tests {
    #[test]
    fn ports_become_two_dots() {
        assert_eq!(
            super::registry_key("registry.corp:5000"),
            "registry.corp..5000"
        );
        assert_eq!(super::registry_key("registry.corp"), "registry.corp");
    }
}
