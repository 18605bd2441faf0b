//! The CGI environment: RFC 3875 §4.1 meta-variables built from one request (pure, no I/O).
//!
//! [`build`] layers four sources; a later one replaces an earlier variable of the same name:
//!
//! 1. the server's own variables named in the config's `pass_env` ([`inherited`]). Nothing
//!    else of the server's environment reaches a script.
//! 2. the CGI meta-variables of RFC 3875 §4.1, plus the Apache-style extensions scripts
//!    (PHP above all) rely on: `REQUEST_URI`, `REQUEST_SCHEME`, `HTTPS`, `SCRIPT_FILENAME`,
//!    `DOCUMENT_ROOT`, `SERVER_ADDR`, `REMOTE_PORT`, `REDIRECT_STATUS`.
//! 3. `HTTP_*` variables for the request header fields ([`http_vars`], RFC 3875 §4.1.18).
//! 4. the config's `env`, last, so an operator can override anything computed.
//!
//! This follows golang's `net/http/cgi` host (meta-variables, then headers, then the
//! handler's `Env`), except that `pass_env` comes first here so it can never shadow a
//! meta-variable computed for the request.
//!
//! | variable | set when | value |
//! |---|---|---|
//! | `GATEWAY_INTERFACE` | always | `CGI/1.1` |
//! | `SERVER_SOFTWARE` | always | `server_software` |
//! | `SERVER_NAME` | always | host without `:port` (IPv6 keeps brackets); the local IP if no host |
//! | `SERVER_PORT` | always | local port |
//! | `SERVER_ADDR` | always | local IP (IPv6 without brackets, IPv4-mapped as IPv4) |
//! | `SERVER_PROTOCOL` | always | `protocol` |
//! | `REQUEST_METHOD` | always | `method` |
//! | `REQUEST_URI` | always | raw request-target |
//! | `REQUEST_SCHEME` | always | `http` or `https` |
//! | `HTTPS` | TLS | `on` |
//! | `SCRIPT_NAME` | always | `script_name` |
//! | `SCRIPT_FILENAME` | always | `script_filename` |
//! | `PATH_INFO` | `path_info` non-empty | decoded path info |
//! | `PATH_TRANSLATED` | `PATH_INFO` set and `document_root` non-empty | root + path info, one `/` between |
//! | `QUERY_STRING` | always (maybe empty) | raw query |
//! | `REMOTE_ADDR` | always | peer IP (IPv6 without brackets, IPv4-mapped as IPv4) |
//! | `REMOTE_PORT` | always | peer port |
//! | `DOCUMENT_ROOT` | always | `document_root` |
//! | `REDIRECT_STATUS` | always | `200` |
//! | `CONTENT_LENGTH` | `content_length` is `Some` | decimal length |
//! | `CONTENT_TYPE` | `has_body` and a `Content-Type` field | the first such field's value |
//! | `HTTP_*` | per exported header field | see [`http_vars`] |
//!
//! Not set: `AUTH_TYPE`/`REMOTE_USER` (RFC 3875 §4.1.1, §4.1.11: the gateway authenticates
//! nobody), `REMOTE_IDENT` (§4.1.10, MAY) and `REMOTE_HOST` (§4.1.9 SHOULD, but without
//! reverse DNS it could only repeat `REMOTE_ADDR`, and SPEC §5.2 does not list it).
//!
//! Values are bytes because header values may carry obs-text (RFC 9110 §5.5); names are
//! ASCII. A variable whose value would hold a NUL byte is never set: `execve` would cut it
//! there (the head parser already refuses NUL, this is a second line of defence).

use std::ffi::OsString;
use std::net::{IpAddr, SocketAddr};

use crate::handler::{Request, SERVER_SOFTWARE};
use crate::http::path::percent_decode;
use crate::http::syntax::{is_hop_by_hop, trim_ows};

/// Everything the environment is built from.
pub struct EnvRequest<'a> {
    /// Request method, e.g. `GET`.
    pub method: &'a str,
    /// Raw request-target, exported as `REQUEST_URI`.
    pub target: &'a str,
    /// Raw query without `?` (`""` if none), exported as `QUERY_STRING` (always set).
    pub query: &'a str,
    /// `HTTP/1.1` or `HTTP/1.0`.
    pub protocol: &'a str,
    /// Request header fields in order: name as sent, value OWS-trimmed (may hold obs-text).
    pub headers: &'a [(&'a [u8], &'a [u8])],
    /// Effective host of the request (`""` if none); may include `:port`; IPv6 in brackets.
    pub host: &'a str,
    /// The client's address.
    pub peer: SocketAddr,
    /// The address the request arrived on.
    pub local: SocketAddr,
    /// The connection is TLS.
    pub tls: bool,
    /// Decoded URL path of the script, e.g. `/cgi-bin/env`.
    pub script_name: &'a str,
    /// Absolute file path of the script.
    pub script_filename: &'a str,
    /// Decoded path info after the script name, `""` if none.
    pub path_info: &'a str,
    /// Folder exported as `DOCUMENT_ROOT` and used for `PATH_TRANSLATED`.
    pub document_root: &'a str,
    /// `Some` when the request has a body whose length the script will see (`CONTENT_LENGTH`).
    pub content_length: Option<u64>,
    /// The request has a body (`CONTENT_TYPE` is exported only then).
    pub has_body: bool,
    /// Export `Authorization` as `HTTP_AUTHORIZATION`.
    pub pass_auth: bool,
    /// Non-empty: only these fields (lower case) are exported, still under every rule
    /// below (`pass_headers`, Tomcat's `envHttpHeaders`).
    pub pass_headers: &'a [String],
    /// Exported as `SERVER_SOFTWARE`, e.g. `cgigate/0.1.0`.
    pub server_software: &'a str,
}

/// The server's own environment, filtered: the names in `pass_env` that are set.
///
/// `lookup` is normally `|name| std::env::var_os(name)`. Names come back in `pass_env`
/// order, each once. A name that is empty or holds `=` or NUL cannot be an environment
/// variable and is skipped without a lookup. On Unix values are passed byte for byte.
#[must_use]
pub fn inherited(
    pass_env: &[String],
    lookup: impl Fn(&str) -> Option<OsString>,
) -> Vec<(String, Vec<u8>)> {
    let mut vars: Vec<(String, Vec<u8>)> = Vec::new();
    for name in pass_env {
        if !is_settable_name(name) || vars.iter().any(|(seen, _)| seen == name) {
            continue;
        }
        if let Some(value) = lookup(name) {
            vars.push((name.clone(), os_bytes(value)));
        }
    }
    vars
}

