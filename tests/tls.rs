//! TLS (SPEC §7): resumption with TLS 1.2 session IDs and TLS 1.3 tickets, the KB937480 case
//! (handshakes reset midway must not cost anyone their session), the handshake timeout,
//! plain HTTP on the TLS port, bad files, keep-alive plus streaming through a CGI, and a PROXY
//! header before the ClientHello.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::client::{Resumption, Tls12Resumption};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, HandshakeKind, RootCertStore, StreamOwned};

use crate::support::{get, Client, Framing, Server, IO_TIMEOUT};

/// A self-signed certificate for localhost, written as cert.pem and key.pem into `dir`.
pub(crate) fn write_cert(dir: &Path) -> CertificateDer<'static> {
    let ck =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap();
    std::fs::write(dir.join("cert.pem"), ck.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), ck.signing_key.serialize_pem()).unwrap();
    ck.cert.der().clone()
}

const SCRIPTS: &[(&str, &str)] = &[
    ("printenv", "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\n'\nenv\n"),
    ("ticker", "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\n'\nfor i in 1 2 3; do echo \"tick $i\"; [ $i -lt 3 ] && sleep 0.15; done\n"),
];

fn tls_server(extra_tls: &str) -> (Server, CertificateDer<'static>) {
    tls_server_with("", extra_tls)
}

