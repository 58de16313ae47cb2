//! The plan of the platform targets: their settings, and per target what applying a
//! change does to nodes, with the source of that fact.

use super::{list, target, Change, Effect, Setting};
use crate::config::{
    ClusterTrustBundleTarget, OpenShiftTarget, TalosTarget, TrustConfig, TrustManagerTarget,
};
use crate::load::Loaded;
use crate::render::platforms::{registry_cas, Platform};

const TRUST_MANAGER_SETTINGS: &[Setting<TrustManagerTarget>] = &[
    ("name", |t| opt(&t.name)),
    ("key", |t| t.key.value.clone()),
    ("useDefaultCAs", |t| t.use_default_cas.value.to_string()),
    ("additionalFormats.jks.key", |t| opt(&t.jks_key)),
    ("additionalFormats.pkcs12.key", |t| opt(&t.pkcs12_key)),
    ("namespaceSelector", |t| {
        let pairs: Vec<String> = t
            .namespace_selector
            .iter()
            .map(|(k, v)| format!("{}={}", k.value, v.value))
            .collect();
        list(&pairs)
    }),
    ("clusterBundle", |t| t.cluster_bundle.value.to_string()),
];

const OPENSHIFT_SETTINGS: &[Setting<OpenShiftTarget>] =
    &[("registryConfigMap", |t| opt(&t.registry_config_map))];

const TALOS_SETTINGS: &[Setting<TalosTarget>] = &[
    ("talosVersion", |t| {
        t.talos_version
            .value
            .map_or("(invalid)".into(), |v| v.to_string())
    }),
    ("nodes", |t| {
        list(&t.nodes.iter().map(|n| n.value.clone()).collect::<Vec<_>>())
    }),
];

const CLUSTER_TRUST_BUNDLE_SETTINGS: &[Setting<ClusterTrustBundleTarget>] = &[
    ("signerName", |t| opt(&t.signer_name)),
    ("name", |t| opt(&t.name)),
];

fn opt(v: &Option<crate::span::Spanned<String>>) -> String {
    v.as_ref().map_or("(default)".into(), |v| v.value.clone())
}

/// Each platform target's declared/absent flag and settings that changed.
pub(super) fn targets(from: Option<&TrustConfig>, to: Option<&TrustConfig>, out: &mut Vec<Change>) {
    let (from, to) = (
        from.map(|c| &c.targets.platforms),
        to.map(|c| &c.targets.platforms),
    );
    target(
        out,
        "targets.trustManager",
        TRUST_MANAGER_SETTINGS,
        from.and_then(|p| p.trust_manager.as_ref()),
        to.and_then(|p| p.trust_manager.as_ref()),
    );
    target(
        out,
        "targets.clusterTrustBundle",
        CLUSTER_TRUST_BUNDLE_SETTINGS,
        from.and_then(|p| p.cluster_trust_bundle.as_ref()),
        to.and_then(|p| p.cluster_trust_bundle.as_ref()),
    );
    target(
        out,
        "targets.openshift",
        OPENSHIFT_SETTINGS,
        from.and_then(|p| p.openshift.as_ref()),
        to.and_then(|p| p.openshift.as_ref()),
    );
    target(
        out,
        "targets.talos",
        TALOS_SETTINGS,
        from.and_then(|p| p.talos.as_ref()),
        to.and_then(|p| p.talos.as_ref()),
    );
}

