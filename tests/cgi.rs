//! The CGI host (SPEC §5): which program runs, its environment, request bodies, responses,
//! NPH, and the process lifecycle — with scripts written for each test.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use crate::support::{alive, children_of, get, Framing, Server};

/// Scripts every CGI test server has, written into `cgi/`.
const SCRIPTS: &[(&str, &str)] = &[
    ("hello", "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\nhello\\n'\n"),
    // The environment exactly as the script sees it (perl adds nothing of its own).
    ("printenv", "#!/usr/bin/perl\nprint \"Content-Type: text/plain\\n\\n\";\nprint \"$_=$ENV{$_}\\n\" for sort keys %ENV;\n"),
    ("args", "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\nargs=%s pwd=%s\\n' \"$#\" \"$(pwd -P)\"\n"),
    ("cat", "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\n'\nwc -c | tr -d ' '\n"),
    ("lf", "#!/bin/sh\nprintf 'Status: 201 Made\\nContent-Type: text/plain\\nX-Lf: yes\\n\\nbody\\n'\n"),
    ("nph-raw", "#!/bin/sh\nprintf 'HTTP/1.1 200 OK\\r\\nContent-Type: text/plain\\r\\nX-Nph: 1\\r\\n\\r\\nraw body\\n'\n"),
    ("local-redirect", "#!/bin/sh\nprintf 'Location: /cgi-bin/hello?from=redirect\\n\\n'\n"),
    ("loop", "#!/bin/sh\nprintf 'Location: /cgi-bin/loop\\n\\n'\n"),
    ("client-redirect", "#!/bin/sh\nprintf 'Location: http://example.invalid/x\\n\\n'\n"),
    ("short-cl", "#!/bin/sh\nprintf 'Content-Type: text/plain\\nContent-Length: 10\\n\\n12345'\n"),
    ("long-cl", "#!/bin/sh\nprintf 'Content-Type: text/plain\\nContent-Length: 5\\n\\n1234567890'\n"),
    ("stderr", "#!/bin/sh\necho 'something went wrong in stderr-script' >&2\nprintf 'Content-Type: text/plain\\n\\nok\\n'\n"),
    ("noisy", "#!/usr/bin/perl\nprint STDERR ((\"e\" x 999) . \"\\n\") for 1..1024;\nprint \"Content-Type: text/plain\\n\\nquiet\\n\";\n"),
    // Writes 1 MiB before reading its input, then reports how much input it got.
    ("big-first", "#!/usr/bin/perl\n$| = 1;\nprint \"Content-Type: text/plain\\n\\n\";\nprint \"x\" x 1048576;\nlocal $/; my $in = <STDIN>;\nprint \"\\nread=\", length($in // ''), \"\\n\";\n"),
    ("no-read", "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\nignored the body\\n'\n"),
    ("sleep", "#!/bin/sh\necho $$ > \"$PIDFILE\"\nexec sleep 30\n"),
    ("sleep-after-head", "#!/bin/sh\necho $$ > \"$PIDFILE\"\nprintf 'Content-Type: text/plain\\n\\nstarted\\n'\nexec sleep 30\n"),
    ("forever", "#!/bin/sh\necho $$ > \"$PIDFILE\"\nprintf 'Content-Type: text/plain\\n\\n'\nwhile :; do echo tick; sleep 0.1; done\n"),
    ("grandchild", "#!/bin/sh\nsleep 30 &\necho $! > \"$PIDFILE\"\nprintf 'Content-Type: text/plain\\n\\nparent done\\n'\n"),
    ("slow-stdin", "#!/bin/sh\necho $$ > \"$PIDFILE\"\nprintf 'Content-Type: text/plain\\n\\n'\ncat >/dev/null\necho done\n"),
    ("ticker", "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\n'\nfor i in 1 2 3; do echo \"tick $i\"; [ $i -lt 3 ] && sleep 0.15; done\n"),
    ("data.txt", "not a script\n"),
    ("script.py", "print('Content-Type: text/plain')\nprint()\nprint('python ran me')\n"),
];

/// Malformed script outputs: each must give a 502 with a generic body.
const BAD_OUTPUTS: &[(&str, &str)] = &[
    ("bad-noblank", "Content-Type: text/plain\\n"),
    ("bad-nocolon", "Content-Type text/plain\\n\\nbody"),
    ("bad-cr", "Content-Type: text/plain\\nX-A: a\\rb\\n\\nbody"),
    (
        "bad-ctl",
        "Content-Type: text/plain\\nX-A: a\\001b\\n\\nbody",
    ),
    (
        "bad-status",
        "Status: two hundred\\nContent-Type: text/plain\\n\\nbody",
    ),
    (
        "bad-te",
        "Content-Type: text/plain\\nTransfer-Encoding: chunked\\n\\nbody",
    ),
    ("bad-notype", "X-Only: this\\n\\nbody"),
];

