//! Named failpoints for fault-injection tests.
//!
//! A failpoint is a named place in the code (`hit("apply.renamed")`) where a test can
//! make the process crash, pause or fail, through the environment:
//!
//! ```text
//! CATRUST_FAILPOINTS="apply.renamed=abort;bundle.read_mid=sleep(1500);output.after_file=enospc"
//! ```
//!
//! | action | effect at the failpoint |
//! | --- | --- |
//! | `abort` | `std::process::abort()`: no destructor, no flush, like a power cut or `kill -9` |
//! | `sleep(MS)` | pauses that long (a test then swaps, kills or inspects) |
//! | `enospc` | the call returns `Err(ENOSPC)` (disk full) |
//! | `off` | nothing |
//!
//! Each hit of a configured failpoint is announced on stderr as `failpoint NAME: ACTION`
//! before it acts, so a test knows the process got there.
//!
//! Failpoints exist only in builds with debug assertions (the dev profile every test
//! uses): with debug assertions off (`cargo build --release`, the Dockerfiles) [`hit`]
//! is an inlined `Ok(())` and the environment variable is never read, so a release
//! binary cannot contain one. The test binaries are the ordinary dev builds: the fault
//! tests need no second build of the workspace.
#![forbid(unsafe_code)]

use std::sync::OnceLock;
use std::time::Duration;

/// The environment variable read (once, at the first hit).
pub const ENV: &str = "CATRUST_FAILPOINTS";

/// What a failpoint does when hit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Off,
    Abort,
    Sleep(u64),
    Enospc,
}

/// Parses `name=action;name=action` (whitespace and empty entries ignored).
pub fn parse(spec: &str) -> Result<Vec<(String, Action)>, String> {
    let mut out = Vec::new();
    for entry in spec.split(';').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, action) = entry
            .split_once('=')
            .ok_or_else(|| format!("{entry:?}: expected NAME=ACTION"))?;
        let action = action.trim();
        let action = match action {
            "off" => Action::Off,
            "abort" => Action::Abort,
            "enospc" => Action::Enospc,
            _ => {
                let ms = action
                    .strip_prefix("sleep(")
                    .and_then(|r| r.strip_suffix(')'))
                    .and_then(|n| n.trim().parse().ok())
                    .ok_or_else(|| {
                        format!("{entry:?}: unknown action (abort, sleep(MS), enospc, off)")
                    })?;
                Action::Sleep(ms)
            }
        };
        out.push((name.trim().to_owned(), action));
    }
    Ok(out)
}

#[cfg(debug_assertions)]
fn active() -> &'static [(String, Action)] {
    static ACTIVE: OnceLock<Vec<(String, Action)>> = OnceLock::new();
    ACTIVE.get_or_init(|| {
        let spec = std::env::var(ENV).unwrap_or_default();
        parse(&spec).unwrap_or_else(|e| {
            // A typo must not silently test nothing.
            eprintln!("{ENV}: {e}");
            std::process::exit(2)
        })
    })
}

/// The failpoint `name`: a no-op without debug assertions (a release build).
#[cfg(not(debug_assertions))]
#[inline(always)]
pub fn hit(_name: &str) -> std::io::Result<()> {
    Ok(())
}

/// The failpoint `name`: acts as configured, or returns `Ok(())`.
#[cfg(debug_assertions)]
pub fn hit(name: &str) -> std::io::Result<()> {
    let Some((_, action)) = active().iter().find(|(n, _)| n == name) else {
        return Ok(());
    };
    if *action == Action::Off {
        return Ok(());
    }
    eprintln!("failpoint {name}: {action:?}");
    match action {
        Action::Off => Ok(()),
        Action::Abort => std::process::abort(),
        Action::Sleep(ms) => {
            std::thread::sleep(Duration::from_millis(*ms));
            Ok(())
        }
        Action::Enospc => Err(std::io::Error::from_raw_os_error(28)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs() {
        assert_eq!(
            parse(" a=abort; b=sleep(20);c=enospc;;d=off ").unwrap(),
            vec![
                ("a".into(), Action::Abort),
                ("b".into(), Action::Sleep(20)),
                ("c".into(), Action::Enospc),
                ("d".into(), Action::Off),
            ]
        );
        assert!(parse("a").is_err());
        assert!(parse("a=explode").is_err());
        assert!(parse("a=sleep(x)").is_err());
    }

    #[test]
    fn unconfigured_points_do_nothing() {
        assert!(hit("not.configured").is_ok());
    }
}
