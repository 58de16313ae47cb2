//! The few Kubernetes object shapes catrust renders, as typed data serialised to YAML.
//!
//! Field order follows Kubernetes' own (`apiVersion`, `kind`, `metadata`, …) so the
//! output reads like what `kubectl` prints.

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

/// A string map that keeps insertion order (trust.yaml order for Secret keys).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderedMap(pub Vec<(String, String)>);

impl OrderedMap {
    pub fn insert(&mut self, k: impl Into<String>, v: impl Into<String>) {
        self.0.push((k.into(), v.into()));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for OrderedMap {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ObjectMeta {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(skip_serializing_if = "OrderedMap::is_empty")]
    pub labels: OrderedMap,
    #[serde(skip_serializing_if = "OrderedMap::is_empty")]
    pub annotations: OrderedMap,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Secret {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub metadata: ObjectMeta,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub immutable: Option<bool>,
    #[serde(rename = "type")]
    pub type_: &'static str,
    pub data: OrderedMap,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Kustomization {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub resources: Vec<String>,
}

/// The recommended labels every object carries.
pub fn labels(instance: &str, component: &str) -> OrderedMap {
    let mut l = OrderedMap::default();
    l.insert("app.kubernetes.io/name", "catrust");
    l.insert("app.kubernetes.io/instance", instance);
    l.insert("app.kubernetes.io/version", env!("CARGO_PKG_VERSION"));
    l.insert("app.kubernetes.io/component", component);
    l.insert("app.kubernetes.io/part-of", "catrust");
    l.insert("app.kubernetes.io/managed-by", "catrust");
    l
}

/// Serialises one object as a YAML document (no leading `---`, trailing LF). Long
/// strings (base64) stay plain scalars on one line, as `kubectl` writes them; strings
/// YAML 1.1 would read as booleans or numbers are quoted, since Kubernetes parses
/// manifests as YAML 1.1.
pub fn to_yaml(value: &impl Serialize) -> String {
    let mut options = serde_saphyr::SerializerOptions::default();
    options.prefer_block_scalars = false;
    let mut s = serde_saphyr::to_string_with_options(value, options)
        .expect("Kubernetes objects serialise to YAML");
    if !s.ends_with('\n') {
        s.push('\n');
    }
    s
}
