//! Real legacy programs through the real server (SPEC §5): git http-backend, php-cgi and a
//! CGI.pm form, unmodified, as Debian installs them. Each test first checks that its program
//! is installed (`support::require`): missing, it is skipped with a `skipped: …` line,
//! except under `CI=true`, where `.ci/run` installs the packages and a missing one is a
//! failure. git comes with a fresh machine, so its tests run with `cargo test`; php-cgi and
//! CGI.pm do not, so theirs are marked ignored (`cargo test` lists them as such) and run
//! with `cargo test -- --ignored`, as `.ci/run` does.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::{require, require_perl_module, Framing, Response, Server};

/// git http-backend where Debian's `git` package installs it.
const GIT_HTTP_BACKEND: &str = "/usr/lib/git-core/git-http-backend";

/// Longest one git command may run (a clone or a 1 MiB push over loopback takes well under
/// a second; the bound only keeps a hung server from hanging the test run).
const GIT_TIMEOUT: Duration = Duration::from_secs(60);

/// The push: larger than `http.postBuffer`, so git sends it chunked.
const PUSH_BYTES: usize = 1 << 20;
const POST_BUFFER: &str = "65536";

/// A server config with `routes` and nothing else.
fn config(routes: &str) -> String {
    format!(
        r#"
[server]
listen = ["127.0.0.1:0"]

[log]
level = "warn"
access = "off"

{routes}
"#
    )
}

/// A TOML basic string holding `path`.
fn toml_path(path: &Path) -> String {
    let s = path.to_str().expect("utf-8 temp path");
    assert!(!s.contains(['"', '\\']), "unquotable path {s:?}");
    format!("\"{s}\"")
}

/// Run `cmd` in its own process group with output captured; the group is killed if it is
/// still running after `limit`.
fn run_bounded(mut cmd: Command, limit: Duration) -> Output {
    cmd.process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let stdout = collect(child.stdout.take().expect("stdout"));
    let stderr = collect(child.stderr.take().expect("stderr"));
    let deadline = Instant::now() + limit;
    let status: ExitStatus = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.wait();
            panic!("{cmd:?} still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

fn collect(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        buf
    })
}

