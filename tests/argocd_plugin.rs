//! The Argo CD plugin, run the way argocd-cmp-server runs it: in a copy of the app
//! folder without `.git`, with the environment the repo-server sets.

use std::path::Path;
use std::process::{Command, Output};

use catrust_tests::{bin, k8s, pki, run, schema, workspace_root};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            if entry.file_name() != ".git" {
                copy_dir(&entry.path(), &target);
            }
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The Argo CD release whose source these tests follow (the newest checked; README
/// names it and `examples/argocd/kustomization.yaml` pins it).
const ARGOCD_CHECKED: &str = "v3.5.1";

const REVISION: &str = "0123456789abcdef0123456789abcdef01234567";

/// An Application's `spec.source.plugin`, as far as the repo-server reads it.
#[derive(Debug, Default, Clone)]
struct Plugin {
    name: Option<&'static str>,
    /// `plugin.env` entries.
    env: Vec<(&'static str, &'static str)>,
    /// `plugin.parameters` entries of the string kind.
    parameters: Vec<(&'static str, &'static str)>,
}

/// An Application's plugin section.
fn plugin(
    name: Option<&'static str>,
    env: &[(&'static str, &'static str)],
    parameters: &[(&'static str, &'static str)],
) -> Option<Plugin> {
    Some(Plugin {
        name,
        env: env.to_vec(),
        parameters: parameters.to_vec(),
    })
}

/// The environment the repo-server sends the cmp-server for an Application, as
/// argoproj/argo-cd v3.5.1 builds it (`reposerver/repository/repository.go`): `newEnv`
/// (ARGOCD_APP_*), then `getPluginEnvs` adds KUBE_VERSION and KUBE_API_VERSIONS and
/// `getPluginParamEnvs` adds, only when the Application has a `plugin:` section,
/// `ARGOCD_ENV_<name>` per `plugin.env` entry (name case kept) and
/// `ApplicationSourcePluginParameters.Environ()` (`pkg/apis/application/v1alpha1/
/// types.go`): `ARGOCD_APP_PARAMETERS` = `json.Marshal` of the list, which is `null` for
/// a nil list, plus `PARAM_<NAME>` per string parameter (upper-cased, `[^A-Z0-9_]` → `_`).
/// `with_plugin_env: false` is the first discovery of an Application without a plugin
/// section (`GetAppSourceType` passes only `newEnv`).
fn argocd_env(
    source_path: &str,
    plugin: Option<&Plugin>,
    with_plugin_env: bool,
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = [
        ("ARGOCD_APP_NAME", "corp-trust"),
        ("ARGOCD_APP_NAMESPACE", "argocd"),
        ("ARGOCD_APP_PROJECT_NAME", "default"),
        ("ARGOCD_APP_REVISION", REVISION),
        ("ARGOCD_APP_REVISION_SHORT", &REVISION[..7]),
        ("ARGOCD_APP_REVISION_SHORT_8", &REVISION[..8]),
        (
            "ARGOCD_APP_SOURCE_REPO_URL",
            "https://git.example/platform/trust.git",
        ),
        ("ARGOCD_APP_SOURCE_PATH", source_path),
        ("ARGOCD_APP_SOURCE_TARGET_REVISION", "main"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    if !with_plugin_env {
        return env;
    }
    env.push(("KUBE_VERSION".into(), "1.32.0".into()));
    env.push(("KUBE_API_VERSIONS".into(), "v1,apps/v1".into()));
    if let Some(plugin) = plugin {
        for (name, value) in &plugin.env {
            env.push((format!("ARGOCD_ENV_{name}"), value.to_string()));
        }
        let json = if plugin.parameters.is_empty() {
            "null".to_string()
        } else {
            serde_json::Value::Array(
                plugin
                    .parameters
                    .iter()
                    .map(|(n, v)| serde_json::json!({"name": n, "string": v}))
                    .collect(),
            )
            .to_string()
        };
        env.push(("ARGOCD_APP_PARAMETERS".into(), json));
        for (name, value) in &plugin.parameters {
            let escaped: String = name
                .to_ascii_uppercase()
                .chars()
                .map(|c| {
                    if c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            env.push((format!("PARAM_{escaped}"), value.to_string()));
        }
    }
    env
}

/// Runs the plugin binary as `argocd-cmp-server` runs a command (`cmpserver/plugin/
/// plugin.go` `runCommand`): in the app folder, with the sidecar's environment (here
/// only PATH) plus the request's.
fn run_as_cmp_server(command: &[String], app_dir: &Path, env: &[(String, String)]) -> Output {
    assert_eq!(
        command[0], "argocd-catrust-plugin",
        "plugin.yaml runs {command:?}"
    );
    let mut cmd = Command::new(bin("argocd-catrust-plugin"));
    cmd.args(&command[1..])
        .current_dir(app_dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .envs(env.iter().map(|(k, v)| (k, v)));
    run(&mut cmd)
}

/// plugin.yaml's `spec`.
fn plugin_spec() -> serde_json::Value {
    let text = std::fs::read_to_string(workspace_root().join("plugin-argocd/plugin.yaml")).unwrap();
    schema::yaml_documents(&text).remove(0)["spec"].clone()
}

fn command_of(spec: &serde_json::Value, pointer: &str) -> Vec<String> {
    spec.pointer(pointer)
        .and_then(|c| c.as_array())
        .unwrap_or_else(|| panic!("plugin.yaml has no {pointer}"))
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}

/// The discovery rule as the cmp-server runs it (`matchRepository`): plugin.yaml uses
/// `discover.find.command`, which matches on exit 0 with non-empty stdout; a non-zero
/// exit is an error.
fn discovery_matches(app_dir: &Path, env: &[(String, String)]) -> Result<bool, String> {
    let spec = plugin_spec();
    let discover = &spec["discover"];
    assert!(
        discover.get("fileName").is_none() && discover["find"].get("glob").is_none(),
        "the test runs find.command only; plugin.yaml has {discover}"
    );
    let o = run_as_cmp_server(&command_of(&spec, "/discover/find/command"), app_dir, env);
    if !o.status.success() {
        return Err(format!(
            "error running find command: {}",
            String::from_utf8_lossy(&o.stderr)
        ));
    }
    Ok(!String::from_utf8_lossy(&o.stdout).trim().is_empty())
}

/// What Argo CD makes of an Application.
#[derive(Debug)]
enum Sync {
    /// The plugin rendered this stream.
    Rendered(String),
    /// Not a plugin app: Argo CD applies the folder as plain YAML (`Directory`).
    Directory,
    /// Argo CD reports this error.
    Failed(String),
}

/// One manifest generation of an Application with `path: source_path` in `repo`,
/// following `GenerateManifests` and `util/app/discovery/discovery.go`:
/// - no plugin section: discovery with `newEnv` picks the source type (no match:
///   Directory), then the plugin path discovers again with the full env;
/// - a plugin section: the plugin source type, then `DetectConfigManagementPlugin`
///   with the full env. A named plugin must be `catrust-v1` (the socket) and is still
///   subject to its discovery rule (`cmpSupports`: configured but not matching =
///   rejected); an unnamed one must match it.
fn sync(repo: &Path, source_path: &str, plugin: Option<&Plugin>) -> Sync {
    let app_dir = repo.join(source_path);
    if plugin.is_none() {
        match discovery_matches(&app_dir, &argocd_env(source_path, None, false)) {
            Ok(true) => {}
            Ok(false) | Err(_) => return Sync::Directory,
        }
    }
    let env = argocd_env(source_path, plugin, true);
    let name = plugin.and_then(|p| p.name);
    let spec = plugin_spec();
    let socket = format!(
        "{}-{}",
        "catrust",
        spec["version"].as_str().expect("spec.version")
    );
    if let Some(name) = name {
        if name != socket {
            return Sync::Failed(format!(
                "could not find cmp-server plugin with name {name:?} supporting the given repository"
            ));
        }
    }
    match (discovery_matches(&app_dir, &env), name) {
        (Ok(true), _) => {}
        (Ok(false), Some(name)) => {
            return Sync::Failed(format!(
                "could not find cmp-server plugin with name {name:?} supporting the given repository"
            ))
        }
        (Err(e), Some(name)) => {
            return Sync::Failed(format!(
                "could not find cmp-server plugin with name {name:?} supporting the given repository: {e}"
            ))
        }
        (Ok(false), None) => {
            return Sync::Failed("could not find plugin supporting the given repository".into())
        }
        (Err(e), None) => {
            return Sync::Failed(format!(
                "could not find plugin supporting the given repository: {e}"
            ))
        }
    }
    let o = run_as_cmp_server(&command_of(&spec, "/generate/command"), &app_dir, &env);
    if o.status.success() {
        assert!(
            o.stderr.is_empty(),
            "stderr must be empty on success: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        Sync::Rendered(String::from_utf8(o.stdout).unwrap())
    } else {
        assert!(o.stdout.is_empty(), "stdout must be empty on failure");
        Sync::Failed(String::from_utf8(o.stderr).unwrap())
    }
}

/// Runs `generate` in `repo/<source_path>` with the repo-server's variables for an
/// Application without a plugin section, plus `extra`.
fn generate(repo: &Path, source_path: &str, extra: &[(&str, &str)]) -> Output {
    let mut env = argocd_env(source_path, None, true);
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    run_as_cmp_server(
        &command_of(&plugin_spec(), "/generate/command"),
        &repo.join(source_path),
        &env,
    )
}

/// A repository with `clusters/prod` and `clusters/shared` (each a copy of
/// examples/agent) and `clusters/edge`, a folder without a trust.yaml.
fn app_repo() -> tempfile::TempDir {
    let repo = tempfile::tempdir().unwrap();
    for folder in ["clusters/prod", "clusters/shared"] {
        copy_dir(
            &workspace_root().join("examples/agent"),
            &repo.path().join(folder),
        );
    }
    std::fs::create_dir_all(repo.path().join("clusters/edge")).unwrap();
    std::fs::write(repo.path().join("clusters/edge/README.md"), "edge\n").unwrap();
    repo
}

fn kinds(stream: &str) -> Vec<String> {
    schema::yaml_documents(stream)
        .iter()
        .map(|d| {
            format!(
                "{}/{}",
                d["kind"].as_str().unwrap(),
                d["metadata"]["name"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn every_application_shape_renders_or_fails_as_argo_cd_runs_the_plugin() {
    let repo = app_repo();
    let Sync::Rendered(all) = sync(repo.path(), "clusters/prod", None) else {
        panic!("an Application without a plugin section is not rendered");
    };
    assert_eq!(kinds(&all).len(), 5, "{all}");
    let named = Some("catrust-v1");
    let shapes: Vec<(&str, &str, Option<Plugin>)> = vec![
        ("plugin: {}", "clusters/prod", Some(Plugin::default())),
        ("named", "clusters/prod", plugin(named, &[], &[])),
        (
            "plugin env",
            "clusters/prod",
            plugin(named, &[("CATRUST_TARGET", "agent")], &[]),
        ),
        (
            "plugin env, lower case, no prefix",
            "clusters/prod",
            plugin(None, &[("target", "all")], &[]),
        ),
        (
            "parameters",
            "clusters/prod",
            plugin(
                named,
                &[],
                &[("target", "agent"), ("deny-warnings", "false")],
            ),
        ),
        (
            "file, named, app folder without trust.yaml",
            "clusters/edge",
            plugin(named, &[], &[("file", "../shared/trust.yaml")]),
        ),
        (
            "file as plugin env, unnamed",
            "clusters/edge",
            plugin(None, &[("CATRUST_FILE", "../shared/trust.yaml")], &[]),
        ),
    ];
    for (label, path, plugin) in &shapes {
        match sync(repo.path(), path, plugin.as_ref()) {
            Sync::Rendered(stream) => assert_eq!(kinds(&stream), kinds(&all), "{label}"),
            other => panic!("{label}: {other:?}"),
        }
    }

    // Failures, each as Argo CD shows it.
    let failed = |path: &str, plugin: Option<Plugin>| match sync(repo.path(), path, plugin.as_ref())
    {
        Sync::Failed(e) => e,
        other => panic!("{path} {plugin:?}: {other:?}"),
    };
    // A bad value reaches generate (discovery only looks at `file`), which names it.
    let e = failed("clusters/prod", plugin(named, &[], &[("target", "gke")]));
    assert_eq!(e, "catrust: target `gke` is not one of all, aks, agent\n");
    // `aks` is valid but not declared in this trust.yaml.
    let e = failed("clusters/prod", plugin(named, &[], &[("target", "aks")]));
    assert!(e.contains("aks"), "{e}");
    // No trust file where `file` points: the named plugin is rejected by its own rule.
    let e = failed(
        "clusters/edge",
        plugin(named, &[], &[("file", "../nowhere/trust.yaml")]),
    );
    assert_eq!(
        e,
        "could not find cmp-server plugin with name \"catrust-v1\" supporting the given repository"
    );
    let e = failed("clusters/edge", Some(Plugin::default()));
    assert_eq!(e, "could not find plugin supporting the given repository");
    // `file` may not leave the repository.
    let e = failed(
        "clusters/prod",
        plugin(named, &[], &[("file", "../../../trust.yaml")]),
    );
    assert!(e.starts_with("could not find cmp-server plugin"), "{e}");
    // The plugin's name is `<metadata.name>-<spec.version>`.
    let e = failed("clusters/prod", plugin(Some("catrust"), &[], &[]));
    assert!(e.contains("\"catrust\""), "{e}");
    // A folder without trust.yaml and no plugin section is not a catrust app.
    assert!(matches!(
        sync(repo.path(), "clusters/edge", None),
        Sync::Directory
    ));
}

#[test]
fn the_discovery_rule_prints_the_trust_file_it_found_and_nothing_otherwise() {
    let repo = app_repo();
    let spec = plugin_spec();
    let discover = command_of(&spec, "/discover/find/command");
    let found = |path: &str, plugin: Option<&Plugin>| {
        let o = run_as_cmp_server(
            &discover,
            &repo.path().join(path),
            &argocd_env(path, plugin, true),
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(o.stderr.is_empty());
        String::from_utf8(o.stdout).unwrap()
    };
    assert_eq!(found("clusters/prod", None), "clusters/prod/trust.yaml\n");
    assert_eq!(
        found("clusters/prod", Some(&Plugin::default())),
        "clusters/prod/trust.yaml\n"
    );
    let shared = plugin(None, &[], &[("file", "../shared/trust.yaml")]);
    assert_eq!(
        found("clusters/edge", shared.as_ref()),
        "clusters/shared/trust.yaml\n"
    );
    assert_eq!(found("clusters/edge", None), "");
    // A folder named trust.yaml is no trust file.
    std::fs::create_dir_all(repo.path().join("clusters/edge/trust.yaml")).unwrap();
    assert_eq!(found("clusters/edge", None), "");
    // Parameters that are not JSON (never sent by Argo CD) are an error, not a silent no.
    let mut env = argocd_env("clusters/prod", None, true);
    env.push(("ARGOCD_APP_PARAMETERS".into(), "[{".into()));
    let o = run_as_cmp_server(&discover, &repo.path().join("clusters/prod"), &env);
    assert_eq!(o.status.code(), Some(2));
    assert!(o.stdout.is_empty());
}

#[test]
fn generate_prints_only_valid_kubernetes_objects_and_nothing_on_stderr() {
    let repo = app_repo();
    let o = generate(repo.path(), "clusters/prod", &[]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        o.stderr.is_empty(),
        "stderr must be empty on success: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let stream = String::from_utf8(o.stdout).unwrap();
    assert_eq!(
        stream.matches("\nkind: ").count() + usize::from(stream.starts_with("kind: ")),
        5,
        "{stream}"
    );
    assert!(!stream.contains("kind: List") && !stream.contains("Kustomization"));
    let file = repo.path().join("stream.yaml");
    std::fs::write(&file, &stream).unwrap();
    k8s::validate_strict(&[&file]);

    // The same objects as `catrust build --stdout` on the same folder, plus the
    // revision Argo CD rendered, in object metadata (never in a pod template).
    let cli = catrust_tests::catrust(&repo.path().join("clusters/prod"), &["build", "--stdout"]);
    let annotation = "    catrust.dev/source-commit: 0123456789abcdef0123456789abcdef01234567\n";
    assert_eq!(stream.matches(annotation).count(), 5, "{stream}");
    assert_eq!(
        String::from_utf8(cli.stdout).unwrap(),
        stream.replace(annotation, "")
    );
}

#[test]
fn settings_come_from_parameters_and_any_spelling_of_plugin_env() {
    let repo = app_repo();
    // `target: aks` is not declared in the agent example: an invocation error, no stdout.
    for env in [
        (
            "ARGOCD_APP_PARAMETERS",
            r#"[{"name":"target","string":"aks"}]"#,
        ),
        ("PARAM_TARGET", "aks"),
        ("ARGOCD_ENV_CATRUST_TARGET", "aks"),
        ("ARGOCD_ENV_TARGET", "aks"),
    ] {
        let o = generate(repo.path(), "clusters/prod", &[env]);
        assert_ne!(o.status.code(), Some(0), "{env:?}");
        assert!(o.stdout.is_empty());
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("aks"),
            "{env:?}"
        );
    }
    let o = generate(
        repo.path(),
        "clusters/prod",
        &[("ARGOCD_ENV_CATRUST_TARGET", "agent")],
    );
    assert_eq!(o.status.code(), Some(0));
}

#[test]
fn a_broken_trust_yaml_prints_nothing_on_stdout_and_a_coded_located_error() {
    let repo = app_repo();
    let trust = repo.path().join("clusters/prod/trust.yaml");
    let text = std::fs::read_to_string(&trust).unwrap();
    std::fs::write(
        &trust,
        text.replace(
            "      file: certs/proxy-ca.pem",
            "      fiel: certs/proxy-ca.pem",
        ),
    )
    .unwrap();
    let o = generate(repo.path(), "clusters/prod", &[]);
    assert_ne!(o.status.code(), Some(0));
    assert!(o.stdout.is_empty(), "stdout must be empty on failure");
    let stderr = String::from_utf8(o.stderr).unwrap();
    assert!(
        stderr.contains("clusters/prod/trust.yaml:13:7: error[CT002]: unknown field `fiel`"),
        "{stderr}"
    );
    assert!(stderr.contains("did you mean `file`?"));
}

#[test]
fn errors_never_carry_key_or_certificate_material() {
    let repo = app_repo();
    let dir = repo.path().join("clusters/prod/certs");
    let ca = pki::make_ca(&dir, "leaky", 3650);
    let key = std::fs::read_to_string(&ca.key).unwrap();
    std::fs::write(dir.join("proxy-ca.pem"), format!("{}{key}", ca.pem())).unwrap();
    let o = generate(repo.path(), "clusters/prod", &[]);
    assert_ne!(o.status.code(), Some(0));
    assert!(o.stdout.is_empty());
    let stderr = String::from_utf8(o.stderr).unwrap();
    assert!(stderr.contains("CT105"), "{stderr}");
    for line in key
        .lines()
        .chain(ca.pem().lines())
        .filter(|l| !l.starts_with("-----"))
    {
        assert!(!stderr.contains(line), "stderr leaks `{line}`:\n{stderr}");
    }
}

#[test]
fn parameters_announce_target_and_file_with_defaults() {
    let o = run(Command::new(bin("argocd-catrust-plugin")).arg("parameters"));
    assert!(o.status.success());
    let announced: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let by_name = |n: &str| {
        announced
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == n)
            .cloned()
            .unwrap()
    };
    assert_eq!(by_name("target")["string"], "all");
    assert_eq!(by_name("file")["string"], "trust.yaml");
}

/// A minimal argocd-repo-server as Argo CD's install.yaml has it, with the Component.
fn render_component(plugin_yaml: Option<&str>) -> String {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(
        &workspace_root().join("plugin-argocd/install"),
        &dir.path().join("catrust"),
    );
    if let Some(text) = plugin_yaml {
        std::fs::write(dir.path().join("catrust/plugin.yaml"), text).unwrap();
    }
    std::fs::write(
        dir.path().join("repo-server.yaml"),
        format!("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: argocd-repo-server\nspec:\n  selector:\n    matchLabels:\n      app.kubernetes.io/name: argocd-repo-server\n  template:\n    metadata:\n      labels:\n        app.kubernetes.io/name: argocd-repo-server\n    spec:\n      containers:\n        - name: argocd-repo-server\n          image: quay.io/argoproj/argocd:{ARGOCD_CHECKED}\n      volumes:\n        - name: var-files\n          emptyDir: {{}}\n        - name: plugins\n          emptyDir: {{}}\n"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("kustomization.yaml"),
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - repo-server.yaml\ncomponents:\n  - catrust\n",
    )
    .unwrap();
    let rendered = k8s::kustomize(dir.path());
    let file = dir.path().join("rendered.yaml");
    std::fs::write(&file, &rendered).unwrap();
    k8s::validate_strict(&[&file]);
    rendered
}

/// The repo-server Deployment's pod template and the plugin ConfigMap's name.
fn template_and_configmap(rendered: &str) -> (serde_json::Value, String) {
    let docs = schema::yaml_documents(rendered);
    let deployment = docs.iter().find(|d| d["kind"] == "Deployment").unwrap();
    let cm = docs.iter().find(|d| d["kind"] == "ConfigMap").unwrap();
    (
        deployment["spec"]["template"].clone(),
        cm["metadata"]["name"].as_str().unwrap().to_string(),
    )
}

#[test]
fn the_component_patches_a_repo_server_offline_into_a_valid_deployment() {
    let rendered = render_component(None);
    for needle in [
        "name: catrust\n",
        "- /var/run/argocd/argocd-cmp-server",
        "runAsUser: 999",
        "mountPath: /home/argocd/cmp-server/plugins",
        "mountPath: /var/run/argocd",
        "mountPath: /tmp",
        "subPath: plugin.yaml",
        "kind: ConfigManagementPlugin",
        "name: argocd-repo-server\n",
    ] {
        assert!(
            rendered.contains(needle),
            "rendered repo-server lacks `{needle}`:\n{rendered}"
        );
    }
    // The ConfigMap carries kustomize's hash suffix and the sidecar mounts that name,
    // so a changed plugin.yaml changes the pod template: the repo-server rolls and its
    // cmp-server reads the new plugin.yaml.
    let (template, cm) = template_and_configmap(&rendered);
    assert!(
        cm.starts_with("catrust-cmp-plugin-") && cm.len() > "catrust-cmp-plugin-".len(),
        "{cm}"
    );
    let volumes = template["spec"]["volumes"].as_array().unwrap();
    assert!(
        volumes
            .iter()
            .any(|v| v["configMap"]["name"] == cm.as_str()),
        "the sidecar does not mount {cm}: {volumes:?}"
    );
    let plugin =
        std::fs::read_to_string(workspace_root().join("plugin-argocd/plugin.yaml")).unwrap();
    let (changed, changed_cm) = template_and_configmap(&render_component(Some(
        &plugin.replace("preserveFileMode: false", "preserveFileMode: true"),
    )));
    assert_ne!(changed_cm, cm);
    assert_ne!(
        changed, template,
        "a changed plugin.yaml must change the pod template"
    );
}

#[test]
fn the_helm_values_follow_the_argo_helm_layout_and_render_a_valid_sidecar() {
    // The chart's layout (argoproj/argo-helm charts/argo-cd 10.1.1: values.yaml,
    // templates/argocd-configs/argocd-cmp-cm.yaml, templates/argocd-repo-server/
    // deployment.yaml): `configs.cmp.create` makes the ConfigMap `argocd-cmp-cm` with one
    // key `<name>.yaml` per `configs.cmp.plugins.<name>`, holding
    // `{apiVersion: argoproj.io/v1alpha1, kind: ConfigManagementPlugin, metadata: {name},
    // spec: <the value>}`; `repoServer.extraContainers` are appended to the pod's
    // containers and `repoServer.volumes` to its volumes, beside the chart's own
    // `plugins`, `var-files`, `tmp`, ... . No `helm` binary is packaged for Debian or
    // PyPI, so this applies that layout by hand and validates the result.
    let text =
        std::fs::read_to_string(workspace_root().join("plugin-argocd/install/helm-values.yaml"))
            .unwrap();
    let values = schema::yaml_documents(&text).remove(0);
    let top: Vec<&String> = values.as_object().unwrap().keys().collect();
    assert_eq!(top, ["configs", "repoServer"]);
    assert_eq!(
        values["configs"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["cmp"]
    );
    let cmp = &values["configs"]["cmp"];
    assert_eq!(
        cmp["create"], true,
        "the chart makes argocd-cmp-cm only with create: true"
    );
    let plugins = cmp["plugins"].as_object().unwrap();
    assert_eq!(
        plugins.keys().collect::<Vec<_>>(),
        ["catrust"],
        "metadata.name of the plugin"
    );
    assert_eq!(
        plugins["catrust"],
        plugin_spec(),
        "helm-values.yaml and plugin.yaml differ"
    );
    let repo_server = values["repoServer"].as_object().unwrap();
    assert_eq!(
        repo_server.keys().collect::<Vec<_>>(),
        ["extraContainers", "volumes"]
    );

    let mut data = serde_json::Map::new();
    for (name, spec) in plugins {
        let doc = serde_json::json!({
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "ConfigManagementPlugin",
            "metadata": {"name": name},
            "spec": spec,
        });
        data.insert(
            format!("{name}.yaml"),
            serde_json::Value::String(catrust::render::k8s::to_yaml(&doc)),
        );
    }
    let configmap = serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "argocd-cmp-cm", "namespace": "argocd"},
        "data": data,
    });
    let mut containers = vec![serde_json::json!({
        "name": "repo-server",
        "image": format!("quay.io/argoproj/argocd:{ARGOCD_CHECKED}"),
    })];
    containers.extend(
        repo_server["extraContainers"]
            .as_array()
            .unwrap()
            .iter()
            .cloned(),
    );
    let mut volumes: Vec<serde_json::Value> = repo_server["volumes"].as_array().unwrap().clone();
    for own in ["plugins", "var-files", "tmp", "helm-working-dir"] {
        volumes.push(serde_json::json!({"name": own, "emptyDir": {}}));
    }
    let sidecar = &containers[1];
    for mount in sidecar["volumeMounts"].as_array().unwrap() {
        let volume = volumes
            .iter()
            .find(|v| v["name"] == mount["name"])
            .unwrap_or_else(|| panic!("no volume {} for the sidecar", mount["name"]));
        if let Some(cm) = volume["configMap"]["name"].as_str() {
            assert_eq!(cm, "argocd-cmp-cm");
            let key = mount["subPath"].as_str().unwrap();
            assert!(data.contains_key(key), "argocd-cmp-cm has no key {key}");
            assert_eq!(
                mount["mountPath"],
                "/home/argocd/cmp-server/config/plugin.yaml"
            );
        }
    }
    // The sidecar is the kustomize Component's, but for the ConfigMap it mounts.
    let component = std::fs::read_to_string(
        workspace_root().join("plugin-argocd/install/repo-server-sidecar.yaml"),
    )
    .unwrap();
    let mut from_component = schema::yaml_documents(&component).remove(0)["spec"]["template"]
        ["spec"]["containers"][0]
        .clone();
    let mut from_helm = sidecar.clone();
    for c in [&mut from_component, &mut from_helm] {
        c["volumeMounts"]
            .as_array_mut()
            .unwrap()
            .retain(|m| m["mountPath"] != "/home/argocd/cmp-server/config/plugin.yaml");
    }
    assert_eq!(
        from_helm, from_component,
        "the Helm sidecar and the Component's differ"
    );

    let deployment = serde_json::json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "argocd-repo-server", "namespace": "argocd"},
        "spec": {
            "selector": {"matchLabels": {"app.kubernetes.io/name": "argocd-repo-server"}},
            "template": {
                "metadata": {"labels": {"app.kubernetes.io/name": "argocd-repo-server"}},
                "spec": {"containers": containers, "volumes": volumes},
            },
        },
    });
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("chart.yaml");
    std::fs::write(
        &file,
        format!(
            "{}---\n{}",
            catrust::render::k8s::to_yaml(&configmap),
            catrust::render::k8s::to_yaml(&deployment)
        ),
    )
    .unwrap();
    k8s::validate_strict(&[&file]);
}

#[test]
fn argo_cd_v2_label_tracking_leaves_the_daemonset_selectors_matching() {
    // Argo CD v2 tracks by label (`util/kube/kube.go` SetAppInstanceLabel): it sets
    // `app.kubernetes.io/instance: <app>` on each top-level object's metadata only; the
    // legacy key `applications.argoproj.io/app-name` also goes onto pod templates.
    // Neither may touch what a DaemonSet selects on: the selector names pod-template
    // labels only, which the first never rewrites and the second only adds to. (Pods
    // carry `app.kubernetes.io/instance: <name>-<group>`, but Argo CD counts only
    // objects without ownerReferences as an Application's own.)
    let repo = app_repo();
    let o = generate(repo.path(), "clusters/prod", &[]);
    assert!(o.status.success());
    let docs = schema::yaml_documents(&String::from_utf8(o.stdout).unwrap());
    let mut daemonsets = 0;
    for (key, on_template) in [
        ("app.kubernetes.io/instance", false),
        ("applications.argoproj.io/app-name", true),
    ] {
        for doc in &docs {
            let mut tracked = doc.clone();
            tracked["metadata"]["labels"][key] = "corp-trust".into();
            if on_template && doc["kind"] == "DaemonSet" {
                tracked["spec"]["template"]["metadata"]["labels"][key] = "corp-trust".into();
            }
            if doc["kind"] != "DaemonSet" {
                continue;
            }
            daemonsets += 1;
            let selector = tracked["spec"]["selector"]["matchLabels"]
                .as_object()
                .unwrap();
            assert_eq!(
                &doc["spec"]["selector"]["matchLabels"],
                &tracked["spec"]["selector"]["matchLabels"]
            );
            let labels = &tracked["spec"]["template"]["metadata"]["labels"];
            for (k, v) in selector {
                assert_eq!(
                    &labels[k], v,
                    "selector {k} no longer matches the pod template"
                );
            }
        }
    }
    assert_eq!(daemonsets, 4);
}

#[test]
fn the_argocd_examples_validate_strictly_and_pin_a_supported_release() {
    let mut checked = 0;
    for entry in std::fs::read_dir(workspace_root().join("examples/argocd"))
        .unwrap()
        .flatten()
    {
        let text = std::fs::read_to_string(entry.path()).unwrap();
        let label = entry.file_name().to_string_lossy().into_owned();
        for doc in schema::yaml_documents(&text) {
            let schema = match (doc["apiVersion"].as_str(), doc["kind"].as_str()) {
                (Some("argoproj.io/v1alpha1"), Some("Application")) => {
                    "crds/argoproj.io_Application_v1alpha1.json"
                }
                (Some("argoproj.io/v1alpha1"), Some("ApplicationSet")) => {
                    "crds/argoproj.io_ApplicationSet_v1alpha1.json"
                }
                (Some("kustomize.config.k8s.io/v1beta1"), Some("Kustomization")) => continue,
                other => panic!("{label}: no schema for {other:?}"),
            };
            schema::validate(&schema::schema_path(schema), &[(label.clone(), doc)]);
            checked += 1;
        }
    }
    assert_eq!(checked, 2, "application.yaml and applicationset.yaml");
    let install =
        std::fs::read_to_string(workspace_root().join("examples/argocd/kustomization.yaml"))
            .unwrap();
    assert!(
        install.contains(&format!("/argo-cd/{ARGOCD_CHECKED}/manifests/install.yaml")),
        "examples/argocd/kustomization.yaml does not pin {ARGOCD_CHECKED}"
    );
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
    assert!(
        readme.contains(&format!("Argo CD {ARGOCD_CHECKED}")),
        "README does not name Argo CD {ARGOCD_CHECKED}"
    );
}
