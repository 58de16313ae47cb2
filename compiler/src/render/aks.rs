//! The aks target: the cluster-level list (the `--custom-ca-trust-certificates` file,
//! the ARM fragment and the Terraform variable file), the az script, and the legacy
//! `custom-ca-trust-secret` when asked for (`secret: true`, CT306).

use base64::Engine as _;
use serde::Serialize;

use super::k8s::{self, ObjectMeta, OrderedMap, Secret};
use super::{Provenance, RenderError, Rendered};
use crate::config::{AksTarget, TrustConfig};
use crate::load::Certificate;
use crate::render::Inputs;
use crate::templates::Templates;

/// The Secret AKS polls; its name and namespace are fixed by AKS.
pub const SECRET_NAME: &str = "custom-ca-trust-secret";
pub const SECRET_NAMESPACE: &str = "kube-system";

#[derive(Serialize)]
struct PemEntry<'a> {
    name: &'a str,
    pem: &'a str,
}

#[derive(Serialize)]
struct ScriptContext<'a> {
    config_file: &'a str,
    name: &'a str,
    resource_group: &'a str,
    cluster: &'a str,
    certificates_file: bool,
    /// Certificates in the cluster list.
    count: usize,
    /// Every declared pool (`create` adds them).
    pools: Vec<&'a str>,
    /// Pools that declare the retired `customCATrust` (`update` unsets it, CT303).
    unset_pools: Vec<&'a str>,
}

/// The Terraform variable file: `custom_ca_trust_certificates_base64` of
/// `azurerm_kubernetes_cluster`, one base64 LF PEM per certificate.
#[derive(Serialize)]
struct TerraformVariables {
    custom_ca_trust_certificates_base64: Vec<String>,
}

/// Where the Terraform variable file goes (auto-loaded when it sits in the root
/// module's folder, or named with `-var-file`).
pub const TERRAFORM_FILE: &str = "aks/custom-ca-trust.auto.tfvars.json";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SecurityProfile {
    #[serde(rename = "customCATrustCertificates")]
    custom_ca_trust_certificates: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Properties {
    security_profile: SecurityProfile,
}

#[derive(Serialize)]
struct ManagedCluster {
    properties: Properties,
}

pub(super) fn render(
    input: &Inputs<'_>,
    aks: &AksTarget,
    out: &mut Rendered,
) -> Result<(), RenderError> {
    if aks.secret.value {
        let secret = legacy_secret(input.config, input.certificates, input.provenance);
        out.add_object("aks/custom-ca-trust-secret.yaml", k8s::to_yaml(&secret));
    }
    if aks.certificates_file.value {
        cluster_list(input.certificates, input.templates, out)?;
    }
    let script = az_script(
        input.config,
        aks,
        input.certificates,
        input.templates,
        input.provenance,
    )?;
    out.files
        .insert("aks/az-commands.sh".into(), script.into_bytes());
    Ok(())
}

/// `custom-ca-trust-secret`, which only clusters that never enabled the cluster list
/// still read (CT306).
fn legacy_secret(
    config: &TrustConfig,
    certificates: &[Certificate],
    provenance: &Provenance,
) -> Secret {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut data = OrderedMap::default();
    for c in certificates {
        data.insert(format!("{}.crt", c.name), b64.encode(&c.pem));
    }
    Secret {
        api_version: "v1",
        kind: "Secret",
        metadata: ObjectMeta {
            name: SECRET_NAME.into(),
            namespace: Some(SECRET_NAMESPACE.into()),
            labels: k8s::labels(&config.name.value, "aks-custom-ca-trust"),
            annotations: provenance.annotations(),
        },
        immutable: None,
        type_: "Opaque",
        data,
    }
}

/// The cluster list in its three spellings: the az `--custom-ca-trust-certificates`
/// file, the ARM fragment and the Terraform variables.
fn cluster_list(
    certificates: &[Certificate],
    templates: &Templates,
    out: &mut Rendered,
) -> Result<(), RenderError> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let entries: Vec<PemEntry> = certificates
        .iter()
        .map(|c| PemEntry {
            name: &c.name,
            pem: &c.pem,
        })
        .collect();
    let pem = templates.render(
        "custom-ca-trust-certificates.pem.j2",
        minijinja::context! { certificates => entries },
    )?;
    out.files.insert(
        "aks/custom-ca-trust-certificates.pem".into(),
        pem.into_bytes(),
    );
    let list: Vec<String> = certificates.iter().map(|c| b64.encode(&c.pem)).collect();
    let cluster = ManagedCluster {
        properties: Properties {
            security_profile: SecurityProfile {
                custom_ca_trust_certificates: list.clone(),
            },
        },
    };
    out.files
        .insert("aks/managed-cluster.json".into(), pretty_json(&cluster));
    let variables = TerraformVariables {
        custom_ca_trust_certificates_base64: list,
    };
    out.files
        .insert(TERRAFORM_FILE.into(), pretty_json(&variables));
    Ok(())
}

/// `aks/az-commands.sh`: the az commands that apply the cluster list and the pools.
fn az_script(
    config: &TrustConfig,
    aks: &AksTarget,
    certificates: &[Certificate],
    templates: &Templates,
    provenance: &Provenance,
) -> Result<String, RenderError> {
    let pools = |unset: bool| -> Vec<&str> {
        aks.node_pools
            .iter()
            .filter(|p| !unset || p.custom_ca_trust.is_some())
            .map(|p| p.name.value.as_str())
            .collect()
    };
    templates
        .render(
            "az-commands.sh.j2",
            ScriptContext {
                config_file: &provenance.config_path,
                name: &config.name.value,
                resource_group: &aks.resource_group.value,
                cluster: &aks.cluster.value,
                certificates_file: aks.certificates_file.value,
                count: certificates.len(),
                pools: pools(false),
                unset_pools: pools(true),
            },
        )
        .map_err(RenderError::from)
}

fn pretty_json(value: &impl Serialize) -> Vec<u8> {
    let mut json = serde_json::to_string_pretty(value).expect("plain data serialises");
    json.push('\n');
    json.into_bytes()
}
