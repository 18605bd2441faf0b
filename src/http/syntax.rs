//! The shared grammar of HTTP fields (RFC 9110 §5): tokens, field values, optional
//! whitespace, decimals, comma-separated lists, hex digits, and the list of hop-by-hop
//! fields. One copy of each rule: the request head parser, the chunked decoder, the response
//! writer, the CGI header parser and the CGI environment all use these.

/// RFC 9110 §7.6.1: the fields that describe one connection, not the message (lower case).
/// Connection, Proxy-Connection, Keep-Alive, TE, Transfer-Encoding and Upgrade are named
/// there; Trailer announces trailers of a chunked body, which the receiver gets de-chunked
/// (RFC 9110 §6.6.2).
pub(crate) const HOP_BY_HOP: [&str; 7] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "transfer-encoding",
    "upgrade",
    "trailer",
];

/// Whether `name` is one of [`HOP_BY_HOP`] (field names compare case-insensitively,
/// RFC 9110 §5.1).
pub(crate) fn is_hop_by_hop(name: &[u8]) -> bool {
    HOP_BY_HOP
        .iter()
        .any(|hop| name.eq_ignore_ascii_case(hop.as_bytes()))
}

/// RFC 9110 §5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." /
/// "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA.
pub(crate) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// RFC 9110 §5.6.2: token = 1*tchar.
pub(crate) fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

/// RFC 9110 §5.5: one byte of a field value: VCHAR, obs-text, SP or HTAB (so never NUL, CR,
/// LF, another control byte or DEL).
pub(crate) fn is_field_byte(b: u8) -> bool {
    b == b'\t' || matches!(b, 0x20..=0x7E) || b >= 0x80
}

/// RFC 9110 §5.5: field-value = *field-content, bytes as [`is_field_byte`].
pub(crate) fn is_field_value(value: &[u8]) -> bool {
    value.iter().all(|&b| is_field_byte(b))
}

/// RFC 5234 B.1: VCHAR, SP or HTAB, without obs-text (the CGI reason phrase is `*TEXT`,
/// RFC 3875 §6.3.3, which is ASCII).
pub(crate) fn is_text(b: u8) -> bool {
    b == b'\t' || b == b' ' || b.is_ascii_graphic()
}

/// RFC 9110 §5.6.6: qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text.
pub(crate) fn is_qdtext(b: u8) -> bool {
    b != b'"' && b != b'\\' && is_field_byte(b)
}

/// RFC 9110 §5.6.3: OWS = *( SP / HTAB ), removed from both ends.
pub(crate) fn trim_ows(s: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = s.iter().position(|b| !is_ows(b)).unwrap_or(s.len());
    let end = s.iter().rposition(|b| !is_ows(b)).map_or(start, |p| p + 1);
    s.get(start..end).unwrap_or_default()
}

/// `1*DIGIT` as a u64; `None` if empty, not all digits, or too large.
pub(crate) fn parse_decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.iter().try_fold(0u64, |n, &b| {
        let digit = b.is_ascii_digit().then(|| u64::from(b - b'0'))?;
        n.checked_mul(10)?.checked_add(digit)
    })
}

/// RFC 9110 §5.6.1: the OWS-trimmed elements of a comma-separated list, empty ones included
/// (a recipient must skip them; some callers also refuse a list of nothing but them).
pub(crate) fn split_list(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|&b| b == b',').map(trim_ows)
}

/// RFC 5234 B.1: HEXDIG, either case, as its value.
pub(crate) fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens() {
        assert!(is_token(b"GET"));
        assert!(is_token(b"x-a_b.c~d!#$%&'*+^`|"));
        for bad in [
            &b""[..],
            b"a b",
            b"a:b",
            b"a\"b",
            b"(a)",
            b"a/b",
            b"\x80",
            b"a\tb",
        ] {
            assert!(!is_token(bad), "{bad:?}");
        }
    }

    #[test]
    fn field_values() {
        assert!(is_field_value(b""));
        assert!(is_field_value(b"a b\tc \x80\xff!~"));
        for bad in [&b"a\rb"[..], b"a\nb", b"a\0b", b"\x7f", b"\x1f"] {
            assert!(!is_field_value(bad), "{bad:?}");
        }
        assert!(is_text(b'a') && is_text(b' ') && !is_text(0x80) && !is_text(0x7f));
        assert!(is_qdtext(b'a') && !is_qdtext(b'"') && !is_qdtext(b'\\') && is_qdtext(0x80));
    }

    #[test]
    fn ows_is_trimmed_on_both_sides_only() {
        assert_eq!(trim_ows(b" \t a b \t"), b"a b");
        assert_eq!(trim_ows(b"   "), b"");
        assert_eq!(trim_ows(b""), b"");
        assert_eq!(trim_ows(b"\ra\r"), b"\ra\r");
    }

    #[test]
    fn decimals() {
        assert_eq!(parse_decimal(b"0"), Some(0));
        assert_eq!(parse_decimal(b"007"), Some(7));
        assert_eq!(parse_decimal(b"18446744073709551615"), Some(u64::MAX));
        for bad in [
            &b""[..],
            b"18446744073709551616",
            b"-1",
            b"+1",
            b"1 ",
            b"0x1",
        ] {
            assert_eq!(parse_decimal(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn lists_keep_empty_elements() {
        let v: Vec<&[u8]> = split_list(b" a ,, b\t,").collect();
        assert_eq!(v, [&b"a"[..], b"", b"b", b""]);
    }

    #[test]
    fn hex_digits() {
        assert_eq!(hex_value(b'0'), Some(0));
        assert_eq!(hex_value(b'f'), Some(15));
        assert_eq!(hex_value(b'F'), Some(15));
        assert_eq!(hex_value(b'g'), None);
    }

    #[test]
    fn hop_by_hop_names_in_any_case() {
        assert!(is_hop_by_hop(b"Connection"));
        assert!(is_hop_by_hop(b"TRAILER"));
        assert!(!is_hop_by_hop(b"Content-Length"));
    }
}
