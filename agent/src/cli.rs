//! The agent's command line. A library module so tests can parse the DaemonSet's
//! rendered `args` with the very definition the binary uses; every flag, environment
//! variable and default the DaemonSet relies on comes from
//! [`catrust_bundle::agent_interface`].

use std::path::PathBuf;
use std::time::Duration;

use catrust_bundle::agent_interface::{
    flag, DEFAULT_LISTEN, ENV_EXPECTED_SHA256, ENV_POOL, SUBCOMMAND_RUN,
};
use catrust_bundle::duration::{self, DurationError};
use catrust_bundle::ContainerdPolicy;
use clap::{Args, Parser, Subcommand, ValueEnum};

/// How the refresh and containerd commands reach the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HostExec {
    /// The host's own tools in PID 1's namespaces (`nsenter --target 1`).
    Nsenter,
    /// The agent's tools with explicit paths under `--host-root` (throwaway roots).
    Direct,
}

#[derive(Parser)]
#[command(
    name = "catrust-agent",
    version,
    about = "Installs a catrust bundle into this node's trust store and containerd"
)]
pub struct Cli {
    /// Log format (stderr).
    #[arg(long = flag::LOG_FORMAT, global = true, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Human,
    Json,
}

#[derive(Args, Clone)]
pub struct HostArgs {
    /// Where the host's root file system is (the container's hostPath mount).
    #[arg(long = flag::HOST_ROOT)]
    pub host_root: PathBuf,
    /// How refresh and containerd commands reach the host.
    #[arg(long = flag::HOST_EXEC, value_enum, default_value = "nsenter")]
    pub host_exec: HostExec,
    /// Overrides the bundle's containerd policy.
    #[arg(long, value_parser = containerd_policy)]
    pub containerd: Option<ContainerdPolicy>,
    /// Run with `sh -c` instead of `systemctl restart containerd`.
    #[arg(long)]
    pub containerd_restart_command: Option<String>,
    /// Deadline for the refresh and containerd commands (e.g. 60s).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub command_timeout: Duration,
}

#[derive(Args, Clone)]
pub struct BundleArgs {
    /// The mounted bundle Secret (kubelet layout).
    #[arg(long = flag::BUNDLE_DIR)]
    pub bundle_dir: PathBuf,
    /// The bundle hash this node must end up with (the DaemonSet passes it).
    #[arg(long, env = ENV_EXPECTED_SHA256)]
    pub expected_sha256: Option<String>,
    /// This node's pool: authorities limited to other pools are skipped.
    #[arg(long, env = ENV_POOL)]
    pub pool: Option<String>,
}

#[derive(Subcommand)]
pub enum Cmd {
    /// Apply the bundle, then keep it applied: react to a new bundle within a second,
    /// resync periodically, serve /healthz, /readyz and /metrics.
    #[command(name = SUBCOMMAND_RUN)]
    Run {
        #[command(flatten)]
        bundle: BundleArgs,
        #[command(flatten)]
        host: HostArgs,
        /// Address for /healthz, /readyz and /metrics.
        #[arg(long = flag::LISTEN, default_value = DEFAULT_LISTEN)]
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
        #[arg(long, env = ENV_EXPECTED_SHA256)]
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

/// `90s`, `5m`, `2h`, `1d`, `1m30s`; a bare number is seconds.
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    duration::parse_flag(s)
}

/// The bundle's spelling of a containerd policy (`restart`, `registries-only`, `none`).
fn containerd_policy(s: &str) -> Result<ContainerdPolicy, String> {
    ContainerdPolicy::parse(s).ok_or_else(|| {
        let all: Vec<&str> = ContainerdPolicy::ALL.iter().map(|p| p.as_str()).collect();
        format!("expected one of {}", all.join(", "))
    })
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
    fn containerd_takes_the_bundle_spellings() {
        let run = |policy: &str| {
            Cli::try_parse_from([
                "catrust-agent",
                "uninstall",
                "--host-root=/",
                "--containerd",
                policy,
            ])
            .map(|cli| match cli.command {
                Cmd::Uninstall { host } => host.containerd,
                _ => unreachable!("parsed uninstall"),
            })
        };
        assert_eq!(
            run("registries-only").unwrap(),
            Some(ContainerdPolicy::RegistriesOnly)
        );
        let error = run("Restart")
            .expect_err("a wrong spelling is refused")
            .to_string();
        assert!(
            error.contains("expected one of restart, registries-only, none"),
            "{error}"
        );
    }

    #[test]
    fn the_cli_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
