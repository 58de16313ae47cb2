//! `trust.yaml` text → [`TrustConfig`], reporting every problem at once.
//!
//! The YAML is read into a node tree that keeps positions (saphyr's `MarkedYaml`) and
//! walked by hand rather than through serde derive, because a derive stops at the
//! first problem, while users want every unknown field, missing field and bad value
//! of the file in one run, each with its line and column.

use catrust_bundle::ContainerdPolicy;
use saphyr::{LoadableYamlNode, MarkedYaml, Scalar, YamlData};

use crate::azure::NameKind;
use crate::config::*;
use crate::diag::Diagnostic;
use crate::rules::Code;
use crate::span::{CharIndex, SourceFile, Span, Spanned};

mod platforms;

/// Parses `file` (a trust.yaml). Returns the model when the structure was complete
/// enough to build one, and every finding.
pub fn parse(file: &SourceFile) -> (Option<TrustConfig>, Vec<Diagnostic>) {
    let mut cx = Cx {
        file: &file.name,
        text: &file.text,
        index: CharIndex::new(&file.text),
        diagnostics: Vec::new(),
    };
    let config = cx.document();
    (config, cx.diagnostics)
}

/// `spec:` as parsed, before `TrustConfig` joins it with `metadata.name`.
struct Spec {
    authorities: Vec<AuthoritySpec>,
    distrust: Vec<DistrustSpec>,
    min_overlap: Spanned<u64>,
    expiry_warning: Spanned<u64>,
    targets: Targets,
}

struct Cx<'a> {
    file: &'a str,
    text: &'a str,
    index: CharIndex<'a>,
    diagnostics: Vec<Diagnostic>,
}

/// A mapping being read: fields are taken one by one; what is left is unknown.
struct Map<'n, 'i> {
    entries: Vec<(String, Span, &'n MarkedYaml<'i>)>,
    taken: Vec<bool>,
    /// Every field name asked for, in the order asked, present or not: the fields this
    /// mapping takes, for the "did you mean" and "`x` takes: …" hints of [`Cx::finish`].
    known: Vec<String>,
    span: Span,
}

impl<'n, 'i> Map<'n, 'i> {
    fn new(entries: Vec<(String, Span, &'n MarkedYaml<'i>)>, span: Span) -> Self {
        Map {
            taken: vec![false; entries.len()],
            entries,
            known: Vec::new(),
            span,
        }
    }

    fn take(&mut self, key: &str) -> Option<&'n MarkedYaml<'i>> {
        if !self.known.iter().any(|k| k == key) {
            self.known.push(key.to_string());
        }
        let i = self.entries.iter().position(|(k, _, _)| k == key)?;
        self.taken[i] = true;
        Some(self.entries[i].2)
    }
}

fn unwrap_tags<'n, 'i>(mut node: &'n MarkedYaml<'i>) -> &'n MarkedYaml<'i> {
    while let YamlData::Tagged(_, inner) = &node.data {
        node = inner;
    }
    node
}

fn type_name(node: &MarkedYaml) -> &'static str {
    match &unwrap_tags(node).data {
        YamlData::Value(Scalar::Null) => "null",
        YamlData::Value(Scalar::Boolean(_)) => "a boolean",
        YamlData::Value(Scalar::Integer(_)) => "an integer",
        YamlData::Value(Scalar::FloatingPoint(_)) => "a number",
        YamlData::Value(Scalar::String(_)) | YamlData::Representation(..) => "a string",
        YamlData::Sequence(_) => "a list",
        YamlData::Mapping(_) => "a mapping",
        YamlData::Alias(_) => "an alias",
        YamlData::Tagged(..) | YamlData::BadValue => "an unknown value",
    }
}

/// The closest known field name, for "did you mean" hints.
pub(crate) fn suggest<'k>(unknown: &str, known: &[&'k str]) -> Option<&'k str> {
    let lower = unknown.to_ascii_lowercase();
    known
        .iter()
        .map(|k| {
            let score = if k.to_ascii_lowercase() == lower {
                1.0
            } else {
                strsim::jaro_winkler(&lower, &k.to_ascii_lowercase())
            };
            (score, *k)
        })
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}