/// Build the complete environment, in this order: `inherited` (`pass_env`) vars, then the CGI
/// meta-variables, then `HTTP_*`, then `extra` (the config's `env`) applied last so it
/// overrides anything computed.
///
/// Later entries replace earlier ones with the same name; the result has each name once,
/// sorted by name (deterministic for tests and logs). Names from `inherited` and `extra` are
/// taken as configured, except that one that could not be set at all (empty, or holding `=`
/// or NUL) is dropped. An entry whose value holds NUL is dropped and does not replace an
/// earlier value.
#[must_use]
pub fn build(
    req: &EnvRequest<'_>,
    inherited: Vec<(String, Vec<u8>)>,
    extra: &[(String, String)],
) -> Vec<(String, Vec<u8>)> {
    let mut env = Env(Vec::with_capacity(32 + inherited.len() + extra.len()));
    for (name, value) in inherited {
        env.set(name, value);
    }
    server_meta(req, &mut env);
    request_vars(req, &mut env);
    script_vars(req, &mut env);
    body_vars(req, &mut env);
    for (name, value) in http_vars(req) {
        env.set(name, value);
    }
    for (name, value) in extra {
        env.set(name.as_str(), value.as_bytes());
    }
    env.into_sorted()
}

/// Just the `HTTP_*` variables (also used for ISAPI's `ALL_HTTP`), in the order each name
/// first appears in the request.
///
/// RFC 3875 §4.1.18: the name is the field name upper-cased with `-` → `_`, prefixed
/// `HTTP_`. Fields repeated under one name (compared case-insensitively) are joined in
/// order with `, ` (RFC 9110 §5.3), `Cookie` with `; ` (RFC 9113 §8.2.3, RFC 6265 §5.4).
///
/// Never exported:
/// - a name holding anything but ASCII letters, digits and `-`: `X_Foo` would become the same
///   `HTTP_X_FOO` as `X-Foo` and let a client spoof a header a front proxy set;
/// - `Proxy`: a script would read `HTTP_PROXY` as its outgoing proxy (httpoxy, CVE-2016-5385);
/// - `Content-Length`, `Content-Type`: they have their own variables (RFC 3875 §4.1.18);
/// - hop-by-hop fields and every field the `Connection` field names (RFC 9110 §7.6.1);
/// - `Proxy-Authorization` always, `Authorization` unless `pass_auth` (RFC 3875 §4.1.18:
///   fields carrying authentication information SHOULD be removed);
/// - a variable whose joined value holds NUL;
/// - with a `pass_headers` allowlist, any field it does not name.
#[must_use]
pub fn http_vars(req: &EnvRequest<'_>) -> Vec<(String, Vec<u8>)> {
    let nominated = connection_options(req.headers);
    let mut vars: Vec<(String, Vec<u8>)> = Vec::new();
    for &(field, value) in req.headers {
        if !is_exported(field, &nominated, req.pass_auth) || !is_allowed(field, req.pass_headers) {
            continue;
        }
        let name = http_var_name(field);
        // A linear search: the head parser bounds the number of fields to a few dozen.
        match vars.iter_mut().find(|(seen, _)| *seen == name) {
            // RFC 3875 §4.1.18: repeated fields MUST become a single value of the same meaning.
            Some((_, joined)) => {
                joined.extend_from_slice(list_separator(field));
                joined.extend_from_slice(value);
            }
            None => vars.push((name, value.to_vec())),
        }
    }
    vars.retain(|(_, value)| !has_nul(value));
    vars
}

/// The variables under construction, in the order they were set; [`Env::into_sorted`] keeps
/// the last value of each name. A list sorted once at the end, not a map kept sorted: the
/// map's inserts cost about 340 instructions each (a few thousand per request, on every CGI
/// and plugin call), the one sort of some thirty entries a fraction of that.
struct Env(Vec<(String, Vec<u8>)>);

impl Env {
    /// Set `name`, unless the name cannot be set or the value holds NUL (`execve` would
    /// truncate it, so the previous value, if any, stands).
    fn set(&mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) {
        let (name, value) = (name.into(), value.into());
        if is_settable_name(&name) && !has_nul(&value) {
            self.0.push((name, value));
        }
    }

    /// Each name once, the value set last, sorted by name.
    fn into_sorted(mut self) -> Vec<(String, Vec<u8>)> {
        // Stable: a name's values stay in the order they were set, so the last one wins.
        self.0.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out: Vec<(String, Vec<u8>)> = Vec::with_capacity(self.0.len());
        for (name, value) in self.0 {
            match out.last_mut() {
                Some(last) if last.0 == name => last.1 = value,
                _ => out.push((name, value)),
            }
        }
        out
    }
}

/// Variables describing the gateway and the connection's local end.
fn server_meta(req: &EnvRequest<'_>, env: &mut Env) {
    // RFC 3875 §4.1.4
    env.set("GATEWAY_INTERFACE", "CGI/1.1");
    // RFC 3875 §4.1.17
    env.set("SERVER_SOFTWARE", req.server_software);
    // RFC 3875 §4.1.14
    env.set("SERVER_NAME", server_name(req.host, req.local.ip()));
    // RFC 3875 §4.1.15: the port the request was received on.
    env.set("SERVER_PORT", req.local.port().to_string());
    // Apache convention, not in RFC 3875.
    env.set("SERVER_ADDR", ip_text(req.local.ip()));
    // RFC 3875 §4.1.16
    env.set("SERVER_PROTOCOL", req.protocol);
    // Apache convention, not in RFC 3875.
    env.set("DOCUMENT_ROOT", req.document_root);
}

