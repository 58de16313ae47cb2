//! `docs/rules.md`, generated from [`crate::rules::RULES`] like `catrust explain`.
//!
//! Regenerate with `cargo run -q -p catrust -- explain --markdown > docs/rules.md`;
//! a test fails when the checked-in file differs from this text.

use crate::rules::{Rule, RULES};

/// One rule's section (also SARIF's `help.markdown`).
pub fn rule_markdown(rule: &Rule) -> String {
    format!(
        "## {code}: {summary}\n\nSeverity: **{severity}**\n\n**Why.** {why}\n\n**How to fix.** {fix}\n\n**Example**\n\n```\n{example}\n```\n",
        code = rule.code,
        summary = rule.summary,
        severity = rule.severity,
        why = rule.why,
        fix = rule.fix,
        example = rule.example,
    )
}

/// The whole `docs/rules.md`.
pub fn rules_markdown() -> String {
    let mut out = String::from(
        "# catrust lint rules\n\n\
         <!-- Generated from compiler/src/rules.rs: do not edit. Regenerate with\n     \
         cargo run -q -p catrust -- explain --markdown > docs/rules.md -->\n\n\
         Every finding of `catrust lint` and `catrust build` has one of these codes. \
         `catrust explain CODE` prints the same page in a terminal. Codes are never \
         renumbered. Errors block `build`; warnings block only with `--deny-warnings`; \
         infos never block.\n\n\
         | code | severity | finding |\n| --- | --- | --- |\n",
    );
    for rule in RULES {
        out.push_str(&format!(
            "| [{code}](#{anchor}) | {severity} | {summary} |\n",
            code = rule.code,
            anchor = rule.code.as_str().to_ascii_lowercase(),
            severity = rule.severity,
            summary = rule.summary.replace('|', "\\|"),
        ));
    }
    for rule in RULES {
        out.push_str(&format!(
            "\n<a id=\"{}\"></a>\n\n",
            rule.code.as_str().to_ascii_lowercase()
        ));
        out.push_str(&rule_markdown(rule));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn checked_in_rules_md_is_generated() {
        let checked_in = include_str!("../../docs/rules.md");
        assert!(
            checked_in == super::rules_markdown(),
            "docs/rules.md is stale: run `cargo run -q -p catrust -- explain --markdown > docs/rules.md`"
        );
    }
}
