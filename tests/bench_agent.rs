//! Measurements for the agent's closing note (not a pass/fail test):
//! `cargo bench -p catrust-tests --bench agent`.
//!
//! On a Debian root holding the machine's full Mozilla set (as a real node does):
//! the time from kubelet's `..data` swap to the new bundle installed, beside a bare
//! `update-ca-certificates` on the same root in the same run; the idle RSS of `run`;
//! and its context switches (wakeups) over 10 s idle.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use catrust_bundle::ContainerdPolicy;
use catrust_tests::agent::{bundle, host_flags, Ca, RunningAgent};
use catrust_tests::host::TestHost;
use catrust_tests::kubelet::SecretVolume;
use catrust_tests::pki::make_ca;
use catrust_tests::run;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn bare_refresh(h: &TestHost, fresh: bool) -> Duration {
    let r = |p: &str| h.path(p).display().to_string();
    let mut cmd = Command::new("update-ca-certificates");
    if fresh {
        cmd.arg("--fresh");
    }
    cmd.args(["--certsconf", &r("etc/ca-certificates.conf")])
        .args(["--certsdir", &r("usr/share/ca-certificates")])
        .args(["--localcertsdir", &r("usr/local/share/ca-certificates")])
        .args(["--etccertsdir", &r("etc/ssl/certs")])
        .args(["--hooksdir", &r("etc/ca-certificates/update.d")]);
    let t0 = Instant::now();
    assert!(run(&mut cmd).status.success());
    t0.elapsed()
}

fn proc_field(pid: u32, task: Option<&str>, field: &str) -> u64 {
    let path = match task {
        Some(t) => format!("/proc/{pid}/task/{t}/status"),
        None => format!("/proc/{pid}/status"),
    };
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix(field)
                .map(|v| v.trim().trim_end_matches(" kB").trim().parse().unwrap_or(0))
        })
        .unwrap_or(0)
}

/// Context switches of every thread of `pid`.
fn switches(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
        .map(|t| {
            let t = t.file_name().to_string_lossy().into_owned();
            proc_field(pid, Some(&t), "voluntary_ctxt_switches:")
                + proc_field(pid, Some(&t), "nonvoluntary_ctxt_switches:")
        })
        .sum()
}

fn main() {
    let h = TestHost::debian();
    let mozilla = Path::new("/usr/share/ca-certificates/mozilla");
    let mut conf = String::from_utf8(h.read("etc/ca-certificates.conf")).unwrap();
    let mut n = 0;
    for e in std::fs::read_dir(mozilla)
        .expect("the ca-certificates package's Mozilla set")
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        h.write(
            &format!("usr/share/ca-certificates/mozilla/{name}"),
            std::fs::read(e.path()).unwrap(),
        );
        conf.push_str(&format!("mozilla/{name}\n"));
        n += 1;
    }
    h.write("etc/ca-certificates.conf", conf);
    h.refresh();
    println!("host root: Debian layout with {n} Mozilla CAs");

    let pki = tempfile::tempdir().unwrap();
    let (a, b) = (
        make_ca(pki.path(), "corp-a", 30),
        make_ca(pki.path(), "corp-b", 30),
    );
    let (v1, _) = bundle(
        &[Ca {
            name: "corp-a",
            cert: &a,
            registries: &[],
        }],
        &[],
        ContainerdPolicy::None,
    );
    let (v2, h2) = bundle(
        &[
            Ca {
                name: "corp-a",
                cert: &a,
                registries: &[],
            },
            Ca {
                name: "corp-b",
                cert: &b,
                registries: &[],
            },
        ],
        &[],
        ContainerdPolicy::None,
    );
    let h1 = bundle(
        &[Ca {
            name: "corp-a",
            cert: &a,
            registries: &[],
        }],
        &[],
        ContainerdPolicy::None,
    )
    .1;
    let vols = tempfile::tempdir().unwrap();
    let vol = SecretVolume::new(&vols.path().join("bundle"));
    vol.write(&v1);
    let flags = host_flags(h.root(), &vol.dir);
    let agent = RunningAgent::start(&flags, &["--resync", "1h"]);
    agent.wait_readyz(200, Duration::from_secs(30));

    let state = h.path("var/lib/catrust/state.json");
    let swap = |files: &std::collections::BTreeMap<String, Vec<u8>>, hash: &str| {
        let t0 = Instant::now();
        vol.write(files);
        loop {
            if std::fs::read_to_string(&state)
                .unwrap_or_default()
                .contains(&format!("\"bundleSha256\": \"{hash}\""))
            {
                return t0.elapsed();
            }
            assert!(t0.elapsed() < Duration::from_secs(30));
            std::thread::sleep(Duration::from_millis(2));
        }
    };
    let (mut add, mut remove, mut bare_add, mut bare_fresh) = (vec![], vec![], vec![], vec![]);
    for _ in 0..5 {
        add.push(swap(&v2, &h2));
        remove.push(swap(&v1, &h1));
        // The same root, the same run, the same change made by hand: one more local CA
        // (refresh), then that CA gone (refresh --fresh).
        h.write("usr/local/share/ca-certificates/bench/corp-b.crt", b.pem());
        bare_add.push(bare_refresh(&h, false));
        std::fs::remove_dir_all(h.path("usr/local/share/ca-certificates/bench")).unwrap();
        bare_fresh.push(bare_refresh(&h, true));
    }
    let (add, remove, bare_add, bare_fresh) = (
        median(add),
        median(remove),
        median(bare_add),
        median(bare_fresh),
    );
    let ratio = |agent: Duration, bare: Duration| {
        format!(
            "{:.2}x; goal <= 1.1x + 100 ms = {:?}",
            agent.as_secs_f64() / bare.as_secs_f64(),
            bare.mul_f64(1.1) + Duration::from_millis(100)
        )
    };
    println!(
        "swap -> installed, CA added:   {add:?} (bare update-ca-certificates: {bare_add:?}; {})",
        ratio(add, bare_add)
    );
    println!("swap -> installed, CA removed: {remove:?} (bare update-ca-certificates --fresh: {bare_fresh:?}; {})", ratio(remove, bare_fresh));

    std::thread::sleep(Duration::from_secs(1));
    let pid = agent.pid();
    let rss = proc_field(pid, None, "VmRSS:");
    let s0 = switches(pid);
    std::thread::sleep(Duration::from_secs(10));
    let s1 = switches(pid);
    let threads = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .count();
    println!(
        "idle RSS of run: {rss} kB ({:.1} MiB), {threads} threads",
        rss as f64 / 1024.0
    );
    println!("idle context switches over 10 s (all threads): {}", s1 - s0);
}
