//! Test support: start the real `cgigate` binary on port 0 and talk to it with raw bytes.
//! The response reader here is deliberately independent of the crate's own parsers.

#![allow(dead_code)]

pub mod browser;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Longest any single read in a test may block: tests are bounded even when the server hangs.
pub const IO_TIMEOUT: Duration = Duration::from_secs(15);

/// A running server, stopped (SIGKILL) when dropped.
pub struct Server {
    child: Option<Child>,
    pub addr: String,
    /// The first `listening on https://` address, if the config has [tls].
    pub https_addr: Option<String>,
    pub dir: tempfile::TempDir,
    pub stdout: Arc<Mutex<Vec<String>>>,
    pub stderr: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Start with `config` (TOML) written to a fresh folder; `--listen 127.0.0.1:0` is added.
    pub fn start(config: &str) -> Server {
        Server::start_with(config, |_| {})
    }

    /// Like [`Server::start`], preparing the folder first (files the config refers to).
    pub fn start_with(config: &str, prepare: impl FnOnce(&Path)) -> Server {
        Server::start_on(config, prepare, "127.0.0.1:0")
    }

    /// Like [`Server::start_with`], listening on `listen` (e.g. "[::1]:0").
    pub fn start_on(config: &str, prepare: impl FnOnce(&Path), listen: &str) -> Server {
        let args = ["--listen", listen];
        Server::start_program(
            Path::new(env!("CARGO_BIN_EXE_cgigate")),
            &args,
            config,
            prepare,
        )
    }

