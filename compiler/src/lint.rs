//! Rules over a loaded configuration. Pure: the clock is a parameter.

use std::collections::BTreeMap;

use crate::config::TrustConfig;
use crate::diag::{self, Diagnostic};
use crate::load::{Certificate, Loaded};
use crate::rules::Code;
use crate::span::Span;

mod aks;
mod platforms;
pub use aks::AKS_MAX_CERTIFICATES;
pub use platforms::{is_config_map_key, is_dns_subdomain};

/// Every finding of `loaded` at time `now` (unix seconds), sorted.
pub fn lint(loaded: &Loaded, now: i64) -> Vec<Diagnostic> {
    let mut out = loaded.diagnostics.clone();
    if let Some(config) = &loaded.config {
        let file = loaded.config_file.as_str();
        names(config, loaded, file, &mut out);
        pools(config, file, &mut out);
        pins(config, loaded, file, &mut out);
        certificates(config, loaded, now, &mut out);
        distrust(config, loaded, file, &mut out);
        registries(config, file, &mut out);
        aks::lint(config, loaded, file, &mut out);
        platforms::lint(config, loaded, file, &mut out);
    }
    diag::sort(&mut out);
    out
}

/// A finding about `span` of `file`, with its own help line.
fn finding(
    code: Code,
    file: &str,
    span: Span,
    message: impl Into<String>,
    help: impl Into<String>,
) -> Diagnostic {
    Diagnostic::new(code, message)
        .at(file, span)
        .with_help(help)
}

fn names(config: &TrustConfig, loaded: &Loaded, file: &str, out: &mut Vec<Diagnostic>) {
    let mut seen: BTreeMap<&str, ()> = BTreeMap::new();
    for a in &config.authorities {
        let name = &a.name;
        if !catrust_bundle::is_dns_label(&name.value) {
            out.push(finding(
                Code::Ct004,
                file,
                name.span,
                format!("authority name `{}` is not a DNS label", name.value),
                "use lowercase letters, digits and `-` (at most 63), such as `corp-root-2024`",
            ));
        } else if seen.insert(&name.value, ()).is_some() {
            out.push(finding(
                Code::Ct004,
                file,
                name.span,
                format!("authority name `{}` is used twice", name.value),
                "give every authority its own name",
            ));
        }
    }
    // Expanded names (`<name>-<n>` for multi-certificate files) must not collide with
    // another authority's name either: they are Secret keys.
    let mut expanded: BTreeMap<&str, usize> = BTreeMap::new();
    for c in &loaded.certificates {
        if let Some(&other) = expanded.get(c.name.as_str()) {
            let a = &config.authorities[c.authority];
            // Two authorities with one name are reported above already.
            if other != c.authority && config.authorities[other].name.value != a.name.value {
                out.push(finding(
                    Code::Ct004,
                    file,
                    a.name.span,
                    format!("certificate name `{}` (from a file with several certificates) collides with another authority", c.name),
                    "rename one of the authorities",
                ));
            }
        } else {
            expanded.insert(&c.name, c.authority);
        }
        if c.name.len() > 63 {
            out.push(
                Diagnostic::new(
                    Code::Ct004,
                    format!("certificate name `{}` is longer than 63 characters", c.name),
                )
                .at(file, config.authorities[c.authority].name.span),
            );
        }
    }
}

