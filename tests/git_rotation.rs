//! Git drives the rotation: CT401 from first-parent history, `plan`, `--rev`,
//! `--staged` and provenance, on real repositories built with git2 at chosen times.

use std::path::Path;
use std::process::{Command, Output};

use catrust_tests::gitrepo::{self, snapshot, utc, GitRepo, DAY, HOUR};
use catrust_tests::{bin, pki};

/// One authority: name, file (relative to trust.yaml), replaces.
type Auth<'a> = (&'a str, &'a str, Option<&'a str>);

fn trust(authorities: &[Auth], distrust: &[&str]) -> String {
    let mut s = String::from(
        "apiVersion: catrust.dev/v1alpha1\nkind: TrustConfig\nmetadata:\n  name: corp\nspec:\n  authorities:\n",
    );
    for (name, file, replaces) in authorities {
        s.push_str(&format!("    - name: {name}\n      file: {file}\n"));
        if let Some(r) = replaces {
            s.push_str(&format!("      replaces: {r}\n"));
        }
    }
    if !distrust.is_empty() {
        s.push_str("  distrust:\n");
        for d in distrust {
            s.push_str(&format!(
                "    - sha256: \"{d}\"\n      reason: compromised\n"
            ));
        }
    }
    s.push_str("  rotation:\n    minOverlap: 72h\n  targets:\n    aks:\n      resourceGroup: rg-prod\n      cluster: aks-prod\n      # the legacy Secret (CT306): the one Kubernetes object of an aks-only config\n      secret: true\n");
    s
}

/// CA PEMs made with openssl, by name.
struct Pki {
    _dir: tempfile::TempDir,
    pems: std::collections::BTreeMap<String, (String, String)>,
}

impl Pki {
    fn new(names: &[&str]) -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let pems = names
            .iter()
            .map(|n| {
                let ca = pki::make_ca(dir.path(), n, 800);
                let fp = hex(&pki::der_of(&ca.cert));
                (n.to_string(), (ca.pem(), fp))
            })
            .collect();
        Pki { _dir: dir, pems }
    }
    fn pem(&self, n: &str) -> &str {
        &self.pems[n].0
    }
    fn sha256(&self, n: &str) -> &str {
        &self.pems[n].1
    }
}

fn hex(der: &[u8]) -> String {
    let out = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(der)?;
            c.wait_with_output()
        })
        .unwrap();
    String::from_utf8(out.stdout).unwrap()[..64].to_string()
}