    /// Start `program --config FILE ARGS…` with `config` written to a fresh folder (its
    /// working directory); `program` prints `listening on` lines as cgigate does.
    pub fn start_program(
        program: &Path,
        args: &[&str],
        config: &str,
        prepare: impl FnOnce(&Path),
    ) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        prepare(dir.path());
        let path = dir.path().join("config.toml");
        std::fs::write(&path, config).expect("write config");
        let mut child = Command::new(program)
            .arg("--config")
            .arg(&path)
            .args(args)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", program.display()));
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let stderr = BufReader::new(child.stderr.take().expect("stderr"));
        let err_lines = drain(stderr);
        let (tx, rx) = std::sync::mpsc::channel();
        let out_lines = Arc::new(Mutex::new(Vec::new()));
        let sink = out_lines.clone();
        let expect_tls = config.contains("[tls]");
        std::thread::spawn(move || {
            let mut http = None;
            let mut https = None;
            let mut tx = Some(tx);
            for line in stdout.lines() {
                let Ok(line) = line else { break };
                if let Some(url) = line.strip_prefix("listening on http://") {
                    http.get_or_insert_with(|| url.to_string());
                }
                if let Some(url) = line.strip_prefix("listening on https://") {
                    https.get_or_insert_with(|| url.to_string());
                }
                if http.is_some() && (https.is_some() || !expect_tls) {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send((http.clone().unwrap_or_default(), https.clone()));
                    }
                }
                sink.lock().unwrap().push(line);
            }
        });
        let (addr, https_addr) = match rx.recv_timeout(IO_TIMEOUT) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "server did not start; stderr:\n{}",
                    err_lines.lock().unwrap().join("\n")
                );
            }
        };
        Server {
            child: Some(child),
            addr,
            https_addr,
            dir,
            stdout: out_lines,
            stderr: err_lines,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, |c| c.id())
    }

    /// A new client connection.
    pub fn connect(&self) -> Client {
        Client::connect(&self.addr)
    }

    /// Send SIGTERM (graceful shutdown).
    pub fn terminate(&self) {
        self.signal("-TERM");
    }

    /// Send `signal` ("-HUP", "-TERM"…) to the server.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(signal)
            .arg(self.pid().to_string())
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Replace the config file the server was started with (what a SIGHUP reads).
    pub fn write_config(&self, text: &str) {
        std::fs::write(self.dir.path().join("config.toml"), text).expect("write config");
    }

    /// Send SIGHUP and wait until the server logs the outcome (its `[log] level` must let
    /// info lines through): whether it reloaded.
    pub fn reload(&self) -> bool {
        let count = |what: &str| self.log_text().matches(what).count();
        let (done, refused) = (count("config reloaded"), count("reload refused"));
        self.signal("-HUP");
        self.wait_until("the reload's outcome logged", || {
            count("config reloaded") > done || count("reload refused") > refused
        });
        count("config reloaded") > done
    }

    /// Wait for the process to exit (bounded).
    pub fn wait(&mut self) -> ExitStatus {
        let child = self.child.as_mut().expect("running");
        let deadline = Instant::now() + IO_TIMEOUT * 2;
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                self.child = None;
                return status;
            }
            assert!(Instant::now() < deadline, "server did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Resident memory of the server process, in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }

    /// Poll `cond` (bounded): the way tests wait for the server to reach a state.
    pub fn wait_until(&self, what: &str, mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + IO_TIMEOUT;
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting for: {what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// One GET on a fresh connection.
    pub fn get(&self, target: &str) -> Response {
        let mut c = self.connect();
        c.send(format!("GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes());
        c.response()
    }

    /// The open_connections counter from the status handler (needs a /status route).
    pub fn open_connections(&self) -> u64 {
        let r = self.get("/status?format=json");
        let text = String::from_utf8_lossy(&r.body).to_string();
        let v: serde_json::Value = serde_json::from_str(&text).expect("status json");
        v["open_connections"].as_u64().expect("open_connections")
    }

    /// The scripts the server started, directly or through its spawn helpers: (pid, state
    /// letter), e.g. (123, 'Z') for a zombie. The supervisor and helpers are not among them.
    pub fn children(&self) -> Vec<(u32, char)> {
        let supervisor = self.supervisor();
        let mut found: Vec<_> = children_of(self.pid())
            .into_iter()
            .filter(|&(pid, _)| Some(pid) != supervisor)
            .collect();
        for helper in self.helpers() {
            found.extend(children_of(helper));
        }
        // Scripts whose helper died, reparented to the supervisor until it has reaped them.
        if let Some(supervisor) = supervisor {
            let orphans = children_of(supervisor)
                .into_iter()
                .filter(|&(pid, _)| !is_helper(pid));
            found.extend(orphans);
        }
        found
    }

    /// The CGI supervisor, if the server has one running.
    pub fn supervisor(&self) -> Option<u32> {
        children_of(self.pid())
            .into_iter()
            .map(|(pid, _)| pid)
            .find(|&pid| is_role(pid, "__cgigate-supervisor"))
    }

    /// The CGI spawn helpers running (the supervisor's children).
    pub fn helpers(&self) -> Vec<u32> {
        self.supervisor()
            .map(|s| {
                children_of(s)
                    .into_iter()
                    .map(|(pid, _)| pid)
                    .filter(|&p| is_helper(p))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The plain CGI spawn helper (the first the supervisor started), if one runs.
    pub fn helper(&self) -> Option<u32> {
        let mut helpers = self.helpers();
        helpers.sort_unstable();
        helpers.first().copied()
    }

    /// Open descriptors of the server process.
    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid())).map_or(0, |d| d.count())
    }

    /// The server's log (stderr) so far, as one string.
    pub fn log_text(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    /// Access log lines seen so far (those on stdout).
    pub fn log_lines(&self) -> Vec<String> {
        self.stdout.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn drain(r: impl BufRead + Send + 'static) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in r.lines() {
            let Ok(line) = line else { break };
            sink.lock().unwrap().push(line);
        }
    });
    lines
}

/// Status code, reason phrase and header fields of a response.
pub type StatusAndHeaders = (u16, String, Vec<(String, String)>);

/// How a response body was delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Length,
    Chunked,
    Close,
    None,
}

/// A response as read off the wire.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub framing: Framing,
    /// Chunk payloads in order (chunked responses).
    pub chunks: Vec<Vec<u8>>,
    /// When each chunk (or, for other framings, the head) was complete.
    pub arrivals: Vec<Instant>,
    /// When the head was complete.
    pub head_at: Instant,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    /// Status, reason, fields and body, for failure messages.
    pub fn describe(&self) -> String {
        format!(
            "{} {} {:?} body {:?}",
            self.status,
            self.reason,
            self.headers,
            self.text()
        )
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn closes(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
}

/// What a [`Client`] reads and writes through: the socket, or TLS over it.
pub trait Io: Read + Write + Send {}
impl<T: Read + Write + Send> Io for T {}

/// A raw client connection.
pub struct Client {
    /// The socket (for timeouts, shutdown, cloning); reads and writes go through `io`.
    pub stream: TcpStream,
    io: Box<dyn Io>,
    buf: Vec<u8>,
    last_error: Option<String>,
}

impl Client {
    pub fn connect(addr: &str) -> Client {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        let io = Box::new(stream.try_clone().unwrap());
        Client {
            stream,
            io,
            buf: Vec::new(),
            last_error: None,
        }
    }

    /// A client over `io` (e.g. a TLS stream) on `stream`.
    pub fn over(stream: TcpStream, io: Box<dyn Io>) -> Client {
        Client {
            stream,
            io,
            buf: Vec::new(),
            last_error: None,
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.io.write_all(bytes).expect("send");
        self.io.flush().expect("flush");
    }

    /// Send, tolerating a server that already closed (returns false then).
    pub fn try_send(&mut self, bytes: &[u8]) -> bool {
        self.io.write_all(bytes).is_ok() && self.io.flush().is_ok()
    }

    pub fn shutdown_write(&self) {
        let _ = self.stream.shutdown(Shutdown::Write);
    }

    /// Read more bytes into the buffer; false at EOF or reset.
    fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 16384];
        match self.io.read(&mut chunk) {
            Ok(0) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                panic!(
                    "read timed out after {IO_TIMEOUT:?}; have {:?}",
                    String::from_utf8_lossy(&self.buf)
                )
            }
            Err(e) => {
                self.last_error = Some(e.to_string());
                false
            }
        }
    }

    /// The read error that ended the last read, if one did (rather than end of file).
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    fn line(&mut self) -> Option<String> {
        loop {
            if let Some(pos) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[..pos]).into_owned();
                self.buf.drain(..pos + 2);
                return Some(line);
            }
            if !self.fill() {
                return None;
            }
        }
    }

    fn take(&mut self, n: usize) -> Option<Vec<u8>> {
        while self.buf.len() < n {
            if !self.fill() {
                return None;
            }
        }
        Some(self.buf.drain(..n).collect())
    }

    /// Read the exact bytes `expected` (e.g. an interim response).
    pub fn expect_bytes(&mut self, expected: &[u8]) {
        let got = self.take(expected.len()).unwrap_or_default();
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(expected)
        );
    }

    /// Read the status line and headers.
    pub fn response_head(&mut self) -> Option<StatusAndHeaders> {
        let status_line = self.line()?;
        let mut parts = status_line.splitn(3, ' ');
        assert_eq!(
            parts.next(),
            Some("HTTP/1.1"),
            "status line {status_line:?}"
        );
        let status: u16 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .expect("status code");
        let reason = parts.next().unwrap_or("").to_string();
        let mut headers = Vec::new();
        loop {
            let line = self.line().expect("header line");
            if line.is_empty() {
                break;
            }
            let (n, v) = line.split_once(':').expect("header colon");
            headers.push((n.to_string(), v.trim().to_string()));
        }
        Some((status, reason, headers))
    }

    /// Read a whole response to a GET-like request; panics if the connection ends first.
    pub fn response(&mut self) -> Response {
        self.try_response(false)
            .expect("connection closed before a response")
    }

    /// Read a whole response to a HEAD request (no body whatever the headers say).
    pub fn head_response(&mut self) -> Response {
        self.try_response(true)
            .expect("connection closed before a response")
    }

    /// Read a response, None if the connection closed before a status line.
    pub fn try_response(&mut self, head_request: bool) -> Option<Response> {
        let (status, reason, headers) = self.response_head()?;
        let head_at = Instant::now();
        let mut r = Response {
            status,
            reason,
            headers,
            body: Vec::new(),
            framing: Framing::None,
            chunks: Vec::new(),
            arrivals: vec![],
            head_at,
        };
        let te = r.header("transfer-encoding").map(str::to_string);
        let cl = r.header("content-length").map(str::to_string);
        assert!(
            !(te.is_some() && cl.is_some()),
            "both Content-Length and Transfer-Encoding"
        );
        if head_request || status == 204 || status == 304 || (100..200).contains(&status) {
            r.framing = Framing::None;
        } else if let Some(te) = te {
            assert_eq!(te, "chunked");
            r.framing = Framing::Chunked;
            self.read_chunks(&mut r);
        } else if let Some(cl) = cl {
            r.framing = Framing::Length;
            let n: usize = cl.parse().expect("content-length");
            r.body = self
                .take(n)
                .expect("connection closed inside a Content-Length body");
        } else {
            r.framing = Framing::Close;
            while self.fill() {}
            r.body = std::mem::take(&mut self.buf);
        }
        Some(r)
    }

    fn read_chunks(&mut self, r: &mut Response) {
        loop {
            let line = self.line().expect("chunk size line (body incomplete)");
            let size = usize::from_str_radix(line.split(';').next().unwrap().trim(), 16)
                .expect("chunk size");
            if size == 0 {
                let end = self.line().expect("final CRLF");
                assert_eq!(end, "", "trailers not expected");
                return;
            }
            let data = self.take(size).expect("chunk data");
            assert_eq!(
                self.take(2).as_deref(),
                Some(&b"\r\n"[..]),
                "CRLF after chunk data"
            );
            r.body.extend_from_slice(&data);
            r.chunks.push(data);
            r.arrivals.push(Instant::now());
        }
    }

    /// Whether the server closed the connection: reads until EOF/reset, returning what came.
    pub fn read_to_close(&mut self) -> Vec<u8> {
        while self.fill() {}
        std::mem::take(&mut self.buf)
    }

    /// True when the connection is closed and nothing more arrives.
    pub fn is_closed(&mut self) -> bool {
        self.read_to_close().is_empty()
    }

    /// Bytes buffered but not consumed.
    pub fn pending(&self) -> &[u8] {
        &self.buf
    }
}

