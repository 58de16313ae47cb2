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
    let quote = Quote {
        secret: holds_private_key(text),
    };
    let mut scan = PemScan::default();
    // Whole-file hygiene first: it does not depend on the blocks.
    scan.findings.extend(byte_order_mark(text));
    scan.findings.extend(line_ends(text));
    scan.findings.extend(key_markers(text));

    let lines = lines(text);
    let (blocks, outside) = split_blocks(&lines);
    for block in blocks {
        read_block(block, quote, &mut scan);
    }
    // Last: whether the text outside is a certificate depends on what the blocks held.
    if !outside.is_empty() {
        let findings = text_outside(&outside, quote, &scan);
        scan.findings.extend(findings);
    }
    scan
}

fn finding(code: Code, span: Span, message: impl Into<String>, help: Option<&str>) -> PemFinding {
    PemFinding {
        code,
        span,
        message: message.into(),
        help: help.map(str::to_string),
    }
}

/// How messages may quote the scanned text: never any of it when it holds a key.
#[derive(Clone, Copy)]
struct Quote {
    secret: bool,
}

impl Quote {
    /// A label or line as a message quotes it.
    fn shown(self, text: &str) -> String {
        if self.secret {
            "…".to_string()
        } else {
            crate::diag::excerpt(text)
        }
    }
}

/// CT108: a UTF-8 byte order mark.
fn byte_order_mark(text: &str) -> Option<PemFinding> {
    text.starts_with(BOM).then(|| {
        finding(
            Code::Ct108,
            Span::new(0, BOM.len_utf8()),
            "the file starts with a UTF-8 byte order mark (outputs never carry it)",
            Some("remove it: `sed -i '1s/^\\xEF\\xBB\\xBF//' FILE`"),
        )
    })
}

/// CT101 once per file, at the first line that ends in CR: a lone CR anywhere is
/// reported before CRLF (it is the rarer and the one tools misread).
fn line_ends(text: &str) -> Option<PemFinding> {
    let bytes = text.as_bytes();
    let lone_cr = (0..bytes.len()).find(|&i| bytes[i] == b'\r' && bytes.get(i + 1) != Some(&b'\n'));
    if let Some(i) = lone_cr {
        let line_start = text[..i].rfind(['\n', '\r']).map_or(0, |j| j + 1);
        return Some(finding(
            Code::Ct101,
            Span::new(line_start, i),
            "CR line endings (old Mac style; outputs are normalised to LF)",
            Some("convert the file to LF line endings: `mac2unix FILE` (Debian package dos2unix)"),
        ));
    }
    let i = text.find("\r\n")?;
    let line_start = text[..i].rfind('\n').map_or(0, |j| j + 1);
    Some(finding(
        Code::Ct101,
        Span::new(line_start, i),
        "CRLF line endings (outputs are normalised to LF)",
        None,
    ))
}

/// CT105 at every private key marker, inside a block or not.
fn key_markers(text: &str) -> impl Iterator<Item = PemFinding> + '_ {
    PRIVATE_KEY_MARKERS.iter().flat_map(move |marker| {
        text.match_indices(marker).map(move |(i, _)| {
            finding(
                Code::Ct105,
                Span::new(i, i + marker.len()),
                format!("private key material (`{marker}`)"),
                Some("remove the key from the file and from git history, and treat the CA as compromised"),
            )
        })
    })
}

/// A BEGIN line and what closes it.
enum Block<'a> {
    /// An END line with the same label: the lines between are the body.
    Whole {
        label: &'a str,
        begin: Span,
        body: &'a [Line<'a>],
    },
    /// An END line with another label.
    Mismatched {
        label: &'a str,
        end_label: &'a str,
        end: Span,
    },
    /// Another BEGIN line before any END line.
    Unclosed { label: &'a str, begin: Span },
    /// No END line up to the end of the text.
    Truncated { label: &'a str, begin: Span },
}

/// A line outside every block, with its index (to group neighbours).
type OutsideLine<'a> = (usize, &'a Line<'a>);

/// The blocks of `lines` in order, and the non-blank lines outside them. A truncated
/// block ends the reading: what follows its BEGIN line is its body, not stray text.
fn split_blocks<'a>(lines: &'a [Line<'a>]) -> (Vec<Block<'a>>, Vec<OutsideLine<'a>>) {
    let mut blocks = Vec::new();
    let mut outside = Vec::new();
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
        let (block, next) = close_block(lines, i, label);
        blocks.push(block);
        match next {
            Some(next) => i = next,
            None => break,
        }
    }
    (blocks, outside)
}

