//! A simulated fleet: N real `catrust-agent run` processes, each with its own
//! throwaway Debian host root (no Mozilla set: a refresh takes ~0.1 s), rolled from
//! bundle A to bundle B the way a DaemonSet `RollingUpdate` does it: at most
//! `maxUnavailable` pods are replaced at a time; each new pod gets a fresh Secret
//! volume written by the kubelet atomic writer and `--expected-sha256` of its bundle
//! (the pod annotation through the downward API), and the next wave starts only when
//! every pod of this wave answers 200 on its own `/readyz`.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

use catrust_bundle::ContainerdPolicy;

use crate::agent::{bundle, host_flags, Ca, RunningAgent};
use crate::host::TestHost;
use crate::kubelet::SecretVolume;
use crate::node::check_debian_node;
use crate::pki::make_ca;

/// One node: the pod on it, its root and the pod's generation (fields drop in this
/// order: the pod is killed before its root is removed).
struct FleetNode {
    pod: Option<RunningAgent>,
    host: TestHost,
    generation: u32,
}

/// What a fleet run measured.
#[derive(Debug)]
pub struct FleetReport {
    pub nodes: usize,
    pub max_unavailable: usize,
    pub waves: usize,
    /// Start of the first pods → every node ready on A.
    pub initial: Duration,
    /// First pod of the rollout replaced → every node ready on B.
    pub rollout: Duration,
    pub wave_times: Vec<Duration>,
    /// VmRSS of every idle agent (KiB).
    pub idle_rss_kib: Vec<u64>,
    /// CPU ticks every agent used over the idle window.
    pub idle_cpu_ms: Vec<u64>,
    pub idle_window: Duration,
    /// VmHWM (peak RSS) of each new pod at ready (KiB): start and one full apply.
    pub apply_peak_rss_kib: Vec<u64>,
    /// CPU of each new pod from start to ready: its own, and its waited-for children
    /// (the refresh).
    pub apply_cpu_ms: Vec<u64>,
    pub apply_children_cpu_ms: Vec<u64>,
    /// Agents (after the rollout) holding no inotify instance: with more agents than
    /// `fs.inotify.max_user_instances` on one machine, the rest poll `..data`.
    pub without_inotify: usize,
    /// Applies that failed (and were retried) over the whole run, and the first reason.
    pub failed_applies: usize,
    pub first_failure: Option<String>,
    /// Nodes not ready in time or not holding exactly B's anchors.
    pub failed: Vec<String>,
}

/// Does `pid` hold an inotify instance?
fn has_inotify(pid: u32) -> bool {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| {
            std::fs::read_link(e.path()).is_ok_and(|t| t.to_string_lossy().contains("inotify"))
        })
}

fn clk_tck() -> u64 {
    let out = Command::new("getconf").arg("CLK_TCK").output();
    out.ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100)
}

/// (utime + stime, cutime + cstime) of `pid` in ms.
fn cpu_ms(pid: u32, tck: u64) -> (u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // rest starts at field 3 (state): utime is field 14, so index 11.
    let get = |i: usize| f.get(i).copied().unwrap_or(0);
    (
        (get(11) + get(12)) * 1000 / tck,
        (get(13) + get(14)) * 1000 / tck,
    )
}

/// A `/proc/PID/status` field in KiB.
pub fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix(field).map(|v| {
                v.trim_start_matches(':')
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse()
                    .unwrap_or(0)
            })
        })
        .unwrap_or(0)
}

fn ready(pod: &RunningAgent) -> bool {
    matches!(pod.get("/readyz"), Some((200, body)) if !body.contains("no apply yet"))
}

/// Starts a pod on `node` with `files` as its Secret volume; returns at once (the
/// agent serves /healthz before its first apply).
fn start_pod(
    node: &mut FleetNode,
    files: &std::collections::BTreeMap<String, Vec<u8>>,
    hash: &str,
) {
    node.generation += 1;
    let vol = SecretVolume::new(
        &node
            .host
            .root()
            .join(format!("pods/{}/bundle", node.generation)),
    );
    vol.write(files);
    let flags = host_flags(node.host.root(), &vol.dir);
    let log = node.host.root().join("agent.log");
    node.pod = Some(RunningAgent::start_logging(
        &flags,
        &["--expected-sha256", hash, "--resync", "1h"],
        Some(&log),
    ));
}

