//! Tests of the whole config module: the SPEC §2 example, defaults, value syntax as seen
//! through a file, and every validation error with its file, line, column and key.

use std::error::Error as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

mod isolation;

/// SPEC §2, verbatim: the shipped example must always load.
const SPEC_EXAMPLE: &str = r#"[server]
listen = ["127.0.0.1:8080"]
max_connections = 10000           # beyond: accept waits (no crash, no busy loop)
max_requests_per_connection = 1000
header_timeout = "10s"            # whole request head must arrive within this (not reset per byte)
body_timeout = "30s"              # longest silence while a request body is being read → 408, close
keep_alive_timeout = "5s"         # idle time allowed between requests
write_timeout = "30s"             # longest stall while writing to a client → close
max_head_bytes = "64KiB"          # request line + headers → 414 / 431
max_headers = 100                 # → 431
max_body_bytes = "16MiB"          # → 413
shutdown_timeout = "30s"
half_close = false               # true: EOF from a client with a pending response is not a disconnect

[log]
level = "info"                    # tracing filter; RUST_LOG overrides
access = "stdout"                 # stdout | stderr | off | a file path
format = "combined"               # combined | json

[output]                          # default output mode for dynamic responses (per-route override)
mode = "auto"                     # buffer | stream | auto
buffer_limit = "1MiB"
flush_after = "50ms"

[cgi]                             # defaults for CGI routes (every key may be overridden per route)
max_children = 64                 # concurrent CGI processes, server-wide
queue_timeout = "5s"              # wait for a free slot, then 503 with Retry-After
timeout = "5m"                    # total run time, then kill
idle_timeout = "60s"              # script silent this long: kill; 504 if no header block yet
kill_grace = "2s"                 # SIGTERM to the process group, then SIGKILL after this
request_body = "spool"            # spool | stream   (see §5.3)
spool_memory = "1MiB"             # spooled bodies beyond this go to a temp file
pass_auth = false                 # export HTTP_AUTHORIZATION to scripts
nph = true                        # honour nph- scripts (§5.5)
pass_env = ["PATH", "LANG", "LC_ALL", "TZ"]   # inherited from the server's environment
env = {}                          # extra variables, set last (they override computed ones)
interpreters = { ".py" = "python3", ".pl" = "perl", ".php" = "php-cgi" }

[[route]]                         # longest matching prefix wins
prefix = "/cgi-bin/"
cgi_dir = "cgi-bin"               # each executable file below is a script; the rest is PATH_INFO

[[route]]
prefix = "/git/"
cgi_script = "/usr/lib/git-core/git-http-backend"   # one program for the whole prefix
env = { GIT_PROJECT_ROOT = "/srv/git", GIT_HTTP_EXPORT_ALL = "1" }
request_body = "stream"

[[route]]
prefix = "/static/"
static_dir = "/usr/share/gitweb/static"

[[route]]
prefix = "/status"
handler = "status"                # built-in in-process handlers: status, echo

[[route]]
prefix = "/ext/hello"
plugin = "plugins/libhello.so"    # native plugin (§6.2)
plugin_config = "free text handed to the plugin's init"

[tls]                             # optional
listen = ["127.0.0.1:8443"]
cert = "cert.pem"
key = "key.pem"
session_cache = 4096              # resumable sessions kept
handshake_timeout = "10s"
"#;

const FILE: &str = "/etc/cgigate/config.toml";

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::from_str_at(text, Path::new(FILE))
}

fn ok(text: &str) -> Config {
    match parse(text) {
        Ok(config) => config,
        Err(err) => panic!("unexpected error: {err}"),
    }
}

/// The one-line message for `text`, which must be invalid.
fn error(text: &str) -> String {
    match parse(text) {
        Ok(config) => panic!("expected an error, got {config:?}"),
        Err(err) => err.to_string(),
    }
}

/// Asserts the message starts with `FILE:LINE:COL: KEY: ` followed by `rest`.
#[track_caller]
fn assert_error(text: &str, line: usize, column: usize, key: &str, rest: &str) {
    let message = error(text);
    let expected = format!("{FILE}:{line}:{column}: {key}: {rest}");
    assert!(
        message.starts_with(&expected),
        "\n got: {message}\nwant: {expected}…"
    );
    assert!(!message.contains('\n'), "not one line: {message:?}");
}

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

// --- The shipped example and defaults -------------------------------------------------------

#[test]
fn spec_example_yields_its_values() {
    let config = ok(SPEC_EXAMPLE);
    let base = PathBuf::from("/etc/cgigate");
    assert_eq!(config.base_dir, base);
    assert_eq!(config.source.as_deref(), Some(Path::new(FILE)));
    // The example writes out the shipped defaults, so every section equals its Default.
    assert_eq!(config.server, ServerConfig::default());
    assert_eq!(config.log, LogConfig::default());
    assert_eq!(config.output, OutputConfig::default());
    assert_eq!(config.cgi, CgiConfig::default());

    let kinds: Vec<(&str, &RouteKind, usize)> = config
        .routes
        .iter()
        .map(|r| (r.prefix.as_str(), &r.kind, r.line))
        .collect();
    assert_eq!(
        kinds,
        [
            ("/cgi-bin/", &RouteKind::CgiDir(base.join("cgi-bin")), 39),
            (
                "/git/",
                &RouteKind::CgiScript("/usr/lib/git-core/git-http-backend".into()),
                43
            ),
            (
                "/static/",
                &RouteKind::StaticDir("/usr/share/gitweb/static".into()),
                49
            ),
            ("/status", &RouteKind::Handler("status".into()), 53),
            (
                "/ext/hello",
                &RouteKind::Plugin {
                    path: base.join("plugins/libhello.so"),
                    config: "free text handed to the plugin's init".into(),
                },
                57
            ),
        ]
    );
    let git = &config.routes[1];
    assert_eq!(git.cgi.request_body, RequestBody::Stream);
    assert_eq!(
        git.cgi.env,
        [
            ("GIT_HTTP_EXPORT_ALL".to_owned(), "1".to_owned()),
            ("GIT_PROJECT_ROOT".to_owned(), "/srv/git".to_owned()),
        ]
    );
    assert_eq!(git.cgi.timeout, config.cgi.timeout);
    assert_eq!(git.output, config.output);

    let tls = config.tls.expect("[tls] is in the example");
    assert_eq!(tls.listen, [addr("127.0.0.1:8443")]);
    assert_eq!(tls.cert, base.join("cert.pem"));
    assert_eq!(tls.key, base.join("key.pem"));
    assert_eq!(tls.session_cache, 4096);
    assert_eq!(tls.handshake_timeout, secs(10));
}

