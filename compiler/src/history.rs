//! The rotation rule (CT401), pure: two loaded states and the dates git history gives
//! each certificate in, the removals and their verdicts out.
//!
//! Certificates are matched by SHA-256, never by name: renaming an authority or its
//! file is not a removal, and putting a new certificate under an old name is one (the
//! old certificate leaves the nodes). A removed certificate whose fingerprint is in
//! the checked state's `distrust` is the emergency path: no overlap applies.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::config::TrustConfig;
use crate::diag::Diagnostic;
use crate::load::{Certificate, Loaded};
use crate::rules::Code;

/// When a certificate entered first-parent history (the start of its current run).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Seen {
    /// Unix seconds: the committer time of that commit, or the check time for a
    /// certificate that is not committed yet.
    pub time: i64,
    /// `None` when only the checked (uncommitted) state holds it.
    pub commit: Option<String>,
    /// Position on the first-parent chain: 0 the uncommitted state, 1 the newest
    /// commit walked, growing into the past.
    pub order: u64,
    /// History was cut (shallow clone) while the certificate was still present: it
    /// entered at `time` or earlier.
    pub truncated: bool,
}

/// The facts the rule needs from history.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub seen: BTreeMap<String, Seen>,
    /// The moment of the check: now for an uncommitted state, the commit time of `--rev`.
    pub check_time: i64,
}

/// What the rule says about one removed certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "verdict")]
pub enum Verdict {
    /// Its fingerprint moved to `distrust`: removed at once, no overlap.
    Emergency,
    /// No authority replaces it and none was added after it.
    NoSuccessor,
    /// Every successor has been in history for `minOverlap`.
    Allowed,
    /// A successor is too recent; allowed from `allowedAt`.
    #[serde(rename_all = "camelCase")]
    TooSoon { allowed_at: i64 },
    /// A shallow clone cut history before a successor's first commit.
    #[serde(rename_all = "camelCase")]
    HistoryTooShort { boundary_time: i64 },
}

