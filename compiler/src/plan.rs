//! `catrust plan`: the semantic difference between two trust states and what each
//! output will do about it. Pure: two loaded states and the CT401 removals in, a
//! [`Plan`] out; git access happens at the edge ([`crate::git`]).
//!
//! Certificates are matched by SHA-256: the same certificate under a new name is a
//! rename, a new certificate under an old name is a re-pin (the old one is removed).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::config::{AgentTarget, AksTarget, TargetKind, TrustConfig};

mod platforms;
pub mod request;
use crate::history::{format_utc, Removal, Verdict};
use crate::load::Loaded;

/// One side of the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StateRef {
    /// `HEAD`, a revision, `index` or `working tree`.
    pub label: String,
    pub commit: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Cert {
    pub name: String,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Renamed {
    pub from: String,
    pub to: String,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Repinned {
    pub name: String,
    pub from: Vec<String>,
    pub to: Vec<String>,
}

/// A setting that changed: `field` names it as trust.yaml does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    pub field: String,
    pub from: String,
    pub to: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Distrusted {
    pub sha256: String,
    pub reason: Option<String>,
}

/// What one output does about the change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Effect {
    /// `aks-certificates`, `aks-secret`, `aks-node-pool`, `agent-bundle`, `agent-daemonset`.
    pub output: String,
    pub effect: String,
    /// Where the fact about the node effect comes from (platform targets).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub from: StateRef,
    pub to: StateRef,
    pub added: Vec<Cert>,
    pub removed: Vec<Removal>,
    pub renamed: Vec<Renamed>,
    pub repinned: Vec<Repinned>,
    pub distrusted: Vec<Distrusted>,
    pub undistrusted: Vec<Distrusted>,
    /// Per-authority settings (registries, pools, replaces), as `authorities.<name>.<field>`.
    pub authorities_changed: Vec<Change>,
    /// Target settings, as `targets.aks.<field>` / `targets.agent.<field>`.
    pub targets_changed: Vec<Change>,
    pub effects: Vec<Effect>,
    /// Seconds.
    pub min_overlap: u64,
    /// Unix seconds: the moment CT401 was judged at.
    pub check_time: i64,
    /// Whether the plan breaks CT401 (exit 1).
    pub breaks_ct401: bool,
}

fn certs(l: &Loaded) -> Vec<Cert> {
    l.certificates
        .iter()
        .map(|c| Cert {
            name: c.name.clone(),
            sha256: c.info.sha256.clone(),
        })
        .collect()
}

fn list<T: AsRef<str>>(v: &[T]) -> String {
    if v.is_empty() {
        "(none)".into()
    } else {
        v.iter().map(|s| s.as_ref()).collect::<Vec<_>>().join(", ")
    }
}

fn push(out: &mut Vec<Change>, field: String, from: String, to: String) {
    if from != to {
        out.push(Change { field, from, to });
    }
}

fn distrust(c: Option<&TrustConfig>) -> BTreeMap<String, Option<String>> {
    c.iter()
        .flat_map(|c| &c.distrust)
        .filter_map(|d| {
            Some((
                catrust_bundle::normalize_fingerprint(&d.sha256.value)?,
                d.reason.as_ref().map(|r| r.value.clone()),
            ))
        })
        .collect()
}

/// A setting of a target, as the plan names it and shows its value.
type Setting<T> = (&'static str, fn(&T) -> String);

const AKS_SETTINGS: &[Setting<AksTarget>] = &[
    ("resourceGroup", |a| a.resource_group.value.clone()),
    ("cluster", |a| a.cluster.value.clone()),
    ("certificatesFile", |a| {
        a.certificates_file.value.to_string()
    }),
    ("secret", |a| a.secret.value.to_string()),
];

const AGENT_SETTINGS: &[Setting<AgentTarget>] = &[
    ("namespace", |a| a.namespace.value.clone()),
    ("image", |a| a.image.value.clone()),
    ("containerd", |a| a.containerd.value.as_str().into()),
    ("maxUnavailable", |a| a.max_unavailable.value.to_string()),
    ("poolLabel", |a| a.pool_label.value.clone()),
    ("nodeSelector", |a| {
        let pairs: Vec<String> = a
            .node_selector
            .iter()
            .map(|(k, v)| format!("{}={}", k.value, v.value))
            .collect();
        list(&pairs)
    }),
];

/// Whether a target is declared, and each of its settings that changed.
fn target<T>(
    out: &mut Vec<Change>,
    prefix: &str,
    settings: &[Setting<T>],
    from: Option<&T>,
    to: Option<&T>,
) {
    let declared = |t: Option<&T>| if t.is_some() { "declared" } else { "absent" }.to_string();
    push(out, prefix.into(), declared(from), declared(to));
    if let (Some(f), Some(t)) = (from, to) {
        for (name, value) in settings {
            push(out, format!("{prefix}.{name}"), value(f), value(t));
        }
    }
}

fn targets(from: Option<&TrustConfig>, to: Option<&TrustConfig>, out: &mut Vec<Change>) {
    let (fa, ta) = (
        from.and_then(|c| c.targets.aks.as_ref()),
        to.and_then(|c| c.targets.aks.as_ref()),
    );
    target(out, "targets.aks", AKS_SETTINGS, fa, ta);
    let pools = |a: Option<&AksTarget>| -> BTreeMap<String, String> {
        a.iter()
            .flat_map(|a| &a.node_pools)
            .map(|p| {
                (
                    p.name.value.clone(),
                    p.custom_ca_trust
                        .as_ref()
                        .map_or("unset".to_string(), |f| f.value.to_string()),
                )
            })
            .collect()
    };
    let (fp, tp) = (pools(fa), pools(ta));
    for name in fp.keys().chain(tp.keys()).collect::<BTreeSet<_>>() {
        push(
            out,
            format!("targets.aks.nodePools.{name}.customCATrust"),
            fp.get(name).cloned().unwrap_or_else(|| "(no pool)".into()),
            tp.get(name).cloned().unwrap_or_else(|| "(no pool)".into()),
        );
    }
    target(
        out,
        "targets.agent",
        AGENT_SETTINGS,
        from.and_then(|c| c.targets.agent.as_ref()),
        to.and_then(|c| c.targets.agent.as_ref()),
    );
    platforms::targets(from, to, out);
}

/// The difference between `from` and `to`, with the CT401 verdicts of `removed`
/// (from [`crate::history::removals`]) and the moment they were judged at.
pub fn diff(
    from: (&StateRef, &Loaded),
    to: (&StateRef, &Loaded),
    removed: Vec<Removal>,
    check_time: i64,
) -> Plan {
    let (from_ref, f) = from;
    let (to_ref, t) = to;
    let (fc, tc) = (f.config.as_ref(), t.config.as_ref());
    let before: BTreeMap<String, String> =
        certs(f).into_iter().map(|c| (c.sha256, c.name)).collect();
    let after: BTreeMap<String, String> =
        certs(t).into_iter().map(|c| (c.sha256, c.name)).collect();
    let added = certs(t)
        .into_iter()
        .filter(|c| !before.contains_key(&c.sha256))
        .collect();
    let renamed = renamed(&before, t);
    let repinned = repinned(f, t);
    let authorities_changed = authority_changes(fc, tc);
    let (distrusted, undistrusted) = distrust_changes(fc, tc);
    let mut targets_changed = Vec::new();
    targets(fc, tc, &mut targets_changed);
    let effects = effects(f, t, &targets_changed, before != after);
    let breaks_ct401 = removed.iter().any(|r| r.verdict.blocks());
    Plan {
        from: from_ref.clone(),
        to: to_ref.clone(),
        added,
        removed,
        renamed,
        repinned,
        distrusted,
        undistrusted,
        authorities_changed,
        targets_changed,
        effects,
        min_overlap: tc.map_or(0, |c| c.min_overlap.value),
        check_time,
        breaks_ct401,
    }
}

/// The certificates of `t` kept (same fingerprint as in `before`) under a new name.
fn renamed(before: &BTreeMap<String, String>, t: &Loaded) -> Vec<Renamed> {
    certs(t)
        .into_iter()
        .filter_map(|c| {
            let old = before.get(&c.sha256)?;
            (old != &c.name).then(|| Renamed {
                from: old.clone(),
                to: c.name,
                sha256: c.sha256,
            })
        })
        .collect()
}

/// Authorities by name, with their fingerprints.
fn authorities_by_name(l: &Loaded) -> BTreeMap<String, Vec<String>> {
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    if let Some(c) = &l.config {
        for cert in &l.certificates {
            m.entry(c.authorities[cert.authority].name.value.clone())
                .or_default()
                .push(cert.info.sha256.clone());
        }
    }
    m
}

/// The authorities of both states whose certificates changed.
fn repinned(f: &Loaded, t: &Loaded) -> Vec<Repinned> {
    let (fnames, tnames) = (authorities_by_name(f), authorities_by_name(t));
    tnames
        .iter()
        .filter_map(|(name, fps)| {
            let old = fnames.get(name)?;
            (old != fps).then(|| Repinned {
                name: name.clone(),
                from: old.clone(),
                to: fps.clone(),
            })
        })
        .collect()
}

/// The registries, pools and `replaces` of the authorities both states name.
fn authority_changes(fc: Option<&TrustConfig>, tc: Option<&TrustConfig>) -> Vec<Change> {
    let mut authorities_changed = Vec::new();
    if let (Some(fc), Some(tc)) = (fc, tc) {
        for a in &tc.authorities {
            let Some(old) = fc.authorities.iter().find(|o| o.name.value == a.name.value) else {
                continue;
            };
            let vals = |v: &[crate::span::Spanned<String>]| {
                list(&v.iter().map(|s| s.value.clone()).collect::<Vec<_>>())
            };
            let n = &a.name.value;
            push(
                &mut authorities_changed,
                format!("authorities.{n}.registries"),
                vals(&old.registries),
                vals(&a.registries),
            );
            push(
                &mut authorities_changed,
                format!("authorities.{n}.pools"),
                vals(&old.pools),
                vals(&a.pools),
            );
            let rep = |r: &Option<crate::span::Spanned<String>>| {
                r.as_ref().map_or("(none)".to_string(), |r| r.value.clone())
            };
            push(
                &mut authorities_changed,
                format!("authorities.{n}.replaces"),
                rep(&old.replaces),
                rep(&a.replaces),
            );
        }
    }
    authorities_changed
}

/// The fingerprints `to` distrusts and `from` did not, and the other way round.
fn distrust_changes(
    fc: Option<&TrustConfig>,
    tc: Option<&TrustConfig>,
) -> (Vec<Distrusted>, Vec<Distrusted>) {
    let (fd, td) = (distrust(fc), distrust(tc));
    let distrusted = td
        .iter()
        .filter(|(k, _)| !fd.contains_key(*k))
        .map(|(k, r)| Distrusted {
            sha256: k.clone(),
            reason: r.clone(),
        })
        .collect();
    let undistrusted = fd
        .iter()
        .filter(|(k, _)| !td.contains_key(*k))
        .map(|(k, r)| Distrusted {
            sha256: k.clone(),
            reason: r.clone(),
        })
        .collect();
    (distrusted, undistrusted)
}

fn effects(f: &Loaded, t: &Loaded, targets_changed: &[Change], _set_changed: bool) -> Vec<Effect> {
    let mut out = Vec::new();
    aks_effects(f, t, &mut out);
    node_pool_effects(targets_changed, &mut out);
    agent_effects(f, t, targets_changed, &mut out);
    platforms::effects(f, t, targets_changed, &mut out);
    out
}

/// Appends the effect `effect` on `output`.
fn add_effect(out: &mut Vec<Effect>, output: &str, effect: String) {
    out.push(Effect {
        output: output.into(),
        effect,
        source: None,
    });
}

/// The certificates a state gives `target`.
fn target_certificates(l: &Loaded, target: TargetKind) -> Vec<crate::load::Certificate> {
    l.config
        .as_ref()
        .map(|c| crate::render::for_target(c, &l.certificates, target))
        .unwrap_or_default()
}

/// What the AKS certificate list and the legacy Secret do on the cluster.
fn aks_effects(f: &Loaded, t: &Loaded, out: &mut Vec<Effect>) {
    let mut add = |output: &str, effect: String| add_effect(out, output, effect);
    let pems = |l: &Loaded| {
        target_certificates(l, TargetKind::Aks)
            .into_iter()
            .map(|c| c.pem)
            .collect::<Vec<_>>()
    };
    let keyed = |l: &Loaded| {
        target_certificates(l, TargetKind::Aks)
            .into_iter()
            .map(|c| (c.name, c.pem))
            .collect::<Vec<_>>()
    };
    let aks = |l: &Loaded| l.config.as_ref().and_then(|c| c.targets.aks.clone());
    let (fa, ta) = (aks(f), aks(t));
    if let Some(ta) = &ta {
        let file_before = fa.as_ref().is_some_and(|a| a.certificates_file.value);
        let (before, after) = (pems(f), pems(t));
        if ta.certificates_file.value && (!file_before || before != after) {
            let pools = match ta.node_pools.len() {
                0 => "every node of every pool (trust.yaml declares no node pools)".to_string(),
                1 => "every node of its 1 declared node pool".to_string(),
                n => format!("every node of all {n} declared node pools"),
            };
            add("aks-certificates", format!(
                "AKS certificate list changes ({} -> {} certificates): AKS re-images {pools} (surge, drain, delete) at the next `az-commands.sh update`, ARM deployment or `terraform apply`",
                if file_before { before.len() } else { 0 },
                after.len()
            ));
            if after.is_empty() && file_before && !before.is_empty() {
                add("aks-certificates", "the list becomes empty: `az-commands.sh update` clears it with an empty file (azure-cli#32201)".into());
                add("aks-terraform", "Terraform: emptying custom_ca_trust_certificates_base64 forces a new cluster on azurerm 3.79 to 3.x (terraform-provider-azurerm#23737), and 4.36 and later send an empty list with an undocumented effect: clear it with the CLI (CT307)".into());
            }
        }
        let secret_before = fa.as_ref().is_some_and(|a| a.secret.value);
        if ta.secret.value && (!secret_before || keyed(f) != keyed(t)) {
            add("aks-secret", "custom-ca-trust-secret changes: nothing reads it on a current cluster (its reader went with the per-pool property, CT306)".into());
        }
        if !ta.secret.value && secret_before {
            add("aks-secret", "custom-ca-trust-secret is no longer rendered: pruning it changes no node on a current cluster (CT306)".into());
        }
    } else if fa.is_some() {
        add(
            "aks",
            "the aks target is removed: its outputs are no longer rendered".into(),
        );
    }
}

/// What a node pool's customCATrust change does.
fn node_pool_effects(targets_changed: &[Change], out: &mut Vec<Effect>) {
    let mut add = |output: &str, effect: String| add_effect(out, output, effect);
    for c in targets_changed {
        if let Some(pool) = c
            .field
            .strip_prefix("targets.aks.nodePools.")
            .and_then(|p| p.strip_suffix(".customCATrust"))
        {
            let what = match c.to.as_str() {
                "true" | "false" => "`az-commands.sh update` unsets the retired enableCustomCATrust property on this pool (CT303)",
                "(no pool)" => "no longer managed",
                _ => "nothing to do",
            };
            add(
                "aks-node-pool",
                format!(
                    "node pool `{pool}`: customCATrust {} -> {}: {what}",
                    c.from, c.to
                ),
            );
        }
    }
}

/// Whether the agent DaemonSet rolls, and what removing it leaves behind.
fn agent_effects(f: &Loaded, t: &Loaded, targets_changed: &[Change], out: &mut Vec<Effect>) {
    let mut add = |output: &str, effect: String| add_effect(out, output, effect);
    let agent = |l: &Loaded| l.config.as_ref().and_then(|c| c.targets.agent.clone());
    if let Some(ta) = agent(t) {
        let bundle = |l: &Loaded| {
            l.config.as_ref().map(|c| {
                crate::bundle::manifest(c, &target_certificates(l, TargetKind::Agent)).bundle_sha256
            })
        };
        if agent(f).is_none() || bundle(f) != bundle(t) {
            add(
                "agent-bundle",
                format!(
                    "agent bundle changes: DaemonSet rolls node by node (maxUnavailable {})",
                    ta.max_unavailable.value
                ),
            );
        }
        let settings: Vec<&str> = targets_changed
            .iter()
            .filter(|c| {
                c.field.starts_with("targets.agent.") && !c.field.ends_with(".nodeSelector")
            })
            .map(|c| c.field.as_str())
            .collect();
        if !settings.is_empty() {
            add("agent-daemonset", format!("agent DaemonSet changes ({}): DaemonSet rolls node by node (maxUnavailable {})", settings.join(", "), ta.max_unavailable.value));
        }
    } else if agent(f).is_some() {
        add("agent", "the agent target is removed: pruning the DaemonSet leaves installed CAs on nodes until `catrust-agent uninstall`".into());
    }
}

fn short(c: &str) -> &str {
    &c[..c.len().min(12)]
}

fn side(s: &StateRef) -> String {
    match &s.commit {
        Some(c) => format!("{} ({})", s.label, &c[..c.len().min(10)]),
        None => s.label.clone(),
    }
}

/// The plan for people.
pub fn human(plan: &Plan) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "catrust plan: {} -> {}",
        side(&plan.from),
        side(&plan.to)
    );
    let sections = change_sections(plan);
    for (title, lines) in &sections {
        let _ = writeln!(s, "\n{title}:");
        for l in lines {
            let _ = writeln!(s, "  {l}");
        }
    }
    if sections.is_empty() {
        let _ = writeln!(s, "\nNo changes.");
    }
    write_effects(&mut s, plan);
    write_rotation(&mut s, plan);
    s
}

