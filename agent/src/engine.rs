//! The imperative shell around the planner: read the bundle, observe the disk, plan,
//! carry the plan out atomically, refresh, check the generated bundle, record. On any
//! failure after the first write it restores every file it touched and refreshes again.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use catrust_bundle::{ContainerdPolicy, VerifiedBundle};
use tracing::{info, warn};

use crate::exec::{self, Containerd, HostExec};
use crate::fsops;
use crate::host::{self, Family};
use crate::plan::{self, Desired, DesiredCa, Observed};
use crate::state::{self, Outcome, State};
use crate::transaction::{self, Backup};
use crate::{bundle_dir, containerd_config, failpoint, pem, rootfs};

/// Everything one apply needs; built from the command line.
#[derive(Debug, Clone)]
pub struct Config {
    pub bundle_dir: Option<PathBuf>,
    pub host_root: PathBuf,
    pub exec: HostExec,
    /// `--containerd`: overrides the bundle's policy when given.
    pub containerd: Option<ContainerdPolicy>,
    pub expected: Option<String>,
    pub restart_command: Option<String>,
    pub pool: Option<String>,
    pub timeout: Duration,
}

/// What an apply found and did, for logs, metrics and `status`.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub outcome: Outcome,
    /// The host's trust store was refreshed.
    pub refreshed: bool,
    /// Files written or removed.
    pub changes: usize,
    /// Why the apply did not end ready, if it did not.
    pub error: Option<ApplyError>,
    /// (name, sha256, notAfter) of the installed authorities.
    pub not_after: Vec<(String, String, i64)>,
}

impl Report {
    /// The bundle or host was refused (versus: the apply failed, or it is ready).
    pub fn refused(&self) -> bool {
        matches!(self.error, Some(ApplyError::Refused(_)))
    }
}

/// Usually `etc/os-release -> ../usr/lib/os-release`; links (absolute ones too) are
/// resolved under the host root, never in the agent's own container.
fn family(root: &Path) -> Result<Family, String> {
    host::detect(&rootfs::read_os_release(root).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())
}

/// Reads and verifies the bundle.
pub fn read_bundle(cfg: &Config) -> Result<VerifiedBundle, String> {
    let dir = cfg.bundle_dir.as_ref().ok_or("no --bundle-dir given")?;
    let read = bundle_dir::read(dir).map_err(|e| format!("bundle refused: {e}"))?;
    catrust_bundle::verify(&read.files, cfg.expected.as_deref())
        .map_err(|e| format!("bundle refused: {e}"))
}

/// The hash the volume's bundle.json claims, verified or not (for `status`).
fn claimed_hash(cfg: &Config) -> Option<String> {
    let read = bundle_dir::read(cfg.bundle_dir.as_ref()?).ok()?;
    let v: serde_json::Value =
        serde_json::from_slice(read.files.get(catrust_bundle::MANIFEST_KEY)?).ok()?;
    v.get("bundleSha256")?.as_str().map(str::to_owned)
}

fn desired_from(bundle: &VerifiedBundle, pool: Option<&str>) -> Desired {
    let pems: BTreeMap<&str, &Vec<u8>> = bundle
        .certificates
        .iter()
        .map(|(n, p)| (n.as_str(), p))
        .collect();
    let authorities = bundle
        .manifest
        .content
        .authorities
        .iter()
        .filter(|a| a.pools.is_empty() || pool.is_none_or(|p| a.pools.iter().any(|x| x == p)))
        .map(|a| DesiredCa {
            name: a.name.clone(),
            sha256: a.sha256.clone(),
            pem: pems
                .get(a.name.as_str())
                .map(|p| (*p).clone())
                .unwrap_or_default(),
            registries: a.registries.clone(),
        })
        .collect();
    Desired {
        bundle_sha256: Some(bundle.manifest.bundle_sha256.clone()),
        authorities,
        distrust: bundle
            .manifest
            .content
            .distrust
            .iter()
            .filter_map(|d| catrust_bundle::normalize_fingerprint(&d.sha256))
            .collect(),
    }
}

