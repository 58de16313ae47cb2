//! The host-exec layer: how the refresh and containerd commands reach the host.
//!
//! - `nsenter` (production): the host's own tools, in PID 1's namespaces, on the
//!   host's real paths (the agent container sees the host root at `--host-root`).
//! - `direct` (tests, throwaway roots): the agent's tools with explicit paths under the
//!   host root, so nothing outside it is read or written.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::host::Family;

pub use catrust_agent::cli::HostExec;

const NSENTER: [&str; 8] = [
    "nsenter", "--target", "1", "--mount", "--uts", "--ipc", "--net", "--pid",
];

/// The PATH every command run on the host gets, whatever the container's is (an image
/// may set none: then nsenter cannot find `update-ca-certificates`). It covers where
/// Debian, Ubuntu, the RHEL family and Flatcar keep `update-ca-certificates`,
/// `update-ca-trust`, `systemctl` and the tools their scripts call, and where the
/// agent image keeps `nsenter` (busybox: `/bin`).
pub const HOST_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A command line and the environment it runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmd {
    pub argv: Vec<String>,
    /// Run with an empty environment plus `PATH=`[`HOST_PATH`] (a host command must not
    /// see the container's variables); `false` keeps the agent's environment (direct
    /// mode on a throwaway root, and the operator's `--containerd-restart-command`).
    pub host_env: bool,
}

impl Cmd {
    fn local(argv: Vec<String>) -> Cmd {
        Cmd {
            argv,
            host_env: false,
        }
    }
}

fn on_host(exec: HostExec, argv: &[&str]) -> Cmd {
    let mut out: Vec<String> = match exec {
        HostExec::Nsenter => NSENTER
            .iter()
            .map(|s| s.to_string())
            .chain(["--".into()])
            .collect(),
        HostExec::Direct => Vec::new(),
    };
    out.extend(argv.iter().map(|s| s.to_string()));
    Cmd {
        argv: out,
        host_env: exec != HostExec::Direct,
    }
}

/// Why a host command could not be run, or what its failure said.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExecError {
    #[error("empty command")]
    Empty,
    #[error("cannot run {prog}: {error}")]
    Spawn { prog: String, error: String },
    #[error("{prog} did not finish within {secs}s; killed")]
    TimedOut { prog: String, secs: u64 },
    #[error("waiting for {prog}: {error}")]
    Wait { prog: String, error: String },
    /// The command ran and failed; what it printed, led by its exit status.
    #[error("{output}")]
    Failed { output: String },
    #[error("cannot tell whether containerd runs: systemctl is-active {how}: {output}")]
    UnknownState { how: String, output: String },
    /// Direct mode could not prepare what the command needs under the root.
    #[error("{what}: {error}")]
    Prepare { what: String, error: String },
    #[error("--host-exec direct supports the debian and rhel families; use nsenter on Flatcar")]
    DirectOnFlatcar,
}

/// Folder (ours) where direct mode keeps the p11-kit module config it points `trust` at.
const P11_DIR: &str = "var/lib/catrust/p11-kit";

