//! The embedding API: `examples/embed.rs` mounts its own handler under `/app/` beside a
//! config's routes with `Server::builder(config).handler(…)`; it is built by `cargo test`
//! and run here like the server binary.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use crate::support::{get, repo_path, Framing, Server};

/// The example, built once per test run (a plain `cargo test` has built it already; a
/// filtered one has not) into the target folder this test binary is in.
fn example() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let exe = std::env::current_exe().expect("test binary path");
            // target/debug/deps/integration-… → target
            let target = exe
                .ancestors()
                .nth(3)
                .expect("the target folder")
                .to_path_buf();
            let status = Command::new(env!("CARGO"))
                .args(["build", "--quiet", "--example", "embed", "--target-dir"])
                .arg(&target)
                .current_dir(repo_path(""))
                .status()
                .expect("run cargo");
            assert!(status.success(), "building examples/embed.rs failed");
            target.join("debug/examples/embed")
        })
        .clone()
}

fn embedded() -> Server {
    let config = r#"
[server]
listen = ["127.0.0.1:0"]

[log]
level = "warn"
access = "stdout"

[output]
buffer_limit = "64KiB"

[[route]]
prefix = "/status"
handler = "status"
"#;
    Server::start_program(&example(), &[], config, |_| {})
}

#[test]
fn an_embedded_handler_serves_beside_the_config_routes() {
    let srv = embedded();
    let mut c = srv.connect();

    c.send(&get("/app/buffered"));
    let r = c.response();
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.framing, Framing::Length);
    assert_eq!(r.text(), "one\ntwo\n");
    assert!(!r.closes());

    c.send(&get("/app/streamed"));
    let r = c.response();
    assert_eq!(r.framing, Framing::Chunked);
    assert_eq!(r.chunks.len(), 3, "one chunk per flush");
    assert_eq!(r.text(), "line 1\nline 2\nline 3\n");

    c.send(b"POST /app/upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n");
    c.expect_bytes(b"HTTP/1.1 100 Continue\r\n\r\n");
    c.send(b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
    assert_eq!(c.response().text(), "got 11 bytes\n");

    // The config's own routes and the server's own answers are still there.
    c.send(&get("/status"));
    assert_eq!(c.response().status, 200);
    c.send(&get("/app/nothing"));
    assert_eq!(c.response().status, 404);
    c.send(&get("/elsewhere"));
    assert_eq!(c.response().status, 404);

    srv.wait_until("access log lines for the embedded routes", || {
        let lines = srv.log_lines();
        lines
            .iter()
            .any(|l| l.contains("/app/buffered") && l.contains(" mode=buffer framing=length "))
            && lines
                .iter()
                .any(|l| l.contains("/app/streamed") && l.contains(" mode=stream framing=chunked "))
    });
}

#[test]
fn a_mounted_prefix_a_route_already_has_is_refused() {
    let config =
        "[server]\nlisten = [\"127.0.0.1:0\"]\n[[route]]\nprefix = \"/app/\"\nhandler = \"echo\"\n";
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.toml"), config).unwrap();
    let out = std::process::Command::new(example())
        .arg("--config")
        .arg(dir.path().join("config.toml"))
        .output()
        .expect("run the example");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("mounted handler at \"/app/\": another route has this prefix"),
        "{stderr}"
    );
}
