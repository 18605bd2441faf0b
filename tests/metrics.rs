//! The `metrics` handler (SPEC §8, docs/metrics.md): one server takes requests of every
//! kind — buffered, streamed, unrouted, refused, CGI scripts stopped for each reason, a 503
//! from `max_children`, TLS handshakes full, resumed and failed — and its `/metrics` is
//! parsed with a Prometheus/OpenMetrics text parser (openmetrics-parser, not the crate's own
//! code) and read sample by sample.
//!
//! Each request is on a connection of its own that the server closes (or a client reads to
//! its end), so its exchange has been recorded before the next request goes out: the server
//! records an exchange before it closes the connection. Where the server notices something
//! on its own time (a client that went away, a connection's end), the test polls the
//! scrape until it says so, bounded.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use openmetrics_parser::{MetricsExposition, PrometheusType, PrometheusValue};
use rustls::pki_types::ServerName;
use rustls::{ClientConnection, HandshakeKind, StreamOwned};

use crate::support::{Client, Response, Server};
use crate::tls::{client_config, connect, write_cert};

type Exposition = MetricsExposition<PrometheusType, PrometheusValue>;

const SCRIPTS: &[(&str, &str)] = &[
    (
        "hello",
        "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\nhello\\n'\n",
    ),
    // Silent until it is stopped.
    ("sleep", "#!/bin/sh\nexec sleep 30\n"),
    (
        "sleep-after-head",
        "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\nstarted\\n'\nexec sleep 30\n",
    ),
    // Holds its max_children slot until the rest of its body arrives.
    (
        "slow-stdin",
        "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\n'\ncat >/dev/null\necho done\n",
    ),
    // Writes past a file_size limit: SIGXFSZ.
    (
        "bigfile",
        "#!/bin/sh\nexec head -c 65536 /dev/zero > \"big.$$\"\n",
    ),
];

const CONFIG: &str = r#"
[server]
listen = ["127.0.0.1:0"]
max_head_bytes = "1KiB"
header_timeout = "500ms"

[log]
level = "warn"
access = "off"

[cgi]
max_children = 1
queue_timeout = "200ms"
kill_grace = "100ms"
request_body = "stream"

[tls]
listen = ["127.0.0.1:0"]
cert = "cert.pem"
key = "key.pem"

[[route]]
prefix = "/metrics"
handler = "metrics"

[[route]]
prefix = "/hello"
handler = "hello"

[[route]]
prefix = "/ticker"
handler = "ticker"
output = "stream"

[[route]]
prefix = "/cgi-bin/"
cgi_dir = "cgi"

[[route]]
prefix = "/slow/"
cgi_dir = "cgi"
timeout = "300ms"

[[route]]
prefix = "/idle/"
cgi_dir = "cgi"
idle_timeout = "200ms"

[[route]]
prefix = "/limited/"
cgi_dir = "cgi"
limits = { file_size = "1KiB" }
"#;

/// The server, and how many connections the test opened to it.
struct Scenario {
    srv: Server,
    cert: rustls::pki_types::CertificateDer<'static>,
    opened: u64,
}

impl Scenario {
    fn start() -> Scenario {
        let mut cert = None;
        let srv = Server::start_with(CONFIG, |dir| {
            cert = Some(write_cert(dir));
            let cgi = dir.join("cgi");
            std::fs::create_dir_all(&cgi).unwrap();
            for (name, body) in SCRIPTS {
                write_script(&cgi.join(name), body);
            }
        });
        Scenario {
            srv,
            cert: cert.expect("a certificate"),
            opened: 0,
        }
    }

    fn connect(&mut self) -> Client {
        self.opened += 1;
        self.srv.connect()
    }

    /// Send `request` on a connection of its own; the response, read to the close.
    fn exchange(&mut self, request: &[u8]) -> Response {
        let mut c = self.connect();
        c.send(request);
        let r = c.response();
        assert!(c.is_closed(), "the server closes after {}", r.describe());
        r
    }

