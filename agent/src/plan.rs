//! The planner: a PURE function from (desired bundle, state record, observed disk) to
//! the list of file actions, whether the trust store must be refreshed, and the state
//! record to keep once that succeeded. It refuses (returns `Err(reason)`) before any
//! action whenever the disk holds something the agent did not write where it would
//! write, so a refusal never changes the host.

use std::collections::{BTreeMap, BTreeSet};

use catrust_bundle::{sha256_hex, ContainerdPolicy};

use crate::containerd_config::CertsDir;
use crate::fsops::Entry;
use crate::host::{Family, DEBIAN_ANCHORS, DEBIAN_CONF};
use crate::state::{ConfEdit, State};
use crate::{cacerts_conf, containerd, pem};

/// One authority to install.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredCa {
    pub name: String,
    pub sha256: String,
    /// Canonical PEM.
    pub pem: Vec<u8>,
    pub registries: Vec<String>,
}

/// What the bundle asks for (empty for uninstall).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Desired {
    pub bundle_sha256: Option<String>,
    pub authorities: Vec<DesiredCa>,
    pub distrust: Vec<String>,
}

/// What is on disk, as far as the plan needs it. Paths are relative to the host root.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// Every path from [`paths_of_interest`].
    pub entries: BTreeMap<String, Entry>,
    /// Entries in the agent's anchor namespace (its Debian folder, or `catrust-*` in a
    /// shared anchors folder), whatever they are.
    pub anchor_namespace: Vec<(String, Entry)>,
    /// Debian: system certificates (path relative to usr/share/ca-certificates) per
    /// distrusted fingerprint.
    pub system_matches: Vec<(String, String)>,
    /// Debian: local anchors the agent does not own that hold a distrusted fingerprint
    /// (the conf cannot deselect them). Not needed on the RHEL family, where a
    /// blocklist entry wins over any anchor.
    pub foreign_matches: Vec<(String, String)>,
    /// RHEL family: the DER of each distrusted fingerprint found on the host.
    pub distrusted_der: BTreeMap<String, Vec<u8>>,
    /// Where containerd reads `hosts.toml` files (from its config), if anywhere.
    pub certs_dir: CertsDir,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Write a file atomically (own file, or an edit of `ca-certificates.conf` / a
    /// foreign `hosts.toml` whose changes are recorded and marked).
    Write { path: String, bytes: Vec<u8> },
    /// Remove a file the record says the agent created.
    Remove { path: String },
}

