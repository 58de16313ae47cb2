//! A pod template run as kubelet runs it: the rendered DaemonSet's pod spec translated
//! generically into CRI `RunPodSandbox` / `CreateContainer` / `StartContainer` on a
//! node's containerd. Nothing of the pod spec is written by the test: every field of
//! the template is either translated, or consumed with the reason it does not reach the
//! runtime (scheduling, API-server-side fields), or the translation fails naming it.
//!
//! What kubelet does and this does too: hostPath `type` checks (and `DirectoryOrCreate`
//! creates the folder on the node), Secret volumes laid out by kubelet's atomic writer
//! (`kubelet.rs`) under `/var/lib/kubelet/pods/<uid>/volumes/kubernetes.io~secret/` and
//! bind-mounted read-only, downward-API env, capabilities, namespaces, seccomp and
//! AppArmor profiles (field and annotation), the read-only root, the user, CPU shares
//! and the memory limit, the QoS cgroup parent (cgroupfs driver), the critical-pod OOM
//! score, `/dev/termination-log`, container logs under `/var/log/pods`, HTTP probes.
//! What it does not: CNI (a pod without `hostNetwork` fails: the node has none),
//! service-link env, the API server's defaulting (fields absent from the YAML get
//! kubelet's defaults here).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use k8s_cri::v1 as cri;
use serde_json::Value;

use crate::cri::Cri;
use crate::kubelet::SecretVolume;
use crate::nodebox::Node;

/// The node's name as `spec.nodeName` sees it.
pub const NODE_NAME: &str = "catrust-node";

/// A YAML object whose fields are consumed one by one; what is left at the end is a
/// field the translation does not understand, and fails it.
struct Obj {
    at: String,
    map: serde_json::Map<String, Value>,
}

impl Obj {
    #[track_caller]
    fn new(at: &str, v: Value) -> Obj {
        match v {
            Value::Object(map) => Obj {
                at: at.to_string(),
                map,
            },
            other => panic!("{at}: expected an object, got {other}"),
        }
    }
    fn take(&mut self, k: &str) -> Option<Value> {
        self.map.remove(k)
    }
    #[track_caller]
    fn str(&mut self, k: &str) -> Option<String> {
        self.take(k).map(|v| match v {
            Value::String(s) => s,
            other => panic!("{}.{k}: expected a string, got {other}", self.at),
        })
    }
    #[track_caller]
    fn bool(&mut self, k: &str) -> Option<bool> {
        self.take(k).map(|v| {
            v.as_bool()
                .unwrap_or_else(|| panic!("{}.{k}: expected a boolean, got {v}", self.at))
        })
    }
    #[track_caller]
    fn int(&mut self, k: &str) -> Option<i64> {
        self.take(k).map(|v| {
            v.as_i64()
                .unwrap_or_else(|| panic!("{}.{k}: expected an integer, got {v}", self.at))
        })
    }
    #[track_caller]
    fn obj(&mut self, k: &str) -> Option<Obj> {
        let at = format!("{}.{k}", self.at);
        self.take(k).map(|v| Obj::new(&at, v))
    }
    #[track_caller]
    fn list(&mut self, k: &str) -> Vec<Value> {
        match self.take(k) {
            None => Vec::new(),
            Some(Value::Array(a)) => a,
            Some(other) => panic!("{}.{k}: expected a list, got {other}", self.at),
        }
    }
    #[track_caller]
    fn strings(&mut self, k: &str) -> Vec<String> {
        let at = format!("{}.{k}", self.at);
        self.list(k)
            .into_iter()
            .map(|v| match v {
                Value::String(s) => s,
                other => panic!("{at}: expected strings, got {other}"),
            })
            .collect()
    }
    #[track_caller]
    fn string_map(&mut self, k: &str) -> BTreeMap<String, String> {
        let at = format!("{}.{k}", self.at);
        match self.take(k) {
            None => BTreeMap::new(),
            Some(Value::Object(m)) => m
                .into_iter()
                .map(|(k, v)| match v {
                    Value::String(s) => (k, s),
                    other => panic!("{at}.{k}: expected a string, got {other}"),
                })
                .collect(),
            Some(other) => panic!("{at}: expected a map, got {other}"),
        }
    }
    /// A field that does not reach the container runtime on one node (`why` says why).
    fn not_for_the_runtime(&mut self, k: &str, _why: &str) {
        self.map.remove(k);
    }
    #[track_caller]
    fn done(self) {
        let left: Vec<&String> = self.map.keys().collect();
        assert!(
            left.is_empty(),
            "{}: the node suite does not know how kubelet runs {left:?}; translate it in tests/support/podspec.rs",
            self.at
        );
    }
}

/// `64Mi`, `1G`, `512` … as bytes.
pub fn quantity_bytes(q: &str) -> i64 {
    let (num, unit) = q.split_at(q.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(q.len()));
    let n: f64 = num.parse().unwrap_or_else(|_| panic!("quantity {q:?}"));
    let mult: f64 = match unit {
        "" => 1.0,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        _ => panic!("quantity {q:?}: unit {unit:?}"),
    };
    (n * mult) as i64
}

