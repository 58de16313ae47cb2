//! Hostile input (issue 12): trust.yaml and its files come from pull requests, and the
//! Argo CD plugin runs on any repository. Each test here failed before its fix:
//! nothing is written outside `--out`, deep nesting is a coded CT001 and no crash,
//! no report quotes key material, reads are bounded and never block.

use std::path::Path;
use std::process::{Command, Output};

use catrust_tests::{bin, catrust, run, snapshot_tree, workspace_root};

const HEADER: &str = "apiVersion: catrust.dev/v1alpha1
kind: TrustConfig
metadata:
  name: corp
";

fn agent_target() -> &'static str {
    "  targets:\n    agent:\n      image: registry.example/catrust-agent:1.0.0\n"
}

/// `dir/trust.yaml` with `authorities` (YAML lines under `spec.authorities`) and root-01.
fn write_repo(dir: &Path, authorities: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::copy(
        workspace_root().join("tests/corpus/_pki/root-01.pem"),
        dir.join("root.pem"),
    )
    .unwrap();
    std::fs::write(
        dir.join("trust.yaml"),
        format!(
            "{HEADER}spec:\n  authorities:\n{authorities}{}",
            agent_target()
        ),
    )
    .unwrap();
}

/// The Argo CD plugin's `generate` in `dir`, as argocd-cmp-server runs it.
fn plugin_cmd(dir: &Path) -> Command {
    let mut cmd = Command::new(bin("argocd-catrust-plugin"));
    cmd.arg("generate")
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .env("ARGOCD_APP_NAME", "corp-trust")
        .env("ARGOCD_APP_NAMESPACE", "argocd")
        .env("ARGOCD_APP_SOURCE_PATH", ".")
        .env("ARGOCD_ENV_CATRUST_TARGET", "agent");
    cmd
}