fn catrust(dir: &Path, args: &[&str], now: Option<i64>) -> Output {
    let mut cmd = Command::new(bin("catrust"));
    cmd.current_dir(dir).args(args).env("NO_COLOR", "1");
    match now {
        Some(n) => cmd.env("CATRUST_NOW", n.to_string()),
        None => cmd.env_remove("CATRUST_NOW"),
    };
    cmd.output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[track_caller]
fn code(o: &Output, expected: i32) {
    assert_eq!(o.status.code(), Some(expected), "{}", text(o));
}

/// The usual start: `old` at t0, `new` (replaces old) at t1.
fn rotation_repo(p: &Pki, t0: i64, t1: i64) -> GitRepo {
    let g = GitRepo::init();
    g.write("certs/old.pem", p.pem("old"));
    g.write("trust.yaml", trust(&[("old", "certs/old.pem", None)], &[]));
    g.commit_all("trust old", t0);
    g.write("certs/new.pem", p.pem("new"));
    g.write(
        "trust.yaml",
        trust(
            &[
                ("old", "certs/old.pem", None),
                ("new", "certs/new.pem", Some("old")),
            ],
            &[],
        ),
    );
    g.commit_all("add new, replaces old", t1);
    g
}

fn without_old() -> String {
    trust(&[("new", "certs/new.pem", Some("old"))], &[])
}

#[test]
fn adding_a_successor_is_fine_and_planned() {
    let p = Pki::new(&["old", "new"]);
    let t1 = gitrepo::now() - 2 * DAY;
    let g = rotation_repo(&p, t1 - DAY, t1);
    code(&catrust(g.path(), &["lint"], None), 0);
    let o = catrust(
        g.path(),
        &["plan", "--from", "HEAD~1", "--to", "HEAD"],
        None,
    );
    code(&o, 0);
    let out = text(&o);
    assert!(out.contains("+ new"), "{out}");
    assert!(out.contains("AKS re-images every node"), "{out}");
    assert!(out.contains("custom-ca-trust-secret changes"), "{out}");
}

#[test]
fn removing_the_old_ca_too_soon_is_ct401_with_the_date() {
    let p = Pki::new(&["old", "new"]);
    let t1 = gitrepo::now() - 10 * DAY;
    let g = rotation_repo(&p, t1 - DAY, t1);
    g.write("trust.yaml", without_old());
    let now = t1 + HOUR;
    let allowed = utc(t1 + 72 * HOUR);
    for args in [&["lint"][..], &["plan"], &["build", "--out", "out"]] {
        let o = catrust(g.path(), args, Some(now));
        code(&o, 1);
        let out = text(&o);
        assert!(out.contains("CT401"), "{args:?}: {out}");
        assert!(
            out.contains(&allowed),
            "{args:?} should name {allowed}: {out}"
        );
    }
    assert!(!g.join("out").exists(), "a refused build writes nothing");
    // JSON plan: the verdict and the date, machine-readable.
    let o = catrust(g.path(), &["plan", "--format", "json"], Some(now));
    code(&o, 1);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["breaksCt401"], true);
    assert_eq!(v["removed"][0]["name"], "old");
    assert_eq!(v["removed"][0]["verdict"], "too-soon");
    assert_eq!(v["removed"][0]["allowedAt"], t1 + 72 * HOUR);
    // Committed: `lint --rev HEAD` judges at the commit's time, whatever the clock says.
    g.commit_all("drop old", t1 + 2 * HOUR);
    let o = catrust(g.path(), &["lint", "--rev", "HEAD"], Some(t1 + 30 * DAY));
    code(&o, 1);
    assert!(text(&o).contains(&allowed));
}

#[test]
fn removing_after_the_overlap_is_fine() {
    let p = Pki::new(&["old", "new"]);
    let t1 = gitrepo::now() - 10 * DAY;
    let g = rotation_repo(&p, t1 - DAY, t1);
    g.write("trust.yaml", without_old());
    let now = t1 + 72 * HOUR + 1;
    code(&catrust(g.path(), &["lint"], Some(now)), 0);
    let o = catrust(g.path(), &["plan"], Some(now));
    code(&o, 0);
    assert!(text(&o).contains("removal allowed"), "{}", text(&o));
    code(&catrust(g.path(), &["build", "--out", "out"], Some(now)), 0);
    g.commit_all("drop old", t1 + 4 * DAY);
    code(&catrust(g.path(), &["lint", "--rev", "HEAD"], None), 0);
    code(
        &catrust(g.path(), &["build", "--rev", "HEAD", "--stdout"], None),
        0,
    );
}

#[test]
fn emergency_distrust_skips_the_overlap() {
    let p = Pki::new(&["old", "new"]);
    let t1 = gitrepo::now() - 10 * DAY;
    let g = rotation_repo(&p, t1 - DAY, t1);
    g.write(
        "trust.yaml",
        trust(&[("new", "certs/new.pem", Some("old"))], &[p.sha256("old")]),
    );
    let now = t1 + HOUR;
    code(&catrust(g.path(), &["lint"], Some(now)), 0);
    let o = catrust(g.path(), &["plan"], Some(now));
    code(&o, 0);
    let out = text(&o);
    assert!(out.contains("Distrusted"), "{out}");
    assert!(out.contains("emergency"), "{out}");
}

