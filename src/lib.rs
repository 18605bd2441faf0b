//! cgigate: an HTTP/1.1 application gateway that hosts CGI programs and in-process handlers
//! and writes every dynamic response buffered (Content-Length) or streamed (chunked).
//!
//! The path of one request, module by module:
//!
//! 1. [`server`] accepts a connection (bounded by `max_connections`) and spawns
//! 2. [`http::conn`], which reads bytes until [`http::head`] parses a request head,
//! 3. asks the [`router`] which [`handler::Handler`] answers the path,
//! 4. runs it with a [`handler::Request`] whose body is decoded by [`http::decode`],
//! 5. receives its output through [`response::Response`] and frames it with
//!    [`http::framer`] (Content-Length, chunked or close-delimited; [`http::encode`]),
//! 6. writes it ([`http::outbuf`]), logs it ([`access_log`]), and keeps the connection
//!    for the next request or closes it.
//!
//! CGI programs are run by [`cgi`]. Configuration is [`config`]; the command line is [`cli`]; built-in handlers are in
//! [`handlers`]. [`probe`] is the client side: `cgigate probe` measures how responses arrive.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod access_log;
pub mod cgi;
pub mod cli;
pub mod config;
#[cfg(test)]
mod fuzz_seeds;
pub mod handler;
pub mod handlers;
pub mod http;
pub mod plugin;
pub mod probe;
pub mod response;
pub mod router;
pub mod server;
pub mod stats;
pub mod tls;