fn prepare(dir: &Path) {
    let cgi = dir.join("cgi");
    std::fs::create_dir_all(cgi.join("sub")).unwrap();
    for (name, body) in SCRIPTS {
        write_script(
            &cgi.join(name),
            body,
            *name != "data.txt" && !name.ends_with(".py"),
        );
    }
    for (name, output) in BAD_OUTPUTS {
        write_script(
            &cgi.join(name),
            &format!("#!/bin/sh\nprintf '{output}'\n"),
            true,
        );
    }
    let huge = format!(
        "#!/bin/sh\nprintf 'Content-Type: text/plain\\nX-Big: {}\\n\\nbody'\n",
        "a".repeat(70_000)
    );
    write_script(&cgi.join("bad-huge"), &huge, true);
    write_script(&cgi.join("sub/inner"), SCRIPTS[0].1, true);
    std::fs::write(dir.join("outside"), SCRIPTS[0].1).unwrap();
    std::fs::set_permissions(dir.join("outside"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink(dir.join("outside"), cgi.join("escape")).unwrap();
    std::os::unix::fs::symlink(cgi.join("hello"), cgi.join("alias")).unwrap();
}

fn write_script(path: &Path, body: &str, executable: bool) {
    std::fs::write(path, body).unwrap();
    let mode = if executable { 0o755 } else { 0o644 };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The config for CGI tests; `cgi` goes into [cgi], `route` into the main CGI route.
fn config(server: &str, cgi: &str, route: &str) -> String {
    format!(
        r#"
[server]
listen = ["127.0.0.1:0"]
{server}

[log]
level = "info"
access = "off"

[cgi]
pass_env = ["PATH"]
interpreters = {{ ".py" = "python3" }}
env = {{ PIDFILE = "pidfile" }}
{cgi}

[[route]]
prefix = "/status"
handler = "status"

[[route]]
prefix = "/cgi-bin/"
cgi_dir = "cgi"
{route}

[[route]]
prefix = "/buffered/"
cgi_dir = "cgi"
output = "buffer"

[[route]]
prefix = "/streamed/"
cgi_dir = "cgi"
output = "stream"

[[route]]
prefix = "/fixed/"
cgi_script = "cgi/printenv"
"#
    )
}

fn start(server: &str, cgi: &str, route: &str) -> Server {
    Server::start_with(&config(server, cgi, route), prepare)
}

/// Scripts start from the spawn helper here (the default, `auto`, uses it only once the
/// server holds many connections), so most CGI tests go through it; the tests that run with
/// the defaults (and tests/legacy.rs) cover the server's own spawning.
fn cgi_server() -> Server {
    start("", HELPER, "")
}

const HELPER: &str = "spawn = \"helper\"";

/// The NAME=value lines of a printenv response.
fn env_of(text: &str) -> std::collections::BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The pid a script wrote into its PIDFILE (its working directory is the cgi folder).
fn script_pid(srv: &Server) -> u32 {
    let path = srv.dir.path().join("cgi/pidfile");
    let mut pid = None;
    srv.wait_until("the script wrote its pid", || {
        pid = std::fs::read_to_string(&path)
            .ok()
            .and_then(|s| s.trim().parse().ok());
        pid.is_some()
    });
    pid.unwrap()
}

/// SIGKILL `pid`.
fn kill9(pid: u32) {
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(killed.success(), "kill -KILL {pid}");
}

fn wait_gone(srv: &Server, pid: u32) {
    srv.wait_until(&format!("process {pid} is gone"), || !alive(pid));
}

// ---- which program runs (SPEC §5.1) ----

#[test]
fn scripts_are_found_and_everything_else_refused() {
    let srv = cgi_server();
    for (target, status) in [
        ("/cgi-bin/hello", 200),
        ("/cgi-bin/sub/inner", 200),
        ("/cgi-bin/alias", 200),
        ("/cgi-bin/script.py", 200),
        ("/cgi-bin/hello/path/info", 200),
        ("/cgi-bin/missing", 404),
        ("/cgi-bin/sub%2Finner", 404),
        ("/cgi-bin/hello%00", 404),
        ("/cgi-bin/sub", 403),
        ("/cgi-bin/", 403),
        ("/cgi-bin/data.txt", 403),
        ("/cgi-bin/escape", 403),
        ("/cgi-bin/../outside", 404),
        ("/cgi-bin/%2e%2e/outside", 404),
    ] {
        assert_eq!(srv.get(target).status, status, "{target}");
    }
    assert_eq!(srv.get("/cgi-bin/script.py").text(), "python ran me\n");
}

#[test]
fn no_shell_no_query_argv_and_the_scripts_folder_as_cwd() {
    let srv = cgi_server();
    let r = srv.get("/cgi-bin/args?a+b+c");
    let cwd = srv.dir.path().join("cgi").canonicalize().unwrap();
    assert_eq!(r.text(), format!("args=0 pwd={}\n", cwd.display()));
    // A query with shell syntax is just data.
    let r = srv.get("/cgi-bin/args?;touch%20pwned");
    assert_eq!(r.status, 200);
    assert!(!srv.dir.path().join("cgi/pwned").exists());
}

#[test]
fn the_child_holds_no_descriptor_of_the_server() {
    if !crate::support::require("cc", "gcc") {
        return;
    }
    // Through the spawn helper, from the server itself, and with the default (auto).
    for (cgi, helper) in [(HELPER, true), ("spawn = \"direct\"", false), ("", true)] {
        let srv = start("", cgi, "");
        assert_eq!(srv.helper().is_some(), helper, "{cgi:?}");
        only_0_1_and_2(&srv);
    }
}

fn only_0_1_and_2(srv: &Server) {
    let src = srv.dir.path().join("fds.c");
    std::fs::write(
        &src,
        "#include <dirent.h>\n#include <stdio.h>\n#include <stdlib.h>\n\
         int main(void){DIR*d=opendir(\"/proc/self/fd\");struct dirent*e;int me=dirfd(d);\
         printf(\"Content-Type: text/plain\\n\\n\");\
         while((e=readdir(d))){if(e->d_name[0]=='.')continue;if(atoi(e->d_name)==me)continue;printf(\"%s \",e->d_name);}\
         printf(\"\\n\");return 0;}\n",
    )
    .unwrap();
    compile(&src, &srv.dir.path().join("cgi/fds"));
    // Keep a few other connections open so the server has descriptors to leak.
    let mut others: Vec<_> = (0..3).map(|_| srv.connect()).collect();
    for c in &mut others {
        c.send(&get("/status"));
        c.response();
    }
    let r = srv.get("/cgi-bin/fds");
    assert_eq!(r.text(), "0 1 2 \n");
}

/// Compile a C program with cc.
pub fn compile(src: &Path, out: &Path) {
    let status = std::process::Command::new("cc")
        .arg("-O2")
        .arg("-o")
        .arg(out)
        .arg(src)
        .status()
        .expect("cc");
    assert!(status.success(), "cc failed for {}", src.display());
}

#[test]
fn a_c_program_runs_as_a_cgi() {
    if !crate::support::require("cc", "gcc") {
        return;
    }
    let srv = cgi_server();
    compile(
        &crate::support::repo_path("examples/cgi/hello.c"),
        &srv.dir.path().join("cgi/hello-c"),
    );
    let mut c = srv.connect();
    for i in 0..3 {
        c.send(&get(&format!("/cgi-bin/hello-c?n={i}")));
        let r = c.response();
        assert_eq!(r.text(), format!("Hello from C, query=n={i}\n"));
        assert!(!r.closes(), "keep-alive holds across CGI responses");
    }
}

// ---- environment (SPEC §5.2) ----

#[test]
fn environment_of_a_get_with_path_info_and_query() {
    let srv = cgi_server();
    let port = srv.addr.rsplit(':').next().unwrap().to_string();
    let mut c = srv.connect();
    c.send(b"GET /cgi-bin/printenv/a%20b/c?x=1&y=%20 HTTP/1.1\r\nHost: example.test:8080\r\nUser-Agent: t\r\n\r\n");
    let env = env_of(&c.response().text());
    let root = srv
        .dir
        .path()
        .join("cgi")
        .canonicalize()
        .unwrap()
        .display()
        .to_string();
    let expected = [
        ("GATEWAY_INTERFACE", "CGI/1.1".to_string()),
        (
            "SERVER_SOFTWARE",
            format!("cgigate/{}", env!("CARGO_PKG_VERSION")),
        ),
        ("SERVER_NAME", "example.test".into()),
        ("SERVER_PORT", port.clone()),
        ("SERVER_ADDR", "127.0.0.1".into()),
        ("SERVER_PROTOCOL", "HTTP/1.1".into()),
        ("REQUEST_METHOD", "GET".into()),
        ("REQUEST_URI", "/cgi-bin/printenv/a%20b/c?x=1&y=%20".into()),
        ("REQUEST_SCHEME", "http".into()),
        ("SCRIPT_NAME", "/cgi-bin/printenv".into()),
        ("SCRIPT_FILENAME", format!("{root}/printenv")),
        ("PATH_INFO", "/a b/c".into()),
        ("PATH_TRANSLATED", format!("{root}/a b/c")),
        ("QUERY_STRING", "x=1&y=%20".into()),
        ("REMOTE_ADDR", "127.0.0.1".into()),
        ("DOCUMENT_ROOT", root.clone()),
        ("REDIRECT_STATUS", "200".into()),
        ("HTTP_HOST", "example.test:8080".into()),
        ("HTTP_USER_AGENT", "t".into()),
        ("PIDFILE", "pidfile".into()),
    ];
    for (k, v) in &expected {
        assert_eq!(env.get(*k), Some(v), "{k} in {env:?}");
    }
    assert!(env["REMOTE_PORT"].parse::<u16>().is_ok());
    assert_eq!(
        env.get("PATH").map(|p| !p.is_empty()),
        Some(true),
        "pass_env PATH"
    );
    for absent in [
        "CONTENT_LENGTH",
        "CONTENT_TYPE",
        "HTTPS",
        "HOME",
        "USER",
        "RUST_LOG",
    ] {
        assert!(!env.contains_key(absent), "{absent} must not be set");
    }
    // Nothing else: the whole set is what SPEC §5.2 lists plus PATH and the config's env.
    let allowed: Vec<&str> = expected
        .iter()
        .map(|(k, _)| *k)
        .chain(["REMOTE_PORT", "PATH"])
        .collect();
    for k in env.keys() {
        assert!(allowed.contains(&k.as_str()), "unexpected variable {k}");
    }
}

#[test]
fn environment_of_a_post_and_of_header_edge_cases() {
    let srv = cgi_server();
    let mut c = srv.connect();
    c.send(
        b"POST /cgi-bin/printenv HTTP/1.1\r\nHost: h\r\nContent-Type: text/x-a\r\nContent-Length: 3\r\n\
          Accept: a\r\nAccept: b\r\nCookie: c=1\r\nCookie: d=2\r\nProxy: http://evil\r\nAuthorization: Basic eA==\r\n\
          X_Under: 1\r\nX-Ok: 2\r\nConnection: X-Hop\r\nX-Hop: 3\r\n\r\nabc",
    );
    let env = env_of(&c.response().text());
    assert_eq!(env["REQUEST_METHOD"], "POST");
    assert_eq!(env["CONTENT_LENGTH"], "3");
    assert_eq!(env["CONTENT_TYPE"], "text/x-a");
    assert_eq!(env["HTTP_ACCEPT"], "a, b");
    assert_eq!(env["HTTP_COOKIE"], "c=1; d=2");
    assert_eq!(env["HTTP_X_OK"], "2");
    for absent in [
        "HTTP_PROXY",
        "HTTP_AUTHORIZATION",
        "HTTP_X_UNDER",
        "HTTP_CONTENT_LENGTH",
        "HTTP_CONTENT_TYPE",
        "HTTP_X_HOP",
        "HTTP_CONNECTION",
    ] {
        assert!(!env.contains_key(absent), "{absent} must not be exported");
    }
}

#[test]
fn pass_auth_exports_authorization_and_env_overrides_computed_values() {
    let srv = start(
        "",
        "",
        "pass_auth = true\nenv = { SERVER_NAME = \"overridden\", EXTRA = \"1\" }",
    );
    let mut c = srv.connect();
    c.send(b"GET /cgi-bin/printenv HTTP/1.1\r\nHost: h\r\nAuthorization: Basic eA==\r\n\r\n");
    let env = env_of(&c.response().text());
    assert_eq!(env["HTTP_AUTHORIZATION"], "Basic eA==");
    assert_eq!(env["SERVER_NAME"], "overridden");
    assert_eq!(env["EXTRA"], "1");
    assert!(
        !env.contains_key("PIDFILE"),
        "a route's env replaces [cgi] env"
    );
}

#[test]
fn environment_of_an_ipv6_client() {
    let srv = Server::start_on(&config("", "", ""), prepare, "[::1]:0");
    let mut c = srv.connect();
    c.send(b"GET /cgi-bin/printenv HTTP/1.1\r\nHost: [::1]:9\r\n\r\n");
    let env = env_of(&c.response().text());
    assert_eq!(env["REMOTE_ADDR"], "::1");
    assert_eq!(env["SERVER_ADDR"], "::1");
    assert_eq!(env["SERVER_NAME"], "[::1]");
}

#[test]
fn cgi_script_route_gets_the_rest_as_path_info() {
    let srv = cgi_server();
    let env = env_of(&srv.get("/fixed/repo.git/info/refs?service=x").text());
    assert_eq!(env["SCRIPT_NAME"], "/fixed");
    assert_eq!(env["PATH_INFO"], "/repo.git/info/refs");
    assert_eq!(env["QUERY_STRING"], "service=x");
}

// ---- request bodies (SPEC §5.3) ----

fn chunked_post(target: &str, total: usize) -> Vec<u8> {
    let mut raw =
        format!("POST {target} HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
            .into_bytes();
    let mut left = total;
    while left > 0 {
        let n = left.min(3000);
        raw.extend_from_slice(format!("{n:x}\r\n").as_bytes());
        raw.extend(std::iter::repeat_n(b'z', n));
        raw.extend_from_slice(b"\r\n");
        left -= n;
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    raw
}

#[test]
fn spooled_bodies_have_a_correct_content_length_in_memory_and_on_disk() {
    let srv = start("", "spool_memory = 1000", "");
    for total in [10, 999, 1001, 20_000] {
        let mut c = srv.connect();
        c.send(&chunked_post("/cgi-bin/printenv", total));
        let env = env_of(&c.response().text());
        assert_eq!(env["CONTENT_LENGTH"], total.to_string(), "chunked {total}");
        let mut c = srv.connect();
        c.send(&chunked_post("/cgi-bin/cat", total));
        assert_eq!(c.response().text(), format!("{total}\n"));
    }
}

#[test]
fn streamed_bodies_are_dechunked_onto_stdin_and_closed_at_the_end() {
    let srv = start("", "request_body = \"stream\"", "");
    let mut c = srv.connect();
    c.send(&chunked_post("/cgi-bin/printenv", 50));
    let env = env_of(&c.response().text());
    assert!(
        !env.contains_key("CONTENT_LENGTH"),
        "a streamed chunked body has no length"
    );
    let mut c = srv.connect();
    c.send(&chunked_post("/cgi-bin/cat", 100_000));
    assert_eq!(
        c.response().text(),
        "100000\n",
        "cat saw EOF after exactly the body"
    );
}

/// A script that writes 1 MiB before it reads 1 MiB of input must not deadlock.
fn big_first(srv: &Server) {
    let mut c = srv.connect();
    let mut writer = c.stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        use std::io::Write;
        let mut raw =
            b"POST /cgi-bin/big-first HTTP/1.1\r\nHost: t\r\nContent-Length: 1048576\r\n\r\n"
                .to_vec();
        raw.extend(std::iter::repeat_n(b'i', 1 << 20));
        writer.write_all(&raw).unwrap();
    });
    let r = c.response();
    sender.join().unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), (1 << 20) + "\nread=1048576\n".len());
    assert!(r.text().ends_with("\nread=1048576\n"));
}

#[test]
fn stdin_and_stdout_are_served_concurrently() {
    big_first(&cgi_server());
    big_first(&start("", "request_body = \"stream\"", ""));
}

#[test]
fn a_script_that_does_not_read_its_body_still_answers() {
    for cgi in ["", "request_body = \"stream\""] {
        let srv = start("", cgi, "");
        let mut c = srv.connect();
        c.send(b"POST /cgi-bin/no-read HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n");
        c.send(&[b'q'; 5000]);
        assert_eq!(c.response().text(), "ignored the body\n");
        c.send(&get("/cgi-bin/hello"));
        assert_eq!(
            c.response().text(),
            "hello\n",
            "the unread body was drained ({cgi})"
        );
    }
}

// ---- responses (SPEC §5.4, §5.5) ----

#[test]
fn lf_header_blocks_status_and_redirects() {
    let srv = cgi_server();
    let r = srv.get("/cgi-bin/lf");
    assert_eq!(r.status, 201);
    assert_eq!(r.header("x-lf"), Some("yes"));
    assert_eq!(r.text(), "body\n");

    let r = srv.get("/cgi-bin/local-redirect");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.text(),
        "hello\n",
        "re-dispatched as a GET of /cgi-bin/hello"
    );

    let r = srv.get("/cgi-bin/client-redirect");
    assert_eq!(r.status, 302);
    assert_eq!(r.header("location"), Some("http://example.invalid/x"));

    let r = srv.get("/cgi-bin/loop");
    assert_eq!(r.status, 500, "a redirect loop stops after 10 hops");
}

