//! Native plugins (SPEC §6.2): the C and Rust example plugins, built by the tests, served
//! through the real server; the loader's refusals.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::support::{get, repo_path, require, Framing, Server};

/// Build the Rust example plugin once per test run, into its own target dir (so it never
/// waits on the lock of the build that is running these tests).
fn rust_plugin() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let target = repo_path("target/plugin-tests");
            let status = Command::new(env!("CARGO"))
                .args(["build", "--quiet", "-p", "hello-plugin", "--target-dir"])
                .arg(&target)
                .current_dir(repo_path(""))
                .status()
                .expect("run cargo");
            assert!(status.success(), "building examples/plugins/rust failed");
            target.join("debug/libhello_plugin.so")
        })
        .clone()
}

/// Compile a C plugin from examples/plugins/c into `dir`.
fn c_plugin(source: &str, dir: &Path) -> PathBuf {
    let out = dir.join(format!("lib{}.so", source.trim_end_matches(".c")));
    let status = Command::new("cc")
        .args(["-shared", "-fPIC", "-Wall", "-Wextra", "-I"])
        .arg(repo_path("include"))
        .arg("-o")
        .arg(&out)
        .arg(repo_path(&format!("examples/plugins/c/{source}")))
        .status()
        .expect("run cc");
    assert!(status.success(), "cc {source} failed");
    out
}

fn config(rust: &Path) -> String {
    format!(
        r#"
[server]
listen = ["127.0.0.1:0"]

[log]
level = "info"
access = "off"

[[route]]
prefix = "/c/"
plugin = "libhello.so"
plugin_config = "from-config"

[[route]]
prefix = "/rust/"
plugin = "{}"
plugin_config = "rust-config"
"#,
        rust.display()
    )
}

/// A server with both example plugins; None (skipped) without a C compiler.
fn plugin_server() -> Option<Server> {
    if !require("cc", "gcc") {
        return None;
    }
    let rust = rust_plugin();
    Some(Server::start_with(&config(&rust), |dir| {
        c_plugin("hello.c", dir);
    }))
}

fn lines(text: &str) -> std::collections::BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn both_plugins_answer_with_server_variables_over_keep_alive() {
    let Some(srv) = plugin_server() else { return };
    let mut c = srv.connect();
    for (prefix, config) in [("/c/", "from-config"), ("/rust/", "rust-config")] {
        c.send(&get(&format!("{prefix}some/path?vars")));
        let r = c.response();
        assert_eq!(r.status, 200);
        assert!(!r.closes());
        let vars = lines(&r.text());
        assert_eq!(vars["REQUEST_METHOD"], "GET", "{prefix}");
        assert_eq!(
            vars["SCRIPT_NAME"],
            prefix.trim_end_matches('/'),
            "{prefix}"
        );
        assert_eq!(vars["PATH_INFO"], "/some/path", "{prefix}");
        assert_eq!(vars["QUERY_STRING"], "vars", "{prefix}");
        assert_eq!(vars["REMOTE_ADDR"], "127.0.0.1", "{prefix}");
        assert_eq!(vars["HTTP_HOST"], "t", "{prefix}");
        assert_eq!(vars["config"], config, "{prefix}");
        c.send(
            format!("POST {prefix}?vars HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello")
                .as_bytes(),
        );
        assert_eq!(lines(&c.response().text())["body"], "5", "{prefix}");
        // A chunked body arrives de-chunked, after 100 Continue.
        c.send(format!("POST {prefix}?vars HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n").as_bytes());
        c.expect_bytes(b"HTTP/1.1 100 Continue\r\n\r\n");
        c.send(b"3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n");
        assert_eq!(lines(&c.response().text())["body"], "7", "{prefix}");
    }
}

#[test]
fn the_c_plugin_sees_the_documented_abi() {
    let Some(srv) = plugin_server() else { return };
    let mut c = srv.connect();
    // write(len 0) does nothing: the head can still be sent afterwards.
    c.send(&get("/c/?zero"));
    let r = c.response();
    assert_eq!(r.status, 201, "{}", r.describe());
    assert_eq!(r.header("x-zero"), Some("1"));
    assert_eq!(r.text(), "a zero-length write sent no head\n");
    // A path a CGI route would refuse (%2F, %00, not UTF-8) is 404 on a plugin route too.
    for target in ["/c/a%2Fb?vars", "/c/a%00?vars", "/c/%ff?vars"] {
        c.send(&get(target));
        assert_eq!(c.response().status, 404, "{target}");
    }
    // HEAD reaches handle; the client gets the head GET would get, without the body.
    c.send(b"HEAD /c/?zero HTTP/1.1\r\nHost: t\r\n\r\n");
    let head = c.head_response();
    assert_eq!(head.status, 201, "{}", head.describe());
    assert_eq!(head.header("content-length"), Some("33"));
    assert!(head.body.is_empty());
    c.send(&get("/c/?zero"));
    assert_eq!(c.response().body.len(), 33, "the same connection goes on");
}

