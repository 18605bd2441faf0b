//! The validated configuration: every section's type, with its defaults.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

pub use super::isolation::{Identity, Limits, RunAs, Sandbox, DEFAULT_MIN_ID};
pub use crate::proxy::trusted::{Cidr, Trusted};
pub use crate::proxy::{ForwardedHeaders, ProxyProtocol};

// The head and body limits' defaults belong to the parser that enforces them.
pub use crate::http::head::{DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_HEADERS, DEFAULT_MAX_HEAD_BYTES};

/// Listen address when neither the config nor the command line gives one.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8080));
/// Connections served at once; beyond this, accepting waits.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// Requests served on one connection before it is closed.
pub const DEFAULT_MAX_REQUESTS_PER_CONNECTION: u64 = 1_000;
/// Time for a whole request head to arrive.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest silence while a request body is read.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// Idle time allowed between requests on a kept-alive connection.
pub const DEFAULT_KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest stall while writing to a client.
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Smallest accepted `max_head_bytes`, in bytes: below this, ordinary browsers fail.
pub const MIN_MAX_HEAD_BYTES: usize = 256;
/// Largest accepted `max_head_bytes`, in bytes (1 MiB): the head is held in memory.
pub const MAX_MAX_HEAD_BYTES: usize = 1024 * 1024;
/// Largest accepted `max_headers`.
pub const MAX_MAX_HEADERS: usize = 10_000;
/// Time in-flight requests get on SIGTERM/SIGINT.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);
/// Output held by buffer/auto mode before it streams, in bytes (1 MiB).
pub const DEFAULT_BUFFER_LIMIT: usize = 1024 * 1024;
/// Producer silence after which auto mode flushes and streams.
pub const DEFAULT_FLUSH_AFTER: Duration = Duration::from_millis(50);
/// CGI processes running at once, server-wide.
pub const DEFAULT_MAX_CHILDREN: usize = 64;
/// Wait for a free CGI slot before 503.
pub const DEFAULT_QUEUE_TIMEOUT: Duration = Duration::from_secs(5);
/// Total run time of a CGI script.
pub const DEFAULT_CGI_TIMEOUT: Duration = Duration::from_secs(300);
/// Silence from a CGI script before it is killed.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Time between SIGTERM and SIGKILL.
pub const DEFAULT_KILL_GRACE: Duration = Duration::from_secs(2);
/// Spooled request body kept in memory before a temp file, in bytes (1 MiB).
pub const DEFAULT_SPOOL_MEMORY: usize = 1024 * 1024;
/// Variables CGI scripts inherit from the server's environment.
pub const DEFAULT_PASS_ENV: &[&str] = &["PATH", "LANG", "LC_ALL", "TZ"];
/// Interpreters by extension.
pub const DEFAULT_INTERPRETERS: &[(&str, &str)] =
    &[(".php", "php-cgi"), (".pl", "perl"), (".py", "python3")];
/// TLS sessions kept for resumption.
pub const DEFAULT_SESSION_CACHE: usize = 4096;
/// Time for a TLS handshake.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A validated configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// `[server]`.
    pub server: ServerConfig,
    /// `[log]`.
    pub log: LogConfig,
    /// `[output]`: the defaults each route starts from.
    pub output: OutputConfig,
    /// `[cgi]`: the defaults each route starts from.
    pub cgi: CgiConfig,
    /// `[[route]]` tables in file order (the router picks the longest prefix).
    pub routes: Vec<Route>,
    /// `[tls]`, if present.
    pub tls: Option<TlsConfig>,
    /// Folder relative paths were resolved against (the config file's folder; the current dir for built-in defaults).
    pub base_dir: PathBuf,
    /// The file this came from, None for built-in defaults.
    pub source: Option<PathBuf>,
}