#[test]
fn malformed_output_is_a_generic_502_with_details_in_the_log() {
    let srv = cgi_server();
    let mut names: Vec<&str> = BAD_OUTPUTS.iter().map(|(n, _)| *n).collect();
    names.push("bad-huge");
    for name in names {
        let mut c = srv.connect();
        c.send(&get(&format!("/cgi-bin/{name}")));
        let r = c.response();
        assert_eq!(r.status, 502, "{name}");
        assert_eq!(
            r.text(),
            "502 Bad Gateway\n",
            "{name}: nothing of the script reaches the client"
        );
        c.send(&get("/cgi-bin/hello"));
        assert_eq!(
            c.response().status,
            200,
            "{name}: the connection stays usable"
        );
    }
    srv.wait_until("the log names the problem", || {
        srv.log_text().contains("malformed script output")
    });
}

#[test]
fn a_declared_content_length_is_honoured() {
    let srv = cgi_server();
    let mut c = srv.connect();
    c.send(&get("/cgi-bin/long-cl"));
    let r = c.response();
    assert_eq!(r.text(), "12345", "surplus dropped");
    c.send(&get("/cgi-bin/short-cl"));
    let (status, _, headers) = c.response_head().unwrap();
    assert_eq!(status, 200);
    assert!(headers
        .iter()
        .any(|(n, v)| n == "Content-Length" && v == "10"));
    assert_eq!(
        c.read_to_close(),
        b"12345",
        "a shortfall ends the connection"
    );
}