#[test]
fn without_replaces_every_later_authority_is_a_successor() {
    let p = Pki::new(&["old", "new", "other"]);
    let t1 = gitrepo::now() - 10 * DAY;
    let g = GitRepo::init();
    g.write("certs/old.pem", p.pem("old"));
    g.write("certs/other.pem", p.pem("other"));
    g.write(
        "trust.yaml",
        trust(
            &[
                ("old", "certs/old.pem", None),
                ("other", "certs/other.pem", None),
            ],
            &[],
        ),
    );
    g.commit_all("old and other", t1 - 30 * DAY);
    // Removing `old` with nothing added after it: no successor, allowed.
    g.write(
        "trust.yaml",
        trust(&[("other", "certs/other.pem", None)], &[]),
    );
    let o = catrust(g.path(), &["plan"], Some(t1));
    code(&o, 0);
    assert!(text(&o).contains("no successor"), "{}", text(&o));
    // `new` added later without `replaces`: it is the successor.
    g.write("certs/new.pem", p.pem("new"));
    g.write(
        "trust.yaml",
        trust(
            &[
                ("old", "certs/old.pem", None),
                ("other", "certs/other.pem", None),
                ("new", "certs/new.pem", None),
            ],
            &[],
        ),
    );
    g.commit_all("add new", t1);
    g.write(
        "trust.yaml",
        trust(
            &[
                ("other", "certs/other.pem", None),
                ("new", "certs/new.pem", None),
            ],
            &[],
        ),
    );
    let o = catrust(g.path(), &["lint"], Some(t1 + DAY));
    code(&o, 1);
    assert!(text(&o).contains(&utc(t1 + 72 * HOUR)), "{}", text(&o));
}