/// `10m`, `0.5`, `2` … as millicores.
fn quantity_millicpu(q: &str) -> i64 {
    match q.strip_suffix('m') {
        Some(m) => m.parse().unwrap_or_else(|_| panic!("cpu {q:?}")),
        None => (q.parse::<f64>().unwrap_or_else(|_| panic!("cpu {q:?}")) * 1000.0) as i64,
    }
}

/// An HTTP probe as the YAML states it.
#[derive(Debug, Clone)]
pub struct Probe {
    pub path: String,
    pub port: u16,
    pub initial_delay: Duration,
    pub period: Duration,
    pub timeout: Duration,
    pub failure_threshold: i64,
}

impl Probe {
    fn parse(at: &str, v: Value, ports: &BTreeMap<String, u16>) -> Probe {
        let mut p = Obj::new(at, v);
        let mut http = p
            .obj("httpGet")
            .unwrap_or_else(|| panic!("{at}: only httpGet probes are translated"));
        let path = http.str("path").unwrap_or_else(|| "/".into());
        let port = match http.take("port") {
            Some(Value::String(name)) => *ports
                .get(&name)
                .unwrap_or_else(|| panic!("{at}.httpGet.port: no container port named {name}")),
            Some(Value::Number(n)) => n.as_u64().and_then(|n| u16::try_from(n).ok()).unwrap(),
            other => panic!("{at}.httpGet.port: {other:?}"),
        };
        if let Some(s) = http.str("scheme") {
            assert_eq!(s, "HTTP", "{at}.httpGet.scheme: only HTTP is translated");
        }
        http.done();
        let secs = |v: Option<i64>, default: i64| Duration::from_secs(v.unwrap_or(default) as u64);
        let probe = Probe {
            path,
            port,
            initial_delay: secs(p.int("initialDelaySeconds"), 0),
            period: secs(p.int("periodSeconds"), 10),
            timeout: secs(p.int("timeoutSeconds"), 1),
            failure_threshold: p.int("failureThreshold").unwrap_or(3),
        };
        if let Some(s) = p.int("successThreshold") {
            assert_eq!(s, 1, "{at}.successThreshold");
        }
        p.done();
        probe
    }

    /// One probe: the HTTP status and body (host: the node shares this machine's network).
    pub fn get(&self) -> Option<(u16, String)> {
        http_get(self.port, &self.path, self.timeout)
    }
}

/// `GET http://127.0.0.1:<port><path>`: the status and body, `None` when nothing answers.
pub fn http_get(port: u16, path: &str, timeout: Duration) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), timeout).ok()?;
    s.set_read_timeout(Some(timeout)).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    let status = resp.split_whitespace().nth(1)?.parse().ok()?;
    let body = resp.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((status, body))
}

/// A hostPath volume: node path and `type`.
#[derive(Debug, Clone)]
struct HostPath {
    path: String,
    kind: String,
}

/// A Secret volume: the Secret's name and the files' mode.
#[derive(Debug, Clone)]
struct SecretRef {
    secret: String,
    mode: u32,
}

#[derive(Debug, Clone)]
enum Volume {
    HostPath(HostPath),
    Secret(SecretRef),
}

/// One container of the template, translated (mounts name volumes; paths come later).
#[derive(Debug, Clone)]
pub struct ContainerPlan {
    pub name: String,
    pub image: String,
    pull_policy: String,
    config: cri::ContainerConfig,
    /// (volume, container path, read-only, propagation)
    mounts: Vec<(String, String, bool, i32)>,
    pub readiness: Option<Probe>,
    pub liveness: Option<Probe>,
    pub startup: Option<Probe>,
}

/// What kubelet makes of a DaemonSet's pod template on this node.
#[derive(Debug, Clone)]
pub struct PodPlan {
    pub daemonset: String,
    pub namespace: String,
    pub annotations: BTreeMap<String, String>,
    host_network: bool,
    host_pid: bool,
    host_ipc: bool,
    grace_seconds: i64,
    oom_score_adj: i64,
    qos: &'static str,
    volumes: BTreeMap<String, Volume>,
    pub containers: Vec<ContainerPlan>,
    sandbox_seccomp: Option<cri::SecurityProfile>,
}

fn profile(at: &str, kind: &str) -> cri::SecurityProfile {
    use cri::security_profile::ProfileType;
    let t = match kind {
        "RuntimeDefault" | "runtime/default" => ProfileType::RuntimeDefault,
        "Unconfined" | "unconfined" => ProfileType::Unconfined,
        other => panic!("{at}: profile {other:?} is not translated"),
    };
    cri::SecurityProfile {
        profile_type: t as i32,
        localhost_ref: String::new(),
    }
}

fn security_profile(at: &str, v: Value) -> cri::SecurityProfile {
    let mut o = Obj::new(at, v);
    let kind = o.str("type").unwrap_or_else(|| panic!("{at}.type"));
    o.done();
    profile(at, &kind)
}

