//! trust.yaml parsing + PEM loading + lint on arbitrary input.
//!
//! The input is split at the first NUL byte: before it is `trust.yaml`, after it the
//! contents of `a.pem` (and of `certs/b.pem`, so `file:` values naming either exist).
//! The PEM reader also runs on the whole input on its own. Asserted: every span lies
//! inside its file, and no report quotes a base64 line of a file holding a key marker.
#![no_main]

use catrust::source::MemSource;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (yaml, pem) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let _ = catrust::pem::scan(&String::from_utf8_lossy(data));
    let mut source = MemSource::default();
    source.files.insert("trust.yaml".into(), yaml.to_vec());
    source.files.insert("a.pem".into(), pem.to_vec());
    source.files.insert("certs/b.pem".into(), pem.to_vec());
    if let Ok(loaded) = catrust::load::load(&source, "trust.yaml") {
        let findings = catrust::lint::lint(&loaded, 1_798_761_600);
        // Every finding about a file points inside it.
        for d in &findings {
            if let Some(l) = &d.location {
                if let Some(f) = loaded.sources.get(&l.file) {
                    assert!(l.span.end <= f.text.len(), "{d:?} beyond {}", f.name);
                }
            }
        }
        let human = catrust::report::human(&findings, &loaded.sources, false);
        let json = catrust::report::json(&findings, &loaded.sources);
        // No report quotes a line of a file that holds a private key marker: checked
        // on its base64-looking lines that trust.yaml does not also hold.
        let pem_text = String::from_utf8_lossy(pem);
        if catrust::pem::holds_private_key(&pem_text) {
            let yaml_text = String::from_utf8_lossy(yaml);
            for line in pem_text.split(['\n', '\r']).map(str::trim) {
                let base64 = line.len() >= 24
                    && line
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=');
                if base64 && !yaml_text.contains(line) {
                    assert!(!human.contains(line), "human report quotes key line {line}");
                    assert!(!json.contains(line), "JSON report quotes key line {line}");
                }
            }
        }
        let _ = catrust::sarif::sarif(&findings, &loaded.sources, &loaded.config_file, &|f| {
            f.to_string()
        });
    }
});
