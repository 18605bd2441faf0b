//! Behind a balancer (SPEC §8): PROXY v1 and v2 headers from trusted sources give scripts
//! and the access log the client's addresses; untrusted, missing, malformed, truncated and
//! slow headers close the connection; X-Forwarded-For / -Proto and Forwarded are believed
//! from trusted proxies only; `reuse_port` lets two processes share a port. With HAProxy in
//! front (Debian's `haproxy`): `send-proxy-v2` in TCP mode and `option forwardfor` in HTTP
//! mode, the client on 127.0.0.2 so that its address differs from HAProxy's.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};

use crate::support::{free_port, get, repo_path, require, Client, Haproxy, Server, IO_TIMEOUT};

/// The test config: `server_keys` in [server], and a CGI route to the repository's `env`.
fn config(server_keys: &str) -> String {
    format!(
        "{}\n[[route]]\nprefix = \"/cgi-bin/\"\ncgi_dir = \"{}\"\n",
        crate::support::config(server_keys),
        repo_path("cgi-bin").display()
    )
}

/// Start a server on [`config`] (with the `static/` folder it names).
fn start(server_keys: &str) -> Server {
    Server::start_with(&config(server_keys), static_dir)
}

fn static_dir(dir: &Path) {
    std::fs::create_dir_all(dir.join("static")).unwrap();
}

/// The CGI environment a response printed (`env`'s NAME=value lines).
fn env_of(body: &str) -> HashMap<String, String> {
    body.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Send `preamble`, then a GET for /cgi-bin/env on the same connection; the environment.
fn env_through(srv: &Server, preamble: &[u8], extra_headers: &str) -> HashMap<String, String> {
    let mut c = srv.connect();
    c.send(preamble);
    let request = format!("GET /cgi-bin/env HTTP/1.1\r\nHost: t\r\n{extra_headers}\r\n");
    c.send(request.as_bytes());
    let r = c.response();
    assert_eq!(r.status, 200, "{}", r.describe());
    env_of(&r.text())
}

fn pair<'a>(env: &'a HashMap<String, String>, names: [&str; 4]) -> [&'a str; 4] {
    names.map(|n| env.get(n).map_or("", String::as_str))
}

const ADDRS: [&str; 4] = ["REMOTE_ADDR", "REMOTE_PORT", "SERVER_ADDR", "SERVER_PORT"];

/// A v2 header for TCP over IPv4.
fn v2(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
    let mut b = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    b.extend_from_slice(&[0x21, 0x11, 0, 12]);
    b.extend_from_slice(&src);
    b.extend_from_slice(&dst);
    b.extend_from_slice(&sport.to_be_bytes());
    b.extend_from_slice(&dport.to_be_bytes());
    b
}

#[test]
fn proxy_headers_from_a_trusted_source_give_the_clients_addresses() {
    let srv = start("proxy_protocol = \"optional\"\ntrusted_proxies = [\"127.0.0.0/8\"]");
    let env = env_through(&srv, b"PROXY TCP4 192.0.2.7 10.0.0.1 12345 80\r\n", "");
    assert_eq!(pair(&env, ADDRS), ["192.0.2.7", "12345", "10.0.0.1", "80"]);
    let env = env_through(&srv, &v2([198, 51, 100, 9], [10, 0, 0, 2], 4711, 8443), "");
    assert_eq!(
        pair(&env, ADDRS),
        ["198.51.100.9", "4711", "10.0.0.2", "8443"]
    );
    // IPv6 in v1, and a health check's LOCAL header (the connection's own addresses).
    let env = env_through(&srv, b"PROXY TCP6 2001:db8::1 ::1 1 2\r\n", "");
    assert_eq!(env["REMOTE_ADDR"], "2001:db8::1");
    let mut local = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    local.extend_from_slice(&[0x20, 0x00, 0, 0]);
    let env = env_through(&srv, &local, "");
    assert_eq!(env["REMOTE_ADDR"], "127.0.0.1");
    // Optional: a plain connection is served as it is.
    let env = env_through(&srv, b"", "");
    assert_eq!(env["REMOTE_ADDR"], "127.0.0.1");
    // The access log shows the client from the header.
    let mut c = srv.connect();
    c.send(b"PROXY TCP4 203.0.113.5 10.0.0.1 999 80\r\n");
    c.send(&get("/status"));
    assert_eq!(c.response().status, 200);
    srv.wait_until("an access log line for 203.0.113.5", || {
        srv.log_lines()
            .iter()
            .any(|l| l.starts_with("203.0.113.5 "))
    });
    srv.terminate();
}

