//! The agent target: a ServiceAccount, and per pool group an immutable hashed bundle
//! Secret and a DaemonSet that installs it on the group's nodes.
//!
//! Pool groups: authorities may name `pools`. Every node pool named anywhere gets the
//! authorities without `pools` plus those naming it; nodes of any other pool get only
//! the former. Pools that end up with the same set share one bundle and one DaemonSet
//! (selected by `poolLabel`), so a rollout touches only the nodes whose trust changes.

use std::collections::BTreeSet;

use base64::Engine as _;
use catrust_bundle::agent_interface::{
    flag, BUNDLE_ANNOTATION, ENV_EXPECTED_SHA256, PORT as AGENT_PORT, SUBCOMMAND_RUN,
};
use serde_json::{json, Value};

use super::k8s::{self, ObjectMeta, OrderedMap, Secret};
use super::Rendered;
use crate::config::{AgentTarget, TrustConfig};
use crate::load::Certificate;
use crate::render::Inputs;

/// Where the bundle Secret is mounted in the agent container.
pub const BUNDLE_DIR: &str = "/etc/catrust/bundle";
/// The agent container's memory limit. It covers the refresh too: a command run through
/// nsenter stays in the pod's memory cgroup. Measured on a booted Debian node
/// (`tests/node_e2e.rs`, cgroup v1 `memory.max_usage_in_bytes`): the pod peaks at about
/// 7 MiB with Debian's Mozilla set (the agent's VmHWM 8 MiB); with
/// `ca-certificates-java` its `update.d` hook runs a JVM (`java -Xmx64m`) inside the
/// refresh, which peaked at 35 MiB (by hand, with the agent's capability set). 128Mi leaves room for that JVM's whole 64 MiB heap
/// plus the agent: an OOM-killed hook fails silently (`update-ca-certificates` ignores a
/// failing hook), so the limit must hold the worst case, not the usual one.
const MEMORY_LIMIT: &str = "128Mi";
/// Where the agent finds the host's root: through PID 1 (hostPID), so the agent sees
/// the host's whole mount tree with the host's own mount flags and the kubelet mounts
/// and creates nothing on the node (no hostPath: a read-only `/usr` on Flatcar or Azure
/// Linux OS Guard cannot break the pod's start, and no node-wide bind of `/` pins other
/// pods' volumes). Reading it needs SYS_PTRACE, as nsenter does.
pub const HOST_ROOT: &str = "/proc/1/root";

/// Nodes selected by pool: `In` the listed pools, or `NotIn` every named pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoolSelector {
    /// No authority names pools: every node.
    All,
    In(Vec<String>),
    NotIn(Vec<String>),
}

/// One DaemonSet's worth of nodes and the certificates they trust.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolGroup {
    pub selector: PoolSelector,
    /// Indices into the certificate list, in trust.yaml order.
    pub certificates: Vec<usize>,
}

/// Splits nodes into groups with identical certificate sets. Pure.
pub fn pool_groups(config: &TrustConfig, certificates: &[Certificate]) -> Vec<PoolGroup> {
    let pools_of = |c: &Certificate| -> Vec<String> {
        config.authorities[c.authority]
            .pools
            .iter()
            .map(|p| p.value.clone())
            .collect()
    };
    let named: BTreeSet<String> = certificates.iter().flat_map(pools_of).collect();
    let everywhere: Vec<usize> = (0..certificates.len())
        .filter(|&i| pools_of(&certificates[i]).is_empty())
        .collect();
    if named.is_empty() {
        return vec![PoolGroup {
            selector: PoolSelector::All,
            certificates: everywhere,
        }];
    }
    let mut groups: Vec<PoolGroup> = Vec::new();
    for pool in &named {
        let set: Vec<usize> = (0..certificates.len())
            .filter(|&i| {
                let pools = pools_of(&certificates[i]);
                pools.is_empty() || pools.contains(pool)
            })
            .collect();
        match groups.iter_mut().find(|g| g.certificates == set) {
            Some(PoolGroup {
                selector: PoolSelector::In(pools),
                ..
            }) => pools.push(pool.clone()),
            _ => groups.push(PoolGroup {
                selector: PoolSelector::In(vec![pool.clone()]),
                certificates: set,
            }),
        }
    }
    groups.push(PoolGroup {
        selector: PoolSelector::NotIn(named.into_iter().collect()),
        certificates: everywhere,
    });
    groups
}