#[test]
fn buffered_and_streamed_routes_frame_cgi_output_and_keep_alive() {
    let srv = cgi_server();
    let mut c = srv.connect();
    c.send(&get("/buffered/ticker"));
    let r = c.response();
    assert_eq!(r.framing, Framing::Length);
    assert_eq!(r.text(), "tick 1\ntick 2\ntick 3\n");
    c.send(&get("/streamed/ticker"));
    let r = c.response();
    assert_eq!(r.framing, Framing::Chunked);
    assert!(r.chunks.len() >= 3, "{:?}", r.chunks);
    assert!(r.arrivals[r.arrivals.len() - 1] - r.arrivals[0] >= Duration::from_millis(200));
    c.send(&get("/cgi-bin/hello"));
    assert_eq!(
        c.response().text(),
        "hello\n",
        "one connection for all three"
    );
}

#[test]
fn stderr_goes_to_the_log_capped() {
    let srv = cgi_server();
    assert_eq!(srv.get("/cgi-bin/stderr").text(), "ok\n");
    assert_eq!(
        srv.get("/cgi-bin/noisy").text(),
        "quiet\n",
        "1 MiB of stderr does not stall the script"
    );
    srv.wait_until("stderr lines logged", || {
        let log = srv.log_text();
        log.contains("something went wrong in stderr-script") && log.contains("dropped")
    });
    let log = srv.log_text();
    assert!(log.contains("/cgi-bin/stderr"), "tagged with the request");
    assert!(log.len() < 200 * 1024, "capped: {} bytes of log", log.len());
}