/// The block `lines[begin]` opens, and the index to read on from (none after a
/// truncated block). A BEGIN line before any END opens the next block.
fn close_block<'a>(
    lines: &'a [Line<'a>],
    begin: usize,
    label: &'a str,
) -> (Block<'a>, Option<usize>) {
    let begin_span = lines[begin].span;
    let Some(end) = (begin + 1..lines.len())
        .find(|&j| end_label(lines[j].text).is_some() || begin_label(lines[j].text).is_some())
    else {
        let block = Block::Truncated {
            label,
            begin: begin_span,
        };
        return (block, None);
    };
    match end_label(lines[end].text) {
        Some(end_label) if end_label == label => {
            let body = &lines[begin + 1..end];
            let block = Block::Whole {
                label,
                begin: begin_span,
                body,
            };
            (block, Some(end + 1))
        }
        Some(end_label) => {
            let end_span = lines[end].span;
            let block = Block::Mismatched {
                label,
                end_label,
                end: end_span,
            };
            (block, Some(end + 1))
        }
        None => {
            let block = Block::Unclosed {
                label,
                begin: begin_span,
            };
            (block, Some(end))
        }
    }
}

/// The findings and the certificate of one block. Findings about a whole block point
/// at its BEGIN line: quoting 30 lines of base64 helps nobody.
fn read_block(block: Block, quote: Quote, scan: &mut PemScan) {
    let broken = match block {
        Block::Whole { label, begin, body } => return read_whole(label, begin, body, quote, scan),
        Block::Mismatched {
            label,
            end_label,
            end,
        } => finding(
            Code::Ct107,
            end,
            format!(
                "`-----BEGIN {}-----` ends with `-----END {}-----`",
                quote.shown(label),
                quote.shown(end_label)
            ),
            None,
        ),
        Block::Unclosed { label, begin } => finding(
            Code::Ct107,
            begin,
            format!(
                "`-----BEGIN {}-----` has no END line before the next BEGIN",
                quote.shown(label)
            ),
            None,
        ),
        Block::Truncated { label, begin } => finding(
            Code::Ct107,
            begin,
            format!("`-----BEGIN {}-----` has no END line", quote.shown(label)),
            Some("the block is truncated: export the certificate again"),
        ),
    };
    scan.findings.push(broken);
}

/// A block with its END line: a certificate is decoded, any other label reported.
fn read_whole(label: &str, block: Span, body: &[Line], quote: Quote, scan: &mut PemScan) {
    if certificate_label(label) {
        scan.findings.extend(other_certificate_label(label, block));
        if let Some(cert) = decode_certificate(body, block, label, &mut scan.findings) {
            scan.certificates.push(cert);
        }
    } else {
        scan.findings.extend(not_a_certificate(label, block, quote));
    }
}

/// CT109 for the certificate labels other than `CERTIFICATE` that OpenSSL reads.
fn other_certificate_label(label: &str, block: Span) -> Option<PemFinding> {
    let what = match label {
        "CERTIFICATE" => return None,
        "TRUSTED CERTIFICATE" => "OpenSSL's TRUSTED CERTIFICATE (a certificate with trust settings; catrust uses the certificate and drops the settings)",
        _ => "the old label X509 CERTIFICATE",
    };
    Some(finding(
        Code::Ct109,
        block,
        format!("`-----BEGIN {label}-----`: {what}"),
        Some("write it as a plain certificate: `openssl x509 -in FILE -out FILE.pem`"),
    ))
}