impl PodPlan {
    /// Translates `DaemonSet.spec.template` (a parsed YAML document).
    #[track_caller]
    pub fn from_daemonset(ds: &Value) -> PodPlan {
        let mut doc = Obj::new("DaemonSet", ds.clone());
        assert_eq!(doc.str("kind").as_deref(), Some("DaemonSet"));
        doc.not_for_the_runtime("apiVersion", "API server");
        let mut meta = doc.obj("metadata").expect("metadata");
        let daemonset = meta.str("name").expect("metadata.name");
        let namespace = meta.str("namespace").unwrap_or_else(|| "default".into());
        for k in ["labels", "annotations"] {
            meta.not_for_the_runtime(k, "the DaemonSet's own metadata");
        }
        meta.done();
        let mut spec = doc.obj("spec").expect("spec");
        spec.not_for_the_runtime("selector", "the controller's");
        spec.not_for_the_runtime(
            "updateStrategy",
            "the controller's (the tests roll pods by hand, one node)",
        );
        spec.not_for_the_runtime("minReadySeconds", "the controller's");
        spec.not_for_the_runtime("revisionHistoryLimit", "the controller's");
        let mut template = spec.obj("template").expect("spec.template");
        spec.done();
        doc.done();
        let mut tmeta = template.obj("metadata").expect("template.metadata");
        let annotations = tmeta.string_map("annotations");
        tmeta.not_for_the_runtime("labels", "labels reach the sandbox as metadata only");
        tmeta.done();
        let mut pod = template.obj("spec").expect("template.spec");
        template.done();

        for (k, why) in [
            ("serviceAccountName", "API access; the agent uses none"),
            ("nodeSelector", "scheduling: the pod is on this node"),
            ("affinity", "scheduling: the pod is on this node"),
            ("tolerations", "scheduling: the pod is on this node"),
            (
                "dnsPolicy",
                "DNS: containerd copies the node's resolv.conf for hostNetwork",
            ),
            (
                "restartPolicy",
                "DaemonSets always restart; the tests restart by hand",
            ),
        ] {
            pod.not_for_the_runtime(k, why);
        }
        let priority = pod.str("priorityClassName").unwrap_or_default();
        if pod.bool("automountServiceAccountToken") != Some(false) {
            panic!("template.spec.automountServiceAccountToken must be false: the node suite mounts no token");
        }
        assert!(
            pod.list("initContainers").is_empty(),
            "template.spec.initContainers are not translated"
        );
        let host_network = pod.bool("hostNetwork").unwrap_or(false);
        let host_pid = pod.bool("hostPID").unwrap_or(false);
        let host_ipc = pod.bool("hostIPC").unwrap_or(false);
        let grace_seconds = pod.int("terminationGracePeriodSeconds").unwrap_or(30);
        let mut sandbox_seccomp = None;
        if let Some(mut sc) = pod.obj("securityContext") {
            if let Some(p) = sc.take("seccompProfile") {
                sandbox_seccomp = Some(security_profile(
                    "template.spec.securityContext.seccompProfile",
                    p,
                ));
            }
            sc.done();
        }
        let mut volumes = BTreeMap::new();
        for (i, v) in pod.list("volumes").into_iter().enumerate() {
            let mut v = Obj::new(&format!("template.spec.volumes[{i}]"), v);
            let name = v.str("name").expect("volume name");
            let vol = if let Some(mut hp) = v.obj("hostPath") {
                let h = HostPath {
                    path: hp.str("path").expect("hostPath.path"),
                    kind: hp.str("type").unwrap_or_default(),
                };
                hp.done();
                Volume::HostPath(h)
            } else if let Some(mut s) = v.obj("secret") {
                let r = SecretRef {
                    secret: s.str("secretName").expect("secret.secretName"),
                    mode: s.int("defaultMode").unwrap_or(0o644) as u32,
                };
                if s.bool("optional") == Some(true) {
                    panic!("optional Secret volumes are not translated");
                }
                s.done();
                Volume::Secret(r)
            } else {
                panic!("{}: only hostPath and secret volumes are translated", v.at)
            };
            v.done();
            volumes.insert(name, vol);
        }
        let mut containers = Vec::new();
        let mut qos_requests = false;
        let mut qos_guaranteed = true;
        for (i, c) in pod.list("containers").into_iter().enumerate() {
            let (plan, requests, guaranteed) = container(
                &format!("template.spec.containers[{i}]"),
                c,
                &annotations,
                &daemonset,
                &namespace,
            );
            qos_requests |= requests;
            qos_guaranteed &= guaranteed;
            containers.push(plan);
        }
        pod.done();
        assert!(!containers.is_empty(), "a pod without containers");
        let qos = if qos_guaranteed {
            "guaranteed"
        } else if qos_requests {
            "burstable"
        } else {
            "besteffort"
        };
        // kubelet's GetContainerOOMScoreAdjust: critical pods -997, guaranteed -997,
        // best effort 1000, burstable in between (a fixed mid value here).
        let critical = priority == "system-node-critical" || priority == "system-cluster-critical";
        let oom_score_adj = match qos {
            _ if critical => -997,
            "guaranteed" => -997,
            "besteffort" => 1000,
            _ => 999,
        };
        // AppArmor through the pre-1.30 annotation (kubelet reads both).
        for c in &mut containers {
            if let Some(v) = annotations.get(&format!(
                "container.apparmor.security.beta.kubernetes.io/{}",
                c.name
            )) {
                let sc = c
                    .config
                    .linux
                    .as_mut()
                    .unwrap()
                    .security_context
                    .as_mut()
                    .unwrap();
                sc.apparmor = Some(profile("apparmor annotation", v));
            }
        }
        PodPlan {
            daemonset,
            namespace,
            annotations,
            host_network,
            host_pid,
            host_ipc,
            grace_seconds,
            oom_score_adj,
            qos,
            volumes,
            containers,
            sandbox_seccomp,
        }
    }