#[test]
fn nph_scripts_pass_through_and_close() {
    let srv = cgi_server();
    let mut c = srv.connect();
    c.send(&get("/cgi-bin/nph-raw"));
    let r = c.response();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-nph"), Some("1"));
    assert_eq!(r.framing, Framing::Close);
    assert_eq!(r.text(), "raw body\n");
}

// ---- lifecycle (SPEC §5.6) ----

#[test]
fn idle_timeout_before_the_head_is_504_and_kills_the_script() {
    let srv = start("", "idle_timeout = \"300ms\"\nkill_grace = \"200ms\"", "");
    let r = srv.get("/cgi-bin/sleep");
    assert_eq!(r.status, 504);
    wait_gone(&srv, script_pid(&srv));
}

#[test]
fn idle_timeout_after_the_head_closes_without_completing() {
    let srv = start(
        "",
        "idle_timeout = \"300ms\"\nkill_grace = \"200ms\"",
        "output = \"stream\"",
    );
    let mut c = srv.connect();
    c.send(&get("/cgi-bin/sleep-after-head"));
    let (status, _, _) = c.response_head().unwrap();
    assert_eq!(status, 200);
    let rest = c.read_to_close();
    assert!(!rest.ends_with(b"0\r\n\r\n"), "never completed as if whole");
    wait_gone(&srv, script_pid(&srv));
}

#[test]
fn total_timeout_stops_a_script_that_never_ends() {
    let srv = start(
        "",
        "timeout = \"500ms\"\nkill_grace = \"200ms\"",
        "output = \"stream\"",
    );
    let mut c = srv.connect();
    c.send(&get("/cgi-bin/forever"));
    c.response_head().unwrap();
    let rest = c.read_to_close();
    assert!(String::from_utf8_lossy(&rest).contains("tick"));
    assert!(!rest.ends_with(b"0\r\n\r\n"));
    wait_gone(&srv, script_pid(&srv));
}

#[test]
fn a_client_going_away_stops_a_silent_script() {
    let srv = start("", "kill_grace = \"200ms\"", "");
    let mut c = srv.connect();
    c.send(&get("/cgi-bin/sleep"));
    let pid = script_pid(&srv);
    drop(c);
    wait_gone(&srv, pid);
}

#[test]
fn a_client_going_away_mid_stream_stops_the_script() {
    let srv = start("", "kill_grace = \"200ms\"", "output = \"stream\"");
    let mut c = srv.connect();
    c.send(&get("/cgi-bin/forever"));
    c.response_head().unwrap();
    let pid = script_pid(&srv);
    drop(c);
    wait_gone(&srv, pid);
}

#[test]
fn a_grandchild_holding_stdout_does_not_hold_the_response() {
    let srv = start("", "kill_grace = \"300ms\"", "");
    let r = srv.get("/cgi-bin/grandchild");
    assert_eq!(r.text(), "parent done\n");
    wait_gone(&srv, script_pid(&srv));
}

