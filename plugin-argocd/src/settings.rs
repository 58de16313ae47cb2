//! Where the plugin's settings come from, in order of precedence:
//!
//! 1. Application parameters (`spec.source.plugin.parameters`), which Argo CD passes
//!    as `ARGOCD_APP_PARAMETERS` (JSON) and as `PARAM_<NAME>`;
//! 2. Application `plugin.env` entries, which Argo CD prefixes with `ARGOCD_ENV_` and
//!    passes with the name's case kept: `ARGOCD_ENV_CATRUST_TARGET` (any case) — and,
//!    because that prefix is a well-known trap, `ARGOCD_ENV_TARGET` and a plain
//!    `CATRUST_TARGET` set on the sidecar work too;
//! 3. the defaults: every declared target, `trust.yaml` in the app folder.
//!
//! What Argo CD sends (argoproj/argo-cd `reposerver/repository/repository.go`,
//! `getPluginParamEnvs`): without a `plugin:` section no `ARGOCD_APP_PARAMETERS` at all;
//! with one, always `ARGOCD_APP_PARAMETERS`, and `null` when it lists no parameters
//! (a nil Go slice marshals to `null`).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use catrust::render::TargetSelection;
use serde::Deserialize;

/// A setting the plugin cannot use. Shown on one line in the Argo CD UI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettingsError {
    /// `ARGOCD_APP_PARAMETERS` is neither `null` nor a JSON list of parameters.
    Parameters(String),
    /// A parameter catrust knows was given as a map or an array.
    NotAString(String),
    /// A value outside the accepted set.
    Invalid {
        name: &'static str,
        value: String,
        accepted: &'static str,
    },
}

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SettingsError::Parameters(e) => write!(
                f,
                "ARGOCD_APP_PARAMETERS is not null nor a JSON list of parameters: {e}"
            ),
            SettingsError::NotAString(name) => {
                write!(f, "parameter `{name}` must be a string, not a map or array")
            }
            SettingsError::Invalid {
                name,
                value,
                accepted,
            } => write!(
                f,
                "{name} `{}` is not one of {accepted}",
                value.escape_default()
            ),
        }
    }
}

impl std::error::Error for SettingsError {}

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
    #[serde(default)]
    map: Option<serde_json::Value>,
    #[serde(default)]
    array: Option<serde_json::Value>,
}

/// The settings catrust reads; anything else in the environment is ignored.
const KNOWN: [&str; 3] = ["target", "file", "deny-warnings"];

fn parse_target(value: &str) -> Result<TargetSelection, SettingsError> {
    match value.trim() {
        "" | "all" => Ok(TargetSelection::Declared),
        "aks" => Ok(TargetSelection::Aks),
        "agent" => Ok(TargetSelection::Agent),
        other => Err(SettingsError::Invalid {
            name: "target",
            value: other.into(),
            accepted: "all, aks, agent",
        }),
    }
}

fn parse_bool(name: &'static str, value: &str) -> Result<bool, SettingsError> {
    match value.trim() {
        "true" | "1" | "yes" => Ok(true),
        "" | "false" | "0" | "no" => Ok(false),
        other => Err(SettingsError::Invalid {
            name,
            value: other.into(),
            accepted: "true, false",
        }),
    }
}

/// The raw setting values, looked up by precedence.
struct Lookup {
    params: BTreeMap<String, String>,
    vars: BTreeMap<String, String>,
    /// `ARGOCD_ENV_*` keys upper-cased: Argo CD keeps the case the Application used.
    plugin_env: BTreeMap<String, String>,
}