#[test]
fn shipped_defaults_are_the_spec_values() {
    let s = ServerConfig::default();
    assert_eq!(s.listen, [addr("127.0.0.1:8080")]);
    assert_eq!(
        (s.max_connections, s.max_requests_per_connection),
        (10_000, 1_000)
    );
    assert_eq!(
        (
            s.header_timeout,
            s.body_timeout,
            s.keep_alive_timeout,
            s.write_timeout
        ),
        (secs(10), secs(30), secs(5), secs(30))
    );
    assert_eq!(
        (s.max_head_bytes, s.max_headers, s.max_body_bytes),
        (65_536, 100, 16 * 1024 * 1024)
    );
    assert_eq!((s.shutdown_timeout, s.half_close), (secs(30), false));

    let l = LogConfig::default();
    assert_eq!(
        (l.level.as_str(), &l.access, l.format),
        ("info", &AccessLog::Stdout, LogFormat::Combined)
    );

    let o = OutputConfig::default();
    assert_eq!(
        (o.mode, o.buffer_limit, o.flush_after),
        (OutputMode::Auto, 1024 * 1024, Duration::from_millis(50))
    );

    let c = CgiConfig::default();
    assert_eq!(c.max_children, 64);
    assert_eq!(
        (c.queue_timeout, c.timeout, c.idle_timeout, c.kill_grace),
        (secs(5), secs(300), secs(60), secs(2))
    );
    assert_eq!(
        (c.request_body, c.spool_memory, c.pass_auth, c.nph),
        (RequestBody::Spool, 1024 * 1024, false, true)
    );
    assert_eq!(c.spawn, SpawnMode::Auto);
    assert_eq!(c.pass_env, ["PATH", "LANG", "LC_ALL", "TZ"]);
    assert!(c.env.is_empty());
    assert_eq!(
        c.interpreters,
        [
            (".php".to_owned(), PathBuf::from("php-cgi")),
            (".pl".to_owned(), PathBuf::from("perl")),
            (".py".to_owned(), PathBuf::from("python3")),
        ]
    );
}

#[test]
fn empty_file_gives_all_defaults_and_no_routes() {
    for text in ["", "\n# only a comment\n"] {
        let config = ok(text);
        let defaults = Config::defaults(Path::new("/etc/cgigate"));
        assert_eq!(config.server, defaults.server);
        assert_eq!(config.log, defaults.log);
        assert_eq!(config.output, defaults.output);
        assert_eq!(config.cgi, defaults.cgi);
        assert!(config.routes.is_empty());
        assert_eq!(config.tls, None);
        assert_eq!(config.base_dir, Path::new("/etc/cgigate"));
        assert_eq!(config.source.as_deref(), Some(Path::new(FILE)));
    }
}

#[test]
fn missing_sections_and_keys_take_defaults() {
    let config = ok("[server]\nlisten = [\"0.0.0.0:80\"]\n\n[cgi]\ntimeout = \"1m\"\n");
    assert_eq!(config.server.listen, [addr("0.0.0.0:80")]);
    assert_eq!(
        config.server.max_connections,
        ServerConfig::default().max_connections
    );
    assert_eq!(config.cgi.timeout, secs(60));
    assert_eq!(config.cgi.idle_timeout, CgiConfig::default().idle_timeout);
    assert_eq!(config.log, LogConfig::default());
    assert_eq!(config.output, OutputConfig::default());
}

#[test]
fn built_in_defaults_serve_cgi_bin() {
    let config = Config::defaults(Path::new("/srv/app"));
    assert_eq!(config.server.listen, [addr("127.0.0.1:8080")]);
    assert_eq!(config.base_dir, Path::new("/srv/app"));
    assert_eq!(config.source, None);
    assert_eq!(config.tls, None);
    assert_eq!(config.routes.len(), 1);
    let route = &config.routes[0];
    assert_eq!(route.prefix, "/cgi-bin/");
    assert_eq!(route.kind, RouteKind::CgiDir("/srv/app/cgi-bin".into()));
    assert_eq!(route.line, 0);
    assert_eq!(route.output, config.output);
    assert_eq!(route.cgi, config.cgi);
}

#[test]
fn output_mode_names() {
    assert_eq!(OutputMode::Buffer.as_str(), "buffer");
    assert_eq!(OutputMode::Stream.as_str(), "stream");
    assert_eq!(OutputMode::Auto.as_str(), "auto");
    for mode in [OutputMode::Buffer, OutputMode::Stream, OutputMode::Auto] {
        let text = format!("[output]\nmode = \"{}\"\n", mode.as_str());
        assert_eq!(ok(&text).output.mode, mode);
    }
}