/// Whether `value` is a Kubernetes label value: at most 63 characters of
/// `[A-Za-z0-9._-]`, beginning and ending with a letter or digit. Pool names are matched
/// against a node label and become part of output file names.
pub fn is_label_value(value: &str) -> bool {
    let b = value.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

fn pools(config: &TrustConfig, file: &str, out: &mut Vec<Diagnostic>) {
    for a in &config.authorities {
        for pool in a.pools.iter().filter(|p| !is_label_value(&p.value)) {
            out.push(finding(
                Code::Ct008,
                file,
                pool.span,
                format!(
                    "pool `{}` of authority `{}` is not a Kubernetes label value",
                    pool.value, a.name.value
                ),
                "a pool is the value of the node pool label: at most 63 letters, digits, `-`, `_` or `.`, beginning and ending with a letter or digit, such as `gpu`",
            ));
        }
    }
}

fn pins(config: &TrustConfig, loaded: &Loaded, file: &str, out: &mut Vec<Diagnostic>) {
    for (index, a) in config.authorities.iter().enumerate() {
        if a.sha256.is_empty() {
            continue;
        }
        let certs: Vec<_> = loaded
            .certificates
            .iter()
            .filter(|c| c.authority == index)
            .collect();
        // A source that failed to load already has its own finding.
        if certs.is_empty() {
            continue;
        }
        if certs.len() != a.sha256.len() {
            out.push(finding(
                Code::Ct209,
                file,
                a.sha256[0].span,
                format!(
                    "authority `{}` holds {} certificate(s) but has {} pin(s)",
                    a.name.value,
                    certs.len(),
                    a.sha256.len()
                ),
                format!(
                    "give one pin per certificate, in order: {}",
                    certs
                        .iter()
                        .map(|c| c.info.sha256.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
            continue;
        }
        for (pin, cert) in a.sha256.iter().zip(certs) {
            match catrust_bundle::normalize_fingerprint(&pin.value) {
                None => out.push(finding(
                    Code::Ct209,
                    file,
                    pin.span,
                    format!("`{}` is not a SHA-256 fingerprint", pin.value),
                    format!("the certificate's SHA-256 is {}", cert.info.sha256),
                )),
                Some(hex) if hex != cert.info.sha256 => out.push(finding(
                    Code::Ct209,
                    file,
                    pin.span,
                    format!(
                        "pin mismatch for `{}`: the certificate's SHA-256 is {}",
                        cert.name, cert.info.sha256
                    ),
                    format!(
                        "if this certificate is intended, set `sha256: \"{}\"`",
                        cert.info.sha256
                    ),
                )),
                Some(_) => {}
            }
        }
    }
}

/// The X.509 rules (CT201–CT208, CT210), each at the certificate's block.
fn certificates(config: &TrustConfig, loaded: &Loaded, now: i64, out: &mut Vec<Diagnostic>) {
    let warn_before = now.saturating_add(config.expiry_warning.value as i64);
    // The first certificate of each SHA-256, for CT208.
    let mut first: BTreeMap<&str, &str> = BTreeMap::new();
    for c in &loaded.certificates {
        let found = [
            not_a_ca(c),
            expiry(c, now, warn_before),
            not_yet_valid(c, now),
            without_key_cert_sign(c),
            weak_rsa_key(c),
            weak_signature(c),
            not_self_signed(c),
            duplicate(c, &mut first),
        ];
        out.extend(found.into_iter().flatten().map(|d| d.at(&c.file, c.span)));
    }
}

/// CT201.
fn not_a_ca(c: &Certificate) -> Option<Diagnostic> {
    let why = match c.info.ca {
        Some(true) => return None,
        Some(false) => "basicConstraints CA:FALSE",
        None => "no basicConstraints",
    };
    let message = format!("`{}` is not a CA ({why}): {}", c.name, c.info.subject);
    Some(Diagnostic::new(Code::Ct201, message))
}

/// CT202 once expired, CT203 from `warn_before` on.
fn expiry(c: &Certificate, now: i64, warn_before: i64) -> Option<Diagnostic> {
    let not_after = crate::cert::format_time(c.info.not_after);
    if c.info.not_after < now {
        let message = format!("`{}` expired on {not_after}", c.name);
        Some(Diagnostic::new(Code::Ct202, message))
    } else if c.info.not_after < warn_before {
        let message = format!("`{}` expires on {not_after}", c.name);
        Some(Diagnostic::new(Code::Ct203, message))
    } else {
        None
    }
}

/// CT204.
fn not_yet_valid(c: &Certificate, now: i64) -> Option<Diagnostic> {
    (c.info.not_before > now).then(|| {
        let not_before = crate::cert::format_time(c.info.not_before);
        let message = format!("`{}` is not valid before {not_before}", c.name);
        Diagnostic::new(Code::Ct204, message)
    })
}

/// CT205. A leaf's keyUsage lacks keyCertSign by design: CT201 already says it all.
fn without_key_cert_sign(c: &Certificate) -> Option<Diagnostic> {
    (c.info.key_cert_sign == Some(false) && c.info.ca == Some(true)).then(|| {
        let message = format!("`{}` has keyUsage without keyCertSign", c.name);
        Diagnostic::new(Code::Ct205, message)
    })
}

/// CT206.
fn weak_rsa_key(c: &Certificate) -> Option<Diagnostic> {
    let bits = c.info.rsa_bits.filter(|b| *b < 2048)?;
    let message = format!("`{}` has a {bits}-bit RSA key", c.name);
    Some(Diagnostic::new(Code::Ct206, message))
}

/// CT207. A trust anchor's self-signature is never verified (the trust comes from
/// the store), so it only matters for a certificate some other CA signed.
fn weak_signature(c: &Certificate) -> Option<Diagnostic> {
    (c.info.weak_signature && !c.info.self_signed).then(|| {
        let message = format!("`{}` is signed with {}", c.name, c.info.signature);
        Diagnostic::new(Code::Ct207, message)
    })
}

/// CT210.
fn not_self_signed(c: &Certificate) -> Option<Diagnostic> {
    (!c.info.self_signed).then(|| {
        let message = format!(
            "`{}` is not self-signed (issued by {})",
            c.name, c.info.issuer
        );
        Diagnostic::new(Code::Ct210, message)
    })
}

/// CT208 for every entry of a certificate after its first (`first`: SHA-256 → name).
fn duplicate<'c>(c: &'c Certificate, first: &mut BTreeMap<&'c str, &'c str>) -> Option<Diagnostic> {
    use std::collections::btree_map::Entry;
    match first.entry(&c.info.sha256) {
        Entry::Vacant(entry) => {
            entry.insert(&c.name);
            None
        }
        Entry::Occupied(entry) => {
            let message = format!(
                "`{}` is the same certificate as `{}` (SHA-256 {})",
                c.name,
                entry.get(),
                c.info.sha256
            );
            Some(
                Diagnostic::new(Code::Ct208, message)
                    .with_help("keep one entry for the certificate"),
            )
        }
    }
}

fn distrust(config: &TrustConfig, loaded: &Loaded, file: &str, out: &mut Vec<Diagnostic>) {
    for d in &config.distrust {
        match catrust_bundle::normalize_fingerprint(&d.sha256.value) {
            None => out.push(finding(
                Code::Ct006,
                file,
                d.sha256.span,
                format!(
                    "distrust: `{}` is not a SHA-256 fingerprint",
                    d.sha256.value
                ),
                "write the 64 hex digits of the certificate's SHA-256 (`catrust inspect FILE`)",
            )),
            Some(hex) => {
                if let Some(c) = loaded.certificates.iter().find(|c| c.info.sha256 == hex) {
                    out.push(
                        Diagnostic::new(
                            Code::Ct402,
                            format!("`{}` is both trusted and distrusted", c.name),
                        )
                        .at(file, d.sha256.span),
                    );
                }
            }
        }
    }
}

/// containerd names `certs.d` folders after the registry host; the bundle crate's
/// [`RegistryHost`](catrust_bundle::RegistryHost) is the one validation (the agent parses
/// bundle.json with it too).
fn registries(config: &TrustConfig, file: &str, out: &mut Vec<Diagnostic>) {
    for a in &config.authorities {
        for r in &a.registries {
            if let Err(e) = catrust_bundle::RegistryHost::parse(&r.value) {
                out.push(finding(
                    Code::Ct006,
                    file,
                    r.span,
                    e.to_string(),
                    "write the registry as image references name it: `registry.corp.example:5000`, `10.0.0.7:5000` or `[fd00::7]:5000` (no scheme, no path, lower case, port 1-65535)",
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_names_are_label_values() {
        for ok in ["gpu", "nodepool1", "A.b_c-9", &"a".repeat(63)] {
            assert!(is_label_value(ok), "{ok}");
        }
        for bad in [
            "",
            "/../../../../x",
            "..",
            "a/b",
            "-a",
            "a.",
            &"a".repeat(64),
            "a b",
            "é",
        ] {
            assert!(!is_label_value(bad), "{bad}");
        }
    }
}
