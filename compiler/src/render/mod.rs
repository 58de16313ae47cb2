//! Loaded configuration → the bytes of every output file. Pure: no clock, no file
//! system; the same input gives the same bytes everywhere.

pub mod agent;
pub mod aks;
pub mod k8s;
pub mod platforms;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::config::{TargetKind, TrustConfig};
use crate::load::Certificate;
use crate::templates::{TemplateError, Templates};

/// Which targets to render.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetSelection {
    /// Every target trust.yaml declares.
    Declared,
    Aks,
    Agent,
    /// One platform target (trust-manager, ClusterTrustBundle, ...).
    Platform(platforms::Platform),
}

/// Where the configuration came from, recorded in the lock file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Provenance {
    /// Repository path of trust.yaml.
    pub config_path: String,
    /// The git commit the configuration was read from (`HEAD`, or `--rev`), when in a
    /// repository. Part of the input: a different commit gives different bytes.
    pub commit: Option<String>,
    /// The files read differ from `commit` (an uncommitted working tree or index).
    pub dirty: bool,
}

/// The annotation naming the source commit, in top-level object metadata only (never
/// in a pod template: a new commit must not roll nodes).
pub const SOURCE_COMMIT_ANNOTATION: &str = "catrust.dev/source-commit";
/// Present (`"true"`) when the build read uncommitted files.
pub const SOURCE_DIRTY_ANNOTATION: &str = "catrust.dev/source-dirty";

impl Provenance {
    /// The provenance annotations of every top-level object's `metadata.annotations`.
    pub fn annotations(&self) -> k8s::OrderedMap {
        let mut a = k8s::OrderedMap::default();
        if let Some(commit) = &self.commit {
            a.insert(SOURCE_COMMIT_ANNOTATION, commit.clone());
            if self.dirty {
                a.insert(SOURCE_DIRTY_ANNOTATION, "true");
            }
        }
        a
    }
}

/// Everything one build writes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rendered {
    /// Output-relative path → bytes, including `kustomization.yaml` and the lock file.
    pub files: BTreeMap<String, Vec<u8>>,
    /// The Kubernetes objects, in kustomization order, one YAML document each.
    pub objects: Vec<String>,
    /// The agent bundles rendered (one per pool group).
    pub bundles: Vec<BundleRef>,
    /// The path of each object, in `objects` order: the kustomization's `resources`.
    pub resources: Vec<String>,
}

/// One rendered agent bundle Secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BundleRef {
    pub secret: String,
    pub sha256: String,
}

impl Rendered {
    /// The objects as one YAML stream, for `--stdout` and the Argo CD plugin.
    pub fn stream(&self) -> String {
        self.objects.join("---\n")
    }

    /// Adds one Kubernetes object's YAML to the folder, the `--stdout` stream and the
    /// kustomization's `resources`.
    fn add_object(&mut self, path: &str, yaml: String) {
        self.files
            .insert(path.to_string(), yaml.clone().into_bytes());
        self.objects.push(yaml);
        self.resources.push(path.to_string());
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("--target {0}: trust.yaml declares no `spec.targets.{0}`")]
    TargetNotDeclared(&'static str),
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LockAuthority<'a> {
    name: &'a str,
    sha256: &'a str,
    subject: &'a str,
    not_after: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Lock<'a> {
    generator: String,
    config: &'a str,
    source: LockSource<'a>,
    authorities: Vec<LockAuthority<'a>>,
    /// The bundle of every authority (what a node of no particular pool trusts when no
    /// authority names pools).
    bundle_sha256: String,
    /// The agent bundle Secrets rendered, one per pool group.
    #[serde(skip_serializing_if = "<[BundleRef]>::is_empty")]
    agent_bundles: &'a [BundleRef],
    files: BTreeMap<String, String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LockSource<'a> {
    file: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    commit: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dirty: Option<bool>,
}

/// The certificates `target` gets: those of every authority whose `targets` names it
/// (or names none), in trust.yaml order.
pub fn for_target(
    config: &TrustConfig,
    certificates: &[Certificate],
    target: TargetKind,
) -> Vec<Certificate> {
    certificates
        .iter()
        .filter(|c| config.authorities[c.authority].goes_to(target))
        .cloned()
        .collect()
}

/// What every target renders from: the linted configuration, the certificates it gets
/// (all of them, or those of one target: [`for_target`]), the templates and the
/// provenance.
#[derive(Clone, Copy)]
pub(crate) struct Inputs<'a> {
    pub config: &'a TrustConfig,
    pub certificates: &'a [Certificate],
    pub templates: &'a Templates,
    pub provenance: &'a Provenance,
}