impl Lookup {
    fn new(vars: impl Iterator<Item = (String, String)>) -> Result<Self, SettingsError> {
        let vars: BTreeMap<String, String> = vars.collect();
        let mut params = BTreeMap::new();
        if let Some(json) = vars
            .get("ARGOCD_APP_PARAMETERS")
            .filter(|j| !j.trim().is_empty())
        {
            // `null`: a plugin section without parameters.
            let list: Option<Vec<Parameter>> =
                serde_json::from_str(json).map_err(|e| SettingsError::Parameters(e.to_string()))?;
            for p in list.unwrap_or_default() {
                let name = p.name.to_ascii_lowercase();
                match p.string {
                    Some(v) => {
                        params.insert(name, v);
                    }
                    None if (p.map.is_some() || p.array.is_some())
                        && KNOWN.contains(&name.as_str()) =>
                    {
                        return Err(SettingsError::NotAString(name));
                    }
                    None => {}
                }
            }
        }
        let plugin_env = vars
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix("ARGOCD_ENV_")
                    .map(|rest| (rest.to_ascii_uppercase(), v.clone()))
            })
            .collect();
        Ok(Lookup {
            params,
            vars,
            plugin_env,
        })
    }

    fn get(&self, name: &str) -> Option<String> {
        let upper = name.to_ascii_uppercase().replace('-', "_");
        self.params
            .get(name)
            .or_else(|| self.vars.get(&format!("PARAM_{upper}")))
            .or_else(|| self.plugin_env.get(&format!("CATRUST_{upper}")))
            .or_else(|| self.plugin_env.get(&upper))
            .or_else(|| self.vars.get(&format!("CATRUST_{upper}")))
            .cloned()
    }

    fn file(&self) -> String {
        self.get("file")
            .filter(|f| !f.trim().is_empty())
            .unwrap_or_else(|| "trust.yaml".into())
    }

    fn source_path(&self) -> Option<String> {
        self.vars
            .get("ARGOCD_APP_SOURCE_PATH")
            .filter(|p| !p.trim().is_empty())
            .cloned()
    }
}

/// Where the trust file is: the part of the settings discovery needs. Unlike
/// [`Settings`] it does not judge `target` or `deny-warnings`, so that an Application
/// with a bad value still reaches `generate`, which names the bad value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: String,
    pub source_path: Option<String>,
}

impl Location {
    pub fn from_env(vars: impl Iterator<Item = (String, String)>) -> Result<Self, SettingsError> {
        let l = Lookup::new(vars)?;
        Ok(Location {
            file: l.file(),
            source_path: l.source_path(),
        })
    }

    /// The root of the files the cmp-server received and trust.yaml's path below it.
    /// The repo-server sends the repository (or, with
    /// `--plugin-use-manifest-generate-paths`, the common root of the
    /// `manifest-generate-paths` annotation) with the app folder at its path below that
    /// root, which is a tail of `ARGOCD_APP_SOURCE_PATH`; so `file:` paths may reach
    /// sibling folders of the app inside what was sent, but not above it.
    /// `None` for a `file` that leaves the root.
    pub fn locate(&self, app_dir: &Path) -> Option<(PathBuf, String)> {
        let parts: Vec<&str> = self
            .source_path
            .as_deref()
            .unwrap_or("")
            .split('/')
            .filter(|p| !p.is_empty() && *p != ".")
            .collect();
        // The longest tail of the source path that the app folder ends with.
        let (root, prefix) = (1..=parts.len())
            .rev()
            .find_map(|n| {
                let tail = parts[parts.len() - n..].join("/");
                let mut root = app_dir;
                for _ in 0..n {
                    root = root.parent()?;
                }
                app_dir.ends_with(&tail).then(|| (root.to_path_buf(), tail))
            })
            .unwrap_or_else(|| (app_dir.to_path_buf(), String::new()));
        let config = catrust::source::repo_join(&prefix, &self.file)?;
        Some((root, config))
    }

    /// Discovery: the repository path of the trust file, when it exists as a file
    /// inside the repository.
    pub fn discover(&self, app_dir: &Path) -> Option<String> {
        let (root, config) = self.locate(app_dir)?;
        (!config.is_empty() && root.join(&config).is_file()).then_some(config)
    }
}

impl Settings {
    pub fn from_env(vars: impl Iterator<Item = (String, String)>) -> Result<Self, SettingsError> {
        let l = Lookup::new(vars)?;
        Ok(Settings {
            target: parse_target(&l.get("target").unwrap_or_default())?,
            file: l.file(),
            deny_warnings: parse_bool(
                "deny-warnings",
                &l.get("deny-warnings").unwrap_or_default(),
            )?,
            source_path: l.source_path(),
        })
    }

