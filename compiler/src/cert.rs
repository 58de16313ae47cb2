//! What catrust needs to know about one certificate, read from its DER with x509-parser.

use x509_parser::prelude::*;

/// Facts about one certificate, independent of where it was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// Lowercase hex SHA-256 of the DER.
    pub sha256: String,
    pub subject: String,
    pub issuer: String,
    /// Unix seconds.
    pub not_before: i64,
    /// Unix seconds.
    pub not_after: i64,
    /// `None` when basicConstraints is absent.
    pub ca: Option<bool>,
    /// `None` when keyUsage is absent; else whether keyCertSign is set.
    pub key_cert_sign: Option<bool>,
    /// "RSA 2048", "EC P-256", "Ed25519", …
    pub key: String,
    /// Set for RSA keys.
    pub rsa_bits: Option<usize>,
    /// Short name of the signature algorithm (`sha256WithRSAEncryption`, …).
    pub signature: String,
    /// SHA-1, MD5 or MD2 signature.
    pub weak_signature: bool,
    /// Subject equals issuer, and the authority key id (if any) is the subject key id.
    pub self_signed: bool,
}

/// Reads the facts of a certificate. The DER was already checked by the PEM reader;
/// this still returns an error rather than panicking on anything it cannot read.
pub fn inspect(der: &[u8]) -> Result<CertInfo, String> {
    let (_, cert) = parse_x509_certificate(der).map_err(|e| e.to_string())?;
    let tbs = &cert.tbs_certificate;
    let ca = tbs
        .basic_constraints()
        .map_err(|e| e.to_string())?
        .map(|bc| bc.value.ca);
    let key_cert_sign = tbs
        .key_usage()
        .map_err(|e| e.to_string())?
        .map(|ku| ku.value.key_cert_sign());
    let (key, rsa_bits) = describe_key(tbs.public_key());
    let sig_oid = &cert.signature_algorithm.algorithm;
    let signature = oid_name(sig_oid);
    let weak_signature = WEAK_SIGNATURES.contains(&sig_oid.to_id_string().as_str());
    let ski = tbs
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0),
            _ => None,
        });
    let aki = tbs
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(a) => a.key_identifier.as_ref().map(|k| k.0),
            _ => None,
        });
    let self_signed = tbs.subject.as_raw() == tbs.issuer.as_raw()
        && match (aki, ski) {
            (Some(a), Some(s)) => a == s,
            _ => true,
        };
    Ok(CertInfo {
        sha256: catrust_bundle::sha256_hex(der),
        subject: name(&tbs.subject),
        issuer: name(&tbs.issuer),
        not_before: tbs.validity.not_before.timestamp(),
        not_after: tbs.validity.not_after.timestamp(),
        ca,
        key_cert_sign,
        key,
        rsa_bits,
        signature,
        weak_signature,
        self_signed,
    })
}

const WEAK_SIGNATURES: &[&str] = &[
    "1.2.840.113549.1.1.2", // md2WithRSAEncryption
    "1.2.840.113549.1.1.4", // md5WithRSAEncryption
    "1.2.840.113549.1.1.5", // sha1WithRSAEncryption
    "1.2.840.10045.4.1",    // ecdsa-with-SHA1
    "1.2.840.10040.4.3",    // dsa-with-sha1
    "1.3.14.3.2.29",        // sha1WithRSASignature (OIW)
];

fn oid_name(oid: &x509_parser::der_parser::oid::Oid) -> String {
    x509_parser::objects::oid2sn(oid, x509_parser::objects::oid_registry())
        .map(str::to_string)
        .unwrap_or_else(|_| oid.to_id_string())
}

fn name(n: &X509Name) -> String {
    let s = n.to_string();
    if s.is_empty() {
        "(empty)".into()
    } else {
        s
    }
}

fn describe_key(spki: &SubjectPublicKeyInfo) -> (String, Option<usize>) {
    let alg = spki.algorithm.algorithm.to_id_string();
    match spki.parsed() {
        Ok(x509_parser::public_key::PublicKey::RSA(rsa)) => {
            let bits = rsa_modulus_bits(rsa.modulus);
            (format!("RSA {bits}"), Some(bits))
        }
        Ok(x509_parser::public_key::PublicKey::EC(_)) => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|oid| match oid.to_id_string().as_str() {
                    "1.2.840.10045.3.1.7" => "P-256".to_string(),
                    "1.3.132.0.34" => "P-384".to_string(),
                    "1.3.132.0.35" => "P-521".to_string(),
                    other => other.to_string(),
                })
                .unwrap_or_else(|| "unknown curve".into());
            (format!("EC {curve}"), None)
        }
        _ => match alg.as_str() {
            "1.3.101.112" => ("Ed25519".into(), None),
            "1.3.101.113" => ("Ed448".into(), None),
            _ => (oid_name(&spki.algorithm.algorithm), None),
        },
    }
}

/// The exact bit length of an RSA modulus (big-endian, maybe with a leading zero
/// byte): a 2047-bit key is 2047, not the 2040 that counting bytes gives.
fn rsa_modulus_bits(modulus: &[u8]) -> usize {
    let digits: &[u8] = match modulus.iter().position(|b| *b != 0) {
        Some(i) => &modulus[i..],
        None => return 0,
    };
    digits.len() * 8 - digits[0].leading_zeros() as usize
}

/// RFC 3339 UTC timestamp, as outputs and reports show dates.
pub fn format_time(unix: i64) -> String {
    ::time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&::time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn rsa_sizes_count_bits_not_bytes() {
        assert_eq!(super::rsa_modulus_bits(&[0x00, 0x80, 0, 0]), 24);
        assert_eq!(super::rsa_modulus_bits(&[0x7f; 256]), 2047);
        assert_eq!(super::rsa_modulus_bits(&[0x01, 0xff]), 9);
        assert_eq!(super::rsa_modulus_bits(&[0, 0]), 0);
    }
}