fn plugin(dir: &Path) -> Output {
    run(&mut plugin_cmd(dir))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn a_pool_name_never_becomes_a_path_outside_out() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("a/b/repo");
    write_repo(
        &repo,
        "    - name: corp-root\n      file: root.pem\n      pools: [\"/../../../../x\"]\n",
    );
    let before = snapshot_tree(tmp.path());
    let out = catrust(&repo, &["build", "--out", "out"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(text(&out.stderr).contains("CT008"), "{}", text(&out.stderr));
    assert_eq!(snapshot_tree(tmp.path()), before, "build wrote something");
    let o = plugin(&repo);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(o.stdout.is_empty());
    assert!(
        text(&o.stderr).contains("error[CT008]"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn deep_nesting_is_a_coded_error_in_lint_build_and_the_plugin() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, nest) in [
        ("block", format!("x-nest:\n  {}x\n", "- ".repeat(20_000))),
        (
            "flow",
            format!("x-nest: {}x{}\n", "[".repeat(20_000), "]".repeat(20_000)),
        ),
        (
            "mapping",
            (0..1_000)
                .map(|i| format!("{}k:\n", " ".repeat(i)))
                .collect::<String>(),
        ),
    ] {
        let repo = tmp.path().join(name);
        write_repo(&repo, "    - name: corp-root\n      file: root.pem\n");
        let trust = repo.join("trust.yaml");
        let yaml = std::fs::read_to_string(&trust).unwrap();
        std::fs::write(&trust, format!("{yaml}  {}", nest.replace('\n', "\n  "))).unwrap();
        for args in [
            &["lint"][..],
            &["lint", "--format", "json"],
            &["build", "--out", "out"],
        ] {
            let o = catrust(&repo, args);
            assert_eq!(o.status.code(), Some(1), "{name} {args:?}: {o:?}");
            assert!(
                text(&o.stdout).contains("CT001") || text(&o.stderr).contains("CT001"),
                "{name} {args:?}"
            );
        }
        assert!(!repo.join("out").exists());
        // Release-like and worse: a 512 KiB stack, the least a debug build needs for
        // any file (the release build overflowed its 8 MiB at 20,000 levels).
        let o = run(Command::new("sh")
            .arg("-c")
            .arg("ulimit -s 512 && exec \"$0\" lint")
            .arg(bin("catrust"))
            .current_dir(&repo));
        assert_eq!(o.status.code(), Some(1), "{name} with a small stack: {o:?}");
        assert!(text(&o.stdout).contains("CT001"), "{name}");
        let o = plugin(&repo);
        assert_eq!(o.status.code(), Some(1), "{name} plugin: {o:?}");
        assert!(
            text(&o.stderr).contains("error[CT001]"),
            "{}",
            text(&o.stderr)
        );
    }
}

/// `cmd` must finish within `secs` (a FIFO used to block forever).
fn within(secs: u64, cmd: &mut Command) -> Output {
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let id = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output().unwrap()));
    rx.recv_timeout(std::time::Duration::from_secs(secs))
        .unwrap_or_else(|_| {
            let _ = Command::new("kill").arg("-9").arg(id.to_string()).status();
            panic!("{cmd:?} did not finish within {secs} s")
        })
}

#[test]
fn only_regular_files_of_bounded_size_are_read_and_nothing_blocks() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    write_repo(&repo, "    - name: corp-root\n      file: CERT\n");
    let trust = std::fs::read_to_string(repo.join("trust.yaml")).unwrap();
    let fifo = repo.join("fifo.pem");
    assert!(run(Command::new("mkfifo").arg(&fifo)).status.success());
    std::fs::create_dir(repo.join("certs")).unwrap();
    let big = std::fs::File::create(repo.join("big.pem")).unwrap();
    big.set_len(catrust::source::MAX_FILE_BYTES + 1).unwrap();
    for (file, expected) in [
        (
            "fifo.pem",
            "fifo.pem is a FIFO (named pipe), not a regular file",
        ),
        ("certs", "certs is a folder, not a regular file"),
        ("\"\"", "`file` is empty"),
        ("big.pem", "big.pem is larger than 4 MiB"),
    ] {
        std::fs::write(repo.join("trust.yaml"), trust.replace("CERT", file)).unwrap();
        for args in [
            &["lint", "--format", "json"][..],
            &["build", "--out", "out"],
        ] {
            let o = within(
                20,
                Command::new(bin("catrust")).args(args).current_dir(&repo),
            );
            assert_eq!(o.status.code(), Some(1), "{file} {args:?}: {o:?}");
            let all = text(&o.stdout) + &text(&o.stderr);
            assert!(
                all.contains("CT005") && all.contains(expected),
                "{file}: {all}"
            );
            assert!(!all.contains("permissions"), "{all}");
        }
        let o = within(20, &mut plugin_cmd(&repo));
        assert_eq!(o.status.code(), Some(1), "{file} plugin: {o:?}");
        assert!(text(&o.stderr).contains(expected), "{}", text(&o.stderr));
    }
    // trust.yaml itself: over the cap is an invocation error (exit 2) naming it.
    let mut huge = trust.replace("CERT", "root.pem");
    huge.push_str(&"# padding\n".repeat(500_000));
    std::fs::write(repo.join("trust.yaml"), &huge).unwrap();
    let o = catrust(&repo, &["lint"]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    assert!(
        text(&o.stderr).contains("larger than 4 MiB"),
        "{}",
        text(&o.stderr)
    );
    let o = plugin(&repo);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    assert!(
        text(&o.stderr).contains("larger than 4 MiB"),
        "{}",
        text(&o.stderr)
    );
    // inspect: a FIFO, /dev/zero and a folder are refused at once (exit 2).
    for path in [
        fifo.to_str().unwrap(),
        "/dev/zero",
        repo.join("certs").to_str().unwrap(),
    ] {
        let o = within(20, Command::new(bin("catrust")).args(["inspect", path]));
        assert_eq!(o.status.code(), Some(2), "inspect {path}: {o:?}");
        assert!(
            text(&o.stderr).contains("not a regular file"),
            "{}",
            text(&o.stderr)
        );
    }
}

/// `catrust init` over the machine's whole Mozilla set (Debian's ca-certificates, one
/// file per root), then `lint`: no finding but expiry (CT202, CT203) — no CT301 for more than
/// 10 certificates, no CT207 on the SHA-1 self-signatures of old roots. Then the same
/// roots as one bundle file: its authority is named after the file, not its first CN.
#[test]
fn init_output_passes_lint_on_the_whole_mozilla_set() {
    let mozilla = Path::new("/usr/share/ca-certificates/mozilla");
    assert!(
        mozilla.is_dir(),
        "{} is missing: install the Debian package ca-certificates",
        mozilla.display()
    );
    let tmp = tempfile::tempdir().unwrap();
    let certs = tmp.path().join("certs");
    std::fs::create_dir(&certs).unwrap();
    let mut names: Vec<String> = std::fs::read_dir(mozilla)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".crt"))
        .collect();
    names.sort();
    assert!(names.len() > 100, "only {} Mozilla roots", names.len());
    let mut bundle = Vec::new();
    for n in &names {
        let bytes = std::fs::read(mozilla.join(n)).unwrap();
        bundle.extend_from_slice(&bytes);
        std::fs::write(certs.join(n), bytes).unwrap();
    }
    std::fs::write(tmp.path().join("mozilla-bundle.pem"), &bundle).unwrap();
    let args: Vec<String> = names.iter().map(|n| format!("certs/{n}")).collect();
    for from in [args, vec!["mozilla-bundle.pem".to_string()]] {
        let _ = std::fs::remove_file(tmp.path().join("trust.yaml"));
        let mut init = vec!["init", "--from"];
        init.extend(from.iter().map(String::as_str));
        let o = catrust(tmp.path(), &init);
        assert_eq!(o.status.code(), Some(0), "{o:?}");
        let trust = std::fs::read_to_string(tmp.path().join("trust.yaml")).unwrap();
        assert!(trust.contains("certificatesFile: false"), "{trust}");
        let (report, codes) = catrust_tests::lint_json(tmp.path());
        let codes: Vec<String> = codes
            .into_iter()
            .filter(|c| !matches!(c.as_str(), "CT202" | "CT203"))
            .collect();
        assert!(codes.is_empty(), "{codes:?}\n{report:#}");
        if from.len() == 1 {
            assert!(trust.contains("- name: mozilla-bundle\n"), "{trust}");
        }
    }
}