impl Verdict {
    /// Does this removal break CT401?
    pub fn blocks(&self) -> bool {
        matches!(
            self,
            Verdict::TooSoon { .. } | Verdict::HistoryTooShort { .. }
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Successor {
    pub name: String,
    pub sha256: String,
    pub first_seen: Seen,
    /// `first_seen.time + minOverlap`.
    pub allowed_at: i64,
}

/// One certificate of the parent state that the checked state no longer trusts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Removal {
    /// The certificate's name in the parent state.
    pub name: String,
    /// Its authority's name in the parent state (what `replaces` names).
    pub authority: String,
    pub sha256: String,
    /// Whether the successors are named by `replaces` (else: added after it).
    pub by_replaces: bool,
    pub successors: Vec<Successor>,
    #[serde(flatten)]
    pub verdict: Verdict,
    /// Index of the first successor's authority in the checked state (for spans).
    #[serde(skip)]
    pub anchor: Option<usize>,
}

/// Fingerprints in `distrust` of a loaded state.
pub fn distrusted(loaded: &Loaded) -> BTreeSet<String> {
    loaded
        .config
        .iter()
        .flat_map(|c| &c.distrust)
        .filter_map(|d| catrust_bundle::normalize_fingerprint(&d.sha256.value))
        .collect()
}

fn trusted(loaded: &Loaded) -> BTreeSet<&str> {
    loaded
        .certificates
        .iter()
        .map(|c| c.info.sha256.as_str())
        .collect()
}

/// Fingerprints the parent trusts and the checked state neither trusts nor distrusts:
/// the removals the rule must date. Empty means no history is needed.
pub fn removed(parent: &Loaded, checked: &Loaded) -> BTreeSet<String> {
    let now = trusted(checked);
    let distrust = distrusted(checked);
    parent
        .certificates
        .iter()
        .map(|c| c.info.sha256.clone())
        .filter(|fp| !now.contains(fp.as_str()) && !distrust.contains(fp))
        .collect()
}

/// Every certificate of `parent` missing from `checked`, with its verdict.
pub fn removals(parent: &Loaded, checked: &Loaded, facts: &Facts) -> Vec<Removal> {
    let (Some(parent_config), Some(config)) = (&parent.config, &checked.config) else {
        return Vec::new();
    };
    let now = trusted(checked);
    let distrust = distrusted(checked);
    let mut out = Vec::new();
    for gone in &parent.certificates {
        let fp = gone.info.sha256.as_str();
        if now.contains(fp) {
            continue;
        }
        let mut removal = Removal {
            name: gone.name.clone(),
            authority: parent_config.authorities[gone.authority].name.value.clone(),
            sha256: fp.to_string(),
            by_replaces: false,
            successors: Vec::new(),
            verdict: Verdict::Emergency,
            anchor: None,
        };
        if !distrust.contains(fp) {
            judge(&mut removal, config, checked, facts);
        }
        out.push(removal);
    }
    out
}

/// When `fp` entered history; the check time for a certificate not committed yet.
fn seen(facts: &Facts, fp: &str) -> Seen {
    facts.seen.get(fp).cloned().unwrap_or(Seen {
        time: facts.check_time,
        commit: None,
        order: 0,
        truncated: false,
    })
}

/// The successors and verdict of a removal that is not an emergency.
fn judge(removal: &mut Removal, config: &TrustConfig, checked: &Loaded, facts: &Facts) {
    let (by_replaces, successors) = successors(removal, config, checked, facts);
    removal.by_replaces = by_replaces;
    let Some(first) = successors.first() else {
        removal.verdict = Verdict::NoSuccessor;
        return;
    };
    removal.anchor = Some(first.authority);
    let overlap = config.min_overlap.value as i64;
    let mut latest = i64::MIN;
    let mut cut: Option<i64> = None;
    for c in successors {
        let s = seen(facts, &c.info.sha256);
        let allowed_at = s.time.saturating_add(overlap);
        if s.truncated && allowed_at > facts.check_time {
            cut = Some(cut.map_or(s.time, |t: i64| t.min(s.time)));
        }
        latest = latest.max(allowed_at);
        removal.successors.push(Successor {
            name: c.name.clone(),
            sha256: c.info.sha256.clone(),
            first_seen: s,
            allowed_at,
        });
    }
    removal.verdict = match cut {
        Some(boundary_time) => Verdict::HistoryTooShort { boundary_time },
        None if latest > facts.check_time => Verdict::TooSoon { allowed_at: latest },
        None => Verdict::Allowed,
    };
}

/// The checked state's certificates that succeed `removal`: those of the authorities
/// whose `replaces` names it (then `true`), else every one added after it.
fn successors<'c>(
    removal: &Removal,
    config: &TrustConfig,
    checked: &'c Loaded,
    facts: &Facts,
) -> (bool, Vec<&'c Certificate>) {
    let replacing: BTreeSet<usize> = config
        .authorities
        .iter()
        .enumerate()
        .filter(|(_, a)| {
            a.replaces
                .as_ref()
                .is_some_and(|r| r.value == removal.authority)
        })
        .map(|(i, _)| i)
        .collect();
    let by_replaces = !replacing.is_empty();
    let gone_seen = facts.seen.get(&removal.sha256);
    let successors = checked
        .certificates
        .iter()
        .filter(|c| {
            if by_replaces {
                return replacing.contains(&c.authority);
            }
            let s = seen(facts, &c.info.sha256);
            match gone_seen {
                // Added strictly after it; when both reach a shallow boundary the
                // order is unknown, so count it (the conservative choice).
                Some(g) => s.order < g.order || (g.truncated && s.truncated),
                None => true,
            }
        })
        .collect();
    (by_replaces, successors)
}

/// `2026-12-01 10:00:00 UTC`.
pub fn format_utc(unix: i64) -> String {
    ::time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(::time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute]:[second] UTC"
            ))
            .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

fn short(commit: &Option<String>) -> String {
    commit.as_deref().map_or_else(
        || "not committed yet".into(),
        |c| format!("commit {}", &c[..c.len().min(10)]),
    )
}

