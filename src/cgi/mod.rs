//! The CGI/1.1 host (RFC 3875, SPEC §5): one [`Handler`] for `cgi_dir` and `cgi_script`
//! routes. The protocol parts are pure and live apart from process management, as in
//! lighttpd: [`script`] maps the URL to a program, [`env`] builds the meta-variables,
//! [`header`] parses the script's header block; [`process`] spawns, stops and reaps,
//! [`spool`] collects request bodies, [`output`] pumps stdout and stderr; [`spawner`] is the
//! small helper process scripts are started from, [`isolation`] what a helper confines its
//! scripts to (user, limits, sandbox), and [`helpers`] the server's set of helpers.

pub(crate) mod capture;
pub mod env;
pub(crate) mod fair;
pub mod header;
pub(crate) mod helpers;
pub(crate) mod isolation;
pub(crate) mod output;
pub(crate) mod process;
pub(crate) mod run;
pub(crate) mod sandbox;
pub mod script;
pub(crate) mod spawner;
pub(crate) mod spool;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::Semaphore;
use tokio::time::{sleep_until, timeout, Instant};
use tracing::{debug, warn};

use crate::config::{CgiConfig, RequestBody, SpawnMode};
use crate::handler::{Body, BoxFuture, GatewayError, Handler, HandlerError, Request};
use crate::http::head::{self, Limits, RequestHead};
use crate::metrics::StopReason;
use crate::response::Response;
use crate::router::Dispatcher;
use crate::stats::Stats;
use capture::{Capture, KeptBody};
use env::Mount;
use isolation::{LimitHit, Profile};
use output::{Ended, Failure};
use process::{Input, Launch, Pipes, Process, Registry};
use script::{CanonicalDir, Refusal, Script};
use spawner::Spawner;
use spool::Spooled;

/// Most internal redirects (`Location: /local`) followed for one request (SPEC §5.4).
pub(crate) const MAX_REDIRECTS: u8 = 10;

/// What every CGI route of a server shares.
pub(crate) struct CgiShared {
    /// `max_children`: one permit per running script, server-wide.
    pub children: Arc<Semaphore>,
    /// Who holds and waits for them (`max_children_per_client`, turns between clients).
    pub fair: Arc<fair::Fair>,
    /// Running process groups, stopped at shutdown.
    pub registry: Arc<Registry>,
    /// Re-dispatches local redirects.
    pub dispatcher: Arc<Dispatcher>,
    /// `[server] max_head_bytes`: also the limit for a script's header block.
    pub max_head_bytes: usize,
    /// `[cgi] spawn`: where scripts are started from.
    pub spawn: SpawnMode,
    /// The spawn helpers and their supervisor, started with the server when a route needs
    /// one (a config check builds routes without them).
    pub helpers: OnceLock<Arc<helpers::Helpers>>,
    /// The server's counters and metrics.
    pub stats: Arc<Stats>,
}

/// Whether a script of an unconfined route starts from the helper, given the mode and
/// whether a helper is there to take it. `auto` takes the helper whenever it can: since each
/// profile has a helper per CPU, the helper's hop costs less than a spawn from the server's
/// many threads and big address space even with few connections open (bench (i): about
/// 250-300 µs of server CPU per CGI request through the helper against 320-330 direct, and
/// as many or more requests per second; docs/PERFORMANCE.md), and far less with many open
/// (the kernel copies the descriptor table at each spawn). When no helper can take it (its
/// supervisor is gone, or it is in its restart backoff), `auto` spawns from the server
/// instead of failing the request.
pub(crate) fn use_helper(mode: SpawnMode, helper_available: bool) -> bool {
    match mode {
        SpawnMode::Direct => false,
        SpawnMode::Helper => true,
        SpawnMode::Auto => helper_available,
    }
}

enum Target {
    /// `cgi_dir`: every executable below is a script.
    Dir(CanonicalDir),
    /// `cgi_script`: one program for the prefix.
    Fixed(PathBuf),
}

/// A route's confinement: the helper row that starts its scripts, and what the server
/// checks before asking it.
#[derive(Clone, Debug)]
pub(crate) struct Confinement {
    /// Its row in the supervisor's table.
    pub(crate) row: u32,
    /// Its profile (a template, for run-as-owner).
    pub(crate) profile: Profile,
    /// Its scripts run as a user the server is not: only their helper may signal them.
    pub(crate) foreign: bool,
}

