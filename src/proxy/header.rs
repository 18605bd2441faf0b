//! The PROXY protocol header a balancer puts before a connection's first byte (HAProxy's
//! proxy-protocol.txt, versions 1 and 2), parsed sans-IO: [`parse`] looks at the bytes
//! received so far and says whether they are a whole header (and how many bytes it took),
//! need more, or cannot be one. The shell that reads the socket is `server`'s.
//!
//! Strict where the text allows it: v1 is one line of at most 107 bytes with single spaces,
//! addresses of the named family, ports of 1 to 5 digits without leading zeros; v2 has the
//! version 2, a known command, and address blocks and TLVs that fit the stated length. TLVs
//! are walked to check their framing and otherwise ignored.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The v2 signature (proxy-protocol.txt §2.2).
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// v1's first bytes.
const V1_PREFIX: &[u8] = b"PROXY ";
/// The longest v1 line, CRLF included (§2.1).
pub const V1_MAX: usize = 107;
/// The longest v2 header we take: 16 bytes and the longest address block (AF_UNIX, 216)
/// with room for TLVs (SSL, authority, unique id …) well beyond what balancers send.
pub const V2_MAX: usize = 16 + 4096;

/// What a header says about the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProxyHeader {
    /// The client's address and the one it connected to; `None` when the header carries
    /// none to use (v1 `UNKNOWN`, v2 `LOCAL`, an unspecified or AF_UNIX family): the
    /// connection's own addresses stand.
    pub addresses: Option<(SocketAddr, SocketAddr)>,
    /// The header's length: the connection's own bytes start after it.
    pub len: usize,
}

/// What the bytes received so far are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A whole header.
    Header(ProxyHeader),
    /// The start of one, or of something that may still become one: read more.
    Incomplete,
    /// Not a PROXY header: the connection's own first bytes.
    NotProxy,
}

/// Why bytes that began like a PROXY header are not a valid one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("bad PROXY header: {0}")]
pub struct BadHeader(
    /// What is wrong with it.
    pub &'static str,
);

/// Parse the start of a connection.
pub fn parse(buf: &[u8]) -> Result<Parsed, BadHeader> {
    if could_start(buf, &V2_SIGNATURE) {
        if buf.len() < V2_SIGNATURE.len() {
            return Ok(Parsed::Incomplete);
        }
        return parse_v2(buf);
    }
    if could_start(buf, V1_PREFIX) {
        if buf.len() < V1_PREFIX.len() {
            return Ok(Parsed::Incomplete);
        }
        return parse_v1(buf);
    }
    Ok(Parsed::NotProxy)
}

/// Whether `buf` and `signature` agree on their common length (an empty `buf` agrees).
fn could_start(buf: &[u8], signature: &[u8]) -> bool {
    let n = buf.len().min(signature.len());
    buf[..n] == signature[..n]
}

/// `PROXY TCP4 1.2.3.4 5.6.7.8 1111 2222\r\n` (§2.1).
fn parse_v1(buf: &[u8]) -> Result<Parsed, BadHeader> {
    let window = &buf[..buf.len().min(V1_MAX)];
    let Some(end) = window.windows(2).position(|w| w == b"\r\n") else {
        if buf.len() >= V1_MAX {
            return Err(BadHeader("v1 line longer than 107 bytes"));
        }
        // A bare LF, or any byte a v1 line cannot hold, fails at once rather than waiting.
        if let Some(&b) = window
            .iter()
            .find(|&&b| !(b' '..=b'~').contains(&b) && b != b'\r')
        {
            return Err(BadHeader(if b == b'\n' {
                "v1 line ends without CR"
            } else {
                "v1 line holds a byte outside printable ASCII"
            }));
        }
        return Ok(Parsed::Incomplete);
    };
    let line = &window[V1_PREFIX.len()..end];
    let len = end + 2;
    let mut fields = line.split(|&b| b == b' ');
    let family = fields.next().unwrap_or_default();
    if family == b"UNKNOWN" {
        // §2.1: the receiver must ignore anything after UNKNOWN up to the CRLF.
        return Ok(Parsed::Header(ProxyHeader {
            addresses: None,
            len,
        }));
    }
    let v6 = match family {
        b"TCP4" => false,
        b"TCP6" => true,
        _ => return Err(BadHeader("v1 family is not TCP4, TCP6 or UNKNOWN")),
    };
    let (Some(src), Some(dst), Some(sport), Some(dport), None) = (
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
    ) else {
        return Err(BadHeader(
            "v1 line needs exactly four fields after the family",
        ));
    };
    let source = SocketAddr::new(v1_address(src, v6)?, v1_port(sport)?);
    let destination = SocketAddr::new(v1_address(dst, v6)?, v1_port(dport)?);
    Ok(Parsed::Header(ProxyHeader {
        addresses: Some((source, destination)),
        len,
    }))
}