/// One line on why a removal is or is not allowed, for people.
pub fn explain(r: &Removal, min_overlap: u64) -> String {
    let overlap = crate::config::format_duration(min_overlap);
    let who = |s: &Successor| {
        format!(
            "`{}` entered history {} ({})",
            s.name,
            format_utc(s.first_seen.time),
            short(&s.first_seen.commit)
        )
    };
    let blocking: Vec<&Successor> = match &r.verdict {
        Verdict::TooSoon { allowed_at } => r
            .successors
            .iter()
            .filter(|s| s.allowed_at == *allowed_at)
            .collect(),
        _ => r
            .successors
            .iter()
            .filter(|s| s.first_seen.truncated)
            .collect(),
    };
    match &r.verdict {
        Verdict::Emergency => format!("`{}` is distrusted: removed at once, no overlap applies (emergency)", r.name),
        Verdict::NoSuccessor => format!("`{}` has no successor (nothing replaces it or was added after it): removal allowed", r.name),
        Verdict::Allowed => format!(
            "`{}` removal allowed: every successor ({}) has been in history for {overlap}",
            r.name,
            r.successors.iter().map(|s| format!("`{}`", s.name)).collect::<Vec<_>>().join(", ")
        ),
        Verdict::TooSoon { allowed_at } => format!(
            "`{}` is removed too soon: its successor {}, less than minOverlap {overlap} before the check; removal is allowed from {}",
            r.name,
            blocking.iter().map(|s| who(s)).collect::<Vec<_>>().join(" and "),
            format_utc(*allowed_at)
        ),
        Verdict::HistoryTooShort { boundary_time } => format!(
            "cannot decide whether `{}` may be removed: history is too short (shallow clone) — successor {} was already present at the oldest commit fetched ({}), and {overlap} has not passed since then",
            r.name,
            blocking.iter().map(|s| format!("`{}`", s.name)).collect::<Vec<_>>().join(", "),
            format_utc(*boundary_time)
        ),
    }
}

