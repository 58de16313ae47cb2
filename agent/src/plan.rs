//! The planner: a PURE function from (desired bundle, state record, observed disk) to
//! the list of file actions, whether the trust store must be refreshed, and the state
//! record to keep once that succeeded. It refuses (returns `Err(Refusal)`) before any
//! action whenever the disk holds something the agent did not write where it would
//! write, so a refusal never changes the host.

use std::collections::{BTreeMap, BTreeSet};

use catrust_bundle::{sha256_hex, ContainerdPolicy, RegistryHost};

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
    /// Validated when bundle.json was parsed: each names one `certs.d` folder.
    pub registries: Vec<RegistryHost>,
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
fn registry_files(d: &Desired, certs: &CertsDir) -> BTreeMap<String, (RegistryHost, Vec<u8>)> {
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
fn registry_cas(d: &Desired, certs: &CertsDir) -> BTreeMap<RegistryHost, Vec<String>> {
    let mut out: BTreeMap<RegistryHost, Vec<String>> = BTreeMap::new();
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

/// Why the planner refuses a bundle on this host. One wording each; nothing may be
/// changed when the plan is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "the record says the agent installed for the {} family, this host is {}",
        recorded.as_str(),
        host.as_str()
    )]
    FamilyChanged { recorded: Family, host: Family },
    /// A link where the agent would write, edit or remove: never followed.
    #[error("{path} is a symlink to {target}; refusing to write through it")]
    Link { path: String, target: String },
    #[error("symlink planted in the anchors folder: {path} -> {target}; refusing to follow it")]
    PlantedLink { path: String, target: String },
    #[error("{path} is a file, not a folder")]
    NotAFolder { path: String },
    #[error("{path} is not a regular file")]
    NotRegular { path: String },
    #[error(
        "{path} is in the agent's anchor namespace but the agent did not write it; remove it or rename it"
    )]
    ForeignInNamespace { path: String },
    #[error("{path} exists and the agent did not write it; not replacing it")]
    Foreign { path: String },
    #[error("authority {name} ({sha256}) is both trusted and distrusted")]
    TrustedAndDistrusted { name: String, sha256: String },
    /// Flatcar has no deselection mechanism the agent could own and revert.
    #[error("distrust is not supported on Flatcar hosts; this node cannot honour the bundle")]
    DistrustOnFlatcar,
    /// Debian has no precedence of `!` lines over local anchors.
    #[error(
        "cannot distrust {sha256}: {by} installs it and is not the agent's to remove; remove it by hand"
    )]
    CannotDistrust { sha256: String, by: String },
    #[error("{DEBIAN_CONF} is missing; cannot distrust")]
    ConfMissing,
    #[error("{path} is not UTF-8")]
    NotUtf8 { path: String },
    #[error("{path}: {reason}")]
    HostsToml { path: String, reason: String },
}

/// The bytes of a regular file (`None` when missing); a link or anything else is refused.
fn regular<'a>(path: &str, e: &'a Entry) -> Result<Option<&'a Vec<u8>>, Refusal> {
    match e {
        Entry::Missing => Ok(None),
        Entry::File(b) => Ok(Some(b)),
        Entry::Symlink(t) => Err(Refusal::Link {
            path: path.to_owned(),
            target: t.clone(),
        }),
        Entry::Other => Err(Refusal::NotRegular {
            path: path.to_owned(),
        }),
    }
}

/// A folder the agent writes into must be a real folder (or missing).
fn folder(path: &str, e: &Entry) -> Result<(), Refusal> {
    match e {
        Entry::Symlink(t) => Err(Refusal::Link {
            path: path.to_owned(),
            target: t.clone(),
        }),
        Entry::File(_) => Err(Refusal::NotAFolder {
            path: path.to_owned(),
        }),
        _ => Ok(()),
    }
}

/// Files the agent owns: path → (bytes, feeds the system store).
type Owned = BTreeMap<String, (Vec<u8>, bool)>;

