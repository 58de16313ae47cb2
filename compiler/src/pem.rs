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

/// Splits at LF, CRLF and a lone CR (old Mac files, and what some copy-paste leaves).
/// A UTF-8 byte order mark is not part of the first line's text.
fn lines(text: &str) -> Vec<Line<'_>> {
    let mut out = Vec::new();
    let mut start = 0;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let end = match bytes[i] {
            b'\n' => Some(i + 1),
            b'\r' if bytes.get(i + 1) == Some(&b'\n') => Some(i + 2),
            b'\r' => Some(i + 1),
            _ => None,
        };
        if let Some(next) = end {
            out.push(line(text, start, i));
            start = next;
            i = next;
        } else {
            i += 1;
        }
    }
    if start < text.len() {
        out.push(line(text, start, text.len()));
    }
    out
}

fn line(text: &str, start: usize, end: usize) -> Line<'_> {
    let content = &text[start..end];
    let content = if start == 0 {
        content.strip_prefix(BOM).unwrap_or(content)
    } else {
        content
    };
    Line {
        span: Span::new(start, end),
        text: content.trim_end(),
    }
}

const BOM: char = '\u{feff}';

/// Whether `text` holds a private key marker anywhere: then no report may quote any
/// of its text.
pub fn holds_private_key(text: &str) -> bool {
    PRIVATE_KEY_MARKERS.iter().any(|m| text.contains(m))
}

/// The spans of every line inside a PEM block (after a BEGIN line, up to its END line
/// or the end of the text): what reports must never quote.
pub fn block_bodies(text: &str) -> Vec<Span> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in lines(text) {
        if begin_label(line.text).is_some() {
            inside = true;
        } else if end_label(line.text).is_some() {
            inside = false;
        } else if inside {
            out.push(line.span);
        }
    }
    out
}

/// Labels of blocks that hold one DER certificate: OpenSSL reads all three.
fn certificate_label(label: &str) -> bool {
    matches!(
        label,
        "CERTIFICATE" | "TRUSTED CERTIFICATE" | "X509 CERTIFICATE"
    )
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

/// Why a certificate file is not PEM text, with the command that converts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotText {
    /// What the file is ("a DER certificate", …).
    pub what: &'static str,
    pub help: &'static str,
}

/// DER of the PKCS#7 signedData content type (1.2.840.113549.1.7.2), as a .p7b starts.
const PKCS7_SIGNED_DATA: &[u8] = &[
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02,
];

