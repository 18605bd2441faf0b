//! Integration tests: the real binary on port 0, raw bytes over TCP.

mod support;

// Keep-alive, pipelining, HTTP/1.0 vs 1.1, HEAD, 100-continue, strict framing.
mod http;
// Every [server] limit and timeout, crossed.
mod limits;
// buffer / stream / auto output, seen from the client.
mod output;
// SIGHUP: routes, listeners, limits, the access log and isolation, reloaded or refused.
mod reload;
// Graceful shutdown, the command line, config errors, the access log.
mod lifecycle;
// The static_dir handler: 304, traversal refusals.
mod static_files;
// The CGI host: programs, environment, bodies, responses, lifecycle.
mod cgi;
// Real legacy programs through the real server: git http-backend, php-cgi, CGI.pm.
mod legacy;
// The shipped config.toml and cgi-bin/ examples.
mod shipped;
// The landing page in a real browser (headless Chromium): what the lanes show, and when.
mod landing;
// Native plugins: the C and Rust examples, the loader's refusals.
mod plugins;
// TLS: resumption, KB937480, handshake timeout, wrong protocol, bad files.
mod tls;
// Bad requests, one table: framing, smuggling, header syntax, request line, Host, limits.
mod bad_requests;
// `cgigate probe`: the measuring client, against the server and against fake servers.
mod probe;
// The embedding API, through examples/embed.rs.
mod embed;
// Defects a review found, each with the test that pins it.
mod regressions;
// The module graph: no import cycles, http/ at the bottom, short functions there.
mod layers;
// Malformed script output, one table: 502s that never split a response, and valid blocks.
mod bad_scripts;
// `cgigate run` and capture_failures: a script as the server runs it, and failures replayed.
mod run;
// Isolation: dropping root, scripts as other users, limits, the sandbox, the allowlist.
mod isolation;
// Behind a balancer: PROXY headers, forwarding headers, reuse_port, HAProxy in front.
mod proxy;
// The metrics handler, scraped and parsed: requests, refusals, CGI stops, 503s, TLS.
mod metrics;
