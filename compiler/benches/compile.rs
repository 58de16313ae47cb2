//! Compile and lint 142 CAs (Debian's Mozilla set) through the library, in memory.
//! Whole-process comparisons against other tools live in `bench/compare.sh`.

use catrust::compile::{self, Request};
use catrust::render::TargetSelection;
use catrust::source::MemSource;
use catrust::templates::Templates;
use criterion::{criterion_group, criterion_main, Criterion};

/// Early 2023, when the Debian Mozilla set was current.
const NOW: i64 = 1_677_000_000;

fn mozilla() -> MemSource {
    let dir = std::path::Path::new("/usr/share/ca-certificates/mozilla");
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("apt-get install -y ca-certificates")
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    let mut source = MemSource::default();
    let mut yaml = String::from("apiVersion: catrust.dev/v1alpha1\nkind: TrustConfig\nmetadata:\n  name: mozilla\nspec:\n  authorities:\n");
    for (i, path) in entries.iter().enumerate() {
        let name = format!("ca-{i:03}");
        yaml.push_str(&format!(
            "    - name: {name}\n      file: certs/{name}.pem\n"
        ));
        source
            .files
            .insert(format!("certs/{name}.pem"), std::fs::read(path).unwrap());
    }
    yaml.push_str("  targets:\n    aks:\n      resourceGroup: rg\n      cluster: c\n      certificatesFile: false\n    agent:\n      image: example/catrust-agent:0.1.0\n");
    source.files.insert("trust.yaml".into(), yaml.into_bytes());
    source
}

fn bench(c: &mut Criterion) {
    let source = mozilla();
    let templates = Templates::default();
    c.bench_function("build 142 CAs (aks + agent)", |b| {
        b.iter(|| {
            let outcome = compile::build(&Request {
                source: &source,
                config_path: "trust.yaml",
                selection: TargetSelection::Declared,
                templates: &templates,
                now: NOW,
                deny_warnings: false,
            })
            .unwrap();
            assert!(outcome.rendered.is_some());
        })
    });
    c.bench_function("lint 142 CAs", |b| {
        b.iter(|| {
            let loaded = catrust::load::load(&source, "trust.yaml").unwrap();
            catrust::lint::lint(&loaded, NOW)
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
