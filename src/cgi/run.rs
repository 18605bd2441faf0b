//! One script run outside the HTTP engine, for `cgigate run`: the same resolution of the
//! path, the same environment, the same launch (from the route's helper, with its identity,
//! limits and sandbox, or from this process) and the same timeout as a request would get,
//! but the script's stdout is kept raw, with the time each piece arrived, so that the caller
//! can show the header block and say what the server would do with it.

use std::process::ExitStatus;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{timeout, Instant};

use super::process::{self, Input};
use super::script::{Refusal, Script};
use super::CgiHandler;
use crate::error::GatewayError;
use crate::handler::{HandlerError, Request};

/// A script's environment, in order.
pub(crate) type Environment = Vec<(String, Vec<u8>)>;

/// What one run of a script gave.
pub(crate) struct Ran {
    /// The script as resolved.
    pub(crate) script: Script,
    /// Its environment, in the order it got it.
    pub(crate) env: Environment,
    /// Everything it wrote on stdout.
    pub(crate) stdout: Vec<u8>,
    /// The length of stdout after each read, and when that read returned.
    pub(crate) arrivals: Vec<(usize, Duration)>,
    /// Everything it wrote on stderr.
    pub(crate) stderr: Vec<u8>,
    /// How it exited; `None` when it was stopped at `[cgi] timeout`.
    pub(crate) exit: Option<ExitStatus>,
    /// Whether it ran into `[cgi] timeout`.
    pub(crate) timed_out: bool,
    /// Whether it is an NPH script the route lets through as one.
    pub(crate) nph: bool,
}

/// Why the script did not run.
pub(crate) enum NotRun {
    /// The path names nothing that may run (404, 403).
    Refused(Refusal),
    /// It could not be started (no slot, no helper, a failed spawn…).
    Failed(HandlerError),
}

impl CgiHandler {
    /// The script `req` names and the environment the server would give it, with a body
    /// of `content_length` bytes.
    pub(crate) fn script_and_env(
        &self,
        req: &Request,
        content_length: Option<u64>,
    ) -> Result<(Script, Environment), Refusal> {
        let script = self.resolve(req)?;
        let env = self.environment(req, &script, content_length);
        Ok((script, env))
    }

    /// Run the script for `req` with `body` on its stdin, to the end of its output and its
    /// exit, or to `[cgi] timeout`.
    pub(crate) async fn run_once(&self, req: &Request, body: &[u8]) -> Result<Ran, NotRun> {
        let length = (!body.is_empty()).then_some(body.len() as u64);
        let (script, env) = self.script_and_env(req, length).map_err(NotRun::Refused)?;
        let failed = |e: HandlerError| NotRun::Failed(e);
        let permit = self
            .shared
            .children
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| failed(GatewayError::NoSlot(self.cfg.queue_timeout).into()))?;
        let input = if body.is_empty() {
            Input::Null
        } else {
            Input::Pipe
        };
        let (mut process, pipes) = self
            .start(&script, &env, input, permit)
            .await
            .map_err(failed)?;
        let started = Instant::now();
        let feed = async {
            if let Some(mut stdin) = pipes.stdin {
                // A script that does not read its body is not an error here either.
                let _ = stdin.write_all(body).await;
            }
        };
        let mut stdout = Vec::new();
        let mut arrivals = Vec::new();
        let read_out = async {
            let mut out = pipes.stdout;
            let mut chunk = vec![0u8; 64 * 1024];
            while let Ok(n) = out.read(&mut chunk).await {
                if n == 0 {
                    break;
                }
                stdout.extend_from_slice(&chunk[..n]);
                arrivals.push((stdout.len(), started.elapsed()));
            }
        };
        let mut stderr = Vec::new();
        let read_err = async {
            let mut err = pipes.stderr;
            let _ = err.read_to_end(&mut stderr).await;
        };
        let all = async {
            tokio::join!(feed, read_out, read_err);
            process.wait().await.ok()
        };
        let outcome = timeout(self.cfg.timeout, all).await;
        let (exit, timed_out) = match outcome {
            Ok(exit) => (exit, false),
            Err(_) => {
                process::signal_group(process.pgid(), process::Signal::SIGKILL);
                (None, true)
            }
        };
        Ok(Ran {
            nph: script.nph && self.cfg.nph,
            script,
            env,
            stdout,
            arrivals,
            stderr,
            exit,
            timed_out,
        })
    }

    /// The route's output of scripts' heads: the most bytes a header block may have.
    pub(crate) fn max_head_bytes(&self) -> usize {
        self.shared.max_head_bytes
    }
}