/// A DNS label of at most 63 characters: `base-suffix`, shortened with a hash if needed.
fn object_name(base: &str, suffix: &str) -> String {
    let name = if suffix.is_empty() {
        base.to_string()
    } else {
        format!("{base}-{suffix}")
    };
    if name.len() <= 63 {
        return name;
    }
    let hash = &catrust_bundle::sha256_hex(name.as_bytes())[..8];
    let keep = 63 - hash.len() - 1;
    format!("{}-{hash}", name[..keep].trim_end_matches('-'))
}

fn group_suffix(selector: &PoolSelector) -> String {
    match selector {
        PoolSelector::All => String::new(),
        PoolSelector::In(pools) => pools.join("-"),
        PoolSelector::NotIn(_) => "other-pools".into(),
    }
}

pub(super) fn render(input: &Inputs<'_>, agent: &AgentTarget, out: &mut Rendered) {
    // Object metadata only: pod templates never carry provenance (a commit that does not
    // change the trust must not roll the nodes).
    let provenance = input.provenance.annotations();
    let name = &input.config.name.value;
    let service_account = object_name(&format!("catrust-agent-{name}"), "");
    let sa = json!({
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {
            "name": service_account,
            "namespace": agent.namespace.value,
            "labels": k8s::labels(name, "node-agent"),
            "annotations": with_annotations(&[("argocd.argoproj.io/sync-wave", "-1")], &provenance),
        },
        // The agent never calls the API server: it reads its bundle from a volume.
        "automountServiceAccountToken": false,
    });
    out.add_object("agent/serviceaccount.yaml", k8s::to_yaml(&sa));

    for group in pool_groups(input.config, input.certificates) {
        let members: Vec<&Certificate> = group
            .certificates
            .iter()
            .map(|&i| &input.certificates[i])
            .collect();
        let manifest = crate::bundle::manifest_of(input.config, members.iter().copied());
        let suffix = group_suffix(&group.selector);
        let secret = bundle_secret(input.config, agent, &members, &manifest, &provenance);
        let secret_name = secret.metadata.name.clone();
        out.add_object(&group_file("bundle-secret", &suffix), k8s::to_yaml(&secret));
        out.bundles.push(super::BundleRef {
            secret: secret_name.clone(),
            sha256: manifest.bundle_sha256.clone(),
        });
        let pool = PoolDaemonSet {
            name: &object_name(&format!("catrust-agent-{name}"), &suffix),
            service_account: &service_account,
            secret_name: &secret_name,
            bundle_sha256: &manifest.bundle_sha256,
            selector: &group.selector,
        };
        let ds = daemonset(input.config, agent, &pool, &provenance);
        out.add_object(&group_file("daemonset", &suffix), k8s::to_yaml(&ds));
    }
}

/// `agent/<kind>.yaml`, or `agent/<kind>-<suffix>.yaml` for one of several pool groups.
fn group_file(kind: &str, suffix: &str) -> String {
    if suffix.is_empty() {
        format!("agent/{kind}.yaml")
    } else {
        format!("agent/{kind}-{suffix}.yaml")
    }
}

/// The immutable bundle Secret of one pool group, named by its hash.
fn bundle_secret(
    config: &TrustConfig,
    agent: &AgentTarget,
    members: &[&Certificate],
    manifest: &catrust_bundle::Manifest,
    provenance: &OrderedMap,
) -> Secret {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut data = OrderedMap::default();
    for c in members {
        data.insert(
            format!("{}{}", c.name, catrust_bundle::CERT_SUFFIX),
            b64.encode(&c.pem),
        );
    }
    data.insert(catrust_bundle::MANIFEST_KEY, b64.encode(manifest.to_json()));
    let mut annotations = OrderedMap::default();
    // Created before the DaemonSet that mounts it, pruned after the DaemonSet that
    // stops mounting it: a rolling node never finds its bundle gone.
    annotations.insert("argocd.argoproj.io/sync-wave", "-1");
    annotations.insert("argocd.argoproj.io/sync-options", "PruneLast=true");
    annotations.0.extend(provenance.0.iter().cloned());
    let name = &config.name.value;
    Secret {
        api_version: "v1",
        kind: "Secret",
        metadata: ObjectMeta {
            name: object_name(&format!("catrust-{name}"), manifest.short_hash()),
            namespace: Some(agent.namespace.value.clone()),
            labels: k8s::labels(name, "bundle"),
            annotations,
        },
        immutable: Some(true),
        type_: "Opaque",
        data,
    }
}