/// CT104 for a block that is not a certificate. None for a key: [`key_markers`]
/// reported it (CT105).
fn not_a_certificate(label: &str, block: Span, quote: Quote) -> Option<PemFinding> {
    if is_key_label(label) {
        return None;
    }
    Some(match label {
        "PKCS7" | "CERTIFICATE CHAIN" if !quote.secret => finding(
            Code::Ct104,
            block,
            "a PKCS#7 block (a .p7b bundle) is not a certificate",
            Some("extract its certificates: `openssl pkcs7 -print_certs -in FILE -out FILE.pem`"),
        ),
        _ => finding(
            Code::Ct104,
            block,
            format!("a `{}` block is not a certificate", quote.shown(label)),
            Some("remove the block; trust stores take CA certificates only"),
        ),
    })
}

/// What the non-blank lines outside blocks are, taken together.
enum Outside {
    /// The base64 of a PEM file: the file was encoded a second time.
    DoubleBase64,
    /// The base64 of one DER certificate, in a file without blocks.
    BareDer,
    /// Anything else.
    Text,
}

fn what_is_outside(outside: &[OutsideLine], no_certificates: bool) -> Outside {
    let joined: String = outside.iter().map(|(_, l)| l.text.trim()).collect();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(joined.as_bytes())
        .ok();
    let Some(decoded) = decoded else {
        return Outside::Text;
    };
    if String::from_utf8_lossy(&decoded).contains("-----BEGIN CERTIFICATE-----") {
        Outside::DoubleBase64
    } else if no_certificates
        && matches!(x509_parser::parse_x509_certificate(&decoded), Ok(([], _)))
    {
        Outside::BareDer
    } else {
        Outside::Text
    }
}

/// The findings about the lines outside blocks (CT102, CT103, or CT106 and CT107).
fn text_outside(outside: &[OutsideLine], quote: Quote, scan: &PemScan) -> Vec<PemFinding> {
    let span = Span::new(
        outside[0].1.span.start,
        outside[outside.len() - 1].1.span.end,
    );
    match what_is_outside(outside, scan.certificates.is_empty()) {
        Outside::BareDer => vec![finding(
            Code::Ct103,
            span,
            "base64 of a DER certificate without the PEM BEGIN/END lines",
            Some("put `-----BEGIN CERTIFICATE-----` before and `-----END CERTIFICATE-----` after it (or `openssl x509 -inform DER`)"),
        )],
        Outside::DoubleBase64 => vec![finding(
            Code::Ct102,
            span,
            "base64 of a PEM certificate (encoded twice): the file must hold the PEM itself",
            Some("decode it once (`base64 -d`) and commit the PEM"),
        )],
        // A key outside PEM blocks (PuTTY, SSH2) is CT105 already; quoting its lines
        // as stray text would copy key material into CI logs.
        Outside::Text if scan.findings.iter().any(|f| f.code == Code::Ct105) => Vec::new(),
        Outside::Text => stray_text(outside, quote),
    }
}

/// One CT106 per file (certifi's cacert.pem has 117 comment blocks), at the first
/// stray line; a line that looks like a boundary but is not one
/// (`-----BEGIN CERTIFICATE----`) is CT107: the block it was meant to open would
/// otherwise be dropped silently.
fn stray_text(outside: &[OutsideLine], quote: Quote) -> Vec<PemFinding> {
    let mut findings = Vec::new();
    let mut stray = StrayText::default();
    for &(index, line) in outside {
        if looks_like_boundary(line.text) {
            findings.push(finding(
                Code::Ct107,
                line.span,
                format!("malformed PEM boundary line `{}`", quote.shown(line.text.trim())),
                Some("a boundary is exactly `-----BEGIN CERTIFICATE-----` (five dashes each side) on its own line"),
            ));
            stray.interrupt();
        } else {
            stray.add(index, line.span);
        }
    }
    findings.extend(stray.finding());
    findings
}

/// Stray lines counted as CT106 tells them: lines, places (runs of neighbouring
/// lines) and the span of the first place.
#[derive(Default)]
struct StrayText {
    first: Option<Span>,
    lines: usize,
    places: usize,
    last: Option<usize>,
}

