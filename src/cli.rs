//! Command-line interface (SPEC §1).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::probe::Target;

/// cgigate: an HTTP/1.1 gateway for CGI programs and in-process handlers.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    /// Config file (default: ./config.toml if present, else built-in defaults).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Listen address, replacing the config's plain-HTTP ones (repeatable; port 0 picks one).
    #[arg(long, value_name = "ADDR")]
    pub listen: Vec<SocketAddr>,
    /// Log filter (error, warn, info, debug, trace, or a tracing directive); beats RUST_LOG
    /// and the config's [log] level.
    #[arg(long, value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// What to do (default: run the server).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate the config and every route; exit 0 if good, 2 with the error if not.
    Check,
    /// Measure how responses arrive, as a client (plain http:// URLs only).
    ///
    /// For each request: status, framing (length N / chunked / close / none), body bytes,
    /// time to the response head, to the first body byte and to the end, how many separate
    /// reads delivered the body (arrivals), and whether the connection was new or reused.
    /// Compare e.g. /buffered/ticker with /streamed/ticker. The config is not read.
    /// Exit 0 if every request got a complete response, 1 if not, 2 for usage errors.
    Probe {
        /// http:// URLs, probed in order; those on the same host and port share a connection.
        #[arg(required = true, value_name = "URL")]
        urls: Vec<Target>,
        /// Requests per URL, on one kept-alive connection while the server keeps it open.
        #[arg(long, value_name = "N", default_value_t = 1,
              value_parser = clap::value_parser!(u32).range(1..))]
        repeat: u32,
        /// Also print when each piece of each body arrived (ms since the request was sent).
        #[arg(long)]
        timeline: bool,
        /// Print one JSON object per request instead of a table.
        #[arg(long)]
        json: bool,
        /// Also draw each request's arrivals (one lane per request) into FILE, as SVG.
        #[arg(long, value_name = "FILE")]
        svg: Option<std::path::PathBuf>,
        /// Longest time for one request, connecting included (e.g. 500ms, 30s, 2m).
        #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_timeout)]
        timeout: Duration,
    },
    /// Run a CGI script exactly as the server would for one request, without a server.
    ///
    /// The route, working folder, interpreter, identity, limits and sandbox come from the
    /// config; the request from the arguments (or --request FILE). Prints the environment,
    /// the script's header block as parsed, what the server would answer (status, framing,
    /// keep-alive, or why it would answer 502, at which byte), the body and stderr. Exit 0
    /// when the server would send the script's response, 1 when it would refuse it.
    Run {
        /// A path (/cgi-bin/env?x=1) or an http:// URL.
        #[arg(value_name = "TARGET")]
        target: Option<String>,
        /// The request method.
        #[arg(short = 'X', long, default_value = "GET")]
        method: String,
        /// A request header, `Name: value` (repeatable).
        #[arg(short = 'H', long = "header", value_name = "HEADER")]
        headers: Vec<String>,
        /// The request body.
        #[arg(short = 'd', long, value_name = "BODY", conflicts_with = "data_file")]
        data: Option<String>,
        /// The request body, from a file.
        #[arg(long, value_name = "FILE")]
        data_file: Option<PathBuf>,
        /// A whole HTTP/1.1 request in a file (what [cgi] capture_failures writes).
        #[arg(long, value_name = "FILE", conflicts_with_all = ["target", "headers", "data", "data_file"])]
        request: Option<PathBuf>,
        /// Print only the environment the script would get; do not run it.
        #[arg(long)]
        env_only: bool,
    },
    /// Manage the `[tls] ticket_keys` file that instances share for TLS session resumption.
    TicketKeys {
        /// What to do with it.
        #[command(subcommand)]
        action: TicketKeysAction,
    },
}

/// `cgigate ticket-keys …`.
#[derive(Debug, Subcommand)]
pub enum TicketKeysAction {
    /// Put a fresh key first and keep the newest 3, creating FILE (mode 0600) if missing;
    /// copy it to every instance, then reload them (SIGHUP). Sessions made with the keys kept still
    /// resume. Exit 0, or 1 with the reason.
    Rotate {
        /// The key file.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

/// A `--timeout`: a config-style duration, more than zero.
fn parse_timeout(text: &str) -> Result<Duration, String> {
    let timeout = crate::config::parse_duration(text)?;
    if timeout.is_zero() {
        return Err("the timeout must be more than zero".into());
    }
    Ok(timeout)
}