/// `[server]`: listeners, limits and timeouts of the HTTP side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerConfig {
    /// Plain-HTTP listen addresses (never empty in a loaded config).
    pub listen: Vec<SocketAddr>,
    /// Connections served at once (≥ 1).
    pub max_connections: usize,
    /// Requests per connection (≥ 1).
    pub max_requests_per_connection: u64,
    /// Time for a whole request head (> 0).
    pub header_timeout: Duration,
    /// Longest silence while reading a request body (> 0).
    pub body_timeout: Duration,
    /// Idle time between requests (> 0).
    pub keep_alive_timeout: Duration,
    /// Longest stall while writing (> 0).
    pub write_timeout: Duration,
    /// Request line plus headers, in bytes (256 B ..= 1 MiB).
    pub max_head_bytes: usize,
    /// Header fields per request (1 ..= 10000).
    pub max_headers: usize,
    /// Request body, in bytes.
    pub max_body_bytes: u64,
    /// Grace period on shutdown (may be 0).
    pub shutdown_timeout: Duration,
    /// Keep serving clients that shut down only their sending side.
    pub half_close: bool,
    /// Who the server runs as once it has bound its listeners (`user`, `group`); `None`:
    /// whoever started it.
    pub user: Option<Identity>,
    /// SO_REUSEPORT on every listener: several processes may serve one port.
    pub reuse_port: bool,
    /// PROXY headers on the plain listeners.
    pub proxy_protocol: ProxyProtocol,
    /// The sources whose PROXY and forwarding headers are believed (every listener's).
    pub trusted_proxies: Trusted,
    /// Which forwarding headers are believed from `trusted_proxies`.
    pub forwarded: ForwardedHeaders,
}

/// `[log]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogConfig {
    /// A tracing filter (`RUST_LOG` overrides it); never empty.
    pub level: String,
    /// Where the access log goes.
    pub access: AccessLog,
    /// Access log line format.
    pub format: LogFormat,
}

/// Where the access log goes: `"stdout"`, `"stderr"`, `"off"`, or any other string, a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AccessLog {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
    /// No access log.
    Off,
    /// This file (resolved against the config's folder), appended to.
    File(PathBuf),
}

/// Access log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Apache/nginx "combined", followed by cgigate's output fields.
    Combined,
    /// One JSON object per line.
    Json,
}

/// How a dynamic response is written (SPEC §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputMode {
    /// Hold the body, send it with Content-Length if it fits in `buffer_limit`.
    Buffer,
    /// Send each piece as a chunk at once.
    Stream,
    /// Buffer, but stream once the producer is silent for `flush_after`.
    Auto,
}

impl OutputMode {
    /// The mode a response starts in.
    pub(crate) fn mode(self) -> crate::http::framer::Mode {
        use crate::http::framer::Mode;
        match self {
            OutputMode::Buffer => Mode::Buffer,
            OutputMode::Stream => Mode::Stream,
            OutputMode::Auto => Mode::Auto,
        }
    }

    /// The name used in the config file and the access log.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            OutputMode::Buffer => "buffer",
            OutputMode::Stream => "stream",
            OutputMode::Auto => "auto",
        }
    }
}

/// `[output]`, or one route's output settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutputConfig {
    /// The output mode.
    pub mode: OutputMode,
    /// Bytes held before buffer/auto mode gives up on Content-Length.
    pub buffer_limit: usize,
    /// Producer silence after which auto mode streams (may be 0).
    pub flush_after: Duration,
}

/// How a CGI script gets the request body (SPEC §5.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RequestBody {
    /// Collect the whole body first; the script gets `CONTENT_LENGTH`.
    Spool,
    /// Start the script at once and pipe the de-chunked body to it.
    Stream,
}

/// Where CGI scripts are started from (`[cgi] spawn`, server-wide).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SpawnMode {
    /// From the server while it holds few descriptors, from the helper once it holds many
    /// (docs/cgi.md: each is the cheaper one there).
    #[default]
    Auto,
    /// From a small single-threaded helper process (docs/cgi.md): cheaper per spawn than a
    /// large multi-threaded server with many descriptors.
    Helper,
    /// From the server process itself.
    Direct,
}