/// Whether a process exists.
pub fn alive(pid: u32) -> bool {
    // A zombie is dead for our purposes; /proc/PID/stat says Z.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, r)| r.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Path of a file in the repository.
pub fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// A config with the built-in routes every test can use; `server` is inserted into [server].
pub fn config(server: &str) -> String {
    format!(
        r#"
[server]
listen = ["127.0.0.1:0"]
{server}

[log]
level = "warn"
access = "stdout"

[output]
mode = "auto"
buffer_limit = "64KiB"
flush_after = "50ms"

[[route]]
prefix = "/status"
handler = "status"

[[route]]
prefix = "/echo"
handler = "echo"

[[route]]
prefix = "/ticker"
handler = "ticker"

[[route]]
prefix = "/buffered/ticker"
handler = "ticker"
output = "buffer"

[[route]]
prefix = "/streamed/ticker"
handler = "ticker"
output = "stream"

[[route]]
prefix = "/small/ticker"
handler = "ticker"
output = "buffer"
buffer_limit = 10

[[route]]
prefix = "/static/"
static_dir = "static"
"#
    )
}

/// Start a server on [`config`], with a `static/` folder holding `index.html`.
pub fn server(server_keys: &str) -> Server {
    Server::start_with(&config(server_keys), |dir| {
        std::fs::create_dir_all(dir.join("static")).unwrap();
        std::fs::write(dir.join("static/index.html"), "<p>hi</p>\n").unwrap();
    })
}

/// A GET request's bytes.
pub fn get(target: &str) -> Vec<u8> {
    format!("GET {target} HTTP/1.1\r\nHost: t\r\n\r\n").into_bytes()
}

/// Whether `program` is installed: a name looked up in PATH, or an absolute path. Tests of
/// legacy programs return early when it is not, except under `CI=true`, where CI installs
/// `package` first and a missing program is a failure.
pub fn require(program: &str, package: &str) -> bool {
    let found = if program.contains('/') {
        is_executable(Path::new(program))
    } else {
        std::env::var_os("PATH").is_some_and(|path| {
            std::env::split_paths(&path).any(|dir| is_executable(&dir.join(program)))
        })
    };
    found || missing(program, package)
}

/// Whether the Perl module `module` loads (`perl -M{module} -e1`); missing as for [`require`].
pub fn require_perl_module(module: &str, package: &str) -> bool {
    let loads = Command::new("perl")
        .arg(format!("-M{module}"))
        .arg("-e1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    loads || missing(module, package)
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// A missing prerequisite: fails under CI, else reports the skip and returns false.
fn missing(what: &str, package: &str) -> bool {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("missing {what} (apt-get install {package})");
    }
    // Straight to stderr, not eprintln!: the test harness would capture that and hide it.
    let _ = writeln!(
        std::io::stderr(),
        "skipped: {what} not installed (apt-get install {package})"
    );
    false
}

/// The message of a caught panic.
pub fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "panic".to_string())
}

