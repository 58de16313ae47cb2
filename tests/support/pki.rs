//! Test certificates made with the real `openssl` command line.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{require_tool, run};

/// A certificate and its key on disk.
#[derive(Debug, Clone)]
pub struct Issued {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Issued {
    /// The certificate's PEM text.
    pub fn pem(&self) -> String {
        std::fs::read_to_string(&self.cert).expect("read certificate")
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let tool = require_tool("openssl", "openssl");
    let out = run(Command::new(tool).args(args).current_dir(dir));
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A self-signed CA (EC P-256, CA:TRUE, keyCertSign) valid for `days` days, written as
/// `<dir>/<name>.pem` and `<dir>/<name>.key`.
pub fn make_ca(dir: &Path, name: &str, days: u32) -> Issued {
    let cert = dir.join(format!("{name}.pem"));
    let key = dir.join(format!("{name}.key"));
    req_new_p256(
        dir,
        &key,
        &[
            "-x509",
            "-out",
            cert.to_str().unwrap(),
            "-days",
            &days.to_string(),
            "-subj",
            &format!("/O=catrust tests/CN={name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    Issued { cert, key }
}

/// `openssl req` with a new unencrypted P-256 key written to `key`.
fn req_new_p256(dir: &Path, key: &Path, args: &[&str]) {
    let key = key.to_str().expect("test paths are UTF-8");
    let mut all = vec![
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
    ];
    all.extend(["-nodes", "-keyout", key]);
    all.extend_from_slice(args);
    openssl(dir, &all);
}

/// A TLS server certificate for `127.0.0.1` and `localhost`, signed by `ca`.
pub fn make_server_cert(dir: &Path, name: &str, ca: &Issued) -> Issued {
    let cert = dir.join(format!("{name}.pem"));
    let key = dir.join(format!("{name}.key"));
    let csr = dir.join(format!("{name}.csr"));
    let ext = dir.join(format!("{name}.ext"));
    std::fs::write(
        &ext,
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .expect("write extension file");
    req_new_p256(
        dir,
        &key,
        &["-out", csr.to_str().unwrap(), "-subj", "/CN=127.0.0.1"],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            csr.to_str().unwrap(),
            "-CA",
            ca.cert.to_str().unwrap(),
            "-CAkey",
            ca.key.to_str().unwrap(),
            "-CAcreateserial",
            "-out",
            cert.to_str().unwrap(),
            "-days",
            "30",
            "-extfile",
            ext.to_str().unwrap(),
        ],
    );
    Issued { cert, key }
}

/// The DER of a PEM certificate file, through `openssl x509 -outform DER`.
pub fn der_of(cert: &Path) -> Vec<u8> {
    let tool = require_tool("openssl", "openssl");
    let out = run(Command::new(tool)
        .args(["x509", "-outform", "DER", "-in"])
        .arg(cert));
    assert!(out.status.success(), "openssl x509 failed");
    out.stdout
}