/// Reads what the planner needs from the disk. Read-only.
fn observe(root: &Path, family: Family, d: &Desired, st: &State) -> Result<Observed, String> {
    let mut obs = Observed::default();
    // Only a bundle with registries needs to know where containerd reads hosts.toml
    // (a broken containerd config must not fail every other apply).
    if d.authorities.iter().any(|a| !a.registries.is_empty()) {
        obs.certs_dir =
            containerd_config::read(root).map_err(|e| format!("containerd config: {e}"))?;
    }
    let look = |p: &str| fsops::observe(&root.join(p)).map_err(|e| format!("{p}: {e}"));
    for p in plan::paths_of_interest(family, d, st, &obs.certs_dir) {
        obs.entries.insert(p.clone(), look(&p)?);
    }
    let dir = family.anchors_dir();
    if let Ok(entries) = std::fs::read_dir(root.join(dir)) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if family.is_own_anchor_name(&name) && !name.starts_with('.') {
                let p = format!("{dir}/{name}");
                obs.anchor_namespace.push((p.clone(), look(&p)?));
            }
        }
    }
    if d.distrust.is_empty() {
        return Ok(obs);
    }
    let wanted: BTreeSet<&str> = d.distrust.iter().map(String::as_str).collect();
    let own: BTreeSet<&String> = st.files.keys().collect();
    match family {
        Family::Debian | Family::Flatcar => {
            for (path, der) in pem_files(&root.join(host::DEBIAN_CERTSDIR)) {
                let fp = catrust_bundle::sha256_hex(&der);
                if wanted.contains(fp.as_str()) {
                    let rel = path
                        .strip_prefix(root.join(host::DEBIAN_CERTSDIR))
                        .map(|p| p.display().to_string())
                        .unwrap_or_default();
                    obs.system_matches.push((fp, rel));
                }
            }
            for (path, der) in pem_files(&root.join(host::DEBIAN_LOCALCERTSDIR)) {
                let fp = catrust_bundle::sha256_hex(&der);
                let rel = transaction::rel_of(root, &path);
                if wanted.contains(fp.as_str()) && !own.contains(&rel) {
                    obs.foreign_matches.push((fp, rel));
                }
            }
        }
        Family::Rhel => {
            for src in [
                family.generated_bundle(),
                "usr/share/pki/ca-trust-source",
                host::RHEL_ANCHORS,
            ] {
                for (_, der) in pem_files(&root.join(src)) {
                    let fp = catrust_bundle::sha256_hex(&der);
                    // p11-kit lets a blocklist entry override an anchor wherever
                    // it comes from, so a foreign anchor needs no refusal here.
                    if wanted.contains(fp.as_str()) {
                        obs.distrusted_der.insert(fp, der);
                    }
                }
            }
        }
    }
    Ok(obs)
}

/// (file, DER) of every certificate in the PEM files under `path` (a file or a tree;
/// symlinks followed only for reading, as the refresh itself does).
fn pem_files(path: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![path.to_path_buf()];
    let mut budget = 20_000usize;
    while let Some(p) = stack.pop() {
        budget = budget.saturating_sub(1);
        if budget == 0 {
            break;
        }
        if p.is_dir() {
            if let Ok(rd) = std::fs::read_dir(&p) {
                stack.extend(rd.flatten().map(|e| e.path()));
            }
        } else if let Ok(bytes) = std::fs::read(&p) {
            out.extend(
                pem::certificates(&bytes)
                    .into_iter()
                    .map(|der| (p.clone(), der)),
            );
        }
    }
    out
}

fn refresh(cfg: &Config, family: Family, fresh: bool) -> Result<(), String> {
    // The engine reports failures as text (the status reason); ExecError says which.
    let cmd =
        exec::refresh_argv(cfg.exec, family, &cfg.host_root, fresh).map_err(|e| e.to_string())?;
    let ran = exec::run(&cmd, cfg.timeout).map_err(|e| e.to_string())?;
    if ran.success {
        Ok(())
    } else {
        Err(format!("refresh failed: {}", ran.output))
    }
}

