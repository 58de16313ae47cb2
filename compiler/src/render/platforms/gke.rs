//! GKE: the `--containerd-config-from-file` YAML (`privateRegistryAccessConfig`, one
//! `certificateAuthorityDomainConfig` per registry CA with its Secret Manager secret and
//! `fqdns`), the CA files, and the `gcloud secrets …` / `gcloud container clusters
//! update` script. GKE trusts private CAs for registries only, at most 5 certificates
//! of at most 25 FQDNs each (CT561-CT563). Not Kubernetes objects.

use serde::Serialize;
use serde_json::json;

use super::super::{RenderError, Rendered};
use super::to_yaml;
use crate::config::{default_name, GkeTarget, TrustConfig};
use crate::load::Certificate;
use crate::render::Inputs;

pub const CONFIG_PATH: &str = "gke/containerd-config.yaml";
pub const SCRIPT_PATH: &str = "gke/gcloud-commands.sh";
/// GKE's limits on the private-CA configuration.
pub const MAX_CERTIFICATES: usize = 5;
pub const MAX_FQDNS: usize = 25;

/// One registry CA as GKE takes it: a certificate and the registries it serves.
pub struct DomainConfig<'c> {
    pub certificate: &'c Certificate,
    pub fqdns: Vec<String>,
    /// The Secret Manager secret ID: `catrust-<metadata.name>-<certificate name>`.
    pub secret: String,
}

/// Every certificate whose authority names registries, in trust.yaml order.
pub fn domain_configs<'c>(
    config: &TrustConfig,
    certificates: &'c [Certificate],
) -> Vec<DomainConfig<'c>> {
    certificates
        .iter()
        .filter_map(|c| {
            let registries = &config.authorities[c.authority].registries;
            (!registries.is_empty()).then(|| DomainConfig {
                certificate: c,
                fqdns: registries.iter().map(|r| r.value.clone()).collect(),
                secret: default_name(&config.name.value, &format!("-{}", c.name)),
            })
        })
        .collect()
}

#[derive(Serialize)]
struct SecretEntry {
    id: String,
    file: String,
}

#[derive(Serialize)]
struct ScriptContext<'a> {
    config_file: &'a str,
    name: &'a str,
    project: &'a str,
    cluster: &'a str,
    location: &'a str,
    secrets: Vec<SecretEntry>,
}

pub(in crate::render) fn render(
    input: &Inputs<'_>,
    gke: &GkeTarget,
    out: &mut Rendered,
) -> Result<(), RenderError> {
    let domains = domain_configs(input.config, input.certificates);
    let entries: Vec<_> = domains
        .iter()
        .map(|d| {
            json!({
                "gcpSecretManagerCertificateConfig": {
                    "secretURI": format!("projects/{}/secrets/{}/versions/latest", gke.project.value, d.secret),
                },
                "fqdns": d.fqdns,
            })
        })
        .collect();
    let doc = if entries.is_empty() {
        json!({"privateRegistryAccessConfig": {"enabled": false}})
    } else {
        json!({"privateRegistryAccessConfig": {"enabled": true, "certificateAuthorityDomainConfig": entries}})
    };
    out.files
        .insert(CONFIG_PATH.into(), to_yaml(&doc).into_bytes());
    let mut secrets = Vec::new();
    for d in &domains {
        let file = format!("certs/{}.pem", d.certificate.name);
        out.files.insert(
            format!("gke/{file}"),
            d.certificate.pem.clone().into_bytes(),
        );
        secrets.push(SecretEntry {
            id: d.secret.clone(),
            file,
        });
    }
    let script = input.templates.render(
        "gcloud-commands.sh.j2",
        ScriptContext {
            config_file: &input.provenance.config_path,
            name: &input.config.name.value,
            project: &gke.project.value,
            cluster: &gke.cluster.value,
            location: &gke.location.value,
            secrets,
        },
    )?;
    out.files.insert(SCRIPT_PATH.into(), script.into_bytes());
    Ok(())
}
