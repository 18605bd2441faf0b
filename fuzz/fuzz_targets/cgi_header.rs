//! `cgi::header::parse` and `parse_nph` on arbitrary script output.
//!
//! Never panics; a block that parses obeys the module's rules; and the parser is incremental:
//! every prefix of the input gives `Ok(None)` or the answer of the whole input (checked at
//! every line end and around the size limit, the only places where the answer can change).
#![no_main]

use cgigate::parsers::cgi_header::{self as header, HeadError, Kind, ScriptHead};
use libfuzzer_sys::fuzz_target;

type Parse = fn(&[u8], usize) -> Result<Option<(ScriptHead, usize)>, HeadError>;

fuzz_target!(|input: &[u8]| {
    // A limit from the input's first byte, so that the fuzzer reaches TooLarge on both sides.
    let small = input.first().map_or(0, |&b| usize::from(b) % 64 * 4);
    for (parse, nph) in [(header::parse as Parse, false), (header::parse_nph, true)] {
        for max in [8192, small] {
            check(input, parse, nph, max);
        }
        let eof = if nph {
            header::at_eof_nph(input)
        } else {
            header::at_eof(input)
        };
        match parse(input, usize::MAX) {
            Err(e) => assert_eq!(eof, e),
            Ok(_) => assert_eq!(eof, HeadError::NoBlankLine),
        }
    }
});

fn check(input: &[u8], parse: Parse, nph: bool, max: usize) {
    let whole = parse(input, max);
    if let Ok(Some((head, len))) = &whole {
        check_head(head, &input[..*len], nph, max);
    }
    if whole == Ok(None) {
        assert!(input.len() <= max, "need-more past the limit");
    }
    // Prefixes that end just before and just after each LF, and around `max`.
    let mut ends: Vec<usize> = input
        .iter()
        .enumerate()
        .filter(|&(_, &b)| b == b'\n')
        .flat_map(|(i, _)| [i, i + 1])
        .chain([max, max.saturating_add(1), input.len()])
        .filter(|&end| end <= input.len())
        .collect();
    ends.sort_unstable();
    ends.dedup();
    let mut settled = false;
    for end in ends {
        let got = parse(&input[..end], max);
        match got {
            Ok(None) => assert!(!settled, "need-more after an answer, at {end}"),
            _ => {
                assert_eq!(got, whole, "prefix of {end} bytes");
                // Past the first answer every longer prefix gives it too; checking one is
                // enough to keep the cost linear.
                if settled {
                    break;
                }
                settled = true;
            }
        }
    }
}

/// What a parsed block must satisfy, from the module's rules.
fn check_head(head: &ScriptHead, block: &[u8], nph: bool, max: usize) {
    assert!(block.len() <= max && block.ends_with(b"\n"));
    assert!(
        block == b"\n"
            || block == b"\r\n"
            || block.ends_with(b"\n\n")
            || block.ends_with(b"\n\r\n")
    );
    assert!((200..=599).contains(&head.status), "status {}", head.status);
    if let Some(reason) = &head.reason {
        assert!(
            !reason.is_empty()
                && reason
                    .bytes()
                    .all(|b| b == b'\t' || b == b' ' || b.is_ascii_graphic())
        );
    }
    for (name, value) in &head.headers {
        let is_token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
        assert!(
            !name.is_empty() && name.bytes().all(is_token),
            "name {name:?}"
        );
        assert!(!value.iter().any(|&b| b < 0x20 && b != b'\t' || b == 0x7f));
        assert!(!value.starts_with(b" ") && !value.ends_with(b" "));
        assert!(!name.eq_ignore_ascii_case("transfer-encoding"));
        if !nph {
            assert!(
                !name.eq_ignore_ascii_case("status"),
                "Status is never forwarded"
            );
        }
    }
    let lengths: Vec<&[u8]> = named(head, "content-length").collect();
    assert_eq!(head.content_length.is_some(), !lengths.is_empty());
    if nph {
        assert_eq!(head.kind, Kind::Document);
        return;
    }
    // Whether the script sent a Status field: the block has a line that starts with one.
    let has_status = block
        .split(|&b| b == b'\n')
        .any(|line| line.len() >= 7 && line[..7].eq_ignore_ascii_case(b"status:"));
    let locations: Vec<&[u8]> = named(head, "location").collect();
    assert!(locations.len() <= 1);
    assert!(locations
        .iter()
        .all(|l| !l.is_empty() && l.iter().all(u8::is_ascii_graphic)));
    let content_types = named(head, "content-type").count();
    assert!(content_types <= 1);
    match &head.kind {
        Kind::LocalRedirect(path) => {
            assert!(!has_status && locations == [path.as_bytes()]);
            assert!(path.starts_with('/') && !path.starts_with("//") && !path.contains('#'));
        }
        Kind::ClientRedirect => {
            assert!(!has_status && locations.len() == 1 && head.status == 302);
        }
        Kind::Document => {
            assert!(has_status || (locations.is_empty() && content_types == 1));
            assert!(has_status || (head.status == 200 && head.reason.is_none()));
        }
    }
}

fn named<'a>(head: &'a ScriptHead, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
    head.headers
        .iter()
        .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_slice())
}