/// A CGI route.
pub(crate) struct CgiHandler {
    target: Target,
    cfg: CgiConfig,
    inherited: Vec<(String, Vec<u8>)>,
    shared: Arc<CgiShared>,
    confinement: Option<Confinement>,
    /// `cfg.limits` as the log names them (empty: none).
    limits: String,
}

impl CgiHandler {
    /// A `cgi_dir` route over `dir`, which must be a folder.
    pub(crate) fn dir(
        dir: &Path,
        cfg: CgiConfig,
        shared: Arc<CgiShared>,
    ) -> std::io::Result<CgiHandler> {
        let dir = CanonicalDir::new(dir)?;
        Ok(CgiHandler::new(Target::Dir(dir), cfg, shared))
    }

    /// A `cgi_script` route running `program`, which must be a file.
    pub(crate) fn script(
        program: &Path,
        cfg: CgiConfig,
        shared: Arc<CgiShared>,
    ) -> std::io::Result<CgiHandler> {
        if !program.is_file() {
            return Err(std::io::Error::other("not a file"));
        }
        Ok(CgiHandler::new(
            Target::Fixed(program.to_path_buf()),
            cfg,
            shared,
        ))
    }

    fn new(target: Target, cfg: CgiConfig, shared: Arc<CgiShared>) -> CgiHandler {
        let inherited = env::inherited(&cfg.pass_env, |n| std::env::var_os(n));
        CgiHandler {
            target,
            limits: isolation::describe_limits(&cfg.limits),
            cfg,
            inherited,
            shared,
            confinement: None,
        }
    }

    /// Start this route's scripts confined, from the helper of `confinement`.
    pub(crate) fn confined(mut self, confinement: Confinement) -> CgiHandler {
        self.confinement = Some(confinement);
        self
    }

    /// What scripts of this route may be below: its folder, or its one program.
    pub(crate) fn roots(&self) -> Vec<PathBuf> {
        match &self.target {
            Target::Dir(root) => vec![root.path().to_path_buf()],
            Target::Fixed(program) => {
                vec![program.canonicalize().unwrap_or_else(|_| program.clone())]
            }
        }
    }
}

impl Handler for CgiHandler {
    fn call<'a>(
        &'a self,
        req: &'a mut Request,
        res: &'a mut Response,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(self.serve(req, res))
    }
}

impl CgiHandler {
    async fn serve(&self, req: &mut Request, res: &mut Response) -> Result<(), HandlerError> {
        let script = match self.resolve(req) {
            Ok(s) => s,
            Err(refusal) => return res.plain(refusal.status(), refusal.as_str()).await,
        };
        self.serve_script(req, res, &script)
            .await
            .map_err(|e| e.of_program(&script.script_name, &self.limits))
    }

    /// Start `script` where its route says (its helper, or this process), holding its
    /// `max_children` slot; a start that fails is the status SPEC §5.6 gives it.
    pub(crate) async fn start(
        &self,
        script: &Script,
        env: &[(String, Vec<u8>)],
        input: Input,
        permit: tokio::sync::OwnedSemaphorePermit,
    ) -> Result<(Process, Pipes), HandlerError> {
        let (spawner, confined, foreign) = self.launcher(script).await?;
        let launch = Launch {
            grace: self.cfg.kill_grace,
            registry: self.shared.registry.clone(),
            permit,
            spawner: spawner.as_ref(),
            confined,
            foreign,
        };
        let spawning = Instant::now();
        match Process::spawn(script, env, input, launch).await {
            Ok(started) => {
                let metrics = &self.shared.stats.metrics.cgi;
                metrics.spawn.observe(spawning.elapsed());
                Ok(started)
            }
            // SPEC §5.6: spawn failure → 500, EAGAIN (out of processes, or the route's
            // `processes` limit) → 503; a helper that refused it (EACCES) → 403.
            Err(e) => Err(match e.raw_os_error().map(nix::errno::Errno::from_raw) {
                Some(nix::errno::Errno::EAGAIN) => GatewayError::Busy,
                Some(nix::errno::Errno::EACCES) if confined => GatewayError::Refused(
                    "the route's helper refused the program (see its log line)".to_string(),
                ),
                _ => GatewayError::Spawn(e),
            }
            .into()),
        }
    }

