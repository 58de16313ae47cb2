//! trust.yaml + certificate files → the resolved set of certificates, with findings.

use crate::cert::{self, CertInfo};
use crate::config::{AuthoritySpec, CertSource, TrustConfig};
use crate::diag::{Diagnostic, Sources};
use crate::inline::ValueMap;
use crate::parse;
use crate::pem;
use crate::rules::Code;
use crate::source::{repo_dir, repo_join, Source, SourceError};
use crate::span::{SourceFile, Span};

/// One certificate to trust, as every output names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    /// `<name>`, or `<name>-<n>` (1-based) when the authority's source holds several.
    pub name: String,
    /// Index into the configuration's `authorities`.
    pub authority: usize,
    /// Position within the authority's source (0-based).
    pub position: usize,
    pub der: Vec<u8>,
    /// Canonical PEM, re-encoded from the DER.
    pub pem: String,
    pub info: CertInfo,
    /// The block in the PEM file, or the `pem:` value in trust.yaml.
    pub file: String,
    pub span: Span,
}

/// The result of loading: the model (when it parsed), the certificates that could be
/// read, and every finding so far.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config_file: String,
    pub config: Option<TrustConfig>,
    pub certificates: Vec<Certificate>,
    pub diagnostics: Vec<Diagnostic>,
    pub sources: Sources,
}

impl Loaded {
    /// Whether any certificate source failed to load (so the certificate list is partial).
    pub fn has_errors(&self) -> bool {
        self.diagnostics
            .iter()
            .any(|d| d.severity() == crate::rules::Severity::Error)
    }
}

/// Loads the trust.yaml at repository path `config_path` and every certificate it
/// names. Only an unreadable trust.yaml is an `Err` (the invocation is wrong); every
/// problem inside it is a finding.
pub fn load(source: &dyn Source, config_path: &str) -> Result<Loaded, SourceError> {
    let bytes = source.read(config_path)?;
    let config_file = source.display_path(config_path);
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let file = SourceFile::new(config_file.clone(), text.clone());
    let yaml_text = text;
    let (config, mut diagnostics) = parse::parse(&file);
    let mut sources = Sources::default();
    sources.add(file);
    let mut certificates = Vec::new();
    if let Some(config) = &config {
        let base = repo_dir(config_path);
        for (index, authority) in config.authorities.iter().enumerate() {
            let origin = AuthorityOrigin {
                source,
                base,
                config_file: &config_file,
            };
            let Some((file_name, text, offset_span)) =
                authority_text(&origin, authority, &mut diagnostics)
            else {
                continue;
            };
            // Findings in inline PEM point at their line inside the `pem: |` block (or
            // at the whole value for other scalar styles); in files, at the line.
            let value_map = offset_span.map(|value| ValueMap::new(&yaml_text, value, &text));
            let place = |span: Span| match &value_map {
                Some(map) => map.map(span),
                None => span,
            };
            let found = AuthorityText {
                authority,
                index,
                file_name: &file_name,
                text: &text,
            };
            add_certificates(&found, &place, &mut diagnostics, &mut certificates);
            if offset_span.is_none() {
                sources.add(SourceFile::new(file_name, text));
            }
        }
    }
    unquote_private_key_files(&mut diagnostics, &sources);
    Ok(Loaded {
        config_file,
        config,
        certificates,
        diagnostics,
        sources,
    })
}

/// Where an authority's `file` is read from.
struct AuthorityOrigin<'a> {
    source: &'a dyn Source,
    /// The folder of trust.yaml, which `file` is relative to.
    base: &'a str,
    /// trust.yaml as findings name it.
    config_file: &'a str,
}

