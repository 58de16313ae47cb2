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
//!   refresh through [`exec`] (nsenter / direct), checks the generated bundle,
//!   and restores every touched file if anything fails.
//! - [`containerd`] and [`cacerts_conf`] are pure text edits of files the agent does
//!   not own, each change marked and recorded so it can be reverted exactly.
//! - [`state`] is the record under `/var/lib/catrust/`; [`server`] and [`watch`] make
//!   the long-running `run` loop.
//! - The command line is the library's [`catrust_agent::cli`], so tests can parse the
//!   DaemonSet's rendered `args` with it.
#![forbid(unsafe_code)]

mod cacerts_conf;
mod containerd;
mod containerd_config;
mod engine;
mod exec;
mod fsops;
mod host;
mod pem;
mod plan;
mod rootfs;
mod server;
mod state;
mod transaction;
mod watch;

use std::net::TcpListener;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use catrust_agent::cli::{BundleArgs, Cli, Cmd, Format, HostArgs, LogFormat};
use catrust_agent::{bundle_dir, failpoint};
use clap::Parser;
use tracing::{error, info};

use crate::exec::HostExec;

fn config(bundle: Option<&BundleArgs>, host: &HostArgs) -> engine::Config {
    engine::Config {
        bundle_dir: bundle.map(|b| b.bundle_dir.clone()),
        host_root: host.host_root.clone(),
        exec: host.host_exec,
        containerd: host.containerd,
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
                    // Through a JSON value: the keys print sorted, as they always did.
                    let v = serde_json::to_value(&s).unwrap_or_default();
                    println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default())
                }
                Format::Human => print_status(&s),
            }
            if s.ready {
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

fn print_status(s: &engine::Status) {
    let field = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    println!("ready:     {}", if s.ready { "yes" } else { "no" });
    if let Some(r) = &s.reason {
        println!("reason:    {r}");
    }
    println!("installed: {}", field(&s.installed));
    println!("expected:  {}", field(&s.expected));
    println!("family:    {}", s.family.unwrap_or("-"));
    for f in &s.files {
        println!("file:      {f}");
    }
    for w in &s.warnings {
        println!("warning:   {w}");
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
        let retry_soon = !report.outcome.ready && !report.refused();
        {
            let mut s = shared.lock().unwrap_or_else(|p| p.into_inner());
            s.ready = report.outcome.ready;
            s.reason = report.outcome.reason.clone();
            s.warnings = report.outcome.warnings.clone();
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
