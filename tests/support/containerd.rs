//! Real containerd and a real registry for the end-to-end suite
//! (`tests/containerd_e2e.rs`): Debian's `docker-registry` with TLS on 127.0.0.1, a
//! tiny OCI image built with `umoci` and pushed with `skopeo`, containerd 1.6 with its
//! CRI plugin as a supervised child process, and CRI `PullImage` over its socket.
//!
//! Every child runs in its own process group and is stopped (SIGTERM, then SIGKILL)
//! when its guard is dropped, pass or fail.

use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::pki::Issued;
use crate::{isolate_tls_env, require_tool, run, wait_until};

/// A child process in its own process group; the whole group is stopped on drop.
pub struct Group {
    child: Child,
}

impl Group {
    /// Spawns `cmd` as the leader of a new process group.
    pub fn spawn(cmd: &mut Command) -> Group {
        let child = cmd
            .process_group(0)
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        Group { child }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the leader has exited.
    pub fn exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGTERM to the group, up to 5 s for the leader to exit, then SIGKILL.
    pub fn stop(&mut self) {
        if self.exited() {
            signal_group(self.child.id(), "KILL");
            return;
        }
        signal_group(self.child.id(), "TERM");
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                signal_group(self.child.id(), "KILL");
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        signal_group(self.child.id(), "KILL");
        let _ = self.child.wait();
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `kill -SIG -- -PGID` (the group of a leader spawned with `process_group(0)`).
fn signal_group(pgid: u32, sig: &str) {
    let _ = Command::new("sh")
        .args(["-c", "kill -s \"$1\" -- \"-$2\" 2>/dev/null", "sh", sig])
        .arg(pgid.to_string())
        .status();
}

/// Debian's `docker-registry` serving TLS on `127.0.0.1:<port>`, storage in a folder
/// that survives restarts (a certificate swap is a restart, as for an operator).
pub struct Registry {
    pub port: u16,
    dir: PathBuf,
    proc: Option<Group>,
}

impl Registry {
    pub fn start(dir: &Path, leaf: &Issued) -> Registry {
        require_tool("/usr/bin/docker-registry", "docker-registry");
        let mut r = Registry {
            port: crate::agent::free_port(),
            dir: dir.to_path_buf(),
            proc: None,
        };
        std::fs::create_dir_all(dir.join("storage")).unwrap();
        r.serve(leaf);
        r
    }

    /// `127.0.0.1:<port>`: the registry host as image references and certs.d name it.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn serve(&mut self, leaf: &Issued) {
        let config = self.dir.join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{}\n  secret: catrust-e2e\n  tls:\n    certificate: {}\n    key: {}\n",
                self.dir.join("storage").display(),
                self.port,
                leaf.cert.display(),
                leaf.key.display()
            ),
        )
        .unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("registry.log"))
            .unwrap();
        let mut cmd = Command::new("/usr/bin/docker-registry");
        cmd.arg("serve")
            .arg(&config)
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        self.proc = Some(Group::spawn(&mut cmd));
        let port = self.port;
        let proc = self.proc.as_mut().unwrap();
        wait_until("docker-registry listens", Duration::from_secs(10), || {
            assert!(!proc.exited(), "docker-registry exited; see its log");
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
    }

    /// Restarts the registry on the same port with another server certificate.
    pub fn swap_certificate(&mut self, leaf: &Issued) {
        if let Some(mut p) = self.proc.take() {
            p.stop();
        }
        self.serve(leaf);
    }
}

/// Builds a one-layer OCI image with `umoci` (no download) and pushes it to
/// `<registry>/<repo>:<tag>` with `skopeo`, trusting `ca` for the push only.
pub fn push_tiny_image(work: &Path, registry: &Registry, reference: &str, ca: &Issued) {
    let umoci = require_tool("umoci", "umoci");
    let skopeo = require_tool("skopeo", "skopeo");
    let layout = work.join("oci-layout");
    let _ = std::fs::remove_dir_all(&layout);
    let file = work.join("hello.txt");
    std::fs::write(&file, "hello from catrust's end-to-end test\n").unwrap();
    let layout_s = layout.display().to_string();
    for args in [
        vec!["init", "--layout", &layout_s],
        vec!["new", "--image", &format!("{layout_s}:1")],
        vec![
            "insert",
            "--rootless",
            "--image",
            &format!("{layout_s}:1"),
            file.to_str().unwrap(),
            "/hello.txt",
        ],
    ] {
        let out = run(Command::new(&umoci).args(&args));
        assert!(
            out.status.success(),
            "umoci {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // skopeo reads <dir>/*.crt as the CAs of the destination.
    let certs = work.join("push-certs");
    std::fs::create_dir_all(&certs).unwrap();
    std::fs::copy(&ca.cert, certs.join("ca.crt")).unwrap();
    let mut cmd = Command::new(skopeo);
    isolate_tls_env(&mut cmd)
        .args(["--insecure-policy", "copy", "--quiet", "--dest-cert-dir"])
        .arg(&certs)
        .arg(format!("oci:{layout_s}:1"))
        .arg(format!("docker://{}/{reference}", registry.host()));
    let out = run(&mut cmd);
    assert!(
        out.status.success(),
        "skopeo copy: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub use crate::cri::PullResult;

/// What containerd says when no trusted CA signed the registry's certificate.
pub const UNKNOWN_AUTHORITY: &str = "x509: certificate signed by unknown authority";

/// The end of a long gRPC message, where the cause is.
pub fn tail(s: &str) -> &str {
    let i = s.rfind(": x509").map(|i| i + 2).unwrap_or(0);
    &s[i..]
}

/// The node's own `hosts.toml` for a test registry. containerd 1.6.20 rejects a file
/// with `server` alone ("failed to decode hosts.toml: invalid `host` tree") and then
/// falls back to plain HTTP for 127.0.0.1, so the file also has the host table.
pub fn node_hosts_toml(host: &str) -> String {
    format!(
        "server = \"https://{host}\"\n\n[host.\"https://{host}\"]\n  capabilities = [\"pull\", \"resolve\"]\n"
    )
}

/// One authority line of a test trust.yaml.
pub struct Auth<'a> {
    pub name: &'a str,
    pub file: &'a str,
    pub registries: &'a [&'a str],
    pub replaces: Option<&'a str>,
}

/// A trust.yaml named `corp` with `minOverlap: 72h` and the agent target's `agent`
/// settings (key, value), in order.
pub fn test_trust_yaml(
    auths: &[Auth],
    distrust: &[(String, &str)],
    agent: &[(&str, &str)],
) -> String {
    let mut y = String::from(
        "apiVersion: catrust.dev/v1alpha1\nkind: TrustConfig\nmetadata:\n  name: corp\nspec:\n  authorities:\n",
    );
    for a in auths {
        y += &format!("    - name: {}\n      file: {}\n", a.name, a.file);
        if !a.registries.is_empty() {
            y += &format!("      registries: [\"{}\"]\n", a.registries.join("\", \""));
        }
        if let Some(r) = a.replaces {
            y += &format!("      replaces: {r}\n");
        }
    }
    if !distrust.is_empty() {
        y += "  distrust:\n";
        for (sha, reason) in distrust {
            y += &format!("    - sha256: \"{sha}\"\n      reason: {reason}\n");
        }
    }
    y += "  rotation:\n    minOverlap: 72h\n  targets:\n    agent:\n";
    for (k, v) in agent {
        y += &format!("      {k}: {v}\n");
    }
    y
}

/// containerd 1.6 with its CRI plugin, supervised by the test as systemd would:
/// `restart_command()` is the command the agent gets as `--containerd-restart-command`;
/// it asks the supervisor thread to restart containerd and waits until the new process
/// serves its socket (like `systemctl restart` on a `Type=notify` unit).
pub struct Containerd {
    pub dir: PathBuf,
    pub sock: PathBuf,
    proc: Arc<Mutex<Option<Group>>>,
    restarts: Arc<Mutex<u32>>,
    stop: Arc<AtomicBool>,
    supervisor: Option<JoinHandle<()>>,
}

struct Launch {
    dir: PathBuf,
    sock: PathBuf,
    cert_file: PathBuf,
}

impl Launch {
    /// `SSL_CERT_FILE` is the host root's generated bundle and `SSL_CERT_DIR` an empty
    /// folder: with `SSL_CERT_DIR` merely unset, Go would still read the machine's
    /// `/etc/ssl/certs`, and the machine's trust would leak in.
    fn spawn(&self) -> Group {
        let containerd = require_tool("containerd", "containerd");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("containerd.log"))
            .unwrap();
        let mut cmd = Command::new(containerd);
        isolate_tls_env(&mut cmd)
            .arg("--config")
            .arg(self.dir.join("config.toml"))
            .env("SSL_CERT_FILE", &self.cert_file)
            .env("SSL_CERT_DIR", self.dir.join("no-cert-dir"))
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        let mut g = Group::spawn(&mut cmd);
        let sock = self.sock.clone();
        wait_until(
            "containerd serves its socket",
            Duration::from_secs(15),
            || {
                assert!(!g.exited(), "containerd exited; see its log");
                std::os::unix::net::UnixStream::connect(&sock).is_ok()
            },
        );
        g
    }
}

impl Containerd {
    /// Starts containerd with root, state, sockets and `config_path` (= the host root's
    /// `etc/containerd/certs.d`) under `dir` / `host_root`; the native snapshotter; CNI
    /// pointed at an empty folder (pulls need no network plugin).
    pub fn start(dir: &Path, host_root: &Path) -> Containerd {
        let d = dir.to_path_buf();
        for sub in ["cni", "no-cert-dir", "opt"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        std::fs::create_dir_all(host_root.join("etc/containerd/certs.d")).unwrap();
        let sock = d.join("containerd.sock");
        let p = |s: &str| d.join(s).display().to_string();
        std::fs::write(
            d.join("config.toml"),
            format!(
                r#"version = 2
root = "{root}"
state = "{state}"
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.overlayfs",
]
[grpc]
  address = "{sock}"
[ttrpc]
  address = "{sock}.ttrpc"
[debug]
  address = ""
  level = "debug"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "{opt}"
[plugins."io.containerd.grpc.v1.cri"]
  disable_tcp_service = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "native"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{cni}"
    conf_dir = "{cni}"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "{certs_d}"
"#,
                root = p("root"),
                state = p("state"),
                sock = sock.display(),
                opt = p("opt"),
                cni = p("cni"),
                certs_d = host_root.join("etc/containerd/certs.d").display(),
            ),
        )
        .unwrap();
        let launch = Launch {
            dir: d.clone(),
            sock: sock.clone(),
            cert_file: host_root.join("etc/ssl/certs/ca-certificates.crt"),
        };
        let proc = Arc::new(Mutex::new(Some(launch.spawn())));
        let restarts = Arc::new(Mutex::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        std::fs::write(
            d.join("restart-containerd.sh"),
            format!(
                r#"#!/bin/sh
# `systemctl restart containerd` for the test's supervised containerd: ask the
# supervisor and wait until the new process serves its socket.
d='{}'
if [ -e "$d/restart-refused" ]; then
  echo "Job for containerd.service failed (refused by the test)" >&2
  exit 1
fi
rm -f "$d/restart-done"
: > "$d/restart-request"
n=0
while [ ! -e "$d/restart-done" ]; do
  n=$((n + 1))
  if [ "$n" -gt 600 ]; then echo "containerd did not come back" >&2; exit 1; fi
  sleep 0.05
done
echo "containerd restarted: pid $(cat "$d/restart-done")"
"#,
                d.display()
            ),
        )
        .unwrap();
        let supervisor = {
            let (proc, restarts, stop) = (proc.clone(), restarts.clone(), stop.clone());
            std::thread::spawn(move || {
                let request = launch.dir.join("restart-request");
                while !stop.load(Ordering::SeqCst) {
                    if request.exists() {
                        let _ = std::fs::remove_file(&request);
                        let mut guard = proc.lock().unwrap();
                        if let Some(mut old) = guard.take() {
                            old.stop();
                        }
                        let new = launch.spawn();
                        let pid = new.pid();
                        *guard = Some(new);
                        *restarts.lock().unwrap() += 1;
                        let tmp = launch.dir.join("restart-done.tmp");
                        std::fs::write(&tmp, pid.to_string()).unwrap();
                        std::fs::rename(&tmp, launch.dir.join("restart-done")).unwrap();
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        };
        Containerd {
            dir: d,
            sock,
            proc,
            restarts,
            stop,
            supervisor: Some(supervisor),
        }
    }

    /// The command the agent runs (with `sh -c`) instead of `systemctl restart containerd`.
    pub fn restart_command(&self) -> String {
        format!("sh {}", self.dir.join("restart-containerd.sh").display())
    }

    /// Makes the restart command fail (as `systemctl restart` does when the unit
    /// cannot restart), or succeed again.
    pub fn refuse_restarts(&self, refuse: bool) {
        let f = self.dir.join("restart-refused");
        if refuse {
            std::fs::write(f, "").unwrap();
        } else {
            let _ = std::fs::remove_file(f);
        }
    }

    pub fn pid(&self) -> u32 {
        self.proc
            .lock()
            .unwrap()
            .as_ref()
            .expect("containerd runs")
            .pid()
    }

    /// How many times the supervisor restarted containerd.
    pub fn restarts(&self) -> u32 {
        *self.restarts.lock().unwrap()
    }

    /// containerd's log so far (for failure messages).
    pub fn log(&self) -> String {
        let files: Vec<String> = std::fs::read_dir(&self.dir)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        format!(
            "{} ({files:?}):\n{}",
            self.dir.display(),
            std::fs::read_to_string(self.dir.join("containerd.log"))
                .unwrap_or_else(|e| e.to_string())
        )
    }

    /// CRI `runtime.v1.ImageService/PullImage`, as kubelet calls it, then (on success)
    /// `RemoveImage`, so the next pull fetches again.
    pub fn pull(&self, image: &str) -> PullResult {
        cri_pull(&self.sock, image).map_err(|e| {
            if !e.starts_with("Unimplemented") {
                return e;
            }
            // The CRI plugin did not load: say why (its CNI config watcher needs an
            // inotify instance, and fs.inotify.max_user_instances is shared by every
            // process of the user).
            let why: Vec<String> = self
                .log()
                .lines()
                .filter(|l| {
                    l.contains("failed to load plugin") || l.contains("skip loading plugin")
                })
                .map(str::to_string)
                .collect();
            format!("{e}\nthe CRI plugin did not load:\n{}", why.join("\n"))
        })
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.supervisor.take() {
            let _ = t.join();
        }
        if let Ok(mut guard) = self.proc.lock() {
            if let Some(mut g) = guard.take() {
                g.stop();
            }
        }
    }
}

/// PullImage over the unix socket with the `k8s-cri` client (tonic), then RemoveImage.
pub fn cri_pull(sock: &Path, image: &str) -> PullResult {
    crate::cri::Cri::connect(sock)?.pull(image)
}