/// Processes whose parent is `parent`: (pid, state letter).
pub fn children_of(parent: u32) -> Vec<(u32, char)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // "pid (comm) state ppid ...": comm may hold spaces, so split after the last ')'.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r.trim()) else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next().and_then(|s| s.chars().next()).unwrap_or('?');
        let ppid: u32 = fields.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        if ppid == parent {
            found.push((pid, state));
        }
    }
    found
}

/// Whether `pid` is a cgigate spawn helper (its argv\[1] is the hidden helper argument).
pub fn is_helper(pid: u32) -> bool {
    is_role(pid, "__cgigate-spawner")
}

/// Whether `pid` is the cgigate binary run as `role` (its first argument).
pub fn is_role(pid: u32, role: &str) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| c.split(|&b| b == 0).nth(1) == Some(role.as_bytes()))
        .unwrap_or(false)
}

/// Whether this test runs as root, as the isolation tests need. Under `CI=true` they must
/// run, so not being root fails; elsewhere the test says plainly that it skipped.
pub fn require_root(test: &str) -> bool {
    if is_root() {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test} needs root (CI runs the tests as root)");
    }
    let _ = writeln!(std::io::stderr(), "skipped: {test} needs root");
    false
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .map(|ids| ids.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// Serialises changes to the account database (useradd and userdel lock it, and fail
/// rather than wait).
static ACCOUNTS: Mutex<()> = Mutex::new(());

/// A user (and its own primary group, and one supplementary group) made for one test,
/// removed again when dropped. Needs root.
pub struct TestUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// The supplementary group's name and gid.
    pub extra: (String, u32),
}

