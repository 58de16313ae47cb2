//! The platform targets' limits (CT5xx): names and keys each platform accepts, the
//! trusted set it needs, and settings that do not mean what they say.

use crate::config::{name_or_default, TalosVersion, TrustConfig};
use crate::diag::Diagnostic;
use crate::load::Loaded;
use crate::render::platforms::bottlerocket::USER_DATA_LIMIT;
use crate::render::platforms::openshift::USER_CA_BUNDLE;
use crate::render::platforms::trust_manager::signer_prefix;
use crate::render::platforms::Platform;
use crate::rules::Code;
use crate::span::{Span, Spanned};

/// A Kubernetes DNS-1123 subdomain: the rule for object names.
pub fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(catrust_bundle::is_dns_label)
}

/// Kubernetes `IsConfigMapKey`: `[-._a-zA-Z0-9]+`, at most 253, not `.`, not starting
/// with `..`.
pub fn is_config_map_key(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s != "."
        && !s.starts_with("..")
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
}

/// `<domain>/<path>`: a DNS subdomain and one lowercase segment, so that the
/// ClusterTrustBundle name `<domain>:<path>:<name>` is one the API server takes.
pub fn is_signer_name(s: &str) -> bool {
    match s.split_once('/') {
        Some((domain, path)) => {
            is_dns_subdomain(domain)
                && !path.is_empty()
                && path.split('.').all(catrust_bundle::is_dns_label)
        }
        None => false,
    }
}

/// A `talosctl --nodes` entry: an IP address or a DNS host name.
pub fn is_node_address(s: &str) -> bool {
    s.parse::<std::net::IpAddr>().is_ok()
        || (s.len() <= 253
            && !s.is_empty()
            && s.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            }))
}

fn error(code: Code, file: &str, span: Span, message: String, help: &str) -> Diagnostic {
    Diagnostic::new(code, message)
        .at(file, span)
        .with_help(help)
}

fn name(file: &str, what: &str, name: &Spanned<String>, out: &mut Vec<Diagnostic>) {
    if !is_dns_subdomain(&name.value) {
        out.push(error(
            Code::Ct503,
            file,
            name.span,
            format!("{what} `{}` is not a DNS subdomain", name.value),
            "use lowercase letters, digits, `-` and `.` (at most 253), such as `corp-trust`",
        ));
    }
}

fn key(file: &str, what: &str, key: &Spanned<String>, out: &mut Vec<Diagnostic>) {
    if !is_config_map_key(&key.value) {
        out.push(error(
            Code::Ct503,
            file,
            key.span,
            format!("{what} `{}` is not a ConfigMap key", key.value),
            "use letters, digits, `-`, `_` and `.` (at most 253, not starting with `..`), such as `ca-certificates.crt`",
        ));
    }
}

