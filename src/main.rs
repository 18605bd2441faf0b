//! The `cgigate` binary: parse the command line, load the config, start logging, serve until
//! SIGTERM/SIGINT — or, for `cgigate probe`, measure responses as a client. Exit codes: 0 clean,
//! 1 runtime failure (or a probe request without a response), 2 usage or config error.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

use cgigate::cli::{Cli, Command, TicketKeysAction};
use cgigate::config::Config;
use cgigate::server::{check_config, Server};

/// jemalloc instead of glibc's malloc, for one reason: memory freed after a burst goes back
/// to the system. glibc keeps freed heap in its arenas (bench/soak measured 193 MiB held
/// after 200 slow readers had finished, 7.5 MiB after `malloc_trim`), and calling
/// `malloc_trim` would take `unsafe` outside the plugin loader. jemalloc's background thread
/// returns unused pages after its decay time (10 s), with no code of ours. C plugins keep
/// their own malloc: the symbols are prefixed, and no memory changes hands across the ABI.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    // The CGI spawn helper is this binary re-executed (src/cgi/spawner.rs): nothing else of
    // the server may run in it — no runtime, no logging threads, no argument parsing.
    if let Some(code) = cgigate::spawn_helper() {
        return code;
    }
    // Before any thread exists: descriptors inherited from the launcher never reach a script.
    cgigate::prepare_process();
    let cli = Cli::parse();
    match &cli.command {
        Some(Command::Probe {
            urls,
            repeat,
            timeline,
            json,
            svg,
            timeout,
        }) => probe(&cgigate::probe::Options {
            targets: urls.clone(),
            repeat: *repeat,
            timeline: *timeline,
            json: *json,
            timeout: *timeout,
            svg: svg.clone(),
        }),
        Some(Command::Check) => with_config(&cli, |config| check(&config)),
        Some(Command::Run {
            target,
            method,
            headers,
            data,
            data_file,
            request,
            env_only,
        }) => {
            let body = match (data, data_file) {
                (Some(d), _) => Some(d.clone().into_bytes()),
                (None, Some(f)) => match std::fs::read(f) {
                    Ok(b) => Some(b),
                    Err(e) => {
                        eprintln!("cgigate: {}: {e}", f.display());
                        return ExitCode::from(2);
                    }
                },
                (None, None) => None,
            };
            let request = cgigate::run::RunRequest {
                target: target.clone(),
                method: method.clone(),
                headers: headers.clone(),
                body,
                file: request.clone(),
                env_only: *env_only,
            };
            with_config(&cli, |config| run_script(&config, &request))
        }
        Some(Command::TicketKeys {
            action: TicketKeysAction::Rotate { file },
        }) => match cgigate::rotate_ticket_keys(file) {
            Ok(n) => {
                println!(
                    "{}: {n} keys, the newest first; copy it to every instance, then reload them (SIGHUP)",
                    file.display()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("cgigate: {}: {e}", file.display());
                ExitCode::from(1)
            }
        },
        None => with_config(&cli, |config| run(config, &cli)),
    }
}

/// Loads the config `cli` names (or the default one) and hands it to `then`; exit 2 if bad.
fn with_config(cli: &Cli, then: impl FnOnce(Config) -> ExitCode) -> ExitCode {
    match load_config(cli.config.as_deref()) {
        Ok(config) => then(config),
        Err(e) => {
            eprintln!("cgigate: {e}");
            ExitCode::from(2)
        }
    }
}

/// `cgigate run`: one script, as the server would run it; exit 0 when the server would send
/// its response, 1 when the server would refuse it, 2 when it cannot be run at all.
fn run_script(config: &Config, request: &cgigate::run::RunRequest) -> ExitCode {
    let runtime = match small_runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let mut out = String::new();
    let result = runtime.block_on(cgigate::run::run(config, request, &mut out));
    print!("{out}");
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("cgigate: run: {e}");
            ExitCode::from(if matches!(e, cgigate::run::RunError::Request(_)) {
                1
            } else {
                2
            })
        }
    }
}

/// A runtime on this thread, for the commands that are not the server; exit 1 if it cannot
/// be had (said on stderr).
fn small_runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("cgigate: cannot start the runtime: {e}");
            ExitCode::from(1)
        })
}

