//! `proxy::header::parse`, the PROXY protocol v1/v2 parser, two ways.
//!
//! Arbitrary bytes: no panic; a header's length is within the input, it parses the same
//! from exactly its own bytes, and every shorter prefix is incomplete; a v1 TCP4 header is
//! the canonical line re-encoded from what was parsed, a v2 one starts with the fixed part
//! re-encoded. Built headers (addresses, TLVs, bytes behind them, either version): parsed
//! back to the same addresses and length.
#![no_main]

use std::net::SocketAddr;

use arbitrary::Arbitrary;
use cgigate::parsers::proxy_header::{parse, Parsed, ProxyHeader};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input {
    raw: Vec<u8>,
    src: SocketAddr,
    dst: SocketAddr,
    v2: bool,
    tlvs: Vec<(u8, Vec<u8>)>,
    tail: Vec<u8>,
}

fuzz_target!(|input: Input| {
    check_raw(&input.raw);
    check_built(&input);
});

fn check_raw(data: &[u8]) {
    let Ok(Parsed::Header(h)) = parse(data) else {
        return;
    };
    assert!(h.len <= data.len());
    let own = &data[..h.len];
    assert_eq!(parse(own), Ok(Parsed::Header(h)));
    for cut in 0..h.len {
        assert_eq!(parse(&data[..cut]), Ok(Parsed::Incomplete), "cut at {cut}");
    }
    let Some((src, dst)) = h.addresses else {
        return;
    };
    if own.starts_with(b"PROXY TCP4 ") {
        let line = format!("PROXY TCP4 {} {} {} {}\r\n", src.ip(), dst.ip(), src.port(), dst.port());
        assert_eq!(own, line.as_bytes());
    } else if !own.starts_with(b"PROXY ") {
        let fixed = v2_addresses(src, dst);
        assert_eq!(&own[16..16 + fixed.len()], fixed.as_slice());
    }
}

fn v2_addresses(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    let mut b = Vec::new();
    match (src, dst) {
        (SocketAddr::V4(s), SocketAddr::V4(d)) => {
            b.extend_from_slice(&s.ip().octets());
            b.extend_from_slice(&d.ip().octets());
        }
        (SocketAddr::V6(s), SocketAddr::V6(d)) => {
            b.extend_from_slice(&s.ip().octets());
            b.extend_from_slice(&d.ip().octets());
        }
        _ => unreachable!("one family per header"),
    }
    b.extend_from_slice(&src.port().to_be_bytes());
    b.extend_from_slice(&dst.port().to_be_bytes());
    b
}

fn check_built(input: &Input) {
    // Both addresses of one family, as a header carries them.
    let dst = match (input.src, input.dst) {
        (SocketAddr::V4(_), SocketAddr::V6(d)) => SocketAddr::new(
            d.ip().to_ipv4_mapped().unwrap_or(std::net::Ipv4Addr::LOCALHOST).into(),
            d.port(),
        ),
        (SocketAddr::V6(_), SocketAddr::V4(d)) => {
            SocketAddr::new(d.ip().to_ipv6_mapped().into(), d.port())
        }
        _ => input.dst,
    };
    // A header carries no IPv6 flow label or scope id.
    let plain = |a: SocketAddr| SocketAddr::new(a.ip(), a.port());
    let (src, dst) = (plain(input.src), plain(dst));
    let mut header = if input.v2 {
        let block = v2_addresses(src, dst);
        let mut tlvs = Vec::new();
        for (kind, value) in &input.tlvs {
            let value = &value[..value.len().min(512)];
            tlvs.push(*kind);
            tlvs.extend_from_slice(&(value.len() as u16).to_be_bytes());
            tlvs.extend_from_slice(value);
        }
        tlvs.truncate(3000);
        // A TLV cut by the truncation would be malformed: keep whole ones only.
        let mut whole = 0;
        while whole + 3 <= tlvs.len() {
            let len = 3 + usize::from(u16::from_be_bytes([tlvs[whole + 1], tlvs[whole + 2]]));
            if whole + len > tlvs.len() {
                break;
            }
            whole += len;
        }
        tlvs.truncate(whole);
        let family = if src.is_ipv4() { 0x11 } else { 0x21 };
        let mut b = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
        b.extend_from_slice(&[0x21, family]);
        b.extend_from_slice(&((block.len() + tlvs.len()) as u16).to_be_bytes());
        b.extend_from_slice(&block);
        b.extend_from_slice(&tlvs);
        b
    } else {
        let family = if src.is_ipv4() { "TCP4" } else { "TCP6" };
        format!(
            "PROXY {family} {} {} {} {}\r\n",
            src.ip(),
            dst.ip(),
            src.port(),
            dst.port()
        )
        .into_bytes()
    };
    let len = header.len();
    header.extend_from_slice(&input.tail);
    let expected = ProxyHeader {
        addresses: Some((src, dst)),
        len,
    };
    assert_eq!(parse(&header), Ok(Parsed::Header(expected)));
}
