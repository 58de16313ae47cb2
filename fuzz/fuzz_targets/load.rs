//! trust.yaml parsing + PEM loading + lint on arbitrary input.
//!
//! The input is split at the first NUL byte: before it is `trust.yaml`, after it the
//! contents of `a.pem` (and of `certs/b.pem`, so `file:` values naming either exist).
//! The PEM reader also runs on the whole input on its own.
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
        let _ = catrust::report::human(&findings, &loaded.sources, false);
        let _ = catrust::report::json(&findings, &loaded.sources);
        let _ = catrust::sarif::sarif(&findings, &loaded.sources, &loaded.config_file, &|f| {
            f.to_string()
        });
    }
});