/// Checks the generated bundle. Debian's update-ca-certificates does not rewrite the
/// bundle when it selects no certificate at all, so removing the last one leaves the
/// old bundle in place (even with --fresh). That case alone — unchanged bytes that
/// still hold a removed certificate while no anchor is wanted — is completed here by
/// writing the empty bundle the refresh would have written; anything else is a failure.
fn check_generated(
    cfg: &Config,
    family: Family,
    p: &plan::Plan,
    before: Option<&[u8]>,
) -> Result<Option<String>, String> {
    let path = cfg.host_root.join(family.generated_bundle());
    let bytes = std::fs::read(&path).unwrap_or_default();
    let fps: BTreeSet<String> = pem::fingerprints(&bytes).into_iter().collect();
    let stale: Vec<&String> = p.removed.intersection(&fps).collect();
    let mut note = None;
    if !stale.is_empty() {
        let unchanged = before == Some(bytes.as_slice());
        if family != Family::Rhel
            && unchanged
            && p.expect_present.is_empty()
            && only_removed(&fps, &p.removed)
        {
            fsops::write_atomic(&path, b"").map_err(|e| format!("{}: {e}", path.display()))?;
            note = Some(format!(
                "the refresh selected no certificate and left the old {} in place; emptied it",
                family.generated_bundle()
            ));
        } else {
            return Err(format!(
                "after the refresh {} still holds removed CA {}",
                family.generated_bundle(),
                stale[0]
            ));
        }
    }
    if let Some(missing) = p.expect_present.difference(&fps).next() {
        return Err(format!(
            "after the refresh {} lacks CA {missing}",
            family.generated_bundle()
        ));
    }
    if let Some(bad) = p.expect_absent.intersection(&fps).next() {
        return Err(format!(
            "after the refresh {} still trusts distrusted CA {bad}",
            family.generated_bundle()
        ));
    }
    Ok(note)
}

fn only_removed(fps: &BTreeSet<String>, removed: &BTreeSet<String>) -> bool {
    fps.is_subset(removed)
}

/// Why an apply did not end ready: the bundle or the host was refused before anything
/// changed (only a new bundle or a fixed host helps), or a step failed (retried sooner).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Failed(String),
}

impl From<String> for ApplyError {
    fn from(reason: String) -> Self {
        ApplyError::Failed(reason)
    }
}

impl From<plan::Refusal> for ApplyError {
    fn from(r: plan::Refusal) -> Self {
        ApplyError::Refused(r.to_string())
    }
}

impl From<state::StateError> for ApplyError {
    fn from(e: state::StateError) -> Self {
        ApplyError::Failed(e.into())
    }
}

/// One apply of the bundle (or, with `desired = None`, the uninstall). Never panics on
/// bad input; every problem ends up as the outcome's reason.
pub fn apply(cfg: &Config, uninstall: bool) -> Report {
    let mut report = Report::default();
    let root = &cfg.host_root;
    if !root.is_dir() {
        // A typo must not create a tree where there was none.
        report.outcome.reason = Some(format!("host root {} is not a folder", root.display()));
        return report;
    }
    let _lock = match state::lock(root) {
        Ok(lock) => lock,
        Err(e) => {
            // Nothing can be recorded without the state folder: say it here.
            let e = match e {
                state::StateError::Refused(_) => ApplyError::Refused(e.to_string()),
                e => ApplyError::from(e),
            };
            warn!(reason = %e, refused = matches!(e, ApplyError::Refused(_)), "not ready");
            report.outcome.reason = Some(e.to_string());
            report.error = Some(e);
            return report;
        }
    };
    let prev_state = state::load(root);
    let installed = prev_state
        .as_ref()
        .ok()
        .and_then(|s| s.bundle_sha256.clone());
    report.outcome = Outcome {
        expected_sha256: cfg.expected.clone(),
        installed_sha256: installed.clone(),
        at: state::now(),
        ..Outcome::default()
    };
    match apply_inner(cfg, uninstall, &mut report) {
        Ok(()) => {
            report.outcome.ready = !uninstall;
        }
        Err(e) => {
            warn!(reason = %e, refused = matches!(e, ApplyError::Refused(_)), "not ready");
            report.outcome.ready = false;
            report.outcome.reason = Some(e.to_string());
            report.error = Some(e);
        }
    }
    if !uninstall {
        if let Err(e) = state::save_outcome(root, &report.outcome) {
            warn!(error = %e, "cannot record the outcome");
        }
    }
    report
}

