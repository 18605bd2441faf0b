//! Value syntax of the config file (SPEC §2): durations, sizes, listen addresses and the small
//! checked strings (environment names, extensions). Each type validates itself while it is
//! deserialized, so a bad value is reported with its key path and position by the caller.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use serde::de::{self, Deserialize, Deserializer, Visitor};

/// Shown after every bad duration so the fix is obvious.
const DURATION_HINT: &str = "(use e.g. \"250ms\", \"5s\", \"2m\")";
/// Shown after every bad size.
const SIZE_HINT: &str = "(use bytes, or e.g. \"64KiB\", \"16MiB\", \"1GB\")";

/// A duration written as a string: an integer and one of the units `ms`, `s`, `m`, `h`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DurationValue(pub(crate) Duration);

/// A size in bytes: a non-negative integer, or a string with a binary (`KiB`, `MiB`, `GiB`) or
/// decimal (`KB`, `MB`, `GB`) unit, or `B`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SizeValue(pub(crate) u64);

/// An `IP:PORT` listen address; IPv6 as `[::1]:8080`. Host names are refused because they
/// could resolve to several addresses, or to a different one tomorrow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ListenAddr(pub(crate) SocketAddr);

/// The name of an environment variable given to CGI scripts.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct EnvName(pub(crate) String);

/// The value of an environment variable given to CGI scripts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct EnvValue(pub(crate) String);

/// A file-name extension with its dot, as used in `interpreters` (`".py"`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Extension(pub(crate) String);

/// An interpreter program: a name looked up in `PATH` (`"python3"`) or a path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Program(pub(crate) String);

/// Parses `"250ms"`, `"5s"`, `"2m"`, `"1h"`; the message is the whole explanation.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = |why: &str| format!("invalid duration {text:?}{why} {DURATION_HINT}");
    let (digits, unit) = split_number(text);
    if digits.is_empty() {
        return Err(bad(""));
    }
    let per_unit_ms: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "" => return Err(bad(": the unit is missing")),
        _ => return Err(bad("")),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(per_unit_ms))
        .map(Duration::from_millis)
        .ok_or_else(|| bad(": too large"))
}

/// Parses `"1024"`, `"512B"`, `"64KiB"`, `"16MiB"`, `"1GiB"`, `"10KB"`, `"5MB"`, `"1GB"`.
pub(crate) fn parse_size(text: &str) -> Result<u64, String> {
    let bad = |why: &str| format!("invalid size {text:?}{why} {SIZE_HINT}");
    let (digits, unit) = split_number(text);
    if digits.is_empty() {
        return Err(bad(""));
    }
    let multiplier: u64 = match unit {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => return Err(bad(": unknown unit")),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(multiplier))
        .ok_or_else(|| bad(": too large"))
}

/// A size as `parse_size` reads it: the largest binary unit that divides it exactly.
pub(crate) fn format_size(bytes: u64) -> String {
    for (unit, shift) in [("GiB", 30), ("MiB", 20), ("KiB", 10)] {
        if bytes != 0 && bytes % (1 << shift) == 0 {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    if bytes == 0 {
        return "0".to_string();
    }
    format!("{bytes}B")
}

/// Parses `IP:PORT`.
pub(crate) fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    text.parse().map_err(|_| {
        format!(
            "invalid address {text:?} (use IP:PORT, e.g. \"127.0.0.1:8080\" or \"[::1]:8080\"; \
             host names are not accepted)"
        )
    })
}

/// Splits leading ASCII digits from the rest; signs, dots and spaces stay in the rest and so
/// make the unit unknown, which is how negatives and fractions are refused.
fn split_number(text: &str) -> (&str, &str) {
    let end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    text.split_at(end)
}

impl<'de> Deserialize<'de> for DurationValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(DurationVisitor)
    }
}

struct DurationVisitor;

impl Visitor<'_> for DurationVisitor {
    type Value = DurationValue;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a duration string {DURATION_HINT}")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        parse_duration(v).map(DurationValue).map_err(E::custom)
    }

    // A bare number has no unit, and guessing seconds or milliseconds is how outages start.
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Err(E::custom(format!(
            "invalid duration {v}: durations are strings with a unit {DURATION_HINT}"
        )))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Err(E::custom(format!(
            "invalid duration {v}: durations are strings with a unit {DURATION_HINT}"
        )))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Err(E::custom(format!(
            "invalid duration {v}: durations are strings with a unit {DURATION_HINT}"
        )))
    }
}

impl<'de> Deserialize<'de> for SizeValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SizeVisitor)
    }
}

struct SizeVisitor;

impl Visitor<'_> for SizeVisitor {
    type Value = SizeValue;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a size {SIZE_HINT}")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        parse_size(v).map(SizeValue).map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(SizeValue(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        u64::try_from(v)
            .map(SizeValue)
            .map_err(|_| E::custom(format!("invalid size {v}: sizes cannot be negative")))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Err(E::custom(format!(
            "invalid size {v}: sizes are whole numbers {SIZE_HINT}"
        )))
    }
}

/// Deserializes a string and checks it with `parse`; the message of `parse` becomes the error.
/// The check runs inside the visitor so the deserializer attaches the value's position.
fn checked_string<'de, D, T>(
    deserializer: D,
    parse: impl FnOnce(String) -> Result<T, String>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    deserializer.deserialize_str(CheckedString(parse))
}

