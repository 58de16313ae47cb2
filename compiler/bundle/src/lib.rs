//! The bundle contract: the only thing the compiler and the node agent share.
//!
//! The compiler renders a bundle (an immutable Secret with one `<name>.crt` key per
//! authority plus `bundle.json`); the agent reads it back from a Secret volume. Both
//! sides call the functions here, so the two can never disagree about:
//!
//! - the canonical PEM encoding of a certificate ([`encode_pem`]): 64-column base64,
//!   LF line ends, nothing outside the block;
//! - the fingerprint of a certificate ([`sha256_hex`], lowercase hex of the DER);
//! - the bundle hash ([`bundle_sha256`]), which names the Secret, annotates the
//!   DaemonSet pod template and is what the agent's readiness is measured against;
//! - the verification of a bundle read from disk ([`verify`]);
//! - the DaemonSet → agent interface: flags, environment, port ([`agent_interface`]).
//! - the duration grammar of trust.yaml and the agent's flags ([`duration`]).
//! - what a registry host is ([`RegistryHost`]: the compiler's lint and the agent's
//!   `bundle.json` use the same validation).
//!
//! This crate deliberately depends only on serde (+ serde_json), sha2, hex, base64 and
//! thiserror: the agent must stay a small static binary that links no git, templating,
//! X.509 or lint code.
#![forbid(unsafe_code)]

pub mod agent_interface;
pub mod duration;

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

mod registry;
pub use registry::{Excerpt, RegistryHost, RegistryHostError};

/// Version of the `bundle.json` schema. Bump on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// Name of the manifest key inside the bundle Secret.
pub const MANIFEST_KEY: &str = "bundle.json";

/// Extension of every certificate key inside the bundle Secret.
pub const CERT_SUFFIX: &str = ".crt";

/// What containerd should do when the node's system trust store changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum ContainerdPolicy {
    /// Restart containerd when the system store changed (and on distrust).
    #[default]
    Restart,
    /// Only write `certs.d/<host>/hosts.toml`; restart only on distrust.
    RegistriesOnly,
    /// Never restart; warn that a running containerd keeps its old roots.
    None,
}

impl ContainerdPolicy {
    /// The spelling used in trust.yaml, bundle.json and on the agent's command line.
    pub fn as_str(self) -> &'static str {
        match self {
            ContainerdPolicy::Restart => "restart",
            ContainerdPolicy::RegistriesOnly => "registries-only",
            ContainerdPolicy::None => "none",
        }
    }

    /// Every policy, in the order help texts list them.
    pub const ALL: [ContainerdPolicy; 3] = [
        ContainerdPolicy::Restart,
        ContainerdPolicy::RegistriesOnly,
        ContainerdPolicy::None,
    ];

    /// Parses the trust.yaml / command-line spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// One trusted certificate of the bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Authority {
    /// DNS label; the Secret key is `<name>.crt`.
    pub name: String,
    /// Lowercase hex SHA-256 of the certificate's DER.
    pub sha256: String,
    /// containerd registry hosts (`host[:port]`, `[IPv6]:port`) that get this CA in
    /// `certs.d`; a bundle.json with an invalid one does not parse.
    #[serde(default)]
    pub registries: Vec<RegistryHost>,
    /// Node pools this CA is for; empty means every pool.
    #[serde(default)]
    pub pools: Vec<String>,
}

/// A certificate to remove from the node's trust store at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Distrusted {
    /// Lowercase hex SHA-256 of the DER.
    pub sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Everything the bundle hash covers: `bundle.json` without the hash itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BundleContent {
    pub schema_version: u32,
    /// `metadata.name` of the trust.yaml the bundle came from.
    pub config_name: String,
    /// In trust.yaml order.
    pub authorities: Vec<Authority>,
    #[serde(default)]
    pub distrust: Vec<Distrusted>,
    pub containerd: ContainerdPolicy,
}

/// The `bundle.json` document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    #[serde(flatten)]
    pub content: BundleContent,
    pub bundle_sha256: String,
}

impl Manifest {
    /// Seals `content` with its hash.
    pub fn seal(content: BundleContent) -> Self {
        let bundle_sha256 = bundle_sha256(&content);
        Manifest {
            content,
            bundle_sha256,
        }
    }

    /// The canonical `bundle.json` bytes (pretty JSON, trailing LF).
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("bundle manifest serialises");
        s.push('\n');
        s
    }

    /// First 10 hex digits of the bundle hash, used in the Secret's name.
    pub fn short_hash(&self) -> &str {
        &self.bundle_sha256[..10]
    }
}