#[test]
fn both_plugins_stream_with_flush() {
    let Some(srv) = plugin_server() else { return };
    for prefix in ["/c/", "/rust/"] {
        let mut c = srv.connect();
        c.send(&get(&format!("{prefix}?count=3")));
        let r = c.response();
        assert_eq!(r.framing, Framing::Chunked, "{prefix}");
        assert_eq!(r.text(), "count 1\ncount 2\ncount 3\n", "{prefix}");
        assert_eq!(r.chunks.len(), 3, "{prefix}: one chunk per flush");
        let spread = r.arrivals[2] - r.arrivals[0];
        assert!(
            spread >= Duration::from_millis(150),
            "{prefix}: arrived together ({spread:?})"
        );
        assert!(!r.closes());
    }
}

#[test]
fn rust_plugin_buffered_and_sized_output() {
    let Some(srv) = plugin_server() else { return };
    let mut c = srv.connect();
    c.send(&get("/rust/?buffered"));
    let r = c.response();
    assert_eq!(r.framing, Framing::Length);
    assert!(!r.body.is_empty());
    c.send(&get("/rust/?sized"));
    let r = c.response();
    assert_eq!(r.framing, Framing::Length);
    assert_eq!(r.header("content-length"), Some("11"));
    assert_eq!(r.text(), "hello world");
}

#[test]
fn a_panicking_plugin_gets_a_500_and_the_server_keeps_serving() {
    let Some(srv) = plugin_server() else { return };
    let mut c = srv.connect();
    c.send(&get("/rust/?panic"));
    assert_eq!(c.response().status, 500);
    c.send(&get("/rust/?vars"));
    assert_eq!(c.response().status, 200, "same connection, next request");
    for prefix in ["/c/", "/rust/"] {
        assert_eq!(
            srv.get(&format!("{prefix}?fail")).status,
            500,
            "{prefix}: handle failing before headers"
        );
    }
    assert_eq!(srv.get("/c/?vars").status, 200);
}

#[test]
fn a_client_going_away_is_seen_by_the_plugin() {
    let Some(srv) = plugin_server() else { return };
    for prefix in ["/c/", "/rust/"] {
        let mut c = srv.connect();
        c.send(&get(&format!("{prefix}?count=100")));
        c.response_head().expect("head");
        drop(c);
    }
    // Each plugin notices (is_connected false or a failed write) and says so on stderr.
    srv.wait_until("both plugins stopped early", || {
        let log = srv.log_text();
        log.contains("hello_c: client gone") && log.contains("hello-plugin: client gone")
    });
}

fn check(config_text: &str, prepare: impl FnOnce(&Path)) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    prepare(dir.path());
    std::fs::write(dir.path().join("config.toml"), config_text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_cgigate"))
        .args(["check", "--config", "config.toml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_loader_refuses_unknown_abi_versions_and_sizes_and_failing_init() {
    if !require("cc", "gcc") {
        return;
    }
    let one = |file: &str, config: &str| {
        format!("[server]\nlisten = [\"127.0.0.1:0\"]\n[[route]]\nprefix = \"/p/\"\nplugin = \"{file}\"\nplugin_config = \"{config}\"\n")
    };
    let (code, err) = check(&one("libwrong_abi.so", ""), |d| {
        c_plugin("wrong_abi.c", d);
    });
    assert_eq!(code, Some(2));
    assert!(
        err.contains("libwrong_abi.so") && err.contains("ABI version 999 is not supported"),
        "{err}"
    );
    let (code, err) = check(&one("libwrong_size.so", ""), |d| {
        c_plugin("wrong_size.c", d);
    });
    assert_eq!(code, Some(2));
    assert!(
        err.contains("libwrong_size.so") && err.contains("descriptor size"),
        "{err}"
    );
    let (code, err) = check(&one("libhello.so", "fail"), |d| {
        c_plugin("hello.c", d);
    });
    assert_eq!(code, Some(2));
    assert!(
        err.contains("init failed: hello_c: plugin_config must not be \"fail\""),
        "{err}"
    );
    let (code, err) = check(&one(&rust_plugin().display().to_string(), "fail"), |_| {});
    assert_eq!(code, Some(2));
    assert!(
        err.contains("hello-plugin: plugin_config must not be \"fail\""),
        "{err}"
    );
    let (code, err) = check(&one("missing.so", ""), |_| {});
    assert_eq!(code, Some(2));
    assert!(err.contains("missing.so"), "{err}");
    let (code, _) = check(&one("libhello.so", "ok"), |d| {
        c_plugin("hello.c", d);
    });
    assert_eq!(code, Some(0));
}

#[test]
fn terminate_runs_at_shutdown() {
    let Some(mut srv) = plugin_server() else {
        return;
    };
    assert_eq!(srv.get("/c/?vars").status, 200);
    assert_eq!(srv.get("/rust/?vars").status, 200);
    srv.terminate();
    assert!(srv.wait().success());
    srv.wait_until("both terminate functions ran", || {
        let log = srv.log_text();
        log.contains("hello_c: terminate") && log.contains("hello-plugin: terminate")
    });
}