    /// Where the script starts from: a helper (and whether it confines it), or the server.
    async fn launcher(
        &self,
        script: &Script,
    ) -> Result<(Option<Arc<Spawner>>, bool, bool), HandlerError> {
        let helpers = self.shared.helpers.get();
        let Some(confinement) = &self.confinement else {
            if !use_helper(self.shared.spawn, helpers.is_some()) {
                return Ok((None, false, false));
            }
            let helpers = helpers.ok_or(GatewayError::NoHelper)?;
            return match helpers.row(0).await {
                Ok(helper) => Ok((Some(helper), false, false)),
                Err(e) if self.shared.spawn == SpawnMode::Helper => {
                    Err(GatewayError::HelperUnavailable(e).into())
                }
                Err(e) => {
                    debug!("no spawn helper ({e}); spawning from the server");
                    Ok((None, false, false))
                }
            };
        };
        let helpers = helpers.ok_or(GatewayError::NoHelper)?;
        let profile = &confinement.profile;
        let file = &script.script_filename;
        let helper = if profile.identity.is_none() {
            // suEXEC-style: the script's owner, checked here for a clear refusal, and again
            // by the supervisor and the helper.
            let owner = std::fs::metadata(file)
                .map_err(|e| GatewayError::Refused(format!("{}: {e}", file.display())))?
                .uid();
            let as_owner = profile.for_owner(owner).map_err(GatewayError::Refused)?;
            isolation::check_script(file, as_owner.strict, owner).map_err(GatewayError::Refused)?;
            helpers.for_owner(confinement.row, owner).await
        } else {
            let uid = profile.identity.as_ref().map_or(0, |id| id.uid);
            isolation::check_script(file, profile.strict, uid).map_err(GatewayError::Refused)?;
            helpers.row(confinement.row).await
        };
        let helper = helper.map_err(GatewayError::HelperUnavailable)?;
        Ok((Some(helper), true, confinement.foreign))
    }

    /// Run `script` for the request.
    async fn serve_script(
        &self,
        req: &mut Request,
        res: &mut Response,
        script: &Script,
    ) -> Result<(), HandlerError> {
        let metrics = &self.shared.stats.metrics.cgi;
        // A client at max_children_per_client gets 503 at once (cgi/fair.rs).
        let Some(entry) = self.shared.fair.enter(req.conn.peer.ip()) else {
            metrics.count_client_limit();
            return Err(GatewayError::ClientBusy.into());
        };
        // SPEC §5.6: wait up to queue_timeout for a slot, then 503 with Retry-After.
        let queued = Instant::now();
        let permit = match timeout(self.cfg.queue_timeout, entry.slot(&self.shared.children)).await
        {
            Ok(Ok(permit)) => permit,
            _ => {
                metrics.count_no_slot();
                return Err(GatewayError::NoSlot(self.cfg.queue_timeout).into());
            }
        };
        metrics.queue_wait.observe(queued.elapsed());
        let spooled = match self.cfg.request_body {
            RequestBody::Spool if req.body.is_present() => {
                Some(spool::spool(&mut req.body, self.cfg.spool_memory).await?)
            }
            _ => None,
        };
        let content_length = match &spooled {
            Some(s) => Some(s.len()),
            None if req.body.is_present() => req.body.content_length(),
            None => None,
        };
        let environment = self.environment(req, script, content_length);
        let kept = match &self.cfg.capture_failures {
            Some(_) => kept_body(spooled.as_ref(), req.body.is_present(), content_length),
            None => KeptBody::None,
        };
        let (stdin, memory_body) = match spooled {
            Some(Spooled::File(file, _)) => (Input::File(file), None),
            Some(Spooled::Memory(pieces, _)) => (Input::Pipe, Some(pieces)),
            None if req.body.is_present() => (Input::Pipe, None),
            None => (Input::Null, None),
        };
        let (process, pipes) = self.start(script, &environment, stdin, permit).await?;
        let feed = Feed {
            memory: memory_body,
            stream: self.cfg.request_body == RequestBody::Stream || req.body.is_present(),
        };
        let nph = script.nph && self.cfg.nph;
        let mut stderr = self.cfg.capture_failures.as_ref().map(|_| Vec::new());
        let ran = self
            .run(
                process,
                pipes,
                feed,
                &mut req.body,
                res,
                nph,
                &script.script_name,
                stderr.as_mut(),
            )
            .await;
        let ended = match ran {
            Ok(ended) => ended,
            Err(e) => {
                if matches!(e.status(), 502 | 504) {
                    self.capture(&req.head, kept, stderr.unwrap_or_default(), &e, script)
                        .await;
                }
                return Err(e);
            }
        };
        match ended {
            Ended::Done => Ok(()),
            Ended::Redirect(location) => self.redirect(req, res, &location).await,
        }
    }

