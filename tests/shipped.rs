//! The shipped config.toml and the example scripts in cgi-bin/, as a newcomer would use them.

use std::io::BufRead;
use std::process::{Command, Stdio};

use crate::support::{get, repo_path, Client, Framing};

/// The server on the repository's own config (from the repository folder), on port 0.
struct Shipped {
    child: std::process::Child,
    addr: String,
}

impl Drop for Shipped {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn shipped() -> Shipped {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cgigate"))
        .args(["--listen", "127.0.0.1:0", "--log-level", "warn"])
        .current_dir(repo_path(""))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let addr = first.trim_start_matches("listening on http://").to_string();
    // Keep reading the access log so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Shipped { child, addr }
}

#[test]
fn the_example_scripts_work_under_the_shipped_config() {
    let srv = shipped();
    let mut c = Client::connect(&srv.addr);
    c.send(&get("/cgi-bin/hello"));
    assert_eq!(c.response().text(), "Hello, world!\n");
    c.send(&get("/cgi-bin/env/x?y=1"));
    let env = c.response().text();
    assert!(
        env.contains("PATH_INFO=/x\n") && env.contains("QUERY_STRING=y=1\n"),
        "{env}"
    );
    let form = b"name=Ann+Lee&color=%3Cred%3E";
    c.send(format!("POST /cgi-bin/form.pl HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n", form.len()).as_bytes());
    c.send(form);
    let page = c.response().text();
    assert!(
        page.contains("<p>name = Ann Lee</p>") && page.contains("<p>color = &lt;red&gt;</p>"),
        "{page}"
    );
    c.send(b"POST /cgi-bin/hello.py/more HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nabcd");
    let py = c.response().text();
    assert!(
        py.starts_with("Hello from Python")
            && py.contains("PATH_INFO=/more\n")
            && py.contains("body bytes: 4\n"),
        "{py}"
    );
    c.send(&get("/buffered/ticker"));
    let buffered = c.response();
    assert_eq!(buffered.framing, Framing::Length);
    c.send(&get("/streamed/ticker"));
    let streamed = c.response();
    assert_eq!(streamed.framing, Framing::Chunked);
    assert_eq!(buffered.body, streamed.body);
    assert_eq!(streamed.chunks.len(), 5, "one chunk per line, 200 ms apart");
    // The README's `?count=2`; anything else keeps the five lines.
    c.send(&get("/streamed/ticker?count=2"));
    assert_eq!(c.response().text(), "tick 1\ntick 2\n");
    c.send(&get("/buffered/ticker?count=x;rm"));
    assert_eq!(c.response().text().lines().count(), 5);
    c.send(&get("/static/"));
    assert!(c.response().text().contains("cgigate"));
    // The landing page at "/" owns only itself: another path is the 404 of no route.
    c.send(&get("/no-such-page"));
    assert_eq!(c.response().status, 404);
    // On the same connection, so every exchange before it has been recorded.
    c.send(&get("/metrics"));
    let metrics = c.response();
    assert_eq!(metrics.status, 200);
    let expo = openmetrics_parser::prometheus::parse_prometheus(&metrics.text())
        .unwrap_or_else(|e| panic!("{e:?}: {}", metrics.text()));
    let requests = |route: &str| -> f64 {
        expo.families["cgigate_requests_total"]
            .iter_samples()
            .filter(|s| {
                s.get_labelset()
                    .is_ok_and(|l| l.get_label_value("route") == Some(route))
            })
            .map(|s| match &s.value {
                openmetrics_parser::PrometheusValue::Counter(c) => c.value.as_f64(),
                other => panic!("a counter: {other:?}"),
            })
            .sum()
    };
    assert_eq!(requests("/cgi-bin/"), 4.0, "{}", metrics.text());
    assert_eq!(requests("(none)"), 1.0, "{}", metrics.text());
    assert_eq!(
        requests("/"),
        0.0,
        "the page was not asked for: {}",
        metrics.text()
    );
}

#[test]
fn the_landing_page_lists_every_route_and_other_paths_are_still_404() {
    let srv = shipped();
    let config = cgigate::Config::load(&repo_path("config.toml")).expect("shipped config");
    let mut c = Client::connect(&srv.addr);
    c.send(&get("/"));
    let page = c.response();
    assert_eq!(page.status, 200, "{}", page.describe());
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(page.framing, Framing::Length);
    let html = page.text();
    for route in &config.routes {
        let row = format!("<tr><td><code>{}</code></td>", route.prefix);
        assert!(html.contains(&row), "no row for {}:\n{html}", route.prefix);
    }
    // The three lanes of the comparison, each on the route of its output mode.
    for (mode, url) in [
        ("buffer", "/buffered/ticker"),
        ("stream", "/streamed/ticker"),
        ("auto", "/cgi-bin/ticker"),
    ] {
        let lane = format!(r#"data-mode="{mode}" data-url="{url}""#);
        assert!(html.contains(&lane), "no {mode} lane:\n{html}");
    }
    c.send(&get("/index.html"));
    assert_eq!(c.response().text(), html);
    c.send(b"HEAD / HTTP/1.1\r\nHost: t\r\n\r\n");
    let head = c.head_response();
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("content-length"),
        Some(html.len().to_string().as_str())
    );
    assert!(head.body.is_empty());
    for path in ["/nonexistent", "/index.htm", "/x/index.html"] {
        c.send(&get(path));
        let r = c.response();
        assert_eq!(
            (r.status, r.text().as_str()),
            (404, "404 Not Found\n"),
            "{path}"
        );
    }
    c.send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
    let post = c.response();
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));
}
