//! Every diagnostic code catrust can emit, with its severity and its documentation.
//!
//! This table is the one place a rule is described: `catrust explain CODE`, the SARIF
//! rule metadata and the docs are all generated from it. Codes are never renumbered;
//! new rules take the next free number in their family (0xx structure, 1xx PEM hygiene,
//! 2xx certificate content, 3xx AKS, 4xx git and rendered output).

use std::fmt;

/// How bad a finding is. `Error` blocks `build`; `Warning` blocks only with
/// `--deny-warnings`; `Info` never blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The documentation of one rule.
#[derive(Debug)]
pub struct Rule {
    pub code: Code,
    pub severity: Severity,
    /// One line: what the rule finds.
    pub summary: &'static str,
    /// Why it matters.
    pub why: &'static str,
    /// How to fix it.
    pub fix: &'static str,
    /// A short example of input that triggers it.
    pub example: &'static str,
}

macro_rules! rules {
    ($($variant:ident = $code:literal, $sev:ident, $summary:literal,
       why: $why:literal, fix: $fix:literal, example: $example:literal;)*) => {
        /// A diagnostic code such as `CT001`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Code { $($variant),* }

        /// Every rule, in code order.
        pub static RULES: &[Rule] = &[$(Rule {
            code: Code::$variant,
            severity: Severity::$sev,
            summary: $summary,
            why: $why,
            fix: $fix,
            example: $example,
        }),*];

        impl Code {
            pub fn as_str(self) -> &'static str {
                match self { $(Code::$variant => $code),* }
            }

            pub fn parse(s: &str) -> Option<Code> {
                match s.trim().to_ascii_uppercase().as_str() { $($code => Some(Code::$variant),)* _ => None }
            }
        }
    };
}