// --- Value syntax through a file -------------------------------------------------------------

#[test]
fn durations_in_every_unit() {
    let config = ok("[server]\nheader_timeout = \"250ms\"\nbody_timeout = \"5s\"\n\
                     keep_alive_timeout = \"2m\"\nwrite_timeout = \"1h\"\nshutdown_timeout = \"0s\"\n");
    let s = config.server;
    assert_eq!(s.header_timeout, Duration::from_millis(250));
    assert_eq!(s.body_timeout, secs(5));
    assert_eq!(s.keep_alive_timeout, secs(120));
    assert_eq!(s.write_timeout, secs(3600));
    assert_eq!(s.shutdown_timeout, Duration::ZERO);
}

#[test]
fn bad_durations_point_at_the_value() {
    let text =
        "# a comment\n\n[server]\nlisten = [\"127.0.0.1:8080\"]\n\n\nheader_timeout = \"5x\"\n";
    assert_error(
        text,
        7,
        18,
        "server.header_timeout",
        "invalid duration \"5x\" (use e.g. \"250ms\", \"5s\", \"2m\")",
    );
    assert_error(
        "[cgi]\ntimeout = 5\n",
        2,
        11,
        "cgi.timeout",
        "invalid duration 5: durations are strings with a unit",
    );
    assert_error(
        "[output]\nflush_after = 0.5\n",
        2,
        15,
        "output.flush_after",
        "invalid duration 0.5",
    );
    assert_error(
        "[cgi]\nkill_grace = \"2\"\n",
        2,
        14,
        "cgi.kill_grace",
        "invalid duration \"2\": the unit is missing",
    );
    assert_error(
        "[cgi]\nkill_grace = \"-2s\"\n",
        2,
        14,
        "cgi.kill_grace",
        "invalid duration \"-2s\"",
    );
    assert_error(
        "[cgi]\nkill_grace = true\n",
        2,
        14,
        "cgi.kill_grace",
        "invalid type: boolean `true`, expected a duration string",
    );
}

#[test]
fn sizes_as_integers_and_strings() {
    let config = ok(
        "[server]\nmax_body_bytes = 123\nmax_head_bytes = \"8KiB\"\n\
                     [output]\nbuffer_limit = \"2MiB\"\n[cgi]\nspool_memory = \"1GiB\"\n",
    );
    assert_eq!(config.server.max_body_bytes, 123);
    assert_eq!(config.server.max_head_bytes, 8192);
    assert_eq!(config.output.buffer_limit, 2 * 1024 * 1024);
    assert_eq!(config.cgi.spool_memory, 1 << 30);
    let config = ok(
        "[server]\nmax_body_bytes = \"3MB\"\n[output]\nbuffer_limit = 0\n\
                     [cgi]\nspool_memory = \"7KB\"\n",
    );
    assert_eq!(config.server.max_body_bytes, 3_000_000);
    assert_eq!(config.output.buffer_limit, 0);
    assert_eq!(config.cgi.spool_memory, 7_000);
    let config = ok("[server]\nmax_body_bytes = \"1GB\"\nmax_head_bytes = \"512B\"\n");
    assert_eq!(config.server.max_body_bytes, 1_000_000_000);
    assert_eq!(config.server.max_head_bytes, 512);
}

#[test]
fn bad_sizes_point_at_the_value() {
    let cases = [
        ("-1", "invalid size -1: sizes cannot be negative"),
        ("1.5", "invalid size 1.5: sizes are whole numbers"),
        ("\"1.5MiB\"", "invalid size \"1.5MiB\": unknown unit"),
        ("\"64K\"", "invalid size \"64K\": unknown unit"),
        ("\"-1KiB\"", "invalid size \"-1KiB\""),
        (
            "\"99999999999GiB\"",
            "invalid size \"99999999999GiB\": too large",
        ),
        ("true", "invalid type: boolean `true`, expected a size"),
    ];
    for (value, message) in cases {
        let text = format!("[server]\nmax_body_bytes = {value}\n");
        assert_error(&text, 2, 18, "server.max_body_bytes", message);
    }
}

#[test]
fn listen_addresses() {
    let config = ok("[server]\nlisten = [\"127.0.0.1:0\", \"[::1]:8080\", \"127.0.0.1:0\"]\n");
    assert_eq!(
        config.server.listen,
        [addr("127.0.0.1:0"), addr("[::1]:8080"), addr("127.0.0.1:0")]
    );
    assert_error(
        "[server]\nlisten = [\"127.0.0.1:80\", \"localhost:8080\"]\n",
        2,
        27,
        "server.listen[2]",
        "invalid address \"localhost:8080\" (use IP:PORT",
    );
    assert_error(
        "[server]\nlisten = \"127.0.0.1:80\"\n",
        2,
        10,
        "server.listen",
        "invalid type: string \"127.0.0.1:80\", expected a sequence",
    );
    assert_error(
        "[server]\nlisten = []\n",
        2,
        10,
        "server.listen",
        "at least one address is required",
    );
    assert_error(
        "[server]\nlisten = [\"127.0.0.1:80\", \"127.0.0.1:80\"]\n",
        2,
        27,
        "server.listen[2]",
        "127.0.0.1:80 is listed twice",
    );
}

// --- [server], [log], [output], [cgi] checks ---------------------------------------------------

