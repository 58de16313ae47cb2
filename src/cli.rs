//! Subcommands. Exit codes (docs/contract.md §2): 0 success, 1 the input is wrong,
//! 2 the invocation or environment is wrong. On 1 or 2 nothing is written.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use catrust::compile::{self, Request};
use catrust::diag::{Diagnostic, Sources};
use catrust::render::platforms::Platform;
use catrust::render::{Rendered, TargetSelection};
use catrust::rules::{self, Code};
use catrust::source::{find_repo_root, FsSource};
use catrust::templates::Templates;
use catrust::{inspect, output, report};
use clap::{Parser, Subcommand, ValueEnum};

mod git;

const EXIT_OK: i32 = 0;
const EXIT_INPUT: i32 = 1;
const EXIT_USAGE: i32 = 2;

#[derive(Parser)]
#[command(
    name = "catrust",
    version,
    about = "GitOps for the CA certificates Kubernetes nodes trust"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum Target {
    Aks,
    Agent,
    #[value(alias = "trustManager")]
    TrustManager,
    #[value(alias = "clusterTrustBundle")]
    ClusterTrustBundle,
    Openshift,
    Talos,
    Bottlerocket,
    K3s,
    Gke,
    All,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum LintFormat {
    Human,
    Json,
    Sarif,
    Github,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum TableFormat {
    Human,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Lint trust.yaml, then render every target into --out (atomically) or to stdout.
    Build {
        /// The trust.yaml to build.
        #[arg(short = 'f', long = "file", default_value = "trust.yaml")]
        file: PathBuf,
        /// Output folder, replaced atomically.
        #[arg(long, default_value = "out", conflicts_with = "stdout")]
        out: PathBuf,
        /// Print only the Kubernetes objects, as one YAML stream.
        #[arg(long)]
        stdout: bool,
        /// Which targets to render (default: every target trust.yaml declares).
        #[arg(long, value_enum, default_value = "all")]
        target: Target,
        /// Write nothing; fail (CT403) if --out differs from what would be written.
        #[arg(long, conflicts_with = "stdout")]
        check: bool,
        /// A folder of *.j2 files replacing the embedded templates of the same name.
        #[arg(long)]
        templates: Option<PathBuf>,
        /// Refuse to build on warnings too.
        #[arg(long)]
        deny_warnings: bool,
        /// Read trust.yaml and the certificates from this git revision (no checkout).
        #[arg(long)]
        rev: Option<String>,
    },
    /// Report every finding in trust.yaml and the certificates it names.
    Lint {
        #[arg(short = 'f', long = "file", default_value = "trust.yaml")]
        file: PathBuf,
        #[arg(long, value_enum, default_value = "human")]
        format: LintFormat,
        /// Exit 1 on warnings too.
        #[arg(long)]
        deny_warnings: bool,
        /// Lint what the git index holds (what the next commit will contain).
        #[arg(long, conflicts_with = "rev")]
        staged: bool,
        /// Lint trust.yaml and the certificates of this git revision (no checkout).
        #[arg(long)]
        rev: Option<String>,
    },
    /// The rotation plan between two states (default: HEAD to the working tree).
    Plan {
        #[arg(short = 'f', long = "file", default_value = "trust.yaml")]
        file: PathBuf,
        /// The state to start from (default: HEAD, or REV^ with --to REV).
        #[arg(long)]
        from: Option<String>,
        /// The state to plan to (default: the working tree).
        #[arg(long, conflicts_with = "staged")]
        to: Option<String>,
        /// Plan to what the git index holds.
        #[arg(long)]
        staged: bool,
        #[arg(long, value_enum, default_value = "human")]
        format: TableFormat,
    },
    /// One row per certificate: subject, issuer, validity, SHA-256, CA flag, key.
    Inspect {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[arg(long, value_enum, default_value = "human")]
        format: TableFormat,
    },
    /// Print the documentation of a lint rule.
    Explain {
        /// A code such as CT101.
        #[arg(required_unless_present_any = ["list", "markdown"])]
        code: Option<String>,
        /// List every rule.
        #[arg(long)]
        list: bool,
        /// Print every rule's page as Markdown (docs/rules.md is generated with it).
        #[arg(long, conflicts_with_all = ["code", "list"])]
        markdown: bool,
    },
    /// Write a starter trust.yaml, with pins filled in from the given PEM files.
    Init {
        /// PEM files to trust (one authority per file).
        #[arg(long = "from", num_args = 1..)]
        from: Vec<PathBuf>,
        /// Where to write the starter file.
        #[arg(short = 'f', long = "file", default_value = "trust.yaml")]
        file: PathBuf,
        /// Replace an existing file.
        #[arg(long)]
        force: bool,
    },
}

pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { EXIT_USAGE } else { EXIT_OK };
        }
    };
    match cli.command {
        Command::Build {
            file,
            out,
            stdout,
            target,
            check,
            templates,
            deny_warnings,
            rev,
        } => build(BuildOptions {
            file: &file,
            out: &out,
            stdout,
            target,
            check,
            templates: templates.as_deref(),
            deny_warnings,
            input: git::Input::from_flags(false, rev),
        }),
        Command::Lint {
            file,
            format,
            deny_warnings,
            staged,
            rev,
        } => lint(
            &file,
            format,
            deny_warnings,
            git::Input::from_flags(staged, rev),
        ),
        Command::Plan {
            file,
            from,
            to,
            staged,
            format,
        } => git::plan(
            &file,
            from,
            git::Input::from_flags(staged, to),
            match format {
                TableFormat::Human => git::PlanFormat::Human,
                TableFormat::Json => git::PlanFormat::Json,
            },
            now(),
        ),
        Command::Inspect { files, format } => inspect_files(&files, format),
        Command::Explain {
            code,
            list,
            markdown,
        } => {
            if markdown {
                print!("{}", catrust::docs::rules_markdown());
                EXIT_OK
            } else {
                explain(code.as_deref(), list)
            }
        }
        Command::Init { from, file, force } => init(&from, &file, force),
    }
}