/// The plan's non-empty change sections, titled, one line per change.
fn change_sections(plan: &Plan) -> Vec<(&'static str, Vec<String>)> {
    let changed: Vec<&Change> = plan
        .authorities_changed
        .iter()
        .chain(&plan.targets_changed)
        .collect();
    let sections = [
        (
            "Added",
            lines(&plan.added, |c| {
                format!("+ {}  sha256 {}", c.name, short(&c.sha256))
            }),
        ),
        (
            "Removed",
            lines(&plan.removed, |r| removed_line(r, plan.min_overlap)),
        ),
        (
            "Renamed (same certificate)",
            lines(&plan.renamed, |r| format!("~ {} -> {}", r.from, r.to)),
        ),
        (
            "Re-pinned (new certificate under the same name)",
            lines(&plan.repinned, repinned_line),
        ),
        (
            "Distrusted (removed from nodes at once)",
            lines(&plan.distrusted, distrusted_line),
        ),
        (
            "No longer distrusted",
            lines(&plan.undistrusted, |d| format!("  {}", short(&d.sha256))),
        ),
        (
            "Changed",
            lines(&changed, |c| {
                format!("~ {}: {} -> {}", c.field, c.from, c.to)
            }),
        ),
    ];
    sections
        .into_iter()
        .filter(|(_, lines)| !lines.is_empty())
        .collect()
}