impl StrayText {
    fn add(&mut self, index: usize, span: Span) {
        if self.last.is_none_or(|l| l + 1 != index) {
            self.places += 1;
        }
        self.last = Some(index);
        self.lines += 1;
        self.first = Some(match self.first {
            None => span,
            Some(f) if self.places == 1 => Span::new(f.start, span.end),
            Some(f) => f,
        });
    }

    /// A malformed boundary between two stray lines makes them two places.
    fn interrupt(&mut self) {
        self.last = None;
    }

    fn finding(&self) -> Option<PemFinding> {
        let span = self.first?;
        let message = if self.lines == 1 {
            "text outside PEM blocks: 1 line (not copied to outputs)".to_string()
        } else {
            format!(
                "text outside PEM blocks: {} lines in {} place(s) (not copied to outputs)",
                self.lines, self.places
            )
        };
        Some(finding(Code::Ct106, span, message, None))
    }
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

/// The certificate of a CERTIFICATE block, and CT308 where its body has blank lines
/// or indentation; a block that does not decode gets one CT107 instead.
fn decode_certificate(
    body: &[Line],
    block: Span,
    label: &str,
    findings: &mut Vec<PemFinding>,
) -> Option<CertBlock> {
    match certificate_der(body, block, label) {
        Ok(der) => {
            // Only for a block that decodes: a broken one has its CT107 already.
            findings.extend(whitespace_in_body(body, block));
            Some(CertBlock { der, span: block })
        }
        Err(broken) => {
            findings.push(broken);
            None
        }
    }
}

/// The DER certificate of a block's body, or the CT107 that says why there is none.
fn certificate_der(body: &[Line], block: Span, label: &str) -> Result<Vec<u8>, PemFinding> {
    let broken = |message: String| finding(Code::Ct107, block, message, None);
    let b64 = body_base64(body)?;
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64.as_bytes())
        .map_err(|e| broken(format!("bad base64 in a CERTIFICATE block: {e}")))?;
    match x509_parser::parse_x509_certificate(&der) {
        Ok(([], _)) => Ok(der),
        // A TRUSTED CERTIFICATE is the DER certificate followed by OpenSSL's trust
        // settings (X509_CERT_AUX).
        Ok((rest, _)) if label == "TRUSTED CERTIFICATE" => {
            let len = der.len() - rest.len();
            Ok(der[..len].to_vec())
        }
        Ok(_) => Err(broken(
            "bytes after the certificate's DER in a CERTIFICATE block".into(),
        )),
        Err(e) => Err(broken(format!(
            "the CERTIFICATE block is not a valid X.509 certificate: {e}"
        ))),
    }
}

/// The base64 text of a body, or the CT107 at the first line that cannot be part of it.
fn body_base64(body: &[Line]) -> Result<String, PemFinding> {
    let mut b64 = String::new();
    for line in body {
        let t = line.text.trim();
        if t.contains(':') {
            // RFC 1421 headers (Proc-Type, DEK-Info) have no place in a certificate.
            return Err(finding(
                Code::Ct107,
                line.span,
                "header line inside a CERTIFICATE block",
                None,
            ));
        }
        if let Some(bad) = t
            .bytes()
            .position(|b| !(b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'='))
        {
            let at = line.span.start + (line.text.len() - line.text.trim_start().len()) + bad;
            return Err(finding(
                Code::Ct107,
                Span::new(at, at + 1),
                "character outside the base64 alphabet in a CERTIFICATE block",
                None,
            ));
        }
        b64.push_str(t);
    }
    Ok(b64)
}

/// CT308, the AKS troubleshooting case: reported once per block, at its BEGIN line
/// (never quoting a line of the body).
fn whitespace_in_body(body: &[Line], block: Span) -> Option<PemFinding> {
    let n = body.iter().position(|l| {
        l.text.trim().is_empty()
            || l.text.starts_with(char::is_whitespace)
            || l.span.end - l.span.start != l.text.len()
    })?;
    Some(finding(
        Code::Ct308,
        block,
        format!(
            "blank line or whitespace inside the CERTIFICATE block (line {} of the block; outputs are normalised)",
            n + 2
        ),
        None,
    ))
}