    fn resolve(&self, req: &Request) -> Result<Script, Refusal> {
        let below = req.path_below_prefix();
        match &self.target {
            Target::Dir(root) => {
                script::resolve_in_dir(root, &req.prefix, below, &self.cfg.interpreters)
            }
            Target::Fixed(program) => {
                script::resolve_fixed(program, &req.prefix, below, &self.cfg.interpreters)
            }
        }
    }

    fn environment(
        &self,
        req: &Request,
        script: &Script,
        content_length: Option<u64>,
    ) -> Vec<(String, Vec<u8>)> {
        let document_root = match &self.target {
            Target::Dir(root) => root.path().to_string_lossy(),
            Target::Fixed(_) => script.dir.to_string_lossy(),
        };
        let filename = script.script_filename.to_string_lossy();
        let mount = Mount {
            script_name: &script.script_name,
            script_filename: &filename,
            path_info: &script.path_info,
            document_root: &document_root,
            content_length,
            pass_auth: self.cfg.pass_auth,
            pass_headers: &self.cfg.pass_headers,
        };
        env::cgi_env(req, &mount, self.inherited.clone(), &self.cfg.env)
    }

    /// Serve stdin, stdout and stderr concurrently until the output ends, under the
    /// timeouts; then stop and reap the script.
    #[allow(clippy::too_many_arguments)]
    async fn run(
        &self,
        mut process: Process,
        pipes: Pipes,
        feed: Feed,
        body: &mut Body,
        res: &mut Response,
        nph: bool,
        script: &str,
        stderr_copy: Option<&mut Vec<u8>>,
    ) -> Result<Ended, HandlerError> {
        let cfg = &self.cfg;
        let pgid = process.pgid();
        let deadline = Instant::now() + cfg.timeout;
        let mut out = Box::pin(output::pump_stdout(
            pipes.stdout,
            res,
            nph,
            self.shared.max_head_bytes,
            cfg.idle_timeout,
        ));
        let mut err = Box::pin(output::log_stderr(pipes.stderr, script, stderr_copy));
        let mut inp = Box::pin(feed.run(pipes.stdin, body));
        let mut result: Option<Result<Ended, Failure>> = None;
        let mut exited_at: Option<Instant> = None;
        let mut output_end: Option<Instant> = None;
        let mut err_done = false;
        let mut inp_done = false;
        let timed_out = loop {
            match &result {
                // Bad output or a silent script: stop it now.
                Some(Err(_)) => break false,
                Some(Ok(_)) if exited_at.is_some() => break false,
                _ => {}
            }
            let linger = exited_at.map(|t| t + cfg.kill_grace);
            // After a clean end of output the script gets kill_grace to exit by itself.
            let exit_wait = output_end.map(|t| t + cfg.kill_grace);
            tokio::select! {
                r = &mut out, if result.is_none() => {
                    result = Some(r);
                    output_end = Some(Instant::now());
                }
                _ = &mut err, if !err_done => err_done = true,
                _ = &mut inp, if !inp_done => inp_done = true,
                _ = process.wait(), if exited_at.is_none() => exited_at = Some(Instant::now()),
                _ = sleep_opt(linger), if result.is_none() => {
                    // The script has exited but something it started still holds stdout:
                    // end its group so the output reaches EOF.
                    debug!(pgid, "script exited; its group still holds stdout");
                    process::signal_group(pgid, process::Signal::SIGKILL);
                }
                _ = sleep_opt(exit_wait), if exit_wait.is_some() => break false,
                _ = sleep_until(deadline) => break true,
            }
        };
        drop(out);
        drop(inp);
        // Let stderr finish for a moment so its last lines are logged, without waiting on
        // a group member that keeps it open.
        if !err_done {
            let _ = timeout(std::time::Duration::from_millis(50), &mut err).await;
        }
        drop(err);
        let status = process.stop().await.filter(|s| !s.success());
        let hit = status.and_then(|s| isolation::limit_hit(s, &cfg.limits));
        if let Some(reason) = stop_reason(timed_out, result.as_ref(), hit.is_some()) {
            self.shared.stats.metrics.cgi.count_stop(reason);
        }
        match hit {
            Some(LimitHit::Cpu) => return Err(GatewayError::CpuLimit.into()),
            Some(LimitHit::FileSize) => return Err(GatewayError::FileSizeLimit.into()),
            None => {}
        }
        if timed_out {
            return Err(GatewayError::Timeout.into());
        }
        let failed = match result {
            Some(Ok(ended)) => {
                if let Some(status) = status {
                    self.exited_badly(status, script);
                }
                return Ok(ended);
            }
            Some(Err(failure)) => output_error(failure),
            None => GatewayError::NoResponse.into(),
        };
        // No response because the script failed, on a route with limits: likely one of
        // them (a failed allocation, fork or open), which the kernel does not name.
        Err(match (failed, status) {
            (
                HandlerError::Gateway {
                    error:
                        error @ (GatewayError::BadOutput(_)
                        | GatewayError::ReadOutput(_)
                        | GatewayError::NoResponse),
                    ..
                },
                Some(status),
            ) if cfg.limits.is_limiting() => GatewayError::UnderLimits {
                cause: Box::new(error),
                status,
            }
            .into(),
            (failed, _) => failed,
        })
    }