/// [`tls_server`] with keys in [server] too.
fn tls_server_with(extra_server: &str, extra_tls: &str) -> (Server, CertificateDer<'static>) {
    let config = format!(
        r#"
[server]
listen = ["127.0.0.1:0"]
{extra_server}

[log]
level = "debug"
access = "off"

[tls]
listen = ["127.0.0.1:0"]
cert = "cert.pem"
key = "key.pem"
{extra_tls}

[[route]]
prefix = "/cgi-bin/"
cgi_dir = "cgi"

[[route]]
prefix = "/streamed/"
cgi_dir = "cgi"
output = "stream"
"#
    );
    let mut cert = None;
    let srv = Server::start_with(&config, |dir| {
        cert = Some(write_cert(dir));
        std::fs::create_dir_all(dir.join("cgi")).unwrap();
        for (name, body) in SCRIPTS {
            let path = dir.join("cgi").join(name);
            std::fs::write(&path, body).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    });
    (srv, cert.unwrap())
}

pub(crate) fn client_config(cert: &CertificateDer<'static>, tls13: bool) -> Arc<ClientConfig> {
    // TLS 1.2 resumes by session ID: the server-side cache is what KB937480 was about.
    client_config_with(&[cert], tls13, Tls12Resumption::SessionIdOnly)
}

/// A client config that trusts `certs`, speaks TLS 1.3 or 1.2 only, and resumes TLS 1.2
/// sessions as `tls12` says.
fn client_config_with(
    certs: &[&CertificateDer<'static>],
    tls13: bool,
    tls12: Tls12Resumption,
) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for cert in certs {
        roots.add((*cert).clone()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] = if tls13 {
        &[&rustls::version::TLS13]
    } else {
        &[&rustls::version::TLS12]
    };
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.resumption = Resumption::in_memory_sessions(64).tls12_resumption(tls12);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

pub(crate) fn connect(addr: &str) -> TcpStream {
    let sock = TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    sock.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    sock
}

/// Finish a handshake whose ClientHello already went out, then make one request (so TLS 1.3
/// tickets arrive) and close. Returns how the handshake went.
fn finish_and_request(conn: ClientConnection, sock: TcpStream) -> HandshakeKind {
    let (kind, alpn, _) = handshake_and_printenv(conn, sock);
    assert_eq!(alpn.as_deref(), Some(&b"http/1.1"[..]));
    kind
}

/// Finish a handshake, then GET printenv (asserting a 200): how the handshake went, the
/// protocol ALPN chose, and the response.
fn handshake_and_printenv(
    mut conn: ClientConnection,
    sock: TcpStream,
) -> (HandshakeKind, Option<Vec<u8>>, crate::support::Response) {
    let mut sock_io = sock.try_clone().unwrap();
    while conn.is_handshaking() {
        conn.complete_io(&mut sock_io).expect("handshake");
    }
    let alpn = conn.alpn_protocol().map(<[u8]>::to_vec);
    let kind = conn.handshake_kind().expect("handshake kind");
    let mut c = Client::over(
        sock.try_clone().unwrap(),
        Box::new(StreamOwned::new(conn, sock)),
    );
    c.send(b"GET /cgi-bin/printenv HTTP/1.1\r\nHost: localhost\r\n\r\n");
    let r = c.response();
    assert_eq!(r.status, 200);
    (kind, alpn, r)
}

/// A full connection with `config`: handshake, one request.
fn visit(addr: &str, config: &Arc<ClientConfig>) -> HandshakeKind {
    let conn =
        ClientConnection::new(config.clone(), ServerName::try_from("localhost").unwrap()).unwrap();
    finish_and_request(conn, connect(addr))
}

/// Reset (RST) a connection instead of closing it.
fn reset(sock: TcpStream) {
    socket2::SockRef::from(&sock)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(sock);
}

#[test]
fn a_second_connection_resumes_with_session_ids_and_with_tickets() {
    let (srv, cert) = tls_server("");
    let addr = srv.https_addr.clone().unwrap();
    for tls13 in [false, true] {
        let config = client_config(&cert, tls13);
        assert_eq!(visit(&addr, &config), HandshakeKind::Full, "tls13={tls13}");
        assert_eq!(
            visit(&addr, &config),
            HandshakeKind::Resumed,
            "tls13={tls13}"
        );
    }
}

/// Where an aborted handshake is reset.
#[derive(Clone, Copy, Debug)]
enum ResetAt {
    AfterClientHello,
    AfterServerHello,
}

#[test]
fn handshakes_reset_midway_do_not_cost_client_a_its_session() {
    let (srv, cert) = tls_server("");
    let addr = srv.https_addr.clone().unwrap();
    for tls13 in [false, true] {
        let config = client_config(&cert, tls13);
        // Client A gets a session.
        assert_eq!(visit(&addr, &config), HandshakeKind::Full);
        // A starts resuming it: this ClientHello carries A's session ID or ticket.
        let mut a =
            ClientConnection::new(config.clone(), ServerName::try_from("localhost").unwrap())
                .unwrap();
        let mut hello = Vec::new();
        while a.wants_write() {
            a.write_tls(&mut hello).unwrap();
        }
        // 20 connections present the very same session and are reset midway.
        for i in 0..20 {
            let at = if i % 2 == 0 {
                ResetAt::AfterClientHello
            } else {
                ResetAt::AfterServerHello
            };
            let mut sock = connect(&addr);
            sock.write_all(&hello).unwrap();
            if let ResetAt::AfterServerHello = at {
                // Wait for the server's first record (its ServerHello), then reset.
                let mut header = [0u8; 5];
                sock.read_exact(&mut header).unwrap();
                assert_eq!(header[0], 0x16, "a handshake record");
            }
            reset(sock);
        }
        // A's own handshake, with that same ClientHello, still resumes.
        let mut sock = connect(&addr);
        sock.write_all(&hello).unwrap();
        let kind = finish_and_request(a, sock);
        println!(
            "KB937480 ({}): client A resumed after 20 handshakes presenting its session were reset \
             (10 after ClientHello, 10 after ServerHello): {kind:?}",
            if tls13 { "TLS 1.3 ticket" } else { "TLS 1.2 session ID" }
        );
        assert_eq!(kind, HandshakeKind::Resumed, "tls13={tls13}");
        // And a later connection resumes too.
        assert_eq!(
            visit(&addr, &config),
            HandshakeKind::Resumed,
            "tls13={tls13}"
        );
    }
}

#[test]
fn a_handshake_that_does_not_finish_in_time_is_closed() {
    let (srv, _cert) = tls_server("handshake_timeout = \"300ms\"");
    let addr = srv.https_addr.clone().unwrap();
    for partial in [&b""[..], &[0x16, 0x03, 0x01, 0x02, 0x00, 0x01][..]] {
        let started = Instant::now();
        let mut sock = connect(&addr);
        sock.write_all(partial).unwrap();
        let mut rest = Vec::new();
        let _ = sock.read_to_end(&mut rest);
        assert!(rest.is_empty(), "nothing is sent to a silent client");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "closed by handshake_timeout, not by the test's own timeout"
        );
    }
}

#[test]
fn plain_http_on_the_tls_port_gets_a_400_and_a_close() {
    let (srv, _cert) = tls_server("");
    let mut c = Client::connect(srv.https_addr.as_ref().unwrap());
    c.send(&get("/cgi-bin/printenv"));
    let r = c.response();
    assert_eq!(r.status, 400);
    assert!(r.text().contains("plain HTTP was sent to the HTTPS port"));
    assert!(c.is_closed());
    // Garbage that is neither TLS nor HTTP is closed without an answer, and never hangs.
    let mut sock = connect(srv.https_addr.as_ref().unwrap());
    sock.write_all(b"\x00\x01\x02garbage").unwrap();
    let mut rest = Vec::new();
    let _ = sock.read_to_end(&mut rest);
    assert!(rest.is_empty());
}

#[test]
fn keep_alive_streaming_and_https_variables_over_tls() {
    let (srv, cert) = tls_server("");
    let config = client_config(&cert, true);
    let conn = ClientConnection::new(config, ServerName::try_from("localhost").unwrap()).unwrap();
    let sock = connect(srv.https_addr.as_ref().unwrap());
    let mut c = Client::over(
        sock.try_clone().unwrap(),
        Box::new(StreamOwned::new(conn, sock)),
    );
    c.send(b"GET /cgi-bin/printenv HTTP/1.1\r\nHost: localhost\r\n\r\n");
    let env = c.response().text();
    assert!(env.contains("HTTPS=on\n"), "{env}");
    assert!(env.contains("REQUEST_SCHEME=https\n"), "{env}");
    c.send(b"GET /streamed/ticker HTTP/1.1\r\nHost: localhost\r\n\r\n");
    let r = c.response();
    assert_eq!(r.framing, Framing::Chunked);
    assert_eq!(r.text(), "tick 1\ntick 2\ntick 3\n");
    assert!(
        r.arrivals[2] - r.arrivals[0] >= Duration::from_millis(200),
        "pieces arrived separately"
    );
    c.send(b"GET /cgi-bin/printenv HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert_eq!(
        c.response().status,
        200,
        "the same TLS connection, a third time"
    );
    // The plain listener does not claim HTTPS.
    let plain = srv.get("/cgi-bin/printenv").text();
    assert!(!plain.contains("HTTPS=") && plain.contains("REQUEST_SCHEME=http\n"));
}

#[test]
fn missing_or_invalid_cert_and_key_stop_start_up_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("junk.pem"), "not a certificate\n").unwrap();
    write_cert(dir.path());
    let other = tempfile::tempdir().unwrap();
    write_cert(other.path());
    std::fs::copy(
        other.path().join("key.pem"),
        dir.path().join("other-key.pem"),
    )
    .unwrap();
    for (cert, key, expected) in [
        ("missing.pem", "key.pem", "tls cert"),
        ("junk.pem", "key.pem", "junk.pem"),
        ("cert.pem", "missing.pem", "missing.pem"),
        ("cert.pem", "junk.pem", "junk.pem"),
        ("cert.pem", "other-key.pem", "other-key.pem"),
    ] {
        let text = format!("[server]\nlisten = [\"127.0.0.1:0\"]\n[tls]\nlisten = [\"127.0.0.1:0\"]\ncert = \"{cert}\"\nkey = \"{key}\"\n");
        std::fs::write(dir.path().join("config.toml"), text).unwrap();
        for args in [
            &["check", "--config", "config.toml"][..],
            &["--config", "config.toml"],
        ] {
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_cgigate"))
                .args(args)
                .current_dir(dir.path())
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{cert}/{key} {args:?}: {err}");
            assert!(
                err.contains(expected),
                "{cert}/{key}: expected {expected:?} in {err:?}"
            );
        }
    }
}