rules! {
    Ct001 = "CT001", Error, "YAML syntax error",
        why: "catrust cannot read a file that is not YAML; nothing is built from a half-read configuration.",
        fix: "Fix the YAML at the position shown: indentation, a missing `:` or an unclosed quote are the usual causes.",
        example: "spec:\n  authorities:\n    - name: corp\n     file: a.pem   # indented one column short";
    Ct002 = "CT002", Error, "unknown field",
        why: "A misspelt field would otherwise be ignored silently, and the setting you meant would not apply.",
        fix: "Use the field named in the suggestion, or remove the field.",
        example: "spec:\n  authorites: []   # did you mean `authorities`?";
    Ct003 = "CT003", Error, "missing required field, or both/neither of `file` and `pem`",
        why: "catrust needs every required value to know what to trust and where to render it.",
        fix: "Add the field named in the message. Each authority takes exactly one of `file` and `pem`.",
        example: "authorities:\n  - name: corp-root   # neither file nor pem";
    Ct004 = "CT004", Error, "invalid name (not a DNS label) or duplicate authority name",
        why: "Names become Secret data keys (`<name>.crt`), file names on nodes and Kubernetes resource names: they must be DNS labels (lowercase letters, digits, `-`; at most 63 characters, `metadata.name` at most 40) and unique.",
        fix: "Rename to a lowercase DNS label such as `corp-root-2024`, unique within `authorities`.",
        example: "authorities:\n  - name: Corp_Root   # uppercase and underscore";
    Ct005 = "CT005", Error, "certificate file missing, unreadable, or outside the repository",
        why: "A `file` must name a file inside the repository, so that the same commit always builds the same output; a path that escapes (`..`, an absolute path, a symlink) would read whatever the machine has.",
        fix: "Commit the certificate inside the repository and name it relative to trust.yaml.",
        example: "authorities:\n  - name: corp\n    file: ../../etc/ssl/certs/corp.pem";
    Ct006 = "CT006", Error, "invalid value: duration, apiVersion/kind, or an enumerated setting",
        why: "catrust only accepts values whose meaning is certain.",
        fix: "Durations take a number and one of the suffixes s, m, h, d (`72h`, `30d`); apiVersion is `catrust.dev/v1alpha1`, kind is `TrustConfig`; the message lists the accepted values.",
        example: "rotation:\n  minOverlap: 3 days";
    Ct007 = "CT007", Error, "value of the wrong type",
        why: "A list where a single value is expected (or the reverse) means the file does not say what its author thinks.",
        fix: "Write the value with the type named in the message: a string, a boolean, a list or a mapping.",
        example: "targets:\n  aks:\n    secret: \"maybe\"   # a boolean is expected";
    Ct008 = "CT008", Error, "pool name is not a Kubernetes label value",
        why: "A pool is matched against the node pool label (`poolLabel`), so it must be a label value; it also becomes part of rendered file names (`agent/daemonset-<pools>.yaml`), where `/` or `..` would write outside the output folder.",
        fix: "Use the node pool's name as the label shows it (`kubectl get nodes -L kubernetes.azure.com/agentpool`): at most 63 letters, digits, `-`, `_` or `.`, beginning and ending with a letter or digit.",
        example: "authorities:\n  - name: gpu-ca\n    file: gpu.pem\n    pools: [\"/../../x\"]";
    Ct101 = "CT101", Warning, "CRLF line endings",
        why: "The AKS document's troubleshooting section: certificates with CRLF line ends in custom-ca-trust-secret fail with \"x509: certificate signed by unknown authority\". catrust re-encodes every certificate with LF, so outputs are clean; the warning tells you the source is not.",
        fix: "Convert the file to LF line endings (`dos2unix FILE`, or `git config core.autocrlf input`).",
        example: "-----BEGIN CERTIFICATE-----\\r\\nMIIB…\\r\\n";
    Ct102 = "CT102", Error, "base64 of a PEM instead of PEM (double encoding)",
        why: "The AKS troubleshooting case: the certificates file must not be base64-encoded, and a Secret value must be base64 of the PEM exactly once. A base64-encoded PEM in the source means it would be encoded twice.",
        fix: "Decode it once (`base64 -d FILE > FILE.pem`) and commit the PEM.",
        example: "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUI…";
    Ct103 = "CT103", Error, "no certificate in the file or block",
        why: "An authority that holds no certificate trusts nothing; this is usually an empty or truncated file, or a malformed PEM header.",
        fix: "Put at least one `-----BEGIN CERTIFICATE-----` block in the file, with matching BEGIN and END lines.",
        example: "-----BEGIN CERTIFICATE----\nMIIB…   # four dashes: not a PEM header";
    Ct104 = "CT104", Error, "a PEM block that is not a certificate",
        why: "Trust stores take certificates only; a CSR, CRL or public key in the file is a mistake that would be dropped or break the node's store.",
        fix: "Remove the block, or replace it with the CA certificate itself.",
        example: "-----BEGIN CERTIFICATE REQUEST-----";
    Ct105 = "CT105", Error, "private key material",
        why: "A CA's private key in a git repository is a compromise of that CA: everyone who can read the repository can issue certificates every node trusts.",
        fix: "Remove the key from the file AND from git history, then rotate the CA: treat the key as leaked.",
        example: "-----BEGIN RSA PRIVATE KEY-----";
    Ct106 = "CT106", Warning, "text outside PEM blocks",
        why: "Text around a block (openssl's `subject=` lines, comments) is ignored by some tools and breaks others, such as the Azure CLI's split on blank lines. Outputs never carry it.",
        fix: "Delete the text outside the BEGIN/END lines.",
        example: "subject=CN = corp root\n-----BEGIN CERTIFICATE-----";
    Ct107 = "CT107", Error, "bad base64 or DER inside a PEM block",
        why: "A corrupt certificate cannot be trusted or even identified; nodes would skip it.",
        fix: "Export the certificate again from its source; do not edit PEM by hand.",
        example: "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----";
    Ct108 = "CT108", Warning, "UTF-8 byte order mark at the start of a certificate file",
        why: "Windows editors save UTF-8 with a byte order mark; catrust reads past it and outputs never carry it, but other tools that read the same file (a shell loop of `openssl x509`, the Azure CLI's split on blank lines) see three stray bytes before the first BEGIN line.",
        fix: "Remove the mark: `sed -i '1s/^\\xEF\\xBB\\xBF//' FILE` (or save the file as UTF-8 without BOM).",
        example: "\\xEF\\xBB\\xBF-----BEGIN CERTIFICATE-----";
    Ct109 = "CT109", Warning, "a certificate under another PEM label (TRUSTED CERTIFICATE, X509 CERTIFICATE)",
        why: "OpenSSL reads `TRUSTED CERTIFICATE` (a certificate followed by OpenSSL-only trust settings) and the old `X509 CERTIFICATE` label, but most other tools, Go's among them, skip both; catrust installs the certificate (never the trust settings) and says so.",
        fix: "Rewrite it as a plain certificate: `openssl x509 -in FILE -out FILE.pem`.",
        example: "-----BEGIN TRUSTED CERTIFICATE-----";
    Ct201 = "CT201", Error, "not a CA: basicConstraints missing or CA:FALSE",
        why: "A leaf certificate in a trust store trusts that one server only, and is usually a mistake (the CA was meant).",
        fix: "Use the issuing CA's certificate (basicConstraints CA:TRUE).",
        example: "X509v3 Basic Constraints: CA:FALSE";
    Ct202 = "CT202", Error, "certificate expired",
        why: "An expired CA validates nothing; keeping it hides that its successor is missing.",
        fix: "Replace it with its successor, or remove it (see CT401 for a safe rotation).",
        example: "notAfter=Jan  1 00:00:00 2024 GMT";
    Ct203 = "CT203", Warning, "certificate expires within `expiryWarning`",
        why: "Rotating a CA takes at least `rotation.minOverlap`; start before it expires.",
        fix: "Add the successor CA now (with `replaces:`), and remove the old one after the overlap.",
        example: "expiryWarning: 30d   # and a CA that expires in 10 days";
    Ct204 = "CT204", Warning, "certificate not yet valid",
        why: "Clients reject it until notBefore; often a clock or issuance mistake.",
        fix: "Check the certificate's notBefore; keep it if the future start is intended.",
        example: "notBefore=Jan  1 00:00:00 2099 GMT";
    Ct205 = "CT205", Warning, "keyUsage present without keyCertSign",
        why: "A CA whose keyUsage lacks keyCertSign cannot sign certificates that strict verifiers accept.",
        fix: "Use a CA certificate whose keyUsage includes keyCertSign.",
        example: "X509v3 Key Usage: critical, Digital Signature";
    Ct206 = "CT206", Error, "RSA key shorter than 2048 bits",
        why: "Keys under 2048 bits are breakable and rejected by current TLS stacks.",
        fix: "Re-issue the CA with an RSA key of at least 2048 bits, or an EC key.",
        example: "Public-Key: (1024 bit)";
    Ct207 = "CT207", Warning, "SHA-1 or MD5 signature on a certificate that is not self-signed",
        why: "These signatures are forgeable: whoever forges one can make a CA that nodes trust. A self-signed root's own signature is never verified (the trust comes from the store), so old Mozilla roots with SHA-1 self-signatures are not reported; an intermediate signed with SHA-1 or MD5 is.",
        fix: "Have the issuing CA re-issue it with a SHA-256 (or stronger) signature, or trust the root instead.",
        example: "Signature Algorithm: sha1WithRSAEncryption   # on an intermediate CA";
    Ct208 = "CT208", Error, "the same certificate twice",
        why: "Duplicates count twice against the AKS limit of 10 and make removals ambiguous.",
        fix: "Keep one entry for the certificate.",
        example: "authorities:\n  - {name: a, file: root.pem}\n  - {name: b, file: root.pem}";
    Ct209 = "CT209", Error, "SHA-256 pin mismatch",
        why: "The pin records which certificate was reviewed; a different certificate under the same name was not.",
        fix: "If the new certificate is intended, update `sha256` to the value shown (`catrust inspect FILE`).",
        example: "sha256: \"00:11:…\"   # the file's certificate has another fingerprint";
    Ct210 = "CT210", Info, "not self-signed (an intermediate CA)",
        why: "Trusting an intermediate works, but its issuer's rotation or revocation is then invisible to this repository.",
        fix: "Prefer the root CA, unless trusting exactly this intermediate is intended.",
        example: "issuer=CN = corp root   subject=CN = corp issuing CA 1";
    Ct301 = "CT301", Error, "more than 10 certificates for the AKS cluster list",
        why: "AKS accepts at most 10 certificates in `--custom-ca-trust-certificates` / `securityProfile.customCATrustCertificates`.",
        fix: "Trust fewer CAs on AKS (roots instead of intermediates), set `certificatesFile: false` and use the Secret or the agent target for the rest.",
        example: "targets:\n  aks:\n    certificatesFile: true   # with 11 certificates";
    Ct302 = "CT302", Error, "Windows node pool",
        why: "AKS custom CA trust does not support Windows node pools.",
        fix: "Remove the pool from `nodePools`, or set `osType: Linux` if it is a Linux pool.",
        example: "nodePools:\n  - name: win1\n    osType: Windows";
    Ct303 = "CT303", Warning, "per-pool `customCATrust` (preview flag, retired 2026-09-14)",
        why: "The per-pool enableCustomCATrust property was retired on 2026-09-14 and current Azure CLI releases lack the flags; the script still renders them, with the preview prerequisites, for clusters that still need them.",
        fix: "Use the cluster-level list (`certificatesFile: true`) and drop `customCATrust` from the pools.",
        example: "nodePools:\n  - name: nodepool1\n    customCATrust: true";
    Ct304 = "CT304", Error, "`pools` used with the aks target",
        why: "AKS trusts one set of CAs per cluster; a CA meant for some pools only would land on every node.",
        fix: "Drop `pools` from the authority, or render it with the agent target only.",
        example: "authorities:\n  - name: gpu-ca\n    pools: [gpu]   # with targets.aks";
    Ct401 = "CT401", Error, "a CA removed before its successor was in history for `minOverlap`",
        why: "Nodes must trust the successor everywhere before the old CA goes; otherwise servers still on the old chain fail with \"certificate signed by unknown authority\" mid-rotation. The checked state (working tree, index, or `--rev R`) is compared with its parent (`HEAD`, or `R^`), at the current time for an uncommitted state and at the commit's time for a commit. A removed CA's successors are the authorities whose `replaces` names it or, when none does, every authority first committed after it; each must have been on the first-parent history for `rotation.minOverlap` (dated by the committer time of the first commit of its current run; certificates are matched by SHA-256, so renamed files, authorities and folders keep their dates). A shallow clone that cuts history while a successor is still present cannot decide: that is this error too, never a silent pass. Outside a git repository the rule is skipped.",
        fix: "Wait until the date shown (`catrust plan` prints it), or, in an emergency, move the CA's fingerprint to `distrust` (no overlap applies). In CI, fetch the whole history (`git fetch --unshallow`, or `fetch-depth: 0` for actions/checkout).",
        example: "# commit 1 adds corp-2026 (replaces: corp-2024); commit 2, an hour later, removes corp-2024";
    Ct402 = "CT402", Error, "a fingerprint both trusted and distrusted",
        why: "A certificate cannot be both installed and removed; the intent is unclear.",
        fix: "Remove it from `authorities` (to distrust it) or from `distrust` (to trust it).",
        example: "distrust:\n  - sha256: \"<the fingerprint of an authority>\"";
    Ct403 = "CT403", Error, "`build --check`: the rendered folder is stale",
        why: "A committed render that differs from trust.yaml deploys something other than what was reviewed. `--check` renders with the source commit and dirty flag the folder's `catrust.lock.json` records, so it compares content: a render committed earlier is not stale merely because newer commits exist.",
        fix: "Run `catrust build --out DIR` and commit the result.",
        example: "catrust build --check --out rendered/";
}

impl Code {
    /// The rule of this code.
    pub fn rule(self) -> &'static Rule {
        RULES
            .iter()
            .find(|r| r.code == self)
            .expect("every code has a rule")
    }

    pub fn severity(self) -> Severity {
        self.rule().severity
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The page `catrust explain CODE` prints.
pub fn explain(rule: &Rule) -> String {
    format!(
        "{code} ({severity}): {summary}\n\nWhy\n  {why}\n\nHow to fix\n  {fix}\n\nExample\n{example}\n",
        code = rule.code,
        severity = rule.severity,
        summary = rule.summary,
        why = rule.why,
        fix = rule.fix,
        example = rule
            .example
            .lines()
            .map(|l| format!("  {l}\n"))
            .collect::<String>()
            .trim_end(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_sorted_and_round_trip() {
        for pair in RULES.windows(2) {
            assert!(pair[0].code.as_str() < pair[1].code.as_str());
        }
        for rule in RULES {
            assert_eq!(Code::parse(rule.code.as_str()), Some(rule.code));
            assert!(!rule.summary.ends_with('.'), "{}", rule.code);
        }
        assert_eq!(Code::parse("ct101"), Some(Code::Ct101));
    }
}