/// Computes the plan. `Err` is a refusal; nothing may be changed then.
pub fn plan(
    family: Family,
    d: &Desired,
    policy: ContainerdPolicy,
    state: &State,
    obs: &Observed,
) -> Result<Plan, Refusal> {
    validate(family, d, state, obs)?;
    let mut plan = empty_plan(family, d, state);
    let mut want = owned_files(family, d, obs);
    let mut distrusted = blocklist_files(family, d, state, obs, &mut want, &mut plan.warnings);
    check_namespace(family, state, obs, &want)?;
    write_owned(state, obs, &want, &mut plan)?;
    remove_unowned(family, state, obs, &want, &mut plan)?;
    edit_hosts_tomls(d, state, obs, &mut plan)?;
    if family == Family::Debian {
        debian_conf(d, obs, &mut plan, &mut distrusted)?;
    }
    distrusted.extend(own_distrusted(d, state, obs, &want));
    // A renamed anchor (an earlier agent's `catrust/<name>.crt` becoming
    // `catrust/catrust-<name>.crt`) removes a file whose CA stays: not a removed CA.
    plan.removed = &plan.removed - &plan.expect_present;
    let certs_d_off = registry_warnings(d, policy, obs, &mut plan.warnings);
    let newly_distrusted = distrusted.difference(&state.distrusted).next().is_some();
    let (restart, warning) = restart_decision(
        policy,
        state.restart_pending,
        plan.store_changed,
        certs_d_off,
        newly_distrusted,
    );
    plan.restart = restart;
    plan.warnings.extend(warning);
    plan.state.distrusted = distrusted;
    Ok(plan)
}

/// Refusals that need no file content: family, registry folders, contradictions.
fn validate(family: Family, d: &Desired, state: &State, obs: &Observed) -> Result<(), Refusal> {
    if let Some(f) = state.family {
        if f != family {
            return Err(Refusal::FamilyChanged {
                recorded: f,
                host: family,
            });
        }
    }
    // Never write through a planted link: the agent's folders must be real folders.
    let base = certs_base(&obs.certs_dir).unwrap_or_default();
    for r in registry_cas(d, &obs.certs_dir).keys() {
        let dir = containerd::hosts_dir(base, r);
        folder(&dir, entry(obs, &dir))?;
    }
    if let Some(a) = d
        .authorities
        .iter()
        .find(|a| d.distrust.contains(&a.sha256))
    {
        return Err(Refusal::TrustedAndDistrusted {
            name: a.name.clone(),
            sha256: a.sha256.clone(),
        });
    }
    if family == Family::Flatcar && !d.distrust.is_empty() {
        return Err(Refusal::DistrustOnFlatcar);
    }
    Ok(())
}

fn empty_plan(family: Family, d: &Desired, state: &State) -> Plan {
    Plan {
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
    }
}

/// Anchors (in the store) and registry CA files (not in it).
fn owned_files(family: Family, d: &Desired, obs: &Observed) -> Owned {
    let mut want = Owned::new();
    for ca in &d.authorities {
        want.insert(family.anchor_path(&ca.name), (ca.pem.clone(), true));
    }
    for (path, (_, bytes)) in registry_files(d, &obs.certs_dir) {
        want.insert(path, (bytes, false));
    }
    want
}

/// RHEL family blocklist entries; returns the fingerprints they distrust.
fn blocklist_files(
    family: Family,
    d: &Desired,
    state: &State,
    obs: &Observed,
    want: &mut Owned,
    warnings: &mut Vec<String>,
) -> BTreeSet<String> {
    let mut distrusted = BTreeSet::new();
    for fp in &d.distrust {
        let Some(path) = family.blocklist_path(fp) else {
            continue;
        };
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
            None => warnings.push(format!("distrusted {fp} is not on this node")),
        }
    }
    distrusted
}

/// Planted entries in the agent's own namespace are refused, never followed.
fn check_namespace(
    family: Family,
    state: &State,
    obs: &Observed,
    want: &Owned,
) -> Result<(), Refusal> {
    if family == Family::Debian {
        folder(DEBIAN_ANCHORS, entry(obs, DEBIAN_ANCHORS))?;
    }
    for (path, e) in &obs.anchor_namespace {
        match e {
            Entry::Symlink(t) => {
                return Err(Refusal::PlantedLink {
                    path: path.clone(),
                    target: t.clone(),
                })
            }
            Entry::Other => return Err(Refusal::NotRegular { path: path.clone() }),
            Entry::File(bytes) => {
                let adoptable = want.get(path).is_some_and(|(w, _)| w == bytes);
                if !state.files.contains_key(path) && !adoptable {
                    return Err(Refusal::ForeignInNamespace { path: path.clone() });
                }
            }
            Entry::Missing => {}
        }
    }
    Ok(())
}

/// Writes every owned file whose bytes differ; a foreign file there is refused.
fn write_owned(
    state: &State,
    obs: &Observed,
    want: &Owned,
    plan: &mut Plan,
) -> Result<(), Refusal> {
    for (path, (bytes, in_store)) in want {
        match regular(path, entry(obs, path))? {
            Some(cur) if cur == bytes => {
                plan.state.files.insert(path.clone(), sha256_hex(bytes));
                continue;
            }
            Some(_) if !state.files.contains_key(path) => {
                return Err(Refusal::Foreign { path: path.clone() })
            }
            _ => {}
        }
        plan.actions.push(Action::Write {
            path: path.clone(),
            bytes: bytes.clone(),
        });
        plan.state.files.insert(path.clone(), sha256_hex(bytes));
        plan.store_changed |= *in_store;
    }
    Ok(())
}

