//! A PEM reader that keeps positions, so hygiene findings can point at the line.
//!
//! Real-world CA files carry CRLF line ends, `subject=` lines from `openssl x509
//! -text`, trailing blanks, keys pasted by mistake, and whole files base64-encoded a
//! second time (the AKS troubleshooting cases). Generic PEM parsers either reject
//! those wholesale or skip them silently; this one reads what it can and reports the
//! rest with a code and a span. Outputs never reuse the input text: certificates are
//! re-encoded from their DER ([`catrust_bundle::encode_pem`]).

use base64::Engine as _;

use crate::rules::Code;
use crate::span::Span;

/// A finding inside the scanned text (span relative to it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PemFinding {
    pub code: Code,
    pub span: Span,
    pub message: String,
    pub help: Option<String>,
}

/// A certificate block that decoded to DER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertBlock {
    pub der: Vec<u8>,
    /// The BEGIN line.
    pub span: Span,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PemScan {
    pub certificates: Vec<CertBlock>,
    pub findings: Vec<PemFinding>,
}

/// Markers of private key material: every one pre-commit's `detect-private-key` knows,
/// plus PuTTY's newer format. PKCS#8 (`PRIVATE KEY`) and encrypted PKCS#8
/// (`ENCRYPTED PRIVATE KEY`) are among them.
pub const PRIVATE_KEY_MARKERS: &[&str] = &[
    "BEGIN RSA PRIVATE KEY",
    "BEGIN DSA PRIVATE KEY",
    "BEGIN EC PRIVATE KEY",
    "BEGIN OPENSSH PRIVATE KEY",
    "BEGIN PRIVATE KEY",
    "PuTTY-User-Key-File-2",
    "PuTTY-User-Key-File-3",
    "BEGIN SSH2 ENCRYPTED PRIVATE KEY",
    "BEGIN PGP PRIVATE KEY BLOCK",
    "BEGIN ENCRYPTED PRIVATE KEY",
    "BEGIN OpenVPN Static key V1",
];

/// One line of the text: its span without the line end, and its content with a
/// trailing `\r` and blanks removed.
struct Line<'t> {
    span: Span,
    text: &'t str,
}

fn lines(text: &str) -> Vec<Line<'_>> {
    let mut out = Vec::new();
    let mut start = 0;
    for raw in text.split_inclusive('\n') {
        let content = raw.trim_end_matches(['\n', '\r']);
        out.push(Line {
            span: Span::new(start, start + content.len()),
            text: content.trim_end(),
        });
        start += raw.len();
    }
    out
}

fn begin_label(line: &str) -> Option<&str> {
    line.trim_start()
        .strip_prefix("-----BEGIN ")?
        .strip_suffix("-----")
}

fn end_label(line: &str) -> Option<&str> {
    line.trim_start()
        .strip_prefix("-----END ")?
        .strip_suffix("-----")
}