/// What applying a platform's output does, and where that is written down.
struct Facts {
    output: &'static str,
    /// What a changed trusted set does.
    changed: &'static str,
    /// What removing the target does.
    removed: &'static str,
    source: &'static str,
    /// For platforms with per-registry CAs: (output, what a changed registry CA does, source).
    registries: Option<(&'static str, &'static str, &'static str)>,
}

fn facts(p: Platform) -> Facts {
    match p {
        Platform::TrustManager => Facts {
            output: "trust-manager-bundle",
            changed: "trust-manager Bundle changes: the trust-manager controller rewrites the target ConfigMap in every selected namespace; nodes are untouched; pods see the new file when kubelet refreshes the ConfigMap volume (never through a subPath mount)",
            removed: "the trustManager target is removed: pruning the Bundle makes trust-manager stop syncing (the ConfigMaps it wrote are garbage-collected with it)",
            source: "trust-manager CRD trust.cert-manager.io_bundles.yaml (`target`: \"the target location in all namespaces to sync source data to\")",
            registries: None,
        },
        Platform::ClusterTrustBundle => Facts {
            output: "cluster-trust-bundle",
            changed: "ClusterTrustBundle changes: no node effect; pods that mount it through a `clusterTrustBundle` projected volume see the new set when kubelet refreshes the volume",
            removed: "the clusterTrustBundle target is removed: pods mounting it by name fail to start unless the projection is `optional`",
            source: "Kubernetes certificates.k8s.io/v1beta1 ClusterTrustBundle type description (KEP-3257: beta in 1.33, the API must be enabled)",
            registries: None,
        },
        Platform::OpenShift => Facts {
            output: "openshift-user-ca-bundle",
            changed: "user-ca-bundle changes: the Machine Config Operator writes it to every node and restarts update-ca-trust and CRI-O, without drain or reboot on OpenShift 4.15 and later (4.14 and earlier reboot every node, pool by pool)",
            removed: "the openshift target is removed: pruning user-ca-bundle and the Proxy's trustedCA removes these CAs from nodes (the same MCO rollout)",
            source: "machine-config-operator pkg/apihelpers/apihelpers.go:96-111 and pkg/daemon/update.go:607-625 (commit 20b039f6a, release-4.15+); openshift-docs PR #69812 for the reboot on older releases",
            registries: Some((
                "openshift-registry-cas",
                "registry CAs change: the machine-config daemon writes /etc/docker/certs.d/<host:port>/ca.crt on every node, without drain or reboot (4.14 and later)",
                "machine-config-operator pkg/daemon/certificate_writer.go:236-276 (commit 81136ed1a)",
            )),
        },
        Platform::Bottlerocket => Facts {
            output: "bottlerocket-pki",
            changed: "settings.pki bundle changes: `apiclient set` on a running node makes certdog rewrite the trust store and try-restarts containerd, no reboot; a new launch-template version with the changed user data recycles every node of an EKS managed node group",
            removed: "the bottlerocket target is removed: nodes keep the catrust bundle until it is set to an empty `data` (`apiclient set pki.<name>.data=\"\"`)",
            source: "bottlerocket-os/bottlerocket sources/shared-defaults/containerd-cri-pki.toml and defaults.toml:24-26,197-199 (affected services pki + containerd); docs.aws.amazon.com EKS launch-templates (\"all nodes in the group are recycled\")",
            registries: None,
        },
        Platform::K3s => Facts {
            output: "k3s-registries",
            changed: "registries.yaml changes: k3s/RKE2 read it only at start: put it and the CA files on every node and restart the k3s (or rke2-server / rke2-agent) service, no reboot; k3s then rewrites its own containerd certs.d from it",
            removed: "the k3s target is removed: nodes keep their registries.yaml until the provisioning tool removes it and the service restarts",
            source: "k3s-io/docs docs/installation/private-registry.md (\"you need to restart K3s on each node\"); rancher/rke2-docs docs/install/containerd_registry_configuration.md",
            registries: None,
        },
        Platform::Gke => Facts {
            output: "gke-containerd-config",
            changed: "GKE containerd configuration changes: `gcloud container clusters update --containerd-config-from-file` makes GKE re-create the nodes (only where auto-upgrade is on, within maintenance windows; otherwise upgrade to the same version by hand); a CA rotation needs two re-creations (add the new CA, then remove the old)",
            removed: "the gke target is removed: nodes keep the last applied configuration until it is updated with `privateRegistryAccessConfig: {enabled: false}`",
            source: "cloud.google.com/kubernetes-engine/docs/how-to/access-private-registries-private-certificates (\"Updating a cluster with a containerd configuration recreates the nodes\")",
            registries: None,
        },
        Platform::Talos => Facts {
            output: "talos-trusted-roots",
            changed: "TrustedRootsConfig changes: `talosctl patch mc --mode=no-reboot` updates each node's trusted roots in place, no reboot (Talos 1.8 and later)",
            removed: "the talos target is removed: the documents stay in the nodes' machine config until patched away (`$patch: delete`)",
            source: "siderolabs/talos internal/app/machined/internal/server/v1alpha1/v1alpha1_server.go:241-250 (apply mode AUTO -> NO_REBOOT) and internal/integration/api/trusted-roots.go (new root in the bundle within 5 s of the patch)",
            registries: Some((
                "talos-registry-tls",
                "registry CAs change: RegistryTLSConfig (Talos 1.12+) or machine.registries (older) apply without reboot; a registry dropped from trust.yaml keeps its document in the machine config until patched away (`$patch: delete`)",
                "siderolabs/talos v1.12.0 hack/release.toml (RegistryTLSConfig) and v1.11.0 internal/app/machined/pkg/runtime/v1alpha1/v1alpha1_runtime.go:119-206 (`.machine.registries` applies immediately)",
            )),
        },
    }
}

pub(super) fn effects(f: &Loaded, t: &Loaded, targets_changed: &[Change], out: &mut Vec<Effect>) {
    let pems = |l: &Loaded| {
        l.certificates
            .iter()
            .map(|c| c.pem.clone())
            .collect::<Vec<_>>()
    };
    let declared = |l: &Loaded, p: Platform| l.config.as_ref().is_some_and(|c| p.declared(c));
    for p in Platform::ALL {
        let facts = facts(p);
        let prefix = format!("targets.{}.", p.key());
        let settings = targets_changed.iter().any(|c| c.field.starts_with(&prefix));
        let effect = if declared(t, p) {
            (!declared(f, p) || settings || pems(f) != pems(t)).then_some(facts.changed)
        } else {
            declared(f, p).then_some(facts.removed)
        };
        let mut push = |output: &str, effect: &str, source: &str| {
            out.push(Effect {
                output: output.into(),
                effect: effect.into(),
                source: Some(source.into()),
            })
        };
        if let Some(effect) = effect {
            push(facts.output, effect, facts.source);
        }
        if let Some((output, effect, source)) = facts.registries {
            let cas = |l: &Loaded| {
                l.config.as_ref().map(|c| {
                    registry_cas(c, &l.certificates)
                        .into_iter()
                        .map(|(host, certs)| {
                            (
                                host,
                                certs.iter().map(|c| c.der.clone()).collect::<Vec<_>>(),
                            )
                        })
                        .collect::<Vec<_>>()
                })
            };
            let (before, after) = (cas(f).unwrap_or_default(), cas(t).unwrap_or_default());
            if declared(t, p) && !after.is_empty() && (!declared(f, p) || before != after) {
                push(output, effect, source);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{diff, human, StateRef};
    use crate::load::Loaded;
    use crate::source::MemSource;

    const A: &str = include_str!("../../../examples/basic/certs/corp-root-2024.pem");
    const B: &str = include_str!("../../../examples/basic/certs/proxy-ca.pem");

    fn state(names: &[&str], targets: &str) -> Loaded {
        let mut src = MemSource::default();
        let mut authorities = String::new();
        for (name, pem) in [("a", A), ("b", B)] {
            src.files
                .insert(format!("{name}.pem"), pem.as_bytes().to_vec());
            if names.contains(&name) {
                authorities.push_str(&format!("    - name: {name}\n      file: {name}.pem\n"));
            }
        }
        let y = format!("apiVersion: catrust.dev/v1alpha1\nkind: TrustConfig\nmetadata:\n  name: corp\nspec:\n  authorities:\n{authorities}  targets:\n{targets}");
        src.files.insert("trust.yaml".into(), y.into_bytes());
        crate::load::load(&src, "trust.yaml").unwrap()
    }

    fn r(label: &str) -> StateRef {
        StateRef {
            label: label.into(),
            commit: None,
        }
    }

    const PLATFORMS: &str = "    trustManager: {}\n    clusterTrustBundle: {}\n";

    #[test]
    fn a_new_ca_says_per_platform_what_happens_to_nodes_with_its_source() {
        let from = state(&["a"], PLATFORMS);
        let to = state(&["a", "b"], PLATFORMS);
        let p = diff((&r("HEAD"), &from), (&r("worktree"), &to), Vec::new(), 0);
        let outputs: Vec<&str> = p.effects.iter().map(|e| e.output.as_str()).collect();
        assert_eq!(outputs, ["trust-manager-bundle", "cluster-trust-bundle"]);
        assert!(p.effects.iter().all(|e| e.source.is_some()));
        let text = human(&p);
        assert!(
            text.contains("nodes are untouched") && text.contains("(source: trust-manager CRD"),
            "{text}"
        );
        // Unchanged set and settings: nothing to do.
        let same = diff((&r("HEAD"), &to), (&r("worktree"), &to), Vec::new(), 0);
        assert!(same.effects.is_empty(), "{:?}", same.effects);
        // A setting change alone re-renders the Bundle and is listed.
        let keyed = state(
            &["a", "b"],
            "    trustManager: {key: bundle.pem}\n    clusterTrustBundle: {}\n",
        );
        let p = diff((&r("HEAD"), &to), (&r("worktree"), &keyed), Vec::new(), 0);
        assert!(p
            .targets_changed
            .iter()
            .any(|c| c.field == "targets.trustManager.key"));
        assert_eq!(p.effects.len(), 1);
        // Removing a target says what pruning does.
        let gone = state(&["a", "b"], "    trustManager: {}\n");
        let p = diff((&r("HEAD"), &to), (&r("worktree"), &gone), Vec::new(), 0);
        assert!(p.effects[0]
            .effect
            .contains("clusterTrustBundle target is removed"));
    }
}