fn v1_address(field: &[u8], v6: bool) -> Result<IpAddr, BadHeader> {
    let text = std::str::from_utf8(field).map_err(|_| BadHeader("v1 address is not text"))?;
    let ip = if v6 {
        text.parse::<Ipv6Addr>().map(IpAddr::V6)
    } else {
        text.parse::<Ipv4Addr>().map(IpAddr::V4)
    };
    ip.map_err(|_| BadHeader("v1 address does not match its family"))
}

fn v1_port(field: &[u8]) -> Result<u16, BadHeader> {
    let digits = !field.is_empty() && field.len() <= 5 && field.iter().all(u8::is_ascii_digit);
    if !digits || (field.len() > 1 && field[0] == b'0') {
        return Err(BadHeader("v1 port is not 0-65535 without leading zeros"));
    }
    std::str::from_utf8(field)
        .ok()
        .and_then(|t| t.parse().ok())
        .ok_or(BadHeader("v1 port is not 0-65535 without leading zeros"))
}

/// The binary header (§2.2): signature, version and command, family and protocol, length,
/// then the addresses and TLVs.
fn parse_v2(buf: &[u8]) -> Result<Parsed, BadHeader> {
    let Some(&[ver_cmd, fam_proto, hi, lo]) = buf.get(12..16) else {
        return Ok(Parsed::Incomplete);
    };
    if ver_cmd >> 4 != 2 {
        return Err(BadHeader("v2 version is not 2"));
    }
    let local = match ver_cmd & 0x0f {
        0 => true,
        1 => false,
        _ => return Err(BadHeader("v2 command is neither LOCAL nor PROXY")),
    };
    let body_len = usize::from(u16::from_be_bytes([hi, lo]));
    let len = 16 + body_len;
    if len > V2_MAX {
        return Err(BadHeader("v2 header longer than 4112 bytes"));
    }
    let Some(body) = buf.get(16..len) else {
        return Ok(Parsed::Incomplete);
    };
    let (family, protocol) = (fam_proto >> 4, fam_proto & 0x0f);
    if protocol > 2 || family > 3 {
        return Err(BadHeader("v2 family or protocol unknown"));
    }
    // Each family's address block, its size (§2.2).
    let block = match family {
        1 => 12,
        2 => 36,
        3 => 216,
        _ => 0,
    };
    let Some((addrs, tlvs)) = body.split_at_checked(block) else {
        return Err(BadHeader("v2 addresses longer than the header"));
    };
    check_tlvs(tlvs)?;
    // LOCAL (a balancer's health check) and UNSPEC carry no addresses to use; a PROXY
    // header for a datagram connection makes no sense on a TCP listener.
    if !local && protocol == 2 {
        return Err(BadHeader("v2 header for a datagram connection"));
    }
    let addresses = match (local, family, protocol) {
        (false, 1 | 2, 1) => Some(v2_addresses(addrs, family == 2)),
        _ => None,
    };
    Ok(Parsed::Header(ProxyHeader { addresses, len }))
}

