//! Where the plugin's settings come from, in order of precedence:
//!
//! 1. Application parameters (`spec.source.plugin.parameters`), which Argo CD passes
//!    as `ARGOCD_APP_PARAMETERS` (JSON) and as `PARAM_<NAME>`;
//! 2. Application `plugin.env` entries, which Argo CD prefixes with `ARGOCD_ENV_`:
//!    `ARGOCD_ENV_CATRUST_TARGET` — and, because that prefix is a well-known trap,
//!    `ARGOCD_ENV_TARGET` and a plain `CATRUST_TARGET` set on the sidecar work too;
//! 3. the defaults: every declared target, `trust.yaml` in the app folder.

use std::path::{Path, PathBuf};

use catrust::render::TargetSelection;
use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub target: TargetSelection,
    /// trust.yaml, relative to the app folder.
    pub file: String,
    pub deny_warnings: bool,
    /// `ARGOCD_APP_SOURCE_PATH`: the app folder relative to the repository root.
    pub source_path: Option<String>,
}

#[derive(Deserialize)]
struct Parameter {
    name: String,
    #[serde(default)]
    string: Option<String>,
}

fn parse_target(value: &str) -> Result<TargetSelection, String> {
    match value.trim() {
        "" | "all" => Ok(TargetSelection::Declared),
        "aks" => Ok(TargetSelection::Aks),
        "agent" => Ok(TargetSelection::Agent),
        other => Err(format!("target `{other}` is not one of all, aks, agent")),
    }
}

fn parse_bool(name: &str, value: &str) -> Result<bool, String> {
    match value.trim() {
        "true" | "1" | "yes" => Ok(true),
        "" | "false" | "0" | "no" => Ok(false),
        other => Err(format!("{name} `{other}` is not true or false")),
    }
}

impl Settings {
    pub fn from_env(vars: impl Iterator<Item = (String, String)>) -> Result<Self, String> {
        let vars: std::collections::BTreeMap<String, String> = vars.collect();
        let mut params: std::collections::BTreeMap<String, String> = Default::default();
        if let Some(json) = vars
            .get("ARGOCD_APP_PARAMETERS")
            .filter(|j| !j.trim().is_empty())
        {
            let list: Vec<Parameter> = serde_json::from_str(json)
                .map_err(|e| format!("ARGOCD_APP_PARAMETERS is not valid JSON: {e}"))?;
            for p in list {
                if let Some(v) = p.string {
                    params.insert(p.name.to_ascii_lowercase(), v);
                }
            }
        }
        let lookup = |name: &str| -> Option<String> {
            let upper = name.to_ascii_uppercase().replace('-', "_");
            params
                .get(name)
                .cloned()
                .or_else(|| vars.get(&format!("PARAM_{upper}")).cloned())
                .or_else(|| vars.get(&format!("ARGOCD_ENV_CATRUST_{upper}")).cloned())
                .or_else(|| vars.get(&format!("ARGOCD_ENV_{upper}")).cloned())
                .or_else(|| vars.get(&format!("CATRUST_{upper}")).cloned())
        };
        Ok(Settings {
            target: parse_target(&lookup("target").unwrap_or_default())?,
            file: lookup("file")
                .filter(|f| !f.trim().is_empty())
                .unwrap_or_else(|| "trust.yaml".into()),
            deny_warnings: parse_bool(
                "deny-warnings",
                &lookup("deny-warnings").unwrap_or_default(),
            )?,
            source_path: vars
                .get("ARGOCD_APP_SOURCE_PATH")
                .filter(|p| !p.trim().is_empty())
                .cloned(),
        })
    }

    /// The repository root and trust.yaml's repository path. The cmp-server lays the
    /// repository out with the app folder at `ARGOCD_APP_SOURCE_PATH` below the root,
    /// so `file:` paths may reach sibling folders of the app, but not above the repo.
    pub fn locate(&self, app_dir: &Path) -> (PathBuf, String) {
        let source = self
            .source_path
            .as_deref()
            .map(|p| p.trim_matches('/'))
            .filter(|p| !p.is_empty() && *p != ".");
        let root = source
            .and_then(|p| {
                let depth = Path::new(p).components().count();
                let mut root = app_dir.to_path_buf();
                for _ in 0..depth {
                    root = root.parent()?.to_path_buf();
                }
                app_dir.ends_with(p).then_some(root)
            })
            .unwrap_or_else(|| app_dir.to_path_buf());
        let prefix = source.filter(|_| root != app_dir).unwrap_or("");
        let config =
            catrust::source::repo_join(prefix, &self.file).unwrap_or_else(|| self.file.clone());
        (root, config)
    }
}

/// The dynamic parameter announcement (`parameters.dynamic.command`).
pub fn announcement() -> String {
    serde_json::json!([
        {
            "name": "target",
            "title": "catrust target",
            "tooltip": "Which targets of trust.yaml to render: all (every declared target), aks, or agent",
            "itemType": "string",
            "collectionType": "string",
            "string": "all",
        },
        {
            "name": "file",
            "title": "trust file",
            "tooltip": "Path of trust.yaml, relative to the Application's source path",
            "itemType": "string",
            "collectionType": "string",
            "string": "trust.yaml",
        },
        {
            "name": "deny-warnings",
            "title": "refuse warnings",
            "tooltip": "Fail the sync on lint warnings too (true/false)",
            "itemType": "string",
            "collectionType": "string",
            "string": "false",
        },
    ])
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Result<Settings, String> {
        Settings::from_env(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn parameters_beat_env_and_every_spelling_of_env_works() {
        let s = env(&[
            (
                "ARGOCD_APP_PARAMETERS",
                r#"[{"name":"target","string":"agent"}]"#,
            ),
            ("ARGOCD_ENV_CATRUST_TARGET", "aks"),
        ])
        .unwrap();
        assert_eq!(s.target, TargetSelection::Agent);
        for key in [
            "ARGOCD_ENV_CATRUST_TARGET",
            "ARGOCD_ENV_TARGET",
            "CATRUST_TARGET",
            "PARAM_TARGET",
        ] {
            assert_eq!(
                env(&[(key, "aks")]).unwrap().target,
                TargetSelection::Aks,
                "{key}"
            );
        }
        assert!(env(&[("PARAM_TARGET", "gke")]).is_err());
        assert!(env(&[("ARGOCD_APP_PARAMETERS", "not json")]).is_err());
    }

    #[test]
    fn the_repository_root_is_found_from_the_source_path() {
        let s = env(&[("ARGOCD_APP_SOURCE_PATH", "clusters/prod")]).unwrap();
        let (root, config) = s.locate(Path::new("/tmp/repo/clusters/prod"));
        assert_eq!(root, Path::new("/tmp/repo"));
        assert_eq!(config, "clusters/prod/trust.yaml");
        let s = env(&[("ARGOCD_APP_SOURCE_PATH", ".")]).unwrap();
        assert_eq!(
            s.locate(Path::new("/tmp/repo")),
            (PathBuf::from("/tmp/repo"), "trust.yaml".to_string())
        );
    }
}
