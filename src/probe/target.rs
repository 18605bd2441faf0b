//! A URL given to `cgigate probe`: `http://HOST[:PORT][/PATH][?QUERY]`, checked well enough that
//! it can be written into a request line and a Host field unchanged. Plain HTTP only.

use std::fmt;
use std::net::Ipv6Addr;
use std::str::FromStr;

/// One URL to probe: where to connect and what to ask for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The URL as given (shown in reports).
    pub url: String,
    /// Host name or address to connect to (IPv6 without brackets).
    pub host: String,
    /// TCP port (80 when the URL has none).
    pub port: u16,
    /// The Host field: the URL's authority as written.
    pub authority: String,
    /// The request target in origin form (`/path?query`, RFC 9112 §3.2.1).
    pub path: String,
}

impl Target {
    /// Parses an `http://` URL; the error explains what is wrong with it.
    pub fn parse(text: &str) -> Result<Target, String> {
        let Some(rest) = strip_prefix_ignore_case(text, "http://") else {
            if strip_prefix_ignore_case(text, "https://").is_some() {
                return Err("https is not supported: the probe speaks plain http:// only".into());
            }
            return Err("expected an http:// URL".into());
        };
        let rest = rest.split('#').next().unwrap_or_default();
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(end);
        let (host, port) = split_authority(authority)?;
        let path = match path {
            "" => "/".to_string(),
            p if p.starts_with('?') => format!("/{p}"),
            p => p.to_string(),
        };
        if !path.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("the path must be ASCII without spaces (percent-encode it)".into());
        }
        Ok(Target {
            url: text.to_string(),
            host,
            port,
            authority: authority.to_string(),
            path,
        })
    }

    /// Requests to targets with the same key may share a connection.
    pub fn key(&self) -> (String, u16) {
        (self.host.to_ascii_lowercase(), self.port)
    }

    /// `HOST:PORT` for messages, IPv6 in brackets.
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The bytes of a GET request for this target.
    pub fn request(&self) -> Vec<u8> {
        format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: cgigate-probe/{}\r\nAccept: */*\r\n\r\n",
            self.path,
            self.authority,
            env!("CARGO_PKG_VERSION")
        )
        .into_bytes()
    }
}

impl FromStr for Target {
    type Err = String;

    fn from_str(text: &str) -> Result<Target, String> {
        Target::parse(text)
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
    }
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// `host[:port]` or `[v6]:port` → (host, port).
fn split_authority(authority: &str) -> Result<(String, u16), String> {
    if authority.contains('@') {
        return Err("user names in URLs are not supported".into());
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or("unclosed [ in the host")?;
        host.parse::<Ipv6Addr>()
            .map_err(|_| format!("invalid IPv6 address {host:?}"))?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or("junk after the IPv6 address")?),
        };
        (host, port)
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let valid = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_';
    if host.is_empty() || !(host.contains(':') || host.bytes().all(valid)) {
        return Err(format!("invalid host {host:?}"));
    }
    let port = match port {
        None | Some("") => 80,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|&n| n != 0 && p.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| format!("invalid port {p:?}"))?,
    };
    Ok((host.to_string(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_host_port_path_and_query() {
        let t = Target::parse("http://127.0.0.1:8080/buffered/ticker?count=3#frag").unwrap();
        assert_eq!(
            (
                t.host.as_str(),
                t.port,
                t.authority.as_str(),
                t.path.as_str()
            ),
            (
                "127.0.0.1",
                8080,
                "127.0.0.1:8080",
                "/buffered/ticker?count=3"
            )
        );
        let t = Target::parse("HTTP://Example.org?x=1").unwrap();
        assert_eq!((t.port, t.path.as_str()), (80, "/?x=1"));
        assert_eq!(t.key(), ("example.org".to_string(), 80));
        let t = Target::parse("http://[::1]:9/").unwrap();
        assert_eq!((t.host.as_str(), t.address().as_str()), ("::1", "[::1]:9"));
        assert_eq!(
            String::from_utf8(t.request())
                .unwrap()
                .lines()
                .take(2)
                .collect::<Vec<_>>(),
            ["GET / HTTP/1.1", "Host: [::1]:9"]
        );
    }

    #[test]
    fn refuses_what_it_cannot_send() {
        for url in [
            "https://localhost/",
            "ftp://localhost/",
            "localhost:8080/",
            "http:///x",
            "http://user@localhost/",
            "http://local host/",
            "http://localhost:http/",
            "http://localhost:0/",
            "http://localhost:65536/",
            "http://localhost:+80/",
            "http://[::1/",
            "http://[nope]/",
            "http://localhost/a b",
            "http://localhost/é",
        ] {
            assert!(Target::parse(url).is_err(), "{url}");
        }
    }
}
