//! The agent bundle of a configuration, through the shared contract crate.

use catrust_bundle::{Authority, BundleContent, Distrusted, Manifest, SCHEMA_VERSION};

use crate::config::TrustConfig;
use crate::load::Certificate;

/// The sealed bundle manifest for `certificates` (all of them, in trust.yaml order).
pub fn manifest(config: &TrustConfig, certificates: &[Certificate]) -> Manifest {
    manifest_of(config, certificates.iter())
}

/// The sealed bundle manifest for a subset of the certificates (one pool group).
pub fn manifest_of<'c>(
    config: &TrustConfig,
    certificates: impl Iterator<Item = &'c Certificate>,
) -> Manifest {
    let authorities = certificates
        .map(|c| {
            let spec = &config.authorities[c.authority];
            Authority {
                name: c.name.clone(),
                sha256: c.info.sha256.clone(),
                // Lint refuses a bad registry (CT006, an error) before anything is built.
                registries: spec
                    .registries
                    .iter()
                    .filter_map(|r| r.value.parse().ok())
                    .collect(),
                pools: spec.pools.iter().map(|p| p.value.clone()).collect(),
            }
        })
        .collect();
    let distrust = config
        .distrust
        .iter()
        .filter_map(|d| {
            Some(Distrusted {
                sha256: catrust_bundle::normalize_fingerprint(&d.sha256.value)?,
                reason: d.reason.as_ref().map(|r| r.value.clone()),
            })
        })
        .collect();
    let containerd = config
        .targets
        .agent
        .as_ref()
        .map(|a| a.containerd.value)
        .unwrap_or_default();
    Manifest::seal(BundleContent {
        schema_version: SCHEMA_VERSION,
        config_name: config.name.value.clone(),
        authorities,
        distrust,
        containerd,
    })
}
