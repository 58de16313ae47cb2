//! The README's commands work as written: every `catrust build …` line of its shell
//! blocks runs (output folders redirected into a temp folder), and says what the
//! README says it prints.

use catrust_tests::{bin, run, workspace_root};

fn shell_lines(markdown: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut in_sh = false;
    for line in markdown.lines() {
        match line.trim() {
            "```sh" => in_sh = true,
            "```" => in_sh = false,
            l if in_sh => lines.push(l.split(" #").next().unwrap().trim().to_string()),
            _ => {}
        }
    }
    lines
}

#[test]
fn every_catrust_build_line_of_the_readme_runs() {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mut ran = 0;
    for line in shell_lines(&readme) {
        let args: Vec<&str> = line.split_whitespace().collect();
        let args = match args.as_slice() {
            ["catrust", "build", rest @ ..] => rest.to_vec(),
            ["cargo", "run", "-p", "catrust", "--", "build", rest @ ..] => rest.to_vec(),
            _ => continue,
        };
        // Outputs go to the temp folder; inputs are read from the repository.
        let mut out_next = false;
        let args: Vec<String> = args
            .iter()
            .map(|a| {
                let arg = if out_next {
                    tmp.path().join(a.replace('/', "_")).display().to_string()
                } else {
                    a.to_string()
                };
                out_next = *a == "--out";
                arg
            })
            .collect();
        let o = run(std::process::Command::new(bin("catrust"))
            .arg("build")
            .args(&args)
            .current_dir(workspace_root()));
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "README line `{line}` failed: {stderr}");
        assert!(stderr.contains("wrote "), "{line}: {stderr}");
        ran += 1;
    }
    assert!(
        ran >= 3,
        "the README shows at least the basic, AKS and agent builds"
    );
    assert!(readme.contains("cargo run -p catrust -- build -f examples/basic/trust.yaml --out out"));
    // The test command: README shows it, it runs the whole workspace, and CI runs it.
    assert!(readme.contains("```sh\ntests/run.sh\n```"));
    assert!(
        std::fs::read_to_string(workspace_root().join("tests/run.sh"))
            .unwrap()
            .contains("exec cargo test --workspace --locked")
    );
    assert!(std::fs::read_to_string(workspace_root().join(".ci/run"))
        .unwrap()
        .lines()
        .any(|l| l.trim() == "tests/run.sh"));
}
