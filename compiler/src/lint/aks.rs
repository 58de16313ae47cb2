//! The AKS target's limits: the cluster list's size and emptiness, the legacy Secret
//! nothing reads, and the node pool settings AKS retired. Azure names (CT305) are
//! checked by `parse`, blank lines in a certificate block (CT308) by `pem`.

use super::finding;
use crate::config::{AksTarget, NodePool, TargetKind, TrustConfig};
use crate::diag::Diagnostic;
use crate::load::Loaded;
use crate::rules::Code;

/// The AKS limit on the cluster-level certificate list.
pub const AKS_MAX_CERTIFICATES: usize = 10;

/// Every CT301–CT304, CT306 and CT307 finding of `config`.
pub(super) fn lint(config: &TrustConfig, loaded: &Loaded, file: &str, out: &mut Vec<Diagnostic>) {
    let Some(aks) = &config.targets.aks else {
        return;
    };
    if aks.certificates_file.value {
        cluster_list(config, loaded, aks, file, out);
    }
    if aks.secret.value {
        out.push(legacy_secret(aks, file));
    }
    for pool in &aks.node_pools {
        node_pool(pool, file, out);
    }
    pools_of_authorities(config, file, out);
}

/// CT301 over the AKS limit, CT307 for an empty list.
fn cluster_list(
    config: &TrustConfig,
    loaded: &Loaded,
    aks: &AksTarget,
    file: &str,
    out: &mut Vec<Diagnostic>,
) {
    let span = aks.certificates_file.span;
    let count = crate::render::for_target(config, &loaded.certificates, TargetKind::Aks).len();
    if count > AKS_MAX_CERTIFICATES {
        out.push(finding(
            Code::Ct301,
            file,
            span,
            format!("{count} certificates for the AKS cluster list; AKS accepts at most {AKS_MAX_CERTIFICATES}"),
            "keep the CAs nodes need to provision in the cluster list and move the rest to the agent target, or set `certificatesFile: false`",
        ));
    }
    // An empty list by intent (no authority for aks), not one whose authorities or
    // files failed to read (those have their errors).
    let none_for_aks = !config
        .authorities
        .iter()
        .any(|a| a.goes_to(TargetKind::Aks));
    if none_for_aks && !loaded.has_errors() {
        out.push(finding(
            Code::Ct307,
            file,
            span,
            "the AKS cluster list is empty: `az-commands.sh update` clears it with an empty file (AKS re-images every node); Terraform (azurerm 3.79 to 3.x) would force a new cluster",
            "apply the empty list with `az-commands.sh update`, not Terraform (`catrust explain CT307`)",
        ));
    }
}

/// CT306: `secret: true` renders a Secret that only the retired per-pool property's
/// watcher read.
fn legacy_secret(aks: &AksTarget, file: &str) -> Diagnostic {
    let pools: Vec<&str> = aks
        .node_pools
        .iter()
        .filter(|p| p.custom_ca_trust.as_ref().is_some_and(|f| f.value))
        .map(|p| p.name.value.as_str())
        .collect();
    let readers = if pools.is_empty() {
        "no node pool reads it on a current cluster".to_string()
    } else {
        format!(
            "only pools that still carry the retired enableCustomCATrust property ran the watcher that read it ({}), and `az-commands.sh update` unsets that property",
            pools.join(", ")
        )
    };
    finding(
        Code::Ct306,
        file,
        aks.secret.span,
        format!("custom-ca-trust-secret is rendered, but {readers}: AKS deployed its reader (aks-node-ca-watcher) only for the per-pool property retired on 2026-09-14"),
        "drop `secret: true`; use the cluster list for provisioning CAs and the agent target for CAs that rotate",
    )
}

/// CT302 for a Windows pool, CT303 for the retired per-pool flag.
fn node_pool(pool: &NodePool, file: &str, out: &mut Vec<Diagnostic>) {
    if pool.os_type.value == "Windows" {
        out.push(finding(
            Code::Ct302,
            file,
            pool.os_type.span,
            format!("node pool `{}` is a Windows pool", pool.name.value),
            "AKS custom CA trust supports Linux node pools only: remove this pool",
        ));
    }
    if let Some(flag) = &pool.custom_ca_trust {
        let what = if flag.value {
            "cannot be enabled any more (the cluster list reaches every Linux pool)"
        } else {
            "has no CLI flag any more"
        };
        out.push(finding(
            Code::Ct303,
            file,
            flag.span,
            format!(
                "node pool `{}`: customCATrust {} {what}: the property retired on 2026-09-14, and `az-commands.sh update` unsets it on this pool",
                pool.name.value, flag.value
            ),
            "run `az-commands.sh update` once, then drop `customCATrust` (`catrust explain CT303`)",
        ));
    }
}

/// CT304: AKS trusts one set per cluster, so `pools` cannot reach its list.
fn pools_of_authorities(config: &TrustConfig, file: &str, out: &mut Vec<Diagnostic>) {
    for a in config
        .authorities
        .iter()
        .filter(|a| a.goes_to(TargetKind::Aks))
    {
        if let Some(first) = a.pools.first() {
            out.push(finding(
                Code::Ct304,
                file,
                first.span,
                format!(
                    "authority `{}` names pools, but AKS trusts one set per cluster",
                    a.name.value
                ),
                "add `targets: [agent]` to the authority: the agent installs it on these pools only, and the AKS cluster list leaves it out",
            ));
        }
    }
}