    /// The Secrets the pod mounts.
    pub fn secret_names(&self) -> Vec<&str> {
        self.volumes
            .values()
            .filter_map(|v| match v {
                Volume::Secret(s) => Some(s.secret.as_str()),
                Volume::HostPath(_) => None,
            })
            .collect()
    }

    /// The container named `name`.
    pub fn container_mut(&mut self, name: &str) -> &mut ContainerPlan {
        self.containers
            .iter_mut()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no container {name}"))
    }
}

impl ContainerPlan {
    /// The arguments kubelet passes (the image's entrypoint runs them).
    pub fn args(&self) -> &[String] {
        &self.config.args
    }

    /// Replaces the arguments (a test that runs another subcommand of the same image,
    /// e.g. `uninstall`, says so where it calls this).
    pub fn set_args(&mut self, args: Vec<String>) {
        self.config.args = args;
    }

    /// The memory limit in bytes (0: none).
    pub fn memory_limit(&self) -> i64 {
        self.resources().memory_limit_in_bytes
    }

    /// Replaces the memory limit (a test that lowers it says so where it calls this).
    pub fn set_memory_limit(&mut self, bytes: i64) {
        let r = self
            .config
            .linux
            .as_mut()
            .unwrap()
            .resources
            .as_mut()
            .unwrap();
        r.memory_limit_in_bytes = bytes;
    }

    fn resources(&self) -> &cri::LinuxContainerResources {
        self.config
            .linux
            .as_ref()
            .unwrap()
            .resources
            .as_ref()
            .unwrap()
    }
}

