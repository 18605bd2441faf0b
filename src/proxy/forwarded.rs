//! The client an L7 proxy forwarded a request for: `X-Forwarded-For` / `X-Forwarded-Proto`,
//! or `Forwarded` (RFC 7239), read only when the connection comes from a trusted proxy.
//!
//! The rightmost-untrusted rule: each proxy appends the address it received the request
//! from, so the list is read from the right, skipping the hops that are trusted proxies
//! themselves; the first one that is not is the client. Anything left of it was written by
//! the client and proves nothing. A hop that is not an address (`unknown`, an obfuscated
//! name, garbage) ends the walk without a client: the trusted proxy's own address stands.
//! When every hop is trusted, the leftmost is the client.

use std::net::{IpAddr, SocketAddr};

use super::trusted::{canonical, Trusted};
use crate::http::syntax::{is_field_byte, is_qdtext, is_tchar, split_list, trim_ows};

/// What the forwarding headers say, as far as they are believed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Forwarded {
    /// The client's address; its port is 0 when the header gives none (X-Forwarded-For
    /// never does), as nginx's realip module does.
    pub(crate) client: Option<SocketAddr>,
    /// Whether the client's own connection was TLS (`https`) or not (`http`), when said.
    pub(crate) https: Option<bool>,
}

/// A hop of the chain: an address (with a port, if given), or something else.
type Hop = Option<SocketAddr>;

/// `X-Forwarded-For` and `X-Forwarded-Proto`, every field of each in order.
pub(crate) fn x_forwarded<'a>(
    xff: impl Iterator<Item = &'a [u8]>,
    xfp: impl Iterator<Item = &'a [u8]>,
    trusted: &Trusted,
) -> Forwarded {
    let hops: Vec<Hop> = list(xff).map(|h| node(h, false)).collect();
    let Some(at) = client_index(&hops, trusted) else {
        return Forwarded::default();
    };
    // The proto of the same hop when every proxy appended one, else the nearest proxy's.
    let protos: Vec<&[u8]> = list(xfp).collect();
    let proto = if protos.len() == hops.len() {
        protos.get(at)
    } else {
        protos.last()
    };
    Forwarded {
        client: hops[at],
        https: proto.and_then(|p| scheme(p)),
    }
}

/// `Forwarded` (RFC 7239 §4): elements of `for=`, `proto=` … pairs. A field that does not
/// parse is not believed at all.
pub(crate) fn forwarded<'a>(
    fields: impl Iterator<Item = &'a [u8]>,
    trusted: &Trusted,
) -> Forwarded {
    let mut elements = Vec::new();
    for field in fields {
        match parse_forwarded(field) {
            Some(mut e) => elements.append(&mut e),
            None => return Forwarded::default(),
        }
    }
    let hops: Vec<Hop> = elements.iter().map(|e| e.for_node).collect();
    let Some(at) = client_index(&hops, trusted) else {
        return Forwarded::default();
    };
    Forwarded {
        client: hops[at],
        https: elements[at].proto,
    }
}

/// The index of the client in `hops` by the rightmost-untrusted rule, or `None` if the
/// first untrusted hop is not an address (or there are no hops).
fn client_index(hops: &[Hop], trusted: &Trusted) -> Option<usize> {
    for (i, hop) in hops.iter().enumerate().rev() {
        match hop {
            Some(addr) if trusted.contains(addr.ip()) => continue,
            Some(_) => return Some(i),
            None => return None,
        }
    }
    // All trusted: the leftmost (a client inside the trusted networks).
    (!hops.is_empty()).then_some(0)
}

/// The comma-separated members of every field, empty ones skipped (RFC 9110 §5.6.1).
fn list<'a>(fields: impl Iterator<Item = &'a [u8]>) -> impl Iterator<Item = &'a [u8]> {
    fields.flat_map(split_list).filter(|m| !m.is_empty())
}

fn scheme(proto: &[u8]) -> Option<bool> {
    if proto.eq_ignore_ascii_case(b"https") {
        Some(true)
    } else if proto.eq_ignore_ascii_case(b"http") {
        Some(false)
    } else {
        None
    }
}