/// A closed set of spellings a trust.yaml string field takes, read by [`Cx::keyword`].
trait Keyword: Copy + 'static {
    /// The field as messages name it ("containerd policy").
    const LABEL: &'static str;
    fn all() -> &'static [Self];
    fn spelling(self) -> &'static str;
}

/// A type whose spellings are its `ALL` and `as_str` is a [`Keyword`].
macro_rules! keyword {
    ($type:ty, $label:literal) => {
        impl Keyword for $type {
            const LABEL: &'static str = $label;
            fn all() -> &'static [Self] {
                &Self::ALL
            }
            fn spelling(self) -> &'static str {
                self.as_str()
            }
        }
    };
}

keyword!(TargetKind, "target");
keyword!(ContainerdPolicy, "containerd policy");
keyword!(K3sDistribution, "distribution");

impl<'a> Cx<'a> {
    fn span(&self, node: &MarkedYaml) -> Span {
        let start = self.index.byte(node.span.start.index());
        let mut end = self.index.byte(node.span.end.index());
        // Block collections end where the next token starts; trim trailing blanks so the
        // span underlines the value, not the indentation that follows it.
        while end > start && self.text.as_bytes()[end - 1].is_ascii_whitespace() {
            end -= 1;
        }
        Span::new(start, end)
    }

    fn error(&mut self, code: Code, span: Span, message: impl Into<String>) -> &mut Diagnostic {
        self.diagnostics
            .push(Diagnostic::new(code, message).at(self.file, span));
        self.diagnostics.last_mut().expect("just pushed")
    }

    fn document(&mut self) -> Option<TrustConfig> {
        if let Some(at) = too_deep(self.text) {
            let at = self.index.byte(at);
            let end = self.text[at..]
                .find('\n')
                .map_or(self.text.len(), |i| at + i)
                .min(at + 80);
            let end = crate::span::floor_char_boundary(self.text, end);
            self.error(
                Code::Ct001,
                Span::new(at, end.max(at)),
                format!("nesting deeper than {MAX_DEPTH} levels"),
            )
            .help = Some(format!(
                "trust.yaml needs fewer than 10 levels; a file nested deeper than {MAX_DEPTH} is refused before it is read"
            ));
            return None;
        }
        let docs = match MarkedYaml::load_from_str(self.text) {
            Ok(docs) => docs,
            Err(e) => {
                let at = self.index.byte(e.marker().index());
                let end = self.text[at..]
                    .find('\n')
                    .map_or(self.text.len(), |i| at + i);
                self.error(
                    Code::Ct001,
                    Span::new(at, end.max(at)),
                    e.info().to_string(),
                );
                return None;
            }
        };
        match docs.len() {
            0 => {
                self.error(Code::Ct003, Span::default(), "trust.yaml is empty")
                    .help = Some(format!(
                    "start with `apiVersion: {API_VERSION}` and `kind: {KIND}`, or run `catrust init`"
                ));
                None
            }
            1 => self.root(&docs[0]),
            _ => {
                let span = self.span(&docs[1]);
                self.error(
                    Code::Ct001,
                    span,
                    "trust.yaml holds more than one YAML document",
                )
                .help = Some("keep one TrustConfig per file; remove the `---` separator".into());
                None
            }
        }
    }

    fn map<'n, 'i>(&mut self, node: &'n MarkedYaml<'i>, what: &str) -> Option<Map<'n, 'i>> {
        let node = unwrap_tags(node);
        let span = self.span(node);
        let mapping = match &node.data {
            YamlData::Mapping(m) => m,
            YamlData::Value(Scalar::Null) => return Some(Map::new(Vec::new(), span)),
            _ => {
                let found = type_name(node);
                self.error(
                    Code::Ct007,
                    span,
                    format!("`{what}` must be a mapping, found {found}"),
                );
                return None;
            }
        };
        let mut entries = Vec::with_capacity(mapping.len());
        for (k, v) in mapping {
            let key_span = self.span(k);
            match &unwrap_tags(k).data {
                YamlData::Value(Scalar::String(s)) => entries.push((s.to_string(), key_span, v)),
                _ => {
                    let found = type_name(k);
                    self.error(
                        Code::Ct007,
                        key_span,
                        format!("keys of `{what}` must be strings, found {found}"),
                    );
                }
            }
        }
        Some(Map::new(entries, span))
    }