/// The CT401 findings of a set of removals, placed on the checked trust.yaml.
pub fn diagnostics(removals: &[Removal], checked: &Loaded) -> Vec<Diagnostic> {
    let Some(config) = &checked.config else {
        return Vec::new();
    };
    removals
        .iter()
        .filter(|r| r.verdict.blocks())
        .map(|r| {
            let mut d = Diagnostic::new(Code::Ct401, explain(r, config.min_overlap.value));
            if let Some(a) = r.anchor.and_then(|i| config.authorities.get(i)) {
                let span = a.replaces.as_ref().filter(|_| r.by_replaces).map_or(a.name.span, |s| s.span);
                d = d.at(&checked.config_file, span);
            }
            d.with_help(match &r.verdict {
                Verdict::TooSoon { allowed_at } => format!(
                    "keep `{}` in `authorities` until {}; in an emergency, move it to `distrust` (sha256 {})",
                    r.authority,
                    format_utc(*allowed_at),
                    r.sha256
                ),
                _ => "fetch the whole history: `git fetch --unshallow` (GitHub Actions: `actions/checkout` with `fetch-depth: 0`; GitLab: `GIT_DEPTH: 0`)".to_string(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::MemSource;

    const A: &str = include_str!("../../examples/basic/certs/corp-root-2024.pem");
    const B: &str = include_str!("../../examples/basic/certs/proxy-ca.pem");
    const H: i64 = 3600;

    /// A state: `(name, pem file, replaces)` authorities and distrusted fingerprints.
    fn state(auths: &[(&str, &str, Option<&str>)], distrust: &[&str]) -> Loaded {
        let mut src = MemSource::default();
        let mut y = String::from("apiVersion: catrust.dev/v1alpha1\nkind: TrustConfig\nmetadata:\n  name: corp\nspec:\n  authorities:\n");
        for (name, pem, replaces) in auths {
            src.files
                .insert(format!("{name}.pem"), pem.as_bytes().to_vec());
            y.push_str(&format!("    - name: {name}\n      file: {name}.pem\n"));
            if let Some(r) = replaces {
                y.push_str(&format!("      replaces: {r}\n"));
            }
        }
        if !distrust.is_empty() {
            y.push_str("  distrust:\n");
            for d in distrust {
                y.push_str(&format!("    - sha256: \"{d}\"\n"));
            }
        }
        y.push_str("  targets:\n    aks:\n      resourceGroup: rg\n      cluster: c\n");
        src.files.insert("trust.yaml".into(), y.into_bytes());
        crate::load::load(&src, "trust.yaml").unwrap()
    }

    fn fp(l: &Loaded, i: usize) -> String {
        l.certificates[i].info.sha256.clone()
    }

    fn seen(time: i64, order: u64, truncated: bool) -> Seen {
        Seen {
            time,
            commit: Some("c".repeat(40)),
            order,
            truncated,
        }
    }

    #[test]
    fn a_renamed_authority_is_not_a_removal() {
        let parent = state(&[("old-name", A, None)], &[]);
        let checked = state(&[("new-name", A, None)], &[]);
        assert!(removed(&parent, &checked).is_empty());
        assert!(removals(&parent, &checked, &Facts::default()).is_empty());
    }

    #[test]
    fn a_new_certificate_under_the_old_name_is_a_removal() {
        let parent = state(&[("corp", A, None)], &[]);
        let checked = state(&[("corp", B, None)], &[]);
        let facts = Facts {
            seen: [(fp(&parent, 0), seen(0, 1, false))].into(),
            check_time: 10 * H,
        };
        let r = removals(&parent, &checked, &facts);
        // B is not committed yet: dated at the check time.
        assert_eq!(
            r[0].verdict,
            Verdict::TooSoon {
                allowed_at: 10 * H + 72 * H
            }
        );
    }

    #[test]
    fn replaces_names_the_successor_and_dates_the_removal() {
        let parent = state(&[("old", A, None), ("new", B, Some("old"))], &[]);
        let checked = state(&[("new", B, Some("old"))], &[]);
        let mut facts = Facts {
            seen: [
                (fp(&parent, 0), seen(0, 2, false)),
                (fp(&parent, 1), seen(100 * H, 1, false)),
            ]
            .into(),
            check_time: 101 * H,
        };
        let r = removals(&parent, &checked, &facts);
        assert_eq!(r.len(), 1);
        assert!(r[0].by_replaces);
        assert_eq!(
            r[0].verdict,
            Verdict::TooSoon {
                allowed_at: 172 * H
            }
        );
        let d = diagnostics(&r, &checked);
        assert_eq!(d[0].code, Code::Ct401);
        assert!(
            d[0].message.contains("1970-01-08 04:00:00 UTC"),
            "{}",
            d[0].message
        );
        facts.check_time = 172 * H;
        assert_eq!(
            removals(&parent, &checked, &facts)[0].verdict,
            Verdict::Allowed
        );
    }

    #[test]
    fn distrust_is_the_emergency_path_and_no_successor_is_allowed() {
        let parent = state(&[("old", A, None), ("other", B, None)], &[]);
        let a = fp(&parent, 0);
        let checked = state(&[("other", B, None)], &[&a]);
        assert_eq!(
            removals(&parent, &checked, &Facts::default())[0].verdict,
            Verdict::Emergency
        );
        assert!(removed(&parent, &checked).is_empty(), "no walk needed");
        // `other` was there before `old`: not a successor.
        let checked = state(&[("other", B, None)], &[]);
        let facts = Facts {
            seen: [
                (a, seen(50 * H, 1, false)),
                (fp(&parent, 1), seen(0, 2, false)),
            ]
            .into(),
            check_time: 51 * H,
        };
        assert_eq!(
            removals(&parent, &checked, &facts)[0].verdict,
            Verdict::NoSuccessor
        );
    }

    #[test]
    fn a_shallow_boundary_decides_only_when_it_is_old_enough() {
        let parent = state(&[("old", A, None), ("new", B, Some("old"))], &[]);
        let checked = state(&[("new", B, Some("old"))], &[]);
        let cut = |check_time| Facts {
            seen: [
                (fp(&parent, 0), seen(10 * H, 5, true)),
                (fp(&parent, 1), seen(10 * H, 5, true)),
            ]
            .into(),
            check_time,
        };
        assert_eq!(
            removals(&parent, &checked, &cut(11 * H))[0].verdict,
            Verdict::HistoryTooShort {
                boundary_time: 10 * H
            }
        );
        assert_eq!(
            removals(&parent, &checked, &cut(82 * H))[0].verdict,
            Verdict::Allowed
        );
    }
}
