//! Rules over a loaded configuration. Pure: the clock is a parameter.

use std::collections::BTreeMap;

use crate::config::{TargetKind, TrustConfig};
use crate::diag::{self, Diagnostic};
use crate::load::Loaded;
use crate::rules::{Code, Severity};

mod platforms;
pub use platforms::{is_config_map_key, is_dns_subdomain};

/// The AKS limit on the cluster-level certificate list.
pub const AKS_MAX_CERTIFICATES: usize = 10;

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
        aks(config, loaded, file, &mut out);
        platforms::lint(config, loaded, file, &mut out);
    }
    diag::sort(&mut out);
    out
}

fn names(config: &TrustConfig, loaded: &Loaded, file: &str, out: &mut Vec<Diagnostic>) {
    let mut seen: BTreeMap<&str, ()> = BTreeMap::new();
    for a in &config.authorities {
        let name = &a.name;
        if !catrust_bundle::is_dns_label(&name.value) {
            out.push(
                Diagnostic::new(
                    Code::Ct004,
                    format!("authority name `{}` is not a DNS label", name.value),
                )
                .at(file, name.span)
                .with_help(
                    "use lowercase letters, digits and `-` (at most 63), such as `corp-root-2024`",
                ),
            );
        } else if seen.insert(&name.value, ()).is_some() {
            out.push(
                Diagnostic::new(
                    Code::Ct004,
                    format!("authority name `{}` is used twice", name.value),
                )
                .at(file, name.span)
                .with_help("give every authority its own name"),
            );
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
                out.push(
                    Diagnostic::new(
                        Code::Ct004,
                        format!("certificate name `{}` (from a file with several certificates) collides with another authority", c.name),
                    )
                    .at(file, a.name.span)
                    .with_help("rename one of the authorities"),
                );
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
            out.push(
                Diagnostic::new(
                    Code::Ct008,
                    format!(
                        "pool `{}` of authority `{}` is not a Kubernetes label value",
                        pool.value, a.name.value
                    ),
                )
                .at(file, pool.span)
                .with_help("a pool is the value of the node pool label: at most 63 letters, digits, `-`, `_` or `.`, beginning and ending with a letter or digit, such as `gpu`"),
            );
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
            out.push(
                Diagnostic::new(
                    Code::Ct209,
                    format!(
                        "authority `{}` holds {} certificate(s) but has {} pin(s)",
                        a.name.value,
                        certs.len(),
                        a.sha256.len()
                    ),
                )
                .at(file, a.sha256[0].span)
                .with_help(format!(
                    "give one pin per certificate, in order: {}",
                    certs
                        .iter()
                        .map(|c| c.info.sha256.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            );
            continue;
        }
        for (pin, cert) in a.sha256.iter().zip(certs) {
            match catrust_bundle::normalize_fingerprint(&pin.value) {
                None => out.push(
                    Diagnostic::new(
                        Code::Ct209,
                        format!("`{}` is not a SHA-256 fingerprint", pin.value),
                    )
                    .at(file, pin.span)
                    .with_help(format!("the certificate's SHA-256 is {}", cert.info.sha256)),
                ),
                Some(hex) if hex != cert.info.sha256 => out.push(
                    Diagnostic::new(
                        Code::Ct209,
                        format!(
                            "pin mismatch for `{}`: the certificate's SHA-256 is {}",
                            cert.name, cert.info.sha256
                        ),
                    )
                    .at(file, pin.span)
                    .with_help(format!(
                        "if this certificate is intended, set `sha256: \"{}\"`",
                        cert.info.sha256
                    )),
                ),
                Some(_) => {}
            }
        }
    }
}

fn certificates(config: &TrustConfig, loaded: &Loaded, now: i64, out: &mut Vec<Diagnostic>) {
    let mut first: BTreeMap<&str, &str> = BTreeMap::new();
    for c in &loaded.certificates {
        let i = &c.info;
        let at = |d: Diagnostic| d.at(&c.file, c.span);
        match i.ca {
            Some(true) => {}
            Some(false) => out.push(at(Diagnostic::new(
                Code::Ct201,
                format!(
                    "`{}` is not a CA (basicConstraints CA:FALSE): {}",
                    c.name, i.subject
                ),
            ))),
            None => out.push(at(Diagnostic::new(
                Code::Ct201,
                format!(
                    "`{}` is not a CA (no basicConstraints): {}",
                    c.name, i.subject
                ),
            ))),
        }
        let not_after = crate::cert::format_time(i.not_after);
        if i.not_after < now {
            out.push(at(Diagnostic::new(
                Code::Ct202,
                format!("`{}` expired on {not_after}", c.name),
            )));
        } else if i.not_after < now.saturating_add(config.expiry_warning.value as i64) {
            out.push(at(Diagnostic::new(
                Code::Ct203,
                format!("`{}` expires on {not_after}", c.name),
            )));
        }
        if i.not_before > now {
            out.push(at(Diagnostic::new(
                Code::Ct204,
                format!(
                    "`{}` is not valid before {}",
                    c.name,
                    crate::cert::format_time(i.not_before)
                ),
            )));
        }
        // A leaf's keyUsage lacks keyCertSign by design: CT201 already says it all.
        if i.key_cert_sign == Some(false) && i.ca == Some(true) {
            out.push(at(Diagnostic::new(
                Code::Ct205,
                format!("`{}` has keyUsage without keyCertSign", c.name),
            )));
        }
        if let Some(bits) = i.rsa_bits.filter(|b| *b < 2048) {
            out.push(at(Diagnostic::new(
                Code::Ct206,
                format!("`{}` has a {bits}-bit RSA key", c.name),
            )));
        }
        // A trust anchor's self-signature is never verified (the trust comes from
        // the store), so it only matters for a certificate some other CA signed.
        if i.weak_signature && !i.self_signed {
            out.push(at(Diagnostic::new(
                Code::Ct207,
                format!("`{}` is signed with {}", c.name, i.signature),
            )));
        }
        if !i.self_signed {
            out.push(at(Diagnostic::new(
                Code::Ct210,
                format!("`{}` is not self-signed (issued by {})", c.name, i.issuer),
            )));
        }
        if let Some(other) = first.insert(&i.sha256, &c.name) {
            out.push(
                at(Diagnostic::new(
                    Code::Ct208,
                    format!(
                        "`{}` is the same certificate as `{other}` (SHA-256 {})",
                        c.name, i.sha256
                    ),
                ))
                .with_help("keep one entry for the certificate"),
            );
            first.insert(&i.sha256, other);
        }
    }
}

fn distrust(config: &TrustConfig, loaded: &Loaded, file: &str, out: &mut Vec<Diagnostic>) {
    for d in &config.distrust {
        match catrust_bundle::normalize_fingerprint(&d.sha256.value) {
            None => out.push(
                Diagnostic::new(
                    Code::Ct006,
                    format!(
                        "distrust: `{}` is not a SHA-256 fingerprint",
                        d.sha256.value
                    ),
                )
                .at(file, d.sha256.span)
                .with_help(
                    "write the 64 hex digits of the certificate's SHA-256 (`catrust inspect FILE`)",
                ),
            ),
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
                out.push(
                    Diagnostic::new(Code::Ct006, e.to_string())
                        .at(file, r.span)
                        .with_help("write the registry as image references name it: `registry.corp.example:5000`, `10.0.0.7:5000` or `[fd00::7]:5000` (no scheme, no path, lower case, port 1-65535)"),
                );
            }
        }
    }
}

fn aks(config: &TrustConfig, loaded: &Loaded, file: &str, out: &mut Vec<Diagnostic>) {
    let Some(aks) = &config.targets.aks else {
        return;
    };
    let count = crate::render::for_target(config, &loaded.certificates, TargetKind::Aks).len();
    if aks.certificates_file.value && count > AKS_MAX_CERTIFICATES {
        out.push(
            Diagnostic::new(
                Code::Ct301,
                format!("{count} certificates for the AKS cluster list; AKS accepts at most {AKS_MAX_CERTIFICATES}"),
            )
            .at(file, aks.certificates_file.span)
            .with_help("keep the CAs nodes need to provision in the cluster list and move the rest to the agent target, or set `certificatesFile: false`"),
        );
    }
    // An empty list by intent (no authority for aks), not one whose authorities or
    // files failed to read (those have their errors).
    if aks.certificates_file.value
        && !config
            .authorities
            .iter()
            .any(|a| a.goes_to(TargetKind::Aks))
        && !loaded
            .diagnostics
            .iter()
            .any(|d| d.code.severity() == Severity::Error)
    {
        out.push(
            Diagnostic::new(
                Code::Ct307,
                "the AKS cluster list is empty: `az-commands.sh update` clears it with an empty file (AKS re-images every node); Terraform (azurerm 3.79 to 3.x) would force a new cluster",
            )
            .at(file, aks.certificates_file.span)
            .with_help("apply the empty list with `az-commands.sh update`, not Terraform (`catrust explain CT307`)"),
        );
    }
    if aks.secret.value {
        let pools: Vec<&str> = aks
            .node_pools
            .iter()
            .filter(|p| p.custom_ca_trust.as_ref().is_some_and(|f| f.value))
            .map(|p| p.name.value.as_str())
            .collect();
        let readers = if pools.is_empty() {
            "no node pool reads it on a current cluster".to_string()
        } else {
            format!(
                "only pools that still carry the retired enableCustomCATrust property ran the watcher that read it ({}), and `az-commands.sh update` unsets that property",
                pools.join(", ")
            )
        };
        out.push(
            Diagnostic::new(
                Code::Ct306,
                format!("custom-ca-trust-secret is rendered, but {readers}: AKS deployed its reader (aks-node-ca-watcher) only for the per-pool property retired on 2026-09-14"),
            )
            .at(file, aks.secret.span)
            .with_help("drop `secret: true`; use the cluster list for provisioning CAs and the agent target for CAs that rotate"),
        );
    }
    for pool in &aks.node_pools {
        if pool.os_type.value == "Windows" {
            out.push(
                Diagnostic::new(
                    Code::Ct302,
                    format!("node pool `{}` is a Windows pool", pool.name.value),
                )
                .at(file, pool.os_type.span)
                .with_help("AKS custom CA trust supports Linux node pools only: remove this pool"),
            );
        }
        if let Some(flag) = &pool.custom_ca_trust {
            let what = if flag.value {
                "cannot be enabled any more (the cluster list reaches every Linux pool)"
            } else {
                "has no CLI flag any more"
            };
            out.push(
                Diagnostic::new(
                    Code::Ct303,
                    format!(
                        "node pool `{}`: customCATrust {} {what}: the property retired on 2026-09-14, and `az-commands.sh update` unsets it on this pool",
                        pool.name.value, flag.value
                    ),
                )
                .at(file, flag.span)
                .with_help("run `az-commands.sh update` once, then drop `customCATrust` (`catrust explain CT303`)"),
            );
        }
    }
    for a in config
        .authorities
        .iter()
        .filter(|a| a.goes_to(TargetKind::Aks))
    {
        if let Some(first) = a.pools.first() {
            out.push(
                Diagnostic::new(
                    Code::Ct304,
                    format!(
                        "authority `{}` names pools, but AKS trusts one set per cluster",
                        a.name.value
                    ),
                )
                .at(file, first.span)
                .with_help("add `targets: [agent]` to the authority: the agent installs it on these pools only, and the AKS cluster list leaves it out"),
            );
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
