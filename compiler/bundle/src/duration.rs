//! The one duration grammar of catrust: trust.yaml's `minOverlap: 72h` and
//! `expiryWarning: 30d`, and the agent's `--resync=10m` / `--command-timeout=60s`.
//!
//! A duration is one or more `<digits><unit>` parts (`1d12h`), units `ms`, `s`, `m`,
//! `h`, `d`. A bare number is not a duration here: in trust.yaml `12` could mean hours
//! or days; only the agent's command line, where Kubernetes users write seconds,
//! accepts one ([`parse_flag`]).

use std::time::Duration;

/// Why a text is not a duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("{0:?}: expected a number with ms, s, m, h or d, such as 72h or 1d12h")]
    Malformed(String),
    #[error("{text:?}: unknown unit {unit:?} (use ms, s, m, h or d)")]
    UnknownUnit { text: String, unit: String },
    #[error("{0:?} is too long")]
    TooLong(String),
}

/// Parses `72h`, `30d`, `1d12h`, `90s`, `500ms`.
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let trimmed = text.trim();
    let malformed = || DurationError::Malformed(trimmed.to_string());
    let too_long = || DurationError::TooLong(trimmed.to_string());
    if trimmed.is_empty() {
        return Err(malformed());
    }
    let mut total = Duration::ZERO;
    let mut rest = trimmed;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit_len = rest[digits..]
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len() - digits);
        let (number, unit) = (&rest[..digits], &rest[digits..digits + unit_len]);
        if number.is_empty() || unit.is_empty() {
            return Err(malformed());
        }
        let n: u64 = number.parse().map_err(|_| too_long())?;
        let part = match unit {
            "ms" => Some(Duration::from_millis(n)),
            "s" => Some(Duration::from_secs(n)),
            "m" => n.checked_mul(60).map(Duration::from_secs),
            "h" => n.checked_mul(3600).map(Duration::from_secs),
            "d" => n.checked_mul(86_400).map(Duration::from_secs),
            _ => {
                return Err(DurationError::UnknownUnit {
                    text: trimmed.to_string(),
                    unit: unit.to_string(),
                })
            }
        };
        total = part
            .and_then(|p| total.checked_add(p))
            .ok_or_else(too_long)?;
        rest = &rest[digits + unit_len..];
    }
    Ok(total)
}

/// [`parse`], plus a bare number as seconds (`--command-timeout=90`), for the agent's
/// command line.
pub fn parse_flag(text: &str) -> Result<Duration, DurationError> {
    let trimmed = text.trim();
    if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()) {
        return trimmed
            .parse()
            .map(Duration::from_secs)
            .map_err(|_| DurationError::TooLong(trimmed.to_string()));
    }
    parse(trimmed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_compounds() {
        assert_eq!(parse("72h"), Ok(Duration::from_secs(72 * 3600)));
        assert_eq!(parse("1d12h"), Ok(Duration::from_secs(36 * 3600)));
        assert_eq!(parse("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
    }

    #[test]
    fn a_bare_number_is_seconds_on_the_command_line_only() {
        assert!(matches!(parse("12"), Err(DurationError::Malformed(_))));
        assert_eq!(parse_flag("12"), Ok(Duration::from_secs(12)));
    }

    #[test]
    fn malformed_texts_say_why() {
        for bad in ["", "h", "1.5h", "-1h", "3 days", "h1"] {
            assert!(
                matches!(parse(bad), Err(DurationError::Malformed(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            parse("5parsecs"),
            Err(DurationError::UnknownUnit { .. })
        ));
        assert!(matches!(
            parse("999999999999999999d"),
            Err(DurationError::TooLong(_))
        ));
        assert!(matches!(
            parse("99999999999999999999999s"),
            Err(DurationError::TooLong(_))
        ));
    }
}
