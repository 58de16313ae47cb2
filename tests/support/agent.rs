//! Driving the real `catrust-agent`: bundles sealed with the shared contract crate,
//! the binary's commands, its HTTP endpoints, and the TLS check that decides whether
//! a host root trusts a CA (`openssl s_server` + `curl --cacert`).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use catrust_bundle::{
    Authority, BundleContent, ContainerdPolicy, Distrusted, Manifest, SCHEMA_VERSION,
};

use crate::pki::{der_of, Issued};
use crate::{bin, isolate_tls_env, require_tool, run};

/// One authority of a test bundle.
pub struct Ca<'a> {
    pub name: &'a str,
    pub cert: &'a Issued,
    pub registries: &'a [&'a str],
}

/// The files of a sealed bundle (key → bytes) and its hash.
pub fn bundle(
    cas: &[Ca],
    distrust: &[String],
    policy: ContainerdPolicy,
) -> (BTreeMap<String, Vec<u8>>, String) {
    let mut files = BTreeMap::new();
    let mut authorities = Vec::new();
    for ca in cas {
        let der = der_of(&ca.cert.cert);
        files.insert(
            format!("{}.crt", ca.name),
            catrust_bundle::encode_pem(&der).into_bytes(),
        );
        authorities.push(Authority {
            name: ca.name.into(),
            sha256: catrust_bundle::sha256_hex(&der),
            registries: ca.registries.iter().map(|s| s.parse().unwrap()).collect(),
            pools: vec![],
        });
    }
    let manifest = Manifest::seal(BundleContent {
        schema_version: SCHEMA_VERSION,
        config_name: "corp".into(),
        authorities,
        distrust: distrust
            .iter()
            .map(|s| Distrusted {
                sha256: s.clone(),
                reason: Some("compromised".into()),
            })
            .collect(),
        containerd: policy,
    });
    files.insert(
        catrust_bundle::MANIFEST_KEY.into(),
        manifest.to_json().into_bytes(),
    );
    (files, manifest.bundle_sha256)
}

/// The bundle `files` with its manifest edited by `edit` (as JSON, so it can hold what
/// the contract types refuse) and sealed again with the right hash: what a compiler
/// with a weaker validation would have produced.
pub fn reseal(
    files: &BTreeMap<String, Vec<u8>>,
    edit: impl FnOnce(&mut serde_json::Value),
) -> BTreeMap<String, Vec<u8>> {
    let key = catrust_bundle::MANIFEST_KEY;
    let mut m: serde_json::Value = serde_json::from_slice(&files[key]).unwrap();
    edit(&mut m);
    let obj = m.as_object_mut().unwrap();
    obj.remove("bundleSha256");
    // The hash is over the content's canonical JSON, in field order (serde_json keeps
    // the order of the parsed document).
    let hash = catrust_bundle::sha256_hex(&serde_json::to_vec(&m).unwrap());
    m["bundleSha256"] = serde_json::json!(hash);
    let mut out = files.clone();
    out.insert(key.into(), serde_json::to_vec_pretty(&m).unwrap());
    out
}

/// SHA-256 fingerprint of a test certificate.
pub fn fingerprint(cert: &Issued) -> String {
    catrust_bundle::sha256_hex(&der_of(&cert.cert))
}

/// `catrust-agent ARGS…`.
pub fn agent(args: &[&str]) -> Output {
    run(Command::new(bin("catrust-agent"))
        .args(args)
        .env_remove("CATRUST_EXPECTED_SHA256"))
}

/// The common flags of `apply --once` / `run` against a throwaway root.
pub fn host_flags(root: &Path, bundle_dir: &Path) -> Vec<String> {
    vec![
        "--bundle-dir".into(),
        bundle_dir.display().to_string(),
        "--host-root".into(),
        root.display().to_string(),
        "--host-exec".into(),
        "direct".into(),
        "--containerd-restart-command".into(),
        format!(
            "echo restarted >> {}",
            root.join(crate::host::RESTART_LOG).display()
        ),
    ]
}

