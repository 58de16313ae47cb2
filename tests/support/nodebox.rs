//! A node in a box: a Debian bookworm root (debootstrap, cached between runs under
//! `/var/cache/catrust-node/<key>/root`, the key a hash of the package list) booted with
//! `systemd-nspawn`, systemd as PID 1, containerd and runc as the node's own units
//! (the recipe and its pitfalls: FACTS.md, "A real node on this machine").
//!
//! Every boot runs on an overlay over the pristine cached root, so a run never dirties
//! the cache. The boot is owned by a guardian shell (its own process group) that mounts
//! the overlay, starts nspawn, and, when its stdin closes — the test process dropped the
//! node, or exited in any way, panics and SIGKILL included — kills the node's PID 1
//! (the kernel then kills every process of the node, containers included), unmounts the
//! overlay and removes the boot folder. The guardian also holds
//! `/var/cache/catrust-node/node.lock` for the node's life: node suites of different
//! checkouts on one machine run one after the other (the agent's port is fixed by the
//! DaemonSet and the node shares this machine's network namespace).
//!
//! The node shares this machine's network namespace (no `--private-network`): a
//! registry on 127.0.0.1 here is 127.0.0.1 there, and so is a hostNetwork pod's port.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::{require_tool, run, wait_until};

/// The cache of node roots.
pub const CACHE: &str = "/var/cache/catrust-node";

/// What a node root holds (debootstrap `--include`, minbase variant, bookworm).
pub const NODE_PACKAGES: &[&str] = &[
    "systemd",
    "systemd-sysv",
    "dbus",
    "containerd",
    "runc",
    "ca-certificates",
    "util-linux",
    "iproute2",
    "procps",
];

/// The CRI sandbox image every pod of the node starts from (built locally: no image can
/// be pulled here), named in the node's containerd config as `sandbox_image`.
pub const PAUSE_IMAGE: &str = "catrust.test/pause:1";

/// The cache folder of a package list: `<CACHE>/bookworm-<hash of the list>`.
pub fn cache_dir(packages: &[&str]) -> PathBuf {
    let mut list: Vec<&str> = packages.to_vec();
    list.sort_unstable();
    let key = catrust_bundle::sha256_hex(
        format!(
            "debootstrap --variant=minbase bookworm\n{}\n",
            list.join(",")
        )
        .as_bytes(),
    );
    Path::new(CACHE).join(format!("bookworm-{}", &key[..16]))
}

/// The Debian mirror this machine's apt uses (debootstrap needs one).
fn debian_mirror() -> String {
    let sources = std::fs::read_to_string("/etc/apt/sources.list.d/debian.sources")
        .unwrap_or_default()
        + &std::fs::read_to_string("/etc/apt/sources.list").unwrap_or_default();
    sources
        .lines()
        .find_map(|l| {
            let l = l.trim();
            l.strip_prefix("URIs:")
                .map(|u| u.split_whitespace().next().unwrap_or("").to_string())
                .or_else(|| {
                    l.strip_prefix("deb ")
                        .and_then(|r| r.split_whitespace().find(|w| w.starts_with("http")))
                        .map(str::to_string)
                })
        })
        .filter(|u| u.starts_with("http"))
        .unwrap_or_else(|| "http://deb.debian.org/debian".into())
}

