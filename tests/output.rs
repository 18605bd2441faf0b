//! The output modes as a client sees them (SPEC §4).

use std::time::Duration;

use crate::support::{get, server, Framing};

#[test]
fn streamed_pieces_arrive_separately() {
    let srv = server("");
    let mut c = srv.connect();
    c.send(&get("/streamed/ticker?count=3&interval_ms=150"));
    let r = c.response();
    assert_eq!(r.framing, Framing::Chunked);
    assert_eq!(
        r.chunks,
        vec![
            b"tick 1\n".to_vec(),
            b"tick 2\n".to_vec(),
            b"tick 3\n".to_vec()
        ]
    );
    // Each piece was on the wire before the producer wrote the next one.
    let spread = r.arrivals[2] - r.arrivals[0];
    assert!(
        spread >= Duration::from_millis(200),
        "pieces arrived together ({spread:?})"
    );
    assert!(!r.closes());
}

#[test]
fn buffered_response_arrives_whole_with_content_length() {
    let srv = server("");
    let mut c = srv.connect();
    c.send(&get("/buffered/ticker?count=3&interval_ms=100"));
    let r = c.response();
    assert_eq!(r.framing, Framing::Length);
    assert_eq!(r.header("content-length"), Some("21"));
    assert_eq!(r.text(), "tick 1\ntick 2\ntick 3\n");
    assert!(!r.closes());
}

#[test]
fn buffer_overflowing_its_limit_continues_chunked() {
    let srv = server("");
    let mut c = srv.connect();
    c.send(&get("/small/ticker?count=4&interval_ms=1"));
    let r = c.response();
    assert_eq!(
        r.framing,
        Framing::Chunked,
        "buffer_limit = 10 bytes is exceeded"
    );
    assert_eq!(r.text(), "tick 1\ntick 2\ntick 3\ntick 4\n");
    c.send(&get("/echo"));
    assert_eq!(c.response().status, 200, "still keep-alive");
}

#[test]
fn auto_gives_quick_responses_a_length_and_streams_slow_ones() {
    let srv = server("");
    let mut c = srv.connect();
    // Pieces 1 ms apart: never silent for flush_after (50 ms).
    c.send(&get("/ticker?count=3&interval_ms=1"));
    let r = c.response();
    assert_eq!(r.framing, Framing::Length);
    assert_eq!(r.text(), "tick 1\ntick 2\ntick 3\n");

    // Pieces 300 ms apart: after 50 ms of silence the first is flushed and the rest stream.
    c.send(&get("/ticker?count=3&interval_ms=300"));
    let r = c.response();
    assert_eq!(r.framing, Framing::Chunked);
    assert_eq!(
        r.chunks[0],
        b"tick 1\n".to_vec(),
        "the first piece went out on its own"
    );
    assert_eq!(r.text(), "tick 1\ntick 2\ntick 3\n");
    let spread = r.arrivals[r.arrivals.len() - 1] - r.arrivals[0];
    assert!(spread >= Duration::from_millis(500), "{spread:?}");
    assert!(!r.closes());
}

#[test]
fn access_log_records_mode_framing_and_timings() {
    let srv = server("");
    let mut c = srv.connect();
    c.send(&get("/streamed/ticker?count=2&interval_ms=1"));
    c.response();
    c.send(&get("/buffered/ticker?count=2&interval_ms=1"));
    c.response();
    srv.wait_until("two access log lines", || {
        srv.log_lines()
            .iter()
            .filter(|l| l.contains("/ticker?count=2"))
            .count()
            == 2
    });
    let lines = srv.log_lines();
    let streamed = lines.iter().find(|l| l.contains("/streamed/")).unwrap();
    let buffered = lines.iter().find(|l| l.contains("/buffered/")).unwrap();
    assert!(
        streamed.contains("\" 200 14 ") && streamed.contains(" mode=stream framing=chunked "),
        "{streamed}"
    );
    assert!(
        buffered.contains(" mode=buffer framing=length "),
        "{buffered}"
    );
    for line in [streamed, buffered] {
        assert!(
            line.contains(" ttfb_ms=")
                && line.contains(" total_ms=")
                && line.ends_with(" keepalive=1"),
            "{line}"
        );
    }
}