#[test]
fn a_header_split_at_every_byte_still_arrives_whole() {
    let srv = start("proxy_protocol = \"required\"\ntrusted_proxies = [\"127.0.0.1\"]");
    let header = v2([192, 0, 2, 1], [10, 0, 0, 1], 1000, 80);
    for cut in [1, 5, 12, 13, 15, 16, 27] {
        let mut c = srv.connect();
        c.send(&header[..cut]);
        // The server holds the part without answering; the rest completes it.
        std::thread::yield_now();
        c.send(&header[cut..]);
        c.send(&get("/cgi-bin/env"));
        let r = c.response();
        assert_eq!(
            env_of(&r.text())["REMOTE_ADDR"],
            "192.0.2.1",
            "cut at {cut}"
        );
    }
    srv.terminate();
}

/// Whether the server closed `c` without a byte of answer.
fn closed_without_answer(mut c: Client) -> bool {
    c.is_closed()
}

#[test]
fn untrusted_missing_malformed_and_truncated_headers_close_the_connection() {
    let required = start("proxy_protocol = \"required\"\ntrusted_proxies = [\"127.0.0.1\"]");
    // Required: a plain request from a trusted source is refused…
    let mut c = required.connect();
    c.send(&get("/status"));
    assert!(closed_without_answer(c), "no header");
    // …as are malformed and truncated headers.
    for bad in [
        &b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"[..],
        b"PROXY TCP4 1.2.3.4 5.6.7.8 080 2\r\n",
        b"PROXY TCP9 1.2.3.4 5.6.7.8 1 2\r\n",
        b"\r\n\r\n\0\r\nQUIT\n\x21\x12\x00\x0c",
    ] {
        let mut c = required.connect();
        c.send(bad);
        // The server may have closed already.
        let _ = c.try_send(&get("/status"));
        assert!(closed_without_answer(c), "{bad:?}");
    }
    let mut c = required.connect();
    c.send(b"PROXY TCP4 1.2.3.4 5.6");
    c.shutdown_write();
    assert!(closed_without_answer(c), "truncated");
    required.wait_until("each refusal logged", || {
        let log = required.log_text();
        log.matches("connection refused").count() >= 6
            && log.contains("no PROXY header, where one is required")
            && log.contains("v1 port is not 0-65535")
            && log.contains("the connection ended inside a PROXY header")
    });
    required.terminate();

    // From a source outside trusted_proxies: a PROXY header is refused, even where optional,
    // and plain requests are served with the socket's address.
    let untrusted = start("proxy_protocol = \"optional\"\ntrusted_proxies = [\"10.9.9.9\"]");
    let mut c = untrusted.connect();
    c.send(b"PROXY TCP4 192.0.2.7 10.0.0.1 12345 80\r\n");
    let _ = c.try_send(&get("/status"));
    assert!(closed_without_answer(c), "untrusted header");
    let env = env_through(&untrusted, b"", "");
    assert_eq!(env["REMOTE_ADDR"], "127.0.0.1");
    untrusted.wait_until("the refusal logged", || {
        untrusted
            .log_text()
            .contains("a PROXY header from outside trusted_proxies")
    });
    untrusted.terminate();

    // Required, from outside: refused before a byte is read.
    let outside = start("proxy_protocol = \"required\"\ntrusted_proxies = [\"10.9.9.9\"]");
    let mut c = outside.connect();
    let _ = c.try_send(b"PROXY TCP4 192.0.2.7 10.0.0.1 12345 80\r\n");
    assert!(closed_without_answer(c), "required from outside");
    outside.terminate();
}