/// Reads every PEM block of `text`.
pub fn scan(text: &str) -> PemScan {
    let mut scan = PemScan::default();
    let finding = |code, span, message: String, help: Option<&str>| PemFinding {
        code,
        span,
        message,
        help: help.map(str::to_string),
    };

    if let Some(i) = text.find("\r\n") {
        let line_start = text[..i].rfind('\n').map_or(0, |j| j + 1);
        scan.findings.push(finding(
            Code::Ct101,
            Span::new(line_start, i),
            "CRLF line endings (outputs are normalised to LF)".into(),
            None,
        ));
    }
    for marker in PRIVATE_KEY_MARKERS {
        for (i, _) in text.match_indices(marker) {
            scan.findings.push(finding(
                Code::Ct105,
                Span::new(i, i + marker.len()),
                format!("private key material (`{marker}`)"),
                Some("remove the key from the file and from git history, and treat the CA as compromised"),
            ));
        }
    }

    let lines = lines(text);
    // Non-blank lines outside blocks, with their index (to group neighbours).
    let mut outside: Vec<(usize, &Line)> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = &lines[i];
        let Some(label) = begin_label(line.text) else {
            if !line.text.trim().is_empty() {
                outside.push((i, line));
            }
            i += 1;
            continue;
        };
        let Some(end) = (i + 1..lines.len())
            .find(|&j| end_label(lines[j].text).is_some() || begin_label(lines[j].text).is_some())
        else {
            scan.findings.push(finding(
                Code::Ct107,
                line.span,
                format!("`-----BEGIN {label}-----` has no END line"),
                Some("the block is truncated: export the certificate again"),
            ));
            break;
        };
        // Findings about a whole block point at its BEGIN line: quoting 30 lines of
        // base64 helps nobody.
        let block = line.span;
        match end_label(lines[end].text) {
            Some(end_label) if end_label == label => {}
            Some(end_label) => {
                scan.findings.push(finding(
                    Code::Ct107,
                    lines[end].span,
                    format!("`-----BEGIN {label}-----` ends with `-----END {end_label}-----`"),
                    None,
                ));
                i = end + 1;
                continue;
            }
            None => {
                scan.findings.push(finding(
                    Code::Ct107,
                    line.span,
                    format!("`-----BEGIN {label}-----` has no END line before the next BEGIN"),
                    None,
                ));
                i = end;
                continue;
            }
        }
        let body = &lines[i + 1..end];
        match label {
            "CERTIFICATE" => {
                if let Some(cert) = decode_certificate(body, block, &mut scan.findings) {
                    scan.certificates.push(cert);
                }
            }
            // CT105 already reported by marker.
            l if is_key_label(l) => {}
            l => scan.findings.push(finding(
                Code::Ct104,
                block,
                format!("a `{l}` block is not a certificate"),
                Some("remove the block; trust stores take CA certificates only"),
            )),
        }
        i = end + 1;
    }

    if !outside.is_empty() {
        let span = Span::new(
            outside[0].1.span.start,
            outside[outside.len() - 1].1.span.end,
        );
        let joined: String = outside.iter().map(|(_, l)| l.text.trim()).collect();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(joined.as_bytes())
            .ok();
        let double = decoded.as_ref().is_some_and(|decoded| {
            String::from_utf8_lossy(decoded).contains("-----BEGIN CERTIFICATE-----")
        });
        let bare_der = !double
            && scan.certificates.is_empty()
            && decoded
                .as_ref()
                .is_some_and(|d| matches!(x509_parser::parse_x509_certificate(d), Ok(([], _))));
        if bare_der {
            scan.findings.push(finding(
                Code::Ct103,
                span,
                "base64 of a DER certificate without the PEM BEGIN/END lines".into(),
                Some("put `-----BEGIN CERTIFICATE-----` before and `-----END CERTIFICATE-----` after it (or `openssl x509 -inform DER`)"),
            ));
        } else if double {
            scan.findings.push(finding(
                Code::Ct102,
                span,
                "base64 of a PEM certificate (encoded twice): the file must hold the PEM itself"
                    .into(),
                Some("decode it once (`base64 -d`) and commit the PEM"),
            ));
        } else if scan.findings.iter().any(|f| f.code == Code::Ct105) {
            // A key outside PEM blocks (PuTTY, SSH2) is CT105 already; quoting its
            // lines as stray text would copy key material into CI logs.
        } else {
            // One CT106 per run of neighbouring lines; a line that looks like a
            // boundary but is not one (`-----BEGIN CERTIFICATE----`) is CT107: the
            // block it was meant to open would otherwise be dropped silently.
            let mut run: Option<(usize, Span)> = None;
            let flush = |run: &mut Option<(usize, Span)>, findings: &mut Vec<PemFinding>| {
                if let Some((_, span)) = run.take() {
                    findings.push(finding(
                        Code::Ct106,
                        span,
                        "text outside PEM blocks (not copied to outputs)".into(),
                        None,
                    ));
                }
            };
            for (index, line) in outside {
                // Key markers outside blocks (PuTTY, SSH2) are CT105 already, and
                // their END lines are no malformed certificate boundaries.
                if PRIVATE_KEY_MARKERS.iter().any(|m| {
                    line.text.contains(m)
                        || m.strip_prefix("BEGIN ")
                            .is_some_and(|rest| line.text.contains(&format!("END {rest}")))
                }) {
                    flush(&mut run, &mut scan.findings);
                    continue;
                }
                if looks_like_boundary(line.text) {
                    flush(&mut run, &mut scan.findings);
                    scan.findings.push(finding(
                        Code::Ct107,
                        line.span,
                        format!("malformed PEM boundary line `{}`", line.text.trim()),
                        Some("a boundary is exactly `-----BEGIN CERTIFICATE-----` (five dashes each side) on its own line"),
                    ));
                    continue;
                }
                run = match run {
                    Some((last, span)) if last + 1 == index => {
                        Some((index, Span::new(span.start, line.span.end)))
                    }
                    other => {
                        let mut other = other;
                        flush(&mut other, &mut scan.findings);
                        Some((index, line.span))
                    }
                };
            }
            flush(&mut run, &mut scan.findings);
        }
    }
    scan
}