fn lines<T>(items: &[T], line: impl Fn(&T) -> String) -> Vec<String> {
    items.iter().map(line).collect()
}

fn removed_line(r: &Removal, min_overlap: u64) -> String {
    let mark = if r.verdict.blocks() { "x" } else { "-" };
    format!(
        "{mark} {}  sha256 {}\n      {}",
        r.name,
        short(&r.sha256),
        crate::history::explain(r, min_overlap)
    )
}

fn repinned_line(r: &Repinned) -> String {
    format!(
        "~ {}: {} -> {}",
        r.name,
        list(&r.from.iter().map(|x| short(x)).collect::<Vec<_>>()),
        list(&r.to.iter().map(|x| short(x)).collect::<Vec<_>>())
    )
}

fn distrusted_line(d: &Distrusted) -> String {
    format!(
        "! {}{}",
        short(&d.sha256),
        d.reason
            .as_deref()
            .map(|r| format!("  ({r})"))
            .unwrap_or_default()
    )
}

/// "What happens": each output's effect.
fn write_effects(s: &mut String, plan: &Plan) {
    use std::fmt::Write as _;
    if !plan.effects.is_empty() {
        let _ = writeln!(s, "\nWhat happens:");
        for e in &plan.effects {
            let _ = writeln!(s, "  * {}", e.effect);
            if let Some(source) = &e.source {
                let _ = writeln!(s, "    (source: {source})");
            }
        }
    }
}