struct CheckedString<F>(F);

impl<T, F: FnOnce(String) -> Result<T, String>> Visitor<'_> for CheckedString<F> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        (self.0)(v.to_owned()).map_err(E::custom)
    }
}

/// A `trusted_proxies` entry: a network (`10.0.0.0/8`) or one address.
#[derive(Debug)]
pub(crate) struct CidrValue(pub(crate) crate::proxy::trusted::Cidr);

impl<'de> Deserialize<'de> for CidrValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        checked_string(deserializer, |s| s.parse().map(CidrValue))
    }
}

impl<'de> Deserialize<'de> for ListenAddr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        checked_string(deserializer, |s| parse_listen(&s).map(ListenAddr))
    }
}

impl<'de> Deserialize<'de> for EnvName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // execve cannot pass a name that is empty or holds '=' or NUL.
        checked_string(deserializer, |s| {
            if s.is_empty() || s.contains(['=', '\0']) {
                Err(format!(
                    "invalid environment variable name {s:?} (must be non-empty, without '=')"
                ))
            } else {
                Ok(EnvName(s))
            }
        })
    }
}

impl<'de> Deserialize<'de> for EnvValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        checked_string(deserializer, |s| {
            if s.contains('\0') {
                Err("environment values cannot contain NUL".to_owned())
            } else {
                Ok(EnvValue(s))
            }
        })
    }
}

impl<'de> Deserialize<'de> for Extension {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        checked_string(deserializer, |s| {
            if s.len() < 2 || !s.starts_with('.') || s.contains(['/', '\0']) {
                Err(format!(
                    "invalid extension {s:?} (must start with \".\", e.g. \".py\")"
                ))
            } else {
                Ok(Extension(s))
            }
        })
    }
}

impl<'de> Deserialize<'de> for Program {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        checked_string(deserializer, |s| {
            if s.is_empty() || s.contains('\0') {
                Err(format!(
                    "invalid program {s:?} (e.g. \"python3\" or \"/usr/bin/perl\")"
                ))
            } else {
                Ok(Program(s))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_print_as_they_are_written() {
        for (bytes, text) in [
            (0, "0"),
            (1, "1B"),
            (1536, "1536B"),
            (3072, "3KiB"),
            (512 << 20, "512MiB"),
            (1 << 30, "1GiB"),
            (1000, "1000B"),
        ] {
            assert_eq!(format_size(bytes), text);
            assert_eq!(parse_size(text), Ok(bytes));
        }
    }

    #[test]
    fn durations_in_every_unit() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("0ms"), Ok(Duration::ZERO));
    }

    #[test]
    fn bad_durations_are_explained() {
        for bad in [
            "5x", "", "s", "-5s", "1.5s", "5 s", " 5s", "5S", "5sec", "+5s",
        ] {
            let err = parse_duration(bad).unwrap_err();
            assert!(
                err.starts_with(&format!("invalid duration {bad:?}")),
                "{err}"
            );
            assert!(err.ends_with(DURATION_HINT), "{err}");
        }
        assert!(parse_duration("5")
            .unwrap_err()
            .contains("the unit is missing"));
        let huge = format!("{}h", u64::MAX / 1000);
        assert!(parse_duration(&huge).unwrap_err().contains("too large"));
        assert!(parse_duration("99999999999999999999ms")
            .unwrap_err()
            .contains("too large"));
    }

    #[test]
    fn sizes_in_every_unit() {
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("512B"), Ok(512));
        assert_eq!(parse_size("64KiB"), Ok(65_536));
        assert_eq!(parse_size("16MiB"), Ok(16 * 1024 * 1024));
        assert_eq!(parse_size("2GiB"), Ok(2 * 1024 * 1024 * 1024));
        assert_eq!(parse_size("10KB"), Ok(10_000));
        assert_eq!(parse_size("5MB"), Ok(5_000_000));
        assert_eq!(parse_size("1GB"), Ok(1_000_000_000));
    }

    #[test]
    fn bad_sizes_are_explained() {
        for bad in [
            "64K", "1.5MiB", "-1", "-1KiB", "KiB", "", "64 KiB", "64kib", "1TiB",
        ] {
            let err = parse_size(bad).unwrap_err();
            assert!(err.starts_with(&format!("invalid size {bad:?}")), "{err}");
        }
        assert!(parse_size("64K").unwrap_err().contains("unknown unit"));
        assert!(parse_size("99999999999GiB")
            .unwrap_err()
            .contains("too large"));
        assert!(parse_size("99999999999999999999")
            .unwrap_err()
            .contains("too large"));
    }

    #[test]
    fn listen_addresses() {
        assert_eq!(
            parse_listen("127.0.0.1:8080").map(|a| a.to_string()),
            Ok("127.0.0.1:8080".to_owned())
        );
        assert_eq!(
            parse_listen("[::1]:0").map(|a| a.to_string()),
            Ok("[::1]:0".to_owned())
        );
        for bad in ["localhost:8080", "127.0.0.1", "::1:80", "1.2.3.4:65536", ""] {
            let err = parse_listen(bad).unwrap_err();
            assert!(
                err.starts_with(&format!("invalid address {bad:?}")),
                "{err}"
            );
        }
    }
}