/// The environment printenv shows over a TLS connection on `sock` that begins with
/// `preamble`: sent alone, or (`together`) in one write with the ClientHello.
fn env_over_tls(
    sock: TcpStream,
    cert: &CertificateDer<'static>,
    preamble: &[u8],
    together: bool,
) -> std::collections::HashMap<String, String> {
    let mut conn = ClientConnection::new(
        client_config(cert, true),
        ServerName::try_from("localhost").unwrap(),
    )
    .unwrap();
    let mut first = preamble.to_vec();
    if together {
        conn.write_tls(&mut first).unwrap();
    }
    (&sock).write_all(&first).unwrap();
    let (_, _, r) = handshake_and_printenv(conn, sock);
    r.text()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn a_proxy_header_before_the_client_hello_gives_the_clients_address() {
    let (srv, cert) = tls_server_with(
        "trusted_proxies = [\"127.0.0.1\"]",
        "proxy_protocol = \"required\"",
    );
    let addr = srv.https_addr.clone().expect("https");
    let header = b"PROXY TCP4 192.0.2.9 10.0.0.1 5555 443\r\n";
    for together in [false, true] {
        let env = env_over_tls(connect(&addr), &cert, header, together);
        assert_eq!(env["REMOTE_ADDR"], "192.0.2.9", "together: {together}");
        assert_eq!(env["REMOTE_PORT"], "5555");
        assert_eq!(env["SERVER_PORT"], "443");
        assert_eq!(env["HTTPS"], "on");
    }
    // Required: a handshake without the header is closed unanswered.
    let sock = connect(&addr);
    let mut conn = ClientConnection::new(
        client_config(&cert, true),
        ServerName::try_from("localhost").unwrap(),
    )
    .unwrap();
    let mut hello = Vec::new();
    conn.write_tls(&mut hello).unwrap();
    let _ = (&sock).write_all(&hello);
    let io = Box::new(sock.try_clone().unwrap());
    assert!(Client::over(sock, io).is_closed());
    srv.terminate();
}

/// A client config that trusts `certs` and resumes TLS 1.2 with tickets too.
fn ticket_client(certs: &[&CertificateDer<'static>], tls13: bool) -> Arc<ClientConfig> {
    client_config_with(certs, tls13, Tls12Resumption::SessionIdOrTickets)
}

/// `cgigate ticket-keys rotate FILE`; what it printed.
fn rotate(file: &Path) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cgigate"))
        .args(["ticket-keys", "rotate"])
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn shared_ticket_keys_resume_a_session_on_another_instance() {
    let keys_dir = tempfile::tempdir().unwrap();
    let keys = keys_dir.path().join("ticket.keys");
    assert!(rotate(&keys).contains("1 keys"));
    let shared = format!("ticket_keys = {:?}", keys.display().to_string());
    let (a, cert_a) = tls_server(&shared);
    let (b, cert_b) = tls_server(&shared);
    // Without the shared file, a third instance cannot resume what A issued.
    let (alone, cert_c) = tls_server("");
    let (a_addr, b_addr) = (a.https_addr.clone().unwrap(), b.https_addr.clone().unwrap());
    let alone_addr = alone.https_addr.clone().unwrap();
    for tls13 in [true, false] {
        let config = ticket_client(&[&cert_a, &cert_b, &cert_c], tls13);
        assert_eq!(
            visit(&a_addr, &config),
            HandshakeKind::Full,
            "tls13 {tls13}"
        );
        assert_eq!(
            visit(&b_addr, &config),
            HandshakeKind::Resumed,
            "tls13 {tls13}: on B"
        );
        let config = ticket_client(&[&cert_a, &cert_b, &cert_c], tls13);
        assert_eq!(visit(&a_addr, &config), HandshakeKind::Full);
        assert_eq!(
            visit(&alone_addr, &config),
            HandshakeKind::Full,
            "tls13 {tls13}: no shared keys"
        );
    }
    // A rotation keeps the old key: a session from before it resumes on an instance
    // started after it.
    let config = ticket_client(&[&cert_a, &cert_b], true);
    assert_eq!(visit(&a_addr, &config), HandshakeKind::Full);
    assert!(rotate(&keys).contains("2 keys"));
    let (c, cert_d) = tls_server(&shared);
    let _ = cert_d;
    let c_addr = c.https_addr.clone().unwrap();
    assert_eq!(
        visit(&c_addr, &config),
        HandshakeKind::Resumed,
        "after a rotation"
    );
    for srv in [a, b, c, alone] {
        srv.terminate();
    }
}

#[test]
fn a_ticket_keys_file_others_can_read_stops_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("ticket.keys");
    std::fs::write(&keys, format!("{}\n", "ab".repeat(32))).unwrap();
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o644)).unwrap();
    let config = format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\n[tls]\nlisten = [\"127.0.0.1:0\"]\ncert = \"cert.pem\"\nkey = \"key.pem\"\nticket_keys = {:?}\n",
        keys.display().to_string()
    );
    write_cert(dir.path());
    std::fs::write(dir.path().join("config.toml"), &config).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cgigate"))
        .arg("--config")
        .arg(dir.path().join("config.toml"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("tls ticket_keys") && stderr.contains("chmod 600"),
        "{stderr}"
    );
}

