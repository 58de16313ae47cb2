//! `/healthz`, `/readyz`, `/metrics` on a tiny blocking HTTP/1.0 responder (std only:
//! one thread blocked in accept, so it costs nothing while idle). It only reads the
//! shared status; it never triggers work.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::engine::Report;

type Labels = Vec<(String, String)>;

/// The agent's metrics.
pub struct Metrics {
    registry: Registry,
    applies: Counter,
    failures: Counter,
    refused: Counter,
    ready: Gauge,
    bundle: Family<Labels, Gauge>,
    not_after: Family<Labels, Gauge>,
}

/// Name and help text of each metric, in the order they are registered.
const METRIC_HELP: [(&str, &str); 6] = [
    ("applies", "Applies of the bundle (including no-op resyncs)"),
    ("apply_failures", "Applies that failed or were refused"),
    ("refused", "Bundles refused (verification, planted files)"),
    ("ready", "1 when the expected bundle is installed"),
    (
        "installed_bundle",
        "The installed bundle (value 1, hash in a label)",
    ),
    (
        "ca_not_after_seconds",
        "notAfter of each installed CA, Unix seconds",
    ),
];

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("catrust_agent");
        let m = Metrics {
            applies: Counter::default(),
            failures: Counter::default(),
            refused: Counter::default(),
            ready: Gauge::default(),
            bundle: Family::default(),
            not_after: Family::default(),
            registry: Registry::default(),
        };
        let [applies, failures, refused, ready, bundle, not_after] = METRIC_HELP;
        registry.register(applies.0, applies.1, m.applies.clone());
        registry.register(failures.0, failures.1, m.failures.clone());
        registry.register(refused.0, refused.1, m.refused.clone());
        registry.register(ready.0, ready.1, m.ready.clone());
        registry.register(bundle.0, bundle.1, m.bundle.clone());
        registry.register(not_after.0, not_after.1, m.not_after.clone());
        Metrics { registry, ..m }
    }
}

impl Metrics {
    pub fn observe(&self, r: &Report) {
        self.applies.inc();
        if !r.outcome.ready {
            self.failures.inc();
        }
        if r.refused() {
            self.refused.inc();
        }
        self.ready.set(i64::from(r.outcome.ready));
        self.bundle.clear();
        if let Some(h) = &r.outcome.installed_sha256 {
            self.bundle
                .get_or_create(&vec![("sha256".into(), h.clone())])
                .set(1);
        }
        if r.outcome.ready {
            self.not_after.clear();
            for (name, sha, na) in &r.not_after {
                self.not_after
                    .get_or_create(&vec![
                        ("name".into(), name.clone()),
                        ("sha256".into(), sha.clone()),
                    ])
                    .set(*na);
            }
        }
    }

    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = encode(&mut s, &self.registry);
        s
    }
}

/// What the endpoints report.
#[derive(Default)]
pub struct Shared {
    pub ready: bool,
    pub reason: Option<String>,
    /// The last apply's warnings (e.g. containerd reads no certs.d), one line each in
    /// the `/readyz` body, ready or not.
    pub warnings: Vec<String>,
    pub metrics: Metrics,
}

/// The `/readyz` status code and body. Pure.
fn readyz(s: &Shared) -> (u16, String) {
    let mut body = if s.ready {
        "ready\n".to_string()
    } else {
        format!(
            "not ready: {}\n",
            s.reason.as_deref().unwrap_or("no apply yet")
        )
    };
    for w in &s.warnings {
        body.push_str(&format!("warning: {w}\n"));
    }
    (if s.ready { 200 } else { 503 }, body)
}

pub fn serve(listener: TcpListener, shared: Arc<Mutex<Shared>>) {
    for stream in listener.incoming().flatten() {
        let _ = respond(stream, &shared);
    }
}

fn respond(mut stream: TcpStream, shared: &Mutex<Shared>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.set_write_timeout(Some(Duration::from_secs(2)))?;
    let mut buf = [0u8; 2048];
    let mut len = 0;
    while len < buf.len() {
        let n = stream.read(&mut buf[len..])?;
        if n == 0 {
            break;
        }
        len += n;
        if buf[..len].windows(4).any(|w| w == b"\r\n\r\n")
            || buf[..len].windows(2).any(|w| w == b"\n\n")
        {
            break;
        }
    }
    let head = String::from_utf8_lossy(&buf[..len]);
    let mut parts = head.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = path.split('?').next().unwrap_or("");
    let (code, ctype, body) = {
        let s = shared.lock().unwrap_or_else(|p| p.into_inner());
        match (method, path) {
            ("GET" | "HEAD", "/healthz") => (200, "text/plain", "ok\n".to_string()),
            ("GET" | "HEAD", "/readyz") => {
                let (code, body) = readyz(&s);
                (code, "text/plain", body)
            }
            ("GET" | "HEAD", "/metrics") => (
                200,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                s.metrics.render(),
            ),
            ("GET" | "HEAD", _) => (404, "text/plain", "not found\n".to_string()),
            _ => (405, "text/plain", "method not allowed\n".to_string()),
        }
    };
    let status = match code {
        200 => "OK",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Service Unavailable",
    };
    let body = if method == "HEAD" {
        String::new()
    } else {
        body
    };
    write!(
        stream,
        "HTTP/1.1 {code} {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}

#[cfg(test)]
mod readyz_tests {
    use super::*;

    #[test]
    fn readyz_names_the_warnings_ready_or_not() {
        let mut s = Shared {
            ready: true,
            warnings: vec!["containerd reads no certs.d".into()],
            ..Shared::default()
        };
        assert_eq!(
            readyz(&s),
            (200, "ready\nwarning: containerd reads no certs.d\n".into())
        );
        s.ready = false;
        s.reason = Some("refresh failed".into());
        assert_eq!(readyz(&s).0, 503);
        assert!(readyz(&s).1.starts_with("not ready: refresh failed\n"));
    }
}
