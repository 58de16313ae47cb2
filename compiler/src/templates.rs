//! The minijinja templates of the rendered text files, embedded in the binary and
//! overridable one by one from a folder the user names (`--templates DIR`).
//!
//! Only text formats are templated (the az script, the PEM list). Kubernetes objects
//! and JSON are serialised from typed data, never assembled from strings.

use std::collections::BTreeMap;

use minijinja::Environment;
use serde::Serialize;

/// Every template, by name, with its embedded text.
pub const EMBEDDED: &[(&str, &str)] = &[
    (
        "az-commands.sh.j2",
        include_str!("../templates/az-commands.sh.j2"),
    ),
    (
        "custom-ca-trust-certificates.pem.j2",
        include_str!("../templates/custom-ca-trust-certificates.pem.j2"),
    ),
    (
        "apiclient-commands.sh.j2",
        include_str!("../templates/apiclient-commands.sh.j2"),
    ),
    (
        "gcloud-commands.sh.j2",
        include_str!("../templates/gcloud-commands.sh.j2"),
    ),
    (
        "talosctl-commands.sh.j2",
        include_str!("../templates/talosctl-commands.sh.j2"),
    ),
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("--templates: `{0}` is not a catrust template (known: {known})", known = EMBEDDED.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", "))]
    Unknown(String),
    #[error("template {name}: {message}")]
    Invalid { name: String, message: String },
}

/// The template set of one build.
pub struct Templates {
    env: Environment<'static>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates").finish_non_exhaustive()
    }
}

fn shell_quote(value: String) -> Result<String, minijinja::Error> {
    shlex::try_quote(&value)
        .map(|q| q.into_owned())
        .map_err(|e| minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, e.to_string()))
}

impl Templates {
    /// The embedded templates, with `overrides` (name → text) replacing some of them.
    pub fn new(overrides: BTreeMap<String, String>) -> Result<Self, TemplateError> {
        let mut env = Environment::new();
        env.set_keep_trailing_newline(true);
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        env.add_filter("shq", shell_quote);
        for (name, text) in EMBEDDED {
            let text = match overrides.get(*name) {
                Some(t) => t.clone(),
                None => (*text).to_string(),
            };
            env.add_template_owned(*name, text)
                .map_err(|e| TemplateError::Invalid {
                    name: (*name).to_string(),
                    message: e.to_string(),
                })?;
        }
        if let Some(unknown) = overrides
            .keys()
            .find(|k| !EMBEDDED.iter().any(|(n, _)| n == k))
        {
            return Err(TemplateError::Unknown(unknown.clone()));
        }
        Ok(Templates { env })
    }

    pub fn render(&self, name: &str, context: impl Serialize) -> Result<String, TemplateError> {
        let invalid = |e: minijinja::Error| TemplateError::Invalid {
            name: name.to_string(),
            message: format!("{e:#}"),
        };
        self.env
            .get_template(name)
            .map_err(invalid)?
            .render(context)
            .map_err(invalid)
    }
}

impl Default for Templates {
    fn default() -> Self {
        Templates::new(BTreeMap::new()).expect("embedded templates are valid")
    }
}