#[test]
fn shallow_history_is_a_clear_error_not_a_pass() {
    let p = Pki::new(&["old", "new"]);
    let t0 = gitrepo::now() - 10 * DAY;
    let g = GitRepo::init();
    g.write("certs/old.pem", p.pem("old"));
    g.write("certs/new.pem", p.pem("new"));
    g.write(
        "trust.yaml",
        trust(
            &[
                ("old", "certs/old.pem", None),
                ("new", "certs/new.pem", Some("old")),
            ],
            &[],
        ),
    );
    g.commit_all("both", t0);
    let last = t0 + 5 * DAY;
    for i in 0..3 {
        g.write("README.md", format!("{i}\n"));
        g.commit_all("docs", last - (2 - i) * HOUR);
    }
    // A real shallow clone (git2 cannot make one): the `git` program, in this test only.
    let git = catrust_tests::require_tool("git", "git");
    let clone = tempfile::tempdir().unwrap();
    let url = format!("file://{}", g.path().display());
    let o = Command::new(git)
        .args(["clone", "-q", "--depth", "1", &url])
        .arg(clone.path().join("c"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let c = clone.path().join("c");
    assert!(c.join(".git/shallow").exists());
    std::fs::write(c.join("trust.yaml"), without_old()).unwrap();
    let o = catrust(&c, &["lint"], Some(last + HOUR));
    code(&o, 1);
    let out = text(&o);
    assert!(out.contains("history is too short"), "{out}");
    assert!(out.contains("git fetch --unshallow"), "{out}");
    let o = catrust(&c, &["plan"], Some(last + HOUR));
    code(&o, 1);
    assert!(text(&o).contains("history is too short"));
    // The same removal in the full clone is fine: `new` is 5 days old.
    g.write("trust.yaml", without_old());
    code(&catrust(g.path(), &["lint"], Some(last + HOUR)), 0);
    // And once the boundary itself is older than minOverlap, the shallow clone can
    // decide too: the successor was present at least since then.
    code(&catrust(&c, &["lint"], Some(last + 4 * DAY)), 0);
}

#[test]
fn merge_commits_count_on_the_first_parent_chain() {
    let p = Pki::new(&["old", "new"]);
    let t0 = gitrepo::now() - 20 * DAY;
    let g = GitRepo::init();
    g.write("certs/old.pem", p.pem("old"));
    g.write("trust.yaml", trust(&[("old", "certs/old.pem", None)], &[]));
    let base = g.commit_all("old", t0);
    // A feature branch adds the successor early...
    g.write("certs/new.pem", p.pem("new"));
    g.write(
        "trust.yaml",
        trust(
            &[
                ("old", "certs/old.pem", None),
                ("new", "certs/new.pem", Some("old")),
            ],
            &[],
        ),
    );
    g.stage_all();
    let side = g.commit_with_parents(
        "add new (branch)",
        t0 + HOUR,
        &[base],
        Some("refs/heads/feature"),
    );
    // ...main moves on, and merges it five days later.
    g.checkout_files(base);
    g.write("README.md", "main\n");
    g.commit_all("docs on main", t0 + 5 * DAY);
    g.checkout_files(side);
    g.write("README.md", "main\n");
    g.stage_all();
    let merged_at = t0 + 5 * DAY + HOUR;
    let head = g.head().unwrap();
    g.commit_with_parents("merge feature", merged_at, &[head, side], Some("HEAD"));
    // Removing old a day after the merge: the branch commit is 5 days old, but `new`
    // reached main (the first-parent chain) only at the merge.
    g.write("trust.yaml", without_old());
    let o = catrust(g.path(), &["lint"], Some(merged_at + DAY));
    code(&o, 1);
    assert!(
        text(&o).contains(&utc(merged_at + 72 * HOUR)),
        "{}",
        text(&o)
    );
    code(
        &catrust(g.path(), &["lint"], Some(merged_at + 72 * HOUR)),
        0,
    );
}

#[test]
fn renamed_certificate_files_keep_their_history() {
    let p = Pki::new(&["old", "new"]);
    let t1 = gitrepo::now() - 10 * DAY;
    let g = rotation_repo(&p, t1 - DAY, t1);
    // Rename the successor's file and the authority a day later.
    g.rename("certs/new.pem", "certs/2026/corp-root.pem");
    g.write(
        "trust.yaml",
        trust(
            &[
                ("old", "certs/old.pem", None),
                ("corp-root-2026", "certs/2026/corp-root.pem", Some("old")),
            ],
            &[],
        ),
    );
    g.commit_all("rename", t1 + DAY);
    let o = catrust(
        g.path(),
        &["plan", "--from", "HEAD~1", "--to", "HEAD"],
        None,
    );
    code(&o, 0);
    assert!(text(&o).contains("new -> corp-root-2026"), "{}", text(&o));
    g.write(
        "trust.yaml",
        trust(
            &[("corp-root-2026", "certs/2026/corp-root.pem", Some("old"))],
            &[],
        ),
    );
    // Dated from t1 (the certificate's first commit), not from the rename.
    let o = catrust(g.path(), &["lint"], Some(t1 + DAY + HOUR));
    code(&o, 1);
    assert!(text(&o).contains(&utc(t1 + 72 * HOUR)), "{}", text(&o));
    code(&catrust(g.path(), &["lint"], Some(t1 + 72 * HOUR)), 0);
}

#[test]
fn a_renamed_trust_yaml_folder_keeps_its_history() {
    let p = Pki::new(&["old", "new"]);
    let t1 = gitrepo::now() - 10 * DAY;
    let g = GitRepo::init();
    let cfg = |auths: &[Auth]| trust(auths, &[]);
    g.write("clusters/prod/certs/old.pem", p.pem("old"));
    g.write(
        "clusters/prod/trust.yaml",
        cfg(&[("old", "certs/old.pem", None)]),
    );
    g.commit_all("old", t1 - DAY);
    g.write("clusters/prod/certs/new.pem", p.pem("new"));
    g.write(
        "clusters/prod/trust.yaml",
        cfg(&[
            ("old", "certs/old.pem", None),
            ("new", "certs/new.pem", Some("old")),
        ]),
    );
    g.commit_all("new", t1);
    g.rename("clusters/prod/trust.yaml", "env/prod/trust.yaml");
    g.rename("clusters/prod/certs/old.pem", "env/prod/certs/old.pem");
    g.rename("clusters/prod/certs/new.pem", "env/prod/certs/new.pem");
    g.commit_all("move clusters/prod to env/prod", t1 + DAY);
    g.write(
        "env/prod/trust.yaml",
        cfg(&[("new", "certs/new.pem", Some("old"))]),
    );
    let f = ["-f", "env/prod/trust.yaml"];
    let o = catrust(g.path(), &["lint", f[0], f[1]], Some(t1 + DAY + HOUR));
    code(&o, 1);
    assert!(text(&o).contains(&utc(t1 + 72 * HOUR)), "{}", text(&o));
    code(
        &catrust(g.path(), &["lint", f[0], f[1]], Some(t1 + 72 * HOUR)),
        0,
    );
    // `--rev` names trust.yaml where it was at that revision, even if it is gone now.
    code(
        &catrust(
            g.path(),
            &["lint", "--rev", "HEAD~1", "-f", "clusters/prod/trust.yaml"],
            None,
        ),
        0,
    );
    let o = catrust(
        g.path(),
        &["lint", "--rev", "HEAD~1", "-f", "nowhere/trust.yaml"],
        None,
    );
    code(&o, 2);
    // Also when the move itself is not committed yet.
    g.checkout_files(g.head().unwrap());
    g.rename("env/prod", "prod");
    g.write(
        "prod/trust.yaml",
        cfg(&[("new", "certs/new.pem", Some("old"))]),
    );
    let o = catrust(
        g.path(),
        &["plan", "-f", "prod/trust.yaml"],
        Some(t1 + DAY + HOUR),
    );
    code(&o, 1);
    assert!(text(&o).contains(&utc(t1 + 72 * HOUR)), "{}", text(&o));
}

#[test]
fn build_rev_equals_a_checkout_build_and_leaves_the_working_tree_alone() {
    let p = Pki::new(&["old", "new"]);
    let t1 = gitrepo::now() - 10 * DAY;
    let g = rotation_repo(&p, t1 - DAY, t1);
    let first = g.repo.revparse_single("HEAD~1").unwrap().id();
    // Uncommitted work in progress must survive untouched.
    g.write("trust.yaml", "this is not yaml: [\n");
    g.write("notes.txt", "wip\n");
    let before = snapshot(g.path());
    let o = catrust(
        g.path(),
        &["build", "--rev", "HEAD~1", "--out", "../rev-out"],
        None,
    );
    code(&o, 0);
    let after = snapshot(g.path());
    assert_eq!(before, after, "build --rev changed the working tree");
    assert_eq!(g.repo.index().unwrap().len(), 3, "index untouched");
    // A real checkout of that commit, built the ordinary way.
    let other = tempfile::tempdir().unwrap();
    let co = git2::Repository::clone(g.path().to_str().unwrap(), other.path().join("co")).unwrap();
    let commit = co.find_commit(first).unwrap();
    co.checkout_tree(
        commit.as_object(),
        Some(git2::build::CheckoutBuilder::new().force()),
    )
    .unwrap();
    co.set_head_detached(first).unwrap();
    let dir = other.path().join("co");
    code(&catrust(&dir, &["build", "--out", "../co-out"], None), 0);
    let rev_out = snapshot(&g.path().parent().unwrap().join("rev-out"));
    let co_out = snapshot(&other.path().join("co-out"));
    assert!(!rev_out.is_empty());
    assert_eq!(
        rev_out, co_out,
        "--rev and a checkout render the same bytes"
    );
    let lock = String::from_utf8(rev_out["catrust.lock.json"].clone()).unwrap();
    assert!(lock.contains(&first.to_string()), "{lock}");
    assert!(lock.contains("\"dirty\": false"), "{lock}");
    let _ = std::fs::remove_dir_all(g.path().parent().unwrap().join("rev-out"));
}

#[test]
fn lint_staged_reads_the_index_not_the_working_tree() {
    let p = Pki::new(&["old", "new"]);
    let t1 = gitrepo::now() - 10 * DAY;
    let g = rotation_repo(&p, t1 - DAY, t1);
    // Working tree broken, index good.
    g.write("trust.yaml", "spec:\n  authorites: []\n");
    code(&catrust(g.path(), &["lint"], Some(t1 + HOUR)), 1);
    code(
        &catrust(g.path(), &["lint", "--staged"], Some(t1 + HOUR)),
        0,
    );
    // Index holds the early removal, working tree is fine.
    g.write("trust.yaml", without_old());
    g.stage_all();
    g.write(
        "trust.yaml",
        trust(
            &[
                ("old", "certs/old.pem", None),
                ("new", "certs/new.pem", Some("old")),
            ],
            &[],
        ),
    );
    code(&catrust(g.path(), &["lint"], Some(t1 + HOUR)), 0);
    let o = catrust(g.path(), &["lint", "--staged"], Some(t1 + HOUR));
    code(&o, 1);
    assert!(text(&o).contains("CT401"));
    let o = catrust(g.path(), &["plan", "--staged"], Some(t1 + HOUR));
    code(&o, 1);
    assert!(text(&o).contains("index"), "{}", text(&o));
}

#[test]
fn new_user_rotation_the_plan_says_why_not_and_when() {
    // Fresh repository, a CA, its successor, then an immediate removal: real clock.
    let p = Pki::new(&["corp-root-2024", "corp-root-2026"]);
    let g = GitRepo::init();
    let start = gitrepo::now() - 2 * HOUR;
    g.write("certs/corp-root-2024.pem", p.pem("corp-root-2024"));
    g.write(
        "trust.yaml",
        trust(&[("corp-root-2024", "certs/corp-root-2024.pem", None)], &[]),
    );
    g.commit_all("trust our root", start);
    g.write("certs/corp-root-2026.pem", p.pem("corp-root-2026"));
    g.write(
        "trust.yaml",
        trust(
            &[
                ("corp-root-2024", "certs/corp-root-2024.pem", None),
                (
                    "corp-root-2026",
                    "certs/corp-root-2026.pem",
                    Some("corp-root-2024"),
                ),
            ],
            &[],
        ),
    );
    let added = start + HOUR;
    g.commit_all("add the 2026 root", added);
    g.write(
        "trust.yaml",
        trust(
            &[(
                "corp-root-2026",
                "certs/corp-root-2026.pem",
                Some("corp-root-2024"),
            )],
            &[],
        ),
    );
    let o = catrust(g.path(), &["plan"], None);
    code(&o, 1);
    let out = text(&o);
    assert!(out.contains("removed too soon"), "{out}");
    assert!(out.contains("`corp-root-2026` entered history"), "{out}");
    assert!(
        out.contains(&format!(
            "`corp-root-2024` can be removed from {}",
            utc(added + 72 * HOUR)
        )),
        "{out}"
    );
    assert!(out.contains("distrust"), "{out}");
}

#[test]
fn provenance_is_in_the_lock_and_object_metadata_and_check_survives_commits() {
    let p = Pki::new(&["old", "new"]);
    let t1 = gitrepo::now() - 10 * DAY;
    let g = rotation_repo(&p, t1 - DAY, t1);
    let head = g.head().unwrap().to_string();
    code(&catrust(g.path(), &["build", "--out", "rendered"], None), 0);
    let lock: serde_json::Value =
        serde_json::from_str(&g.read("rendered/catrust.lock.json")).unwrap();
    assert_eq!(lock["source"]["commit"], head.as_str());
    assert_eq!(lock["source"]["dirty"], false);
    let secret = g.read("rendered/aks/custom-ca-trust-secret.yaml");
    assert!(
        secret.contains(&format!(
            "  annotations:\n    catrust.dev/source-commit: {head}\n"
        )),
        "{secret}"
    );
    // Same input, same bytes.
    code(
        &catrust(g.path(), &["build", "--check", "--out", "rendered"], None),
        0,
    );
    // Commit the render (Flux), then an unrelated change: --check still passes...
    g.commit_all("render", t1 + HOUR);
    g.write("README.md", "docs\n");
    g.commit_all("docs", t1 + 2 * HOUR);
    code(
        &catrust(g.path(), &["build", "--check", "--out", "rendered"], None),
        0,
    );
    // CI checks the exact commit the same way.
    code(
        &catrust(
            g.path(),
            &["build", "--rev", "HEAD", "--check", "--out", "rendered"],
            None,
        ),
        0,
    );
    // ...and fails (CT403) once trust.yaml changes without a new render.
    g.write(
        "trust.yaml",
        trust(
            &[
                ("new", "certs/new.pem", Some("old")),
                ("old", "certs/old.pem", None),
            ],
            &[],
        ),
    );
    let o = catrust(g.path(), &["build", "--check", "--out", "rendered"], None);
    code(&o, 1);
    assert!(text(&o).contains("CT403"));
    // A dirty build records HEAD and dirty: true.
    code(&catrust(g.path(), &["build", "--out", "rendered"], None), 0);
    let lock: serde_json::Value =
        serde_json::from_str(&g.read("rendered/catrust.lock.json")).unwrap();
    assert_eq!(lock["source"]["dirty"], true);
    assert!(
        g.read("rendered/aks/custom-ca-trust-secret.yaml")
            .contains("catrust.dev/source-dirty: 'true'")
            || g.read("rendered/aks/custom-ca-trust-secret.yaml")
                .contains("catrust.dev/source-dirty: \"true\"")
    );
}

#[test]
fn outside_git_the_rule_is_skipped_and_git_flags_are_usage_errors() {
    let p = Pki::new(&["old"]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("certs")).unwrap();
    std::fs::write(dir.path().join("certs/old.pem"), p.pem("old")).unwrap();
    std::fs::write(
        dir.path().join("trust.yaml"),
        trust(&[("old", "certs/old.pem", None)], &[]),
    )
    .unwrap();
    code(&catrust(dir.path(), &["lint"], None), 0);
    code(&catrust(dir.path(), &["build", "--stdout"], None), 0);
    code(&catrust(dir.path(), &["lint", "--staged"], None), 2);
    code(&catrust(dir.path(), &["plan"], None), 2);
    let o = catrust(dir.path(), &["build", "--stdout"], None);
    assert!(!String::from_utf8_lossy(&o.stdout).contains("source-commit"));
}

/// A repository whose history cannot be read (an old commit's tree object is gone) is
/// an invocation error (exit 2) worded once, the same way by `lint` and `build`.
#[test]
fn unreadable_history_is_one_git_error_for_lint_and_build() {
    let p = Pki::new(&["old", "new"]);
    let t0 = gitrepo::now() - 10 * DAY;
    let g = GitRepo::init();
    g.write("certs/old.pem", p.pem("old"));
    g.write("certs/new.pem", p.pem("new"));
    let both = [
        ("old", "certs/old.pem", None),
        ("new", "certs/new.pem", Some("old")),
    ];
    g.write("trust.yaml", trust(&both, &[]));
    let first = g.commit_all("both", t0);
    g.write("README.md", "docs\n");
    g.commit_all("docs", t0 + DAY);
    // The working tree removes `old`: dating `new` walks back to the first commit.
    g.write("trust.yaml", trust(&[("new", "certs/new.pem", None)], &[]));
    let tree = git2::Repository::open(g.path())
        .unwrap()
        .find_commit(first)
        .unwrap()
        .tree_id()
        .to_string();
    std::fs::remove_file(g.join(&format!(".git/objects/{}/{}", &tree[..2], &tree[2..]))).unwrap();

    let lint = catrust(g.path(), &["lint"], None);
    let build = catrust(g.path(), &["build", "--out", "out"], None);
    for o in [&lint, &build] {
        assert_eq!(o.status.code(), Some(2), "{}", text(o));
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(stderr.starts_with("error: git: "), "{stderr}");
        assert!(!stderr.contains("git: git:"), "{stderr}");
    }
    assert_eq!(lint.stderr, build.stderr);
    assert!(!g.join("out").exists());
}