#[test]
fn max_children_queues_then_answers_503_with_retry_after() {
    let srv = start(
        "",
        "max_children = 1\nqueue_timeout = \"300ms\"\nrequest_body = \"stream\"",
        "",
    );
    // The first script holds the only slot: it waits for the rest of its body.
    let mut first = srv.connect();
    first.send(b"POST /cgi-bin/slow-stdin HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nhalf!");
    script_pid(&srv);
    let r = srv.get("/cgi-bin/hello");
    assert_eq!(r.status, 503);
    assert_eq!(r.header("retry-after"), Some("1"));
    first.send(b"done!");
    assert_eq!(first.response().text(), "done\n");
    assert_eq!(
        srv.get("/cgi-bin/hello").status,
        200,
        "the slot is free again"
    );
}

/// A connection to `srv` from the local address `from` (another loopback address).
fn connect_from(srv: &Server, from: &str) -> crate::support::Client {
    let from: std::net::SocketAddr = format!("{from}:0").parse().unwrap();
    let to: std::net::SocketAddr = srv.addr.parse().unwrap();
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.bind(&from.into()).unwrap();
    sock.connect(&to.into()).unwrap();
    let stream: std::net::TcpStream = sock.into();
    stream
        .set_read_timeout(Some(crate::support::IO_TIMEOUT))
        .unwrap();
    let io = Box::new(stream.try_clone().unwrap());
    crate::support::Client::over(stream, io)
}

#[test]
fn max_children_per_client_refuses_one_client_and_serves_another() {
    for per_client in [2, 0] {
        let srv = start(
            "",
            &format!("max_children = 4\nmax_children_per_client = {per_client}\nrequest_body = \"stream\""),
            "",
        );
        // Client 127.0.0.1 holds two scripts, each waiting for the rest of its body.
        let mut held: Vec<_> = (0..2)
            .map(|_| {
                let mut c = srv.connect();
                c.send(b"POST /cgi-bin/slow-stdin HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nhalf!");
                c
            })
            .collect();
        srv.wait_until("two scripts running", || srv.children().len() == 2);
        let third = srv.get("/cgi-bin/hello");
        let mut other = connect_from(&srv, "127.0.0.2");
        other.send(b"GET /cgi-bin/hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        assert_eq!(other.response().status, 200, "another client is served");
        if per_client == 0 {
            // The rule off: the same request is served, as slots are free.
            assert_eq!(third.status, 200);
        } else {
            assert_eq!(third.status, 503, "a third script of the same client");
            assert_eq!(third.header("retry-after"), Some("1"));
            held[0].send(b"done!");
            assert_eq!(held[0].response().text(), "done\n");
            assert_eq!(
                srv.get("/cgi-bin/hello").status,
                200,
                "under its bound again"
            );
        }
        for c in &mut held {
            c.send(b"done!");
        }
        srv.terminate();
    }
}

#[test]
fn shutdown_stops_running_scripts() {
    let mut srv = start("shutdown_timeout = \"200ms\"", "kill_grace = \"200ms\"", "");
    let mut c = srv.connect();
    c.send(&get("/cgi-bin/sleep"));
    let pid = script_pid(&srv);
    srv.terminate();
    assert!(srv.wait().success());
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while alive(pid) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!alive(pid), "script {pid} outlived the server");
}

#[test]
fn nothing_leaks_after_timeouts_disconnects_and_503s() {
    let srv = start(
        "",
        "max_children = 2\nqueue_timeout = \"50ms\"\nidle_timeout = \"150ms\"\nkill_grace = \"100ms\"",
        "",
    );
    // Warm up so lazily opened descriptors (log, runtime) exist before the baseline.
    assert_eq!(srv.get("/cgi-bin/hello").status, 200);
    let fds_before = srv.open_fds();
    let mut statuses = std::collections::BTreeMap::new();
    for round in 0..40 {
        // Five kinds of request per round: 200 requests in all.
        *statuses
            .entry(srv.get("/cgi-bin/hello").status)
            .or_insert(0) += 1;
        *statuses
            .entry(srv.get("/cgi-bin/sleep").status)
            .or_insert(0) += 1;
        let mut gone = srv.connect();
        gone.send(&get("/streamed/forever"));
        gone.response_head();
        drop(gone);
        // Two slow ones hold both slots while a third is refused: once the scripts before
        // them are gone (reaped, their slots back) and both of theirs run, so that the
        // third cannot find a slot freed within its queue_timeout.
        srv.wait_until("the round's earlier scripts are gone", || {
            srv.children().is_empty()
        });
        let mut a = srv.connect();
        let mut b = srv.connect();
        a.send(&get("/cgi-bin/sleep"));
        b.send(&get("/cgi-bin/sleep"));
        srv.wait_until("both slow scripts run", || srv.children().len() == 2);
        let third = srv.get("/cgi-bin/hello").status;
        assert_eq!(third, 503, "both slots are held");
        *statuses.entry(third).or_insert(0) += 1;
        drop((a, b));
        let _ = round;
    }
    assert!(
        statuses.get(&503).copied().unwrap_or(0) > 0,
        "some requests were refused: {statuses:?}"
    );
    assert!(
        statuses.get(&504).copied().unwrap_or(0) > 0,
        "some timed out: {statuses:?}"
    );
    srv.wait_until("every script is gone and reaped", || {
        srv.children().is_empty()
    });
    srv.wait_until("descriptors back to the baseline", || {
        srv.open_fds() <= fds_before
    });
}

// ---- the spawn helper (docs/cgi.md) ----

/// The parent of a process.
fn ppid(pid: u32) -> u32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit_once(')')
        .and_then(|(_, r)| r.split_whitespace().nth(1))
        .and_then(|p| p.parse().ok())
        .unwrap_or(0)
}

/// The same requests, whichever way scripts are started.
fn a_few_requests(srv: &Server) {
    assert_eq!(srv.get("/cgi-bin/hello").text(), "hello\n");
    assert_eq!(srv.get("/cgi-bin/script.py").text(), "python ran me\n");
    let mut c = srv.connect();
    c.send(b"POST /cgi-bin/cat HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nabcde");
    assert_eq!(c.response().text(), "5\n");
    let env = env_of(&srv.get("/cgi-bin/printenv/p?q=1").text());
    assert_eq!(env.get("PATH_INFO").map(String::as_str), Some("/p"));
    assert_eq!(env.get("QUERY_STRING").map(String::as_str), Some("q=1"));
    assert_eq!(srv.get("/cgi-bin/bad-status").status, 502);
}

