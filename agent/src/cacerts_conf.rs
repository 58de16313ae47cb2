//! Debian distrust: `etc/ca-certificates.conf` deselects a system certificate by
//! turning its line `X` into `!X` (a plain `!X` beside a kept `X` would not work:
//! `update-ca-certificates` removes `!` entries first, then adds every selected line).
//! Each changed line is preceded by a marker comment that names the fingerprint and
//! what the line was, so a revert is exact even if the state record was lost.

const MARK: &str = "# managed by catrust-agent: distrust sha256 ";

/// Reverts every marked change in `content`.
pub fn revert(content: &str) -> String {
    let lines: Vec<&str> = content.lines().collect();
    let mut out: Vec<String> = Vec::with_capacity(lines.len());
    let mut i = 0;
    while i < lines.len() {
        if let Some(rest) = lines[i].strip_prefix(MARK) {
            // "<fp> replaced <X>" or "<fp> added"
            let next = lines.get(i + 1).copied();
            if let Some((_, how)) = rest.split_once(' ') {
                if let Some(x) = how.strip_prefix("replaced ") {
                    if next == Some(format!("!{x}").as_str()) {
                        out.push(x.to_owned());
                        i += 2;
                        continue;
                    }
                } else if how == "added" && next.is_some_and(|n| n.starts_with('!')) {
                    i += 2;
                    continue;
                }
            }
            // A marker whose line was changed by someone else: drop only the marker.
            i += 1;
            continue;
        }
        out.push(lines[i].to_owned());
        i += 1;
    }
    join(out, content)
}

/// Deselects each `(fingerprint, path relative to usr/share/ca-certificates)`.
/// Returns the new text and the fingerprints it changed a line for.
pub fn ensure(content: &str, wanted: &[(String, String)]) -> (String, Vec<(String, String)>) {
    let mut out: Vec<String> = content.lines().map(str::to_owned).collect();
    let mut changed = Vec::new();
    for (fp, rel) in wanted {
        let neg = format!("!{rel}");
        if let Some(i) = out.iter().position(|l| l == rel) {
            out[i] = neg;
            out.insert(i, format!("{MARK}{fp} replaced {rel}"));
            changed.push((fp.clone(), neg_line(rel)));
        } else if !out.contains(&neg) {
            out.push(format!("{MARK}{fp} added"));
            out.push(neg);
            changed.push((fp.clone(), neg_line(rel)));
        }
    }
    (join(out, content), changed)
}

fn neg_line(rel: &str) -> String {
    format!("!{rel}")
}

fn join(lines: Vec<String>, original: &str) -> String {
    let mut s = lines.join("\n");
    if original.ends_with('\n') || original.is_empty() && !s.is_empty() {
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distrust_round_trips() {
        let conf = "# header\nmozilla/A.crt\nmozilla/B.crt\n";
        let wanted = vec![
            ("aa".to_string(), "mozilla/B.crt".to_string()),
            ("cc".to_string(), "other/C.crt".to_string()),
        ];
        let (edited, changed) = ensure(conf, &wanted);
        assert_eq!(changed.len(), 2);
        assert!(edited.contains("\n!mozilla/B.crt\n") && !edited.contains("\nmozilla/B.crt\n"));
        assert!(edited.ends_with("!other/C.crt\n"));
        assert_eq!(revert(&edited), conf);
        // Already deselected by the admin: nothing to record.
        let (again, changed) = ensure("!mozilla/B.crt\n", &wanted[..1]);
        assert_eq!((again.as_str(), changed.len()), ("!mozilla/B.crt\n", 0));
    }
}
