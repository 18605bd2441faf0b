//! Defects a review found, each pinned by the test that would fail if it came back.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::support::{config, get, server, Server};

/// A request whose first line is already invalid gets its 400 as soon as the line is in,
/// not a 408 once `header_timeout` has passed. The timeout here is far longer than the
/// client's read timeout, so waiting for it would fail the test.
#[test]
fn an_invalid_request_line_is_refused_at_once() {
    let srv = server("header_timeout = \"60s\"");
    for line in [
        "XYZ\r\n",
        "GET /x HTTP/9.9\r\n",
        "GET  /x HTTP/1.1\r\n",
        "G\x01T / HTTP/1.1\r\n",
    ] {
        let mut c = srv.connect();
        c.send(line.as_bytes());
        let r = c.response();
        assert!(
            r.status == 400 || r.status == 505,
            "{line:?}: {}",
            r.describe()
        );
        assert!(r.closes(), "{line:?}");
    }
}

/// Every response the server makes itself is logged with its real status and counted.
#[test]
fn refusals_are_logged_and_counted() {
    let srv = server("max_head_bytes = 1024\nheader_timeout = \"1s\"");
    let cases: Vec<(Vec<u8>, u16, &str)> = vec![
        (b"XYZ\r\n\r\n".to_vec(), 400, "\"XYZ\" 400 "),
        (
            format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n", "a".repeat(2000)).into_bytes(),
            414,
            "\" 414 ",
        ),
        (
            format!(
                "GET / HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
                "b".repeat(2000)
            )
            .into_bytes(),
            431,
            "\" 431 ",
        ),
        (
            b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".to_vec(),
            400,
            "\"POST /echo HTTP/1.1\" 400 ",
        ),
        // Half a head, then silence: 408 once header_timeout (1 s) is over.
        (
            b"GET /slow HTTP/1.1\r\nHost".to_vec(),
            408,
            "\"GET /slow HTTP/1.1\" 408 ",
        ),
    ];
    for (bytes, status, _) in &cases {
        let mut c = srv.connect();
        c.send(bytes);
        let r = c.response();
        assert_eq!(r.status, *status, "{}", r.describe());
    }
    srv.wait_until("a log line per refusal", || {
        cases
            .iter()
            .all(|(_, _, logged)| srv.log_lines().iter().any(|l| l.contains(logged)))
    });
    let status = srv.get("/status?format=json");
    let json = status.text();
    let field = |name: &str| -> u64 {
        let at = json
            .find(&format!("\"{name}\""))
            .unwrap_or_else(|| panic!("{name}: {json}"));
        json[at..]
            .split(':')
            .nth(1)
            .and_then(|v| {
                v.trim()
                    .trim_end_matches([',', '}'])
                    .split_whitespace()
                    .next()
            })
            .and_then(|v| v.trim_end_matches(',').parse().ok())
            .unwrap_or_else(|| panic!("{name}: {json}"))
    };
    assert_eq!(field("bad_requests"), cases.len() as u64, "{json}");
    assert!(field("requests_served") >= cases.len() as u64, "{json}");
}

/// A script that answers with Content-Length and `Connection: close` and then keeps working
/// (PHP's `ignore_user_abort(true)` pattern) runs to its own end when the client closes
/// after the whole response: it is not killed, and the log says the response completed.
#[test]
fn a_client_leaving_after_the_whole_response_does_not_stop_the_script() {
    let srv = background_job_server();
    let dir = srv.dir.path().to_path_buf();
    let mut c = srv.connect();
    c.send(&get("/cgi-bin/background"));
    let r = c.response();
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.text(), "queued\n");
    assert!(r.closes(), "the script asked for Connection: close");
    drop(c);
    // The server has seen the client go before the script may finish.
    srv.wait_until("the server saw the client close", || {
        srv.log_text().contains("client closed its side")
    });
    std::fs::write(dir.join("go"), "").unwrap();
    srv.wait_until("the background job finished", || dir.join("done").exists());
    srv.wait_until("the access log line", || {
        srv.log_lines()
            .iter()
            .any(|l| l.contains("/cgi-bin/background"))
    });
    let line = srv
        .log_lines()
        .into_iter()
        .find(|l| l.contains("/cgi-bin/background"))
        .unwrap();
    assert!(line.contains("\" 200 7 "), "{line}");
    assert!(
        !line.contains("aborted=1"),
        "the response completed: {line}"
    );
}

/// The other side of the rule: a client that leaves before the response is complete is a
/// disconnect, and the script is stopped.
#[test]
fn a_client_leaving_before_the_whole_response_stops_the_script() {
    let srv = background_job_server();
    let dir = srv.dir.path().to_path_buf();
    let mut c = srv.connect();
    c.send(&get("/cgi-bin/half"));
    let (status, _, _) = c.response_head().expect("a head");
    assert_eq!(status, 200);
    drop(c);
    srv.wait_until("the script was stopped", || {
        srv.log_lines()
            .iter()
            .any(|l| l.contains("/cgi-bin/half") && l.contains("aborted=1"))
    });
    std::fs::write(dir.join("go"), "").unwrap();
    // The script would write `done` within a few polls of `go` if it were still running.
    let pid: u32 = std::fs::read_to_string(dir.join("pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    srv.wait_until("the script is gone", || !crate::support::alive(pid));
    assert!(!dir.join("done").exists());
}

/// A server with `background`, which answers 7 bytes with Content-Length and Connection:
/// close, then waits for a `go` file and writes `done`; and `half`, which promises 100
/// bytes, sends 5 and waits the same way.
fn background_job_server() -> Server {
    let text = config("").replace("level = \"warn\"", "level = \"cgigate=debug\"")
        + "\n[[route]]\nprefix = \"/cgi-bin/\"\ncgi_dir = \"cgi\"\n";
    let wait_then_done = "while [ ! -e \"$DIR/go\" ]; do sleep 0.05; done\ntouch \"$DIR/done\"\n";
    let background = format!(
        "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\nContent-Length: 7\\r\\nConnection: close\\r\\n\\r\\nqueued\\n'\n{wait_then_done}"
    );
    let half = format!(
        "#!/bin/sh\necho $$ > \"$DIR/pid\"\nprintf 'Content-Type: text/plain\\r\\nContent-Length: 100\\r\\n\\r\\nstart'\n{wait_then_done}"
    );
    Server::start_with(&text, |dir| {
        let cgi = dir.join("cgi");
        std::fs::create_dir_all(&cgi).unwrap();
        std::fs::create_dir_all(dir.join("static")).unwrap();
        let with_dir = |body: &str| body.replace("$DIR", &dir.display().to_string());
        write_executable(&cgi.join("background"), &with_dir(&background));
        write_executable(&cgi.join("half"), &with_dir(&half));
    })
}

fn write_executable(path: &Path, body: &str) {
    std::fs::write(path, body).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}
