//! `argocd-catrust-plugin`: the Argo CD Config Management Plugin for catrust.
//!
//! Runs in the repo-server sidecar, in the Application's folder:
//! - `generate` prints the Kubernetes objects of trust.yaml as one YAML stream on
//!   stdout, and nothing else. On any error it prints nothing on stdout (an empty
//!   stream with auto-prune would delete everything), exits non-zero, and writes one
//!   line per finding to stderr (`file:line:col: error[CODE]: …`), quoting no file
//!   content, so no certificate or key material reaches the Argo CD UI.
//! - `parameters` prints the dynamic parameter announcement (JSON).
//! - `discover` is the plugin's discovery rule (`discover.find.command`): it prints the
//!   repository path of the trust file `generate` would read (the `file` setting, or
//!   `trust.yaml`) when that file exists, and nothing otherwise. The cmp-server runs it
//!   in the app folder with the Application's parameter env and takes non-empty stdout
//!   for a match, so an Application with `file: ../shared/trust.yaml` is found.
//!
//! It calls the `catrust` library directly: no subprocess, no shell, no network.
#![forbid(unsafe_code)]

mod settings;

use std::io::Write;
use std::path::{Path, PathBuf};

use catrust::compile::{self, Request};
use catrust::source::FsSource;
use catrust::templates::Templates;

use settings::{Location, Settings};

fn main() {
    let code = match std::env::args().nth(1).as_deref() {
        Some("generate") => generate(),
        Some("parameters") => parameters(),
        Some("discover") => discover(),
        Some("--version") => {
            println!("argocd-catrust-plugin {}", env!("CARGO_PKG_VERSION"));
            0
        }
        _ => {
            eprintln!("usage: argocd-catrust-plugin generate|parameters|discover");
            2
        }
    };
    std::process::exit(code);
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The settings (parsed by `parse` from the environment) and the app folder, or
/// `None` after reporting why not.
fn read_env<T>(
    parse: fn(std::env::Vars) -> Result<T, settings::SettingsError>,
) -> Option<(T, PathBuf)> {
    let settings = parse(std::env::vars())
        .map_err(|e| eprintln!("catrust: {e}"))
        .ok()?;
    let app_dir = std::env::current_dir()
        .map_err(|e| eprintln!("catrust: cannot read the current folder: {e}"))
        .ok()?;
    Some((settings, app_dir))
}

fn generate() -> i32 {
    let Some((settings, app_dir)) = read_env(Settings::from_env) else {
        return 2;
    };
    let Some((root, config_path)) = settings.location().locate(&app_dir) else {
        eprintln!(
            "catrust: file `{}` is outside the repository",
            settings.file.escape_default()
        );
        return 2;
    };
    let source = match FsSource::new(&root, Path::new("")) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("catrust: {}: {e}", root.display());
            return 2;
        }
    };
    let templates = Templates::default();
    // The cmp-server's copy has no `.git`; Argo CD names the commit it rendered.
    let revision = std::env::var("ARGOCD_APP_REVISION")
        .ok()
        .filter(|r| r.len() == 40 && r.bytes().all(|b| b.is_ascii_hexdigit()));
    let context = move |_: &catrust::load::Loaded| {
        Ok(compile::Context {
            commit: revision.clone(),
            ..Default::default()
        })
    };
    let outcome = match compile::build_with(
        &Request {
            source: &source,
            config_path: &config_path,
            selection: settings.target,
            templates: &templates,
            now: std::env::var("CATRUST_NOW")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(now),
            deny_warnings: settings.deny_warnings,
        },
        &context,
    ) {
        Ok(o) => o,
        Err(e) => {
            eprintln!(
                "catrust: {e} (app folder {}, trust file {config_path})",
                app_dir.display()
            );
            return 2;
        }
    };
    let Some(rendered) = outcome.rendered else {
        let blocking: Vec<_> = outcome
            .diagnostics
            .into_iter()
            .filter(|d| compile::blocks(std::slice::from_ref(d), settings.deny_warnings))
            .collect();
        eprint!("{}", catrust::report::compact(&blocking, &outcome.sources));
        eprintln!("catrust: nothing rendered: fix the findings above (`catrust lint` shows them with context)");
        return 1;
    };
    // An empty stream with auto-prune deletes what the Application had. The aks
    // target alone renders no Kubernetes object since the legacy Secret is opt-in.
    if rendered.objects.is_empty() {
        eprintln!("catrust: trust.yaml renders no Kubernetes objects, so there is nothing for Argo CD to sync (the aks target writes az, ARM and Terraform files; the legacy Secret only with `secret: true`): add the agent target, or run the aks outputs from CI");
        return 1;
    }
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(rendered.stream().as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("catrust: stdout: {e}");
            2
        }
    }
}

fn discover() -> i32 {
    let Some((location, app_dir)) = read_env(Location::from_env) else {
        return 2;
    };
    if let Some(found) = location.discover(&app_dir) {
        println!("{}", found.escape_default());
    }
    0
}

fn parameters() -> i32 {
    println!("{}", settings::announcement());
    0
}