/// An authority's PEM text, where it came from (the file name findings use) and, for
/// inline `pem`, the span of the value in trust.yaml; `None` (with a finding) when it
/// cannot be read.
fn authority_text(
    origin: &AuthorityOrigin<'_>,
    authority: &AuthoritySpec,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<(String, String, Option<Span>)> {
    let AuthorityOrigin {
        source,
        base,
        config_file,
    } = *origin;
    let path = match &authority.source {
        CertSource::Pem(pem) => {
            return Some((config_file.to_string(), pem.value.clone(), Some(pem.span)))
        }
        CertSource::File(path) => path,
    };
    if path.value.trim().is_empty() {
        diagnostics.push(
            Diagnostic::new(
                Code::Ct005,
                format!("authority `{}`: `file` is empty", authority.name.value),
            )
            .at(config_file, path.span)
            .with_help("name the certificate file, relative to the folder of trust.yaml"),
        );
        return None;
    }
    let read = repo_join(base, &path.value)
        .ok_or_else(|| SourceError::Escapes(path.value.clone()))
        .and_then(|p| source.read(&p).map(|b| (source.display_path(&p), b)));
    match read {
        Ok((shown, bytes)) => match pem::decode_text(&bytes) {
            Ok(text) => Some((shown, text, None)),
            Err(not) => {
                diagnostics.push(
                    Diagnostic::new(
                        Code::Ct103,
                        format!("{shown} is {}, not PEM text", not.what),
                    )
                    .at(config_file, path.span)
                    .with_help(not.help),
                );
                None
            }
        },
        Err(e) => {
            let help = read_error_help(&e);
            diagnostics.push(
                Diagnostic::new(
                    Code::Ct005,
                    format!("authority `{}`: {e}", authority.name.value),
                )
                .at(config_file, path.span)
                .with_help(help),
            );
            None
        }
    }
}

/// What to do when an authority's `file` cannot be read.
fn read_error_help(e: &SourceError) -> &'static str {
    match e {
        SourceError::Escapes(_) => "certificate files must be inside the repository, named relative to trust.yaml",
        SourceError::NotFound(_) => "check the path: it is relative to the folder of trust.yaml",
        SourceError::NotAFile { .. } => "`file` must name a regular file holding PEM certificates",
        SourceError::TooLarge(_) => "a CA certificate file is a few KB (the whole Mozilla set is 220 KB): commit only the CA certificates",
        SourceError::Io { .. } => "check that catrust can read the file (permissions, a broken link)",
    }
}

/// One authority's PEM text, read.
struct AuthorityText<'a> {
    authority: &'a AuthoritySpec,
    /// The authority's position in `spec.authorities`.
    index: usize,
    file_name: &'a str,
    text: &'a str,
}

/// Scans one authority's text: its findings (placed by `place`) and its certificates,
/// named `<name>` or `<name>-<n>`.
fn add_certificates(
    found: &AuthorityText<'_>,
    place: &dyn Fn(Span) -> Span,
    diagnostics: &mut Vec<Diagnostic>,
    certificates: &mut Vec<Certificate>,
) {
    let &AuthorityText {
        authority,
        index,
        file_name,
        text,
    } = found;
    let scan = pem::scan(text);
    for f in &scan.findings {
        let mut d = Diagnostic::new(f.code, f.message.clone()).at(file_name, place(f.span));
        d.help = f.help.clone();
        diagnostics.push(d);
    }
    if scan.certificates.is_empty()
        && !scan
            .findings
            .iter()
            .any(|f| matches!(f.code, Code::Ct102 | Code::Ct103 | Code::Ct107))
    {
        diagnostics.push(
            Diagnostic::new(
                Code::Ct103,
                format!("authority `{}`: no certificate found", authority.name.value),
            )
            .at(
                file_name,
                place(Span::new(0, text.chars().next().map_or(0, char::len_utf8))),
            )
            .with_help("the source must hold at least one `-----BEGIN CERTIFICATE-----` block"),
        );
    }
    let several = scan.certificates.len() > 1;
    for (position, block) in scan.certificates.into_iter().enumerate() {
        let info = match cert::inspect(&block.der) {
            Ok(info) => info,
            Err(e) => {
                diagnostics.push(
                    Diagnostic::new(Code::Ct107, format!("cannot read the certificate: {e}"))
                        .at(file_name, place(block.span)),
                );
                continue;
            }
        };
        let name = if several {
            format!("{}-{}", authority.name.value, position + 1)
        } else {
            authority.name.value.clone()
        };
        certificates.push(Certificate {
            name,
            authority: index,
            position,
            pem: catrust_bundle::encode_pem(&block.der),
            der: block.der,
            info,
            file: file_name.to_string(),
            span: place(block.span),
        });
    }
}

/// No finding about a file that holds a private key quotes its text (CT105 quotes
/// only the marker, from catrust's own list).
fn unquote_private_key_files(diagnostics: &mut [Diagnostic], sources: &Sources) {
    for d in diagnostics.iter_mut() {
        let secret = d.location.as_ref().is_some_and(|l| {
            sources
                .get(&l.file)
                .is_some_and(|f| pem::holds_private_key(&f.text))
        });
        if secret && d.code != Code::Ct105 {
            d.message = crate::diag::without_quotes(&d.message);
        }
    }
}