/// Removes recorded files no longer wanted (hosts.toml edits are reverted elsewhere).
fn remove_unowned(
    family: Family,
    state: &State,
    obs: &Observed,
    want: &Owned,
    plan: &mut Plan,
) -> Result<(), Refusal> {
    for path in state.files.keys() {
        if want.contains_key(path) || state.hosts_edits.contains_key(path) {
            continue;
        }
        let Some(cur) = regular(path, entry(obs, path))? else {
            continue;
        };
        // Anchors and blocklist entries feed the system store; registry CAs do not.
        let blocklist = path.contains("/blocklist/");
        if path.starts_with(family.anchors_dir()) || blocklist {
            plan.store_changed = true;
            plan.fresh = true;
            if !blocklist {
                plan.removed.extend(pem::fingerprints(cur));
            }
        }
        plan.actions.push(Action::Remove { path: path.clone() });
    }
    Ok(())
}

/// containerd hosts.toml: revert the recorded edit, apply the wanted one.
fn edit_hosts_tomls(
    d: &Desired,
    state: &State,
    obs: &Observed,
    plan: &mut Plan,
) -> Result<(), Refusal> {
    let cas = registry_cas(d, &obs.certs_dir);
    let base = certs_base(&obs.certs_dir).unwrap_or_default();
    let mut toml_paths: BTreeMap<String, Option<RegistryHost>> = state
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
        let wanted = registry.as_ref().map(|r| (r, cas[r].as_slice()));
        edit_hosts_toml(path, wanted, state, obs, plan)?;
    }
    Ok(())
}

