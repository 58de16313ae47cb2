//! The one validation of a containerd registry host, used by the compiler (lint of
//! `registries`) and by the agent (every `registries` entry of bundle.json is a
//! [`RegistryHost`], so a bundle with a bad one does not parse).
//!
//! Accepted: a lowercase DNS name, an IPv4 address, or an IPv6 address in brackets,
//! each optionally followed by `:port` (1–65535, no leading zero): `registry.corp`,
//! `registry.corp:5000`, `10.0.0.7:5000`, `[fd00::7]`, `[::1]:5000`. No scheme, path,
//! user, query, wildcard or upper case.
//!
//! Why lowercase only: containerd looks the folder up by the host exactly as the image
//! reference spells it (`hostPaths` in `remotes/docker/config`: `certs.d/<host>`
//! verbatim, after trying the `<host>_<port>_` spelling), and image references are
//! written in lower case in practice. A mixed-case entry would only work for references
//! in exactly that case, so it is an error with the fix named instead of a folder that
//! silently never matches.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Longest DNS name (RFC 1035, without the trailing dot).
const MAX_NAME: usize = 253;
/// How much of a bad value an error quotes.
const EXCERPT: usize = 64;

/// A validated registry host, `host`, `host:port`, IPv4 or `[IPv6]` with an optional port.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RegistryHost(String);

/// Why a string is not a registry host. Quoted parts are bounded and escaped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryHostError {
    #[error("registry is empty")]
    Empty,
    #[error(
        "registry {0} has a scheme: write the host alone, such as `registry.corp.example:5000`"
    )]
    Scheme(Excerpt),
    #[error("registry {0} has a path, user, query or space: write the host alone, as containerd names its certs.d folder")]
    Path(Excerpt),
    #[error("registry {0} has a wildcard: containerd's certs.d folders name one host each")]
    Wildcard(Excerpt),
    #[error("registry {0} has upper-case letters: write it in lower case (containerd matches the folder name verbatim)")]
    Uppercase(Excerpt),
    #[error("registry {0}: the port is not a number from 1 to 65535 without a leading zero")]
    Port(Excerpt),
    #[error("registry {0} is an IPv6 address without brackets: write it as `[address]` or `[address]:port`")]
    Ipv6NeedsBrackets(Excerpt),
    #[error("registry {0} is not an IPv6 address in brackets, `[address]` or `[address]:port`")]
    Ipv6(Excerpt),
    #[error("registry {0} is not an IPv4 address")]
    Ipv4(Excerpt),
    #[error("registry {0} is not a DNS name (labels of a-z, 0-9 and `-`, 1 to 63 characters each, {MAX_NAME} in all)")]
    Name(Excerpt),
}

/// At most [`EXCERPT`] characters of a bad value, shown with control characters escaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Excerpt(String);

impl Excerpt {
    fn of(s: &str) -> Self {
        let mut e: String = s.chars().take(EXCERPT).collect();
        if e.len() < s.len() {
            e.push('…');
        }
        Excerpt(e)
    }
}

