//! The agent's bundle reader on a kubelet-style Secret volume built from the input.
//!
//! The input is a list of records separated by NUL bytes. A record's first byte picks
//! an operation, the rest is `name` and `content` split at the first 0x01 byte. The
//! volume starts as `vol/..v0/` with `..data -> ..v0`; beside it, `outside/` holds
//! files whose content is a marker no input can guess (it is random per process). A
//! content starting with `@` names `outside/` by its absolute path (`@` alone is the
//! folder, `@/a.crt` a file in it). Operations (first byte modulo 10):
//!
//! 0 file in the current version folder, 1 file beside `..data`, 2 symlink beside
//! `..data`, 3 symlink in the version folder, 4 folder beside `..data` (a `..` name
//! becomes the current version folder), 5 `..data -> content`, 6 `bundle.json` in the
//! version folder, 7 FIFO in the version folder, 8 a valid sealed bundle (with its
//! visible links), 9 folder in the version folder.
//!
//! Then `catrust_agent::bundle_dir::read` runs, and `catrust_bundle::verify` on what it
//! read (without and with the expected hash). It must not panic or hang, and nothing it
//! returns may hold the marker: it never reads outside the volume (an input that
//! holds the marker itself, which libFuzzer learns from the comparison, is skipped).
#![no_main]

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;

static MARKER: LazyLock<String> = LazyLock::new(|| {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("OUTSIDE-{}-{nanos:x}", std::process::id())
});

/// A valid sealed bundle: (bundle.json, key, canonical PEM).
static SEALED: LazyLock<(Vec<u8>, String, Vec<u8>)> = LazyLock::new(|| {
    let der = b"fuzz: bytes standing in for a DER certificate".to_vec();
    let manifest = catrust_bundle::Manifest::seal(catrust_bundle::BundleContent {
        schema_version: catrust_bundle::SCHEMA_VERSION,
        config_name: "fuzz".into(),
        authorities: vec![catrust_bundle::Authority {
            name: "root-a".into(),
            sha256: catrust_bundle::sha256_hex(&der),
            registries: vec![
                "registry.example:5000".parse().expect("valid"),
                "[::1]:5000".parse().expect("valid"),
            ],
            pools: vec![],
        }],
        distrust: vec![],
        containerd: catrust_bundle::ContainerdPolicy::Restart,
    });
    (
        manifest.to_json().into_bytes(),
        "root-a.crt".into(),
        catrust_bundle::encode_pem(&der).into_bytes(),
    )
});

/// A file name from input bytes: no `/` or NUL, at most 64 bytes, never empty.
fn name(bytes: &[u8]) -> PathBuf {
    let clean: Vec<u8> = bytes
        .iter()
        .copied()
        .filter(|b| *b != b'/' && *b != 0)
        .take(64)
        .collect();
    let clean = match clean.as_slice() {
        b"" | b"." | b".." => b"x".to_vec(),
        _ => clean,
    };
    PathBuf::from(OsStr::from_bytes(&clean))
}

/// A link target: `@…` names the outside folder, anything else is taken as it is.
fn target(bytes: &[u8], outside: &Path) -> PathBuf {
    match bytes.strip_prefix(b"@") {
        Some(rest) => {
            let mut p = outside.as_os_str().as_bytes().to_vec();
            p.extend_from_slice(rest);
            PathBuf::from(OsStr::from_bytes(&p))
        }
        None if bytes.is_empty() => PathBuf::from("x"),
        None => PathBuf::from(OsStr::from_bytes(bytes)),
    }
}

/// Writes a file as the input asks; `O_NONBLOCK`, so writing where the input made a
/// FIFO fails instead of blocking the harness.
fn write(path: &Path, content: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)?
        .write_all(content)
}

fn fifo(path: &Path) {
    let _ = rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    );
}

fuzz_target!(|data: &[u8]| {
    let tmp = tempfile::tempdir().expect("temp dir");
    let outside = tmp.path().join("outside");
    let vol = tmp.path().join("vol");
    let marker = MARKER.as_bytes();
    let holds_marker = |bytes: &[u8]| bytes.windows(marker.len()).any(|w| w == marker);
    // libFuzzer learns the marker from the comparisons below and writes it into the
    // volume itself; only an input without it can prove a read from outside.
    if holds_marker(data) {
        return;
    }
    for d in [&outside, &outside.join("..v0"), &vol.join("..v0")] {
        std::fs::create_dir_all(d).expect("folders");
    }
    for f in ["a.crt", "bundle.json", "root-a.crt", "..v0/root-a.crt", "..v0/bundle.json"] {
        std::fs::write(outside.join(f), marker).expect("outside files");
    }
    symlink("..v0", vol.join("..data")).expect("..data");
    let mut current = vol.join("..v0");

    for record in data.split(|b| *b == 0).take(64) {
        let Some((&op, rest)) = record.split_first() else {
            continue;
        };
        let (n, content) = match rest.iter().position(|b| *b == 1) {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &[][..]),
        };
        let n = name(n);
        // Every operation may fail (a name already taken, …): that is part of the input.
        let _ = match op % 10 {
            0 => write(&current.join(&n), content),
            1 => write(&vol.join(&n), content),
            2 => symlink(target(content, &outside), vol.join(&n)),
            3 => symlink(target(content, &outside), current.join(&n)),
            4 => {
                let dir = vol.join(&n);
                let made = std::fs::create_dir(&dir);
                if n.as_os_str().as_bytes().starts_with(b"..") {
                    current = dir;
                }
                made
            }
            5 => {
                let _ = std::fs::remove_file(vol.join("..data"));
                symlink(target(content, &outside), vol.join("..data"))
            }
            6 => write(&current.join(catrust_bundle::MANIFEST_KEY), content),
            7 => {
                fifo(&current.join(&n));
                Ok(())
            }
            8 => {
                let (json, key, pem) = &*SEALED;
                let _ = write(&current.join(catrust_bundle::MANIFEST_KEY), json);
                let _ = write(&current.join(key), pem);
                for k in [catrust_bundle::MANIFEST_KEY, key.as_str()] {
                    let _ = symlink(format!("..data/{k}"), vol.join(k));
                }
                Ok(())
            }
            _ => std::fs::create_dir(current.join(&n)),
        };
    }

    match catrust_agent::bundle_dir::read(&vol) {
        Ok(read) => {
            for (key, bytes) in &read.files {
                assert!(!holds_marker(bytes), "{key}: read from outside the volume");
                assert!(!key.contains('/') && !key.starts_with(".."), "{key:?}");
            }
            if let Ok(v) = catrust_bundle::verify(&read.files, None) {
                let hash = v.manifest.bundle_sha256.clone();
                assert!(catrust_bundle::verify(&read.files, Some(&hash)).is_ok());
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
