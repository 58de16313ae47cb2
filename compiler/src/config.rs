//! The typed model of `trust.yaml`. Every value keeps the span it was read from.
//!
//! This module knows nothing about files, git or the command line: it is built by
//! [`crate::parse`] from text and consumed by the loader, the lints and the renderers.

use catrust_bundle::ContainerdPolicy;

use crate::span::{Span, Spanned};

mod platforms;
pub use platforms::*;

pub const API_VERSION: &str = "catrust.dev/v1alpha1";
pub const KIND: &str = "TrustConfig";

/// `metadata.name` prefixes generated resource names, so it is shorter than a label.
pub const MAX_CONFIG_NAME: usize = 40;

/// Seconds in an hour and in a day, the units of `72h` and `30d`.
pub const HOUR: u64 = 3600;
pub const DAY: u64 = 24 * HOUR;

/// `spec.rotation.minOverlap` when trust.yaml leaves it out (`72h`).
pub const DEFAULT_MIN_OVERLAP: u64 = 72 * HOUR;
/// `spec.expiryWarning` when trust.yaml leaves it out (`30d`).
pub const DEFAULT_EXPIRY_WARNING: u64 = 30 * DAY;

/// Where an authority's PEM comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertSource {
    /// A path relative to trust.yaml's folder.
    File(Spanned<String>),
    /// Inline PEM text; the span covers the YAML scalar.
    Pem(Spanned<String>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthoritySpec {
    pub name: Spanned<String>,
    pub source: CertSource,
    /// One pin per certificate in the source, in order (a single string is one pin).
    pub sha256: Vec<Spanned<String>>,
    pub registries: Vec<Spanned<String>>,
    pub pools: Vec<Spanned<String>>,
    pub replaces: Option<Spanned<String>>,
    /// The targets that get this CA (`targets: [aks]`); empty: every target.
    pub targets: Vec<Spanned<TargetKind>>,
    /// The whole list item.
    pub span: Span,
}

/// A target of trust.yaml, as an authority's `targets` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    /// The AKS cluster list (and the legacy Secret): CAs nodes need at provisioning.
    Aks,
    /// The agent bundle: CAs installed and rotated in place.
    Agent,
}

impl TargetKind {
    pub const ALL: [TargetKind; 2] = [TargetKind::Aks, TargetKind::Agent];

    /// The spelling in an authority's `targets`.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Aks => "aks",
            TargetKind::Agent => "agent",
        }
    }
}

impl AuthoritySpec {
    /// Whether `target` gets this authority's certificates.
    pub fn goes_to(&self, target: TargetKind) -> bool {
        self.targets.is_empty() || self.targets.iter().any(|t| t.value == target)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistrustSpec {
    pub sha256: Spanned<String>,
    pub reason: Option<Spanned<String>>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodePool {
    pub name: Spanned<String>,
    pub os_type: Spanned<String>,
    /// The retired per-pool preview flag (CT303) when set.
    pub custom_ca_trust: Option<Spanned<bool>>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AksTarget {
    pub resource_group: Spanned<String>,
    pub cluster: Spanned<String>,
    pub certificates_file: Spanned<bool>,
    pub secret: Spanned<bool>,
    pub node_pools: Vec<NodePool>,
    pub span: Span,
}

/// `maxUnavailable` as Kubernetes takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntOrPercent {
    Int(u32),
    Percent(u32),
}

impl std::fmt::Display for IntOrPercent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IntOrPercent::Int(n) => write!(f, "{n}"),
            IntOrPercent::Percent(n) => write!(f, "{n}%"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentTarget {
    pub namespace: Spanned<String>,
    pub image: Spanned<String>,
    pub containerd: Spanned<ContainerdPolicy>,
    pub max_unavailable: Spanned<IntOrPercent>,
    pub pool_label: Spanned<String>,
    pub node_selector: Vec<(Spanned<String>, Spanned<String>)>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Targets {
    pub aks: Option<AksTarget>,
    pub agent: Option<AgentTarget>,
    /// trust-manager, ClusterTrustBundle, OpenShift, Talos.
    pub platforms: PlatformTargets,
    pub span: Span,
}

/// A parsed `trust.yaml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustConfig {
    pub name: Spanned<String>,
    pub authorities: Vec<AuthoritySpec>,
    pub distrust: Vec<DistrustSpec>,
    /// Seconds.
    pub min_overlap: Spanned<u64>,
    /// Seconds.
    pub expiry_warning: Spanned<u64>,
    pub targets: Targets,
}

/// Parses a trust.yaml duration (`72h`, `30d`, `1d12h`, `90s`: the grammar of
/// [`catrust_bundle::duration`]) into whole seconds.
pub fn parse_duration(text: &str) -> Option<u64> {
    let duration = catrust_bundle::duration::parse(text).ok()?;
    (duration.subsec_nanos() == 0).then_some(duration.as_secs())
}

/// Formats seconds the way a user would write them (`72h`, `30d`, `1d12h`).
pub fn format_duration(mut secs: u64) -> String {
    if secs == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, suffix) in [(DAY, 'd'), (HOUR, 'h'), (60, 'm'), (1, 's')] {
        if secs >= unit {
            out.push_str(&format!("{}{suffix}", secs / unit));
            secs %= unit;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("72h"), Some(72 * 3600));
        assert_eq!(parse_duration("30d"), Some(30 * 86_400));
        assert_eq!(parse_duration("1d12h"), Some(36 * 3600));
        for bad in ["", "3 days", "h", "12", "1.5h", "-1h"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
        assert_eq!(format_duration(36 * 3600), "1d12h");
    }
}
