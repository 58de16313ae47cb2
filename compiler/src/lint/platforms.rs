//! The platform targets' limits (CT5xx): names and keys each platform accepts, the
//! trusted set it needs, and settings that do not mean what they say.

use std::collections::BTreeMap;

use super::finding;
use crate::config::{
    name_or_default, AuthoritySpec, BottlerocketTarget, ClusterTrustBundleTarget, GkeTarget,
    K3sTarget, OpenShiftTarget, TalosTarget, TalosVersion, TrustConfig, TrustManagerTarget,
};
use crate::diag::Diagnostic;
use crate::load::Loaded;
use crate::render::platforms::bottlerocket::USER_DATA_LIMIT;
use crate::render::platforms::gke::{domain_configs, DomainConfig, MAX_CERTIFICATES, MAX_FQDNS};
use crate::render::platforms::openshift::USER_CA_BUNDLE;
use crate::render::platforms::trust_manager::signer_prefix;
use crate::render::platforms::Platform;
use crate::rules::Code;
use crate::span::Spanned;

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

fn name(file: &str, what: &str, name: &Spanned<String>, out: &mut Vec<Diagnostic>) {
    if !is_dns_subdomain(&name.value) {
        out.push(finding(
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
        out.push(finding(
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
    pools_per_cluster(config, &declared, file, out);
    nothing_to_trust(config, loaded, file, out);
    let p = &config.targets.platforms;
    if let Some(tm) = &p.trust_manager {
        trust_manager_limits(config, tm, file, out);
    }
    if let Some(os) = &p.openshift {
        openshift_limits(config, os, file, out);
    }
    if let Some(talos) = &p.talos {
        talos_limits(talos, file, out);
    }
    if let Some(br) = &p.bottlerocket {
        bottlerocket_limits(config, loaded, br, file, out);
    }
    if let Some(k3s) = &p.k3s {
        out.extend(k3s_limits(config, k3s, file));
    }
    if let Some(gke) = &p.gke {
        gke_limits(config, loaded, gke, file, out);
    }
    if let Some(ctb) = &p.cluster_trust_bundle {
        cluster_trust_bundle_limits(config, ctb, file, out);
    }
}

/// CT501: the platforms take one trusted set per cluster (`declared` names them).
fn pools_per_cluster(
    config: &TrustConfig,
    declared: &[&str],
    file: &str,
    out: &mut Vec<Diagnostic>,
) {
    for a in &config.authorities {
        if let Some(first) = a.pools.first() {
            out.push(finding(
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
}

/// CT502 for each platform target that would carry no certificate: empty by intent,
/// not because a source failed to read (that has its error).
fn nothing_to_trust(config: &TrustConfig, loaded: &Loaded, file: &str, out: &mut Vec<Diagnostic>) {
    if !loaded.certificates.is_empty() || loaded.has_errors() {
        return;
    }
    let p = &config.targets.platforms;
    if let Some(tm) = p
        .trust_manager
        .as_ref()
        .filter(|tm| !tm.use_default_cas.value)
    {
        out.push(finding(
            Code::Ct502,
            file,
            tm.span,
            "trustManager: no certificate to put in the Bundle",
            "add an authority, or set `useDefaultCAs: true`",
        ));
    }
    // The target's span where it is declared, and what would hold the certificates.
    let targets = [
        p.openshift
            .as_ref()
            .map(|t| (t.span, "openshift", "user-ca-bundle")),
        p.talos
            .as_ref()
            .map(|t| (t.span, "talos", "TrustedRootsConfig")),
        p.bottlerocket
            .as_ref()
            .map(|t| (t.span, "bottlerocket", "settings.pki")),
        p.cluster_trust_bundle
            .as_ref()
            .map(|t| (t.span, "clusterTrustBundle", "trustBundle")),
    ];
    for (span, target, field) in targets.into_iter().flatten() {
        let message = format!("{target}: no certificate for `{field}`");
        out.push(finding(
            Code::Ct502,
            file,
            span,
            message,
            "add an authority",
        ));
    }
}

/// trustManager: its name and keys (CT503, CT514), public roots `distrust` cannot
/// reach (CT511), a CRD the chart does not install (CT513).
fn trust_manager_limits(
    config: &TrustConfig,
    tm: &TrustManagerTarget,
    file: &str,
    out: &mut Vec<Diagnostic>,
) {
    if let Some(n) = &tm.name {
        name(file, "trustManager.name", n, out);
    }
    trust_manager_keys(tm, file, out);
    if tm.use_default_cas.value && !config.distrust.is_empty() {
        out.push(finding(
            Code::Ct511,
            file,
            tm.use_default_cas.span,
            "trustManager: `useDefaultCAs` brings in a public root set that `distrust` does not reach",
            "set `useDefaultCAs: false` and list the public roots pods need as authorities",
        ));
    }
    if tm.cluster_bundle.value {
        out.push(finding(
            Code::Ct513,
            file,
            tm.cluster_bundle.span,
            "trustManager: the ClusterBundle CRD is not installed by the trust-manager Helm chart",
            "install deploy/crds/trust-manager.io_clusterbundles.yaml of your trust-manager release first",
        ));
    }
}

/// CT503 for a key that is not a ConfigMap key, CT514 for a key two formats share.
fn trust_manager_keys(tm: &TrustManagerTarget, file: &str, out: &mut Vec<Diagnostic>) {
    let keys = [Some(&tm.key), tm.jks_key.as_ref(), tm.pkcs12_key.as_ref()];
    for (i, k) in keys.iter().enumerate() {
        let Some(k) = k else { continue };
        key(file, "trustManager key", k, out);
        if keys[..i]
            .iter()
            .flatten()
            .any(|earlier| earlier.value == k.value)
        {
            out.push(finding(
                Code::Ct514,
                file,
                k.span,
                format!("trustManager: key `{}` is used by two formats", k.value),
                "give the PEM bundle, the JKS and the PKCS#12 store different keys",
            ));
        }
    }
}

/// openshift: registries that make no ConfigMap key (CT522) and the registry
/// ConfigMap's name (CT503, CT521).
fn openshift_limits(
    config: &TrustConfig,
    os: &OpenShiftTarget,
    file: &str,
    out: &mut Vec<Diagnostic>,
) {
    for r in config.authorities.iter().flat_map(|a| &a.registries) {
        let key = crate::render::platforms::openshift::registry_key(&r.value);
        if !is_config_map_key(&key) {
            out.push(finding(
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
            out.push(finding(
                Code::Ct521,
                file,
                n.span,
                format!("openshift.registryConfigMap `{USER_CA_BUNDLE}` is the Proxy's trusted CA bundle"),
                "name the registry CAs' ConfigMap differently, such as `registry-cas`",
            ));
        }
    }
}

/// talos: a Talos release without `TrustedRootsConfig` (CT531), node addresses
/// talosctl would not take (CT532).
fn talos_limits(talos: &TalosTarget, file: &str, out: &mut Vec<Diagnostic>) {
    if let Some(v) = talos.talos_version.value {
        if v < TalosVersion::TRUSTED_ROOTS {
            out.push(finding(
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
            out.push(finding(
                Code::Ct532,
                file,
                node.span,
                format!("talos node `{}` is not an IP address or host name", node.value),
                "list nodes as talosctl --nodes takes them: `10.0.0.2`, `fd00::2` or `cp-1.corp.example`",
            ));
        }
    }
}

/// bottlerocket: what Bottlerocket cannot scope (registries CT541, distrust CT542),
/// the EC2 user-data size (CT543).
fn bottlerocket_limits(
    config: &TrustConfig,
    loaded: &Loaded,
    br: &BottlerocketTarget,
    file: &str,
    out: &mut Vec<Diagnostic>,
) {
    for a in &config.authorities {
        if let Some(first) = a.registries.first() {
            out.push(finding(
                Code::Ct541,
                file,
                first.span,
                format!("bottlerocket: authority `{}` is for registries, but Bottlerocket trusts it for every TLS connection", a.name.value),
                "accept it (it is in the system bundle), or keep registry-only CAs out of the Bottlerocket trust.yaml",
            ));
        }
    }
    if let Some(d) = config.distrust.first() {
        out.push(finding(
            Code::Ct542,
            file,
            d.sha256.span,
            "bottlerocket: `distrust` names fingerprints; Bottlerocket distrusts only a certificate it is given (`trusted = false`)",
            "Bottlerocket nodes keep trusting a distrusted CA of their default store; CAs removed from `authorities` leave the catrust bundle at the next apply",
        ));
    }
    let size =
        crate::render::platforms::bottlerocket::user_data(config, &loaded.certificates).len();
    if size > USER_DATA_LIMIT {
        out.push(finding(
            Code::Ct543,
            file,
            br.span,
            format!("bottlerocket: the user-data fragment is {size} bytes; EC2 user data holds at most {USER_DATA_LIMIT}"),
            "trust fewer CAs, or set them from a bootstrap container with apiclient-commands.sh",
        ));
    }
}

/// CT551 when no authority is for a registry, CT552 when the agent carries them too.
fn k3s_limits(config: &TrustConfig, k3s: &K3sTarget, file: &str) -> Option<Diagnostic> {
    let registries = config.authorities.iter().any(|a| !a.registries.is_empty());
    if !registries {
        Some(finding(
            Code::Ct551,
            file,
            k3s.span,
            "k3s: no authority names `registries`, so registries.yaml trusts nothing",
            "add `registries: [host:port]` to the authorities k3s' containerd should trust, or remove the target",
        ))
    } else {
        let agent = config.targets.agent.as_ref()?;
        Some(finding(
            Code::Ct552,
            file,
            agent.span,
            "k3s and agent both carry registry CAs: on k3s/RKE2 nodes only registries.yaml reaches k3s' containerd",
            "keep the agent for the OS store on k3s nodes; k3s renders its own certs.d from registries.yaml at start and the agent must not edit it",
        ))
    }
}

/// clusterTrustBundle: its name (CT503) and signer (CT512).
fn cluster_trust_bundle_limits(
    config: &TrustConfig,
    ctb: &ClusterTrustBundleTarget,
    file: &str,
    out: &mut Vec<Diagnostic>,
) {
    if let Some(n) = &ctb.name {
        name(file, "clusterTrustBundle.name", n, out);
    }
    let base = name_or_default(&ctb.name, &config.name.value, "");
    out.extend(
        ctb.signer_name
            .as_ref()
            .and_then(|signer| signer_limits(signer, &base, file)),
    );
}

/// CT512: the signer must make a ClusterTrustBundle name (`<signer prefix><base>`) the
/// API server takes.
fn signer_limits(signer: &Spanned<String>, base: &str, file: &str) -> Option<Diagnostic> {
    if !is_signer_name(&signer.value) {
        Some(finding(
            Code::Ct512,
            file,
            signer.span,
            format!("signerName `{}` is not `<domain>/<name>`", signer.value),
            "write the signer as a lowercase domain, `/` and one lowercase segment, such as `example.com/corp-roots`",
        ))
    } else if signer_prefix(&signer.value).len() + base.len() > 253 {
        Some(finding(
            Code::Ct512,
            file,
            signer.span,
            format!(
                "the ClusterTrustBundle name `{}{base}` is longer than 253 characters",
                signer_prefix(&signer.value)
            ),
            "use a shorter signer name or `name`",
        ))
    } else {
        None
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

/// GKE's private-CA limits (CT561–CT566).
fn gke_limits(
    config: &TrustConfig,
    loaded: &Loaded,
    gke: &GkeTarget,
    file: &str,
    out: &mut Vec<Diagnostic>,
) {
    gke_names(gke, file, out);
    for a in &config.authorities {
        gke_registries(a, file, out);
    }
    let domains = domain_configs(config, &loaded.certificates);
    if domains.is_empty() {
        out.push(finding(Code::Ct566, file, gke.span, "gke: no authority names `registries`; GKE trusts private CAs only for registries, so the file disables it", "add `registries` to the CAs of your private registries; node-wide trust on GKE needs the agent target"));
    }
    if let Some(extra) = domains.get(MAX_CERTIFICATES) {
        let a = &config.authorities[extra.certificate.authority];
        out.push(finding(
            Code::Ct561,
            file,
            a.registries.first().map_or(a.span, |r| r.span),
            format!("gke: {} registry certificates; GKE takes at most {MAX_CERTIFICATES} per cluster (the 6th is `{}`)", domains.len(), extra.certificate.name),
            "trust registries through fewer CAs (a common root), or leave the rest to the agent target",
        ));
    }
    shared_fqdns(config, &domains, file, out);
}

/// GKE cluster name: at most 40 characters, a DNS label starting with a letter.
fn is_gke_cluster(s: &str) -> bool {
    s.len() <= 40
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && catrust_bundle::is_dns_label(s)
}

/// CT565: the names go into gcloud commands, so each must be one GCP takes.
fn gke_names(gke: &GkeTarget, file: &str, out: &mut Vec<Diagnostic>) {
    let names = [
        ("project", &gke.project, is_gcp_project(&gke.project.value)),
        ("cluster", &gke.cluster, is_gke_cluster(&gke.cluster.value)),
        (
            "location",
            &gke.location,
            catrust_bundle::is_dns_label(&gke.location.value),
        ),
    ];
    for (what, value, ok) in names {
        if !ok {
            out.push(finding(
                Code::Ct565,
                file,
                value.span,
                format!("gke.{what} `{}` is not a GCP {what} name", value.value),
                "use the lowercase name gcloud shows (`gcloud projects list`, `gcloud container clusters list`), such as `my-project` / `gke-prod` / `europe-west1`",
            ));
        }
    }
}

/// CT563 for a wildcard registry, CT562 for more FQDNs than GKE takes per certificate.
fn gke_registries(a: &AuthoritySpec, file: &str, out: &mut Vec<Diagnostic>) {
    for r in a.registries.iter().filter(|r| r.value.contains('*')) {
        out.push(finding(
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
        out.push(finding(
            Code::Ct562,
            file,
            a.registries[MAX_FQDNS].span,
            format!("gke: authority `{}` names {} registries; GKE takes at most {MAX_FQDNS} FQDNs per certificate", a.name.value, a.registries.len()),
            "split the registries over fewer hosts (a mirror), or render the rest with another target",
        ));
    }
}

/// CT564: GKE takes each FQDN in one certificate only.
fn shared_fqdns(
    config: &TrustConfig,
    domains: &[DomainConfig],
    file: &str,
    out: &mut Vec<Diagnostic>,
) {
    // FQDN → the certificate that named it first.
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    for d in domains {
        for r in &config.authorities[d.certificate.authority].registries {
            match seen.get(r.value.as_str()) {
                Some(other) if *other != d.certificate.name => out.push(finding(
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
