//! `cgigate run`: run a CGI script exactly as the server would for one request, without a
//! server, and say what the server would make of it. For "works at the prompt, fails under
//! the server": it prints the environment the script got, its header block as the server's
//! parser reads it, the server's verdict (status, framing, keep-alive, or the reason for a
//! 502 with the byte offset of the problem), the body and stderr.
//!
//! What is the server's own here, not a copy: the request head parser and its limits, the
//! router, the route's script resolution, the environment builder, the launch (the route's
//! helper with its identity, limits and sandbox; the privilege drop of `[server] user`), the
//! `[cgi] timeout`, and the script header parser. What is decided here is only the framing
//! the output mode would choose, from the arrival times of the script's output.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;

use crate::cgi::header::{self, HeadError, Kind, ScriptHead};
use crate::cgi::run::{NotRun, Ran};
use crate::config::{Config, OutputMode};
use crate::handler::{Body, ConnInfo, Request};
use crate::http::head::{self, BodyFraming, Limits};
use crate::routes::{self, Built};
use crate::stats::Stats;

/// The request to run, as the command line gives it.
#[derive(Debug, Clone, Default)]
pub struct RunRequest {
    /// A path (`/cgi-bin/env?x=1`) or an `http://host:port/path` URL.
    pub target: Option<String>,
    /// The method.
    pub method: String,
    /// `Name: value` header lines.
    pub headers: Vec<String>,
    /// The request body.
    pub body: Option<Vec<u8>>,
    /// A file holding a whole HTTP/1.1 request (head and body), as `capture_failures`
    /// writes them; replaces the fields above.
    pub file: Option<PathBuf>,
    /// Print the environment only; do not run the script.
    pub env_only: bool,
}

/// Why `cgigate run` could not run the script.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The request given is not one the server would accept.
    #[error("the server would refuse this request: {0}")]
    Request(String),
    /// The command line or the request file is unusable.
    #[error("{0}")]
    Usage(String),
    /// The config's routes cannot be served.
    #[error(transparent)]
    Route(#[from] routes::RouteError),
    /// No CGI route serves the path.
    #[error("{0}")]
    NotCgi(String),
    /// The spawn helpers or the privilege drop failed.
    #[error("{0}")]
    Setup(String),
}

/// Run the request against `config`; the report goes to `out`. True when the server would
/// answer with the script's own response (false for a 4xx/5xx of the server's making).
pub async fn run(
    config: &Config,
    request: &RunRequest,
    out: &mut String,
) -> Result<bool, RunError> {
    let raw = raw_request(request)?;
    let (head, body) = parse_request(config, &raw)?;
    let stats = Arc::new(Stats::default());
    let Built {
        router,
        cgi_shared,
        helpers,
        cgi_routes,
        ..
    } = routes::build(config, Vec::new(), &stats, None)?;
    let matched = router.route(head.path());
    let prefix = matched.entry.prefix.clone();
    let Some((_, handler)) = cgi_routes.iter().find(|(p, _)| **p == *prefix) else {
        return Err(RunError::NotCgi(format!(
            "{} is not served by a CGI route (the route that answers it: {prefix:?}); \
             nothing to run",
            head.path()
        )));
    };
    if let Some(plan) = helpers {
        let helpers = crate::server::start_helpers(plan, stats.clone())
            .await
            .map_err(|e| RunError::Setup(e.to_string()))?;
        let _ = cgi_shared.helpers.set(Arc::new(helpers));
    }
    crate::privilege::drop_to(config.server.user.as_ref(), config).map_err(RunError::Setup)?;
    let local = config
        .server
        .listen
        .first()
        .copied()
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
    let req = Request {
        conn: ConnInfo {
            peer: SocketAddr::from(([127, 0, 0, 1], 0)),
            local,
            tls: false,
        },
        head,
        prefix,
        path: matched.path,
        body: Body::empty(),
        redirects: 0,
    };
    if request.env_only {
        let length = (!body.is_empty()).then_some(body.len() as u64);
        return match handler.script_and_env(&req, length) {
            Ok((_, env)) => {
                print_env(out, &env);
                Ok(true)
            }
            Err(refusal) => {
                let _ = writeln!(
                    out,
                    "the server would answer {} {}",
                    refusal.status(),
                    refusal.as_str()
                );
                Ok(false)
            }
        };
    }
    let ran = match handler.run_once(&req, &body).await {
        Ok(ran) => ran,
        Err(NotRun::Refused(refusal)) => {
            let _ = writeln!(
                out,
                "the server would answer {} {}",
                refusal.status(),
                refusal.as_str()
            );
            return Ok(false);
        }
        Err(NotRun::Failed(e)) => {
            let _ = writeln!(out, "the server would answer {}: {e}", e.status());
            return Ok(false);
        }
    };
    let output = matched.entry.output;
    Ok(report(out, &ran, &req, handler.max_head_bytes(), output))
}

