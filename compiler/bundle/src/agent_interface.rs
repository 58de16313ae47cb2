//! The DaemonSet → agent interface, defined once: the compiler renders these names into
//! the DaemonSet, the agent's command line (clap) is declared with them, and a test
//! (`tests/compile_agent.rs`) parses the rendered `args` with the agent's own CLI.

/// The port of the agent's `/healthz`, `/readyz` and `/metrics`.
pub const PORT: u16 = 9479;
/// The agent's default `--listen` (all addresses, [`PORT`]).
pub const DEFAULT_LISTEN: &str = "0.0.0.0:9479";
/// The pod-template annotation that carries the expected bundle hash; the DaemonSet
/// passes it to the agent as [`ENV_EXPECTED_SHA256`] through the downward API.
pub const BUNDLE_ANNOTATION: &str = "catrust.dev/bundle-sha256";
/// The environment variable of `--expected-sha256`.
pub const ENV_EXPECTED_SHA256: &str = "CATRUST_EXPECTED_SHA256";
/// The environment variable of `--pool`.
pub const ENV_POOL: &str = "CATRUST_POOL";
/// The subcommand the DaemonSet runs.
pub const SUBCOMMAND_RUN: &str = "run";

/// Long flag names (without `--`).
pub mod flag {
    pub const BUNDLE_DIR: &str = "bundle-dir";
    pub const HOST_ROOT: &str = "host-root";
    pub const HOST_EXEC: &str = "host-exec";
    pub const LISTEN: &str = "listen";
    pub const LOG_FORMAT: &str = "log-format";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_listen_address_uses_the_port() {
        assert!(DEFAULT_LISTEN.ends_with(&format!(":{PORT}")));
    }
}