/// Variables describing the request line and the client.
fn request_vars(req: &EnvRequest<'_>, env: &mut Env) {
    // RFC 3875 §4.1.12
    env.set("REQUEST_METHOD", req.method);
    // Apache convention: the raw target, before any decoding.
    env.set("REQUEST_URI", req.target);
    env.set("REQUEST_SCHEME", if req.tls { "https" } else { "http" });
    if req.tls {
        // Apache convention: set only under TLS; scripts test for its presence or "on".
        env.set("HTTPS", "on");
    }
    // RFC 3875 §4.1.7: MUST be set, to "" when the target has no query.
    env.set("QUERY_STRING", req.query);
    // RFC 3875 §4.1.8
    env.set("REMOTE_ADDR", ip_text(req.peer.ip()));
    // Apache convention, not in RFC 3875.
    env.set("REMOTE_PORT", req.peer.port().to_string());
    // php-cgi with cgi.force_redirect (its default) refuses to run without it.
    env.set("REDIRECT_STATUS", "200");
}

/// Variables locating the script and the path after it.
fn script_vars(req: &EnvRequest<'_>, env: &mut Env) {
    // RFC 3875 §4.1.13
    env.set("SCRIPT_NAME", req.script_name);
    // Apache convention: the file the interpreter runs (php-cgi needs it).
    env.set("SCRIPT_FILENAME", req.script_filename);
    // RFC 3875 §4.1.5: unset rather than empty when there is no path info.
    if req.path_info.is_empty() {
        return;
    }
    env.set("PATH_INFO", req.path_info);
    // RFC 3875 §4.1.6: only when PATH_INFO is set. Without a document root there is no
    // virtual-to-physical mapping, and "/" + path would point at the filesystem root.
    if !req.document_root.is_empty() {
        env.set(
            "PATH_TRANSLATED",
            path_translated(req.document_root, req.path_info),
        );
    }
}

/// Variables describing the request body.
fn body_vars(req: &EnvRequest<'_>, env: &mut Env) {
    // RFC 3875 §4.1.2: set iff there is a body; a streamed body of unknown length has none,
    // and the script reads to end of file instead.
    if let Some(length) = req.content_length {
        env.set("CONTENT_LENGTH", length.to_string());
    }
    // RFC 3875 §4.1.3: set when the request has a body and the client sent a media type.
    // Content-Type is a singleton field (RFC 9110 §8.3); the first one wins.
    if !req.has_body {
        return;
    }
    let content_type = req
        .headers
        .iter()
        .find(|(field, _)| field.eq_ignore_ascii_case(b"content-type"));
    if let Some(&(_, value)) = content_type {
        env.set("CONTENT_TYPE", value);
    }
}

/// `SERVER_NAME`: the host without its port, or the local IP when the request named none.
fn server_name(host: &str, local: IpAddr) -> String {
    let name = strip_port(host);
    if name.is_empty() {
        return match local.to_canonical() {
            // RFC 3986 §3.2.2: an IPv6 host is written as a bracketed IP-literal.
            IpAddr::V6(v6) => format!("[{v6}]"),
            IpAddr::V4(v4) => v4.to_string(),
        };
    }
    name.to_owned()
}

/// `host` without a trailing `:port`; an IPv6 literal keeps its brackets.
fn strip_port(host: &str) -> &str {
    // RFC 3986 §3.2.2: the colons inside an IP-literal are not a port separator.
    if host.starts_with('[') {
        return host.split_inclusive(']').next().unwrap_or(host);
    }
    // RFC 3986 §3.2.3: port = *DIGIT, so "host:" has an empty port.
    match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            name
        }
        _ => host,
    }
}

/// An IP as scripts expect it: IPv6 without brackets, an IPv4-mapped IPv6 address (what a
/// dual-stack socket reports for an IPv4 client) as plain IPv4.
fn ip_text(ip: IpAddr) -> String {
    match ip.to_canonical() {
        // By hand: `Display` goes through the formatter (padding support, a `write_str` per
        // piece), about 1,600 instructions per address; two per CGI request and plugin call.
        IpAddr::V4(v4) => {
            let mut out = String::with_capacity(15);
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                if octet >= 100 {
                    out.push(char::from(b'0' + octet / 100));
                }
                if octet >= 10 {
                    out.push(char::from(b'0' + octet / 10 % 10));
                }
                out.push(char::from(b'0' + octet % 10));
            }
            out
        }
        v6 => v6.to_string(),
    }
}

/// `document_root` joined with `path_info` by exactly one `/`.
fn path_translated(document_root: &str, path_info: &str) -> String {
    let root = document_root.trim_end_matches('/');
    let path = path_info.trim_start_matches('/');
    format!("{root}/{path}")
}

/// Whether an allowlist (empty: none) lets `field` through.
fn is_allowed(field: &[u8], pass_headers: &[String]) -> bool {
    pass_headers.is_empty()
        || pass_headers
            .iter()
            .any(|name| is_same(field, name.as_bytes()))
}

/// Whether the header field `field` becomes an `HTTP_*` variable; see [`http_vars`].
fn is_exported(field: &[u8], nominated: &[&[u8]], pass_auth: bool) -> bool {
    // Only letters, digits and '-', so that the name mapping cannot collide.
    if field.is_empty()
        || !field
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
    {
        return false;
    }
    let is = |name: &str| field.eq_ignore_ascii_case(name.as_bytes());
    // CVE-2016-5385 (httpoxy): HTTP_PROXY is read as the outgoing proxy by many libraries.
    if is("proxy") {
        return false;
    }
    // RFC 3875 §4.1.18: already available as CONTENT_LENGTH and CONTENT_TYPE.
    if is("content-length") || is("content-type") {
        return false;
    }
    // RFC 9110 §7.6.1: hop-by-hop, plus the fields the Connection header lists.
    if is_hop_by_hop(field) || nominated.iter().any(|n| is_same(field, n)) {
        return false;
    }
    // RFC 3875 §4.1.18: authentication information SHOULD NOT reach the script. Credentials
    // for a proxy are never the script's business.
    if is("proxy-authorization") {
        return false;
    }
    if is("authorization") {
        return pass_auth;
    }
    true
}

/// The field names listed in every `Connection` field (RFC 9110 §7.6.1: a comma-separated
/// list of tokens, compared case-insensitively).
fn connection_options<'h>(headers: &[(&[u8], &'h [u8])]) -> Vec<&'h [u8]> {
    headers
        .iter()
        .filter(|(field, _)| field.eq_ignore_ascii_case(b"connection"))
        .flat_map(|&(_, value)| value.split(|&b| b == b','))
        .map(trim_ows)
        .filter(|option| !option.is_empty())
        .collect()
}