/// Waits until every pod of `idx` is ready, or `within`; returns the ones that are not.
fn wait_ready(nodes: &[FleetNode], idx: &[usize], within: Duration) -> Vec<usize> {
    let deadline = Instant::now() + within;
    let mut pending: Vec<usize> = idx.to_vec();
    while !pending.is_empty() && Instant::now() < deadline {
        pending.retain(|&i| !nodes[i].pod.as_ref().is_some_and(ready));
        if !pending.is_empty() {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    pending
}

fn sigterm(pod: &RunningAgent) {
    let _ = Command::new("kill")
        .args(["-TERM", &pod.pid().to_string()])
        .status();
}

/// Runs the fleet: N nodes on A, then the rollout to B in waves of `max_unavailable`.
/// Every agent is stopped when this returns or panics (pods are killed on drop).
pub fn run_fleet(n: usize, max_unavailable: usize) -> FleetReport {
    let tck = clk_tck();
    let pki = tempfile::tempdir().unwrap();
    let (ca_a, ca_b) = (
        make_ca(pki.path(), "corp-a", 30),
        make_ca(pki.path(), "corp-b", 30),
    );
    let (a, ha) = bundle(
        &[Ca {
            name: "corp-a",
            cert: &ca_a,
            registries: &[],
        }],
        &[],
        ContainerdPolicy::Restart,
    );
    let (b, hb) = bundle(
        &[Ca {
            name: "corp-b",
            cert: &ca_b,
            registries: &["registry.corp:5000"],
        }],
        &[],
        ContainerdPolicy::Restart,
    );
    let mut nodes: Vec<FleetNode> = (0..n)
        .map(|_| FleetNode {
            host: TestHost::debian(),
            pod: None,
            generation: 0,
        })
        .collect();
    let all: Vec<usize> = (0..n).collect();
    let mut failed = Vec::new();

    // Day 0: every node gets a pod on A (as a new DaemonSet: all at once).
    let t0 = Instant::now();
    for node in nodes.iter_mut() {
        start_pod(node, &a, &ha);
    }
    let late = wait_ready(&nodes, &all, Duration::from_secs(60 + n as u64));
    assert!(late.is_empty(), "nodes {late:?} never became ready on A");
    let initial = t0.elapsed();
    for (i, node) in nodes.iter().enumerate() {
        if let Err(e) = check_debian_node(&node.host, &a, &BTreeSet::new()) {
            panic!("node {i} on A: {e}");
        }
    }

    // Idle: every agent is blocked in inotify/accept; sample RSS and CPU over a window.
    std::thread::sleep(Duration::from_millis(500));
    let idle_window = Duration::from_secs(3);
    let pids: Vec<u32> = nodes
        .iter()
        .map(|n| n.pod.as_ref().unwrap().pid())
        .collect();
    let cpu0: Vec<u64> = pids.iter().map(|&p| cpu_ms(p, tck).0).collect();
    std::thread::sleep(idle_window);
    let idle_cpu_ms: Vec<u64> = pids
        .iter()
        .zip(&cpu0)
        .map(|(&p, c0)| cpu_ms(p, tck).0.saturating_sub(*c0))
        .collect();
    let idle_rss_kib: Vec<u64> = pids.iter().map(|&p| status_kib(p, "VmRSS")).collect();

    // The rollout: replace at most `max_unavailable` pods at a time.
    let mut wave_times = Vec::new();
    let mut apply_peak_rss_kib = Vec::new();
    let mut apply_cpu_ms = Vec::new();
    let mut apply_children_cpu_ms = Vec::new();
    let t1 = Instant::now();
    for wave in all.chunks(max_unavailable.max(1)) {
        let tw = Instant::now();
        for &i in wave {
            if let Some(old) = nodes[i].pod.take() {
                sigterm(&old);
                drop(old);
            }
            start_pod(&mut nodes[i], &b, &hb);
        }
        let late = wait_ready(&nodes, wave, Duration::from_secs(60));
        for &i in wave {
            let pid = nodes[i].pod.as_ref().unwrap().pid();
            apply_peak_rss_kib.push(status_kib(pid, "VmHWM"));
            let (own, children) = cpu_ms(pid, tck);
            apply_cpu_ms.push(own);
            apply_children_cpu_ms.push(children);
        }
        for i in late {
            failed.push(format!("node {i}: not ready on B within 60 s"));
        }
        wave_times.push(tw.elapsed());
    }
    let rollout = t1.elapsed();

    for (i, node) in nodes.iter().enumerate() {
        if let Err(e) = check_debian_node(&node.host, &b, &BTreeSet::new()) {
            failed.push(format!("node {i}: {e}"));
        }
    }
    let mut failed_applies = 0;
    let mut first_failure = None;
    for node in &nodes {
        let log = std::fs::read_to_string(node.host.root().join("agent.log")).unwrap_or_default();
        for line in log.lines().filter(|l| l.contains("not ready")) {
            failed_applies += 1;
            first_failure.get_or_insert_with(|| line.to_owned());
        }
    }
    let without_inotify = nodes
        .iter()
        .filter(|n| !n.pod.as_ref().is_some_and(|p| has_inotify(p.pid())))
        .count();
    FleetReport {
        nodes: n,
        max_unavailable,
        waves: wave_times.len(),
        initial,
        rollout,
        wave_times,
        idle_rss_kib,
        idle_cpu_ms,
        idle_window,
        apply_peak_rss_kib,
        apply_cpu_ms,
        apply_children_cpu_ms,
        without_inotify,
        failed_applies,
        first_failure,
        failed,
    }
}

fn stats(v: &[u64]) -> (u64, u64, u64) {
    let mut s = v.to_vec();
    s.sort_unstable();
    if s.is_empty() {
        return (0, 0, 0);
    }
    (s[0], s[s.len() / 2], s[s.len() - 1])
}

impl FleetReport {
    /// The report as printed by the test and `bench/fleet.sh`.
    pub fn render(&self) -> String {
        let mib = |k: u64| k as f64 / 1024.0;
        let (rmin, rmed, rmax) = stats(&self.idle_rss_kib);
        let (_, cmed, cmax) = stats(&self.idle_cpu_ms);
        let (_, pmed, pmax) = stats(&self.apply_peak_rss_kib);
        let (_, amed, amax) = stats(&self.apply_cpu_ms);
        let (_, chmed, chmax) = stats(&self.apply_children_cpu_ms);
        let mut waves: Vec<Duration> = self.wave_times.clone();
        waves.sort();
        let wmed = waves.get(waves.len() / 2).copied().unwrap_or_default();
        let mut s = String::new();
        s += &format!(
            "fleet: {} agents, maxUnavailable {}, {} waves\n",
            self.nodes, self.max_unavailable, self.waves
        );
        s += &format!(
            "initial install (all pods at once): {:.2} s to every node ready\n",
            self.initial.as_secs_f64()
        );
        s += &format!(
            "rollout A -> B: {:.2} s to full convergence (wave median {:.2} s)\n",
            self.rollout.as_secs_f64(),
            wmed.as_secs_f64()
        );
        s += &format!(
            "idle ({} s window): RSS min/median/max {:.1}/{:.1}/{:.1} MiB, CPU median/max {}/{} ms\n",
            self.idle_window.as_secs(),
            mib(rmin),
            mib(rmed),
            mib(rmax),
            cmed,
            cmax
        );
        s += &format!(
            "applying (new pod, start -> ready): peak RSS median/max {:.1}/{:.1} MiB, agent CPU median/max {}/{} ms, refresh (children) CPU median/max {}/{} ms\n",
            mib(pmed),
            mib(pmax),
            amed,
            amax,
            chmed,
            chmax
        );
        s += &format!(
            "agents without an inotify instance (polling ..data): {}\n",
            self.without_inotify
        );
        s += &format!(
            "applies that failed and were retried: {}{}\n",
            self.failed_applies,
            self.first_failure
                .as_deref()
                .map(|f| format!(" (first: {f})"))
                .unwrap_or_default()
        );
        s += &format!("failed nodes: {}\n", self.failed.len());
        for f in &self.failed {
            s += &format!("  {f}\n");
        }
        s
    }
}