/// A self-signed root with a SHA-1 signature is not CT207 (its signature is never
/// verified); its RSA size is exact.
#[test]
fn a_sha1_self_signed_root_is_not_ct207() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path();
    write_repo(repo, "    - name: corp-root\n      file: root.pem\n");
    std::fs::copy(
        workspace_root().join("tests/corpus/_pki/sha1.pem"),
        repo.join("root.pem"),
    )
    .unwrap();
    let o = catrust(repo, &["lint", "--deny-warnings"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stdout));
    let o = catrust(
        &workspace_root().join("tests/corpus/rsa-2047"),
        &["lint", "--format", "json"],
    );
    assert!(
        text(&o.stdout).contains("has a 2047-bit RSA key"),
        "{}",
        text(&o.stdout)
    );
}

/// Every private key format pre-commit's detect-private-key knows (and PKCS#8,
/// encrypted PKCS#8), with LF, CRLF and CR-only line ends, alone or after a
/// certificate: no output of lint (human, json, sarif, github), build or the plugin
/// carries a line of the key.
#[test]
fn no_report_quotes_a_private_key_in_any_format_or_line_ending() {
    let pki = workspace_root().join("tests/corpus/_pki");
    let mut keys: Vec<(String, Vec<u8>)> = [
        "key-rsa.pem",
        "key-dsa.pem",
        "key-ec.pem",
        "key-openssh.pem",
        "key-pkcs8.pem",
        "key-pkcs8-encrypted.pem",
        "key-putty.ppk",
        "key-ssh2.pem",
        "key-pgp.asc",
        "key-openvpn.key",
    ]
    .iter()
    .map(|n| (n.to_string(), std::fs::read(pki.join(n)).unwrap()))
    .collect();
    keys.push((
        "putty-v2".into(),
        std::fs::read(workspace_root().join("tests/corpus/private-key-putty-v2/root.pem")).unwrap(),
    ));
    let cert = std::fs::read(pki.join("root-01.pem")).unwrap();
    let markers = catrust::pem::PRIVATE_KEY_MARKERS;
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path();
    write_repo(repo, "    - name: corp-root\n      file: root.pem\n");
    let mut checked = 0;
    for (name, key) in &keys {
        let key = String::from_utf8(key.clone()).unwrap();
        // What no output may carry: every line of the key but its marker lines.
        let secret: Vec<&str> = key
            .lines()
            .map(str::trim)
            .filter(|l| l.len() >= 12 && !l.starts_with("-----"))
            .filter(|l| !markers.iter().any(|m| l.contains(m)))
            .filter(|l| !l.starts_with("---- "))
            .collect();
        assert!(!secret.is_empty(), "{name}");
        for (ending, eol) in [("LF", "\n"), ("CRLF", "\r\n"), ("CR", "\r")] {
            let key = key.replace('\n', eol);
            for with_cert in [false, true] {
                let mut file = if with_cert { cert.clone() } else { Vec::new() };
                file.extend_from_slice(key.as_bytes());
                std::fs::write(repo.join("root.pem"), &file).unwrap();
                let runs = [
                    catrust(repo, &["lint"]),
                    catrust(repo, &["lint", "--format", "json"]),
                    catrust(repo, &["lint", "--format", "sarif"]),
                    catrust(repo, &["lint", "--format", "github"]),
                    catrust(repo, &["build", "--out", "out"]),
                    plugin(repo),
                ];
                for o in &runs {
                    assert_eq!(o.status.code(), Some(1), "{name} {ending}: {o:?}");
                    let all = text(&o.stdout) + &text(&o.stderr);
                    assert!(all.contains("CT105"), "{name} {ending}: {all}");
                    for line in &secret {
                        assert!(
                            !all.contains(line),
                            "{name} {ending} (cert first: {with_cert}) leaks `{line}`:\n{all}"
                        );
                    }
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, keys.len() * 3 * 2 * 6);
}

/// Terminal control characters from input (a name, a file's stray text, a file name)
/// reach no terminal raw: human and github output and the plugin's stderr escape them.
/// A very long name is quoted as a bounded excerpt.
#[test]
fn control_characters_and_long_names_are_escaped_and_bounded() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path();
    let long = "n".repeat(1_000_000);
    write_repo(
        repo,
        &format!(
            "    - name: \"corp\\e]0;owned\\a\\e[2J\"\n      file: \"odd\\e[31m.pem\"\n    - name: {long}\n      file: root.pem\n"
        ),
    );
    let mut pem = b"\x1b[2J\x1b]0;title\x07 stray text \xc2\x9b31m\n".to_vec();
    pem.extend(std::fs::read(repo.join("root.pem")).unwrap());
    std::fs::write(repo.join("root.pem"), &pem).unwrap();
    std::fs::write(repo.join("odd\x1b[31m.pem"), &pem).unwrap();
    for o in [
        catrust(repo, &["lint"]),
        catrust(repo, &["lint", "--format", "github"]),
        catrust(repo, &["build", "--out", "out"]),
        plugin(repo),
    ] {
        assert_eq!(o.status.code(), Some(1), "{o:?}");
        for stream in [&o.stdout, &o.stderr] {
            let s = text(stream);
            assert!(
                !s.contains(['\x1b', '\x07', '\u{9b}']),
                "raw control character in:\n{s}"
            );
            assert!(s.len() < 100_000, "{} bytes of output", s.len());
        }
        let all = text(&o.stdout) + &text(&o.stderr);
        assert!(all.contains("CT004") && all.contains("CT208"), "{all}");
    }
}

/// A committed certificate file over the cap is refused from its size in the object
/// header (`lint --rev`, `--staged`), like a file on disk.
#[test]
fn an_oversized_git_blob_is_ct005_naming_the_cap() {
    let g = catrust_tests::gitrepo::GitRepo::init();
    write_repo(g.path(), "    - name: corp-root\n      file: big.pem\n");
    let mut big = std::fs::read(g.join("root.pem")).unwrap();
    big.resize(catrust::source::MAX_FILE_BYTES as usize + 1, b'\n');
    g.write("big.pem", &big);
    g.commit_all("big", catrust_tests::gitrepo::now());
    for args in [
        &["lint", "--rev", "HEAD", "--format", "json"][..],
        &["lint", "--staged", "--format", "json"],
    ] {
        let o = catrust(g.path(), args);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {o:?}");
        let s = text(&o.stdout);
        assert!(
            s.contains("CT005") && s.contains("larger than 4 MiB"),
            "{s}"
        );
    }
}