/// The text of a certificate file, or what it is instead: UTF-16 text (Windows
/// editors and PowerShell's `>`), a DER certificate or a DER PKCS#7 bundle (what
/// Windows exports), or other binary data. Each comes with the exact converting command.
pub fn decode_text(bytes: &[u8]) -> Result<String, NotText> {
    let head = &bytes[..bytes.len().min(64)];
    let utf16 = bytes.starts_with(&[0xff, 0xfe])
        || bytes.starts_with(&[0xfe, 0xff])
        || (head.len() >= 8
            && (head.iter().step_by(2).all(|b| *b == 0)
                || head.iter().skip(1).step_by(2).all(|b| *b == 0)));
    if utf16 {
        return Err(NotText {
            what: "UTF-16 text",
            help: "convert it to UTF-8: `iconv -f UTF-16 -t UTF-8 FILE > FILE.pem`",
        });
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        return Ok(text.to_string());
    }
    if bytes.first() == Some(&0x30) {
        if matches!(x509_parser::parse_x509_certificate(bytes), Ok(([], _))) {
            return Err(NotText {
                what: "a DER (binary) certificate",
                help: "convert it to PEM: `openssl x509 -inform DER -in FILE -out FILE.pem`",
            });
        }
        if bytes[..bytes.len().min(32)]
            .windows(PKCS7_SIGNED_DATA.len())
            .any(|w| w == PKCS7_SIGNED_DATA)
        {
            return Err(NotText {
                what: "a DER PKCS#7 bundle (.p7b)",
                help: "extract its certificates as PEM: `openssl pkcs7 -inform DER -print_certs -in FILE -out FILE.pem`",
            });
        }
    }
    Err(NotText {
        what: "binary data",
        help: "a certificate file holds `-----BEGIN CERTIFICATE-----` blocks; `file FILE` tells what this one is",
    })
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

    let secret = holds_private_key(text);
    // A label as messages may quote it: never from a file that holds a key.
    let shown = |label: &str| {
        if secret {
            "…".to_string()
        } else {
            crate::diag::excerpt(label)
        }
    };
    if text.starts_with(BOM) {
        scan.findings.push(finding(
            Code::Ct108,
            Span::new(0, BOM.len_utf8()),
            "the file starts with a UTF-8 byte order mark (outputs never carry it)".into(),
            Some("remove it: `sed -i '1s/^\\xEF\\xBB\\xBF//' FILE`"),
        ));
    }
    let lone_cr = text
        .as_bytes()
        .iter()
        .enumerate()
        .find(|&(i, b)| *b == b'\r' && text.as_bytes().get(i + 1) != Some(&b'\n'))
        .map(|(i, _)| i);
    if let Some(i) = lone_cr {
        let line_start = text[..i].rfind(['\n', '\r']).map_or(0, |j| j + 1);
        scan.findings.push(finding(
            Code::Ct101,
            Span::new(line_start, i),
            "CR line endings (old Mac style; outputs are normalised to LF)".into(),
            Some("convert the file to LF line endings: `mac2unix FILE` (Debian package dos2unix)"),
        ));
    } else if let Some(i) = text.find("\r\n") {
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
                format!("`-----BEGIN {}-----` has no END line", shown(label)),
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
                    format!(
                        "`-----BEGIN {}-----` ends with `-----END {}-----`",
                        shown(label),
                        shown(end_label)
                    ),
                    None,
                ));
                i = end + 1;
                continue;
            }
            None => {
                scan.findings.push(finding(
                    Code::Ct107,
                    line.span,
                    format!(
                        "`-----BEGIN {}-----` has no END line before the next BEGIN",
                        shown(label)
                    ),
                    None,
                ));
                i = end;
                continue;
            }
        }
        let body = &lines[i + 1..end];
        match label {
            l if certificate_label(l) => {
                if l != "CERTIFICATE" {
                    let what = if l == "TRUSTED CERTIFICATE" {
                        "OpenSSL's TRUSTED CERTIFICATE (a certificate with trust settings; catrust uses the certificate and drops the settings)"
                    } else {
                        "the old label X509 CERTIFICATE"
                    };
                    scan.findings.push(finding(
                        Code::Ct109,
                        block,
                        format!("`-----BEGIN {l}-----`: {what}"),
                        Some("write it as a plain certificate: `openssl x509 -in FILE -out FILE.pem`"),
                    ));
                }
                if let Some(cert) = decode_certificate(body, block, l, &mut scan.findings) {
                    scan.certificates.push(cert);
                }
            }
            // CT105 already reported by marker.
            l if is_key_label(l) => {}
            "PKCS7" | "CERTIFICATE CHAIN" if !secret => scan.findings.push(finding(
                Code::Ct104,
                block,
                "a PKCS#7 block (a .p7b bundle) is not a certificate".into(),
                Some(
                    "extract its certificates: `openssl pkcs7 -print_certs -in FILE -out FILE.pem`",
                ),
            )),
            l => scan.findings.push(finding(
                Code::Ct104,
                block,
                format!("a `{}` block is not a certificate", shown(l)),
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
            // One CT106 per file (certifi's cacert.pem has 117 comment blocks), at the
            // first stray line; a line that looks like a boundary but is not one
            // (`-----BEGIN CERTIFICATE----`) is CT107: the block it was meant to open
            // would otherwise be dropped silently.
            let mut first: Option<Span> = None;
            let mut stray = 0usize;
            let mut places = 0usize;
            let mut last: Option<usize> = None;
            for (index, line) in outside {
                if looks_like_boundary(line.text) {
                    scan.findings.push(finding(
                        Code::Ct107,
                        line.span,
                        format!("malformed PEM boundary line `{}`", shown(line.text.trim())),
                        Some("a boundary is exactly `-----BEGIN CERTIFICATE-----` (five dashes each side) on its own line"),
                    ));
                    last = None;
                    continue;
                }
                if last.is_none_or(|l| l + 1 != index) {
                    places += 1;
                }
                last = Some(index);
                stray += 1;
                first = Some(match first {
                    None => line.span,
                    Some(f) if places == 1 => Span::new(f.start, line.span.end),
                    Some(f) => f,
                });
            }
            if let Some(span) = first {
                let message = if stray == 1 {
                    "text outside PEM blocks: 1 line (not copied to outputs)".to_string()
                } else {
                    format!(
                        "text outside PEM blocks: {stray} lines in {places} place(s) (not copied to outputs)"
                    )
                };
                scan.findings
                    .push(finding(Code::Ct106, span, message, None));
            }
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
    label: &str,
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
        // A TRUSTED CERTIFICATE is the DER certificate followed by OpenSSL's trust
        // settings (X509_CERT_AUX).
        Ok((rest, _)) if label == "TRUSTED CERTIFICATE" => {
            findings.extend(stray);
            let len = der.len() - rest.len();
            Some(CertBlock {
                der: der[..len].to_vec(),
                span: block,
            })
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
