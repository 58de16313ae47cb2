//! `catrust inspect`: one row per certificate of some PEM files.

use serde::Serialize;

use crate::cert::{self, CertInfo};
use crate::pem;
use crate::rules::{Code, Severity};

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Row {
    pub file: String,
    pub subject: String,
    pub issuer: String,
    pub not_before: String,
    pub not_after: String,
    pub sha256: String,
    pub ca: bool,
    pub key: String,
}

impl Row {
    fn new(file: &str, i: &CertInfo) -> Self {
        Row {
            file: file.to_string(),
            subject: i.subject.clone(),
            issuer: i.issuer.clone(),
            not_before: cert::format_time(i.not_before),
            not_after: cert::format_time(i.not_after),
            sha256: i.sha256.clone(),
            ca: i.ca == Some(true),
            key: i.key.clone(),
        }
    }
}

/// The certificates of one PEM text, and the error-severity problems found reading it.
pub fn inspect_pem(name: &str, bytes: &[u8]) -> (Vec<Row>, Vec<String>) {
    let text = match pem::decode_text(bytes) {
        Ok(text) => text,
        Err(not) => {
            return (
                Vec::new(),
                vec![format!(
                    "{name}: {} {} ({})",
                    Code::Ct103,
                    not.what,
                    not.help
                )],
            )
        }
    };
    let scan = pem::scan(&text);
    let errors = scan
        .findings
        .iter()
        .filter(|f| f.code.severity() == Severity::Error)
        .map(|f| format!("{name}: {} {}", f.code, f.message))
        .collect();
    let rows = scan
        .certificates
        .iter()
        .filter_map(|c| cert::inspect(&c.der).ok())
        .map(|i| Row::new(name, &i))
        .collect();
    (rows, errors)
}

/// A plain-text table, one block per certificate (subjects are too long for columns).
pub fn table(rows: &[Row]) -> String {
    let mut out = String::new();
    for r in rows {
        out.push_str(&format!(
            "{}\n  subject   {}\n  issuer    {}\n  valid     {} .. {}\n  sha256    {}\n  ca        {}\n  key       {}\n",
            r.file, r.subject, r.issuer, r.not_before, r.not_after, r.sha256, r.ca, r.key
        ));
    }
    out
}

pub fn json(rows: &[Row]) -> String {
    let mut s = serde_json::to_string_pretty(rows).expect("rows serialise");
    s.push('\n');
    s
}