/// Whether a block label is one of the private key markers (`RSA PRIVATE KEY`,
/// `OpenVPN Static key V1`, …).
fn is_key_label(label: &str) -> bool {
    label.contains("PRIVATE KEY")
        || PRIVATE_KEY_MARKERS
            .iter()
            .any(|m| m.strip_prefix("BEGIN ") == Some(label))
}

/// A line that was meant as a PEM boundary but is not a valid one: dashes around
/// BEGIN/END with the wrong count, spacing or case.
fn looks_like_boundary(line: &str) -> bool {
    let t = line.trim();
    let upper = t.to_ascii_uppercase();
    (t.starts_with("--") || t.ends_with("--")) && (upper.contains("BEGIN") || upper.contains("END"))
}

fn decode_certificate(
    body: &[Line],
    block: Span,
    findings: &mut Vec<PemFinding>,
) -> Option<CertBlock> {
    let mut b64 = String::new();
    // The AKS troubleshooting case (CT308): reported once per block, at its BEGIN
    // line (never quoting a line of the body).
    let stray = body
        .iter()
        .position(|l| {
            l.text.trim().is_empty()
                || l.text.starts_with(char::is_whitespace)
                || l.span.end - l.span.start != l.text.len()
        })
        .map(|n| PemFinding {
            code: Code::Ct308,
            span: block,
            message: format!(
                "blank line or whitespace inside the CERTIFICATE block (line {} of the block; outputs are normalised)",
                n + 2
            ),
            help: None,
        });
    for line in body {
        let t = line.text.trim();
        if t.contains(':') {
            // RFC 1421 headers (Proc-Type, DEK-Info) have no place in a certificate.
            findings.push(PemFinding {
                code: Code::Ct107,
                span: line.span,
                message: "header line inside a CERTIFICATE block".into(),
                help: None,
            });
            return None;
        }
        if let Some(bad) = t
            .bytes()
            .position(|b| !(b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'='))
        {
            let at = line.span.start + (line.text.len() - line.text.trim_start().len()) + bad;
            findings.push(PemFinding {
                code: Code::Ct107,
                span: Span::new(at, at + 1),
                message: "character outside the base64 alphabet in a CERTIFICATE block".into(),
                help: None,
            });
            return None;
        }
        b64.push_str(t);
    }
    let der = match base64::engine::general_purpose::STANDARD.decode(b64.as_bytes()) {
        Ok(der) => der,
        Err(e) => {
            findings.push(PemFinding {
                code: Code::Ct107,
                span: block,
                message: format!("bad base64 in a CERTIFICATE block: {e}"),
                help: None,
            });
            return None;
        }
    };
    match x509_parser::parse_x509_certificate(&der) {
        Ok(([], _)) => {
            // Only for a block that decodes: a broken one has its CT107 already.
            findings.extend(stray);
            Some(CertBlock { der, span: block })
        }
        Ok(_) => {
            findings.push(PemFinding {
                code: Code::Ct107,
                span: block,
                message: "bytes after the certificate's DER in a CERTIFICATE block".into(),
                help: None,
            });
            None
        }
        Err(e) => {
            findings.push(PemFinding {
                code: Code::Ct107,
                span: block,
                message: format!("the CERTIFICATE block is not a valid X.509 certificate: {e}"),
                help: None,
            });
            None
        }
    }
}