impl Action {
    pub fn path(&self) -> &str {
        match self {
            Action::Write { path, .. } | Action::Remove { path } => path,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub actions: Vec<Action>,
    /// The system trust store's inputs change: run the refresh.
    pub store_changed: bool,
    /// Something left the store: Debian refresh with `--fresh`.
    pub fresh: bool,
    /// Why containerd should restart, if it should (and is running).
    pub restart: Option<String>,
    pub warnings: Vec<String>,
    /// Must be in the generated bundle afterwards.
    pub expect_present: BTreeSet<String>,
    /// Must not be in the generated bundle afterwards.
    pub expect_absent: BTreeSet<String>,
    /// Fingerprints of anchors being removed (to spot a refresh that left a stale bundle).
    pub removed: BTreeSet<String>,
    /// The record once the plan has been carried out and the refresh succeeded.
    pub state: State,
}

/// containerd's certs.d folder, when it reads one.
fn certs_base(certs: &CertsDir) -> Option<&str> {
    match certs {
        CertsDir::Enabled { dir, .. } => Some(dir),
        CertsDir::Disabled { .. } => None,
    }
}

/// Desired registry CA files: `certs.d/<host>/catrust-<name>.crt` per (authority,
/// registry); none when containerd reads no certs.d.
fn registry_files(d: &Desired, certs: &CertsDir) -> BTreeMap<String, (String, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let Some(base) = certs_base(certs) else {
        return out;
    };
    for ca in &d.authorities {
        for r in &ca.registries {
            let file = format!("catrust-{}.crt", ca.name);
            out.insert(
                format!("{}/{file}", containerd::hosts_dir(base, r)),
                (r.clone(), ca.pem.clone()),
            );
        }
    }
    out
}

/// Registries → the CA file names its hosts.toml must list, in bundle order; none
/// when containerd reads no certs.d.
fn registry_cas(d: &Desired, certs: &CertsDir) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    if certs_base(certs).is_none() {
        return out;
    }
    for ca in &d.authorities {
        for r in &ca.registries {
            out.entry(r.clone())
                .or_default()
                .push(format!("catrust-{}.crt", ca.name));
        }
    }
    out
}

/// Every path the plan will look at: what the shell must observe first.
pub fn paths_of_interest(
    family: Family,
    d: &Desired,
    state: &State,
    certs: &CertsDir,
) -> BTreeSet<String> {
    let mut p: BTreeSet<String> = state.files.keys().cloned().collect();
    p.extend(state.hosts_edits.keys().cloned());
    p.extend(d.authorities.iter().map(|a| family.anchor_path(&a.name)));
    p.extend(registry_files(d, certs).into_keys());
    if let Some(base) = certs_base(certs) {
        for r in registry_cas(d, certs).keys() {
            p.insert(containerd::hosts_dir(base, r));
            p.insert(format!("{}/hosts.toml", containerd::hosts_dir(base, r)));
        }
    }
    if family == Family::Debian {
        p.insert(DEBIAN_CONF.to_owned());
        p.insert(DEBIAN_ANCHORS.to_owned());
    }
    for fp in &d.distrust {
        if let Some(b) = family.blocklist_path(fp) {
            p.insert(b);
        }
    }
    p
}

fn entry<'a>(obs: &'a Observed, path: &str) -> &'a Entry {
    obs.entries.get(path).unwrap_or(&Entry::Missing)
}

