//! `catrust-agent`: installs a catrust bundle (read from a kubelet Secret volume) into a
//! Kubernetes node's trust store and containerd, and reports readiness.
//!
//! Design: functional core, imperative shell.
//! - [`bundle_dir`] reads the volume through `..data` (one consistent version);
//!   `catrust_bundle::verify` checks every byte against `bundle.json` and the hash.
//! - [`host`] maps `/etc/os-release` to a family and its paths (pure).
//! - [`plan`] is the pure core: desired × state record × observed disk → actions,
//!   refresh, containerd restart, next record; or a refusal before any change.
//! - [`engine`] observes, carries out the plan with [`fsops`] (atomic writes), runs the
//!   refresh through [`exec`] (nsenter / chroot / direct), checks the generated bundle,
//!   and restores every touched file if anything fails.
//! - [`containerd`] and [`cacerts_conf`] are pure text edits of files the agent does
//!   not own, each change marked and recorded so it can be reverted exactly.
//! - [`state`] is the record under `/var/lib/catrust/`; [`server`] and [`watch`] make
//!   the long-running `run` loop.
#![forbid(unsafe_code)]

mod cacerts_conf;
mod containerd;
mod engine;
mod exec;
mod fsops;
mod host;
mod pem;
mod plan;
mod rootfs;
mod server;
mod state;
mod watch;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use catrust_agent::{bundle_dir, failpoint};
use catrust_bundle::ContainerdPolicy;
use clap::{Args, Parser, Subcommand, ValueEnum};
use tracing::{error, info};

use crate::exec::HostExec;

#[derive(Parser)]
#[command(
    name = "catrust-agent",
    version,
    about = "Installs a catrust bundle into this node's trust store and containerd"
)]
struct Cli {
    /// Log format (stderr).
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum Policy {
    Restart,
    RegistriesOnly,
    None,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Human,
    Json,
}

#[derive(Args, Clone)]
struct HostArgs {
    /// Where the host's root file system is (the container's hostPath mount).
    #[arg(long)]
    host_root: PathBuf,
    /// How refresh and containerd commands reach the host.
    #[arg(long, value_enum, default_value = "nsenter")]
    host_exec: HostExec,
    /// Overrides the bundle's containerd policy.
    #[arg(long, value_enum)]
    containerd: Option<Policy>,
    /// Run with `sh -c` instead of `systemctl restart containerd`.
    #[arg(long)]
    containerd_restart_command: Option<String>,
    /// Deadline for the refresh and containerd commands (e.g. 60s).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    command_timeout: Duration,
}

#[derive(Args, Clone)]
struct BundleArgs {
    /// The mounted bundle Secret (kubelet layout).
    #[arg(long)]
    bundle_dir: PathBuf,
    /// The bundle hash this node must end up with (the DaemonSet passes it).
    #[arg(long, env = "CATRUST_EXPECTED_SHA256")]
    expected_sha256: Option<String>,
    /// This node's pool: authorities limited to other pools are skipped.
    #[arg(long, env = "CATRUST_POOL")]
    pool: Option<String>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Apply the bundle, then keep it applied: react to a new bundle within a second,
    /// resync periodically, serve /healthz, /readyz and /metrics.
    Run {
        #[command(flatten)]
        bundle: BundleArgs,
        #[command(flatten)]
        host: HostArgs,
        /// Address for /healthz, /readyz and /metrics.
        #[arg(long, default_value = "0.0.0.0:9102")]
        listen: String,
        /// Re-apply this often to repair drift (s, m, h, d).
        #[arg(long, default_value = "10m", value_parser = parse_duration)]
        resync: Duration,
    },
    /// Apply the bundle once. Exit 0 when installed, 1 when refused or failed.
    Apply {
        /// Required: apply once and exit (the long-running form is `run`).
        #[arg(long, required = true)]
        once: bool,
        #[command(flatten)]
        bundle: BundleArgs,
        #[command(flatten)]
        host: HostArgs,
    },
    /// What is installed, what is expected, and why the node is not ready.
    /// Exit 0 when ready, 1 when not.
    Status {
        #[arg(long)]
        host_root: PathBuf,
        #[arg(long)]
        bundle_dir: Option<PathBuf>,
        #[arg(long, env = "CATRUST_EXPECTED_SHA256")]
        expected_sha256: Option<String>,
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
    },
    /// Remove exactly what the agent installed (per its record) and refresh.
    /// Exit 0 when done, 1 when something could not be removed.
    Uninstall {
        #[command(flatten)]
        host: HostArgs,
    },
}

/// `90s`, `5m`, `2h`, `1d` (a bare number is seconds).
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?}: expected a number with s, m, h or d"))?;
    let mult = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        "ms" => return Ok(Duration::from_millis(n)),
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (use s, m, h or d)")),
    };
    let secs = n
        .checked_mul(mult)
        .ok_or_else(|| format!("{s:?} is too long"))?;
    Ok(Duration::from_secs(secs))
}

fn policy(p: Option<Policy>) -> Option<ContainerdPolicy> {
    p.map(|p| match p {
        Policy::Restart => ContainerdPolicy::Restart,
        Policy::RegistriesOnly => ContainerdPolicy::RegistriesOnly,
        Policy::None => ContainerdPolicy::None,
    })
}