/// A node: `192.0.2.1`, `192.0.2.1:80`, `[2001:db8::1]`, `[2001:db8::1]:80`, and (not in
/// `Forwarded`, where IPv6 must be bracketed) a bare `2001:db8::1`. Anything else (names,
/// `unknown`, `_obfuscated`, an obfuscated port) is not an address.
fn node(text: &[u8], forwarded: bool) -> Hop {
    let text = std::str::from_utf8(text).ok()?;
    if let Some(rest) = text.strip_prefix('[') {
        let (ip, after) = rest.split_once(']')?;
        let ip: std::net::Ipv6Addr = ip.parse().ok()?;
        let port = match after {
            "" => 0,
            p => port(p.strip_prefix(':')?)?,
        };
        return Some(SocketAddr::new(canonical(IpAddr::V6(ip)), port));
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        if ip.is_ipv6() && forwarded {
            return None;
        }
        return Some(SocketAddr::new(canonical(ip), 0));
    }
    let (ip, p) = text.rsplit_once(':')?;
    let ip: std::net::Ipv4Addr = ip.parse().ok()?;
    Some(SocketAddr::new(IpAddr::V4(ip), port(p)?))
}

fn port(text: &str) -> Option<u16> {
    let ok = !text.is_empty() && text.len() <= 5 && text.bytes().all(|b| b.is_ascii_digit());
    ok.then(|| text.parse().ok()).flatten()
}

/// One element of `Forwarded`, as far as we use it.
#[derive(Debug, Default)]
struct Element {
    for_node: Hop,
    proto: Option<bool>,
}

/// `1#forwarded-element` (RFC 7239 §4), empty list elements skipped (RFC 9110 §5.6.1);
/// pairs are `token "=" ( token / quoted-string )`. `None` if it does not parse.
fn parse_forwarded(field: &[u8]) -> Option<Vec<Element>> {
    let mut elements = Vec::new();
    let mut element = Element::default();
    let mut rest = skip_empty(field);
    loop {
        let name_len = rest.iter().take_while(|&&b| is_tchar(b)).count();
        let (name, after) = rest.split_at(name_len);
        let after = after.strip_prefix(b"=")?;
        if name.is_empty() {
            return None;
        }
        let (value, after) = value(after)?;
        if name.eq_ignore_ascii_case(b"for") {
            element.for_node = node(&value, true);
        } else if name.eq_ignore_ascii_case(b"proto") {
            element.proto = scheme(&value);
        }
        let after = trim_ows(after);
        match after.first() {
            None => {
                elements.push(element);
                return Some(elements);
            }
            Some(b';') => rest = trim_ows(&after[1..]),
            Some(b',') => {
                elements.push(std::mem::take(&mut element));
                rest = skip_empty(&after[1..]);
                if rest.is_empty() {
                    return Some(elements);
                }
            }
            Some(_) => return None,
        }
    }
}

/// `input` without the OWS and commas of empty list elements in front.
fn skip_empty(input: &[u8]) -> &[u8] {
    let n = input
        .iter()
        .take_while(|&&b| matches!(b, b' ' | b'\t' | b','))
        .count();
    &input[n..]
}