fn usage_error(message: impl std::fmt::Display) -> i32 {
    eprintln!("error: {message}");
    EXIT_USAGE
}

/// The clock for validity rules; `CATRUST_NOW` (unix seconds) pins it for tests.
fn now() -> i64 {
    if let Some(n) = std::env::var("CATRUST_NOW")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return n;
    }
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The working-tree source for a trust.yaml path, and its repository path.
fn working_tree(file: &Path) -> Result<(FsSource, String), String> {
    if !file.is_file() {
        return Err(format!("cannot read {}: no such file", file.display()));
    }
    let root = find_repo_root(file);
    let abs_file = file
        .canonicalize()
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let cwd = std::env::current_dir().map_err(|e| e.to_string())?;
    let cwd = cwd.canonicalize().unwrap_or(cwd);
    let shown_root = root
        .strip_prefix(&cwd)
        .map(Path::to_path_buf)
        .unwrap_or_else(|_| root.clone());
    let source =
        FsSource::new(&root, &shown_root).map_err(|e| format!("{}: {e}", root.display()))?;
    let repo_path = abs_file
        .strip_prefix(source.root())
        .map_err(|_| format!("{} is outside {}", file.display(), root.display()))?
        .to_string_lossy()
        .into_owned();
    Ok((source, repo_path))
}

fn print_findings(diagnostics: &[Diagnostic], sources: &Sources) {
    if diagnostics.is_empty() {
        return;
    }
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    eprint!("{}", report::human(diagnostics, sources, color));
}

/// `catrust build`'s flags, as parsed.
struct BuildOptions<'a> {
    file: &'a Path,
    out: &'a Path,
    stdout: bool,
    target: Target,
    check: bool,
    templates: Option<&'a Path>,
    deny_warnings: bool,
    input: git::Input,
}

