//! The platform targets of `spec.targets` (see [`crate::config::PlatformTargets`]),
//! read with the same unknown-field, missing-field and span machinery as `aks` and
//! `agent`. Names and platform limits are checked by `lint::platforms`.

use saphyr::MarkedYaml;

use super::{Cx, Map};
use crate::config::*;
use crate::rules::Code;
use crate::span::Spanned;

impl Cx<'_> {
    /// Takes every platform key out of `spec.targets`.
    pub(super) fn platforms(&mut self, map: &mut Map) -> PlatformTargets {
        PlatformTargets {
            trust_manager: map.take("trustManager").and_then(|n| self.trust_manager(n)),
            cluster_trust_bundle: map
                .take("clusterTrustBundle")
                .and_then(|n| self.cluster_trust_bundle(n)),
            openshift: map.take("openshift").and_then(|n| self.openshift(n)),
            talos: map.take("talos").and_then(|n| self.talos(n)),
            bottlerocket: map.take("bottlerocket").and_then(|n| {
                const WHAT: &str = "spec.targets.bottlerocket";
                let map = self.map(n, WHAT)?;
                let span = map.span;
                self.finish(map, WHAT);
                Some(BottlerocketTarget { span })
            }),
            k3s: map.take("k3s").and_then(|n| self.k3s(n)),
            gke: map.take("gke").and_then(|n| self.gke(n)),
        }
    }

    fn trust_manager(&mut self, node: &MarkedYaml) -> Option<TrustManagerTarget> {
        const WHAT: &str = "spec.targets.trustManager";
        let mut map = self.map(node, WHAT)?;
        let name = self.opt_string(&mut map, "name", WHAT);
        let key = self
            .opt_string(&mut map, "key", WHAT)
            .unwrap_or(Spanned::new("ca-certificates.crt".into(), map.span));
        let use_default_cas = self
            .opt_bool(&mut map, "useDefaultCAs", WHAT)
            .unwrap_or(Spanned::new(false, map.span));
        let (mut jks_key, mut pkcs12_key) = (None, None);
        if let Some(formats) = map.take("additionalFormats") {
            const FORMATS: &str = "spec.targets.trustManager.additionalFormats";
            if let Some(mut f) = self.map(formats, FORMATS) {
                jks_key = self.format_key(&mut f, "jks");
                pkcs12_key = self.format_key(&mut f, "pkcs12");
                self.finish(f, FORMATS);
            }
        }
        let namespace_selector = match map.take("namespaceSelector") {
            Some(n) => self.string_map(n, "namespaceSelector"),
            None => Vec::new(),
        };
        let cluster_bundle = self
            .opt_bool(&mut map, "clusterBundle", WHAT)
            .unwrap_or(Spanned::new(false, map.span));
        let span = map.span;
        self.finish(map, WHAT);
        Some(TrustManagerTarget {
            name,
            key,
            use_default_cas,
            jks_key,
            pkcs12_key,
            namespace_selector,
            cluster_bundle,
            span,
        })
    }

    /// `additionalFormats.<format>: {key: …}`.
    fn format_key(&mut self, formats: &mut Map, format: &str) -> Option<Spanned<String>> {
        let what = format!("spec.targets.trustManager.additionalFormats.{format}");
        let mut map = self.map(formats.take(format)?, &what)?;
        let key = self.req_string(&mut map, "key", &what);
        self.finish(map, &what);
        key
    }

    fn cluster_trust_bundle(&mut self, node: &MarkedYaml) -> Option<ClusterTrustBundleTarget> {
        const WHAT: &str = "spec.targets.clusterTrustBundle";
        let mut map = self.map(node, WHAT)?;
        let signer_name = self.opt_string(&mut map, "signerName", WHAT);
        let name = self.opt_string(&mut map, "name", WHAT);
        let span = map.span;
        self.finish(map, WHAT);
        Some(ClusterTrustBundleTarget {
            signer_name,
            name,
            span,
        })
    }

    fn openshift(&mut self, node: &MarkedYaml) -> Option<OpenShiftTarget> {
        const WHAT: &str = "spec.targets.openshift";
        let mut map = self.map(node, WHAT)?;
        let registry_config_map = self.opt_string(&mut map, "registryConfigMap", WHAT);
        let span = map.span;
        self.finish(map, WHAT);
        Some(OpenShiftTarget {
            registry_config_map,
            span,
        })
    }

    fn k3s(&mut self, node: &MarkedYaml) -> Option<K3sTarget> {
        const WHAT: &str = "spec.targets.k3s";
        let mut map = self.map(node, WHAT)?;
        let distribution = self.opt_keyword(&mut map, "distribution", WHAT, K3sDistribution::K3s);
        let span = map.span;
        self.finish(map, WHAT);
        Some(K3sTarget { distribution, span })
    }

    fn gke(&mut self, node: &MarkedYaml) -> Option<GkeTarget> {
        const WHAT: &str = "spec.targets.gke";
        let mut map = self.map(node, WHAT)?;
        let project = self.req_string(&mut map, "project", WHAT);
        let cluster = self.req_string(&mut map, "cluster", WHAT);
        let location = self.req_string(&mut map, "location", WHAT);
        let span = map.span;
        self.finish(map, WHAT);
        Some(GkeTarget {
            project: project?,
            cluster: cluster?,
            location: location?,
            span,
        })
    }

    fn talos(&mut self, node: &MarkedYaml) -> Option<TalosTarget> {
        const WHAT: &str = "spec.targets.talos";
        let mut map = self.map(node, WHAT)?;
        let talos_version = match self.req_string(&mut map, "talosVersion", WHAT) {
            Some(v) => {
                let parsed = TalosVersion::parse(&v.value);
                if parsed.is_none() {
                    self.error(
                        Code::Ct006,
                        v.span,
                        format!("talosVersion `{}` is not a Talos release", v.value),
                    )
                    .help = Some(
                        "write the oldest Talos release of the cluster as `1.12` (major.minor)"
                            .into(),
                    );
                }
                Spanned::new(parsed, v.span)
            }
            None => Spanned::new(None, map.span),
        };
        let nodes = self.opt_string_list(&mut map, "nodes", "spec.targets.talos.nodes");
        let span = map.span;
        self.finish(map, WHAT);
        Some(TalosTarget {
            talos_version,
            nodes,
            span,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::span::SourceFile;

    fn parse(targets: &str) -> (Option<crate::config::TrustConfig>, Vec<String>) {
        let text = format!(
            "apiVersion: catrust.dev/v1alpha1\nkind: TrustConfig\nmetadata:\n  name: corp\nspec:\n  authorities:\n    - name: a\n      file: a.pem\n  targets:\n{targets}"
        );
        let (config, diags) = super::super::parse(&SourceFile::new("trust.yaml", text));
        let shown = diags
            .iter()
            .map(|d| format!("{} {} {:?}", d.code, d.message, d.help))
            .collect();
        (config, shown)
    }

    #[test]
    fn every_platform_target_parses_with_defaults() {
        let (config, diags) = parse(
            "    trustManager: {}\n    clusterTrustBundle: {}\n    openshift: {}\n    talos:\n      talosVersion: \"1.12\"\n",
        );
        assert!(diags.is_empty(), "{diags:?}");
        let p = config.unwrap().targets.platforms;
        let tm = p.trust_manager.unwrap();
        assert_eq!(tm.key.value, "ca-certificates.crt");
        assert!(!tm.use_default_cas.value && !tm.cluster_bundle.value);
        assert!(p.cluster_trust_bundle.unwrap().signer_name.is_none());
        assert!(p.openshift.unwrap().registry_config_map.is_none());
        assert_eq!(
            p.talos.unwrap().talos_version.value.unwrap().to_string(),
            "1.12"
        );
    }

    #[test]
    fn unknown_fields_get_suggestions_at_every_level() {
        let (_, diags) = parse(
            "    trustManger: {}\n    trustManager:\n      usedefaultCAs: true\n      additionalFormats:\n        jks: {keys: a.jks}\n        p12: {}\n    talos: {talosVersion: \"1.x\"}\n",
        );
        let all = diags.join("\n");
        for expected in [
            "unknown field `trustManger` in `spec.targets` Some(\"did you mean `trustManager`?\")",
            "unknown field `usedefaultCAs` in `spec.targets.trustManager` Some(\"did you mean `useDefaultCAs`?\")",
            "unknown field `keys` in `spec.targets.trustManager.additionalFormats.jks` Some(\"did you mean `key`?\")",
            "missing required field `key` in `spec.targets.trustManager.additionalFormats.jks`",
            "unknown field `p12` in `spec.targets.trustManager.additionalFormats`",
            "CT006 talosVersion `1.x` is not a Talos release",
        ] {
            assert!(all.contains(expected), "{expected}\nnot in\n{all}");
        }
    }
}
