//! Command-line interface (SPEC §1).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

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
}