#[test]
fn a_slow_header_ends_at_header_timeout() {
    let srv = start(
        "proxy_protocol = \"required\"\ntrusted_proxies = [\"127.0.0.1\"]\nheader_timeout = \"300ms\"");
    let mut c = srv.connect();
    c.send(b"PROXY TCP4 1.2.3.4");
    // Nothing more is sent: the server closes within header_timeout (the client's read
    // timeout, much longer, would fail the test instead).
    assert!(closed_without_answer(c));
    srv.wait_until("the timeout logged", || {
        srv.log_text()
            .contains("no whole PROXY header within header_timeout")
    });
    srv.terminate();
}

/// A connection to `srv` from the local address `from` (another loopback address).
fn connect_from(srv: &Server, from: &str) -> Client {
    let from: SocketAddr = format!("{from}:0").parse().unwrap();
    let to: SocketAddr = srv.addr.parse().unwrap();
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.bind(&from.into()).unwrap();
    sock.connect(&to.into()).unwrap();
    let stream: TcpStream = sock.into();
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let io = Box::new(stream.try_clone().unwrap());
    Client::over(stream, io)
}

#[test]
fn forwarding_headers_are_believed_from_trusted_proxies_only() {
    let srv =
        start("forwarded = \"x-forwarded-for\"\ntrusted_proxies = [\"127.0.0.1\", \"10.0.0.0/8\"]");
    let xff = "X-Forwarded-For: 6.6.6.6, 198.51.100.2, 10.0.0.5\r\nX-Forwarded-Proto: https\r\n";
    let env = env_through(&srv, b"", xff);
    assert_eq!(env["REMOTE_ADDR"], "198.51.100.2");
    assert_eq!(env["REMOTE_PORT"], "0");
    assert_eq!(env["HTTPS"], "on");
    assert_eq!(env["REQUEST_SCHEME"], "https");
    // From 127.0.0.2, which is not trusted, the same headers are ignored.
    let mut c = connect_from(&srv, "127.0.0.2");
    c.send(format!("GET /cgi-bin/env HTTP/1.1\r\nHost: t\r\n{xff}\r\n").as_bytes());
    let env = env_of(&c.response().text());
    assert_eq!(env["REMOTE_ADDR"], "127.0.0.2");
    assert_eq!(env["REQUEST_SCHEME"], "http");
    assert!(!env.contains_key("HTTPS"));
    srv.terminate();

    let srv = start("forwarded = \"forwarded\"\ntrusted_proxies = [\"127.0.0.1\"]");
    let env = env_through(
        &srv,
        b"",
        "Forwarded: for=192.0.2.43, for=\"[2001:db8:cafe::17]:4711\";proto=https\r\n",
    );
    assert_eq!(pair(&env, ADDRS)[..2], ["2001:db8:cafe::17", "4711"]);
    assert_eq!(env["HTTPS"], "on");
    // Off: the same header changes nothing.
    srv.terminate();
    let srv = start("trusted_proxies = [\"127.0.0.1\"]");
    let env = env_through(&srv, b"", "Forwarded: for=192.0.2.43\r\n");
    assert_eq!(env["REMOTE_ADDR"], "127.0.0.1");
    srv.terminate();
}

#[test]
fn reuse_port_lets_two_processes_share_a_port() {
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let listen = format!("127.0.0.1:{port}");
    let shared = config("reuse_port = true");
    let first = Server::start_on(&shared, static_dir, &listen);
    let second = Server::start_on(&shared, static_dir, &listen);
    assert_eq!(first.addr, second.addr);
    assert_eq!(first.get("/status").status, 200);
    // Without it, a second process cannot bind the port.
    let out = Command::new(env!("CARGO_BIN_EXE_cgigate"))
        .args(["--listen", &listen, "--config"])
        .arg(write_config(first.dir.path(), "plain.toml", &config("")))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains(&format!("cannot listen on {listen}")),
        "{stderr}"
    );
    first.terminate();
    second.terminate();
}

