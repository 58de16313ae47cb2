//! What a Debian test node must hold once the agent has converged, checked from the
//! disk alone: the agent's anchors folder holds exactly the bundle's certificates (byte
//! for byte), the generated bundle holds exactly those plus the node's foreign CAs, and
//! no temp file of an interrupted write is left anywhere under the root.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use base64::Engine as _;

use crate::host::TestHost;

/// The Debian folder the agent owns.
pub const DEBIAN_AGENT_ANCHORS: &str = "usr/local/share/ca-certificates/catrust";

/// SHA-256 fingerprints of every certificate in a PEM file.
pub fn pem_fingerprints(bytes: &[u8]) -> BTreeSet<String> {
    let text = String::from_utf8_lossy(bytes);
    let mut out = BTreeSet::new();
    let mut b64: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if line == "-----BEGIN CERTIFICATE-----" {
            b64 = Some(String::new());
        } else if line == "-----END CERTIFICATE-----" {
            if let Some(body) = b64.take() {
                if let Ok(der) = base64::engine::general_purpose::STANDARD.decode(body) {
                    out.insert(catrust_bundle::sha256_hex(&der));
                }
            }
        } else if let Some(body) = b64.as_mut() {
            body.push_str(line);
        }
    }
    out
}

/// Every temp file an interrupted atomic write can leave (`.<name>.catrust-tmp.<pid>`)
/// under `root`, as paths relative to it.
pub fn orphan_temps(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if name.contains(".catrust-tmp.") {
                out.push(p.strip_prefix(root).unwrap().display().to_string());
            }
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Checks a converged Debian node: `bundle` is the sealed bundle's files (key → bytes),
/// `foreign` the fingerprints of CAs the node trusts through files not the agent's.
pub fn check_debian_node(
    h: &TestHost,
    bundle: &BTreeMap<String, Vec<u8>>,
    foreign: &BTreeSet<String>,
) -> Result<(), String> {
    let want: BTreeMap<String, Vec<u8>> = bundle
        .iter()
        .filter(|(k, _)| k.ends_with(".crt"))
        // The agent's Debian anchors are catrust-<key> (no basename collision).
        .map(|(k, v)| (format!("catrust-{k}"), v.clone()))
        .collect();
    let mut have = BTreeMap::new();
    for e in std::fs::read_dir(h.path(DEBIAN_AGENT_ANCHORS))
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        have.insert(name, std::fs::read(e.path()).unwrap_or_default());
    }
    if have != want {
        return Err(format!(
            "{DEBIAN_AGENT_ANCHORS} holds {:?}, expected {:?} (or different bytes)",
            have.keys().collect::<Vec<_>>(),
            want.keys().collect::<Vec<_>>()
        ));
    }
    let mut expected: BTreeSet<String> = want
        .values()
        .flat_map(|pem| pem_fingerprints(pem))
        .collect();
    expected.extend(foreign.iter().cloned());
    let generated = pem_fingerprints(&std::fs::read(h.generated_bundle()).unwrap_or_default());
    if generated != expected {
        return Err(format!(
            "the generated bundle holds {} CAs, expected {}: missing {:?}, extra {:?}",
            generated.len(),
            expected.len(),
            expected.difference(&generated).collect::<Vec<_>>(),
            generated.difference(&expected).collect::<Vec<_>>()
        ));
    }
    let temps = orphan_temps(h.root());
    if !temps.is_empty() {
        return Err(format!("orphan temp files: {temps:?}"));
    }
    Ok(())
}
