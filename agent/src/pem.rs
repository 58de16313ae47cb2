//! Reading certificates back from the files the refresh generates and from the
//! system store: every `CERTIFICATE` block of a PEM file, and a certificate's notAfter.
//! Lenient on layout (whitespace, text between blocks) because these files are not ours.

use base64::Engine as _;

/// DER of every CERTIFICATE block in `text` (blocks that do not decode are skipped:
/// this reads foreign files and must not fail on them).
pub fn certificates(text: &[u8]) -> Vec<Vec<u8>> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let text = String::from_utf8_lossy(text);
    let mut out = Vec::new();
    let mut rest: &str = &text;
    while let Some(start) = rest.find(BEGIN) {
        let after = &rest[start + BEGIN.len()..];
        let Some(end) = after.find(END) else { break };
        let b64: String = after[..end]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        if let Ok(der) = base64::engine::general_purpose::STANDARD.decode(b64) {
            out.push(der);
        }
        rest = &after[end + END.len()..];
    }
    out
}

/// SHA-256 fingerprints of every certificate in a PEM file.
pub fn fingerprints(text: &[u8]) -> Vec<String> {
    certificates(text)
        .iter()
        .map(|d| catrust_bundle::sha256_hex(d))
        .collect()
}

/// One DER TLV: (tag, content, rest).
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&len0, mut rest) = rest.split_first()?;
    let len = if len0 < 0x80 {
        usize::from(len0)
    } else {
        let n = usize::from(len0 & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let mut len = 0usize;
        for &b in &rest[..n] {
            len = (len << 8) | usize::from(b);
        }
        rest = &rest[n..];
        len
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// notAfter of a certificate as Unix seconds. A small DER walk (Certificate →
/// TBSCertificate → validity) so the agent does not link an X.509 library.
pub fn not_after_unix(der: &[u8]) -> Option<i64> {
    let (0x30, cert, _) = tlv(der)? else {
        return None;
    };
    let (0x30, tbs, _) = tlv(cert)? else {
        return None;
    };
    let mut rest = tbs;
    // [0] version is optional.
    let (tag, _, r) = tlv(rest)?;
    if tag == 0xa0 {
        rest = r;
    }
    // serialNumber, signature, issuer, then validity.
    for _ in 0..3 {
        rest = tlv(rest)?.2;
    }
    let (0x30, validity, _) = tlv(rest)? else {
        return None;
    };
    let (_, _, after) = tlv(validity)?;
    let (tag, time, _) = tlv(after)?;
    parse_time(tag, time)
}

fn parse_time(tag: u8, t: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(t).ok()?.strip_suffix('Z')?;
    let num = |a: usize, b: usize| -> Option<i64> { s.get(a..b)?.parse().ok() };
    let (year, off) = match tag {
        0x17 => {
            let y = num(0, 2)?;
            (if y >= 50 { 1900 + y } else { 2000 + y }, 2)
        }
        0x18 => (num(0, 4)?, 4),
        _ => return None,
    };
    let (mo, d, h, mi, se) = (
        num(off, off + 2)?,
        num(off + 2, off + 4)?,
        num(off + 4, off + 6)?,
        num(off + 6, off + 8)?,
        num(off + 8, off + 10)?,
    );
    Some(days_from_civil(year, mo, d) * 86400 + h * 3600 + mi * 60 + se)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(parse_time(0x17, b"491231235959Z"), Some(2_524_607_999));
        assert_eq!(parse_time(0x18, b"20500101000000Z"), Some(2_524_608_000));
    }

    #[test]
    fn garbage_is_skipped_not_fatal() {
        assert!(certificates(b"hello").is_empty());
        assert!(
            certificates(b"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n")
                .is_empty()
        );
        assert_eq!(not_after_unix(b"\x30\x03abc"), None);
        assert_eq!(not_after_unix(b""), None);
    }
}