    /// Reports every field of `map` that was not taken (CT002), with a suggestion from
    /// the fields the reader asked for.
    fn finish(&mut self, map: Map, what: &str) {
        let known: Vec<&str> = map.known.iter().map(String::as_str).collect();
        for (i, (key, span, _)) in map.entries.iter().enumerate() {
            if map.taken[i] {
                continue;
            }
            let message = format!("unknown field `{key}` in `{what}`");
            let help = match suggest(key, &known) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!("`{what}` takes: {}", known.join(", ")),
            };
            self.error(Code::Ct002, *span, message).help = Some(help);
        }
    }

    fn missing(&mut self, span: Span, what: &str, field: &str) {
        self.error(
            Code::Ct003,
            span,
            format!("missing required field `{field}` in `{what}`"),
        );
    }

    fn string(&mut self, node: &MarkedYaml, what: &str) -> Option<Spanned<String>> {
        let node = unwrap_tags(node);
        let span = self.span(node);
        match &node.data {
            YamlData::Value(Scalar::String(s)) => Some(Spanned::new(s.to_string(), span)),
            YamlData::Representation(s, _, _) => Some(Spanned::new(s.to_string(), span)),
            // Unquoted digits (a pin, a name like `2024`) are numbers to YAML but text to
            // us: take exactly what was written.
            YamlData::Value(Scalar::Integer(_) | Scalar::FloatingPoint(_)) => Some(Spanned::new(
                self.text[span.start..span.end].to_string(),
                span,
            )),
            _ => {
                let found = type_name(node);
                self.error(
                    Code::Ct007,
                    span,
                    format!("`{what}` must be a string, found {found}"),
                );
                None
            }
        }
    }

    fn boolean(&mut self, node: &MarkedYaml, what: &str) -> Option<Spanned<bool>> {
        let node = unwrap_tags(node);
        let span = self.span(node);
        match &node.data {
            YamlData::Value(Scalar::Boolean(b)) => Some(Spanned::new(*b, span)),
            _ => {
                let found = type_name(node);
                self.error(
                    Code::Ct007,
                    span,
                    format!("`{what}` must be true or false, found {found}"),
                )
                .help = Some("write `true` or `false` without quotes".into());
                None
            }
        }
    }

    fn list<'n, 'i>(&mut self, node: &'n MarkedYaml<'i>, what: &str) -> Vec<&'n MarkedYaml<'i>> {
        let node = unwrap_tags(node);
        match &node.data {
            YamlData::Sequence(items) => items.iter().collect(),
            YamlData::Value(Scalar::Null) => Vec::new(),
            _ => {
                let span = self.span(node);
                let found = type_name(node);
                self.error(
                    Code::Ct007,
                    span,
                    format!("`{what}` must be a list, found {found}"),
                );
                Vec::new()
            }
        }
    }

    fn string_list(&mut self, node: &MarkedYaml, what: &str) -> Vec<Spanned<String>> {
        self.list(node, what)
            .into_iter()
            .filter_map(|item| self.string(item, what))
            .collect()
    }

    fn opt_string(&mut self, map: &mut Map, key: &str, what: &str) -> Option<Spanned<String>> {
        let node = map.take(key)?;
        self.string(node, &format!("{what}.{key}"))
    }

    fn req_string(&mut self, map: &mut Map, key: &str, what: &str) -> Option<Spanned<String>> {
        match map.take(key) {
            Some(node) => self.string(node, &format!("{what}.{key}")),
            None => {
                self.missing(map.span, what, key);
                None
            }
        }
    }

    fn opt_bool(&mut self, map: &mut Map, key: &str, what: &str) -> Option<Spanned<bool>> {
        let node = map.take(key)?;
        self.boolean(node, &format!("{what}.{key}"))
    }

    /// `text` as one of `T`'s spellings, or CT006 naming them all.
    fn keyword<T: Keyword>(&mut self, text: &Spanned<String>) -> Option<Spanned<T>> {
        if let Some(found) = T::all().iter().find(|k| k.spelling() == text.value) {
            return Some(Spanned::new(*found, text.span));
        }
        let all: Vec<&str> = T::all().iter().map(|k| k.spelling()).collect();
        let message = format!(
            "{} `{}` is not one of {}",
            T::LABEL,
            text.value.escape_debug(),
            all.join(", ")
        );
        self.error(Code::Ct006, text.span, message);
        None
    }

    /// The optional field `key` as `T`; `default` (at the mapping) when it is absent,
    /// at the value when it is misspelled.
    fn opt_keyword<T: Keyword>(
        &mut self,
        map: &mut Map,
        key: &str,
        what: &str,
        default: T,
    ) -> Spanned<T> {
        match self.opt_string(map, key, what) {
            Some(text) => self
                .keyword(&text)
                .unwrap_or(Spanned::new(default, text.span)),
            None => Spanned::new(default, map.span),
        }
    }

    /// The optional list of strings `key`; empty when absent. `label` names it in messages.
    fn opt_string_list(&mut self, map: &mut Map, key: &str, label: &str) -> Vec<Spanned<String>> {
        match map.take(key) {
            Some(node) => self.string_list(node, label),
            None => Vec::new(),
        }
    }

    fn duration(&mut self, map: &mut Map, key: &str, what: &str, default: u64) -> Spanned<u64> {
        let Some(text) = self.opt_string(map, key, what) else {
            return Spanned::new(default, map.span);
        };
        match parse_duration(&text.value) {
            Some(secs) => Spanned::new(secs, text.span),
            None => {
                self.error(
                    Code::Ct006,
                    text.span,
                    format!("`{what}.{key}`: `{}` is not a duration", text.value),
                )
                .help = Some("write a number with s, m, h or d, such as `72h` or `30d`".into());
                Spanned::new(default, text.span)
            }
        }
    }

    fn root(&mut self, node: &MarkedYaml) -> Option<TrustConfig> {
        let mut map = self.map(node, "trust.yaml")?;
        let api = self.req_string(&mut map, "apiVersion", "trust.yaml");
        if let Some(api) = &api {
            if api.value != API_VERSION {
                self.error(
                    Code::Ct006,
                    api.span,
                    format!("apiVersion `{}` is not supported", api.value),
                )
                .help = Some(format!("use `apiVersion: {API_VERSION}`"));
            }
        }
        let kind = self.req_string(&mut map, "kind", "trust.yaml");
        if let Some(kind) = &kind {
            if kind.value != KIND {
                self.error(
                    Code::Ct006,
                    kind.span,
                    format!("kind `{}` is not {KIND}", kind.value),
                )
                .help = Some(format!("use `kind: {KIND}`"));
            }
        }
        let name = match map.take("metadata") {
            Some(node) => self.metadata(node),
            None => {
                self.missing(map.span, "trust.yaml", "metadata");
                None
            }
        };
        let spec = match map.take("spec") {
            Some(node) => self.spec(node),
            None => {
                self.missing(map.span, "trust.yaml", "spec");
                None
            }
        };
        self.finish(map, "trust.yaml");
        let Spec {
            authorities,
            distrust,
            min_overlap,
            expiry_warning,
            targets,
        } = spec?;
        let (_, _) = (api?, kind?);
        Some(TrustConfig {
            name: name?,
            authorities,
            distrust,
            min_overlap,
            expiry_warning,
            targets,
        })
    }

    fn metadata(&mut self, node: &MarkedYaml) -> Option<Spanned<String>> {
        let mut map = self.map(node, "metadata")?;
        let name = self.req_string(&mut map, "name", "metadata");
        // Users copy whole Kubernetes metadata blocks; labels and annotations are harmless.
        map.take("labels");
        map.take("annotations");
        self.finish(map, "metadata");
        let name = name?;
        let valid =
            catrust_bundle::is_dns_label(&name.value) && name.value.len() <= MAX_CONFIG_NAME;
        if !valid {
            self.error(
                Code::Ct004,
                name.span,
                format!(
                    "metadata.name `{}` is not a DNS label of at most {MAX_CONFIG_NAME} characters",
                    name.value
                ),
            )
            .help = Some("use lowercase letters, digits and `-`, such as `corp`".into());
        }
        Some(name)
    }

    fn spec(&mut self, node: &MarkedYaml) -> Option<Spec> {
        let mut map = self.map(node, "spec")?;
        let authorities = match map.take("authorities") {
            Some(list) => {
                let items = self.list(list, "spec.authorities");
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    if let Some(a) = self.authority(item) {
                        out.push(a);
                    }
                }
                Some(out)
            }
            None => {
                self.missing(map.span, "spec", "authorities");
                None
            }
        };
        let distrust = match map.take("distrust") {
            Some(list) => self
                .list(list, "spec.distrust")
                .into_iter()
                .filter_map(|item| self.distrust(item))
                .collect(),
            None => Vec::new(),
        };
        let min_overlap = match map.take("rotation") {
            Some(node) => self.rotation(node, map.span),
            None => Spanned::new(DEFAULT_MIN_OVERLAP, map.span),
        };
        let expiry_warning =
            self.duration(&mut map, "expiryWarning", "spec", DEFAULT_EXPIRY_WARNING);
        let targets = match map.take("targets") {
            Some(node) => self.targets(node),
            None => {
                self.missing(map.span, "spec", "targets");
                None
            }
        };
        self.finish(map, "spec");
        Some(Spec {
            authorities: authorities?,
            distrust,
            min_overlap,
            expiry_warning,
            targets: targets?,
        })
    }

    fn rotation(&mut self, node: &MarkedYaml, parent: Span) -> Spanned<u64> {
        let Some(mut map) = self.map(node, "spec.rotation") else {
            return Spanned::new(DEFAULT_MIN_OVERLAP, parent);
        };
        let overlap = self.duration(&mut map, "minOverlap", "spec.rotation", DEFAULT_MIN_OVERLAP);
        self.finish(map, "spec.rotation");
        overlap
    }

    fn authority(&mut self, node: &MarkedYaml) -> Option<AuthoritySpec> {
        const WHAT: &str = "spec.authorities[]";
        let mut map = self.map(node, WHAT)?;
        let name = self.req_string(&mut map, "name", WHAT);
        let file = self.opt_string(&mut map, "file", WHAT);
        let pem = self.opt_string(&mut map, "pem", WHAT);
        let sha256 = self.pins(&mut map);
        let registries = self.opt_string_list(&mut map, "registries", "registries");
        let pools = self.opt_string_list(&mut map, "pools", "pools");
        let replaces = self.opt_string(&mut map, "replaces", WHAT);
        let targets = self
            .opt_string_list(&mut map, "targets", "targets")
            .iter()
            .filter_map(|t| self.keyword(t))
            .collect();
        let span = map.span;
        self.finish(map, WHAT);
        let name = name?;
        let source = self.cert_source(&name, file, pem)?;
        Some(AuthoritySpec {
            name,
            source,
            sha256,
            registries,
            pools,
            replaces,
            targets,
            span,
        })
    }

    /// `sha256:` as one pin or a list of pins.
    fn pins(&mut self, map: &mut Map) -> Vec<Spanned<String>> {
        match map.take("sha256") {
            Some(n) if matches!(unwrap_tags(n).data, YamlData::Sequence(_)) => {
                self.string_list(n, "sha256")
            }
            Some(n) => self.string(n, "sha256").into_iter().collect(),
            None => Vec::new(),
        }
    }

    /// Exactly one of `file` and `pem` (CT003 otherwise).
    fn cert_source(
        &mut self,
        name: &Spanned<String>,
        file: Option<Spanned<String>>,
        pem: Option<Spanned<String>>,
    ) -> Option<CertSource> {
        match (file, pem) {
            (Some(f), None) => Some(CertSource::File(f)),
            (None, Some(p)) => Some(CertSource::Pem(p)),
            (Some(_), Some(p)) => {
                self.error(
                    Code::Ct003,
                    p.span,
                    format!("authority `{}` has both `file` and `pem`", name.value),
                )
                .help = Some("keep exactly one of `file` and `pem`".into());
                None
            }
            (None, None) => {
                self.error(
                    Code::Ct003,
                    name.span,
                    format!("authority `{}` has neither `file` nor `pem`", name.value),
                )
                .help = Some(
                    "add `file: path/to/ca.pem` (relative to trust.yaml) or inline `pem: |`".into(),
                );
                None
            }
        }
    }

    fn distrust(&mut self, node: &MarkedYaml) -> Option<DistrustSpec> {
        const WHAT: &str = "spec.distrust[]";
        let mut map = self.map(node, WHAT)?;
        let sha256 = self.req_string(&mut map, "sha256", WHAT);
        let reason = self.opt_string(&mut map, "reason", WHAT);
        let span = map.span;
        self.finish(map, WHAT);
        Some(DistrustSpec {
            sha256: sha256?,
            reason,
            span,
        })
    }

    fn targets(&mut self, node: &MarkedYaml) -> Option<Targets> {
        let mut map = self.map(node, "spec.targets")?;
        let aks = map.take("aks").and_then(|n| self.aks(n));
        let agent = map.take("agent").and_then(|n| self.agent(n));
        let platforms = self.platforms(&mut map);
        let span = map.span;
        let empty = map.entries.is_empty();
        let known = map.known.join(", ");
        self.finish(map, "spec.targets");
        if empty {
            self.error(Code::Ct003, span, "`spec.targets` names no target")
                .help = Some(format!("add one of {known} under `targets`"));
        }
        Some(Targets {
            aks,
            agent,
            platforms,
            span,
        })
    }

    fn aks(&mut self, node: &MarkedYaml) -> Option<AksTarget> {
        const WHAT: &str = "spec.targets.aks";
        let mut map = self.map(node, WHAT)?;
        let resource_group = self.req_string(&mut map, "resourceGroup", WHAT);
        let cluster = self.req_string(&mut map, "cluster", WHAT);
        let certificates_file = self
            .opt_bool(&mut map, "certificatesFile", WHAT)
            .unwrap_or(Spanned::new(true, map.span));
        // Off by default: nothing reads the Secret on a current cluster (CT306).
        let secret = self
            .opt_bool(&mut map, "secret", WHAT)
            .unwrap_or(Spanned::new(false, map.span));
        let node_pools: Vec<NodePool> = match map.take("nodePools") {
            Some(list) => self
                .list(list, "nodePools")
                .into_iter()
                .filter_map(|n| self.node_pool(n))
                .collect(),
            None => Vec::new(),
        };
        if let Some(rg) = &resource_group {
            self.azure_name(rg, "resourceGroup", NameKind::ResourceGroup);
        }
        if let Some(c) = &cluster {
            self.azure_name(c, "cluster", NameKind::Cluster);
        }
        for (i, pool) in node_pools.iter().enumerate() {
            if node_pools[..i]
                .iter()
                .any(|p| p.name.value == pool.name.value)
            {
                self.error(
                    Code::Ct305,
                    pool.name.span,
                    format!(
                        "node pool `{}` is declared twice",
                        pool.name.value.escape_debug()
                    ),
                )
                .help = Some("declare each node pool once".into());
            }
        }
        let span = map.span;
        self.finish(map, WHAT);
        Some(AksTarget {
            resource_group: resource_group?,
            cluster: cluster?,
            certificates_file,
            secret,
            node_pools,
            span,
        })
    }

    fn node_pool(&mut self, node: &MarkedYaml) -> Option<NodePool> {
        const WHAT: &str = "spec.targets.aks.nodePools[]";
        let mut map = self.map(node, WHAT)?;
        let name = self.req_string(&mut map, "name", WHAT);
        let os_type = self
            .opt_string(&mut map, "osType", WHAT)
            .unwrap_or(Spanned::new("Linux".into(), map.span));
        if !matches!(os_type.value.as_str(), "Linux" | "Windows") {
            self.error(
                Code::Ct006,
                os_type.span,
                format!("osType `{}` is not Linux or Windows", os_type.value),
            );
        }
        let custom_ca_trust = self.opt_bool(&mut map, "customCATrust", WHAT);
        let span = map.span;
        self.finish(map, WHAT);
        if let Some(name) = &name {
            self.azure_name(name, "nodePools[].name", NameKind::NodePool);
        }
        Some(NodePool {
            name: name?,
            os_type,
            custom_ca_trust,
            span,
        })
    }

    /// CT305 unless `name` follows Azure's rule for its kind. The message escapes the
    /// value: it may hold a newline or terminal control characters.
    fn azure_name(&mut self, name: &Spanned<String>, field: &str, kind: NameKind) {
        if !kind.accepts(&name.value) {
            let shown: String = name.value.chars().take(100).collect();
            self.error(
                Code::Ct305,
                name.span,
                format!(
                    "`{field}` \"{}\" is not a valid Azure name",
                    shown.escape_debug()
                ),
            )
            .help = Some(format!("Azure accepts {}", kind.rule()));
        }
    }

    fn agent(&mut self, node: &MarkedYaml) -> Option<AgentTarget> {
        const WHAT: &str = "spec.targets.agent";
        let mut map = self.map(node, WHAT)?;
        let namespace = self
            .opt_string(&mut map, "namespace", WHAT)
            .unwrap_or(Spanned::new("kube-system".into(), map.span));
        let image = self.req_string(&mut map, "image", WHAT);
        let containerd =
            self.opt_keyword(&mut map, "containerd", WHAT, ContainerdPolicy::default());
        let max_unavailable = match self.opt_string(&mut map, "maxUnavailable", WHAT) {
            Some(s) => {
                match parse_int_or_percent(&s.value) {
                    Some(v) => Spanned::new(v, s.span),
                    None => {
                        self.error(
                        Code::Ct006,
                        s.span,
                        format!("maxUnavailable `{}` is not a positive number or percentage (1%..100%)", s.value),
                    );
                        Spanned::new(IntOrPercent::Percent(10), s.span)
                    }
                }
            }
            None => Spanned::new(IntOrPercent::Percent(10), map.span),
        };
        let pool_label = self
            .opt_string(&mut map, "poolLabel", WHAT)
            .unwrap_or(Spanned::new(
                "kubernetes.azure.com/agentpool".into(),
                map.span,
            ));
        let node_selector = match map.take("nodeSelector") {
            Some(n) => self.string_map(n, "nodeSelector"),
            None => Vec::new(),
        };
        let span = map.span;
        self.finish(map, WHAT);
        Some(AgentTarget {
            namespace,
            image: image?,
            containerd,
            max_unavailable,
            pool_label,
            node_selector,
            span,
        })
    }

    fn string_map(
        &mut self,
        node: &MarkedYaml,
        what: &str,
    ) -> Vec<(Spanned<String>, Spanned<String>)> {
        let Some(mut map) = self.map(node, what) else {
            return Vec::new();
        };
        let keys: Vec<(String, Span)> = map
            .entries
            .iter()
            .map(|(k, s, _)| (k.clone(), *s))
            .collect();
        let mut out = Vec::new();
        for (key, key_span) in keys {
            let node = map.take(&key).expect("key listed");
            if let Some(value) = self.string(node, what) {
                out.push((Spanned::new(key, key_span), value));
            }
        }
        out
    }
}

