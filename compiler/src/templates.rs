//! The minijinja templates of the rendered text files, embedded in the binary and
//! overridable one by one from a folder the user names (`--templates DIR`).
//!
//! Only text formats are templated (the az script, the PEM list). Kubernetes objects
//! and JSON are serialised from typed data, never assembled from strings.

use std::collections::BTreeMap;

use minijinja::value::{Value, ValueKind};
use minijinja::{AutoEscape, Environment, Output, State};
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

/// The auto-escape mode of shell templates (`*.sh.j2`): every `{{ value }}` must go
/// through `shq` or `comment` (see [`shell_formatter`]).
const SHELL: AutoEscape = AutoEscape::Custom("shell");

fn invalid(message: impl Into<String>) -> minijinja::Error {
    minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, message.into())
}

/// Characters that would end a comment line, move the cursor or reorder text when the
/// script is shown in a terminal or an editor: controls (newline, ESC, …), zero-width
/// and bidirectional formatting characters, line and paragraph separators.
fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{FEFF}')
}

/// `| shq`: one shell word, single-quoted where needed. Refuses characters a reader
/// of the script could not see ([`is_unsafe_char`]): no catrust value holds them
/// (trust.yaml names are validated), so one here is a bug or a hostile template input.
fn shell_quote(value: String) -> Result<Value, minijinja::Error> {
    if let Some(c) = value.chars().find(|c| is_unsafe_char(*c)) {
        return Err(invalid(format!(
            "shq: refusing a value with the control or formatting character {:?}",
            c
        )));
    }
    shlex::try_quote(&value)
        .map(|q| Value::from_safe_string(q.into_owned()))
        .map_err(|e| invalid(e.to_string()))
}

/// `| comment`: text for a `#` comment line. Backslashes and every character of
/// [`is_unsafe_char`] are written as `\u{…}` escapes, so a value can never end the
/// comment line (and start a command) or send bytes a terminal interprets.
fn comment(value: String) -> Value {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if c == '\\' || is_unsafe_char(c) {
            out.push_str(&c.escape_unicode().to_string());
        } else {
            out.push(c);
        }
    }
    Value::from_safe_string(out)
}

/// In shell templates a value printed as is would be shell code: only the output of
/// `shq` / `comment` (marked safe), numbers and booleans may be printed. Other
/// templates print values as they are.
fn shell_formatter(out: &mut Output, state: &State, value: &Value) -> Result<(), minijinja::Error> {
    if state.auto_escape() != SHELL {
        return minijinja::escape_formatter(out, state, value);
    }
    let printable = value.is_safe() || matches!(value.kind(), ValueKind::Number | ValueKind::Bool);
    if !printable {
        return Err(invalid(
            "a value in a shell template must go through `| shq` (a shell word) or `| comment` (comment text)",
        ));
    }
    out.write_str(&value.to_string())
        .map_err(|e| invalid(e.to_string()))
}

impl Templates {
    /// The embedded templates, with `overrides` (name → text) replacing some of them.
    pub fn new(overrides: BTreeMap<String, String>) -> Result<Self, TemplateError> {
        let mut env = Environment::new();
        env.set_keep_trailing_newline(true);
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        env.add_filter("shq", shell_quote);
        env.add_filter("comment", comment);
        env.set_auto_escape_callback(|name| {
            if name.ends_with(".sh.j2") {
                SHELL
            } else {
                AutoEscape::None
            }
        });
        env.set_formatter(shell_formatter);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn shell(text: &str, value: &str) -> Result<String, TemplateError> {
        let t = Templates::new(BTreeMap::from([(
            "az-commands.sh.j2".to_string(),
            text.to_string(),
        )]))
        .unwrap();
        t.render(
            "az-commands.sh.j2",
            minijinja::context! { v => value, n => 3 },
        )
    }

    #[test]
    fn shell_templates_print_only_quoted_or_comment_escaped_values() {
        // A raw value in a shell template is refused, whatever it holds.
        let e = shell("echo {{ v }}\n", "plain").unwrap_err();
        assert!(e.to_string().contains("must go through `| shq`"), "{e}");
        assert_eq!(shell("n={{ n }}\n", "x").unwrap(), "n=3\n");
        assert_eq!(
            shell("echo {{ v | shq }}\n", "$(reboot); `id`").unwrap(),
            "echo '$(reboot); `id`'\n"
        );
        // A newline cannot end a comment line; ESC and bidi overrides are escaped.
        assert_eq!(
            shell(
                "# {{ v | comment }}\n",
                "x\ntouch /tmp/p\u{1b}[2J\u{202e}\\"
            )
            .unwrap(),
            "# x\\u{a}touch /tmp/p\\u{1b}[2J\\u{202e}\\u{5c}\n"
        );
        // shq refuses what a reader of the script could not see.
        for bad in ["a\nb", "a\u{1b}b", "a\u{202e}b", "a\0b"] {
            assert!(shell("x={{ v | shq }}\n", bad).is_err(), "{bad:?}");
        }
        // Other templates (the PEM list) print values as they are.
        let t = Templates::default();
        let pem = t
            .render(
                "custom-ca-trust-certificates.pem.j2",
                minijinja::context! { certificates => vec![minijinja::context! { pem => "A\n" }] },
            )
            .unwrap();
        assert_eq!(pem, "A\n");
    }
}
