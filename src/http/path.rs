//! Request paths (RFC 3986): the one percent-decoder, and the normalization the router
//! matches on. Both are pure.

use super::syntax::hex_value;

/// The byte a `"%" HEXDIG HEXDIG` escape at `b[i]` stands for (RFC 3986 §2.1); `None` if
/// there is no complete escape there.
fn escape_at(b: &[u8], i: usize) -> Option<u8> {
    if b.get(i) != Some(&b'%') {
        return None;
    }
    let hi = hex_value(*b.get(i + 1)?)?;
    let lo = hex_value(*b.get(i + 2)?)?;
    Some(hi * 16 + lo)
}

/// Percent-decode once (RFC 3986 §2.1), for a path that names files.
///
/// `None` when the result would contain NUL, a "/" from `%2F` or a "\\" from `%5C` (either
/// would let one URL segment name two path components), is not UTF-8, or has a bad escape
/// (`%zz`, a `%4` at the end).
pub fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&raw) = b.get(i) {
        let byte = if raw == b'%' {
            let c = escape_at(b, i)?;
            i += 3;
            // SPEC §5.1: `%2F` → 404; `%5C` is the same trick for Windows-minded scripts.
            if c == b'/' || c == b'\\' {
                return None;
            }
            c
        } else {
            i += 1;
            raw
        };
        // SPEC §5.1: `%00` → 404; no path or environment value can carry a NUL.
        if byte == 0 {
            return None;
        }
        out.push(byte);
    }
    String::from_utf8(out).ok()
}

/// Decode percent-encoded unreserved characters (RFC 3986 §6.2.2.2) and remove dot-segments
/// (§5.2.4). Everything else stays encoded; the query is not part of the input.
pub fn normalize(raw: &str) -> String {
    if is_normal(raw) {
        // Nothing to decode or remove: the common case, one copy.
        return raw.to_string();
    }
    let decoded = decode_unreserved(raw);
    remove_dot_segments(&decoded)
}

/// Whether normalizing `raw` would return it unchanged: it starts with "/" and has no
/// percent sign and no "." or ".." segment.
fn is_normal(raw: &str) -> bool {
    raw.starts_with('/') && !raw.contains('%') && !raw.split('/').any(|s| s == "." || s == "..")
}

fn decode_unreserved(raw: &str) -> String {
    let b = raw.as_bytes();
    let mut out = String::with_capacity(raw.len());
    let mut i = 0;
    while let Some(&byte) = b.get(i) {
        if let Some(c) = escape_at(b, i).map(char::from) {
            // RFC 3986 §2.3: unreserved = ALPHA / DIGIT / "-" / "." / "_" / "~"
            if c.is_ascii_alphanumeric() || "-._~".contains(c) {
                out.push(c);
                i += 3;
                continue;
            }
        }
        out.push(char::from(byte));
        i += 1;
    }
    out
}

/// RFC 3986 §5.2.4, on segments. The result always starts with "/".
fn remove_dot_segments(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let last = segments.len().saturating_sub(1);
    for (i, seg) in segments.iter().enumerate() {
        match *seg {
            "." => {
                if i == last {
                    out.push("");
                }
            }
            ".." => {
                out.pop();
                if i == last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    let mut s = String::with_capacity(path.len());
    for seg in &out {
        s.push('/');
        s.push_str(seg);
    }
    if s.is_empty() {
        s.push('/');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decode_table() {
        let cases: &[(&str, Option<&str>)] = &[
            ("", Some("")),
            ("/plain/path", Some("/plain/path")),
            ("a%20b", Some("a b")),
            ("%41%62%7e", Some("Ab~")),
            ("caf%C3%A9", Some("café")),
            ("%2541", Some("%41")),
            ("%zz", None),
            ("%4", None),
            ("a%", None),
            ("%g0", None),
            ("a%2fb", None),
            ("a%2Fb", None),
            ("a%5cb", None),
            ("a%5Cb", None),
            ("%00", None),
            ("a\0b", None),
            ("%ff", None),
            ("%C3", None),
        ];
        for (input, want) in cases {
            crate::fuzz_seeds::save("path_mapping", input.as_bytes());
            assert_eq!(percent_decode(input).as_deref(), *want, "{input:?}");
        }
    }

    #[test]
    fn dot_segments_are_removed() {
        for (raw, want) in [
            ("/", "/"),
            ("/a/b", "/a/b"),
            ("/a/./b", "/a/b"),
            ("/a/../b", "/b"),
            ("/../../etc/passwd", "/etc/passwd"),
            ("/a/b/..", "/a/"),
            ("/a/b/.", "/a/b/"),
            ("/a//b", "/a//b"),
            ("/cgi-bin/%2e%2e/x", "/x"),
            ("/%63gi-bin/x", "/cgi-bin/x"),
            ("/a%2Fb", "/a%2Fb"),
            ("/a%2", "/a%2"),
            ("/%", "/%"),
        ] {
            crate::fuzz_seeds::save("path_mapping", raw.as_bytes());
            assert_eq!(normalize(raw), want, "{raw}");
        }
    }

    #[test]
    fn the_shortcut_agrees_with_the_full_normalization() {
        for raw in [
            "/",
            "/a",
            "/a/b/",
            "/a//b",
            "//",
            "/a.b/c..d/.e/..f",
            "/...",
            "/a/.",
            "/a/..",
            "/./",
            "/../",
            "",
            "a/b",
            "/%2e",
            "/~x/-y_z",
        ] {
            let full = remove_dot_segments(&decode_unreserved(raw));
            assert_eq!(normalize(raw), full, "{raw:?}");
            if is_normal(raw) {
                assert_eq!(full, raw, "{raw:?} is said to be normal");
            }
        }
    }
}