impl TestUser {
    /// `tag` (a few letters) makes the name unique among the tests of one run.
    pub fn create(tag: &str) -> TestUser {
        let name = format!("cgt{}{tag}", std::process::id());
        let extra = format!("{name}x");
        let _lock = ACCOUNTS.lock().unwrap_or_else(|e| e.into_inner());
        for (program, args) in [
            ("groupadd", vec![name.as_str()]),
            ("groupadd", vec![extra.as_str()]),
            (
                "useradd",
                vec![
                    "-M",
                    "-N",
                    "-g",
                    &name,
                    "-G",
                    &extra,
                    "-s",
                    "/usr/sbin/nologin",
                    &name,
                ],
            ),
        ] {
            let status = Command::new(program)
                .args(&args)
                .status()
                .unwrap_or_else(|e| panic!("{program}: {e}"));
            assert!(status.success(), "{program} {args:?}: {status}");
        }
        let id = |flag: &str| -> u32 {
            let out = Command::new("id").arg(flag).arg(&name).output().unwrap();
            String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
        };
        let gid_of = |group: &str| -> u32 {
            let out = Command::new("getent")
                .args(["group", group])
                .output()
                .unwrap();
            let line = String::from_utf8_lossy(&out.stdout).to_string();
            line.split(':').nth(2).unwrap().parse().unwrap()
        };
        TestUser {
            uid: id("-u"),
            gid: id("-g"),
            extra: (extra.clone(), gid_of(&extra)),
            name,
        }
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let _lock = ACCOUNTS.lock().unwrap_or_else(|e| e.into_inner());
        // Its processes are gone by now: the tests stop their servers first.
        // userdel removes the user's own group too, as a rule; groupdel covers the rest.
        for (program, args) in [
            ("userdel", vec!["-f", self.name.as_str()]),
            ("groupdel", vec![self.name.as_str()]),
            ("groupdel", vec![self.extra.0.as_str()]),
        ] {
            let _ = Command::new(program)
                .args(args)
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// `chown uid:gid path` and `chmod mode path`.
pub fn own(path: &Path, uid: u32, gid: u32, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The `Uid:`, `Gid:`, `Groups:` and `Cap*:` lines of a process's status, by name.
pub fn proc_status(pid: u32) -> std::collections::BTreeMap<String, String> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

/// HAProxy in the foreground with `cfg`, stopped on drop.
pub struct Haproxy(Child);

impl Haproxy {
    pub fn start(dir: &Path, cfg: &str) -> Haproxy {
        let path = dir.join("haproxy.cfg");
        std::fs::write(&path, cfg).unwrap();
        let check = Command::new("haproxy")
            .arg("-c")
            .arg("-f")
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "haproxy -c: {}",
            String::from_utf8_lossy(&check.stderr)
        );
        let child = Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Haproxy(child)
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A free port on 127.0.0.1 for HAProxy to listen on.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Keep-alive clients requesting in a loop until stopped, one thread per target,
/// reconnecting when the server closes (after a `Connection: close`, as clients do, or
/// after a failure). Every request's end is recorded: when, and whether it got a 200.
pub struct Load {
    stop: Arc<std::sync::atomic::AtomicBool>,
    answered: Arc<std::sync::atomic::AtomicUsize>,
    threads: Vec<std::thread::JoinHandle<Vec<(Instant, bool)>>>,
}

impl Load {
    /// Start a client on `addr` for each of `targets` (GET).
    pub fn start(addr: &str, targets: &[&str]) -> Load {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        let stop = Arc::new(AtomicBool::new(false));
        let answered = Arc::new(AtomicUsize::new(0));
        let threads = targets
            .iter()
            .map(|target| {
                let request = get(target);
                let (addr, stop, answered) = (addr.to_string(), stop.clone(), answered.clone());
                std::thread::spawn(move || {
                    let mut results = Vec::new();
                    let mut c = Client::connect(&addr);
                    while !stop.load(Ordering::Relaxed) {
                        let sent = c.try_send(&request);
                        let r = if sent { c.try_response(false) } else { None };
                        let ok = r.as_ref().is_some_and(|r| r.status == 200);
                        results.push((Instant::now(), ok));
                        if ok {
                            answered.fetch_add(1, Ordering::Relaxed);
                        }
                        if r.is_none_or(|r| r.closes()) {
                            c = Client::connect(&addr);
                        }
                    }
                    results
                })
            })
            .collect();
        Load {
            stop,
            answered,
            threads,
        }
    }

    /// Requests answered 200 so far.
    pub fn answered(&self) -> usize {
        self.answered.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Wait (bounded) until `more` requests beyond those answered now got their 200.
    pub fn wait_for(&self, more: usize) {
        let target = self.answered() + more;
        let deadline = Instant::now() + IO_TIMEOUT;
        while self.answered() < target {
            assert!(Instant::now() < deadline, "the load stalled");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stop the clients: every request's end, in time order.
    pub fn stop(self) -> Vec<(Instant, bool)> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut all: Vec<_> = self
            .threads
            .into_iter()
            .flat_map(|t| t.join().expect("load thread"))
            .collect();
        all.sort_by_key(|(t, _)| *t);
        all
    }
}

/// How many of `results` between `from` and `to` failed.
pub fn failed_between(results: &[(Instant, bool)], from: Instant, to: Instant) -> usize {
    results
        .iter()
        .filter(|(t, ok)| *t >= from && *t < to && !ok)
        .count()
}
