//! `http::head::parse` on arbitrary bytes, with small and default limits.
//!
//! Never panics. A head that parses was split off the front of the buffer (the rest is left
//! untouched), its accessors do not panic and agree with its fields, and feeding the same
//! bytes in two appends (split at a point taken from the input) gives the same answer.
#![no_main]

use bytes::BytesMut;
use cgigate::parsers::head::{self, BodyFraming, HeadError, Limits, RequestHead, Version};
use libfuzzer_sys::fuzz_target;

/// Small enough that the fuzzer crosses every limit with short inputs.
const SMALL: Limits = Limits {
    max_head_bytes: 64,
    max_headers: 3,
    max_body_bytes: 100,
};

fuzz_target!(|input: &[u8]| {
    for limits in [Limits::default(), SMALL] {
        let whole = check_whole(input, &limits);
        check_split(input, &limits, &whole);
    }
});

type Parsed = Result<Option<RequestHead>, HeadError>;

fn check_whole(input: &[u8], limits: &Limits) -> Parsed {
    let mut buf = BytesMut::from(input);
    let result = head::parse(&mut buf, limits);
    match &result {
        Ok(Some(head)) => {
            let used = input.len() - buf.len();
            assert_eq!(&buf[..], &input[used..], "the body stays in the buffer");
            assert!(used <= limits.max_head_bytes, "head past max_head_bytes");
            assert!(
                input[..used].ends_with(b"\r\n\r\n"),
                "head ends in CRLFCRLF"
            );
            check_head(head, limits);
        }
        Ok(None) => {
            assert_eq!(&buf[..], input, "need-more leaves the buffer alone");
            assert!(
                input.len() <= limits.max_head_bytes,
                "need-more past the limit"
            );
        }
        Err(_) => {}
    }
    result
}

/// The accessors of a parsed head: no panic, and consistent with the fields.
fn check_head(head: &RequestHead, limits: &Limits) {
    let method = head.method_str();
    assert!(!method.is_empty() && method.len() == head.method.len());
    let target = head.target_str();
    assert!(!target.is_empty() && target.len() == head.target.len());
    assert!(target
        .bytes()
        .all(|b| (0x21..=0x7e).contains(&b) && b != b'#'));
    let (path, query) = (head.path(), head.query());
    assert!(path.len() <= target.len().max(1) && query.len() < target.len().max(1));
    if target.starts_with('/') {
        assert!(
            target.starts_with(path),
            "origin-form path is the target's start"
        );
    }
    let host = head.host();
    let host_field = head.header("host").map_or(&b""[..], |v| &v[..]);
    assert!(target.contains(host) || host.as_bytes() == host_field);
    assert!(head.headers.len() <= limits.max_headers);
    for h in &head.headers {
        assert!(!h.name.is_empty() && h.name_str().len() == h.name.len());
        assert!(h
            .value
            .iter()
            .all(|&b| b == b'\t' || b >= 0x20 && b != 0x7f));
        assert!(!h.value.starts_with(b" ") && !h.value.ends_with(b" "));
        let first = head.header(h.name_str()).expect("a field finds itself");
        let all: Vec<_> = head.headers_named(h.name_str()).collect();
        assert_eq!(all.first(), Some(&first));
        let _ = h.value_str();
    }
    assert_eq!(head.header("x-not-sent-by-the-fuzzer\u{e9}"), None);
    if head.version == Version::Http11 {
        assert_eq!(
            head.headers_named("host").count(),
            1,
            "HTTP/1.1 needs one Host"
        );
    }
    match head.body {
        BodyFraming::Length(n) => assert!(n <= limits.max_body_bytes),
        BodyFraming::Chunked => assert_eq!(head.version, Version::Http11),
        BodyFraming::None => {}
    }
    assert_eq!(head.is_head(), method == "HEAD");
    let _ = head.version.as_str();
}

/// The same bytes in two appends: the first part gives need-more or the whole answer.
fn check_split(input: &[u8], limits: &Limits, whole: &Parsed) {
    let at = input
        .first()
        .map_or(0, |&b| usize::from(b) * input.len() / 256);
    let mut buf = BytesMut::from(&input[..at]);
    let first = head::parse(&mut buf, limits);
    let result = match first {
        Ok(None) => {
            buf.extend_from_slice(&input[at..]);
            head::parse(&mut buf, limits)
        }
        other => other,
    };
    assert_eq!(&result, whole, "split at {at}");
}