    /// Record a failure in `[cgi] capture_failures` (off the runtime's threads); a record
    /// that cannot be written is logged, and the request's answer is the same.
    async fn capture(
        &self,
        head: &crate::http::head::RequestHead,
        body: KeptBody,
        stderr: Vec<u8>,
        error: &HandlerError,
        script: &Script,
    ) {
        let Some(folder) = &self.cfg.capture_failures else {
            return;
        };
        let capture = Capture {
            folder: folder.clone(),
            max: self.cfg.capture_max,
            secrets: self.cfg.capture_secrets,
        };
        let (head, status) = (head.clone(), error.status());
        let reason = format!("{}: {error}", error.code());
        let name = script.script_name.clone();
        let written = tokio::task::spawn_blocking(move || {
            capture.write(capture::Failure {
                head: &head,
                body,
                stderr: &stderr,
                status,
                reason,
                script: &name,
            })
        })
        .await;
        match written {
            Ok(Ok(dir)) => debug!(record = %dir.display(), "failure captured"),
            Ok(Err(e)) => {
                warn!(folder = %folder.display(), error = %e, "cannot capture the failure")
            }
            Err(_) => {}
        }
    }

    /// A script that answered and then exited with a failure: on a route with limits, the
    /// log line names them, the likely cause when the kernel sent no signal that says so (a
    /// failed allocation under `memory`, a failed fork under `processes`).
    fn exited_badly(&self, status: std::process::ExitStatus, script: &str) {
        if self.limits.is_empty() {
            debug!(%status, script, "script exit status");
        } else {
            warn!(%status, script, limits = self.limits, "script failed under limits");
        }
    }

    /// RFC 3875 §6.2.2: answer as the server would for a GET of `location`.
    async fn redirect(
        &self,
        req: &mut Request,
        res: &mut Response,
        location: &str,
    ) -> Result<(), HandlerError> {
        if req.redirects >= MAX_REDIRECTS {
            return Err(GatewayError::TooManyRedirects(MAX_REDIRECTS).into());
        }
        debug!(location, "local redirect");
        let Some(head) = redirected_head(&req.head, location) else {
            return Err(GatewayError::BadRedirect.into());
        };
        let Some(m) = self.shared.dispatcher.route(head.path()) else {
            return Err(GatewayError::Unroutable.into());
        };
        let mut next = Request {
            head,
            conn: req.conn,
            prefix: m.entry.prefix.clone(),
            path: m.path,
            body: Body::empty(),
            redirects: req.redirects + 1,
        };
        m.entry.handler.call(&mut next, res).await
    }
}

/// Why the server ended a script's run, if it did not end by itself: a limit the kernel
/// enforced comes first, as it is what the client is told.
fn stop_reason(
    timed_out: bool,
    result: Option<&Result<Ended, Failure>>,
    limit_hit: bool,
) -> Option<StopReason> {
    if limit_hit {
        return Some(StopReason::Limit);
    }
    if timed_out {
        return Some(StopReason::Timeout);
    }
    match result? {
        Err(Failure::Idle | Failure::IdleBeforeHead) => Some(StopReason::Idle),
        Err(Failure::Client(_)) => Some(StopReason::Disconnect),
        // A bad header block is mostly seen at the end of the output, from a script that
        // has ended by itself.
        Ok(_) | Err(Failure::BadHead(_) | Failure::Io(_)) => None,
    }
}

/// What a failure of the script's output means for the request.
fn output_error(failure: Failure) -> HandlerError {
    match failure {
        // SPEC §5.4: details to the log, a generic 502 to the client.
        Failure::BadHead(e) => GatewayError::BadOutput(e.as_str()).into(),
        Failure::IdleBeforeHead => GatewayError::IdleBeforeHead.into(),
        Failure::Idle => GatewayError::Idle.into(),
        Failure::Io(e) => GatewayError::ReadOutput(e).into(),
        Failure::Client(e) => e,
    }
}

