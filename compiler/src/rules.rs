//! Every diagnostic code catrust can emit, with its severity and its documentation.
//!
//! This table is the one place a rule is described: `catrust explain CODE`, the SARIF
//! rule metadata and the docs are all generated from it. Codes are never renumbered;
//! new rules take the next free number in their family (0xx structure, 1xx PEM hygiene,
//! 2xx certificate content, 3xx AKS, 4xx git and rendered output, 5xx platform targets:
//! 50x shared, 51x trust-manager/ClusterTrustBundle, 52x OpenShift, 53x Talos, 54x Bottlerocket, 55x k3s/RKE2, 56x GKE).

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
        fix: "Durations take a number and one of the suffixes s, m, h, d (`72h`, `30d`); apiVersion is `catrust.dev/v1alpha1`, kind is `TrustConfig`; a registry is a host as image references name it, lower case, with an optional port 1-65535 (`registry.corp:5000`, `10.0.0.7:5000`, `[fd00::7]:5000`); the message lists the accepted values.",
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
        fix: "Trust fewer CAs on AKS (roots instead of intermediates): keep the CAs nodes need to provision (a proxy that intercepts their bootstrap traffic) in the cluster list and put the rest in the agent target, or set `certificatesFile: false` and use the agent target for all.",
        example: "targets:\n  aks:\n    certificatesFile: true   # with 11 certificates";
    Ct302 = "CT302", Error, "Windows node pool",
        why: "AKS custom CA trust does not support Windows node pools.",
        fix: "Remove the pool from `nodePools`, or set `osType: Linux` if it is a Linux pool.",
        example: "nodePools:\n  - name: win1\n    osType: Windows";
    Ct303 = "CT303", Warning, "per-pool `customCATrust` (preview property, retired 2026-09-14)",
        why: "The per-pool enableCustomCATrust property was retired on 2026-09-14 and current Azure CLI releases have no `--enable-custom-ca-trust` / `--disable-custom-ca-trust` (azure-cli-extensions#9283): a script with those flags fails. The AKS page says pools that keep the property \"might experience failures during scaling operations or when certificates are updated\". The cluster list reaches every Linux pool, so the property is not needed for any value. `az-commands.sh update` therefore unsets the property on every pool that declares `customCATrust` (before it updates the certificate list), with the command the AKS page gives: `az resource update --ids <pool id> --api-version 2025-08-02-preview --set properties.enableCustomCATrust=false`.",
        fix: "Run `az-commands.sh update` once (it unsets the property on these pools), then drop `customCATrust` from `nodePools`. For `customCATrust: true`, the CAs reach the pool through the cluster list (`certificatesFile: true`); for in-place rotation use the agent target.",
        example: "nodePools:\n  - name: nodepool1\n    customCATrust: true";
    Ct304 = "CT304", Error, "`pools` used with the aks target",
        why: "AKS trusts one set of CAs per cluster; a CA meant for some pools only would land on every node.",
        fix: "Drop `pools` from the authority, or give it `targets: [agent]` so that only the agent target installs it (on those pools).",
        example: "authorities:\n  - name: gpu-ca\n    pools: [gpu]   # with targets.aks";
    Ct305 = "CT305", Error, "an Azure name outside Azure's naming rules, or a node pool named twice",
        why: "`resourceGroup`, `cluster` and `nodePools[].name` become arguments of the az script. Azure accepts only its documented character sets (resource groups: 1-90 letters, digits, `_ - . ( )`, not ending with `.`; clusters: 1-63 ASCII letters, digits, `_ -`, starting and ending with a letter or digit; Linux node pools: 1-12 lowercase letters and digits, starting with a letter), so anything else is a mistake, and a newline or a `$(...)` in a name must never reach a script an operator runs with Azure credentials.",
        fix: "Use the name as Azure shows it (`az aks list -o table`, `az aks nodepool list`), and declare each node pool once.",
        example: "aks:\n  cluster: \"aks-prod\\n touch /tmp/x\"   # a newline in a name";
    Ct306 = "CT306", Warning, "`secret: true`: the custom-ca-trust-secret is read by nothing on a current AKS cluster",
        why: "The Secret `kube-system/custom-ca-trust-secret` was read by the aks-node-ca-watcher DaemonSet, which AKS deployed only to node pools with the per-pool enableCustomCATrust property (preview; Azure/AKS#2259, #4382). That property retired on 2026-09-14 and the generally available AKS page does not mention the Secret: on a current cluster applying it changes nothing on any node, silently. catrust renders it only when asked (`secret: true`; the default is `false` since the retirement).",
        fix: "Drop `secret: true`. Put the CAs nodes need at provisioning in the cluster list (`certificatesFile: true`, re-images nodes on change) and the CAs that rotate in the agent target (installs in place, node by node).",
        example: "targets:\n  aks:\n    secret: true";
    Ct307 = "CT307", Warning, "the AKS cluster list is empty",
        why: "With `certificatesFile: true` and no certificate, the outputs empty `securityProfile.customCATrustCertificates`. The Azure CLI clears the list with an empty file (`az aks update --custom-ca-trust-certificates <empty file>`, azure-cli#32201; AKS re-images every node). Terraform is different: azurerm 3.79 to 3.x forces a new cluster when the list goes from non-empty to empty (terraform-provider-azurerm#23737), 4.0 to 4.35 has no such argument, and 4.36 and later send an empty list whose effect on nodes is not documented.",
        fix: "If the list is meant to be empty, apply it with `az-commands.sh update` (the empty-file update), not Terraform, or remove `custom_ca_trust_certificates_base64` from your Terraform configuration only after that. Otherwise add the missing authorities, or set `certificatesFile: false`.",
        example: "authorities: []\ntargets:\n  aks:\n    certificatesFile: true";
    Ct308 = "CT308", Warning, "blank line or whitespace inside a certificate block",
        why: "The AKS troubleshooting section: a certificate file with extra new lines or white space inside a certificate fails with \"failed to decode one of SecurityProfile.CustomCATrustCertificates to PEM after base64 decoding\", and the Azure CLI splits its file on blank lines, so a blank line inside a block cuts one certificate in two. catrust re-encodes every certificate from its DER, so outputs are clean; the warning tells you the source is not (another tool fed from it would fail).",
        fix: "Remove the blank lines and the spaces or tabs inside the BEGIN/END block (`sed -i 's/[[:space:]]*$//' FILE` for trailing blanks), or export the certificate again.",
        example: "-----BEGIN CERTIFICATE-----\nMIIB…   \n\nMIIC…\n-----END CERTIFICATE-----";
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
    Ct501 = "CT501", Error, "`pools` used with a platform target that trusts one set per cluster",
        why: "trust-manager, ClusterTrustBundle, OpenShift, Talos, Bottlerocket, k3s and GKE each trust one set of CAs for the whole cluster (or every namespace, or every machine the patch is applied to); a CA meant for some node pools only would be trusted everywhere.",
        fix: "Drop `pools` from the authority, or render it with the agent target only (a separate trust.yaml for the platform).",
        example: "authorities:\n  - name: gpu-ca\n    pools: [gpu]   # with targets.trustManager";
    Ct502 = "CT502", Error, "a platform target with nothing to trust",
        why: "Every platform object needs at least one certificate: a ClusterTrustBundle's `trustBundle`, an inline Bundle source, OpenShift's `ca-bundle.crt` and Talos' `certificates` are refused (or mean nothing) when empty.",
        fix: "Add an authority, or remove the target (for trust-manager, `useDefaultCAs: true` alone is enough).",
        example: "spec:\n  authorities: []\n  targets:\n    clusterTrustBundle: {}";
    Ct503 = "CT503", Error, "a name or key the platform refuses",
        why: "Object names must be DNS subdomains (lowercase, at most 253 characters) and ConfigMap keys must match `[-._a-zA-Z0-9]+` (at most 253, not starting with `..`, not `.`): the API server refuses anything else, so the build would fail only at deploy time.",
        fix: "Use a lowercase name such as `corp-trust` and a key such as `ca-certificates.crt`.",
        example: "targets:\n  trustManager:\n    key: \"ca bundle.pem\"   # a space";
    Ct511 = "CT511", Warning, "trust-manager `useDefaultCAs` together with `distrust`",
        why: "trust-manager's default CA package is a public root set catrust does not see: a distrusted public root stays in the pods' bundle although `distrust` removes it from nodes.",
        fix: "Set `useDefaultCAs: false` and list the public roots you need as authorities, or accept that pods keep the default package.",
        example: "distrust:\n  - sha256: \"…\"\ntargets:\n  trustManager:\n    useDefaultCAs: true";
    Ct512 = "CT512", Error, "invalid ClusterTrustBundle `signerName`",
        why: "A signer name is `<domain>/<path>` (a DNS subdomain, `/`, then letters, digits, `-`, `_`, `.`, `/`); the ClusterTrustBundle's name must then start with the signer name with `/` replaced by `:` and a `:`, and stay within 253 characters. Without a signer the name must not contain `:`. The API server refuses other names (ValidateClusterTrustBundleName).",
        fix: "Write the signer as `example.com/corp-roots`, and keep `name` a DNS subdomain.",
        example: "targets:\n  clusterTrustBundle:\n    signerName: corp   # no domain";
    Ct513 = "CT513", Info, "trust-manager `ClusterBundle`: its CRD is not in the Helm chart",
        why: "The `trust-manager.io/v1alpha2` ClusterBundle CRD exists only in the repository's `deploy/crds` (\"for reference, development and testing purposes only\"); the trust-manager Helm chart installs the `Bundle` CRD only, so applying a ClusterBundle fails with \"no matches for kind\" unless you installed the CRD yourself. Its targets know PEM and PKCS#12 only: a `jks` key is rendered in the Bundle, not in the ClusterBundle.",
        fix: "Install `deploy/crds/trust-manager.io_clusterbundles.yaml` of your trust-manager release, or set `clusterBundle: false` and use the Bundle.",
        example: "targets:\n  trustManager:\n    clusterBundle: true";
    Ct514 = "CT514", Error, "two trust-manager target keys are the same",
        why: "trust-manager writes the PEM bundle, the JKS and the PKCS#12 trust store into the same ConfigMap; two formats under one key overwrite each other.",
        fix: "Give `key`, `additionalFormats.jks.key` and `additionalFormats.pkcs12.key` different names, such as `ca-certificates.crt`, `truststore.jks` and `truststore.p12`.",
        example: "trustManager:\n  key: bundle\n  additionalFormats:\n    jks: {key: bundle}";
    Ct521 = "CT521", Error, "OpenShift registry CAs named like the cluster-wide bundle",
        why: "`openshift-config/user-ca-bundle` is the ConfigMap the Proxy's `trustedCA` names and the MCO always reads (key `ca-bundle.crt`); the registry CAs' ConfigMap holds one key per registry. Giving both the same name makes one object overwrite the other.",
        fix: "Leave `registryConfigMap` unset (`catrust-<metadata.name>-registries`) or pick another name.",
        example: "targets:\n  openshift:\n    registryConfigMap: user-ca-bundle";
    Ct522 = "CT522", Error, "an OpenShift registry that cannot be a ConfigMap key",
        why: "The `image.config.openshift.io/cluster` `additionalTrustedCA` ConfigMap is keyed by registry: `host`, or `host..port` for `host:port`. A ConfigMap key may hold only letters, digits, `-`, `_` and `.`, so an IPv6 literal such as `[::1]:5000` (valid for the agent and containerd) has no key the API server accepts.",
        fix: "Name the registry by its DNS name or IPv4 address in trust.yaml, or leave the OpenShift target out of the trust.yaml that has it.",
        example: "authorities:\n  - name: corp\n    file: corp.pem\n    registries: [\"[::1]:5000\"]\ntargets:\n  openshift: {}";
    Ct531 = "CT531", Error, "`talosVersion` older than 1.8",
        why: "The `TrustedRootsConfig` document exists from Talos 1.8.0 (CHANGELOG 1.8, \"Custom Trusted Roots\"); older releases refuse a machine config that holds it, so the patch could not apply.",
        fix: "Upgrade the cluster to Talos 1.8 or later, and set `talosVersion` to the release of its oldest node. From 1.12 registries use `RegistryTLSConfig`; 1.8 to 1.11 get the legacy `machine.registries` (base64 `ca`).",
        example: "targets:\n  talos:\n    talosVersion: \"1.7\"";
    Ct532 = "CT532", Error, "a Talos node that is not an IP address or host name",
        why: "Nodes become the `talosctl --nodes` value of the rendered script; anything but an address or a host name is a typo or an attempt to smuggle shell or flag text into it.",
        fix: "List each node as an IP address (`10.0.0.2`, `fd00::2`) or a DNS host name, one list item each.",
        example: "targets:\n  talos:\n    nodes: [\"10.0.0.2,10.0.0.3\"]   # one item per node";
    Ct541 = "CT541", Warning, "a registry CA on Bottlerocket",
        why: "Bottlerocket has no per-registry CA (its container-registry settings hold only mirrors and credentials): a CA meant for one registry is put in the system bundle and trusted for every TLS connection of the node.",
        fix: "Accept the wider trust (this warning; `--deny-warnings` refuses it), or keep registry-only CAs in a trust.yaml without the bottlerocket target.",
        example: "authorities:\n  - name: registry-ca\n    registries: [registry.corp.example:5000]   # with targets.bottlerocket";
    Ct542 = "CT542", Warning, "`distrust` with the bottlerocket target",
        why: "Bottlerocket removes a CA from its store only when given the certificate itself (`settings.pki.<name>` with `trusted = false`); a fingerprint is not enough, so a distrusted CA of Bottlerocket's default store stays trusted on those nodes.",
        fix: "Remove the CA from `authorities` (it leaves the catrust bundle at the next apply), and for a public root add a `trusted = false` bundle with its PEM to the node's user data yourself.",
        example: "distrust:\n  - sha256: \"…\"   # with targets.bottlerocket";
    Ct543 = "CT543", Error, "Bottlerocket user data larger than 16 KiB",
        why: "EC2 accepts at most 16 KiB of user data; Bottlerocket's docs: \"If your user data is over the size limit … use apiclient … from within a bootstrap container\".",
        fix: "Trust fewer CAs on Bottlerocket, or run the rendered apiclient-commands.sh from a bootstrap container instead of putting the bundle in user data.",
        example: "# 10 or more RSA-4096 roots with targets.bottlerocket";
    Ct551 = "CT551", Warning, "k3s target without any registry CA",
        why: "The k3s target renders registries.yaml (`configs.<host>.tls.ca_file`) and its CA files only: k3s has no setting for the node's OS trust store. Without an authority naming `registries` it writes an empty `configs`.",
        fix: "Add `registries: [host:port]` to the authorities k3s' containerd should trust, and use the agent target for the OS store.",
        example: "targets:\n  k3s: {}   # no authority has registries";
    Ct552 = "CT552", Warning, "the agent and k3s targets both carry registry CAs",
        why: "k3s and RKE2 run their own containerd, which reads `<data-dir>/agent/etc/containerd/certs.d`; k3s rewrites that folder from registries.yaml at every start, so anything the agent wrote there would be lost, and the agent's `/etc/containerd/certs.d` is not read by k3s at all. On k3s nodes the registry CAs reach containerd only through registries.yaml.",
        fix: "Keep both if the same trust.yaml also serves non-k3s nodes; on k3s nodes rely on registries.yaml for registries and on the agent only for the OS store (never point the agent at k3s' certs.d).",
        example: "targets:\n  agent: {image: …}\n  k3s: {}   # with authorities naming registries";
    Ct561 = "CT561", Error, "more than 5 registry certificates for GKE",
        why: "GKE's private-registry CA configuration takes at most 5 certificates per cluster (`certificateAuthorityDomainConfig`); gcloud or the API refuses more.",
        fix: "Issue the registries' certificates from fewer CAs (one common root), or leave the rest to the agent target.",
        example: "# six authorities with `registries` and targets.gke";
    Ct562 = "CT562", Error, "more than 25 FQDNs for one GKE certificate",
        why: "GKE takes at most 25 `fqdns` per certificate.",
        fix: "Serve the registries through fewer hosts (a mirror), or split them over two CAs.",
        example: "registries: [r1.corp, r2.corp, …, r26.corp]   # with targets.gke";
    Ct563 = "CT563", Error, "a wildcard registry for GKE",
        why: "GKE's `fqdns` are exact `host[:port]` names; wildcards are not supported (and not a containerd host either, CT006).",
        fix: "List each registry host exactly.",
        example: "registries: [\"*.corp.example\"]";
    Ct564 = "CT564", Error, "one registry under two GKE certificates",
        why: "GKE maps each FQDN to one certificate only; the same registry under two authorities is refused.",
        fix: "Name the registry on one authority (during a rotation, move it from the old CA to the new one).",
        example: "authorities:\n  - {name: a, file: a.pem, registries: [r.corp]}\n  - {name: b, file: b.pem, registries: [r.corp]}";
    Ct565 = "CT565", Error, "a GKE project, cluster or location that is not a GCP name",
        why: "The values become gcloud arguments and a Secret Manager URI; a GCP project ID is 6 to 30 lowercase letters, digits and `-` starting with a letter, a cluster name at most 40 of them, a location a region or zone. Anything else is a typo or shell text.",
        fix: "Copy the names from `gcloud projects list` and `gcloud container clusters list`.",
        example: "targets:\n  gke:\n    project: \"my project; rm -rf /\"";
    Ct566 = "CT566", Warning, "GKE target without any registry CA",
        why: "GKE trusts private CAs only for image registries (`privateRegistryAccessConfig`); without an authority naming `registries`, the rendered file disables it.",
        fix: "Add `registries` to the CAs of your private registries; node-wide trust on GKE needs the agent target.",
        example: "targets:\n  gke: {project: my-project, cluster: gke-prod, location: europe-west1}   # no registries";
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