/// `[cgi]`, or one route's CGI settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CgiConfig {
    /// Scripts one client (by address) may have running and waiting together; 0: no
    /// bound but `max_children`.
    pub max_children_per_client: usize,
    /// CGI processes at once, server-wide (≥ 1; only `[cgi]` sets it).
    pub max_children: usize,
    /// Wait for a free slot before 503 (may be 0).
    pub queue_timeout: Duration,
    /// Total run time (> 0).
    pub timeout: Duration,
    /// Script silence before it is killed (> 0).
    pub idle_timeout: Duration,
    /// SIGTERM → SIGKILL delay (may be 0).
    pub kill_grace: Duration,
    /// Spool or stream the request body.
    pub request_body: RequestBody,
    /// Where scripts are started from (only `[cgi]` sets it).
    pub spawn: SpawnMode,
    /// Spooled bytes held in memory before a temp file.
    pub spool_memory: usize,
    /// Export `HTTP_AUTHORIZATION`.
    pub pass_auth: bool,
    /// Honour `nph-` scripts.
    pub nph: bool,
    /// Variables inherited from the server's environment.
    pub pass_env: Vec<String>,
    /// Extra variables, set last, sorted by name.
    pub env: Vec<(String, String)>,
    /// Extension (with its dot) → interpreter, sorted by extension. A bare program name
    /// (`python3`) is looked up in `PATH` at run time; a relative path containing `/` was
    /// resolved against the config's folder.
    pub interpreters: Vec<(String, PathBuf)>,
    /// `user` as configured (the name).
    pub user: Option<String>,
    /// `group` as configured (the name).
    pub group: Option<String>,
    /// Who scripts run as, resolved from `user`, `group` and `run_as_owner`.
    pub run_as: RunAs,
    /// The lowest uid scripts may be switched to.
    pub min_uid: u32,
    /// The lowest gid scripts may be switched to.
    pub min_gid: u32,
    /// Resource limits.
    pub limits: Limits,
    /// Niceness added to scripts (0 ..= 19).
    pub nice: i32,
    /// Non-empty: only these request headers (lower case) become `HTTP_*` variables.
    pub pass_headers: Vec<String>,
    /// The sandbox.
    pub sandbox: Sandbox,
    /// Where a replayable record of each 502 and 504 is written (`None`: nowhere).
    pub capture_failures: Option<PathBuf>,
    /// Most records kept there; the oldest go first (≥ 1).
    pub capture_max: usize,
    /// Keep Authorization, Proxy-Authorization and Cookie in the records.
    pub capture_secrets: bool,
}

/// Default `capture_max`: failure records kept.
pub const DEFAULT_CAPTURE_MAX: usize = 100;

/// One `[[route]]`, with the server-wide output and CGI settings merged in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// URL path prefix; starts with `/`.
    pub prefix: String,
    /// What answers requests below the prefix.
    pub kind: RouteKind,
    /// `[output]` with this route's `output`, `buffer_limit` and `flush_after` applied.
    pub output: OutputConfig,
    /// `[cgi]` with this route's CGI keys applied.
    pub cgi: CgiConfig,
    /// 1-based line of this `[[route]]` in the file (0 for built-in defaults).
    pub line: usize,
}

/// What answers a route. Paths are resolved but not checked: the server checks them at start-up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RouteKind {
    /// A built-in in-process handler, one of `handlers::BUILTINS`.
    Handler(String),
    /// Files below this folder.
    StaticDir(PathBuf),
    /// Executables below this folder are CGI scripts.
    CgiDir(PathBuf),
    /// This one program serves the whole prefix.
    CgiScript(PathBuf),
    /// A native plugin and the text handed to its `init`.
    Plugin {
        /// The shared library.
        path: PathBuf,
        /// `plugin_config`, empty when not set.
        config: String,
    },
}

impl std::fmt::Display for RouteKind {
    /// The key and value that chose it, as the config spells them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RouteKind::Handler(name) => write!(f, "handler {name}"),
            RouteKind::StaticDir(dir) => write!(f, "static_dir {}", dir.display()),
            RouteKind::CgiDir(dir) => write!(f, "cgi_dir {}", dir.display()),
            RouteKind::CgiScript(program) => write!(f, "cgi_script {}", program.display()),
            RouteKind::Plugin { path, .. } => write!(f, "plugin {}", path.display()),
        }
    }
}

