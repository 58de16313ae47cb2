//! `catrust init`: a starter trust.yaml for some PEM files, with pins filled in.

use serde::Serialize;

use crate::cert;
use crate::pem;
use crate::render::k8s::to_yaml;
use crate::rules::Severity;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Starter {
    api_version: &'static str,
    kind: &'static str,
    metadata: Metadata,
    spec: Spec,
}

#[derive(Serialize)]
struct Metadata {
    name: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Spec {
    authorities: Vec<Authority>,
    rotation: Rotation,
    expiry_warning: &'static str,
    targets: Targets,
}

#[derive(Serialize)]
struct Authority {
    name: String,
    file: String,
    sha256: Pins,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Pins {
    One(String),
    Many(Vec<String>),
}

impl Pins {
    fn len(&self) -> usize {
        match self {
            Pins::One(_) => 1,
            Pins::Many(pins) => pins.len(),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Rotation {
    min_overlap: &'static str,
}

#[derive(Serialize)]
struct Targets {
    aks: Aks,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Aks {
    resource_group: &'static str,
    cluster: &'static str,
    certificates_file: bool,
    secret: bool,
}

const HEADER: &str = "# Starter trust.yaml written by `catrust init`.
# Set targets.aks.resourceGroup and .cluster, or replace `aks` with an `agent` target;
# see the README. Check it with `catrust lint`, render it with `catrust build`.
";

/// A DNS label from a certificate's subject CN (or the file name).
fn label_for(subject: &str, fallback: &str) -> String {
    let cn = subject
        .split(',')
        .find_map(|part| part.trim().strip_prefix("CN="))
        .unwrap_or(fallback);
    let mut label = String::new();
    for c in cn.chars() {
        if c.is_ascii_alphanumeric() {
            label.push(c.to_ascii_lowercase());
        } else if !label.ends_with('-') {
            label.push('-');
        }
    }
    let label = label.trim_matches('-');
    let mut label: String = label.chars().take(50).collect();
    label = label.trim_end_matches('-').to_string();
    if label.is_empty() {
        "ca".into()
    } else {
        label
    }
}

/// Why a PEM file cannot go into the starter file.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("{path} is {what}: {help}")]
    NotText {
        path: String,
        what: &'static str,
        help: &'static str,
    },
    #[error("{path}: {code} {message}")]
    Invalid {
        path: String,
        code: crate::rules::Code,
        message: String,
    },
    #[error("{path}: no certificate found")]
    NoCertificate { path: String },
}

/// Renders the starter file. `inputs` are (path relative to the new trust.yaml, bytes).
pub fn starter(inputs: &[(String, Vec<u8>)]) -> Result<String, InitError> {
    let mut authorities: Vec<Authority> = Vec::new();
    for (path, bytes) in inputs {
        let authority = authority_for(path, bytes, &authorities)?;
        authorities.push(authority);
    }
    // AKS takes at most 10 certificates in its cluster list (CT301): more go to the
    // Secret only, so that the starter file always passes `catrust lint`.
    let certificates: usize = authorities.iter().map(|a| a.sha256.len()).sum();
    let certificates_file = certificates <= crate::lint::AKS_MAX_CERTIFICATES;
    let starter = Starter {
        api_version: crate::config::API_VERSION,
        kind: crate::config::KIND,
        metadata: Metadata { name: "corp" },
        spec: Spec {
            authorities,
            rotation: Rotation { min_overlap: "72h" },
            expiry_warning: "30d",
            targets: Targets {
                aks: Aks {
                    resource_group: "my-resource-group",
                    cluster: "my-cluster",
                    certificates_file,
                    secret: false,
                },
            },
        },
    };
    Ok(format!("{HEADER}{}", to_yaml(&starter)))
}

/// The authority of one PEM file, pinned, named apart from those already `taken`.
fn authority_for(path: &str, bytes: &[u8], taken: &[Authority]) -> Result<Authority, InitError> {
    let text = pem::decode_text(bytes).map_err(|not| InitError::NotText {
        path: path.to_string(),
        what: not.what,
        help: not.help,
    })?;
    let scan = pem::scan(&text);
    if let Some(f) = scan
        .findings
        .iter()
        .find(|f| f.code.severity() == Severity::Error)
    {
        return Err(InitError::Invalid {
            path: path.to_string(),
            code: f.code,
            message: f.message.clone(),
        });
    }
    let infos: Vec<_> = scan
        .certificates
        .iter()
        .filter_map(|c| cert::inspect(&c.der).ok())
        .collect();
    let Some(first) = infos.first() else {
        return Err(InitError::NoCertificate {
            path: path.to_string(),
        });
    };
    let stem = path
        .rsplit('/')
        .next()
        .unwrap_or(path)
        .split('.')
        .next()
        .unwrap_or("ca");
    // A file of several certificates is named after the file (its first CN names
    // only one of them); a single certificate after its CN.
    let base = if infos.len() > 1 {
        label_for("", stem)
    } else {
        label_for(&first.subject, stem)
    };
    let mut name = base.clone();
    let mut n = 2;
    while taken.iter().any(|a| a.name == name) {
        name = format!("{base}-{n}");
        n += 1;
    }
    let mut pins: Vec<String> = infos.into_iter().map(|i| i.sha256).collect();
    Ok(Authority {
        name,
        file: path.to_string(),
        sha256: if pins.len() == 1 {
            Pins::One(pins.remove(0))
        } else {
            Pins::Many(pins)
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_dns_labels() {
        assert_eq!(
            label_for("O=x, CN=Corp Root CA 2024", "f"),
            "corp-root-ca-2024"
        );
        assert_eq!(label_for("O=x", "my_file"), "my-file");
        assert_eq!(label_for("CN=***", "x"), "ca");
    }
}