/// What one apply reads, once, before it plans.
struct Inputs {
    family: Family,
    st: State,
    desired: Desired,
    policy: ContainerdPolicy,
    obs: Observed,
}

fn apply_inner(cfg: &Config, uninstall: bool, report: &mut Report) -> Result<(), ApplyError> {
    let root = &cfg.host_root;
    let inp = gather(cfg, uninstall, report)?;
    let mut p = plan::plan(inp.family, &inp.desired, inp.policy, &inp.st, &inp.obs)?;
    for w in &p.warnings {
        warn!(warning = %w, "plan");
    }
    report.outcome.warnings = p.warnings.clone();
    report.not_after = not_after(&inp.desired);
    remove_orphan_temps(root, &inp);
    let dirs = execute(cfg, &inp, &p, report)?;
    p.state.dirs = dirs;
    record_and_restart(cfg, uninstall, &mut p.state, p.restart.as_deref())?;
    report.outcome.installed_sha256 = p.state.bundle_sha256.clone();
    if report.changes > 0 || report.refreshed {
        info!(bundle = ?p.state.bundle_sha256, changes = report.changes, refreshed = report.refreshed, "applied");
    }
    if !uninstall {
        if let (Some(expected), Some(installed)) = (&cfg.expected, &p.state.bundle_sha256) {
            if !expected.eq_ignore_ascii_case(installed) {
                return Err(ApplyError::Failed(format!(
                    "installed bundle {installed} is not the expected {expected}"
                )));
            }
        }
    }
    Ok(())
}

/// Host family, record, bundle (verified), observed disk; and the check that no path
/// the agent may write is reached through a link leaving the host root.
fn gather(cfg: &Config, uninstall: bool, report: &mut Report) -> Result<Inputs, ApplyError> {
    let root = &cfg.host_root;
    let family = family(root)?;
    let st = state::load(root)?;
    let (desired, policy) = if uninstall {
        (Desired::default(), cfg.containerd.unwrap_or_default())
    } else {
        report.outcome.seen_sha256 = claimed_hash(cfg);
        let bundle = read_bundle(cfg).map_err(ApplyError::Refused)?;
        report.outcome.seen_sha256 = Some(bundle.manifest.bundle_sha256.clone());
        let policy = cfg.containerd.unwrap_or(bundle.manifest.content.containerd);
        (desired_from(&bundle, cfg.pool.as_deref()), policy)
    };
    let obs = observe(root, family, &desired, &st)?;
    let mut writes = plan::paths_of_interest(family, &desired, &st, &obs.certs_dir);
    writes.insert(family.generated_bundle().to_owned());
    // The anchors folder as a folder (orphan temp files are removed in it): any name
    // inside it makes it a folder on the way.
    writes.insert(format!("{}/x", family.anchors_dir()));
    rootfs::check_inside(root, writes.iter().map(String::as_str))
        .map_err(|e| ApplyError::Refused(e.to_string()))?;
    Ok(Inputs {
        family,
        st,
        desired,
        policy,
        obs,
    })
}

/// (name, sha256, notAfter) of each authority, for the metrics.
fn not_after(d: &Desired) -> Vec<(String, String, i64)> {
    d.authorities
        .iter()
        .map(|a| {
            let na = pem::certificates(&a.pem)
                .first()
                .and_then(|d| pem::not_after_unix(d))
                .unwrap_or(0);
            (a.name.clone(), a.sha256.clone(), na)
        })
        .collect()
}

/// A crash between writing a temp file and renaming it leaves the temp file behind;
/// under the apply lock no write is in progress, so every one left is an orphan.
fn remove_orphan_temps(root: &Path, inp: &Inputs) {
    let mut temp_dirs: BTreeSet<String> =
        plan::paths_of_interest(inp.family, &inp.desired, &inp.st, &inp.obs.certs_dir)
            .iter()
            .filter_map(|p| Path::new(p).parent().map(|d| d.display().to_string()))
            .collect();
    temp_dirs.insert(inp.family.anchors_dir().to_owned());
    temp_dirs.insert(state::STATE_DIR.to_owned());
    for dir in &temp_dirs {
        for orphan in fsops::remove_orphan_temps(&root.join(dir)) {
            info!(path = %orphan.display(), "removed a temp file an interrupted apply left");
        }
    }
}