fn build(options: BuildOptions<'_>) -> i32 {
    let (out, check) = (options.out, options.check);
    let opened = match git::open(options.file, options.input.clone()) {
        Ok(o) => o,
        Err(e) => return usage_error(e),
    };
    let overrides = match options.templates.map(output::read_templates).transpose() {
        Ok(o) => o.unwrap_or_default(),
        Err(e) => return usage_error(e),
    };
    let templates = match Templates::new(overrides) {
        Ok(t) => t,
        Err(e) => return usage_error(e),
    };
    let now = now();
    let recording = catrust::git::Recording::new(&*opened.source);
    // `--check` renders with the provenance the folder records: it compares content.
    let recorded = check
        .then(|| std::fs::read(out.join(catrust::render::LOCK_FILE)).ok())
        .flatten()
        .and_then(|lock| catrust::render::recorded_provenance(&lock));
    let outcome = match compile::build_with(
        &Request {
            source: &recording,
            config_path: &opened.config_path,
            selection: selection(options.target),
            templates: &templates,
            now,
            deny_warnings: options.deny_warnings,
        },
        &|loaded| git::build_context(&opened, &recording, loaded, now, recorded.clone()),
    ) {
        Ok(o) => o,
        Err(e) => return usage_error(e),
    };
    print_findings(&outcome.diagnostics, &outcome.sources);
    let Some(rendered) = outcome.rendered else {
        eprintln!("error: nothing was written: fix the errors above");
        return EXIT_INPUT;
    };
    deliver(&options, &rendered)
}

/// `--target` as the compiler's selection.
fn selection(target: Target) -> TargetSelection {
    match target {
        Target::All => TargetSelection::Declared,
        Target::Aks => TargetSelection::Aks,
        Target::Agent => TargetSelection::Agent,
        Target::TrustManager => TargetSelection::Platform(Platform::TrustManager),
        Target::ClusterTrustBundle => TargetSelection::Platform(Platform::ClusterTrustBundle),
        Target::Openshift => TargetSelection::Platform(Platform::OpenShift),
        Target::Talos => TargetSelection::Platform(Platform::Talos),
        Target::Bottlerocket => TargetSelection::Platform(Platform::Bottlerocket),
        Target::K3s => TargetSelection::Platform(Platform::K3s),
        Target::Gke => TargetSelection::Platform(Platform::Gke),
    }
}

/// The rendered files to stdout (`--stdout`), compared with the folder (`--check`), or
/// written to it.
fn deliver(options: &BuildOptions<'_>, rendered: &Rendered) -> i32 {
    let out = options.out;
    if options.stdout {
        let mut lock = std::io::stdout().lock();
        return match lock
            .write_all(rendered.stream().as_bytes())
            .and_then(|_| lock.flush())
        {
            Ok(()) => EXIT_OK,
            Err(e) => usage_error(format!("stdout: {e}")),
        };
    }
    if options.check {
        return match output::stale_paths(out, rendered) {
            Ok(stale) if stale.is_empty() => {
                eprintln!("{} is up to date", out.display());
                EXIT_OK
            }
            Ok(stale) => {
                eprintln!(
                    "error[{}]: {} is stale: {} (run `catrust build --out {}` and commit it)",
                    Code::Ct403,
                    out.display(),
                    stale.join(", "),
                    out.display()
                );
                EXIT_INPUT
            }
            Err(e) => usage_error(e),
        };
    }
    match output::write(out, rendered) {
        Ok(()) => {
            eprintln!("wrote {} files to {}", rendered.files.len(), out.display());
            EXIT_OK
        }
        Err(e) => usage_error(e),
    }
}

fn lint(file: &Path, format: LintFormat, deny_warnings: bool, input: git::Input) -> i32 {
    let opened = match git::open(file, input) {
        Ok(o) => o,
        Err(e) => return usage_error(e),
    };
    let loaded = match git::load(&opened, &*opened.source) {
        Ok(l) => l,
        Err(e) => return usage_error(e),
    };
    let now = now();
    let mut diagnostics = catrust::lint::lint(&loaded, now);
    match git::rotation_findings(&opened, &loaded, now) {
        Ok(found) if !found.is_empty() => {
            diagnostics.extend(found);
            catrust::diag::sort(&mut diagnostics);
        }
        Ok(_) => {}
        // The same wording as `build` (compile::Error's "git: …").
        Err(e) => return usage_error(compile::Error::from(e)),
    }
    match format {
        LintFormat::Human => {
            let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            print!("{}", report::human(&diagnostics, &loaded.sources, color));
        }
        LintFormat::Json => print!("{}", report::json(&diagnostics, &loaded.sources)),
        LintFormat::Sarif => print!(
            "{}",
            catrust::sarif::sarif(
                &diagnostics,
                &loaded.sources,
                &loaded.config_file,
                &sarif_repo_path(&opened.shown_root)
            )
        ),
        LintFormat::Github => print!("{}", report::github(&diagnostics, &loaded.sources)),
    }
    if compile::blocks(&diagnostics, deny_warnings) {
        EXIT_INPUT
    } else {
        EXIT_OK
    }
}