fn edit_hosts_toml(
    path: String,
    wanted: Option<(&RegistryHost, &[String])>,
    state: &State,
    obs: &Observed,
    plan: &mut Plan,
) -> Result<(), Refusal> {
    let toml_err = |error: containerd::HostsTomlError| Refusal::HostsToml {
        path: path.clone(),
        reason: error.to_string(),
    };
    let current = match regular(&path, entry(obs, &path))? {
        None => None,
        Some(b) => Some(
            String::from_utf8(b.clone()).map_err(|_| Refusal::NotUtf8 { path: path.clone() })?,
        ),
    };
    let prev = state.hosts_edits.get(&path);
    let base = match (&current, prev) {
        (Some(c), Some(e)) => containerd::revert(c, e).map_err(toml_err)?,
        (Some(c), None) => c.clone(),
        (None, _) => String::new(),
    };
    let created = prev.map_or(current.is_none(), |e| e.created_file || current.is_none());
    let new = match wanted {
        Some((r, cas)) => {
            let (text, edit) = containerd::ensure(&base, r, cas, created).map_err(toml_err)?;
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
    Ok(())
}

/// Debian distrust: `!` lines in ca-certificates.conf.
fn debian_conf(
    d: &Desired,
    obs: &Observed,
    plan: &mut Plan,
    distrusted: &mut BTreeSet<String>,
) -> Result<(), Refusal> {
    if let Some((fp, by)) = obs.foreign_matches.first() {
        return Err(Refusal::CannotDistrust {
            sha256: fp.clone(),
            by: by.clone(),
        });
    }
    match regular(DEBIAN_CONF, entry(obs, DEBIAN_CONF))? {
        Some(bytes) => {
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
        None if obs.system_matches.is_empty() => {}
        None => return Err(Refusal::ConfMissing),
    }
    for fp in &d.distrust {
        if !obs.system_matches.iter().any(|(f, _)| f == fp) {
            plan.warnings
                .push(format!("distrusted {fp} is not on this node"));
        }
    }
    Ok(())
}

/// A CA the agent itself installed and the bundle now distrusts leaves the store by
/// the removal of its anchor; a running containerd still trusts it all the same.
fn own_distrusted(d: &Desired, state: &State, obs: &Observed, want: &Owned) -> BTreeSet<String> {
    state
        .files
        .keys()
        .filter(|p| !want.contains_key(*p))
        .filter_map(|path| match entry(obs, path) {
            Entry::File(bytes) => catrust_bundle::decode_canonical_pem(bytes),
            _ => None,
        })
        .map(|der| catrust_bundle::sha256_hex(&der))
        .filter(|fp| d.distrust.contains(fp))
        .collect()
}

/// Registry CAs without certs.d: never a silent no-op. They are in the system store
/// like every authority, which a running containerd loads only at a restart. Returns
/// whether registries go without certs.d.
fn registry_warnings(
    d: &Desired,
    policy: ContainerdPolicy,
    obs: &Observed,
    warnings: &mut Vec<String>,
) -> bool {
    let registries: BTreeSet<&str> = d
        .authorities
        .iter()
        .flat_map(|a| a.registries.iter().map(RegistryHost::as_str))
        .collect();
    if registries.is_empty() {
        return false;
    }
    let names = registries.into_iter().collect::<Vec<_>>().join(", ");
    match &obs.certs_dir {
        CertsDir::Disabled { why } => warnings.push(format!(
            "containerd reads no certs.d ({why}): the CAs of {names} are in the system store only, which containerd loads when it restarts{}",
            match policy {
                ContainerdPolicy::None => " (policy none: restart it yourself)",
                _ => "",
            }
        )),
        CertsDir::Enabled { note: Some(note), .. } => warnings.push(note.clone()),
        CertsDir::Enabled { note: None, .. } => {}
    }
    certs_base(&obs.certs_dir).is_none()
}

/// containerd: a running one keeps the roots it loaded. Returns why it should
/// restart, and a warning when it should but the policy forbids it.
fn restart_decision(
    policy: ContainerdPolicy,
    pending: bool,
    store_changed: bool,
    certs_d_off: bool,
    newly_distrusted: bool,
) -> (Option<String>, Option<String>) {
    let why = match policy {
        _ if pending => "a restart is still owed from before",
        ContainerdPolicy::Restart if store_changed => "the system trust store changed",
        ContainerdPolicy::RegistriesOnly if store_changed && certs_d_off => {
            "the system trust store changed and containerd reads no certs.d for the registries"
        }
        ContainerdPolicy::Restart | ContainerdPolicy::RegistriesOnly if newly_distrusted => {
            "a CA was distrusted"
        }
        ContainerdPolicy::None if newly_distrusted => {
            return (
                None,
                Some("containerd policy is none: a running containerd still trusts the distrusted CA until it restarts".into()),
            )
        }
        _ => return (None, None),
    };
    (Some(why.to_owned()), None)
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
            registries: registries.iter().map(|s| s.parse().unwrap()).collect(),
        }
    }

    fn desired(cas: Vec<DesiredCa>) -> Desired {
        Desired {
            bundle_sha256: Some("b".repeat(64)),
            authorities: cas,
            distrust: vec![],
        }
    }

    /// The plan for a node the agent has no record of, with `obs` on its disk.
    fn unrecorded(
        family: Family,
        d: &Desired,
        policy: ContainerdPolicy,
        obs: &Observed,
    ) -> Result<Plan, Refusal> {
        plan(family, d, policy, &State::default(), obs)
    }

    /// The plan for a node that has never seen a bundle.
    fn first_plan(family: Family, d: &Desired, policy: ContainerdPolicy) -> Result<Plan, Refusal> {
        unrecorded(family, d, policy, &Observed::default())
    }

    /// The plan after `first` was carried out, for the desired state `d`.
    fn replan(
        family: Family,
        d: &Desired,
        policy: ContainerdPolicy,
        first: &Plan,
    ) -> Result<Plan, Refusal> {
        let obs = observe_after(first, Observed::default());
        plan(family, d, policy, &first.state, &obs)
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
        let p = first_plan(Family::Debian, &d, ContainerdPolicy::Restart).unwrap();
        assert_eq!(p.actions.len(), 2);
        assert!(p.store_changed && !p.fresh);
        assert_eq!(p.restart.as_deref(), Some("the system trust store changed"));
        assert_eq!(p.state.files.len(), 2);
    }

    #[test]
    fn second_run_is_a_no_op() {
        let d = desired(vec![ca("a", &["r:5000"])]);
        let first = first_plan(Family::Rhel, &d, ContainerdPolicy::Restart).unwrap();
        let second = replan(Family::Rhel, &d, ContainerdPolicy::Restart, &first).unwrap();
        assert!(second.actions.is_empty(), "{:?}", second.actions);
        assert!(!second.store_changed && second.restart.is_none());
    }

    #[test]
    fn rotation_removes_the_old_anchor_with_fresh() {
        let d1 = desired(vec![ca("old", &[])]);
        let p1 = first_plan(Family::Debian, &d1, ContainerdPolicy::None).unwrap();
        let d2 = desired(vec![ca("new", &[])]);
        let p2 = replan(Family::Debian, &d2, ContainerdPolicy::None, &p1).unwrap();
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
        let err = unrecorded(Family::Debian, &d, ContainerdPolicy::Restart, &obs).unwrap_err();
        assert!(matches!(err, Refusal::PlantedLink { .. }), "{err}");

        let mut obs = Observed::default();
        obs.entries
            .insert(path.clone(), Entry::File(b"someone else".to_vec()));
        obs.anchor_namespace
            .push((path.clone(), Entry::File(b"someone else".to_vec())));
        let err = unrecorded(Family::Debian, &d, ContainerdPolicy::Restart, &obs).unwrap_err();
        assert_eq!(err, Refusal::ForeignInNamespace { path }, "{err}");
    }

    #[test]
    fn a_registry_folder_that_is_a_link_is_refused() {
        let d = desired(vec![ca("a", &["r:5000"])]);
        let mut obs = Observed::default();
        obs.entries.insert(
            "etc/containerd/certs.d/r:5000".into(),
            Entry::Symlink("/etc/cron.d".into()),
        );
        let err = unrecorded(Family::Debian, &d, ContainerdPolicy::Restart, &obs).unwrap_err();
        assert_eq!(
            err,
            Refusal::Link {
                path: "etc/containerd/certs.d/r:5000".into(),
                target: "/etc/cron.d".into()
            }
        );
        let mut d = desired(vec![]);
        d.distrust.push("f".repeat(64));
        let err = first_plan(Family::Flatcar, &d, ContainerdPolicy::Restart).unwrap_err();
        assert_eq!(err, Refusal::DistrustOnFlatcar);
    }

    #[test]
    fn uninstall_removes_only_recorded_files() {
        let d = desired(vec![ca("a", &["r:5000"])]);
        let p1 = first_plan(Family::Debian, &d, ContainerdPolicy::Restart).unwrap();
        let p2 = replan(
            Family::Debian,
            &Desired::default(),
            ContainerdPolicy::Restart,
            &p1,
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
        let p = unrecorded(Family::Debian, &d, ContainerdPolicy::RegistriesOnly, &obs).unwrap();
        assert!(p.fresh && p.store_changed);
        assert_eq!(p.restart.as_deref(), Some("a CA was distrusted"));
        let Action::Write { bytes, .. } = &p.actions[0] else {
            panic!()
        };
        assert!(String::from_utf8_lossy(bytes).contains("\n!mozilla/X.crt\n"));
        let p = unrecorded(Family::Debian, &d, ContainerdPolicy::None, &obs).unwrap();
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
            let err = unrecorded(family, &d, ContainerdPolicy::Restart, &obs).unwrap_err();
            assert_eq!(
                err,
                Refusal::CannotDistrust {
                    sha256: "f".repeat(64),
                    by: "usr/local/share/ca-certificates/ops.crt".into()
                }
            );
        }
        let mut d = desired(vec![ca("a", &[])]);
        d.distrust.push(d.authorities[0].sha256.clone());
        let err = first_plan(Family::Debian, &d, ContainerdPolicy::Restart).unwrap_err();
        assert!(matches!(err, Refusal::TrustedAndDistrusted { .. }), "{err}");
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
    fn restart_follows_the_policy() {
        use ContainerdPolicy::*;
        let why = |policy, pending, store, off, distrusted| {
            restart_decision(policy, pending, store, off, distrusted)
        };
        assert_eq!(
            why(None, false, true, true, false),
            (Option::None, Option::None)
        );
        assert!(why(None, true, false, false, false)
            .0
            .unwrap()
            .contains("owed"));
        assert!(why(Restart, false, true, false, false).0.is_some());
        assert_eq!(
            why(RegistriesOnly, false, true, false, false).0,
            Option::None
        );
        assert!(why(RegistriesOnly, false, true, true, false)
            .0
            .unwrap()
            .contains("certs.d"));
        let (restart, warning) = why(None, false, false, false, true);
        assert!(restart.is_none() && warning.unwrap().contains("still trusts"));
    }

    #[test]
    fn registry_only_change_does_not_refresh() {
        let d1 = desired(vec![ca("a", &[])]);
        let p1 = first_plan(Family::Debian, &d1, ContainerdPolicy::Restart).unwrap();
        let d2 = desired(vec![ca("a", &["r:5000"])]);
        let p2 = replan(Family::Debian, &d2, ContainerdPolicy::Restart, &p1).unwrap();
        assert!(!p2.store_changed && p2.restart.is_none());
        assert_eq!(p2.actions.len(), 2);
    }
}