/// Every CT5xx finding of `config`.
pub(super) fn lint(config: &TrustConfig, loaded: &Loaded, file: &str, out: &mut Vec<Diagnostic>) {
    let declared: Vec<&str> = Platform::ALL
        .iter()
        .filter(|p| p.declared(config))
        .map(|p| p.key())
        .collect();
    if declared.is_empty() {
        return;
    }
    for a in &config.authorities {
        if let Some(first) = a.pools.first() {
            out.push(error(
                Code::Ct501,
                file,
                first.span,
                format!(
                    "authority `{}` names pools, but {} trust one set per cluster",
                    a.name.value,
                    declared.join(", ")
                ),
                "drop `pools`, or keep pool-specific CAs in a trust.yaml with the agent target only",
            ));
        }
    }
    let empty = loaded.certificates.is_empty() && !loaded.has_errors();
    let p = &config.targets.platforms;
    if let Some(tm) = &p.trust_manager {
        if empty && !tm.use_default_cas.value {
            out.push(error(
                Code::Ct502,
                file,
                tm.span,
                "trustManager: no certificate to put in the Bundle".into(),
                "add an authority, or set `useDefaultCAs: true`",
            ));
        }
        if let Some(n) = &tm.name {
            name(file, "trustManager.name", n, out);
        }
        let keys = [Some(&tm.key), tm.jks_key.as_ref(), tm.pkcs12_key.as_ref()];
        for (i, k) in keys.iter().enumerate() {
            let Some(k) = k else { continue };
            key(file, "trustManager key", k, out);
            if keys[..i]
                .iter()
                .flatten()
                .any(|earlier| earlier.value == k.value)
            {
                out.push(error(
                    Code::Ct514,
                    file,
                    k.span,
                    format!("trustManager: key `{}` is used by two formats", k.value),
                    "give the PEM bundle, the JKS and the PKCS#12 store different keys",
                ));
            }
        }
        if tm.use_default_cas.value && !config.distrust.is_empty() {
            out.push(error(
                Code::Ct511,
                file,
                tm.use_default_cas.span,
                "trustManager: `useDefaultCAs` brings in a public root set that `distrust` does not reach".into(),
                "set `useDefaultCAs: false` and list the public roots pods need as authorities",
            ));
        }
        if tm.cluster_bundle.value {
            out.push(error(
                Code::Ct513,
                file,
                tm.cluster_bundle.span,
                "trustManager: the ClusterBundle CRD is not installed by the trust-manager Helm chart".into(),
                "install deploy/crds/trust-manager.io_clusterbundles.yaml of your trust-manager release first",
            ));
        }
    }
    if let Some(os) = &p.openshift {
        if empty {
            out.push(error(
                Code::Ct502,
                file,
                os.span,
                "openshift: no certificate for `user-ca-bundle`".into(),
                "add an authority",
            ));
        }
        for r in config.authorities.iter().flat_map(|a| &a.registries) {
            let key = crate::render::platforms::openshift::registry_key(&r.value);
            if !is_config_map_key(&key) {
                out.push(error(
                    Code::Ct522,
                    file,
                    r.span,
                    format!(
                        "openshift: registry `{}` cannot be an additionalTrustedCA key (`{key}` is not a ConfigMap key)",
                        crate::diag::bounded(&r.value)
                    ),
                    "name the registry by its DNS name or IPv4 address: OpenShift keys the ConfigMap by `host` or `host..port`",
                ));
            }
        }
        if let Some(n) = &os.registry_config_map {
            name(file, "openshift.registryConfigMap", n, out);
            if n.value == USER_CA_BUNDLE {
                out.push(error(
                    Code::Ct521,
                    file,
                    n.span,
                    format!("openshift.registryConfigMap `{USER_CA_BUNDLE}` is the Proxy's trusted CA bundle"),
                    "name the registry CAs' ConfigMap differently, such as `registry-cas`",
                ));
            }
        }
    }
    if let Some(talos) = &p.talos {
        if empty {
            out.push(error(
                Code::Ct502,
                file,
                talos.span,
                "talos: no certificate for `TrustedRootsConfig`".into(),
                "add an authority",
            ));
        }
        if let Some(v) = talos.talos_version.value {
            if v < TalosVersion::TRUSTED_ROOTS {
                out.push(error(
                    Code::Ct531,
                    file,
                    talos.talos_version.span,
                    format!("talosVersion {v}: TrustedRootsConfig needs Talos {} or later", TalosVersion::TRUSTED_ROOTS),
                    "upgrade the cluster to Talos 1.8 or later first, then set `talosVersion` to its oldest node's release",
                ));
            }
        }
        for node in &talos.nodes {
            if !is_node_address(&node.value) {
                out.push(error(
                    Code::Ct532,
                    file,
                    node.span,
                    format!("talos node `{}` is not an IP address or host name", node.value),
                    "list nodes as talosctl --nodes takes them: `10.0.0.2`, `fd00::2` or `cp-1.corp.example`",
                ));
            }
        }
    }
    if let Some(br) = &p.bottlerocket {
        if empty {
            out.push(error(
                Code::Ct502,
                file,
                br.span,
                "bottlerocket: no certificate for `settings.pki`".into(),
                "add an authority",
            ));
        }
        for a in &config.authorities {
            if let Some(first) = a.registries.first() {
                out.push(error(
                    Code::Ct541,
                    file,
                    first.span,
                    format!("bottlerocket: authority `{}` is for registries, but Bottlerocket trusts it for every TLS connection", a.name.value),
                    "accept it (it is in the system bundle), or keep registry-only CAs out of the Bottlerocket trust.yaml",
                ));
            }
        }
        if let Some(d) = config.distrust.first() {
            out.push(error(
                Code::Ct542,
                file,
                d.sha256.span,
                "bottlerocket: `distrust` names fingerprints; Bottlerocket distrusts only a certificate it is given (`trusted = false`)".into(),
                "Bottlerocket nodes keep trusting a distrusted CA of their default store; CAs removed from `authorities` leave the catrust bundle at the next apply",
            ));
        }
        let size =
            crate::render::platforms::bottlerocket::user_data(config, &loaded.certificates).len();
        if size > USER_DATA_LIMIT {
            out.push(error(
                Code::Ct543,
                file,
                br.span,
                format!("bottlerocket: the user-data fragment is {size} bytes; EC2 user data holds at most {USER_DATA_LIMIT}"),
                "trust fewer CAs, or set them from a bootstrap container with apiclient-commands.sh",
            ));
        }
    }
    if let Some(k3s) = &p.k3s {
        let registries = config.authorities.iter().any(|a| !a.registries.is_empty());
        if !registries {
            out.push(error(
                Code::Ct551,
                file,
                k3s.span,
                "k3s: no authority names `registries`, so registries.yaml trusts nothing".into(),
                "add `registries: [host:port]` to the authorities k3s' containerd should trust, or remove the target",
            ));
        } else if let Some(agent) = &config.targets.agent {
            out.push(error(
                Code::Ct552,
                file,
                agent.span,
                "k3s and agent both carry registry CAs: on k3s/RKE2 nodes only registries.yaml reaches k3s' containerd".into(),
                "keep the agent for the OS store on k3s nodes; k3s renders its own certs.d from registries.yaml at start and the agent must not edit it",
            ));
        }
    }
    if let Some(gke) = &p.gke {
        gke_limits(config, loaded, gke, file, out);
    }
    if let Some(ctb) = &p.cluster_trust_bundle {
        if empty {
            out.push(error(
                Code::Ct502,
                file,
                ctb.span,
                "clusterTrustBundle: no certificate for `trustBundle`".into(),
                "add an authority",
            ));
        }
        if let Some(n) = &ctb.name {
            name(file, "clusterTrustBundle.name", n, out);
        }
        let base = name_or_default(&ctb.name, &config.name.value, "");
        match &ctb.signer_name {
            Some(signer) if !is_signer_name(&signer.value) => out.push(error(
                Code::Ct512,
                file,
                signer.span,
                format!("signerName `{}` is not `<domain>/<name>`", signer.value),
                "write the signer as a lowercase domain, `/` and one lowercase segment, such as `example.com/corp-roots`",
            )),
            Some(signer) if signer_prefix(&signer.value).len() + base.len() > 253 => {
                out.push(error(
                    Code::Ct512,
                    file,
                    signer.span,
                    format!(
                        "the ClusterTrustBundle name `{}{base}` is longer than 253 characters",
                        signer_prefix(&signer.value)
                    ),
                    "use a shorter signer name or `name`",
                ))
            }
            _ => {}
        }
    }
}