/// A token or a quoted-string (RFC 9110 §5.6.4) and what follows it.
fn value(input: &[u8]) -> Option<(Vec<u8>, &[u8])> {
    if input.first() != Some(&b'"') {
        let n = input.iter().take_while(|&&b| is_tchar(b)).count();
        if n == 0 {
            return None;
        }
        return Some((input[..n].to_vec(), &input[n..]));
    }
    let mut out = Vec::new();
    let mut i = 1;
    while let Some(&b) = input.get(i) {
        match b {
            b'"' => return Some((out, &input[i + 1..])),
            // quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )
            b'\\' => {
                out.push(*input.get(i + 1).filter(|&&e| is_field_byte(e))?);
                i += 2;
            }
            b if is_qdtext(b) => {
                out.push(b);
                i += 1;
            }
            _ => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trusted() -> Trusted {
        Trusted(vec![
            "127.0.0.0/8".parse().unwrap(),
            "10.0.0.0/8".parse().unwrap(),
        ])
    }

    fn addr(s: &str) -> Option<SocketAddr> {
        Some(s.parse().unwrap())
    }

    fn xff(fields: &[&str], protos: &[&str]) -> Forwarded {
        x_forwarded(
            fields.iter().map(|f| f.as_bytes()),
            protos.iter().map(|f| f.as_bytes()),
            &trusted(),
        )
    }

    #[test]
    fn x_forwarded_for_takes_the_rightmost_untrusted_hop() {
        let f = xff(&["203.0.113.9, 198.51.100.2, 10.0.0.5"], &[]);
        assert_eq!(f.client, addr("198.51.100.2:0"));
        // Over several fields, in order; the client's own claim on the left is not believed.
        let f = xff(
            &["6.6.6.6", "198.51.100.2", "10.0.0.5 ,127.0.0.1"],
            &["https"],
        );
        assert_eq!(f.client, addr("198.51.100.2:0"));
        assert_eq!(f.https, Some(true));
        // All trusted: the leftmost.
        assert_eq!(
            xff(&["10.1.1.1, 127.0.0.1"], &[]).client,
            addr("10.1.1.1:0")
        );
        // Ports and brackets, as some proxies write them; IPv6 plain.
        assert_eq!(xff(&["192.0.2.1:4711"], &[]).client, addr("192.0.2.1:4711"));
        assert_eq!(
            xff(&["[2001:db8::1]:80"], &[]).client,
            addr("[2001:db8::1]:80")
        );
        assert_eq!(xff(&["2001:db8::1"], &[]).client, addr("[2001:db8::1]:0"));
        // Garbage at the first untrusted hop: no client, the proxy's address stands.
        assert_eq!(
            xff(&["192.0.2.1, evil, 10.0.0.1"], &[]),
            Forwarded::default()
        );
        assert_eq!(xff(&[], &["https"]), Forwarded::default());
        assert_eq!(xff(&[" , "], &[]), Forwarded::default());
    }

    #[test]
    fn x_forwarded_proto_goes_with_its_hop() {
        let f = xff(&["192.0.2.1, 10.0.0.1"], &["https, http"]);
        assert_eq!(f.https, Some(true));
        // Counts that differ: the nearest proxy's word.
        let f = xff(&["192.0.2.1, 10.0.0.1"], &["HTTP"]);
        assert_eq!(f.https, Some(false));
        assert_eq!(xff(&["192.0.2.1"], &["gopher"]).https, None);
    }

    fn fwd(fields: &[&str]) -> Forwarded {
        forwarded(fields.iter().map(|f| f.as_bytes()), &trusted())
    }

    #[test]
    fn forwarded_elements_by_the_same_rule() {
        // RFC 7239 §4's examples.
        let f = fwd(&["for=192.0.2.60;proto=http;by=203.0.113.43"]);
        assert_eq!((f.client, f.https), (addr("192.0.2.60:0"), Some(false)));
        let f = fwd(&["for=192.0.2.43, for=198.51.100.17;proto=https, for=10.0.0.2"]);
        assert_eq!((f.client, f.https), (addr("198.51.100.17:0"), Some(true)));
        let f = fwd(&["For=\"[2001:db8:cafe::17]:4711\""]);
        assert_eq!(f.client, addr("[2001:db8:cafe::17]:4711"));
        let f = fwd(&["for=192.0.2.43", "for=\"10.0.0.9:80\";proto=HTTPS"]);
        assert_eq!(f.client, addr("192.0.2.43:0"));
        // unknown, obfuscated, unbracketed IPv6: not addresses, so no client.
        for f in [
            "for=unknown",
            "for=_hidden",
            "for=\"2001:db8::1\"",
            "for=\"[::1]:_p\"",
        ] {
            assert_eq!(fwd(&[f]).client, None, "{f}");
        }
    }

    #[test]
    fn a_forwarded_field_that_does_not_parse_is_not_believed() {
        for f in [
            "for",
            "for=",
            "=1.2.3.4",
            "for=1.2.3.4;",
            "for=1.2.3.4 proto=http",
            "for=\"1.2.3.4",
            "for=\"a\x01\"",
        ] {
            assert_eq!(fwd(&[f]), Forwarded::default(), "{f:?}");
        }
        // Empty list elements are skipped.
        assert_eq!(
            fwd(&[", for=1.2.3.4,, for=5.6.7.8 ,"]).client,
            addr("5.6.7.8:0")
        );
        // One bad field spoils the rest.
        assert_eq!(fwd(&["for=192.0.2.1", "for"]), Forwarded::default());
    }
}
