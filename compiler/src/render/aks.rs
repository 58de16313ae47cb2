//! The aks target: the `custom-ca-trust-secret`, the `--custom-ca-trust-certificates`
//! file, the az script and the ARM fragment.

use base64::Engine as _;
use serde::Serialize;

use super::k8s::{self, ObjectMeta, OrderedMap, Secret};
use super::{Provenance, RenderError, Rendered};
use crate::config::{AksTarget, TrustConfig};
use crate::load::Certificate;
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
struct PoolEntry<'a> {
    name: &'a str,
    /// `--enable-custom-ca-trust`, `--disable-custom-ca-trust`, or empty.
    flag: &'static str,
}

#[derive(Serialize)]
struct ScriptContext<'a> {
    config_file: &'a str,
    name: &'a str,
    resource_group: &'a str,
    cluster: &'a str,
    certificates_file: bool,
    preview: bool,
    pools: Vec<PoolEntry<'a>>,
}

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
    config: &TrustConfig,
    aks: &AksTarget,
    certificates: &[Certificate],
    templates: &Templates,
    provenance: &Provenance,
    out: &mut Rendered,
    resources: &mut Vec<String>,
) -> Result<(), RenderError> {
    let b64 = base64::engine::general_purpose::STANDARD;
    if aks.secret.value {
        let mut data = OrderedMap::default();
        for c in certificates {
            data.insert(format!("{}.crt", c.name), b64.encode(&c.pem));
        }
        let secret = Secret {
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
        };
        let yaml = k8s::to_yaml(&secret);
        let path = "aks/custom-ca-trust-secret.yaml".to_string();
        out.files.insert(path.clone(), yaml.clone().into_bytes());
        out.objects.push(yaml);
        resources.push(path);
    }
    if aks.certificates_file.value {
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
        let cluster = ManagedCluster {
            properties: Properties {
                security_profile: SecurityProfile {
                    custom_ca_trust_certificates: certificates
                        .iter()
                        .map(|c| b64.encode(&c.pem))
                        .collect(),
                },
            },
        };
        let mut json = serde_json::to_string_pretty(&cluster).expect("ARM fragment serialises");
        json.push('\n');
        out.files
            .insert("aks/managed-cluster.json".into(), json.into_bytes());
    }
    let pools: Vec<PoolEntry> = aks
        .node_pools
        .iter()
        .map(|p| PoolEntry {
            name: &p.name.value,
            flag: match p.custom_ca_trust.as_ref().map(|f| f.value) {
                Some(true) => "--enable-custom-ca-trust",
                Some(false) => "--disable-custom-ca-trust",
                None => "",
            },
        })
        .collect();
    let script = templates.render(
        "az-commands.sh.j2",
        ScriptContext {
            config_file: &provenance.config_path,
            name: &config.name.value,
            resource_group: &aks.resource_group.value,
            cluster: &aks.cluster.value,
            certificates_file: aks.certificates_file.value,
            preview: aks.node_pools.iter().any(|p| p.custom_ca_trust.is_some()),
            pools,
        },
    )?;
    out.files
        .insert("aks/az-commands.sh".into(), script.into_bytes());
    Ok(())
}
