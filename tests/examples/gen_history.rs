//! Generates the benchmark repository for `bench/git-history.sh`: COMMITS commits on
//! one first-parent chain, TOUCH of which change trust.yaml, the rest change files
//! under `noise/`. Built with git2 object by object (no index, no checkout), then
//! checked out into the working tree.
//!
//! `gen-history REPO PKI_DIR [COMMITS] [TOUCH]`; PKI_DIR holds old.pem, new.pem and
//! extra1.pem..extra4.pem. `old` and `new` (replaces: old) are trusted from the first
//! commit, so a removal of `old` makes the CT401 walk date them at the root: the
//! whole chain is walked. The extras come and go as trust.yaml changes.

use std::collections::BTreeMap;
use std::path::PathBuf;

use git2::{FileMode, Oid, Repository, Signature, Time};

fn trust(extras: &[usize], revision: usize) -> String {
    let mut s = format!(
        "# revision {revision}\napiVersion: catrust.dev/v1alpha1\nkind: TrustConfig\nmetadata:\n  name: corp\nspec:\n  authorities:\n    - name: old\n      file: certs/old.pem\n    - name: new\n      file: certs/new.pem\n      replaces: old\n"
    );
    for e in extras {
        s.push_str(&format!(
            "    - name: extra{e}\n      file: certs/extra{e}.pem\n"
        ));
    }
    s.push_str("  rotation:\n    minOverlap: 72h\n  targets:\n    aks:\n      resourceGroup: rg-prod\n      cluster: aks-prod\n");
    s
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let repo_dir = PathBuf::from(args.get(1).expect("REPO"));
    let pki = PathBuf::from(args.get(2).expect("PKI_DIR"));
    let commits: usize = args.get(3).map_or(10_000, |a| a.parse().unwrap());
    let touch: usize = args.get(4).map_or(200, |a| a.parse().unwrap());
    let mut opts = git2::RepositoryInitOptions::new();
    opts.initial_head("main");
    let repo = Repository::init_opts(&repo_dir, &opts).unwrap();

    let mut certs = repo.treebuilder(None).unwrap();
    for name in ["old", "new", "extra1", "extra2", "extra3", "extra4"] {
        let pem = std::fs::read(pki.join(format!("{name}.pem"))).unwrap();
        let blob = repo.blob(&pem).unwrap();
        certs
            .insert(format!("{name}.pem"), blob, FileMode::Blob.into())
            .unwrap();
    }
    let certs = certs.write().unwrap();
    let mut noise: BTreeMap<String, Oid> = BTreeMap::new();
    let every = (commits / touch.max(1)).max(1);
    let start = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        - commits as i64 * 600
        - 86_400;
    let mut parent: Option<Oid> = None;
    let mut trust_blob = repo.blob(trust(&[], 0).as_bytes()).unwrap();
    let mut touched = 0;
    for i in 0..commits {
        let message;
        if i > 0 && i % every == 0 && touched < touch - 1 {
            touched += 1;
            let extras: Vec<usize> = (1..=4).filter(|e| (touched >> (e - 1)) & 1 == 1).collect();
            trust_blob = repo.blob(trust(&extras, touched).as_bytes()).unwrap();
            message = format!("trust.yaml revision {touched}");
        } else {
            let name = format!("{:03}.txt", i % 100);
            noise.insert(name, repo.blob(format!("{i}\n").as_bytes()).unwrap());
            message = format!("noise {i}");
        }
        let mut nb = repo.treebuilder(None).unwrap();
        for (name, id) in &noise {
            nb.insert(name, *id, FileMode::Blob.into()).unwrap();
        }
        let noise_tree = nb.write().unwrap();
        let mut root = repo.treebuilder(None).unwrap();
        root.insert("trust.yaml", trust_blob, FileMode::Blob.into())
            .unwrap();
        root.insert("certs", certs, FileMode::Tree.into()).unwrap();
        if !noise.is_empty() {
            root.insert("noise", noise_tree, FileMode::Tree.into())
                .unwrap();
        }
        let tree = repo.find_tree(root.write().unwrap()).unwrap();
        let sig = Signature::new(
            "Bench",
            "bench@catrust.invalid",
            &Time::new(start + i as i64 * 600, 0),
        )
        .unwrap();
        let parents: Vec<git2::Commit> = parent
            .iter()
            .map(|p| repo.find_commit(*p).unwrap())
            .collect();
        let refs: Vec<&git2::Commit> = parents.iter().collect();
        parent = Some(
            repo.commit(Some("HEAD"), &sig, &sig, &message, &tree, &refs)
                .unwrap(),
        );
    }
    let head = repo.find_commit(parent.unwrap()).unwrap();
    repo.checkout_tree(
        head.as_object(),
        Some(git2::build::CheckoutBuilder::new().force()),
    )
    .unwrap();
    eprintln!(
        "{}: {commits} commits, {} touch trust.yaml",
        repo_dir.display(),
        touched + 1
    );
}