    fn get(&mut self, target: &str) -> Response {
        self.exchange(
            format!("GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes(),
        )
    }

    /// `/metrics`, in the Prometheus text format, parsed.
    fn scrape(&mut self) -> Exposition {
        let r = self.get("/metrics");
        assert_eq!(r.status, 200, "{}", r.describe());
        assert_eq!(
            r.header("content-type"),
            Some("text/plain; version=0.0.4; charset=utf-8")
        );
        let text = r.text();
        openmetrics_parser::prometheus::parse_prometheus(&text)
            .unwrap_or_else(|e| panic!("/metrics does not parse: {e:?}\n{text}"))
    }

    /// Scrape until `cond` holds (bounded): for what the server notices in its own time.
    fn scrape_until(&mut self, what: &str, cond: impl Fn(&Exposition) -> bool) -> Exposition {
        let deadline = std::time::Instant::now() + crate::support::IO_TIMEOUT;
        loop {
            let expo = self.scrape();
            if cond(&expo) {
                return expo;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for: {what}"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    /// GET /hello over TLS 1.3 with `config`, read to the close: how the handshake went.
    fn tls_hello(&mut self, config: &std::sync::Arc<rustls::ClientConfig>) -> HandshakeKind {
        self.opened += 1;
        let addr = self.srv.https_addr.clone().expect("a TLS listener");
        let sock = connect(&addr);
        let name = ServerName::try_from("localhost").unwrap();
        let mut conn = ClientConnection::new(config.clone(), name).unwrap();
        let mut io = sock.try_clone().unwrap();
        while conn.is_handshaking() {
            conn.complete_io(&mut io).expect("handshake");
        }
        let kind = conn.handshake_kind().expect("handshake kind");
        let mut c = Client::over(
            sock.try_clone().unwrap(),
            Box::new(StreamOwned::new(conn, sock)),
        );
        c.send(b"GET /hello HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        assert_eq!(c.response().text(), "hello\n");
        kind
    }
}

fn write_script(path: &Path, body: &str) {
    std::fs::write(path, body).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// The sum of the samples of `family` whose labels include `labels` (0 if none do).
fn sum(expo: &Exposition, family: &str, labels: &[(&str, &str)]) -> f64 {
    let f = expo
        .families
        .get(family)
        .unwrap_or_else(|| panic!("no family {family} in {:?}", expo.families.keys()));
    f.iter_samples()
        .filter(|s| {
            let set = s.get_labelset().expect("a sample of a family");
            labels
                .iter()
                .all(|(k, v)| set.get_label_value(k) == Some(*v))
        })
        .map(|s| match &s.value {
            PrometheusValue::Counter(c) => c.value.as_f64(),
            PrometheusValue::Gauge(n) => n.as_f64(),
            other => panic!("{family} is not a counter or gauge: {other:?}"),
        })
        .sum()
}

/// The histogram of `family` for `route` (or the only one, for `None`).
fn histogram(
    expo: &Exposition,
    family: &str,
    route: Option<&str>,
) -> openmetrics_parser::HistogramValue {
    let f = &expo.families[family];
    assert_eq!(f.family_type, PrometheusType::Histogram, "{family}");
    let found = f.iter_samples().find(|s| {
        let set = s.get_labelset().expect("a sample of a family");
        set.get_label_value("route") == route
    });
    match found.map(|s| &s.value) {
        Some(PrometheusValue::Histogram(h)) => h.clone(),
        other => panic!("{family} {route:?}: {other:?}"),
    }
}

/// Observations in buckets up to `bound`, seconds.
fn at_most(h: &openmetrics_parser::HistogramValue, bound: f64) -> f64 {
    h.buckets
        .iter()
        .find(|b| b.upper_bound == bound)
        .map_or_else(
            || panic!("no bucket {bound} in {h:?}"),
            |b| b.count.as_f64(),
        )
}

#[test]
fn metrics_count_what_the_server_did_and_parse_as_prometheus_text() {
    let mut s = Scenario::start();

    // In-process: a 200 with Content-Length, a stream, a 404.
    let r = s.get("/hello");
    assert_eq!(
        (r.status, r.framing),
        (200, crate::support::Framing::Length)
    );
    let r = s.get("/ticker?count=2&interval_ms=20");
    assert_eq!(
        (r.status, r.framing),
        (200, crate::support::Framing::Chunked)
    );
    assert_eq!(s.get("/nothing/here").status, 404);

    // Refused by the server: malformed framing, a request line too long, a head too slow.
    let r = s.exchange(b"POST /hello HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n");
    assert_eq!(r.status, 400);
    let long = format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n", "a".repeat(2048));
    assert_eq!(s.exchange(long.as_bytes()).status, 414);
    let r = s.exchange(b"GET /hello HTTP/1.1\r\nHost: t\r\n");
    assert_eq!(r.status, 408);

    // CGI scripts stopped by the server: timeout, idle, a file_size limit.
    assert_eq!(s.get("/slow/sleep").status, 504);
    assert_eq!(s.get("/idle/sleep").status, 504);
    assert_eq!(s.get("/limited/bigfile").status, 502);

    // max_children = 1: a script holding the slot makes the next CGI request wait
    // queue_timeout and get 503; the holder then finishes.
    let mut holder = s.connect();
    holder.send(b"POST /cgi-bin/slow-stdin HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\nConnection: close\r\n\r\nhalf!");
    s.scrape_until("the slot holder is running", |e| {
        sum(e, "cgigate_cgi_scripts_running", &[]) == 1.0
    });
    let r = s.get("/cgi-bin/hello");
    assert_eq!(r.status, 503, "{}", r.describe());
    holder.send(b"done!");
    assert_eq!(holder.response().text(), "done\n");
    assert!(holder.is_closed());

    // TLS: a full handshake, a resumed one, and plain HTTP on the TLS port.
    let config = client_config(&s.cert, true);
    assert_eq!(s.tls_hello(&config), HandshakeKind::Full);
    assert_eq!(s.tls_hello(&config), HandshakeKind::Resumed);
    s.opened += 1;
    let mut plain = Client::connect(s.srv.https_addr.as_deref().unwrap());
    plain.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(plain.response().status, 400);

    // A client that goes away while its script runs (last: the script holds the only slot
    // until it has been stopped and reaped).
    let mut gone = s.connect();
    gone.send(b"GET /cgi-bin/sleep-after-head HTTP/1.1\r\nHost: t\r\n\r\n");
    gone.response_head().expect("the script's head");
    drop(gone);
    s.scrape_until("the abandoned script is stopped and reaped", |e| {
        sum(
            e,
            "cgigate_cgi_scripts_stopped_total",
            &[("reason", "disconnect")],
        ) == 1.0
            && sum(e, "cgigate_cgi_scripts_running", &[]) == 0.0
    });
    let e = s.scrape_until("every earlier connection has closed", |e| {
        sum(e, "cgigate_connections_open", &[]) == 1.0
    });

    let requests = "cgigate_requests_total";
    let series = |route: &str, class: &str, mode: &str, framing: &str| {
        sum(
            &e,
            requests,
            &[
                ("route", route),
                ("status_class", class),
                ("mode", mode),
                ("framing", framing),
            ],
        )
    };
    // /hello: one plain, two over TLS.
    assert_eq!(series("/hello", "2xx", "auto", "length"), 3.0);
    assert_eq!(series("/ticker", "2xx", "stream", "chunked"), 1.0);
    assert_eq!(sum(&e, requests, &[("route", "/hello")]), 3.0);
    // Unrouted: the 404 and the three refused heads.
    assert_eq!(sum(&e, requests, &[("route", "(none)")]), 4.0);
    assert_eq!(
        sum(
            &e,
            requests,
            &[("route", "(none)"), ("status_class", "4xx")]
        ),
        4.0
    );
    assert_eq!(
        sum(
            &e,
            requests,
            &[("route", "/slow/"), ("status_class", "5xx")]
        ),
        1.0
    );
    assert_eq!(
        sum(
            &e,
            requests,
            &[("route", "/idle/"), ("status_class", "5xx")]
        ),
        1.0
    );
    assert_eq!(
        sum(
            &e,
            requests,
            &[("route", "/limited/"), ("status_class", "5xx")]
        ),
        1.0
    );
    // The slot holder's 200, the 503, and the abandoned request (its head went out: a 200
    // cut short).
    assert_eq!(sum(&e, requests, &[("route", "/cgi-bin/")]), 3.0);
    assert_eq!(
        sum(
            &e,
            requests,
            &[("route", "/cgi-bin/"), ("status_class", "5xx")]
        ),
        1.0
    );
    // No other route was asked for.
    let routes: f64 = [
        "/hello",
        "/ticker",
        "(none)",
        "/slow/",
        "/idle/",
        "/limited/",
        "/cgi-bin/",
        "/metrics",
    ]
    .iter()
    .map(|r| sum(&e, requests, &[("route", r)]))
    .sum();
    assert_eq!(routes, sum(&e, requests, &[]));

    let bad = "cgigate_bad_requests_total";
    assert_eq!(sum(&e, bad, &[("kind", "malformed")]), 1.0);
    assert_eq!(sum(&e, bad, &[("kind", "uri_too_long")]), 1.0);
    assert_eq!(sum(&e, bad, &[("kind", "timeout")]), 1.0);
    assert_eq!(sum(&e, bad, &[]), 3.0);

    let stopped = "cgigate_cgi_scripts_stopped_total";
    for (reason, want) in [
        ("timeout", 1.0),
        ("idle", 1.0),
        ("limit", 1.0),
        ("disconnect", 1.0),
        ("shutdown", 0.0),
    ] {
        assert_eq!(sum(&e, stopped, &[("reason", reason)]), want, "{reason}");
    }
    assert_eq!(
        sum(&e, "cgigate_cgi_max_children_rejections_total", &[]),
        1.0
    );
    assert_eq!(sum(&e, "cgigate_cgi_scripts_running", &[]), 0.0);
    assert_eq!(sum(&e, "cgigate_cgi_helper_restarts_total", &[]), 0.0);

    let tls = "cgigate_tls_handshakes_total";
    assert_eq!(sum(&e, tls, &[("result", "full")]), 1.0);
    assert_eq!(sum(&e, tls, &[("result", "resumed")]), 1.0);
    assert_eq!(sum(&e, tls, &[("result", "failed")]), 1.0);

    // Every connection the test opened, this scrape's included.
    assert_eq!(
        sum(&e, "cgigate_connections_accepted_total", &[]),
        s.opened as f64
    );
    assert_eq!(sum(&e, "cgigate_access_log_dropped_total", &[]), 0.0);

    // Times: five scripts started, each after a wait for the slot; the slow route ran
    // for its 300 ms timeout before it answered.
    let spawn = histogram(&e, "cgigate_cgi_spawn_seconds", None);
    assert_eq!(spawn.count, Some(5), "{spawn:?}");
    assert_eq!(
        histogram(&e, "cgigate_cgi_queue_wait_seconds", None).count,
        Some(5)
    );
    let slow = histogram(&e, "cgigate_response_seconds", Some("/slow/"));
    assert_eq!(slow.count, Some(1));
    assert_eq!(at_most(&slow, 0.25), 0.0, "{slow:?}");
    assert!(slow.sum.expect("a sum").as_f64() >= 0.3, "{slow:?}");
    let hello = histogram(&e, "cgigate_response_first_byte_seconds", Some("/hello"));
    assert_eq!(hello.count, Some(3));
    assert_eq!(at_most(&hello, f64::INFINITY), 3.0);
    let streamed = histogram(&e, "cgigate_response_seconds", Some("/ticker"));
    assert!(
        streamed.sum.expect("a sum").as_f64() >= 0.02,
        "{streamed:?}"
    );
}

#[test]
fn metrics_are_openmetrics_when_the_scraper_asks() {
    let mut s = Scenario::start();
    assert_eq!(s.get("/hello").status, 200);
    // Prometheus's own Accept header.
    let r = s.exchange(
        b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\nAccept: application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.3,*/*;q=0.1\r\n\r\n",
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    let text = r.text();
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert!(
        text.contains("# UNIT cgigate_response_seconds seconds\n"),
        "{text}"
    );
    // openmetrics-parser 0.5 refuses UNIT on a histogram, which OpenMetrics 1.0 allows
    // (it forbids it only for Info and StateSet) and prometheus-client writes.
    let without_units: String = text
        .lines()
        .filter(|l| !l.starts_with("# UNIT "))
        .map(|l| format!("{l}\n"))
        .collect();
    let expo = openmetrics_parser::openmetrics::parse_openmetrics(&without_units)
        .unwrap_or_else(|e| panic!("not OpenMetrics: {e:?}\n{text}"));
    let family = &expo.families["cgigate_requests"];
    let hello = family
        .iter_samples()
        .find(|s| {
            s.get_labelset()
                .is_ok_and(|l| l.get_label_value("route") == Some("/hello"))
        })
        .expect("a /hello series");
    match &hello.value {
        openmetrics_parser::OpenMetricsValue::Counter(c) => assert_eq!(c.value.as_f64(), 1.0),
        other => panic!("cgigate_requests is a counter: {other:?}"),
    }
}
