//! cgigate: an HTTP/1.1 application gateway that hosts CGI programs and in-process handlers
//! and writes every dynamic response buffered (Content-Length) or streamed (chunked).
//!
//! The path of one request, module by module, each layer importing only the ones below:
//!
//! 1. `server` accepts a connection (bounded by `max_connections`) and spawns
//! 2. `http::conn`, which reads bytes until `http::head` parses a request head, then
//!    drives one `http::exchange` (the request/response state machine) for it;
//! 3. `app`, the connection's service, asks the `router` which [`Handler`] answers the path
//!    and runs it with a [`Request`] whose body `http::decode` decodes;
//! 4. the handler answers through a [`Response`], whose commands `http::framer` frames
//!    (Content-Length, chunked or close-delimited) into `http::outbuf`;
//! 5. the connection writes them, `app` records the exchange in the `access_log`, the
//!    `stats` and the route's `metrics`, and the connection reads the next request or closes.
//!
//! Handlers: `cgi` (CGI/1.1 programs), `handlers` (built-ins, static files), `plugin`
//! (native plugins through a C ABI); `routes` builds them from the [`config`]. `probe` is
//! the client side: `cgigate probe` measures how responses arrive.
//!
//! The public surface is what an embedding program needs: load a [`Config`], mount its own
//! [`Handler`]s with [`Server::builder`], bind and run.
#![deny(unsafe_code)]
#![warn(missing_docs)]
#![warn(unreachable_pub)]

mod access_log;
mod app;
mod cgi;
pub mod cli;
pub mod config;
mod error;
#[cfg(test)]
mod fuzz_seeds;
pub mod handler;
mod handlers;
mod http;
mod metrics;
mod plugin;
mod privilege;
pub mod probe;
mod proxy;
pub mod response;
mod router;
mod routes;
pub mod run;
pub mod server;
mod stats;
mod tls;

pub use config::Config;
pub use error::{GatewayError, HandlerError};
pub use handler::{Body, BoxFuture, ConnInfo, Handler, Request};
pub use http::head::{Header, RequestHead, Version};
pub use response::{Connection, Mode, Response};
pub use server::{Builder, Server, ServerError};
pub use tls::tickets::rotate as rotate_ticket_keys;

/// Runs the CGI spawn helper or supervisor when this process is one, and returns its exit
/// code; `None` in every other process. Both are the running program re-executed with a
/// marker argument (`[cgi] spawn`, docs/cgi.md, docs/isolation.md), so a program that embeds
/// cgigate and serves CGI routes calls this first thing in `main`, before any thread or
/// runtime exists, as the `cgigate` binary does.
pub fn spawn_helper() -> Option<std::process::ExitCode> {
    let role = std::env::args().nth(1)?;
    let code = if role == cgi::spawner::HELPER_ARG {
        cgi::spawner::helper_main()
    } else if role == cgi::spawner::SUPERVISOR_ARG {
        cgi::spawner::supervisor_main()
    } else {
        return None;
    };
    Some(std::process::ExitCode::from(
        u8::try_from(code).unwrap_or(1),
    ))
}

/// Prepares the process for serving, before any thread exists: descriptors inherited from
/// the launcher are marked close-on-exec (so they never reach a script), and the descriptor
/// limit is raised to its hard maximum (each connection and each script's pipes need some).
pub fn prepare_process() {
    cgi::process::close_inherited_on_exec();
    cgi::process::raise_fd_limit();
}

/// The sans-IO parsers, for the fuzz targets and the benchmarks. Not a stable API.
#[doc(hidden)]
pub mod parsers {
    pub use crate::cgi::{env as cgi_env, header as cgi_header, script as cgi_script};
    pub use crate::http::decode;
    pub use crate::http::encode::encode_chunk;
    pub use crate::http::head;
    pub use crate::http::path::{
        normalize as normalize_path, percent_decode as percent_decode_path,
    };
    pub use crate::proxy::header as proxy_header;
}