#[test]
fn scripts_run_from_the_helper_or_the_server_as_spawn_says() {
    let helper = cgi_server();
    assert!(helper.helper().is_some(), "a spawn helper runs");
    a_few_requests(&helper);
    let mut c = helper.connect();
    c.send(&get("/cgi-bin/sleep"));
    let pid = script_pid(&helper);
    assert!(
        helper.helpers().contains(&ppid(pid)),
        "a helper started the script"
    );
    drop(c);
    wait_gone(&helper, pid);

    let direct = start("", "spawn = \"direct\"", "");
    assert_eq!(direct.helper(), None, "no helper with spawn = \"direct\"");
    a_few_requests(&direct);
    let mut c = direct.connect();
    c.send(&get("/cgi-bin/sleep"));
    let pid = script_pid(&direct);
    assert_eq!(ppid(pid), direct.pid(), "the server started the script");
    drop(c);
    wait_gone(&direct, pid);

    // auto: the helper whenever there is one (its fallback to the server is tested below,
    // in auto_spawns_from_the_server_while_no_helper_can_be_had).
    let auto = start("", "", "");
    assert!(auto.helper().is_some(), "auto starts the helper");
    a_few_requests(&auto);
    let mut c = auto.connect();
    c.send(&get("/cgi-bin/sleep"));
    let pid = script_pid(&auto);
    assert!(
        auto.helpers().contains(&ppid(pid)),
        "auto, a helper there: it started the script"
    );
    drop(c);
    wait_gone(&auto, pid);
}

#[test]
fn a_large_environment_runs_through_either_spawner() {
    // 900 kB of headers in one environment (each value under the kernel's 128 kB limit per
    // string). Past the socket's send buffer the helper is bypassed; either way it runs.
    for cgi in [HELPER, "spawn = \"direct\""] {
        let srv = start("max_head_bytes = 1048576", cgi, "");
        let big = "b".repeat(100_000);
        let fields: String = (0..9).map(|i| format!("X-Big-{i}: {big}\r\n")).collect();
        let mut c = srv.connect();
        c.send(
            format!(
                "GET /cgi-bin/printenv HTTP/1.1\r\nHost: t\r\n{fields}Connection: close\r\n\r\n"
            )
            .as_bytes(),
        );
        let r = c.response();
        assert_eq!(r.status, 200, "{cgi:?}");
        let env = env_of(&r.text());
        for i in 0..9 {
            let name = format!("HTTP_X_BIG_{i}");
            assert_eq!(
                env.get(&name).map(String::len),
                Some(100_000),
                "{cgi:?} {name}"
            );
        }
    }
}

#[test]
fn a_dead_helper_is_started_again_at_the_next_request() {
    let srv = cgi_server();
    assert_eq!(srv.get("/cgi-bin/hello").status, 200);
    let before = srv.helpers();
    let helper = srv.helper().expect("helper");
    kill9(helper);
    srv.wait_until("the server saw the helper go", || {
        srv.log_text().contains("a CGI spawn helper is gone")
    });
    // The helpers are taken in turn: enough requests reach the dead one's slot.
    for _ in 0..8 {
        assert_eq!(srv.get("/cgi-bin/hello").status, 200);
    }
    let after = srv.helpers();
    assert_eq!(after.len(), before.len(), "{before:?} {after:?}");
    assert!(!after.contains(&helper), "{after:?}");
    assert!(!alive(helper) || !crate::support::is_helper(helper));
}

/// `prlimit --pid PID --nofile=SOFT:` (util-linux): the soft limit on open files.
fn set_open_files(pid: u32, soft: u64) {
    let set = std::process::Command::new("prlimit")
        .args(["--pid", &pid.to_string(), &format!("--nofile={soft}:")])
        .status()
        .expect("prlimit");
    assert!(set.success());
}

