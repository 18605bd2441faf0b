//! hello-plugin: the example cgigate plugin in Rust, with no `unsafe`. It does what the C
//! example does, chosen by the query string:
//!
//! - (anything else) or `vars`: a few server variables, the config and the body's length;
//! - `count=N`: streams `count 1` … `count N` (N ≤ 100, else a 400), one line every 100 ms,
//!   and says on stderr when the client went away before the end;
//! - `buffered`: three small writes in buffer mode, answered with a Content-Length;
//! - `sized`: `hello world` in two writes, its length declared up front;
//! - `panic`: panics before sending anything (the server answers 500 and serves on);
//! - `fail`: returns an error (likewise a 500).

#![forbid(unsafe_code)]

use std::thread;
use std::time::Duration;

use cgigate_plugin::{export_plugin, Error, Mode, Plugin, Request};

/// The most lines `count=N` streams.
const MAX_COUNT: u32 = 100;
/// The pause between two streamed lines.
const COUNT_INTERVAL: Duration = Duration::from_millis(100);

struct Hello {
    config: String,
}

impl Plugin for Hello {
    fn init(config: &str) -> Result<Self, String> {
        if config == "fail" {
            return Err("hello-plugin: plugin_config must not be \"fail\"".into());
        }
        Ok(Hello {
            config: config.to_owned(),
        })
    }

    fn handle(&self, req: &mut Request<'_>) -> Result<(), Error> {
        let query = req.var_str("QUERY_STRING").unwrap_or_default();
        if let Some(n) = query.strip_prefix("count=") {
            return count(req, n);
        }
        match query.as_str() {
            "buffered" => buffered(req),
            "sized" => sized(req),
            "panic" => panic!("boom"),
            "fail" => Err(Error::Plugin("asked to fail".into())),
            _ => vars(req, &self.config),
        }
    }

    fn terminate(&self) {
        eprintln!("hello-plugin: terminate");
    }
}

export_plugin!(Hello, "hello-plugin");

const TEXT: (&str, &str) = ("Content-Type", "text/plain");

fn vars(req: &mut Request<'_>, config: &str) -> Result<(), Error> {
    let mut text = String::new();
    for name in [
        "REQUEST_METHOD",
        "SCRIPT_NAME",
        "PATH_INFO",
        "QUERY_STRING",
        "REMOTE_ADDR",
        "HTTP_HOST",
    ] {
        let value = req.var_str(name).unwrap_or_default();
        text.push_str(&format!("{name}={value}\n"));
    }
    text.push_str(&format!("config={config}\nbody={}\n", body_length(req)?));
    req.send_headers(200, &[TEXT])?;
    req.write(text.as_bytes())
}

/// Reads the request body to its end, keeping only its length.
fn body_length(req: &mut Request<'_>) -> Result<usize, Error> {
    let mut buf = [0u8; 8192];
    let mut total = 0;
    loop {
        match req.read_body(&mut buf)? {
            0 => return Ok(total),
            n => total += n,
        }
    }
}

fn count(req: &mut Request<'_>, n: &str) -> Result<(), Error> {
    let n = match n.parse::<u32>() {
        Ok(n) if n <= MAX_COUNT => n,
        _ => {
            req.send_headers(400, &[TEXT])?;
            return req.write(b"count must be 0..100\n");
        }
    };
    req.set_mode(Mode::Stream)?;
    req.send_headers(200, &[TEXT])?;
    for i in 1..=n {
        if !req.is_connected() || count_line(req, i).is_err() {
            eprintln!("hello-plugin: client gone after {} of {n} lines", i - 1);
            break;
        }
        if i < n {
            thread::sleep(COUNT_INTERVAL);
        }
    }
    Ok(())
}

/// One write per line: in stream mode each write is a chunk of its own.
fn count_line(req: &mut Request<'_>, i: u32) -> Result<(), Error> {
    req.write(format!("count {i}\n").as_bytes())?;
    req.flush()
}

fn buffered(req: &mut Request<'_>) -> Result<(), Error> {
    req.set_mode(Mode::Buffer)?;
    req.send_headers(200, &[TEXT])?;
    for piece in ["one ", "two ", "three\n"] {
        req.write(piece.as_bytes())?;
    }
    Ok(())
}

fn sized(req: &mut Request<'_>) -> Result<(), Error> {
    req.set_mode(Mode::Sized(11))?;
    req.send_headers(200, &[TEXT])?;
    req.write(b"hello ")?;
    req.write(b"world")
}