fn affinity(agent: &AgentTarget, selector: &PoolSelector) -> Option<Value> {
    let (operator, pools) = match selector {
        PoolSelector::All => return None,
        PoolSelector::In(p) => ("In", p),
        PoolSelector::NotIn(p) => ("NotIn", p),
    };
    Some(json!({
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{
                    "matchExpressions": [{
                        "key": agent.pool_label.value,
                        "operator": operator,
                        "values": pools,
                    }]
                }]
            }
        }
    }))
}

/// What one pool group's DaemonSet is made of, besides the config and the agent target.
struct PoolDaemonSet<'a> {
    /// The DaemonSet's object name.
    name: &'a str,
    service_account: &'a str,
    /// The bundle Secret the pods mount.
    secret_name: &'a str,
    /// The bundle's hash, the pod template's annotation and the agent's readiness check.
    bundle_sha256: &'a str,
    /// The node pools this DaemonSet runs on.
    selector: &'a PoolSelector,
}

fn daemonset(
    config: &TrustConfig,
    agent: &AgentTarget,
    pool: &PoolDaemonSet<'_>,
    provenance: &super::k8s::OrderedMap,
) -> Value {
    let name = pool.name;
    let instance = name.strip_prefix("catrust-agent-").unwrap_or(name);
    let selector_labels = json!({
        "app.kubernetes.io/name": "catrust-agent",
        "app.kubernetes.io/instance": instance,
    });
    let mut pod_labels = selector_labels.clone();
    pod_labels["app.kubernetes.io/component"] = json!("node-agent");
    pod_labels["app.kubernetes.io/part-of"] = json!("catrust");
    json!({
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {
            "name": name,
            "namespace": agent.namespace.value,
            "labels": k8s::labels(&config.name.value, "node-agent"),
            "annotations": with_annotations(&[("argocd.argoproj.io/sync-wave", "0")], provenance),
        },
        "spec": {
            "selector": { "matchLabels": selector_labels },
            "updateStrategy": {
                "type": "RollingUpdate",
                "rollingUpdate": { "maxUnavailable": max_unavailable(agent) },
            },
            "template": {
                "metadata": {
                    "labels": pod_labels,
                    // The bundle hash and constants only: nothing that changes on every
                    // commit, so a commit that does not change the trust does not roll
                    // the nodes.
                    "annotations": {
                        BUNDLE_ANNOTATION: pool.bundle_sha256,
                        // API servers before 1.30 know only the annotation, not the
                        // appArmorProfile field; newer ones require both to agree.
                        "container.apparmor.security.beta.kubernetes.io/agent": "unconfined",
                    },
                },
                "spec": pod_spec(agent, pool),
            },
        },
    })
}

/// The pod of one pool group's DaemonSet: host namespaces, the bundle volume, placement.
fn pod_spec(agent: &AgentTarget, pool: &PoolDaemonSet<'_>) -> Value {
    let mut pod_spec = json!({
        "serviceAccountName": pool.service_account,
        "automountServiceAccountToken": false,
        "priorityClassName": "system-node-critical",
        // nsenter targets the host's PID 1, and systemctl must be visible in
        // systemd's PID namespace ("Failed to connect to bus" otherwise).
        "hostPID": true,
        // A trust installer must run before the node's CNI is up (pulling the CNI's
        // images may need the very CAs it installs), like kube-proxy and CNI agents.
        // The agent resolves no names, so the default dnsPolicy is right.
        "hostNetwork": true,
        "nodeSelector": node_selector(agent),
        // Every node must trust the same CAs, whatever its taints.
        "tolerations": [{ "operator": "Exists" }],
        "terminationGracePeriodSeconds": 10,
        "containers": [agent_container(agent)],
        // The bundle is the only volume: the host is reached through HOST_ROOT.
        "volumes": [{
            "name": "bundle",
            "secret": { "secretName": pool.secret_name, "defaultMode": 0o444 },
        }],
    });
    if let Some(affinity) = affinity(agent, pool.selector) {
        pod_spec["affinity"] = affinity;
    }
    pod_spec
}

fn node_selector(agent: &AgentTarget) -> serde_json::Map<String, Value> {
    let mut node_selector = serde_json::Map::new();
    node_selector.insert("kubernetes.io/os".into(), json!("linux"));
    for (k, v) in &agent.node_selector {
        node_selector.insert(k.value.clone(), json!(v.value));
    }
    node_selector
}

