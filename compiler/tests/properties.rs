//! Properties of the PEM reader and the loader (proptest): no panic on any input,
//! every span inside its file, and canonical PEM read back to the same DER whatever
//! the line ends, wrapping and blank lines around it.

use base64::Engine as _;
use catrust::pem;
use catrust::rules::Code;
use catrust::source::MemSource;
use proptest::prelude::*;

const ROOT: &str = include_str!("../../tests/corpus/_pki/root-01.pem");
const INTERMEDIATE: &str = include_str!("../../tests/corpus/_pki/intermediate.pem");

fn der_of(pem_text: &str) -> Vec<u8> {
    let scan = pem::scan(pem_text);
    assert!(scan.findings.is_empty(), "{:?}", scan.findings);
    scan.certificates[0].der.clone()
}

/// Text made of the pieces PEM files and trust.yaml are made of, so that random
/// inputs reach past the first line.
fn pem_like() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("-----BEGIN CERTIFICATE-----".to_string()),
        Just("-----END CERTIFICATE-----".to_string()),
        Just("-----BEGIN RSA PRIVATE KEY-----".to_string()),
        Just("-----END PUBLIC KEY-----".to_string()),
        Just("\n".to_string()),
        Just("\r\n".to_string()),
        Just("MIIB".to_string()),
        Just("=".to_string()),
        Just("é".to_string()),
        "[A-Za-z0-9+/=:! \t-]{0,70}",
        any::<String>(),
    ];
    prop::collection::vec(piece, 0..40).prop_map(|v| v.concat())
}

fn yaml_like() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("apiVersion: catrust.dev/v1alpha1\nkind: TrustConfig\n".to_string()),
        Just("metadata:\n  name: corp\n".to_string()),
        Just("spec:\n  authorities:\n".to_string()),
        Just("    - name: a\n      file: a.pem\n".to_string()),
        Just("      pem: |\n        -----BEGIN CERTIFICATE-----\n".to_string()),
        Just("      sha256: [\"ab\", 1]\n".to_string()),
        Just("  targets:\n    aks:\n      resourceGroup: r\n      cluster: c\n".to_string()),
        Just("      nodePools:\n        - name: p\n          osType: Windows\n".to_string()),
        Just("  expiryWarning: 3x\n".to_string()),
        Just("  distrust:\n    - sha256: zz\n".to_string()),
        "[ a-z:\\-|\\[\\]{}\"'\n]{0,30}",
        any::<String>(),
    ];
    prop::collection::vec(piece, 0..20).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn scan_never_panics_and_spans_stay_inside(text in pem_like()) {
        let scan = pem::scan(&text);
        for f in &scan.findings {
            prop_assert!(f.span.start <= f.span.end && f.span.end <= text.len(), "{f:?}");
        }
        for c in &scan.certificates {
            prop_assert!(c.span.end <= text.len());
        }
    }

    #[test]
    fn canonical_pem_reads_back_to_the_same_der(
        crlf in any::<bool>(),
        width in 1usize..=120,
        blank_before in 0usize..3,
        blank_between in 0usize..3,
        trailing_spaces in 0usize..3,
    ) {
        let ders = [der_of(ROOT), der_of(INTERMEDIATE)];
        let nl = if crlf { "\r\n" } else { "\n" };
        let mut text = nl.repeat(blank_before);
        for der in &ders {
            // The canonical encoding reads back as is...
            let canonical = catrust_bundle::encode_pem(der);
            let again = pem::scan(&canonical);
            prop_assert!(again.findings.is_empty());
            prop_assert_eq!(&again.certificates[0].der, der);
            // ...and so does any wrapping, line end and padding of the same base64.
            let b64 = base64::engine::general_purpose::STANDARD.encode(der);
            text.push_str("-----BEGIN CERTIFICATE-----");
            text.push_str(nl);
            for chunk in b64.as_bytes().chunks(width) {
                text.push_str(std::str::from_utf8(chunk).unwrap());
                text.push_str(&" ".repeat(trailing_spaces));
                text.push_str(nl);
            }
            text.push_str("-----END CERTIFICATE-----");
            text.push_str(nl);
            text.push_str(&nl.repeat(blank_between));
        }
        let scan = pem::scan(&text);
        let codes: Vec<Code> = scan.findings.iter().map(|f| f.code).collect();
        // Trailing blanks inside a block are CT308 (once per block), a warning only.
        let mut expected: Vec<Code> = if crlf { vec![Code::Ct101] } else { vec![] };
        if trailing_spaces > 0 {
            expected.extend([Code::Ct308, Code::Ct308]);
        }
        prop_assert_eq!(codes, expected);
        let got: Vec<&Vec<u8>> = scan.certificates.iter().map(|c| &c.der).collect();
        prop_assert_eq!(got, ders.iter().collect::<Vec<_>>());
    }

    #[test]
    fn load_and_lint_never_panic(yaml in yaml_like(), pem_text in pem_like()) {
        let mut source = MemSource::default();
        source.files.insert("trust.yaml".into(), yaml.into_bytes());
        source.files.insert("a.pem".into(), pem_text.into_bytes());
        let loaded = catrust::load::load(&source, "trust.yaml").unwrap();
        let findings = catrust::lint::lint(&loaded, 1_798_761_600);
        for d in &findings {
            if let Some(l) = &d.location {
                let file = loaded.sources.get(&l.file).expect("findings point into known files");
                prop_assert!(l.span.end <= file.text.len(), "{d:?}");
            }
        }
        let _ = catrust::report::human(&findings, &loaded.sources, false);
    }
}
