//! `cgigate probe` against the real server and against small fake servers that misbehave.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::server;

/// Runs `cgigate probe ARGS` (bounded by a 10 s per-request timeout unless ARGS set one).
fn probe(args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cgigate"));
    cmd.arg("probe").args(args);
    if !args.contains(&"--timeout") {
        cmd.args(["--timeout", "10s"]);
    }
    cmd.output().expect("run cgigate probe")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The JSON objects a `--json` run printed, one per line.
fn records(out: &Output) -> Vec<Value> {
    stdout(out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// The rows of a table for `url`, split into cells (`length N` is two cells).
fn rows<'a>(table: &'a str, url: &str) -> Vec<Vec<&'a str>> {
    table
        .lines()
        .filter(|l| l.starts_with(url) && l[url.len()..].starts_with(' '))
        .map(|l| l.split_whitespace().collect())
        .collect()
}

/// A fake server: answers each connection with `answer`, one connection at a time.
fn fake(answer: impl Fn(TcpStream) + Send + 'static) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            answer(stream);
        }
    });
    format!("http://{addr}/")
}

/// Reads one request head off `stream`.
fn read_request(stream: &mut TcpStream) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
        head.push(byte[0]);
    }
}

#[test]
fn buffered_arrives_once_with_a_length_and_streamed_once_per_tick() {
    let srv = server("");
    let buffered = format!(
        "http://{}/buffered/ticker?count=3&interval_ms=150",
        srv.addr
    );
    let streamed = format!(
        "http://{}/streamed/ticker?count=3&interval_ms=150",
        srv.addr
    );
    let out = probe(&[&buffered, &streamed, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r = records(&out);
    assert_eq!(r.len(), 2, "{}", stdout(&out));
    let (b, s) = (&r[0], &r[1]);
    assert_eq!(
        (b["url"].as_str(), b["status"].as_u64()),
        (Some(&*buffered), Some(200))
    );
    assert_eq!(
        (b["framing"].as_str(), b["content_length"].as_u64()),
        (Some("length"), Some(21))
    );
    assert_eq!(b["body_bytes"], 21);
    assert!(
        b["arrivals"].as_u64().is_some_and(|n| (1..=2).contains(&n)),
        "{b}"
    );
    assert!(
        b["first_byte_ms"].as_f64() >= Some(250.0),
        "held until the end: {b}"
    );
    assert_eq!(
        (s["framing"].as_str(), s["body_bytes"].as_u64()),
        (Some("chunked"), Some(21))
    );
    assert_eq!(s["arrivals"], 3, "one arrival per tick: {s}");
    let (first, total) = (
        s["first_byte_ms"].as_f64().unwrap(),
        s["total_ms"].as_f64().unwrap(),
    );
    assert!(
        first + 250.0 <= total,
        "first byte {first} ms, total {total} ms"
    );
    assert_eq!(
        (b["connection"].as_str(), s["connection"].as_str()),
        (Some("new"), Some("reused"))
    );
}

#[test]
fn the_table_has_a_row_per_request_and_a_line_per_arrival() {
    let srv = server("");
    let buffered = format!(
        "http://{}/buffered/ticker?count=3&interval_ms=100",
        srv.addr
    );
    let streamed = format!(
        "http://{}/streamed/ticker?count=3&interval_ms=100",
        srv.addr
    );
    let out = probe(&[&buffered, &streamed, "--timeline"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let table = stdout(&out);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "url", "req", "status", "framing", "bytes", "head", "first", "total", "arrivals",
            "conn"
        ]
    );
    let b = &rows(&table, &buffered)[0];
    assert_eq!(b[1..6], ["1", "200", "length", "21", "21"], "{table}");
    assert_eq!(b[b.len() - 2..], ["1", "new"], "{table}");
    let s = &rows(&table, &streamed)[0];
    assert_eq!(s[1..5], ["1", "200", "chunked", "21"], "{table}");
    assert_eq!(s[s.len() - 2..], ["3", "reused"], "{table}");
    let arrivals: Vec<&str> = table.lines().filter(|l| l.ends_with(" bytes")).collect();
    assert_eq!(arrivals.len(), 1 + 3, "{table}");
    assert!(
        arrivals[1..].iter().all(|l| l.ends_with(" 7 bytes")),
        "{table}"
    );
}

#[test]
fn repeat_reuses_the_connection_until_the_server_closes_it() {
    let srv = server("");
    let url = format!("http://{}/echo", srv.addr);
    let out = probe(&[&url, "--repeat", "3"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let table = stdout(&out);
    let conns: Vec<&str> = rows(&table, &url).iter().map(|r| r[r.len() - 1]).collect();
    assert_eq!(conns, ["new", "reused", "reused"], "{table}");

    let srv = server("max_requests_per_connection = 2");
    let url = format!("http://{}/echo", srv.addr);
    let out = probe(&[&url, "--repeat", "3", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r = records(&out);
    let conns: Vec<&str> = r.iter().filter_map(|r| r["connection"].as_str()).collect();
    assert_eq!(conns, ["new", "reused", "new"]);
    assert_eq!(r[1]["keep_alive"], false, "the second response closes");
}

#[test]
fn json_records_have_every_field() {
    let srv = server("");
    let url = format!("http://{}/streamed/ticker?count=2&interval_ms=1", srv.addr);
    let out = probe(&[&url, "--json", "--timeline"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r = &records(&out)[0];
    for key in [
        "url",
        "request",
        "status",
        "framing",
        "content_length",
        "body_bytes",
        "connect_ms",
        "head_ms",
        "first_byte_ms",
        "total_ms",
        "arrivals",
        "connection",
        "keep_alive",
        "timeline",
    ] {
        assert!(r.get(key).is_some(), "no {key} in {r}");
    }
    let timeline = r["timeline"].as_array().unwrap();
    assert_eq!(timeline.len() as u64, r["arrivals"].as_u64().unwrap());
    let bytes: u64 = timeline.iter().filter_map(|p| p["bytes"].as_u64()).sum();
    assert_eq!(bytes, 14);
}

#[test]
fn a_refused_connection_exits_1_with_one_line() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/x");
    let out = probe(&[&url]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(&format!(
            "cgigate: probe {url}: cannot connect to 127.0.0.1:{port}"
        )),
        "{err}"
    );
    assert!(err.to_lowercase().contains("refused"), "{err}");

    let srv = server("");
    let good = format!("http://{}/echo", srv.addr);
    let out = probe(&[&good, &url, "--json"]);
    assert_eq!(out.status.code(), Some(1), "one failure is enough");
    let r = records(&out);
    assert_eq!(
        (r[0]["status"].as_u64(), r[1]["url"].as_str()),
        (Some(200), Some(&*url))
    );
    assert!(
        r[1]["error"]
            .as_str()
            .is_some_and(|e| e.contains("cannot connect")),
        "{}",
        r[1]
    );
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["https://127.0.0.1/"][..],
        &["127.0.0.1:8080/"],
        &["http://127.0.0.1/", "--repeat", "0"],
        &["http://127.0.0.1/", "--timeout", "0s"],
        &[],
    ] {
        let out = probe(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
    assert!(stderr(&probe(&["https://127.0.0.1/"])).contains("http:// only"));
}

#[test]
fn malformed_or_cut_responses_are_reported_not_waited_for() {
    for (response, message) in [
        (
            &b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"[..],
            "closed before the end of the body (3 body bytes",
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            "malformed response: invalid chunk size",
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            "malformed response: invalid Content-Length",
        ),
        (b"HTTP/1.1 200", "closed inside the response head"),
        (b"", "closed before a response"),
        (
            b"SSH-2.0-OpenSSH\r\n\r\n",
            "malformed response: invalid HTTP version in the head",
        ),
    ] {
        let url = fake(move |mut s| {
            read_request(&mut s);
            let _ = s.write_all(response);
        });
        let out = probe(&[&url]);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{}",
            String::from_utf8_lossy(response)
        );
        assert!(stderr(&out).contains(message), "{}", stderr(&out));
    }
}

#[test]
fn a_silent_server_times_out() {
    let url = fake(|mut s| {
        read_request(&mut s);
        std::thread::sleep(Duration::from_secs(3));
    });
    let start = Instant::now();
    let out = probe(&[&url, "--timeout", "300ms"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    assert!(
        stderr(&out).contains("timed out after 300ms waiting for the response"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_kept_connection_the_server_dropped_is_replaced() {
    // Keep-alive responses, but each connection is closed after one, as by a server whose
    // idle timer fired: at once (seen before the next request is sent), or a little later
    // (the next request is sent and the close is its only answer).
    for linger in [Duration::ZERO, Duration::from_millis(100)] {
        let url = fake(move |mut s| {
            read_request(&mut s);
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
            std::thread::sleep(linger);
        });
        let out = probe(&[&url, "--repeat", "3", "--json"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let conns: Vec<Value> = records(&out)
            .iter()
            .map(|r| r["connection"].clone())
            .collect();
        assert_eq!(conns, ["new"; 3], "linger {linger:?}");
    }
}

#[test]
fn svg_draws_one_lane_per_request_with_its_arrivals() {
    let srv = server("");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("timeline.svg");
    let buffered = format!("http://{}/buffered/ticker?count=4&interval_ms=30", srv.addr);
    let streamed = format!("http://{}/streamed/ticker?count=4&interval_ms=30", srv.addr);
    let out = probe(&[
        "--svg",
        file.to_str().unwrap(),
        "--repeat",
        "2",
        &buffered,
        &streamed,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(&file).unwrap();
    let doc = roxmltree::Document::parse(&text).expect("well-formed SVG");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let lanes: Vec<_> = doc
        .root_element()
        .children()
        .filter(|n| n.attribute("class") == Some("lane"))
        .collect();
    let seen: Vec<_> = lanes
        .iter()
        .map(|l| {
            (
                l.attribute("data-url").unwrap(),
                l.attribute("data-request").unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (buffered.as_str(), "1"),
            (buffered.as_str(), "2"),
            (streamed.as_str(), "1"),
            (streamed.as_str(), "2")
        ]
    );
    let arrivals = |lane: &roxmltree::Node| {
        lane.descendants()
            .filter(|n| n.attribute("class") == Some("arrival"))
            .count()
    };
    // Buffered: the whole body in one piece; streamed: a piece per line written apart.
    assert_eq!(arrivals(&lanes[0]), 1);
    assert!(arrivals(&lanes[2]) >= 3, "{}", arrivals(&lanes[2]));
    let words: String = lanes[2].descendants().filter_map(|n| n.text()).collect();
    assert!(
        words.contains("chunked") && words.contains("head ") && words.contains("end "),
        "{words}"
    );
    // A file that cannot be written is a failure, said on stderr.
    let out = probe(&["--svg", "/nonexistent-dir/x.svg", &buffered]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("--svg /nonexistent-dir/x.svg"),
        "{}",
        stderr(&out)
    );
    srv.terminate();
}