fn config(bundle: Option<&BundleArgs>, host: &HostArgs) -> engine::Config {
    engine::Config {
        bundle_dir: bundle.map(|b| b.bundle_dir.clone()),
        host_root: host.host_root.clone(),
        exec: host.host_exec,
        containerd: policy(host.containerd),
        expected: bundle
            .and_then(|b| b.expected_sha256.clone())
            .filter(|s| !s.trim().is_empty())
            .map(|s| s.trim().to_ascii_lowercase()),
        restart_command: host.containerd_restart_command.clone(),
        pool: bundle.and_then(|b| b.pool.clone()),
        timeout: host.command_timeout,
    }
}

fn init_logs(format: LogFormat) {
    let level = match std::env::var("CATRUST_LOG").as_deref() {
        Ok("debug") => tracing::Level::DEBUG,
        Ok("warn") => tracing::Level::WARN,
        Ok("error") => tracing::Level::ERROR,
        _ => tracing::Level::INFO,
    };
    let b = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level)
        .with_ansi(false);
    match format {
        LogFormat::Json => b.json().init(),
        LogFormat::Text => b.init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logs(cli.log_format);
    match cli.command {
        Cmd::Apply { bundle, host, .. } => {
            let report = engine::apply(&config(Some(&bundle), &host), false);
            if report.outcome.ready {
                info!(installed = ?report.outcome.installed_sha256, "ready");
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Cmd::Uninstall { host } => {
            let report = engine::apply(&config(None, &host), true);
            match report.outcome.reason {
                None => {
                    info!(changes = report.changes, "uninstalled");
                    ExitCode::SUCCESS
                }
                Some(_) => ExitCode::from(1),
            }
        }
        Cmd::Status {
            host_root,
            bundle_dir,
            expected_sha256,
            format,
        } => {
            let cfg = engine::Config {
                bundle_dir,
                host_root,
                exec: HostExec::Direct,
                containerd: None,
                expected: expected_sha256.map(|s| s.trim().to_ascii_lowercase()),
                restart_command: None,
                pool: None,
                timeout: Duration::from_secs(60),
            };
            let s = engine::status(&cfg);
            match format {
                Format::Json => {
                    println!("{}", serde_json::to_string_pretty(&s).unwrap_or_default())
                }
                Format::Human => print_status(&s),
            }
            if s["ready"].as_bool() == Some(true) {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Cmd::Run {
            bundle,
            host,
            listen,
            resync,
        } => run(config(Some(&bundle), &host), &listen, resync),
    }
}

fn print_status(s: &serde_json::Value) {
    let field = |k: &str| s[k].as_str().unwrap_or("-").to_owned();
    println!(
        "ready:     {}",
        if s["ready"].as_bool() == Some(true) {
            "yes"
        } else {
            "no"
        }
    );
    if let Some(r) = s["reason"].as_str() {
        println!("reason:    {r}");
    }
    println!("installed: {}", field("installed"));
    println!("expected:  {}", field("expected"));
    println!("family:    {}", field("family"));
    for f in s["files"].as_array().into_iter().flatten() {
        println!("file:      {}", f.as_str().unwrap_or(""));
    }
    for w in s["warnings"].as_array().into_iter().flatten() {
        println!("warning:   {}", w.as_str().unwrap_or(""));
    }
}

fn run(cfg: engine::Config, listen: &str, resync: Duration) -> ExitCode {
    let listener = match TcpListener::bind(listen) {
        Ok(l) => l,
        Err(e) => {
            error!(listen, error = %e, "cannot listen");
            return ExitCode::from(2);
        }
    };
    if let Ok(addr) = listener.local_addr() {
        info!(listen = %addr, "serving /healthz /readyz /metrics");
    }
    let shared = Arc::new(Mutex::new(server::Shared::default()));
    {
        let shared = shared.clone();
        std::thread::spawn(move || server::serve(listener, shared));
    }
    let Some(dir) = cfg.bundle_dir.clone() else {
        return ExitCode::from(2);
    };
    // In a pod the agent is PID 1, where SIGTERM without a handler is ignored and
    // every rollout would wait out the grace period. Exit on it, but never mid-apply.
    static APPLYING: Mutex<()> = Mutex::new(());
    match signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
    ]) {
        Ok(mut signals) => {
            std::thread::spawn(move || {
                if let Some(sig) = signals.forever().next() {
                    let _done = APPLYING.lock();
                    info!(signal = sig, "exiting");
                    std::process::exit(0);
                }
            });
        }
        Err(e) => error!(error = %e, "cannot handle SIGTERM"),
    }
    let mut watcher = watch::Watcher::new(&dir);
    loop {
        let report = {
            let _applying = APPLYING.lock();
            engine::apply(&cfg, false)
        };
        let retry_soon = !report.outcome.ready && !report.refused;
        {
            let mut s = shared.lock().unwrap_or_else(|p| p.into_inner());
            s.ready = report.outcome.ready;
            s.reason = report.outcome.reason.clone();
            s.metrics.observe(&report);
        }
        // A failed refresh is retried sooner than a refused bundle, which only a new
        // bundle (an inotify event) can fix.
        let wait = if retry_soon {
            resync.min(Duration::from_secs(30))
        } else {
            resync
        };
        let wake = watcher.wait(wait);
        tracing::debug!(?wake, "woke");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86400)));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("999999999999999999d").is_err());
    }

    #[test]
    fn the_cli_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
