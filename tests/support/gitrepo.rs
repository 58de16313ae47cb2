//! Real git repositories in temp folders, built through `git2` with commits at chosen
//! times (explicit signatures), for the rotation tests.

use std::path::{Path, PathBuf};

use git2::{IndexAddOption, Oid, Repository, Signature, Time};

/// A repository with a working tree in a temp folder.
pub struct GitRepo {
    pub dir: tempfile::TempDir,
    pub repo: Repository,
}

/// Unix seconds now.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

pub const HOUR: i64 = 3600;
pub const DAY: i64 = 86_400;

/// `2026-12-01 10:00:00 UTC`, as catrust prints dates.
pub fn utc(unix: i64) -> String {
    let days = unix.div_euclid(DAY);
    let secs = unix.rem_euclid(DAY);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

impl GitRepo {
    pub fn init() -> GitRepo {
        let dir = tempfile::tempdir().expect("temp folder");
        let mut opts = git2::RepositoryInitOptions::new();
        opts.initial_head("main");
        let repo = Repository::init_opts(dir.path(), &opts).expect("git init");
        GitRepo { dir, repo }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn join(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) {
        let p = self.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, contents).unwrap();
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.join(rel)).unwrap()
    }

    pub fn remove(&self, rel: &str) {
        std::fs::remove_file(self.join(rel)).unwrap();
    }

    pub fn rename(&self, from: &str, to: &str) {
        let to = self.join(to);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::rename(self.join(from), to).unwrap();
    }

    /// Stages everything in the working tree (additions, changes and deletions).
    pub fn stage_all(&self) {
        let mut index = self.repo.index().unwrap();
        index.add_all(["*"], IndexAddOption::DEFAULT, None).unwrap();
        index.update_all(["*"], None).unwrap();
        index.write().unwrap();
    }

    fn signature(when: i64) -> Signature<'static> {
        Signature::new(
            "Catrust Tests",
            "tests@catrust.invalid",
            &Time::new(when, 0),
        )
        .unwrap()
    }

    /// Commits the index onto HEAD with author and committer time `when`.
    pub fn commit_index(&self, message: &str, when: i64) -> Oid {
        let parents: Vec<Oid> = self.head().into_iter().collect();
        self.commit_with_parents(message, when, &parents, Some("HEAD"))
    }

    /// Stages everything and commits it at `when`.
    pub fn commit_all(&self, message: &str, when: i64) -> Oid {
        self.stage_all();
        self.commit_index(message, when)
    }

    /// Commits the index's tree with explicit parents; `update_ref` moves that ref.
    pub fn commit_with_parents(
        &self,
        message: &str,
        when: i64,
        parents: &[Oid],
        update_ref: Option<&str>,
    ) -> Oid {
        let mut index = self.repo.index().unwrap();
        let tree = self.repo.find_tree(index.write_tree().unwrap()).unwrap();
        let parents: Vec<git2::Commit> = parents
            .iter()
            .map(|p| self.repo.find_commit(*p).unwrap())
            .collect();
        let refs: Vec<&git2::Commit> = parents.iter().collect();
        let sig = Self::signature(when);
        self.repo
            .commit(update_ref, &sig, &sig, message, &tree, &refs)
            .unwrap()
    }

    pub fn head(&self) -> Option<Oid> {
        self.repo.head().ok().and_then(|h| h.target())
    }

    /// Makes the working tree and the index match commit `id` (HEAD does not move).
    pub fn checkout_files(&self, id: Oid) {
        let commit = self.repo.find_commit(id).unwrap();
        let mut cb = git2::build::CheckoutBuilder::new();
        cb.force().remove_untracked(false);
        self.repo
            .checkout_tree(commit.as_object(), Some(&mut cb))
            .unwrap();
    }

    /// Whether the working tree and index equal HEAD (untracked files count).
    pub fn is_clean(&self) -> bool {
        let mut opts = git2::StatusOptions::new();
        opts.include_untracked(true).recurse_untracked_dirs(true);
        self.repo.statuses(Some(&mut opts)).unwrap().is_empty()
    }
}

/// Every file under `dir` except `.git`, with its bytes (to prove nothing changed):
/// [`crate::snapshot_tree`] without the repository's own folder.
pub fn snapshot(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    crate::snapshot_tree(dir)
        .into_iter()
        .filter(|(path, _)| path != ".git" && !path.starts_with(".git/"))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_formats_like_catrust() {
        assert_eq!(super::utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(super::utc(1_796_032_800), "2026-11-30 10:00:00 UTC");
    }
}