fn write_config(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Connect from 127.0.0.2 to `addr` once it accepts (HAProxy starting up).
fn connect_when_up(addr: &str) -> TcpStream {
    let to: SocketAddr = addr.parse().unwrap();
    let deadline = std::time::Instant::now() + IO_TIMEOUT;
    loop {
        let sock =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        sock.bind(&"127.0.0.2:0".parse::<SocketAddr>().unwrap().into())
            .unwrap();
        match sock.connect(&to.into()) {
            Ok(()) => {
                let s: TcpStream = sock.into();
                s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
                return s;
            }
            // Polled as Server::wait_until polls: HAProxy binds within milliseconds.
            Err(_) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(e) => panic!("haproxy on {addr}: {e}"),
        }
    }
}

/// GET /cgi-bin/env through `addr` from 127.0.0.2, on a fresh connection.
fn env_via(addr: &str) -> HashMap<String, String> {
    let stream = connect_when_up(addr);
    let io = Box::new(stream.try_clone().unwrap());
    let mut c = Client::over(stream, io);
    c.send(b"GET /cgi-bin/env HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    let r = c.response();
    assert_eq!(r.status, 200, "{}", r.describe());
    env_of(&r.text())
}

#[test]
fn haproxy_in_tcp_mode_with_send_proxy_v2_passes_the_clients_address() {
    if !require("haproxy", "haproxy") {
        return;
    }
    let keys = "proxy_protocol = \"required\"\ntrusted_proxies = [\"127.0.0.1\"]";
    let a = start(keys);
    let b = start(keys);
    let port = free_port();
    let cfg = format!(
        "defaults\n  mode tcp\n  timeout connect 5s\n  timeout client 10s\n  timeout server 10s\n\
         frontend fe\n  bind 127.0.0.1:{port}\n  default_backend be\n\
         backend be\n  balance roundrobin\n  server a {} send-proxy-v2 source 127.0.0.1\n  server b {} send-proxy-v2 source 127.0.0.1\n",
        a.addr, b.addr
    );
    let _haproxy = Haproxy::start(a.dir.path(), &cfg);
    let front = format!("127.0.0.1:{port}");
    // Round robin: both instances see the client (127.0.0.2), not HAProxy (127.0.0.1).
    for _ in 0..4 {
        let env = env_via(&front);
        assert_eq!(env["REMOTE_ADDR"], "127.0.0.2");
        assert_eq!(env["SERVER_PORT"], port.to_string());
    }
    for srv in [&a, &b] {
        srv.wait_until("requests from 127.0.0.2 in the access log", || {
            srv.log_lines().iter().any(|l| l.starts_with("127.0.0.2 "))
        });
    }
    a.terminate();
    b.terminate();
}

#[test]
fn haproxy_in_http_mode_with_forwardfor_passes_the_clients_address() {
    if !require("haproxy", "haproxy") {
        return;
    }
    let srv = start("forwarded = \"x-forwarded-for\"\ntrusted_proxies = [\"127.0.0.1\"]");
    let port = free_port();
    let cfg = format!(
        "defaults\n  mode http\n  timeout connect 5s\n  timeout client 10s\n  timeout server 10s\n\
         frontend fe\n  bind 127.0.0.1:{port}\n  option forwardfor\n  http-request set-header X-Forwarded-Proto https\n  default_backend be\n\
         backend be\n  server a {} source 127.0.0.1\n",
        srv.addr
    );
    let _haproxy = Haproxy::start(srv.dir.path(), &cfg);
    let env = env_via(&format!("127.0.0.1:{port}"));
    assert_eq!(env["REMOTE_ADDR"], "127.0.0.2");
    assert_eq!(env["REQUEST_SCHEME"], "https");
    // A client's own X-Forwarded-For is kept left of what HAProxy appends, and not believed.
    let stream = connect_when_up(&format!("127.0.0.1:{port}"));
    let io = Box::new(stream.try_clone().unwrap());
    let mut c = Client::over(stream, io);
    c.send(b"GET /cgi-bin/env HTTP/1.1\r\nHost: t\r\nX-Forwarded-For: 10.6.6.6\r\nConnection: close\r\n\r\n");
    let env = env_of(&c.response().text());
    assert_eq!(env["HTTP_X_FORWARDED_FOR"], "10.6.6.6, 127.0.0.2");
    assert_eq!(env["REMOTE_ADDR"], "127.0.0.2");
    srv.terminate();
}

#[test]
fn under_load_through_haproxy_a_reload_and_a_restart_fail_nothing_and_a_killed_helper_heals() {
    if !require("haproxy", "haproxy") {
        return;
    }
    use std::time::{Duration, Instant};
    // Info lines: the reloads' outcomes. Scripts start through the spawn helpers.
    let with = |extra: &str| {
        config("keep_alive_timeout = \"2s\"\nshutdown_timeout = \"10s\"")
            .replace("level = \"warn\"", "level = \"info\"")
            + "\n[cgi]\nspawn = \"helper\"\n"
            + extra
    };
    let (v1, v2) = (
        with(""),
        with("[[route]]\nprefix = \"/v2\"\nhandler = \"hello\"\n"),
    );
    let (a_listen, b_listen) = (
        format!("127.0.0.1:{}", free_port()),
        format!("127.0.0.1:{}", free_port()),
    );
    let mut a = Server::start_on(&v1, static_dir, &a_listen);
    let b = Server::start_on(&v1, static_dir, &b_listen);
    let port = free_port();
    // Connections refused while an instance restarts are tried again on the other one.
    let cfg = format!(
        "defaults\n  mode http\n  timeout connect 2s\n  timeout client 10s\n  timeout server 10s\n\
         retries 3\n  option redispatch 1\n  retry-on all-retryable-errors\n\
         frontend fe\n  bind 127.0.0.1:{port}\n  default_backend be\n\
         backend be\n  balance roundrobin\n  server a {a_listen}\n  server b {b_listen}\n"
    );
    let _haproxy = Haproxy::start(b.dir.path(), &cfg);
    let front = format!("127.0.0.1:{port}");
    drop(connect_when_up(&front));
    let load = crate::support::Load::start(
        &front,
        &["/cgi-bin/hello", "/echo", "/cgi-bin/hello", "/echo"],
    );
    load.wait_for(50);

    // 1. SIGHUP with a new route, on both instances.
    let reload_at = Instant::now();
    for srv in [&a, &b] {
        srv.write_config(&v2);
        assert!(srv.reload(), "{}", srv.log_text());
    }
    load.wait_for(50);
    for _ in 0..2 {
        let stream = connect_when_up(&front);
        let io = Box::new(stream.try_clone().unwrap());
        let mut c = Client::over(stream, io);
        c.send(&get("/v2"));
        assert_eq!(
            c.response().status,
            200,
            "both instances have the new route"
        );
    }

    // 2. A restart of one instance: it drains and exits, its successor binds the port.
    let restart_at = Instant::now();
    a.terminate();
    assert!(a.wait().success());
    a = Server::start_on(&v2, static_dir, &a_listen);
    a.wait_until("the successor is served through HAProxy", || {
        a.log_lines().iter().any(|l| l.starts_with("127.0.0.1 "))
    });
    load.wait_for(50);

    // 3. SIGKILL of the restarted instance's spawn helpers.
    let kill_at = Instant::now();
    let helpers = a.helpers();
    assert!(!helpers.is_empty());
    for pid in &helpers {
        let killed = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
    }
    let healed = loop {
        if a.get("/cgi-bin/hello").status == 200 {
            break kill_at.elapsed();
        }
        assert!(kill_at.elapsed() < IO_TIMEOUT, "CGI never recovered");
    };
    load.wait_for(50);
    let end = Instant::now();
    let results = load.stop();
    let failed = |from, to| crate::support::failed_between(&results, from, to);
    let (during_reload, during_restart, after_kill) = (
        failed(reload_at, restart_at),
        failed(restart_at, kill_at),
        failed(kill_at, end),
    );
    eprintln!(
        "through HAProxy, 4 keep-alive clients: {} requests; failed: {during_reload} across the \
         reloads, {during_restart} across the restart, {after_kill} after killing {} helpers; \
         CGI answered directly again {healed:?} after the kill",
        results.len(),
        helpers.len()
    );
    assert_eq!((during_reload, during_restart), (0, 0));
    assert!(healed < Duration::from_secs(1), "{healed:?}");
    a.terminate();
    b.terminate();
}