/// The refresh command line. Direct mode also prepares what the command needs under
/// the root (the folders it writes into, p11-kit's module config).
pub fn refresh_argv(
    exec: HostExec,
    family: Family,
    root: &Path,
    fresh: bool,
) -> Result<Cmd, ExecError> {
    let prepare = |what: &dyn std::fmt::Display, error: std::io::Error| ExecError::Prepare {
        what: what.to_string(),
        error: error.to_string(),
    };
    match (exec, family) {
        (HostExec::Direct, Family::Debian) => {
            let r = |p: &str| root.join(p).display().to_string();
            // update-ca-certificates cd's into --etccertsdir: it must exist.
            std::fs::create_dir_all(root.join("etc/ssl/certs"))
                .map_err(|e| prepare(&"etc/ssl/certs", e))?;
            let mut v = vec!["update-ca-certificates".to_string()];
            if fresh {
                v.push("--fresh".into());
            }
            for (flag, path) in [
                ("--certsconf", "etc/ca-certificates.conf"),
                ("--certsdir", "usr/share/ca-certificates"),
                ("--localcertsdir", "usr/local/share/ca-certificates"),
                ("--etccertsdir", "etc/ssl/certs"),
                // Always: without it the machine's own hooks (e.g. Java's) would run.
                ("--hooksdir", "etc/ca-certificates/update.d"),
            ] {
                v.push(flag.into());
                v.push(r(path));
            }
            Ok(Cmd::local(v))
        }
        (HostExec::Direct, Family::Rhel) => {
            // p11-kit reads its source paths from the trust module's config, and ignores
            // user config when run as root. So: a private mount namespace in which the
            // module config folder is replaced by one naming the root's sources.
            let moddir = root.join(P11_DIR);
            std::fs::create_dir_all(&moddir).map_err(|e| prepare(&moddir.display(), e))?;
            let paths = format!(
                "{}:{}",
                root.join("etc/pki/ca-trust/source").display(),
                root.join("usr/share/pki/ca-trust-source").display()
            );
            let module = format!(
                "module: p11-kit-trust.so\npriority: 1\ntrust-policy: yes\nx-init-reserved: paths={paths}\n"
            );
            crate::fsops::write_atomic(&moddir.join("p11-kit-trust.module"), module.as_bytes())
                .map_err(|e| ExecError::Prepare {
                    what: "p11-kit module config".into(),
                    error: e.to_string(),
                })?;
            let out = root.join(family.generated_bundle());
            if let Some(parent) = out.parent() {
                std::fs::create_dir_all(parent).map_err(|e| prepare(&parent.display(), e))?;
            }
            Ok(Cmd::local(vec![
                "unshare".into(),
                "--mount".into(),
                "sh".into(),
                "-c".into(),
                "mount --bind \"$1\" /usr/share/p11-kit/modules && exec trust extract --format=pem-bundle --filter=ca-anchors --overwrite --purpose server-auth \"$2\"".into(),
                "sh".into(),
                moddir.display().to_string(),
                out.display().to_string(),
            ]))
        }
        (HostExec::Direct, Family::Flatcar) => Err(ExecError::DirectOnFlatcar),
        (_, Family::Debian) if fresh => Ok(on_host(exec, &["update-ca-certificates", "--fresh"])),
        (_, Family::Debian | Family::Flatcar) => Ok(on_host(exec, &["update-ca-certificates"])),
        (_, Family::Rhel) => Ok(on_host(exec, &["update-ca-trust", "extract"])),
    }
}

/// What a finished command did.
#[derive(Debug)]
pub struct Ran {
    pub success: bool,
    /// The exit code; `None` when a signal ended the command.
    pub code: Option<i32>,
    pub output: String,
}

impl Ran {
    /// A failed command as an error: its exit status and output.
    pub fn into_failure(self) -> ExecError {
        ExecError::Failed {
            output: self.output,
        }
    }
}

/// Runs `cmd` with a deadline; the child is killed when it passes.
pub fn run(cmd: &Cmd, timeout: Duration) -> Result<Ran, ExecError> {
    let (prog, args) = cmd.argv.split_first().ok_or(ExecError::Empty)?;
    let mut command = Command::new(prog);
    if cmd.host_env {
        // With PATH set here, Command also looks `prog` (nsenter) up in HOST_PATH.
        command.env_clear().env("PATH", HOST_PATH);
    }
    let mut child = command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| ExecError::Spawn {
            prog: prog.clone(),
            error: e.to_string(),
        })?;
    let mut pipes: Vec<Box<dyn Read + Send>> = Vec::new();
    if let Some(o) = child.stdout.take() {
        pipes.push(Box::new(o));
    }
    if let Some(e) = child.stderr.take() {
        pipes.push(Box::new(e));
    }
    // Output is collected by threads and handed over a channel: a command that leaves a
    // child holding its pipes open must not hang the agent.
    let (tx, rx) = std::sync::mpsc::channel();
    let n_pipes = pipes.len();
    for mut p in pipes {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = p.read_to_end(&mut s);
            let _ = tx.send(String::from_utf8_lossy(&s).into_owned());
        });
    }
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if start.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(ExecError::TimedOut {
                    prog: prog.clone(),
                    secs: timeout.as_secs(),
                });
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => {
                return Err(ExecError::Wait {
                    prog: prog.clone(),
                    error: e.to_string(),
                })
            }
        }
    };
    let mut output = String::new();
    for _ in 0..n_pipes {
        match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(part) => output.push_str(&part),
            Err(_) => break,
        }
    }
    Ok(Ran {
        success: status.success(),
        code: status.code(),
        output: if status.success() {
            output
        } else {
            format!("{prog} exited with {status}: {}", output.trim())
        },
    })
}

/// How containerd is checked and restarted.
#[derive(Debug, Clone)]
pub struct Containerd {
    pub exec: HostExec,
    /// Replaces `systemctl restart containerd` (run with `sh -c`).
    pub restart_command: Option<String>,
}