/// The deepest nesting of mappings and sequences trust.yaml may have. Its own
/// structure needs 6 levels; the limit leaves room for copied Kubernetes metadata.
pub const MAX_DEPTH: usize = 64;

/// The character index of the first collection nested deeper than [`MAX_DEPTH`].
/// Reads saphyr-parser's events (a loop with an explicit state stack, no recursion),
/// so a hostile file never becomes a tree that saphyr would build or drop
/// recursively. Syntax errors are left to the tree loader, which reports them.
fn too_deep(text: &str) -> Option<usize> {
    use saphyr_parser::{Event, Parser};
    let mut depth = 0usize;
    for event in Parser::new_from_str(text) {
        let (event, span) = event.ok()?;
        match event {
            Event::SequenceStart(..) | Event::MappingStart(..) => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Some(span.start.index());
                }
            }
            Event::SequenceEnd | Event::MappingEnd => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

fn parse_int_or_percent(s: &str) -> Option<IntOrPercent> {
    match s.strip_suffix('%') {
        Some(p) => p
            .parse::<u32>()
            .ok()
            .filter(|p| (1..=100).contains(p))
            .map(IntOrPercent::Percent),
        None => s
            .parse::<u32>()
            .ok()
            .filter(|n| *n >= 1)
            .map(IntOrPercent::Int),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> (Option<TrustConfig>, Vec<Diagnostic>) {
        parse(&SourceFile::new("trust.yaml", text))
    }

    const MINIMAL: &str = "apiVersion: catrust.dev/v1alpha1
kind: TrustConfig
metadata:
  name: corp
spec:
  authorities:
    - name: root
      file: certs/root.pem
  targets:
    aks:
      resourceGroup: rg
      cluster: c
";

    #[test]
    fn minimal_config_has_defaults() {
        let (config, diags) = parse_str(MINIMAL);
        assert!(diags.is_empty(), "{diags:?}");
        let config = config.unwrap();
        assert_eq!(config.min_overlap.value, DEFAULT_MIN_OVERLAP);
        assert_eq!(config.expiry_warning.value, DEFAULT_EXPIRY_WARNING);
        let aks = config.targets.aks.unwrap();
        assert!(aks.certificates_file.value && !aks.secret.value);
        assert_eq!(config.authorities[0].name.value, "root");
    }

    #[test]
    fn every_unknown_field_is_reported_with_a_suggestion_and_a_span() {
        let text = MINIMAL
            .replace(
                "  authorities:",
                "  authorites:\n  expiryWarnig: 3d\n  authorities:",
            )
            .replace("      file:", "      fiel: x\n      file:");
        let (_, diags) = parse_str(&text);
        let codes: Vec<_> = diags
            .iter()
            .map(|d| (d.code, d.help.clone().unwrap()))
            .collect();
        assert_eq!(codes.len(), 3, "{diags:?}");
        assert!(codes.iter().all(|(c, _)| *c == Code::Ct002));
        assert!(codes
            .iter()
            .any(|(_, h)| h == "did you mean `authorities`?"));
        assert!(codes
            .iter()
            .any(|(_, h)| h == "did you mean `expiryWarning`?"));
        assert!(codes.iter().any(|(_, h)| h == "did you mean `file`?"));
        let file = SourceFile::new("trust.yaml", text.clone());
        let d = diags.iter().find(|d| d.message.contains("fiel")).unwrap();
        let loc = d.location.as_ref().unwrap();
        assert_eq!(file.line_col(loc.span.start), (10, 7));
        assert_eq!(&text[loc.span.start..loc.span.end], "fiel");
    }

    #[test]
    fn syntax_errors_point_at_the_line() {
        let (config, diags) = parse_str("a: [1, 2\nb: c\n");
        assert!(config.is_none());
        assert_eq!(diags[0].code, Code::Ct001);
    }

    #[test]
    fn bad_values_are_coded() {
        let text = MINIMAL.replace(
            "  targets:",
            "  rotation:\n    minOverlap: 3 days\n  targets:\n    agent:\n      image: x\n      containerd: sometimes\n",
        );
        let (_, diags) = parse_str(&text);
        let codes: Vec<_> = diags.iter().map(|d| d.code).collect();
        assert!(codes.contains(&Code::Ct006), "{diags:?}");
    }

    #[test]
    fn deep_nesting_is_ct001_without_building_the_tree() {
        for depth in [MAX_DEPTH + 1, 200, 20_000, 200_000] {
            let block = format!("x-nest:\n  {}x\n", "- ".repeat(depth));
            let flow = format!("x-nest: {}x{}\n", "[".repeat(depth), "]".repeat(depth));
            for (text, style) in [(block, "block"), (flow, "flow")] {
                let (config, diags) = parse_str(&text);
                assert!(config.is_none());
                assert_eq!(diags.len(), 1, "{diags:?}");
                assert_eq!(diags[0].code, Code::Ct001);
                // saphyr's scanner stops flow nesting at 255 on its own, before any
                // event (and so before any tree) exists.
                let expected = if style == "flow" && depth > 255 {
                    "recursion limit exceeded"
                } else {
                    "nesting deeper than 64 levels"
                };
                assert_eq!(diags[0].message, expected, "{style} {depth}");
            }
        }
        let ok = format!("x:\n  {}x\n", "- ".repeat(MAX_DEPTH - 1));
        let (_, diags) = parse_str(&ok);
        assert!(diags.iter().all(|d| d.code != Code::Ct001), "{diags:?}");
    }

    #[test]
    fn file_and_pem_are_exclusive() {
        let text = MINIMAL.replace(
            "      file: certs/root.pem\n",
            "      file: a\n      pem: b\n",
        );
        let (_, diags) = parse_str(&text);
        assert_eq!(diags.len(), 1);
        assert_eq!(diags[0].code, Code::Ct003);
        let text = MINIMAL.replace("      file: certs/root.pem\n", "");
        let (_, diags) = parse_str(&text);
        assert_eq!(diags[0].code, Code::Ct003);
    }
}
