//! The platform targets of `trust.yaml` (`spec.targets.trustManager`,
//! `clusterTrustBundle`, `openshift`, `talos`): each platform's own way of trusting a
//! CA. Parsed by `parse::platforms`, rendered by `render::platforms`.

use crate::span::{Span, Spanned};

/// Every platform target `spec.targets` may declare.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PlatformTargets {
    pub trust_manager: Option<TrustManagerTarget>,
    pub cluster_trust_bundle: Option<ClusterTrustBundleTarget>,
    pub openshift: Option<OpenShiftTarget>,
    pub talos: Option<TalosTarget>,
    pub bottlerocket: Option<BottlerocketTarget>,
    pub k3s: Option<K3sTarget>,
    pub gke: Option<GkeTarget>,
}

/// The name a platform object takes when trust.yaml names none.
pub fn default_name(config_name: &str, suffix: &str) -> String {
    format!("catrust-{config_name}{suffix}")
}

/// `name`, or [`default_name`].
pub fn name_or_default(name: &Option<Spanned<String>>, config_name: &str, suffix: &str) -> String {
    name.as_ref()
        .map_or_else(|| default_name(config_name, suffix), |n| n.value.clone())
}

/// `targets.trustManager`: a cert-manager trust-manager `Bundle` (and optionally a
/// `ClusterBundle`) that copies the trusted set into a ConfigMap in every selected
/// namespace, for pods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustManagerTarget {
    /// The Bundle's name, which is also the name of the ConfigMap it writes
    /// (default `catrust-<metadata.name>`, see [`default_name`]).
    pub name: Option<Spanned<String>>,
    /// `target.configMap.key`.
    pub key: Spanned<String>,
    /// A `useDefaultCAs: true` source: trust-manager's default CA package too.
    pub use_default_cas: Spanned<bool>,
    /// `target.additionalFormats.jks.key`.
    pub jks_key: Option<Spanned<String>>,
    /// `target.additionalFormats.pkcs12.key`.
    pub pkcs12_key: Option<Spanned<String>>,
    /// `target.namespaceSelector.matchLabels` (empty: every namespace).
    pub namespace_selector: Vec<(Spanned<String>, Spanned<String>)>,
    /// Also render the `trust-manager.io/v1alpha2` `ClusterBundle`.
    pub cluster_bundle: Spanned<bool>,
    pub span: Span,
}

/// `targets.clusterTrustBundle`: one `certificates.k8s.io/v1beta1` ClusterTrustBundle
/// holding the trusted set, for the `clusterTrustBundle` projected volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterTrustBundleTarget {
    /// `spec.signerName`; the object name then starts with it (`/` → `:`).
    pub signer_name: Option<Spanned<String>>,
    /// The name (without signer), or the part after the signer prefix (default
    /// `catrust-<metadata.name>`).
    pub name: Option<Spanned<String>>,
    pub span: Span,
}

/// `targets.openshift`: the `openshift-config/user-ca-bundle` ConfigMap with the
/// `Proxy cluster` naming it, and for registries the `image.config.openshift.io/cluster`
/// `additionalTrustedCA` ConfigMap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenShiftTarget {
    /// Name of the `additionalTrustedCA` ConfigMap in `openshift-config` (default
    /// `catrust-<metadata.name>-registries`).
    pub registry_config_map: Option<Spanned<String>>,
    pub span: Span,
}

/// A Talos release as `major.minor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct TalosVersion {
    pub major: u32,
    pub minor: u32,
}

impl TalosVersion {
    /// `TrustedRootsConfig` exists from this release.
    pub const TRUSTED_ROOTS: TalosVersion = TalosVersion { major: 1, minor: 8 };
    /// `RegistryTLSConfig` replaces `machine.registries` from this release.
    pub const REGISTRY_TLS: TalosVersion = TalosVersion {
        major: 1,
        minor: 12,
    };

    /// `1.12`, `v1.12` or `1.12.3` (the patch level does not matter).
    pub fn parse(text: &str) -> Option<TalosVersion> {
        let text = text.trim().strip_prefix('v').unwrap_or(text.trim());
        let mut parts = text.split('.');
        let number = |p: Option<&str>| {
            p.filter(|p| !p.is_empty() && p.len() <= 4 && p.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|p| p.parse::<u32>().ok())
        };
        let major = number(parts.next())?;
        let minor = number(parts.next())?;
        match parts.next() {
            None => {}
            Some(patch) => {
                number(Some(patch))?;
            }
        }
        parts
            .next()
            .is_none()
            .then_some(TalosVersion { major, minor })
    }
}

impl std::fmt::Display for TalosVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// `targets.talos`: a machine-config patch (`TrustedRootsConfig`, registry TLS) and
/// the `talosctl patch mc` lines that apply it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TalosTarget {
    /// The oldest Talos release the patch must work on; `None` when unparsable (CT006).
    pub talos_version: Spanned<Option<TalosVersion>>,
    /// `talosctl --nodes` (IP addresses or host names); empty: `$TALOS_NODES`.
    pub nodes: Vec<Spanned<String>>,
    pub span: Span,
}

/// `targets.bottlerocket`: the `[settings.pki.catrust-<metadata.name>]` user-data
/// fragment and the `apiclient set` line. No settings yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BottlerocketTarget {
    pub span: Span,
}

/// Which of the two Rancher distributions (they read the same registries.yaml format).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum K3sDistribution {
    K3s,
    Rke2,
}

impl K3sDistribution {
    pub const ALL: [K3sDistribution; 2] = [K3sDistribution::K3s, K3sDistribution::Rke2];

    /// The spelling of `targets.k3s.distribution`.
    pub fn as_str(self) -> &'static str {
        match self {
            K3sDistribution::K3s => "k3s",
            K3sDistribution::Rke2 => "rke2",
        }
    }
}

/// `targets.k3s`: `registries.yaml` and the CA files it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct K3sTarget {
    pub distribution: Spanned<K3sDistribution>,
    pub span: Span,
}

/// `targets.gke`: the `--containerd-config-from-file` YAML and the gcloud script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GkeTarget {
    pub project: Spanned<String>,
    pub cluster: Spanned<String>,
    /// Region or zone (`--location`).
    pub location: Spanned<String>,
    pub span: Span,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn talos_versions() {
        let v = |major, minor| Some(TalosVersion { major, minor });
        assert_eq!(TalosVersion::parse("1.12"), v(1, 12));
        assert_eq!(TalosVersion::parse("v1.8.3"), v(1, 8));
        for bad in ["", "1", "1.x", "1.12.3.4", "1..2", "v", "1.12.", "99999.1"] {
            assert_eq!(TalosVersion::parse(bad), None, "{bad}");
        }
        assert!(v(1, 9) < v(1, 12) && v(1, 12) >= Some(TalosVersion::REGISTRY_TLS));
    }
}
