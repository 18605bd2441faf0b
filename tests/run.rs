//! `cgigate run` (a script run as the server would, without a server) and `[cgi]
//! capture_failures` (a replayable record of each 502 and 504). The bad-script table's
//! verdicts are compared with the server's in tests/bad_scripts.rs.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::bad_scripts::{cgigate_run, said_status};
use crate::support::Server;

fn script(dir: &Path, name: &str, body: &str) {
    let path = dir.join("cgi").join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, format!("#!/bin/sh\n{body}")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn config(cgi: &str, routes: &str) -> String {
    format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\n\n[log]\nlevel = \"warn\"\naccess = \"off\"\n\n\
         [cgi]\npass_env = [\"PATH\"]\n{cgi}\n\n[[route]]\nprefix = \"/cgi-bin/\"\ncgi_dir = \"cgi\"\n{routes}"
    )
}

/// The part of a report after `== NAME`, to the next section.
fn section<'a>(report: &'a str, name: &str) -> &'a str {
    let start = report
        .find(&format!("== {name}"))
        .unwrap_or_else(|| panic!("no {name} in:\n{report}"));
    let rest = &report[start..];
    let body = &rest[rest.find('\n').map_or(rest.len(), |i| i + 1)..];
    &body[..body.find("\n== ").map_or(body.len(), |i| i + 1)]
}

const SHOW: &str = "printf 'Content-Type: text/plain\\n\\n'\n\
    echo \"path_info=$PATH_INFO\"\necho \"query=$QUERY_STRING\"\necho \"length=$CONTENT_LENGTH\"\n\
    printf 'body='; cat; echo\ntouch ran\n";

#[test]
fn a_script_run_by_cgigate_run_gives_what_it_gives_through_the_server() {
    let srv = Server::start_with(&config("", ""), |d| script(d, "show", SHOW));
    let target = "/cgi-bin/show/extra/path?x=1&y=two";
    let mut c = srv.connect();
    c.send(
        format!("POST {target} HTTP/1.1\r\nHost: t\r\nContent-Length: 7\r\nConnection: close\r\n\r\na=1&b=2")
            .as_bytes(),
    );
    let served = c.response();
    assert_eq!(served.status, 200);
    let (code, report) = cgigate_run(&srv, &["-X", "POST", "-d", "a=1&b=2", target]);
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(said_status(&report), Some(200), "{report}");
    assert!(section(&report, "the server would answer").contains("Content-Length: "));
    // The body section ends with the blank line before the next section.
    assert_eq!(
        section(&report, "body").trim_end(),
        served.text().trim_end()
    );
    assert!(served
        .text()
        .contains("path_info=/extra/path\nquery=x=1&y=two\nlength=7\nbody=a=1&b=2"));
    let env = section(&report, "environment");
    assert!(
        env.contains("\nPATH_INFO=/extra/path\n") && env.contains("\nREQUEST_METHOD=POST\n"),
        "{env}"
    );

    // --env-only: the environment, and the script does not run.
    let marker = srv.dir.path().join("cgi/ran");
    std::fs::remove_file(&marker).unwrap();
    let (code, env) = cgigate_run(&srv, &["--env-only", "-X", "POST", "-d", "a=1&b=2", target]);
    assert_eq!(code, Some(0));
    let lines: Vec<&str> = env.lines().collect();
    for want in [
        "PATH_INFO=/extra/path",
        "QUERY_STRING=x=1&y=two",
        "CONTENT_LENGTH=7",
        "SCRIPT_NAME=/cgi-bin/show",
    ] {
        assert!(lines.contains(&want), "{want} in:\n{env}");
    }
    assert!(!marker.exists(), "--env-only ran the script");

    // What the server would refuse is exit 1; what cannot be run at all, exit 2.
    let (code, report) = cgigate_run(&srv, &["/cgi-bin/missing"]);
    assert_eq!(code, Some(1));
    assert!(report.contains("would answer 404"), "{report}");
    let (code, report) = cgigate_run(&srv, &["/elsewhere"]);
    assert_eq!(code, Some(2));
    assert!(report.contains("is not served by a CGI route"), "{report}");
    srv.terminate();
}