/// The pristine root for `packages`, made with debootstrap on first use (a few minutes,
/// about 400 MB) under a lock, and reused afterwards. Never written after it is made.
pub fn cached_root(packages: &[&str]) -> PathBuf {
    let dir = cache_dir(packages);
    let root = dir.join("root");
    if root.join("usr/bin/containerd").exists() {
        return root;
    }
    let debootstrap = require_tool("debootstrap", "debootstrap");
    std::fs::create_dir_all(&dir).unwrap();
    let lock = std::fs::File::create(dir.join(".lock")).unwrap();
    lock.lock().expect("lock the node root cache");
    if root.join("usr/bin/containerd").exists() {
        return root;
    }
    let partial = dir.join("root.partial");
    let _ = std::fs::remove_dir_all(&partial);
    let mirror = debian_mirror();
    eprintln!(
        "node_e2e: debootstrap bookworm from {mirror} into {} (once; a few minutes)",
        dir.display()
    );
    let o = run(Command::new(debootstrap)
        .args(["--variant=minbase", "--include"])
        .arg(packages.join(","))
        .arg("bookworm")
        .arg(&partial)
        .arg(&mirror));
    assert!(
        o.status.success(),
        "debootstrap failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    std::fs::write(dir.join("packages"), packages.join("\n") + "\n").unwrap();
    std::fs::rename(&partial, &root).unwrap();
    root
}

/// The guardian: `$1` pristine root, `$2` boot folder, `$3` lock file. Prints `mounted`,
/// waits for a line on stdin, boots, prints `nspawn <pid>`, then waits for EOF on stdin
/// and tears everything down.
const GUARDIAN: &str = r#"
set -u
lower=$1 boot=$2 lock=$3
exec 9>"$lock"
if ! flock -n 9; then
  echo "waiting for another node suite to finish (lock $lock)" >&2
  flock -w 900 9 || { echo "lock-timeout"; exit 1; }
fi
mkdir -p "$boot/upper" "$boot/work" "$boot/root"
mount -t overlay overlay -o "lowerdir=$lower,upperdir=$boot/upper,workdir=$boot/work" "$boot/root" || exit 1
echo mounted
read -r _ || { umount "$boot/root"; rm -rf "$boot"; exit 0; }
SYSTEMD_SECCOMP=0 systemd-nspawn -b -D "$boot/root" --register=no --keep-unit --console=pipe \
  --capability=all -M catrust-node </dev/null >"$boot/console.log" 2>&1 9>&- &
n=$!
echo "nspawn $n"
while read -r _; do :; done
for p in $(cat /proc/$n/task/$n/children 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
kill -KILL "$n" 2>/dev/null
wait "$n" 2>/dev/null
i=0
until umount "$boot/root" 2>/dev/null; do
  i=$((i + 1)); [ "$i" -gt 100 ] && { umount -l "$boot/root"; break; }
  sleep 0.05
done
rm -rf "$boot"
"#;

/// A booted node. Dropping it stops the node (see the module doc).
pub struct Node {
    guardian: Child,
    stdin: Option<ChildStdin>,
    /// PID (in this machine's namespace) of the node's systemd.
    pub pid: u32,
    boot: PathBuf,
}

impl Node {
    /// Boots a node from the cached root of `packages`; `prepare` writes into the
    /// node's root (the overlay, not the cache) before it boots.
    pub fn boot(packages: &[&str], prepare: impl FnOnce(&Path)) -> Node {
        require_tool("systemd-nspawn", "systemd-container");
        require_tool("flock", "util-linux");
        let lower = cached_root(packages);
        let boot = std::env::temp_dir().join(format!("catrust-node-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&boot);
        std::fs::create_dir_all(&boot).unwrap();
        let mut guardian = Command::new("sh")
            .args(["-c", GUARDIAN, "catrust-node-guardian"])
            .arg(&lower)
            .arg(&boot)
            .arg(Path::new(CACHE).join("node.lock"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("start the node guardian");
        let stdin = guardian.stdin.take();
        let mut out = BufReader::new(guardian.stdout.take().unwrap());
        let mut line = String::new();
        let mut read_line = |what: &str| {
            line.clear();
            out.read_line(&mut line).unwrap();
            assert!(!line.is_empty(), "the node guardian exited before {what}");
            line.trim().to_string()
        };
        assert_eq!(read_line("mounting the overlay"), "mounted");
        let mut node = Node {
            guardian,
            stdin,
            pid: 0,
            boot,
        };
        let root = node.boot.join("root");
        configure_root(&root);
        prepare(&root);
        writeln!(node.stdin.as_mut().unwrap(), "boot").unwrap();
        let started = Instant::now();
        let nspawn: u32 = read_line("starting nspawn")
            .strip_prefix("nspawn ")
            .and_then(|p| p.parse().ok())
            .expect("the guardian names nspawn's pid");
        let children = format!("/proc/{nspawn}/task/{nspawn}/children");
        wait_until(
            "systemd-nspawn starts the node's systemd",
            Duration::from_secs(20),
            || {
                node.pid = std::fs::read_to_string(&children)
                    .unwrap_or_default()
                    .split_whitespace()
                    .filter_map(|p| p.parse::<u32>().ok())
                    .find(|p| {
                        std::fs::read_to_string(format!("/proc/{p}/comm"))
                            .is_ok_and(|c| c.trim() == "systemd")
                    })
                    .unwrap_or(0);
                node.pid != 0
            },
        );
        let mut state = String::new();
        let console = node.boot.join("console.log");
        wait_until(
            "the node's systemd is running",
            Duration::from_secs(60),
            || {
                state =
                    String::from_utf8_lossy(&node.exec(&["systemctl", "is-system-running"]).stdout)
                        .trim()
                        .to_string();
                assert!(
                    state != "offline" || started.elapsed() < Duration::from_secs(30),
                    "the node does not boot: {}",
                    std::fs::read_to_string(&console).unwrap_or_default()
                );
                state == "running" || state == "degraded"
            },
        );
        // nspawn mounts the cgroup v1 hierarchies read-only; runc must create cgroups.
        node.sh_ok(
            "for c in cpuacct devices cpuset cpu freezer memory pids blkio; do mount -o remount,bind,rw /sys/fs/cgroup/$c; done",
        );
        eprintln!(
            "node_e2e: node booted ({state}) in {:.1} s, systemd pid {}",
            started.elapsed().as_secs_f64(),
            node.pid
        );
        node
    }

    /// A path inside the node (through its PID 1's root), as this machine sees it.
    pub fn path(&self, p: &str) -> PathBuf {
        Path::new(&format!("/proc/{}/root", self.pid)).join(p.trim_start_matches('/'))
    }

    /// Runs `argv` in all of the node's namespaces (as its root user).
    pub fn exec(&self, argv: &[&str]) -> Output {
        run(Command::new("nsenter")
            .args(["--target", &self.pid.to_string(), "--all", "--"])
            .args(argv)
            .env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .env("LANG", "C.UTF-8"))
    }

    /// `sh -c script` in the node.
    pub fn sh(&self, script: &str) -> Output {
        self.exec(&["sh", "-c", script])
    }

    /// `sh -c script` in the node; panics with its output unless it succeeds.
    #[track_caller]
    pub fn sh_ok(&self, script: &str) -> String {
        let o = self.sh(script);
        assert!(
            o.status.success(),
            "in the node: {script}: {}\n{}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// containerd's `MainPID` as systemd reports it (0 when it is not running).
    pub fn containerd_main_pid(&self) -> u32 {
        self.sh_ok("systemctl show -p MainPID --value containerd")
            .trim()
            .parse()
            .expect("MainPID is a number")
    }

    /// The node's containerd CRI socket, as this machine reaches it.
    pub fn cri_socket(&self) -> PathBuf {
        self.path("/run/containerd/containerd.sock")
    }

    /// A CRI connection to the node's containerd, once it serves CRI.
    pub fn cri(&self) -> crate::cri::Cri {
        let sock = self.cri_socket();
        let mut last;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match crate::cri::Cri::connect(&sock) {
                Ok(c) => return c,
                Err(e) => last = e,
            }
            assert!(
                Instant::now() < deadline,
                "the node's containerd does not serve {}: {last}",
                sock.display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Imports a `docker-archive` tar into the node's containerd (`k8s.io` namespace,
    /// the node's snapshotter).
    pub fn import_image(&self, archive: &Path) {
        let name = archive.file_name().unwrap().to_string_lossy().into_owned();
        let inside = format!("/var/tmp/{name}");
        std::fs::copy(archive, self.path(&inside)).unwrap();
        self.sh_ok(&format!(
            "ctr -n k8s.io images import --snapshotter native '{inside}' >/dev/null && rm -f '{inside}'"
        ));
    }

    /// The node's journal for one unit: its warnings, errors and systemd's lines about
    /// it (for failure messages).
    pub fn journal(&self, unit: &str) -> String {
        let o = self.exec(&["journalctl", "--no-pager", "-q", "-n", "400", "-u", unit]);
        let text = String::from_utf8_lossy(&o.stdout);
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| {
                ["level=error", "level=warning", "systemd[1]"]
                    .iter()
                    .any(|k| l.contains(k))
            })
            .collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(30);
        while matches!(self.guardian.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The node's own setup, written into its (overlay) root before boot: no units that
/// need a tty or the clock, a hostname, and containerd's config as a node image ships
/// it: CRI with `certs.d` enabled (EKS's `config_path`), runc through the cgroupfs
/// driver, the local pause image, and the native snapshotter (the node's root is an
/// overlay, on which overlayfs cannot stack). `restrict_oom_score_adj`: this machine
/// withholds CAP_SYS_RESOURCE from its processes (the node's too), so no process may
/// lower its OOM score; without it every sandbox fails to start (runc's nsexec cannot
/// write `-998` to `oom_score_adj`: "can't get final child's PID from pipe").
fn configure_root(root: &Path) {
    for unit in [
        "systemd-timesyncd.service",
        "getty@tty1.service",
        "console-getty.service",
    ] {
        let link = root.join("etc/systemd/system").join(unit);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink("/dev/null", link).unwrap();
    }
    std::fs::write(root.join("etc/hostname"), "catrust-node\n").unwrap();
    std::fs::write(
        root.join("etc/hosts"),
        "127.0.0.1 localhost\n127.0.1.1 catrust-node\n",
    )
    .unwrap();
    std::fs::create_dir_all(root.join("etc/containerd/certs.d")).unwrap();
    std::fs::write(
        root.join("etc/containerd/config.toml"),
        format!(
            r#"version = 2
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  disable_tcp_service = true
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "native"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "/etc/containerd/certs.d"
"#
        ),
    )
    .unwrap();
}