#[test]
fn unknown_keys_are_named_with_the_expected_ones() {
    assert_error(
        "[server]\nlisten = [\"127.0.0.1:80\"]\nlistn = 1\n",
        3,
        1,
        "server.listn",
        "unknown key (expected one of listen, max_connections, ",
    );
    assert_error(
        "[log]\nlevel = \"info\"\n\n  colour = true\n",
        4,
        3,
        "log.colour",
        "unknown key (expected one of level, access, format)",
    );
    assert_error(
        "[server]\n[logging]\n",
        2,
        2,
        "logging",
        "unknown key (expected one of server, log, output, cgi, route, tls)",
    );
    assert_error(
        "[tls]\nlisten = [\"127.0.0.1:443\"]\ncert = \"c\"\nkey = \"k\"\nciphers = []\n",
        5,
        1,
        "tls.ciphers",
        "unknown key",
    );
    assert_error(
        "[cgi]\nenv = {}\n[output]\nmode = \"auto\"\nlimit = 5\n",
        5,
        1,
        "output.limit",
        "unknown key (expected one of mode, buffer_limit, flush_after)",
    );
}

#[test]
fn wrong_types_name_the_key() {
    assert_error(
        "[server]\nmax_connections = \"many\"\n",
        2,
        19,
        "server.max_connections",
        "invalid type: string \"many\", expected usize",
    );
    assert_error(
        "[server]\nmax_connections = -5\n",
        2,
        19,
        "server.max_connections",
        "invalid value: integer `-5`, expected usize",
    );
    assert_error(
        "[server]\nhalf_close = \"yes\"\n",
        2,
        14,
        "server.half_close",
        "invalid type: string \"yes\", expected a boolean",
    );
    assert_error("server = 5\n", 1, 10, "server", "invalid type: integer `5`");
}