/// A POST with a Content-Length body on a fresh connection.
fn post(srv: &Server, target: &str, content_type: &str, body: &[u8]) -> Response {
    let mut c = srv.connect();
    c.send(
        format!(
            "POST {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\
             Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    c.send(body);
    c.response()
}

/// A POST whose body is sent chunked, in `pieces`, on a fresh connection.
fn post_chunked(srv: &Server, target: &str, content_type: &str, pieces: &[&[u8]]) -> Response {
    let mut c = srv.connect();
    c.send(
        format!(
            "POST {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\
             Content-Type: {content_type}\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        .as_bytes(),
    );
    for piece in pieces {
        c.send(format!("{:x}\r\n", piece.len()).as_bytes());
        c.send(piece);
        c.send(b"\r\n");
    }
    c.send(b"0\r\n\r\n");
    c.response()
}

// ---------------------------------------------------------------------------------------
// git http-backend: smart HTTP clone and push (SPEC §5.3: it reads its input to EOF).
// ---------------------------------------------------------------------------------------

/// A bare repository served by git http-backend at `/git/`, and a folder for the clients.
struct GitHost {
    /// `repos/repo.git`, `home/` (an empty HOME for git) and the clients' working copies.
    work: tempfile::TempDir,
    server: Server,
}

impl GitHost {
    /// Returns None (the test is skipped) when git is not installed.
    fn start(request_body: &str) -> Option<GitHost> {
        GitHost::start_with(request_body, |_| String::new())
    }

    /// Like [`GitHost::start`], with more keys on the route, made from the repositories'
    /// folder.
    fn start_with(request_body: &str, keys: impl Fn(&Path) -> String) -> Option<GitHost> {
        if !require("git", "git") || !require(GIT_HTTP_BACKEND, "git") {
            return None;
        }
        let work = tempfile::tempdir().expect("tempdir");
        let repos = work.path().join("repos");
        std::fs::create_dir_all(&repos).expect("repos");
        std::fs::create_dir_all(work.path().join("home")).expect("home");
        let host_dir = work.path().to_path_buf();
        let run = |args: &[&str]| git_ok(&host_dir, &host_dir, args, &[]);
        run(&["init", "--quiet", "--bare", "repos/repo.git"]);
        run(&["-C", "repos/repo.git", "config", "http.receivepack", "true"]);
        let server = Server::start(&config(&format!(
            r#"
[[route]]
prefix = "/git/"
cgi_script = {backend}
env = {{ GIT_PROJECT_ROOT = {root}, GIT_HTTP_EXPORT_ALL = "1" }}
request_body = "{request_body}"
{keys}
"#,
            backend = toml_path(Path::new(GIT_HTTP_BACKEND)),
            root = toml_path(&repos),
            keys = keys(&repos),
        )));
        Some(GitHost { work, server })
    }

    fn url(&self) -> String {
        format!("http://{}/git/repo.git", self.server.addr)
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.work.path().join(rel)
    }

    /// `git args` in the work folder; panics with git's output unless it succeeds.
    fn git(&self, args: &[&str]) -> Output {
        self.git_env(args, &[])
    }

    fn git_env(&self, args: &[&str], env: &[(&str, &Path)]) -> Output {
        git_ok(self.work.path(), &self.path("home"), args, env)
    }

    /// `git rev-parse rev` in the working copy `dir`.
    fn rev(&self, dir: &str, rev: &str) -> String {
        let out = self.git(&["-C", dir, "rev-parse", rev]);
        String::from_utf8(out.stdout)
            .expect("utf-8")
            .trim()
            .to_string()
    }

    /// One commit with a README, pushed over file:// (not through the server).
    fn seed(&self) -> String {
        self.git(&["init", "--quiet", "seed"]);
        std::fs::write(self.path("seed/README"), "served by cgigate\n").expect("README");
        self.git(&["-C", "seed", "add", "README"]);
        self.git(&["-C", "seed", "commit", "--quiet", "-m", "seed"]);
        let bare = format!("file://{}", self.path("repos/repo.git").display());
        self.git(&["-C", "seed", "push", "--quiet", &bare, "main"]);
        self.rev("seed", "HEAD")
    }
}

/// Run git hermetically: an empty environment but PATH, an empty HOME, no system config,
/// no prompts, fixed dates (so commit ids are the same on every run), no background gc.
fn git_ok(dir: &Path, home: &Path, args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut cmd = Command::new("git");
    cmd.args([
        "-c",
        "user.name=cgigate tests",
        "-c",
        "user.email=tests@cgigate.invalid",
        "-c",
        "init.defaultBranch=main",
        "-c",
        "protocol.version=2",
        "-c",
        "gc.auto=0",
        "-c",
        "maintenance.auto=false",
    ])
    .args(args)
    .current_dir(dir)
    .env_clear()
    .env("PATH", std::env::var_os("PATH").unwrap_or_default())
    .env("HOME", home)
    .env("LC_ALL", "C")
    .env("GIT_CONFIG_NOSYSTEM", "1")
    .env("GIT_TERMINAL_PROMPT", "0")
    .env("GIT_AUTHOR_DATE", "2024-01-01T00:00:00Z")
    .env("GIT_COMMITTER_DATE", "2024-01-01T00:00:00Z");
    for (name, value) in env {
        cmd.env(name, value);
    }
    let out = run_bounded(cmd, GIT_TIMEOUT);
    assert!(
        out.status.success(),
        "git {args:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Print a git command's output so it can be quoted (`--nocapture` shows it).
fn show(what: &str, out: &Output) {
    println!("--- {what}");
    print!("{}", String::from_utf8_lossy(&out.stdout));
    print!("{}", String::from_utf8_lossy(&out.stderr));
    println!("--- end");
}

/// Print the request lines, framing headers and status lines of a `GIT_TRACE_CURL` trace.
fn show_requests(trace: &str) {
    const WANTED: [&str; 5] = [
        "POST ",
        "GET ",
        "HTTP/1.1 ",
        "Content-Length:",
        "Transfer-Encoding:",
    ];
    println!("--- requests (GIT_TRACE_CURL)");
    for line in trace.lines() {
        // "12:00:00.000000 http.c:872   => Send header: POST /git/… HTTP/1.1"
        let Some(at) = line
            .find("=> Send header: ")
            .or(line.find("<= Recv header: "))
        else {
            continue;
        };
        if WANTED.iter().any(|w| line[at + 16..].starts_with(w)) {
            println!("{}", &line[at..]);
        }
    }
    println!("--- end");
}

/// `n` incompressible bytes from a seeded xorshift64*, the same on every run.
fn noise(n: usize) -> Vec<u8> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(n);
    out
}

fn git_clone(request_body: &str) {
    let Some(host) = GitHost::start(request_body) else {
        return;
    };
    let seeded = host.seed();
    let url = host.url();
    let trace = host.path("curl-trace.txt");
    let out = host.git_env(
        &["clone", &url, "clone"],
        &[
            ("GIT_TRACE_CURL", &trace),
            ("GIT_TRACE_CURL_NO_DATA", Path::new("1")),
        ],
    );
    show(
        &format!("git clone {url} clone (request_body = \"{request_body}\")"),
        &out,
    );
    show_requests(&std::fs::read_to_string(&trace).expect("curl trace"));
    assert_eq!(host.rev("clone", "HEAD"), seeded);
    assert_eq!(
        std::fs::read_to_string(host.path("clone/README")).expect("README"),
        "served by cgigate\n"
    );
}

fn git_push_chunked(request_body: &str) {
    let Some(host) = GitHost::start(request_body) else {
        return;
    };
    push_and_clone_back(&host, request_body);
}

/// Push 1 MiB, chunked, then clone it back and compare.
fn push_and_clone_back(host: &GitHost, request_body: &str) {
    host.seed();
    let url = host.url();
    host.git(&["clone", "--quiet", &url, "work"]);
    let data = noise(PUSH_BYTES);
    std::fs::write(host.path("work/noise.bin"), &data).expect("noise.bin");
    host.git(&["-C", "work", "add", "noise.bin"]);
    host.git(&["-C", "work", "commit", "--quiet", "-m", "1 MiB of noise"]);
    let pushed = host.rev("work", "HEAD");

    let trace = host.path("curl-trace.txt");
    let out = host.git_env(
        &[
            "-C",
            "work",
            "-c",
            &format!("http.postBuffer={POST_BUFFER}"),
            "push",
            "origin",
            "main",
        ],
        &[
            ("GIT_TRACE_CURL", &trace),
            ("GIT_TRACE_CURL_NO_DATA", Path::new("1")),
        ],
    );
    show(
        &format!(
            "git -c http.postBuffer={POST_BUFFER} push origin main \
             (request_body = \"{request_body}\")"
        ),
        &out,
    );
    // The point of the test: the pack went up as a chunked POST.
    let trace = std::fs::read_to_string(&trace).expect("curl trace");
    show_requests(&trace);
    assert!(
        trace
            .lines()
            .any(|l| l.contains("Send header: Transfer-Encoding: chunked")),
        "git did not send a chunked request; trace:\n{trace}"
    );

    let out = host.git(&["ls-remote", &url, "refs/heads/main"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{pushed}\trefs/heads/main\n")
    );
    host.git(&["clone", "--quiet", &url, "check"]);
    assert_eq!(host.rev("check", "HEAD"), pushed);
    assert!(
        std::fs::read(host.path("check/noise.bin")).expect("noise.bin") == data,
        "the pushed file came back different"
    );
}

#[test]
fn git_clone_with_streamed_request_bodies() {
    git_clone("stream");
}

#[test]
fn git_clone_with_spooled_request_bodies() {
    git_clone("spool");
}

#[test]
fn git_push_chunked_streamed() {
    git_push_chunked("stream");
}

#[test]
fn git_push_chunked_spooled() {
    git_push_chunked("spool");
}

/// git http-backend as a deployment would confine it: a sandbox that may write only the
/// repositories and open no TCP connection, and limits (SPEC §9).
#[test]
fn git_push_and_clone_through_a_sandboxed_limited_route() {
    let keys = |repos: &Path| {
        format!(
            "sandbox = {{ enabled = true, write = [{}], tcp_connect = false, tcp_bind = false }}\n\
             limits = {{ cpu = \"10s\", memory = \"1GiB\", open_files = 256, file_size = \"64MiB\" }}\n",
            toml_path(repos)
        )
    };
    let Some(host) = GitHost::start_with("stream", keys) else {
        return;
    };
    push_and_clone_back(&host, "stream");
}

// ---------------------------------------------------------------------------------------
// php-cgi: needs CONTENT_LENGTH (so a chunked body must be spooled) and REDIRECT_STATUS.
// ---------------------------------------------------------------------------------------

const PHP_ECHO: &str = r#"<?php
header('Content-Type: application/octet-stream');
header('X-Content-Length: ' . getenv('CONTENT_LENGTH'));
echo file_get_contents('php://input');
"#;

const PHP_CREATED: &str = r#"<?php
http_response_code(201);
header('Content-Type: text/plain');
echo "created\n";
"#;

const PHP_FLUSH: &str = r#"<?php
header('Content-Type: text/plain');
while (ob_get_level()) {
    ob_end_flush();
}
ob_implicit_flush(true);
for ($i = 1; $i <= 3; $i++) {
    echo "line $i\n";
    flush();
    if ($i < 3) {
        usleep(200000);
    }
}
"#;

/// A server with the PHP scripts at `/php/` and, streamed, at `/php-streamed/`.
fn php_server() -> Option<Server> {
    if !require("php-cgi", "php-cgi") {
        return None;
    }
    let routes = r#"
[[route]]
prefix = "/php/"
cgi_dir = "php"
interpreters = { ".php" = "php-cgi" }

[[route]]
prefix = "/php-streamed/"
cgi_dir = "php"
interpreters = { ".php" = "php-cgi" }
output = "stream"

# opcache takes a lock file in /tmp, which a sandbox does not let it write: it gets its
# own folder instead (docs/isolation.md). php-cgi runs in php/, hence the "../".
[[route]]
prefix = "/php-sandboxed/"
cgi_dir = "php"
interpreters = { ".php" = "php-cgi" }
env = { PHP_INI_SCAN_DIR = ":../php-ini", TMPDIR = "../php-tmp" }
sandbox = { enabled = true, read = ["php-ini"], write = ["php-tmp"], tcp_connect = false, tcp_bind = false }
limits = { cpu = "10s", memory = "512MiB" }
"#;
    Some(Server::start_with(&config(routes), |dir| {
        let php = dir.join("php");
        std::fs::create_dir_all(&php).expect("php dir");
        std::fs::write(php.join("echo.php"), PHP_ECHO).expect("echo.php");
        std::fs::write(php.join("created.php"), PHP_CREATED).expect("created.php");
        std::fs::write(php.join("flush.php"), PHP_FLUSH).expect("flush.php");
        let (ini, tmp) = (dir.join("php-ini"), dir.join("php-tmp"));
        std::fs::create_dir_all(&ini).expect("php-ini");
        std::fs::create_dir_all(&tmp).expect("php-tmp");
        let settings = format!("opcache.lockfile_path = {}\n", tmp.display());
        std::fs::write(ini.join("sandbox.ini"), settings).expect("sandbox.ini");
    }))
}

/// A body that is not all one byte, larger than a pipe buffer.
fn body_bytes(n: usize) -> Vec<u8> {
    (0..n).map(|i| b"0123456789abcdef\n"[i % 17]).collect()
}

#[test]
#[ignore = "needs php-cgi (apt-get install php-cgi); run with --ignored"]
fn php_reads_a_posted_body() {
    let Some(srv) = php_server() else { return };
    let body = body_bytes(100_000);
    let r = post(&srv, "/php/echo.php", "application/octet-stream", &body);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-content-length"), Some("100000"));
    assert!(
        r.body == body,
        "body came back different: {} bytes",
        r.body.len()
    );
}

#[test]
#[ignore = "needs php-cgi (apt-get install php-cgi); run with --ignored"]
fn php_runs_in_a_sandbox() {
    let Some(srv) = php_server() else { return };
    let body = body_bytes(100_000);
    let r = post(
        &srv,
        "/php-sandboxed/echo.php",
        "application/octet-stream",
        &body,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.body == body, "{} bytes came back", r.body.len());
    assert_eq!(srv.get("/php-sandboxed/created.php").status, 201);
}

#[test]
#[ignore = "needs php-cgi (apt-get install php-cgi); run with --ignored"]
fn php_reads_a_chunked_body_spooled_with_content_length() {
    let Some(srv) = php_server() else { return };
    let body = body_bytes(70_000);
    let (a, rest) = body.split_at(5);
    let (b, c) = rest.split_at(40_000);
    let r = post_chunked(
        &srv,
        "/php/echo.php",
        "application/octet-stream",
        &[a, b, c],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("x-content-length"),
        Some("70000"),
        "spool mode gives php-cgi the de-chunked length"
    );
    assert!(
        r.body == body,
        "body came back different: {} bytes",
        r.body.len()
    );
}

#[test]
#[ignore = "needs php-cgi (apt-get install php-cgi); run with --ignored"]
fn php_http_response_code_sets_the_status() {
    let Some(srv) = php_server() else { return };
    let r = srv.get("/php/created.php");
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.text(), "created\n");
}

#[test]
#[ignore = "needs php-cgi (apt-get install php-cgi); run with --ignored"]
fn php_flushes_arrive_as_separate_chunks() {
    let Some(srv) = php_server() else { return };
    let r = srv.get("/php-streamed/flush.php");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.framing, Framing::Chunked);
    assert_eq!(r.text(), "line 1\nline 2\nline 3\n");
    let first = r.chunks.first().expect("a chunk");
    let last = r.chunks.last().expect("a chunk");
    assert_eq!(first, b"line 1\n", "chunks: {:?}", r.chunks);
    assert_eq!(last, b"line 3\n", "chunks: {:?}", r.chunks);
    let spread = *r.arrivals.last().unwrap() - r.arrivals[0];
    assert!(
        spread >= Duration::from_millis(300),
        "the lines arrived together ({spread:?})"
    );
}

// ---------------------------------------------------------------------------------------
// Perl CGI.pm: query strings, urlencoded and multipart forms.
// ---------------------------------------------------------------------------------------

const FORM_PL: &str = r#"use strict;
use warnings;
use CGI;

my $q = CGI->new;
print $q->header('text/plain');
print "name=", scalar($q->param('name')) // '', "\n";
print "color=", scalar($q->param('color')) // '', "\n";
if (my $fh = $q->upload('file')) {
    local $/;
    my $content = <$fh>;
    print "file=", scalar $q->param('file'), ":", $content;
}
"#;

/// A server with `form.pl` at `/perl/`.
fn perl_server() -> Option<Server> {
    if !require("perl", "perl") || !require_perl_module("CGI", "libcgi-pm-perl") {
        return None;
    }
    let routes = r#"
[[route]]
prefix = "/perl/"
cgi_dir = "perl"
interpreters = { ".pl" = "perl" }
"#;
    Some(Server::start_with(&config(routes), |dir| {
        let perl = dir.join("perl");
        std::fs::create_dir_all(&perl).expect("perl dir");
        std::fs::write(perl.join("form.pl"), FORM_PL).expect("form.pl");
    }))
}

#[test]
#[ignore = "needs CGI.pm (apt-get install libcgi-pm-perl); run with --ignored"]
fn cgi_pm_reads_a_query_string() {
    let Some(srv) = perl_server() else { return };
    let r = srv.get("/perl/form.pl?name=Ada+Lovelace&color=blue%20%26%20green");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.header("content-type").unwrap().starts_with("text/plain"));
    assert_eq!(r.text(), "name=Ada Lovelace\ncolor=blue & green\n");
}

#[test]
#[ignore = "needs CGI.pm (apt-get install libcgi-pm-perl); run with --ignored"]
fn cgi_pm_reads_an_urlencoded_post() {
    let Some(srv) = perl_server() else { return };
    let r = post(
        &srv,
        "/perl/form.pl",
        "application/x-www-form-urlencoded",
        b"name=Grace+Hopper&color=%C3%A9cru",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), "name=Grace Hopper\ncolor=\u{e9}cru\n");
}

#[test]
#[ignore = "needs CGI.pm (apt-get install libcgi-pm-perl); run with --ignored"]
fn cgi_pm_reads_a_multipart_post() {
    let Some(srv) = perl_server() else { return };
    let body = "--XyZzy\r\n\
        Content-Disposition: form-data; name=\"name\"\r\n\r\n\
        Alan Turing\r\n\
        --XyZzy\r\n\
        Content-Disposition: form-data; name=\"color\"\r\n\r\n\
        red\r\n\
        --XyZzy\r\n\
        Content-Disposition: form-data; name=\"file\"; filename=\"note.txt\"\r\n\
        Content-Type: text/plain\r\n\r\n\
        line one\nline two\n\r\n\
        --XyZzy--\r\n";
    let r = post(
        &srv,
        "/perl/form.pl",
        "multipart/form-data; boundary=XyZzy",
        body.as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.text(),
        "name=Alan Turing\ncolor=red\nfile=note.txt:line one\nline two\n"
    );
}