/// One container: the plan, whether it has requests, whether it is guaranteed.
fn container(
    at: &str,
    v: Value,
    annotations: &BTreeMap<String, String>,
    pod_name: &str,
    namespace: &str,
) -> (ContainerPlan, bool, bool) {
    let mut c = Obj::new(at, v);
    let name = c.str("name").expect("container name");
    let image = c.str("image").expect("container image");
    let pull_policy = c.str("imagePullPolicy").unwrap_or_else(|| {
        if image.ends_with(":latest") || !image.contains(':') {
            "Always".into()
        } else {
            "IfNotPresent".into()
        }
    });
    let command = c.strings("command");
    let args = c.strings("args");
    let mut ports = BTreeMap::new();
    for (i, p) in c.list("ports").into_iter().enumerate() {
        let mut p = Obj::new(&format!("{at}.ports[{i}]"), p);
        let port = p.int("containerPort").expect("containerPort") as u16;
        if let Some(n) = p.str("name") {
            ports.insert(n, port);
        }
        if let Some(proto) = p.str("protocol") {
            assert_eq!(proto, "TCP", "{at}.ports[{i}].protocol");
        }
        p.done();
    }
    let mut envs = Vec::new();
    for (i, e) in c.list("env").into_iter().enumerate() {
        let mut e = Obj::new(&format!("{at}.env[{i}]"), e);
        let key = e.str("name").expect("env name");
        let value = match (e.str("value"), e.obj("valueFrom")) {
            (Some(v), None) => v,
            (None, Some(mut from)) => {
                let mut field = from.obj("fieldRef").unwrap_or_else(|| {
                    panic!("{at}.env[{i}].valueFrom: only fieldRef is translated")
                });
                field.not_for_the_runtime("apiVersion", "v1 only");
                let path = field.str("fieldPath").expect("fieldPath");
                field.done();
                from.done();
                downward(&path, annotations, pod_name, namespace)
            }
            (None, None) => String::new(),
            _ => panic!("{at}.env[{i}]: value and valueFrom"),
        };
        e.done();
        envs.push(cri::KeyValue { key, value });
    }
    let readiness = c
        .take("readinessProbe")
        .map(|p| Probe::parse(&format!("{at}.readinessProbe"), p, &ports));
    let liveness = c
        .take("livenessProbe")
        .map(|p| Probe::parse(&format!("{at}.livenessProbe"), p, &ports));
    let startup = c
        .take("startupProbe")
        .map(|p| Probe::parse(&format!("{at}.startupProbe"), p, &ports));
    let mut resources = cri::LinuxContainerResources::default();
    let (mut requests, mut guaranteed) = (false, false);
    if let Some(mut r) = c.obj("resources") {
        let req = r.string_map("requests");
        let lim = r.string_map("limits");
        r.done();
        for k in req.keys().chain(lim.keys()) {
            assert!(
                k == "cpu" || k == "memory",
                "{at}.resources: {k} is not translated"
            );
        }
        requests = !req.is_empty() || !lim.is_empty();
        guaranteed = ["cpu", "memory"]
            .iter()
            .all(|k| lim.contains_key(*k) && req.get(*k).is_none_or(|r| Some(r) == lim.get(*k)));
        // kubelet: shares from the request (the limit when no request), 2 at least.
        let cpu_req = req.get("cpu").or(lim.get("cpu"));
        resources.cpu_shares = cpu_req.map_or(2, |q| (quantity_millicpu(q) * 1024 / 1000).max(2));
        if let Some(q) = lim.get("cpu") {
            resources.cpu_period = 100_000;
            resources.cpu_quota = quantity_millicpu(q) * 100;
        }
        if let Some(q) = lim.get("memory") {
            resources.memory_limit_in_bytes = quantity_bytes(q);
        }
    }
    let mut sc = cri::LinuxContainerSecurityContext::default();
    // kubelet sends the runtime default only when asked; absent means Unconfined.
    let unconfined = profile(at, "Unconfined");
    sc.seccomp = Some(unconfined.clone());
    sc.apparmor = None;
    if let Some(mut s) = c.obj("securityContext") {
        if let Some(u) = s.int("runAsUser") {
            sc.run_as_user = Some(cri::Int64Value { value: u });
        }
        if let Some(g) = s.int("runAsGroup") {
            sc.run_as_group = Some(cri::Int64Value { value: g });
        }
        if s.bool("runAsNonRoot") == Some(true) {
            assert!(
                sc.run_as_user.as_ref().is_some_and(|u| u.value != 0),
                "{at}: runAsNonRoot with user 0: kubelet refuses to start it"
            );
        }
        sc.privileged = s.bool("privileged").unwrap_or(false);
        sc.readonly_rootfs = s.bool("readOnlyRootFilesystem").unwrap_or(false);
        // kubelet: no_new_privs = !allowPrivilegeEscalation when it is set.
        sc.no_new_privs = s.bool("allowPrivilegeEscalation") == Some(false);
        if let Some(mut caps) = s.obj("capabilities") {
            sc.capabilities = Some(cri::Capability {
                add_capabilities: caps.strings("add"),
                drop_capabilities: caps.strings("drop"),
                add_ambient_capabilities: Vec::new(),
            });
            caps.done();
        }
        if let Some(p) = s.take("seccompProfile") {
            sc.seccomp = Some(security_profile(
                &format!("{at}.securityContext.seccompProfile"),
                p,
            ));
        }
        if let Some(p) = s.take("appArmorProfile") {
            sc.apparmor = Some(security_profile(
                &format!("{at}.securityContext.appArmorProfile"),
                p,
            ));
        }
        s.done();
    }
    let mut mounts = Vec::new();
    for (i, m) in c.list("volumeMounts").into_iter().enumerate() {
        let mut m = Obj::new(&format!("{at}.volumeMounts[{i}]"), m);
        let vol = m.str("name").expect("mount name");
        let path = m.str("mountPath").expect("mountPath");
        let ro = m.bool("readOnly").unwrap_or(false);
        let propagation = match m.str("mountPropagation").as_deref() {
            None | Some("None") => cri::MountPropagation::PropagationPrivate,
            Some("HostToContainer") => cri::MountPropagation::PropagationHostToContainer,
            Some("Bidirectional") => cri::MountPropagation::PropagationBidirectional,
            Some(other) => panic!("{at}: mountPropagation {other}"),
        } as i32;
        assert!(
            m.take("subPath").is_none(),
            "{at}: subPath is not translated"
        );
        m.done();
        mounts.push((vol, path, ro, propagation));
    }
    if let Some(p) = c.str("terminationMessagePath") {
        assert_eq!(p, "/dev/termination-log");
    }
    c.not_for_the_runtime(
        "terminationMessagePolicy",
        "kubelet reads the file after exit",
    );
    c.done();
    let config = cri::ContainerConfig {
        metadata: Some(cri::ContainerMetadata {
            name: name.clone(),
            attempt: 0,
        }),
        image: Some(cri::ImageSpec {
            image: image.clone(),
            ..Default::default()
        }),
        command,
        args,
        envs,
        linux: Some(cri::LinuxContainerConfig {
            resources: Some(resources),
            security_context: Some(sc),
        }),
        ..Default::default()
    };
    (
        ContainerPlan {
            name,
            image,
            pull_policy,
            config,
            mounts,
            readiness,
            liveness,
            startup,
        },
        requests,
        guaranteed,
    )
}