/// Source and destination from an INET (12 bytes) or INET6 (36 bytes) block.
fn v2_addresses(block: &[u8], v6: bool) -> (SocketAddr, SocketAddr) {
    let take = |at: usize, n: usize| &block[at..at + n];
    let port = |at: usize| u16::from_be_bytes([block[at], block[at + 1]]);
    let (src, dst, ports) = if v6 {
        let ip = |at| {
            let mut o = [0u8; 16];
            o.copy_from_slice(take(at, 16));
            IpAddr::V6(Ipv6Addr::from(o))
        };
        (ip(0), ip(16), 32)
    } else {
        let ip = |at| {
            let mut o = [0u8; 4];
            o.copy_from_slice(take(at, 4));
            IpAddr::V4(Ipv4Addr::from(o))
        };
        (ip(0), ip(4), 8)
    };
    (
        SocketAddr::new(src, port(ports)),
        SocketAddr::new(dst, port(ports + 2)),
    )
}

/// TLVs (§2.2.7): type, 2-byte length, value, to the end of the header; each must fit.
fn check_tlvs(mut rest: &[u8]) -> Result<(), BadHeader> {
    while !rest.is_empty() {
        let Some(&[_kind, hi, lo]) = rest.get(..3) else {
            return Err(BadHeader("v2 TLV cut short"));
        };
        let end = 3 + usize::from(u16::from_be_bytes([hi, lo]));
        rest = rest
            .get(end..)
            .ok_or(BadHeader("v2 TLV longer than the header"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn header(src: &str, dst: &str, len: usize) -> Parsed {
        Parsed::Header(ProxyHeader {
            addresses: Some((addr(src), addr(dst))),
            len,
        })
    }

    /// A v2 header: command, family/protocol, address block, TLVs.
    fn v2(cmd: u8, fam: u8, block: &[u8], tlvs: &[u8]) -> Vec<u8> {
        let mut b = V2_SIGNATURE.to_vec();
        b.push(0x20 | cmd);
        b.push(fam);
        let len = u16::try_from(block.len() + tlvs.len()).unwrap();
        b.extend_from_slice(&len.to_be_bytes());
        b.extend_from_slice(block);
        b.extend_from_slice(tlvs);
        b
    }

    const INET: [u8; 12] = [192, 0, 2, 7, 10, 0, 0, 1, 0x30, 0x39, 0x00, 0x50];

    #[test]
    fn v1_headers_give_addresses_and_length() {
        let line = b"PROXY TCP4 192.0.2.7 10.0.0.1 12345 80\r\nGET /";
        assert_eq!(
            parse(line),
            Ok(header("192.0.2.7:12345", "10.0.0.1:80", 40))
        );
        let line = b"PROXY TCP6 2001:db8::1 ::1 65535 0\r\n";
        assert_eq!(
            parse(line),
            Ok(header("[2001:db8::1]:65535", "[::1]:0", line.len()))
        );
        let line = b"PROXY UNKNOWN whatever follows\r\n";
        assert_eq!(
            parse(line),
            Ok(Parsed::Header(ProxyHeader {
                addresses: None,
                len: line.len()
            }))
        );
    }

    #[test]
    fn v2_headers_give_addresses_and_length() {
        let b = v2(1, 0x11, &INET, &[]);
        assert_eq!(parse(&b), Ok(header("192.0.2.7:12345", "10.0.0.1:80", 28)));
        let mut block = [0u8; 36];
        block[15] = 1; // ::1
        block[16] = 0x20;
        block[17] = 0x01; // 2001::
        block[32..36].copy_from_slice(&[0x01, 0xbb, 0x1f, 0x90]);
        let b = v2(1, 0x21, &block, &[1, 0, 2, b'h', b'2', 0xee, 0, 0]);
        assert_eq!(parse(&b), Ok(header("[::1]:443", "[2001::]:8080", 52 + 8)));
        // LOCAL (a health check), UNSPEC and AF_UNIX keep the connection's addresses.
        for b in [
            v2(0, 0x00, &[], &[]),
            v2(0, 0x11, &INET, &[]),
            v2(1, 0x00, &[], &[]),
            v2(1, 0x31, &[0; 216], &[]),
        ] {
            let len = b.len();
            assert_eq!(
                parse(&b),
                Ok(Parsed::Header(ProxyHeader {
                    addresses: None,
                    len
                })),
                "{b:?}"
            );
        }
    }

    #[test]
    fn other_first_bytes_are_not_proxy_headers() {
        for start in [
            &b"GET / HTTP/1.1\r\n"[..],
            b"\x16\x03\x01\x02\x00", // a TLS ClientHello
            b"PROXYX",
            b"\r\n\r\n\0\r\nQUIX",
            b"P ",
        ] {
            assert_eq!(parse(start), Ok(Parsed::NotProxy), "{start:?}");
        }
    }

    /// Every header, cut at every byte, is incomplete until its last byte, and the same
    /// header with the connection's first bytes behind it takes only its own.
    #[test]
    fn headers_split_at_every_byte() {
        let headers = [
            b"PROXY TCP4 192.0.2.7 10.0.0.1 12345 80\r\n".to_vec(),
            b"PROXY UNKNOWN\r\n".to_vec(),
            v2(1, 0x11, &INET, &[4, 0, 1, 9]),
            v2(0, 0x00, &[], &[]),
        ];
        for h in headers {
            for cut in 0..h.len() {
                assert_eq!(parse(&h[..cut]), Ok(Parsed::Incomplete), "{h:?} at {cut}");
            }
            let whole = parse(&h).unwrap();
            let mut more = h.clone();
            more.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
            assert_eq!(parse(&more), Ok(whole));
            let Parsed::Header(p) = whole else {
                panic!("{whole:?}")
            };
            assert_eq!(p.len, h.len());
        }
    }

    /// The bad-input table: each malformed header and the reason it is refused.
    #[test]
    fn malformed_headers_are_refused_with_a_reason() {
        let mut long = b"PROXY TCP4 ".to_vec();
        long.resize(V1_MAX, b'1');
        let mut huge = V2_SIGNATURE.to_vec();
        huge.extend_from_slice(&[0x21, 0x11, 0xff, 0xff]);
        let mut bad_version = v2(1, 0x11, &INET, &[]);
        bad_version[12] = 0x11;
        let table: Vec<(Vec<u8>, &str)> = vec![
            (long, "longer than 107"),
            (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n".to_vec(), "without CR"),
            (b"PROXY TCP4 1.2.3.4\t5.6.7.8".to_vec(), "printable"),
            (b"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n".to_vec(), "family"),
            (b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n".to_vec(), "four fields"),
            (
                b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n".to_vec(),
                "four fields",
            ),
            (
                b"PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n".to_vec(),
                "four fields",
            ),
            (
                b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n".to_vec(),
                "four fields",
            ),
            (b"PROXY TCP4 ::1 5.6.7.8 1 2\r\n".to_vec(), "family"),
            (b"PROXY TCP6 1.2.3.4 ::1 1 2\r\n".to_vec(), "family"),
            (b"PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n".to_vec(), "family"),
            (b"PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n".to_vec(), "port"),
            (b"PROXY TCP4 1.2.3.4 5.6.7.8 080 2\r\n".to_vec(), "port"),
            (b"PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n".to_vec(), "port"),
            (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 \r\n".to_vec(), "port"),
            (b"PROXY \r\n".to_vec(), "family"),
            (bad_version, "version"),
            (v2(2, 0x11, &INET, &[]), "command"),
            (v2(1, 0x41, &INET, &[]), "unknown"),
            (v2(1, 0x13, &INET, &[]), "unknown"),
            (v2(1, 0x12, &INET, &[]), "datagram"),
            (v2(1, 0x11, &INET[..8], &[]), "addresses longer"),
            (v2(1, 0x21, &INET, &[]), "addresses longer"),
            (v2(1, 0x11, &INET, &[1, 0]), "cut short"),
            (v2(1, 0x11, &INET, &[1, 0, 5, 1]), "TLV longer"),
            (huge, "longer than 4112"),
        ];
        for (input, reason) in table {
            match parse(&input) {
                Err(BadHeader(why)) => assert!(why.contains(reason), "{input:?}: {why}"),
                other => panic!("{:?}: {other:?}", String::from_utf8_lossy(&input)),
            }
        }
    }
}