/// `HTTP_` + the field name upper-cased with `-` → `_` (RFC 3875 §4.1.18). `field` has been
/// checked to hold only ASCII letters, digits and `-`.
fn http_var_name(field: &[u8]) -> String {
    let mut name = String::with_capacity("HTTP_".len() + field.len());
    name.push_str("HTTP_");
    name.extend(field.iter().map(|&b| match b {
        b'-' => '_',
        _ => char::from(b.to_ascii_uppercase()),
    }));
    name
}

/// How repeated fields named `field` are joined into one value.
fn list_separator(field: &[u8]) -> &'static [u8] {
    // RFC 9113 §8.2.3 / RFC 6265 §5.4: cookie-pairs are separated by "; ", not ", ".
    if field.eq_ignore_ascii_case(b"cookie") {
        b"; "
    } else {
        // RFC 9110 §5.3: a list-based field's lines join with a comma.
        b", "
    }
}

/// Case-insensitive field name comparison (RFC 9110 §5.1).
fn is_same(a: &[u8], b: &[u8]) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// A NUL byte would end the C string `execve` reads.
fn has_nul(value: &[u8]) -> bool {
    value.contains(&0)
}

/// A name `execve` can carry: non-empty, without `=` (the separator) or NUL.
fn is_settable_name(name: &str) -> bool {
    !name.is_empty() && !name.contains(['=', '\0'])
}

#[cfg(unix)]
fn os_bytes(value: OsString) -> Vec<u8> {
    std::os::unix::ffi::OsStringExt::into_vec(value)
}

#[cfg(not(unix))]
fn os_bytes(value: OsString) -> Vec<u8> {
    value.to_string_lossy().into_owned().into_bytes()
}

/// What answers a request, as far as the CGI environment is concerned.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mount<'a> {
    /// SCRIPT_NAME: the URL path of what answers.
    pub(crate) script_name: &'a str,
    /// SCRIPT_FILENAME: the program's file ("" for in-process handlers).
    pub(crate) script_filename: &'a str,
    /// PATH_INFO, decoded ("" for none).
    pub(crate) path_info: &'a str,
    /// DOCUMENT_ROOT ("" for none).
    pub(crate) document_root: &'a str,
    /// CONTENT_LENGTH, when the body's length is known to the reader.
    pub(crate) content_length: Option<u64>,
    /// Whether Authorization is exported.
    pub(crate) pass_auth: bool,
    /// The header allowlist (empty: none).
    pub(crate) pass_headers: &'a [String],
}

/// The CGI environment (RFC 3875 §4.1, SPEC §5.2) of `req` for what `mount` says answers
/// it; `inherited` first, `extra` last (it overrides).
pub(crate) fn cgi_env(
    req: &Request,
    mount: &Mount<'_>,
    inherited: Vec<(String, Vec<u8>)>,
    extra: &[(String, String)],
) -> Vec<(String, Vec<u8>)> {
    let h = &req.head;
    let headers: Vec<(&[u8], &[u8])> = h
        .headers
        .iter()
        .map(|f| (&f.name[..], &f.value[..]))
        .collect();
    let request = EnvRequest {
        method: h.method_str(),
        target: h.target_str(),
        query: h.query(),
        protocol: h.version.as_str(),
        headers: &headers,
        host: h.host(),
        peer: req.conn.peer,
        local: req.conn.local,
        tls: req.conn.tls,
        script_name: mount.script_name,
        script_filename: mount.script_filename,
        path_info: mount.path_info,
        document_root: mount.document_root,
        content_length: mount.content_length,
        has_body: req.body.is_present(),
        pass_auth: mount.pass_auth,
        pass_headers: mount.pass_headers,
        server_software: SERVER_SOFTWARE,
    };
    build(&request, inherited, extra)
}

/// The server variables of SPEC §5.2 — the set a CGI script gets — for an in-process
/// handler mounted at its route's prefix: SCRIPT_NAME is the prefix, PATH_INFO the decoded
/// rest of the path. Sorted by name, each once. Values are bytes (header values may hold
/// obs-text).
///
/// `None` when the rest of the path cannot be decoded as a CGI route would decode it (`%2F`,
/// `%5C`, `%00`, a bad escape, not UTF-8): such a request gets 404 there, as it does on a
/// CGI route (SPEC §5.1), rather than a PATH_INFO in another form.
pub(crate) fn server_vars(req: &Request) -> Option<Vec<(String, Vec<u8>)>> {
    let decoded = percent_decode(req.path_below_prefix())?;
    let path_info = if decoded.is_empty() || decoded.starts_with('/') {
        decoded
    } else {
        format!("/{decoded}")
    };
    let mount = Mount {
        script_name: req.prefix.trim_end_matches('/'),
        script_filename: "",
        path_info: &path_info,
        document_root: "",
        content_length: req
            .body
            .is_present()
            .then(|| req.body.content_length())
            .flatten(),
        pass_auth: false,
        pass_headers: &[],
    };
    Some(cgi_env(req, &mount, Vec::new(), &[]))
}

#[cfg(test)]
mod tests {
    #[test]
    fn ip_text_writes_what_display_writes() {
        use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
        for a in [0u8, 1, 9, 10, 99, 100, 127, 199, 200, 255] {
            for b in [0u8, 7, 42, 255] {
                let v4 = Ipv4Addr::new(a, b, a.wrapping_add(b), 255 - a);
                assert_eq!(super::ip_text(IpAddr::V4(v4)), v4.to_string());
                assert_eq!(
                    super::ip_text(IpAddr::V6(v4.to_ipv6_mapped())),
                    v4.to_string()
                );
            }
        }
        let v6: Ipv6Addr = "2001:db8::1".parse().unwrap();
        assert_eq!(super::ip_text(IpAddr::V6(v6)), "2001:db8::1");
    }

    use super::*;
    use std::collections::HashMap;
    use std::net::{Ipv4Addr, Ipv6Addr};