#[test]
fn syntax_errors_have_a_position_and_no_key() {
    let err = parse("[server]\nlisten = [\"127.0.0.1:80\"\n").unwrap_err();
    assert!(matches!(err, ConfigError::Syntax { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.starts_with(&format!("{FILE}:3:1: ")), "{message}");
    assert!(!message.contains('\n'), "{message:?}");
    assert!(err.source().is_some());
    assert_eq!(err.key(), None);
    assert_eq!(err.location().map(|l| (l.line, l.column)), Some((3, 1)));

    let message = error("[server\n");
    assert!(
        message.starts_with(&format!("{FILE}:1:8: invalid table header")),
        "{message}"
    );
}

#[test]
fn server_limits() {
    let cases = [
        (
            "max_connections = 0",
            "server.max_connections",
            "must be at least 1 (got 0)",
        ),
        (
            "max_requests_per_connection = 0",
            "server.max_requests_per_connection",
            "must be at least 1 (got 0)",
        ),
        (
            "max_head_bytes = 255",
            "server.max_head_bytes",
            "must be between 256 and 1048576 (got 255)",
        ),
        (
            "max_head_bytes = \"1025KiB\"",
            "server.max_head_bytes",
            "must be between 256 and 1048576 (got 1049600)",
        ),
        (
            "max_headers = 0",
            "server.max_headers",
            "must be between 1 and 10000 (got 0)",
        ),
        (
            "max_headers = 10001",
            "server.max_headers",
            "must be between 1 and 10000 (got 10001)",
        ),
    ];
    for (line, key, message) in cases {
        let text = format!("[server]\nlisten = [\"127.0.0.1:80\"]\n{line}\n");
        let column = line.find('=').unwrap_or(0) + 3;
        assert_error(&text, 3, column, key, message);
    }
    let config = ok("[server]\nmax_head_bytes = 256\nmax_headers = 10000\nmax_body_bytes = 0\n");
    assert_eq!(config.server.max_head_bytes, 256);
    assert_eq!(config.server.max_headers, 10_000);
    assert_eq!(config.server.max_body_bytes, 0);
    let config = ok("[server]\nmax_head_bytes = \"1MiB\"\n");
    assert_eq!(config.server.max_head_bytes, 1 << 20);
}

#[test]
fn timeouts_must_be_positive_but_shutdown_may_be_zero() {
    for key in [
        "header_timeout",
        "body_timeout",
        "keep_alive_timeout",
        "write_timeout",
    ] {
        let text = format!("[server]\n{key} = \"0s\"\n");
        let column = key.len() + 4;
        assert_error(
            &text,
            2,
            column,
            &format!("server.{key}"),
            "must be greater than 0",
        );
    }
    assert_eq!(
        ok("[server]\nshutdown_timeout = \"0ms\"\n")
            .server
            .shutdown_timeout,
        Duration::ZERO
    );
    assert_error(
        "[cgi]\ntimeout = \"0s\"\n",
        2,
        11,
        "cgi.timeout",
        "must be greater than 0",
    );
    assert_error(
        "[cgi]\nidle_timeout = \"0m\"\n",
        2,
        16,
        "cgi.idle_timeout",
        "must be greater than 0",
    );
    let config =
        ok("[cgi]\nqueue_timeout = \"0s\"\nkill_grace = \"0s\"\n[output]\nflush_after = \"0ms\"\n");
    assert_eq!(config.cgi.queue_timeout, Duration::ZERO);
    assert_eq!(config.cgi.kill_grace, Duration::ZERO);
    assert_eq!(config.output.flush_after, Duration::ZERO);
}

#[test]
fn log_section() {
    let config = ok("[log]\nlevel = \"cgigate=debug\"\naccess = \"stderr\"\nformat = \"json\"\n");
    assert_eq!(config.log.level, "cgigate=debug");
    assert_eq!(config.log.access, AccessLog::Stderr);
    assert_eq!(config.log.format, LogFormat::Json);
    assert_eq!(ok("[log]\naccess = \"off\"\n").log.access, AccessLog::Off);
    assert_eq!(
        ok("[log]\naccess = \"stdout\"\n").log.access,
        AccessLog::Stdout
    );
    assert_eq!(
        ok("[log]\naccess = \"logs/access.log\"\n").log.access,
        AccessLog::File("/etc/cgigate/logs/access.log".into())
    );
    assert_eq!(
        ok("[log]\naccess = \"/var/log/a.log\"\n").log.access,
        AccessLog::File("/var/log/a.log".into())
    );
    assert_error(
        "[log]\nlevel = \" \"\n",
        2,
        9,
        "log.level",
        "must not be empty",
    );
    assert_error(
        "[log]\naccess = \"\"\n",
        2,
        10,
        "log.access",
        "must be stdout, stderr, off or a file path",
    );
    assert_error(
        "[log]\nformat = \"xml\"\n",
        2,
        10,
        "log.format",
        "unknown value \"xml\" (expected combined or json)",
    );
}

#[test]
fn output_section() {
    let config =
        ok("[output]\nmode = \"stream\"\nbuffer_limit = \"4KiB\"\nflush_after = \"10ms\"\n");
    assert_eq!(
        config.output,
        OutputConfig {
            mode: OutputMode::Stream,
            buffer_limit: 4096,
            flush_after: Duration::from_millis(10),
        }
    );
    assert_error(
        "[output]\nmode = \"fast\"\n",
        2,
        8,
        "output.mode",
        "unknown value \"fast\" (expected one of buffer, stream, auto)",
    );
    assert_error(
        "[output]\nbuffer_limit = -1\n",
        2,
        16,
        "output.buffer_limit",
        "invalid size -1: sizes cannot be negative",
    );
}

#[test]
fn cgi_section() {
    let text = "[cgi]\nmax_children = 8\nrequest_body = \"stream\"\npass_auth = true\nnph = false\n\
                pass_env = [\"HOME\"]\nenv = { B = \"2\", A = \"1\" }\n\
                interpreters = { \".rb\" = \"ruby\", \".lua\" = \"bin/lua\", \".tcl\" = \"/usr/bin/tclsh\" }\n";
    let cgi = ok(text).cgi;
    assert_eq!(cgi.max_children, 8);
    for (value, mode) in [
        ("auto", SpawnMode::Auto),
        ("helper", SpawnMode::Helper),
        ("direct", SpawnMode::Direct),
    ] {
        assert_eq!(ok(&format!("[cgi]\nspawn = \"{value}\"\n")).cgi.spawn, mode);
    }
    assert_eq!(cgi.request_body, RequestBody::Stream);
    assert!(cgi.pass_auth);
    assert!(!cgi.nph);
    assert_eq!(cgi.pass_env, ["HOME"]);
    assert_eq!(
        cgi.env,
        [
            ("A".to_owned(), "1".to_owned()),
            ("B".to_owned(), "2".to_owned())
        ]
    );
    // A bare name is for PATH lookup; a relative path is the config folder's.
    assert_eq!(
        cgi.interpreters,
        [
            (".lua".to_owned(), PathBuf::from("/etc/cgigate/bin/lua")),
            (".rb".to_owned(), PathBuf::from("ruby")),
            (".tcl".to_owned(), PathBuf::from("/usr/bin/tclsh")),
        ]
    );
    assert!(ok("[cgi]\ninterpreters = {}\n").cgi.interpreters.is_empty());
}

#[test]
fn cgi_section_errors() {
    assert_error(
        "[cgi]\nmax_children = 0\n",
        2,
        16,
        "cgi.max_children",
        "must be at least 1 (got 0)",
    );
    assert_error(
        "[cgi]\ninterpreters = { py = \"python3\" }\n",
        2,
        18,
        "cgi.interpreters.py",
        "invalid extension \"py\" (must start with \".\"",
    );
    assert_error(
        "[cgi]\ninterpreters = { \".py\" = \"\" }\n",
        2,
        26,
        "cgi.interpreters.\".py\"",
        "invalid program \"\"",
    );
    assert_error(
        "[cgi]\nenv = { A = 1 }\n",
        2,
        13,
        "cgi.env.A",
        "invalid type: integer `1`, expected a string",
    );
    assert_error(
        "[cgi]\npass_env = [\"PATH\", \"\"]\n",
        2,
        21,
        "cgi.pass_env[2]",
        "invalid environment variable name \"\"",
    );
    assert_error(
        "[cgi]\nrequest_body = \"pipe\"\n",
        2,
        16,
        "cgi.request_body",
        "unknown value \"pipe\" (expected spool or stream)",
    );
    assert_error(
        "[cgi]\nspawn = \"fork\"\n",
        2,
        9,
        "cgi.spawn",
        "unknown value \"fork\" (expected one of auto, helper, direct)",
    );
}

// --- [[route]] ---------------------------------------------------------------------------------

#[test]
fn routes_keep_their_line_and_order() {
    let text = "[server]\nlisten = [\"127.0.0.1:0\"]\n\n[[route]]\nprefix = \"/b/\"\nhandler = \"echo\"\n\n\
                # comment\n[[route]]\nprefix = \"/\"\nstatic_dir = \"www\"\n";
    let config = ok(text);
    let lines: Vec<(&str, usize)> = config
        .routes
        .iter()
        .map(|r| (r.prefix.as_str(), r.line))
        .collect();
    assert_eq!(lines, [("/b/", 4), ("/", 9)]);
    assert_eq!(config.routes[0].kind, RouteKind::Handler("echo".into()));
    assert_eq!(
        config.routes[1].kind,
        RouteKind::StaticDir("/etc/cgigate/www".into())
    );
}

#[test]
fn route_overrides_apply_on_top_of_the_sections() {
    let text = r#"[output]
mode = "buffer"
buffer_limit = "64KiB"
[cgi]
max_children = 4
timeout = "1m"
env = { A = "1" }
[[route]]
prefix = "/slow/"
cgi_dir = "slow"
output = "stream"
flush_after = "1s"
queue_timeout = "1s"
timeout = "10m"
idle_timeout = "5m"
kill_grace = "5s"
request_body = "stream"
spool_memory = 1024
pass_auth = true
nph = false
pass_env = []
env = { B = "2" }
interpreters = { ".sh" = "sh" }
[[route]]
prefix = "/plain/"
cgi_script = "bin/app"
buffer_limit = 10
"#;
    let config = ok(text);
    let slow = &config.routes[0];
    assert_eq!(
        slow.output,
        OutputConfig {
            mode: OutputMode::Stream,
            buffer_limit: 65_536,
            flush_after: secs(1),
        }
    );
    let cgi = &slow.cgi;
    assert_eq!(cgi.max_children, 4);
    assert_eq!(
        (
            cgi.queue_timeout,
            cgi.timeout,
            cgi.idle_timeout,
            cgi.kill_grace
        ),
        (secs(1), secs(600), secs(300), secs(5))
    );
    assert_eq!(cgi.request_body, RequestBody::Stream);
    assert_eq!(cgi.spool_memory, 1024);
    assert!(cgi.pass_auth && !cgi.nph);
    assert!(cgi.pass_env.is_empty());
    // A route's table replaces the [cgi] one, as every other key does.
    assert_eq!(cgi.env, [("B".to_owned(), "2".to_owned())]);
    assert_eq!(cgi.interpreters, [(".sh".to_owned(), PathBuf::from("sh"))]);

    let plain = &config.routes[1];
    assert_eq!(
        plain.kind,
        RouteKind::CgiScript("/etc/cgigate/bin/app".into())
    );
    assert_eq!(plain.output.mode, OutputMode::Buffer);
    assert_eq!(plain.output.buffer_limit, 10);
    assert_eq!(plain.cgi, config.cgi);
    assert_eq!(config.cgi.timeout, secs(60));
}

#[test]
fn route_kind_must_be_exactly_one() {
    let text = "[server]\nlisten = [\"127.0.0.1:0\"]\n\n[[route]]\nprefix = \"/a/\"\nhandler = \"status\"\n\n\
                [[route]]\nprefix = \"/b/\"\nhandler = \"status\"\ncgi_dir = \"cgi\"\n";
    assert_error(
        text,
        8,
        1,
        "route[2]",
        "exactly one of handler, static_dir, cgi_dir, cgi_script, plugin must be set \
         (found handler, cgi_dir)",
    );
    assert_error(
        "\n\n[[route]]\nprefix = \"/a/\"\n",
        3,
        1,
        "route[1]",
        "exactly one of handler, static_dir, cgi_dir, cgi_script, plugin must be set (none is set)",
    );
}

#[test]
fn route_prefix_rules() {
    assert_error(
        "[[route]]\nhandler = \"echo\"\n",
        1,
        1,
        "route[1].prefix",
        "required key is missing",
    );
    let cases = [
        ("cgi-bin/", "must start with \"/\""),
        ("/a?b", "must not contain '?'"),
        ("/a#b", "must not contain '#'"),
        ("/a%2F", "must not contain '%'"),
        ("/a b", "must not contain ' '"),
    ];
    for (prefix, why) in cases {
        let text = format!("[[route]]\nhandler = \"echo\"\nprefix = \"{prefix}\"\n");
        let message = format!("invalid prefix {prefix:?}: {why}");
        assert_error(&text, 3, 10, "route[1].prefix", &message);
    }
}

#[test]
fn duplicate_prefixes_name_both_lines() {
    let text = "[[route]]\nprefix = \"/x/\"\nhandler = \"echo\"\n\n[[route]]\nprefix = \"/y/\"\n\
                handler = \"echo\"\n\n[[route]]\nhandler = \"status\"\nprefix = \"/x/\"\n";
    assert_error(
        text,
        11,
        10,
        "route[3].prefix",
        "prefix \"/x/\" is also used by route[1] at line 1",
    );
}

#[test]
fn route_specific_errors() {
    assert_error(
        "[[route]]\nprefix = \"/s\"\nhandler = \"stats\"\n",
        3,
        11,
        "route[1].handler",
        "unknown handler \"stats\" (built-in handlers: status, metrics, echo, ticker, hello, welcome)",
    );
    assert_error(
        "[[route]]\nprefix = \"/s\"\ncgi_dir = \"cgi\"\nplugin_config = \"x\"\n",
        4,
        17,
        "route[1].plugin_config",
        "plugin_config is only allowed with plugin",
    );
    assert_error(
        "[cgi]\nmax_children = 2\n[[route]]\nprefix = \"/s\"\ncgi_dir = \"cgi\"\nmax_children = 1\n",
        6,
        16,
        "route[1].max_children",
        "max_children is server-wide; set it in [cgi]",
    );
    assert_error(
        "[[route]]\nprefix = \"/s\"\ncgi_dir = \"cgi\"\noutput = \"fast\"\n",
        4,
        10,
        "route[1].output",
        "unknown value \"fast\" (expected one of buffer, stream, auto)",
    );
    assert_error(
        "[[route]]\nprefix = \"/s\"\ncgi_dir = \"cgi\"\ntimeout = \"0s\"\n",
        4,
        11,
        "route[1].timeout",
        "must be greater than 0",
    );
    assert_error(
        "[[route]]\nprefix = \"/s\"\nstatic_dir = \"\"\n",
        3,
        14,
        "route[1].static_dir",
        "path must not be empty",
    );
    assert_error(
        "[[route]]\nprefix = \"/s\"\ncgi_dir = \"cgi\"\n[[route]]\nprefix = \"/t\"\ncgi-dir = \"x\"\n",
        6,
        1,
        "route[2].cgi-dir",
        "unknown key (expected one of prefix, handler, static_dir, cgi_dir, cgi_script, plugin, ",
    );
    assert_error(
        "[[route]]\nprefix = \"/s\"\ncgi_dir = \"cgi\"\nenv = { \"A=B\" = \"1\" }\n",
        4,
        9,
        "route[1].env.\"A=B\"",
        "invalid environment variable name \"A=B\"",
    );
}

#[test]
fn plugin_config_defaults_to_empty() {
    let config = ok("[[route]]\nprefix = \"/p\"\nplugin = \"/opt/libp.so\"\n");
    assert_eq!(
        config.routes[0].kind,
        RouteKind::Plugin {
            path: "/opt/libp.so".into(),
            config: String::new(),
        }
    );
}

// --- [tls] -------------------------------------------------------------------------------------

#[test]
fn tls_defaults_and_required_keys() {
    let config = ok("[tls]\nlisten = [\"[::]:443\"]\ncert = \"tls/c.pem\"\nkey = \"/k.pem\"\n");
    let tls = config.tls.expect("[tls] present");
    assert_eq!(tls.listen, [addr("[::]:443")]);
    assert_eq!(tls.cert, Path::new("/etc/cgigate/tls/c.pem"));
    assert_eq!(tls.key, Path::new("/k.pem"));
    assert_eq!(tls.session_cache, 4096);
    assert_eq!(tls.handshake_timeout, secs(10));

    let text = "[server]\nlisten = [\"127.0.0.1:80\"]\n\n[tls]\nlisten = [\"127.0.0.1:443\"]\n";
    assert_error(text, 4, 1, "tls.cert", "required when [tls] is present");
    assert_error(
        "[tls]\nlisten = [\"127.0.0.1:443\"]\ncert = \"c\"\n",
        1,
        1,
        "tls.key",
        "required when [tls] is present",
    );
    assert_error(
        "\n[tls]\ncert = \"c\"\nkey = \"k\"\n",
        2,
        1,
        "tls.listen",
        "required when [tls] is present",
    );
    assert_error(
        "[tls]\nlisten = []\ncert = \"c\"\nkey = \"k\"\n",
        2,
        10,
        "tls.listen",
        "at least one address is required",
    );
    assert_error(
        "[tls]\nlisten = [\"127.0.0.1:443\"]\ncert = \"c\"\nkey = \"k\"\nhandshake_timeout = \"0s\"\n",
        5,
        21,
        "tls.handshake_timeout",
        "must be greater than 0",
    );
}

#[test]
fn tls_cannot_reuse_a_plain_port() {
    let text = "[server]\nlisten = [\"127.0.0.1:8080\"]\n[tls]\nlisten = [\"127.0.0.1:8080\"]\n\
                cert = \"c\"\nkey = \"k\"\n";
    assert_error(
        text,
        4,
        11,
        "tls.listen[1]",
        "127.0.0.1:8080 is listed twice",
    );
    // Port 0 picks a fresh port each time, so it may appear anywhere.
    let text = "[server]\nlisten = [\"127.0.0.1:0\"]\n[tls]\nlisten = [\"127.0.0.1:0\"]\n\
                cert = \"c\"\nkey = \"k\"\n";
    assert!(ok(text).tls.is_some());
}

// --- Files and paths ---------------------------------------------------------------------------

#[test]
fn relative_paths_are_resolved_against_the_file_folder() {
    let text = "[log]\naccess = \"../log/access.log\"\n\
                [[route]]\nprefix = \"/c/\"\ncgi_dir = \"./cgi\"\n\
                [[route]]\nprefix = \"/p\"\nplugin = \"plugins/libp.so\"\n";
    let config = Config::from_str_at(text, Path::new("/srv/site/conf/gate.toml")).unwrap();
    assert_eq!(config.base_dir, Path::new("/srv/site/conf"));
    assert_eq!(
        config.log.access,
        AccessLog::File("/srv/site/conf/../log/access.log".into())
    );
    assert_eq!(
        config.routes[0].kind,
        RouteKind::CgiDir("/srv/site/conf/./cgi".into())
    );
    assert!(matches!(
        &config.routes[1].kind,
        RouteKind::Plugin { path, .. } if path == Path::new("/srv/site/conf/plugins/libp.so")
    ));
}

#[test]
fn a_bare_file_name_resolves_against_the_current_folder() {
    let config = Config::from_str_at(
        "[[route]]\nprefix = \"/c/\"\ncgi_dir = \"cgi\"\n",
        Path::new("config.toml"),
    )
    .unwrap();
    let cwd = std::env::current_dir().unwrap();
    assert_eq!(config.base_dir, cwd);
    assert!(config.base_dir.is_absolute());
    assert_eq!(config.routes[0].kind, RouteKind::CgiDir(cwd.join("cgi")));
    let message = Config::from_str_at("x = 1\n", Path::new("config.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        message.starts_with("config.toml:1:1: x: unknown key"),
        "{message}"
    );
}

#[test]
fn load_reads_a_file_and_uses_its_folder() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gate.toml");
    std::fs::write(&path, "[[route]]\nprefix = \"/c/\"\ncgi_dir = \"cgi\"\n").unwrap();
    let config = Config::load(&path).unwrap();
    assert_eq!(config.source.as_deref(), Some(path.as_path()));
    assert_eq!(config.base_dir, dir.path());
    assert_eq!(
        config.routes[0].kind,
        RouteKind::CgiDir(dir.path().join("cgi"))
    );
    assert_eq!(config.routes[0].line, 1);

    std::fs::write(&path, "[server]\nmax_headers = 0\n").unwrap();
    let message = Config::load(&path).unwrap_err().to_string();
    let expected = format!(
        "{}:2:15: server.max_headers: must be between 1",
        path.display()
    );
    assert!(message.starts_with(&expected), "{message}");
}

#[test]
fn unreadable_files_name_the_file_and_the_os_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing.toml");
    let err = Config::load(&path).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}: cannot read: No such file or directory (os error 2)",
            path.display()
        )
    );
    assert!(err.source().is_some());
    assert_eq!(err.location(), None);
}

