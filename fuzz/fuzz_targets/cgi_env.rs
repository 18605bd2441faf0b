//! `cgi::env::build` (and `http_vars`) with arbitrary header fields and request fields.
//!
//! Every name the builder computes matches `[A-Z0-9_]+`, and only the fixed `inherited` and
//! `extra` entries passed here may have other names; no value holds NUL; names are sorted
//! and unique; the variables RFC 3875 requires are there; no header reaches a script as a
//! variable it must not set (`HTTP_PROXY`, credentials, hop-by-hop fields, CONTENT_*).
#![no_main]

use std::net::SocketAddr;

use arbitrary::Arbitrary;
use cgigate::parsers::cgi_env::{self as env, EnvRequest};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input {
    method: String,
    target: String,
    query: String,
    protocol: String,
    headers: Vec<(Vec<u8>, Vec<u8>)>,
    host: String,
    peer: SocketAddr,
    local: SocketAddr,
    tls: bool,
    script_name: String,
    script_filename: String,
    path_info: String,
    document_root: String,
    content_length: Option<u64>,
    has_body: bool,
    pass_auth: bool,
    server_software: String,
}

/// Configured names are taken as they are, whatever their shape (only empty, `=` and NUL
/// are dropped); these are the only names allowed outside `[A-Z0-9_]+`.
const INHERITED: [(&str, &[u8]); 4] = [
    ("PATH", b"/usr/bin:/bin"),
    ("lower_case", b"inherited"),
    ("WITH NUL", b"a\0b"),
    ("", b"empty name"),
];
const EXTRA: [(&str, &str); 3] = [
    ("Mixed-Case.Name", "extra"),
    ("BAD=NAME", "x"),
    ("X_EXTRA", "\0"),
];

fuzz_target!(|input: Input| {
    let headers: Vec<(&[u8], &[u8])> = input
        .headers
        .iter()
        .map(|(n, v)| (n.as_slice(), v.as_slice()))
        .collect();
    let req = EnvRequest {
        method: &input.method,
        target: &input.target,
        query: &input.query,
        protocol: &input.protocol,
        headers: &headers,
        host: &input.host,
        peer: input.peer,
        local: input.local,
        tls: input.tls,
        script_name: &input.script_name,
        script_filename: &input.script_filename,
        path_info: &input.path_info,
        document_root: &input.document_root,
        content_length: input.content_length,
        has_body: input.has_body,
        pass_auth: input.pass_auth,
        pass_headers: &[],
        server_software: &input.server_software,
    };
    let inherited: Vec<(String, Vec<u8>)> = INHERITED
        .iter()
        .map(|&(n, v)| (n.to_string(), v.to_vec()))
        .collect();
    let extra: Vec<(String, String)> = EXTRA
        .iter()
        .map(|&(n, v)| (n.to_string(), v.to_string()))
        .collect();
    let vars = env::build(&req, inherited, &extra);

    assert!(
        vars.windows(2).all(|w| w[0].0 < w[1].0),
        "sorted and unique"
    );
    for (name, value) in &vars {
        assert!(!value.contains(&0), "{name} holds NUL");
        let computed = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
        let configured =
            INHERITED.iter().any(|(n, _)| n == name) || EXTRA.iter().any(|(n, _)| n == name);
        assert!(computed || configured, "unexpected name {name:?}");
    }
    assert!(!vars
        .iter()
        .any(|(n, _)| n == "WITH NUL" || n.is_empty() || n.contains('=')));
    assert!(
        !vars.iter().any(|(n, _)| n == "X_EXTRA"),
        "a NUL value was set"
    );
    let get = |name: &str| {
        vars.iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    };
    assert_eq!(get("GATEWAY_INTERFACE"), Some(&b"CGI/1.1"[..]));
    assert_eq!(get("REDIRECT_STATUS"), Some(&b"200"[..]));
    assert_eq!(
        get("SERVER_PORT"),
        Some(input.local.port().to_string().as_bytes())
    );
    assert_eq!(
        get("REMOTE_PORT"),
        Some(input.peer.port().to_string().as_bytes())
    );
    assert!(get("REMOTE_ADDR").is_some());
    if !input.host.contains('\0') {
        assert!(get("SERVER_NAME").is_some());
    }
    assert_eq!(get("PATH"), Some(&b"/usr/bin:/bin"[..]));
    if !input.query.contains('\0') {
        assert_eq!(get("QUERY_STRING"), Some(input.query.as_bytes()));
    }
    assert_eq!(get("HTTPS").is_some(), input.tls);
    assert_eq!(
        get("CONTENT_LENGTH").is_some(),
        input.content_length.is_some()
    );
    if !input.has_body {
        assert_eq!(get("CONTENT_TYPE"), None);
    }
    if input.path_info.is_empty() {
        assert_eq!(get("PATH_INFO"), None);
        assert_eq!(get("PATH_TRANSLATED"), None);
    }
    for never in [
        "HTTP_PROXY",
        "HTTP_PROXY_AUTHORIZATION",
        "HTTP_CONTENT_LENGTH",
        "HTTP_CONTENT_TYPE",
        "HTTP_CONNECTION",
        "HTTP_TRANSFER_ENCODING",
        "HTTP_TE",
        "HTTP_UPGRADE",
        "HTTP_KEEP_ALIVE",
        "HTTP_PROXY_CONNECTION",
        "HTTP_TRAILER",
    ] {
        assert_eq!(get(never), None, "{never} was exported");
    }
    if !input.pass_auth {
        assert_eq!(get("HTTP_AUTHORIZATION"), None);
    }

    // Every HTTP_* variable comes from a header field of exactly that mapped name.
    let http = env::http_vars(&req);
    for (name, value) in &http {
        assert!(!value.contains(&0));
        let field = name.strip_prefix("HTTP_").expect("HTTP_ prefix");
        assert!(
            headers.iter().any(|(n, _)| mapped(n) == field),
            "{name} from nowhere"
        );
        assert_eq!(get(name), Some(value.as_slice()), "{name} differs in build");
    }
    let mut names: Vec<&String> = http.iter().map(|(n, _)| n).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), http.len(), "HTTP_* names are unique");
    for (name, _) in vars.iter().filter(|(n, _)| n.starts_with("HTTP_")) {
        assert!(
            http.iter().any(|(n, _)| n == name),
            "{name} not from http_vars"
        );
    }
});

/// A field name as its variable suffix, if it only holds letters, digits and '-'.
fn mapped(field: &[u8]) -> String {
    if field
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
    {
        field
            .iter()
            .map(|&b| {
                if b == b'-' {
                    '_'
                } else {
                    char::from(b.to_ascii_uppercase())
                }
            })
            .collect()
    } else {
        String::new()
    }
}