/// The CT401 verdict, and for each blocked removal when or how it can go.
fn write_rotation(s: &mut String, plan: &Plan) {
    use std::fmt::Write as _;
    let blocked: Vec<&Removal> = plan.removed.iter().filter(|r| r.verdict.blocks()).collect();
    if blocked.is_empty() {
        if !plan.removed.is_empty() {
            let _ = writeln!(s, "\nRotation (CT401): ok.");
        }
    } else {
        let _ = writeln!(
            s,
            "\nRotation (CT401): this plan breaks the overlap rule (minOverlap {}).",
            crate::config::format_duration(plan.min_overlap)
        );
        for r in blocked {
            match &r.verdict {
                Verdict::TooSoon { allowed_at } => {
                    let _ = writeln!(
                        s,
                        "  `{}` can be removed from {}. Until then keep it; in an emergency move it to `distrust` (sha256 {}).",
                        r.name,
                        format_utc(*allowed_at),
                        r.sha256
                    );
                }
                _ => {
                    let _ = writeln!(s, "  `{}`: history is too short to decide; run `git fetch --unshallow` (CI: `fetch-depth: 0`) and plan again.", r.name);
                }
            }
        }
    }
}

/// The plan as JSON (the shape is documented in README.md, "Rotation").
pub fn json(plan: &Plan) -> String {
    let mut s = serde_json::to_string_pretty(plan).expect("plan serialises");
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::MemSource;

    const A: &str = include_str!("../../examples/basic/certs/corp-root-2024.pem");
    const B: &str = include_str!("../../examples/basic/certs/proxy-ca.pem");

    fn state(authorities: &str, targets: &str) -> Loaded {
        let mut src = MemSource::default();
        src.files.insert("a.pem".into(), A.as_bytes().to_vec());
        src.files.insert("b.pem".into(), B.as_bytes().to_vec());
        let y = format!("apiVersion: catrust.dev/v1alpha1\nkind: TrustConfig\nmetadata:\n  name: corp\nspec:\n  authorities:\n{authorities}  targets:\n{targets}");
        src.files.insert("trust.yaml".into(), y.into_bytes());
        let l = crate::load::load(&src, "trust.yaml").unwrap();
        assert!(l.config.is_some(), "{:?}", l.diagnostics);
        l
    }

    fn r(label: &str) -> StateRef {
        StateRef {
            label: label.into(),
            commit: None,
        }
    }

    const AKS: &str = "    aks:\n      resourceGroup: rg\n      cluster: c\n      nodePools:\n        - name: np1\n          customCATrust: false\n";
    const AKS_ON: &str = "    aks:\n      resourceGroup: rg\n      cluster: c\n      nodePools:\n        - name: np1\n          customCATrust: true\n";
    const AGENT: &str = "    agent:\n      image: registry.example/catrust-agent:0.1.0\n";

    #[test]
    fn renames_are_not_removals_and_pool_flips_are_planned() {
        let from = state("    - name: a\n      file: a.pem\n", AKS);
        let to = state("    - name: a-renamed\n      file: a.pem\n", AKS_ON);
        let p = diff(
            (&r("HEAD"), &from),
            (&r("working tree"), &to),
            Vec::new(),
            0,
        );
        assert!(p.added.is_empty());
        assert_eq!(p.renamed.len(), 1);
        assert!(
            p.effects.iter().any(|e| e.output == "aks-node-pool"
                && e.effect.contains("unsets the retired enableCustomCATrust")),
            "{:?}",
            p.effects
        );
        // A rename changes neither the certificate list nor (off by default) a Secret.
        assert!(!p.effects.iter().any(|e| e.output.starts_with("aks-secret")));
        assert!(!p.effects.iter().any(|e| e.output == "aks-certificates"));
        assert!(human(&p).contains("a -> a-renamed"));
    }

    #[test]
    fn agent_bundle_changes_roll_the_daemonset_and_json_has_the_shape() {
        let from = state("    - name: a\n      file: a.pem\n", AGENT);
        let to = state("    - name: a\n      file: a.pem\n      registries: [registry.corp.example:5000]\n    - name: b\n      file: b.pem\n", AGENT);
        let p = diff((&r("HEAD"), &from), (&r("index"), &to), Vec::new(), 0);
        assert_eq!(p.added.len(), 1);
        assert_eq!(p.authorities_changed[0].field, "authorities.a.registries");
        assert!(
            p.effects.iter().any(|e| e
                .effect
                .contains("DaemonSet rolls node by node (maxUnavailable 10%)")),
            "{:?}",
            p.effects
        );
        let v: serde_json::Value = serde_json::from_str(&json(&p)).unwrap();
        for key in [
            "from",
            "to",
            "added",
            "removed",
            "renamed",
            "repinned",
            "distrusted",
            "undistrusted",
            "authoritiesChanged",
            "targetsChanged",
            "effects",
            "minOverlap",
            "checkTime",
            "breaksCt401",
        ] {
            assert!(v.get(key).is_some(), "{key}");
        }
    }

    #[test]
    fn a_changed_aks_list_re_images_every_pool_and_emptying_it_warns_about_terraform() {
        let two_pools = "    aks:\n      resourceGroup: rg\n      cluster: c\n      nodePools:\n        - name: np1\n        - name: np2\n";
        let one = state("    - name: a\n      file: a.pem\n", two_pools);
        let both = state(
            "    - name: a\n      file: a.pem\n    - name: b\n      file: b.pem\n",
            two_pools,
        );
        let p = diff(
            (&r("HEAD"), &one),
            (&r("working tree"), &both),
            Vec::new(),
            0,
        );
        let effects: Vec<&str> = p.effects.iter().map(|e| e.effect.as_str()).collect();
        assert!(
            effects.iter().any(|e| e.contains("(1 -> 2 certificates)")
                && e.contains("re-images every node of all 2 declared node pools")),
            "{effects:?}"
        );
        assert!(!p.effects.iter().any(|e| e.output == "aks-terraform"));

        // `targets: [agent]` keeps a CA out of the cluster list: no re-image.
        let agent_only = state(
            "    - name: a\n      file: a.pem\n    - name: b\n      file: b.pem\n      targets: [agent]\n",
            &format!("{two_pools}{AGENT}"),
        );
        let with_agent = state(
            "    - name: a\n      file: a.pem\n",
            &format!("{two_pools}{AGENT}"),
        );
        let p = diff(
            (&r("HEAD"), &with_agent),
            (&r("working tree"), &agent_only),
            Vec::new(),
            0,
        );
        assert!(
            !p.effects.iter().any(|e| e.output == "aks-certificates"),
            "{:?}",
            p.effects
        );
        assert!(p.effects.iter().any(|e| e.output == "agent-bundle"));

        // Removing the last certificate: the CLI's empty file, and the Terraform warning.
        let none = state("", two_pools);
        let p = diff(
            (&r("HEAD"), &one),
            (&r("working tree"), &none),
            Vec::new(),
            0,
        );
        let text = human(&p);
        assert!(text.contains("(1 -> 0 certificates)"), "{text}");
        assert!(
            text.contains("clears it with an empty file (azure-cli#32201)"),
            "{text}"
        );
        assert!(p
            .effects
            .iter()
            .any(|e| e.output == "aks-terraform" && e.effect.contains("forces a new cluster")));
    }

    #[test]
    fn no_change_says_so() {
        let s = state("    - name: a\n      file: a.pem\n", AKS);
        let p = diff((&r("HEAD"), &s), (&r("working tree"), &s), Vec::new(), 0);
        assert!(p.effects.is_empty());
        assert!(human(&p).contains("No changes."));
    }

    #[test]
    fn every_agent_setting_change_is_planned() {
        let from = state("    - name: a\n      file: a.pem\n", AGENT);
        let to = state(
            "    - name: a\n      file: a.pem\n",
            &format!("{AGENT}      containerd: none\n      poolLabel: pool\n"),
        );
        let p = diff(
            (&r("HEAD"), &from),
            (&r("working tree"), &to),
            Vec::new(),
            0,
        );
        let fields: Vec<&str> = p.targets_changed.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(
            fields,
            ["targets.agent.containerd", "targets.agent.poolLabel"]
        );
        assert!(p.effects.iter().any(|e| e.output == "agent-daemonset"));
    }
}
