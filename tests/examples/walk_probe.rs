//! Measures libgit2's floor for the first-parent walk on a repository (for the
//! benchmark notes): commits only, commits + root trees, and a revwalk.
fn main() {
    if std::env::args().nth(2).as_deref() == Some("--no-verify") {
        git2::opts::strict_hash_verification(false);
    }
    let repo = git2::Repository::open(std::env::args().nth(1).expect("REPO")).unwrap();
    let t = std::time::Instant::now();
    let mut c = repo.head().unwrap().peel_to_commit().unwrap();
    let mut n = 0;
    while let Ok(p) = c.parent(0) {
        c = p;
        n += 1;
    }
    eprintln!("parents only: {n} commits in {:?}", t.elapsed());
    let t = std::time::Instant::now();
    let mut c = repo.head().unwrap().peel_to_commit().unwrap();
    let mut x = 0usize;
    loop {
        let tree = c.tree().unwrap();
        x += tree
            .get_name("trust.yaml")
            .map_or(0, |e| e.id().as_bytes()[0] as usize);
        match c.parent(0) {
            Ok(p) => c = p,
            Err(_) => break,
        }
    }
    eprintln!("with root trees: {:?} ({x})", t.elapsed());
    let t = std::time::Instant::now();
    let mut w = repo.revwalk().unwrap();
    w.push_head().unwrap();
    w.simplify_first_parent().unwrap();
    let k = w.count();
    eprintln!("revwalk first-parent: {k} in {:?}", t.elapsed());
    let t = std::time::Instant::now();
    let odb = repo.odb().unwrap();
    let mut id = repo.head().unwrap().target().unwrap();
    let mut n = 0;
    loop {
        let obj = odb.read(id).unwrap();
        let data = obj.data();
        let text = std::str::from_utf8(&data[..data.len().min(400)]).unwrap_or("");
        n += 1;
        match text.lines().find_map(|l| l.strip_prefix("parent ")) {
            Some(p) => id = git2::Oid::from_str(p).unwrap(),
            None => break,
        }
    }
    eprintln!("raw odb commits: {n} in {:?}", t.elapsed());
}