/// `[tls]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsConfig {
    /// HTTPS listen addresses (never empty).
    pub listen: Vec<SocketAddr>,
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
    /// Resumable sessions kept (0 disables the cache).
    pub session_cache: usize,
    /// Time for a handshake (> 0).
    pub handshake_timeout: Duration,
    /// PROXY headers on the TLS listeners, before the ClientHello (trusted sources from
    /// `[server] trusted_proxies`).
    pub proxy_protocol: ProxyProtocol,
    /// Session ticket keys shared by every instance (`cgigate ticket-keys rotate`); `None`:
    /// keys of this process alone.
    pub ticket_keys: Option<PathBuf>,
}

impl Config {
    /// Built-in defaults (SPEC §1): listen 127.0.0.1:8080; one route "/cgi-bin/" → CgiDir(base/"cgi-bin"); base = `base_dir` argument.
    #[must_use]
    pub fn defaults(base_dir: &Path) -> Config {
        let output = OutputConfig::default();
        let cgi = CgiConfig::default();
        let route = Route {
            prefix: "/cgi-bin/".to_owned(),
            kind: RouteKind::CgiDir(base_dir.join("cgi-bin")),
            output,
            cgi: cgi.clone(),
            line: 0,
        };
        Config {
            server: ServerConfig::default(),
            log: LogConfig::default(),
            output,
            cgi,
            routes: vec![route],
            tls: None,
            base_dir: base_dir.to_path_buf(),
            source: None,
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: vec![DEFAULT_LISTEN],
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_requests_per_connection: DEFAULT_MAX_REQUESTS_PER_CONNECTION,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            keep_alive_timeout: DEFAULT_KEEP_ALIVE_TIMEOUT,
            write_timeout: DEFAULT_WRITE_TIMEOUT,
            max_head_bytes: DEFAULT_MAX_HEAD_BYTES,
            max_headers: DEFAULT_MAX_HEADERS,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            half_close: false,
            user: None,
            reuse_port: false,
            proxy_protocol: ProxyProtocol::Off,
            trusted_proxies: Trusted::default(),
            forwarded: ForwardedHeaders::Off,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".to_owned(),
            access: AccessLog::Stdout,
            format: LogFormat::Combined,
        }
    }
}

impl Default for OutputConfig {
    fn default() -> Self {
        OutputConfig {
            mode: OutputMode::Auto,
            buffer_limit: DEFAULT_BUFFER_LIMIT,
            flush_after: DEFAULT_FLUSH_AFTER,
        }
    }
}

impl Default for CgiConfig {
    fn default() -> Self {
        CgiConfig {
            max_children: DEFAULT_MAX_CHILDREN,
            queue_timeout: DEFAULT_QUEUE_TIMEOUT,
            timeout: DEFAULT_CGI_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            kill_grace: DEFAULT_KILL_GRACE,
            request_body: RequestBody::Spool,
            spawn: SpawnMode::Auto,
            max_children_per_client: 0,
            spool_memory: DEFAULT_SPOOL_MEMORY,
            pass_auth: false,
            nph: true,
            pass_env: DEFAULT_PASS_ENV.iter().map(|s| (*s).to_owned()).collect(),
            env: Vec::new(),
            interpreters: DEFAULT_INTERPRETERS
                .iter()
                .map(|(ext, program)| ((*ext).to_owned(), PathBuf::from(program)))
                .collect(),
            user: None,
            group: None,
            run_as: RunAs::Server,
            min_uid: DEFAULT_MIN_ID,
            min_gid: DEFAULT_MIN_ID,
            limits: Limits::default_for_cgi(),
            nice: 0,
            pass_headers: Vec::new(),
            capture_failures: None,
            capture_max: DEFAULT_CAPTURE_MAX,
            capture_secrets: false,
            sandbox: Sandbox::default(),
        }
    }
}