/// A downward-API `fieldPath`'s value for this pod on this node.
fn downward(
    path: &str,
    annotations: &BTreeMap<String, String>,
    pod: &str,
    namespace: &str,
) -> String {
    if let Some(key) = path
        .strip_prefix("metadata.annotations['")
        .and_then(|k| k.strip_suffix("']"))
    {
        return annotations.get(key).cloned().unwrap_or_default();
    }
    match path {
        "spec.nodeName" => NODE_NAME.into(),
        "metadata.name" => pod.into(),
        "metadata.namespace" => namespace.into(),
        "status.hostIP" | "status.podIP" => "127.0.0.1".into(),
        other => panic!("downward API fieldPath {other:?} is not translated"),
    }
}

/// A unique pod uid (UUID-shaped).
fn pod_uid() -> String {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let h = catrust_bundle::sha256_hex(
        format!(
            "{now}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        )
        .as_bytes(),
    );
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// A pod running on the node.
pub struct Pod {
    pub plan: PodPlan,
    pub name: String,
    pub uid: String,
    pub sandbox_id: String,
    sandbox_config: cri::PodSandboxConfig,
    /// Container name → (id, attempt, started).
    pub containers: BTreeMap<String, (String, u32, Instant)>,
    container_configs: BTreeMap<String, cri::ContainerConfig>,
}

/// The bytes of every key of the Secrets the rendered output holds (name → key → bytes).
pub type Secrets = BTreeMap<String, BTreeMap<String, Vec<u8>>>;

/// Reads `kind: Secret` objects from YAML files (their `data`, base64-decoded).
pub fn read_secrets(files: &[PathBuf]) -> Secrets {
    let mut out = Secrets::new();
    for f in files {
        let v: Value = serde_saphyr::from_slice(&std::fs::read(f).unwrap()).unwrap();
        if v["kind"] != "Secret" {
            continue;
        }
        let name = v["metadata"]["name"].as_str().unwrap().to_string();
        let data = v["data"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, b)| {
                        let bytes = base64::engine::general_purpose::STANDARD
                            .decode(b.as_str().unwrap())
                            .expect("Secret data is base64");
                        (k.clone(), bytes)
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.insert(name, data);
    }
    out
}

/// What kubelet does on one node, through CRI.
pub struct Kubelet<'n> {
    pub node: &'n Node,
    pub cri: Cri,
}

impl<'n> Kubelet<'n> {
    pub fn new(node: &'n Node) -> Kubelet<'n> {
        Kubelet {
            node,
            cri: node.cri(),
        }
    }

    /// Creates the pod: volumes (hostPath checks, Secret volumes), the sandbox, and
    /// every container (pulled per `imagePullPolicy`, created, started).
    #[track_caller]
    pub fn run_pod(&mut self, plan: &PodPlan, secrets: &Secrets) -> Pod {
        assert!(
            plan.host_network,
            "the pod template has no hostNetwork: kubelet would need a CNI plugin for it, and the node has none \
             (a trust installer must run before the node's CNI: see issue 11)"
        );
        let uid = pod_uid();
        let name = format!("{}-{}", plan.daemonset, &uid[..5]);
        let pod_dir = format!("/var/lib/kubelet/pods/{uid}");
        let log_dir = format!("/var/log/pods/{}_{name}_{uid}", plan.namespace);
        self.node
            .sh_ok(&format!("mkdir -p '{pod_dir}/volumes' '{log_dir}'"));
        // Volumes: the node path each one mounts.
        let mut volume_paths = BTreeMap::new();
        for (vname, vol) in &plan.volumes {
            match vol {
                Volume::HostPath(h) => {
                    self.check_host_path(&h.path, &h.kind);
                    volume_paths.insert(vname.clone(), h.path.clone());
                }
                Volume::Secret(s) => {
                    let data = secrets.get(&s.secret).unwrap_or_else(|| {
                        panic!(
                            "the pod mounts Secret {} and the rendered output has none (has {:?})",
                            s.secret,
                            secrets.keys().collect::<Vec<_>>()
                        )
                    });
                    let inside = format!("{pod_dir}/volumes/kubernetes.io~secret/{vname}");
                    SecretVolume::new(&self.node.path(&inside)).write_with_mode(data, s.mode);
                    volume_paths.insert(vname.clone(), inside);
                }
            }
        }
        let ns_mode = |host: bool| {
            let mode = if host {
                cri::NamespaceMode::Node
            } else {
                cri::NamespaceMode::Pod
            };
            mode as i32
        };
        let namespaces = cri::NamespaceOption {
            network: ns_mode(plan.host_network),
            pid: ns_mode(plan.host_pid),
            ipc: ns_mode(plan.host_ipc),
            ..Default::default()
        };
        let mut labels = std::collections::HashMap::new();
        labels.insert("io.kubernetes.pod.name".to_string(), name.clone());
        labels.insert(
            "io.kubernetes.pod.namespace".to_string(),
            plan.namespace.clone(),
        );
        labels.insert("io.kubernetes.pod.uid".to_string(), uid.clone());
        let cgroup_parent = match plan.qos {
            "guaranteed" => format!("/kubepods/pod{uid}"),
            q => format!("/kubepods/{q}/pod{uid}"),
        };
        let sandbox_config = cri::PodSandboxConfig {
            metadata: Some(cri::PodSandboxMetadata {
                name: name.clone(),
                uid: uid.clone(),
                namespace: plan.namespace.clone(),
                attempt: 0,
            }),
            // kubelet names the host only for pods with their own network (and UTS)
            // namespace; runc refuses a hostname without a private UTS namespace.
            hostname: if plan.host_network {
                String::new()
            } else {
                name.clone()
            },
            log_directory: log_dir.clone(),
            labels: labels.clone(),
            annotations: plan.annotations.clone().into_iter().collect(),
            linux: Some(cri::LinuxPodSandboxConfig {
                cgroup_parent: cgroup_parent.clone(),
                security_context: Some(cri::LinuxSandboxSecurityContext {
                    namespace_options: Some(namespaces.clone()),
                    seccomp: plan.sandbox_seccomp.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let sandbox_id = self
            .cri
            .run_pod_sandbox(sandbox_config.clone())
            .unwrap_or_else(|e| {
                panic!(
                    "RunPodSandbox {name}: {e}\ncontainerd's journal:\n{}",
                    self.node.journal("containerd")
                )
            });
        let mut pod = Pod {
            plan: plan.clone(),
            name,
            uid,
            sandbox_id,
            sandbox_config,
            containers: BTreeMap::new(),
            container_configs: BTreeMap::new(),
        };
        for c in &plan.containers {
            self.ensure_image(c);
            let mut config = c.config.clone();
            for (vol, path, ro, propagation) in &c.mounts {
                let host_path = volume_paths
                    .get(vol)
                    .unwrap_or_else(|| panic!("container {} mounts unknown volume {vol}", c.name));
                let ro = *ro || matches!(plan.volumes[vol], Volume::Secret(_));
                config.mounts.push(cri::Mount {
                    container_path: path.clone(),
                    host_path: host_path.clone(),
                    readonly: ro,
                    propagation: *propagation,
                    ..Default::default()
                });
            }
            // kubelet's /dev/termination-log: a file of the pod's on the node.
            let term = format!("{pod_dir}/containers/{}/termination-log", c.name);
            self.node
                .sh_ok(&format!("mkdir -p \"$(dirname '{term}')\" && : > '{term}'"));
            config.mounts.push(cri::Mount {
                container_path: "/dev/termination-log".into(),
                host_path: term,
                ..Default::default()
            });
            let linux = config.linux.as_mut().unwrap();
            linux.resources.as_mut().unwrap().oom_score_adj = plan.oom_score_adj;
            linux.security_context.as_mut().unwrap().namespace_options = Some(namespaces.clone());
            let mut clabels = labels.clone();
            clabels.insert("io.kubernetes.container.name".into(), c.name.clone());
            config.labels = clabels;
            pod.container_configs.insert(c.name.clone(), config);
            self.start_container(&mut pod, &c.name, 0);
        }
        pod
    }

    fn ensure_image(&mut self, c: &ContainerPlan) {
        let present = self.cri.has_image(&c.image).unwrap_or(false);
        if c.pull_policy == "Never" {
            assert!(
                present,
                "image {} is not on the node (imagePullPolicy Never)",
                c.image
            );
        } else if !present || c.pull_policy == "Always" {
            self.cri
                .pull(&c.image)
                .unwrap_or_else(|e| panic!("kubelet pulls {} ({}): {e}", c.image, c.pull_policy));
        }
    }

    /// kubelet's hostPath type check (`pkg/volume/hostpath`), in the node.
    #[track_caller]
    fn check_host_path(&self, path: &str, kind: &str) {
        let test = match kind {
            "" => return,
            "DirectoryOrCreate" => {
                self.node
                    .sh_ok(&format!("[ -d '{path}' ] || mkdir -p -m 0755 '{path}'"));
                return;
            }
            "FileOrCreate" => {
                self.node.sh_ok(&format!("[ -f '{path}' ] || {{ mkdir -p \"$(dirname '{path}')\" && : > '{path}' && chmod 0644 '{path}'; }}"));
                return;
            }
            "Directory" => "-d",
            "File" => "-f",
            "Socket" => "-S",
            "CharDevice" => "-c",
            "BlockDevice" => "-b",
            other => panic!("hostPath type {other:?}"),
        };
        let o = self.node.sh(&format!("[ {test} '{path}' ]"));
        assert!(
            o.status.success(),
            "hostPath type check failed: {path} is not a {kind} on the node (kubelet would not start the pod)"
        );
    }

    /// Creates and starts container `name` of `pod` (attempt `attempt`).
    #[track_caller]
    pub fn start_container(&mut self, pod: &mut Pod, name: &str, attempt: u32) {
        let mut config = pod.container_configs[name].clone();
        config.metadata.as_mut().unwrap().attempt = attempt;
        config.log_path = format!("{name}/{attempt}.log");
        let id = self
            .cri
            .create_container(&pod.sandbox_id, config, pod.sandbox_config.clone())
            .unwrap_or_else(|e| {
                panic!(
                    "CreateContainer {name}: {e}\ncontainerd's journal:\n{}",
                    self.node.journal("containerd")
                )
            });
        let started = Instant::now();
        self.cri.start_container(&id).unwrap_or_else(|e| {
            panic!(
                "StartContainer {name}: {e}\ncontainerd's journal:\n{}",
                self.node.journal("containerd")
            )
        });
        pod.containers
            .insert(name.to_string(), (id, attempt, started));
    }

    /// Kills container `name` at once (SIGKILL) and starts it again, as kubelet does
    /// after a crash (`restartPolicy: Always`).
    pub fn kill_and_restart(&mut self, pod: &mut Pod, name: &str) {
        let (id, attempt, _) = pod.containers[name].clone();
        self.cri.stop_container(&id, 0).expect("StopContainer");
        self.cri.remove_container(&id).expect("RemoveContainer");
        self.start_container(pod, name, attempt + 1);
    }

    /// The container's state, exit code and pid.
    pub fn state(&mut self, pod: &Pod, name: &str) -> (cri::ContainerState, i32, Option<u32>) {
        let (id, ..) = &pod.containers[name];
        let (s, pid) = self.cri.container_status(id).expect("ContainerStatus");
        (
            cri::ContainerState::try_from(s.state).unwrap_or(cri::ContainerState::ContainerUnknown),
            s.exit_code,
            pid,
        )
    }

    /// Waits until container `name` has exited; its final status.
    #[track_caller]
    pub fn wait_exited(&mut self, pod: &Pod, name: &str, within: Duration) -> cri::ContainerStatus {
        let (id, ..) = pod.containers[name].clone();
        let deadline = Instant::now() + within;
        loop {
            let (s, _) = self.cri.container_status(&id).expect("ContainerStatus");
            if s.state == cri::ContainerState::ContainerExited as i32 {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "container {name} of {} still runs after {within:?}; log:\n{}",
                pod.name,
                pod.log(self.node, name)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Deletes the pod as kubelet does: each container stopped within the grace period,
    /// then the sandbox stopped and removed.
    pub fn delete_pod(&mut self, pod: Pod) {
        for (id, ..) in pod.containers.values() {
            let _ = self.cri.stop_container(id, pod.plan.grace_seconds);
        }
        self.cri
            .remove_pod(&pod.sandbox_id)
            .unwrap_or_else(|e| panic!("remove pod {}: {e}", pod.name));
        let _ = self
            .node
            .sh(&format!("rm -rf '/var/lib/kubelet/pods/{}'", pod.uid));
    }

    /// Removes every pod of the node (between scenarios).
    pub fn delete_all_pods(&mut self) {
        for id in self.cri.pod_ids().unwrap_or_default() {
            let _ = self.cri.remove_pod(&id);
        }
        let _ = self.node.sh("rm -rf /var/lib/kubelet/pods /var/log/pods");
    }
}

impl Pod {
    /// The container's log so far (CRI log format: time, stream, tag, line).
    pub fn log(&self, node: &Node, name: &str) -> String {
        let (_, attempt, _) = &self.containers[name];
        let dir = self.sandbox_config.log_directory.clone();
        (0..=*attempt)
            .map(|a| {
                std::fs::read_to_string(node.path(&format!("{dir}/{name}/{a}.log")))
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join("")
    }

    /// The pod's memory cgroup folder in the node (cgroup v1, cgroupfs driver).
    pub fn memory_cgroup(&self) -> String {
        self.sandbox_config
            .linux
            .as_ref()
            .map(|l| format!("/sys/fs/cgroup/memory{}", l.cgroup_parent))
            .unwrap()
    }

    /// When container `name` was started.
    pub fn started(&self, name: &str) -> Instant {
        self.containers[name].2
    }
}

/// Polls `probe` until it answers 200 (every `poll`, not the probe's period: the tests
/// measure when readiness is reached); the body of the last answer when it never does.
pub fn wait_ready(probe: &Probe, within: Duration) -> Result<Instant, String> {
    let deadline = Instant::now() + within;
    let mut last = String::from("no answer");
    loop {
        match probe.get() {
            Some((200, _)) => return Ok(Instant::now()),
            Some((code, body)) => last = format!("{code}: {}", body.trim()),
            None => {}
        }
        if Instant::now() > deadline {
            return Err(last);
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// The rendered output folder of `catrust build`: its DaemonSets and Secrets.
pub fn rendered(dir: &Path) -> (Vec<Value>, Secrets) {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("agent"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    let daemonsets = files
        .iter()
        .filter(|f| {
            f.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("daemonset")
        })
        .map(|f| serde_saphyr::from_slice::<Value>(&std::fs::read(f).unwrap()).unwrap())
        .collect();
    (daemonsets, read_secrets(&files))
}