/// The agent container: the interface flags, probes and limits.
fn agent_container(agent: &AgentTarget) -> Value {
    json!({
        "name": "agent",
        "image": agent.image.value,
        "imagePullPolicy": "IfNotPresent",
        // The agent's own CLI parses exactly these (tests/compile_agent.rs).
        "args": [
            SUBCOMMAND_RUN,
            format!("--{}={BUNDLE_DIR}", flag::BUNDLE_DIR),
            format!("--{}={HOST_ROOT}", flag::HOST_ROOT),
            format!("--{}=nsenter", flag::HOST_EXEC),
            format!("--{}=0.0.0.0:{AGENT_PORT}", flag::LISTEN),
            format!("--{}=json", flag::LOG_FORMAT),
        ],
        "env": [
            {
                "name": ENV_EXPECTED_SHA256,
                "valueFrom": { "fieldRef": { "fieldPath": format!("metadata.annotations['{BUNDLE_ANNOTATION}']") } },
            },
        ],
        "ports": [{ "name": "http", "containerPort": AGENT_PORT, "protocol": "TCP" }],
        // Ready only once this exact bundle is installed on the node: the DaemonSet's
        // rollout status is the rotation's progress.
        // Probed every second, so a maxUnavailable wave sees the pod Ready within
        // about a second of the apply finishing (not paced by the probe period).
        "readinessProbe": {
            "httpGet": { "path": "/readyz", "port": "http" },
            "periodSeconds": 1,
            "failureThreshold": 1,
        },
        "livenessProbe": {
            "httpGet": { "path": "/healthz", "port": "http" },
            "periodSeconds": 20,
            "failureThreshold": 3,
        },
        // The refresh (update-ca-certificates or update-ca-trust, and their
        // hooks, e.g. ca-certificates-java) runs through nsenter but stays in this
        // pod's memory cgroup: the limit must hold the agent plus that refresh.
        "resources": {
            "requests": { "cpu": "10m", "memory": "16Mi" },
            "limits": { "memory": MEMORY_LIMIT },
        },
        "securityContext": security_context(),
        "volumeMounts": [{ "name": "bundle", "mountPath": BUNDLE_DIR, "readOnly": true }],
    })
}

/// The least the agent needs to enter the host's namespaces (README, "What the
/// DaemonSet needs on a node").
fn security_context() -> Value {
    // Measured on a booted node (FACTS.md, "A real node on this machine"): setns(2)
    // into PID 1's namespaces needs SYS_ADMIN, and the mount namespace also SYS_CHROOT
    // (kernel `mntns_install`); opening /proc/1/ns/* needs SYS_PTRACE. DAC_OVERRIDE:
    // the RHEL family's `extracted/` folders are 0555, and the refresh run through
    // nsenter keeps this bounding set. README, "What the DaemonSet needs on a node",
    // says what breaks without each.
    let capabilities = ["SYS_ADMIN", "SYS_CHROOT", "SYS_PTRACE", "DAC_OVERRIDE"];
    json!({
        "runAsUser": 0,
        "runAsNonRoot": false,
        "privileged": false,
        "readOnlyRootFilesystem": true,
        "capabilities": { "drop": ["ALL"], "add": capabilities },
        "seccompProfile": { "type": "RuntimeDefault" },
        // containerd's AppArmor profile denies ptrace-read of processes under other
        // profiles, so /proc/1/ns/* cannot be opened under it. (Kubernetes refuses
        // allowPrivilegeEscalation: false beside CAP_SYS_ADMIN.)
        "appArmorProfile": { "type": "Unconfined" },
    })
}

fn max_unavailable(agent: &AgentTarget) -> Value {
    match agent.max_unavailable.value {
        crate::config::IntOrPercent::Int(n) => json!(n),
        crate::config::IntOrPercent::Percent(p) => json!(format!("{p}%")),
    }
}

/// `fixed` annotations followed by the provenance ones, as a JSON object.
fn with_annotations(fixed: &[(&str, &str)], provenance: &super::k8s::OrderedMap) -> Value {
    let mut map = serde_json::Map::new();
    for (k, v) in fixed {
        map.insert((*k).to_string(), json!(v));
    }
    for (k, v) in &provenance.0 {
        map.insert(k.clone(), json!(v));
    }
    Value::Object(map)
}