#[test]
fn errors_expose_position_key_and_source() {
    let err = parse("[server]\nmax_headers = 0\n").unwrap_err();
    assert_eq!(err.key(), Some("server.max_headers"));
    let at = err.location().expect("a position");
    assert_eq!(
        (at.file.as_path(), at.line, at.column),
        (Path::new(FILE), 2, 15)
    );
    // Found after deserializing: nothing underneath.
    assert!(err.source().is_none());

    let err = parse("[server]\nmax_headers = \"x\"\n").unwrap_err();
    assert_eq!(err.key(), Some("server.max_headers"));
    assert!(err.source().is_some());
}

#[test]
fn balancer_keys_default_off_and_load() {
    let s = ok("").server;
    assert!(!s.reuse_port);
    assert_eq!(s.proxy_protocol, ProxyProtocol::Off);
    assert_eq!(s.forwarded, ForwardedHeaders::Off);
    assert!(s.trusted_proxies.0.is_empty());
    let c = ok(concat!(
        "[server]\nreuse_port = true\nproxy_protocol = \"required\"\n",
        "trusted_proxies = [\"127.0.0.1\", \"10.0.0.0/8\", \"::1\"]\n",
        "forwarded = \"x-forwarded-for\"\n",
    ));
    let s = c.server;
    assert!(s.reuse_port);
    assert_eq!(s.proxy_protocol, ProxyProtocol::Required);
    assert_eq!(s.forwarded, ForwardedHeaders::XForwardedFor);
    let shown: Vec<String> = s
        .trusted_proxies
        .0
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(shown, ["127.0.0.1/32", "10.0.0.0/8", "::1/128"]);
    let c = ok("[server]\ntrusted_proxies = [\"10.0.0.1\"]\nforwarded = \"forwarded\"\nproxy_protocol = \"optional\"\n");
    assert_eq!(c.server.forwarded, ForwardedHeaders::Forwarded);
    assert_eq!(c.server.proxy_protocol, ProxyProtocol::Optional);
}

