//! Shared helpers for the integration tests in this folder: the real binaries, real
//! tools (with the Debian package to install when one is missing) and test PKI made
//! with the real `openssl`.
#![forbid(unsafe_code)]

pub mod agent;
pub mod containerd;
pub mod cri;
pub mod fleet;
pub mod gitrepo;
pub mod host;
pub mod image;
pub mod k8s;
pub mod kubelet;
pub mod node;
pub mod nodebox;
pub mod pki;
pub mod podspec;
pub mod schema;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// Path of a workspace binary (`catrust`, `catrust-agent`, `argocd-catrust-plugin`),
/// built once per test process with the same profile as the test itself.
pub fn bin(name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        let exe = std::env::current_exe().expect("test executable path");
        // target/<profile>/deps/<test> -> target/<profile>
        let dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("test executable lives in target/<profile>/deps")
            .to_path_buf();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "--quiet", "--bins", "--workspace"])
            .current_dir(workspace_root());
        if dir.ends_with("release") {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("run cargo build for the binaries");
        assert!(status.success(), "cargo build --bins failed");
        dir
    });
    let path = dir.join(name);
    assert!(path.exists(), "{} was not built", path.display());
    path
}

/// Starts `cmd` (a dev build of `catrust` or `catrust-agent`, which has failpoints) with `CATRUST_FAILPOINTS=<failpoint>=sleep(ms)`
/// and returns once it has reached the failpoint and is paused there (its stderr says
/// so), for a test to act on it mid-flight: kill it, or change what it reads. The rest
/// of its stderr comes with it (keep it open: the child may still write there).
// The caller owns (and waits for) the returned child; every other path kills and waits.
#[allow(clippy::zombie_processes)]
pub fn spawn_paused_at(
    cmd: &mut Command,
    failpoint: &str,
    ms: u64,
) -> (
    std::process::Child,
    std::io::BufReader<std::process::ChildStderr>,
) {
    use std::io::{BufRead, BufReader};
    let mut child = cmd
        .env("CATRUST_FAILPOINTS", format!("{failpoint}=sleep({ms})"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let mut stderr = BufReader::new(child.stderr.take().expect("piped stderr"));
    let mut line = String::new();
    loop {
        line.clear();
        if stderr.read_line(&mut line).unwrap_or(0) == 0 {
            let _ = child.kill();
            let status = child.wait();
            panic!("{cmd:?} never reached the failpoint {failpoint} ({status:?})");
        }
        if line.contains(&format!("failpoint {failpoint}")) {
            return (child, stderr);
        }
    }
}

/// The repository root (where the workspace Cargo.toml is).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Fails the test, naming the Debian package to install, unless `tool` is on PATH
/// (or is an existing path).
pub fn require_tool(tool: &str, debian_package: &str) -> PathBuf {
    let found = if tool.contains('/') {
        Path::new(tool).exists().then(|| PathBuf::from(tool))
    } else {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .chain(["/usr/sbin".into(), "/sbin".into()])
                .map(|p| p.join(tool))
                .find(|p| p.is_file())
        })
    };
    found.unwrap_or_else(|| {
        panic!(
            "`{tool}` is not installed: apt-get install -y {debian_package} (or run tests/run.sh)"
        )
    })
}

/// Runs a command and returns its output; panics with stderr when it cannot start.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Removes the variables through which the machine's own trust store would leak into
/// a TLS check (this machine exports all three).
pub fn isolate_tls_env(cmd: &mut Command) -> &mut Command {
    cmd.env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR")
        .env_remove("CURL_CA_BUNDLE")
}

/// Runs `catrust` with `args` in `dir`, with a clean environment for TLS variables.
pub fn catrust(dir: &Path, args: &[&str]) -> Output {
    run(Command::new(bin("catrust"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1"))
}

/// Fails the test, with `what`, the exit status and stderr, unless `out` succeeded.
#[track_caller]
pub fn assert_ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `catrust lint --format json` in `dir`: the report and the code of each finding, in
/// report order.
pub fn lint_json(dir: &Path) -> (serde_json::Value, Vec<String>) {
    let o = catrust(dir, &["lint", "--format", "json"]);
    let report: serde_json::Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("lint --format json printed no JSON ({e}): {o:?}"));
    let codes = report["findings"]
        .as_array()
        .expect("a findings array")
        .iter()
        .map(|f| f["code"].as_str().expect("a code").to_owned())
        .collect();
    (report, codes)
}

/// One entry of a folder tree, as tests compare them (links are not followed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Dir,
    File(Vec<u8>),
    Link(std::path::PathBuf),
}

/// Every entry under `dir` (relative path → node): the one tree walker of the tests.
/// A missing or unreadable folder has no entries.
pub fn tree(dir: &Path) -> std::collections::BTreeMap<String, Node> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let rel = path
                .strip_prefix(dir)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let meta = std::fs::symlink_metadata(&path).expect("stat");
            let node = if meta.file_type().is_symlink() {
                Node::Link(std::fs::read_link(&path).expect("read link"))
            } else if meta.is_dir() {
                stack.push(path.clone());
                Node::Dir
            } else {
                Node::File(std::fs::read(&path).expect("read"))
            };
            out.insert(rel, node);
        }
    }
    out
}

/// The files and links under `dir` as bytes (a link as `<path> -> symlink` → its
/// target), for before/after comparisons and for reading an output folder.
pub fn snapshot_tree(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    tree(dir)
        .into_iter()
        .filter_map(|(rel, node)| match node {
            Node::Dir => None,
            Node::File(bytes) => Some((rel, bytes)),
            Node::Link(target) => Some((
                format!("{rel} -> symlink"),
                target.to_string_lossy().into_owned().into_bytes(),
            )),
        })
        .collect()
}

/// Polls `ready` every 20 ms; fails the test with "`what` within `within`" when it is
/// still false at the deadline.
pub fn wait_until(what: &str, within: std::time::Duration, mut ready: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + within;
    while !ready() {
        assert!(
            std::time::Instant::now() < deadline,
            "{what} within {within:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
