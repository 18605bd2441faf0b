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
fn sigterm_drains_idle_connections_instead_of_closing_them_under_their_clients() {
    let mut srv = server("keep_alive_timeout = \"500ms\"");
    let mut next = srv.connect();
    let mut silent = srv.connect();
    for c in [&mut next, &mut silent] {
        c.send(&get("/echo"));
        assert_eq!(c.response().status, 200);
    }
    srv.terminate();
    srv.wait_until("the server stops accepting", || {
        std::net::TcpStream::connect(&srv.addr).is_err()
    });
    // The next request on a kept-alive connection is answered, with Connection: close…
    next.send(&get("/echo"));
    let r = next.response();
    assert_eq!(r.status, 200);
    assert!(r.closes(), "{}", r.describe());
    assert!(next.is_closed());
    // …and one that sends nothing more is closed at keep_alive_timeout.
    assert!(silent.is_closed());
    assert!(srv.wait().success());
}

/// A program that starts cgigate on the listening socket `fd` of the test process, as
/// systemd's socket activation would (`LISTEN_FDS`, here from `fd` rather than 3).
fn socket_activated(dir: &std::path::Path, fd: i32) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("activate.sh");
    let script = format!(
        "#!/bin/sh\nLISTEN_FDS=1 LISTEN_FDS_FIRST_FD={fd} exec {} \"$@\"\n",
        env!("CARGO_BIN_EXE_cgigate")
    );
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[test]
fn systemd_socket_activation_serves_the_passed_socket() {
    use std::io::BufRead;
    if !crate::support::require("systemd-socket-activate", "systemd") {
        return;
    }
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("static")).unwrap();
    std::fs::write(dir.path().join("config.toml"), config("")).unwrap();
    // systemd-socket-activate binds, and at the first connection execs cgigate (same pid)
    // with LISTEN_FDS=1 and LISTEN_PID set, as systemd does.
    let mut child = Command::new("systemd-socket-activate")
        .arg("-l")
        .arg(format!("127.0.0.1:{port}"))
        .arg(env!("CARGO_BIN_EXE_cgigate"))
        .arg("--config")
        .arg(dir.path().join("config.toml"))
        .current_dir(dir.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let announced = lines.next().unwrap().unwrap();
    assert!(
        announced.contains(&format!("127.0.0.1:{port}")),
        "{announced}"
    );
    let mut c = crate::support::Client::connect(&format!("127.0.0.1:{port}"));
    c.send(&get("/echo"));
    let r = c.response();
    let mut out = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut out)
        .unwrap();
    drop(c);
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(out.trim(), format!("listening on http://127.0.0.1:{port}"));
    assert!(status.success(), "{status:?}");
}

#[test]
fn a_restart_on_a_socket_activated_listener_fails_no_request() {
    use std::os::fd::AsRawFd;
    // The test holds the listening socket, as systemd does; each instance inherits it. It
    // is inheritable only while an instance starts: every process the other tests start
    // meanwhile would get it too.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let keys = "keep_alive_timeout = \"2s\"\nshutdown_timeout = \"10s\"";
    let cfg = format!(
        "{}\n[[route]]\nprefix = \"/cgi-bin/\"\ncgi_dir = \"{}\"\n",
        config(keys),
        crate::support::repo_path("cgi-bin").display()
    );
    let start = || {
        let holder = tempfile::tempdir().unwrap();
        let program = socket_activated(holder.path(), listener.as_raw_fd());
        rustix::io::fcntl_setfd(&listener, rustix::io::FdFlags::empty()).unwrap();
        let srv = Server::start_program(&program, &[], &cfg, |d| {
            std::fs::create_dir_all(d.join("static")).unwrap();
        });
        rustix::io::fcntl_setfd(&listener, rustix::io::FdFlags::CLOEXEC).unwrap();
        assert_eq!(srv.addr, addr, "it serves the inherited socket");
        (srv, holder)
    };
    let (mut old, _dir) = start();
    let load = crate::support::Load::start(
        &addr,
        &["/cgi-bin/hello", "/echo", "/cgi-bin/hello", "/echo"],
    );
    let mut restarts = Vec::new();
    for _ in 0..2 {
        let before = load.answered();
        load.wait_for(50);
        // The successor starts on the same socket, then the old one drains and exits.
        let (new, dir) = start();
        old.terminate();
        assert!(old.wait().success());
        let at_exit = load.answered();
        load.wait_for(50);
        restarts.push(at_exit - before);
        old = new;
        let _ = dir;
    }
    let results = load.stop();
    let failed = results.iter().filter(|(_, ok)| !ok).count();
    eprintln!(
        "two restarts under 4 keep-alive clients: {} requests answered, {failed} failed; answered during each drain: {restarts:?}",
        results.len() - failed
    );
    assert_eq!(failed, 0);
    old.terminate();
    assert!(old.wait().success());
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