/// Findings name files as shown to the user (the repository root as seen from the
/// current folder, joined with the repository path); SARIF wants them relative to the
/// repository root (`%SRCROOT%`).
fn sarif_repo_path(shown_root: &Path) -> impl Fn(&str) -> String {
    let shown_root = shown_root.to_path_buf();
    move |shown: &str| {
        Path::new(shown)
            .strip_prefix(&shown_root)
            .map(|r| r.to_string_lossy().into_owned())
            .unwrap_or_else(|_| shown.to_string())
    }
}

fn inspect_files(files: &[PathBuf], format: TableFormat) -> i32 {
    let mut rows = Vec::new();
    let mut failed = false;
    for path in files {
        match catrust::source::read_regular(path, &path.display().to_string()) {
            Ok(bytes) => {
                let (found, errors) = inspect::inspect_pem(&path.display().to_string(), &bytes);
                for e in errors {
                    eprintln!("{e}");
                    failed = true;
                }
                rows.extend(found);
            }
            Err(e) => return usage_error(e.to_string()),
        }
    }
    match format {
        TableFormat::Human => print!("{}", inspect::table(&rows)),
        TableFormat::Json => print!("{}", inspect::json(&rows)),
    }
    if failed {
        EXIT_INPUT
    } else {
        EXIT_OK
    }
}

fn explain(code: Option<&str>, list: bool) -> i32 {
    if list {
        for rule in rules::RULES {
            println!("{}  {:<7}  {}", rule.code, rule.severity, rule.summary);
        }
        return EXIT_OK;
    }
    let code = code.unwrap_or_default();
    match Code::parse(code) {
        Some(code) => {
            print!("{}", rules::explain(code.rule()));
            EXIT_OK
        }
        None => usage_error(format!(
            "unknown code `{code}` (see `catrust explain --list`)"
        )),
    }
}

fn init(from: &[PathBuf], file: &Path, force: bool) -> i32 {
    if file.exists() && !force {
        return usage_error(format!(
            "{} exists; pass --force to replace it",
            file.display()
        ));
    }
    let base = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut inputs = Vec::new();
    for pem in from {
        let bytes = match catrust::source::read_regular(pem, &pem.display().to_string()) {
            Ok(b) => b,
            Err(e) => return usage_error(e.to_string()),
        };
        let relative = relative_path(base, pem);
        inputs.push((relative, bytes));
    }
    match catrust::init::starter(&inputs) {
        Ok(text) => match std::fs::write(file, text) {
            Ok(()) => {
                eprintln!(
                    "wrote {}; next: catrust lint -f {}",
                    file.display(),
                    file.display()
                );
                EXIT_OK
            }
            Err(e) => usage_error(format!("{}: {e}", file.display())),
        },
        Err(e) => {
            eprintln!("error: {e}");
            EXIT_INPUT
        }
    }
}

/// `target` relative to the folder `base`, `/`-separated, as trust.yaml names files.
fn relative_path(base: &Path, target: &Path) -> String {
    let abs = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
    let (base, target) = (abs(base), abs(target));
    let common = base
        .components()
        .zip(target.components())
        .take_while(|(a, b)| a == b)
        .count();
    let ups = base.components().count() - common;
    let mut parts: Vec<String> = std::iter::repeat_n("..".to_string(), ups).collect();
    parts.extend(
        target
            .components()
            .skip(common)
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    parts.join("/")
}
