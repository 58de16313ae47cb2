//! Fault injection into `catrust build --out`: the previous output folder stays intact
//! whatever happens to a build (an unwritable parent, a full disk, a kill mid-write),
//! and nothing a failed build staged is left behind for long. Failpoints are in every
//! dev build (`catrust-failpoints`), so the binary is the one every test uses.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use catrust_tests::{assert_ok, bin, run, snapshot_tree, spawn_paused_at, workspace_root};

/// `examples/basic` copied into `<tmp>/repo`, output to `<tmp>/repo/gen/out`.
struct Repo {
    tmp: tempfile::TempDir,
}

impl Repo {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path().join("repo");
        let out = run(Command::new("cp")
            .arg("-r")
            .arg(workspace_root().join("examples/basic"))
            .arg(&repo));
        assert!(out.status.success());
        Repo { tmp }
    }

    fn dir(&self) -> PathBuf {
        self.tmp.path().join("repo")
    }

    fn parent(&self) -> PathBuf {
        self.dir().join("gen")
    }

    fn out(&self) -> PathBuf {
        self.parent().join("out")
    }

    fn build_cmd(&self, binary: PathBuf) -> Command {
        let mut cmd = Command::new(binary);
        cmd.args(["build", "-f", "trust.yaml", "--out", "gen/out"])
            .current_dir(self.dir())
            .env("NO_COLOR", "1")
            .env_remove("CATRUST_FAILPOINTS");
        cmd
    }

    fn build(&self) -> Output {
        run(&mut self.build_cmd(bin("catrust")))
    }

    /// Changes the input so that the next build's output differs (drops `proxy-ca`).
    fn change_input(&self) {
        let path = self.dir().join("trust.yaml");
        let text = std::fs::read_to_string(&path).unwrap();
        let cut = text.find("    - name: proxy-ca").unwrap();
        let end = text[cut..].find("  rotation:").unwrap() + cut;
        std::fs::write(&path, format!("{}{}", &text[..cut], &text[end..])).unwrap();
    }

    /// Entries of the output's parent other than `out` (staging folders).
    fn leftovers(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.parent())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n != "out")
            .collect();
        v.sort();
        v
    }
}

/// A first build, and its output folder as bytes.
fn first_build(r: &Repo) -> BTreeMap<String, Vec<u8>> {
    assert_ok(&r.build(), "catrust build");
    let before = snapshot_tree(&r.out());
    assert!(before.contains_key("catrust.lock.json"));
    r.change_input();
    before
}

/// The output's parent folder is read-only (a read-only bind mount, which stops root
/// too): exit 2 naming the folder, the previous output byte-identical.
#[test]
fn unwritable_output_parent_exits_2_and_keeps_the_previous_output() {
    let r = Repo::new();
    let before = first_build(&r);
    let parent = r.parent();
    let mount = run(Command::new("mount")
        .args(["--bind", "-o", "ro"])
        .arg(&parent)
        .arg(&parent));
    assert!(mount.status.success(), "mount --bind -o ro needs root");
    struct Umount<'a>(&'a Path);
    impl Drop for Umount<'_> {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(self.0).status();
        }
    }
    let guard = Umount(&parent);
    let out = r.build();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("Read-only file system"), "{stderr}");
    assert_eq!(
        snapshot_tree(&r.out()),
        before,
        "the previous output changed"
    );
    drop(guard);
    assert_eq!(r.leftovers(), Vec::<String>::new());
    assert_ok(&r.build(), "catrust build");
    assert_ne!(
        snapshot_tree(&r.out()),
        before,
        "the next build did not write"
    );
}

/// The disk fills up while staging (failpoint `output.after_file=enospc`): exit 2 with
/// the OS error, the previous output byte-identical, no staging folder left.
#[test]
fn disk_full_mid_write_keeps_the_previous_output_and_leaves_no_temp_folder() {
    let r = Repo::new();
    let before = first_build(&r);
    let out = run(r
        .build_cmd(bin("catrust"))
        .env("CATRUST_FAILPOINTS", "output.after_file=enospc"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("No space left on device"), "{stderr}");
    assert_eq!(
        snapshot_tree(&r.out()),
        before,
        "the previous output changed"
    );
    assert_eq!(
        r.leftovers(),
        Vec::<String>::new(),
        "a staging folder was left"
    );
}

/// `catrust build` is SIGKILLed while staging (paused at `output.after_file`): the
/// previous output stays byte-identical; the staging folder it leaves is removed by the
/// next build, which writes the new output.
#[test]
fn killed_mid_write_keeps_the_previous_output_and_the_next_build_cleans_up() {
    let r = Repo::new();
    let before = first_build(&r);
    let (mut child, _stderr) = spawn_paused_at(
        &mut r.build_cmd(bin("catrust")),
        "output.after_file",
        30_000,
    );
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert_eq!(
        snapshot_tree(&r.out()),
        before,
        "the previous output changed"
    );
    let left = r.leftovers();
    assert!(
        left.len() == 1 && left[0].starts_with(".out.catrust-"),
        "expected the killed build's staging folder: {left:?}"
    );
    assert_ok(&r.build(), "catrust build");
    assert_eq!(
        r.leftovers(),
        Vec::<String>::new(),
        "the stale staging folder stayed"
    );
    let after = snapshot_tree(&r.out());
    assert_ne!(after, before, "the next build did not write");
    assert!(after.contains_key("catrust.lock.json"));
}
