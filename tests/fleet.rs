//! The fleet simulation in the default test run (N = 20, maxUnavailable 5); the full
//! run is `bench/fleet.sh` (N = 200). `FLEET_N` and `FLEET_MAX_UNAVAILABLE` override.
//!
//! Invariants: every node ends with exactly B's anchors and a generated bundle holding
//! exactly B's CAs (zero failed nodes); an idle agent stays under 10 MiB RSS.

use catrust_tests::fleet::run_fleet;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A DaemonSet-style rollout over N real agents converges with zero failed nodes, each
/// holding exactly the new bundle's anchors, and idle agents stay under 10 MiB RSS.
#[test]
fn rollout_over_a_simulated_fleet_converges_with_zero_failed_nodes() {
    let n = env("FLEET_N", 20);
    let max_unavailable = env("FLEET_MAX_UNAVAILABLE", n.div_ceil(4).max(1));
    let report = run_fleet(n, max_unavailable);
    eprint!("{}", report.render());
    assert!(report.failed.is_empty(), "{}", report.render());
    let max_idle = report.idle_rss_kib.iter().max().copied().unwrap_or(0);
    assert!(
        max_idle < 10 * 1024,
        "an idle agent uses {max_idle} KiB RSS (goal: < 10 MiB)"
    );
}