/// Write-ahead record, then the actions, refresh and check; on failure every touched
/// file is restored. Returns the folders the record keeps.
fn execute(
    cfg: &Config,
    inp: &Inputs,
    p: &plan::Plan,
    report: &mut Report,
) -> Result<BTreeSet<String>, ApplyError> {
    let root = &cfg.host_root;
    // Write-ahead: the record lists every file before it exists, so a crash between
    // the two can never leave a file of ours that the record forgot. It also owes the
    // containerd restart this apply will do, so a crash anywhere after the first change
    // still ends in a restart on the next apply.
    let intent = transaction::intent(&inp.st, p, inp.family);
    if !p.actions.is_empty() {
        state::save(root, &intent)?;
        failpoint::hit("apply.intent_recorded").map_err(|e| e.to_string())?;
    }
    let before_bundle = std::fs::read(root.join(inp.family.generated_bundle())).ok();
    let mut backup = Backup::new(root);
    let mut dirs = intent;
    match carry_out_and_verify(cfg, inp, p, &mut dirs, &mut backup, before_bundle, report) {
        Ok(Some(note)) => {
            warn!(note = %note, "generated bundle");
            report.outcome.warnings.push(note);
            Ok(dirs.dirs)
        }
        Ok(None) => Ok(dirs.dirs),
        Err(reason) => Err(roll_back(
            cfg,
            inp,
            p,
            &dirs,
            &backup,
            reason,
            report.refreshed,
        )),
    }
}

fn carry_out_and_verify(
    cfg: &Config,
    inp: &Inputs,
    p: &plan::Plan,
    dirs: &mut State,
    backup: &mut Backup,
    before_bundle: Option<Vec<u8>>,
    report: &mut Report,
) -> Result<Option<String>, String> {
    let family = inp.family;
    transaction::carry_out(&cfg.host_root, &p.actions, &inp.obs, dirs, backup)
        .map_err(|e| e.to_string())?;
    report.changes = p.actions.len();
    if p.store_changed {
        refresh(cfg, family, p.fresh)?;
        report.refreshed = true;
        failpoint::hit("apply.refreshed").map_err(|e| e.to_string())?;
    }
    match check_generated(cfg, family, p, before_bundle.as_deref()) {
        Ok(note) => Ok(note),
        // Drift outside the agent's files (someone refreshed with a broken config):
        // one refresh repairs it.
        Err(_) if !report.refreshed => {
            refresh(cfg, family, true)?;
            report.refreshed = true;
            check_generated(cfg, family, p, before_bundle.as_deref())
        }
        Err(e) => Err(e),
    }
}

/// Restores every file the apply touched, refreshes again, removes the folders it
/// created and records the previous state. Returns the failure to report.
fn roll_back(
    cfg: &Config,
    inp: &Inputs,
    p: &plan::Plan,
    dirs: &State,
    backup: &Backup,
    reason: String,
    refreshed: bool,
) -> ApplyError {
    let root = &cfg.host_root;
    let errors = backup.restore();
    let mut reason = format!("{reason}; restored the files it changed");
    if !errors.is_empty() {
        reason.push_str(&format!(" (could not restore: {})", errors.join(", ")));
    }
    if refreshed || p.store_changed {
        if let Err(e) = refresh(cfg, inp.family, true) {
            reason.push_str(&format!("; the refresh after restoring failed too: {e}"));
        }
    }
    // Folders this apply created go too (when empty), so a failed first
    // install leaves no trace.
    let created: Vec<&String> = dirs.dirs.difference(&inp.st.dirs).collect();
    transaction::remove_empty_dirs(root, created.iter().copied());
    let mut back = inp.st.clone();
    back.family = inp.st.family.or(Some(inp.family));
    if let Err(e) = state::save(root, &back) {
        return e.into();
    }
    ApplyError::Failed(reason)
}