impl fmt::Display for Excerpt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl RegistryHost {
    /// Validates `s` (see the module doc).
    pub fn parse(s: &str) -> Result<Self, RegistryHostError> {
        let bad = || Excerpt::of(s);
        if s.is_empty() {
            return Err(RegistryHostError::Empty);
        }
        if s.contains("://") {
            return Err(RegistryHostError::Scheme(bad()));
        }
        if s.contains('*') {
            return Err(RegistryHostError::Wildcard(bad()));
        }
        if s.chars().any(|c| {
            matches!(c, '/' | '\\' | '@' | '?' | '#' | '%') || c.is_whitespace() || c.is_control()
        }) {
            return Err(RegistryHostError::Path(bad()));
        }
        if s.chars().any(|c| c.is_uppercase()) {
            return Err(RegistryHostError::Uppercase(bad()));
        }
        let port = if let Some(rest) = s.strip_prefix('[') {
            let (addr, after) = rest
                .split_once(']')
                .ok_or_else(|| RegistryHostError::Ipv6(bad()))?;
            if addr.parse::<Ipv6Addr>().is_err() {
                return Err(RegistryHostError::Ipv6(bad()));
            }
            match after {
                "" => None,
                _ => Some(
                    after
                        .strip_prefix(':')
                        .ok_or_else(|| RegistryHostError::Ipv6(bad()))?,
                ),
            }
        } else {
            let (host, port) = match s.rsplit_once(':') {
                Some((host, _)) if host.contains(':') => {
                    return Err(if s.parse::<Ipv6Addr>().is_ok() {
                        RegistryHostError::Ipv6NeedsBrackets(bad())
                    } else {
                        RegistryHostError::Name(bad())
                    })
                }
                Some((host, port)) => (host, Some(port)),
                None => (s, None),
            };
            check_name(host).map_err(|e| e(bad()))?;
            port
        };
        if let Some(port) = port {
            let ok = !port.starts_with('0')
                && port.bytes().all(|b| b.is_ascii_digit())
                && port.parse::<u16>().is_ok_and(|p| p > 0);
            if !ok {
                return Err(RegistryHostError::Port(bad()));
            }
        }
        Ok(RegistryHost(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name of the host's folder under containerd's `certs.d/`: the host verbatim
    /// (`[::1]:5000` stays `[::1]:5000`). containerd on Linux tries `<host>_<port>_`
    /// first, then `<host>` verbatim, then `_default`; the verbatim name is the one
    /// containerd documents. Validation guarantees it is one path component: no `/`,
    /// never `.` or `..`.
    pub fn certs_d_dir(&self) -> &str {
        &self.0
    }
}

/// A DNS name or an IPv4 address (a name whose last label is all digits must be one).
fn check_name(host: &str) -> Result<(), fn(Excerpt) -> RegistryHostError> {
    let labels: Vec<&str> = host.split('.').collect();
    let last = labels.last().copied().unwrap_or_default();
    if !last.is_empty() && last.bytes().all(|b| b.is_ascii_digit()) {
        return match host.parse::<Ipv4Addr>() {
            Ok(_) => Ok(()),
            Err(_) => Err(RegistryHostError::Ipv4),
        };
    }
    let label_ok = |l: &&str| {
        let b = l.as_bytes();
        (1..=63).contains(&b.len())
            && b.iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
            && b[0] != b'-'
            && b[b.len() - 1] != b'-'
    };
    if host.len() <= MAX_NAME && labels.iter().all(label_ok) {
        Ok(())
    } else {
        Err(RegistryHostError::Name)
    }
}

impl fmt::Display for RegistryHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for RegistryHost {
    type Err = RegistryHostError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RegistryHost::parse(s)
    }
}

impl TryFrom<String> for RegistryHost {
    type Error = RegistryHostError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        RegistryHost::parse(&s)
    }
}

impl From<RegistryHost> for String {
    fn from(h: RegistryHost) -> Self {
        h.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepted_hosts() {
        for ok in [
            "registry.corp.example:5000",
            "registry.corp.example",
            "localhost",
            "localhost:1",
            "a-b.c",
            "127.0.0.1:5000",
            "10.0.0.7",
            "[::1]",
            "[::1]:5000",
            "[fd00::7]:65535",
            "[2001:db8::1]:443",
            "xn--bcher-kva.example",
        ] {
            let h = RegistryHost::parse(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
            assert_eq!(h.as_str(), ok);
            assert_eq!(h.certs_d_dir(), ok);
        }
    }

    #[test]
    fn refused_hosts_say_why() {
        use RegistryHostError as E;
        type Check = fn(&E) -> bool;
        let cases: &[(&str, Check)] = &[
            ("", |e| matches!(e, E::Empty)),
            ("https://r.example", |e| matches!(e, E::Scheme(_))),
            ("r.example/path", |e| matches!(e, E::Path(_))),
            ("user@r.example", |e| matches!(e, E::Path(_))),
            ("r.example ", |e| matches!(e, E::Path(_))),
            ("r\n.example", |e| matches!(e, E::Path(_))),
            ("*.corp.example", |e| matches!(e, E::Wildcard(_))),
            ("Registry.Corp", |e| matches!(e, E::Uppercase(_))),
            ("[FD00::1]", |e| matches!(e, E::Uppercase(_))),
            ("host:99999", |e| matches!(e, E::Port(_))),
            ("host:0", |e| matches!(e, E::Port(_))),
            ("host:05000", |e| matches!(e, E::Port(_))),
            ("host:", |e| matches!(e, E::Port(_))),
            ("host:+80", |e| matches!(e, E::Port(_))),
            ("[::1]:65536", |e| matches!(e, E::Port(_))),
            ("::1", |e| matches!(e, E::Ipv6NeedsBrackets(_))),
            ("fd00::1:5000", |e| matches!(e, E::Ipv6NeedsBrackets(_))),
            ("[::1", |e| matches!(e, E::Ipv6(_))),
            ("[::1]5000", |e| matches!(e, E::Ipv6(_))),
            ("[not-v6]:5000", |e| matches!(e, E::Ipv6(_))),
            ("999.1.1.1", |e| matches!(e, E::Ipv4(_))),
            ("1.2.3", |e| matches!(e, E::Ipv4(_))),
            ("010.0.0.1", |e| matches!(e, E::Ipv4(_))),
            ("a..b", |e| matches!(e, E::Name(_))),
            ("../x", |e| matches!(e, E::Path(_))),
            ("..", |e| matches!(e, E::Name(_))),
            (".", |e| matches!(e, E::Name(_))),
            ("-a.b", |e| matches!(e, E::Name(_))),
            ("a_b.c", |e| matches!(e, E::Name(_))),
            ("r.example.", |e| matches!(e, E::Name(_))),
            ("a:b:c", |e| matches!(e, E::Name(_))),
        ];
        for (bad, want) in cases {
            let e = RegistryHost::parse(bad).expect_err(bad);
            assert!(want(&e), "{bad:?}: {e:?}");
        }
        let long = format!("{}.example", "a".repeat(10_000));
        let msg = RegistryHost::parse(&long).unwrap_err().to_string();
        assert!(msg.len() < 300, "{msg}");
        assert!(RegistryHost::parse(&format!("{}.x", ["a"; 127].join("."))).is_err());
        assert!(RegistryHost::parse("a.".repeat(126).trim_end_matches('.')).is_ok());
    }

    #[test]
    fn serde_refuses_a_bad_host() {
        let ok: Vec<RegistryHost> = serde_json::from_str(r#"["[::1]:5000"]"#).unwrap();
        assert_eq!(serde_json::to_string(&ok).unwrap(), r#"["[::1]:5000"]"#);
        let e = serde_json::from_str::<Vec<RegistryHost>>(r#"["host:99999"]"#).unwrap_err();
        assert!(
            e.to_string()
                .contains("the port is not a number from 1 to 65535"),
            "{e}"
        );
    }

    fn valid_host() -> impl Strategy<Value = String> {
        let label = "[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?";
        let name = proptest::collection::vec(label, 1..5)
            .prop_map(|l| l.join("."))
            .prop_filter("a numeric last label is an IPv4 address", |n| {
                !n.rsplit('.')
                    .next()
                    .unwrap()
                    .bytes()
                    .all(|b| b.is_ascii_digit())
            });
        let v4 = any::<u32>().prop_map(|a| Ipv4Addr::from(a).to_string());
        let v6 = any::<u128>().prop_map(|a| format!("[{}]", Ipv6Addr::from(a)));
        let port = proptest::option::of(1u16..=65535);
        (prop_oneof![name, v4, v6], port).prop_map(|(h, p)| match p {
            Some(p) => format!("{h}:{p}"),
            None => h,
        })
    }

    proptest! {
        #[test]
        fn every_valid_host_is_accepted_verbatim(h in valid_host()) {
            let parsed = RegistryHost::parse(&h).map_err(|e| TestCaseError::fail(format!("{h}: {e}")))?;
            prop_assert_eq!(parsed.as_str(), h.as_str());
        }

        #[test]
        fn an_accepted_host_is_one_safe_path_component(s in "\\PC{0,40}|[a-z0-9.:\\[\\]/-]{0,30}") {
            if let Ok(h) = RegistryHost::parse(&s) {
                let dir = h.certs_d_dir();
                let mut parts = std::path::Path::new(dir).components();
                prop_assert!(matches!(parts.next(), Some(std::path::Component::Normal(_))), "{}", dir);
                prop_assert!(parts.next().is_none(), "{}", dir);
                prop_assert!(!dir.contains('/') && !dir.contains("..") && dir.len() <= MAX_NAME + 8);
                prop_assert!(dir.bytes().all(|b| b.is_ascii_graphic()));
                prop_assert_eq!(RegistryHost::parse(dir), Ok(h.clone()));
            }
        }

        #[test]
        fn ports_outside_1_to_65535_are_refused(h in "[a-z]{1,10}", p in prop_oneof![Just(0u32), 65536u32..1_000_000]) {
            let named = format!("{h}:{p}");
            let v6 = format!("[::1]:{p}");
            prop_assert!(matches!(RegistryHost::parse(&named), Err(RegistryHostError::Port(_))));
            prop_assert!(matches!(RegistryHost::parse(&v6), Err(RegistryHostError::Port(_))));
        }
    }
}