/// A bad header block after reading its body; the body and a word go to stderr.
const BAD: &str =
    "cat >&2\necho ' oops' >&2\nprintf 'Content-Type: text/plain\\nX-Bad Name: 1\\n\\nhello\\n'\n";

#[test]
fn failures_are_captured_bounded_without_secrets_and_replay_with_cgigate_run() {
    let routes = "[[route]]\nprefix = \"/slow/\"\ncgi_dir = \"cgi\"\ntimeout = \"300ms\"\n\
                  [[route]]\nprefix = \"/uncaptured/\"\ncgi_dir = \"cgi\"\ncapture_failures = \"elsewhere\"\n";
    let cgi = "capture_failures = \"failures\"\ncapture_max = 3";
    let srv = Server::start_with(&config(cgi, routes), |d| {
        script(d, "bad", BAD);
        script(d, "sleepy", "sleep 5\n");
    });
    let failures = srv.dir.path().join("failures");
    let records = || -> Vec<std::path::PathBuf> {
        let mut found: Vec<_> = std::fs::read_dir(&failures)
            .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        found.sort();
        found
    };
    let post = |target: &str, body: &str| {
        let mut c = srv.connect();
        c.send(
            format!(
                "POST {target} HTTP/1.1\r\nHost: t\r\nCookie: session=secret\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        );
        c.response().status
    };
    assert_eq!(post("/cgi-bin/bad", "first=1"), 502);
    assert_eq!(records().len(), 1);
    let record = records()[0].clone();
    let request = std::fs::read_to_string(record.join("request.http")).unwrap();
    assert!(
        request.starts_with("POST /cgi-bin/bad HTTP/1.1\r\n"),
        "{request}"
    );
    assert!(!request.contains("secret"), "a cookie left in: {request}");
    assert!(
        request.ends_with("Content-Length: 7\r\n\r\nfirst=1"),
        "{request}"
    );
    assert_eq!(
        std::fs::read_to_string(record.join("stderr.txt")).unwrap(),
        "first=1 oops\n"
    );
    let reason = std::fs::read_to_string(record.join("reason.txt")).unwrap();
    assert!(reason.starts_with("502 bad_output: "), "{reason}");

    // The replay: the same verdict, and the script got the same body.
    let request_file = record.join("request.http");
    let (code, report) = cgigate_run(&srv, &["--request", request_file.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{report}");
    assert_eq!(said_status(&report), Some(502));
    assert!(
        section(&report, "the server would answer").contains("line 2"),
        "{report}"
    );
    assert_eq!(
        section(&report, "stderr (13 bytes)").trim_end(),
        "first=1 oops"
    );

    // A 504 is captured too; the count stays bounded, the oldest going first.
    assert_eq!(post("/slow/sleepy", ""), 504);
    srv.wait_until("the 504's record", || {
        records().iter().any(|r| {
            std::fs::read_to_string(r.join("reason.txt")).is_ok_and(|t| t.starts_with("504 "))
        })
    });
    for n in 0..3 {
        assert_eq!(post("/cgi-bin/bad", &format!("n={n}")), 502);
    }
    assert_eq!(records().len(), 3);
    assert!(!record.exists(), "the oldest record was removed");
    // A route with a folder of its own writes there, not in the [cgi] one.
    assert_eq!(post("/uncaptured/bad", "x"), 502);
    assert_eq!(records().len(), 3);
    assert!(srv.dir.path().join("elsewhere").is_dir());
    srv.terminate();
}

#[test]
fn nothing_is_captured_when_it_is_off() {
    let srv = Server::start_with(&config("", ""), |d| script(d, "bad", BAD));
    let mut c = srv.connect();
    c.send(b"GET /cgi-bin/bad HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert_eq!(c.response().status, 502);
    let entries: Vec<_> = std::fs::read_dir(srv.dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    let mut entries = entries;
    entries.sort();
    assert_eq!(entries, ["cgi", "config.toml"]);
    srv.terminate();
}