    /// A request with sensible defaults; each test overrides only what it cares about.
    fn base<'a>() -> EnvRequest<'a> {
        EnvRequest {
            method: "GET",
            target: "/cgi-bin/env",
            query: "",
            protocol: "HTTP/1.1",
            headers: &[],
            host: "example.test",
            peer: SocketAddr::from(([192, 0, 2, 7], 51000)),
            local: SocketAddr::from(([192, 0, 2, 1], 8080)),
            tls: false,
            script_name: "/cgi-bin/env",
            script_filename: "/srv/cgi-bin/env",
            path_info: "",
            document_root: "/srv/www",
            content_length: None,
            has_body: false,
            pass_auth: false,
            pass_headers: &[],
            server_software: "cgigate/0.1.0",
        }
    }

    /// Header fields from text pairs.
    fn fields<'a>(pairs: &[(&'a str, &'a str)]) -> Vec<(&'a [u8], &'a [u8])> {
        pairs
            .iter()
            .map(|(name, value)| (name.as_bytes(), value.as_bytes()))
            .collect()
    }

    /// The built environment; like Go's `env-K=V` fixture, tests look up only the keys they
    /// care about. Construction checks the invariants every environment must hold.
    struct Vars(Vec<(String, Vec<u8>)>);

    impl Vars {
        fn of(req: &EnvRequest<'_>) -> Self {
            Self::with(req, Vec::new(), &[])
        }

        fn with(
            req: &EnvRequest<'_>,
            inherited: Vec<(String, Vec<u8>)>,
            extra: &[(String, String)],
        ) -> Self {
            let vars = build(req, inherited, extra);
            assert!(vars.windows(2).all(|w| w[0].0 < w[1].0), "sorted, unique");
            assert!(vars.iter().all(|(_, v)| !v.contains(&0)), "no NUL");
            Self(vars)
        }

        fn bytes(&self, name: &str) -> Option<&[u8]> {
            self.0
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_slice())
        }

        fn get(&self, name: &str) -> Option<&str> {
            self.bytes(name)
                .map(|v| std::str::from_utf8(v).expect("test values are UTF-8"))
        }

        fn names(&self) -> Vec<&str> {
            self.0.iter().map(|(n, _)| n.as_str()).collect()
        }
    }

    fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|&(n, v)| (n.to_owned(), v.to_owned()))
            .collect()
    }

    #[test]
    fn get_with_path_info_and_query_sets_every_variable() {
        let headers = fields(&[("Host", "example.test:8080"), ("User-Agent", "probe/1")]);
        let req = EnvRequest {
            target: "/cgi-bin/env/a%20b/c?x=1&y=%41",
            query: "x=1&y=%41",
            headers: &headers,
            host: "example.test:8080",
            path_info: "/a b/c",
            ..base()
        };
        let vars = Vars::of(&req);
        let expected = [
            ("DOCUMENT_ROOT", "/srv/www"),
            ("GATEWAY_INTERFACE", "CGI/1.1"),
            ("HTTP_HOST", "example.test:8080"),
            ("HTTP_USER_AGENT", "probe/1"),
            ("PATH_INFO", "/a b/c"),
            ("PATH_TRANSLATED", "/srv/www/a b/c"),
            ("QUERY_STRING", "x=1&y=%41"),
            ("REDIRECT_STATUS", "200"),
            ("REMOTE_ADDR", "192.0.2.7"),
            ("REMOTE_PORT", "51000"),
            ("REQUEST_METHOD", "GET"),
            ("REQUEST_SCHEME", "http"),
            ("REQUEST_URI", "/cgi-bin/env/a%20b/c?x=1&y=%41"),
            ("SCRIPT_FILENAME", "/srv/cgi-bin/env"),
            ("SCRIPT_NAME", "/cgi-bin/env"),
            ("SERVER_ADDR", "192.0.2.1"),
            ("SERVER_NAME", "example.test"),
            ("SERVER_PORT", "8080"),
            ("SERVER_PROTOCOL", "HTTP/1.1"),
            ("SERVER_SOFTWARE", "cgigate/0.1.0"),
        ];
        let actual: Vec<(&str, &str)> = vars
            .0
            .iter()
            .map(|(n, v)| (n.as_str(), std::str::from_utf8(v).expect("utf-8")))
            .collect();
        assert_eq!(actual, expected);
    }

    #[test]
    fn no_query_still_sets_empty_query_string_and_no_path_info() {
        let vars = Vars::of(&base());
        assert_eq!(vars.get("QUERY_STRING"), Some(""));
        assert_eq!(vars.get("PATH_INFO"), None);
        assert_eq!(vars.get("PATH_TRANSLATED"), None);
        assert_eq!(vars.get("HTTPS"), None);
        assert_eq!(vars.get("CONTENT_LENGTH"), None);
        assert_eq!(vars.get("CONTENT_TYPE"), None);
    }

    #[test]
    fn post_with_content_length_and_type() {
        let headers = fields(&[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Content-Length", "7"),
        ]);
        let req = EnvRequest {
            method: "POST",
            headers: &headers,
            content_length: Some(7),
            has_body: true,
            ..base()
        };
        let vars = Vars::of(&req);
        assert_eq!(vars.get("REQUEST_METHOD"), Some("POST"));
        assert_eq!(vars.get("CONTENT_LENGTH"), Some("7"));
        assert_eq!(
            vars.get("CONTENT_TYPE"),
            Some("application/x-www-form-urlencoded")
        );
        assert_eq!(vars.get("HTTP_CONTENT_LENGTH"), None);
        assert_eq!(vars.get("HTTP_CONTENT_TYPE"), None);
    }

    #[test]
    fn chunked_post_spooled_has_content_length() {
        let headers = fields(&[
            ("Transfer-Encoding", "chunked"),
            ("Content-Type", "text/plain"),
        ]);
        let req = EnvRequest {
            method: "POST",
            headers: &headers,
            content_length: Some(11),
            has_body: true,
            ..base()
        };
        let vars = Vars::of(&req);
        assert_eq!(vars.get("CONTENT_LENGTH"), Some("11"));
        assert_eq!(vars.get("CONTENT_TYPE"), Some("text/plain"));
        assert_eq!(vars.get("HTTP_TRANSFER_ENCODING"), None);
    }

    #[test]
    fn chunked_post_streamed_has_no_content_length() {
        let headers = fields(&[
            ("Transfer-Encoding", "chunked"),
            ("Content-Type", "text/plain"),
        ]);
        let req = EnvRequest {
            method: "POST",
            headers: &headers,
            content_length: None,
            has_body: true,
            ..base()
        };
        let vars = Vars::of(&req);
        assert_eq!(vars.get("CONTENT_LENGTH"), None);
        assert_eq!(vars.get("CONTENT_TYPE"), Some("text/plain"));
    }

    #[test]
    fn content_type_without_body_is_not_exported() {
        let headers = fields(&[("Content-Type", "text/plain")]);
        let req = EnvRequest {
            headers: &headers,
            ..base()
        };
        let vars = Vars::of(&req);
        assert_eq!(vars.get("CONTENT_TYPE"), None);
        assert_eq!(vars.get("HTTP_CONTENT_TYPE"), None);
    }

    #[test]
    fn first_content_type_wins() {
        let headers = fields(&[("content-type", "text/a"), ("Content-Type", "text/b")]);
        let req = EnvRequest {
            headers: &headers,
            has_body: true,
            ..base()
        };
        assert_eq!(Vars::of(&req).get("CONTENT_TYPE"), Some("text/a"));
    }

    #[test]
    fn duplicate_headers_join_with_comma_in_order() {
        let headers = fields(&[
            ("Accept", "text/html"),
            ("X-Trace", "1"),
            ("accept", "text/plain"),
            ("ACCEPT", "*/*"),
        ]);
        let req = EnvRequest {
            headers: &headers,
            ..base()
        };
        let vars = Vars::of(&req);
        assert_eq!(vars.get("HTTP_ACCEPT"), Some("text/html, text/plain, */*"));
        assert_eq!(vars.get("HTTP_X_TRACE"), Some("1"));
    }

    #[test]
    fn cookies_join_with_semicolon() {
        let headers = fields(&[("Cookie", "a=1"), ("cookie", "b=2; c=3")]);
        let req = EnvRequest {
            headers: &headers,
            ..base()
        };
        assert_eq!(Vars::of(&req).get("HTTP_COOKIE"), Some("a=1; b=2; c=3"));
    }

    #[test]
    fn proxy_header_is_stripped() {
        let headers = fields(&[("Proxy", "http://evil.test:3128"), ("PROXY", "x")]);
        let req = EnvRequest {
            headers: &headers,
            ..base()
        };
        let vars = Vars::of(&req);
        assert_eq!(vars.get("HTTP_PROXY"), None);
        assert!(vars.names().iter().all(|n| !n.contains("PROXY")));
    }

    #[test]
    fn an_allowlist_exports_only_what_it_names_and_never_proxy() {
        let headers = fields(&[
            ("Accept", "text/html"),
            ("User-Agent", "curl"),
            ("Proxy", "http://evil"),
            ("X-Custom", "1"),
        ]);
        let allow = vec![
            "accept".to_string(),
            "proxy".to_string(),
            "x-custom".to_string(),
        ];
        let req = EnvRequest {
            headers: &headers,
            pass_headers: &allow,
            ..base()
        };
        let names: Vec<String> = http_vars(&req).into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            ["HTTP_ACCEPT", "HTTP_X_CUSTOM"],
            "listed, and still no httpoxy"
        );
        let all = EnvRequest {
            headers: &headers,
            ..base()
        };
        assert_eq!(http_vars(&all).len(), 3, "no allowlist: today's rules");
    }

    #[test]
    fn authorization_hidden_unless_pass_auth() {
        let headers = fields(&[
            ("Authorization", "Basic dTpw"),
            ("Proxy-Authorization", "Basic cHg6cHc="),
        ]);
        let hidden = Vars::of(&EnvRequest {
            headers: &headers,
            ..base()
        });
        assert_eq!(hidden.get("HTTP_AUTHORIZATION"), None);
        assert_eq!(hidden.get("HTTP_PROXY_AUTHORIZATION"), None);

        let passed = Vars::of(&EnvRequest {
            headers: &headers,
            pass_auth: true,
            ..base()
        });
        assert_eq!(passed.get("HTTP_AUTHORIZATION"), Some("Basic dTpw"));
        assert_eq!(passed.get("HTTP_PROXY_AUTHORIZATION"), None);
        assert_eq!(passed.get("AUTH_TYPE"), None);
        assert_eq!(passed.get("REMOTE_USER"), None);
    }

    #[test]
    fn names_with_underscore_dot_or_other_bytes_are_dropped() {
        let headers: Vec<(&[u8], &[u8])> = vec![
            (b"X-Forwarded-For", b"203.0.113.9"),
            (b"X_Forwarded_For", b"127.0.0.1"),
            (b"X.Forwarded.For", b"127.0.0.2"),
            (b"X Forwarded", b"a"),
            (b"X-Caf\xc3\xa9", b"b"),
            (b"", b"c"),
            (b"X-1", b"d"),
        ];
        let req = EnvRequest {
            headers: &headers,
            ..base()
        };
        let http: Vec<(String, Vec<u8>)> = http_vars(&req);
        assert_eq!(
            http,
            vec![
                ("HTTP_X_FORWARDED_FOR".to_string(), b"203.0.113.9".to_vec()),
                ("HTTP_X_1".to_string(), b"d".to_vec()),
            ]
        );
    }

    #[test]
    fn hop_by_hop_and_connection_named_fields_are_dropped() {
        let headers = fields(&[
            ("Connection", "keep-alive, X-Secret ,\tupgrade"),
            ("connection", "X-Other"),
            ("Keep-Alive", "timeout=5"),
            ("Proxy-Connection", "keep-alive"),
            ("TE", "trailers"),
            ("Transfer-Encoding", "chunked"),
            ("Upgrade", "websocket"),
            ("Trailer", "X-Checksum"),
            ("x-secret", "s"),
            ("X-Other", "o"),
            ("X-Kept", "k"),
        ]);
        let req = EnvRequest {
            headers: &headers,
            ..base()
        };
        let http = http_vars(&req);
        assert_eq!(http, vec![("HTTP_X_KEPT".to_string(), b"k".to_vec())]);
    }

    #[test]
    fn connection_close_does_not_hide_other_fields() {
        let headers = fields(&[("Connection", "close"), ("Host", "h")]);
        let req = EnvRequest {
            headers: &headers,
            ..base()
        };
        assert_eq!(
            http_vars(&req),
            vec![("HTTP_HOST".to_string(), b"h".to_vec())]
        );
    }

    #[test]
    fn ipv6_client_and_server() {
        let headers = fields(&[("Host", "[::1]:8080")]);
        let req = EnvRequest {
            headers: &headers,
            host: "[::1]:8080",
            peer: SocketAddr::from((Ipv6Addr::LOCALHOST, 40000)),
            local: SocketAddr::from((Ipv6Addr::LOCALHOST, 8080)),
            ..base()
        };
        let vars = Vars::of(&req);
        assert_eq!(vars.get("SERVER_NAME"), Some("[::1]"));
        assert_eq!(vars.get("SERVER_PORT"), Some("8080"));
        assert_eq!(vars.get("SERVER_ADDR"), Some("::1"));
        assert_eq!(vars.get("REMOTE_ADDR"), Some("::1"));
        assert_eq!(vars.get("REMOTE_PORT"), Some("40000"));
        assert_eq!(vars.get("HTTP_HOST"), Some("[::1]:8080"));
    }

    #[test]
    fn ipv4_mapped_peer_is_written_as_ipv4() {
        let mapped = Ipv4Addr::LOCALHOST.to_ipv6_mapped();
        let req = EnvRequest {
            peer: SocketAddr::from((mapped, 5555)),
            local: SocketAddr::from((Ipv4Addr::new(10, 0, 0, 1).to_ipv6_mapped(), 80)),
            host: "",
            ..base()
        };
        let vars = Vars::of(&req);
        assert_eq!(vars.get("REMOTE_ADDR"), Some("127.0.0.1"));
        assert_eq!(vars.get("SERVER_ADDR"), Some("10.0.0.1"));
        assert_eq!(vars.get("SERVER_NAME"), Some("10.0.0.1"));
    }

    #[test]
    fn empty_host_uses_local_ip_for_server_name() {
        let v4 = Vars::of(&EnvRequest { host: "", ..base() });
        assert_eq!(v4.get("SERVER_NAME"), Some("192.0.2.1"));
        let v6 = Vars::of(&EnvRequest {
            host: "",
            local: SocketAddr::from(("2001:db8::1".parse::<Ipv6Addr>().expect("ip"), 443)),
            ..base()
        });
        assert_eq!(v6.get("SERVER_NAME"), Some("[2001:db8::1]"));
        assert_eq!(v6.get("SERVER_ADDR"), Some("2001:db8::1"));
    }

    #[test]
    fn server_name_strips_only_a_port() {
        let local = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        let cases = [
            ("example.test", "example.test"),
            ("Example.Test:80", "Example.Test"),
            ("host:", "host"),
            ("[::1]", "[::1]"),
            ("[2001:db8::2]:443", "[2001:db8::2]"),
            ("10.1.2.3:8000", "10.1.2.3"),
            (":8080", "192.0.2.1"),
        ];
        for (host, expected) in cases {
            assert_eq!(server_name(host, local), expected, "host {host:?}");
        }
    }

    #[test]
    fn tls_sets_https_and_scheme() {
        let vars = Vars::of(&EnvRequest {
            tls: true,
            ..base()
        });
        assert_eq!(vars.get("HTTPS"), Some("on"));
        assert_eq!(vars.get("REQUEST_SCHEME"), Some("https"));
    }

    #[test]
    fn each_name_comes_out_once_sorted_with_the_value_set_last() {
        let mut env = Env(Vec::new());
        for (name, value) in [("B", "1"), ("A", "1"), ("B", "2"), ("C", "1"), ("B", "3")] {
            env.set(name, value);
        }
        env.set("A", "with\0nul");
        env.set("=bad", "x");
        let out: Vec<(String, String)> = env
            .into_sorted()
            .into_iter()
            .map(|(n, v)| (n, String::from_utf8(v).unwrap()))
            .collect();
        assert_eq!(out, owned(&[("A", "1"), ("B", "3"), ("C", "1")]));
    }

    #[test]
    fn extra_overrides_computed_and_adds_new() {
        let headers = fields(&[("X-Mode", "client")]);
        let req = EnvRequest {
            headers: &headers,
            ..base()
        };
        let extra = owned(&[
            ("SERVER_NAME", "public.example"),
            ("HTTP_X_MODE", "operator"),
            ("APP_ENV", "production"),
        ]);
        let vars = Vars::with(&req, Vec::new(), &extra);
        assert_eq!(vars.get("SERVER_NAME"), Some("public.example"));
        assert_eq!(vars.get("HTTP_X_MODE"), Some("operator"));
        assert_eq!(vars.get("APP_ENV"), Some("production"));
    }

    #[test]
    fn inherited_filters_to_pass_env() {
        let server_env: HashMap<&str, &str> = HashMap::from([
            ("PATH", "/usr/bin:/bin"),
            ("LANG", "C.UTF-8"),
            ("SECRET", "s"),
        ]);
        let lookup = |name: &str| server_env.get(name).map(OsString::from);
        let pass_env: Vec<String> = ["PATH", "UNSET", "LANG", "PATH", "A=B", ""]
            .map(String::from)
            .to_vec();
        let vars = inherited(&pass_env, lookup);
        assert_eq!(
            vars,
            vec![
                ("PATH".to_string(), b"/usr/bin:/bin".to_vec()),
                ("LANG".to_string(), b"C.UTF-8".to_vec()),
            ]
        );
    }

    #[test]
    fn inherited_vars_present_and_overridable() {
        let inherited = vec![
            ("PATH".to_string(), b"/usr/bin".to_vec()),
            ("TZ".to_string(), b"UTC".to_vec()),
            ("SERVER_NAME".to_string(), b"from-server-env".to_vec()),
        ];
        let extra = owned(&[("TZ", "Europe/Paris")]);
        let vars = Vars::with(&base(), inherited, &extra);
        assert_eq!(vars.get("PATH"), Some("/usr/bin"));
        assert_eq!(vars.get("TZ"), Some("Europe/Paris"));
        assert_eq!(vars.get("SERVER_NAME"), Some("example.test"));
    }

    #[test]
    fn obs_text_in_header_value_is_preserved() {
        let headers: Vec<(&[u8], &[u8])> = vec![(b"X-Name", b"caf\xe9 \xff\x80")];
        let req = EnvRequest {
            headers: &headers,
            ..base()
        };
        let vars = Vars::of(&req);
        assert_eq!(vars.bytes("HTTP_X_NAME"), Some(&b"caf\xe9 \xff\x80"[..]));
    }

    #[test]
    fn path_translated_joins_with_one_slash() {
        let cases = [
            ("/srv/www", "/a/b", "/srv/www/a/b"),
            ("/srv/www/", "/a/b", "/srv/www/a/b"),
            ("/srv/www//", "//a", "/srv/www/a"),
            ("/", "/a", "/a"),
            ("/srv/www", "a", "/srv/www/a"),
            ("/srv/www", "/dir/", "/srv/www/dir/"),
        ];
        for (root, path_info, expected) in cases {
            let vars = Vars::of(&EnvRequest {
                document_root: root,
                path_info,
                ..base()
            });
            assert_eq!(
                vars.get("PATH_TRANSLATED"),
                Some(expected),
                "{root} + {path_info}"
            );
            assert_eq!(vars.get("PATH_INFO"), Some(path_info));
        }
    }

    #[test]
    fn no_path_translated_without_document_root() {
        let vars = Vars::of(&EnvRequest {
            document_root: "",
            path_info: "/a",
            ..base()
        });
        assert_eq!(vars.get("PATH_INFO"), Some("/a"));
        assert_eq!(vars.get("PATH_TRANSLATED"), None);
    }

    #[test]
    fn values_with_nul_are_dropped() {
        let headers: Vec<(&[u8], &[u8])> = vec![(b"X-Bad", b"a"), (b"x-bad", b"b\0c")];
        let req = EnvRequest {
            headers: &headers,
            path_info: "/a\0b",
            ..base()
        };
        let extra = owned(&[("SERVER_NAME", "x\0y"), ("", "empty"), ("A=B", "c")]);
        let vars = Vars::with(&req, Vec::new(), &extra);
        assert_eq!(vars.get("HTTP_X_BAD"), None);
        assert_eq!(vars.get("PATH_INFO"), None);
        assert_eq!(vars.get("PATH_TRANSLATED"), None);
        assert_eq!(vars.get("SERVER_NAME"), Some("example.test"));
        assert!(vars
            .names()
            .iter()
            .all(|n| !n.is_empty() && !n.contains('=')));
    }

    #[test]
    fn result_is_sorted_unique_with_well_formed_names() {
        let headers = fields(&[
            ("Host", "example.test"),
            ("Zeta", "1"),
            ("accept", "a"),
            ("Accept", "b"),
            ("X-Forwarded-Proto", "https"),
            ("Cookie", "a=1"),
            ("Content-Type", "text/plain"),
            ("Content-Length", "3"),
        ]);
        let req = EnvRequest {
            method: "PUT",
            query: "q",
            headers: &headers,
            path_info: "/p",
            content_length: Some(3),
            has_body: true,
            tls: true,
            ..base()
        };
        let vars = Vars::of(&req);
        let names = vars.names();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(names, sorted);
        for name in names {
            assert!(
                name.bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'),
                "{name}"
            );
        }
    }

    #[test]
    fn http_vars_keep_first_appearance_order() {
        let headers = fields(&[("Zeta", "1"), ("Host", "h"), ("zeta", "2"), ("Accept", "a")]);
        let req = EnvRequest {
            headers: &headers,
            ..base()
        };
        let names: Vec<String> = http_vars(&req).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["HTTP_ZETA", "HTTP_HOST", "HTTP_ACCEPT"]);
    }

    #[test]
    fn trim_ows_handles_edges() {
        assert_eq!(trim_ows(b""), b"");
        assert_eq!(trim_ows(b" \t "), b"");
        assert_eq!(trim_ows(b" a b\t"), b"a b");
    }

    fn request(raw: &[u8], prefix: &str) -> Request {
        use crate::handler::{Body, ConnInfo};
        use crate::http::head::{parse, Limits};
        let mut buf = bytes::BytesMut::from(raw);
        let head = parse(&mut buf, &Limits::default()).unwrap().unwrap();
        let path = head.path().to_string();
        Request {
            head,
            conn: ConnInfo {
                peer: "127.0.0.1:5000".parse().unwrap(),
                local: "127.0.0.1:8080".parse().unwrap(),
                tls: false,
            },
            prefix: std::sync::Arc::from(prefix),
            path,
            body: Body::empty(),
            redirects: 0,
        }
    }

    #[test]
    fn server_vars_are_the_cgi_set_for_the_mount_point() {
        let req = request(
            b"GET /ext/hello/a%20b?x=1 HTTP/1.1\r\nHost: h:8080\r\nX-Ok: 1\r\nProxy: p\r\n\r\n",
            "/ext/hello/",
        );
        let vars: std::collections::BTreeMap<_, _> = server_vars(&req)
            .unwrap()
            .into_iter()
            .map(|(k, v)| (k, String::from_utf8(v).unwrap()))
            .collect();
        assert_eq!(vars["SCRIPT_NAME"], "/ext/hello");
        assert_eq!(vars["PATH_INFO"], "/a b");
        assert_eq!(vars["QUERY_STRING"], "x=1");
        assert_eq!(vars["SERVER_NAME"], "h");
        assert_eq!(vars["SERVER_PORT"], "8080");
        assert_eq!(vars["REMOTE_ADDR"], "127.0.0.1");
        assert_eq!(vars["HTTP_X_OK"], "1");
        assert!(!vars.contains_key("HTTP_PROXY"));
        assert!(!vars.contains_key("CONTENT_LENGTH"));
    }

    #[test]
    fn server_vars_refuse_what_a_cgi_route_refuses() {
        for path in ["/ext/a%2Fb", "/ext/a%5Cb", "/ext/a%00", "/ext/%ff"] {
            let raw = format!("GET {path} HTTP/1.1\r\nHost: h\r\n\r\n");
            assert!(
                server_vars(&request(raw.as_bytes(), "/ext")).is_none(),
                "{path}"
            );
        }
        let req = request(b"GET /ext HTTP/1.1\r\nHost: h\r\n\r\n", "/ext");
        let vars = server_vars(&req).unwrap();
        assert!(
            !vars.iter().any(|(k, _)| k == "PATH_INFO"),
            "no PATH_INFO at the prefix"
        );
    }
}