/// GKE project ID: 6 to 30 of lowercase letters, digits and `-`, starting with a letter.
fn is_gcp_project(s: &str) -> bool {
    (6..=30).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && !s.ends_with('-')
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn gke_limits(
    config: &TrustConfig,
    loaded: &Loaded,
    gke: &crate::config::GkeTarget,
    file: &str,
    out: &mut Vec<Diagnostic>,
) {
    use crate::render::platforms::gke::{domain_configs, MAX_CERTIFICATES, MAX_FQDNS};
    let names = [
        ("project", &gke.project, is_gcp_project(&gke.project.value)),
        (
            "cluster",
            &gke.cluster,
            gke.cluster.value.len() <= 40
                && gke
                    .cluster
                    .value
                    .starts_with(|c: char| c.is_ascii_lowercase())
                && catrust_bundle::is_dns_label(&gke.cluster.value),
        ),
        (
            "location",
            &gke.location,
            catrust_bundle::is_dns_label(&gke.location.value),
        ),
    ];
    for (what, value, ok) in names {
        if !ok {
            out.push(error(
                Code::Ct565,
                file,
                value.span,
                format!("gke.{what} `{}` is not a GCP {what} name", value.value),
                "use the lowercase name gcloud shows (`gcloud projects list`, `gcloud container clusters list`), such as `my-project` / `gke-prod` / `europe-west1`",
            ));
        }
    }
    for a in &config.authorities {
        for r in a.registries.iter().filter(|r| r.value.contains('*')) {
            out.push(error(
                Code::Ct563,
                file,
                r.span,
                format!(
                    "gke: `{}` is a wildcard; GKE takes exact FQDNs only",
                    r.value
                ),
                "list each registry host (and port) exactly",
            ));
        }
        if a.registries.len() > MAX_FQDNS {
            out.push(error(
                Code::Ct562,
                file,
                a.registries[MAX_FQDNS].span,
                format!("gke: authority `{}` names {} registries; GKE takes at most {MAX_FQDNS} FQDNs per certificate", a.name.value, a.registries.len()),
                "split the registries over fewer hosts (a mirror), or render the rest with another target",
            ));
        }
    }
    let domains = domain_configs(config, &loaded.certificates);
    if domains.is_empty() {
        out.push(error(Code::Ct566, file, gke.span, "gke: no authority names `registries`; GKE trusts private CAs only for registries, so the file disables it".into(), "add `registries` to the CAs of your private registries; node-wide trust on GKE needs the agent target"));
    }
    if let Some(extra) = domains.get(MAX_CERTIFICATES) {
        let a = &config.authorities[extra.certificate.authority];
        out.push(error(
            Code::Ct561,
            file,
            a.registries.first().map_or(a.span, |r| r.span),
            format!("gke: {} registry certificates; GKE takes at most {MAX_CERTIFICATES} per cluster (the 6th is `{}`)", domains.len(), extra.certificate.name),
            "trust registries through fewer CAs (a common root), or leave the rest to the agent target",
        ));
    }
    let mut seen: std::collections::BTreeMap<&str, &str> = std::collections::BTreeMap::new();
    for d in &domains {
        for r in &config.authorities[d.certificate.authority].registries {
            match seen.get(r.value.as_str()) {
                Some(other) if *other != d.certificate.name => out.push(error(
                    Code::Ct564,
                    file,
                    r.span,
                    format!("gke: `{}` is named by `{other}` and `{}`; GKE takes each FQDN in one certificate only", r.value, d.certificate.name),
                    "name the registry on one authority only",
                )),
                _ => {
                    seen.insert(&r.value, &d.certificate.name);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubernetes_name_rules() {
        for ok in ["a", "corp-trust", "a.b-c.d", "0"] {
            assert!(is_dns_subdomain(ok), "{ok}");
        }
        for bad in ["", "A", "a..b", "-a", "a_b", "a:b", &"a".repeat(254)] {
            assert!(!is_dns_subdomain(bad), "{bad}");
        }
        for ok in [
            "ca-certificates.crt",
            "Trust_Store.JKS",
            "registry.corp..5000",
            "a",
        ] {
            assert!(is_config_map_key(ok), "{ok}");
        }
        for bad in ["", ".", "..x", "a b", "a:b", "a/b", &"k".repeat(254)] {
            assert!(!is_config_map_key(bad), "{bad}");
        }
        for ok in ["example.com/corp-roots", "corp.example/a.b"] {
            assert!(is_signer_name(ok), "{ok}");
        }
        for bad in [
            "corp",
            "example.com/",
            "/x",
            "Example.com/x",
            "example.com/a/b",
            "example.com/a:b",
        ] {
            assert!(!is_signer_name(bad), "{bad}");
        }
    }
}