/// The GET a local redirect turns into: same version and fields, minus the body's.
fn redirected_head(original: &RequestHead, location: &str) -> Option<RequestHead> {
    let mut raw = format!("GET {location} {}\r\n", original.version.as_str()).into_bytes();
    for field in &original.headers {
        let name = field.name_str();
        if [
            "content-length",
            "transfer-encoding",
            "content-type",
            "expect",
        ]
        .iter()
        .any(|n| name.eq_ignore_ascii_case(n))
        {
            continue;
        }
        raw.extend_from_slice(&field.name);
        raw.extend_from_slice(b": ");
        raw.extend_from_slice(&field.value);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"\r\n");
    let limits = Limits {
        max_head_bytes: raw.len() + 1,
        max_headers: original.headers.len() + 1,
        max_body_bytes: 0,
    };
    let mut buf = bytes::BytesMut::from(&raw[..]);
    head::parse(&mut buf, &limits).ok().flatten()
}

/// What goes to the script's stdin.
struct Feed {
    memory: Option<Vec<Bytes>>,
    stream: bool,
}

impl Feed {
    /// Write the body to stdin and close it at the end (git http-backend reads to EOF). A
    /// script that exits without reading makes the writes fail; that is not an error.
    async fn run(self, stdin: Option<tokio::net::unix::pipe::Sender>, body: &mut Body) {
        let Some(mut stdin) = stdin else {
            return;
        };
        if let Some(pieces) = self.memory {
            for piece in pieces {
                if stdin.write_all(&piece).await.is_err() {
                    return;
                }
            }
        } else if self.stream {
            while let Ok(Some(piece)) = body.read().await {
                if stdin.write_all(&piece).await.is_err() {
                    return;
                }
            }
        }
        let _ = shutdown(&mut stdin).await;
    }
}

async fn shutdown<W: AsyncWrite + Unpin>(w: &mut W) -> std::io::Result<()> {
    w.shutdown().await
}

async fn sleep_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// What `capture_failures` keeps of a request body: a spooled one is read back from memory
/// or its file; a streamed one is gone.
fn kept_body(spooled: Option<&Spooled>, present: bool, length: Option<u64>) -> KeptBody {
    match spooled {
        Some(Spooled::Memory(pieces, n)) => KeptBody::Bytes(pieces.clone(), *n),
        Some(Spooled::File(file, n)) => match file.try_clone() {
            Ok(file) => KeptBody::File(file, *n),
            Err(_) => KeptBody::Streamed(Some(*n)),
        },
        None if present => KeptBody::Streamed(length),
        None => KeptBody::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stop_is_counted_for_why_the_server_ended_the_script() {
        let idle: Result<Ended, Failure> = Err(Failure::Idle);
        let silent = Err(Failure::IdleBeforeHead);
        let bad = Err(Failure::BadHead(header::HeadError::NoColon));
        let done = Ok(Ended::Done);
        let io = Err(Failure::Io(std::io::Error::other("x")));
        let gone = Err(Failure::Client(HandlerError::Other("gone".into())));
        let cases = [
            (false, Some(&idle), false, Some(StopReason::Idle)),
            (false, Some(&silent), false, Some(StopReason::Idle)),
            (false, Some(&bad), false, None),
            (false, Some(&gone), false, Some(StopReason::Disconnect)),
            (true, None, false, Some(StopReason::Timeout)),
            (true, Some(&done), false, Some(StopReason::Timeout)),
            // The kernel's limit is what the client is told, so it is what is counted.
            (true, None, true, Some(StopReason::Limit)),
            (false, Some(&done), true, Some(StopReason::Limit)),
            (false, Some(&done), false, None),
            (false, Some(&io), false, None),
            (false, None, false, None),
        ];
        for (i, (timed_out, result, limit, want)) in cases.into_iter().enumerate() {
            assert_eq!(stop_reason(timed_out, result, limit), want, "case {i}");
        }
    }

    #[test]
    fn auto_takes_the_helper_when_there_is_one() {
        assert!(use_helper(SpawnMode::Auto, true));
        assert!(!use_helper(SpawnMode::Auto, false));
        // `helper` insists (a missing helper is a 500), `direct` never asks.
        assert!(use_helper(SpawnMode::Helper, false));
        assert!(!use_helper(SpawnMode::Direct, true));
    }
}