/// Computes the plan. `Err` is a refusal with the reason; nothing may be changed then.
pub fn plan(
    family: Family,
    d: &Desired,
    policy: ContainerdPolicy,
    state: &State,
    obs: &Observed,
) -> Result<Plan, String> {
    if let Some(f) = state.family {
        if f != family {
            return Err(format!(
                "the record says the agent installed for the {} family, this host is {}",
                f.as_str(),
                family.as_str()
            ));
        }
    }
    for ca in &d.authorities {
        for r in &ca.registries {
            if !containerd::valid_registry(r) {
                return Err(format!(
                    "authority {} names the registry {r:?}, which is not host[:port]",
                    ca.name
                ));
            }
        }
    }
    // Never write through a planted link: the agent's folders must be real folders.
    let base = certs_base(&obs.certs_dir).unwrap_or_default();
    for r in registry_cas(d, &obs.certs_dir).keys() {
        let dir = containerd::hosts_dir(base, r);
        match entry(obs, &dir) {
            Entry::Symlink(t) => {
                return Err(format!(
                    "{dir} is a symlink to {t}; refusing to write through it"
                ))
            }
            Entry::File(_) => return Err(format!("{dir} is a file, not a folder")),
            _ => {}
        }
    }
    if let Some(a) = d
        .authorities
        .iter()
        .find(|a| d.distrust.contains(&a.sha256))
    {
        return Err(format!(
            "authority {} ({}) is both trusted and distrusted",
            a.name, a.sha256
        ));
    }
    if family == Family::Flatcar && !d.distrust.is_empty() {
        // Flatcar has no deselection mechanism the agent could own and revert.
        return Err(
            "distrust is not supported on Flatcar hosts; this node cannot honour the bundle".into(),
        );
    }
    let mut plan = Plan {
        actions: Vec::new(),
        store_changed: false,
        fresh: false,
        restart: None,
        warnings: Vec::new(),
        expect_present: d.authorities.iter().map(|a| a.sha256.clone()).collect(),
        expect_absent: d.distrust.iter().cloned().collect(),
        removed: BTreeSet::new(),
        state: State {
            family: Some(family),
            bundle_sha256: d.bundle_sha256.clone(),
            dirs: state.dirs.clone(),
            ..State::default()
        },
    };

    // Owned files: anchors, registry CAs, blocklist entries.
    let mut want: BTreeMap<String, (Vec<u8>, bool)> = BTreeMap::new(); // path -> (bytes, in the system store)
    for ca in &d.authorities {
        want.insert(family.anchor_path(&ca.name), (ca.pem.clone(), true));
    }
    for (path, (_, bytes)) in registry_files(d, &obs.certs_dir) {
        want.insert(path, (bytes, false));
    }
    let mut distrusted = BTreeSet::new();
    for fp in &d.distrust {
        if let Some(path) = family.blocklist_path(fp) {
            match obs.distrusted_der.get(fp) {
                Some(der) => {
                    want.insert(path, (catrust_bundle::encode_pem(der).into_bytes(), true));
                    distrusted.insert(fp.clone());
                }
                None if state.files.contains_key(&path) => {
                    // Still blocked from before; the bytes are in our own file.
                    if let Entry::File(bytes) = entry(obs, &path) {
                        want.insert(path, (bytes.clone(), true));
                        distrusted.insert(fp.clone());
                    }
                }
                None => plan
                    .warnings
                    .push(format!("distrusted {fp} is not on this node")),
            }
        }
    }

    // Planted entries in the agent's own namespace are refused, never followed.
    if family == Family::Debian {
        match entry(obs, DEBIAN_ANCHORS) {
            Entry::Symlink(t) => {
                return Err(format!(
                    "{DEBIAN_ANCHORS} is a symlink to {t}: refusing to write through it"
                ))
            }
            Entry::File(_) => {
                return Err(format!(
                    "{DEBIAN_ANCHORS} is a file, not the agent's folder"
                ))
            }
            _ => {}
        }
    }
    for (path, e) in &obs.anchor_namespace {
        match e {
            Entry::Symlink(t) => {
                return Err(format!(
                    "symlink planted in the anchors folder: {path} -> {t}; refusing to follow it"
                ))
            }
            Entry::Other => {
                return Err(format!(
                    "{path} in the anchors folder is not a regular file"
                ))
            }
            Entry::File(bytes) => {
                let adoptable = want.get(path).is_some_and(|(w, _)| w == bytes);
                if !state.files.contains_key(path) && !adoptable {
                    return Err(format!(
                        "{path} is in the agent's anchor namespace but the agent did not write it; remove it or rename it"
                    ));
                }
            }
            Entry::Missing => {}
        }
    }

    for (path, (bytes, in_store)) in &want {
        match entry(obs, path) {
            Entry::Missing => {}
            Entry::File(cur) if cur == bytes => {
                plan.state.files.insert(path.clone(), sha256_hex(bytes));
                continue;
            }
            Entry::File(_) if state.files.contains_key(path) => {}
            Entry::File(_) => {
                return Err(format!(
                    "{path} exists and the agent did not write it; not replacing it"
                ))
            }
            Entry::Symlink(t) => {
                return Err(format!(
                    "{path} is a symlink to {t}; refusing to write through it"
                ))
            }
            Entry::Other => return Err(format!("{path} exists and is not a regular file")),
        }
        plan.actions.push(Action::Write {
            path: path.clone(),
            bytes: bytes.clone(),
        });
        plan.state.files.insert(path.clone(), sha256_hex(bytes));
        plan.store_changed |= *in_store;
    }
    // Anchors and blocklist entries feed the system store; registry CAs do not.
    let store_paths: BTreeSet<String> = state
        .files
        .keys()
        .filter(|p| p.starts_with(family.anchors_dir()) || p.contains("/blocklist/"))
        .cloned()
        .collect();
    for path in state.files.keys() {
        if want.contains_key(path) || state.hosts_edits.contains_key(path) {
            continue;
        }
        match entry(obs, path) {
            Entry::Missing => {}
            Entry::File(cur) => {
                if store_paths.contains(path) {
                    plan.store_changed = true;
                    plan.fresh = true;
                    if !path.contains("/blocklist/") {
                        plan.removed.extend(pem::fingerprints(cur));
                    }
                }
                plan.actions.push(Action::Remove { path: path.clone() });
            }
            Entry::Symlink(t) => {
                return Err(format!(
                    "{path}, which the agent wrote, is now a symlink to {t}; not touching it"
                ))
            }
            Entry::Other => {
                return Err(format!(
                    "{path}, which the agent wrote, is no longer a regular file"
                ))
            }
        }
    }

    // containerd hosts.toml: revert the recorded edit, apply the wanted one.
    let cas = registry_cas(d, &obs.certs_dir);
    let mut toml_paths: BTreeMap<String, Option<String>> = state
        .hosts_edits
        .keys()
        .map(|p| (p.clone(), None))
        .collect();
    for r in cas.keys() {
        toml_paths.insert(
            format!("{}/hosts.toml", containerd::hosts_dir(base, r)),
            Some(r.clone()),
        );
    }
    for (path, registry) in toml_paths {
        let current = match entry(obs, &path) {
            Entry::Missing => None,
            Entry::File(b) => {
                Some(String::from_utf8(b.clone()).map_err(|_| format!("{path} is not UTF-8"))?)
            }
            Entry::Symlink(t) => {
                return Err(format!(
                    "{path} is a symlink to {t}; refusing to edit through it"
                ))
            }
            Entry::Other => return Err(format!("{path} is not a regular file")),
        };
        let prev = state.hosts_edits.get(&path);
        let base = match (&current, prev) {
            (Some(c), Some(e)) => containerd::revert(c, e).map_err(|e| format!("{path}: {e}"))?,
            (Some(c), None) => c.clone(),
            (None, _) => String::new(),
        };
        let created = prev.map_or(current.is_none(), |e| e.created_file || current.is_none());
        let new = match registry {
            Some(r) => {
                let (text, edit) = containerd::ensure(&base, &r, &cas[&r], created)
                    .map_err(|e| format!("{path}: {e}"))?;
                plan.state.hosts_edits.insert(path.clone(), edit);
                Some(text)
            }
            None if created && containerd::is_blank(&base) => None,
            None => Some(base),
        };
        match (new, &current) {
            (Some(n), Some(c)) if n == *c => {}
            (Some(n), _) => plan.actions.push(Action::Write {
                path,
                bytes: n.into_bytes(),
            }),
            (None, Some(_)) => plan.actions.push(Action::Remove { path }),
            (None, None) => {}
        }
    }

    // Debian distrust: `!` lines in ca-certificates.conf.
    if family == Family::Debian {
        if let Some((fp, source)) = obs.foreign_matches.first() {
            return Err(format!(
                "cannot distrust {fp}: {source} installs it and is not the agent's to remove; remove it by hand"
            ));
        }
        match entry(obs, DEBIAN_CONF) {
            Entry::File(bytes) => {
                let text = String::from_utf8_lossy(bytes).into_owned();
                let base = cacerts_conf::revert(&text);
                let (new, changed) = cacerts_conf::ensure(&base, &obs.system_matches);
                for (fp, line) in changed {
                    plan.state.conf_edits.push(ConfEdit {
                        sha256: fp,
                        line,
                        replaced: None,
                    });
                }
                distrusted.extend(obs.system_matches.iter().map(|(fp, _)| fp.clone()));
                if new != text {
                    plan.store_changed = true;
                    plan.fresh = true;
                    plan.actions.push(Action::Write {
                        path: DEBIAN_CONF.into(),
                        bytes: new.into_bytes(),
                    });
                }
            }
            Entry::Missing if obs.system_matches.is_empty() => {}
            Entry::Missing => return Err(format!("{DEBIAN_CONF} is missing; cannot distrust")),
            Entry::Symlink(t) => {
                return Err(format!(
                    "{DEBIAN_CONF} is a symlink to {t}; not editing through it"
                ))
            }
            Entry::Other => return Err(format!("{DEBIAN_CONF} is not a regular file")),
        }
        for fp in &d.distrust {
            if !obs.system_matches.iter().any(|(f, _)| f == fp) {
                plan.warnings
                    .push(format!("distrusted {fp} is not on this node"));
            }
        }
    }
    // A CA the agent itself installed and the bundle now distrusts leaves the store by
    // the removal of its anchor; a running containerd still trusts it all the same.
    for path in state.files.keys().filter(|p| !want.contains_key(*p)) {
        if let Entry::File(bytes) = entry(obs, path) {
            if let Some(der) = catrust_bundle::decode_canonical_pem(bytes) {
                let fp = catrust_bundle::sha256_hex(&der);
                if d.distrust.contains(&fp) {
                    distrusted.insert(fp);
                }
            }
        }
    }
    plan.state.distrusted = distrusted.clone();
    // A renamed anchor (an earlier agent's `catrust/<name>.crt` becoming
    // `catrust/catrust-<name>.crt`) removes a file whose CA stays: not a removed CA.
    plan.removed = &plan.removed - &plan.expect_present;

    // Registry CAs without certs.d: never a silent no-op. They are in the system
    // store like every authority, which a running containerd loads only at a restart.
    let registries: BTreeSet<&str> = d
        .authorities
        .iter()
        .flat_map(|a| a.registries.iter().map(String::as_str))
        .collect();
    let certs_d_off = !registries.is_empty() && certs_base(&obs.certs_dir).is_none();
    if !registries.is_empty() {
        let names = registries.into_iter().collect::<Vec<_>>().join(", ");
        match &obs.certs_dir {
            CertsDir::Disabled { why } => plan.warnings.push(format!(
                "containerd reads no certs.d ({why}): the CAs of {names} are in the system store only, which containerd loads when it restarts{}",
                match policy {
                    ContainerdPolicy::None => " (policy none: restart it yourself)",
                    _ => "",
                }
            )),
            CertsDir::Enabled { note: Some(note), .. } => plan.warnings.push(note.clone()),
            CertsDir::Enabled { note: None, .. } => {}
        }
    }

    // containerd: a running one keeps the roots it loaded.
    let newly_distrusted = distrusted.difference(&state.distrusted).next().is_some();
    plan.restart = match policy {
        _ if state.restart_pending => Some("a restart is still owed from before".into()),
        ContainerdPolicy::Restart if plan.store_changed => {
            Some("the system trust store changed".into())
        }
        ContainerdPolicy::RegistriesOnly if plan.store_changed && certs_d_off => Some(
            "the system trust store changed and containerd reads no certs.d for the registries"
                .into(),
        ),
        ContainerdPolicy::Restart | ContainerdPolicy::RegistriesOnly if newly_distrusted => {
            Some("a CA was distrusted".into())
        }
        ContainerdPolicy::None if newly_distrusted => {
            plan.warnings.push(
                "containerd policy is none: a running containerd still trusts the distrusted CA until it restarts".into(),
            );
            None
        }
        _ => None,
    };
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca(name: &str, registries: &[&str]) -> DesiredCa {
        let pem = format!("PEM of {name}\n").into_bytes();
        DesiredCa {
            name: name.into(),
            sha256: sha256_hex(name.as_bytes()),
            pem,
            registries: registries.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn desired(cas: Vec<DesiredCa>) -> Desired {
        Desired {
            bundle_sha256: Some("b".repeat(64)),
            authorities: cas,
            distrust: vec![],
        }
    }

    fn observe_after(plan: &Plan, mut obs: Observed) -> Observed {
        for a in &plan.actions {
            match a {
                Action::Write { path, bytes } => {
                    obs.entries.insert(path.clone(), Entry::File(bytes.clone()))
                }
                Action::Remove { path } => obs.entries.insert(path.clone(), Entry::Missing),
            };
        }
        obs
    }

    #[test]
    fn fresh_install_writes_anchors_and_refreshes() {
        let d = desired(vec![ca("a", &[]), ca("b", &[])]);
        let p = plan(
            Family::Debian,
            &d,
            ContainerdPolicy::Restart,
            &State::default(),
            &Observed::default(),
        )
        .unwrap();
        assert_eq!(p.actions.len(), 2);
        assert!(p.store_changed && !p.fresh);
        assert_eq!(p.restart.as_deref(), Some("the system trust store changed"));
        assert_eq!(p.state.files.len(), 2);
    }

    #[test]
    fn second_run_is_a_no_op() {
        let d = desired(vec![ca("a", &["r:5000"])]);
        let first = plan(
            Family::Rhel,
            &d,
            ContainerdPolicy::Restart,
            &State::default(),
            &Observed::default(),
        )
        .unwrap();
        let obs = observe_after(&first, Observed::default());
        let second = plan(
            Family::Rhel,
            &d,
            ContainerdPolicy::Restart,
            &first.state,
            &obs,
        )
        .unwrap();
        assert!(second.actions.is_empty(), "{:?}", second.actions);
        assert!(!second.store_changed && second.restart.is_none());
    }

    #[test]
    fn rotation_removes_the_old_anchor_with_fresh() {
        let d1 = desired(vec![ca("old", &[])]);
        let p1 = plan(
            Family::Debian,
            &d1,
            ContainerdPolicy::None,
            &State::default(),
            &Observed::default(),
        )
        .unwrap();
        let obs = observe_after(&p1, Observed::default());
        let d2 = desired(vec![ca("new", &[])]);
        let p2 = plan(Family::Debian, &d2, ContainerdPolicy::None, &p1.state, &obs).unwrap();
        assert!(p2.actions.contains(&Action::Remove {
            path: Family::Debian.anchor_path("old")
        }));
        assert!(p2.fresh && p2.restart.is_none());
        assert!(!p2
            .state
            .files
            .contains_key(&Family::Debian.anchor_path("old")));
    }

    #[test]
    fn anchors_an_earlier_agent_named_without_the_prefix_are_renamed() {
        // What an earlier agent recorded: `catrust/<name>.crt`, whose
        // /etc/ssl/certs/<name>.pem link could collide with a foreign anchor's.
        let d = desired(vec![ca("proxy-ca", &[])]);
        let old = format!("{DEBIAN_ANCHORS}/proxy-ca.crt");
        let new = Family::Debian.anchor_path("proxy-ca");
        assert_eq!(new, format!("{DEBIAN_ANCHORS}/catrust-proxy-ca.crt"));
        let pem = d.authorities[0].pem.clone();
        let mut before = State {
            family: Some(Family::Debian),
            bundle_sha256: d.bundle_sha256.clone(),
            ..State::default()
        };
        before.files.insert(old.clone(), sha256_hex(&pem));
        let mut obs = Observed::default();
        obs.entries.insert(old.clone(), Entry::File(pem.clone()));
        obs.anchor_namespace
            .push((old.clone(), Entry::File(pem.clone())));
        let p = plan(Family::Debian, &d, ContainerdPolicy::Restart, &before, &obs).unwrap();
        assert_eq!(
            p.actions,
            [
                Action::Write {
                    path: new.clone(),
                    bytes: pem
                },
                Action::Remove { path: old.clone() }
            ]
        );
        // --fresh drops the old link; the CA itself is still expected, not "removed".
        assert!(p.fresh && p.removed.is_empty(), "{:?}", p.removed);
        assert_eq!(p.state.files.keys().collect::<Vec<_>>(), [&new]);
        // And once renamed, nothing more to do.
        let mut after = observe_after(&p, obs);
        after.anchor_namespace = vec![(new.clone(), after.entries[&new].clone())];
        let again = plan(
            Family::Debian,
            &d,
            ContainerdPolicy::Restart,
            &p.state,
            &after,
        )
        .unwrap();
        assert!(again.actions.is_empty(), "{:?}", again.actions);
    }

    #[test]
    fn planted_symlink_and_foreign_file_are_refused() {
        let d = desired(vec![ca("a", &[])]);
        let path = Family::Debian.anchor_path("a");
        let mut obs = Observed::default();
        obs.anchor_namespace.push((
            format!("{DEBIAN_ANCHORS}/x.crt"),
            Entry::Symlink("/etc/shadow".into()),
        ));
        let err = plan(
            Family::Debian,
            &d,
            ContainerdPolicy::Restart,
            &State::default(),
            &obs,
        )
        .unwrap_err();
        assert!(err.contains("symlink planted"), "{err}");

        let mut obs = Observed::default();
        obs.entries
            .insert(path.clone(), Entry::File(b"someone else".to_vec()));
        obs.anchor_namespace
            .push((path.clone(), Entry::File(b"someone else".to_vec())));
        let err = plan(
            Family::Debian,
            &d,
            ContainerdPolicy::Restart,
            &State::default(),
            &obs,
        )
        .unwrap_err();
        assert!(err.contains("did not write"), "{err}");
    }

    #[test]
    fn a_registry_folder_that_is_a_link_is_refused() {
        let d = desired(vec![ca("a", &["r:5000"])]);
        let mut obs = Observed::default();
        obs.entries.insert(
            "etc/containerd/certs.d/r:5000".into(),
            Entry::Symlink("/etc/cron.d".into()),
        );
        let err = plan(
            Family::Debian,
            &d,
            ContainerdPolicy::Restart,
            &State::default(),
            &obs,
        )
        .unwrap_err();
        assert!(err.contains("symlink to /etc/cron.d"), "{err}");
        let mut d = desired(vec![]);
        d.distrust.push("f".repeat(64));
        let err = plan(
            Family::Flatcar,
            &d,
            ContainerdPolicy::Restart,
            &State::default(),
            &Observed::default(),
        )
        .unwrap_err();
        assert!(err.contains("Flatcar"), "{err}");
    }

    #[test]
    fn uninstall_removes_only_recorded_files() {
        let d = desired(vec![ca("a", &["r:5000"])]);
        let p1 = plan(
            Family::Debian,
            &d,
            ContainerdPolicy::Restart,
            &State::default(),
            &Observed::default(),
        )
        .unwrap();
        let obs = observe_after(&p1, Observed::default());
        let p2 = plan(
            Family::Debian,
            &Desired::default(),
            ContainerdPolicy::Restart,
            &p1.state,
            &obs,
        )
        .unwrap();
        let removed: BTreeSet<&str> = p2.actions.iter().map(Action::path).collect();
        assert_eq!(
            removed,
            BTreeSet::from([
                "etc/containerd/certs.d/r:5000/catrust-a.crt",
                "etc/containerd/certs.d/r:5000/hosts.toml",
                "usr/local/share/ca-certificates/catrust/catrust-a.crt",
            ])
        );
        assert!(p2
            .actions
            .iter()
            .all(|a| matches!(a, Action::Remove { .. })));
        assert!(p2.state.files.is_empty() && p2.state.hosts_edits.is_empty());
    }

    #[test]
    fn distrust_edits_conf_and_restarts_even_registries_only() {
        let mut d = desired(vec![]);
        d.distrust.push("f".repeat(64));
        let mut obs = Observed::default();
        obs.entries
            .insert(DEBIAN_CONF.into(), Entry::File(b"mozilla/X.crt\n".to_vec()));
        obs.system_matches
            .push(("f".repeat(64), "mozilla/X.crt".into()));
        let p = plan(
            Family::Debian,
            &d,
            ContainerdPolicy::RegistriesOnly,
            &State::default(),
            &obs,
        )
        .unwrap();
        assert!(p.fresh && p.store_changed);
        assert_eq!(p.restart.as_deref(), Some("a CA was distrusted"));
        let Action::Write { bytes, .. } = &p.actions[0] else {
            panic!()
        };
        assert!(String::from_utf8_lossy(bytes).contains("\n!mozilla/X.crt\n"));
        let p = plan(
            Family::Debian,
            &d,
            ContainerdPolicy::None,
            &State::default(),
            &obs,
        )
        .unwrap();
        assert!(p.restart.is_none() && p.warnings.iter().any(|w| w.contains("still trusts")));
    }

    #[test]
    fn a_distrust_the_agent_cannot_enforce_is_refused() {
        let mut d = desired(vec![ca("a", &[])]);
        d.distrust.push("f".repeat(64));
        let mut obs = Observed::default();
        obs.foreign_matches.push((
            "f".repeat(64),
            "usr/local/share/ca-certificates/ops.crt".into(),
        ));
        // Debian has no precedence of `!` lines over local anchors: refuse.
        {
            let family = Family::Debian;
            let err = plan(
                family,
                &d,
                ContainerdPolicy::Restart,
                &State::default(),
                &obs,
            )
            .unwrap_err();
            assert!(
                err.contains("usr/local/share/ca-certificates/ops.crt"),
                "{err}"
            );
        }
        let mut d = desired(vec![ca("a", &[])]);
        d.distrust.push(d.authorities[0].sha256.clone());
        let err = plan(
            Family::Debian,
            &d,
            ContainerdPolicy::Restart,
            &State::default(),
            &Observed::default(),
        )
        .unwrap_err();
        assert!(err.contains("both trusted and distrusted"), "{err}");
    }

    #[test]
    fn registries_without_certs_d_fall_back_to_the_store_and_a_restart_and_say_so() {
        let d = desired(vec![ca("a", &["r:5000"])]);
        let obs = Observed {
            certs_dir: CertsDir::Disabled {
                why: "etc/containerd/config.toml sets config_path = \"\"".into(),
            },
            ..Observed::default()
        };
        let st = State::default();
        let plan_with =
            |policy, obs: &Observed| plan(Family::Debian, &d, policy, &st, obs).unwrap();
        let p = plan_with(ContainerdPolicy::RegistriesOnly, &obs);
        // Only the system anchor: no hosts.toml nobody reads.
        assert_eq!(p.actions.len(), 1);
        assert_eq!(p.actions[0].path(), Family::Debian.anchor_path("a"));
        assert!(p.restart.as_deref().unwrap().contains("reads no certs.d"));
        assert!(
            p.warnings
                .iter()
                .any(|w| w.contains("containerd reads no certs.d") && w.contains("r:5000")),
            "{:?}",
            p.warnings
        );
        let p = plan_with(ContainerdPolicy::None, &obs);
        assert!(p.restart.is_none());
        assert!(p.warnings.iter().any(|w| w.contains("restart it yourself")));
        // Another certs.d folder (EKS lists two; the first is used).
        let obs = Observed {
            certs_dir: CertsDir::Enabled {
                dir: "etc/docker/certs.d".into(),
                note: None,
            },
            ..Observed::default()
        };
        let p = plan_with(ContainerdPolicy::RegistriesOnly, &obs);
        let paths: Vec<&str> = p.actions.iter().map(Action::path).collect();
        assert!(
            paths.contains(&"etc/docker/certs.d/r:5000/hosts.toml"),
            "{paths:?}"
        );
        assert!(p.restart.is_none() && p.warnings.is_empty());
    }

    #[test]
    fn registry_only_change_does_not_refresh() {
        let d1 = desired(vec![ca("a", &[])]);
        let p1 = plan(
            Family::Debian,
            &d1,
            ContainerdPolicy::Restart,
            &State::default(),
            &Observed::default(),
        )
        .unwrap();
        let obs = observe_after(&p1, Observed::default());
        let d2 = desired(vec![ca("a", &["r:5000"])]);
        let p2 = plan(
            Family::Debian,
            &d2,
            ContainerdPolicy::Restart,
            &p1.state,
            &obs,
        )
        .unwrap();
        assert!(!p2.store_changed && p2.restart.is_none());
        assert_eq!(p2.actions.len(), 2);
    }
}
