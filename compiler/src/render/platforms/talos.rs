//! Talos: a machine-config patch with a `TrustedRootsConfig` document (Talos ≥ 1.8)
//! and, for registries, one `RegistryTLSConfig` document per host (≥ 1.12, `ca` plain
//! PEM) or the legacy `machine.registries.config.<host>.tls.ca` (base64) for older
//! releases, chosen by `talosVersion`; plus the `talosctl patch mc` script. Not
//! Kubernetes objects: not in kustomization.yaml.

use base64::Engine as _;
use serde::Serialize;
use serde_json::{json, Map, Value};

use super::super::{RenderError, Rendered};
use super::{pem_bundle, registry_cas, to_yaml};
use crate::config::{default_name, TalosTarget, TalosVersion, TrustConfig};
use crate::load::Certificate;
use crate::render::Inputs;

pub const PATCH_PATH: &str = "talos/machine-config-patch.yaml";
pub const SCRIPT_PATH: &str = "talos/talosctl-commands.sh";

#[derive(Serialize)]
struct ScriptContext<'a> {
    config_file: &'a str,
    name: &'a str,
    nodes: Vec<&'a str>,
}

/// The patch documents, in the order they are written.
pub fn documents(
    config: &TrustConfig,
    talos: &TalosTarget,
    certificates: &[Certificate],
) -> Vec<Value> {
    let registries = registry_cas(config, certificates);
    let legacy = talos
        .talos_version
        .value
        .is_some_and(|v| v < TalosVersion::REGISTRY_TLS);
    let mut docs = Vec::new();
    if legacy && !registries.is_empty() {
        let b64 = base64::engine::general_purpose::STANDARD;
        let hosts: Map<String, Value> = registries
            .iter()
            .map(|(host, certs)| {
                let ca = b64.encode(pem_bundle(certs.iter().copied()));
                (host.clone(), json!({"tls": {"ca": ca}}))
            })
            .collect();
        docs.push(json!({"machine": {"registries": {"config": hosts}}}));
    }
    docs.push(json!({
        "apiVersion": "v1alpha1",
        "kind": "TrustedRootsConfig",
        "name": default_name(&config.name.value, ""),
        "certificates": pem_bundle(certificates),
    }));
    if !legacy {
        for (host, certs) in &registries {
            docs.push(json!({
                "apiVersion": "v1alpha1",
                "kind": "RegistryTLSConfig",
                "name": host,
                "ca": pem_bundle(certs.iter().copied()),
            }));
        }
    }
    docs
}

pub(in crate::render) fn render(
    input: &Inputs<'_>,
    talos: &TalosTarget,
    out: &mut Rendered,
) -> Result<(), RenderError> {
    let patch: Vec<String> = documents(input.config, talos, input.certificates)
        .iter()
        .map(to_yaml)
        .collect();
    out.files
        .insert(PATCH_PATH.into(), patch.join("---\n").into_bytes());
    let script = input.templates.render(
        "talosctl-commands.sh.j2",
        ScriptContext {
            config_file: &input.provenance.config_path,
            name: &input.config.name.value,
            nodes: talos.nodes.iter().map(|n| n.value.as_str()).collect(),
        },
    )?;
    out.files.insert(SCRIPT_PATH.into(), script.into_bytes());
    Ok(())
}