/// Renders every selected target. The configuration must have passed the lint
/// without errors (the caller checks): rendering does not re-validate.
pub fn render(
    config: &TrustConfig,
    certificates: &[Certificate],
    templates: &Templates,
    selection: TargetSelection,
    provenance: &Provenance,
) -> Result<Rendered, RenderError> {
    let (want_aks, want_agent) = match selection {
        TargetSelection::Declared => (config.targets.aks.is_some(), config.targets.agent.is_some()),
        TargetSelection::Aks => (true, false),
        TargetSelection::Agent => (false, true),
        TargetSelection::Platform(_) => (false, false),
    };
    let inputs = Inputs {
        config,
        certificates,
        templates,
        provenance,
    };
    let mut out = Rendered::default();
    if want_aks {
        let aks = config
            .targets
            .aks
            .as_ref()
            .ok_or(RenderError::TargetNotDeclared("aks"))?;
        let certificates = for_target(config, certificates, TargetKind::Aks);
        let inputs = Inputs {
            certificates: &certificates,
            ..inputs
        };
        aks::render(&inputs, aks, &mut out)?;
    }
    if want_agent {
        let agent = config
            .targets
            .agent
            .as_ref()
            .ok_or(RenderError::TargetNotDeclared("agent"))?;
        let certificates = for_target(config, certificates, TargetKind::Agent);
        let inputs = Inputs {
            certificates: &certificates,
            ..inputs
        };
        agent::render(&inputs, agent, &mut out);
    }
    for platform in platforms::Platform::ALL {
        let wanted = match selection {
            TargetSelection::Declared => platform.declared(config),
            TargetSelection::Platform(p) => p == platform,
            TargetSelection::Aks | TargetSelection::Agent => false,
        };
        if wanted {
            platforms::render(platform, &inputs, &mut out)?;
        }
    }
    let kustomization = k8s::Kustomization {
        api_version: "kustomize.config.k8s.io/v1beta1",
        kind: "Kustomization",
        resources: out.resources.clone(),
    };
    out.files.insert(
        "kustomization.yaml".into(),
        k8s::to_yaml(&kustomization).into_bytes(),
    );
    let lock = lock_file(config, certificates, provenance, &out);
    out.files.insert(LOCK_FILE.into(), lock);
    Ok(out)
}

/// `catrust.lock.json`: what was rendered from what, with every file's hash.
fn lock_file(
    config: &TrustConfig,
    certificates: &[Certificate],
    provenance: &Provenance,
    out: &Rendered,
) -> Vec<u8> {
    let lock = Lock {
        generator: format!("catrust {}", env!("CARGO_PKG_VERSION")),
        config: &config.name.value,
        source: LockSource {
            file: &provenance.config_path,
            commit: provenance.commit.as_deref(),
            dirty: provenance.commit.as_ref().map(|_| provenance.dirty),
        },
        authorities: certificates
            .iter()
            .map(|c| LockAuthority {
                name: &c.name,
                sha256: &c.info.sha256,
                subject: &c.info.subject,
                not_after: crate::cert::format_time(c.info.not_after),
            })
            .collect(),
        bundle_sha256: crate::bundle::manifest(
            config,
            &for_target(config, certificates, TargetKind::Agent),
        )
        .bundle_sha256,
        agent_bundles: &out.bundles,
        files: out
            .files
            .iter()
            .map(|(path, bytes)| (path.clone(), catrust_bundle::sha256_hex(bytes)))
            .collect(),
    };
    let mut json = serde_json::to_string_pretty(&lock).expect("lock serialises");
    json.push('\n');
    json.into_bytes()
}

/// The source commit and dirty flag a lock file records (`(None, false)` when it
/// records none), so that `build --check` can render with the provenance of the
/// folder it compares against; `None` when the bytes are not a lock file.
pub fn recorded_provenance(lock: &[u8]) -> Option<(Option<String>, bool)> {
    let value: serde_json::Value = serde_json::from_slice(lock).ok()?;
    let source = value.get("source")?;
    let commit = source
        .get("commit")
        .and_then(|c| c.as_str())
        .map(str::to_string);
    let dirty = source
        .get("dirty")
        .and_then(|d| d.as_bool())
        .unwrap_or(false);
    Some((commit, dirty))
}

/// Name of the lock file inside the output folder; its presence marks a folder as a
/// catrust output (so `--out` never replaces a folder that is not one).
pub const LOCK_FILE: &str = "catrust.lock.json";
