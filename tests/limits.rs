//! Every [server] limit and timeout, crossed with small values.

use std::time::{Duration, Instant};

use crate::support::{get, server};

#[test]
fn body_over_max_body_bytes_is_413() {
    let srv = server("max_body_bytes = 1000");
    let mut c = srv.connect();
    c.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1001\r\n\r\n");
    let r = c.response();
    assert_eq!(r.status, 413);
    assert!(r.closes());

    // Exactly at the limit is fine.
    let mut c = srv.connect();
    c.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n");
    c.send(&[b'x'; 1000]);
    assert!(c.response().text().contains("body-length: 1000\n"));

    // A chunked body is counted as it arrives.
    let mut c = srv.connect();
    c.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
    c.send(b"3e8\r\n");
    c.send(&[b'x'; 1000]);
    c.send(b"\r\n1\r\nx\r\n0\r\n\r\n");
    let r = c.response();
    assert_eq!(r.status, 413);
    assert!(r.closes());
}

#[test]
fn long_request_line_is_414_and_big_heads_are_431() {
    let srv = server("max_head_bytes = 1024\nmax_headers = 5");
    let mut c = srv.connect();
    let long = format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n", "a".repeat(1100));
    c.send(long.as_bytes());
    assert_eq!(c.response().status, 414);

    let mut c = srv.connect();
    let big = format!(
        "GET / HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
        "b".repeat(1100)
    );
    c.send(big.as_bytes());
    assert_eq!(c.response().status, 431);

    let mut c = srv.connect();
    c.send(b"GET /echo HTTP/1.1\r\nHost: t\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\n\r\n");
    assert_eq!(c.response().status, 431, "6 fields > max_headers 5");

    let mut c = srv.connect();
    c.send(b"GET /echo HTTP/1.1\r\nHost: t\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n");
    assert_eq!(c.response().status, 200, "5 fields = max_headers");
}

#[test]
fn header_timeout_is_a_deadline_not_reset_by_trickling() {
    let srv = server("header_timeout = \"1s\"");
    let mut c = srv.connect();
    let mut writer = c.stream.try_clone().unwrap();
    let started = Instant::now();
    // The client sends one byte every 300 ms for 6 s: a per-byte timer would never fire.
    let trickle = std::thread::spawn(move || {
        use std::io::Write;
        for b in b"GET /echo HTTP/1.1\r\nHost: t" {
            if writer.write_all(&[*b]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    });
    let r = c.response();
    assert_eq!(r.status, 408);
    assert!(c.is_closed());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "deadline must not move with each byte"
    );
    trickle.join().unwrap();
}

#[test]
fn idle_keep_alive_connections_close_after_keep_alive_timeout() {
    let srv = server("keep_alive_timeout = \"200ms\"");
    let mut c = srv.connect();
    c.send(&get("/echo"));
    assert_eq!(c.response().status, 200);
    // The server closes the idle connection without a response.
    assert!(c.is_closed());
}

#[test]
fn stalled_chunked_upload_ends_at_body_timeout_without_buying_memory() {
    let srv = server("body_timeout = \"500ms\"\nmax_body_bytes = \"64GiB\"");
    let before = srv.rss_kib();
    let mut clients = Vec::new();
    for announced in ["ffff", "ffffffff"] {
        let mut c = srv.connect();
        c.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
        c.send(format!("{announced}\r\nabc").as_bytes());
        clients.push(c);
    }
    for mut c in clients {
        let r = c.response();
        assert_eq!(r.status, 408);
        assert!(c.is_closed());
    }
    let after = srv.rss_kib();
    assert!(
        after < before + 8 * 1024,
        "RSS grew from {before} KiB to {after} KiB"
    );
}

#[test]
fn client_that_never_reads_is_dropped_at_write_timeout() {
    let srv = crate::support::Server::start_with(
        &crate::support::config("write_timeout = \"300ms\""),
        |dir| {
            std::fs::create_dir_all(dir.join("static")).unwrap();
            std::fs::write(dir.join("static/big.bin"), vec![7u8; 32 << 20]).unwrap();
        },
    );
    let mut stalled = srv.connect();
    stalled.send(&get("/static/big.bin"));
    // The head proves the server is writing to this connection; from here on we read nothing.
    let (status, _, _) = stalled.response_head().expect("head");
    assert_eq!(status, 200);
    // Wait (bounded) until the server has given up on it: only our status probe is open.
    srv.wait_until("the stalled connection is closed", || {
        srv.open_connections() == 1
    });
    let got = stalled.read_to_close();
    assert!(got.len() < 32 << 20, "the whole body cannot have been sent");
}

#[test]
fn max_requests_per_connection_closes_after_the_last() {
    let srv = server("max_requests_per_connection = 3");
    let mut c = srv.connect();
    for i in 1..=3 {
        c.send(&get("/echo"));
        let r = c.response();
        assert_eq!(r.closes(), i == 3, "request {i}");
    }
    assert!(c.is_closed());
}

#[test]
fn max_connections_makes_accept_wait() {
    let srv = server("max_connections = 2");
    let mut a = srv.connect();
    let mut b = srv.connect();
    for c in [&mut a, &mut b] {
        c.send(&get("/echo"));
        assert_eq!(c.response().status, 200);
    }
    let mut third = srv.connect();
    third.send(&get("/echo?third"));
    third
        .stream
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut probe = [0u8; 1];
    let waited = std::io::Read::read(&mut third.stream, &mut probe);
    assert!(
        waited.is_err(),
        "the third connection is not served while two are open"
    );
    third
        .stream
        .set_read_timeout(Some(crate::support::IO_TIMEOUT))
        .unwrap();
    drop(a);
    assert!(third.response().text().contains("target: /echo?third"));
}