/// `cgigate probe`: no config and no logging, a small runtime on this thread; exit 1 unless
/// every request got a complete response.
fn probe(options: &cgigate::probe::Options) -> ExitCode {
    let runtime = match small_runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    if runtime.block_on(cgigate::probe::run(options)) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn load_config(explicit: Option<&Path>) -> Result<Config, cgigate::config::ConfigError> {
    if let Some(path) = explicit {
        return Config::load(path);
    }
    let default = Path::new("config.toml");
    if default.is_file() {
        return Config::load(default);
    }
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    Ok(Config::defaults(&cwd))
}

fn check(config: &Config) -> ExitCode {
    match check_config(config) {
        Ok(report) => {
            let name = config.source.as_ref().map_or_else(
                || "built-in defaults".to_string(),
                |p| p.display().to_string(),
            );
            println!("{name}: ok ({} routes)", config.routes.len());
            for line in report {
                println!("{line}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cgigate: {e}");
            ExitCode::from(2)
        }
    }
}

/// Print a `listening on` line for each URL (what scripts and tests wait for).
fn say_listening(urls: &[String]) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    for url in urls {
        let _ = writeln!(out, "listening on {url}");
    }
    let _ = out.flush();
}

/// SIGHUP: read the config file again and hand it to the running server.
struct Reloads {
    reloader: cgigate::server::Reloader,
    /// `--config`, if given (else the default file, as at start).
    path: Option<PathBuf>,
    /// `--listen`, which replaces the file's addresses at each reload too.
    listen: Vec<std::net::SocketAddr>,
    /// Where a new `[log] level` goes, when neither `--log-level` nor `RUST_LOG` fixed it.
    level: Option<tracing_subscriber::reload::Handle<EnvFilter, tracing_subscriber::Registry>>,
}

impl Reloads {
    async fn run(self, mut hangups: tokio::signal::unix::Signal) {
        while hangups.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading the config");
            let mut config = match load_config(self.path.as_deref()) {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "reload refused; still serving the previous config");
                    continue;
                }
            };
            if !self.listen.is_empty() {
                config.server.listen = self.listen.clone();
            }
            let level = EnvFilter::try_new(&config.log.level);
            if let Ok(reloaded) = self.reloader.reload(config).await {
                say_listening(&reloaded.opened);
                if let (Some(handle), Ok(level)) = (&self.level, level) {
                    let _ = handle.reload(level);
                }
            }
        }
    }
}

fn run(mut config: Config, cli: &Cli) -> ExitCode {
    if !cli.listen.is_empty() {
        config.server.listen = cli.listen.clone();
    }
    // Sockets from systemd socket activation replace the configured addresses; taken while
    // this process has one thread (the protocol's variables are removed from the environment).
    let inherited = match cgigate::server::inherited_listeners() {
        Ok(l) => l,
        Err(e) => {
            eprintln!("cgigate: LISTEN_FDS: {e}");
            return ExitCode::from(1);
        }
    };
    // --log-level beats RUST_LOG, which beats the config file (and only then does a reload
    // change the level).
    let from_config =
        cli.log_level.is_none() && std::env::var("RUST_LOG").map_or(true, |v| v.is_empty());
    let filter = match (&cli.log_level, std::env::var("RUST_LOG")) {
        (Some(level), _) => EnvFilter::try_new(level),
        (None, Ok(env)) if !env.is_empty() => EnvFilter::try_new(env),
        _ => EnvFilter::try_new(&config.log.level),
    };
    let filter = match filter {
        Ok(f) => f,
        Err(e) => {
            eprintln!("cgigate: invalid log level: {e}");
            return ExitCode::from(2);
        }
    };
    let (filter, level) = tracing_subscriber::reload::Layer::new(filter);
    tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal()),
        )
        .init();
    let level = from_config.then_some(level);

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cgigate: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(async move {
        let signals = cgigate::server::stop_signal().and_then(|stop| {
            let hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
            Ok((stop, hup))
        });
        let (signal, hangups) = match signals {
            Ok(s) => s,
            Err(e) => {
                eprintln!("cgigate: cannot install signal handlers: {e}");
                return ExitCode::from(1);
            }
        };
        let server = match Server::builder(config).listeners(inherited).bind().await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("cgigate: {e}");
                return ExitCode::from(if e.is_config_error() { 2 } else { 1 });
            }
        };
        say_listening(&server.urls());
        let reloads = Reloads {
            reloader: server.reloader(),
            path: cli.config.clone(),
            listen: cli.listen.clone(),
            level,
        };
        tokio::spawn(reloads.run(hangups));
        server.run(signal).await;
        ExitCode::SUCCESS
    })
}