/// The one function that computes the bundle hash: SHA-256 over the canonical JSON of
/// the content. Certificates enter through their DER fingerprints, and [`verify`]
/// checks every `.crt` file against its fingerprint, so the hash covers every byte
/// the agent installs.
pub fn bundle_sha256(content: &BundleContent) -> String {
    let canonical = serde_json::to_vec(content).expect("bundle content serialises");
    sha256_hex(&canonical)
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Normalises a fingerprint as users write them: colons, spaces and case ignored.
/// Returns `None` unless the result is 64 hex digits.
pub fn normalize_fingerprint(s: &str) -> Option<String> {
    let hex: String = s
        .chars()
        .filter(|c| !matches!(c, ':' | ' ' | '\t'))
        .map(|c| c.to_ascii_lowercase())
        .collect();
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then_some(hex)
}

/// The canonical PEM encoding of one certificate: 64-column base64 of the DER,
/// `\n` line ends, nothing before or after the block.
pub fn encode_pem(der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::with_capacity(b64.len() + b64.len() / 64 + 64);
    out.push_str("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// Decodes a file that must be exactly one canonical PEM certificate block, as
/// [`encode_pem`] writes it. Returns the DER.
pub fn decode_canonical_pem(text: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(text).ok()?;
    let body = text
        .strip_prefix("-----BEGIN CERTIFICATE-----\n")?
        .strip_suffix("-----END CERTIFICATE-----\n")?;
    let b64: String = body.lines().collect();
    let der = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    (encode_pem(&der) == text).then_some(der)
}

/// Is `name` a DNS label (RFC 1123: lowercase alphanumerics and `-`, 1..=63 chars,
/// starting and ending alphanumeric)? Authority names become file and key names, so
/// this also rules out path separators and `..`.
pub fn is_dns_label(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// Why a bundle read from disk was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    #[error("bundle.json is missing")]
    MissingManifest,
    #[error("bundle.json is not valid: {0}")]
    BadManifest(String),
    #[error("bundle.json has schema version {0}, this agent understands {SCHEMA_VERSION}")]
    SchemaVersion(u32),
    #[error("bundle.json names {0:?}, which is not a DNS label")]
    BadName(String),
    #[error("bundle.json says its hash is {claimed}, its content hashes to {actual}")]
    HashMismatch { claimed: String, actual: String },
    #[error("bundle hash is {actual}, the expected one is {expected}")]
    NotExpected { expected: String, actual: String },
    #[error("the bundle has no file {0}")]
    MissingFile(String),
    #[error("the bundle holds {0}, which bundle.json does not name")]
    UnexpectedFile(String),
    #[error("{0} is not one canonical PEM certificate")]
    NotCanonicalPem(String),
    #[error("{file}: SHA-256 is {actual}, bundle.json says {claimed}")]
    FingerprintMismatch {
        file: String,
        claimed: String,
        actual: String,
    },
    #[error("bundle.json names the authority {0} twice")]
    DuplicateName(String),
}

/// A bundle whose every file matched its manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedBundle {
    pub manifest: Manifest,
    /// Canonical PEM per authority name, in manifest order.
    pub certificates: Vec<(String, Vec<u8>)>,
}

/// Verifies the files of a bundle (key → bytes, as read from the Secret volume):
/// the manifest parses and its hash is right, it equals `expected` when given, every
/// authority has exactly one canonical PEM file whose DER matches its fingerprint,
/// and there are no other keys.
pub fn verify(
    files: &BTreeMap<String, Vec<u8>>,
    expected: Option<&str>,
) -> Result<VerifiedBundle, VerifyError> {
    let raw = files
        .get(MANIFEST_KEY)
        .ok_or(VerifyError::MissingManifest)?;
    let manifest: Manifest =
        serde_json::from_slice(raw).map_err(|e| VerifyError::BadManifest(e.to_string()))?;
    if manifest.content.schema_version != SCHEMA_VERSION {
        return Err(VerifyError::SchemaVersion(manifest.content.schema_version));
    }
    let actual = bundle_sha256(&manifest.content);
    if actual != manifest.bundle_sha256 {
        return Err(VerifyError::HashMismatch {
            claimed: manifest.bundle_sha256.clone(),
            actual,
        });
    }
    if let Some(expected) = expected {
        let expected = expected.trim().to_ascii_lowercase();
        if expected != actual {
            return Err(VerifyError::NotExpected { expected, actual });
        }
    }
    let mut certificates = Vec::with_capacity(manifest.content.authorities.len());
    let mut seen = std::collections::BTreeSet::new();
    for authority in &manifest.content.authorities {
        if !is_dns_label(&authority.name) {
            return Err(VerifyError::BadName(authority.name.clone()));
        }
        if !seen.insert(authority.name.as_str()) {
            return Err(VerifyError::DuplicateName(authority.name.clone()));
        }
        let key = format!("{}{CERT_SUFFIX}", authority.name);
        let bytes = files
            .get(&key)
            .ok_or_else(|| VerifyError::MissingFile(key.clone()))?;
        let der =
            decode_canonical_pem(bytes).ok_or_else(|| VerifyError::NotCanonicalPem(key.clone()))?;
        let fingerprint = sha256_hex(&der);
        if fingerprint != authority.sha256 {
            return Err(VerifyError::FingerprintMismatch {
                file: key,
                claimed: authority.sha256.clone(),
                actual: fingerprint,
            });
        }
        certificates.push((authority.name.clone(), bytes.clone()));
    }
    for key in files.keys() {
        let named = key == MANIFEST_KEY
            || key
                .strip_suffix(CERT_SUFFIX)
                .is_some_and(|n| seen.contains(n));
        if !named {
            return Err(VerifyError::UnexpectedFile(key.clone()));
        }
    }
    Ok(VerifiedBundle {
        manifest,
        certificates,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (BTreeMap<String, Vec<u8>>, Manifest) {
        let der = b"not really DER but bytes all the same".to_vec();
        let content = BundleContent {
            schema_version: SCHEMA_VERSION,
            config_name: "corp".into(),
            authorities: vec![Authority {
                name: "root-a".into(),
                sha256: sha256_hex(&der),
                registries: vec!["registry.example:5000".parse().unwrap()],
                pools: vec![],
            }],
            distrust: vec![],
            containerd: ContainerdPolicy::Restart,
        };
        let manifest = Manifest::seal(content);
        let mut files = BTreeMap::new();
        files.insert("root-a.crt".into(), encode_pem(&der).into_bytes());
        files.insert(MANIFEST_KEY.into(), manifest.to_json().into_bytes());
        (files, manifest)
    }

    #[test]
    fn a_sealed_bundle_verifies_against_its_own_hash() {
        let (files, manifest) = sample();
        let verified = verify(&files, Some(&manifest.bundle_sha256)).unwrap();
        assert_eq!(verified.certificates.len(), 1);
    }

    #[test]
    fn tampering_is_refused() {
        let (mut files, manifest) = sample();
        let json = String::from_utf8(files[MANIFEST_KEY].clone()).unwrap();
        files.insert(
            MANIFEST_KEY.into(),
            json.replace("registry.example:5000", "evil:5000")
                .into_bytes(),
        );
        assert!(matches!(
            verify(&files, None),
            Err(VerifyError::HashMismatch { .. })
        ));
        let (mut files, _) = sample();
        files.insert("../x".into(), b"x".to_vec());
        assert_eq!(
            verify(&files, None),
            Err(VerifyError::UnexpectedFile("../x".into()))
        );
        let (files, _) = sample();
        assert!(matches!(
            verify(&files, Some(&"0".repeat(64))),
            Err(VerifyError::NotExpected { .. })
        ));
        let _ = manifest;
    }

    #[test]
    fn pem_is_canonical_and_round_trips() {
        let der: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let pem = encode_pem(&der);
        assert!(pem.lines().all(|l| l.len() <= 64 || l.starts_with("-----")));
        assert_eq!(decode_canonical_pem(pem.as_bytes()), Some(der));
        assert_eq!(
            decode_canonical_pem(pem.replace('\n', "\r\n").as_bytes()),
            None
        );
    }

    #[test]
    fn fingerprints_ignore_colons_and_case() {
        let hex = "AB:".repeat(31) + "AB";
        assert_eq!(normalize_fingerprint(&hex), Some("ab".repeat(32)));
        assert_eq!(normalize_fingerprint("abc"), None);
    }

    #[test]
    fn dns_labels() {
        assert!(is_dns_label("corp-root-2024"));
        for bad in ["", "-a", "a-", "A", "a/b", "..", "a.b", &"a".repeat(64)] {
            assert!(!is_dns_label(bad), "{bad}");
        }
    }
}