    pub fn location(&self) -> Location {
        Location {
            file: self.file.clone(),
            source_path: self.source_path.clone(),
        }
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

    fn env(pairs: &[(&str, &str)]) -> Result<Settings, SettingsError> {
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
            "ARGOCD_ENV_catrust_target",
            "ARGOCD_ENV_TARGET",
            "ARGOCD_ENV_target",
            "CATRUST_TARGET",
            "PARAM_TARGET",
        ] {
            assert_eq!(
                env(&[(key, "aks")]).unwrap().target,
                TargetSelection::Aks,
                "{key}"
            );
        }
        assert!(matches!(
            env(&[("PARAM_TARGET", "gke")]),
            Err(SettingsError::Invalid { name: "target", .. })
        ));
        assert!(matches!(
            env(&[("ARGOCD_APP_PARAMETERS", "not json")]),
            Err(SettingsError::Parameters(_))
        ));
    }

    #[test]
    fn null_parameters_are_no_parameters() {
        // Argo CD's value for `plugin: {}`, `plugin: {name: …}` and `plugin: {env: …}`.
        let s = env(&[("ARGOCD_APP_PARAMETERS", "null")]).unwrap();
        assert_eq!(s, env(&[]).unwrap());
        assert_eq!(s.target, TargetSelection::Declared);
        assert_eq!(s.file, "trust.yaml");
        let s = env(&[
            ("ARGOCD_APP_PARAMETERS", "null"),
            ("ARGOCD_ENV_CATRUST_TARGET", "agent"),
        ])
        .unwrap();
        assert_eq!(s.target, TargetSelection::Agent);
    }

    #[test]
    fn a_known_parameter_as_a_map_or_array_is_refused_and_others_are_ignored() {
        assert_eq!(
            env(&[(
                "ARGOCD_APP_PARAMETERS",
                r#"[{"name":"file","array":["a.yaml"]}]"#
            )]),
            Err(SettingsError::NotAString("file".into()))
        );
        let s = env(&[(
            "ARGOCD_APP_PARAMETERS",
            r#"[{"name":"other-tool","map":{"a":"b"}},{"name":"deny-warnings","string":"true"}]"#,
        )])
        .unwrap();
        assert!(s.deny_warnings);
    }

    #[test]
    fn the_repository_root_is_found_from_the_source_path() {
        let s = env(&[("ARGOCD_APP_SOURCE_PATH", "clusters/prod")]).unwrap();
        let (root, config) = s
            .location()
            .locate(Path::new("/tmp/repo/clusters/prod"))
            .unwrap();
        assert_eq!(root, Path::new("/tmp/repo"));
        assert_eq!(config, "clusters/prod/trust.yaml");
        let s = env(&[("ARGOCD_APP_SOURCE_PATH", ".")]).unwrap();
        assert_eq!(
            s.location().locate(Path::new("/tmp/repo")),
            Some((PathBuf::from("/tmp/repo"), "trust.yaml".to_string()))
        );
        // --plugin-use-manifest-generate-paths with `clusters` as the common root: the
        // cmp-server has `prod/` and `shared/` only.
        let s = env(&[
            ("ARGOCD_APP_SOURCE_PATH", "clusters/prod"),
            ("PARAM_FILE", "../shared/trust.yaml"),
        ])
        .unwrap();
        assert_eq!(
            s.location().locate(Path::new("/tmp/cmp-1234/prod")),
            Some((
                PathBuf::from("/tmp/cmp-1234"),
                "shared/trust.yaml".to_string()
            ))
        );
        let s = env(&[
            ("ARGOCD_APP_SOURCE_PATH", "clusters/prod"),
            ("PARAM_FILE", "../../../etc/trust.yaml"),
        ])
        .unwrap();
        assert_eq!(
            s.location().locate(Path::new("/tmp/repo/clusters/prod")),
            None
        );
    }
}
