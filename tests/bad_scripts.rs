//! Malformed script output, one table (SPEC §5.4): each row is a `#!/bin/sh` script that
//! prints the row's bytes with printf. A bad header block is a 502 with the generic body and
//! nothing of the script; a valid one is answered as the script said. Either way the client
//! reads exactly one complete response, and then the answer to a request pipelined behind it
//! on the same connection — never stray script bytes that would read as a second response.

use std::os::unix::fs::PermissionsExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use crate::support::{panic_text, Response, Server};

use Want::{Answer, BadGateway};

/// Small, so the oversized header block rows stay cheap.
const MAX_HEAD: usize = 1024;

/// The body of every 502 the server makes of malformed output.
const GENERIC_502: &str = "502 Bad Gateway\n";

/// Printed by bad rows before the line that breaks the block: it must never reach the client.
const LEAK: &str = "X-Leak: script header\n";

/// The request pipelined behind every row, and its answer.
const FOLLOW_UP: &[u8] = b"GET /cgi-bin/ok?follow-up HTTP/1.1\r\nHost: t\r\n\r\n";
const FOLLOW_UP_BODY: &str = "ok\n";

#[derive(Debug, Clone, PartialEq, Eq)]
enum Want {
    /// 502, the generic body, no header of the script.
    BadGateway,
    /// This status and exactly this body.
    Answer(u16, &'static str),
}

struct Row {
    /// Also the script's file name (`nph-*` rows are NPH scripts).
    name: &'static str,
    /// What the script writes to stdout: one printf per piece, with a short sleep between.
    output: Vec<Vec<u8>>,
    want: Want,
    /// Ask with HEAD instead of GET.
    head: bool,
}

fn row(name: &'static str, output: impl AsRef<[u8]>, want: Want) -> Row {
    pieces(name, &[output.as_ref()], want)
}

/// A row whose script writes in several pieces, so the server reads the block in parts.
fn pieces(name: &'static str, output: &[&[u8]], want: Want) -> Row {
    Row {
        name,
        output: output.iter().map(|p| p.to_vec()).collect(),
        want,
        head: false,
    }
}

/// A bad row: the leak marker, then `rest`.
fn bad(name: &'static str, rest: impl AsRef<[u8]>) -> Row {
    row(name, [LEAK.as_bytes(), rest.as_ref()].concat(), BadGateway)
}

/// A bad row with a Content-Type first, so that only `line` can be at fault.
fn bad_line(name: &'static str, line: impl AsRef<[u8]>) -> Row {
    let block = [
        LEAK.as_bytes(),
        b"Content-Type: text/plain\n",
        line.as_ref(),
        b"\n\nLEAKED BODY\n",
    ];
    row(name, block.concat(), BadGateway)
}

// ---- the table: one row per line (rustfmt::skip keeps it a table) ----

fn rows() -> Vec<Row> {
    let mut rows = malformed_rows();
    rows.extend(bad_field_rows());
    rows.extend(valid_rows());
    rows
}

/// The block as a whole: its end, its size, Status, framing fields, required fields.
#[rustfmt::skip]
fn malformed_rows() -> Vec<Row> {
    let big_value = format!("Content-Type: text/plain\nX-Big: {}\n\nbody", "a".repeat(MAX_HEAD));
    let many_fields = format!("Content-Type: text/plain\n{}\nbody", "X-Field: 0123456789\n".repeat(MAX_HEAD / 20 + 1));
    let half = "X-Field: 0123456789\n".repeat(MAX_HEAD / 40 + 1);
    let endless_line = format!("Content-Type: text/plain\nX-Big: {}", "a".repeat(2 * MAX_HEAD));
    vec![
        row("empty-output", "", BadGateway),
        bad("no-blank-line", "Content-Type: text/plain\n"),
        bad("no-blank-line-crlf", "Content-Type: text/plain\r\n"),
        bad("no-blank-line-body-follows", "Content-Type: text/plain\nhello\n"),
        row("body-without-block", "hello world\n", BadGateway),
        bad("cr-only-line-ends", "Content-Type: text/plain\r\rbody\r"),
        bad("huge-header-value", &big_value),
        bad("huge-header-count", &many_fields),
        bad("huge-line-without-end", &endless_line),
        bad("status-words", "Status: two hundred\nContent-Type: text/plain\n\nbody"),
        bad("status-two-digits", "Status: 20\nContent-Type: text/plain\n\nbody"),
        bad("status-four-digits", "Status: 2000\nContent-Type: text/plain\n\nbody"),
        bad("status-no-space-before-reason", "Status: 200OK\nContent-Type: text/plain\n\nbody"),
        bad("status-empty", "Status:\nContent-Type: text/plain\n\nbody"),
        bad("status-negative", "Status: -200\nContent-Type: text/plain\n\nbody"),
        bad("status-letter-o", "Status: 2O0\nContent-Type: text/plain\n\nbody"),
        bad("status-1xx", "Status: 100 Continue\nContent-Type: text/plain\n\nbody"),
        bad("status-099", "Status: 099\nContent-Type: text/plain\n\nbody"),
        bad("status-600", "Status: 600\nContent-Type: text/plain\n\nbody"),
        bad("status-reason-obs-text", b"Status: 200 caf\xe9\nContent-Type: text/plain\n\nbody"),
        bad("status-reason-control", b"Status: 200 O\x01K\nContent-Type: text/plain\n\nbody"),
        bad("status-twice", "Status: 200 OK\nStatus: 404 Not Found\nContent-Type: text/plain\n\nbody"),
        bad("status-twice-same", "Status: 200\nstatus: 200\nContent-Type: text/plain\n\nbody"),
        bad("transfer-encoding-chunked", "Content-Type: text/plain\nTransfer-Encoding: chunked\n\n5\r\nhello\r\n0\r\n\r\n"),
        bad("transfer-encoding-identity", "Content-Type: text/plain\ntransfer-encoding: identity\n\nbody"),
        bad("content-type-twice", "Content-Type: text/plain\nContent-Type: text/html\n\nbody"),
        bad("content-type-no-subtype", "Content-Type: text\n\nbody"),
        bad("content-type-no-type", "Content-Type: /plain\n\nbody"),
        bad("content-type-empty", "Content-Type:\n\nbody"),
        bad("content-type-missing", "X-Only: this\n\nbody"),
        bad("content-length-sign", "Content-Type: text/plain\nContent-Length: +4\n\nbody"),
        bad("content-length-list", "Content-Type: text/plain\nContent-Length: 4, 4\n\nbody"),
        bad("content-length-differs", "Content-Type: text/plain\nContent-Length: 4\nContent-Length: 5\n\nbody"),
        bad("content-length-hex", "Content-Type: text/plain\nContent-Length: 0x4\n\nbody"),
        bad("location-twice", "Location: /cgi-bin/ok\nLocation: /cgi-bin/ok\n\n"),
        bad("location-empty", "Location:\n\n"),
        bad("location-with-space", "Location: /cgi-bin/ok?a b\n\n"),
        bad("location-network-path", "Location: //evil.example/x\n\n"),
        bad("location-relative", "Location: cgi-bin/ok\n\n"),
        bad("location-local-fragment", "Location: /cgi-bin/ok#top\n\n"),
        bad("location-obs-text", b"Location: /caf\xc3\xa9\n\n"),
        bad("location-control", b"Location: /cgi-bin/ok\x01\n\n"),
        bad("location-local-bad-escape", "Location: /cgi-bin/ok?%zz\n\n"),
        bad("location-with-status-twice", "Status: 301\nLocation: http://a.example/\nLocation: http://b.example/\nContent-Type: text/plain\n\nbody"),
        row("nph-bad-version", "HTTP/2 200 OK\r\nContent-Type: text/plain\r\n\r\nbody", BadGateway),
        row("nph-no-status-line", "Content-Type: text/plain\r\n\r\nbody", BadGateway),
        row("nph-bad-status", "HTTP/1.1 20 OK\r\nContent-Type: text/plain\r\n\r\nbody", BadGateway),
        row("nph-transfer-encoding", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", BadGateway),
        row("nph-no-blank-line", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n", BadGateway),
        pieces("cr-then-junk-across-writes", &[LEAK.as_bytes(), b"Content-Type: text/plain\nX-A: a\r", b"b\n\nbody"], BadGateway),
        pieces("huge-block-across-writes", &[LEAK.as_bytes(), b"Content-Type: text/plain\n", half.as_bytes(), half.as_bytes(), b"\nbody"], BadGateway),
    ]
}

/// One bad field line after a good Content-Type: names, values, colons, folding.
#[rustfmt::skip]
fn bad_field_rows() -> Vec<Row> {
    vec![
        bad_line("no-colon", "X-A b"),
        bad_line("only-a-name", "X-A"),
        bad_line("empty-name", ": value"),
        bad_line("space-in-name", "X A: b"),
        bad_line("space-before-colon", "X-A : b"),
        bad_line("tab-before-colon", "X-A\t: b"),
        bad_line("paren-in-name", "(x): b"),
        bad_line("obs-text-in-name", b"X-\xc3\x84: b"),
        bad_line("nul-in-name", b"X-\x00A: b"),
        bad_line("soh-in-name", b"X-\x01A: b"),
        bad_line("del-in-name", b"X-A\x7f: b"),
        bad_line("cr-in-name", b"X-\rA: b"),
        bad_line("nul-in-value", b"X-A: a\x00b"),
        bad_line("soh-in-value", b"X-A: a\x01b"),
        bad_line("esc-in-value", b"X-A: \x1b[31mred"),
        bad_line("vt-in-value", b"X-A: a\x0bb"),
        bad_line("del-in-value", b"X-A: a\x7fb"),
        bad_line("cr-in-value", b"X-A: a\rb"),
        bad_line("cr-before-cr-lf", b"X-A: a\r\r"),
        bad_line("cr-then-injected-field", b"X-A: a\rSet-Cookie: evil=1"),
        bad_line("obs-fold-space", "X-A: a\n b"),
        bad_line("obs-fold-tab", "X-A: a\n\tb"),
        bad_line("whitespace-only-line", "   "),
    ]
}

/// Output that must work: line ends, statuses, redirects, and bodies that look like HTTP.
#[rustfmt::skip]
fn valid_rows() -> Vec<Row> {
    let fake_response = "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nsmuggle";
    vec![
        row("valid-lf", "Content-Type: text/plain\nX-A: b\n\nhello\n", Answer(200, "hello\n")),
        row("valid-crlf", "Content-Type: text/plain\r\nX-A: b\r\n\r\nhello\n", Answer(200, "hello\n")),
        row("valid-mixed-crlf-then-lf", "Content-Type: text/plain\r\nX-A: b\n\r\nhello\n", Answer(200, "hello\n")),
        row("valid-mixed-lf-then-crlf", "Content-Type: text/plain\nX-A: b\r\n\nhello\r\n", Answer(200, "hello\r\n")),
        pieces("valid-crlf-across-writes", &[b"Content-Type: text/plain\r", b"\n\r", b"\nhel", b"lo\n"], Answer(200, "hello\n")),
        row("valid-empty-body", "Content-Type: text/plain\n\n", Answer(200, "")),
        row("valid-ows-and-empty-value", "Content-Type:text/plain; charset=utf-8 \nX-Empty:\nX-Tab:\tb\t\n\nhello\n", Answer(200, "hello\n")),
        row("valid-obs-text-value", b"Content-Type: text/plain\nX-A: caf\xe9\n\nhello\n", Answer(200, "hello\n")),
        row("valid-repeated-other-fields", "Content-Type: text/plain\nSet-Cookie: a=1\nSet-Cookie: b=2\n\nhello\n", Answer(200, "hello\n")),
        row("valid-status-with-reason", "Status: 404 Not Here\nContent-Type: text/plain\n\ngone\n", Answer(404, "gone\n")),
        row("valid-status-lowercase-name", "status: 201\nContent-Type: text/plain\n\nmade\n", Answer(201, "made\n")),
        row("valid-status-without-content-type", "Status: 503\n\n", Answer(503, "")),
        row("valid-client-redirect", "Location: http://example.invalid/x\n\n", Answer(302, "")),
        row("valid-local-redirect", "Location: /cgi-bin/ok\n\n", Answer(200, "ok\n")),
        row("valid-location-with-status", "Status: 301\nLocation: http://example.invalid/x\nContent-Type: text/plain\n\nmoved\n", Answer(301, "moved\n")),
        row("valid-body-looks-like-a-response", format!("Content-Type: text/plain\n\n{fake_response}"), Answer(200, fake_response)),
        row("valid-body-beyond-content-length-is-dropped", format!("Content-Type: text/plain\nContent-Length: 3\n\nabc{fake_response}"), Answer(200, "abc")),
        row("valid-content-length-zero-drops-the-body", format!("Content-Type: text/plain\nContent-Length: 0\n\n{fake_response}"), Answer(200, "")),
        row("valid-204-drops-the-body", format!("Status: 204\nContent-Type: text/plain\n\n{fake_response}"), Answer(204, "")),
        row("valid-304-drops-the-body", format!("Status: 304\n\n{fake_response}"), Answer(304, "")),
        row("valid-connection-close-is-not-the-scripts", "Content-Type: text/plain\nConnection: close\nKeep-Alive: timeout=1\n\nhello\n", Answer(200, "hello\n")),
        row("valid-204-with-content-length", format!("Status: 204\nContent-Length: 7\n\n{fake_response}"), Answer(204, "")),
        row("valid-304-with-content-length", format!("Status: 304\nContent-Length: 7\n\n{fake_response}"), Answer(304, "")),
        Row { head: true, ..row("valid-head-drops-the-body", format!("Content-Type: text/plain\n\n{fake_response}"), Answer(200, "")) },
        Row { head: true, ..row("valid-head-with-content-length", format!("Content-Type: text/plain\nContent-Length: 7\n\n{fake_response}"), Answer(200, "")) },
    ]
}

// ---- the runner ----

/// printf's format for exactly `bytes`: octal escapes for anything but plain ASCII text.
fn printf_format(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| match b {
            b'%' => "%%".to_string(),
            b'\\' | b'\'' => format!("\\{b:03o}"),
            0x20..=0x7E => char::from(b).to_string(),
            _ => format!("\\{b:03o}"),
        })
        .collect()
}

fn write_script(path: &Path, output: &[Vec<u8>]) {
    let printfs: Vec<String> = output
        .iter()
        .map(|piece| format!("printf '{}'\n", printf_format(piece)))
        .collect();
    let text = format!("#!/bin/sh\n{}", printfs.join("sleep 0.05\n"));
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn config() -> String {
    format!(
        r#"
[server]
listen = ["127.0.0.1:0"]
max_head_bytes = {MAX_HEAD}

[log]
level = "warn"
access = "off"

[cgi]
pass_env = ["PATH"]

[[route]]
prefix = "/cgi-bin/"
cgi_dir = "cgi"
"#
    )
}

/// One row on its own connection: the row's request and the follow-up in one write.
fn run(srv: &Server, row: &Row) -> Result<(), String> {
    let mut c = srv.connect();
    let method = if row.head { "HEAD" } else { "GET" };
    let mut request =
        format!("{method} /cgi-bin/{} HTTP/1.1\r\nHost: t\r\n\r\n", row.name).into_bytes();
    request.extend_from_slice(FOLLOW_UP);
    c.send(&request);
    let first = c
        .try_response(row.head)
        .ok_or("the connection closed with no response")?;
    check_first(row, &first)?;
    match c.try_response(false) {
        // The next bytes are the follow-up's answer: nothing of the script came in between.
        Some(next) if next.status == 200 && next.text() == FOLLOW_UP_BODY => Ok(()),
        Some(next) => Err(format!("the follow-up got {}", next.describe())),
        None if first.closes() => Ok(()),
        None => Err("closed after a response that did not say Connection: close".into()),
    }
}

fn check_first(row: &Row, r: &Response) -> Result<(), String> {
    let ok = match &row.want {
        BadGateway => {
            r.status == 502
                && r.text() == GENERIC_502
                && r.header("x-leak").is_none()
                && !r.text().contains("LEAK")
        }
        Answer(status, body) => r.status == *status && r.text() == *body,
    };
    // RFC 9110 §8.6, RFC 9112 §6.1: a 204 announces no length and no coding.
    let framed_204 = r.status == 204
        && (r.header("content-length").is_some() || r.header("transfer-encoding").is_some());
    if ok && !framed_204 {
        Ok(())
    } else {
        Err(format!("expected {:?}, got {}", row.want, r.describe()))
    }
}

/// A server with a script per row, and `ok` for the follow-up requests.
fn table_server(rows: &[Row]) -> Server {
    Server::start_with(&config(), |dir| {
        let cgi = dir.join("cgi");
        std::fs::create_dir_all(&cgi).unwrap();
        write_script(
            &cgi.join("ok"),
            &[b"Content-Type: text/plain\n\nok\n".to_vec()],
        );
        for row in rows {
            write_script(&cgi.join(row.name), &row.output);
        }
    })
}

#[test]
fn bad_scripts_table() {
    let rows = rows();
    let mut names: Vec<&str> = rows.iter().map(|r| r.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), rows.len(), "row names are unique");

    let srv = table_server(&rows);
    let mut failures = Vec::new();
    for row in &rows {
        let result = catch_unwind(AssertUnwindSafe(|| run(&srv, row)))
            .unwrap_or_else(|payload| Err(format!("panicked: {}", panic_text(&*payload))));
        if let Err(why) = result {
            failures.push(format!("{}: {why}", row.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
    // SPEC §5.4: the reason goes to the log, naming the script.
    for row in rows.iter().filter(|r| r.want == BadGateway) {
        let script = format!("\"/cgi-bin/{}\"", row.name);
        srv.wait_until(&format!("the log has {script}"), || {
            srv.log_text().contains(&script)
        });
    }
}

/// `cgigate run` on the config `srv` was started with: its exit code and its report.
pub(crate) fn cgigate_run(srv: &Server, args: &[&str]) -> (Option<i32>, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cgigate"))
        .arg("--config")
        .arg(srv.dir.path().join("config.toml"))
        .arg("run")
        .args(args)
        .current_dir(srv.dir.path())
        .output()
        .unwrap();
    let mut report = String::from_utf8_lossy(&out.stdout).to_string();
    report.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.code(), report)
}

/// The status `cgigate run` says the server would answer with; `None` for a local redirect.
pub(crate) fn said_status(report: &str) -> Option<u16> {
    let verdict = report
        .split("== the server would answer\n")
        .nth(1)
        .and_then(|rest| rest.lines().next())
        .unwrap_or_else(|| panic!("no verdict in:\n{report}"));
    verdict.split_whitespace().next()?.parse().ok()
}

#[test]
fn cgigate_run_gives_every_row_the_servers_verdict() {
    let rows = rows();
    let srv = table_server(&rows);
    let mut differ = Vec::new();
    for row in &rows {
        let method = if row.head { "HEAD" } else { "GET" };
        let mut c = srv.connect();
        c.send(format!("{method} /cgi-bin/{} HTTP/1.1\r\nHost: t\r\n\r\n", row.name).as_bytes());
        let served = c.try_response(row.head).map(|r| r.status);
        let (code, report) = cgigate_run(&srv, &["-X", method, &format!("/cgi-bin/{}", row.name)]);
        let said = said_status(&report);
        let refused = served == Some(502);
        let same = match said {
            Some(status) => served == Some(status),
            // A local redirect: the server answers the other location, whatever it is.
            None => report.contains("a local redirect") && !refused,
        };
        let exit_right = code == Some(if refused { 1 } else { 0 });
        if !same || !exit_right {
            differ.push(format!(
                "{}: server {served:?}, run said {said:?} (exit {code:?})",
                row.name
            ));
        }
        if refused && !report.contains("bytes ") {
            differ.push(format!("{}: a 502 without where:\n{report}", row.name));
        }
    }
    assert!(
        differ.is_empty(),
        "{} of {} rows differ:\n{}",
        differ.len(),
        rows.len(),
        differ.join("\n")
    );
    srv.terminate();
}