/// `status --format json` of a root.
pub fn status(root: &Path, bundle_dir: Option<&Path>) -> serde_json::Value {
    let mut args = vec![
        "status".to_string(),
        "--format".into(),
        "json".into(),
        "--host-root".into(),
    ];
    args.push(root.display().to_string());
    if let Some(b) = bundle_dir {
        args.push("--bundle-dir".into());
        args.push(b.display().to_string());
    }
    let out = agent(&args.iter().map(String::as_str).collect::<Vec<_>>());
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "status is not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// A free port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process killed when dropped (even when the test panics).
pub struct Killed(pub Child);

impl Killed {
    /// Starts `cmd` with no input, output discarded and stderr to `stderr`.
    fn start(cmd: &mut Command, stderr: Stdio, what: &str) -> Killed {
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("start {what}: {e}"));
        Killed(child)
    }
}

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `openssl s_server` on 127.0.0.1 presenting `leaf`.
pub struct TlsServer {
    pub port: u16,
    _child: Killed,
}

impl TlsServer {
    pub fn start(leaf: &Issued) -> Self {
        let openssl = require_tool("openssl", "openssl");
        let port = free_port();
        let mut command = Command::new(openssl);
        command
            .args(["s_server", "-quiet", "-www", "-accept"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("-cert")
            .arg(&leaf.cert)
            .arg("-key")
            .arg(&leaf.key);
        let server = TlsServer {
            port,
            _child: Killed::start(&mut command, Stdio::null(), "openssl s_server"),
        };
        crate::wait_until("openssl s_server listening", Duration::from_secs(5), || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        server
    }

    /// Does `curl --cacert BUNDLE` accept this server? Only the given bundle counts:
    /// the machine's SSL_CERT_* / CURL_CA_BUNDLE are removed.
    pub fn trusted_by(&self, bundle: &Path) -> bool {
        let curl = require_tool("curl", "curl");
        let mut cmd = Command::new(curl);
        isolate_tls_env(&mut cmd)
            .args(["-sS", "-o", "/dev/null", "--max-time", "5", "--cacert"])
            .arg(bundle)
            .arg(format!("https://127.0.0.1:{}/", self.port));
        run(&mut cmd).status.success()
    }
}

/// A running `catrust-agent run`, killed on drop.
pub struct RunningAgent {
    pub port: u16,
    pub child: Killed,
}

impl RunningAgent {
    pub fn start(flags: &[String], extra: &[&str]) -> Self {
        Self::start_logging(flags, extra, None)
    }

    /// [`RunningAgent::start`], with the agent's stderr (its log) appended to `log`.
    pub fn start_logging(flags: &[String], extra: &[&str], log: Option<&Path>) -> Self {
        let stderr = match log {
            Some(path) => Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .expect("open the agent log"),
            ),
            None => Stdio::null(),
        };
        let port = free_port();
        let mut command = Command::new(bin("catrust-agent"));
        command
            .arg("run")
            .args(flags)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(extra)
            .env_remove("CATRUST_EXPECTED_SHA256");
        let agent = RunningAgent {
            port,
            child: Killed::start(&mut command, stderr, "catrust-agent run"),
        };
        crate::wait_until("catrust-agent run serving", Duration::from_secs(10), || {
            agent.get("/healthz").is_some()
        });
        agent
    }

    pub fn pid(&self) -> u32 {
        self.child.0.id()
    }

    /// GET path → (status code, body).
    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let mut resp = String::new();
        s.read_to_string(&mut resp).ok()?;
        let code = resp.split_whitespace().nth(1)?.parse().ok()?;
        let body = resp
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        Some((code, body))
    }

    /// Polls `/readyz` until `want` (200 or 503) after its first apply; returns the body.
    pub fn wait_readyz(&self, want: u16, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            if let Some((code, body)) = self.get("/readyz") {
                if code == want && !body.contains("no apply yet") {
                    return body;
                }
            }
            assert!(Instant::now() < deadline, "/readyz never answered {want}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
