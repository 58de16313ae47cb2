//! OCI images for the node suite, built offline as `agent/Dockerfile` builds the agent
//! image: busybox (Debian's `busybox-static`, with its applets linked in `/bin` as in
//! the `busybox` image) plus `/usr/local/bin/catrust-agent` as the entrypoint. The agent
//! binary is the one the tests build (glibc, dynamically linked): the libraries `ldd`
//! names are copied into the image at their paths, so the image runs the very binary the
//! other suites test. A pause image (busybox `sleep`, which dies on SIGTERM/SIGKILL)
//! serves as the CRI sandbox and as a workload. Built with `umoci`, written as
//! `docker-archive` tars with `skopeo` (`ctr images import` keeps their names).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{require_tool, run};

/// The PATH of the `busybox` image's config.
const BUSYBOX_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

#[track_caller]
fn ok(cmd: &mut Command) {
    let o = run(cmd);
    assert!(
        o.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The shared libraries `ldd` says `bin` loads (the loader included).
fn libraries(bin: &Path) -> Vec<PathBuf> {
    let o = run(Command::new(require_tool("ldd", "libc-bin")).arg(bin));
    let text = String::from_utf8_lossy(&o.stdout);
    if text.contains("not a dynamic executable") || text.contains("statically linked") {
        return Vec::new();
    }
    text.lines()
        .filter_map(|l| {
            let l = l.trim();
            let path = match l.split_once("=>") {
                Some((_, right)) => right.split_whitespace().next()?,
                None => l.split_whitespace().next()?,
            };
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect()
}

/// A folder laid out as the image's root: busybox and its applets in `/bin`, plus
/// `files` (image path → file on this machine).
fn stage(dir: &Path, files: &[(String, PathBuf)]) {
    let busybox = require_tool("/bin/busybox", "busybox-static");
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy(&busybox, bin.join("busybox")).unwrap();
    let o = run(Command::new(&busybox).arg("--list"));
    for applet in String::from_utf8_lossy(&o.stdout).lines() {
        if applet != "busybox" && !applet.contains('/') && !applet.is_empty() {
            std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
        }
    }
    for d in ["tmp", "etc", "proc", "sys", "dev"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    for (to, from) in files {
        let to = dir.join(to.trim_start_matches('/'));
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(from, &to).unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
    }
}

/// One image: `staged` as its only layer, `config` as umoci `--config.*` flags, written
/// to `<work>/<file>` as a docker-archive named `reference`.
fn build(work: &Path, staged: &Path, config: &[String], reference: &str, file: &str) -> PathBuf {
    let umoci = require_tool("umoci", "umoci");
    let skopeo = require_tool("skopeo", "skopeo");
    let layout = work.join(format!("{file}.layout"));
    let _ = std::fs::remove_dir_all(&layout);
    let image = format!("{}:1", layout.display());
    ok(Command::new(&umoci)
        .arg("init")
        .arg("--layout")
        .arg(&layout));
    ok(Command::new(&umoci).args(["new", "--image", &image]));
    ok(Command::new(&umoci)
        .args(["insert", "--image", &image])
        .arg(staged)
        .arg("/"));
    ok(Command::new(&umoci)
        .args(["config", "--image", &image, "--config.env", BUSYBOX_PATH])
        .args(config));
    let out = work.join(file);
    let _ = std::fs::remove_file(&out);
    ok(Command::new(skopeo)
        .args(["--insecure-policy", "copy", "--quiet"])
        .arg(format!("oci:{image}"))
        .arg(format!("docker-archive:{}:{reference}", out.display())));
    out
}

/// The pause image: busybox, `sleep` for ever.
pub fn pause_image(work: &Path, reference: &str) -> PathBuf {
    let staged = work.join("pause.root");
    let _ = std::fs::remove_dir_all(&staged);
    stage(&staged, &[]);
    let config: Vec<String> = [
        "--config.entrypoint",
        "/bin/sleep",
        "--config.cmd",
        "2147483647",
    ]
    .map(String::from)
    .to_vec();
    build(work, &staged, &config, reference, "pause.tar")
}

/// The agent image, like `agent/Dockerfile`: busybox + `agent` at
/// `/usr/local/bin/catrust-agent` (+ its libraries) as the entrypoint.
pub fn agent_image(work: &Path, agent: &Path, reference: &str) -> PathBuf {
    let staged = work.join("agent.root");
    let _ = std::fs::remove_dir_all(&staged);
    let mut files = vec![(
        "/usr/local/bin/catrust-agent".to_string(),
        agent.to_path_buf(),
    )];
    for lib in libraries(agent) {
        files.push((lib.display().to_string(), lib));
    }
    stage(&staged, &files);
    let config: Vec<String> = ["--config.entrypoint", "/usr/local/bin/catrust-agent"]
        .map(String::from)
        .to_vec();
    build(work, &staged, &config, reference, "agent.tar")
}