impl Containerd {
    /// Restarts containerd if it is running. Returns what happened.
    pub fn restart_if_running(&self, timeout: Duration) -> Result<String, ExecError> {
        if let Some(cmd) = &self.restart_command {
            let ran = run(
                &Cmd::local(vec!["sh".into(), "-c".into(), cmd.clone()]),
                timeout,
            )?;
            return if ran.success {
                Ok(format!("ran {cmd:?}"))
            } else {
                Err(ran.into_failure())
            };
        }
        if self.exec == HostExec::Direct {
            return Ok(
                "direct mode without --containerd-restart-command: no containerd to restart".into(),
            );
        }
        let active = run(
            &on_host(
                self.exec,
                &["systemctl", "is-active", "--quiet", "containerd"],
            ),
            timeout,
        )?;
        if !is_active(active.code, &active.output)? {
            return Ok("containerd is not running: nothing to restart".into());
        }
        let ran = run(
            &on_host(self.exec, &["systemctl", "restart", "containerd"]),
            timeout,
        )?;
        if ran.success {
            Ok("restarted containerd".into())
        } else {
            Err(ran.into_failure())
        }
    }
}

/// Reads `systemctl is-active --quiet` by its exit code: 0 is running, 3 is inactive
/// or unknown (nothing to restart). Anything else — 1 for EPERM or no bus, 127 for a
/// missing `systemctl`, a signal — says nothing about containerd: an error, so the
/// restart stays owed and the node not ready. Pure.
pub fn is_active(code: Option<i32>, output: &str) -> Result<bool, ExecError> {
    let unknown = |how: String| ExecError::UnknownState {
        how,
        output: output.trim().to_string(),
    };
    match code {
        Some(0) => Ok(true),
        Some(3) => Ok(false),
        Some(c) => Err(unknown(format!("exited with {c}"))),
        None => Err(unknown("was killed by a signal".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_exit_3_means_containerd_is_not_running() {
        assert_eq!(is_active(Some(0), ""), Ok(true));
        assert_eq!(is_active(Some(3), ""), Ok(false));
        for (code, output) in [
            (Some(1), "Failed to connect to bus: No data available"),
            (
                Some(127),
                "nsenter: failed to execute systemctl: No such file or directory",
            ),
            (Some(4), ""),
            (None, ""),
        ] {
            let err = is_active(code, output).unwrap_err();
            assert!(matches!(err, ExecError::UnknownState { .. }), "{err}");
            let err = err.to_string();
            assert!(err.contains("cannot tell") && err.contains(output), "{err}");
        }
    }

    #[test]
    fn production_refresh_runs_in_pid1_namespaces() {
        let c = refresh_argv(HostExec::Nsenter, Family::Debian, Path::new("/host"), true).unwrap();
        assert_eq!(c.argv[..2], ["nsenter", "--target"]);
        assert_eq!(
            c.argv[c.argv.len() - 2..],
            ["update-ca-certificates", "--fresh"]
        );
        assert!(c.host_env);
        let c = refresh_argv(HostExec::Nsenter, Family::Rhel, Path::new("/host"), false).unwrap();
        assert_eq!(
            c.argv[c.argv.len() - 3..],
            ["--", "update-ca-trust", "extract"]
        );
    }

    fn sh(script: &str) -> Cmd {
        Cmd::local(vec!["sh".into(), "-c".into(), script.into()])
    }

    #[test]
    fn host_commands_get_the_host_path_and_nothing_of_the_container_env() {
        // What the host tools see: only PATH, and the fixed one.
        let cmd = Cmd {
            argv: vec!["sh".into(), "-c".into(), "env".into()],
            host_env: true,
        };
        let ran = run(&cmd, Duration::from_secs(5)).unwrap();
        // The shell itself adds PWD (and some SHLVL, `_`); nothing else may be there.
        let env: Vec<&str> = ran
            .output
            .lines()
            .filter(|l| !["PWD=", "SHLVL=", "_="].iter().any(|p| l.starts_with(p)))
            .collect();
        assert_eq!(env, [format!("PATH={HOST_PATH}")], "{}", ran.output);
    }

    #[test]
    fn timeouts_kill() {
        let err = run(
            &Cmd::local(vec!["sleep".into(), "5".into()]),
            Duration::from_millis(100),
        )
        .unwrap_err();
        assert!(matches!(err, ExecError::TimedOut { .. }), "{err}");
        assert!(err.to_string().contains("did not finish"));
        // A background child keeping the pipes open does not hang the caller.
        let t0 = Instant::now();
        let ran = run(&sh("sleep 5 & echo started"), Duration::from_secs(5)).unwrap();
        assert!(
            ran.success && t0.elapsed() < Duration::from_secs(3),
            "{:?}",
            t0.elapsed()
        );
        let ran = run(&sh("echo hi; exit 3"), Duration::from_secs(5)).unwrap();
        assert!(!ran.success && ran.output.contains("hi"));
    }
}
