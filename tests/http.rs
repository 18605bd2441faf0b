//! Keep-alive, pipelining, HTTP/1.0 vs 1.1, HEAD, 100-continue and strict framing.

use crate::support::{get, server, Framing};

#[test]
fn one_connection_serves_100_requests() {
    let srv = server("");
    let mut c = srv.connect();
    for i in 0..100 {
        c.send(&get(&format!("/echo?n={i}")));
        let r = c.response();
        assert_eq!(r.status, 200);
        assert_eq!(r.framing, Framing::Length);
        assert!(
            r.text().contains(&format!("target: /echo?n={i}\n")),
            "{}",
            r.text()
        );
        assert!(!r.closes());
    }
    c.send(&get("/status?format=json"));
    let status: serde_json::Value = serde_json::from_slice(&c.response().body).unwrap();
    assert_eq!(
        status["connections_accepted"], 1,
        "all on one connection: {status}"
    );
}

#[test]
fn three_pipelined_requests_in_one_write_are_answered_in_order() {
    let srv = server("");
    let mut c = srv.connect();
    c.send(
        b"GET /echo?first HTTP/1.1\r\nHost: t\r\n\r\n\
          POST /echo?second HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello\
          GET /echo?third HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    let first = c.response();
    let second = c.response();
    let third = c.response();
    assert!(first.text().contains("target: /echo?first\n"));
    assert!(second.text().contains("target: /echo?second\n"));
    assert!(second.text().contains("body-length: 5\n"));
    assert!(third.text().contains("target: /echo?third\n"));
}

#[test]
fn http10_gets_close_delimited_streams_and_11_gets_chunked() {
    let srv = server("");
    let mut c = srv.connect();
    c.send(b"GET /streamed/ticker?count=2&interval_ms=1 HTTP/1.0\r\n\r\n");
    let r = c.response();
    assert_eq!(r.framing, Framing::Close);
    assert_eq!(r.header("transfer-encoding"), None);
    assert_eq!(r.text(), "tick 1\ntick 2\n");

    let mut c = srv.connect();
    c.send(&get("/streamed/ticker?count=2&interval_ms=1"));
    let r = c.response();
    assert_eq!(r.framing, Framing::Chunked);
    assert_eq!(r.text(), "tick 1\ntick 2\n");
    assert!(!r.closes());
}

#[test]
fn http10_keep_alive_only_when_asked() {
    let srv = server("");
    let mut c = srv.connect();
    c.send(b"GET /echo HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    let r = c.response();
    assert_eq!(r.framing, Framing::Length);
    assert_eq!(r.header("connection"), Some("keep-alive"));
    c.send(b"GET /echo HTTP/1.0\r\n\r\n");
    let r = c.response();
    assert_eq!(r.header("connection"), None);
    assert!(c.is_closed(), "1.0 without keep-alive closes");
}

#[test]
fn head_gets_get_headers_and_no_body() {
    let srv = server("");
    let mut c = srv.connect();
    c.send(&get("/echo"));
    let g = c.response();
    c.send(b"HEAD /echo HTTP/1.1\r\nHost: t\r\n\r\n");
    let h = c.head_response();
    assert_eq!(h.status, 200);
    // The echo body names the method, so HEAD's length is one byte shorter than GET's.
    let get_len: usize = g.header("content-length").unwrap().parse().unwrap();
    assert_eq!(
        h.header("content-length"),
        Some((get_len + 1).to_string().as_str())
    );
    c.send(b"HEAD /streamed/ticker?count=2&interval_ms=1 HTTP/1.1\r\nHost: t\r\n\r\n");
    let h = c.head_response();
    assert_eq!(h.header("transfer-encoding"), Some("chunked"));
    // No body bytes came: the next response parses cleanly on the same connection.
    c.send(&get("/echo?after-head"));
    assert!(c.response().text().contains("target: /echo?after-head"));
}

#[test]
fn expect_100_continue_when_the_handler_reads() {
    let srv = server("");
    let mut c = srv.connect();
    c.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
    c.expect_bytes(b"HTTP/1.1 100 Continue\r\n\r\n");
    c.send(b"hello");
    let r = c.response();
    assert!(r.text().contains("body-length: 5\n"));
    assert!(!r.closes());
}

#[test]
fn expect_100_continue_refused_by_not_reading_closes() {
    // The status handler never reads the body: no 100, and the connection cannot be reused
    // because the client may or may not send the body now.
    let srv = server("");
    let mut c = srv.connect();
    c.send(
        b"POST /status HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
    );
    let r = c.response();
    assert_eq!(r.status, 200);
    assert!(r.closes());
    assert!(c.is_closed());
}

#[test]
fn chunked_request_body_is_dechunked() {
    let srv = server("");
    let mut c = srv.connect();
    c.send(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n\
          5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n",
    );
    let r = c.response();
    assert!(r.text().contains("body-length: 11\n"), "{}", r.text());
    c.send(&get("/echo?next"));
    assert_eq!(c.response().status, 200);
}

/// One bad request: the status expected, and the connection must close afterwards without
/// answering what follows.
fn refused(raw: &[u8], status: u16) {
    let srv = server("");
    let mut c = srv.connect();
    let mut bytes = raw.to_vec();
    bytes.extend_from_slice(&get("/echo?smuggled"));
    c.send(&bytes);
    let r = c.response();
    assert_eq!(r.status, status, "for {:?}", String::from_utf8_lossy(raw));
    assert!(r.closes());
    let rest = c.read_to_close();
    assert!(
        rest.is_empty(),
        "nothing after the error: {:?}",
        String::from_utf8_lossy(&rest)
    );
}

#[test]
fn framing_errors_answer_once_and_close() {
    refused(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400);
    refused(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
        400,
    );
    refused(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: +3\r\n\r\n",
        400,
    );
    refused(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n",
        400,
    );
    refused(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        501,
    );
    refused(
        b"POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
        400,
    );
    refused(
        b"GET /echo HTTP/1.1\r\nHost: t\r\nX-Folded: a\r\n b\r\n\r\n",
        400,
    );
    refused(
        b"GET /echo HTTP/1.1\r\nHost: t\r\nX-Ctl: a\x01b\r\n\r\n",
        400,
    );
    refused(b"GET /echo HTTP/1.1\r\n\r\n", 400);
    refused(b"GET /echo HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400);
    refused(b"GET /echo HTTP/1.1\nHost: t\n\n", 400);
    refused(b"GET echo HTTP/1.1\r\nHost: t\r\n\r\n", 400);
    refused(b"GET /echo HTTP/2.0\r\nHost: t\r\n\r\n", 505);
}

#[test]
fn bad_chunked_bodies_are_400_and_close() {
    for body in [
        &b"zz\r\nhello\r\n0\r\n\r\n"[..],
        b"5\nhello\r\n0\r\n\r\n",
        b"5;a\rb\r\nhello\r\n0\r\n\r\n",
        b"5\r\nhelloXX0\r\n\r\n",
        b"fffffffffffffffff\r\n",
    ] {
        let mut raw =
            b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        raw.extend_from_slice(body);
        refused(&raw, 400);
    }
}

#[test]
fn unknown_paths_and_folder_redirects() {
    let srv = server("");
    assert_eq!(srv.get("/nothing").status, 404);
    assert_eq!(srv.get("/statusx").status, 404);
    let r = srv.get("/static?x=1");
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some("/static/?x=1"));
}