/// The request's bytes: the file's, or made from the command line's parts.
fn raw_request(request: &RunRequest) -> Result<Vec<u8>, RunError> {
    if let Some(file) = &request.file {
        return std::fs::read(file)
            .map_err(|e| RunError::Usage(format!("{}: {e}", file.display())));
    }
    let target = request.target.as_deref().unwrap_or("/");
    let (host, path) = match target.strip_prefix("http://") {
        Some(rest) => match rest.find('/') {
            Some(i) => (rest[..i].to_string(), rest[i..].to_string()),
            None => (rest.to_string(), "/".to_string()),
        },
        None if target.starts_with('/') => ("localhost".to_string(), target.to_string()),
        None => {
            return Err(RunError::Usage(format!(
                "{target:?}: give a path (/cgi-bin/x) or an http:// URL"
            )))
        }
    };
    let mut raw = format!("{} {path} HTTP/1.1\r\n", request.method);
    let named = |name: &str| {
        request.headers.iter().any(|h| {
            h.split_once(':')
                .is_some_and(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        })
    };
    if !named("host") {
        let _ = write!(raw, "Host: {host}\r\n");
    }
    for h in &request.headers {
        let _ = write!(raw, "{h}\r\n");
    }
    if let Some(body) = &request.body {
        if !named("content-length") {
            let _ = write!(raw, "Content-Length: {}\r\n", body.len());
        }
    }
    raw.push_str("\r\n");
    let mut raw = raw.into_bytes();
    raw.extend_from_slice(request.body.as_deref().unwrap_or_default());
    Ok(raw)
}

/// The head, by the server's own parser and limits, and the body after it.
fn parse_request(config: &Config, raw: &[u8]) -> Result<(head::RequestHead, Vec<u8>), RunError> {
    let limits = Limits {
        max_head_bytes: config.server.max_head_bytes,
        max_headers: config.server.max_headers,
        max_body_bytes: config.server.max_body_bytes,
    };
    let mut buf = BytesMut::from(raw);
    let head = match head::parse(&mut buf, &limits) {
        Ok(Some(head)) => head,
        Ok(None) => {
            return Err(RunError::Request(
                "the head does not end (no empty line)".into(),
            ))
        }
        Err(e) => return Err(RunError::Request(format!("{} {}", e.status(), e.as_str()))),
    };
    let body = match head.body {
        BodyFraming::None => Vec::new(),
        BodyFraming::Length(n) => {
            let n = usize::try_from(n).unwrap_or(usize::MAX);
            if buf.len() < n {
                return Err(RunError::Usage(format!(
                    "the body is {} bytes; Content-Length says {n}",
                    buf.len()
                )));
            }
            buf[..n].to_vec()
        }
        BodyFraming::Chunked => {
            return Err(RunError::Usage(
                "a chunked request body: give it with Content-Length instead".into(),
            ))
        }
    };
    Ok((head, body))
}

fn print_env(out: &mut String, env: &[(String, Vec<u8>)]) {
    for (name, value) in env {
        let _ = writeln!(out, "{name}={}", String::from_utf8_lossy(value));
    }
}

/// Print what the script did and what the server would make of it; true when the server
/// would answer with the script's response.
fn report(
    out: &mut String,
    ran: &Ran,
    req: &Request,
    max_head: usize,
    output: crate::config::OutputConfig,
) -> bool {
    let script = &ran.script;
    let _ = writeln!(out, "== program\n{}", script.program.display());
    for arg in &script.args {
        let _ = writeln!(out, "  argument: {}", arg.display());
    }
    let _ = writeln!(out, "  in {}", script.dir.display());
    let _ = writeln!(out, "\n== environment");
    print_env(out, &ran.env);
    let parsed = if ran.nph {
        header::parse_nph(&ran.stdout, max_head)
    } else {
        header::parse(&ran.stdout, max_head)
    };
    let _ = writeln!(out, "\n== header block");
    let (verdict, body_at) = match &parsed {
        Ok(Some((head, n))) => {
            let n = *n;
            for line in String::from_utf8_lossy(&ran.stdout[..n]).lines() {
                let _ = writeln!(out, "{line}");
            }
            (verdict(ran, req, head, n, output), n)
        }
        Ok(None) => {
            let e = if ran.nph {
                header::at_eof_nph(&ran.stdout)
            } else {
                header::at_eof(&ran.stdout)
            };
            bad_head(out, ran, e)
        }
        Err(e) => bad_head(out, ran, *e),
    };
    let verdict = match verdict {
        Verdict::Script(text) if ran.timed_out => Verdict::Server(format!(
            "{text}, cut off at [cgi] timeout (the connection closes)"
        )),
        v => v,
    };
    let _ = writeln!(out, "\n== the server would answer");
    let accepted = match &verdict {
        Verdict::Script(text) => {
            let _ = writeln!(out, "{text}");
            true
        }
        Verdict::Server(text) => {
            let _ = writeln!(out, "{text}");
            false
        }
    };
    let body = &ran.stdout[body_at.min(ran.stdout.len())..];
    if accepted {
        let _ = writeln!(out, "\n== body ({} bytes)", body.len());
    } else {
        let _ = writeln!(
            out,
            "\n== the rest of the output ({} bytes, not sent)",
            body.len()
        );
    }
    out.push_str(&String::from_utf8_lossy(body));
    if !body.is_empty() && !body.ends_with(b"\n") {
        out.push('\n');
    }
    let _ = writeln!(out, "\n== stderr ({} bytes)", ran.stderr.len());
    out.push_str(&String::from_utf8_lossy(&ran.stderr));
    let _ = writeln!(
        out,
        "\n== exit: {}",
        match (&ran.exit, ran.timed_out) {
            (_, true) => "stopped at [cgi] timeout".to_string(),
            (Some(status), _) => status.to_string(),
            (None, _) => "unknown".to_string(),
        }
    );
    accepted
}

/// What the server does with a script's output.
enum Verdict {
    /// It answers with the script's response, framed as said.
    Script(String),
    /// It answers with one of its own (502, 504).
    Server(String),
}

/// A header block the server refuses: 502, and where in the output the problem is.
fn bad_head(out: &mut String, ran: &Ran, e: HeadError) -> (Verdict, usize) {
    let at = first_bad_byte(&ran.stdout, ran.nph, e);
    let line_start = ran.stdout[..at]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let line_no = ran.stdout[..line_start]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1;
    let line_end = ran.stdout[line_start..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(ran.stdout.len(), |i| line_start + i);
    let shown: String = ran.stdout[line_start..line_end].escape_ascii().to_string();
    let _ = writeln!(
        out,
        "{}",
        String::from_utf8_lossy(&ran.stdout[..line_start]).trim_end()
    );
    let _ = writeln!(out, "{shown}    <- line {line_no}");
    let signal = ran
        .exit
        .as_ref()
        .and_then(std::os::unix::process::ExitStatusExt::signal);
    let rest = (line_end + 1).min(ran.stdout.len());
    if signal == Some(nix::sys::signal::Signal::SIGXCPU as i32) {
        let why = "504 Gateway Timeout: the script ran out of CPU time (cpu_limit)";
        return (Verdict::Server(why.into()), rest);
    }
    if ran.timed_out && ran.stdout.is_empty() {
        let why = "504 Gateway Timeout: no header block within [cgi] timeout";
        return (Verdict::Server(why.into()), rest);
    }
    let verdict = Verdict::Server(format!(
        "502 Bad Gateway: {e} (bad_output), in line {line_no}: bytes {line_start}..{rest} of \
         the script's output"
    ));
    (verdict, rest)
}

/// Where the parser first refuses `stdout`: the length of the shortest prefix it calls
/// bad, the end of the line with the problem (a refusal of a complete line comes as soon as
/// the line is complete). The end of the output for a block that never ends.
fn first_bad_byte(stdout: &[u8], nph: bool, e: HeadError) -> usize {
    if matches!(e, HeadError::NoBlankLine | HeadError::TooLarge) {
        return stdout.len();
    }
    let refused = |n: usize| {
        let prefix = &stdout[..n];
        let parsed = if nph {
            header::parse_nph(prefix, usize::MAX)
        } else {
            header::parse(prefix, usize::MAX)
        };
        parsed.is_err()
    };
    // The prefixes the parser refuses are all those from the first bad one on (a line, once
    // refused, stays in every longer prefix, and no block ends before it): a binary search,
    // not a parse of every prefix (which would be quadratic in a 64 KiB block).
    let (mut lo, mut hi) = (1, stdout.len() + 1);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if refused(mid) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    if lo > stdout.len() {
        stdout.len()
    } else {
        lo - 1
    }
}

/// Status, framing and keep-alive for a header block the server accepts.
fn verdict(
    ran: &Ran,
    req: &Request,
    head: &ScriptHead,
    head_len: usize,
    output: crate::config::OutputConfig,
) -> Verdict {
    if let Kind::LocalRedirect(location) = &head.kind {
        return Verdict::Script(format!(
            "a local redirect: the server answers GET {location} instead (RFC 3875 §6.2.2)"
        ));
    }
    let body_len = (ran.stdout.len() - head_len) as u64;
    let status = head.status;
    let keep_alive = req.head.keep_alive && !ran.nph;
    let framing = if ran.nph {
        "close-delimited (an NPH script: its bytes pass through)".to_string()
    } else if req.head.is_head() || status == 204 || status == 304 {
        "no body".to_string()
    } else if let Some(n) = head.content_length {
        format!("Content-Length: {n} (the script's own)")
    } else {
        framing_for(ran, head_len, body_len, output)
    };
    let reason = head
        .reason
        .clone()
        .unwrap_or_else(|| crate::http::status::reason(status).to_string());
    Verdict::Script(format!(
        "{status} {reason}, {framing}, {}",
        if keep_alive {
            "the connection stays open"
        } else {
            "then the connection closes"
        }
    ))
}

/// The framing the route's output mode gives a body of `body_len` bytes that arrived as
/// `ran.arrivals` say.
fn framing_for(
    ran: &Ran,
    head_len: usize,
    body_len: u64,
    output: crate::config::OutputConfig,
) -> String {
    let length = format!("Content-Length: {body_len}");
    let over = body_len > output.buffer_limit as u64;
    match output.mode {
        OutputMode::Stream => "chunked (output = stream)".to_string(),
        OutputMode::Buffer if over => format!(
            "chunked: the body passed buffer_limit ({} bytes) (output = buffer)",
            output.buffer_limit
        ),
        OutputMode::Buffer => format!("{length} (output = buffer)"),
        OutputMode::Auto => {
            // Auto streams once the script is silent for flush_after before its end.
            let gap = longest_gap(&ran.arrivals, head_len);
            if over {
                format!(
                    "chunked: the body passed buffer_limit ({} bytes) (output = auto)",
                    output.buffer_limit
                )
            } else if gap.is_some_and(|g| g >= output.flush_after) {
                format!(
                    "chunked: the script was silent for {:?} mid-body, over flush_after {:?} (output = auto)",
                    gap.unwrap_or_default(),
                    output.flush_after
                )
            } else {
                format!(
                    "{length} (output = auto: all of it came without a pause of flush_after {:?})",
                    output.flush_after
                )
            }
        }
    }
}

/// The longest wait between two pieces of output after the header block.
fn longest_gap(arrivals: &[(usize, Duration)], head_len: usize) -> Option<Duration> {
    let from = arrivals.iter().position(|&(len, _)| len >= head_len)?;
    arrivals[from..]
        .windows(2)
        .map(|w| w[1].1.saturating_sub(w[0].1))
        .max()
}
