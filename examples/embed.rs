//! Embedding cgigate: a Rust program serves its own handler under `/app/`, next to every
//! route of a config file, with the same output modes, limits, access log and keep-alive.
//!
//! ```sh
//! cargo run --example embed -- --config config.toml   # the shipped config, plus /app/
//! curl -i localhost:8080/app/buffered            # Content-Length
//! curl -N localhost:8080/app/streamed            # chunked, a line at a time
//! curl -d 'some body' localhost:8080/app/upload  # reads the request body
//! ```
//!
//! Without an argument it serves a small built-in config on 127.0.0.1:8081.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use cgigate::{BoxFuture, Config, Handler, HandlerError, Request, Response, Server};

/// The program's own handler: three small answers, one per output behaviour.
struct App;

impl Handler for App {
    fn call<'a>(
        &'a self,
        req: &'a mut Request,
        res: &'a mut Response,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            res.set_header("Content-Type", "text/plain; charset=utf-8");
            match req.path_below_prefix() {
                // Held whole and sent with Content-Length.
                "buffered" => {
                    res.buffered();
                    res.write("one\n").await?;
                    res.write("two\n").await
                }
                // Each line goes out as its own chunk, as it is written.
                "streamed" => {
                    res.streaming();
                    for i in 1..=3 {
                        res.write(format!("line {i}\n")).await?;
                        res.flush().await?;
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Ok(())
                }
                // The body arrives de-chunked; asking for it sends `100 Continue`.
                "upload" => {
                    let body = req.body.read_to_end(1 << 20).await?;
                    res.write(format!("got {} bytes\n", body.len())).await
                }
                _ => res.plain(404, "Not Found").await,
            }
        })
    }
}

const BUILT_IN: &str = r#"
[server]
listen = ["127.0.0.1:8081"]

[[route]]
prefix = "/status"
handler = "status"
"#;

fn main() -> ExitCode {
    // The CGI spawn helper is this program re-executed: let it run before anything else.
    if let Some(code) = cgigate::spawn_helper() {
        return code;
    }
    cgigate::prepare_process();
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    let config = match args.as_slice() {
        [flag, path] if flag == "--config" => Config::load(Path::new(path)),
        [] => Config::from_str_at(BUILT_IN, Path::new("embed.toml")),
        _ => {
            eprintln!("usage: embed [--config FILE]");
            return ExitCode::from(2);
        }
    };
    let config = match config {
        Ok(config) => config,
        Err(e) => {
            eprintln!("embed: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("embed: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(serve(config))
}

async fn serve(config: Config) -> ExitCode {
    // Installed before the server says it is up, so a signal from then on stops it cleanly.
    let stop = match cgigate::server::stop_signal() {
        Ok(stop) => stop,
        Err(e) => {
            eprintln!("embed: cannot install signal handlers: {e}");
            return ExitCode::from(1);
        }
    };
    let server = match Server::builder(config).handler("/app/", App).bind().await {
        Ok(server) => server,
        Err(e) => {
            eprintln!("embed: {e}");
            return ExitCode::from(if e.is_config_error() { 2 } else { 1 });
        }
    };
    for url in server.urls() {
        println!("listening on {url}");
    }
    server.run(stop).await;
    ExitCode::SUCCESS
}