/// Records the new state (or finishes the uninstall), then restarts containerd when
/// the plan says so.
fn record_and_restart(
    cfg: &Config,
    uninstall: bool,
    next: &mut State,
    restart: Option<&str>,
) -> Result<(), ApplyError> {
    let root = &cfg.host_root;
    next.restart_pending = restart.is_some();
    if uninstall {
        finish_uninstall(root, next)?;
    } else {
        state::save(root, next)?;
        failpoint::hit("apply.recorded").map_err(|e| e.to_string())?;
    }
    let Some(why) = restart else {
        return Ok(());
    };
    let ctr = Containerd {
        exec: cfg.exec,
        restart_command: cfg.restart_command.clone(),
    };
    match ctr.restart_if_running(cfg.timeout) {
        Ok(what) => {
            info!(why = %why, what = %what, "containerd");
            failpoint::hit("apply.containerd_restarted").map_err(|e| e.to_string())?;
            if !uninstall {
                next.restart_pending = false;
                state::save(root, next)?;
            }
            Ok(())
        }
        Err(e) => Err(ApplyError::Failed(format!(
            "trust installed, but restarting containerd failed ({why}): {e}"
        ))),
    }
}

/// After an uninstall: remove the folders the agent created (when empty) and its record.
fn finish_uninstall(root: &Path, st: &State) -> Result<(), String> {
    transaction::remove_empty_dirs(root, st.dirs.iter());
    let _ = std::fs::remove_dir_all(root.join("var/lib/catrust/p11-kit"));
    fsops::remove(&state::state_path(root)).map_err(|e| e.to_string())?;
    fsops::remove(&state::outcome_path(root)).map_err(|e| e.to_string())?;
    // Still held by this process; a waiting one then finds nothing installed.
    fsops::remove(&root.join(state::STATE_DIR).join("lock")).map_err(|e| e.to_string())?;
    let _ = std::fs::remove_dir(root.join(state::STATE_DIR));
    Ok(())
}

/// What `status` prints (JSON: these keys, camelCase).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub ready: bool,
    /// Why not ready; `None` when ready.
    pub reason: Option<String>,
    pub installed: Option<String>,
    pub expected: Option<String>,
    pub seen: Option<String>,
    pub last_apply: Option<u64>,
    pub warnings: Vec<String>,
    pub family: Option<&'static str>,
    pub files: Vec<String>,
    pub distrusted: Vec<String>,
}

/// Ready, or why not: a pure verdict over the last outcome, the record, and the
/// bundle in the volume (`Some(Ok(hash))` verified, `Some(Err(why))` refused).
fn readiness(
    last: Option<&Outcome>,
    record_error: Option<String>,
    installed: Option<&str>,
    expected: Option<&str>,
    volume: Option<Result<&str, String>>,
) -> Result<(), String> {
    let mut ready = last.is_some_and(|o| o.ready);
    let mut reason = last.and_then(|o| o.reason.clone());
    if let Some(e) = record_error {
        ready = false;
        reason = Some(e);
    }
    match volume {
        Some(Ok(hash)) if installed != Some(hash) => {
            ready = false;
            reason.get_or_insert_with(|| format!("bundle {hash} is not installed yet"));
        }
        Some(Ok(_)) => {}
        Some(Err(e)) => {
            ready = false;
            reason = Some(e);
        }
        None => {
            if let (Some(e), Some(i)) = (expected, installed) {
                if !e.eq_ignore_ascii_case(i) {
                    ready = false;
                    reason.get_or_insert_with(|| {
                        format!("installed bundle {i} is not the expected {e}")
                    });
                }
            }
        }
    }
    if ready {
        Ok(())
    } else {
        Err(reason.unwrap_or_else(|| "nothing installed yet".into()))
    }
}