#[test]
fn a_helper_that_cannot_be_started_is_tried_again_only_after_its_backoff() {
    let srv = cgi_server();
    let supervisor = hold_helpers_down(&srv);
    let requests = 20;
    for _ in 0..requests {
        assert_eq!(srv.get("/cgi-bin/hello").status, 500);
    }
    let counts = || {
        let log = srv.log_text();
        (
            log.matches("the supervisor cannot start it").count(),
            log.matches("starts failed; the next in").count(),
        )
    };
    // The log is read from the server's stderr by a thread of the test's: it may lag.
    let deadline = std::time::Instant::now() + crate::support::IO_TIMEOUT;
    while counts().0 + counts().1 < requests {
        assert!(
            std::time::Instant::now() < deadline,
            "not every failure logged: {:?}\n{}",
            counts(),
            srv.log_text()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let (tried, waited) = counts();
    eprintln!("{requests} requests with no helper to be had: {tried} starts tried, {waited} refused within the backoff");
    // Without a backoff every request would try a start (two slots: 20 tries, no waits).
    assert!(waited >= 1 && tried < requests, "{tried} {waited}");
    assert_eq!(tried + waited, requests, "{}", srv.log_text());
    assert!(
        srv.log_text().contains("Too many open files"),
        "the reason is named"
    );
    // Once starts can work again, the next one after the backoff serves.
    set_open_files(supervisor, 1024);
    srv.wait_until("CGI served again", || {
        srv.get("/cgi-bin/hello").status == 200
    });
    srv.terminate();
}

/// Kill the helpers of a server that has served a CGI request, with their supervisor held at
/// its open-file limit so that every start of a new one fails (EMFILE); returns the
/// supervisor's pid (`set_open_files(pid, 1024)` lets starts work again).
fn hold_helpers_down(srv: &Server) -> u32 {
    assert_eq!(srv.get("/cgi-bin/hello").status, 200);
    let supervisor = srv.supervisor().expect("a supervisor");
    let open = std::fs::read_dir(format!("/proc/{supervisor}/fd"))
        .unwrap()
        .count();
    set_open_files(supervisor, open as u64);
    let helpers = srv.helpers();
    for &pid in &helpers {
        kill9(pid);
        wait_gone(srv, pid);
    }
    // Known dead by the server (else a request could still be sent to a dead one's socket).
    srv.wait_until("each death noticed", || {
        srv.log_text().matches("a CGI spawn helper is gone").count() >= helpers.len()
    });
    supervisor
}

#[test]
fn auto_spawns_from_the_server_while_no_helper_can_be_had() {
    // The same helpers held down as in the backoff test above, with the default spawn mode:
    // `auto` serves every request from the server itself where `helper` answered 500.
    let srv = start("", "", "");
    let supervisor = hold_helpers_down(&srv);
    for _ in 0..5 {
        let r = srv.get("/cgi-bin/hello");
        assert_eq!(r.status, 200, "{}", srv.log_text());
    }
    assert!(srv.helpers().is_empty(), "no helper came back meanwhile");
    set_open_files(supervisor, 1024);
    srv.terminate();
}

#[test]
fn helpers_killed_under_load_are_started_again_and_their_scripts_stopped() {
    let srv = cgi_server();
    // A script in flight on a helper that will die.
    let mut slow = srv.connect();
    slow.send(&get("/cgi-bin/sleep"));
    let orphan = script_pid(&srv);
    let load = crate::support::Load::start(&srv.addr, &["/cgi-bin/hello"]);
    load.wait_for(20);
    let helpers = srv.helpers();
    assert!(!helpers.is_empty());
    let killed_at = std::time::Instant::now();
    for &pid in &helpers {
        kill9(pid);
    }
    // The script the dead helper had started is stopped and reaped (by the supervisor).
    wait_gone(&srv, orphan);
    let r = slow.try_response(false);
    assert!(
        r.as_ref().is_none_or(|r| r.status >= 500),
        "{:?}",
        r.map(|r| r.status)
    );
    // The load goes on: wait for plenty of answers after the kill.
    load.wait_for(100);
    let results = load.stop();
    let after: Vec<_> = results.iter().filter(|(t, _)| *t >= killed_at).collect();
    let failed = after.iter().filter(|(_, ok)| !ok).count();
    let first_ok = after
        .iter()
        .find(|(_, ok)| *ok)
        .map(|(t, _)| t.duration_since(killed_at))
        .expect("a request answered after the kill");
    let last_failure = after
        .iter()
        .filter(|(_, ok)| !ok)
        .map(|(t, _)| t.duration_since(killed_at))
        .max();
    eprintln!(
        "killed {} helpers: {failed} of {} requests after it failed; first 200 after {first_ok:?}; last failure {last_failure:?}",
        helpers.len(),
        after.len()
    );
    // CGI requests work again within a second, and nothing fails after that.
    assert!(
        last_failure.is_none_or(|t| t < Duration::from_secs(1)),
        "{last_failure:?}"
    );
    assert!(first_ok < Duration::from_secs(1), "{first_ok:?}");
    // New helpers serve, each restart logged and counted.
    let now = srv.helpers();
    assert!(
        now.iter().all(|p| !helpers.contains(p)),
        "{helpers:?} {now:?}"
    );
    assert!(srv
        .log_text()
        .contains("restarting a CGI spawn helper that died"));
    let status = srv.get("/status?format=json").text();
    let restarts: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert!(
        restarts["cgi_helper_restarts"].as_u64() >= Some(1),
        "{status}"
    );
    srv.wait_until("no script left", || srv.children().is_empty());
}

#[test]
fn a_dead_supervisor_fails_cgi_requests_and_the_server_serves_on() {
    let srv = cgi_server();
    assert_eq!(srv.get("/cgi-bin/hello").status, 200);
    let supervisor = srv.supervisor().expect("supervisor");
    let helper = srv.helper().expect("helper");
    for pid in [helper, supervisor] {
        kill9(pid);
    }
    srv.wait_until("the supervisor is gone and reaped", || {
        !children_of(srv.pid()).iter().any(|&(p, _)| p == supervisor)
    });
    srv.wait_until("the server saw the helper go", || {
        srv.log_text().contains("a CGI spawn helper is gone")
    });
    for _ in 0..3 {
        assert_eq!(srv.get("/cgi-bin/hello").status, 500);
    }
    assert_eq!(srv.get("/status").status, 200);
    srv.wait_until("the log says why", || {
        srv.log_text().contains("CGI supervisor is gone")
    });
}

#[test]
fn no_zombies_or_leftovers_after_a_burst_and_after_shutdown() {
    let mut srv = start("", "max_children = 16\nspawn = \"helper\"", "");
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let addr = srv.addr.clone();
            std::thread::spawn(move || {
                for _ in 0..25 {
                    let mut c = crate::support::Client::connect(&addr);
                    c.send(&get("/cgi-bin/hello"));
                    assert_eq!(c.response().status, 200);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("client thread");
    }
    let helper = srv.helper().expect("helper");
    srv.wait_until("every script is gone and reaped", || {
        srv.children().is_empty()
    });
    srv.terminate();
    assert!(srv.wait().success());
    srv.wait_until("the helper ends with the server", || !alive(helper));
}

#[test]
fn the_helper_ends_when_the_server_is_killed() {
    let mut srv = cgi_server();
    let helper = srv.helper().expect("helper");
    kill9(srv.pid());
    srv.wait();
    srv.wait_until("the helper ends with the server", || !alive(helper));
}