#[test]
fn balancer_keys_name_their_errors() {
    assert_error(
        "[server]\nproxy_protocol = \"optional\"\n",
        2,
        18,
        "server.proxy_protocol",
        "needs server.trusted_proxies",
    );
    assert_error(
        "[server]\nforwarded = \"forwarded\"\n",
        2,
        13,
        "server.forwarded",
        "needs server.trusted_proxies",
    );
    assert_error(
        "[server]\ntrusted_proxies = [\"10.0.0.1/8\"]\n",
        2,
        20,
        "server.trusted_proxies[1]",
        "\"10.0.0.1/8\" has bits set after the prefix (did you mean 10.0.0.0/8?)",
    );
    assert_error(
        "[server]\ntrusted_proxies = [\"127.0.0.1\", \"proxy.local\"]\n",
        2,
        33,
        "server.trusted_proxies[2]",
        "\"proxy.local\" is not an address",
    );
    assert_error(
        "[server]\nproxy_protocol = \"on\"\n",
        2,
        18,
        "server.proxy_protocol",
        "unknown value \"on\" (expected one of off, optional, required)",
    );
    assert_error(
        "[server]\nforwarded = \"x-forwarded\"\n",
        2,
        13,
        "server.forwarded",
        "unknown value \"x-forwarded\" (expected one of off, x-forwarded-for, forwarded)",
    );
    // [tls] proxy_protocol needs [server] trusted_proxies too.
    let tls = "[tls]\nlisten = [\"127.0.0.1:8443\"]\ncert = \"c.pem\"\nkey = \"k.pem\"\nproxy_protocol = \"required\"\n";
    assert_error(
        tls,
        5,
        18,
        "tls.proxy_protocol",
        "needs server.trusted_proxies",
    );
    let trusted = format!("[server]\ntrusted_proxies = [\"127.0.0.1\"]\n{tls}");
    assert_eq!(
        ok(&trusted).tls.map(|t| t.proxy_protocol),
        Some(ProxyProtocol::Required)
    );
}