/// `status`: the record, the last outcome, and (with a bundle dir) whether the bundle
/// in the volume is the one installed.
pub fn status(cfg: &Config) -> Status {
    let root = &cfg.host_root;
    let st = state::load(root);
    let last = state::load_outcome(root);
    let installed = st.as_ref().ok().and_then(|s| s.bundle_sha256.clone());
    let mut expected = cfg.expected.clone();
    let volume = cfg.bundle_dir.as_ref().map(|_| {
        read_bundle(cfg).map(|b| {
            expected.get_or_insert(b.manifest.bundle_sha256.clone());
            b.manifest.bundle_sha256
        })
    });
    let verdict = readiness(
        last.as_ref(),
        st.as_ref().err().map(ToString::to_string),
        installed.as_deref(),
        cfg.expected.as_deref(),
        volume.as_ref().map(|v| v.as_deref().map_err(Clone::clone)),
    );
    Status {
        ready: verdict.is_ok(),
        reason: verdict.err(),
        installed,
        expected,
        seen: last.as_ref().and_then(|o| o.seen_sha256.clone()),
        last_apply: last.as_ref().map(|o| o.at),
        warnings: last.map(|o| o.warnings).unwrap_or_default(),
        family: st.as_ref().ok().and_then(|s| s.family.map(Family::as_str)),
        files: st
            .as_ref()
            .map(|s| s.files.keys().cloned().collect())
            .unwrap_or_default(),
        distrusted: st
            .as_ref()
            .map(|s| s.distrusted.iter().cloned().collect())
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use catrust_bundle::{Authority, BundleContent, Manifest};

    #[test]
    fn readiness_needs_a_ready_outcome_and_the_volume_bundle_installed() {
        let ok = Outcome {
            ready: true,
            ..Outcome::default()
        };
        let h = "a".repeat(64);
        assert_eq!(
            readiness(None, None, None, None, None),
            Err("nothing installed yet".into())
        );
        assert_eq!(
            readiness(Some(&ok), None, Some(&h), None, Some(Ok(&h))),
            Ok(())
        );
        assert_eq!(
            readiness(Some(&ok), None, Some(&h), None, Some(Ok("b"))),
            Err("bundle b is not installed yet".into())
        );
        assert_eq!(
            readiness(
                Some(&ok),
                None,
                Some(&h),
                None,
                Some(Err("bundle refused: x".into()))
            ),
            Err("bundle refused: x".into())
        );
        assert_eq!(
            readiness(Some(&ok), Some("corrupt".into()), Some(&h), None, None),
            Err("corrupt".into())
        );
        let upper = h.to_ascii_uppercase();
        assert_eq!(
            readiness(Some(&ok), None, Some(&h), Some(&upper), None),
            Ok(())
        );
        assert_eq!(
            readiness(Some(&ok), None, Some(&h), Some("c"), None),
            Err(format!("installed bundle {h} is not the expected c"))
        );
        // A failed outcome's own reason wins over the volume's.
        let failed = Outcome {
            reason: Some("refresh failed".into()),
            ..Outcome::default()
        };
        assert_eq!(
            readiness(Some(&failed), None, None, None, Some(Ok(&h))),
            Err("refresh failed".into())
        );
    }

    #[test]
    fn pools_limit_authorities_only_when_the_node_names_its_pool() {
        let auth = |name: &str, pools: &[&str]| Authority {
            name: name.into(),
            sha256: "0".repeat(64),
            registries: vec![],
            pools: pools.iter().map(|s| s.to_string()).collect(),
        };
        let manifest = Manifest::seal(BundleContent {
            schema_version: catrust_bundle::SCHEMA_VERSION,
            config_name: "corp".into(),
            authorities: vec![auth("all", &[]), auth("gpu-only", &["gpu"])],
            distrust: vec![catrust_bundle::Distrusted {
                sha256: "AB:".repeat(31) + "AB",
                reason: None,
            }],
            containerd: ContainerdPolicy::Restart,
        });
        let bundle = VerifiedBundle {
            manifest,
            certificates: vec![
                ("all".into(), b"A".to_vec()),
                ("gpu-only".into(), b"G".to_vec()),
            ],
        };
        let names = |pool: Option<&str>| -> Vec<String> {
            desired_from(&bundle, pool)
                .authorities
                .into_iter()
                .map(|a| a.name)
                .collect()
        };
        assert_eq!(names(None), ["all", "gpu-only"]);
        assert_eq!(names(Some("gpu")), ["all", "gpu-only"]);
        assert_eq!(names(Some("system")), ["all"]);
        assert_eq!(desired_from(&bundle, None).distrust, ["ab".repeat(32)]);
    }
}
