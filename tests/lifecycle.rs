//! Graceful shutdown, the command line and config errors.

use std::process::Command;

use crate::support::{config, get, server, Framing, Server};

#[test]
fn sigterm_lets_an_in_flight_streamed_response_finish() {
    let mut srv = server("shutdown_timeout = \"10s\"");
    let mut c = srv.connect();
    c.send(&get("/streamed/ticker?count=5&interval_ms=200"));
    let (status, _, headers) = c.response_head().expect("head");
    assert_eq!(status, 200);
    assert!(headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("transfer-encoding") && v == "chunked"));
    srv.terminate();
    // The rest of the body, ending with the last chunk, still arrives; then the server closes.
    let rest = String::from_utf8(c.read_to_close()).unwrap();
    assert!(rest.ends_with("7\r\ntick 5\n\r\n0\r\n\r\n"), "{rest:?}");
    for i in 1..=5 {
        assert!(rest.contains(&format!("tick {i}\n")));
    }
    assert!(srv.wait().success());
}

#[test]
fn sigterm_with_idle_connections_exits_cleanly() {
    let mut srv = server("");
    let mut idle = srv.connect();
    idle.send(&get("/echo"));
    assert_eq!(idle.response().status, 200);
    srv.terminate();
    assert!(idle.is_closed());
    assert!(srv.wait().success());
}

#[test]
fn shutdown_timeout_cuts_what_does_not_finish() {
    let mut srv = server("shutdown_timeout = \"200ms\"");
    let mut c = srv.connect();
    c.send(&get("/streamed/ticker?count=100&interval_ms=100"));
    c.response_head().expect("head");
    srv.terminate();
    let rest = c.read_to_close();
    assert!(
        !rest.ends_with(b"0\r\n\r\n"),
        "an unfinished body is never completed"
    );
    assert!(srv.wait().success());
}

fn cgigate(args: &[&str], dir: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_cgigate"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run cgigate")
}

#[test]
fn check_accepts_the_shipped_config() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = cgigate(&["check", "--config", "config.toml"], repo);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok"));
}

#[test]
fn config_errors_name_file_line_and_key_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "[server]\nlisten = [\"127.0.0.1:0\"]\nbogus = 1\n",
            "bad.toml:3:1: server.bogus",
        ),
        (
            "[server]\nheader_timeout = \"5x\"\n",
            "bad.toml:2:18: server.header_timeout",
        ),
        (
            "[[route]]\nprefix = \"/a\"\nhandler = \"nope\"\n",
            "bad.toml:3:11: route[1].handler",
        ),
        (
            "[[route]]\nprefix = \"/s/\"\nstatic_dir = \"missing\"\n",
            "bad.toml:1: route /s/: static_dir",
        ),
    ];
    for (text, expected) in cases {
        std::fs::write(dir.path().join("bad.toml"), text).unwrap();
        for args in [
            &["check", "--config", "bad.toml"][..],
            &["--config", "bad.toml", "--listen", "127.0.0.1:0"],
        ] {
            let out = cgigate(args, dir.path());
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
            assert!(
                err.contains(expected),
                "{args:?}: expected {expected:?} in {err:?}"
            );
            assert_eq!(err.lines().count(), 1, "one line: {err:?}");
        }
    }
    let out = cgigate(&["check", "--config", "absent.toml"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("absent.toml"));
}

#[test]
fn every_listener_prints_its_line_and_json_access_log_parses() {
    let text = config("").replace(
        "access = \"stdout\"",
        "access = \"stdout\"\nformat = \"json\"",
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("static")).unwrap();
    std::fs::write(dir.path().join("config.toml"), text).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_cgigate"))
        .args([
            "--config",
            "config.toml",
            "--listen",
            "127.0.0.1:0",
            "--listen",
            "127.0.0.1:0",
        ])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    use std::io::BufRead;
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let second = lines.next().unwrap().unwrap();
    assert!(
        first.starts_with("listening on http://127.0.0.1:"),
        "{first}"
    );
    assert!(
        second.starts_with("listening on http://127.0.0.1:"),
        "{second}"
    );
    assert_ne!(first, second);
    let addr = first.trim_start_matches("listening on http://");
    let mut c = crate::support::Client::connect(addr);
    c.send(&get("/echo?json"));
    assert_eq!(c.response().framing, Framing::Length);
    let line = lines.next().unwrap().unwrap();
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["target"], "/echo?json");
    assert_eq!(v["status"], 200);
    assert_eq!(v["framing"], "length");
    assert_eq!(v["keep_alive"], true);
    assert!(v["ttfb_ms"].is_number() && v["total_ms"].is_number());
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn server_struct_is_used() {
    // Keeps the import honest: Server::start works on a config with no routes at all.
    let srv = Server::start("[server]\nlisten = [\"127.0.0.1:0\"]\n[log]\naccess = \"off\"\n");
    assert_eq!(srv.get("/").status, 404);
}