#[test]
fn through_haproxy_in_tcp_mode_a_session_resumes_on_the_other_instance() {
    if !crate::support::require("haproxy", "haproxy") {
        return;
    }
    let keys_dir = tempfile::tempdir().unwrap();
    let keys = keys_dir.path().join("ticket.keys");
    cgigate::rotate_ticket_keys(&keys).unwrap();
    let shared = format!("ticket_keys = {:?}", keys.display().to_string());
    let (a, cert_a) = tls_server(&shared);
    let (b, cert_b) = tls_server(&shared);
    let port = crate::support::free_port();
    let cfg = format!(
        "defaults\n  mode tcp\n  timeout connect 5s\n  timeout client 10s\n  timeout server 10s\n\
         frontend fe\n  bind 127.0.0.1:{port}\n  default_backend be\n\
         backend be\n  balance roundrobin\n  server a {}\n  server b {}\n",
        a.https_addr.clone().unwrap(),
        b.https_addr.clone().unwrap()
    );
    let _haproxy = crate::support::Haproxy::start(keys_dir.path(), &cfg);
    let front = format!("127.0.0.1:{port}");
    let connect_front = || {
        let deadline = Instant::now() + IO_TIMEOUT;
        loop {
            match TcpStream::connect(&front) {
                Ok(s) => {
                    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
                    return s;
                }
                Err(e) => {
                    assert!(Instant::now() < deadline, "haproxy on {front}: {e}");
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
    };
    for tls13 in [true, false] {
        let config = ticket_client(&[&cert_a, &cert_b], tls13);
        let mut kinds = Vec::new();
        // Round robin: the connections alternate between A and B, so the second, resumed,
        // is B resuming what A issued.
        for _ in 0..4 {
            let conn =
                ClientConnection::new(config.clone(), ServerName::try_from("localhost").unwrap())
                    .unwrap();
            kinds.push(finish_and_request(conn, connect_front()));
        }
        assert_eq!(kinds[0], HandshakeKind::Full, "tls13 {tls13}");
        assert!(
            kinds[1..].iter().all(|k| *k == HandshakeKind::Resumed),
            "tls13 {tls13}: {kinds:?}"
        );
    }
    a.terminate();
    b.terminate();
}

/// The certificate a fresh TLS 1.3 handshake with `addr` is shown.
fn served_cert(addr: &str, trusted: &[&CertificateDer<'static>]) -> CertificateDer<'static> {
    let config = ticket_client(trusted, true);
    let name = ServerName::try_from("localhost").unwrap();
    let mut conn = ClientConnection::new(config, name).unwrap();
    let mut sock = connect(addr);
    while conn.is_handshaking() {
        conn.complete_io(&mut sock).expect("handshake");
    }
    conn.peer_certificates().unwrap()[0].clone().into_owned()
}

#[test]
fn sighup_loads_a_new_certificate_and_rotated_ticket_keys_and_sessions_survive_it() {
    let keys_dir = tempfile::tempdir().unwrap();
    let keys = keys_dir.path().join("ticket.keys");
    rotate(&keys);
    let next = tempfile::tempdir().unwrap();
    let renewed = write_cert(next.path());
    let (srv, cert) = tls_server(&format!("ticket_keys = {:?}", keys.display().to_string()));
    let addr = srv.https_addr.clone().unwrap();
    let both = [&cert, &renewed];
    let before = [ticket_client(&both, true), ticket_client(&both, false)];
    for config in &before {
        assert_eq!(visit(&addr, config), HandshakeKind::Full);
    }
    assert_eq!(served_cert(&addr, &both), cert);
    // A renewed certificate and a rotated key file, then SIGHUP.
    for file in ["cert.pem", "key.pem"] {
        std::fs::copy(next.path().join(file), srv.dir.path().join(file)).unwrap();
    }
    assert!(rotate(&keys).contains("2 keys"));
    assert!(srv.reload(), "{}", srv.log_text());
    assert_eq!(served_cert(&addr, &both), renewed);
    for (config, tls13) in before.iter().zip([true, false]) {
        assert_eq!(
            visit(&addr, config),
            HandshakeKind::Resumed,
            "tls13 {tls13}: a ticket of the old key, still listed"
        );
    }
    srv.terminate();

    // Without a key file, the process's own ticket keys and its session cache outlive a
    // reload: TLS 1.3 tickets and TLS 1.2 session IDs resume after it.
    let (srv, cert) = tls_server("");
    let addr = srv.https_addr.clone().unwrap();
    let before = [client_config(&cert, true), client_config(&cert, false)];
    for config in &before {
        assert_eq!(visit(&addr, config), HandshakeKind::Full);
    }
    assert!(srv.reload(), "{}", srv.log_text());
    for config in &before {
        assert_eq!(visit(&addr, config), HandshakeKind::Resumed);
    }
    srv.terminate();
}

#[test]
fn a_big_static_file_goes_whole_over_tls() {
    // TLS cannot use sendfile: the file range is read into memory a piece at a time.
    let big: Vec<u8> = (0..(2 * 1024 * 1024 + 5))
        .map(|i| (i % 251) as u8)
        .collect();
    let config = r#"
[server]
listen = ["127.0.0.1:0"]
[log]
access = "off"
[tls]
listen = ["127.0.0.1:0"]
cert = "cert.pem"
key = "key.pem"
[[route]]
prefix = "/static/"
static_dir = "static"
"#;
    let mut cert = None;
    let srv = Server::start_with(config, |dir| {
        cert = Some(write_cert(dir));
        std::fs::create_dir_all(dir.join("static")).unwrap();
        std::fs::write(dir.join("static/big.bin"), &big).unwrap();
    });
    let cfg = client_config(&cert.unwrap(), true);
    let conn = ClientConnection::new(cfg, ServerName::try_from("localhost").unwrap()).unwrap();
    let sock = connect(srv.https_addr.as_deref().unwrap());
    let mut c = Client::over(
        sock.try_clone().unwrap(),
        Box::new(StreamOwned::new(conn, sock)),
    );
    c.send(b"GET /static/big.bin HTTP/1.1\r\nHost: localhost\r\n\r\nGET /static/big.bin HTTP/1.1\r\nHost: localhost\r\n\r\n");
    for _ in 0..2 {
        let r = c.response();
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-length"), Some(&*big.len().to_string()));
        assert!(r.body == big, "the body is the file");
    }
}
